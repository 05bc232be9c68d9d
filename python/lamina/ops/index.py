"""Indexing ops as PyTorch names them: gather, scatter, scatter_add, index_select, masked_fill,
topk and sort (values through a gather, so their gradient is gather's), repeat.

Index arguments are integer arrays passed beside the tensor (constants to autodiff); each op checks
its dim and index range itself and raises IndexError / RuntimeError as PyTorch does.
"""
from __future__ import annotations

import numpy as np

from .._dims import normalize_dim as _normalize_dim
from ..tensor import Function, Tensor, float32, float64
from .registry import BadSample, Sample, register

_F = (float32, float64)


def normalize_dim(dim, ndim, op="dim"):
    """The one dim rule (lamina._dims): dim in [-ndim, ndim) (0-d counts as 1-d), else IndexError."""
    try:
        return _normalize_dim(dim, ndim)
    except (IndexError, TypeError) as e:
        raise type(e)(f"{op}: {e}") from None


def _index_array(index, op):
    idx = np.asarray(index._data if hasattr(index, "_data") else index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got {idx.dtype}")
    return idx.astype(np.int64, copy=False)


def _full_index(idx, dim):
    """The tuple of index arrays that addresses x[..., idx[...], ...] along `dim` for every element
    of idx (np.add.at / fancy indexing form)."""
    grids = list(np.indices(idx.shape, sparse=True))
    grids[dim] = idx
    return tuple(grids)


def _check_gather_index(x_shape, idx, dim, op):
    if idx.ndim != len(x_shape) and not (idx.ndim <= 1 and len(x_shape) <= 1):
        raise RuntimeError(f"{op}: index must have as many dims as input ({len(x_shape)}), got {idx.ndim}")
    for d, (i, s) in enumerate(zip(idx.shape, x_shape)):
        if d != dim and i > s:
            raise RuntimeError(f"{op}: index.size({d}) = {i} is larger than input.size({d}) = {s}")
    if idx.size and (idx.min() < -x_shape[dim] or idx.max() >= x_shape[dim]):
        bad = idx.max() if idx.max() >= x_shape[dim] else idx.min()
        raise IndexError(f"{op}: index {int(bad)} is out of bounds for dim {dim} with size {x_shape[dim]}")


def _rng(seed):
    return np.random.default_rng(seed)


def _gather_samples(dt):
    x = _rng(70).standard_normal((3, 4)).astype(dt)
    return [Sample((x,), {"dim": 1, "index": np.array([[0, 0], [1, 3], [2, 1]])}),
            Sample((x,), {"dim": 0, "index": np.array([[2, 1, 0, 0]])}, name="dim0")]


@register("gather", kernels=("numpy fancy indexing", "numpy add.at"), dtypes=_F,
          call=lambda x, dim=1, index=None: x.gather(dim, _wrap_index(index)), samples=_gather_samples,
          bad_samples=lambda: [BadSample((np.ones((2, 2)),), {"dim": 1, "index": np.array([[0, 5]])}, IndexError),
                               BadSample((np.ones((2, 2)),), {"dim": 2, "index": np.array([[0, 1]])}, IndexError)],
          reference=lambda x, dim=1, index=None: x[_full_index(np.asarray(index), dim)],
          torch=lambda torch, x, dim=1, index=None: torch.gather(x, dim, torch.as_tensor(index)))
class Gather(Function):
    """out[i][j] = x[index[i][j]][j] (dim 0); the gradient scatters back with accumulation."""

    @staticmethod
    def forward(ctx, x, dim, idx):
        idx = np.where(idx < 0, idx + x.shape[dim], idx)
        ctx.shape, ctx.dim, ctx.idx = x.shape, dim, idx
        return x[_full_index(idx, dim)]

    @staticmethod
    def backward(ctx, dy):
        dx = np.zeros(ctx.shape, dtype=dy.dtype)
        np.add.at(dx, _full_index(ctx.idx, ctx.dim), dy)
        return dx, None, None


def _wrap_index(index):
    from ..tensor import Tensor
    return index if isinstance(index, Tensor) else Tensor._wrap(np.asarray(index))


def gather(input, dim, index):
    d = normalize_dim(dim, input.ndim, "gather")
    idx = _index_array(index, "gather")
    if input.ndim == 0:
        idx = idx.reshape(())
    _check_gather_index(input.shape if input.ndim else (1,), idx if idx.ndim else idx.reshape(1), d, "gather")
    if input.ndim == 0:
        return Gather.apply(input.reshape(1), 0, idx.reshape(1)).reshape(())
    return Gather.apply(input, d, idx)


def _scatter_samples(dt):
    r = _rng(71)
    x = r.standard_normal((3, 4)).astype(dt)
    src = r.standard_normal((2, 4)).astype(dt)
    return [Sample((x, src), {"dim": 0, "index": np.array([[0, 1, 2, 0], [2, 0, 1, 1]])})]


@register("scatter", kernels=("numpy fancy assignment",), dtypes=_F,
          call=lambda x, src, dim=0, index=None: x.scatter(dim, _wrap_index(index), src), samples=_scatter_samples,
          torch=lambda torch, x, src, dim=0, index=None: x.scatter(dim, torch.as_tensor(index), src))
class Scatter(Function):
    """out = x with out[index[i][j]][j] = src[i][j] (dim 0). Where an index repeats, the last write
    wins (PyTorch leaves the order unspecified). The gradient: dy at the untouched places for x,
    and dy gathered at the written places for src."""

    @staticmethod
    def forward(ctx, x, src, dim, idx, add):
        ctx.dim, ctx.idx, ctx.add = dim, idx, add
        out = x.copy()
        full = _full_index(idx, dim)
        src_part = src[tuple(slice(0, s) for s in idx.shape)]
        if add:
            np.add.at(out, full, src_part)
        else:
            out[full] = src_part
        ctx.src_shape = src.shape
        return out

    @staticmethod
    def backward(ctx, dy):
        full = _full_index(ctx.idx, ctx.dim)
        dx = dy.copy()
        if not ctx.add:
            dx[full] = 0
        dsrc = np.zeros(ctx.src_shape, dtype=dy.dtype)
        dsrc[tuple(slice(0, s) for s in ctx.idx.shape)] = dy[full]
        return dx, dsrc, None, None, None


def scatter(input, dim, index, src=None, value=None, add=False):
    from ..tensor import Tensor
    op = "scatter_add" if add else "scatter"
    d = normalize_dim(dim, input.ndim, op)
    idx = _index_array(index, op)
    _check_gather_index(input.shape, idx, d, op)
    idx = np.where(idx < 0, idx + input.shape[d], idx)
    if src is None:
        if value is None:
            raise TypeError(f"{op}: expected src (a tensor) or value (a number)")
        src = Tensor._wrap(np.full(idx.shape, value, dtype=input.dtype))
    elif not isinstance(src, Tensor):
        src = Tensor._wrap(np.full(idx.shape, src, dtype=input.dtype))
    if src.ndim != idx.ndim or any(i > s for i, s in zip(idx.shape, src.shape)):
        raise RuntimeError(f"{op}: index shape {tuple(idx.shape)} must not exceed src shape {tuple(src.shape)}")
    if src.dtype != input.dtype:
        raise RuntimeError(f"{op}: src dtype {src.dtype} does not match input dtype {input.dtype}")
    return Scatter.apply(input, src, d, idx, add)


def _index_select_samples(dt):
    x = _rng(72).standard_normal((4, 3)).astype(dt)
    return [Sample((x,), {"dim": 0, "index": np.array([3, 0, 3])}), Sample((x,), {"dim": 1, "index": np.array([2])})]


@register("index_select", kernels=("numpy take", "numpy add.at"), dtypes=_F,
          call=lambda x, dim=0, index=None: x.index_select(dim, _wrap_index(index)), samples=_index_select_samples,
          bad_samples=lambda: [BadSample((np.ones((2, 2)),), {"dim": 0, "index": np.array([2])}, IndexError)],
          reference=lambda x, dim=0, index=None: np.take(x, index, axis=dim),
          torch=lambda torch, x, dim=0, index=None: torch.index_select(x, dim, torch.as_tensor(index)))
class IndexSelect(Function):
    @staticmethod
    def forward(ctx, x, dim, idx):
        ctx.shape, ctx.dim, ctx.idx = x.shape, dim, idx
        return np.take(x, idx, axis=dim)

    @staticmethod
    def backward(ctx, dy):
        dx = np.zeros(ctx.shape, dtype=dy.dtype)
        sl = [slice(None)] * len(ctx.shape)
        sl[ctx.dim] = ctx.idx
        np.add.at(dx, tuple(sl), dy)
        return dx, None, None


def index_select(input, dim, index):
    d = normalize_dim(dim, input.ndim, "index_select")
    idx = _index_array(index, "index_select")
    if idx.ndim > 1:
        raise IndexError(f"index_select: index must be 0-d or 1-d, got {idx.ndim}-d")
    idx = idx.reshape(-1)
    n = input.shape[d] if input.ndim else 1
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"index_select: index out of range for dim {d} with size {n}")
    idx = np.where(idx < 0, idx + n, idx)
    if input.ndim == 0:
        return IndexSelect.apply(input.reshape(1), 0, idx).reshape(())
    return IndexSelect.apply(input, d, idx)


