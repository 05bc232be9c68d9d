"""Lowering: recorded Function calls -> kernel nodes, forward then backward then update.

Each supported Function class has a forward emitter and a backward emitter side by side (the
same pairing as ops.py, at kernel level). The backward graph is built here the way
tensor.run_backward builds it at run time: one reverse sweep over the recorded (topological)
order, starting from a `fill 1` seed on the loss, visiting only calls whose output received a
gradient; a second contribution to a gradient accumulates in place (GEMM with beta = 1, or an
`accumulate` node), and broadcast gradients are reduced back to the input's shape.

A Function without an emitter is not an error: it becomes a `pycall` node that runs the class's
own forward (and, in the backward sweep, its own backward rule) on arena views, so every op is
capturable; only those nodes need the GIL in the C++ executor.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, reduce_to_shape
from .ir import Node

_GEMM_ACTS = ("identity", "relu", "sigmoid", "tanh")
_ACT_READS_Y = ("sigmoid", "tanh")


class Lowering:
    def __init__(self, graph, fnodes, requires_grad_params):
        self.g = graph
        self.fnodes = fnodes
        self.grad_of = {}            # forward Value id -> gradient Value
        self.grad_written = set()    # gradient Value ids that hold a first contribution
        self.param_grads = {}        # param Value id -> persistent grad Value
        self.rg = set()              # Value ids that require grad
        for v in requires_grad_params:
            self.rg.add(v.id)

    # ---- forward ----------------------------------------------------------------------
    def forward(self):
        for fn in self.fnodes:
            ins = fn.inputs()
            if any(v.id in self.rg for v in ins):
                self.rg.add(fn.out.id)
            emit = _FORWARD.get(fn.cls.__name__)
            if emit is None or not emit(self, fn):
                self._pycall_forward(fn)

    def _pycall_forward(self, fn):
        fn.ctx_slot = None
        self.g.add(Node("pycall", fn.inputs(), [fn.out],
                        {"fn": fn.op, "_fnode": fn, "_kind": "forward"}, src=fn.op))

    # ---- backward ---------------------------------------------------------------------
    def backward(self, loss, param_grad_buffers):
        """param_grad_buffers: param Value id -> (grad Value) persistent buffers."""
        self.param_grads = param_grad_buffers
        seed = self.g.value((), loss.dtype, "temp", "dloss")
        self.g.add(Node("fill", [], [seed], {"value": 1.0}, src="seed"))
        self.grad_of[loss.id] = seed
        self.grad_written.add(seed.id)
        for fn in reversed(self.fnodes):
            dy = self.grad_of.get(fn.out.id)
            if dy is None:
                continue
            wants = [self._wants(fn, i) for i in fn.tensor_pos]
            if not any(wants):
                continue
            emit = _BACKWARD.get(fn.cls.__name__)
            if getattr(fn, "lowered_by", None) is None or emit is None:
                self._pycall_backward(fn, dy)
            else:
                emit(self, fn, dy)

    def _wants(self, fn, pos):
        v = fn.args[pos]
        need = fn.needs[pos] if pos < len(fn.needs) else False
        return bool(need) and v.id in self.rg

    def wants(self, fn, pos):
        return fn.tensor_pos.count(pos) > 0 and self._wants(fn, pos)

    def grad_target(self, v):
        """(gradient Value for v, accumulate?) -- the first contribution overwrites."""
        g = self.grad_of.get(v.id)
        if g is None:
            if v.id in self.param_grads:
                g = self.param_grads[v.id]
            else:
                g = self.g.value(v.shape, v.dtype, "temp", "grad")
            self.grad_of[v.id] = g
        acc = g.id in self.grad_written
        self.grad_written.add(g.id)
        return g, acc

    def contribute(self, v, src, make):
        """make(out Value) emits a node writing the gradient into `out` (overwrite)."""
        g, acc = self.grad_target(v)
        if not acc:
            make(g)
            return
        tmp = self.g.value(v.shape, v.dtype, "temp", "grad_part")
        make(tmp)
        self.g.add(Node("accumulate", [tmp], [g], inplace=[g], src=src))

    def contribute_view(self, v, dy, src):
        """Gradient that is dy reshaped (Reshape's rule): a view when possible, else a copy."""
        g = self.grad_of.get(v.id)
        if g is None and v.id not in self.param_grads:
            view = self.g.view(dy, v.shape, "grad")
            self.grad_of[v.id] = view
            self.grad_written.add(view.id)
            return
        flat = self.g.view(dy, v.shape)
        self.contribute(v, src, lambda out: self.g.add(Node("copy", [flat], [out], src=src)))

    def _pycall_backward(self, fn, dy):
        ins = fn.inputs()
        outs, wanted = [], []
        for p in fn.tensor_pos:
            if self._wants(fn, p):
                wanted.append(p)
        parts = []
        for p in wanted:
            v = fn.args[p]
            g, acc = self.grad_target(v)
            if acc:
                tmp = self.g.value(v.shape, v.dtype, "temp", "grad_part")
                parts.append((g, tmp))
                outs.append(tmp)
            else:
                outs.append(g)
        # Reads the forward inputs and output too: the rule's ctx may have saved them.
        self.g.add(Node("pycall", [dy] + ins + [fn.out], outs,
                        {"fn": fn.op + ".backward", "_fnode": fn, "_kind": "backward",
                         "_wanted": tuple(wanted)}, src=fn.op))
        for g, tmp in parts:
            self.g.add(Node("accumulate", [tmp], [g], inplace=[g], src=fn.op))


# ---------------------------------------------------------------------------- emitters
def _fwd_reshape(L, fn):
    (x,) = fn.inputs()
    fn.out.base = x
    fn.out.home = x.home if x.home != "temp" else "temp"
    fn.lowered_by = "view"
    return True


def _bwd_reshape(L, fn, dy):
    x = fn.args[0]
    L.contribute_view(x, dy, fn.op)


def _fwd_linear(L, fn):
    x, w = fn.args[0], fn.args[1]
    b = fn.args[2] if 2 in fn.tensor_pos else None
    act = fn.args[3]
    if x.dtype not in (np.float32, np.float64) or act not in _GEMM_ACTS or len(x.shape) != 2:
        return False
    M, K = x.shape
    N = w.shape[0]
    if M == 1:
        # One row: y^T = W x^T (same bytes as y) reads W in place; x W^T with M = 1 packs all
        # of W^T first (MLP fc1 at batch 1: 178 -> 78 us).
        L.g.add(Node("gemm", [w, x, b], [fn.out],
                     {"ta": False, "tb": False, "M": N, "N": 1, "K": K, "alpha": 1.0, "beta": 0.0,
                      "bias_axis": "row", "act": act}, src=fn.op))
    else:
        L.g.add(Node("gemm", [x, w, b], [fn.out],
                     {"ta": False, "tb": True, "M": M, "N": N, "K": K, "alpha": 1.0, "beta": 0.0,
                      "bias_axis": "col", "act": act}, src=fn.op))
    fn.lowered_by = "gemm"
    return True


def _bwd_linear(L, fn, dy):
    x, w = fn.args[0], fn.args[1]
    act = fn.args[3]
    M, K = x.shape
    N = w.shape[0]
    src = fn.op
    if act != "identity":
        dz = L.g.value(dy.shape, dy.dtype, "temp", "dz")
        # sigmoid/tanh/relu' all read the output y (relu: y > 0 iff z > 0).
        L.g.add(Node("act_bwd", [fn.out, dy], [dz], {"kind": act, "slope": 0.01, "n": dy.size}, src=src))
        dy = dz
    if L.wants(fn, 0):
        g, acc = L.grad_target(x)
        L.g.add(Node("gemm", [dy, w, None], [g],            # dX = dY W
                     {"ta": False, "tb": False, "M": M, "N": K, "K": N, "alpha": 1.0,
                      "beta": 1.0 if acc else 0.0, "bias_axis": "col", "act": "identity"},
                     inplace=[g] if acc else (), src=src))
    if L.wants(fn, 1):
        g, acc = L.grad_target(w)
        L.g.add(Node("gemm", [dy, x, None], [g],            # dW = dY^T X
                     {"ta": True, "tb": False, "M": N, "N": K, "K": M, "alpha": 1.0,
                      "beta": 1.0 if acc else 0.0, "bias_axis": "col", "act": "identity"},
                     inplace=[g] if acc else (), src=src))
    if 2 in fn.tensor_pos and L.wants(fn, 2):
        b = fn.args[2]
        L.contribute(b, src, lambda out: L.g.add(
            Node("bias_grad_rows", [dy], [out], {"N": M, "F": N}, src=src)))


def _fwd_matmul(L, fn):
    a, b = fn.inputs()
    if a.dtype not in (np.float32, np.float64):
        return False
    M, K = a.shape
    N = b.shape[1]
    L.g.add(Node("gemm", [a, b, None], [fn.out],
                 {"ta": False, "tb": False, "M": M, "N": N, "K": K, "alpha": 1.0, "beta": 0.0,
                  "bias_axis": "col", "act": "identity"}, src=fn.op))
    fn.lowered_by = "gemm"
    return True


def _bwd_matmul(L, fn, dy):
    a, b = fn.args[0], fn.args[1]
    M, K = a.shape
    N = b.shape[1]
    if L.wants(fn, 0):
        g, acc = L.grad_target(a)
        L.g.add(Node("gemm", [dy, b, None], [g],            # dA = dY B^T
                     {"ta": False, "tb": True, "M": M, "N": K, "K": N, "alpha": 1.0,
                      "beta": 1.0 if acc else 0.0, "bias_axis": "col", "act": "identity"},
                     inplace=[g] if acc else (), src=fn.op))
    if L.wants(fn, 1):
        g, acc = L.grad_target(b)
        L.g.add(Node("gemm", [a, dy, None], [g],            # dB = A^T dY
                     {"ta": True, "tb": False, "M": K, "N": N, "K": M, "alpha": 1.0,
                      "beta": 1.0 if acc else 0.0, "bias_axis": "col", "act": "identity"},
                     inplace=[g] if acc else (), src=fn.op))


def _fwd_activation(L, fn):
    (x,) = fn.inputs()
    kind, slope = fn.args[1], fn.args[2]
    if x.dtype not in (np.float32, np.float64):
        return False
    L.g.add(Node("act_fwd", [x], [fn.out], {"kind": kind, "slope": float(slope), "n": x.size}, src=fn.op))
    fn.lowered_by = "act"
    return True


def _bwd_activation(L, fn, dy):
    x = fn.args[0]
    kind, slope = fn.args[1], fn.args[2]
    saved = fn.out if kind in _ACT_READS_Y else x
    L.contribute(x, fn.op, lambda out: L.g.add(
        Node("act_bwd", [saved, dy], [out], {"kind": kind, "slope": float(slope), "n": x.size}, src=fn.op)))


def _fwd_cross_entropy(L, fn):
    logits, target = fn.args[0], fn.args[1]
    if target.dtype != np.int64 or len(logits.shape) != 2:
        return False
    N, C = logits.shape
    probs = L.g.value(logits.shape, logits.dtype, "temp", "probs")
    scale = L.g.value((), np.float64, "temp", "ce_scale")
    fn.saved = (probs, scale)
    L.g.add(Node("ce_fwd", [logits, target], [fn.out, probs, scale],
                 {"N": N, "C": C, "ignore_index": int(fn.args[2]), "mean": bool(fn.args[3])}, src=fn.op))
    fn.lowered_by = "ce"
    return True


def _bwd_cross_entropy(L, fn, dy):
    logits, target = fn.args[0], fn.args[1]
    probs, scale = fn.saved
    N, C = logits.shape
    L.contribute(logits, fn.op, lambda out: L.g.add(
        Node("ce_bwd", [probs, target, dy, scale], [out],
             {"N": N, "C": C, "ignore_index": int(fn.args[2])}, src=fn.op)))


def _bcast_split(out_shape, small_shape):
    """(outer, mid, inner) when `small` broadcasts to `out` as one contiguous block of its
    dims (a bias (F) on (N, F), (C, 1, 1) on (N, C, H, W), a scalar), else None."""
    n = len(out_shape)
    if len(small_shape) > n:
        return None
    s = (1,) * (n - len(small_shape)) + tuple(small_shape)
    big = [d for d in range(n) if s[d] != 1]
    if any(s[d] != out_shape[d] for d in big) or (big and big[-1] - big[0] + 1 != len(big)):
        return None
    d0, d1 = (big[0], big[-1] + 1) if big else (n, n)
    prod = lambda dims: int(np.prod(dims, dtype=np.int64))   # noqa: E731
    return prod(out_shape[:d0]), prod(out_shape[d0:d1]), prod(out_shape[d1:])


# kinds of the `broadcast` node, with x the full operand and s the small one
_BCAST_KIND = {("add", 0): 0, ("add", 1): 0, ("sub", 0): 1, ("sub", 1): 2, ("mul", 0): 3, ("mul", 1): 3,
               ("div", 0): 4}


def _same_shape_binary(op):
    def fwd(L, fn):
        if len(fn.tensor_pos) != 2:
            return False
        a, b = fn.inputs()
        if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64):
            return False
        if a.shape == b.shape:
            L.g.add(Node(op, [a, b], [fn.out], {"n": a.size}, src=fn.op))
            fn.lowered_by = op
            return True
        # One operand has the output's shape, the other repeats over it (bias-like).
        full = 0 if a.shape == fn.out.shape else 1 if b.shape == fn.out.shape else None
        split = None if full is None else _bcast_split(fn.out.shape, fn.args[1 - full].shape)
        if split is None or (op, full) not in _BCAST_KIND:
            return False
        if op == "div" and L._wants(fn, 1):
            return False        # x / s with a gradient for s: no native rule (the eager one runs)
        kind = _BCAST_KIND[(op, full)]
        fn.bcast = (full, split, kind)
        L.g.add(Node("broadcast", [fn.args[full], fn.args[1 - full]], [fn.out],
                     {"split": split, "kind": kind}, src=fn.op))
        fn.lowered_by = "broadcast"
        return True
    return fwd


