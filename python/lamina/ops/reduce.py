"""Reductions: sum, mean, max/min (over everything or along a dim)."""
from __future__ import annotations

import numpy as np

from .._dims import normalize_dim

from ..tensor import Function, Tensor, float32, float64, int64
from .registry import Sample, export, register

_F = (float32, float64)


def _reduce_samples(dt):
    x = np.random.default_rng(10).standard_normal((3, 4, 5)).astype(dt)
    return [Sample((x,), name="all"), Sample((x,), {"dim": 1}, name="dim1"),
            Sample((x,), {"dim": (0, 2), "keepdim": True}, name="dims-keep"),
            Sample((x[:, :0],), {"dim": 0}, name="size0"), Sample((x[:1, :1, :1],), name="size1")]


@register("sum", kernels=("numpy sum",), dtypes=_F, call=lambda x, dim=None, keepdim=False: x.sum(dim, keepdim),
          samples=_reduce_samples,
          reference=lambda x, dim=None, keepdim=False: np.asarray(x.sum(axis=dim, keepdims=keepdim)),
          torch=lambda torch, x, dim=None, keepdim=False: x.sum() if dim is None else x.sum(dim, keepdim))
class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        # integers and bools sum into int64, as in PyTorch (NumPy would give uint64 for uint8)
        return np.asarray(x.sum(axis=dims, keepdims=keepdim, dtype=int64 if x.dtype.kind in "biu" else None))

    @staticmethod
    def backward(ctx, dy):
        if ctx.dims is not None and not ctx.keepdim:
            dy = np.expand_dims(dy, ctx.dims)
        return np.broadcast_to(dy, ctx.shape), None, None


@register("mean", kernels=("numpy mean",), dtypes=_F,
          call=lambda x, dim=None, keepdim=False: x.mean(dim, keepdim),
          samples=lambda dt: [s for s in _reduce_samples(dt) if s.name != "size0"],
          reference=lambda x, dim=None, keepdim=False: np.asarray(x.mean(axis=dim, keepdims=keepdim)),
          torch=lambda torch, x, dim=None, keepdim=False: x.mean() if dim is None else x.mean(dim, keepdim))
class Mean(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        n = x.size if dims is None else int(np.prod([x.shape[d] for d in dims]))
        ctx.n = max(n, 1)
        return np.asarray(x.mean(axis=dims, keepdims=keepdim))

    @staticmethod
    def backward(ctx, dy):
        if ctx.dims is not None and not ctx.keepdim:
            dy = np.expand_dims(dy, ctx.dims)
        return np.broadcast_to(dy / dy.dtype.type(ctx.n), ctx.shape), None, None


def _distinct(dt, shape, seed):
    # distinct values: no ties, so the gradient of max is unambiguous
    return (np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.1).astype(dt)


@register("max_all", kernels=("numpy max",), dtypes=_F, call=lambda x: x.max(),
          samples=lambda dt: [Sample((_distinct(dt, (3, 4), 11),)), Sample((_distinct(dt, (1,), 12),), name="size1")],
          reference=lambda x: np.asarray(x.max()), torch=lambda torch, x: x.max())
class MaxAll(Function):
    """Full max; like PyTorch, the gradient is split evenly between tied maxima."""

    @staticmethod
    def forward(ctx, x, use_min):
        y = np.asarray(x.min() if use_min else x.max())
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, y = ctx.saved_tensors
        mask = x == y
        if np.isnan(y):  # NOTE: a NaN maximum takes the gradient, split between the NaNs (PyTorch)
            mask = np.isnan(x)
        return dy * mask / mask.sum(), None


@register("max_dim", kernels=("numpy argmax",), dtypes=_F,
          call=lambda x, dim=1, keepdim=False: x.max(dim, keepdim)[0],
          samples=lambda dt: [Sample((_distinct(dt, (3, 4), 13),), {"dim": 1}),
                              Sample((_distinct(dt, (3, 4), 14),), {"dim": 0, "keepdim": True})],
          reference=lambda x, dim=1, keepdim=False: x.max(axis=dim, keepdims=keepdim),
          torch=lambda torch, x, dim=1, keepdim=False: x.max(dim, keepdim).values)
class MaxDim(Function):
    """max along a dim; the gradient goes to the index returned (the first maximum)."""

    @staticmethod
    def forward(ctx, x, dim, keepdim, use_min):
        idx = x.argmin(axis=dim) if use_min else x.argmax(axis=dim)
        idx = np.expand_dims(idx, dim)
        y = np.take_along_axis(x, idx, axis=dim)
        ctx.shape, ctx.dim, ctx.idx, ctx.keepdim = x.shape, dim, idx, keepdim
        ctx.indices = idx if keepdim else np.squeeze(idx, dim)
        return y if keepdim else np.squeeze(y, dim)

    @staticmethod
    def backward(ctx, dy):
        if not ctx.keepdim:
            dy = np.expand_dims(dy, ctx.dim)
        dx = np.zeros(ctx.shape, dtype=dy.dtype)
        np.put_along_axis(dx, ctx.idx, dy, axis=ctx.dim)
        return dx, None, None, None


class _MaxResult(tuple):
    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _max_min(x, dim, keepdim, use_min):
    if dim is None:
        return MaxAll.apply(x, use_min)
    d = normalize_dim(dim, x.ndim)
    if x.shape[d] == 0:
        raise ValueError(f"max/min: dim {dim} has size 0")
    values = MaxDim.apply(x, d, keepdim, use_min)
    idx = np.argmin(x._data, axis=d) if use_min else np.argmax(x._data, axis=d)
    if keepdim:
        idx = np.expand_dims(idx, d)
    return _MaxResult((values, Tensor._wrap(idx.astype(int64, copy=False))))


@export
def max_(x, dim=None, keepdim=False):
    return _max_min(x, dim, keepdim, False)


@export
def min_(x, dim=None, keepdim=False):
    return _max_min(x, dim, keepdim, True)
