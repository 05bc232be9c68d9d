"""Row Winograd F(4, 5) on the lane path (csrc/conv_direct_lane.h), forced on wherever it
applies by the testing hook _conv_set_row_winograd('on'): against PyTorch, against float64
finite differences, against the lane taps, and inside the fused conv block."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import _C

from conv_block_check import assert_fused_block_is_bitwise_the_unfused_ops

torch = pytest.importorskip("torch")

def _conv(x, w, b, pad):
    y = F.conv2d(lamina.from_numpy(x), lamina.from_numpy(w), None if b is None else lamina.from_numpy(b), padding=pad)
    return y.detach().numpy()


def _torch_conv(x, w, b, pad):
    return torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                      None if b is None else torch.from_numpy(b), padding=pad).numpy()


# (N, C, H, W, K, KH, pad): LeNet's C3; batches past and off the lanes; outputs 9 and 13 wide
# (the last 4-wide tile part-used), 4 wide (one tile); a 3x5 filter (rows summed as taps); K off
# the register blocks (5, 6, 7, 24); padding.
CASES = [(64, 6, 14, 14, 16, 5, 0), (17, 6, 14, 14, 16, 5, 0), (33, 3, 13, 12, 7, 5, 1),
         (16, 4, 9, 17, 5, 3, 2), (20, 2, 8, 8, 6, 5, 0), (18, 5, 11, 21, 24, 5, 0), (16, 1, 6, 8, 3, 1, 0)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "N{}C{}H{}W{}K{}KH{}p{}".format(*c))
def test_row_winograd_forward_matches_torch(case, dtype, restore_conv_settings):
    N, C, H, W, K, KH, pad = case
    rng = np.random.default_rng(N + 10 * C + K)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((K, C, KH, 5)) / np.sqrt(C * KH * 5)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    _C._conv_set_algo("direct")
    _C._conv_set_row_winograd("off")
    taps = _conv(x, w, b, pad)
    _C._conv_set_row_winograd("on")
    y = _conv(x, w, b, pad)
    y_nobias = _conv(x, w, None, pad)
    ref = _torch_conv(x, w, b, pad)
    assert y.shape == ref.shape
    # float32: sums of C*KH*5 products of unit size; F(4, 5) rounds about twice the taps' error
    tol = 2e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(y_nobias, _torch_conv(x, w, None, pad), rtol=tol, atol=tol)
    np.testing.assert_allclose(taps, ref, rtol=tol, atol=tol)
    if _C.isa() != "portable":   # (the portable build has no lane kernels: taps alone)
        # the transform's rounding differs from the taps': the forced path did run
        assert not np.array_equal(y, taps)


def test_row_winograd_error_is_near_the_taps(restore_conv_settings):
    """Against a float64 reference, F(4, 5)'s float32 error stays within 4x the taps' (measured
    about 2x in 1-D; 2-D F(4x4, 5x5) would be over 10x)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 6, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((16, 6, 5, 5)) / np.sqrt(150)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    ref = _torch_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 0)
    _C._conv_set_algo("direct")
    err = {}
    for mode in ("off", "on"):
        _C._conv_set_row_winograd(mode)
        err[mode] = np.abs(_conv(x, w, b, 0) - ref).max()
    assert err["on"] < 4 * err["off"] + 1e-7, err


