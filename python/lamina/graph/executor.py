"""Executors for a planned Graph: a Python interpreter over arena views (the reference) and the
C++ GraphProgram (one call per step, GIL released; `pycall` nodes become callbacks).

Both run the same nodes over the same arena, so the Python one checks the C++ one in tests.
Each executor dispatches through one table keyed by the node op (`_CLOSURES`, `_INSTRS`).
Op codes, activation kinds and the other shared enums come from `_C` (defined once in C++);
a node's kinds are names ("relu", "mse", "rsub") turned into the bound enum by name.
"""
from __future__ import annotations

import numpy as np

from .. import _C
from ..ops._common import UNARY_KERNELS
from ..ops._params import enum_member as _enum
from ..ops.norm import batch_norm_factor
from .lower import run_pycall_backward, run_pycall_forward

_OP = _C.OpCode
_UNARY = UNARY_KERNELS      # ops/_common.py's table: the kernels eager runs
_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


class Memory:
    """The arena (one uint8 buffer, 64-byte aligned) and an array for every Value."""

    def __init__(self, graph):
        self.graph = graph
        n = graph.arena_bytes + 64
        raw = np.zeros(n, dtype=np.uint8)
        shift = (-raw.ctypes.data) % 64
        self.arena = raw[shift:shift + graph.arena_bytes] if graph.arena_bytes else raw[:0]
        self.arrays = [None] * len(graph.values)
        self.input_views = []      # (value id, input index, shape) re-bound per call
        for v in graph.values:
            self.arrays[v.id] = self._array_of(v)

    def _array_of(self, v):
        r = v.root()
        if r.home == "input":
            if v is not r:
                self.input_views.append((v.id, r.id, v.shape))
            return None
        if r.home == "temp":
            if r.offset is None:
                return None          # never used by a scheduled node
            base = self.arena[r.offset:r.offset + r.nbytes].view(r.dtype).reshape(r.shape)
        else:
            base = r.array
        return base if v is r else base.reshape(v.shape)

    def bind_inputs(self, arrays):
        for v, a in zip(self.graph.inputs, arrays):
            self.arrays[v.id] = a
        for vid, rid, shape in self.input_views:
            self.arrays[vid] = self.arrays[rid].reshape(shape)


# ---------------------------------------------------------------- the Python reference executor
# Each maker takes (node, arrays, input ids, output ids, scalars) and returns a zero-argument step.
def _gemm_closure(node, A, ins, outs, scalars):
    a = node.attrs
    i0, i1, i2 = ins
    o = outs[0]
    ta, tb, al, be, act, axis = a.trans_a, a.trans_b, a.alpha, a.beta, a.act, a.bias_axis
    M, N, K = a.M, a.N, a.K
    sa, sb = (K, M) if ta else (M, K), (N, K) if tb else (K, N)     # op(A) (M, K), op(B) (K, N)
    if a.batch != 1:
        B = a.batch
        return lambda: _C.gemm_batched(A[i0].reshape(B, *sa), A[i1].reshape(B, *sb), A[o].reshape(B, M, N), ta, tb,
                                       al, be)
    return lambda: _C.gemm(A[i0].reshape(sa), A[i1].reshape(sb), A[o].reshape(M, N), ta, tb, al, be,
                           A[i2] if i2 is not None else None, axis, act)


def _act_closure(node, A, ins, outs, scalars):
    k, s = node.attrs.kind, node.attrs.negative_slope
    if node.op == "act_fwd":
        return lambda: _C.act_forward(k, A[ins[0]], A[outs[0]], s)
    return lambda: _C.act_backward(k, A[ins[0]], A[ins[0]], A[ins[1]], A[outs[0]], s)


def _ce_closure(node, A, ins, outs, scalars):
    ign = node.attrs.ignore_index
    if node.op == "ce_bwd":
        return lambda: _C.cross_entropy_backward(A[ins[0]], A[ins[1]], A[outs[0]],
                                                 float(A[ins[2]]) * float(A[ins[3]]), ign)
    mean = node.attrs.mean

    def ce_fwd():
        total, count = _C.cross_entropy_forward(A[ins[0]], A[ins[1]], A[outs[1]], ign)
        A[outs[0]][...] = _C.reduced_loss(total, mean, count)
        A[outs[2]][...] = _C.loss_scale(mean, count)
    return ce_fwd


