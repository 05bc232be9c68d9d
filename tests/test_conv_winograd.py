"""Winograd F(4x4, 3x3) (the forward, the data gradient and the weight gradient of 3x3 /
stride-1 layers): against PyTorch (y, dx, dw, db) over odd sizes, paddings 0-2,
N = 1 and channel counts that are not multiples of 16; float64 finite differences; its float32
error against the im2col path's, with the bound stated; thread-count independence; the
automatic choice; and a compiled 3x3 network equal to eager bitwise."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import _C
from lamina.autograd import gradcheck

from conftest import tolerance

torch = pytest.importorskip("torch")


def _run(algo, x, w, b, dy, pad):
    """lamina's (y, dx, dw, db) on the forced path `algo`."""
    _C._conv_set_algo(algo)
    try:
        y = np.empty(dy.shape, x.dtype)
        dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
        _C.conv2d_forward(x, w, b, y, (1, 1), pad, (1, 1), 1)
        _C.conv2d_backward(x, w, dy, dx, dw, db, (1, 1), pad, (1, 1), 1)
    finally:
        _C._conv_set_algo("auto")
    return y, dx, dw, db


def _torch(x, w, b, dy, pad):
    tt = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b)]
    y = torch.nn.functional.conv2d(*tt, padding=pad)
    y.backward(torch.tensor(dy, dtype=torch.float64))
    return [y.detach().numpy()] + [t.grad.numpy() for t in tt]


def _case(rng, N, C, H, W, K, pad, dt=np.float64, wscale=None):
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, 3, 3)) * (wscale or 1 / np.sqrt(9 * C))
    b = rng.standard_normal(K)
    dy = rng.standard_normal((N, K, H + 2 * pad[0] - 2, W + 2 * pad[1] - 2))
    return [a.astype(dt) for a in (x, w, b, dy)]


def _rel_err(got, ref):
    """max |got - ref| / (1 + |ref|): the measure the stated bounds use."""
    return float(np.max(np.abs(got.astype(np.float64) - ref) / (1 + np.abs(ref))))


# (N, C, H, W, K, pad): odd / even maps (partial edge tiles: OH, OW not multiples of 4), one
# tile and many, every padding (the data gradient runs with padding 2 - pad), N = 1, channel
# counts off the GEMM's 16 / 32 tiles, maps wider than one 8-tile AVX2 step.
SHAPES = [(1, 5, 7, 7, 7, (1, 1)), (3, 5, 3, 3, 7, (0, 0)), (1, 5, 10, 13, 7, (2, 1)), (2, 17, 9, 11, 24, (1, 0)),
          (2, 64, 16, 16, 64, (1, 1)), (1, 33, 15, 17, 31, (0, 2)), (2, 3, 38, 21, 5, (2, 2)),
          (5, 8, 6, 40, 9, (1, 1)), (1, 1, 4, 4, 1, (0, 0))]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_winograd4_matches_torch(shape, dt):
    N, C, H, W, K, pad = shape
    rng = np.random.default_rng(sum(shape[:5]))
    x, w, b, dy = _case(rng, N, C, H, W, K, pad, dt)
    ref = _torch(*(a.astype(np.float64) for a in (x, w, b, dy)), pad)
    got = _run("winograd4", x, w, b, dy, pad)
    for name, g, r in zip(("y", "dx", "dw", "db"), got, ref):
        bound = (1e-4 if name == "dw" else 5e-5) if dt == np.float32 else 1e-12
        assert _rel_err(g, r) <= bound, (name, shape, dt.__name__, _rel_err(g, r))