def _masked_fill_samples(dt):
    r = _rng(73)
    return [Sample((r.standard_normal((3, 4)).astype(dt),), {"mask": r.random((3, 4)) > 0.5, "value": -2.5}),
            Sample((r.standard_normal((3, 4)).astype(dt),), {"mask": r.random((4,)) > 0.5, "value": 0.0},
                   name="broadcast_mask")]


@register("masked_fill", kernels=("numpy where",), dtypes=_F,
          call=lambda x, mask=None, value=0.0: x.masked_fill(_wrap_index_bool(mask), value),
          samples=_masked_fill_samples,
          reference=lambda x, mask=None, value=0.0: np.where(mask, x.dtype.type(value), x),
          torch=lambda torch, x, mask=None, value=0.0: x.masked_fill(torch.as_tensor(mask), value))
class MaskedFill(Function):
    @staticmethod
    def forward(ctx, x, mask, value):
        ctx.mask = mask
        return np.where(mask, x.dtype.type(value), x)

    @staticmethod
    def backward(ctx, dy):
        return np.where(ctx.mask, dy.dtype.type(0), dy), None, None


def _wrap_index_bool(mask):
    from ..tensor import Tensor
    return mask if isinstance(mask, Tensor) else Tensor._wrap(np.asarray(mask))


