"""Graph passes, each a small unit with its own test: fusion, dead-node removal, memory plan.

  fold_conv_bn            at eval, a conv whose only reader is a batch norm using its running
                          statistics becomes one conv with folded weights (nn.utils.fusion), when
                          no gradient is wanted for the pair's weights; the fold is redone when
                          those weights or statistics change in place (FoldGuard).
  fuse_activations        an op with an activation epilogue (Linear: the GEMM epilogue; conv:
                          in place on its output) whose only reader is a relu/sigmoid/tanh
                          Activation takes that activation in.
  find_softmax_ce         reports softmax + cross-entropy pairs: eager already calls the fused
                          CrossEntropy kernel, so the pass finds and keeps it; a separate
                          log_softmax feeding nll_loss is reported as not fused.
  fuse_conv_relu_pool     conv + relu + 2x2 max pool (and the backward pair) become the fused
                          conv block nodes, when the conv output is read by nothing else.
  remove_dead_nodes       drops kernel nodes whose results nobody reads (no side effect).
  reuse_inplace           an elementwise node (act fwd/bwd, add, sub, mul, scale) writes over
                          an input whose buffer dies there (relu' masks dy in place).
  plan_memory             liveness over the schedule; each intermediate gets a byte offset in
                          one arena (greedy by size), reusing bytes whose last reader has run.
"""
from __future__ import annotations

import numpy as np

from ..nn.utils.fusion import fold_conv_bn_arrays
from ..ops import registry
from ..ops._params import ConvAttrs
from ..ops.activation import Activation, Softmax
from ..ops.conv import Conv1dFn, Conv2dFn
from ..ops.loss import CrossEntropy
from ..ops.norm import BatchNormFn
from .ir import Node

_ALIGN = 64
_FUSABLE = ("relu", "sigmoid", "tanh")


# ---------------------------------------------------------------- Function-level passes
def _readers(fnodes):
    readers = {}
    for fn in fnodes:
        for v in fn.inputs():
            readers.setdefault(v.id, []).append(fn)
    return readers


def _epilogue(fn):
    op = registry.of(fn.cls)
    return None if op is None else op.traits.get("epilogue")


class ConvBNFold:
    """One folded conv + batch-norm pair: the source arrays it was folded from (the live
    parameter and buffer arrays, by reference), a copy of their values at fold time, and the
    folded weight and bias arrays the plan's conv reads (refilled in place by `refold`)."""

    __slots__ = ("sources", "snapshot", "eps", "weight", "bias", "where")

    def __init__(self, sources, eps, weight, bias, where):
        self.sources = sources        # dict: conv_w conv_b bn_rm bn_rv bn_w bn_b -> array or None
        self.snapshot = {k: None if a is None else a.copy() for k, a in sources.items()}
        self.eps, self.weight, self.bias, self.where = eps, weight, bias, where

    def changed(self):
        return any(a is not None and not np.array_equal(a, self.snapshot[k]) for k, a in self.sources.items())

    def refold(self):
        s = self.sources
        fold_conv_bn_arrays(s["conv_w"], s["conv_b"], s["bn_rm"], s["bn_rv"], self.eps, s["bn_w"], s["bn_b"],
                            out_w=self.weight, out_b=self.bias)
        for k, a in s.items():
            if a is not None:
                self.snapshot[k][...] = a


class FoldGuard:
    """The folds of one plan. `refresh()` (before every run) re-folds the pairs whose weights or
    running statistics changed in place -- load_state_dict, an optimizer step, a `.data[...]`
    write -- which the identity guards (guards.py) do not see; a replaced array is seen by
    those and re-traces. Comparing the values costs one read of the pair's weights."""

    def __init__(self, folds=()):
        self.folds = list(folds)
        self.refolds = 0

    def refresh(self):
        for f in self.folds:
            if f.changed():
                f.refold()
                self.refolds += 1

    def __len__(self):
        return len(self.folds)


def _fold_array(v):
    return None if v is None else v.array