def test_winograd4_float32_error_against_im2col():
    """The stated bound: on the mid layer's channels (C = K = 64, N(0, 1) inputs, weights of
    std 0.05: |y| up to ~5) F(4x4)'s float32 y and dx are within 3e-5 of float64 relative to
    1 + |ref| (measured ~1e-5, about 8x F(2x2) and 30x im2col's ~3e-7); dw within 2e-4
    (measured 1.4e-4: 3x F(2x2)'s 4.7e-5, 5x im2col's 2.9e-5)."""
    rng = np.random.default_rng(4)
    x, w, b, dy = _case(rng, 2, 64, 32, 32, 64, (1, 1), np.float64, wscale=0.05)
    ref = _torch(x, w, b, dy, (1, 1))
    f32 = [a.astype(np.float32) for a in (x, w, b, dy)]
    err = {algo: [_rel_err(g, r) for g, r in zip(_run(algo, *f32, (1, 1)), ref)]
           for algo in ("im2col", "winograd", "winograd4")}
    y4, dx4, dw4, db4 = err["winograd4"]
    assert y4 <= 3e-5 and dx4 <= 3e-5 and dw4 <= 2e-4 and db4 <= 1e-5, err
    # F(4x4) pays for its 4x fewer multiplies in accuracy, but within a bounded factor
    assert y4 <= 100 * max(err["im2col"][0], 1e-7) and dx4 <= 100 * max(err["im2col"][1], 1e-7), err
    assert y4 >= err["winograd"][0]  # sanity: the larger tile is not the more accurate one
    assert err["winograd"][2] <= dw4 <= 5 * err["winograd"][2], err  # dw: F(4x4), not F(2x2)


def _dw(algo, x, w, dy, pad):
    _C._conv_set_algo(algo)
    try:
        dw = np.empty_like(w)
        _C.conv2d_backward(x, w, dy, None, dw, None, (1, 1), pad, (1, 1), 1)
    finally:
        _C._conv_set_algo("auto")
    return dw


def test_winograd4_dw_mid_layer_error():
    """The mid layer (64 -> 64 channels, 32x32, pad 1) with nn.Conv2d's default init and N(0, 1)
    x and dy: F(4x4)'s float32 dw against float64, relative to 1 + |dw| (|dw| up to ~260):
    measured 2.3e-4, F(2x2) 6.4e-5, im2col 4.7e-5 (PyTorch's own float32 1.3e-4)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 64, 32, 32))
    w = rng.uniform(-1 / 24, 1 / 24, (64, 64, 3, 3))
    dy = rng.standard_normal((4, 64, 32, 32))
    ref = _torch(x, w, np.zeros(64), dy, (1, 1))[2]
    f32 = [a.astype(np.float32) for a in (x, w, dy)]
    e4, e2 = (_rel_err(_dw(a, *f32, (1, 1)), ref) for a in ("winograd4", "winograd"))
    assert e4 <= 5e-4 and e4 <= 5 * e2, (e4, e2)


@pytest.mark.parametrize("budget", [1, 64 << 20])
@pytest.mark.parametrize("shape", [(3, 20, 45, 38, 24, (1, 1)), (7, 9, 11, 6, 16, (0, 1)), (1, 16, 5, 9, 8, (2, 0))])
def test_winograd4_dw_job_cuts(shape, budget, restore_conv_settings):
    """The F(4x4) dw's job cuts: rows of one image's tiles (budget 1 byte: 64-tile jobs, two
    per 45x38 image) and several whole images per job (64 MiB): dw against float64, the
    dw-only call equal to the full backward's dw bitwise, and the same bits at 1 and 2 threads."""
    N, C, H, W, K, pad = shape
    x, w, b, dy = _case(np.random.default_rng(H * W), N, C, H, W, K, pad, np.float32)
    ref = _torch(*(a.astype(np.float64) for a in (x, w, b, dy)), pad)[2]
    _C._conv_winograd4_set_dw_chunk_bytes(budget)
    try:
        outs = []
        for threads in (1, 2):
            _C.set_num_threads(threads)
            outs.append(_dw("winograd4", x, w, dy, pad))
        full = _run("winograd4", x, w, b, dy, pad)[2]
    finally:
        _C._conv_winograd4_set_dw_chunk_bytes(0)
    e4, e2 = _rel_err(outs[0], ref), _rel_err(_dw("winograd", x, w, dy, pad), ref)
    assert e4 <= 3e-4 and e4 <= 8 * e2, (e4, e2)  # measured 45x38: 1.0e-4 / 1.9e-4 vs 6.2e-5; 11x6: 4.6x
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], full)
    # float64 through the same cuts: the transforms are exact up to rounding
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    _C._conv_winograd4_set_dw_chunk_bytes(budget)
    try:
        assert _rel_err(_dw("winograd4", x64, w64, dy64, pad), ref) <= 1e-12
    finally:
        _C._conv_winograd4_set_dw_chunk_bytes(0)


