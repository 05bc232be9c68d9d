"""Resampling: pixel_shuffle / pixel_unshuffle (sub-pixel convolution, ESPCN) and interpolate
(nearest, nearest-exact, linear, bilinear, area), PyTorch's functions. Each is a composition of
ops that already have their forward and backward (reshape, permute, indexing, mul, add,
adaptive average pooling), so eager autodiff and the compiler read them from those definitions.

Interpolation follows PyTorch's source-index rules exactly: with scale = in/out (or 1/scale_factor
when scale_factor is given and recompute_scale_factor is not set), nearest takes
floor(dst * scale), nearest-exact floor((dst + 0.5) * scale), and (bi)linear the two neighbours of
(dst + 0.5) * scale - 0.5 (clamped at 0), or dst * (in - 1) / (out - 1) with align_corners=True.

>>> import lamina, lamina.nn.functional as F
>>> F.interpolate(lamina.tensor([[[1.0, 2.0]]]), scale_factor=2).tolist()
[[[1.0, 1.0, 2.0, 2.0]]]
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from .pool import adaptive_avg_pool2d

__all__ = ["pixel_shuffle", "pixel_unshuffle", "interpolate", "upsample", "upsample_nearest",
           "upsample_bilinear"]

_MODES = {"nearest": None, "nearest-exact": None, "linear": 1, "bilinear": 2, "trilinear": 3, "area": None,
          "bicubic": 2}


def _tensor(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a lamina Tensor, got {type(x).__name__}")
    return x


def pixel_shuffle(input, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r): each group of r^2 channels becomes an r x r block.

    >>> import lamina, lamina.nn.functional as F
    >>> F.pixel_shuffle(lamina.arange(4.0).reshape(1, 4, 1, 1), 2).reshape(-1).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    x, r = _tensor(input, "input"), _factor(upscale_factor, "upscale_factor")
    if x.ndim < 3:
        raise ValueError(f"input: pixel_shuffle expects at least 3 dims (*, C, H, W), got shape {tuple(x.shape)}")
    *lead, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(f"input: pixel_shuffle expects its channels ({c}) divisible by upscale_factor^2 = {r * r}")
    n = len(lead)
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of pixel_shuffle."""
    x, r = _tensor(input, "input"), _factor(downscale_factor, "downscale_factor")
    if x.ndim < 3:
        raise ValueError(f"input: pixel_unshuffle expects at least 3 dims (*, C, H, W), got shape {tuple(x.shape)}")
    *lead, c, h, w = x.shape
    if h % r or w % r:
        raise ValueError(f"input: pixel_unshuffle expects H ({h}) and W ({w}) divisible by downscale_factor {r}")
    n = len(lead)
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    y = y.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)


def _factor(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)


def _out_sizes(x, size, scale_factor, recompute):
    """(output sizes, per-dim scale used for source indices) for the spatial dims of x."""
    nd = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError("size, scale_factor: exactly one of them must be given")
    spatial = x.shape[2:]
    if size is not None:
        sizes = (size,) * nd if isinstance(size, (int, np.integer)) else tuple(size)
        if len(sizes) != nd or any(int(s) != s or s < 1 for s in sizes):
            raise ValueError(f"size: expected {nd} positive integers for input of shape {tuple(x.shape)}, got {size!r}")
        sizes = tuple(int(s) for s in sizes)
        return sizes, tuple(i / o for i, o in zip(spatial, sizes))
    factors = (scale_factor,) * nd if isinstance(scale_factor, (int, float, np.number)) else tuple(scale_factor)
    if len(factors) != nd or any(not f > 0 for f in factors):
        raise ValueError(f"scale_factor: expected {nd} positive numbers for input of shape {tuple(x.shape)}, "
                         f"got {scale_factor!r}")
    sizes = tuple(int(math.floor(i * float(f))) for i, f in zip(spatial, factors))
    if any(s < 1 for s in sizes):
        raise ValueError(f"scale_factor: {scale_factor!r} gives an empty output for input of shape {tuple(x.shape)}")
    scales = tuple(i / o for i, o in zip(spatial, sizes)) if recompute else tuple(1.0 / float(f) for f in factors)
    return sizes, scales


def _take(x, dim, idx):
    """x with index array `idx` along `dim` (gradient: the repeated indices accumulate)."""
    sl = [slice(None)] * x.ndim
    sl[dim] = idx
    return x[tuple(sl)]


def _nearest(x, sizes, scales, exact):
    for d, (n_out, scale) in enumerate(zip(sizes, scales)):
        dim, n_in = 2 + d, x.shape[2 + d]
        dst = np.arange(n_out, dtype=np.float64)
        # PyTorch computes the source index in float32: scale * dst, floored
        src = np.floor((np.float32(scale) * (dst.astype(np.float32) + (np.float32(0.5) if exact else 0))))
        idx = np.minimum(src.astype(np.int64), n_in - 1)
        if not (n_out == n_in and np.array_equal(idx, np.arange(n_in))):
            x = _take(x, dim, idx)
    return x


def _linear_weights(n_in, n_out, scale, align_corners, dtype):
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0).astype(dtype)
    return i0, i1, lam


def _linear(x, sizes, scales, align_corners):
    for d, (n_out, scale) in enumerate(zip(sizes, scales)):
        dim, n_in = 2 + d, x.shape[2 + d]
        i0, i1, lam = _linear_weights(n_in, n_out, scale, align_corners, x.dtype)
        shape = [1] * x.ndim
        shape[dim] = n_out
        lam = Tensor._wrap(lam.reshape(shape))
        a, b = _take(x, dim, i0), _take(x, dim, i1)
        x = a + (b - a) * lam
    return x


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dims of (N, C, L), (N, C, H, W) or (N, C, D, H, W), PyTorch's
    F.interpolate. Modes: nearest, nearest-exact, linear (3-D), bilinear (4-D), trilinear (5-D),
    area (adaptive average pooling, 4-D)."""
    x = _tensor(input, "input")
    if mode not in _MODES:
        raise ValueError(f"mode: expected one of {sorted(_MODES)}, got {mode!r}")
    if mode == "bicubic" or antialias:
        raise NotImplementedError("interpolate: bicubic and antialias are not supported by lamina")
    if x.ndim < 3 or x.ndim > 5:
        raise ValueError(f"input: expected 3-D, 4-D or 5-D input (N, C, ...), got shape {tuple(x.shape)}")
    if x.dtype.kind != "f" and mode != "nearest":
        raise TypeError(f"input: mode {mode!r} needs a floating-point tensor, got {x.dtype}")
    want = _MODES[mode]
    if want is not None and x.ndim - 2 != want:
        raise ValueError(f"input: mode {mode!r} expects {want + 2}-D input, got shape {tuple(x.shape)}")
    if align_corners is not None and want is None:
        raise ValueError(f"align_corners: only the linear modes take it, got align_corners={align_corners} "
                         f"with mode {mode!r}")
    sizes, scales = _out_sizes(x, size, scale_factor, bool(recompute_scale_factor))
    if mode in ("nearest", "nearest-exact"):
        return _nearest(x, sizes, scales, mode == "nearest-exact")
    if mode == "area":
        if x.ndim != 4:
            raise NotImplementedError("interpolate: mode 'area' is supported on 4-D input only")
        return adaptive_avg_pool2d(x, sizes)
    return _linear(x, sizes, scales, bool(align_corners))


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """The older name of interpolate (PyTorch's F.upsample)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