def _bwd_broadcast(L, fn, dy):
    """x (op) s with s repeated: dx = dy (add, x - s), -dy (s - x) or dy * s (mul);
    ds = the sum of dy (times x for mul) over the repeated dims, negated for x - s."""
    full, split, kind = fn.bcast
    x, sm = fn.args[full], fn.args[1 - full]
    if L.wants(fn, full):
        if kind in (0, 1):
            L.contribute_view(x, dy, fn.op)      # dy itself (a copy if x already has a gradient)
        elif kind == 4:
            L.contribute(x, fn.op, lambda out: L.g.add(
                Node("broadcast", [dy, sm], [out], {"split": split, "kind": 4}, src=fn.op)))
        elif kind == 2:
            L.contribute(x, fn.op, lambda out: L.g.add(
                Node("scale", [dy], [out], {"alpha": -1.0, "n": dy.size}, src=fn.op)))
        else:
            L.contribute(x, fn.op, lambda out: L.g.add(
                Node("broadcast", [dy, sm], [out], {"split": split, "kind": 3}, src=fn.op)))
    if L.wants(fn, 1 - full):            # (never for x / s: the forward left that to eager)
        alpha = -1.0 if kind == 1 else 1.0
        L.contribute(sm, fn.op, lambda out: L.g.add(
            Node("reduce_broadcast", [dy, x if kind == 3 else None], [out], {"split": split, "alpha": alpha},
                 src=fn.op)))


