"""3-D convolution and pooling (lamina.ops.volume) against PyTorch: values and input / weight
gradients in float64, over strides, padding, dilation, groups, ceil mode and divisors."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from conftest import requires_torch

X = np.random.default_rng(0).standard_normal((2, 4, 7, 6, 5))


def _check(lf, tf, x=X, tol=1e-12):
    torch = requires_torch()
    a, b = lamina.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ya, yb = lf(a), tf(b)
    assert tuple(ya.shape) == tuple(yb.shape)
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(1).standard_normal(tuple(yb.shape))
    (ya * lamina.tensor(g)).sum().backward()
    (yb * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("k,s,p,d,g", [(3, 1, 1, 1, 1), ((2, 3, 1), (2, 1, 2), (1, 0, 0), 1, 2),
                                       (3, 2, 0, (2, 1, 1), 4), (1, 1, 0, 1, 1), (2, 1, "same", 1, 1)])
def test_conv3d_matches_torch(k, s, p, d, g):
    torch = requires_torch()
    w = np.random.default_rng(2).standard_normal((4, 4 // g) + ((k,) * 3 if isinstance(k, int) else k))
    b = np.random.default_rng(3).standard_normal(4)
    _check(lambda t: F.conv3d(t, lamina.tensor(w), lamina.tensor(b), s, p, d, g),
           lambda t: torch.nn.functional.conv3d(t, torch.tensor(w), torch.tensor(b), s, p, d, g))


@pytest.mark.parametrize("k,s,p,d,ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True), (3, 2, 1, 1, False),
                                          ((2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 1), False)])
def test_max_pool3d_matches_torch(k, s, p, d, ceil):
    torch = requires_torch()
    _check(lambda t: F.max_pool3d(t, k, s, p, d, ceil), lambda t: torch.nn.functional.max_pool3d(t, k, s, p, d, ceil))


@pytest.mark.parametrize("k,s,p,ceil,include,div", [(2, None, 0, False, True, None), (3, 2, 1, True, True, None),
                                                    (3, 2, 1, True, False, None),
                                                    ((2, 3, 2), (1, 2, 2), (1, 1, 0), False, False, None),
                                                    (2, 2, 1, True, True, 3)])
def test_avg_pool3d_matches_torch(k, s, p, ceil, include, div):
    torch = requires_torch()
    _check(lambda t: F.avg_pool3d(t, k, s, p, ceil, include, div),
           lambda t: torch.nn.functional.avg_pool3d(t, k, s, p, ceil, include, div))


@pytest.mark.parametrize("size", [1, (3, 2, 4), (None, 3, 2), (5, 4, 3)])
def test_adaptive_avg_pool3d_matches_torch(size):
    torch = requires_torch()
    _check(lambda t: F.adaptive_avg_pool3d(t, size), lambda t: torch.nn.functional.adaptive_avg_pool3d(t, size))


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular", "replicate"])
def test_conv3d_module_matches_torch_from_the_same_seed(mode):
    torch = requires_torch()
    torch.manual_seed(0)
    tm = torch.nn.Conv3d(4, 3, 3, padding=1, padding_mode=mode, dtype=torch.float64)
    lamina.manual_seed(0)
    lm = lamina.nn.Conv3d(4, 3, 3, padding=1, padding_mode=mode, dtype=lamina.float64)
    assert repr(lm) == repr(tm)
    _check(lm, tm)
    _check(lm, tm, X[0])   # unbatched


def test_3d_modules_match_torch():
    torch = requires_torch()
    for name, args in [("MaxPool3d", (2,)), ("AvgPool3d", (3, 2, 1)), ("AdaptiveAvgPool3d", ((2, 3, 1),)),
                       ("BatchNorm3d", (4,))]:
        kw = {"dtype": torch.float64} if name == "BatchNorm3d" else {}
        tm, lm = getattr(torch.nn, name)(*args, **kw), getattr(lamina.nn, name)(*args, **({"dtype": lamina.float64} if kw else {}))
        _check(lm, tm)
    # return_indices (once refused here): PyTorch's values and flat (d, h, w) indices
    got_v, got_i = F.max_pool3d(lamina.tensor(X), 2, return_indices=True)
    want_v, want_i = torch.nn.functional.max_pool3d(torch.tensor(X), 2, return_indices=True)
    np.testing.assert_array_equal(got_v.numpy(), want_v.numpy())
    np.testing.assert_array_equal(got_i.numpy(), want_i.numpy())
