"""Convolution backward on the direct weight-gradient path (few input channels): dw, dx and db
against PyTorch and float64 finite differences over odd shapes, each forced path, 1 and 2
threads; dw bit-identical across thread counts; the compiled LeNet-5 step skips C1's dx."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import _C

torch = pytest.importorskip("torch")


def _grads(x, w, dy, pad):
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(w.shape[0], x.dtype)
    _C.conv2d_backward(x, w, dy, dx, dw, db, (1, 1), pad, (1, 1), 1)
    return dx, dw, db


def _torch_grads(x, w, dy, pad):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = torch.zeros(w.shape[0], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.conv2d(xt, wt, bt, padding=pad).backward(torch.tensor(dy, dtype=torch.float64))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def _inputs(rng, dt, N, C, H, W, K, kh, kw, pad):
    x = rng.standard_normal((N, C, H, W)).astype(dt)
    w = rng.standard_normal((K, C, kh, kw)).astype(dt)
    OH, OW = H + 2 * pad[0] - kh + 1, W + 2 * pad[1] - kw + 1
    dy = rng.standard_normal((N, K, OH, OW)).astype(dt)
    return x, w, dy


# (N, C, H, W, K, kh, kw, pad): C = 1..8, K = 1..20, odd sizes, pads 0..3, non-square kernels.
SHAPES = [(1, 1, 28, 28, 6, 5, 5, (2, 2)), (3, 6, 14, 14, 16, 5, 5, (0, 0)), (1, 1, 5, 7, 1, 3, 3, (0, 1)),
          (2, 3, 9, 11, 7, 3, 3, (3, 3)), (5, 8, 7, 13, 20, 3, 5, (1, 2)), (2, 2, 11, 9, 13, 5, 3, (2, 0)),
          (4, 5, 6, 6, 9, 2, 2, (1, 3)), (1, 4, 17, 3, 5, 4, 1, (0, 2)),
          # batches that fill the SIMD lanes (whole and partial groups of 16 / 8 images)
          (32, 1, 12, 11, 6, 5, 5, (2, 2)), (19, 6, 9, 10, 16, 5, 3, (0, 1)), (17, 3, 7, 7, 5, 3, 3, (3, 0))]


@pytest.mark.parametrize("algo", ["direct", "auto", "im2col"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_backward_matches_torch(algo, dt, threads, restore_conv_settings):
    _C._conv_set_algo(algo)
    _C.set_num_threads(threads)
    rng = np.random.default_rng(15)
    tol = 2e-5 if dt == np.float32 else 1e-12
    for N, C, H, W, K, kh, kw, pad in SHAPES:
        x, w, dy = _inputs(rng, dt, N, C, H, W, K, kh, kw, pad)
        got = _grads(x, w, dy, pad)
        ref = _torch_grads(x, w, dy, pad)
        for name, g, r in zip(("dx", "dw", "db"), got, ref):
            err = np.abs(g - r).max() / max(1.0, np.abs(r).max())
            assert err <= tol, (name, algo, dt.__name__, (N, C, H, W, K, kh, kw, pad), err)


def test_dw_only_and_dx_only_agree_with_all(restore_conv_settings):
    _C._conv_set_algo("direct")
    x, w, dy = _inputs(np.random.default_rng(3), np.float64, 3, 6, 14, 13, 16, 5, 5, (1, 2))
    dx, dw, db = _grads(x, w, dy, (1, 2))
    dw2, dx2 = np.full_like(w, 7), np.full_like(x, 7)
    _C.conv2d_backward(x, w, dy, None, dw2, None, (1, 1), (1, 2), (1, 1), 1)
    _C.conv2d_backward(x, w, dy, dx2, None, None, (1, 1), (1, 2), (1, 1), 1)
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(dx2, dx)


def test_dw_matches_finite_differences(restore_conv_settings):
    """dL/dw of L = sum(conv(x, w) * dy), float64 central differences, on the direct path."""
    _C._conv_set_algo("direct")
    rng = np.random.default_rng(9)
    pad = (2, 1)
    x, w, dy = _inputs(rng, np.float64, 2, 3, 6, 7, 4, 3, 3, pad)
    _, dw, _ = _grads(x, w, dy, pad)

    def loss(wv):
        y = np.empty_like(dy)
        _C.conv2d_forward(x, wv, None, y, (1, 1), pad, (1, 1), 1)
        return float((y * dy).sum())

    h = 1e-6
    fd = np.empty_like(w)
    for i in range(w.size):
        wp, wm = w.copy(), w.copy()
        wp.flat[i] += h
        wm.flat[i] -= h
        fd.flat[i] = (loss(wp) - loss(wm)) / (2 * h)
    np.testing.assert_allclose(dw, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(37, 6, 14, 14, 16, 5, 5, (0, 0)), (19, 1, 28, 28, 6, 5, 5, (2, 2)),
                                   (48, 6, 14, 14, 16, 5, 5, (0, 0))])
def test_dw_does_not_depend_on_thread_count(shape, restore_conv_settings):
    """dw: a fixed number of chunks summed in order; dx: independent groups of images. Same
    bits at 1 and 2 threads (N = 48: dx with the batch in the lanes too)."""
    _C._conv_set_algo("auto")
    x, w, dy = _inputs(np.random.default_rng(5), np.float32, *shape)
    out = {}
    for threads in (1, 2):
        _C.set_num_threads(threads)
        out[threads] = _grads(x, w, dy, shape[-1])
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)


def test_empty_batch_gives_zero_gradients(restore_conv_settings):
    _C._conv_set_algo("direct")
    x = np.ones((0, 2, 7, 7), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    dy = np.ones((0, 3, 7, 7), np.float32)
    dw, db = np.full_like(w, 7), np.full(3, 7, np.float32)
    _C.conv2d_backward(x, w, dy, None, dw, db, (1, 1), (1, 1), (1, 1), 1)
    assert not dw.any() and not db.any()


def test_compiled_lenet_skips_the_input_gradient_of_c1():
    """C1's input is the batch (needs no gradient): its conv2d_bwd computes dw and db only."""
    m = lamina.models.lenet5()
    opt = lamina.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    step = lamina.compile(m, F.cross_entropy, opt)
    rng = np.random.default_rng(0)
    step(rng.standard_normal((8, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 8))
    has = {n.attrs.params.C: n.attrs.has for n in step.graph.nodes if n.op == "conv2d_bwd"}
    assert has == {1: (False, True, True), 6: (True, True, True)}


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(48, 6, 14, 14, 16, 5, 5, (0, 0)), (37, 1, 28, 28, 6, 5, 5, (2, 2)),
                                   (17, 6, 13, 11, 8, 5, 3, (1, 2))])
