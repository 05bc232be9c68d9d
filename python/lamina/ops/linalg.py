"""Matrix products: matmul (2-D and batched) and linear (GEMM with a fused bias + activation)."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import _C
from ..tensor import Function, float32, float64
from ._common import FLOATS, empty, saved_operands
from ._params import GemmAttrs
from .registry import BadSample, Sample, export, register

_F = (float32, float64)
GEMM_ACTS = ("identity", "relu", "sigmoid", "tanh")


def _x(dt, shape, seed=30):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


def _gemm(a, b, c, trans_a=False, trans_b=False, beta=0.0):
    _C.gemm(a, b, c, trans_a, trans_b, 1.0, beta)


def _gemm_node(L, ins, out, ta, tb, M, N, K, bias_axis="col", act="identity", src=""):
    L.emit("gemm", ins, [out], GemmAttrs(trans_a=ta, trans_b=tb, M=M, N=N, K=K, bias_axis=bias_axis, act=act), src=src)


# ---------------------------------------------------------------- MatMul2D
def _lower_matmul(L, fn):
    a, b = fn.inputs()
    if a.dtype not in FLOATS:
        return False
    M, K = a.shape
    _gemm_node(L, [a, b, None], fn.out, False, False, M, b.shape[1], K, src=fn.op)
    fn.saved = MatMulSaved(a=a, b=b)
    fn.lowered_by = "gemm"
    return True


# The one backward of MatMul2D (eager and compiled): NT and TN GEMMs, no transposed copies.
MatMulSaved = namedtuple("MatMulSaved", "a b")


def _matmul_rule(k, s, dy, out):
    a, b = s
    da = k.gemm(dy, b, False, True, out=out[0]) if out[0] else None       # dA = dY B^T
    db = k.gemm(a, dy, True, False, out=out[1]) if out[1] else None       # dB = A^T dY
    return da, db


def _matmul_samples(dt):
    return [Sample((_x(dt, (3, 4)), _x(dt, (4, 5), 31)), name="2d"),
            Sample((_x(dt, (2, 3, 4)), _x(dt, (4, 5), 31)), name="3d@2d"),
            Sample((_x(dt, (2, 3, 4)), _x(dt, (2, 4, 2), 31)), name="batched"),
            Sample((_x(dt, (2, 2, 3, 4)), _x(dt, (2, 1, 4, 5), 31)), name="broadcast-batch"),
            Sample((_x(dt, (3, 4)), _x(dt, (2, 4, 5), 31)), name="2d@batched"),
            Sample((_x(dt, (4,)), _x(dt, (4, 3), 31)), name="1d@2d"),
            Sample((_x(dt, (0, 4)), _x(dt, (4, 3), 31)), name="size0"),
            Sample((_x(dt, (1, 1)), _x(dt, (1, 1), 31)), name="size1")]


def _matmul_bad():
    return [BadSample((np.ones((2, 3), np.float32), np.ones((4, 2), np.float32)), error=ValueError, match="matmul"),
            BadSample((np.ones((2, 3), np.int64), np.ones((3, 2), np.int64)), error=TypeError, match="matmul"),
            BadSample((np.ones((2, 3), np.float32), np.ones((3, 2), np.float64)), error=TypeError, match="matmul")]


@register("matmul", lower=_lower_matmul, backward=_matmul_rule, kernels=("_C.gemm",),
          dtypes=_F, call=lambda a, b: a @ b, samples=_matmul_samples, bad_samples=_matmul_bad,
          reference=np.matmul, torch=lambda torch, a, b: a @ b)
class MatMul2D(Function):
    """(M,K) @ (K,N) on lamina's GEMM; backward uses NT and TN without transposing copies."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(*MatMulSaved(*saved_operands(ctx, a, b)))
        y = empty((a.shape[0], b.shape[1]), a.dtype)
        _gemm(a, b, y)
        return y


def _lower_matmul_batched(L, fn):
    a, b = fn.inputs()
    if a.dtype not in FLOATS:
        return False
    B, M, K = a.shape
    L.emit("gemm", [a, b, None], [fn.out], GemmAttrs(M=M, N=b.shape[2], K=K, batch=B), src=fn.op)
    fn.saved = MatMulSaved(a=a, b=b)
    fn.lowered_by = "gemm"
    return True


