"""Pooling (max, average, adaptive average; 1-D and 2-D) with autograd and its graph lowering.

1-D ops run the 2-D kernels on (N, C, 1, L) views; unbatched inputs get a batch axis of 1.

>>> import lamina, lamina.nn.functional as F
>>> F.max_pool2d(lamina.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
[[[[5.0, 7.0], [13.0, 15.0]]]]
"""
from collections import namedtuple

import numpy as np

from .. import _C
from ..tensor import Function, Tensor, float32, float64
from ._common import is_float
from ._params import AdaptivePoolAttrs, PoolAttrs, PoolParams
from ._window import _as_array, _check_float, _is_int, _tuple
from .registry import BadSample, Sample, register

__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_max_pool2d", "adaptive_max_pool1d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices"]
_F = (float32, float64)


# ---- lowering: pooling sizes travel as PoolParams (graph/ir.py)
def _pool_params(x, kernel, stride, padding, dilation, ceil_mode):
    N, C, H, W = x.shape
    return PoolParams(N=N, C=C, H=H, W=W, KH=int(kernel[0]), KW=int(kernel[1]), stride_h=int(stride[0]),
                      stride_w=int(stride[1]), pad_h=int(padding[0]), pad_w=int(padding[1]),
                      dil_h=int(dilation[0]), dil_w=int(dilation[1]), ceil_mode=bool(ceil_mode))


# ---- the one backward of each pooling op (eager and compiled), beside what its forward keeps
MaxPoolSaved = namedtuple("MaxPoolSaved", "idx pool")            # argmax (int64, like y), PoolParams
AvgPoolSaved = namedtuple("AvgPoolSaved", "pool count_include_pad divisor_override")
AdaptivePoolSaved = namedtuple("AdaptivePoolSaved", "x_shape")


def _max_pool_rule(k, s, dy, out):
    idx, pool = s
    return k.max_pool_bwd(dy, idx, pool, out=out[0]), None, None, None, None, None, None


def _avg_pool_rule(k, s, dy, out):
    pool, count_include_pad, divisor_override = s
    return k.avg_pool_bwd(dy, pool, count_include_pad, divisor_override, out=out[0]), None, None, None, None, None, \
        None


def _adaptive_avg_pool_rule(k, s, dy, out):
    (x_shape,) = s
    return k.adaptive_avg_pool_bwd(dy, x_shape, out=out[0]), None


def _lower_max_pool(L, fn):
    x = fn.args[0]
    kernel, stride, padding, dilation, ceil_mode, holder = fn.args[1:7]
    if holder is not None or len(x.shape) != 4 or not is_float(x):
        return False      # return_indices hands the indices to Python: keep the eager call
    idx = L.g.value(fn.out.shape, np.int64, "temp", "argmax")
    pool = _pool_params(x, kernel, stride, padding, dilation, ceil_mode)
    fn.saved = MaxPoolSaved(idx=idx, pool=pool)
    L.emit("max_pool_fwd", [x], [fn.out, idx], PoolAttrs(params=pool), src=fn.op)
    fn.lowered_by = "pool"
    return True


def _lower_avg_pool(L, fn):
    x = fn.args[0]
    kernel, stride, padding, ceil_mode, count_include_pad, divisor = fn.args[1:7]
    if len(x.shape) != 4 or not is_float(x):
        return False
    fn.saved = AvgPoolSaved(pool=_pool_params(x, kernel, stride, padding, (1, 1), ceil_mode),
                            count_include_pad=bool(count_include_pad), divisor_override=int(divisor or 0))
    L.emit("avg_pool_fwd", [x], [fn.out], PoolAttrs(params=fn.saved.pool, count_include_pad=fn.saved.count_include_pad,
                                                    divisor_override=fn.saved.divisor_override), src=fn.op)
    fn.lowered_by = "pool"
    return True