def fold_conv_bn(graph, fnodes, keep_ids=(), trainable_ids=()):
    """Fold each eval-mode BatchNorm (running statistics) into the Conv1d/Conv2d producing its
    input, when the conv's output has no other reader and is not kept, and none of the pair's
    weights is in `trainable_ids` (their gradients would need the unfolded graph; the input's
    gradient is the same through the folded conv). The conv then reads new const Values holding
    the folded weight and bias and writes the batch norm's output; a relu the batch norm had
    taken in moves to the conv's epilogue. Returns (new fnodes, notes, FoldGuard).

    The folded conv equals the pair up to float rounding (W * scale is rounded once, before
    the sum, instead of the sum being scaled): eager and compiled eval outputs agree to float32
    tolerance, not bit for bit.
    """
    readers = _readers(fnodes)
    producer = {fn.out.id: fn for fn in fnodes}
    dropped, notes, folds = set(), [], []
    for bn in fnodes:
        if bn.cls is not BatchNormFn or bn.args[6] or 3 not in bn.tensor_pos or 4 not in bn.tensor_pos:
            continue
        x = bn.args[0]
        conv = producer.get(x.id)
        if conv is None or conv.cls not in (Conv1dFn, Conv2dFn) or getattr(conv, "act", "identity") != "identity":
            continue
        if len(readers.get(x.id, ())) != 1 or x.id in keep_ids:
            continue
        w, b = conv.args[1], (conv.args[2] if 2 in conv.tensor_pos else None)
        bw = bn.args[1] if 1 in bn.tensor_pos else None
        bb = bn.args[2] if 2 in bn.tensor_pos else None
        pair = [v for v in (w, b, bw, bb, bn.args[3], bn.args[4]) if v is not None]
        if any(v.id in trainable_ids or v.array is None for v in pair):
            continue
        sources = {"conv_w": w.array, "conv_b": _fold_array(b), "bn_rm": bn.args[3].array,
                   "bn_rv": bn.args[4].array, "bn_w": _fold_array(bw), "bn_b": _fold_array(bb)}
        eps = float(bn.args[8])
        fw, fb = fold_conv_bn_arrays(sources["conv_w"], sources["conv_b"], sources["bn_rm"], sources["bn_rv"],
                                     eps, sources["bn_w"], sources["bn_b"])
        fw, fb = np.ascontiguousarray(fw), np.ascontiguousarray(fb)
        vw = graph.value(fw.shape, fw.dtype, "const", "folded_weight", array=fw)
        vb = graph.value(fb.shape, fb.dtype, "const", "folded_bias", array=fb)
        where = f"{bn.op} (call #{bn.index}) into {conv.op} (call #{conv.index})"
        folds.append(ConvBNFold(sources, eps, fw, fb, where))
        conv.args = list(conv.args)
        conv.args[1], conv.args[2] = vw, vb
        conv.tensor_pos = sorted(set(conv.tensor_pos) | {2})
        needs = list(conv.needs) + [False] * (len(conv.args) - len(conv.needs))
        needs[1] = needs[2] = False
        conv.needs = tuple(needs)
        conv.out = bn.out
        if len(bn.args) > 9 and bn.args[9]:
            conv.act = "relu"        # the batch-norm kernel's relu, now the conv's epilogue
        dropped.add(id(bn))
        notes.append(f"folded {where}: one conv with folded weights (eval, running statistics)")
    return [fn for fn in fnodes if id(fn) not in dropped], notes, FoldGuard(folds)


def fuse_activations(fnodes, keep_ids=()):
    """Fold an Activation(relu|sigmoid|tanh) into the producer of its input when the producer's
    op has an activation epilogue (its `epilogue` trait: Linear's GEMM, the conv instruction),
    none set yet, and the Activation is that input's only reader; the producer then writes
    the activation's output. Returns (new fnodes, notes)."""
    readers = _readers(fnodes)
    producer = {fn.out.id: fn for fn in fnodes}
    dropped, notes = set(), []
    for fn in fnodes:
        if fn.cls is not Activation or fn.args[1] not in _FUSABLE:
            continue
        x = fn.args[0]
        prod = producer.get(x.id)
        epilogue = None if prod is None else _epilogue(prod)
        if epilogue is None:
            continue
        get_act, set_act, where = epilogue[:3]
        # An optional 4th entry lists the activations the op can fold (batch norm: relu only).
        if get_act(prod) != "identity" or fn.args[1] not in (epilogue[3] if len(epilogue) > 3 else _FUSABLE):
            continue
        if len(readers.get(x.id, ())) != 1 or x.id in keep_ids:
            continue
        set_act(prod, fn.args[1])
        prod.out = fn.out
        dropped.add(id(fn))
        notes.append(f"fused {fn.args[1]} into {where} of {prod.op} (call #{prod.index})")
    return [fn for fn in fnodes if id(fn) not in dropped], notes


def find_softmax_ce(fnodes):
    """Softmax + cross-entropy: detect the fused CrossEntropy kernel (kept) and unfused pairs."""
    notes = []
    readers = _readers(fnodes)
    for fn in fnodes:
        if fn.cls is CrossEntropy:
            notes.append(f"softmax+cross-entropy: one fused kernel already (CrossEntropy, call #{fn.index})")
        elif fn.cls is Softmax and fn.args[2]:
            rs = [r.op for r in readers.get(fn.out.id, ())]
            notes.append(f"log_softmax (call #{fn.index}) read by {rs or 'nothing'}: not fused; "
                         "use F.cross_entropy for the fused kernel")
    return notes


