"""Lowering: recorded Function calls -> kernel nodes, forward then backward then update.

Each op's emitters live with the op in its family module (lamina/ops/<family>.py) and are
found through the op registry (`registry.of(cls).lower` / `.backward`), never by class name.
An op's backward rule (`.backward`, the one eager autodiff runs) is its only backward: it runs
here on `RuleKernels`, which records one node per kernel call instead of computing. The
backward graph is built here the way tensor.run_backward builds it at run time: one reverse
sweep over the recorded (topological) order, starting from a `fill 1` seed on the loss,
visiting only calls whose output received a gradient; a second contribution to a gradient
accumulates in place (GEMM with beta = 1, or an `accumulate` node), and broadcast gradients
are reduced back to the input's shape.

A Function without an emitter is not an error: it becomes a `pycall` node that runs the class's
own forward (and, in the backward sweep, its own backward rule) on arena views, so every op is
capturable; only those nodes need the GIL in the C++ executor.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..ops import registry
from .._dims import bcast_split
from ..ops._params import (ActAttrs, AdaptivePoolAttrs, BiasGradAttrs, BroadcastAttrs, ConvAttrs, CrossEntropyAttrs,
                           ElementwiseAttrs, FillAttrs, GemmAttrs, PointwiseLossAttrs, PoolAttrs, PyCallAttrs,
                           ReduceBroadcastAttrs, ScaleAttrs, UnaryAttrs)
from ..tensor import Tensor, reduce_to_shape
from .ir import Node


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
            op = registry.of(fn.cls)
            if op is None or op.lower is None or not op.lower(self, fn):
                self._pycall_forward(fn)

    def _pycall_forward(self, fn):
        fn.ctx_slot = None
        self.g.add(Node("pycall", fn.inputs(), [fn.out], PyCallAttrs(fn=fn.op, kind="forward", fnode=fn), src=fn.op))

    # ---- backward ---------------------------------------------------------------------
    def backward(self, loss, param_grad_buffers):
        """param_grad_buffers: param Value id -> (grad Value) persistent buffers."""
        self.param_grads = param_grad_buffers
        seed = self.g.value((), loss.dtype, "temp", "dloss")
        self.g.add(Node("fill", [], [seed], FillAttrs(n=seed.size, value=1.0), src="seed"))
        self.grad_of[loss.id] = seed
        self.grad_written.add(seed.id)
        for fn in reversed(self.fnodes):
            dy = self.grad_of.get(fn.out.id)
            if dy is None:
                continue
            wants = [self._wants(fn, i) for i in fn.tensor_pos]
            if not any(wants):
                continue
            op = registry.of(fn.cls)
            if getattr(fn, "lowered_by", None) is None or op is None:
                self._pycall_backward(fn, dy)
            elif op.backward is not None:
                self.run_backward_rule(fn, op.backward, dy)
            else:
                # its forward ran as nodes, so no live ctx exists for Function.backward
                raise NotImplementedError(f"{fn.op}: op {op.name!r} is lowered to graph nodes but registers no "
                                          "backward rule, so the compiler cannot differentiate it")

    def _wants(self, fn, pos):
        v = fn.args[pos]
        need = fn.needs[pos] if pos < len(fn.needs) else False
        return bool(need) and v.id in self.rg

    # ---- what the op emitters call --------------------------------------------------
    @staticmethod
    def op_of(fn):
        return registry.of(fn.cls)

    def emit(self, op, inputs, outputs, attrs=None, inplace=(), src="", effect=False):
        """Append one kernel node to the schedule (effect: it writes outside the graph, keep it)."""
        return self.g.add(Node(op, inputs, outputs, attrs, inplace=inplace, src=src, effect=effect))

    def run_backward_rule(self, fn, rule, dy):
        """Record the op's backward rule (the eager one, ops/_common.py) for one call: `out[p]`
        is where input p's gradient goes (None: not wanted); a result the rule returns that no
        kernel wrote there yet becomes the gradient (written in place, copied or accumulated)."""
        first = len(self.g.nodes)
        k = RuleKernels(self, fn.op)
        out = tuple(GradOut(v) if self.wants(fn, p) else None for p, v in enumerate(fn.args))
        grads = rule(k, fn.saved, dy, out)
        for p, (o, r) in enumerate(zip(out, grads)):
            if o is not None and r is not None and r.id not in k.written:
                self._contribute_value(fn.args[p], r, fn.op, first)

    def _contribute_value(self, v, r, src, first):
        g, acc = self.grad_target(v)
        node = r.producer
        recorded = self.g.nodes[first:]
        own = node is not None and any(n is node for n in recorded) and r.home == "temp" and r.base is None
        if own and not acc and not any(r in n.inputs for n in recorded):
            node.outputs[node.outputs.index(r)] = g       # write the gradient in place of the temp
            if g.producer is None:
                g.producer = node
            return
        if not acc:
            self.copy(r, g, src)
            return
        self.accumulate(r, g, src)

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

    def copy(self, v, out, src):
        """out = v (same size; v may be a view of another shape)."""
        return self.emit("copy", [v], [out], ElementwiseAttrs(n=out.size), src=src)

    def accumulate(self, v, out, src):
        """out += v: a second contribution to a gradient."""
        return self.emit("accumulate", [v], [out], ElementwiseAttrs(n=out.size), inplace=[out], src=src)

    def contribute(self, v, src, make):
        """make(out Value) emits a node writing the gradient into `out` (overwrite)."""
        g, acc = self.grad_target(v)
        if not acc:
            make(g)
            return
        tmp = self.g.value(v.shape, v.dtype, "temp", "grad_part")
        make(tmp)
        self.accumulate(tmp, g, src)

    def contribute_view(self, v, dy, src):
        """Gradient that is dy reshaped (Reshape's rule): a view when possible, else a copy."""
        g = self.grad_of.get(v.id)
        if g is None and v.id not in self.param_grads:
            view = self.g.view(dy, v.shape, "grad")
            self.grad_of[v.id] = view
            self.grad_written.add(view.id)
            return
        flat = self.g.view(dy, v.shape)
        self.contribute(v, src, lambda out: self.copy(flat, out, src))

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
                        PyCallAttrs(fn=fn.op + ".backward", kind="backward", fnode=fn, wanted=tuple(wanted)),
                        src=fn.op))
        for g, tmp in parts:
            self.accumulate(tmp, g, fn.op)


