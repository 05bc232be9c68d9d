"""Convolution and pooling with autograd: each primitive calls its forward kernel in ``_C`` and
its backward rule sits right below it, calling the matching backward kernel.

1-D ops run the 2-D kernels on (N, C, 1, L) views; unbatched inputs ((C, H, W) or (C, L)) get a
leading batch axis of 1, as in PyTorch.

>>> import lamina, lamina.nn.functional as F
>>> x = lamina.randn(2, 3, 8, 8, requires_grad=True)
>>> w = lamina.randn(4, 3, 3, 3, requires_grad=True)
>>> y = F.max_pool2d(F.conv2d(x, w, padding=1), 2)
>>> tuple(y.shape)
(2, 4, 4, 4)
>>> y.sum().backward(); tuple(x.grad.shape)
(2, 3, 8, 8)
"""
import numbers

import numpy as np

from .. import _C
from ..tensor import Function, Tensor

__all__ = ["conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
           "adaptive_avg_pool2d"]


# ---- argument normalization ----------------------------------------------------------------

def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _tuple(v, n, name, minimum):
    """int or length-n sequence of ints -> n-tuple, each >= minimum (ValueError naming `name`)."""
    if _is_int(v):
        t = (int(v),) * n
    elif isinstance(v, (tuple, list)) and len(v) == n and all(_is_int(e) for e in v):
        t = tuple(int(e) for e in v)
    else:
        raise ValueError(f"{name}: expected an int or a tuple of {n} ints, got {v!r}")
    if any(e < minimum for e in t):
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name}: expected {kind} values, got {v!r}")
    if any(e >= 2 ** 31 for e in t):  # as the kernels' bound; checked before any allocation
        raise ValueError(f"{name}: expected values below 2^31, got {v!r}")
    return t


def _as_array(t, name):
    if isinstance(t, Tensor):
        return t.data
    if isinstance(t, np.ndarray):
        return t
    raise TypeError(f"{name}: expected a lamina.Tensor, got {type(t).__name__}")


def _check_float(a, name):
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected dtype float32 or float64, got {a.dtype}")


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# ---- convolution -------------------------------------------------------------------------

class Conv2dFn(Function):
    """y = conv2d(x, w) + b on (N, C, H, W); stride / padding / dilation are (h, w) pairs."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        b = None if b is None else np.ascontiguousarray(b)
        N, _, H, W = x.shape
        OH = _out_size(H, w.shape[2], stride[0], padding[0], dilation[0])
        OW = _out_size(W, w.shape[3], stride[1], padding[1], dilation[1])
        # The kernel validates everything; a negative size only reaches it as a clear error.
        y = np.empty((N, w.shape[0], max(OH, 0), max(OW, 0)), dtype=x.dtype)
        _C.conv2d_forward(x, w, b, y, stride, padding, dilation, groups)
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation, groups)
        ctx.has_bias = b is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx = np.empty_like(x) if need[0] else None
        dw = np.empty_like(w) if need[1] else None
        db = np.empty(w.shape[0], dtype=w.dtype) if ctx.has_bias and need[2] else None
        if dx is not None or dw is not None or db is not None:
            _C.conv2d_backward(x, w, np.ascontiguousarray(dy, dtype=x.dtype), dx, dw, db, *ctx.conf)
        return dx, dw, db, None, None, None, None


class Conv1dFn(Function):
    """y = conv1d(x, w) + b on (N, C, L): the 2-D kernels on (N, C, 1, L) views."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        x4, w4 = np.ascontiguousarray(x)[:, :, None, :], np.ascontiguousarray(w)[:, :, None, :]
        y = Conv2dFn.forward(ctx, x4, w4, b, (1, stride), (0, padding), (1, dilation), groups)
        return y[:, :, 0, :]

    @staticmethod
    def backward(ctx, dy):
        dx, dw, db, *rest = Conv2dFn.backward(ctx, dy[:, :, None, :])
        return (None if dx is None else dx[:, :, 0, :], None if dw is None else dw[:, :, 0, :], db,
                *rest)