def _bwd_add(L, fn, dy):
    if getattr(fn, "bcast", None):
        return _bwd_broadcast(L, fn, dy)
    aliased = False
    for p in (0, 1):
        if L.wants(fn, p):
            v = fn.args[p]
            if not aliased and v.id not in L.grad_of and v.id not in L.param_grads:
                # dy itself becomes this input's gradient (no copy); only one input may alias it.
                L.contribute_view(v, dy, fn.op)
                aliased = True
            else:
                L.contribute(v, fn.op, lambda out: L.g.add(Node("copy", [dy], [out], src=fn.op)))


def _bwd_sub(L, fn, dy):
    if getattr(fn, "bcast", None):
        return _bwd_broadcast(L, fn, dy)
    if L.wants(fn, 0):
        L.contribute(fn.args[0], fn.op, lambda out: L.g.add(Node("copy", [dy], [out], src=fn.op)))
    if L.wants(fn, 1):
        L.contribute(fn.args[1], fn.op, lambda out: L.g.add(
            Node("scale", [dy], [out], {"alpha": -1.0, "n": dy.size}, src=fn.op)))


def _bwd_mul(L, fn, dy):
    if getattr(fn, "bcast", None):
        return _bwd_broadcast(L, fn, dy)
    a, b = fn.args[0], fn.args[1]
    if L.wants(fn, 0):
        L.contribute(a, fn.op, lambda out: L.g.add(Node("mul", [dy, b], [out], {"n": dy.size}, src=fn.op)))
    if L.wants(fn, 1):
        L.contribute(b, fn.op, lambda out: L.g.add(Node("mul", [dy, a], [out], {"n": dy.size}, src=fn.op)))


