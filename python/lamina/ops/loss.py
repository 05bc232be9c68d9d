"""Losses: softmax cross-entropy (fused kernel), nll, MSE, BCE with logits."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import _C
from ..tensor import Function, Tensor, float32, float64
from ._common import FLOATS, is_float
from ._params import CrossEntropyAttrs, PointwiseLossAttrs
from .activation import activation, log_softmax
from .registry import BadSample, Sample, register

_F = (float32, float64)


def _x(dt, shape, seed=50):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")


def _as_target(target):
    return target._data if isinstance(target, Tensor) else np.asarray(target)


# ---------------------------------------------------------------- cross-entropy
def _lower_cross_entropy(L, fn):
    logits, target = fn.args[0], fn.args[1]
    if target.dtype != np.int64 or len(logits.shape) != 2:
        return False
    N, C = logits.shape
    probs = L.g.value(logits.shape, logits.dtype, "temp", "probs")
    scale = L.g.value((), np.float64, "temp", "ce_scale")   # 1/(rows not ignored), known at run time
    fn.saved = CrossEntropySaved(probs=probs, target=target, scale=scale, ignore_index=int(fn.args[2]))
    L.emit("ce_fwd", [logits, target], [fn.out, probs, scale],
           CrossEntropyAttrs(N=N, C=C, ignore_index=int(fn.args[2]), mean=bool(fn.args[3])), src=fn.op)
    fn.lowered_by = "ce"
    return True


# The one backward of CrossEntropy (eager and compiled): d logits = (softmax - onehot) * dy * scale.
CrossEntropySaved = namedtuple("CrossEntropySaved", "probs target scale ignore_index")


def _cross_entropy_rule(k, s, dy, out):
    probs, target, scale, ignore_index = s
    return k.ce_bwd(probs, target, dy, scale, ignore_index, out=out[0]), None, None, None


def _ce_samples(dt):
    t = np.array([1, 0, 3, 2, 1], np.int64)
    return [Sample((_x(dt, (5, 4)), t), name="mean"),
            Sample((_x(dt, (5, 4)), t), {"reduction": "sum"}, name="sum"),
            Sample((_x(dt, (5, 4)), np.array([1, -100, 3, 2, -100])), name="ignore"),
            Sample((_x(dt, (5, 4)), t), {"label_smoothing": 0.1}, name="smoothing", compile=False),
            Sample((_x(dt, (1, 4)), t[:1]), name="size1")]


def _ce_bad():
    return [BadSample((np.ones((2, 3), np.float32), np.array([0, 1, 2])), error=ValueError, match="target"),
            BadSample((np.ones((2, 3), np.int64), np.array([0, 1])), error=TypeError, match="float"),
            BadSample((np.ones((2, 3), np.float32), np.array([0.5, 1.0])), error=TypeError,
                      match="integer class indices"),
            BadSample((np.ones((2, 3), np.float32), np.array([0, 3])), error=IndexError, match="out of range"),
            BadSample((np.ones((2, 3), np.float32), np.array([[0], [1]])), error=ValueError, match="view")]


def _torch_ce(torch, x, t, **kw):
    return torch.nn.functional.cross_entropy(x, t, **kw)


@register("cross_entropy", lower=_lower_cross_entropy, backward=_cross_entropy_rule,
          kernels=("_C.cross_entropy_forward", "_C.cross_entropy_backward"), dtypes=_F,
          call=lambda x, t, **kw: cross_entropy(x, t, **kw), samples=_ce_samples, bad_samples=_ce_bad,
          torch=_torch_ce)
class CrossEntropy(Function):
    """Fused log-softmax + negative log-likelihood over (N, C) logits and int64 targets."""

    @staticmethod
    def forward(ctx, logits, target, ignore_index, mean):
        probs = np.empty_like(logits)
        total, count = _C.cross_entropy_forward(logits, target, probs, ignore_index)
        ctx.save_for_backward(*CrossEntropySaved(probs=probs, target=target, scale=_C.loss_scale(mean, count),
                                                 ignore_index=ignore_index))
        return np.asarray(_C.reduced_loss(total, mean, count), dtype=logits.dtype)


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
    if input.dtype not in FLOATS:
        raise TypeError(f"input: expected float logits, got {input.dtype}")
    t = _as_target(target)
    if t.dtype.kind == "f" and tuple(t.shape) == tuple(input.shape):  # class probabilities
        return _cross_entropy_probs(input, target, t, weight, reduction, label_smoothing)
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


def _cross_entropy_probs(input, target, t, weight, reduction, label_smoothing):
    """Cross-entropy against class probabilities (N, C, d...) or unbatched (C,), as PyTorch:
    smoothed targets t (1 - eps) + eps / C, per-class weights inside the sum over classes, and
    a mean over the N (x d...) positions, not over the weights."""
    if t.shape != input.shape:
        raise ValueError(f"target: class-probability targets must have the input's shape "
                         f"{tuple(input.shape)}, got {t.shape}")
    cdim = 0 if input.ndim == 1 else 1
    c = input.shape[cdim]
    tt = target if isinstance(target, Tensor) else Tensor._wrap(np.asarray(t, dtype=input.dtype))
    if label_smoothing:
        eps = float(label_smoothing)
        tt = tt * (1.0 - eps) + eps / c
    prod = tt * log_softmax(input, cdim)
    if weight is not None:
        w = np.asarray(_as_target(weight), dtype=input.dtype)
        if w.shape != (c,):
            raise ValueError(f"weight: expected shape ({c},), one weight per class, got {w.shape}")
        prod = prod * Tensor._wrap(w.reshape((c,) + (1,) * (input.ndim - cdim - 1)))
    return _reduce(-prod.sum(cdim), reduction)


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
    if input.dtype not in FLOATS:
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


# ---------------------------------------------------------------- MSE and BCE with logits
# scale = 1/n for a mean, as eager; the kernel kind is the op's own trait.
def _lower_pointwise_loss(L, fn):
    x, t, mean = fn.args[0], fn.args[1], fn.args[2]
    if fn.tensor_pos != [0, 1] or x.shape != t.shape or x.dtype != t.dtype or not is_float(x):
        return False
    kind = L.op_of(fn).traits["loss_kind"]
    if kind == "bce" and L.wants(fn, 1):
        return False            # a gradient for the target: the eager rule (-x * dy * scale) runs
    scale = _pointwise_scale(mean, x.size)
    fn.saved = PointwiseLossSaved(x=x, t=t, scale=scale, kind=kind)
    L.emit("loss_fwd", [x, t], [fn.out], PointwiseLossAttrs(n=x.size, kind=kind, scale=scale), src=fn.op)
    fn.lowered_by = "loss"
    return True


# The one backward of MSE and BCE with logits (eager and compiled); scale: 1/n for a mean.
PointwiseLossSaved = namedtuple("PointwiseLossSaved", "x t scale kind")


def _pointwise_loss_rule(k, s, dy, out):
    x, t, scale, kind = s
    if not out[1]:
        return k.loss_bwd(kind, x, t, dy, scale, out=out[0]) if out[0] else None, None, None
    if kind == "bce":           # eager only: the lowering leaves a wanted target gradient to a callback
        dx = k.loss_bwd(kind, x, t, dy, scale, out=out[0]) if out[0] else None
        return dx, k.bce_target_bwd(x, dy, scale, out=out[1]), None
    dx = k.loss_bwd(kind, x, t, dy, scale)          # MSE: dt = -dx, so dx gets a buffer of its own
    return (dx if out[0] else None), k.neg(dx, out=out[1]), None


def _pair_samples(dt, target01=False):
    t = _x(dt, (3, 4), 51)
    if target01:
        t = (t > 0).astype(dt)
    return [Sample((_x(dt, (3, 4)), t), name="mean"), Sample((_x(dt, (3, 4)), t), {"reduction": "sum"}, name="sum"),
            Sample((_x(dt, (3, 4)), t), {"reduction": "none"}, name="none", compile=False)]


def _pointwise_scale(mean, n):
    """The loss's scale: 1/n for a mean, 1 for a sum, and NaN for a mean over nothing, so that the
    forward (sum * scale) is NaN as in PyTorch; the backward of an empty input reads no scale."""
    return float("nan") if mean and n == 0 else _C.loss_scale(mean, n)


def _pointwise_loss_forward(ctx, kernel, kind, x, t, mean):
    """The summed loss from `kernel`, scaled by 1/N for reduction="mean" (the scale the backward
    reuses); x and t are saved for the backward kernel."""
    scale = _pointwise_scale(mean, x.size)
    ctx.save_for_backward(*PointwiseLossSaved(x=x, t=t, scale=scale, kind=kind))
    return np.asarray(kernel(x, t) * scale, dtype=x.dtype)


@register("mse_loss", lower=_lower_pointwise_loss, backward=_pointwise_loss_rule,
          kernels=("_C.mse_forward", "_C.mse_backward"), dtypes=_F, traits={"loss_kind": "mse"},
          call=lambda x, t, **kw: mse_loss(x, t, **kw), samples=_pair_samples,
          bad_samples=lambda: [BadSample((np.ones((2, 3), np.float32), np.ones((4,), np.float32)),
                                         error=ValueError, match="target")],
          torch=lambda torch, x, t, **kw: torch.nn.functional.mse_loss(x, t, **kw))
class MSE(Function):
    @staticmethod
    def forward(ctx, x, t, mean):
        return _pointwise_loss_forward(ctx, _C.mse_forward, "mse", x, t, mean)


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


@register("bce_with_logits", lower=_lower_pointwise_loss, backward=_pointwise_loss_rule,
          kernels=("_C.bce_with_logits_forward", "_C.bce_with_logits_backward"), dtypes=_F,
          traits={"loss_kind": "bce"}, call=lambda x, t, **kw: binary_cross_entropy_with_logits(x, t, **kw),
          samples=lambda dt: _pair_samples(dt, target01=True),
          bad_samples=lambda: [BadSample((np.ones((2, 3), np.float32), np.ones((3,), np.float32)),
                                         error=ValueError, match="target")],
          torch=lambda torch, x, t, **kw: torch.nn.functional.binary_cross_entropy_with_logits(x, t, **kw))
class BCEWithLogits(Function):
    @staticmethod
    def forward(ctx, x, t, mean):
        return _pointwise_loss_forward(ctx, _C.bce_with_logits_forward, "bce", x, t, mean)


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
    loss = (1.0 - target) * input + lw * activation(-input, "softplus")
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
