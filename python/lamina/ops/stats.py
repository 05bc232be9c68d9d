"""Reductions and scans beyond sum/mean/max: cumsum, prod, logsumexp, var, std.

cumsum, prod and logsumexp are Functions with their own backward rules; var and std are built
from mean/sub/mul/sum (so they inherit correct gradients and the compiler lowers their parts).
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, float32, float64
from .index import normalize_dim
from .registry import Sample, register

_F = (float32, float64)


def _x(dt, shape=(3, 4), seed=80):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


def _dims(dim, ndim, op):
    """None -> every dim; an int or a tuple -> normalized, sorted, checked for repeats."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = tuple(sorted(normalize_dim(d, ndim, op) for d in dims))
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: dim {dim} appears multiple times in the list of dims")
    return out


@register("cumsum", kernels=("numpy cumsum",), dtypes=_F, call=lambda x, dim=1: x.cumsum(dim),
          samples=lambda dt: [Sample((_x(dt),), {"dim": 1}), Sample((_x(dt),), {"dim": 0}),
                              Sample((_x(dt)[:0],), {"dim": 0}, name="size0")],
          reference=lambda x, dim=1: np.cumsum(x, axis=dim), torch=lambda torch, x, dim=1: torch.cumsum(x, dim))
class Cumsum(Function):
    """The gradient of a running sum is the reversed running sum of dy."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return np.cumsum(x, axis=dim, dtype=x.dtype)

    @staticmethod
    def backward(ctx, dy):
        rev = np.flip(dy, ctx.dim)
        return np.flip(np.cumsum(rev, axis=ctx.dim), ctx.dim), None


def cumsum(input, dim, dtype=None):
    if input.ndim == 0:
        normalize_dim(dim, 0, "cumsum")
        return input.clone() if dtype is None else input.to(dtype)
    d = normalize_dim(dim, input.ndim, "cumsum")
    x = input if dtype is None else input.to(dtype)
    if x.dtype.kind in "biu":
        return x._wrap(np.cumsum(x._data, axis=d, dtype=np.int64))
    return Cumsum.apply(x, d)


def _exclusive_products(x, axis):
    """Product of every element but one along axis, without dividing (exact at zeros)."""
    left = np.cumprod(np.concatenate([np.ones_like(np.take(x, [0], axis)), x], axis=axis), axis=axis)
    left = np.take(left, np.arange(x.shape[axis]), axis=axis)
    xr = np.flip(x, axis)
    right = np.cumprod(np.concatenate([np.ones_like(np.take(xr, [0], axis)), xr], axis=axis), axis=axis)
    right = np.flip(np.take(right, np.arange(x.shape[axis]), axis=axis), axis)
    return left * right


@register("prod", kernels=("numpy prod", "numpy cumprod"), dtypes=_F,
          call=lambda x, dim=None, keepdim=False: x.prod(dim, keepdim) if dim is not None else x.prod(),
          samples=lambda dt: [Sample((_x(dt, (3, 4), 81),), {"dim": 1}),
                              Sample((np.array([[1.5, 0.0, 2.0], [0.5, -1.0, 3.0]], dt),), {"dim": 1}, name="zero"),
                              Sample((_x(dt, (2, 3), 82),), name="all")],
          reference=lambda x, dim=None, keepdim=False: np.prod(x, axis=dim, keepdims=keepdim),
          torch=lambda torch, x, dim=None, keepdim=False: torch.prod(x) if dim is None else torch.prod(x, dim, keepdim))
class Prod(Function):
    """NOTE: the gradient is the product of the other elements, computed without division, so
    it is exact where an element is zero (as PyTorch)."""

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        ctx.save_for_backward(x)
        ctx.dim, ctx.keepdim = dim, keepdim
        if dim is None:
            return np.asarray(np.prod(x, dtype=x.dtype))
        return np.prod(x, axis=dim, keepdims=keepdim, dtype=x.dtype)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        if ctx.dim is None:
            flat = x.reshape(-1)
            return (_exclusive_products(flat, 0) * dy).reshape(x.shape), None, None
        g = dy if ctx.keepdim else np.expand_dims(dy, ctx.dim)
        return _exclusive_products(x, ctx.dim) * g, None, None


def prod(input, dim=None, keepdim=False, dtype=None):
    x = input if dtype is None else input.to(dtype)
    if dim is None:
        if x.dtype.kind in "biu":
            return x._wrap(np.asarray(np.prod(x._data, dtype=np.int64)))
        return Prod.apply(x, None, False)
    d = normalize_dim(dim, x.ndim, "prod")
    if x.ndim == 0:
        return x.clone()
    if x.dtype.kind in "biu":
        return x._wrap(np.prod(x._data, axis=d, keepdims=keepdim, dtype=np.int64))
    return Prod.apply(x, d, keepdim)


def _np_logsumexp(x, dims, keepdim):
    m = np.max(x, axis=dims, keepdims=True) if x.size else np.zeros([1] * x.ndim, x.dtype)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        y = np.log(np.sum(np.exp(x - m), axis=dims, keepdims=True)) + m
    return y if keepdim else np.squeeze(y, axis=dims)


@register("logsumexp", kernels=("numpy exp/sum/log",), dtypes=_F,
          call=lambda x, dim=1, keepdim=False: x.logsumexp(dim, keepdim),
          samples=lambda dt: [Sample((_x(dt, (3, 4), 83) * 10,), {"dim": 1}),
                              Sample((_x(dt, (3, 4), 84),), {"dim": (0, 1), "keepdim": True}, name="dims")],
          reference=lambda x, dim=1, keepdim=False: _np_logsumexp(x, dim if isinstance(dim, tuple) else (dim,), keepdim),
          torch=lambda torch, x, dim=1, keepdim=False: torch.logsumexp(x, dim, keepdim))
class LogSumExp(Function):
    """log(sum(exp(x))) shifted by the max (no overflow); the gradient is softmax(x) * dy."""

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        y = _np_logsumexp(x, dims, True)
        ctx.save_for_backward(x, y)
        ctx.dims, ctx.keepdim = dims, keepdim
        return y if keepdim else np.squeeze(y, axis=dims)

    @staticmethod
    def backward(ctx, dy):
        x, y = ctx.saved_tensors
        g = dy if ctx.keepdim else np.expand_dims(dy, ctx.dims)
        return np.exp(x - y) * g, None, None


def logsumexp(input, dim, keepdim=False):
    if input.dtype.kind in "biu":
        input = input.to(np.float32)
    dims = _dims(dim, input.ndim, "logsumexp")
    if input.ndim == 0:
        return input.clone()
    return LogSumExp.apply(input, dims, keepdim)


def _correction(unbiased, correction, op):
    if correction is not None and unbiased is not None:
        raise TypeError(f"{op}: pass either unbiased or correction, not both")
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over dim (None: all) with Bessel's correction by default (correction=1), as PyTorch."""
    if isinstance(dim, bool):          # var(x, False): the old positional `unbiased`
        dim, unbiased = None, dim
    if input.dtype.kind in "biu":
        raise RuntimeError(f"var: input dtype must be floating point, got {input.dtype}")
    c = _correction(unbiased, correction, "var")
    dims = _dims(dim, input.ndim, "var")
    n = int(np.prod([input.shape[d] for d in dims])) if input.ndim else 1
    centered = input - input.mean(dims if dims else None, keepdim=True) if input.ndim else input - input
    sq = centered * centered
    total = sq.sum(dims, keepdim) if input.ndim else sq
    return total / max(n - c, 0) if n - c > 0 else total * float("nan")


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction).sqrt()


