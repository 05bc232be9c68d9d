"""Graph passes, each a small unit with its own test: fusion, dead-node removal, memory plan.

  fuse_linear_activation  Linear (identity) whose only reader is a relu/sigmoid/tanh Activation
                          becomes one Linear with the activation in the GEMM epilogue.
  find_softmax_ce         reports softmax + cross-entropy pairs: eager already calls the fused
                          CrossEntropy kernel, so the pass finds and keeps it; a separate
                          log_softmax feeding nll_loss is reported as not fused.
  remove_dead_nodes       drops kernel nodes whose results nobody reads (no side effect).
  plan_memory             liveness over the schedule; each intermediate gets a byte offset in
                          one arena, and a buffer is reused once its last reader has run.
"""
from __future__ import annotations

_ALIGN = 64
_FUSABLE = ("relu", "sigmoid", "tanh")


# ---------------------------------------------------------------- Function-level passes
def _readers(fnodes):
    readers = {}
    for fn in fnodes:
        for v in fn.inputs():
            readers.setdefault(v.id, []).append(fn)
    return readers


def fuse_linear_activation(fnodes, keep_ids=()):
    """Fold Activation(relu|sigmoid|tanh) into the Linear producing its input.

    Returns (new fnodes, notes). `keep_ids`: Value ids the caller reads (never fused away).
    """
    readers = _readers(fnodes)
    producer = {fn.out.id: fn for fn in fnodes}
    dropped, notes = set(), []
    for fn in fnodes:
        if fn.op != "Activation" or fn.args[1] not in _FUSABLE:
            continue
        x = fn.args[0]
        lin = producer.get(x.id)
        if lin is None or lin.op != "Linear" or lin.args[3] != "identity":
            continue
        if len(readers.get(x.id, ())) != 1 or x.id in keep_ids:
            continue
        # The Linear now writes the activation's output directly.
        lin.args = list(lin.args)
        lin.args[3] = fn.args[1]
        lin.out = fn.out
        lin.needs = lin.needs
        dropped.add(id(fn))
        notes.append(f"fused {fn.args[1]} into the GEMM epilogue of Linear (call #{lin.index})")
    return [fn for fn in fnodes if id(fn) not in dropped], notes


def find_softmax_ce(fnodes):
    """Softmax + cross-entropy: detect the fused CrossEntropy kernel (kept) and unfused pairs."""
    notes = []
    readers = _readers(fnodes)
    for fn in fnodes:
        if fn.op == "CrossEntropy":
            notes.append(f"softmax+cross-entropy: one fused kernel already (CrossEntropy, call #{fn.index})")
        elif fn.op == "Softmax" and fn.args[2]:
            rs = [r.op for r in readers.get(fn.out.id, ())]
            notes.append(f"log_softmax (call #{fn.index}) read by {rs or 'nothing'}: not fused; "
                         "use F.cross_entropy for the fused kernel")
    return notes


# ---------------------------------------------------------------- kernel-level passes
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


def plan_memory(graph):
    """Give every temp root Value an arena offset; returns the arena size in bytes.

    A value is live from the node that first writes it to the last node that reads it (graph
    outputs: to the end). Before a node runs its new outputs are placed (best fit among free
    gaps, else at the top); after it runs, values whose last reader it was are freed. Outputs
    are placed before inputs are freed, so no kernel ever sees its output overlap an input.
    """
    first, last = {}, {}
    roots = {}
    end = len(graph.nodes)
    for i, n in enumerate(graph.nodes):
        for v in n.outputs:
            r = v.root()
            if r.home == "temp":
                roots[r.id] = r
                first.setdefault(r.id, i)
                last[r.id] = max(last.get(r.id, i), i)
        for v in n.reads():
            r = v.root()
            if r.home == "temp":
                roots[r.id] = r
                first.setdefault(r.id, i)
                last[r.id] = i
    for v in graph.outputs:
        r = v.root()
        if r.home == "temp":
            last[r.id] = end
    starts = {}
    for vid, i in first.items():
        starts.setdefault(i, []).append(vid)
    ends = {}
    for vid, i in last.items():
        ends.setdefault(i, []).append(vid)
    live = {}          # vid -> (offset, size)
    top = 0
    for i in range(end + 1):
        for vid in starts.get(i, ()):
            size = _aligned(max(roots[vid].nbytes, 1))
            off = _best_fit(live, size, top)
            live[vid] = (off, size)
            roots[vid].offset = off
            top = max(top, off + size)
        for vid in ends.get(i, ()):
            live.pop(vid, None)
    graph.arena_bytes = top
    return top


def _aligned(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _best_fit(live, size, top):
    blocks = sorted(live.values())
    best, best_gap = None, None
    cur = 0
    for off, sz in blocks:
        gap = off - cur
        if gap >= size and (best_gap is None or gap < best_gap):
            best, best_gap = cur, gap
        cur = max(cur, off + sz)
    if best is not None:
        return best
    return cur


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