def masked_fill(input, mask, value):
    m = np.asarray(mask._data if hasattr(mask, "_data") else mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {m.dtype}")
    try:
        np.broadcast_shapes(m.shape, input.shape)
    except ValueError:
        raise RuntimeError(f"masked_fill: mask of shape {tuple(m.shape)} does not broadcast to input "
                           f"shape {tuple(input.shape)}") from None
    if np.broadcast_shapes(m.shape, input.shape) != tuple(input.shape):
        raise RuntimeError(f"masked_fill: mask of shape {tuple(m.shape)} would change input shape {tuple(input.shape)}")
    if isinstance(value, (Tensor, np.ndarray)):
        if np.asarray(value).ndim != 0:
            raise RuntimeError("masked_fill: value must be a number or a 0-d tensor")
        value = np.asarray(value).item()
    if input.dtype.kind in "iub":
        return input._wrap(np.where(m, np.asarray(value).astype(input.dtype), input._data))
    return MaskedFill.apply(input, m, value)


def _sorted_indices(x, dim, descending):
    """Stable order along dim. NOTE: NaN counts as the largest value, as in PyTorch: last when
    ascending (NumPy's rule), first when descending."""
    if not descending:
        return np.argsort(x, axis=dim, kind="stable")
    if x.dtype.kind == "f":
        key = np.where(np.isnan(x), -np.inf, -x)
    elif x.dtype == np.bool_:
        key = ~x
    else:
        key = -x.astype(np.float64) if x.dtype.kind == "u" else -x.astype(np.int64)
    return np.argsort(key, axis=dim, kind="stable")


class _ValuesIndices(tuple):
    """(values, indices) with PyTorch's field names."""

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def sort(input, dim=-1, descending=False, stable=False):
    from ..tensor import Tensor
    d = normalize_dim(dim, input.ndim, "sort")
    if input.ndim == 0:
        return _ValuesIndices((input.clone() if input.requires_grad else input, Tensor._wrap(np.zeros((), np.int64))))
    idx = _sorted_indices(input._data, d, descending)
    values = Gather.apply(input, d, idx) if input.dtype in _F else Tensor._wrap(np.take_along_axis(input._data, idx, d))
    return _ValuesIndices((values, Tensor._wrap(idx.astype(np.int64))))


def argsort(input, dim=-1, descending=False, stable=False):
    return sort(input, dim, descending, stable)[1]


def topk(input, k, dim=-1, largest=True, sorted=True):
    from ..tensor import Tensor
    d = normalize_dim(dim, input.ndim, "topk")
    n = input.shape[d] if input.ndim else 1
    if not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise RuntimeError(f"topk: k ({k}) out of range for dim {d} of size {n}")
    if input.ndim == 0:
        return sort(input)
    idx = _sorted_indices(input._data, d, largest)
    idx = np.take(idx, np.arange(k), axis=d)
    values = Gather.apply(input, d, idx) if input.dtype in _F else Tensor._wrap(np.take_along_axis(input._data, idx, d))
    return _ValuesIndices((values, Tensor._wrap(idx.astype(np.int64))))


def _repeat_samples(dt):
    x = _rng(74).standard_normal((2, 3)).astype(dt)
    return [Sample((x,), {"sizes": (2, 1)}), Sample((x,), {"sizes": (2, 1, 3)}, name="new_dim")]


@register("repeat", kernels=("numpy tile",), dtypes=_F, call=lambda x, sizes=(2, 1): x.repeat(*sizes),
          samples=_repeat_samples, reference=lambda x, sizes=(2, 1): np.tile(x, sizes),
          torch=lambda torch, x, sizes=(2, 1): x.repeat(*sizes))
class Repeat(Function):
    """Tile x `sizes` times along each dim (new leading dims allowed); the gradient sums the tiles."""

    @staticmethod
    def forward(ctx, x, sizes):
        shape = (1,) * (len(sizes) - x.ndim) + x.shape
        ctx.shape, ctx.full, ctx.sizes = x.shape, shape, sizes
        return np.tile(x.reshape(shape), sizes)

    @staticmethod
    def backward(ctx, dy):
        split = []
        for r, s in zip(ctx.sizes, ctx.full):
            split += [r, s]
        g = dy.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return g.reshape(ctx.shape), None


def repeat(input, *sizes):
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than the "
                           f"number of tensor dims ({input.ndim})")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"repeat: sizes must be non-negative, got {sizes}")
    return Repeat.apply(input, sizes)