def _lower_adaptive_avg_pool(L, fn):
    x = fn.args[0]
    if len(x.shape) != 4 or not is_float(x):
        return False
    (N, C, H, W), (OH, OW) = x.shape, fn.out.shape[2:]
    L.emit("adaptive_avg_pool_fwd", [x], [fn.out], AdaptivePoolAttrs(N=N, C=C, H=H, W=W, OH=OH, OW=OW), src=fn.op)
    fn.saved = AdaptivePoolSaved(x_shape=x.shape)
    fn.lowered_by = "pool"
    return True


def _x(dt, shape, seed=70):
    # distinct values: max-pool ties would make the gradient ambiguous
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n).reshape(shape) * 0.01).astype(dt)


def _pool_bad():
    return [BadSample((np.ones((1, 1, 4, 4), np.float32),), {"kernel_size": 0}, ValueError, "kernel_size"),
            BadSample((np.ones((4, 4), np.float32),), {"kernel_size": 2}, ValueError, "input"),
            BadSample((np.ones((1, 1, 4, 4), np.int64),), {"kernel_size": 2}, TypeError, "input")]


@register("max_pool2d", lower=_lower_max_pool, backward=_max_pool_rule,
          kernels=("_C.max_pool2d_forward", "_C.max_pool2d_backward"), dtypes=_F,
          call=lambda x, **kw: max_pool2d(x, **kw),
          samples=lambda dt: [Sample((_x(dt, (2, 3, 6, 6)),), {"kernel_size": 2}),
                              Sample((_x(dt, (1, 2, 7, 5)),), {"kernel_size": 3, "stride": 2, "padding": 1,
                                                               "ceil_mode": True}, name="ceil"),
                              Sample((_x(dt, (1, 1, 5, 5)),), {"kernel_size": 2, "dilation": 2}, name="dilated"),
                              Sample((_x(dt, (3, 4, 4)),), {"kernel_size": 2}, name="unbatched")],
          bad_samples=_pool_bad, torch=lambda torch, x, **kw: torch.nn.functional.max_pool2d(x, **kw))