def test_default_init_layer_within_torch_testing_tolerance():
    """What a user comparing with PyTorch sees: nn.Conv2d(64, 64, 3, padding=1) with its default
    init on N(0, 1) input, through the automatic path (F(4x4)), stays within
    torch.testing.assert_close's float32 defaults (atol 1e-5, rtol 1.3e-6) of PyTorch's output
    (measured max |error| ~6e-6)."""
    torch.manual_seed(0)
    m = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(8, 64, 24, 24)
    ref = m(x).detach()
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    y = F.conv2d(lamina.tensor(x.numpy()), lamina.tensor(w), lamina.tensor(b), 1, 1).numpy()
    torch.testing.assert_close(torch.from_numpy(y), ref)


@pytest.mark.parametrize("pad", [0, 1, 2])
def test_winograd4_gradcheck(pad):
    """float64 finite differences through the autograd rule on the forced F(4x4) path."""
    rng = np.random.default_rng(pad)
    x = lamina.tensor(rng.standard_normal((2, 3, 9, 6)), requires_grad=True)
    w = lamina.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    b = lamina.tensor(rng.standard_normal(4), requires_grad=True)
    _C._conv_set_algo("winograd4")
    try:
        assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, 1, pad), [x, w, b], atol=1e-6, rtol=1e-5)
    finally:
        _C._conv_set_algo("auto")


@pytest.mark.parametrize("shape", [(9, 64, 16, 15, 64, (1, 1)), (3, 24, 37, 20, 40, (0, 0))])
def test_winograd4_thread_count_independent(shape, restore_conv_settings):
    """Jobs are cut by shape only: y, dx and dw are bit-identical at 1, 2 and 4 threads."""
    N, C, H, W, K, pad = shape
    x, w, b, dy = _case(np.random.default_rng(1), N, C, H, W, K, pad, np.float32)
    outs = []
    for threads in (1, 2, 4):
        _C.set_num_threads(threads)
        outs.append(_run("winograd4", x, w, b, dy, pad))
    for other in outs[1:]:
        for a, o in zip(outs[0], other):
            np.testing.assert_array_equal(a, o)


def test_automatic_choice(restore_conv_settings):
    """The mid layer's shape (64 channels) runs F(4x4) in the forward and the data gradient,
    and on Intel (where it was measured) in the weight gradient, F(2x2) elsewhere; more
    channels keep F(2x2) (F(4x4)'s error grows with them); small channel counts keep their
    direct / im2col paths."""
    rng = np.random.default_rng(2)
    x, w, b, dy = _case(rng, 2, 64, 32, 32, 64, (1, 1), np.float32)
    auto, f4, f2 = (_run(a, x, w, b, dy, (1, 1)) for a in ("auto", "winograd4", "winograd"))
    intel = _C.cpu_info()["vendor"] == "GenuineIntel"
    for name, a, f, g in zip(("y", "dx", "dw", "db"), auto, f4, f2):
        np.testing.assert_array_equal(a, f if name != "dw" or intel else g, err_msg=name)
    assert not np.array_equal(auto[0], f2[0])
    assert not np.array_equal(f4[2], f2[2])
    for C, K in ((128, 64), (64, 80)):
        x, w, b, dy = _case(rng, 1, C, 10, 10, K, (1, 1), np.float32)
        auto, f2 = _run("auto", x, w, b, dy, (1, 1)), _run("winograd", x, w, b, dy, (1, 1))
        np.testing.assert_array_equal(auto[0], f2[0])
    x, w, b, dy = _case(rng, 4, 3, 12, 12, 8, (1, 1), np.float32)  # C = 3: not Winograd at all
    auto, f4 = _run("auto", x, w, b, dy, (1, 1)), _run("winograd4", x, w, b, dy, (1, 1))
    assert not np.array_equal(auto[0], f4[0])
    np.testing.assert_allclose(auto[0], f4[0], **tolerance(np.float32, "winograd4"))


