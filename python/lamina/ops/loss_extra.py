"""More of PyTorch's losses, each PyTorch's formula written with ops that already carry their
backward (so eager autodiff and the compiler read them from those definitions): margin ranking,
hinge embedding, soft margin, cosine embedding, triplet margin, Poisson and Gaussian negative
log-likelihood, multi-label soft margin and multi-class margin. Reductions and the deprecated
size_average / reduce flags behave as in the other losses.

>>> import lamina, lamina.nn.functional as F
>>> F.margin_ranking_loss(lamina.tensor([1.0, 2.0]), lamina.tensor([2.0, 1.0]), lamina.tensor([1.0, 1.0])).item()
0.5
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor, no_grad
from .act_extra import logsigmoid
from .loss import _legacy_reduction, _reduce
from .stats import vector_norm

__all__ = ["margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss", "cosine_embedding_loss",
           "triplet_margin_loss", "triplet_margin_with_distance_loss", "poisson_nll_loss", "gaussian_nll_loss",
           "multilabel_soft_margin_loss", "multi_margin_loss"]


def _float(t, name):
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a lamina Tensor, got {type(t).__name__}")
    if t.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point tensor, got {t.dtype}")
    return t


def _same_shape(a, b, an, bn):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{bn}: expected the shape of {an} {tuple(a.shape)}, got {tuple(b.shape)}")


def _zeros_like(t):
    return Tensor._wrap(np.zeros((), dtype=t.dtype))


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -y (x1 - x2) + margin): y = 1 ranks x1 above x2, y = -1 below."""
    x1, x2, y = _float(input1, "input1"), _float(input2, "input2"), target
    if not (x1.ndim == x2.ndim == y.ndim):
        raise ValueError(f"margin_ranking_loss: expected input1, input2 and target of the same number of dims, "
                         f"got {tuple(x1.shape)}, {tuple(x2.shape)}, {tuple(y.shape)}")
    loss = (-y * (x1 - x2) + margin).clamp(min=0)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """x where y = 1, max(0, margin - x) where y = -1 (PyTorch: both terms where y is neither)."""
    from ..functions import where
    x = _float(input, "input")
    zero = _zeros_like(x)
    margin_clamp = (margin - x).clamp(min=0)
    loss = where(target != 1, margin_clamp, zero) + where(target != -1, x, zero)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-y x)), the two-class logistic loss on labels y in {-1, 1}."""
    x = _float(input, "input")
    _same_shape(x, target, "input", "target")
    loss = (-x * target).exp().log1p()
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1 (rows of (N, D) or
    one (D,) pair); the norms carry PyTorch's 1e-12 guard."""
    from ..functions import where
    x1, x2 = _float(input1, "input1"), _float(input2, "input2")
    _same_shape(x1, x2, "input1", "input2")
    if x1.ndim not in (1, 2):
        raise ValueError(f"input1: expected 1-D (D,) or 2-D (N, D) inputs, got shape {tuple(x1.shape)}")
    dim = x1.ndim - 1
    eps = 1e-12
    prod = (x1 * x2).sum(dim)
    denom = (((x1 * x1).sum(dim) + eps) * ((x2 * x2).sum(dim) + eps)).sqrt()
    cos = prod / denom
    zero = _zeros_like(cos)
    loss = where(target == 1, 1 - cos, zero) + where(target == -1, (cos - margin).clamp(min=0), zero)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


