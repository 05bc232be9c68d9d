"""Elementwise arithmetic: add, sub, mul, div, neg, pow, exp, log, abs, sin, cos, clamp, clone, cast.

Each op: its Function (forward + eager backward), its lowering to graph nodes, its samples.
Same-shape and bias-like broadcasts lower to native nodes. Every op with a native lowering has
one backward rule (`_rule_*` over a kernels object, see _common.py) that eager autodiff and the
compiler both run; broadcast gradients are summed back through k.reduce_to_shape, which in eager
is the engine's one tensor.reduce_to_shape.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..tensor import Function, cast_array, float32, float64
from .._dims import bcast_split
from ._common import EXACT_UNARY, FLOATS, UNARY_KERNELS, is_float, saved_operands
from ._params import BroadcastAttrs, ElementwiseAttrs, UnaryAttrs
from .registry import BadSample, Sample, register

_F = (float32, float64)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _binary_samples(dtype, positive_b=False):
    r = _rng(1)

    def b(shape):
        v = r.standard_normal(shape).astype(dtype)
        return np.abs(v) + dtype.type(0.5) if positive_b else v
    return [
        Sample((r.standard_normal((3, 4)).astype(dtype), b((3, 4))), name="same"),
        Sample((r.standard_normal((2, 3, 4)).astype(dtype), b((4,))), name="bias"),
        Sample((r.standard_normal((2, 3, 1, 1)).astype(dtype), b((3, 1, 1))), name="bias-first"),
        Sample((r.standard_normal((4, 1)).astype(dtype), b((1, 5))), name="outer"),
        Sample((r.standard_normal((0, 3)).astype(dtype), b((3,))), name="size0"),
        Sample((r.standard_normal((1,)).astype(dtype), b((1,))), name="size1"),
    ]


def _binary_bad():
    return [BadSample((np.ones((2, 3), np.float32), np.ones((4,), np.float32)), error=ValueError,
                      match="broadcast")]


# ---------------------------------------------------------------- binary: native lowering
# kinds of the `broadcast` node (names of _C.BroadcastKind), with x the full operand and s the
# small one: rsub is s - x
_BCAST_KIND = {("add", 0): "add", ("add", 1): "add", ("sub", 0): "sub", ("sub", 1): "rsub", ("mul", 0): "mul",
               ("mul", 1): "mul", ("div", 0): "div"}


def _lower_binary(op):
    def lower(L, fn):
        if len(fn.tensor_pos) != 2:
            return False
        a, b = fn.inputs()
        if a.dtype != b.dtype or a.dtype not in FLOATS:
            return False
        # the op's rule reads the operands' shapes (add, sub) or the operands (mul, div)
        fn.saved = _BinaryShapes(a.shape, b.shape) if op in ("add", "sub") else _Operands(a, b)
        if a.shape == b.shape:
            L.emit(op, [a, b], [fn.out], ElementwiseAttrs(n=a.size), src=fn.op)
            fn.lowered_by = op
            return True
        # One operand has the output's shape, the other repeats over it (bias-like).
        full = 0 if a.shape == fn.out.shape else 1 if b.shape == fn.out.shape else None
        split = None if full is None else bcast_split(fn.out.shape, fn.args[1 - full].shape)
        if split is None or (op, full) not in _BCAST_KIND:
            return False
        if op == "div" and L.wants(fn, 1):
            return False        # x / s with a gradient for s: no native rule (the eager one runs)
        kind = _BCAST_KIND[(op, full)]
        L.emit("broadcast", [fn.args[full], fn.args[1 - full]], [fn.out], BroadcastAttrs(*split, kind=kind),
               src=fn.op)
        fn.lowered_by = "broadcast"
        return True
    return lower


# ---- one backward rule per op, run by eager autodiff (k = EAGER) and the compiler (k = its
# recorder). k.reduce_to_shape(g, shape, ...) is the gradient g (times `times`, times alpha)
# summed back to an operand's shape: a no-op for an operand of the output's shape (the compiler
# then hands dy itself over as the gradient, no copy, to one operand at most), the central
# tensor.reduce_to_shape in eager, one reduce_broadcast node (the product fused) when compiled.
_BinaryShapes = namedtuple("_BinaryShapes", "a b")
_Operands = namedtuple("_Operands", "a b")


def _rule_add(k, saved, dy, out):
    return tuple(k.reduce_to_shape(dy, shape, out=o) if o else None for shape, o in zip(saved, out))


def _rule_sub(k, saved, dy, out):
    a_shape, b_shape = saved
    return (k.reduce_to_shape(dy, a_shape, out=out[0]) if out[0] else None,
            k.reduce_to_shape(dy, b_shape, alpha=-1.0, out=out[1]) if out[1] else None)


def _rule_mul(k, saved, dy, out):
    a, b = saved
    return (k.reduce_to_shape(dy, a.shape, times=b, out=out[0]) if out[0] else None,
            k.reduce_to_shape(dy, b.shape, times=a, out=out[1]) if out[1] else None)


def _rule_div(k, saved, dy, out):
    a, b = saved
    da = k.reduce_to_shape(k.div(dy, b), a.shape, out=out[0]) if out[0] else None
    # ((-dy) * a) / (b * b); compiled only for equal shapes (the lowering leaves x / s with a
    # gradient for s to a callback)
    db = k.reduce_to_shape(k.div(k.mul(k.neg(dy), a), k.mul(b, b)), b.shape, out=out[1]) if out[1] else None
    return da, db


def _binary_kwargs(torch_name):
    return dict(kernels=("numpy ufunc", "graph: add/sub/mul/div, broadcast, reduce_broadcast"), dtypes=_F,
                torch=lambda torch, a, b: getattr(torch, torch_name)(a, b))


@register("add", lower=_lower_binary("add"), backward=_rule_add,
          call=lambda a, b: a + b, samples=_binary_samples, bad_samples=_binary_bad,
          reference=np.add, **_binary_kwargs("add"))
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a.shape, b.shape)
        return np.add(a, b)


@register("sub", lower=_lower_binary("sub"), backward=_rule_sub,
          call=lambda a, b: a - b, samples=_binary_samples, bad_samples=_binary_bad,
          reference=np.subtract, **_binary_kwargs("sub"))
class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a.shape, b.shape)
        return np.subtract(a, b)


@register("mul", lower=_lower_binary("mul"), backward=_rule_mul,
          call=lambda a, b: a * b, samples=_binary_samples, bad_samples=_binary_bad,
          reference=np.multiply, **_binary_kwargs("mul"))
class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(*saved_operands(ctx, a, b))
        return np.multiply(a, b)


@register("div", lower=_lower_binary("div"), backward=_rule_div,
          call=lambda a, b: a / b, samples=lambda dt: _binary_samples(dt, positive_b=True),
          bad_samples=_binary_bad, reference=np.true_divide, **_binary_kwargs("div"))
class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(*saved_operands(ctx, a, b, b_read_by=(0, 1)))  # db reads a and b
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # x / 0 = inf quietly, as PyTorch
            return np.true_divide(a, b)


# ---------------------------------------------------------------- unary with native kernels
# Each rule is the eager arithmetic in the same order (Cos: (-dy) * sin(x)), so results match.
_UNARY_RULES = {
    "neg": lambda k, x, y, dy: k.neg(dy),
    "exp": lambda k, x, y, dy: k.mul(dy, y),
    "log": lambda k, x, y, dy: k.div(dy, x),
    "sin": lambda k, x, y, dy: k.mul(dy, k.unary("cos", x)),
    "cos": lambda k, x, y, dy: k.mul(k.neg(dy), k.unary("sin", x)),
    "abs": lambda k, x, y, dy: k.mul(dy, k.unary("sign", x)),
}


def _lower_unary(kind):
    def lower(L, fn):
        x = fn.args[0]
        if kind not in EXACT_UNARY or fn.tensor_pos != [0] or not is_float(x):
            return False      # exp, log, sin, cos: a callback running the eager kernel (bit for bit)
        L.emit("unary", [x], [fn.out], UnaryAttrs(n=x.size, kind=kind), src=fn.op)
        fn.saved = (x, fn.out)
        fn.lowered_by = "unary"
        return True
    return lower


def _unary_backward(kind):
    """The op's one backward rule (registered: eager and compiled), saved = (x, y)."""
    def rule(k, saved, dy, out):
        x, y = saved
        return (_UNARY_RULES[kind](k, x, y, dy),)
    return rule


