"""Row Winograd F(4, 5) in the convolution backward (csrc/conv_direct_bwd.cpp): the weight
gradient as G^T [(B^T x) .* (A dy)] summed in the transform domain, and the data gradient as the
forward's row Winograd of dy over its live rows only, forced on wherever they apply by the
testing hook _conv_set_row_winograd('on') (automatically on AVX2 and on Zen 4's and Xeons'
AVX-512): against PyTorch, against float64, against the lane taps, across thread counts, with
inf/NaN, and through autograd against float64 finite differences."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import _C

torch = pytest.importorskip("torch")


def _grads(x, w, dy, pad):
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.empty(w.shape[0], x.dtype)
    _C.conv2d_backward(x, w, dy, dx, dw, db, (1, 1), (pad, pad), (1, 1), 1)
    return dx, dw, db


def _torch_grads(x, w, dy, pad):
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.zeros(w.shape[0], dtype=tw.dtype, requires_grad=True)
    torch.nn.functional.conv2d(tx, tw, tb, padding=pad).backward(torch.from_numpy(dy))
    return tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


def _arrays(case, dtype, seed):
    N, C, H, W, K, KH, pad = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((K, C, KH, 5)) / np.sqrt(C * KH * 5)).astype(dtype)
    dy = rng.standard_normal((N, K, H + 2 * pad - KH + 1, W + 2 * pad - 4)).astype(dtype)
    return x, w, dy


# (N, C, H, W, K, KH, pad): LeNet's C3 at the batches the brief names (1, 2, 3 and 17 stay off
# the lanes or part-fill a group); outputs 9 and 13 wide (the last tile part-used), 4 wide (one
# tile); a 3x5 filter; padding; K off the register blocks; C1's one channel.
CASES = [(64, 6, 14, 14, 16, 5, 0), (1, 6, 14, 14, 16, 5, 0), (2, 6, 14, 14, 16, 5, 0),
         (3, 6, 14, 14, 16, 5, 0), (17, 6, 14, 14, 16, 5, 0), (33, 3, 13, 12, 7, 5, 1),
         (16, 4, 9, 17, 5, 3, 2), (20, 2, 8, 8, 6, 5, 0), (18, 5, 11, 21, 24, 5, 0),
         (40, 1, 28, 28, 6, 5, 2)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "N{}C{}H{}W{}K{}KH{}p{}".format(*c))
def test_row_winograd_backward_matches_torch(case, dtype, restore_conv_settings):
    x, w, dy = _arrays(case, dtype, sum(case))
    ref = _torch_grads(*(a.astype(np.float64) for a in (x, w, dy)), case[-1])
    _C._conv_set_algo("direct")
    _C._conv_set_row_winograd("off")
    taps = _grads(x, w, dy, case[-1])
    _C._conv_set_row_winograd("on")
    got = _grads(x, w, dy, case[-1])
    # float32: sums of up to N*OH*OW products of unit size (dw), relative to the largest;
    # PyTorch's own float32 dw is off float64 by up to 2.5e-6 of it on these
    tol = 1e-13 if dtype == np.float64 else 5e-6
    for g, t, r in zip(got, taps, ref):
        scale = max(1.0, np.abs(r).max())
        np.testing.assert_allclose(g, r, rtol=0, atol=tol * scale)
        np.testing.assert_allclose(t, r, rtol=0, atol=tol * scale)
    np.testing.assert_array_equal(got[2], taps[2])   # db is summed as before, bitwise
    N, W, pad = case[0], case[3], case[-1]
    L = {"avx512": 16, "avx2+fma": 8}.get(_C.isa(), 0) // (2 if dtype == np.float64 else 1)
    lanes = -(-N // L) * L if L else 0
    # the batch in the lanes (conv_direct_bwd.cpp's use_batch_lanes for dw,
    # conv_direct_dx_lanes_applicable for dx): the transform's rounding differs from the
    # taps', so the forced paths did run
    if L and lanes * (W + 2 * pad - 4) <= N * (W + 2 * pad):
        assert not np.array_equal(got[1], taps[1])
    if L and lanes * W <= N * (W + 4):   # dx: W outputs from W + 2*pad - 4 + 2*(4 - pad) columns
        assert not np.array_equal(got[0], taps[0])


def test_row_winograd_dw_error_is_near_the_taps(restore_conv_settings):
    """Against float64, the transform domain's float32 dw error stays within 8x the taps' (C3 at
    N=64, measured 5.6x on Zen 4: the sums of 1920 positions run scaled by G's rows)."""
    x, w, dy = _arrays(CASES[0], np.float32, 3)
    ref = _torch_grads(x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64), 0)[1]
    _C._conv_set_algo("direct")
    err = {}
    for mode in ("off", "on"):
        _C._conv_set_row_winograd(mode)
        err[mode] = np.abs(_grads(x, w, dy, 0)[1] - ref).max()
    assert err["on"] < 8 * err["off"] + 1e-6, err
    assert err["on"] < 2e-6 * np.abs(ref).max(), err