def _loss_closure(node, A, ins, outs, scalars):
    sc, mse = node.attrs.scale, node.attrs.kind == "mse"
    if node.op == "loss_fwd":
        f = _C.mse_forward if mse else _C.bce_with_logits_forward

        def loss_fwd():
            A[outs[0]][...] = f(A[ins[0]], A[ins[1]]) * sc
        return loss_fwd
    f = _C.mse_backward if mse else _C.bce_with_logits_backward
    return lambda: f(A[ins[0]], A[ins[1]], (2.0 if mse else 1.0) * float(A[ins[2]]) * sc, A[outs[0]])


def _fill_closure(node, A, ins, outs, scalars):
    val = node.attrs.value

    def fill():
        A[outs[0]][...] = val
    return fill


def _elementwise_closure(node, A, ins, outs, scalars):
    op = node.op
    if op in _BINARY:
        f = _BINARY[op]
        return lambda: f(A[ins[0]], A[ins[1]], out=A[outs[0]])
    if op == "unary":
        f = _UNARY[node.attrs.kind]
        return lambda: f(A[ins[0]], out=A[outs[0]])
    if op == "scale":
        al = node.attrs.alpha
        return lambda: np.multiply(A[ins[0]], A[ins[0]].dtype.type(al), out=A[outs[0]])
    if op == "copy":
        return lambda: np.copyto(A[outs[0]], A[ins[0]].reshape(A[outs[0]].shape))

    def acc():
        A[outs[0]] += A[ins[0]]
    return acc


def _sgd_closure(node, A, ins, outs, scalars):
    a = node.attrs
    p, gr = outs[0], ins[0]
    buf = outs[1] if len(outs) > 1 else None
    return lambda: _C.sgd_step(A[p], A[gr], A[buf] if buf is not None else None, scalars[a.lr],
                               scalars[a.momentum], scalars[a.dampening], scalars[a.weight_decay],
                               bool(scalars[a.nesterov]), bool(scalars[a.first_step]))


def _adam_closure(node, A, ins, outs, scalars):
    a = node.attrs
    p, gr, m, v = outs[0], ins[0], outs[1], outs[2]
    vmax = outs[3] if len(outs) > 3 else None
    dec, ams = a.decoupled, a.amsgrad
    return lambda: _C.adam_step(A[p], A[gr], A[m], A[v], A[vmax] if vmax is not None else None,
                                int(scalars[a.step]), scalars[a.lr], scalars[a.beta1],
                                scalars[a.beta2], scalars[a.eps], scalars[a.weight_decay], dec, ams)


