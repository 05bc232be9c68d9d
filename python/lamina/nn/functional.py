"""lamina.nn.functional: PyTorch's functional names on lamina's kernels."""
from __future__ import annotations

import numpy as np

from .. import _C
from .. import ops as _ops
from .. import random as _random
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


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p):
        keep = _random.default_generator().random(x.shape) >= p
        ctx.mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
        return x * ctx.mask

    @staticmethod
    def backward(ctx, dy):
        return dy * ctx.mask, None


def dropout(input, p=0.5, training=True):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return Dropout.apply(input, p)


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


class TargetDtypeError(TypeError, RuntimeError):
    """Class-index target of a non-integer dtype (a TypeError; also a RuntimeError, which is
    what PyTorch raises, so code written against torch catches it)."""


class TargetRangeError(ValueError, IndexError):
    """Class index outside [0, C) (a ValueError; also an IndexError, as in PyTorch)."""


def _legacy_reduction(size_average, reduce, reduction):
    """PyTorch's deprecated size_average / reduce flags mapped onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


def _class_targets(input, t, ignore_index):
    """Validate integer class indices against logits / log-probabilities ``input`` of shape
    (C,), (N, C) or (N, C, d1, ...) and flatten both: returns (input as (M, C), target as
    int64 (M,), the shape of an unreduced loss). ``t`` is a NumPy array of integer dtype."""
    if input.ndim == 0:
        raise ValueError("input: expected shape (C,), (N, C) or (N, C, d1, ...), got a scalar")
    if input.ndim == 1:
        expected = ()
    else:
        expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(t.shape) != expected:
        hint = ""
        if t.shape == expected + (1,):
            hint = " (a trailing size-1 dimension: flatten the target, e.g. target.view(-1))"
        raise ValueError(f"target: expected shape {expected} to match input's batch, got {tuple(t.shape)}"
                         f" (input shape {tuple(input.shape)}){hint}")
    c = input.shape[0] if input.ndim == 1 else input.shape[1]
    t = np.ascontiguousarray(t, dtype=np.int64)
    bad = t[(t != ignore_index) & ((t < 0) | (t >= c))]
    if bad.size:
        raise TargetRangeError(f"target: class index {int(bad.flat[0])} out of range [0, {c})"
                               f" (ignore_index={ignore_index})")
    if input.ndim == 1:
        return input.reshape(1, c), t.reshape(1), expected
    if input.ndim > 2:  # (N, C, d1, ...) -> (N*d1*..., C)
        perm = (0,) + tuple(range(2, input.ndim)) + (1,)
        input = input.permute(*perm).reshape(-1, c)
        t = t.reshape(-1)
    # NOTE: a (N,) int64 target comes back as the SAME array object: the graph compiler
    # recognizes the batch's labels by identity (a view would be frozen as a constant).
    return input, t, expected


def _integer_target(t, input):
    """Refuse a non-integer class-index target, saying what to do about float labels."""
    if t.dtype.kind in "iu":
        return
    msg = f"target: expected integer class indices, got dtype {t.dtype}"
    if t.dtype.kind == "f":
        msg += (" (class labels must be integers: convert with target.long(); a float target is "
                f"read as class probabilities only when it has the input's shape {tuple(input.shape)})")
    raise TargetDtypeError(msg)


def _class_weight(weight, c, dtype):
    if weight is None:
        return None
    w = np.asarray(_as_target(weight), dtype=dtype)
    if w.shape != (c,):
        raise ValueError(f"weight: expected shape ({c},) (one weight per class), got {w.shape}")
    return w


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy on logits `input` (N, C) with integer class `target` (N,).

    Also (C,) with a scalar target, (N, C, d1, ...) with (N, d1, ...) targets, and float
    class-probability targets of the input's shape. Mean-reduced over non-ignored samples by
    default, as in PyTorch.

    >>> import lamina, lamina.nn.functional as F
    >>> round(F.cross_entropy(lamina.zeros(2, 4), [1, 3]).item(), 4)
    1.3863
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if input.dtype not in _FLOATS:
        raise TypeError(f"input: expected float logits, got {input.dtype}")
    t = _as_target(target)
    if t.dtype.kind == "f" and tuple(t.shape) == tuple(input.shape):  # class probabilities
        tt = target if isinstance(target, Tensor) else Tensor._wrap(t.astype(input.dtype))
        return _reduce(-(tt * log_softmax(input, 1 if input.ndim > 1 else 0)).sum(1 if input.ndim > 1 else 0),
                       reduction)
    if t.dtype.kind == "f" and t.ndim == input.ndim:
        raise ValueError(f"target: class-probability targets must have the input's shape "
                         f"{tuple(input.shape)}, got {t.shape}")
    _integer_target(t, input)
    input, t, out_shape = _class_targets(input, t, int(ignore_index))
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    if weight is not None or label_smoothing or reduction == "none":
        loss = _cross_entropy_composite(input, t, weight, ignore_index, reduction, label_smoothing)
        return loss.reshape(*out_shape) if reduction == "none" else loss
    return CrossEntropy.apply(input, t, int(ignore_index), reduction == "mean")


def _cross_entropy_composite(input, t, weight, ignore_index, reduction, label_smoothing):
    n, c = input.shape
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    lsm = log_softmax(input, 1)
    picked = lsm[np.arange(n), safe]
    w = _class_weight(weight, c, input.dtype)
    w = np.ones(c, dtype=input.dtype) if w is None else w
    wt = (w[safe] * valid).astype(input.dtype)
    loss = -(picked * Tensor._wrap(wt))
    if label_smoothing:
        eps = float(label_smoothing)
        smooth = -(lsm * Tensor._wrap(w.reshape(1, c))).sum(1) * Tensor._wrap(valid.astype(input.dtype)) / c
        loss = loss * (1 - eps) + smooth * eps
    if reduction == "mean":
        return _weighted_mean(loss, float(wt.sum()))
    return _reduce(loss, reduction)


def _weighted_mean(loss, total_weight):
    # every target ignored: PyTorch's 0/0 is NaN, made here without a NumPy divide warning
    if total_weight == 0:
        return loss.sum() * float("nan")
    return loss.sum() / total_weight


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of integer class `target` under log-probabilities `input`
    ((N, C), (C,) or (N, C, d1, ...)): ``-weight[t] * input[i, t]``, averaged over the
    non-ignored targets' weights. The target is checked like cross_entropy's: integer dtype,
    shape (N,) or (N, d1, ...), every index in [0, C) unless it equals ``ignore_index``.

    >>> import lamina, lamina.nn.functional as F
    >>> logp = lamina.tensor([[-0.5, -1.0], [-2.0, -0.1]])
    >>> round(F.nll_loss(logp, lamina.tensor([1, 0])).item(), 4)   # (1.0 + 2.0) / 2
    1.5
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if input.dtype not in _FLOATS:
        raise TypeError(f"input: expected float log-probabilities, got {input.dtype}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    t = _as_target(target)
    _integer_target(t, input)
    x, t, out_shape = _class_targets(input, t, int(ignore_index))
    n, c = x.shape
    w = _class_weight(weight, c, input.dtype)
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    wt = ((w[safe] if w is not None else 1) * valid).astype(input.dtype)
    loss = -(x[np.arange(n), safe] * Tensor._wrap(wt))
    if reduction == "none":
        return loss.reshape(*out_shape)
    if reduction == "sum":
        return loss.sum()
    return _weighted_mean(loss, float(wt.sum()))


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


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean squared error (the lecture's squared-error loss without the 1/2)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
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


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    reduction = _legacy_reduction(size_average, reduce, reduction)
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


# --------------------------------------------------------------------------- issue 13 additions
from . import _extra_ops  # noqa: E402


def _float_input(input, fn):
    if not isinstance(input, Tensor):
        raise TypeError(f"input: {fn} expected a lamina Tensor, got {type(input).__name__}")
    if input.dtype not in _FLOATS:
        raise TypeError(f"input: {fn} expected dtype float32 or float64, got {input.dtype}")


def elu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x) - 1).

    >>> import lamina, lamina.nn.functional as F
    >>> [round(v, 4) for v in F.elu(lamina.tensor([-1.0, 2.0])).tolist()]
    [-0.6321, 2.0]
    """
    _float_input(input, "elu")
    return _extra_ops.ELU.apply(input, float(alpha))


