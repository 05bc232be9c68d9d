"""Elementwise arithmetic: add, sub, mul, div, neg, pow, exp, log, abs, sin, cos, clamp, clone, cast.

Each op: its Function (forward + eager backward), its lowering to graph nodes, its samples.
Same-shape and bias-like broadcasts lower to native nodes; the unary ops and mul/div share one
backward rule between eager and compiled code (`_rule_*` over a kernels object, see _common.py).
Broadcast gradients are reduced to input shapes by the engine (tensor.reduce_to_shape), never here.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Function, float32, float64
from .._dims import bcast_split
from ._common import EAGER, EXACT_UNARY, FLOATS, UNARY_KERNELS, is_float
from ._params import BroadcastAttrs, ElementwiseAttrs, ReduceBroadcastAttrs, ScaleAttrs, UnaryAttrs
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
        fn.bcast = (full, split, kind)
        L.emit("broadcast", [fn.args[full], fn.args[1 - full]], [fn.out], BroadcastAttrs(*split, kind=kind),
               src=fn.op)
        fn.lowered_by = "broadcast"
        return True
    return lower


def _lower_backward_broadcast(L, fn, dy):
    """x (op) s with s repeated: dx = dy (add, x - s), -dy (s - x) or dy * s (mul);
    ds = the sum of dy (times x for mul) over the repeated dims, negated for x - s."""
    full, split, kind = fn.bcast
    x, sm = fn.args[full], fn.args[1 - full]
    if L.wants(fn, full):
        if kind in ("add", "sub"):
            L.contribute_view(x, dy, fn.op)      # dy itself (a copy if x already has a gradient)
        elif kind == "div":
            L.contribute(x, fn.op, lambda out: L.emit("broadcast", [dy, sm], [out], BroadcastAttrs(*split, kind="div"),
                                                      src=fn.op))
        elif kind == "rsub":
            L.contribute(x, fn.op, lambda out: L.emit("scale", [dy], [out], ScaleAttrs(n=dy.size, alpha=-1.0),
                                                      src=fn.op))
        else:
            L.contribute(x, fn.op, lambda out: L.emit("broadcast", [dy, sm], [out], BroadcastAttrs(*split, kind="mul"),
                                                      src=fn.op))
    if L.wants(fn, 1 - full):            # (never for x / s: the forward left that to eager)
        alpha = -1.0 if kind == "sub" else 1.0
        L.contribute(sm, fn.op, lambda out: L.emit(
            "reduce_broadcast", [dy, x if kind == "mul" else None], [out], ReduceBroadcastAttrs(*split, alpha=alpha),
            src=fn.op))


def _lower_backward_add(L, fn, dy):
    if getattr(fn, "bcast", None):
        return _lower_backward_broadcast(L, fn, dy)
    aliased = False
    for p in (0, 1):
        if L.wants(fn, p):
            v = fn.args[p]
            if not aliased and v.id not in L.grad_of and v.id not in L.param_grads:
                # dy itself becomes this input's gradient (no copy); only one input may alias it.
                L.contribute_view(v, dy, fn.op)
                aliased = True
            else:
                L.contribute(v, fn.op, lambda out: L.copy(dy, out, fn.op))


def _lower_backward_sub(L, fn, dy):
    if getattr(fn, "bcast", None):
        return _lower_backward_broadcast(L, fn, dy)
    if L.wants(fn, 0):
        L.contribute(fn.args[0], fn.op, lambda out: L.copy(dy, out, fn.op))
    if L.wants(fn, 1):
        L.contribute(fn.args[1], fn.op, lambda out: L.emit("scale", [dy], [out], ScaleAttrs(n=dy.size, alpha=-1.0),
                                                           src=fn.op))


def _binary_kwargs(torch_name):
    return dict(kernels=("numpy ufunc", "graph: add/sub/mul/div, broadcast, reduce_broadcast"), dtypes=_F,
                torch=lambda torch, a, b: getattr(torch, torch_name)(a, b))


@register("add", lower=_lower_binary("add"), lower_backward=_lower_backward_add,
          call=lambda a, b: a + b, samples=_binary_samples, bad_samples=_binary_bad,
          reference=np.add, **_binary_kwargs("add"))
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return np.add(a, b)

    @staticmethod
    def backward(ctx, dy):
        return dy, dy


@register("sub", lower=_lower_binary("sub"), lower_backward=_lower_backward_sub,
          call=lambda a, b: a - b, samples=_binary_samples, bad_samples=_binary_bad,
          reference=np.subtract, **_binary_kwargs("sub"))
class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx, dy):
        return dy, -dy


# ---- mul and div: one backward rule for eager (k = EAGER) and compiled (k = the recorder)
def _rule_mul(k, a, b, dy, want_a, want_b):
    return (k.mul(dy, b) if want_a else None), (k.mul(dy, a) if want_b else None)


def _rule_div(k, a, b, dy, want_a, want_b):
    da = k.div(dy, b) if want_a else None
    db = k.div(k.mul(k.neg(dy), a), k.mul(b, b)) if want_b else None    # ((-dy) * a) / (b * b)
    return da, db


def _lower_backward_rule(rule):
    def lower_backward(L, fn, dy):
        if getattr(fn, "bcast", None):
            return _lower_backward_broadcast(L, fn, dy)
        a, b = fn.args[0], fn.args[1]
        want = (L.wants(fn, 0), L.wants(fn, 1))
        L.run_rule(fn, (a, b), want, lambda k: rule(k, a, b, dy, *want))
    return lower_backward


@register("mul", lower=_lower_binary("mul"), lower_backward=_lower_backward_rule(_rule_mul),
          call=lambda a, b: a * b, samples=_binary_samples, bad_samples=_binary_bad,
          reference=np.multiply, **_binary_kwargs("mul"))
class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        return _rule_mul(EAGER, a, b, dy, *ctx.needs_input_grad)


@register("div", lower=_lower_binary("div"), lower_backward=_lower_backward_rule(_rule_div),
          call=lambda a, b: a / b, samples=lambda dt: _binary_samples(dt, positive_b=True),
          bad_samples=_binary_bad, reference=np.true_divide, **_binary_kwargs("div"))
class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.true_divide(a, b)

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        return _rule_div(EAGER, a, b, dy, *ctx.needs_input_grad)


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
        y = np.power(x, x.dtype.type(p)) if x.dtype in FLOATS else np.power(x, p)
        return y

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
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, dy):
        return dy.astype(ctx.src), None
