"""Normalization and dropout ops: batch norm, layer norm, group norm, dropout / dropout2d.

Each op is one Function with its forward kernel and its fused backward kernel side by side
(csrc/norm.h), registered here; the functional forms and the Modules with PyTorch's signatures
are in lamina.nn.normalization.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import _C
from .. import random as _random
from ..tensor import Function, float32, float64
from ._common import is_float
from ._params import BatchNormAttrs
from .registry import BadSample, Sample, register

_F = (float32, float64)


def _arr(a):
    return None if a is None else np.ascontiguousarray(a)


def _needs(ctx, i):
    need = getattr(ctx, "needs_input_grad", ())
    return i < len(need) and bool(need[i])


def _x(dt, shape, seed=80, shift=0.0):
    return (np.random.default_rng(seed).standard_normal(shape) * 1.5 + shift).astype(dt)


def _get_relu(fn):
    return "relu" if fn.args[9] else "identity"


def _set_relu(fn, act):
    fn.args = list(fn.args)
    fn.args[9] = act == "relu"


def batch_norm_factor(training, running_mean, momentum, num_batches_tracked):
    """The running-statistics averaging factor of one batch-norm call: counts the batch in
    num_batches_tracked (an int64 array, in place) first; `momentum`, or PyTorch's cumulative
    average 1 / num_batches_tracked when momentum is None; 0 when nothing is updated. The
    graph's batch_norm_forward instruction does the same in C++."""
    if not training or running_mean is None:
        return 0.0
    if num_batches_tracked is not None:
        num_batches_tracked += 1
    if momentum is not None:
        return float(momentum)
    return 1.0 / float(num_batches_tracked) if num_batches_tracked is not None else 0.0


# What batch norm's one backward reads: y only with the fused relu (it masks dy by y > 0), and
# the call's BatchNormAttrs (training picks batch or running statistics).
BatchNormSaved = namedtuple("BatchNormSaved", "x y weight mean invstd bn")


def _bn_attrs(x_shape, training, momentum, eps, relu):
    N, C = x_shape[:2]
    return BatchNormAttrs(N=N, C=C, S=int(np.prod(x_shape[2:], dtype=np.int64)), training=bool(training),
                          relu=bool(relu), cumulative_average=momentum is None,
                          momentum=0.0 if momentum is None else float(momentum), eps=float(eps))


def _batch_norm_rule(k, s, dy, out):
    """The one backward of batch norm, eager and compiled: one fused kernel call."""
    x, y, weight, mean, invstd, bn = s
    dx, dw, db = k.batch_norm_bwd(x, dy, y, weight, mean, invstd, bn, dx=out[0], dw=out[1], db=out[2])
    return (dx, dw, db) + (None,) * 7


# ---- lowering: one batch_norm_forward instruction (the fused BN+ReLU kernel when relu is set,
# after the compiler's epilogue fusion); its backward is _batch_norm_rule's one bn_bwd.
def _lower_batch_norm(L, fn):
    x, w, b, rm, rv, nbt, training, momentum, eps, relu = fn.args
    if not is_float(x) or len(x.shape) < 2 or any(v is not None and v.dtype != x.dtype for v in (w, b, rm, rv)):
        return False
    C = x.shape[1]
    mean = L.g.value((C,), x.dtype, "temp", "bn_mean")
    invstd = L.g.value((C,), x.dtype, "temp", "bn_invstd")
    attrs = _bn_attrs(x.shape, training, momentum, eps, relu)
    fn.saved = BatchNormSaved(x=x, y=fn.out if attrs.relu else None, weight=w, mean=mean, invstd=invstd, bn=attrs)
    # the running statistics change in place: a side effect even if y were unused
    L.emit("bn_fwd", [x, w, b, rm, rv, nbt], [fn.out, mean, invstd], attrs, src=fn.op,
           effect=bool(training) and rm is not None)
    fn.lowered_by = "batch_norm"
    return True