def _conv_closure(node, A, ins, outs, scalars):
    p = node.attrs.params
    # x (N, C, H, W), w (K, C/groups, KH, KW), y (N, K, OH, OW): 4-D views of the (1-D conv's 3-D) buffers
    xs, ws, ys = (p.N, p.C, p.H, p.W), (p.K, p.C // p.groups, p.KH, p.KW), (p.N, p.K, p.OH, p.OW)
    conf = p.conf()
    if node.op == "conv2d_fwd":
        act, slope = node.attrs.act, node.attrs.negative_slope
        x, w, b = ins
        o = outs[0]

        def fwd():
            y = A[o].reshape(ys)
            _C.conv2d_forward(A[x].reshape(xs), A[w].reshape(ws), A[b] if b is not None else None, y, *conf)
            if act != "identity":
                _C.act_forward(act, y, y, slope)
        return fwd
    x, w, dy = ins
    it = iter(outs)
    dx, dw, db = (next(it) if h else None for h in node.attrs.has)

    def bwd():
        _C.conv2d_backward(A[x].reshape(xs), A[w].reshape(ws), A[dy].reshape(ys),
                           None if dx is None else A[dx].reshape(xs), None if dw is None else A[dw].reshape(ws),
                           None if db is None else A[db], *conf)
    return bwd


def _conv_block_closure(node, A, ins, outs, scalars):
    p = node.attrs.params
    if node.op == "conv_block_fwd":
        xs, ws = (p.N, p.C, p.H, p.W), (p.K, p.C // p.groups, p.KH, p.KW)
        conf = p.conf()
        x, w, b = ins
        return lambda: _C.conv2d_relu_max_pool2d_forward(A[x].reshape(xs), A[w].reshape(ws),
                                                         A[b] if b is not None else None, A[outs[0]], A[outs[1]], *conf)
    return lambda: _C.relu_max_pool2d_backward(A[ins[0]], A[ins[1]], A[outs[0]].reshape(p.N, p.K, p.OH, p.OW))


def _pool_closure(node, A, ins, outs, scalars):
    op, a = node.op, node.attrs
    p = a.params
    k, s, d = (p.KH, p.KW), (p.stride_h, p.stride_w), (p.dil_h, p.dil_w)
    pad, ceil = (p.pad_h, p.pad_w), p.ceil_mode
    if op == "max_pool_fwd":
        return lambda: _C.max_pool2d_forward(A[ins[0]], A[outs[0]], A[outs[1]], k, s, pad, d, ceil)
    if op == "max_pool_bwd":
        return lambda: _C.max_pool2d_backward(A[ins[0]], A[ins[1]], A[outs[0]], k, s, pad, d, ceil)
    f = _C.avg_pool2d_forward if op == "avg_pool_fwd" else _C.avg_pool2d_backward
    cip, div = a.count_include_pad, a.divisor_override
    return lambda: f(A[ins[0]], A[outs[0]], k, s, pad, ceil, cip, div)


def _adaptive_pool_closure(node, A, ins, outs, scalars):
    f = _C.adaptive_avg_pool2d_forward if node.op.endswith("fwd") else _C.adaptive_avg_pool2d_backward
    return lambda: f(A[ins[0]], A[outs[0]])


def _broadcast_closure(node, A, ins, outs, scalars):
    a = node.attrs
    o_, m_, i_ = a.outer, a.mid, a.inner
    x, sm = ins
    kind = a.kind
    if kind == "rsub":
        return lambda: np.subtract(A[sm].reshape(1, m_, 1), A[x].reshape(o_, m_, i_),
                                   out=A[outs[0]].reshape(o_, m_, i_))
    f = _BINARY[kind]
    return lambda: f(A[x].reshape(o_, m_, i_), A[sm].reshape(1, m_, 1), out=A[outs[0]].reshape(o_, m_, i_))


def _reduce_broadcast_closure(node, A, ins, outs, scalars):
    a = node.attrs
    o_, m_, i_ = a.outer, a.mid, a.inner
    alpha = a.alpha
    dy, x = ins

    def reduce_bcast():
        d = A[dy].reshape(o_, m_, i_).astype(np.float64)
        if x is not None:
            d = d * A[x].reshape(o_, m_, i_)
        np.copyto(A[outs[0]], (alpha * d.sum(axis=(0, 2))).reshape(A[outs[0]].shape))
    return reduce_bcast


def _bn_closure(node, A, ins, outs, scalars):
    a = node.attrs

    def get(i):
        return None if i is None else A[i]
    if node.op == "bn_fwd":
        x, w, b, rm, rv, nbt = ins
        y, mean, invstd = outs
        momentum = None if a.cumulative_average else a.momentum

        def fwd():
            factor = batch_norm_factor(a.training, get(rm), momentum, get(nbt))
            _C.batch_norm_forward(A[x], get(w), get(b), get(rm), get(rv), a.training, factor, a.eps, a.relu,
                                  A[y], A[mean], A[invstd])
        return fwd
    x, dy, y, w, mean, invstd = ins
    it = iter(outs)
    dx, dw, db = (next(it) if h else None for h in a.has)
    return lambda: _C.batch_norm_backward(A[x], A[dy], get(y), get(w), A[mean], A[invstd], a.training, get(dx),
                                          get(dw), get(db))


def _pycall_closure(node, A, ins, outs, scalars):
    kind = node.attrs.kind
    if kind == "call":              # a whole Python step (an optimizer without a lowering)
        return node.attrs.call
    fn = node.attrs.fnode
    if kind == "forward":
        def fwd():
            out = run_pycall_forward(fn, [A[i] for i in ins])
            np.copyto(A[outs[0]], np.asarray(out).reshape(A[outs[0]].shape))
        return fwd
    if kind == "backward":
        wanted = node.attrs.wanted

        def bwd():
            grads = run_pycall_backward(fn, A[ins[0]], wanted)
            for o, gi in zip(outs, grads):
                np.copyto(A[o], gi.reshape(A[o].shape) if gi.size == A[o].size else gi)
        return bwd
    raise NotImplementedError(kind)


_CLOSURES = {
    "gemm": _gemm_closure, "act_fwd": _act_closure, "act_bwd": _act_closure,
    "bias_grad_rows": lambda node, A, ins, outs, sc: lambda: _C.bias_grad_rows(A[ins[0]], A[outs[0]]),
    "ce_fwd": _ce_closure, "ce_bwd": _ce_closure, "loss_fwd": _loss_closure, "loss_bwd": _loss_closure,
    "fill": _fill_closure, "add": _elementwise_closure, "sub": _elementwise_closure,
    "mul": _elementwise_closure, "div": _elementwise_closure, "unary": _elementwise_closure,
    "scale": _elementwise_closure, "copy": _elementwise_closure, "accumulate": _elementwise_closure,
    "sgd": _sgd_closure, "adam": _adam_closure, "conv2d_fwd": _conv_closure, "conv2d_bwd": _conv_closure,
    "max_pool_fwd": _pool_closure, "max_pool_bwd": _pool_closure, "avg_pool_fwd": _pool_closure,
    "avg_pool_bwd": _pool_closure, "adaptive_avg_pool_fwd": _adaptive_pool_closure,
    "adaptive_avg_pool_bwd": _adaptive_pool_closure, "broadcast": _broadcast_closure,
    "reduce_broadcast": _reduce_broadcast_closure, "bn_fwd": _bn_closure, "bn_bwd": _bn_closure,
    "pycall": _pycall_closure, "conv_block_fwd": _conv_block_closure, "conv_block_bwd": _conv_block_closure,
}


def node_closure(node, mem, scalars):
    """A zero-argument function running `node` on mem.arrays (used by both executors)."""
    make = _CLOSURES.get(node.op)
    if make is None:
        raise NotImplementedError(f"no executor for node op {node.op!r}")
    ins = [v.id if v is not None else None for v in node.inputs]
    outs = [v.id for v in node.outputs]
    return make(node, mem.arrays, ins, outs, scalars)


class PythonExecutor:
    """Runs the nodes one by one from Python (the reference the C++ executor is tested against)."""

    def __init__(self, graph, mem, scalars):
        self.mem = mem
        self.steps = [node_closure(n, mem, scalars) for n in graph.nodes]

    def run(self, inputs, scalars):
        self.mem.bind_inputs(inputs)
        for f in self.steps:
            f()


# ---------------------------------------------------------------- the C++ instructions
# Each builder takes (node, input slots, output slots) and returns (slots, attrs struct); slot -1
# is "none". Most nodes' slots are their inputs then outputs, and their record (ops/_params.py)
# converts itself to the bound attrs struct.
def _plain_instr(n, S, O):
    return S + O, n.attrs.native()


def _gemm_instr(n, S, O):
    return S[:2] + O + [S[2]], n.attrs.native()       # A, B, C, bias


def _optional_outputs_instr(n, S, O):
    """conv2d_bwd / bn_bwd: one slot per possible output, -1 for those not wanted (`has`)."""
    if not n.op.endswith("bwd"):
        return S + O, n.attrs.native()
    it = iter(O)
    return S + [next(it) if h else -1 for h in n.attrs.has], n.attrs.native()


def _sgd_instr(n, S, O):
    return [O[0], S[0], O[1] if len(O) > 1 else -1], n.attrs.native()       # param, grad, momentum buffer


def _adam_instr(n, S, O):
    return [O[0], S[0], O[1], O[2], O[3] if len(O) > 3 else -1], n.attrs.native()   # p, g, m, v, vmax


# node op -> (instruction code, builder)
_INSTRS = {
    "gemm": (_OP.GEMM, _gemm_instr),
    "act_fwd": (_OP.ACT_FORWARD, _plain_instr),
    "act_bwd": (_OP.ACT_BACKWARD, _plain_instr),
    "bias_grad_rows": (_OP.BIAS_GRAD_ROWS, _plain_instr),
    "ce_fwd": (_OP.CE_FORWARD, _plain_instr),
    "ce_bwd": (_OP.CE_BACKWARD, _plain_instr),
    "fill": (_OP.FILL, _plain_instr),
    "add": (_OP.ADD, _plain_instr),
    "sub": (_OP.SUB, _plain_instr),
    "mul": (_OP.MUL, _plain_instr),
    "div": (_OP.DIV, _plain_instr),
    "copy": (_OP.COPY, _plain_instr),
    "accumulate": (_OP.ACCUMULATE, _plain_instr),
    "unary": (_OP.UNARY, _plain_instr),
    "scale": (_OP.SCALE, _plain_instr),
    "loss_fwd": (_OP.LOSS_FORWARD, _plain_instr),
    "loss_bwd": (_OP.LOSS_BACKWARD, _plain_instr),
    "sgd": (_OP.SGD, _sgd_instr),
    "adam": (_OP.ADAM, _adam_instr),
    "conv2d_fwd": (_OP.CONV2D_FORWARD, _optional_outputs_instr),
    "conv2d_bwd": (_OP.CONV2D_BACKWARD, _optional_outputs_instr),
    "max_pool_fwd": (_OP.MAX_POOL2D_FORWARD, _plain_instr),
    "max_pool_bwd": (_OP.MAX_POOL2D_BACKWARD, _plain_instr),
    "avg_pool_fwd": (_OP.AVG_POOL2D_FORWARD, _plain_instr),
    "avg_pool_bwd": (_OP.AVG_POOL2D_BACKWARD, _plain_instr),
    "adaptive_avg_pool_fwd": (_OP.ADAPTIVE_AVG_POOL2D_FORWARD, _plain_instr),
    "adaptive_avg_pool_bwd": (_OP.ADAPTIVE_AVG_POOL2D_BACKWARD, _plain_instr),
    "broadcast": (_OP.BROADCAST, _plain_instr),
    "reduce_broadcast": (_OP.REDUCE_BROADCAST, _plain_instr),
    "bn_fwd": (_OP.BATCH_NORM_FORWARD, _optional_outputs_instr),
    "bn_bwd": (_OP.BATCH_NORM_BACKWARD, _optional_outputs_instr),
    "conv_block_fwd": (_OP.CONV_BLOCK_FORWARD, _plain_instr),
    "conv_block_bwd": (_OP.CONV_BLOCK_BACKWARD, _plain_instr),
}
# Ops the C++ executor runs itself; every other node is a Python callback.
NATIVE_OPS = tuple(_INSTRS)


class NativeExecutor:
    """Builds a _C.GraphProgram: slots are Value roots; pycall nodes become callbacks."""

    def __init__(self, graph, mem, scalars):
        self.mem = mem
        self._slot_of, self._arena_slots, self._externals = {}, ([], [], []), []
        for v in graph.inputs:
            self._slot(v)
        self.callbacks = []
        instrs = [self._instr(n, mem, scalars) for n in graph.nodes]
        self.prog = _C.GraphProgram(instrs, len(self._slot_of), len(scalars))
        slots, offsets, sizes = self._arena_slots
        if slots:
            self.prog.set_arena(mem.arena, slots, offsets, sizes)
        for s, r in self._externals:
            arr = r.array
            if not (arr.flags.c_contiguous and arr.flags.writeable):
                raise ValueError(f"{r.describe()}: expected a writeable C-contiguous array")
            self.prog.set_slot(s, arr)
        self.prog.set_inputs([self._slot_of[v.id] for v in graph.inputs], [v.dtype.name for v in graph.inputs],
                             [v.nbytes for v in graph.inputs])
        self.needs_input_views = any(n.op == "pycall" for n in graph.nodes)
        cbs = self.callbacks
        self._callback = (lambda i: cbs[i]()) if cbs else None

    def _slot(self, v):
        """The slot of v's root buffer (-1 for None), numbered in order of first use."""
        if v is None:
            return -1
        r = v.root()
        s = self._slot_of.get(r.id)
        if s is None:
            s = self._slot_of[r.id] = len(self._slot_of)
            if r.home == "temp":
                for lst, val in zip(self._arena_slots, (s, r.offset, r.nbytes)):
                    lst.append(val)
            elif r.home != "input":
                self._externals.append((s, r))
        return s

    def _instr(self, n, mem, scalars):
        dt = next((v.dtype.name for v in n.inputs + n.outputs if v is not None and v.dtype.kind == "f"),
                  "float32")
        dtype = _enum(_C.DType, dt)
        entry = _INSTRS.get(n.op)
        if entry is None:       # everything else runs its Python closure under the GIL
            cid = len(self.callbacks)
            self.callbacks.append(node_closure(n, mem, scalars))
            return _C.GraphInstr(_OP.CALLBACK, dtype, [], _C.CallbackAttrs(id=cid))
        code, build = entry
        slots, attrs = build(n, [self._slot(v) for v in n.inputs], [self._slot(v) for v in n.outputs])
        return _C.GraphInstr(code, dtype, slots, attrs)

    def set_profiling(self, on):
        """Step profile on (zeroed) or off: while on, every run adds each instruction's wall time."""
        self.prog.set_profiling(bool(on))

    def profile(self, graph):
        """(node, seconds per run) for every node of `graph` (the one this executor was built
        from: instruction k is node k), averaged over the runs since set_profiling(True)."""
        runs = self.prog.profile_runs
        if runs == 0:
            raise RuntimeError("no profiled run: call set_profiling(True), then run the step")
        secs = self.prog.profile_seconds()
        return [(n, float(t) / runs) for n, t in zip(graph.nodes, secs)]

    def run(self, inputs, scalars):
        if self.needs_input_views:
            self.mem.bind_inputs(inputs)
        self.prog.run(inputs, scalars, self._callback)
