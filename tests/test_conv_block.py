"""Batch-lane direct convolution (csrc/conv_direct_lane.h) and the fused conv blocks."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F

from conv_block_check import assert_fused_block_is_bitwise_the_unfused_ops

torch = pytest.importorskip("torch")

# (N, C, H, K, pad): LeNet's C1 and C3, batches that fill, miss and overrun the lanes (16 f32,
# 8 f64 on AVX-512; 8 and 4 on AVX2), channel counts off the register blocks (5, 7).
LANE_CASES = [(64, 6, 14, 16, 0), (17, 1, 28, 6, 2), (33, 3, 12, 5, 1), (16, 2, 9, 7, 2), (8, 6, 14, 16, 0)]


def _conv(x, w, b, pad, act=None):
    y = F.conv2d(lamina.from_numpy(x), lamina.from_numpy(w), None if b is None else lamina.from_numpy(b), padding=pad)
    return (F.relu(y) if act == "relu" else y).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", LANE_CASES, ids=lambda c: "N{}C{}H{}K{}p{}".format(*c))
def test_lane_path_is_bitwise_the_per_image_path_and_matches_torch(case, dtype, restore_conv_settings):
    """A batch (lanes over images) gives exactly what each image alone gives (the wide-row
    path, N = 1): the same taps summed in the same order, the bias added last. (Row Winograd,
    which the rule may pick for these batches on some CPUs, rounds otherwise: off here, tested
    in test_conv_row_winograd.py.)"""
    lamina._C._conv_set_row_winograd("off")
    N, C, H, K, pad = case
    rng = np.random.default_rng(N * 7 + C)
    x = rng.standard_normal((N, C, H, H)).astype(dtype)
    w = rng.standard_normal((K, C, 5, 5)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    y = _conv(x, w, b, pad)
    alone = np.concatenate([_conv(x[i:i + 1], w, b, pad) for i in range(N)])
    np.testing.assert_array_equal(y, alone)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=pad)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y, ref.numpy(), rtol=tol, atol=tol)
    np.testing.assert_array_equal(_conv(x, w, None, pad), np.concatenate([_conv(x[i:i + 1], w, None, pad)
                                                                          for i in range(N)]))


def test_lane_path_is_thread_count_independent():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((80, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    threads = lamina.get_num_threads()
    try:
        out = []
        for t in (1, 2):
            lamina.set_num_threads(t)
            out.append(_conv(x, w, b, 0))
    finally:
        lamina.set_num_threads(threads)
    np.testing.assert_array_equal(out[0], out[1])


def test_lane_path_keeps_nan_and_inf():
    """Non-finite inputs reach exactly the outputs whose windows hold them."""
    x = np.zeros((16, 1, 10, 10), np.float32)
    x[3, 0, 4, 4] = np.nan
    x[5, 0, 0, 0] = np.inf
    w = np.ones((6, 1, 5, 5), np.float32)
    y = _conv(x, w, None, 2)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=2).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(y[np.isfinite(ref)], ref[np.isfinite(ref)])
    assert np.isnan(y[3]).sum() == 6 * 25 and np.isfinite(np.delete(y, [3, 5], axis=0)).all()


# ---------------------------------------------------------------- the fused kernels
def _unfused(x, w, b, pad, dy):
    """conv + relu, 2x2 max pool, and back: the kernels the fused block replaces."""
    from lamina import _C
    N, K, OH = x.shape[0], w.shape[0], x.shape[2] + 2 * pad - w.shape[2] + 1
    z = np.empty((N, K, OH, OH), x.dtype)
    _C.conv2d_forward(x, w, b, z, (1, 1), (pad, pad), (1, 1), 1)
    z = np.where(z < 0, x.dtype.type(0), z)
    P = OH // 2
    y, idx = np.empty((N, K, P, P), x.dtype), np.empty((N, K, P, P), np.int64)
    _C.max_pool2d_forward(z, y, idx, (2, 2), (2, 2), (0, 0), (1, 1), False)
    g = np.empty_like(z)
    _C.max_pool2d_backward(dy, idx, g, (2, 2), (2, 2), (0, 0), (1, 1), False)
    dz = np.empty_like(z)
    _C.act_backward("relu", z, z, g, dz, 0.01)
    return y, dz


def _fused(x, w, b, pad, dy):
    from lamina import _C
    OH = x.shape[2] + 2 * pad - w.shape[2] + 1
    y = np.empty((x.shape[0], w.shape[0], OH // 2, OH // 2), x.dtype)
    code = np.empty(y.shape, np.uint8)
    _C.conv2d_relu_max_pool2d_forward(x, w, b, y, code, (1, 1), (pad, pad), (1, 1), 1)
    dz = np.full((x.shape[0], w.shape[0], OH, OH), np.nan, x.dtype)
    _C.relu_max_pool2d_backward(dy, code, dz)
    return y, dz, code


# odd conv outputs (13 -> 9: floor drops the last row and column), small batches (no lane path),
# and pooled rows of 8 or more windows (the vector backward: 12 in one step, 17 in 16 + 1, odd)
BLOCK_CASES = LANE_CASES + [(33, 3, 13, 5, 1), (3, 2, 9, 7, 2), (4, 1, 24, 2, 2), (3, 2, 39, 3, 0)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", BLOCK_CASES, ids=lambda c: "N{}C{}H{}K{}p{}".format(*c))
def test_fused_block_is_bitwise_the_unfused_kernels(case, dtype):
    N, C, H, K, pad = case
    rng = np.random.default_rng(N + 100 * C)
    x = rng.standard_normal((N, C, H, H)).astype(dtype)
    w = rng.standard_normal((K, C, 5, 5)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    P = (H + 2 * pad - 4) // 2
    dy = rng.standard_normal((N, K, P, P)).astype(dtype)
    dy.flat[::7] = -0.0   # lands as +0 (zero-then-add), which assert_array_equal alone would not see
    y0, dz0 = _unfused(x, w, b, pad, dy)
    y1, dz1, code = _fused(x, w, b, pad, dy)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(dz1, dz0)
    np.testing.assert_array_equal(np.signbit(dz1), np.signbit(dz0))
    assert not (np.signbit(dz1) & (dz1 == 0)).any()   # no -0 cell
    assert set(np.unique(code)) <= {0, 1, 2, 3, 4}
    # against PyTorch: max_pool2d(relu(conv2d)) and its gradient at the conv output
    xt = torch.from_numpy(x)
    z = torch.nn.functional.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), padding=pad).requires_grad_()
    yt = torch.nn.functional.max_pool2d(torch.relu(z), 2)
    yt.backward(torch.from_numpy(dy))
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y1, yt.detach().numpy(), rtol=tol, atol=tol)
    # the gradient's positions can differ from PyTorch only where near-ties round differently
    agree = (dz1 == z.grad.numpy()).mean()
    assert agree > 0.999


def test_fused_block_ties_zero_and_nonfinite():
    """Ties go to the first max in row-major window order; a window whose max is <= 0 passes
    no gradient (relu'(0) = 0); NaN wins the pool and passes its gradient; -0 gradients land as +0."""
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 0, :2] = [2.0, 2.0]                      # tie in window (0, 0): the first wins
    x[0, 0, 1, 2:] = [-1.0, -3.0]                    # window (0, 1): max is 0 after relu -> code 4
    x[0, 0, 3, 3] = np.nan                           # window (1, 1): NaN wins
    x[0, 0, 2, :2] = [1.0, 5.0]                      # window (1, 0): the max at position 1
    w = np.ones((1, 1, 1, 1), np.float32)
    dy = np.array([[[[-0.0, 7.0], [3.0, 4.0]]]], np.float32)
    y, dz, code = _fused(x, w, None, 0, dy)
    y0, dz0 = _unfused(x, w, None, 0, dy)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(dz, dz0)
    assert code.ravel().tolist() == [0, 4, 1, 3]
    assert np.isnan(y[0, 0, 1, 1]) and dz[0, 0, 3, 3] == 4.0
    assert dz[0, 0, 0, 0] == 0 and not np.signbit(dz[0, 0, 0, 0])
    assert (dz[0, 0, :2, 2:] == 0).all()