class GradOut:
    """Where a backward rule's kernel writes the gradient of input Value `v` (its gradient
    buffer, resolved when the kernel is recorded: the first contribution overwrites it)."""
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v


class RuleKernels:
    """The kernels object of a shared backward rule, recording nodes (eager: ops._common.EAGER).
    Each call appends one node and returns the Value it wrote: a new temp, or, given
    `out=GradOut`, the input's gradient buffer (whose ids collect in `written`)."""

    def __init__(self, lowering, src):
        self.L, self.src = lowering, src
        self.written = set()    # gradient Value ids a kernel wrote
        self.made = set()       # temp Value ids this rule call made
        self.aliased = False    # dy already handed over as one input's gradient

    def _emit(self, op, ins, outs, attrs, inplace=()):
        self.L.emit(op, ins, outs, attrs, inplace=inplace, src=self.src)

    def _temp(self, shape, dtype, name):
        t = self.L.g.value(shape, dtype, "temp", name)
        self.made.add(t.id)
        return t

    def _node(self, op, ins, attrs, name):
        like = ins[0]
        out = self._temp(like.shape, like.dtype, name)
        self._emit(op, ins, [out], attrs)
        return out

    def _overwrite(self, out, shape, dtype, name, make):
        """A single-output kernel that overwrites: `make(Value)` emits it. Into the gradient when
        given one (a second contribution goes through a temp and `accumulate`), else a temp."""
        if out is None:
            t = self._temp(shape, dtype, name)
            make(t)
            return t
        g, acc = self.L.grad_target(out.v)
        self.written.add(g.id)
        if not acc:
            make(g)
            return g
        t = self._temp(shape, dtype, "grad_part")
        make(t)
        self.L.accumulate(t, g, self.src)
        return g

    # ---- elementwise
    def _binary(self, op, a, b):
        """a op b: equal shapes, or b (for mul either operand) repeated over the other's dims."""
        if a.shape == b.shape:
            return self._node(op, [a, b], ElementwiseAttrs(n=a.size), op)
        if op == "mul" and a.size < b.size:
            a, b = b, a
        split = bcast_split(a.shape, b.shape)
        if split is None:
            raise NotImplementedError(f"{self.src}: no graph node for {a.shape} {op} {b.shape}")
        return self._node("broadcast", [a, b], BroadcastAttrs(*split, kind=op), op)

    def mul(self, a, b):
        return self._binary("mul", a, b)

    def div(self, a, b):
        return self._binary("div", a, b)

    def neg(self, a, out=None):
        return self._overwrite(out, a.shape, a.dtype, "neg",
                               lambda o: self._emit("scale", [a], [o], ScaleAttrs(n=a.size, alpha=-1.0)))

    def reduce_to_shape(self, g, shape, times=None, alpha=1.0, out=None):
        """alpha * g (* times) summed back to an operand's `shape` (eager: the engine's
        reduce_to_shape). For an operand of g's own shape: g itself becomes the gradient (a
        view, no copy; one operand per rule call at most, since a later contribution to it
        writes through), a `scale` node for alpha = -1, a mul (or broadcast mul) by `times`.
        Else one reduce_broadcast node, the product by `times` fused into it."""
        shape = tuple(shape)
        if shape != g.shape:
            split = bcast_split(g.shape, shape)
            if split is None:
                raise NotImplementedError(f"{self.src}: no graph node summing {g.shape} to {shape}")
            return self._overwrite(out, shape, g.dtype, "ds", lambda o: self._emit(
                "reduce_broadcast", [g, times], [o], ReduceBroadcastAttrs(*split, alpha=alpha)))
        if times is not None and alpha == 1.0:
            make = (lambda o: self._emit("mul", [g, times], [o], ElementwiseAttrs(n=g.size))) \
                if times.shape == g.shape else \
                (lambda o: self._emit("broadcast", [g, times], [o],
                                      BroadcastAttrs(*bcast_split(g.shape, times.shape), kind="mul")))
            return self._overwrite(out, shape, g.dtype, "mul", make)
        if times is None and alpha == -1.0:
            return self.neg(g, out)
        if times is not None or alpha != 1.0:
            raise NotImplementedError(f"{self.src}: no graph node for {alpha} * g * times")
        if out is None or g.id in self.made:
            return g            # a result of this rule: run_backward_rule writes it in place
        v = out.v
        if not self.aliased and v.id not in self.L.grad_of and v.id not in self.L.param_grads:
            self.aliased = True
            return self.reshape(g, shape, out)      # dy itself, as a view
        return self._overwrite(out, shape, g.dtype, "grad", lambda o: self.L.copy(g, o, self.src))

    def unary(self, kind, x):
        return self._node("unary", [x], UnaryAttrs(n=x.size, kind=kind), kind)

    def reshape(self, a, shape, out=None):
        """a seen as `shape`; as an input's gradient, a view of a when it has none yet (no copy)."""
        if out is None:
            return self.L.g.view(a, shape)
        self.L.contribute_view(out.v, a, self.src)
        g = self.L.grad_of[out.v.id]
        self.written.add(g.id)
        return g

    # ---- the op kernels (their eager twins: ops/_common.py EagerKernels)
    def gemm(self, a, b, trans_a, trans_b, out=None):
        M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
        N = b.shape[0] if trans_b else b.shape[1]
        acc = False
        if out is None:
            y = self._temp((M, N), a.dtype, "gemm")
        else:
            y, acc = self.L.grad_target(out.v)
            self.written.add(y.id)
        # a second contribution accumulates in the GEMM itself: beta = 1
        self._emit("gemm", [a, b, None], [y], GemmAttrs(trans_a=trans_a, trans_b=trans_b, M=M, N=N, K=K,
                                                        beta=1.0 if acc else 0.0), inplace=[y] if acc else ())
        return y

    def gemm_batched(self, a, b, trans_a, trans_b, out=None):
        """One gemm node over a (B, ., .) batch; a second contribution accumulates (beta = 1)."""
        B, (M, K) = a.shape[0], ((a.shape[2], a.shape[1]) if trans_a else a.shape[1:])
        N = b.shape[1] if trans_b else b.shape[2]
        acc = False
        if out is None:
            y = self._temp((B, M, N), a.dtype, "gemm")
        else:
            y, acc = self.L.grad_target(out.v)
            self.written.add(y.id)
        self._emit("gemm", [a, b, None], [y], GemmAttrs(trans_a=trans_a, trans_b=trans_b, M=M, N=N, K=K, batch=B,
                                                        beta=1.0 if acc else 0.0), inplace=[y] if acc else ())
        return y

    def act_bwd(self, kind, y, dy):
        dz = self._temp(dy.shape, dy.dtype, "dz")
        self._emit("act_bwd", [y, dy], [dz], ActAttrs(n=dy.size, kind=kind))
        return dz

    def activation_bwd(self, kind, src, dy, negative_slope, out=None):
        return self._overwrite(out, dy.shape, dy.dtype, "dx", lambda o: self._emit(
            "act_bwd", [src, dy], [o], ActAttrs(n=dy.size, kind=kind, negative_slope=float(negative_slope))))

    def bias_grad_rows(self, dy, out=None):
        return self._overwrite(out, dy.shape[1:], dy.dtype, "db", lambda o: self._emit(
            "bias_grad_rows", [dy], [o], BiasGradAttrs(N=dy.shape[0], F=dy.shape[1])))

    def _overwrite_all(self, op, ins, attrs, grads):
        """One node `op` writing the wanted gradients (`grads`: GradOut or None each); it
        overwrites, so a second contribution to one of them goes to a temp accumulated after.
        `attrs(has)` makes the node's record from which outputs it writes."""
        outs, parts, res = [], [], []
        for o in grads:
            if o is None:
                res.append(None)
                continue
            g, acc = self.L.grad_target(o.v)
            self.written.add(g.id)
            res.append(g)
            if acc:
                t = self._temp(o.v.shape, o.v.dtype, "grad_part")
                parts.append((g, t))
                g = t
            outs.append(g)
        self._emit(op, ins, outs, attrs(tuple(o is not None for o in grads)))
        for g, t in parts:
            self.L.accumulate(t, g, self.src)
        return tuple(res)

    def conv2d_bwd(self, x, w, dy, conv, dx=None, dw=None, db=None):
        return self._overwrite_all("conv2d_bwd", [x, w, dy], lambda has: ConvAttrs(params=conv, has=has),
                                   (dx, dw, db))

    def batch_norm_bwd(self, x, dy, y, weight, mean, invstd, bn, dx=None, dw=None, db=None):
        return self._overwrite_all("bn_bwd", [x, dy, y, weight, mean, invstd],
                                   lambda has: dataclasses.replace(bn, has=has), (dx, dw, db))

    def relu_max_pool_bwd(self, dy, code, conv):
        dz = self._temp((conv.N, conv.K, conv.OH, conv.OW), dy.dtype, "dz")
        self._emit("conv_block_bwd", [dy, code], [dz], ConvAttrs(params=conv))
        return dz

    def max_pool_bwd(self, dy, idx, pool, out=None):
        return self._overwrite(out, (pool.N, pool.C, pool.H, pool.W), dy.dtype, "dx", lambda o: self._emit(
            "max_pool_bwd", [dy, idx], [o], PoolAttrs(params=pool)))

    def avg_pool_bwd(self, dy, pool, count_include_pad, divisor_override, out=None):
        return self._overwrite(out, (pool.N, pool.C, pool.H, pool.W), dy.dtype, "dx", lambda o: self._emit(
            "avg_pool_bwd", [dy], [o], PoolAttrs(params=pool, count_include_pad=bool(count_include_pad),
                                                 divisor_override=int(divisor_override))))

    def adaptive_avg_pool_bwd(self, dy, x_shape, out=None):
        (N, C, H, W), (OH, OW) = x_shape, dy.shape[2:]
        return self._overwrite(out, x_shape, dy.dtype, "dx", lambda o: self._emit(
            "adaptive_avg_pool_bwd", [dy], [o], AdaptivePoolAttrs(N=N, C=C, H=H, W=W, OH=OH, OW=OW)))

    def ce_bwd(self, probs, target, dy, scale, ignore_index, out=None):
        N, C = probs.shape
        return self._overwrite(out, probs.shape, probs.dtype, "dlogits", lambda o: self._emit(
            "ce_bwd", [probs, target, dy, scale], [o], CrossEntropyAttrs(N=N, C=C, ignore_index=int(ignore_index))))

    def loss_bwd(self, kind, x, t, dy, scale, out=None):
        return self._overwrite(out, x.shape, x.dtype, "dx", lambda o: self._emit(
            "loss_bwd", [x, t, dy], [o], PointwiseLossAttrs(n=x.size, kind=kind, scale=scale)))


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


__all__ = ["Lowering", "GradOut", "RuleKernels", "run_pycall_forward", "run_pycall_backward", "Tensor"]
