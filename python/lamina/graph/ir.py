"""The graph IR: Values (buffers with shape, dtype and a home) and Nodes (one kernel call each).

A Value lives in one of these homes:
  input   a step argument (x, y), bound fresh on every call (zero-copy)
  param   a model parameter's array (persistent, updated in place by the optimizer nodes)
  grad    a parameter's gradient buffer (persistent; written/accumulated in place)
  state   optimizer state (momentum, exp_avg, ...) owned by the optimizer
  const   an array captured at trace time (Python scalars, constant index arrays)
  temp    an intermediate: the memory plan gives it an offset in the one arena
A Value may be a view of another (`base`): reshapes cost nothing and share the base's bytes.
"""
from __future__ import annotations

import dataclasses

import numpy as np

# Convolution and pooling sizes travel in graph nodes as these named records (defined beside
# the ops that emit them, so the ops need nothing from the graph package).
from ..ops._params import ConvParams, PoolParams, PyCallAttrs  # noqa: F401

_HOMES = ("input", "param", "grad", "state", "const", "temp")


class Value:
    __slots__ = ("id", "shape", "dtype", "home", "name", "base", "offset", "array", "producer")

    def __init__(self, vid, shape, dtype, home, name="", base=None, array=None):
        assert home in _HOMES, home
        self.id = vid
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.home = home
        self.name = name
        self.base = base          # Value this one is a view (reshape) of, or None
        self.offset = None        # byte offset in the arena (temps, after planning)
        self.array = array        # the bound array for param/grad/state/const homes
        self.producer = None

    @property
    def nbytes(self):
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def root(self):
        v = self
        while v.base is not None:
            v = v.base
        return v

    def short(self):
        return f"%{self.id}"

    def describe(self):
        shape = "x".join(str(s) for s in self.shape) or "scalar"
        r = self.root()
        where = r.home if r.home != "temp" else (f"@{r.offset}" if r.offset is not None else "temp")
        if self.base is not None:
            where = f"view of %{r.id} {where}"
        label = f" {self.name}" if self.name else ""
        return f"%{self.id}{label}:{self.dtype.name}[{shape}] {where}"


class Node:
    """One kernel call: `op` with input Values, output Values and constant attributes.

    `inplace` lists outputs that the node also reads (accumulation `+=`, optimizer updates):
    they are read before they are written, which matters to the memory plan.
    `src` names the traced Function the node came from (for printing and error messages).
    """
    __slots__ = ("op", "inputs", "outputs", "attrs", "inplace", "src", "effect")

    def __init__(self, op, inputs, outputs, attrs=None, inplace=(), src="", effect=False):
        self.op = op
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        # the node kind's record (ops/_params.py: GemmAttrs, ...), made at the emit site
        self.attrs = attrs if attrs is not None else {}
        self.inplace = tuple(inplace)
        self.src = src
        self.effect = effect      # has a side effect outside the graph (never removed)

    def reads(self):
        return [v for v in self.inputs if v is not None] + [v for v in self.inplace]

    def __repr__(self):
        return f"Node({self.op})"

    def line(self):
        attrs = ", ".join(f"{k}={_fmt(v)}" for k, v in _attr_items(self.attrs))
        ins = ", ".join(v.describe() if v is not None else "None" for v in self.inputs)
        outs = ", ".join(v.describe() for v in self.outputs)
        acc = " (+=)" if self.inplace else ""
        src = f"  # {self.src}" if self.src else ""
        return f"{self.op}({ins}{'; ' + attrs if attrs else ''}) -> {outs}{acc}{src}"


def _attr_items(attrs):
    if isinstance(attrs, dict):
        return [(k, v) for k, v in attrs.items() if not k.startswith("_")]
    if isinstance(attrs, PyCallAttrs):
        return [("fn", attrs.fn)]
    return [(f.name, getattr(attrs, f.name)) for f in dataclasses.fields(attrs)]


def _fmt(v):
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, np.ndarray):
        return f"array{v.shape}"
    return repr(v) if isinstance(v, str) else str(v)


class Graph:
    """The planned schedule: nodes in execution order over Values, plus the arena size.

    `str(graph)` prints one line per node (op, shapes, dtypes, arena offsets);
    `graph.to_dot()` returns Graphviz DOT text.
    """

    def __init__(self):
        self.nodes = []
        self.values = []
        self.inputs = []          # Values bound per call (x, y)
        self.outputs = []         # Values the caller reads back (loss, logits)
        self.arena_bytes = 0
        self.notes = []           # what the passes did, one line each

    def value(self, shape, dtype, home, name="", base=None, array=None):
        v = Value(len(self.values), shape, dtype, home, name, base, array)
        self.values.append(v)
        return v

    def view(self, base, shape, name=""):
        return self.value(shape, base.dtype, base.home if base.home != "temp" else "temp", name, base=base)

    def add(self, node):
        for o in node.outputs:
            if o.producer is None:
                o.producer = node
        self.nodes.append(node)
        return node

    @property
    def callbacks(self):
        """Names of the nodes that run as Python callbacks (ops with no C++ instruction; the
        native executor takes the GIL back for each), in schedule order."""
        return [n.attrs["fn"] for n in self.nodes if n.op == "pycall"]

    def __str__(self):
        cbs = self.callbacks
        lines = [f"graph: {len(self.nodes)} nodes, arena {self.arena_bytes} bytes, "
                 f"{len(cbs)} Python callback(s){': ' + ', '.join(cbs) if cbs else ''}"]
        for i, n in enumerate(self.nodes):
            mark = "  [callback]" if n.op == "pycall" else ""
            lines.append(f"  {i:3d}  {n.line()}{mark}")
        if self.notes:
            lines.append("passes:")
            lines.extend(f"  {s}" for s in self.notes)
        return "\n".join(lines)

    __repr__ = __str__

    def to_dot(self):
        """Graphviz DOT text: one box per node, one ellipse per value, edges for reads/writes."""
        out = ["digraph lamina {", "  rankdir=TB;", '  node [fontname="monospace", fontsize=10];']
        used = set()
        for i, n in enumerate(self.nodes):
            label = f"{i}: {n.op}" + (f"\\n{n.src}" if n.src else "")
            out.append(f'  n{i} [shape=box, label="{label}"];')
            for v in n.reads():
                used.add(v.id)
                out.append(f"  v{v.id} -> n{i};")
            for v in n.outputs:
                used.add(v.id)
                out.append(f"  n{i} -> v{v.id};")
        for v in self.values:
            if v.id in used:
                label = v.describe().replace('"', "'")
                out.append(f'  v{v.id} [shape=ellipse, label="{label}"];')
        out.append("}")
        return "\n".join(out) + "\n"
