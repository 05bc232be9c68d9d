"""Helpers every op family shares: dtype checks, output allocation, the rule kernels.

A backward rule that both eager autodiff and the graph compiler run is written against a
*kernels* object `k`: `EAGER` computes now (NumPy and the `_C` kernels); the compiler's
recorder (graph/lower.py `RuleKernels`) appends one graph node per call instead. So an op's
compiled backward is the same code as its eager backward and the two cannot drift.

An op registered with `backward=rule` (ops/registry.py) has no other backward: its rule is
`rule(k, saved, dy, out) -> one gradient (or None) per forward argument`, where
  saved  what the forward kept, the op's own namedtuple: eager passes `ctx.saved_tensors`
         (the forward called `ctx.save_for_backward(*Saved(...))`), the compiler `fn.saved`
         (the same namedtuple over graph Values, made by the op's forward lowering);
  out    one entry per forward argument: None where no gradient is wanted, else where the
         gradient goes. A kernel call given `out=out[i]` writes input i's gradient there: eager
         allocates a fresh array (out[i] is just True), the recorder writes the gradient
         buffer itself (GEMM with beta = 1 for a second contribution, a temp + accumulate for
         kernels that overwrite). A kernel called with `out=None` makes a temporary.
The rule returns its results either way; the recorder routes a returned temporary into the
input's gradient (a copy or accumulate) and skips results a kernel already wrote.
"""
from __future__ import annotations

import numpy as np

from .. import _C
from ..tensor import float32, float64, reduce_to_shape

FLOATS = (float32, float64)


def empty(shape, dtype):
    return np.empty(shape, dtype=dtype)


def stand_in(a):
    """A saved operand whose values the rule will not read: same shape and dtype, no shared
    storage, so changing the operand in place after the op leaves the graph valid."""
    return np.broadcast_to(np.zeros((), a.dtype), a.shape) if isinstance(a, np.ndarray) else a


def saved_operands(ctx, a, b, a_read_by=(1,), b_read_by=(0,)):
    """(a, b) to save for a binary rule, each only where a wanted gradient reads it (as PyTorch
    saves): `a_read_by` lists the inputs whose gradient reads a's values (mul: b's gradient,
    dy * a), and likewise `b_read_by`; otherwise a stand-in keeps the shape for the rule. So
    `v * dt` followed by `v[0] = 0` backpropagates as in PyTorch instead of raising."""
    need = getattr(ctx, "needs_input_grad", None)
    if need is None:
        return a, b
    return (a if any(need[i] for i in a_read_by) else stand_in(a),
            b if any(need[i] for i in b_read_by) else stand_in(b))


def float_check(x, name, op):
    if x.dtype not in FLOATS:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {x.dtype}")


def is_float(*vs):
    """True when every value (array or graph Value) has a float32/float64 dtype."""
    return all(v.dtype in FLOATS for v in vs)


def _c(a, dtype=None):
    return np.ascontiguousarray(a, dtype=dtype)