def _unary_samples(positive=False):
    def samples(dtype):
        r = _rng(2)
        x = r.standard_normal((3, 5)).astype(dtype)
        if positive:
            x = np.abs(x) + dtype.type(0.25)
        else:
            x = np.where(np.abs(x) < 0.05, dtype.type(0.3), x)    # keep abs' away from its kink
        return [Sample((x,), name="2d"), Sample((x[:0],), name="size0"), Sample((x[:1, :1],), name="size1"),
                Sample((np.array(x.reshape(-1)[0]),), name="0d")]
    return samples


def _unary_op(name, cls_name, positive=False):
    np_fn = UNARY_KERNELS[name]

    def forward(ctx, x):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # log(0) = -inf quietly, as PyTorch
            y = np_fn(x)
        ctx.save_for_backward(x, y)
        return y

    cls = type(cls_name, (Function,), {"forward": staticmethod(forward), "__module__": __name__,
                                       "__qualname__": cls_name})
    method = name if name != "neg" else "__neg__"
    return register(name, lower=_lower_unary(name), backward=_unary_backward(name), kernels=(f"numpy {np_fn.__name__}",
                                                                                 "graph: unary" if name in EXACT_UNARY
                                                                                 else "graph: callback"),
                    dtypes=_F, call=lambda x: getattr(x, method)(), samples=_unary_samples(positive), reference=np_fn,
                    torch=lambda torch, x: getattr(torch, name)(x))(cls)


