"""More of PyTorch's activations: hardtanh / relu6, hardsigmoid, hardswish, selu, celu, softsign,
logsigmoid, tanhshrink, hardshrink, softshrink, threshold (elementwise, NumPy forward beside the
derivative each backward multiplies by, with PyTorch's choices at the kinks: hardtanh passes no
gradient at min_val or max_val, the ELU family takes the x <= 0 side at 0) and prelu (a learned
slope per channel). softmin and glu are compositions of registered ops. The compiler runs these as
callbacks (no lowering).
"""
from __future__ import annotations

import numpy as np

from .._inplace import apply_inplace
from ..tensor import Function, Tensor, float32, float64
from .nn_extra import _float_input
from .registry import BadSample, Sample, export, register

# The public functional names: lamina.nn.functional re-exports every name listed here.
__all__ = ["celu", "glu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh", "logsigmoid", "prelu", "relu6",
           "selu", "softmin", "softshrink", "softsign", "tanhshrink", "threshold"]

_F = (float32, float64)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _x(dt, shape, seed=90, low=-4.0, high=4.0):
    x = np.random.default_rng(seed).uniform(low, high, shape).astype(dt)
    # away from the kinks (+-3, +-1, 0, +-0.5, 6): finite differences straddling one are meaningless
    for k in (-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0):
        x = np.where(np.abs(x - k) < 0.05, dt.type(k + 0.2), x)
    return x


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))   # no overflow in exp


# (forward(x, *params) -> y, slope(x, *params) -> dy/dx, params' names and PyTorch's defaults)
_RULES = {
    "hardtanh": (lambda x, lo, hi: np.clip(x, lo, hi),
                 lambda x, lo, hi: (x > lo) & (x < hi), ("min_val", "max_val"), (-1.0, 1.0)),
    # PyTorch's backward multiplies by the float 1/6 in every dtype
    "hardsigmoid": (lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6,
                    lambda x: np.where((x > -3) & (x < 3), float(np.float32(1.0 / 6.0)), 0.0), (), ()),
    "hardswish": (lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6,
                  lambda x: np.where(x <= -3, 0.0, np.where(x < 3, x / 3 + 0.5, 1.0)), (), ()),
    "selu": (lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
             lambda x: np.where(x > 0, SELU_SCALE, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(x, 0))), (), ()),
    # celu is elu(x, alpha, input_scale=1/alpha); PyTorch's backward takes 1/alpha from alpha as a float
    "celu": (lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0) * (1.0 / a))),
             lambda x, a: np.where(x > 0, 1.0, (1.0 / float(np.float32(a))) * a
                                      * np.exp(np.minimum(x, 0) * (1.0 / float(np.float32(a))))),
             ("alpha",), (1.0,)),
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2, (), ()),
    "logsigmoid": (lambda x: np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))),
                   lambda x: _sigmoid(-x), (), ()),
    "tanhshrink": (lambda x: x - np.tanh(x), lambda x: np.tanh(x) ** 2, (), ()),
    "hardshrink": (lambda x, lambd: np.where((x > lambd) | (x < -lambd), x, 0),
                   lambda x, lambd: (x > lambd) | (x < -lambd), ("lambd",), (0.5,)),
    "softshrink": (lambda x, lambd: np.where(x > lambd, x - lambd, np.where(x < -lambd, x + lambd, 0)),
                   lambda x, lambd: (x > lambd) | (x < -lambd), ("lambd",), (0.5,)),
    "threshold": (lambda x, t, v: np.where(x > t, x, v),
                  lambda x, t, v: x > t, ("threshold", "value"), (None, None)),
}