# ---------------------------------------------------------------- vector norms
def _np_vector_norm(x, ord, dims, keepdim):
    a = np.abs(x)
    if ord == np.inf:
        y = np.max(a, axis=dims, keepdims=True, initial=0)
    elif ord == -np.inf:
        y = np.min(a, axis=dims, keepdims=True)
    elif ord == 0:
        y = np.sum(a != 0, axis=dims, keepdims=True).astype(x.dtype)
    elif ord == 1:
        y = np.sum(a, axis=dims, keepdims=True)
    elif ord == 2:
        y = np.sqrt(np.sum(a * a, axis=dims, keepdims=True))
    else:
        y = np.sum(a ** ord, axis=dims, keepdims=True) ** (1.0 / ord)
    y = y.astype(x.dtype, copy=False)
    return y if keepdim else np.squeeze(y, axis=dims)


@register("vector_norm", kernels=("numpy abs/sum/sqrt",), dtypes=_F,
          call=lambda x, ord=2, dim=None, keepdim=False: vector_norm(x, ord, dim, keepdim),
          samples=lambda dt: [Sample((_x(dt, (3, 4), 85),), {}, name="all"),
                              Sample((_x(dt, (3, 4), 86),), {"dim": 1}, name="dim1"),
                              Sample((_x(dt, (3, 4), 87),), {"ord": 1, "dim": 0, "keepdim": True}, name="l1"),
                              Sample((_x(dt, (2, 5), 88),), {"ord": np.inf, "dim": 1}, name="inf"),
                              Sample((_x(dt, (2, 5), 89),), {"ord": 3.0, "dim": (0, 1)}, name="l3")],
          reference=lambda x, ord=2, dim=None, keepdim=False: _np_vector_norm(
              x, ord, _dims(dim, x.ndim, "vector_norm"), keepdim),
          torch=lambda torch, x, ord=2, dim=None, keepdim=False: torch.linalg.vector_norm(x, ord, dim, keepdim))