def test_db_summed_beside_dw_is_bitwise_db_alone(shape, dt, restore_conv_settings):
    """With the batch in the lanes, db is summed from the transposed dy inside the direct dw
    pass (whole and partial groups of images); it must be the same bits as db alone (its own
    loop over NCHW dy), and close to PyTorch's."""
    _C._conv_set_algo("auto")
    x, w, dy = _inputs(np.random.default_rng(11), dt, *shape)
    pad = shape[-1]
    dy[0, 0].flat[::5] *= 1e7          # large and small terms: a different sum order would show
    dw, db = np.empty_like(w), np.full(w.shape[0], np.nan, dt)
    _C.conv2d_backward(x, w, dy, None, dw, db, (1, 1), pad, (1, 1), 1)
    db_alone = np.full_like(db, np.nan)
    _C.conv2d_backward(x, w, dy, None, None, db_alone, (1, 1), pad, (1, 1), 1)
    np.testing.assert_array_equal(db, db_alone)
    scale = np.abs(dy.astype(np.float64)).sum(axis=(0, 2, 3))
    err = np.abs(db - dy.astype(np.float64).sum(axis=(0, 2, 3))) / scale
    assert err.max() <= (1e-6 if dt == np.float32 else 1e-14), err


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_one_channel_dx_and_forward_match_im2col_and_torch(dt, restore_conv_settings):
    """C1's data gradient (6 -> 1 channel; wide rows with a 1 x 14 kernel on Intel AVX-512, lanes
    or im2col elsewhere) and a 1-channel forward, at an odd batch (a partial lane group, a row
    block not a multiple of 14 vectors at 13x13): against float64 torch, against im2col + GEMM, and
    bitwise the same at 1 and 2 threads."""
    rng = np.random.default_rng(41)
    tol = 2e-5 if dt == np.float32 else 1e-12
    for N, H, W, pad in ((37, 28, 28, (2, 2)), (19, 13, 13, (2, 2)), (17, 12, 9, (1, 0))):
        x, w, dy = _inputs(rng, dt, N, 1, H, W, 6, 5, 5, pad)
        ref = _torch_grads(x, w, dy, pad)[0]
        yref = torch.nn.functional.conv2d(torch.tensor(dy, dtype=torch.float64),
                                          torch.tensor(w, dtype=torch.float64).flip(2, 3).transpose(0, 1),
                                          padding=(4 - pad[0], 4 - pad[1])).numpy()
        out = {}
        for algo, threads in (("auto", 1), ("auto", 2), ("im2col", 1)):
            _C._conv_set_algo(algo)
            _C.set_num_threads(threads)
            dx = np.full_like(x, np.nan)
            _C.conv2d_backward(x, w, dy, dx, None, None, (1, 1), pad, (1, 1), 1)
            # the same transposed convolution as a forward with one output channel
            wf = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            y = np.full((N, 1, H, W), np.nan, dt)
            _C.conv2d_forward(dy, wf, None, y, (1, 1), (4 - pad[0], 4 - pad[1]), (1, 1), 1)
            out[algo, threads] = dx, y
        for key, (dx, y) in out.items():
            for name, g, r in (("dx", dx, ref), ("fwd", y, yref)):
                err = np.abs(g - r).max() / max(1.0, np.abs(r).max())
                assert err <= tol, (name, key, dt.__name__, (N, H, W, pad), err)
        for a, b in zip(out["auto", 1], out["auto", 2]):
            np.testing.assert_array_equal(a, b)