def gelu(input, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF; ``approximate='tanh'`` is PyTorch's tanh form.

    >>> import lamina, lamina.nn.functional as F
    >>> round(F.gelu(lamina.tensor([1.0])).item(), 4)
    0.8413
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    _float_input(input, "gelu")
    return _extra_ops.GELU.apply(input, approximate)


def silu(input, inplace=False):
    """x * sigmoid(x).

    >>> import lamina, lamina.nn.functional as F
    >>> F.silu(lamina.tensor([0.0])).item()
    0.0
    """
    _float_input(input, "silu")
    return _extra_ops.SiLU.apply(input)


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dimensions: ``pad = (left, right, top, bottom, ...)``
    starts from the LAST dimension, as in PyTorch. Modes: constant (negative pads crop),
    reflect, replicate, circular.

    >>> import lamina, lamina.nn.functional as F
    >>> F.pad(lamina.tensor([[1.0, 2.0]]), (1, 2), value=9.0).tolist()
    [[9.0, 1.0, 2.0, 9.0, 9.0]]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"input: expected a lamina Tensor, got {type(input).__name__}")
    pad = tuple(pad)
    if len(pad) % 2 or any(int(p) != p for p in pad):
        raise ValueError(f"pad: expected an even number of integers (left, right, ...), got {pad}")
    if len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: {len(pad)} values pad {len(pad) // 2} dimensions, but input has "
                         f"{input.ndim} (shape {tuple(input.shape)})")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(f"mode: expected 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if mode != "constant" and value not in (None, 0, 0.0):
        raise ValueError(f"value: only mode='constant' fills with a value, got value={value} with mode={mode!r}")
    plan = []
    for i in range(len(pad) // 2):
        dim = input.ndim - 1 - i
        before, after = int(pad[2 * i]), int(pad[2 * i + 1])
        size = input.shape[dim]
        if mode == "constant":
            if size + before + after < 0:
                raise ValueError(f"pad: ({before}, {after}) crops dimension {dim} of size {size} below zero")
        elif before < 0 or after < 0:
            raise ValueError(f"pad: mode {mode!r} needs non-negative pads, got ({before}, {after}) for dimension {dim}")
        elif mode == "reflect" and (before >= size or after >= size):
            raise ValueError(f"pad: reflect padding ({before}, {after}) must be smaller than dimension {dim}'s "
                             f"size {size}")
        elif mode == "circular" and (before > size or after > size):
            raise ValueError(f"pad: circular padding ({before}, {after}) must be at most dimension {dim}'s "
                             f"size {size}")
        elif mode == "replicate" and size == 0:
            raise ValueError(f"pad: replicate padding of dimension {dim} needs a non-empty dimension")
        if before or after:
            plan.append((dim, before, after))
    return _extra_ops.Pad.apply(input, tuple(plan), mode, 0.0 if value is None else float(value))


def one_hot(tensor, num_classes=-1):
    """int64 one-hot rows: shape ``tensor.shape + (num_classes,)``; ``-1`` means max + 1.

    >>> import lamina, lamina.nn.functional as F
    >>> F.one_hot(lamina.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    t = _as_target(tensor)
    if t.dtype.kind not in "iu":
        raise TypeError(f"tensor: one_hot expected integer class indices, got dtype {t.dtype}")
    if int(num_classes) != num_classes or num_classes < -1:
        raise ValueError(f"num_classes: expected a non-negative integer or -1, got {num_classes}")
    if t.size and t.min() < 0:
        raise ValueError(f"tensor: class values must be non-negative, got {int(t.min())}")
    if num_classes == -1:
        if t.size == 0:
            raise ValueError("num_classes: cannot infer it (-1) from an empty tensor")
        num_classes = int(t.max()) + 1
    elif t.size and t.max() >= num_classes:
        raise ValueError(f"tensor: class value {int(t.max())} out of range for num_classes={num_classes}")
    out = np.zeros(t.shape + (int(num_classes),), dtype=np.int64)
    np.put_along_axis(out, t.astype(np.int64)[..., None], 1, axis=-1)
    return Tensor._wrap(out)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``input``: shape input.shape + (dim,).

    >>> import lamina, lamina.nn.functional as F
    >>> F.embedding(lamina.tensor([2, 0]), lamina.tensor([[0.0], [1.0], [2.0]])).tolist()
    [[2.0], [0.0]]
    """
    idx = _as_target(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"input: embedding expected integer indices, got dtype {idx.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"weight: expected shape (num_embeddings, embedding_dim), got {tuple(weight.shape)}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)].flat[0]
        raise TargetRangeError(f"input: index {int(bad)} out of range [0, {n}) (num_embeddings)")
    if padding_idx is not None:
        padding_idx = int(padding_idx) + (n if padding_idx < 0 else 0)
    if max_norm is not None:
        _renorm_rows_(weight, idx, float(max_norm), float(norm_type))
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported")
    return _extra_ops.Embedding.apply(weight, np.ascontiguousarray(idx, dtype=np.int64), padding_idx)


def _renorm_rows_(weight, idx, max_norm, norm_type):
    # PyTorch renormalizes the looked-up rows of the weight in place (outside autograd)
    rows = np.unique(idx)
    w = weight.data[rows]
    norms = (np.abs(w) ** norm_type).sum(1) ** (1.0 / norm_type)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    weight.data[rows] = w * scale[:, None]


def _loss_target(input, target, fn):
    _float_input(input, fn)
    if not isinstance(target, Tensor):
        target = Tensor._wrap(np.asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"target: {fn} expected the input's shape {tuple(input.shape)}, got {tuple(target.shape)}")
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    return target


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """|input - target|, reduced (the gradient at equality is 0).

    >>> import lamina, lamina.nn.functional as F
    >>> F.l1_loss(lamina.tensor([1.0, 3.0]), lamina.tensor([2.0, 1.0])).item()
    1.5
    """
    target = _loss_target(input, target, "l1_loss")
    return _reduce((input - target).abs(), _legacy_reduction(size_average, reduce, reduction))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target); beta = 0 is L1.

    >>> import lamina, lamina.nn.functional as F
    >>> F.smooth_l1_loss(lamina.tensor([0.5, 3.0]), lamina.tensor([0.0, 0.0]), reduction="sum").item()
    2.625
    """
    if beta < 0:
        raise ValueError(f"beta: expected a value >= 0, got {beta}")
    target = _loss_target(input, target, "smooth_l1_loss")
    reduction = _legacy_reduction(size_average, reduce, reduction)
    a = (input - target).abs()
    if beta == 0:
        return _reduce(a, reduction)
    m = a.clamp(max=float(beta))   # |d| inside the quadratic zone, beta outside
    return _reduce(m * m * (0.5 / beta) + (a - m), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta): smooth_l1 scaled by delta."""
    if delta <= 0:
        raise ValueError(f"delta: expected a value > 0, got {delta}")
    target = _loss_target(input, target, "huber_loss")
    a = (input - target).abs()
    m = a.clamp(max=float(delta))
    return _reduce(m * m * 0.5 + (a - m) * float(delta), reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) on probabilities ``input`` in [0, 1] (logs clamped at
    -100 as in PyTorch). Prefer binary_cross_entropy_with_logits on raw scores.

    >>> import lamina, lamina.nn.functional as F
    >>> round(F.binary_cross_entropy(lamina.tensor([0.5]), lamina.tensor([1.0])).item(), 4)
    0.6931
    """
    target = _loss_target(input, target, "binary_cross_entropy")
    x = input.data
    if x.size and not (np.all(x >= 0) and np.all(x <= 1)):
        raise ValueError("input: binary_cross_entropy expects probabilities in [0, 1] (apply sigmoid, or use "
                         f"binary_cross_entropy_with_logits), got values in [{x.min()}, {x.max()}]")
    w = None
    if weight is not None:
        w = np.asarray(_as_target(weight), dtype=input.dtype)
        try:
            w = np.ascontiguousarray(np.broadcast_to(w, input.shape))
        except ValueError:
            raise ValueError(f"weight: expected a shape broadcastable to the input's {tuple(input.shape)}, "
                             f"got {w.shape}") from None
    loss = _extra_ops.BinaryCrossEntropy.apply(input, target, w)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || q) pointwise with ``input = log q``: target * (log target - input), 0 where
    target = 0 (or exp(t) * (t - input) with ``log_target``). ``reduction='batchmean'`` divides
    the sum by the batch size, which is the true KL divergence; 'mean' (the default, as in
    PyTorch) divides by the number of elements.

    >>> import math, lamina, lamina.nn.functional as F
    >>> p = lamina.tensor([0.5, 0.5])
    >>> round(F.kl_div(p.log(), p, reduction="sum").item(), 6)
    0.0
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"reduction: expected 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}")
    target = _loss_target(input, target, "kl_div")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        if target.data.size and target.data.min() < 0:
            raise ValueError(f"target: kl_div expects probabilities (>= 0), got a minimum of {target.data.min()}"
                             " (pass log_target=True for log-probabilities)")
        zero = Tensor._wrap((target.data == 0).astype(input.dtype))
        loss = target * ((target + zero).log() - input)   # xlogy: 0 * log 0 = 0
    if reduction == "batchmean":
        return loss.sum() / float(input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)