# The one backward of MatMulBatched (eager and compiled): per batch entry, NT and TN GEMMs. Batch
# dims that matmul broadcast were expanded before this op: Expand's backward sums them back.
def _matmul_batched_rule(k, s, dy, out):
    a, b = s
    da = k.gemm_batched(dy, b, False, True, out=out[0]) if out[0] else None      # dA = dY B^T
    db = k.gemm_batched(a, dy, True, False, out=out[1]) if out[1] else None      # dB = A^T dY
    return da, db


@register("matmul_batched", lower=_lower_matmul_batched, backward=_matmul_batched_rule, kernels=("_C.gemm_batched",),
          dtypes=_F)   # sampled through "matmul"
class MatMulBatched(Function):
    """(B,M,K) @ (B,K,N) with equal batch sizes."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(*MatMulSaved(*saved_operands(ctx, a, b)))
        y = empty((a.shape[0], a.shape[1], b.shape[2]), a.dtype)
        _C.gemm_batched(a, b, y, False, False, 1.0, 0.0)
        return y


@export
def matmul(a, b):
    """Matrix product with PyTorch's rules for 1-D, 2-D and batched operands."""
    if a.dtype not in FLOATS or b.dtype not in FLOATS:
        raise TypeError(f"matmul: expected float tensors, got {a.dtype} and {b.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: dtypes differ: {a.dtype} and {b.dtype}")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: both arguments need at least 1 dimension")
    squeeze_a = a.ndim == 1
    squeeze_b = b.ndim == 1
    if squeeze_a:
        a = a.reshape(1, a.shape[0])
    if squeeze_b:
        b = b.reshape(b.shape[0], 1)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                         f"({a.shape[-1]} != {b.shape[-2]})")
    if b.ndim == 2:
        lead = a.shape[:-1]
        out = MatMul2D.apply(a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a, b)
        if a.ndim != 2:
            out = out.reshape(lead + (b.shape[1],))
    else:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a3 = a.expand(batch + a.shape[-2:]) if a.shape[:-2] != batch else a
        b3 = b.expand(batch + b.shape[-2:]) if b.shape[:-2] != batch else b
        nb = int(np.prod(batch)) if batch else 1
        # a (B, M, K) operand goes in as it is: its gradient is the rule's own (no Reshape between)
        a3 = a3 if a3.ndim == 3 else a3.reshape(nb, *a.shape[-2:])
        b3 = b3 if b3.ndim == 3 else b3.reshape(nb, *b.shape[-2:])
        out = MatMulBatched.apply(a3, b3)
        out = out.reshape(batch + (a.shape[-2], b.shape[-1]))
    if squeeze_a:
        out = out.squeeze(-2)
    if squeeze_b:
        out = out.squeeze(-1)
    return out


# ---------------------------------------------------------------- Linear
def _lower_linear(L, fn):
    x, w = fn.args[0], fn.args[1]
    b = fn.args[2] if 2 in fn.tensor_pos else None
    act = fn.args[3]
    if x.dtype not in FLOATS or act not in GEMM_ACTS or len(x.shape) != 2:
        return False
    M, K = x.shape
    N = w.shape[0]
    if M == 1:
        # One row: y^T = W x^T (same bytes as y) reads W in place; x W^T with M = 1 packs all
        # of W^T first (MLP fc1 at batch 1: 178 -> 78 us).
        _gemm_node(L, [w, x, b], fn.out, False, False, N, 1, K, bias_axis="row", act=act, src=fn.op)
    else:
        _gemm_node(L, [x, w, b], fn.out, False, True, M, N, K, bias_axis="col", act=act, src=fn.op)
    fn.saved = LinearSaved(x=x, w=w, y=fn.out, act=act, has_bias=b is not None)
    fn.lowered_by = "gemm"
    return True


# The one backward of Linear (eager and compiled). y is the output act(z): the activation's
# derivative reads it (relu: y > 0 iff z > 0). has_bias: whether a bias was given.
LinearSaved = namedtuple("LinearSaved", "x w y act has_bias")


def _linear_rule(k, s, dy, out):
    x, w, y, act, has_bias = s
    if act != "identity":
        dy = k.act_bwd(act, y, dy)
    dx = k.gemm(dy, w, False, False, out=out[0]) if out[0] else None     # dX = dY W
    dw = k.gemm(dy, x, True, False, out=out[1]) if out[1] else None      # dW = dY^T X
    db = k.bias_grad_rows(dy, out=out[2]) if has_bias and out[2] else None
    return dx, dw, db, None


def _set_linear_act(fn, act):
    fn.args = list(fn.args)
    fn.args[3] = act


