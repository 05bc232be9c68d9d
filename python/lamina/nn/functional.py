"""lamina.nn.functional: PyTorch's functional names on lamina's ops (defined in lamina.ops)."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, float32, float64

from ..ops.activation import Dropout, activation as _activation, dropout, log_softmax, softmax  # noqa: F401
from ..ops.conv import conv1d, conv2d  # noqa: F401
from ..ops.linalg import check_linear as _check_linear, linear_checked  # noqa: F401
from ..ops.loss import (BCEWithLogits, CrossEntropy, MSE, TargetDtypeError, TargetRangeError,  # noqa: F401
                        _as_target, _cross_entropy_composite, _legacy_reduction, _reduce,
                        binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss)
from ..ops.pool import adaptive_avg_pool2d, avg_pool1d, avg_pool2d, max_pool1d, max_pool2d  # noqa: F401


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, on lamina's GEMM (bias fused into its epilogue).

    >>> import lamina, lamina.nn.functional as F
    >>> F.linear(lamina.ones(2, 3), lamina.ones(4, 3)).shape
    (2, 4)
    """
    return linear_checked(input, weight, bias)


def _linear_act(input, weight, bias, act):
    """linear followed by relu/sigmoid/tanh in one GEMM pass (used by Sequential)."""
    return linear_checked(input, weight, bias, act)


def identity(input):
    return input


def relu(input, inplace=False):
    return _activation(input, "relu")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _activation(input, "leaky_relu", float(negative_slope))


def softplus(input, beta=1.0, threshold=20.0):
    """Soft ReLU, log(1 + e^x) (PyTorch's beta=1, threshold=20 form)."""
    if beta != 1.0 or threshold != 20.0:
        return (1.0 / beta) * _activation(input * beta, "softplus")
    return _activation(input, "softplus")


def sigmoid(input):
    return _activation(input, "sigmoid")


def tanh(input):
    return _activation(input, "tanh")


def step(input):
    """The lecture's hard threshold I[z > 0]: step(0) = 0, and the gradient is zero everywhere.

    >>> import lamina, lamina.nn.functional as F
    >>> F.step(lamina.tensor([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 1.0]
    """
    return _activation(input, "step")


# --------------------------------------------------------------------------- issue 13 additions
from . import _extra_ops  # noqa: E402


def _float_input(input, fn):
    if not isinstance(input, Tensor):
        raise TypeError(f"input: {fn} expected a lamina Tensor, got {type(input).__name__}")
    if input.dtype not in (float32, float64):
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
