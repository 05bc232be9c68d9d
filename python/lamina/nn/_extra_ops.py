"""Differentiable primitives behind nn.functional's ELU, GELU, SiLU, pad, embedding and
binary_cross_entropy: each forward (NumPy) beside its backward rule.

NOTE: these move into the op registry (python/lamina/ops/) once it exists; until then they
are plain autograd Functions, so the graph compiler runs them as callbacks.
"""
import math

import numpy as np

from ..tensor import Function

_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


class ELU(Function):
    """x for x > 0, alpha * (e^x - 1) otherwise; the gradient at 0 takes the x <= 0 side
    (alpha), as PyTorch's does."""

    @staticmethod
    def forward(ctx, x, alpha):
        neg = x <= 0
        y = np.where(neg, alpha * np.expm1(np.minimum(x, 0)), x).astype(x.dtype, copy=False)
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return y

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        slope = np.where(x <= 0, ctx.alpha * np.exp(np.minimum(x, 0)), 1.0)
        return (dy * slope).astype(x.dtype, copy=False), None


class GELU(Function):
    """x * Phi(x) (exact, through erf) or PyTorch's tanh approximation."""

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3))
            return (0.5 * x * (1 + t)).astype(x.dtype, copy=False)
        cdf = 0.5 * (1 + _erf(x / math.sqrt(2.0)).astype(np.float64))
        return (x * cdf).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3)
            t = np.tanh(inner)
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner
        else:
            x64 = x.astype(np.float64)
            cdf = 0.5 * (1 + _erf(x64 / math.sqrt(2.0)).astype(np.float64))
            pdf = np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
            slope = cdf + x64 * pdf   # d/dx x Phi(x) = Phi(x) + x phi(x)
        return (dy * slope).astype(x.dtype, copy=False), None


class SiLU(Function):
    """x * sigmoid(x) (the swish)."""

    @staticmethod
    def forward(ctx, x):
        s = 0.5 * (1 + np.tanh(0.5 * x))   # sigmoid without overflow in exp
        ctx.save_for_backward(x, s)
        return (x * s).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, dy):
        x, s = ctx.saved_tensors
        return (dy * s * (1 + x * (1 - s))).astype(x.dtype, copy=False)


_NUMPY_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _source_index(size, before, after, mode):
    """For one padded dimension: the input index each output position reads (-1 = the fill)."""
    idx = np.arange(size)
    if mode == "constant":
        lo, hi = max(before, 0), max(after, 0)
        idx = np.pad(idx, (lo, hi), constant_values=-1)
        return idx[max(-before, 0): len(idx) - max(-after, 0)]
    return np.pad(idx, (before, after), mode=_NUMPY_PAD_MODE[mode])


class Pad(Function):
    """Padding as a gather along each padded dimension; backward scatters (adds) the output
    gradient back to the positions it was read from, so reflect / replicate / circular
    borders receive the gradient of every copy."""

    @staticmethod
    def forward(ctx, x, pads, mode, value):
        # pads: ((dim, before, after), ...)
        ctx.plan = []
        y = x
        for dim, before, after in pads:
            idx = _source_index(y.shape[dim], before, after, mode)
            ctx.plan.append((dim, idx, y.shape[dim]))
            fill = idx < 0
            y = np.take(y, np.where(fill, 0, idx), axis=dim)
            if fill.any():
                shape = [1] * y.ndim
                shape[dim] = len(idx)
                y = np.where(fill.reshape(shape), np.asarray(value, dtype=x.dtype), y)
        return np.ascontiguousarray(y, dtype=x.dtype)

    @staticmethod
    def backward(ctx, dy):
        g = dy
        for dim, idx, size in reversed(ctx.plan):
            keep = idx >= 0
            moved = np.moveaxis(g, dim, 0)
            out = np.zeros((size,) + moved.shape[1:], dtype=dy.dtype)
            np.add.at(out, idx[keep], moved[keep])
            g = np.moveaxis(out, 0, dim)
        return np.ascontiguousarray(g), None, None, None


class Embedding(Function):
    """weight[indices]; the weight's gradient adds each looked-up row's gradient (rows at
    padding_idx get none)."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx):
        ctx.indices, ctx.padding_idx, ctx.rows = indices, padding_idx, weight.shape[0]
        return weight[indices]

    @staticmethod
    def backward(ctx, dy):
        dw = np.zeros((ctx.rows,) + dy.shape[ctx.indices.ndim:], dtype=dy.dtype)
        flat = ctx.indices.reshape(-1)
        np.add.at(dw, flat, dy.reshape((flat.size,) + dw.shape[1:]))
        if ctx.padding_idx is not None:
            dw[ctx.padding_idx] = 0
        return dw, None, None


class BinaryCrossEntropy(Function):
    """-w (t log x + (1 - t) log(1 - x)) per element, each log clamped at -100 and the input
    gradient's denominator at 1e-12, as PyTorch does (so x = 0 or 1 stays finite)."""

    @staticmethod
    def forward(ctx, x, t, w):
        with np.errstate(divide="ignore"):
            loss = -(t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log1p(-x), -100))
        if w is not None:
            loss = loss * w
        ctx.save_for_backward(x, t, w)
        return loss.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, dy):
        x, t, w = ctx.saved_tensors
        dx = dy * (x - t) / np.maximum((1 - x) * x, 1e-12)
        dt = None
        if ctx.needs_input_grad[1]:
            dt = dy * (np.maximum(np.log1p(-x), -100) - np.maximum(np.log(x), -100))
            dt = dt * w if w is not None else dt
        if w is not None:
            dx = dx * w
        return dx.astype(x.dtype, copy=False), dt, None