class VectorNorm(Function):
    """||x||_ord over dims. The gradient is PyTorch's: 0 where the norm is 0 (no 0/0), sign(x)
    for ord 1, shared evenly among the entries that reach the max (min) for ord inf (-inf), none
    for ord 0, x |x|^(ord-2) / ||x||^(ord-1) otherwise."""

    @staticmethod
    def forward(ctx, x, ord, dims, keepdim):
        y = _np_vector_norm(x, ord, dims, True)
        ctx.save_for_backward(x, y)
        ctx.ord, ctx.dims, ctx.keepdim = ord, dims, keepdim
        return y if keepdim else np.squeeze(y, axis=dims)

    @staticmethod
    def backward(ctx, dy):
        x, y = ctx.saved_tensors
        ord, dims = ctx.ord, ctx.dims
        g = dy if ctx.keepdim else np.expand_dims(dy, dims)
        if ord == 0:
            return np.zeros_like(x), None, None, None
        if ord == 1:
            return np.sign(x) * g, None, None, None
        if ord in (np.inf, -np.inf):
            hit = (np.abs(x) == y).astype(x.dtype)
            return np.sign(x) * hit * (g / np.sum(hit, axis=dims, keepdims=True)), None, None, None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ord == 2:
                dx = x * (g / y)
            else:
                dx = x * np.abs(x) ** (ord - 2) * (g / y ** (ord - 1))
        return np.where(y == 0, 0, dx).astype(x.dtype, copy=False), None, None, None


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.vector_norm: (sum |x|^ord)^(1/ord) over dim (all dims by default)."""
    from ..tensor import Tensor
    if not isinstance(x, Tensor):
        raise TypeError(f"input: vector_norm expected a lamina Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype not in _F:
        raise TypeError(f"input: vector_norm expected a floating point tensor, got {x.dtype}")
    try:
        ord = float(ord)
    except (TypeError, ValueError):
        raise ValueError(f"ord: vector_norm expected a number (or inf), got {ord!r}") from None
    dims = _dims(dim, x.ndim, "vector_norm")
    if x.ndim == 0:
        return VectorNorm.apply(x.reshape(1), ord, (0,), False) if not keepdim else x.abs()
    return VectorNorm.apply(x, ord, dims, keepdim)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm / Tensor.norm for vector norms: p a number, inf, or 'fro' (the 2-norm of the
    entries, over dim or all of them)."""
    if p == "fro":
        p = 2
    elif p == "nuc":
        raise NotImplementedError("norm: the nuclear norm ('nuc') is not supported")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


@register("cumprod", kernels=("numpy cumprod",), dtypes=_F, call=lambda x, dim=1: x.cumprod(dim),
          samples=lambda dt: [Sample((_x(dt, (3, 4), 83),), {"dim": 1}), Sample((_x(dt, (3, 4), 84),), {"dim": 0}),
                              Sample((np.array([[1.5, 0.0, 2.0, -1.0], [0.0, 0.5, 0.0, 3.0]], dt),), {"dim": 1},
                                     name="zeros"),
                              Sample((_x(dt)[:0],), {"dim": 0}, name="size0")],
          reference=lambda x, dim=1: np.cumprod(x, axis=dim), torch=lambda torch, x, dim=1: torch.cumprod(x, dim))