def test_fused_block_bad_input():
    from lamina import _C
    x, w = np.ones((2, 1, 8, 8), np.float32), np.ones((3, 1, 5, 5), np.float32)
    y = np.empty((2, 3, 2, 2), np.float32)
    with pytest.raises(TypeError, match="code: expected dtype uint8"):
        _C.conv2d_relu_max_pool2d_forward(x, w, None, y, np.empty((2, 3, 2, 2), np.int64), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="out"):
        _C.conv2d_relu_max_pool2d_forward(x, w, None, np.empty((2, 3, 4, 4), np.float32),
                                          np.empty((2, 3, 2, 2), np.uint8), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="at least 2x2"):
        _C.conv2d_relu_max_pool2d_forward(np.ones((2, 1, 5, 5), np.float32), w, None, np.empty((2, 3, 0, 0), np.float32),
                                          np.empty((2, 3, 0, 0), np.uint8), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="code"):
        _C.relu_max_pool2d_backward(np.ones((2, 3, 2, 2), np.float32), np.zeros((2, 3, 3, 2), np.uint8),
                                    np.empty((2, 3, 4, 4), np.float32))


# ---------------------------------------------------------------- the compiled graph
def _lenet(batch, seed=0, dtype=np.float32):
    lamina.manual_seed(seed)
    model = lamina.models.lenet5()
    if dtype == np.float64:
        model = model.double()
    opt = lamina.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return model, opt