# ---------------------------------------------------------------- scatter_reduce
_REDUCE_AT = {"sum": np.add, "mean": np.add, "prod": np.multiply, "amax": np.maximum, "amin": np.minimum}


def _reduce_identity(reduce, dtype):
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    if np.dtype(dtype).kind == "f":
        return -np.inf if reduce == "amax" else np.inf
    info = np.iinfo(dtype)
    return info.min if reduce == "amax" else info.max


def _scatter_reduce_samples(dt):
    r = _rng(73)
    x = r.standard_normal((3, 4)).astype(dt)
    src = r.standard_normal((2, 4)).astype(dt)
    idx = np.array([[0, 1, 2, 0], [2, 1, 1, 0]])
    return [Sample((x, src), {"dim": 0, "index": idx, "reduce": red, "include_self": inc}, name=f"{red}-{inc}")
            for red in ("sum", "mean", "prod", "amax", "amin") for inc in (True, False)]


@register("scatter_reduce", kernels=("numpy ufunc.at",), dtypes=_F,
          call=lambda x, src, dim=0, index=None, reduce="sum", include_self=True:
          x.scatter_reduce(dim, _wrap_index(index), src, reduce, include_self=include_self),
          samples=_scatter_reduce_samples,
          torch=lambda torch, x, src, dim=0, index=None, reduce="sum", include_self=True:
          x.scatter_reduce(dim, torch.as_tensor(index), src, reduce, include_self=include_self))