# ---- convolution and pooling: conv ints are (N, C, H, W, K, KH, KW, sh, sw, ph, pw, dh, dw,
# groups); Conv1dFn is the 2-D op with H = KH = 1 on the same bytes.
def _float(*vs):
    return all(v.dtype in (np.float32, np.float64) for v in vs)


def _fwd_conv(L, fn):
    x, w = fn.args[0], fn.args[1]
    b = fn.args[2] if 2 in fn.tensor_pos else None
    stride, padding, dilation, groups = fn.args[3:7]
    if fn.op == "Conv1dFn":
        if len(x.shape) != 3:
            return False
        (N, C, Wd), (K, _, KW) = x.shape, w.shape
        conv = (N, C, 1, Wd, K, 1, KW, 1, stride, 0, padding, 1, dilation, groups)
    else:
        if len(x.shape) != 4:
            return False
        (N, C, H, Wd), (K, _, KH, KW) = x.shape, w.shape
        conv = (N, C, H, Wd, K, KH, KW, *stride, *padding, *dilation, groups)
    if not _float(x, w) or w.dtype != x.dtype:
        return False
    act = getattr(fn, "act", "identity")
    fn.conv_attrs = conv = tuple(int(c) for c in conv)
    L.g.add(Node("conv2d_fwd", [x, w, b], [fn.out], {"conv": conv, "act": act,
                                                     "slope": 0.01}, src=fn.op))
    fn.lowered_by = "conv"
    return True