@pytest.mark.parametrize("batch", [32, 5])
@pytest.mark.parametrize("executor", ["native", "python"])
def test_compiled_lenet_fuses_conv_blocks_and_stays_bitwise_eager(batch, executor):
    """Both conv + relu + pool blocks fuse (forward and backward), and five compiled training
    steps give exactly eager's losses and weights."""
    from lamina.graph import compile
    rng = np.random.default_rng(batch)
    xs = [rng.standard_normal((batch, 1, 28, 28)).astype(np.float32) for _ in range(5)]
    ys = [rng.integers(0, 10, batch) for _ in range(5)]
    me, oe = _lenet(batch)
    mc, oc = _lenet(batch)
    step = compile(mc, F.cross_entropy, oc, executor=executor)
    for x, y in zip(xs, ys):
        oe.zero_grad()
        loss = F.cross_entropy(me(lamina.from_numpy(x)), lamina.from_numpy(y))
        loss.backward()
        oe.step()
        assert step(x, y) == loss.item()
    ops = [n.op for n in step.graph.nodes]
    assert ops.count("conv_block_fwd") == 2 and ops.count("conv_block_bwd") == 2
    assert "max_pool_fwd" not in ops and "max_pool_bwd" not in ops
    for pe, pc in zip(me.parameters(), mc.parameters()):
        np.testing.assert_array_equal(pe.data, pc.data)


def test_block_not_fused_when_the_conv_output_is_read_elsewhere():
    from lamina.graph import compile

    class Two(lamina.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = lamina.nn.Conv2d(1, 4, 3)
            self.fc = lamina.nn.Linear(4 * 3 * 3 + 4 * 6 * 6, 10)

        def forward(self, x):
            z = F.relu(self.conv(x))
            p = F.max_pool2d(z, 2)
            return self.fc(lamina.cat([p.flatten(1), z.flatten(1)], 1))

    lamina.manual_seed(0)
    m = Two()
    step = compile(m, F.cross_entropy, lamina.optim.SGD(m.parameters(), lr=0.1))
    rng = np.random.default_rng(0)
    step(rng.standard_normal((4, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 4))
    ops = [n.op for n in step.graph.nodes]
    assert "conv_block_fwd" not in ops and "max_pool_fwd" in ops


@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_compiled_forward_fuses_too():
    from lamina.graph import compile
    m, _ = _lenet(16)
    m.eval()
    f = compile(m)
    x = np.random.default_rng(0).standard_normal((16, 1, 28, 28)).astype(np.float32)
    out = f(x)
    assert [n.op for n in f.graph.nodes].count("conv_block_fwd") == 2
    np.testing.assert_array_equal(np.asarray(out.detach().numpy()), m(lamina.from_numpy(x)).detach().numpy())


# ---------------------------------------------------------------- eager: F.conv2d_relu_max_pool2d
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N", [17, 2])
def test_eager_fused_block_is_bitwise_the_three_ops(N, dtype):
    rng = np.random.default_rng(N)
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((N, 6, 14, 14), (16, 6, 5, 5), (16,))]
    assert_fused_block_is_bitwise_the_unfused_ops(arrays, dtype)


def test_eager_fused_block_errors_name_the_argument():
    x, w = lamina.ones(2, 1, 4, 4), lamina.ones(3, 1, 3, 3)
    with pytest.raises(ValueError, match="smaller than the 2x2 pool window"):
        F.conv2d_relu_max_pool2d(x, lamina.ones(3, 1, 4, 4))
    with pytest.raises(ValueError, match="input: expected a 4-D"):
        F.conv2d_relu_max_pool2d(lamina.ones(1, 8, 8), w)
    with pytest.raises(TypeError, match="weight"):
        F.conv2d_relu_max_pool2d(lamina.ones(1, 1, 8, 8), lamina.ones(3, 1, 3, 3, dtype=lamina.float64))


def test_fused_block_is_thread_count_independent():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((70, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    dy = rng.standard_normal((70, 16, 5, 5)).astype(np.float32)
    threads = lamina.get_num_threads()
    try:
        out = []
        for t in (1, 2):
            lamina.set_num_threads(t)
            out.append(_fused(x, w, b, 0, dy))
    finally:
        lamina.set_num_threads(threads)
    for a, c in zip(*out):
        np.testing.assert_array_equal(a, c)


def test_compiled_float64_lenet_with_a_ragged_batch_is_bitwise_eager():
    from lamina.graph import compile
    rng = np.random.default_rng(4)
    x = rng.standard_normal((19, 1, 28, 28))
    y = rng.integers(0, 10, 19)
    me, oe = _lenet(19, dtype=np.float64)
    mc, oc = _lenet(19, dtype=np.float64)
    step = compile(mc, F.cross_entropy, oc)
    for _ in range(3):
        oe.zero_grad()
        loss = F.cross_entropy(me(lamina.from_numpy(x)), lamina.from_numpy(y))
        loss.backward()
        oe.step()
        assert step(x, y) == loss.item()
    assert [n.op for n in step.graph.nodes].count("conv_block_fwd") == 2
    for pe, pc in zip(me.parameters(), mc.parameters()):
        np.testing.assert_array_equal(pe.data, pc.data)