Neg = _unary_op("neg", "Neg")
Exp = _unary_op("exp", "Exp")
Log = _unary_op("log", "Log", positive=True)
Sin = _unary_op("sin", "Sin")
Cos = _unary_op("cos", "Cos")
Abs = _unary_op("abs", "Abs")


# ---------------------------------------------------------------- Python-only elementwise ops
@register("pow", kernels=("numpy power",), dtypes=_F, call=lambda x, p=2.0: x ** p,
          samples=lambda dt: [Sample((np.abs(_rng(3).standard_normal((3, 4))).astype(dt) + dt.type(0.5),),
                                     {"p": p}, name=f"p={p}") for p in (2.0, 0.5, 3.0)],
          reference=lambda x, p=2.0: np.power(x, x.dtype.type(p)), torch=lambda torch, x, p=2.0: torch.pow(x, p))
class Pow(Function):
    """x ** p for a constant exponent p."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        if x.dtype in FLOATS:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return np.power(x, x.dtype.type(p))
        # integers: in int64, then back (wrapping mod 2**bits like PyTorch's uint8 ** 300)
        return np.power(x, np.int64(p)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        p = ctx.p
        if p == 0.0:  # NOTE: x ** 0 is constant, so 0 everywhere, also at x = 0 (PyTorch)
            return np.zeros_like(dy), None
        if p == 2.0:
            return dy * (2 * x), None
        return dy * (p * np.power(x, x.dtype.type(p - 1))), None


@register("pow_tensor", kernels=("numpy power",), dtypes=_F, call=lambda a, b: a ** b,
          samples=lambda dt: [Sample((np.abs(_rng(4).standard_normal((3, 4))).astype(dt) + dt.type(0.5),
                                      _rng(5).standard_normal((3, 4)).astype(dt)))],
          reference=np.power, torch=lambda torch, a, b: torch.pow(a, b))
class PowTensor(Function):
    @staticmethod
    def forward(ctx, a, b):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = np.power(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, dy):
        a, b, y = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        da = dy * b * np.power(a, b - 1) if na else None
        if nb:
            with np.errstate(divide="ignore", invalid="ignore"):
                db = dy * y * np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
        else:
            db = None
        return da, db


def _clamp_samples(dt):
    x = _rng(6).standard_normal((4, 5)).astype(dt)
    x = np.where(np.abs(np.abs(x) - 0.5) < 0.05, dt.type(0.2), x)      # away from the kinks
    return [Sample((x,), {"min": -0.5, "max": 0.5}), Sample((x,), {"min": -0.5}), Sample((x,), {"max": 0.5})]


@register("clamp", kernels=("numpy clip",), dtypes=_F, call=lambda x, min=None, max=None: x.clamp(min, max),
          samples=_clamp_samples, reference=lambda x, min=None, max=None: np.clip(x, min, max),
          torch=lambda torch, x, min=None, max=None: torch.clamp(x, min, max))
class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        mask = np.ones(x.shape, dtype=bool)
        if ctx.lo is not None:
            mask &= x >= ctx.lo
        if ctx.hi is not None:
            mask &= x <= ctx.hi
        return dy * mask, None, None


@register("clone", kernels=("numpy copy",), dtypes=_F, call=lambda x: x.clone(),
          samples=lambda dt: [Sample((_rng(7).standard_normal((2, 3)).astype(dt),))],
          reference=lambda x: x.copy(), torch=lambda torch, x: x.clone())
class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, dy):
        return (dy,)


@register("cast", kernels=("numpy astype",), dtypes=_F,
          call=lambda x: x.to(np.float64 if x.dtype == np.float32 else np.float32),
          # grad=False: finite differences through a float32 result are noise (the rule is the identity)
          samples=lambda dt: [Sample((_rng(8).standard_normal((2, 3)).astype(dt),), compile=False, grad=False)],
          reference=lambda x: x.astype(np.float64 if x.dtype == np.float32 else np.float32))
class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src = x.dtype
        return cast_array(x, dtype)

    @staticmethod
    def backward(ctx, dy):
        return dy.astype(ctx.src), None