def _elementwise_op(name):
    fwd, slope, names, defaults = _RULES[name]

    def forward(ctx, x, *params):
        ctx.save_for_backward(x)
        ctx.params = params
        return np.asarray(fwd(x, *params)).astype(x.dtype, copy=False)

    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        d = np.asarray(slope(x, *ctx.params))
        return ((dy * d).astype(x.dtype, copy=False),) + (None,) * len(ctx.params)

    kw = dict(zip(names, defaults))
    sample_kw = {"threshold": {"threshold": 0.5, "value": -2.0}}.get(name, {})
    cls = type(name.capitalize() + "Fn", (Function,), {
        "forward": staticmethod(forward), "backward": staticmethod(backward),
        "__doc__": f"PyTorch's F.{name}, elementwise; its backward multiplies by the derivative."})

    def call(x, **k):
        return globals()[name](_tensor(x), **k)

    def reference(x, **k):
        merged = {**kw, **k}
        return fwd(x, *(merged[n] for n in names))

    register(name, dtypes=_F, call=call,
             samples=lambda dt: [Sample((_x(dt, (3, 5)),), dict(sample_kw), name="3x5"),
                                 Sample((_x(dt, (7,), low=-8.0, high=8.0),), dict(sample_kw), name="wide"),
                                 Sample((_x(dt, (0, 2)),), dict(sample_kw), name="size0")],
             bad_samples=lambda: [BadSample((np.ones(3, np.int64),), dict(sample_kw), TypeError, "float")],
             reference=reference,
             torch=lambda torch, x, **k: getattr(torch.nn.functional, name)(x, **k))(cls)
    return cls


HardtanhFn, HardsigmoidFn, HardswishFn, SeluFn, CeluFn, SoftsignFn, LogsigmoidFn, TanhshrinkFn, HardshrinkFn, \
    SoftshrinkFn, ThresholdFn = (_elementwise_op(n) for n in _RULES)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clipped to [min_val, max_val]; no gradient at the ends (PyTorch's).

    >>> import lamina, lamina.nn.functional as F
    >>> F.hardtanh(lamina.tensor([-2.0, 0.5, 3.0])).tolist()
    [-1.0, 0.5, 1.0]
    """
    if inplace:
        return apply_inplace(input, "hardtanh_", hardtanh, min_val, max_val)
    _float_input(input, "hardtanh")
    if not min_val <= max_val:
        raise ValueError(f"max_val: expected max_val >= min_val, got min_val={min_val}, max_val={max_val}")
    return HardtanhFn.apply(input, float(min_val), float(max_val))


def relu6(input, inplace=False):
    """min(max(x, 0), 6): hardtanh(x, 0, 6)."""
    if inplace:
        return apply_inplace(input, "relu6_", relu6)
    _float_input(input, "relu6")
    return HardtanhFn.apply(input, 0.0, 6.0)


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6."""
    if inplace:
        return apply_inplace(input, "hardsigmoid_", hardsigmoid)
    _float_input(input, "hardsigmoid")
    return HardsigmoidFn.apply(input)


def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6."""
    if inplace:
        return apply_inplace(input, "hardswish_", hardswish)
    _float_input(input, "hardswish")
    return HardswishFn.apply(input)


def selu(input, inplace=False):
    """scale * elu(x, alpha) with the self-normalizing constants (Klambauer et al. 2017)."""
    if inplace:
        return apply_inplace(input, "selu_", selu)
    _float_input(input, "selu")
    return SeluFn.apply(input)


def celu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha * (exp(x / alpha) - 1) otherwise."""
    if inplace:
        return apply_inplace(input, "celu_", celu, alpha)
    _float_input(input, "celu")
    if alpha == 0:
        raise ValueError("alpha: celu expected a nonzero alpha, got 0")
    return CeluFn.apply(input, float(alpha))


def softsign(input):
    """x / (1 + |x|)."""
    _float_input(input, "softsign")
    return SoftsignFn.apply(input)


def logsigmoid(input):
    """log(sigmoid(x)), without overflow."""
    _float_input(input, "logsigmoid")
    return LogsigmoidFn.apply(input)


def tanhshrink(input):
    """x - tanh(x)."""
    _float_input(input, "tanhshrink")
    return TanhshrinkFn.apply(input)


@export
def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0."""
    _float_input(input, "hardshrink")
    return HardshrinkFn.apply(input, float(lambd))


def softshrink(input, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    _float_input(input, "softshrink")
    if lambd < 0:
        raise ValueError(f"lambd: softshrink expected lambd >= 0, got {lambd}")
    return SoftshrinkFn.apply(input, float(lambd))


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else value."""
    _float_input(input, "threshold")
    if inplace:  # (the argument `threshold` hides this function's name)
        return apply_inplace(input, "threshold_", ThresholdFn.apply, float(threshold), float(value))
    return ThresholdFn.apply(input, float(threshold), float(value))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x, dim)."""
    from .activation import softmax
    return softmax(-input, dim, _stacklevel=_stacklevel + 1, dtype=dtype)


def glu(input, dim=-1):
    """a * sigmoid(b), a and b the two halves of input along dim."""
    _float_input(input, "glu")
    d = dim + input.ndim if dim < 0 else dim
    if input.ndim == 0 or not 0 <= d < input.ndim:
        raise IndexError(f"dim: glu expected a dim in [-{max(input.ndim, 1)}, {max(input.ndim, 1) - 1}], got {dim}")
    if input.shape[d] % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {d} is size {input.shape[d]}")
    a, b = input.chunk(2, dim=d)
    return a * b.sigmoid()


def _slope_shape(x, w):
    """w broadcast over x: along dim 1 (the channels) when it has several slopes."""
    shape = [1] * x.ndim
    if w.size > 1:
        shape[1] = w.size
    return shape


def _np_prelu(x, w):
    shape = _slope_shape(x, w)
    return np.where(x > 0, x, w.reshape(shape) * x)


def _tensor(a):
    return a if isinstance(a, Tensor) else Tensor._wrap(np.asarray(a))


@register("prelu", dtypes=_F, call=lambda x, w: prelu(_tensor(x), _tensor(w)),
          samples=lambda dt: [Sample((_x(dt, (2, 3, 4)), np.array([0.25, -0.5, 1.5], dt)), name="per-channel"),
                              Sample((_x(dt, (3, 5)), np.array([0.1], dt)), name="shared")],
          bad_samples=lambda: [BadSample((np.ones((2, 3), np.float32), np.ones(2, np.float32)), {}, ValueError,
                                         "weight")],
          reference=_np_prelu, torch=lambda torch, x, w: torch.nn.functional.prelu(x, w))
class PReLUFn(Function):
    """x for x > 0, w * x otherwise, w one slope or one per channel (dim 1)."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return _np_prelu(x, w).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        shape = _slope_shape(x, w)
        neg = x <= 0
        dx = np.where(neg, w.reshape(shape) * dy, dy).astype(x.dtype, copy=False)
        dw_full = np.where(neg, x * dy, 0)
        if w.size > 1:
            dw = dw_full.sum(axis=tuple(a for a in range(x.ndim) if a != 1))
        else:
            dw = np.array([dw_full.sum()])
        return dx, dw.reshape(w.shape).astype(w.dtype, copy=False)