class ScatterReduce(Function):
    """out = x with src reduced into out[index] along dim by sum / prod / mean / amax / amin
    (include_self=False: the places written start from the reduction's identity instead of x).
    Gradients as PyTorch's: sum passes dy through; mean divides it by each place's count; prod
    multiplies by the product of the other operands (exact with zeros); amax / amin split it
    evenly among the operands equal to the result."""

    @staticmethod
    def forward(ctx, x, src, dim, idx, reduce, include_self):
        full = _full_index(idx, dim)
        part = src[tuple(slice(0, s) for s in idx.shape)]
        out = x.copy()
        hit = np.zeros(x.shape, bool)
        hit[full] = True
        if not include_self:
            out[hit] = _reduce_identity(reduce, x.dtype)
        _REDUCE_AT[reduce].at(out, full, part)
        count = None
        if reduce == "mean":
            count = np.where(hit & include_self, 1, 0).astype(x.dtype)
            np.add.at(count, full, 1)
            count = np.maximum(count, 1)
            out = np.where(hit, out / count if x.dtype.kind == "f" else out // count, out).astype(x.dtype)
        ctx.dim, ctx.idx, ctx.reduce, ctx.include_self = dim, idx, reduce, include_self
        ctx.hit, ctx.count, ctx.src_shape = hit, count, src.shape
        ctx.x, ctx.part, ctx.out = x, part, out
        return out

    @staticmethod
    def backward(ctx, dy):
        full, reduce, hit = _full_index(ctx.idx, ctx.dim), ctx.reduce, ctx.hit
        x, part, out = ctx.x, ctx.part, ctx.out
        own = ~hit | ctx.include_self          # where x takes part in the result
        if reduce == "sum":
            dx, dpart = np.where(own, dy, 0), dy[full]
        elif reduce == "mean":
            g = dy / ctx.count
            dx, dpart = np.where(own, g, 0), g[full]
        elif reduce == "prod":
            # the product of the others at each place: total / v without zeros; with one zero,
            # the zero's share is the product of the nonzeros and everyone else's is 0
            zeros = np.where(own & (x == 0), 1, 0)
            np.add.at(zeros, full, (part == 0).astype(np.int64))
            nz = np.where(own & (x != 0), x, 1).astype(x.dtype)
            np.multiply.at(nz, full, np.where(part == 0, 1, part))
            with np.errstate(divide="ignore", invalid="ignore"):
                dx = np.where(zeros == 0, out / np.where(x == 0, 1, x),
                              np.where((zeros == 1) & (x == 0), nz, 0))
                z, n = zeros[full], nz[full]
                dpart = np.where(z == 0, out[full] / np.where(part == 0, 1, part),
                                 np.where((z == 1) & (part == 0), n, 0))
            dx, dpart = np.where(own, dx * dy, 0), dpart * dy[full]
        else:
            ties = np.where(own & (x == out), 1, 0).astype(dy.dtype)
            np.add.at(ties, full, (part == out[full]).astype(dy.dtype))
            g = dy / np.maximum(ties, 1)
            dx = np.where(own & (x == out), g, 0)
            dpart = np.where(part == out[full], g[full], 0)
        dsrc = np.zeros(ctx.src_shape, dtype=dy.dtype)
        dsrc[tuple(slice(0, s) for s in ctx.idx.shape)] = dpart
        return dx.astype(dy.dtype), dsrc, None, None, None, None


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """PyTorch's scatter_reduce: src reduced into input's places named by index along dim."""
    op = "scatter_reduce"
    reduce = {"max": "amax", "min": "amin"}.get(reduce, reduce)     # PyTorch takes these too
    if reduce not in _REDUCE_AT:
        raise RuntimeError(f"{op}(): reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    if not isinstance(src, Tensor):
        raise TypeError(f"{op}(): argument 'src' must be Tensor, not {type(src).__name__}")
    d = normalize_dim(dim, input.ndim, op)
    idx = _index_array(index, op)
    _check_gather_index(input.shape, idx, d, op)
    if src.ndim != idx.ndim or any(i > s for i, s in zip(idx.shape, src.shape)):
        raise RuntimeError(f"{op}: index shape {tuple(idx.shape)} must not exceed src shape {tuple(src.shape)}")
    if src.dtype != input.dtype:
        raise RuntimeError(f"{op}(): Expected self.dtype to be equal to src.dtype")
    idx = np.where(idx < 0, idx + input.shape[d], idx)
    return ScatterReduce.apply(input, src, d, idx, reduce, bool(include_self))