class MaxPool2dFn(Function):
    """Max over windows of (N, C, H, W); argmax kept (int64, flat in each H*W plane).
    NOTE: ties route the gradient to the FIRST max in row-major window order; NaN wins."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode, holder):
        x = np.ascontiguousarray(x)
        N, C, H, W = x.shape
        OH = _C.pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
        OW = _C.pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
        y = np.empty((N, C, max(OH, 0), max(OW, 0)), dtype=x.dtype)
        idx = np.empty(y.shape, dtype=np.int64)
        _C.max_pool2d_forward(x, y, idx, kernel, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(*MaxPoolSaved(idx=idx, pool=_pool_params(x, kernel, stride, padding, dilation,
                                                                       ceil_mode)))
        if holder is not None:
            holder.append(idx)
        return y


@register("avg_pool2d", lower=_lower_avg_pool, backward=_avg_pool_rule,
          kernels=("_C.avg_pool2d_forward", "_C.avg_pool2d_backward"), dtypes=_F,
          call=lambda x, **kw: avg_pool2d(x, **kw),
          samples=lambda dt: [Sample((_x(dt, (2, 3, 6, 6)),), {"kernel_size": 2}),
                              Sample((_x(dt, (1, 2, 7, 5)),), {"kernel_size": 3, "stride": 2, "padding": 1,
                                                               "count_include_pad": False}, name="pad")],
          bad_samples=_pool_bad, torch=lambda torch, x, **kw: torch.nn.functional.avg_pool2d(x, **kw))
class AvgPool2dFn(Function):
    """Mean over windows of (N, C, H, W) (PyTorch's divisor rules)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        x = np.ascontiguousarray(x)
        N, C, H, W = x.shape
        OH = _C.pool_output_size(H, kernel[0], stride[0], padding[0], 1, ceil_mode)
        OW = _C.pool_output_size(W, kernel[1], stride[1], padding[1], 1, ceil_mode)
        y = np.empty((N, C, max(OH, 0), max(OW, 0)), dtype=x.dtype)
        _C.avg_pool2d_forward(x, y, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        ctx.save_for_backward(*AvgPoolSaved(pool=_pool_params(x, kernel, stride, padding, (1, 1), ceil_mode),
                                            count_include_pad=count_include_pad,
                                            divisor_override=divisor_override))
        return y


@register("adaptive_avg_pool2d", lower=_lower_adaptive_avg_pool, backward=_adaptive_avg_pool_rule,
          kernels=("_C.adaptive_avg_pool2d_forward", "_C.adaptive_avg_pool2d_backward"), dtypes=_F,
          call=lambda x, output_size=1: adaptive_avg_pool2d(x, output_size),
          samples=lambda dt: [Sample((_x(dt, (2, 3, 6, 5)),), {"output_size": 1}),
                              Sample((_x(dt, (1, 2, 7, 5)),), {"output_size": (3, 2)}, name="uneven")],
          torch=lambda torch, x, output_size=1: torch.nn.functional.adaptive_avg_pool2d(x, output_size))
class AdaptiveAvgPool2dFn(Function):
    """Mean over PyTorch's adaptive windows [floor(i*In/Out), ceil((i+1)*In/Out))."""

    @staticmethod
    def forward(ctx, x, output_size):
        x = np.ascontiguousarray(x)
        y = np.empty(x.shape[:2] + tuple(output_size), dtype=x.dtype)
        _C.adaptive_avg_pool2d_forward(x, y)
        ctx.save_for_backward(*AdaptivePoolSaved(x_shape=x.shape))
        return y


def _pool_input(input, nd):
    x = _as_array(input, "input")
    if x.ndim not in (nd + 1, nd + 2):
        want = "(C, L) or (N, C, L)" if nd == 1 else "(C, H, W) or (N, C, H, W)"
        raise ValueError(f"input: expected a {nd + 1}-D or {nd + 2}-D tensor {want}, got shape {x.shape}")
    _check_float(x, "input")
    return x


def _to4d(input, nd):
    """(N, C, H, W) Tensor view of a 1-D/2-D, batched/unbatched input, and the shape to return to."""
    x = input._data if isinstance(input, Tensor) else input
    lead = x.shape[:-nd]  # (N, C) or (C,)
    shape4 = (int(np.prod(lead[:-1], dtype=np.int64)) if len(lead) > 1 else 1, lead[-1]) + \
        ((1,) if nd == 1 else ()) + x.shape[-nd:]
    if isinstance(input, Tensor):
        return input.reshape(*shape4), lead
    return x.reshape(shape4), lead


def _from4d(y, lead, nd):
    return y.reshape(*lead, *y.shape[4 - nd:])


def _pool_args(kernel_size, stride, padding, nd):
    k = _tuple(kernel_size, nd, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _tuple(stride, nd, "stride", 1)
    p = _tuple(padding, nd, "padding", 0)
    if any(2 * pp > kk for pp, kk in zip(p, k)):
        raise ValueError(f"padding: expected at most half the kernel size {k}, got {p}")
    return k, s, p


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling, PyTorch's ``torch.nn.functional.max_pool2d``.

    >>> import lamina, lamina.nn.functional as F
    >>> F.max_pool2d(lamina.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling, PyTorch's ``torch.nn.functional.max_pool1d``."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd):
    _pool_input(input, nd)
    k, s, p = _pool_args(kernel_size, stride, padding, nd)
    d = _tuple(dilation, nd, "dilation", 1)
    if nd == 1:
        k, s, p, d = (1,) + k, (1,) + s, (0,) + p, (1,) + d
    x4, lead = _to4d(input, nd)
    holder = [] if return_indices else None
    y = _from4d(MaxPool2dFn.apply(x4, k, s, p, d, bool(ceil_mode), holder), lead, nd)
    if return_indices:
        return y, Tensor._wrap(np.ascontiguousarray(holder[0].reshape(y.shape)))
    return y


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling, PyTorch's ``torch.nn.functional.avg_pool2d``.

    >>> import lamina, lamina.nn.functional as F
    >>> F.avg_pool2d(lamina.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[2.5, 4.5], [10.5, 12.5]]]]
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling, PyTorch's ``torch.nn.functional.avg_pool1d``."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1)


def _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, nd):
    _pool_input(input, nd)
    k, s, p = _pool_args(kernel_size, stride, padding, nd)
    if divisor_override is not None and (not _is_int(divisor_override) or divisor_override < 1):
        raise ValueError(f"divisor_override: expected a positive integer or None, got {divisor_override!r}")
    if nd == 1:
        k, s, p = (1,) + k, (1,) + s, (0,) + p
    x4, lead = _to4d(input, nd)
    y = AvgPool2dFn.apply(x4, k, s, p, bool(ceil_mode), bool(count_include_pad),
                          int(divisor_override or 0))
    return _from4d(y, lead, nd)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size, PyTorch's ``adaptive_avg_pool2d``
    (None in output_size keeps that input size).

    >>> import lamina, lamina.nn.functional as F
    >>> F.adaptive_avg_pool2d(lamina.arange(16.0).reshape(1, 1, 4, 4), 1).tolist()
    [[[[7.5]]]]
    """
    x = _pool_input(input, 2)
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        out = tuple(x.shape[-2 + i] if v is None else v for i, v in enumerate(output_size))
    else:
        out = output_size
    out = _tuple(out, 2, "output_size", 1)
    x4, lead = _to4d(input, 2)
    return _from4d(AdaptiveAvgPool2dFn.apply(x4, out), lead, 2)


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of (N, C, L) or (C, L) to `output_size` positions: the 2-D op on (.., 1, L)."""
    n = _tuple(output_size, 1, "output_size", 1)[0] if not isinstance(output_size, int) else output_size
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, n)).squeeze(-2)