# ---------------------------------------------------------------- kernel-level passes
def _pool_2x2(pool, conv):
    """The 2x2 stride-2 max pool (no padding, dilation 1, floor) over the whole conv output."""
    return (pool.KH, pool.KW, pool.stride_h, pool.stride_w, pool.pad_h, pool.pad_w, pool.dil_h, pool.dil_w,
            bool(pool.ceil_mode)) == (2, 2, 2, 2, 0, 0, 1, 1, False) and \
        (pool.N, pool.C, pool.H, pool.W) == (conv.N, conv.K, conv.OH, conv.OW)


def _root_readers(graph):
    readers = {}
    for n in graph.nodes:
        for v in n.reads():
            readers.setdefault(v.root().id, []).append(n)
    return readers


def fuse_conv_relu_pool(graph):
    """conv2d_fwd(act=relu) -> max_pool_fwd(2x2, stride 2) becomes one conv_block_fwd node
    (csrc/conv_block.h) writing the pooled output and a uint8 window code, when the conv output
    has no reader but the pool and relu's backward; the backward pair max_pool_bwd -> act_bwd
    (relu) becomes one conv_block_bwd node writing the conv's dy. The fused kernels round
    exactly as the pair they replace. Returns notes, one per fused block."""
    readers = _root_readers(graph)
    keep = {v.root().id for v in graph.outputs}
    notes = []
    for c in list(graph.nodes):
        if c.op != "conv2d_fwd" or c.attrs.act != "relu":
            continue
        z = c.outputs[0].root()
        if z.id in keep or z.base is not None:
            continue
        rs = readers.get(z.id, [])
        pools = [n for n in rs if n.op == "max_pool_fwd"]
        bwds = [n for n in rs if n.op == "act_bwd"]
        conv = c.attrs.params
        if len(pools) != 1 or len(pools) + len(bwds) != len(rs) or len(bwds) > 1 or \
                not _pool_2x2(pools[0].attrs.params, conv):
            continue
        pf = pools[0]
        argmax = pf.outputs[1].root()
        pb = None
        if not bwds and readers.get(argmax.id):
            continue                 # the pool's backward without relu's: leave the pair alone
        if bwds:
            ab = bwds[0]
            if ab.attrs.kind != "relu" or ab.inputs[0].root() is not z:
                continue
            ar = readers.get(argmax.id, [])
            if len(ar) != 1 or ar[0].op != "max_pool_bwd" or argmax.id in keep:
                continue
            pb = ar[0]
            gmid = pb.outputs[0].root()
            if readers.get(gmid.id, []) != [ab] or ab.inputs[1].root() is not gmid or gmid.id in keep or \
                    ab.outputs[0].root() is gmid:
                continue
        y = pf.outputs[0]
        code = graph.value(y.shape, np.uint8, "temp", "pool_code")
        src = f"{c.src}+relu+{pf.src}"
        _replace(graph, c, "conv_block_fwd", list(c.inputs), [y, code], ConvAttrs(params=conv), src)
        graph.nodes.remove(pf)
        if pb is not None:
            _replace(graph, pb, "conv_block_bwd", [pb.inputs[0], code], [ab.outputs[0]], ConvAttrs(params=conv), src)
            graph.nodes.remove(ab)
        notes.append(f"fused conv + relu + 2x2 max pool into one conv block ({c.src}, "
                     f"{conv.C}->{conv.K} {conv.H}x{conv.W}{', and its backward' if pb is not None else ''})")
    return notes


def _replace(graph, old, op, inputs, outputs, attrs, src):
    """A new node in old's place in the schedule; its outputs name it their producer."""
    n = Node(op, inputs, outputs, attrs, src=src)
    for o in outputs:
        o.producer = n
    graph.nodes[graph.nodes.index(old)] = n
    return n


def remove_dead_nodes(graph):
    """Remove nodes none of whose outputs is read later or kept; returns how many went."""
    keep_roots = {v.root().id for v in graph.outputs}
    needed = set(keep_roots)
    live = []
    for n in reversed(graph.nodes):
        outs = {o.root().id for o in n.outputs}
        persistent = any(o.root().home in ("param", "grad", "state") for o in n.outputs)
        if n.effect or persistent or outs & needed:
            live.append(n)
            for v in n.reads():
                needed.add(v.root().id)
    live.reverse()
    removed = len(graph.nodes) - len(live)
    graph.nodes = live
    return removed


# Elementwise nodes and the inputs whose buffer their output may take over.
_INPLACE_OK = {"act_fwd": (0,), "act_bwd": (1,), "add": (0, 1), "sub": (0, 1), "mul": (0, 1), "div": (0, 1),
               "scale": (0,), "unary": (0,), "broadcast": (0,)}


