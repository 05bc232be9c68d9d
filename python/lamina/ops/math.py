"""More elementwise math, as PyTorch names it: tan, log1p, expm1, rsqrt, sign, maximum, minimum,
sinh cosh asin acos atan asinh acosh atanh erf erfc erfinv reciprocal atan2,
where.

Python-only ops (NumPy forward, NumPy backward): the compiler runs them as callbacks, so they are
correct compiled, just not fused. Gradients follow PyTorch's conventions at kinks and ties:
sign' = 0; maximum/minimum split the gradient evenly between tied inputs.
"""
from __future__ import annotations

import math as _pymath

import numpy as np

from ..tensor import Function, float32, float64
from .registry import Sample, register

_F = (float32, float64)


def _x(dt, shape=(3, 5), seed=60, positive=False, low=None, unit=False, above_one=False):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dt)
    if positive:
        x = np.abs(x) + dt.type(0.25)
    if unit:            # inside (-1, 1), away from the ends: asin, acos, atanh, erfinv
        x = (np.tanh(x) * 0.9).astype(dt)
    if above_one:       # acosh's domain, away from its kink at 1
        x = (np.abs(x) + 1.25).astype(dt)
    if low is not None:
        x = np.clip(x, low, None)
    return x


def _float_input(op, x):
    if x.dtype not in _F:
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype}")


def _unary(name, cls_name, forward, grad, sample_kw=None, doc=""):
    """A unary op y = f(x) whose derivative `grad(x, y)` is written beside it."""
    sample_kw = sample_kw or {}

    def fwd(ctx, x):
        _float_input(name, x)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = forward(x)
        ctx.save_for_backward(x, y)
        return y

    def bwd(ctx, dy):
        x, y = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return (dy * grad(x, y),)

    cls = type(cls_name, (Function,), {"forward": staticmethod(fwd), "backward": staticmethod(bwd),
                                       "__module__": __name__, "__qualname__": cls_name, "__doc__": doc})

    def samples(dt):
        x = _x(dt, **sample_kw)
        return [Sample((x,), name="2d"), Sample((x[:0],), name="size0"), Sample((x[:1, :1],), name="size1")]

    return register(name, kernels=(f"numpy {name}",), dtypes=_F, call=lambda x: getattr(x, name)(),
                    # no bad sample: x.tan() on an integer tensor promotes to float, as torch.tan does
                    samples=samples,
                    reference=forward, torch=lambda torch, x: getattr(torch, name)(x))(cls)


Tan = _unary("tan", "Tan", np.tan, lambda x, y: 1 + y * y, dict(seed=61), "tan'(x) = 1 + tan(x)^2")
Log1p = _unary("log1p", "Log1p", np.log1p, lambda x, y: 1 / (1 + x), dict(seed=62, positive=True))
Expm1 = _unary("expm1", "Expm1", np.expm1, lambda x, y: y + 1, dict(seed=63))
Rsqrt = _unary("rsqrt", "Rsqrt", lambda x: 1 / np.sqrt(x), lambda x, y: -0.5 * y * y * y,
               dict(seed=64, positive=True))
Sign = _unary("sign", "Sign", np.sign, lambda x, y: np.zeros_like(x), dict(seed=65), "NOTE: sign' = 0, as PyTorch")


def _pair_samples(dt):
    r = np.random.default_rng(66)
    a = r.standard_normal((3, 4)).astype(dt)
    b = r.standard_normal((3, 4)).astype(dt)
    b[0, 0] = a[0, 0]                       # one tie: the gradient is split evenly
    return [Sample((a, b), name="tie"), Sample((a, b[:1]), name="broadcast"), Sample((a[:0], b[:0]), name="size0")]


def _minmax(name, cls_name, pick):
    def fwd(ctx, a, b):
        ctx.save_for_backward(a, b)
        return pick(a, b)

    def bwd(ctx, dy):
        a, b = ctx.saved_tensors
        # NOTE: ties split the gradient evenly (PyTorch); NaN wins and takes the whole gradient
        a_wins = (pick(a, b) == a) | np.isnan(a)
        b_wins = (pick(a, b) == b) | np.isnan(b)
        both = a_wins & b_wins
        ga = np.where(both, dy * 0.5, np.where(a_wins, dy, 0)).astype(dy.dtype)
        gb = np.where(both, dy * 0.5, np.where(b_wins, dy, 0)).astype(dy.dtype)
        return ga, gb

    cls = type(cls_name, (Function,), {"forward": staticmethod(fwd), "backward": staticmethod(bwd),
                                       "__module__": __name__, "__qualname__": cls_name})
    return register(name, kernels=(f"numpy {pick.__name__}",), dtypes=_F,
                    call=lambda a, b: getattr(a, name)(b), samples=_pair_samples,
                    reference=pick, torch=lambda torch, a, b: getattr(torch, name)(a, b))(cls)