def test_fused_relu_pool_on_winograd4(restore_conv_settings):
    """The fused conv + ReLU (+ 2x2 max-pool) block, whose ReLU runs in the F(4x4) output rows,
    equals max_pool2d(relu(conv2d)) bitwise, and PyTorch within the F(4x4) bound."""
    rng = np.random.default_rng(3)
    x, w, b, dy = (lamina.tensor(a) for a in _case(rng, 3, 16, 13, 18, 20, (1, 1), np.float32))
    _C._conv_set_algo("winograd4")
    fused = F.conv2d_relu_max_pool2d(x, w, b, 1, 1).numpy()
    plain = F.max_pool2d(F.relu(F.conv2d(x, w, b, 1, 1)), 2).numpy()
    np.testing.assert_array_equal(fused, plain)
    ref = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(
        *(torch.tensor(t.numpy(), dtype=torch.float64) for t in (x, w, b)), padding=1)), 2).numpy()
    assert _rel_err(fused, ref) <= 5e-5


def test_compiled_3x3_network_is_bitwise_eager():
    """A small network of 64-channel 3x3 layers (F(4x4) forward and dx): three compiled SGD
    steps give exactly eager's losses and weights."""
    from lamina.graph import compile

    def net(seed):
        lamina.manual_seed(seed)
        m = lamina.nn.Sequential(lamina.nn.Conv2d(16, 64, 3, padding=1), lamina.nn.ReLU(),
                                 lamina.nn.Conv2d(64, 64, 3, padding=1), lamina.nn.ReLU(),
                                 lamina.nn.Flatten(), lamina.nn.Linear(64 * 16 * 16, 10))
        return m, lamina.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((4, 16, 16, 16)).astype(np.float32) for _ in range(3)]
    ys = [rng.integers(0, 10, 4) for _ in range(3)]
    me, oe = net(0)
    mc, oc = net(0)
    step = compile(mc, F.cross_entropy, oc)
    for x, y in zip(xs, ys):
        oe.zero_grad()
        loss = F.cross_entropy(me(lamina.from_numpy(x)), lamina.from_numpy(y))
        loss.backward()
        oe.step()
        assert step(x, y) == loss.item()
    for pe, pc in zip(me.parameters(), mc.parameters()):
        np.testing.assert_array_equal(pe.data, pc.data)


@pytest.mark.parametrize("pad", [(0, 0), (1, 1), (2, 1)])
@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("where", ["x", "dy", "w"])
def test_winograd4_non_finite_operand_takes_the_exact_path(where, bad, pad):
    """F(4x4) checks its outputs (y, dx rows; dw) instead of scanning the operands first: one
    inf or NaN anywhere -- a map corner, the last row of a partial edge tile (13x11 maps: OH,
    OW not multiples of 4) -- must still give the exact (im2col) path's y, dx, dw: the same
    pattern of infs and NaNs (which, at a padded edge, is not PyTorch's: im2col multiplies
    the padding's zeros), and its finite values within the F(4x4) bound."""
    rng = np.random.default_rng(11)
    N, C, H, W, K = 2, 6, 13, 11, 5
    for pos in ((0, 0), (H - 1, W - 1), (H - 1, 0), (6, 5)):
        x, w, b, dy = _case(rng, N, C, H, W, K, pad, np.float32)
        if where == "x":
            x[1, 2, pos[0], pos[1]] = bad
        elif where == "dy":
            dy[0, 3, min(pos[0], dy.shape[2] - 1), min(pos[1], dy.shape[3] - 1)] = bad
        else:
            w[3, 1, pos[0] % 3, pos[1] % 3] = bad
        with np.errstate(invalid="ignore", over="ignore"):
            got, ref = _run("winograd4", x, w, b, dy, pad), _run("im2col", x, w, b, dy, pad)
        for name, g, r in zip(("y", "dx", "dw", "db"), got, ref):
            reads = {"y": ("x", "w"), "dx": ("dy", "w"), "dw": ("x", "dy"), "db": ("dy",)}[name]
            assert np.isfinite(r).all() != (where in reads), (name, pos)  # the bad value reached it
            np.testing.assert_array_equal(np.isnan(g), np.isnan(r), err_msg=f"{name} {pos}")
            np.testing.assert_array_equal(np.isinf(g), np.isinf(r), err_msg=f"{name} {pos}")
            fin = np.isfinite(r)
            assert _rel_err(g[fin], r[fin].astype(np.float64)) <= 1e-4, (name, pos)