def reuse_inplace(graph):
    """An elementwise node whose input buffer dies at that node writes its output over it (the
    output becomes a view of the input's root): e.g. relu' masks dy in place. Returns how many.

    Safe because each output element depends only on the same element of its inputs, and the
    input's root has no reader after this node (the same size and dtype, not a graph output).
    """
    last = {}
    for i, n in enumerate(graph.nodes):
        for v in list(n.outputs) + n.reads():
            last[v.root().id] = i
    for v in graph.outputs:
        last[v.root().id] = len(graph.nodes)
    count = 0
    for i, n in enumerate(graph.nodes):
        pos = _INPLACE_OK.get(n.op)
        if not pos or len(n.outputs) != 1:
            continue
        o = n.outputs[0]
        if o.base is not None or o.home != "temp" or n.inplace:
            continue
        for p in pos:
            r = n.inputs[p].root()
            if r.home == "temp" and last.get(r.id) == i and r.nbytes == o.nbytes and r.dtype == o.dtype \
                    and n.inputs[p].nbytes == o.nbytes:
                o.base = n.inputs[p]
                last[r.id] = last.get(o.id, i)
                count += 1
                break
    return count


def plan_memory(graph):
    """Give every temp root Value an arena offset; returns the arena size in bytes.

    A value is live from the node that first writes it to the last node that reads it (graph
    outputs: to the end), both inclusive, so a node's outputs never overlap its inputs.
    Placement is greedy by size: the largest buffers are placed first, each at the lowest
    offset that overlaps no already-placed buffer whose lifetime intersects its own. Placing
    big, long-lived activations first avoids the holes that a schedule-order best fit leaves
    between them (LeNet-5 at batch 256: 16.3 -> ~13 MB, near the sum of live bytes).
    """
    first, last = {}, {}
    roots = {}
    end = len(graph.nodes)
    for i, n in enumerate(graph.nodes):
        for v in list(n.outputs) + n.reads():
            r = v.root()
            if r.home == "temp":
                roots[r.id] = r
                first.setdefault(r.id, i)
                last[r.id] = i
    for v in graph.outputs:
        r = v.root()
        if r.home == "temp":
            last[r.id] = end
    order = sorted(roots, key=lambda vid: (-_aligned(max(roots[vid].nbytes, 1)), first[vid], vid))
    placed = []        # (offset, size, first, last)
    top = 0
    for vid in order:
        size = _aligned(max(roots[vid].nbytes, 1))
        f, l = first[vid], last[vid]
        busy = sorted((o, o + sz) for o, sz, f2, l2 in placed if f2 <= l and f <= l2)
        off = 0
        for lo, hi in busy:
            if off + size <= lo:
                break
            off = max(off, hi)
        placed.append((off, size, f, l))
        roots[vid].offset = off
        top = max(top, off + size)
    graph.arena_bytes = top
    return top


def _aligned(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def live_bytes_peak(graph):
    """The most bytes of temps live at any one node: the lower bound for any arena plan."""
    spans = {}
    for i, n in enumerate(graph.nodes):
        for v in list(n.outputs) + n.reads():
            r = v.root()
            if r.home == "temp":
                spans[r.id] = (spans.get(r.id, (i, i))[0], i)
    sizes = {v.id: _aligned(max(v.nbytes, 1)) for v in graph.values}
    for v in graph.outputs:
        r = v.root()
        if r.id in spans:
            spans[r.id] = (spans[r.id][0], len(graph.nodes))
    return max((sum(sizes[vid] for vid, (a, b) in spans.items() if a <= i <= b)
                for i in range(len(graph.nodes) + 1)), default=0)


def check_plan(graph):
    """Assert no two temps that are live at the same time overlap (used by the tests)."""
    spans = {}
    for i, n in enumerate(graph.nodes):
        for v in list(n.outputs) + n.reads():
            r = v.root()
            if r.home == "temp":
                a, b = spans.get(r.id, (i, i))
                spans[r.id] = (min(a, i), max(b, i))
    for v in graph.outputs:
        r = v.root()
        if r.id in spans:
            spans[r.id] = (spans[r.id][0], len(graph.nodes))
    vals = {v.id: v for v in graph.values}
    items = list(spans.items())
    for x in range(len(items)):
        ia, (s0, e0) = items[x]
        A = vals[ia]
        for y in range(x + 1, len(items)):
            ib, (s1, e1) = items[y]
            B = vals[ib]
            if s0 <= e1 and s1 <= e0:   # lifetimes intersect
                if A.offset < B.offset + B.nbytes and B.offset < A.offset + A.nbytes:
                    raise AssertionError(f"arena overlap: {A.describe()} and {B.describe()}")
    return True