Maximum = _minmax("maximum", "Maximum", np.maximum)
Minimum = _minmax("minimum", "Minimum", np.minimum)


def _where_samples(dt):
    r = np.random.default_rng(67)
    c = r.random((3, 4)) > 0.5
    return [Sample((r.standard_normal((3, 4)).astype(dt), r.standard_normal((3, 4)).astype(dt)), {"cond": c}),
            Sample((r.standard_normal((3, 4)).astype(dt), r.standard_normal((4,)).astype(dt)), {"cond": c},
                   name="broadcast")]


@register("where", kernels=("numpy where",), dtypes=_F,
          call=lambda a, b, cond=None: Where.apply(np.asarray(cond), a, b), samples=_where_samples,
          reference=lambda a, b, cond=None: np.where(cond, a, b),
          torch=lambda torch, a, b, cond=None: torch.where(torch.as_tensor(cond), a, b))
class Where(Function):
    """where(cond, a, b): a where cond holds, else b; the gradient flows to the chosen side."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond = cond
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, dy):
        zero = dy.dtype.type(0)
        return None, np.where(ctx.cond, dy, zero), np.where(ctx.cond, zero, dy)



# ---------------------------------------------------------------- trigonometric, hyperbolic, erf
def _erf(x):
    """erf without SciPy (not a dependency): math.erf elementwise, in x's dtype."""
    return np.asarray(np.frompyfunc(_pymath.erf, 1, 1)(x)).astype(x.dtype) if x.size else x.copy()


def _erfinv(y):
    """erf's inverse: Giles' single-precision start, polished by Newton steps on erf in float64."""
    y64 = y.astype(np.float64)
    w = -np.log((1.0 - y64) * (1.0 + y64))
    small = w < 5.0
    ws, wl = w - 2.5, np.sqrt(np.maximum(w, 5.0)) - 3.0
    ps = np.polyval([2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                     -0.00125372503, -0.00417768164, 0.246640727, 1.50140941], ws)
    pl = np.polyval([-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                     -0.0076224613, 0.00943887047, 1.00167406, 2.83297682], wl)
    x = np.where(small, ps, pl) * y64
    finite = np.abs(y64) < 1
    for _ in range(3):      # erf(x) - y = 0; erf'(x) = 2/sqrt(pi) exp(-x^2)
        err = _erf(np.where(finite, x, 0.0)) - y64
        x = np.where(finite, x - err / (2.0 / np.sqrt(np.pi) * np.exp(-x * x)), x)
    x = np.where(np.abs(y64) == 1, np.copysign(np.inf, y64), x)
    return np.where(np.abs(y64) > 1, np.nan, x).astype(y.dtype)


_SQRT_PI_2 = 2.0 / np.sqrt(np.pi)

Sinh = _unary("sinh", "Sinh", np.sinh, lambda x, y: np.cosh(x), dict(seed=90))
Cosh = _unary("cosh", "Cosh", np.cosh, lambda x, y: np.sinh(x), dict(seed=91))
Asin = _unary("asin", "Asin", np.arcsin, lambda x, y: 1 / np.sqrt(1 - x * x), dict(seed=92, unit=True))
Acos = _unary("acos", "Acos", np.arccos, lambda x, y: -1 / np.sqrt(1 - x * x), dict(seed=93, unit=True))
Atan = _unary("atan", "Atan", np.arctan, lambda x, y: 1 / (1 + x * x), dict(seed=94))
Asinh = _unary("asinh", "Asinh", np.arcsinh, lambda x, y: 1 / np.sqrt(x * x + 1), dict(seed=95))
Acosh = _unary("acosh", "Acosh", np.arccosh, lambda x, y: 1 / np.sqrt(x * x - 1), dict(seed=96, above_one=True))
Atanh = _unary("atanh", "Atanh", np.arctanh, lambda x, y: 1 / (1 - x * x), dict(seed=97, unit=True))
Erf = _unary("erf", "Erf", _erf, lambda x, y: _SQRT_PI_2 * np.exp(-x * x), dict(seed=98))
Erfc = _unary("erfc", "Erfc", lambda x: (1 - _erf(x.astype(np.float64))).astype(x.dtype),
              lambda x, y: -_SQRT_PI_2 * np.exp(-x * x), dict(seed=99))
Erfinv = _unary("erfinv", "Erfinv", _erfinv, lambda x, y: 0.5 * np.sqrt(np.pi) * np.exp(y * y), dict(seed=100, unit=True))
Reciprocal = _unary("reciprocal", "Reciprocal", lambda x: 1 / x, lambda x, y: -y * y, dict(seed=101, positive=True))


def _atan2_samples(dt):
    r = np.random.default_rng(102)
    a, b = r.standard_normal((3, 4)).astype(dt), r.standard_normal((3, 4)).astype(dt)
    return [Sample((a, b), name="2d"), Sample((a, b[:1]), name="broadcast"), Sample((a[:0], b[:0]), name="size0")]