def _bn_call(x, w=None, b=None, training=True):
    return BatchNormFn.apply(x, w, b, None, None, None, training, 0.1, 1e-5, False)


def _torch_bn(torch, x, w=None, b=None, training=True):
    return torch.nn.functional.batch_norm(x, None, None, w, b, training=training)


@register("batch_norm", kernels=("_C.batch_norm_forward", "_C.batch_norm_backward"), dtypes=_F,
          lower=_lower_batch_norm, backward=_batch_norm_rule,
          # a following relu runs inside the kernel (the graph compiler's BN+ReLU fusion)
          traits={"epilogue": (_get_relu, _set_relu, "the batch-norm kernel", ("relu",))},
          call=_bn_call,
          samples=lambda dt: [Sample((_x(dt, (4, 3, 5, 5), shift=0.5), _x(dt, (3,), 81), _x(dt, (3,), 82))),
                              Sample((_x(dt, (6, 4), 83),), name="1d, no affine")],
          bad_samples=lambda: [BadSample((np.zeros((1, 3), np.float32),), error=ValueError,
                                         match="more than 1 value per channel")],
          torch=_torch_bn)
class BatchNormFn(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the channels of x (N, C, ...).

    training: batch statistics; running_mean/var (if given) are updated in place with
    `momentum`, or with the cumulative average 1 / num_batches_tracked when momentum is None
    (num_batches_tracked, an int64 0-d array, is incremented here so a compiled step replays it).
    relu: the graph compiler's BN+ReLU fusion; the backward then masks dy by y > 0.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, num_batches_tracked, training, momentum, eps,
                relu=False):
        x = np.ascontiguousarray(x)
        c = x.shape[1]
        if training:
            per_channel = x.size // c if c else 0
            if per_channel <= 1:
                raise ValueError(f"input: expected more than 1 value per channel when training, "
                                 f"got input size {tuple(x.shape)}")
        factor = batch_norm_factor(training, running_mean, momentum, num_batches_tracked)
        y = np.empty_like(x)
        mean = np.empty(c, dtype=x.dtype)
        invstd = np.empty(c, dtype=x.dtype)
        _C.batch_norm_forward(x, _arr(weight), _arr(bias), running_mean, running_var, bool(training), factor,
                              float(eps), bool(relu), y, mean, invstd)
        ctx.save_for_backward(*BatchNormSaved(x=x, y=y if relu else None, weight=_arr(weight), mean=mean,
                                              invstd=invstd, bn=_bn_attrs(x.shape, training, momentum, eps, relu)))
        return y


def _ln_call(x, w=None, b=None):
    return LayerNormFn.apply(x, w, b, x.shape[-1], 1e-5)


@register("layer_norm", kernels=("_C.layer_norm_forward", "_C.layer_norm_backward"), dtypes=_F, call=_ln_call,
          samples=lambda dt: [Sample((_x(dt, (3, 2, 7), 84, 1.0), _x(dt, (7,), 85), _x(dt, (7,), 86)))],
          torch=lambda torch, x, w=None, b=None: torch.nn.functional.layer_norm(x, x.shape[-1:], w, b))
class LayerNormFn(Function):
    """Normalize each row of the trailing `K` elements, then the elementwise affine."""

    @staticmethod
    def forward(ctx, x, weight, bias, K, eps):
        x = np.ascontiguousarray(x)
        rows = x.size // K
        y = np.empty_like(x)
        mean = np.empty(rows, dtype=x.dtype)
        rstd = np.empty(rows, dtype=x.dtype)
        w = None if weight is None else np.ascontiguousarray(weight).reshape(-1)
        b = None if bias is None else np.ascontiguousarray(bias).reshape(-1)
        _C.layer_norm_forward(x, K, w, b, float(eps), y, mean, rstd)
        ctx.save_for_backward(x, w, mean, rstd)
        ctx.K = K
        ctx.wshape = None if weight is None else weight.shape
        ctx.bshape = None if bias is None else bias.shape
        return y

    @staticmethod
    def backward(ctx, dy):
        x, w, mean, rstd = ctx.saved_tensors
        dx = np.empty_like(x) if _needs(ctx, 0) else None
        dw = np.empty(ctx.K, dtype=x.dtype) if _needs(ctx, 1) else None
        db = np.empty(ctx.K, dtype=x.dtype) if _needs(ctx, 2) else None
        _C.layer_norm_backward(x, np.ascontiguousarray(dy), ctx.K, w, mean, rstd, dx, dw, db)
        return (dx, None if dw is None else dw.reshape(ctx.wshape), None if db is None else db.reshape(ctx.bshape),
                None, None)