def test_row_winograd_dw_threads_and_nonfinite(restore_conv_settings):
    x, w, dy = _arrays((70, 6, 14, 14, 16, 5, 0), np.float32, 4)
    _C._conv_set_algo("direct")
    _C._conv_set_row_winograd("on")
    out = []
    for t in (1, 2, 3):
        _C.set_num_threads(t)
        out.append(_grads(x, w, dy, 0))
    for o in out[1:]:
        for a, b in zip(out[0], o):
            np.testing.assert_array_equal(a, b)
    # an inf in x or dy of one group of lanes: that group takes the taps, so inf/NaN land where
    # PyTorch's sums put them, and the other groups' sums stay finite
    for bad_x in (True, False):
        xb, dyb = x.copy(), dy.copy()
        if bad_x:
            xb[3, 2, 6, 6] = np.inf
        else:
            dyb[40, 5, 4, 4] = -np.inf
        got = _grads(xb, w, dyb, 0)[1]
        ref = _torch_grads(xb.astype(np.float64), w.astype(np.float64), dyb.astype(np.float64), 0)[1]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
        fin = np.isfinite(ref)
        assert fin.any() and not fin.all()
        np.testing.assert_allclose(got[fin], ref[fin], rtol=0, atol=2e-6 * np.abs(ref[fin]).max())


def test_row_winograd_dx_nonfinite_and_error(restore_conv_settings):
    """dx: within 4x the taps' float32 error against float64; an inf or NaN in dy sends the call
    to the lane taps, so it reaches exactly the dx windows PyTorch's sums reach."""
    x, w, dy = _arrays((48, 6, 14, 14, 16, 5, 0), np.float32, 6)
    ref = _torch_grads(*(a.astype(np.float64) for a in (x, w, dy)), 0)[0]
    _C._conv_set_algo("direct")
    err = {}
    for mode in ("off", "on"):
        _C._conv_set_row_winograd(mode)
        err[mode] = np.abs(_grads(x, w, dy, 0)[0] - ref).max()
    assert err["on"] < 4 * err["off"] + 1e-7, err
    for bad in (np.inf, np.nan):
        dyb = dy.copy()
        dyb[7, 3, 5, 2] = bad
        got = _grads(x, w, dyb, 0)[0]
        refb = _torch_grads(*(a.astype(np.float64) for a in (x, w, dyb)), 0)[0]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(refb))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(refb))
        fin = np.isfinite(refb)
        assert not fin.all()
        np.testing.assert_allclose(got[fin], refb[fin], rtol=0, atol=5e-6 * np.abs(refb[fin]).max())


def test_row_winograd_dw_matches_finite_differences(restore_conv_settings):
    """conv2d in autograd, float64, dx and dw on the forced transform paths: central differences
    of a weighted sum of the output."""
    _C._conv_set_algo("direct")
    _C._conv_set_row_winograd("on")
    rng = np.random.default_rng(12)
    N, C, H, W, K = 16, 5, 10, 13, 6   # a float64 batch that fills the lanes (dx and dw)
    xs = rng.standard_normal((N, C, H, W))
    ws = rng.standard_normal((K, C, 5, 5)) * 0.2
    gy = rng.standard_normal((N, K, H - 4, W - 4))

    def loss(wa):
        y = F.conv2d(lamina.from_numpy(xs), lamina.from_numpy(wa))
        return float((y.detach().numpy() * gy).sum())

    def loss_x(xa):
        y = F.conv2d(lamina.from_numpy(xa), lamina.from_numpy(ws))
        return float((y.detach().numpy() * gy).sum())

    x = lamina.tensor(xs, requires_grad=True)
    w = lamina.tensor(ws, requires_grad=True)
    (F.conv2d(x, w) * lamina.from_numpy(gy)).sum().backward()
    eps = 1e-6
    for arr, grad, f in ((ws, w.grad.numpy(), loss), (xs, x.grad.numpy(), loss_x)):
        for idx in [tuple(rng.integers(0, s) for s in arr.shape) for _ in range(8)]:
            a1, a2 = arr.copy(), arr.copy()
            a1[idx] += eps
            a2[idx] -= eps
            fd = (f(a1) - f(a2)) / (2 * eps)
            assert abs(fd - grad[idx]) <= 1e-6 * max(1.0, abs(fd)), (idx, fd, grad[idx])