def _adaptive_bounds(size, out):
    """PyTorch's adaptive windows: [floor(i size / out), ceil((i + 1) size / out)) for each i."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of (N, C, H, W) or (C, H, W) to `output_size`, PyTorch's windows; the indices
    (with return_indices) are flat positions in each H x W plane, the first maximum's. A size that
    divides evenly is plain max pooling; otherwise each output cell takes the max of its window."""
    from .shape import stack
    if not isinstance(input, Tensor):
        raise TypeError(f"input: expected a lamina Tensor, got {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise ValueError(f"input: expected (C, H, W) or (N, C, H, W), got shape {tuple(input.shape)}")
    H, W = input.shape[-2:]
    os = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    oh, ow = (H if os[0] is None else int(os[0])), (W if os[1] is None else int(os[1]))
    if oh < 1 or ow < 1:
        raise ValueError(f"output_size: expected positive sizes, got {output_size!r}")
    if H % oh == 0 and W % ow == 0:
        return max_pool2d(input, (H // oh, W // ow), return_indices=return_indices)
    vals, idxs = [], []
    plane = np.arange(H * W).reshape(H, W)
    for hs, he in _adaptive_bounds(H, oh):
        for ws, we in _adaptive_bounds(W, ow):
            win = input[..., hs:he, ws:we]
            v, i = win.reshape(*win.shape[:-2], -1).max(-1)
            vals.append(v)
            if return_indices:
                idxs.append(plane[hs:he, ws:we].reshape(-1)[i.numpy()])
    y = stack(vals, -1).reshape(*input.shape[:-2], oh, ow)
    if not return_indices:
        return y
    return y, Tensor._wrap(np.stack(idxs, -1).reshape(*input.shape[:-2], oh, ow).astype(np.int64))


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of (N, C, L) or (C, L) to `output_size` positions."""
    n = output_size if isinstance(output_size, int) else tuple(output_size)[0]
    out = adaptive_max_pool2d(input.unsqueeze(-2), (1, n), return_indices)
    if return_indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


# PyTorch's F.*_with_indices: the return_indices=True forms under their own names
def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool1d(input, output_size, return_indices=True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool2d(input, output_size, return_indices=True)
