"""lamina.nn.functional: PyTorch's functional names on lamina's kernels."""
from __future__ import annotations

import numpy as np

from .. import _C
from .. import ops as _ops
from ..tensor import Function, Tensor, float32, float64, int64, is_grad_enabled

_FLOATS = (float32, float64)


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, on lamina's GEMM (bias fused into its epilogue).

    >>> import lamina, lamina.nn.functional as F
    >>> F.linear(lamina.ones(2, 3), lamina.ones(4, 3)).shape
    (2, 4)
    """
    _check_linear(input, weight, bias)
    return _ops.linear(input, weight, bias)


def _linear_act(input, weight, bias, act):
    """linear followed by relu/sigmoid/tanh in one GEMM pass (used by Sequential)."""
    _check_linear(input, weight, bias)
    return _ops.linear(input, weight, bias, act)


def _check_linear(input, weight, bias):
    if input.ndim == 0:
        raise ValueError("input: expected at least 1 dimension, got a scalar")
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(f"input: expected last dimension {weight.shape[1]} (in_features), "
                         f"got shape {tuple(input.shape)}")
    if input.dtype != weight.dtype:
        raise TypeError(f"input: expected dtype {weight.dtype} (the weight's), got {input.dtype}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias: expected shape ({weight.shape[0]},), got {tuple(bias.shape)}")


def identity(input):
    return input


def relu(input, inplace=False):
    return _ops.activation(input, "relu")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _ops.activation(input, "leaky_relu", float(negative_slope))


def softplus(input, beta=1.0, threshold=20.0):
    """Soft ReLU, log(1 + e^x) (PyTorch's beta=1, threshold=20 form)."""
    if beta != 1.0 or threshold != 20.0:
        return (1.0 / beta) * _ops.activation(input * beta, "softplus")
    return _ops.activation(input, "softplus")


def sigmoid(input):
    return _ops.activation(input, "sigmoid")


def tanh(input):
    return _ops.activation(input, "tanh")


def step(input):
    """The lecture's hard threshold I[z > 0]: step(0) = 0, and the gradient is zero everywhere.

    >>> import lamina, lamina.nn.functional as F
    >>> F.step(lamina.tensor([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 1.0]
    """
    return _ops.activation(input, "step")


def softmax(input, dim=-1):
    return _ops.softmax(input, dim)


def log_softmax(input, dim=-1):
    return _ops.log_softmax(input, dim)


# --------------------------------------------------------------------------- losses
def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")


def _as_target(target):
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    return t


class CrossEntropy(Function):
    """Fused log-softmax + negative log-likelihood over (N, C) logits and int64 targets."""

    @staticmethod
    def forward(ctx, logits, target, ignore_index, mean):
        probs = np.empty_like(logits)
        total, count = _C.cross_entropy_forward(logits, target, probs, ignore_index)
        ctx.save_for_backward(probs, target)
        ctx.ignore_index = ignore_index
        ctx.scale = 1.0 / count if mean and count > 0 else 1.0
        value = total * ctx.scale if (not mean or count > 0) else float("nan")
        return np.asarray(value, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, dy):
        probs, target = ctx.saved_tensors
        dx = np.empty_like(probs)
        _C.cross_entropy_backward(probs, target, dx, float(dy) * ctx.scale, ctx.ignore_index)
        return dx, None, None, None


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy on logits `input` (N, C) with integer class `target` (N,).

    Mean-reduced over non-ignored samples by default, as in PyTorch.

    >>> import lamina, lamina.nn.functional as F
    >>> round(F.cross_entropy(lamina.zeros(2, 4), [1, 3]).item(), 4)
    1.3863
    """
    if input.dtype not in _FLOATS:
        raise TypeError(f"input: expected float logits, got {input.dtype}")
    t = _as_target(target)
    if t.dtype.kind == "f":  # class probabilities
        if t.shape != input.shape:
            raise ValueError(f"target: class-probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {t.shape}")
        tt = target if isinstance(target, Tensor) else Tensor._wrap(t.astype(input.dtype))
        return _reduce(-(tt * log_softmax(input, 1)).sum(1), reduction)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target: expected integer class indices, got dtype {t.dtype}")
    if input.ndim == 1:  # unbatched (C,)
        input = input.reshape(1, -1)
        t = t.reshape(1)
    elif input.ndim > 2:  # (N, C, d1, ...) -> (N*d1*..., C)
        c = input.shape[1]
        perm = (0,) + tuple(range(2, input.ndim)) + (1,)
        input = input.permute(*perm).reshape(-1, c)
        t = t.reshape(-1)
    if input.ndim != 2:
        raise ValueError(f"input: expected (N, C) logits, got shape {tuple(input.shape)}")
    if t.shape != (input.shape[0],):
        raise ValueError(f"target: expected shape ({input.shape[0]},) to match input's batch, got {t.shape}")
    t = np.ascontiguousarray(t, dtype=np.int64)
    if weight is not None or label_smoothing or reduction == "none":
        return _cross_entropy_composite(input, t, weight, ignore_index, reduction, label_smoothing)
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    return CrossEntropy.apply(input, t, int(ignore_index), reduction == "mean")


def _cross_entropy_composite(input, t, weight, ignore_index, reduction, label_smoothing):
    n, c = input.shape
    valid = t != ignore_index
    bad = t[valid]
    if bad.size and (bad.min() < 0 or bad.max() >= c):
        raise ValueError(f"target: class index {int(bad[(bad < 0) | (bad >= c)][0])} out of range [0, {c})")
    safe = np.where(valid, t, 0)
    lsm = log_softmax(input, 1)
    picked = lsm[np.arange(n), safe]
    w = np.ones(c, dtype=input.dtype) if weight is None else np.asarray(_as_target(weight), dtype=input.dtype)
    wt = (w[safe] * valid).astype(input.dtype)
    loss = -(picked * Tensor._wrap(wt))
    if label_smoothing:
        eps = float(label_smoothing)
        smooth = -(lsm * Tensor._wrap(w.reshape(1, c))).sum(1) * Tensor._wrap(valid.astype(input.dtype)) / c
        loss = loss * (1 - eps) + smooth * eps
    if reduction == "mean":
        return loss.sum() / float(wt.sum())
    return _reduce(loss, reduction)


def nll_loss(input, target, ignore_index=-100, reduction="mean"):
    t = np.ascontiguousarray(_as_target(target), dtype=np.int64)
    n = input.shape[0]
    valid = t != ignore_index
    picked = input[np.arange(n), np.where(valid, t, 0)] * Tensor._wrap(valid.astype(input.dtype))
    if reduction == "mean":
        return -picked.sum() / float(valid.sum())
    return _reduce(-picked, reduction)


class MSE(Function):
    @staticmethod
    def forward(ctx, x, t, mean):
        ctx.save_for_backward(x, t)
        ctx.scale = 1.0 / x.size if mean and x.size else 1.0
        return np.asarray(_C.mse_forward(x, t) * ctx.scale, dtype=x.dtype)

    @staticmethod
    def backward(ctx, dy):
        x, t = ctx.saved_tensors
        dx = np.empty_like(x)
        _C.mse_backward(x, t, 2.0 * float(dy) * ctx.scale, dx)   # d/dx (x - t)^2 = 2 (x - t)
        return dx, (-dx if ctx.needs_input_grad[1] else None), None


def mse_loss(input, target, reduction="mean"):
    """Mean squared error (the lecture's squared-error loss without the 1/2)."""
    if not isinstance(target, Tensor):
        target = Tensor._wrap(np.asarray(target, dtype=input.dtype))
    if input.shape == target.shape and input.dtype == target.dtype and reduction in ("mean", "sum"):
        return MSE.apply(input, target, reduction == "mean")
    try:
        np.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise ValueError(f"target: expected a shape broadcastable to the input's {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}") from None
    d = input - target
    return _reduce(d * d, reduction)


class BCEWithLogits(Function):
    @staticmethod
    def forward(ctx, x, t, mean):
        ctx.save_for_backward(x, t)
        ctx.scale = 1.0 / x.size if mean and x.size else 1.0
        return np.asarray(_C.bce_with_logits_forward(x, t) * ctx.scale, dtype=x.dtype)

    @staticmethod
    def backward(ctx, dy):
        x, t = ctx.saved_tensors
        dx = np.empty_like(x)
        _C.bce_with_logits_backward(x, t, float(dy) * ctx.scale, dx)
        dt = None
        if ctx.needs_input_grad[1]:
            dt = -x * (float(dy) * ctx.scale)
        return dx, dt, None


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    if not isinstance(target, Tensor):
        target = Tensor._wrap(np.asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"target: expected shape {tuple(input.shape)} (the input's), got {tuple(target.shape)}")
    if weight is None and pos_weight is None and reduction in ("mean", "sum") and target.dtype == input.dtype:
        return BCEWithLogits.apply(input, target, reduction == "mean")
    # General form: (1 - t) x + (1 + (pw - 1) t) softplus(-x)
    lw = 1.0 if pos_weight is None else 1.0 + (pos_weight - 1.0) * target
    loss = (1.0 - target) * input + lw * softplus(-input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# Convolution and pooling live in _conv.py (their own kernels).
from ._conv import (adaptive_avg_pool2d, avg_pool1d, avg_pool2d, conv1d, conv2d,  # noqa: E402,F401
                    max_pool1d, max_pool2d)
# Normalization and dropout live in normalization.py (the norm kernel family).
from .normalization import batch_norm, dropout, dropout2d, group_norm, layer_norm  # noqa: E402,F401