class Cumprod(Function):
    """Running product. NOTE: the gradient of y_j wrt x_i (i <= j) is the product of x_0..x_j
    without x_i; it is computed with x_i set to 1, never by dividing, so it is exact at zeros."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        ctx.save_for_backward(x)
        return np.cumprod(x, axis=dim, dtype=x.dtype)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        d = ctx.dim
        xm = np.moveaxis(x, d, -1)
        gm = np.moveaxis(dy, d, -1)
        dx = np.empty_like(xm)
        n = xm.shape[-1]
        for i in range(n):
            without = xm[..., i:].copy()
            without[..., 0] = 1
            # sum over j >= i of dy_j * prod(x_0..x_j without x_i)
            prefix = np.prod(xm[..., :i], axis=-1, keepdims=True)
            dx[..., i] = (gm[..., i:] * prefix * np.cumprod(without, axis=-1)).sum(axis=-1)
        return np.ascontiguousarray(np.moveaxis(dx, -1, d)), None


def cumprod(input, dim, dtype=None):
    if input.ndim == 0:
        normalize_dim(dim, 0, "cumprod")
        return input.clone() if dtype is None else input.to(dtype)
    d = normalize_dim(dim, input.ndim, "cumprod")
    x = input if dtype is None else input.to(dtype)
    if x.dtype.kind in "biu":
        return x._wrap(np.cumprod(x._data, axis=d, dtype=np.int64))
    return Cumprod.apply(x, d)


def _ties(dt):
    x = np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.25], [-1.0, 4.0, 2.0, 4.0]], dt)
    return x


@register("amax", kernels=("numpy max",), dtypes=_F,
          call=lambda x, dim=(), keepdim=False, use_min=False: (x.amin if use_min else x.amax)(dim, keepdim),
          # ties are kinks: finite differences do not apply there (the tie split is checked
          # against PyTorch in tests/test_torch_functions_more.py)
          samples=lambda dt: [Sample((_ties(dt),), {"dim": 1}, name="ties", grad=False),
                              Sample((_x(dt, (3, 4), 85),), {"dim": 1}, name="dim1"),
                              Sample((_x(dt, (3, 4), 86),), {"dim": (0, 1), "keepdim": True}, name="all_keepdim"),
                              Sample((_x(dt, (3, 4), 87),), {"dim": 0, "use_min": True}, name="amin"),
                              Sample((_x(dt, (3, 4), 88),), {}, name="all")],
          reference=lambda x, dim=(), keepdim=False, use_min=False:
              (np.min if use_min else np.max)(x, axis=None if dim == () else dim, keepdims=keepdim),
          torch=lambda torch, x, dim=(), keepdim=False, use_min=False:
              (torch.amin if use_min else torch.amax)(x, dim, keepdim))
class AMax(Function):
    """amax/amin over dims. NOTE: tied extremes share the gradient evenly, as PyTorch's do (max(dim)
    instead gives it all to the index it returns)."""

    @staticmethod
    def forward(ctx, x, dims, keepdim, use_min):
        y = (np.min if use_min else np.max)(x, axis=dims, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.dims, ctx.keepdim = dims, keepdim
        return y if keepdim else np.squeeze(y, dims)

    @staticmethod
    def backward(ctx, dy):
        x, y = ctx.saved_tensors
        if not ctx.keepdim:
            dy = np.expand_dims(dy, ctx.dims)
        hit = (x == y) | (np.isnan(x) & np.isnan(y))
        count = hit.sum(axis=ctx.dims, keepdims=True)
        return (dy * hit / count).astype(dy.dtype), None, None, None


def amax(input, dim=(), keepdim=False, *, _use_min=False):
    op = "amin" if _use_min else "amax"
    dims = () if dim is None else dim
    dims = _dims(None if dims == () or dims == [] else dims, input.ndim, op) if input.ndim else ()
    if input.ndim and any(input.shape[d] == 0 for d in dims):
        raise IndexError(f"{op}(): expected reduction dim {dims} to have non-zero size, got shape "
                         f"{tuple(input.shape)}")
    if input.ndim == 0:
        if dim not in ((), [], None):
            for d in ((dim,) if isinstance(dim, int) else dim):
                normalize_dim(d, 0, op)
        return input.clone()
    if input.dtype.kind in "biu":
        fn = np.min if _use_min else np.max
        return input._wrap(np.asarray(fn(input._data, axis=dims, keepdims=keepdim)))
    return AMax.apply(input, dims, keepdim, _use_min)


def amin(input, dim=(), keepdim=False):
    return amax(input, dim, keepdim, _use_min=True)
