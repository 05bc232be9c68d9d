"""Executors for a planned Graph: a Python interpreter over arena views (the reference) and the
C++ GraphProgram (one call per step, GIL released; `pycall` nodes become callbacks).

Both run the same nodes over the same arena, so the Python one checks the C++ one in tests.
"""
from __future__ import annotations

import numpy as np

from .. import _C
from ..ops._common import UNARY_KERNELS
from .lower import run_pycall_backward, run_pycall_forward

_GEMM_ACT = {"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}
_ACT = {"identity": 0, "relu": 1, "leaky_relu": 2, "softplus": 3, "sigmoid": 4, "tanh": 5, "step": 6}
_BIAS_AXIS = {"row": 1, "col": 2}
# Ops the C++ executor runs itself; every other node is a Python callback.
NATIVE_OPS = ("gemm", "act_fwd", "act_bwd", "bias_grad_rows", "ce_fwd", "ce_bwd", "fill", "add",
              "sub", "mul", "scale", "copy", "accumulate", "sgd", "adam", "conv2d_fwd", "conv2d_bwd",
              "max_pool_fwd", "max_pool_bwd", "avg_pool_fwd", "avg_pool_bwd", "adaptive_avg_pool_fwd",
              "adaptive_avg_pool_bwd", "broadcast", "reduce_broadcast", "div", "unary", "loss_fwd", "loss_bwd")
_LOSS = {"mse": 0, "bce": 1}
_UNARY_CODE = {"neg": 0, "exp": 1, "log": 2, "sin": 3, "cos": 4, "abs": 5, "sign": 6}
_POOL_CODE = {"max_pool_fwd": "max_pool2d_forward", "max_pool_bwd": "max_pool2d_backward",
              "avg_pool_fwd": "avg_pool2d_forward", "avg_pool_bwd": "avg_pool2d_backward",
              "adaptive_avg_pool_fwd": "adaptive_avg_pool2d_forward",
              "adaptive_avg_pool_bwd": "adaptive_avg_pool2d_backward"}


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


def node_closure(node, mem, scalars):
    """A zero-argument function running `node` on mem.arrays (used by both executors)."""
    A = mem.arrays
    ins = [v.id if v is not None else None for v in node.inputs]
    outs = [v.id for v in node.outputs]
    a = node.attrs
    op = node.op
    if op == "gemm":
        i0, i1, i2 = ins
        o = outs[0]
        ta, tb, al, be, act, axis = a["ta"], a["tb"], a["alpha"], a["beta"], a["act"], a["bias_axis"]
        M, N, K = a["M"], a["N"], a["K"]
        sa, sb = (K, M) if ta else (M, K), (N, K) if tb else (K, N)     # op(A) (M, K), op(B) (K, N)
        return lambda: _C.gemm(A[i0].reshape(sa), A[i1].reshape(sb), A[o].reshape(M, N), ta, tb, al, be,
                               A[i2] if i2 is not None else None, axis, act)
    if op == "act_fwd":
        k, s = a["kind"], a["slope"]
        return lambda: _C.act_forward(k, A[ins[0]], A[outs[0]], s)
    if op == "act_bwd":
        k, s = a["kind"], a["slope"]
        return lambda: _C.act_backward(k, A[ins[0]], A[ins[0]], A[ins[1]], A[outs[0]], s)
    if op == "bias_grad_rows":
        return lambda: _C.bias_grad_rows(A[ins[0]], A[outs[0]])
    if op == "ce_fwd":
        ign, mean = a["ignore_index"], a["mean"]

        def ce_fwd():
            total, count = _C.cross_entropy_forward(A[ins[0]], A[ins[1]], A[outs[1]], ign)
            scale = 1.0 / count if mean and count > 0 else 1.0
            A[outs[0]][...] = total * scale if (not mean or count > 0) else float("nan")
            A[outs[2]][...] = scale
        return ce_fwd
    if op == "ce_bwd":
        ign = a["ignore_index"]
        return lambda: _C.cross_entropy_backward(A[ins[0]], A[ins[1]], A[outs[0]],
                                                 float(A[ins[2]]) * float(A[ins[3]]), ign)
    if op == "fill":
        val = a["value"]

        def fill():
            A[outs[0]][...] = val
        return fill
    if op in ("add", "sub", "mul", "div"):
        f = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[op]
        return lambda: f(A[ins[0]], A[ins[1]], out=A[outs[0]])
    if op == "loss_fwd":
        sc = a["scale"]
        f = _C.mse_forward if a["kind"] == "mse" else _C.bce_with_logits_forward

        def loss_fwd():
            A[outs[0]][...] = f(A[ins[0]], A[ins[1]]) * sc
        return loss_fwd
    if op == "loss_bwd":
        sc, mse = a["scale"], a["kind"] == "mse"
        f = _C.mse_backward if mse else _C.bce_with_logits_backward
        return lambda: f(A[ins[0]], A[ins[1]], (2.0 if mse else 1.0) * float(A[ins[2]]) * sc, A[outs[0]])
    if op == "unary":
        f = UNARY_KERNELS[a["kind"]]
        return lambda: f(A[ins[0]], out=A[outs[0]])
    if op == "scale":
        al = a["alpha"]
        return lambda: np.multiply(A[ins[0]], A[ins[0]].dtype.type(al), out=A[outs[0]])
    if op == "copy":
        return lambda: np.copyto(A[outs[0]], A[ins[0]].reshape(A[outs[0]].shape))
    if op == "accumulate":
        def acc():
            A[outs[0]] += A[ins[0]]
        return acc
    if op == "sgd":
        sc = a["sc"]
        p, gr = outs[0], ins[0]
        buf = outs[1] if len(outs) > 1 else None
        return lambda: _C.sgd_step(A[p], A[gr], A[buf] if buf is not None else None, scalars[sc[0]],
                                   scalars[sc[1]], scalars[sc[2]], scalars[sc[3]], bool(scalars[sc[4]]),
                                   bool(scalars[sc[5]]))
    if op == "adam":
        sc = a["sc"]
        p, gr = outs[0], ins[0]
        m, v = outs[1], outs[2]
        vmax = outs[3] if len(outs) > 3 else None
        dec, ams = a["decoupled"], a["amsgrad"]
        return lambda: _C.adam_step(A[p], A[gr], A[m], A[v], A[vmax] if vmax is not None else None,
                                    int(scalars[sc[5]]), scalars[sc[0]], scalars[sc[1]], scalars[sc[2]],
                                    scalars[sc[3]], scalars[sc[4]], dec, ams)
    if op in ("conv2d_fwd", "conv2d_bwd"):
        return _conv_closure(node, A, ins, outs)
    if op in _POOL_CODE:
        return _pool_closure(node, A, ins, outs)
    if op == "broadcast":
        o_, m_, i_ = a["split"]
        f = (np.add, np.subtract, None, np.multiply, np.divide)[a["kind"]]
        x, sm = ins
        if a["kind"] == 2:
            return lambda: np.subtract(A[sm].reshape(1, m_, 1), A[x].reshape(o_, m_, i_),
                                       out=A[outs[0]].reshape(o_, m_, i_))
        return lambda: f(A[x].reshape(o_, m_, i_), A[sm].reshape(1, m_, 1), out=A[outs[0]].reshape(o_, m_, i_))
    if op == "reduce_broadcast":
        o_, m_, i_ = a["split"]
        alpha = a["alpha"]
        dy, x = ins

        def reduce_bcast():
            d = A[dy].reshape(o_, m_, i_).astype(np.float64)
            if x is not None:
                d = d * A[x].reshape(o_, m_, i_)
            np.copyto(A[outs[0]], (alpha * d.sum(axis=(0, 2))).reshape(A[outs[0]].shape))
        return reduce_bcast
    if op == "pycall":
        return _pycall_closure(node, A, ins, outs)
    raise NotImplementedError(f"no executor for node op {op!r}")


def _conv_shapes(conv):
    N, C, H, W, K, KH, KW, sh, sw, ph, pw, dh, dw, groups = conv
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    # x (N, C, H, W), w (K, C/groups, KH, KW), y (N, K, OH, OW): 4-D views of the (1-D conv's 3-D) buffers
    return (N, C, H, W), (K, C // groups, KH, KW), (N, K, OH, OW), ((sh, sw), (ph, pw), (dh, dw), groups)


def _conv_closure(node, A, ins, outs):
    xs, ws, ys, conf = _conv_shapes(node.attrs["conv"])
    if node.op == "conv2d_fwd":
        act, slope = node.attrs["act"], node.attrs["slope"]
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
    dx, dw, db = (next(it) if h else None for h in node.attrs["has"])

    def bwd():
        _C.conv2d_backward(A[x].reshape(xs), A[w].reshape(ws), A[dy].reshape(ys),
                           None if dx is None else A[dx].reshape(xs), None if dw is None else A[dw].reshape(ws),
                           None if db is None else A[db], *conf)
    return bwd


def _pool_closure(node, A, ins, outs):
    op = node.op
    if op.startswith("adaptive"):
        N, C, H, W, OH, OW = node.attrs["sizes"]
        f = _C.adaptive_avg_pool2d_forward if op.endswith("fwd") else _C.adaptive_avg_pool2d_backward
        return lambda: f(A[ins[0]], A[outs[0]])
    N, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, ceil, cip, div = node.attrs["pool"]
    k, s, p, d = (KH, KW), (sh, sw), (ph, pw), (dh, dw)
    if op == "max_pool_fwd":
        return lambda: _C.max_pool2d_forward(A[ins[0]], A[outs[0]], A[outs[1]], k, s, p, d, bool(ceil))
    if op == "max_pool_bwd":
        return lambda: _C.max_pool2d_backward(A[ins[0]], A[ins[1]], A[outs[0]], k, s, p, d, bool(ceil))
    f = _C.avg_pool2d_forward if op == "avg_pool_fwd" else _C.avg_pool2d_backward
    return lambda: f(A[ins[0]], A[outs[0]], k, s, p, bool(ceil), bool(cip), div)


def _pycall_closure(node, A, ins, outs):
    kind = node.attrs["_kind"]
    if kind == "call":              # a whole Python step (an optimizer without a lowering)
        return node.attrs["_call"]
    fn = node.attrs["_fnode"]
    if kind == "forward":
        def fwd():
            out = run_pycall_forward(fn, [A[i] for i in ins])
            np.copyto(A[outs[0]], np.asarray(out).reshape(A[outs[0]].shape))
        return fwd
    if kind == "backward":
        wanted = node.attrs["_wanted"]

        def bwd():
            grads = run_pycall_backward(fn, A[ins[0]], wanted)
            for o, gi in zip(outs, grads):
                np.copyto(A[o], gi.reshape(A[o].shape) if gi.size == A[o].size else gi)
        return bwd
    raise NotImplementedError(kind)


class PythonExecutor:
    """Runs the nodes one by one from Python (the reference the C++ executor is tested against)."""

    def __init__(self, graph, mem, scalars):
        self.mem = mem
        self.steps = [node_closure(n, mem, scalars) for n in graph.nodes]

    def run(self, inputs, scalars):
        self.mem.bind_inputs(inputs)
        for f in self.steps:
            f()


class NativeExecutor:
    """Builds a _C.GraphProgram: slots are Value roots; pycall nodes become callbacks."""

    def __init__(self, graph, mem, scalars):
        self.mem = mem
        slot_of = {}
        arena_slots, offsets, sizes = [], [], []
        externals = []

        def slot(v):
            if v is None:
                return -1
            r = v.root()
            s = slot_of.get(r.id)
            if s is None:
                s = slot_of[r.id] = len(slot_of)
                if r.home == "temp":
                    arena_slots.append(s)
                    offsets.append(r.offset)
                    sizes.append(r.nbytes)
                elif r.home != "input":
                    externals.append((s, r))
            return s

        for v in graph.inputs:
            slot(v)
        self.callbacks = []
        instrs = []
        for n in graph.nodes:
            instrs.append(self._instr(n, slot, mem, scalars))
        self.prog = _C.GraphProgram(instrs, len(slot_of), len(scalars))
        if arena_slots:
            self.prog.set_arena(mem.arena, arena_slots, offsets, sizes)
        for s, r in externals:
            arr = r.array
            if not (arr.flags.c_contiguous and arr.flags.writeable):
                raise ValueError(f"{r.describe()}: expected a writeable C-contiguous array")
            self.prog.set_slot(s, arr)
        self.prog.set_inputs([slot_of[v.id] for v in graph.inputs], [v.dtype.name for v in graph.inputs],
                             [v.nbytes for v in graph.inputs])
        self.needs_input_views = any(n.op == "pycall" for n in graph.nodes)
        cbs = self.callbacks
        self._callback = (lambda i: cbs[i]()) if cbs else None

    def _instr(self, n, slot, mem, scalars):
        a = n.attrs
        dt = next((v.dtype.name for v in n.inputs + n.outputs if v is not None and v.dtype.kind == "f"),
                  "float32")
        op = n.op
        S = [slot(v) for v in n.inputs]
        O = [slot(v) for v in n.outputs]
        code = _C.GRAPH_OPS
        if op == "gemm":
            return (code["gemm"], dt, S[:2] + O + [S[2]],
                    [int(a["ta"]), int(a["tb"]), a["M"], a["N"], a["K"], _GEMM_ACT[a["act"]],
                     _BIAS_AXIS[a["bias_axis"]]], [a["alpha"], a["beta"]], [])
        if op == "act_fwd":
            return (code["act_forward"], dt, S + O, [a["n"], _ACT[a["kind"]]], [a["slope"]], [])
        if op == "act_bwd":
            return (code["act_backward"], dt, S + O, [a["n"], _ACT[a["kind"]]], [a["slope"]], [])
        if op == "bias_grad_rows":
            return (code["bias_grad_rows"], dt, S + O, [a["N"], a["F"]], [], [])
        if op == "ce_fwd":
            return (code["ce_forward"], dt, S + O[:1] + [O[1], O[2]],
                    [a["N"], a["C"], a["ignore_index"], int(a["mean"])], [], [])
        if op == "ce_bwd":
            return (code["ce_backward"], dt, S + O, [a["N"], a["C"], a["ignore_index"]], [], [])
        if op == "fill":
            return (code["fill"], dt, O, [n.outputs[0].size], [a["value"]], [])
        if op in ("add", "sub", "mul", "div"):
            return (code[op], dt, S + O, [a["n"]], [], [])
        if op == "unary":
            return (code["unary"], dt, S + O, [a["n"], _UNARY_CODE[a["kind"]]], [], [])
        if op in ("loss_fwd", "loss_bwd"):
            return (code["loss_forward" if op == "loss_fwd" else "loss_backward"], dt, S + O,
                    [a["n"], _LOSS[a["kind"]]], [a["scale"]], [])
        if op == "scale":
            return (code["scale"], dt, S + O, [a["n"]], [a["alpha"]], [])
        if op in ("copy", "accumulate"):
            return (code[op], dt, S + O, [n.outputs[0].size], [], [])
        if op == "sgd":
            return (code["sgd"], dt, [O[0], S[0], O[1] if len(O) > 1 else -1], [a["n"]], [], list(a["sc"]))
        if op == "adam":
            return (code["adam"], dt, [O[0], S[0], O[1], O[2], O[3] if len(O) > 3 else -1],
                    [a["n"], int(a["decoupled"]), int(a["amsgrad"])], [], list(a["sc"]))
        if op == "conv2d_fwd":
            return (code["conv2d_forward"], dt, S + O, list(a["conv"]) + [_ACT[a["act"]]], [a["slope"]], [])
        if op == "conv2d_bwd":
            it = iter(O)
            return (code["conv2d_backward"], dt, S + [next(it) if h else -1 for h in a["has"]], list(a["conv"]),
                    [], [])
        if op == "broadcast":
            return (code["broadcast"], dt, S + O, list(a["split"]) + [a["kind"]], [], [])
        if op == "reduce_broadcast":
            return (code["reduce_broadcast"], dt, S + O, list(a["split"]), [a["alpha"]], [])
        if op in _POOL_CODE:
            ints = list(a["sizes"] if op.startswith("adaptive") else a["pool"])
            return (code[_POOL_CODE[op]], dt, S + O, ints, [], [])
        # Everything else runs its Python closure under the GIL.
        cid = len(self.callbacks)
        self.callbacks.append(node_closure(n, mem, scalars))
        return (code["callback"], dt, [], [cid], [], [])

    def run(self, inputs, scalars):
        if self.needs_input_views:
            self.mem.bind_inputs(inputs)
        self.prog.run(inputs, scalars, self._callback)