class EagerKernels:
    """The rule kernels on arrays (what eager backward runs). `out` arguments only say whether
    a result is wanted (multi-output kernels); every result is a fresh array."""

    mul = staticmethod(np.multiply)
    div = staticmethod(np.true_divide)

    @staticmethod
    def neg(a, out=None):
        return np.negative(a)

    @staticmethod
    def unary(kind, x):
        return UNARY_KERNELS[kind](x)

    @staticmethod
    def reshape(a, shape, out=None):
        return a.reshape(shape)

    @staticmethod
    def reduce_to_shape(g, shape, times=None, alpha=1.0, out=None):
        """alpha * g (* times) summed back to `shape` by the engine's one reduce_to_shape (g
        itself, no copy, when nothing is to be summed, scaled or multiplied)."""
        if times is not None:
            g = np.multiply(g, times)
        if alpha == -1.0:
            g = np.negative(g)
        elif alpha != 1.0:
            g = np.multiply(g, g.dtype.type(alpha))
        return reduce_to_shape(g, shape)

    @staticmethod
    def gemm(a, b, trans_a, trans_b, out=None):
        """op(a) @ op(b), op transposing when asked (no transposed copy is made)."""
        y = np.empty((a.shape[1] if trans_a else a.shape[0], b.shape[0] if trans_b else b.shape[1]), a.dtype)
        _C.gemm(a, b, y, trans_a, trans_b, 1.0, 0.0)
        return y

    @staticmethod
    def gemm_batched(a, b, trans_a, trans_b, out=None):
        """op(a[i]) @ op(b[i]) for each i of a (B, ., .) batch (no transposed copy is made)."""
        y = np.empty((a.shape[0], a.shape[2] if trans_a else a.shape[1], b.shape[1] if trans_b else b.shape[2]),
                     a.dtype)
        _C.gemm_batched(a, b, y, trans_a, trans_b, 1.0, 0.0)
        return y

    @staticmethod
    def act_bwd(kind, y, dy):
        """dz from dy through activation `kind`, read from its output y (relu: y > 0 iff z > 0)."""
        dz = np.empty(dy.shape, dy.dtype)
        _C.act_backward(kind, y, y, dy, dz)
        return dz

    @staticmethod
    def activation_bwd(kind, src, dy, negative_slope, out=None):
        """dx of activation `kind` from what its kernel reads, `src` (y for sigmoid/tanh, else x)."""
        dx = np.empty(dy.shape, dy.dtype)
        _C.act_backward(kind, src, src, dy, dx, negative_slope)
        return dx

    @staticmethod
    def bias_grad_rows(dy, out=None):
        """db (F,) = column sums of dy (N, F)."""
        db = np.empty(dy.shape[1:], dy.dtype)
        _C.bias_grad_rows(dy, db)
        return db

    @staticmethod
    def conv2d_bwd(x, w, dy, conv, dx=None, dw=None, db=None):
        """Gradients of conv2d (ConvParams `conv`; 1-D convs are H = KH = 1 views) for the
        wanted ones of (x, w, bias); None where not wanted."""
        p = conv
        xs, ws, ys = (p.N, p.C, p.H, p.W), (p.K, p.C // p.groups, p.KH, p.KW), (p.N, p.K, p.OH, p.OW)
        # dx/dw/db arrive as the wanted flags (needs_input_grad: False, not None, when not wanted)
        dx = np.empty(x.shape, x.dtype) if dx else None
        dw = np.empty(w.shape, w.dtype) if dw else None
        db = np.empty((p.K,), w.dtype) if db else None
        if dx is not None or dw is not None or db is not None:
            _C.conv2d_backward(x.reshape(xs), w.reshape(ws), _c(dy, x.dtype).reshape(ys),
                               None if dx is None else dx.reshape(xs), None if dw is None else dw.reshape(ws), db,
                               *p.conf())
        return dx, dw, db

    @staticmethod
    def batch_norm_bwd(x, dy, y, weight, mean, invstd, bn, dx=None, dw=None, db=None):
        """Gradients of batch norm (BatchNormAttrs `bn`; y given: the fused relu masks dy by
        y > 0) for the wanted ones of (x, weight, bias); None where not wanted."""
        dx = np.empty_like(x) if dx else None
        dw = np.empty_like(mean) if dw else None
        db = np.empty_like(mean) if db else None
        _C.batch_norm_backward(x, _c(dy), y, weight, mean, invstd, bn.training, dx, dw, db)
        return dx, dw, db

    @staticmethod
    def relu_max_pool_bwd(dy, code, conv):
        """The conv's dy (N, K, OH, OW) of a fused conv + relu + 2x2 max pool block, from the
        pooled dy and the block's one-byte window code."""
        dz = np.empty((conv.N, conv.K, conv.OH, conv.OW), dy.dtype)
        _C.relu_max_pool2d_backward(_c(dy), code, dz)
        return dz

    @staticmethod
    def max_pool_bwd(dy, idx, pool, out=None):
        """dx (N, C, H, W) of PoolParams `pool`: dy routed to each window's argmax `idx`."""
        p = pool
        dx = np.empty((p.N, p.C, p.H, p.W), dy.dtype)
        _C.max_pool2d_backward(_c(dy), idx, dx, (p.KH, p.KW), (p.stride_h, p.stride_w), (p.pad_h, p.pad_w),
                               (p.dil_h, p.dil_w), p.ceil_mode)
        return dx

    @staticmethod
    def avg_pool_bwd(dy, pool, count_include_pad, divisor_override, out=None):
        p = pool
        dx = np.empty((p.N, p.C, p.H, p.W), dy.dtype)
        _C.avg_pool2d_backward(_c(dy), dx, (p.KH, p.KW), (p.stride_h, p.stride_w), (p.pad_h, p.pad_w),
                               p.ceil_mode, count_include_pad, divisor_override)
        return dx

    @staticmethod
    def adaptive_avg_pool_bwd(dy, x_shape, out=None):
        dx = np.empty(x_shape, dy.dtype)
        _C.adaptive_avg_pool2d_backward(_c(dy), dx)
        return dx

    @staticmethod
    def ce_bwd(probs, target, dy, scale, ignore_index, out=None):
        """d logits = (probs - onehot(target)) * dy * scale (ignored rows: 0)."""
        dx = np.empty_like(probs)
        _C.cross_entropy_backward(probs, target, dx, float(dy) * float(scale), ignore_index)
        return dx

    @staticmethod
    def loss_bwd(kind, x, t, dy, scale, out=None):
        """dx of the pointwise loss `kind` (mse: d/dx (x - t)^2 = 2 (x - t); bce with logits)."""
        dx = np.empty_like(x)
        if kind == "mse":
            _C.mse_backward(x, t, 2.0 * float(dy) * scale, dx)
        else:
            _C.bce_with_logits_backward(x, t, float(dy) * scale, dx)
        return dx

    @staticmethod
    def bce_target_bwd(x, dy, scale, out=None):
        """dt of BCE with logits: -x * dy * scale (eager only: the compiler leaves this case to
        a callback)."""
        return -x * (float(dy) * scale)


def eager_backward(rule):
    """The eager `Function.backward` of an op whose backward is `rule` (see the module docs)."""
    def backward(ctx, dy):
        return rule(EAGER, ctx.saved_tensors, dy, ctx.needs_input_grad)
    backward.rule = rule
    return staticmethod(backward)


# The one definition of each unary kernel: eager forward (ops/arith.py), the eager backward rules
# and the graph executor all call these. NumPy's exp/log/sin/cos are its SIMD loops (several
# times faster than the C library's scalar ones), and other implementations differ by an ulp, so
# the compiler never lowers them to a C++ node: they run this code as Python callbacks.
UNARY_KERNELS = {"neg": np.negative, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos,
                 "abs": np.abs, "sign": np.sign}
# Kinds every implementation computes exactly (no rounding), so the C++ `unary` node may run them.
EXACT_UNARY = ("neg", "abs", "sign")

EAGER = EagerKernels()
