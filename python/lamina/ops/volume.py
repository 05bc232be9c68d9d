"""3-D convolution and pooling over (N, C, D, H, W) volumes (video, medical scans), PyTorch's
conv3d, max_pool3d, avg_pool3d and adaptive_avg_pool3d.

Each is built from the 2-D kernels over depth slices, so forward, backward and the compiler come
from those ops: for depth offset kd of the window, the slices the output depths read, stacked
into the batch, go through the 2-D op with the (kh, kw) part of the window; the kd results are
summed (conv, average) or maxed (max pooling). So a 3x3x3 conv3d is three conv2d calls.

>>> import lamina, lamina.nn.functional as F
>>> F.conv3d(lamina.ones(1, 1, 3, 3, 3), lamina.ones(1, 1, 2, 2, 2)).shape
lamina.Size([1, 1, 2, 2, 2])
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from ._window import _is_int, _tuple

__all__ = ["conv3d", "max_pool3d", "avg_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d",
           "adaptive_max_pool3d_with_indices", "max_pool3d_with_indices", "lp_pool3d"]


def _volume(input, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a lamina Tensor, got {type(input).__name__}")
    if input.ndim not in (4, 5):
        raise ValueError(f"{name}: expected a 4-D or 5-D input (C, D, H, W) or (N, C, D, H, W), "
                         f"got shape {tuple(input.shape)}")
    if input.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: input must be float32 or float64, got {input.dtype}")
    return input.ndim == 4


def _pool_out(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size (a ceil-mode window must start inside the input or its left pad)."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _depth_slices(x, k, s, p, d, out, fill):
    """For each depth offset kd of the window, x's depths read by the `out` outputs, padded by
    `fill`, as (N * out, C, H, W) (the depths moved into the batch)."""
    from .nn_extra import pad
    D = x.shape[2]
    right = max(p, (out - 1) * s + d * (k - 1) + 1 - D - p)
    if p or right:
        x = pad(x.transpose(2, 4), (p, right), value=fill).transpose(2, 4)  # pad dim 2 (F.pad pads the last)
    N, C, _, H, W = x.shape
    slices = []
    for kd in range(k):
        start = kd * d
        v = x[:, :, start:start + s * (out - 1) + 1:s]                 # (N, C, out, H, W)
        slices.append(v.transpose(1, 2).reshape(N * out, C, H, W))
    return slices


def _from_batch(y, N, out):
    """(N * out, C', H', W') -> (N, C', out, H', W')."""
    return y.reshape(N, out, *y.shape[1:]).transpose(1, 2)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D cross-correlation, PyTorch's ``F.conv3d`` (padding may be 'valid' or 'same')."""
    from .conv import conv2d, reversed_pad_pairs, same_pads
    unbatched = _volume(input, "conv3d")
    if unbatched:
        return conv3d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if not isinstance(weight, Tensor) or weight.ndim != 5:
        raise ValueError(f"conv3d: weight must be a 5-D tensor (K, C/groups, kD, kH, kW), got "
                         f"{tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}")
    st = _tuple(stride, 3, "stride", 1)
    dil = _tuple(dilation, 3, "dilation", 1)
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if any(v != 1 for v in st):
                raise ValueError("padding: 'same' is only supported with stride 1")
            pairs = same_pads(weight.shape[2:], dil)
            if any(b != a for b, a in pairs):   # an even extent: the odd unit after, as PyTorch
                from .nn_extra import pad
                return conv3d(pad(input, reversed_pad_pairs(pairs)), weight, bias, stride, 0, dilation, groups)
            padding = tuple(b for b, _ in pairs)
        else:
            raise ValueError(f"padding: expected an int, a tuple, 'valid' or 'same', got {padding!r}")
    pd = _tuple(padding, 3, "padding", 0)
    kD = weight.shape[2]
    if input.shape[1] != weight.shape[1] * int(groups):
        raise ValueError(f"conv3d: expected input with {weight.shape[1] * int(groups)} channels "
                         f"(weight {tuple(weight.shape)}, groups {groups}), got {input.shape[1]}")
    N, D = input.shape[0], input.shape[2]
    out = (D + 2 * pd[0] - dil[0] * (kD - 1) - 1) // st[0] + 1
    if out < 1:
        raise ValueError(f"conv3d: kernel depth {kD} (dilation {dil[0]}) is larger than the padded input "
                         f"depth {D + 2 * pd[0]}")
    y = None
    for kd, xs in enumerate(_depth_slices(input, kD, st[0], pd[0], dil[0], out, 0.0)):
        part = conv2d(xs, weight[:, :, kd], None, st[1:], pd[1:], dil[1:], groups)
        y = part if y is None else y + part
    y = _from_batch(y, N, out)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1, 1)
    return y


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-D max pooling, PyTorch's ``F.max_pool3d`` (ties go to the first maximum in (d, h, w) order)."""
    from .pool import max_pool2d
    from .shape import stack
    if return_indices:
        y = max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode)
        return y, _max_pool3d_indices(input, kernel_size, stride, padding, dilation, tuple(y.shape[-3:]))
    if _volume(input, "max_pool3d"):
        return max_pool3d(input.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode).squeeze(0)
    k = _tuple(kernel_size, 3, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _tuple(stride, 3, "stride", 1)
    p = _tuple(padding, 3, "padding", 0)
    d = _tuple(dilation, 3, "dilation", 1)
    if any(2 * pp > kk for pp, kk in zip(p, k)):
        raise ValueError(f"pad should be at most half of effective kernel size, but got pad={p} and kernel_size={k}")
    N, D = input.shape[0], input.shape[2]
    out = _pool_out(D, k[0], s[0], p[0], d[0], ceil_mode)
    parts = [max_pool2d(xs, k[1:], s[1:], p[1:], d[1:], ceil_mode)
             for xs in _depth_slices(input, k[0], s[0], p[0], d[0], out, -math.inf)]
    y = parts[0] if len(parts) == 1 else stack(parts, 0).max(0)[0]
    return _from_batch(y, N, out)


def _divisors(size, k, s, p, out, include_pad):
    """PyTorch's average-pool divisor per output along one dim."""
    res = []
    for o in range(out):
        start = o * s - p
        end = min(start + k, size + p)
        if include_pad:
            res.append(end - start)
        else:
            res.append(min(end, size) - max(start, 0))
    return np.array(res, dtype=np.float64)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-D average pooling, PyTorch's ``F.avg_pool3d`` (its divisors, with and without the padding)."""
    from .pool import avg_pool2d
    if _volume(input, "avg_pool3d"):
        return avg_pool3d(input.unsqueeze(0), kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override).squeeze(0)
    k = _tuple(kernel_size, 3, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _tuple(stride, 3, "stride", 1)
    p = _tuple(padding, 3, "padding", 0)
    if any(2 * pp > kk for pp, kk in zip(p, k)):
        raise ValueError(f"pad should be at most half of kernel size, but got pad={p} and kernel_size={k}")
    if divisor_override is not None and (not _is_int(divisor_override) or divisor_override < 1):
        raise ValueError(f"divisor_override: expected a positive integer or None, got {divisor_override!r}")
    N, D, H, W = input.shape[0], *input.shape[2:]
    out = _pool_out(D, k[0], s[0], p[0], 1, ceil_mode)
    total = None
    for xs in _depth_slices(input, k[0], s[0], p[0], 1, out, 0.0):
        part = avg_pool2d(xs, k[1:], s[1:], p[1:], ceil_mode, True, 1)     # window sums
        total = part if total is None else total + part
    y = _from_batch(total, N, out)
    if divisor_override is not None:
        return y / float(divisor_override)
    oh, ow = y.shape[3], y.shape[4]
    div = (_divisors(D, k[0], s[0], p[0], out, count_include_pad)[:, None, None]
           * _divisors(H, k[1], s[1], p[1], oh, count_include_pad)[None, :, None]
           * _divisors(W, k[2], s[2], p[2], ow, count_include_pad)[None, None, :])
    return y / Tensor._wrap(div.astype(input.dtype))


def adaptive_avg_pool3d(input, output_size):
    """Average pooling to a fixed (D, H, W) output, PyTorch's windows (None keeps that size)."""
    from .pool import _adaptive_bounds, adaptive_avg_pool2d
    from .shape import stack
    if _volume(input, "adaptive_avg_pool3d"):
        return adaptive_avg_pool3d(input.unsqueeze(0), output_size).squeeze(0)
    if isinstance(output_size, (tuple, list)) and len(output_size) == 3:
        output_size = tuple(input.shape[2 + i] if v is None else v for i, v in enumerate(output_size))
    od, oh, ow = _tuple(output_size, 3, "output_size", 1)
    planes = [adaptive_avg_pool2d(input[:, :, a:b].mean(2), (oh, ow))
              for a, b in _adaptive_bounds(input.shape[2], od)]
    return stack(planes, 2)


def _max_pool3d_indices(input, kernel_size, stride, padding, dilation, out):
    """The flat (d, h, w) position in each input volume of every window's first maximum, as
    PyTorch's max_pool3d(return_indices=True) gives them (NumPy; indices have no gradient)."""
    k = _tuple(kernel_size, 3, "kernel_size", 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _tuple(stride, 3, "stride", 1)
    p = _tuple(padding, 3, "padding", 0)
    d = _tuple(dilation, 3, "dilation", 1)
    x = input._data
    size, lead = x.shape[-3:], x.ndim - 3
    right = [max(0, (out[a] - 1) * s[a] + d[a] * (k[a] - 1) + 1 - size[a] - p[a]) for a in range(3)]
    xp = np.pad(x, [(0, 0)] * lead + [(p[a], right[a]) for a in range(3)], constant_values=-np.inf)
    best = np.full(x.shape[:-3] + tuple(out), -np.inf, x.dtype)
    where_ = np.zeros(best.shape, np.int64)
    grid = np.meshgrid(*(np.arange(o) for o in out), indexing="ij")
    for kd in range(k[0]):
        for kh in range(k[1]):
            for kw in range(k[2]):
                taps = (kd, kh, kw)
                v = xp[(Ellipsis,) + tuple(slice(taps[a] * d[a], taps[a] * d[a] + s[a] * (out[a] - 1) + 1, s[a])
                                           for a in range(3))]
                z = [grid[a] * s[a] - p[a] + taps[a] * d[a] for a in range(3)]
                # the first maximum in (d, h, w) order wins; a NaN is the maximum, as in PyTorch
                upd = (v > best) | (np.isnan(v) & ~np.isnan(best))
                best = np.where(upd, v, best)
                where_ = np.where(upd, (z[0] * size[1] + z[1]) * size[2] + z[2], where_)
    return Tensor._wrap(where_)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max pooling to a fixed (D, H, W) output, PyTorch's windows; indices are flat (d, h, w)
    positions in each volume (the first maximum's). Each cell takes the max of its window."""
    from .pool import _adaptive_bounds
    from .shape import stack
    if _volume(input, "adaptive_max_pool3d"):
        out = adaptive_max_pool3d(input.unsqueeze(0), output_size, return_indices)
        return (out[0].squeeze(0), out[1].squeeze(0)) if return_indices else out.squeeze(0)
    D, H, W = input.shape[2:]
    if isinstance(output_size, (tuple, list)) and len(output_size) == 3:
        output_size = tuple(input.shape[2 + i] if v is None else v for i, v in enumerate(output_size))
    od, oh, ow = _tuple(output_size, 3, "output_size", 1)
    vals, idxs = [], []
    vol = np.arange(D * H * W).reshape(D, H, W)
    for ds, de in _adaptive_bounds(D, od):
        for hs, he in _adaptive_bounds(H, oh):
            for ws, we in _adaptive_bounds(W, ow):
                win = input[:, :, ds:de, hs:he, ws:we]
                v, i = win.reshape(*win.shape[:2], -1).max(-1)
                vals.append(v)
                if return_indices:
                    idxs.append(vol[ds:de, hs:he, ws:we].reshape(-1)[i.numpy()])
    y = stack(vals, -1).reshape(*input.shape[:2], od, oh, ow)
    if not return_indices:
        return y
    return y, Tensor._wrap(np.stack(idxs, -1).reshape(*input.shape[:2], od, oh, ow).astype(np.int64))


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool3d(input, output_size, return_indices=True)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum of x^p over each window)^(1/p), PyTorch's lp_pool3d (avg_pool3d of x^p times the window size)."""
    from ..functions import sign
    from .activation import activation
    k = _tuple(kernel_size, 3, "kernel_size", 1)
    norm_type = float(norm_type)
    pooled = avg_pool3d(input ** norm_type, kernel_size, stride, 0, ceil_mode)
    return (sign(pooled) * activation(pooled.abs(), "relu")).mul(float(np.prod(k))) ** (1.0 / norm_type)
