"""More elementwise math, as PyTorch names it: tan, log1p, expm1, rsqrt, sign, maximum, minimum,
where.

Python-only ops (NumPy forward, NumPy backward): the compiler runs them as callbacks, so they are
correct compiled, just not fused. Gradients follow PyTorch's conventions at kinks and ties:
sign' = 0; maximum/minimum split the gradient evenly between tied inputs.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, float32, float64
from .registry import BadSample, Sample, register

_F = (float32, float64)


def _x(dt, shape=(3, 5), seed=60, positive=False, low=None):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dt)
    if positive:
        x = np.abs(x) + dt.type(0.25)
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
                    samples=samples, bad_samples=lambda: [BadSample((np.arange(3),), error=TypeError)],
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