def _gn_call(x, w=None, b=None):
    return GroupNormFn.apply(x, w, b, 2, 1e-5)


@register("group_norm", kernels=("_C.group_norm_forward", "_C.group_norm_backward"), dtypes=_F, call=_gn_call,
          samples=lambda dt: [Sample((_x(dt, (2, 4, 3, 3), 87, -0.5), _x(dt, (4,), 88), _x(dt, (4,), 89)))],
          torch=lambda torch, x, w=None, b=None: torch.nn.functional.group_norm(x, 2, w, b))
class GroupNormFn(Function):
    """Normalize each (sample, group) block of x (N, C, ...), then the per-channel affine."""

    @staticmethod
    def forward(ctx, x, weight, bias, num_groups, eps):
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        mean = np.empty((x.shape[0], num_groups), dtype=x.dtype)
        rstd = np.empty((x.shape[0], num_groups), dtype=x.dtype)
        _C.group_norm_forward(x, num_groups, _arr(weight), _arr(bias), float(eps), y, mean, rstd)
        ctx.save_for_backward(x, _arr(weight), mean, rstd)
        ctx.G = num_groups
        return y

    @staticmethod
    def backward(ctx, dy):
        x, w, mean, rstd = ctx.saved_tensors
        c = x.shape[1]
        dx = np.empty_like(x) if _needs(ctx, 0) else None
        dw = np.empty(c, dtype=x.dtype) if _needs(ctx, 1) else None
        db = np.empty(c, dtype=x.dtype) if _needs(ctx, 2) else None
        _C.group_norm_backward(x, np.ascontiguousarray(dy), ctx.G, w, mean, rstd, dx, dw, db)
        return dx, dw, db, None, None


# random masks: no samples (tests/test_norm.py checks seeding, scaling, gradients and compile;
# tests/test_random_torch.py that the masks are PyTorch's)
@register("dropout", kernels=("_C.dropout",), dtypes=_F)
class DropoutFn(Function):
    """y = x * noise, noise = keep / (1 - p) per unit of `unit` consecutive elements (1 for
    dropout, H*W for dropout2d). keep is drawn as PyTorch's CPU bernoulli_(1 - p) draws it (one
    53-bit uniform per unit, kept when below 1 - p) from lamina's generator, so manual_seed gives
    PyTorch's masks; p = 1 draws nothing (all dropped), as there. The backward reuses the mask."""

    @staticmethod
    def forward(ctx, x, p, unit):
        x = np.ascontiguousarray(x)
        units = x.size // unit
        if p >= 1.0:
            keep = np.zeros(units, dtype=np.uint8)
        else:
            keep = _random.default_generator().bernoulli(1.0 - p, units).view(np.uint8)
        y = np.empty_like(x)
        _C.dropout(x, y, keep, float(p), int(unit))
        ctx.keep, ctx.p, ctx.unit = keep, float(p), int(unit)
        return y

    @staticmethod
    def backward(ctx, dy):
        dy = np.ascontiguousarray(dy)
        dx = np.empty_like(dy)
        _C.dropout(dy, dx, ctx.keep, ctx.p, ctx.unit)
        return dx, None, None