def _check_conv(input, weight, bias, groups, nd):
    x, w = _as_array(input, "input"), _as_array(weight, "weight")
    if x.ndim not in (nd + 1, nd + 2):
        want = "(C, L) or (N, C, L)" if nd == 1 else "(C, H, W) or (N, C, H, W)"
        raise ValueError(f"input: expected a {nd + 1}-D or {nd + 2}-D tensor {want}, got shape {x.shape}")
    if w.ndim != nd + 2:
        want = "(out_channels, in_channels/groups, kW)" if nd == 1 else \
            "(out_channels, in_channels/groups, kH, kW)"
        raise ValueError(f"weight: expected a {nd + 2}-D tensor {want}, got shape {w.shape}")
    _check_float(x, "input")
    if w.dtype != x.dtype:
        raise TypeError(f"weight: expected dtype {x.dtype} (the input's), got {w.dtype}")
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups: expected a positive integer, got {groups!r}")
    C = x.shape[-nd - 1]
    if C % groups or w.shape[0] % groups:
        raise ValueError(f"groups: in_channels ({C}) and out_channels ({w.shape[0]}) must both be "
                         f"divisible by groups={groups}")
    if w.shape[1] * groups != C:
        raise ValueError(f"weight: expected shape[1] = in_channels/groups = {C // groups}, "
                         f"got weight shape {w.shape} for input shape {x.shape}")
    if bias is not None:
        b = _as_array(bias, "bias")
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias: expected shape ({w.shape[0]},), got {b.shape}")
        if b.dtype != x.dtype:
            raise TypeError(f"bias: expected dtype {x.dtype} (the input's), got {b.dtype}")
    return x.ndim == nd + 1  # unbatched


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, PyTorch's ``torch.nn.functional.conv2d``.

    >>> import lamina, lamina.nn.functional as F
    >>> F.conv2d(lamina.ones(1, 1, 3, 3), lamina.ones(1, 1, 2, 2)).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    unbatched = _check_conv(input, weight, bias, groups, 2)
    if isinstance(padding, str):
        padding = _string_padding(padding, weight.shape[2:], _tuple(dilation, 2, "dilation", 1),
                                  _tuple(stride, 2, "stride", 1))
    args = (_tuple(stride, 2, "stride", 1), _tuple(padding, 2, "padding", 0),
            _tuple(dilation, 2, "dilation", 1), int(groups))
    if unbatched:
        return Conv2dFn.apply(input.reshape(1, *input.shape), weight, bias, *args).reshape(
            -1, *_spatial_out(input.shape[-2:], weight.shape[-2:], *args[:3]))
    return Conv2dFn.apply(input, weight, bias, *args)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation, PyTorch's ``torch.nn.functional.conv1d``.

    >>> import lamina, lamina.nn.functional as F
    >>> F.conv1d(lamina.tensor([[[1.0, 2.0, 3.0]]]), lamina.tensor([[[1.0, -1.0]]])).tolist()
    [[[-1.0, -1.0]]]
    """
    unbatched = _check_conv(input, weight, bias, groups, 1)
    if isinstance(padding, str):
        padding = _string_padding(padding, weight.shape[2:], _tuple(dilation, 1, "dilation", 1),
                                  _tuple(stride, 1, "stride", 1))
    args = (_tuple(stride, 1, "stride", 1)[0], _tuple(padding, 1, "padding", 0)[0],
            _tuple(dilation, 1, "dilation", 1)[0], int(groups))
    if unbatched:
        L = _out_size(input.shape[-1], weight.shape[-1], args[0], args[1], args[2])
        return Conv1dFn.apply(input.reshape(1, *input.shape), weight, bias, *args).reshape(-1, L)
    return Conv1dFn.apply(input, weight, bias, *args)


def _spatial_out(size, kernel, stride, padding, dilation):
    return tuple(_out_size(s, k, st, p, d) for s, k, st, p, d in zip(size, kernel, stride, padding, dilation))


def _string_padding(mode, kernel, dilation, stride):
    """padding='valid' -> 0; 'same' -> symmetric padding keeping the size (stride 1, odd extent)."""
    if mode == "valid":
        return (0,) * len(kernel)
    if mode == "same":
        if any(s != 1 for s in stride):
            raise ValueError("padding: 'same' is only supported with stride 1")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        if any(t % 2 for t in total):
            raise ValueError("padding: 'same' needs an odd (dilated) kernel extent here "
                             "(asymmetric padding is not supported)")
        return tuple(t // 2 for t in total)
    raise ValueError(f"padding: expected an int, a tuple, 'valid' or 'same', got {mode!r}")


# ---- pooling -----------------------------------------------------------------------------

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
        ctx.indices, ctx.x_shape = idx, x.shape
        ctx.conf = (kernel, stride, padding, dilation, ceil_mode)
        if holder is not None:
            holder.append(idx)
        return y

    @staticmethod
    def backward(ctx, dy):
        dx = np.empty(ctx.x_shape, dtype=dy.dtype)
        _C.max_pool2d_backward(np.ascontiguousarray(dy), ctx.indices, dx, *ctx.conf)
        return dx, None, None, None, None, None, None


class AvgPool2dFn(Function):
    """Mean over windows of (N, C, H, W) (PyTorch's divisor rules)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        x = np.ascontiguousarray(x)
        N, C, H, W = x.shape
        OH = _C.pool_output_size(H, kernel[0], stride[0], padding[0], 1, ceil_mode)
        OW = _C.pool_output_size(W, kernel[1], stride[1], padding[1], 1, ceil_mode)
        y = np.empty((N, C, max(OH, 0), max(OW, 0)), dtype=x.dtype)
        conf = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        _C.avg_pool2d_forward(x, y, *conf)
        ctx.x_shape, ctx.conf = x.shape, conf
        return y

    @staticmethod
    def backward(ctx, dy):
        dx = np.empty(ctx.x_shape, dtype=dy.dtype)
        _C.avg_pool2d_backward(np.ascontiguousarray(dy), dx, *ctx.conf)
        return dx, None, None, None, None, None, None


class AdaptiveAvgPool2dFn(Function):
    """Mean over PyTorch's adaptive windows [floor(i*In/Out), ceil((i+1)*In/Out))."""

    @staticmethod
    def forward(ctx, x, output_size):
        x = np.ascontiguousarray(x)
        y = np.empty(x.shape[:2] + tuple(output_size), dtype=x.dtype)
        _C.adaptive_avg_pool2d_forward(x, y)
        ctx.x_shape = x.shape
        return y

    @staticmethod
    def backward(ctx, dy):
        dx = np.empty(ctx.x_shape, dtype=dy.dtype)
        _C.adaptive_avg_pool2d_backward(np.ascontiguousarray(dy), dx)
        return dx, None


def _pool_input(input, nd):
    x = _as_array(input, "input")
    if x.ndim not in (nd + 1, nd + 2):
        want = "(C, L) or (N, C, L)" if nd == 1 else "(C, H, W) or (N, C, H, W)"
        raise ValueError(f"input: expected a {nd + 1}-D or {nd + 2}-D tensor {want}, got shape {x.shape}")
    _check_float(x, "input")
    return x


def _to4d(input, nd):
    """(N, C, H, W) Tensor view of a 1-D/2-D, batched/unbatched input, and the shape to return to."""
    x = input.data if isinstance(input, Tensor) else input
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
        return y, Tensor(holder[0].reshape(y.shape))
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