def _bwd_conv(L, fn, dy):
    x, w = fn.args[0], fn.args[1]
    act = getattr(fn, "act", "identity")
    if act != "identity":
        dz = L.g.value(dy.shape, dy.dtype, "temp", "dz")
        # The conv output holds act(z): relu/sigmoid/tanh' read it (relu: y > 0 iff z > 0).
        L.g.add(Node("act_bwd", [fn.out, dy], [dz], {"kind": act, "slope": 0.01, "n": dy.size}, src=fn.op))
        dy = dz
    conv = fn.conv_attrs
    wanted = (L.wants(fn, 0), L.wants(fn, 1), 2 in fn.tensor_pos and L.wants(fn, 2))
    outs, parts = [], []
    for p, want in enumerate(wanted):
        if not want:
            continue
        v = fn.args[p]
        g, acc = L.grad_target(v)
        if acc:      # the kernel overwrites: a second contribution goes through a temp
            tmp = L.g.value(v.shape, v.dtype, "temp", "grad_part")
            parts.append((g, tmp))
            g = tmp
        outs.append(g)
    L.g.add(Node("conv2d_bwd", [x, w, dy], outs, {"conv": conv, "has": wanted}, src=fn.op))
    for g, tmp in parts:
        L.g.add(Node("accumulate", [tmp], [g], inplace=[g], src=fn.op))