@export
def prelu(input, weight):
    """max(0, x) + weight * min(0, x), weight one slope or one per channel (dim 1)."""
    _float_input(input, "prelu")
    if not isinstance(weight, Tensor):
        raise TypeError(f"weight: prelu expected a lamina Tensor, got {type(weight).__name__}")
    channels = input.shape[1] if input.ndim > 1 else 1   # below 2 dims there is no channel dim
    if weight.numel() != 1 and (weight.ndim != 1 or weight.numel() != channels):
        raise ValueError(f"weight: prelu expected 1 slope or {channels} (one per channel), got shape "
                         f"{tuple(weight.shape)}")
    return PReLUFn.apply(input, weight)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky ReLU (PyTorch's F.rrelu). Training: each x <= 0 is multiplied by its own
    slope drawn uniformly from [lower, upper] (one 53-bit uniform per such element, in order, as
    PyTorch's CPU kernel draws them); eval: leaky_relu with slope (lower + upper) / 2. A
    composition (x * slopes), so the gradient is dy times the slope used."""
    if inplace:
        return apply_inplace(input, "rrelu_", rrelu, lower, upper, training)
    _float_input(input, "rrelu")
    if not float(lower) <= float(upper):
        raise RuntimeError(f"Lower bound should be less than or equal to the upper bound, got lower={lower}, "
                           f"upper={upper}")
    if not training:
        from .activation import activation
        return activation(input, "leaky_relu", (float(lower) + float(upper)) / 2)
    from .. import random as _random
    x = input._data
    neg = x <= 0
    slopes = np.ones(x.shape, np.float64)
    g = _random.default_generator()
    with g._lock:
        u = g._uniform01(int(neg.sum()), np.float64)
    # PyTorch takes the bounds in the input's dtype first (float32 rounds 0.1 before the draw)
    lo, hi = (float(x.dtype.type(lower)), float(x.dtype.type(upper)))
    slopes[neg] = u * (hi - lo) + lo
    return input * Tensor._wrap(slopes.astype(x.dtype))


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return rrelu(input, lower, upper, training, inplace=True)


__all__ += ["rrelu", "rrelu_"]