def test_row_winograd_threads_and_nonfinite(restore_conv_settings):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((40, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    _C._conv_set_algo("direct")
    _C._conv_set_row_winograd("on")
    out = []
    for t in (1, 2):
        _C.set_num_threads(t)
        out.append(_conv(x, w, b, 0))
    np.testing.assert_array_equal(out[0], out[1])
    # a NaN reaches (at least) every output whose window holds it, and nothing in other images
    x[3, 2, 6, 6] = np.nan
    y = _conv(x, w, b, 0)
    assert np.isnan(y[3, :, 2:7, 2:7]).all()
    assert not np.isnan(np.delete(y, 3, axis=0)).any()


def test_row_winograd_gradients_match_finite_differences_and_torch(restore_conv_settings):
    """The forward on this path inside autograd (the backward's dx and dw too, by the same hook:
    test_conv_row_winograd_backward.py): float64 central differences of a weighted sum, and
    torch's gradients."""
    _C._conv_set_algo("direct")
    _C._conv_set_row_winograd("on")
    rng = np.random.default_rng(11)
    N, C, H, W, K = 16, 3, 9, 11, 4
    xs = rng.standard_normal((N, C, H, W))
    ws = rng.standard_normal((K, C, 5, 5)) * 0.2
    bs = rng.standard_normal(K)
    gy = rng.standard_normal((N, K, H + 2 - 4, W + 2 - 4))

    def loss(xa, wa, ba):
        return float((_conv(xa, wa, ba, 1) * gy).sum())

    x, w, b = (lamina.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    (F.conv2d(x, w, b, padding=1) * lamina.from_numpy(gy)).sum().backward()
    eps = 1e-6
    for arr, grad in ((xs, x.grad.numpy()), (ws, w.grad.numpy()), (bs, b.grad.numpy())):
        for idx in [tuple(rng.integers(0, s) for s in arr.shape) for _ in range(6)]:
            a1, a2 = arr.copy(), arr.copy()
            a1[idx] += eps
            a2[idx] -= eps
            args1 = [a1 if arr is a else a for a in (xs, ws, bs)]
            args2 = [a2 if arr is a else a for a in (xs, ws, bs)]
            fd = (loss(*args1) - loss(*args2)) / (2 * eps)
            assert abs(fd - grad[idx]) <= 1e-6 * max(1.0, abs(fd)), (idx, fd, grad[idx])
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    (torch.nn.functional.conv2d(tx, tw, tb, padding=1) * torch.from_numpy(gy)).sum().backward()
    for got, t in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(got.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N", [33, 16])
def test_fused_block_on_row_winograd_is_bitwise_the_unfused_ops(N, dtype, restore_conv_settings):
    """conv + bias + ReLU + pool fused (the compiled LeNet's block) and the three eager ops take
    the same row Winograd sums: bitwise the same values and gradients, and PyTorch's within tolerance."""
    _C._conv_set_row_winograd("on")
    rng = np.random.default_rng(N)
    arrays = [rng.standard_normal((N, 6, 14, 14)), rng.standard_normal((16, 6, 5, 5)) * 0.1,
              rng.standard_normal(16) * 0.1]
    arrays = [a.astype(dtype) for a in arrays]
    out = assert_fused_block_is_bitwise_the_unfused_ops(arrays, dtype)
    tx, tw, tb = (torch.from_numpy(a) for a in arrays)
    ref = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(tx, tw, tb)), 2).numpy()
    tol = 2e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


def test_row_winograd_hook_rejects_bad_mode():
    with pytest.raises(ValueError, match="mode: expected 'auto', 'on' or 'off', got 'yes'"):
        _C._conv_set_row_winograd("yes")


def test_automatic_rule_takes_row_winograd_where_measured(restore_conv_settings):
    """LeNet's C3 at a batch that fills the lanes: the automatic rule runs row Winograd on AVX2
    (8 lanes; measured on Zen 4 with AVX-512 hidden) and on AMD's and Intel's AVX-512, the taps
    elsewhere --
    bitwise the forced path's forward, dx and dw either way."""
    rng = np.random.default_rng(21)
    x = rng.standard_normal((24, 6, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((16, 6, 5, 5)) / np.sqrt(150)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    dy = rng.standard_normal((24, 16, 10, 10)).astype(np.float32)

    def run(mode):
        _C._conv_set_row_winograd(mode)
        y = np.empty((24, 16, 10, 10), np.float32)
        dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
        _C.conv2d_forward(x, w, b, y, (1, 1), (0, 0), (1, 1), 1)
        _C.conv2d_backward(x, w, dy, dx, dw, db, (1, 1), (0, 0), (1, 1), 1)
        return y, dx, dw

    auto, on, off = run("auto"), run("on"), run("off")
    wino = _C.isa() == "avx2+fma" or (_C.isa() == "avx512" and
                                      _C.cpu_info()["vendor"] in ("AuthenticAMD", "GenuineIntel"))
    for a, o, f in zip(auto, on, off):
        np.testing.assert_array_equal(a, o if wino else f)
        if _C.isa() != "portable":
            assert not np.array_equal(o, f)


@pytest.mark.parametrize("wino", ["on", "off"])
def test_lane_gather_hook_same_bits(wino, restore_conv_settings):
    """The AVX-512 f32 lane gather by in-register transposes (Zen 4's choice) and by vgatherdps
    (Xeons' choice, a measured tie there) put the same values in the lanes: forward and fused
    conv block bitwise equal, with a last lane group of 8 of 16 images and odd strides of x."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 6, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((16, 6, 5, 5)) / np.sqrt(150)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    _C._conv_set_row_winograd(wino)

    def run(mode):
        _C._conv_set_lane_gather(mode)
        y = np.empty((40, 16, 10, 10), np.float32)
        yp, code = np.empty((40, 16, 5, 5), np.float32), np.empty((40, 16, 5, 5), np.uint8)
        _C.conv2d_forward(x, w, b, y, (1, 1), (0, 0), (1, 1), 1)
        _C.conv2d_relu_max_pool2d_forward(x, w, b, yp, code, (1, 1), (0, 0), (1, 1), 1)
        return y, yp, code

    t, g = run("transpose"), run("vgather")
    for a, c in zip(t, g):
        np.testing.assert_array_equal(a, c)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(t[0], ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="mode: expected 'auto', 'transpose' or 'vgather', got 'x'"):
        _C._conv_set_lane_gather("x")
