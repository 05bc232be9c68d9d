"""Shape ops: reshape (a free view when compiled), permute, expand, indexing, cat, stack."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .._dims import normalize_dim

from ..tensor import Function, float32, float64
from .registry import BadSample, Sample, export, register

_F = (float32, float64)


def _x(dt, shape, seed=20):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


ReshapeSaved = namedtuple("ReshapeSaved", "x_shape")


def _reshape_rule(k, s, dy, out):
    """dx is dy seen in x's shape (compiled: a view of dy, or a copy when x has a gradient)."""
    (x_shape,) = s
    return k.reshape(dy, x_shape, out=out[0]), None


def _lower_reshape(L, fn):
    (x,) = fn.inputs()
    fn.out.base = x
    fn.out.home = x.home if x.home != "temp" else "temp"
    fn.saved = ReshapeSaved(x_shape=x.shape)
    fn.lowered_by = "view"
    return True


@register("reshape", lower=_lower_reshape, backward=_reshape_rule, kernels=("a view",),
          dtypes=_F, call=lambda x, shape=(-1,): x.reshape(shape),
          samples=lambda dt: [Sample((_x(dt, (2, 3, 4)),), {"shape": (6, 4)}),
                              Sample((_x(dt, (2, 3, 4)),), {"shape": (-1,)}),
                              Sample((_x(dt, (0, 3)),), {"shape": (3, 0)}, name="size0")],
          bad_samples=lambda: [BadSample((np.ones((2, 3), np.float32),), {"shape": (4, 2)}, ValueError, "reshape")],
          reference=lambda x, shape=(-1,): x.reshape(shape), torch=lambda torch, x, shape=(-1,): x.reshape(shape))
class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.save_for_backward(*ReshapeSaved(x_shape=x.shape))
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: shape {tuple(shape)} is invalid for input of shape {x.shape} "
                             f"({x.size} elements)") from None


@register("permute", kernels=("numpy transpose",), dtypes=_F, call=lambda x, dims=(2, 0, 1): x.permute(dims),
          samples=lambda dt: [Sample((_x(dt, (2, 3, 4)),)), Sample((_x(dt, (2, 0, 4)),), name="size0")],
          bad_samples=lambda: [BadSample((np.ones((2, 3), np.float32),), {"dims": (0, 0)}, ValueError, "permut")],
          reference=lambda x, dims=(2, 0, 1): np.transpose(x, dims),
          torch=lambda torch, x, dims=(2, 0, 1): x.permute(dims))
class Permute(Function):
    """x's dims permuted: a strided view of x's storage, as in PyTorch (Tensor.permute marks it a
    view, so writes and the version counter are shared; a kernel reading it gets a C-contiguous
    copy from Function.apply)."""

    _reads_strided = True

    @staticmethod
    def forward(ctx, x, perm):
        ctx.inv = tuple(np.argsort(perm))
        return x.transpose(perm)

    @staticmethod
    def backward(ctx, dy):
        return np.array(dy.transpose(ctx.inv), order="C"), None


@register("expand", kernels=("numpy broadcast_to",), dtypes=_F, call=lambda x, shape=(3, 2, 4): x.expand(shape),
          samples=lambda dt: [Sample((_x(dt, (2, 1)),), {"shape": (3, 2, 4)})],
          reference=lambda x, shape=(3, 2, 4): np.broadcast_to(x, shape),
          torch=lambda torch, x, shape=(3, 2, 4): x.expand(shape))
class Expand(Function):
    """x repeated along its size-1 dims without copying: a read-only view with stride 0 there
    (writing into it is refused, as PyTorch refuses writes where elements share memory)."""

    _reads_strided = True

    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, dy):
        return dy, None  # the engine reduces the broadcast


@register("getitem", kernels=("numpy indexing",), dtypes=_F, call=lambda x, idx=(slice(None), 1): x[idx],
          samples=lambda dt: [Sample((_x(dt, (3, 4)),), {"idx": (slice(None), 1)}),
                              Sample((_x(dt, (3, 4)),), {"idx": (np.array([0, 2, 0]),)}, name="repeated")],
          reference=lambda x, idx=(slice(None), 1): x[idx], torch=None)
class GetItem(Function):
    @staticmethod
    def forward(ctx, x, idx):
        ctx.shape, ctx.idx, ctx.dtype = x.shape, idx, x.dtype
        return np.array(x[idx], order="C")  # a copy: outputs never alias inputs

    @staticmethod
    def backward(ctx, dy):
        dx = np.zeros(ctx.shape, dtype=dy.dtype)
        np.add.at(dx, ctx.idx, dy)  # repeated indices accumulate
        return dx, None


@register("cat", kernels=("numpy concatenate",), dtypes=_F, call=lambda a, b, dim=0: cat([a, b], dim),
          samples=lambda dt: [Sample((_x(dt, (2, 3)), _x(dt, (1, 3), 21))),
                              Sample((_x(dt, (2, 3)), _x(dt, (2, 0), 21)), {"dim": 1}, name="size0")],
          bad_samples=lambda: [BadSample((np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)), {"dim": 0},
                                         ValueError, "")],
          reference=lambda a, b, dim=0: np.concatenate([a, b], dim),
          torch=lambda torch, a, b, dim=0: torch.cat([a, b], dim))
class Cat(Function):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        ctx.sizes = [x.shape[dim] for x in xs]
        return np.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, dy):
        splits = np.cumsum(ctx.sizes)[:-1]
        return (None,) + tuple(np.ascontiguousarray(p) for p in np.split(dy, splits, axis=ctx.dim))


@export
def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated; "
                             "use stack, or reshape it to (1,)")
    nd = tensors[0].ndim
    d = normalize_dim(dim, nd)
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != nd or t.shape[:d] + t.shape[d + 1:] != tensors[0].shape[:d] + tensors[0].shape[d + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {tuple(t.shape)}; expected "
                             f"{tuple(tensors[0].shape)} except in dim {d}")
    return Cat.apply(d, *tensors)


@export
def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    d = normalize_dim(dim, tensors[0].ndim + 1)
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: expects each tensor to be equal size, but got "
                             f"{tuple(tensors[0].shape)} at entry 0 and {tuple(t.shape)} at entry {i}")
    return cat([t.unsqueeze(d) for t in tensors], d)