def _pool_ints(x, kernel, stride, padding, dilation, ceil_mode, count_include_pad=False, divisor=0):
    N, C, H, W = x.shape
    return tuple(int(v) for v in (N, C, H, W, *kernel, *stride, *padding, *dilation, ceil_mode,
                                  count_include_pad, divisor))


def _fwd_max_pool(L, fn):
    x = fn.args[0]
    kernel, stride, padding, dilation, ceil_mode, holder = fn.args[1:7]
    if holder is not None or len(x.shape) != 4 or not _float(x):
        return False      # return_indices hands the indices to Python: keep the eager call
    idx = L.g.value(fn.out.shape, np.int64, "temp", "argmax")
    pool = _pool_ints(x, kernel, stride, padding, dilation, ceil_mode)
    fn.saved = (idx, pool)
    L.g.add(Node("max_pool_fwd", [x], [fn.out, idx], {"pool": pool}, src=fn.op))
    fn.lowered_by = "pool"
    return True


def _bwd_max_pool(L, fn, dy):
    x, (idx, pool) = fn.args[0], fn.saved
    L.contribute(x, fn.op, lambda out: L.g.add(Node("max_pool_bwd", [dy, idx], [out], {"pool": pool}, src=fn.op)))


def _fwd_avg_pool(L, fn):
    x = fn.args[0]
    kernel, stride, padding, ceil_mode, count_include_pad, divisor = fn.args[1:7]
    if len(x.shape) != 4 or not _float(x):
        return False
    pool = _pool_ints(x, kernel, stride, padding, (1, 1), ceil_mode, count_include_pad, divisor)
    fn.saved = pool
    L.g.add(Node("avg_pool_fwd", [x], [fn.out], {"pool": pool}, src=fn.op))
    fn.lowered_by = "pool"
    return True


def _bwd_avg_pool(L, fn, dy):
    x, pool = fn.args[0], fn.saved
    L.contribute(x, fn.op, lambda out: L.g.add(Node("avg_pool_bwd", [dy], [out], {"pool": pool}, src=fn.op)))


def _fwd_adaptive_avg_pool(L, fn):
    x = fn.args[0]
    if len(x.shape) != 4 or not _float(x):
        return False
    L.g.add(Node("adaptive_avg_pool_fwd", [x], [fn.out], {"sizes": x.shape + fn.out.shape[2:]}, src=fn.op))
    fn.lowered_by = "pool"
    return True


def _bwd_adaptive_avg_pool(L, fn, dy):
    x = fn.args[0]
    sizes = x.shape + fn.out.shape[2:]
    L.contribute(x, fn.op, lambda out: L.g.add(
        Node("adaptive_avg_pool_bwd", [dy], [out], {"sizes": sizes}, src=fn.op)))


# ---- unary elementwise ops and division: each backward rule is the eager rule's arithmetic,
# in the same order (Cos: (-dy) * sin(x)), so results match eager.
_UNARY = {"Neg": "neg", "Exp": "exp", "Log": "log", "Sin": "sin", "Cos": "cos", "Abs": "abs"}