def _linear_samples(dt):
    return [Sample((_x(dt, (4, 3)), _x(dt, (5, 3), 32), _x(dt, (5,), 33)), name="bias"),
            Sample((_x(dt, (2, 4, 3)), _x(dt, (5, 3), 32)), name="3d-nobias"),
            Sample((_x(dt, (1, 3)), _x(dt, (5, 3), 32), _x(dt, (5,), 33)), name="one-row"),
            Sample((_x(dt, (0, 3)), _x(dt, (5, 3), 32), _x(dt, (5,), 33)), name="size0")]


def _linear_bad():
    return [BadSample((np.ones((2, 4), np.float32), np.ones((5, 3), np.float32)), error=ValueError,
                      match="in_features"),
            BadSample((np.ones((2, 3), np.float64), np.ones((5, 3), np.float32)), error=TypeError, match="dtype"),
            BadSample((np.ones((2, 3), np.float32), np.ones((5, 3), np.float32), np.ones((4,), np.float32)),
                      error=ValueError, match="bias")]


def _torch_linear(torch, x, w, b=None):
    return torch.nn.functional.linear(x, w, b)


@register("linear", lower=_lower_linear, backward=_linear_rule,
          kernels=("_C.gemm (bias + activation epilogue)", "_C.act_backward", "_C.bias_grad_rows"), dtypes=_F,
          call=lambda x, w, b=None: linear_checked(x, w, b), samples=_linear_samples, bad_samples=_linear_bad,
          reference=lambda x, w, b=None: x @ w.T + (0 if b is None else b), torch=_torch_linear,
          traits={"epilogue": (lambda fn: fn.args[3], _set_linear_act, "the GEMM epilogue")})
class Linear(Function):
    """y = act(x W^T + b), the activation fused into the GEMM epilogue (x is 2-D)."""

    @staticmethod
    def forward(ctx, x, w, b, act):
        y = empty((x.shape[0], w.shape[0]), x.dtype)
        if b is not None:
            _C.gemm(x, w, y, False, True, 1.0, 0.0, b, "col", act)
        else:
            _C.gemm(x, w, y, False, True, 1.0, 0.0, None, "col", act)
        # y only when the activation's derivative reads it: a saved y would make an in-place op
        # on the output (y.relu_(), ReLU(inplace=True)) an error where PyTorch allows it.
        ctx.save_for_backward(*LinearSaved(x=x, w=w, y=y if act != "identity" else None, act=act,
                                           has_bias=b is not None))
        return y


@export
def linear(x, weight, bias=None, act="identity"):
    if x.ndim == 2:
        return Linear.apply(x, weight, bias, act)
    lead = x.shape[:-1]
    y = Linear.apply(x.reshape(-1, x.shape[-1]), weight, bias, act)
    return y.reshape(lead + (weight.shape[0],))


def check_linear(input, weight, bias):
    if input.ndim == 0:
        raise ValueError("input: expected at least 1 dimension, got a scalar")
    if weight.ndim not in (1, 2):
        raise ValueError(f"weight: expected a 2-D (out_features, in_features) or 1-D (in_features,) "
                         f"weight, got shape {tuple(weight.shape)}")
    if weight.ndim == 1:
        if input.shape[-1] != weight.shape[0]:
            raise ValueError(f"weight: expected shape ({input.shape[-1]},) to match the input's last "
                             f"dimension, got {tuple(weight.shape)}")
        if bias is not None and bias.ndim != 0 and bias.shape != (1,):
            raise ValueError(f"bias: expected a 0-d bias for a 1-D weight, got shape {tuple(bias.shape)}")
        return
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(f"input: expected last dimension {weight.shape[1]} (in_features), "
                         f"got shape {tuple(input.shape)}")
    if input.dtype != weight.dtype:
        raise TypeError(f"input: expected dtype {weight.dtype} (the weight's), got {input.dtype}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias: expected shape ({weight.shape[0]},), got {tuple(bias.shape)}")


def linear_checked(input, weight, bias=None, act="identity"):
    """F.linear's body: check the arguments, then `linear` (act fused into the GEMM epilogue)."""
    check_linear(input, weight, bias)
    if weight.ndim == 1:  # PyTorch: y = input @ weight (+ bias), the last dim contracted away
        if act not in (None, "identity"):
            raise ValueError(f"act: a fused {act!r} needs a 2-D weight")
        y = matmul(input, weight)
        return y if bias is None else y + bias
    return linear(input, weight, bias, act)