@register("atan2", kernels=("numpy arctan2",), dtypes=_F, call=lambda a, b: a.atan2(b), samples=_atan2_samples,
          reference=np.arctan2, torch=lambda torch, a, b: torch.atan2(a, b))
class Atan2(Function):
    """atan2(a, b), the angle of the point (b, a): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.arctan2(a, b)

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = a * a + b * b
            return (dy * b / r2).astype(dy.dtype), (dy * -a / r2).astype(dy.dtype)


# ---------------------------------------------------------------- gamma family, i0, sinc
# No SciPy (not a dependency): lgamma from C's lgamma through math.lgamma; digamma and trigamma
# by the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 16, then their asymptotic series (error
# below 1e-16 there), and the reflection formulas for x < 0.5; i1 (i0's derivative) by its power
# series, whose terms are all positive, so no cancellation.
def _lgamma1(v):
    return _pymath.inf if v <= 0 and v == _pymath.floor(v) else _pymath.lgamma(v)   # poles: +inf, as PyTorch


def _lgamma(x):
    return np.asarray(np.frompyfunc(_lgamma1, 1, 1)(x.astype(np.float64)), np.float64).astype(x.dtype) \
        if x.size else x.copy()


def _psi_series(x, order):
    """digamma (order 0) or trigamma (order 1) for float64 x >= 0.5."""
    acc = np.zeros_like(x)
    x = x.copy()
    for _ in range(16):
        small = x < 16.0
        if not small.any():
            break
        acc = np.where(small, acc + (-1.0 / x if order == 0 else 1.0 / (x * x)), acc)
        x = np.where(small, x + 1.0, x)
    r = 1.0 / (x * x)
    if order == 0:
        tail = np.log(x) - 0.5 / x - r * (1 / 12 - r * (1 / 120 - r * (1 / 252 - r * (1 / 240 - r * (1 / 132)))))
    else:
        tail = 1.0 / x + 0.5 * r + (r / x) * (1 / 6 - r * (1 / 30 - r * (1 / 42 - r * (1 / 30 - r * (5 / 66)))))
    return acc + tail


def _polygamma01(x, order):
    """digamma / trigamma in x's dtype (computed in float64): PyTorch's values at the poles,
    digamma(0) = -inf and NaN at the negative integers."""
    x64 = np.asarray(x, np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        low = x64 < 0.5
        refl = np.where(low, 1.0 - x64, x64)
        base = _psi_series(np.where(np.isfinite(refl), refl, 1.0), order)
        base = np.where(np.isfinite(refl), base, np.log(refl) if order == 0 else 0.0)
        s = np.sin(np.pi * x64)
        if order == 0:
            out = np.where(low, base - np.pi * np.cos(np.pi * x64) / s, base)
            out = np.where(x64 == 0, -np.inf, out)
        else:
            out = np.where(low, np.pi * np.pi / (s * s) - base, base)
            out = np.where(x64 == 0, np.inf, out)
        out = np.where(low & (x64 == np.floor(x64)) & (x64 != 0), np.nan, out)
    return out.astype(np.asarray(x).dtype)


def _i1(x):
    """The modified Bessel function I1 in float64: sum_k (x/2)^(2k+1) / (k! (k+1)!)."""
    x64 = np.asarray(x, np.float64)
    h = x64 / 2
    term = h.copy()
    total = h.copy()
    for k in range(1, 1000):
        term = term * (h * h) / (k * (k + 1))
        total = total + term
        if not np.any(np.abs(term) > 1e-17 * np.abs(total)):
            break
    return total


def _sinc(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        px = (np.pi * x.astype(np.float64))
        return np.where(x == 0, 1.0, np.sin(px) / px).astype(x.dtype)


def _sinc_grad(x, y):
    """(cos(pi x) pi x - sin(pi x)) / (pi x^2), 0 at 0 (PyTorch's)."""
    px = np.pi * x.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (np.cos(px) * px - np.sin(px)) / (px * x)
    return np.where(x == 0, 0.0, g).astype(x.dtype)


Lgamma = _unary("lgamma", "Lgamma", _lgamma, lambda x, y: _polygamma01(x, 0), dict(seed=103, positive=True),
                "lgamma'(x) = digamma(x)")
Digamma = _unary("digamma", "Digamma", lambda x: _polygamma01(x, 0), lambda x, y: _polygamma01(x, 1),
                 dict(seed=104), "digamma'(x) = trigamma(x) = polygamma(1, x)")
I0 = _unary("i0", "I0", lambda x: np.i0(x.astype(np.float64)).astype(x.dtype),
            lambda x, y: _i1(x).astype(x.dtype), dict(seed=105), "i0'(x) = i1(x)")
Sinc = _unary("sinc", "Sinc", _sinc, lambda x, y: _sinc_grad(x, y), dict(seed=106), "sin(pi x) / (pi x), 1 at 0")