def _fwd_unary(L, fn):
    x = fn.args[0]
    if fn.tensor_pos != [0] or not _float(x):
        return False
    L.g.add(Node("unary", [x], [fn.out], {"kind": _UNARY[fn.op], "n": x.size}, src=fn.op))
    fn.lowered_by = "unary"
    return True


def _bwd_unary(L, fn, dy):
    x, kind, src = fn.args[0], _UNARY[fn.op], fn.op
    n = {"n": x.size}

    def tmp(op, ins, attrs, name):
        v = L.g.value(x.shape, x.dtype, "temp", name)
        L.g.add(Node(op, ins, [v], attrs, src=src))
        return v
    if kind == "neg":
        make = lambda out: L.g.add(Node("scale", [dy], [out], {"alpha": -1.0, **n}, src=src))   # noqa: E731
    elif kind == "exp":
        make = lambda out: L.g.add(Node("mul", [dy, fn.out], [out], n, src=src))               # noqa: E731
    elif kind == "log":
        make = lambda out: L.g.add(Node("div", [dy, x], [out], n, src=src))                    # noqa: E731
    elif kind == "sin":
        c = tmp("unary", [x], {"kind": "cos", **n}, "cos")
        make = lambda out: L.g.add(Node("mul", [dy, c], [out], n, src=src))                    # noqa: E731
    elif kind == "cos":
        ndy = tmp("scale", [dy], {"alpha": -1.0, **n}, "neg_dy")
        sn = tmp("unary", [x], {"kind": "sin", **n}, "sin")
        make = lambda out: L.g.add(Node("mul", [ndy, sn], [out], n, src=src))                  # noqa: E731
    else:
        sg = tmp("unary", [x], {"kind": "sign", **n}, "sign")
        make = lambda out: L.g.add(Node("mul", [dy, sg], [out], n, src=src))                   # noqa: E731
    L.contribute(x, src, make)


def _bwd_div(L, fn, dy):
    if getattr(fn, "bcast", None):
        return _bwd_broadcast(L, fn, dy)
    a, b = fn.args[0], fn.args[1]
    n = {"n": dy.size}
    if L.wants(fn, 0):                    # da = dy / b
        L.contribute(a, fn.op, lambda out: L.g.add(Node("div", [dy, b], [out], n, src=fn.op)))
    if L.wants(fn, 1):                    # db = ((-dy) * a) / (b * b)
        parts = []
        for op, ins, attrs in (("scale", [dy], {"alpha": -1.0, **n}), ("mul", None, n), ("mul", [b, b], n)):
            v = L.g.value(dy.shape, dy.dtype, "temp", "div_part")
            L.g.add(Node(op, ins if ins is not None else [parts[0], a], [v], attrs, src=fn.op))
            parts.append(v)
        L.contribute(b, fn.op, lambda out: L.g.add(Node("div", [parts[1], parts[2]], [out], n, src=fn.op)))


# ---- pointwise losses: MSE and BCE with logits (scale = 1/n for a mean, as eager)
_LOSS_KIND = {"MSE": "mse", "BCEWithLogits": "bce"}


def _fwd_pointwise_loss(L, fn):
    x, t, mean = fn.args[0], fn.args[1], fn.args[2]
    if fn.tensor_pos != [0, 1] or x.shape != t.shape or x.dtype != t.dtype or not _float(x):
        return False
    if fn.op == "BCEWithLogits" and L._wants(fn, 1):
        return False            # a gradient for the target: the eager rule (-x * dy * scale) runs
    scale = 1.0 / x.size if mean and x.size else 1.0
    fn.saved = scale
    L.g.add(Node("loss_fwd", [x, t], [fn.out], {"kind": _LOSS_KIND[fn.op], "n": x.size, "scale": scale},
                 src=fn.op))
    fn.lowered_by = "loss"
    return True