def _pairwise(a, b, p, eps):
    d = a - b + eps
    return vector_norm(d, p, -1 if d.ndim else None, False)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)), d the p-norm distance (swap: the smaller of d(a, n) and
    d(p, n), as in Balntas et al. 2016)."""
    a, pos, neg = _float(anchor, "anchor"), _float(positive, "positive"), _float(negative, "negative")
    if not (a.ndim == pos.ndim == neg.ndim) or a.ndim not in (1, 2):
        raise ValueError(f"triplet_margin_loss: expected anchor, positive and negative all 1-D or all 2-D, got "
                         f"{tuple(a.shape)}, {tuple(pos.shape)}, {tuple(neg.shape)}")
    d_pos, d_neg = _pairwise(a, pos, p, eps), _pairwise(a, neg, p, eps)
    if swap:
        from ..functions import minimum
        d_neg = minimum(d_neg, _pairwise(pos, neg, p, eps))
    loss = (margin + d_pos - d_neg).clamp(min=0)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    """triplet_margin_loss with any distance (default: the pairwise 2-norm)."""
    a, pos, neg = _float(anchor, "anchor"), _float(positive, "positive"), _float(negative, "negative")
    dist = distance_function or (lambda x, y: _pairwise(x, y, 2.0, 1e-6))
    d_pos, d_neg = dist(a, pos), dist(a, neg)
    if swap:
        from ..functions import minimum
        d_neg = minimum(d_neg, dist(pos, neg))
    return _reduce((margin + d_pos - d_neg).clamp(min=0), reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """exp(x) - y x for log-rates x (log_input), else x - y log(x + eps); full adds Stirling's
    approximation of log(y!) where y > 1."""
    from ..functions import where
    x = _float(input, "input")
    loss = (x.exp() - target * x) if log_input else (x - target * (x + eps).log())
    if full:
        t = target if isinstance(target, Tensor) else Tensor._wrap(np.asarray(target, dtype=x.dtype))
        safe = where(t > 1, t, Tensor._wrap(np.ones((), dtype=t.dtype)))
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        loss = loss + where(t > 1, stirling, _zeros_like(stirling))
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 (log(max(var, eps)) + (x - y)^2 / max(var, eps)) (+ 0.5 log(2 pi) with full); the clamp
    passes no gradient, as in PyTorch. var may have one dim fewer or a last dim of 1 (shared)."""
    x = _float(input, "input")
    if not isinstance(var, Tensor):
        var = Tensor._wrap(np.full(x.shape, var, dtype=x.dtype))
    if tuple(var.shape) != tuple(x.shape):
        if tuple(x.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(x.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError(f"var: expected the input's shape {tuple(x.shape)}, or it with the last dim 1 or "
                             f"dropped, got {tuple(var.shape)}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    if (var.detach().numpy() < 0).any():
        raise ValueError("var: has negative entry/entries")
    var = var.clone()
    with no_grad():
        var.clamp_(min=eps)
    loss = 0.5 * (var.log() + (x - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Per sample, the mean over the C labels of the logistic loss -[y log s(x) + (1 - y) log s(-x)]."""
    x = _float(input, "input")
    loss = -(target * logsigmoid(x) + (1 - target) * logsigmoid(-x))
    if weight is not None:
        loss = loss * weight
    c = x.shape[-1] if x.ndim else 1
    loss = loss.sum(x.ndim - 1) / c if x.ndim else loss
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Per sample: sum over i != y of max(0, margin - x[y] + x[i])^p, divided by the C classes
    (times weight[y] when given)."""
    from ..functions import gather, where
    x = _float(input, "input")
    if p not in (1, 2):
        raise ValueError(f"p: only p == 1 and p == 2 supported, got {p}")
    x2 = x.unsqueeze(0) if x.ndim == 1 else x
    if x2.ndim != 2:
        raise ValueError(f"input: expected 1-D (C,) or 2-D (N, C) input, got shape {tuple(x.shape)}")
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
    t = t.reshape(-1).astype(np.int64)
    n, c = x2.shape
    if t.shape != (n,):
        raise ValueError(f"target: expected shape ({n},), got {tuple(np.shape(target))}")
    if t.size and (t.min() < 0 or t.max() >= c):
        raise IndexError(f"target: class indices must be in [0, {c}), got values in [{t.min()}, {t.max()}]")
    x_y = gather(x2, 1, Tensor._wrap(t.reshape(n, 1)))
    z = (margin - x_y + x2).clamp(min=0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * Tensor._wrap(np.asarray(weight._data if isinstance(weight, Tensor) else weight)[t].reshape(n, 1))
    not_y = Tensor._wrap(np.arange(c)[None, :] != t[:, None])
    loss = where(not_y, z, _zeros_like(z)).sum(1) / c
    if x.ndim == 1:
        loss = loss[0]
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Per sample: sum over its target classes j (target's leading entries, up to the first -1)
    and the non-target classes i of max(0, 1 - x[j] + x[i]), divided by the C classes (PyTorch's
    multilabel_margin_loss); a composition, so the gradient is the hinge's (0 at the kink)."""
    from .activation import activation
    x = _float(input, "input")
    t = np.asarray(target._data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"multilabel_margin_loss: expected an int64 target, got {t.dtype}")
    if x.ndim > 2 or t.shape != tuple(x.shape):
        raise RuntimeError(f"multilabel_margin_loss: inconsistent target size: {list(t.shape)} for input of size: "
                           f"{list(x.shape)}")
    one = x.ndim < 2
    x2 = x.reshape(1, -1) if one else x
    t2 = t.reshape(tuple(x2.shape)).astype(np.int64)
    n, c = x2.shape
    valid = np.cumprod(t2 != -1, axis=1).astype(bool)          # entries before the first -1
    if np.any(valid & ((t2 < 0) | (t2 >= c))):
        raise RuntimeError(f"multilabel_margin_loss: target index out of range [0, {c})")
    safe = np.where(valid, t2, 0)
    is_target = np.zeros((n, c), bool)
    rows = np.repeat(np.arange(n), c)[valid.reshape(-1)]
    is_target[rows, t2[valid]] = True
    xt = x2.gather(1, Tensor._wrap(safe))                                               # (n, c): x[y_j]
    margins = 1 - xt.unsqueeze(2) + x2.unsqueeze(1)                                    # (n, j, i)
    weight = (valid[:, :, None] & ~is_target[:, None, :]).astype(x.dtype)
    loss = (activation(margins, "relu") * Tensor._wrap(weight)).sum((1, 2)) / c
    loss = loss.reshape(()) if one else loss
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))


__all__ += ["multilabel_margin_loss"]
