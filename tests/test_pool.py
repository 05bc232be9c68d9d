"""Pooling: forward and gradients against PyTorch, float64 gradcheck, the exact tie / NaN rules,
adaptive windows, modules, and bad arguments."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina.autograd import gradcheck

from conftest import helper_test_op, requires_torch

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


def _compare(lamina_fn, torch_fn, x, dtype, seed=0):
    """Same input into both; the output and the gradient of sum(y * v)."""
    helper_test_op(None, lamina_fn, torch_fn, dtype=dtype, seed=seed, tol=TOL[dtype], inputs=[x.astype(dtype)])


# (N, C, H, W), kernel, stride, padding, dilation, ceil_mode
MAX_GRID = [
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((1, 6, 28, 28), 2, None, 0, 1, False),
    ((2, 3, 7, 9), 3, 2, 1, 1, False),        # odd, non-square, padded
    ((2, 2, 7, 9), 3, 2, 1, 1, True),         # ceil mode
    ((1, 3, 10, 11), (2, 3), (1, 2), (1, 1), 2, False),  # dilation, tuples
    ((3, 1, 5, 5), 2, 1, 0, 1, True),         # overlapping windows
    ((2, 4, 9, 7), 3, 3, 0, 1, True),         # window does not tile evenly
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,k,s,p,d,ceil", MAX_GRID)
def test_max_pool2d_matches_torch(shape, k, s, p, d, ceil, dtype):
    torch = requires_torch()
    x = np.random.default_rng(1).standard_normal(shape)
    _compare(lambda t: F.max_pool2d(t, k, s, p, d, ceil),
             lambda t: torch.nn.functional.max_pool2d(t, k, s, p, d, ceil), x, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,k,s,p,ceil,cip", [
    ((2, 3, 8, 8), 2, None, 0, False, True),
    ((2, 3, 7, 9), 3, 2, 1, False, True),
    ((2, 3, 7, 9), 3, 2, 1, False, False),
    ((2, 2, 7, 9), 3, 2, 1, True, True),
    ((2, 2, 7, 9), 3, 2, 1, True, False),
    ((1, 3, 10, 11), (2, 3), (1, 2), (1, 1), False, True),
    ((2, 4, 9, 7), 3, 3, 0, True, True),
])
def test_avg_pool2d_matches_torch(shape, k, s, p, ceil, cip, dtype):
    torch = requires_torch()
    x = np.random.default_rng(2).standard_normal(shape)
    _compare(lambda t: F.avg_pool2d(t, k, s, p, ceil, cip),
             lambda t: torch.nn.functional.avg_pool2d(t, k, s, p, ceil, cip), x, dtype)


def test_avg_pool2d_divisor_override_matches_torch():
    torch = requires_torch()
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 6))
    _compare(lambda t: F.avg_pool2d(t, 3, 2, 1, divisor_override=5),
             lambda t: torch.nn.functional.avg_pool2d(t, 3, 2, 1, divisor_override=5), x, np.float64)


@pytest.mark.parametrize("out", [(1, 1), (3, 3), (4, 5), (7, 7), (2, None), 5])
def test_adaptive_avg_pool2d_matches_torch(out):
    torch = requires_torch()
    x = np.random.default_rng(3).standard_normal((2, 3, 10, 7))
    _compare(lambda t: F.adaptive_avg_pool2d(t, out),
             lambda t: torch.nn.functional.adaptive_avg_pool2d(t, out), x, np.float32)


@pytest.mark.parametrize("k,s,p,d,ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False)])
def test_pool1d_matches_torch(k, s, p, d, ceil):
    torch = requires_torch()
    x = np.random.default_rng(4).standard_normal((2, 3, 15))
    _compare(lambda t: F.max_pool1d(t, k, s, p, d, ceil),
             lambda t: torch.nn.functional.max_pool1d(t, k, s, p, d, ceil), x, np.float64)
    _compare(lambda t: F.avg_pool1d(t, k, s, p, ceil),
             lambda t: torch.nn.functional.avg_pool1d(t, k, s, p, ceil), x, np.float64)


def test_unbatched_and_indices_match_torch():
    torch = requires_torch()
    x = np.random.default_rng(5).standard_normal((3, 9, 8))
    _compare(lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: torch.nn.functional.max_pool2d(t, 3, 2, 1),
             x, np.float64)
    _compare(lambda t: F.avg_pool2d(t, 2), lambda t: torch.nn.functional.avg_pool2d(t, 2), x, np.float64)
    y, idx = F.max_pool2d(lamina.tensor(x), 3, 2, 1, return_indices=True)
    yt, it = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    assert idx.dtype == np.int64 and np.array_equal(idx.data, it.numpy())
    x1 = np.random.default_rng(6).standard_normal((2, 3, 11))
    _, i1 = F.max_pool1d(lamina.tensor(x1), 3, 2, return_indices=True)
    _, it1 = torch.nn.functional.max_pool1d(torch.tensor(x1), 3, 2, return_indices=True)
    assert np.array_equal(i1.data, it1.numpy())


@pytest.mark.parametrize("fn", [
    lambda t: F.max_pool2d(t, 3, 2, 1),
    lambda t: F.max_pool2d(t, 2, 1, 0, 2, True),
    lambda t: F.avg_pool2d(t, 3, 2, 1, True, False),
    lambda t: F.avg_pool2d(t, 2),
    lambda t: F.adaptive_avg_pool2d(t, (3, 2)),
    lambda t: F.max_pool1d(t.reshape(2, 3, -1), 3, 2),
    lambda t: F.avg_pool1d(t.reshape(2, 3, -1), 4, 3, 2),
])
def test_pool_gradcheck(fn):
    rng = np.random.default_rng(9)
    # Distinct values so the max is unique and finite differences do not cross a tie.
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0
    assert gradcheck(fn, [lamina.tensor(x, requires_grad=True)], eps=1e-4)


def test_max_pool_ties_go_to_the_first_max():
    # Every window of this input holds a tie; the whole gradient must land on the first
    # (row-major) position of each window's maximum.
    x = lamina.tensor([[[[1.0, 3.0, 3.0, 0.0],
                         [3.0, 3.0, 0.0, 0.0],
                         [2.0, 2.0, 5.0, 5.0],
                         [2.0, 2.0, 5.0, 5.0]]]], requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert y.tolist() == [[[[3.0, 3.0], [2.0, 5.0]]]]
    y.sum().backward()
    assert x.grad.tolist() == [[[[0.0, 1.0, 1.0, 0.0],
                                 [0.0, 0.0, 0.0, 0.0],
                                 [1.0, 0.0, 1.0, 0.0],
                                 [0.0, 0.0, 0.0, 0.0]]]]
    # Overlapping windows (stride 1): gradients of the same first max add up.
    x2 = lamina.tensor([[[7.0, 7.0, 7.0]]], requires_grad=True)
    F.max_pool1d(x2, 2, 1).sum().backward()
    assert x2.grad.tolist() == [[[1.0, 1.0, 0.0]]]


def test_max_pool_nan_wins_like_torch():
    torch = requires_torch()
    x = np.array([[[[1.0, np.nan, 2.0, 3.0],
                    [np.nan, 0.0, 9.0, 1.0]]]])
    y, i = F.max_pool2d(lamina.tensor(x), 2, return_indices=True)
    yt, it = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    assert np.isnan(y.data[0, 0, 0, 0]) and y.data[0, 0, 0, 1] == 9.0
    assert np.array_equal(i.data, it.numpy())


def test_modules():
    assert tuple(lamina.nn.MaxPool2d(2)(lamina.zeros(4, 6, 28, 28)).shape) == (4, 6, 14, 14)
    assert tuple(lamina.nn.AvgPool2d(3, 2, 1)(lamina.zeros(2, 3, 9, 9)).shape) == (2, 3, 5, 5)
    assert tuple(lamina.nn.MaxPool1d(3)(lamina.zeros(2, 3, 10)).shape) == (2, 3, 3)
    assert tuple(lamina.nn.AvgPool1d(2)(lamina.zeros(3, 10)).shape) == (3, 5)
    assert tuple(lamina.nn.AdaptiveAvgPool2d(1)(lamina.zeros(2, 16, 7, 5)).shape) == (2, 16, 1, 1)
    y, i = lamina.nn.MaxPool2d(2, return_indices=True)(lamina.zeros(1, 1, 4, 4))
    assert tuple(i.shape) == (1, 1, 2, 2)
    assert "kernel_size=2" in repr(lamina.nn.MaxPool2d(2))


def test_pool_errors():
    x = lamina.zeros(2, 3, 6, 6)
    with pytest.raises(ValueError, match="padding"):
        F.max_pool2d(x, 2, padding=2)  # more than half the kernel
    with pytest.raises(ValueError, match="padding"):
        F.avg_pool2d(x, 3, padding=-1)
    with pytest.raises(ValueError, match="stride"):
        F.max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match="kernel_size"):
        F.max_pool2d(x, 7)  # larger than the input
    with pytest.raises(ValueError, match="kernel_size"):
        F.avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="dilation"):
        F.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match="input"):
        F.max_pool2d(lamina.zeros(6, 6), 2)
    with pytest.raises(ValueError, match="input"):
        F.max_pool1d(x, 2)
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="padding"):
        lamina.nn.MaxPool2d(2, padding=3)
    with pytest.raises(TypeError, match="input"):
        F.max_pool2d(lamina.zeros(1, 1, 4, 4, dtype=lamina.int64) if hasattr(lamina, "int64")
                     else lamina.tensor(np.zeros((1, 1, 4, 4), np.int64)), 2)


def test_binding_checks_indices():
    from lamina import _C
    dy = np.ones((1, 1, 2, 2), np.float32)
    dx = np.empty((1, 1, 4, 4), np.float32)
    bad = np.array([[[[0, 1], [2, 99]]]], np.int64)
    with pytest.raises(ValueError, match="indices"):
        _C.max_pool2d_backward(dy, bad, dx, (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(TypeError, match="indices"):
        _C.max_pool2d_backward(dy, bad.astype(np.int32), dx, (2, 2), (2, 2), (0, 0), (1, 1), False)