def _bwd_pointwise_loss(L, fn, dy):
    x, t, scale = fn.args[0], fn.args[1], fn.saved
    attrs = {"kind": _LOSS_KIND[fn.op], "n": x.size, "scale": scale}
    if L.wants(fn, 1):          # MSE only: dt = -dx, so dx is made first, in a buffer of its own
        dx = L.g.value(x.shape, x.dtype, "temp", "dx")
        L.g.add(Node("loss_bwd", [x, t, dy], [dx], attrs, src=fn.op))
        L.contribute(t, fn.op, lambda out: L.g.add(
            Node("scale", [dx], [out], {"alpha": -1.0, "n": x.size}, src=fn.op)))
        if L.wants(fn, 0):
            L.contribute(x, fn.op, lambda out: L.g.add(Node("copy", [dx], [out], src=fn.op)))
        return
    if L.wants(fn, 0):
        L.contribute(x, fn.op, lambda out: L.g.add(Node("loss_bwd", [x, t, dy], [out], attrs, src=fn.op)))


_FORWARD = {
    "Reshape": _fwd_reshape, "Linear": _fwd_linear, "MatMul2D": _fwd_matmul,
    "Activation": _fwd_activation, "CrossEntropy": _fwd_cross_entropy,
    "Add": _same_shape_binary("add"), "Sub": _same_shape_binary("sub"), "Mul": _same_shape_binary("mul"),
    "Conv2dFn": _fwd_conv, "Conv1dFn": _fwd_conv, "MaxPool2dFn": _fwd_max_pool,
    "AvgPool2dFn": _fwd_avg_pool, "AdaptiveAvgPool2dFn": _fwd_adaptive_avg_pool,
    "Div": _same_shape_binary("div"), **{name: _fwd_unary for name in _UNARY},
    "MSE": _fwd_pointwise_loss, "BCEWithLogits": _fwd_pointwise_loss,
}
_BACKWARD = {
    "Reshape": _bwd_reshape, "Linear": _bwd_linear, "MatMul2D": _bwd_matmul,
    "Activation": _bwd_activation, "CrossEntropy": _bwd_cross_entropy,
    "Add": _bwd_add, "Sub": _bwd_sub, "Mul": _bwd_mul,
    "Conv2dFn": _bwd_conv, "Conv1dFn": _bwd_conv, "MaxPool2dFn": _bwd_max_pool,
    "AvgPool2dFn": _bwd_avg_pool, "AdaptiveAvgPool2dFn": _bwd_adaptive_avg_pool,
    "Div": _bwd_div, **{name: _bwd_unary for name in _UNARY},
    "MSE": _bwd_pointwise_loss, "BCEWithLogits": _bwd_pointwise_loss,
}


def run_pycall_forward(fn, arrays):
    """Execute a fallback forward: a fresh ctx each step (the rule may save state in it)."""
    ctx = fn.cls()
    if fn.needs is not None:
        ctx.needs_input_grad = fn.needs
    args = list(fn.args)
    for p, a in zip(fn.tensor_pos, arrays):
        args[p] = a
    out = fn.cls.forward(ctx, *args, **fn.kwargs)
    fn.live_ctx = ctx
    return out


def run_pycall_backward(fn, dy, wanted):
    ctx = getattr(fn, "live_ctx", None)
    if ctx is None:
        raise RuntimeError(f"{fn.op}: backward ran before its forward in the compiled schedule")
    grads = fn.cls.backward(ctx, dy)
    if not isinstance(grads, tuple):
        grads = (grads,)
    out = []
    for p in wanted:
        gi = grads[p] if p < len(grads) else None
        if gi is None:
            raise RuntimeError(f"no gradient rule for input {p} of {fn.op}")
        shape = fn.args[p].shape
        gi = np.asarray(gi)
        if gi.shape != shape:
            gi = reduce_to_shape(gi, shape)
        out.append(gi)
    return out


__all__ = ["Lowering", "run_pycall_forward", "run_pycall_backward", "Tensor"]
