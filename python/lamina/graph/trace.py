"""Tracing: run one real eager step while recording every `Function.apply` call.

A `Tracer` is the current thread's recorder (tensor._grad_mode.tracer, thread-local like grad
mode): `Function.apply` hands it each call, which appends an `FNode(cls, args, kwargs, ctx,
out)` in execution order -- already a topological order. Nothing is patched, so other threads
keep running eagerly and each thread may trace its own model at the same time. Tensor arguments become Values: the step inputs, model parameters (leaves that require
grad), results of earlier recorded calls, or constants captured by value (Python scalars turned
into tensors, constant arrays). Reading a traced tensor's value in Python (`.item()`, `bool()`,
`float()`, `.tolist()`, `.numpy()`) raises `CaptureError` naming the op that produced it and
the line that read it: the step's control flow would depend on the data, which one recorded
schedule cannot follow.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..tensor import Tensor, _grad_mode

_LAMINA_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_line():
    """'file:line' of the innermost caller outside the lamina package (the user's code)."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_LAMINA_DIR + os.sep):
        f = f.f_back
    return "<unknown>" if f is None else f"{f.f_code.co_filename}:{f.f_lineno}"


class CaptureError(RuntimeError):
    """Something in the step cannot be captured into a static graph (names the op)."""


class FNode:
    """One recorded Function call. `args` holds Values for tensor/array arguments, raw objects
    otherwise; `tensor_pos` lists which positions hold Values."""
    def __init__(self, cls, args, kwargs, ctx, out, tensor_pos, needs, index):
        self.cls, self.args, self.kwargs, self.ctx, self.out = cls, args, kwargs, ctx, out
        self.tensor_pos, self.needs, self.index = tensor_pos, needs, index

    @property
    def op(self):
        return self.cls.__name__

    def inputs(self):
        return [self.args[i] for i in self.tensor_pos]


class Tracer:
    """Context manager recording Function calls into `self.fnodes` over `graph` Values."""


    def __init__(self, graph, inputs):
        self.graph = graph
        self.fnodes = []
        self.by_tensor = {}       # id(Tensor) -> Value
        self.by_array = {}        # id(ndarray) -> Value (the inputs' arrays, for raw-array args)
        self.keep = []            # keeps traced objects alive so their ids stay unique
        self.params = {}          # id(param Tensor) -> Value
        self.consts = []          # leaf Tensors captured by value (frozen params, tensor attributes)
        for t, v in inputs:
            self.by_tensor[id(t)] = v
            self.by_array[id(t._data)] = v
            self.keep.append(t)
        self.producer_of = {}     # Value id -> FNode
        self.derived = {}         # id(Tensor) -> description, for untraced results (comparisons)

    # ---- Values for arguments
    def value_of_tensor(self, t):
        v = self.by_tensor.get(id(t))
        if v is not None:
            return v
        if t._node is None and t.requires_grad:
            v = self.graph.value(t.shape, t.dtype, "param", array=t._data)
            v.name = "param"
            self.params[id(t)] = (t, v)
        else:
            v = self.graph.value(t.shape, t.dtype, "const", array=t._data)
            if t._node is None:
                self.consts.append(t)
        self.by_tensor[id(t)] = v
        self.keep.append(t)
        return v

    def value_of_array(self, a):
        v = self.by_array.get(id(a))
        if v is not None:
            return v
        v = self.graph.value(a.shape, a.dtype, "const", array=a)
        self.by_array[id(a)] = v
        self.keep.append(a)
        return v

    # ---- this thread's recorder
    def __enter__(self):
        if _grad_mode.tracer is not None:
            raise CaptureError("lamina.compile: nested tracing is not supported "
                               "(this thread is already tracing another model)")
        _grad_mode.tracer = self
        return self

    def __exit__(self, *exc):
        _grad_mode.tracer = None
        return False

    def derive(self, out, t, how):
        """`out` was computed from traced `t` outside Function.apply (a comparison)."""
        what = self.describe(t)
        if what is not None:
            self.derived[id(out)] = f"{how} of {what}"
            self.keep.append(out)

    def check_read(self, t, name):
        what = self.describe(t)
        if what is not None:
            raise CaptureError(
                f"lamina.compile: Tensor.{name}() on {what} at {user_line()} reads a value during "
                "tracing; the step's Python control flow would depend on the data, which a captured "
                "graph cannot follow. Move it out of the model/loss, run eagerly (--eager), or compile "
                "with fallback='eager'.")

    def record(self, cls, args, kwargs, out):
        ctx = out._node
        vals, pos = [], []
        for i, a in enumerate(args):
            if isinstance(a, Tensor):
                vals.append(self.value_of_tensor(a))
                pos.append(i)
            elif isinstance(a, np.ndarray):
                vals.append(self.value_of_array(a))
                pos.append(i)
            else:
                vals.append(a)
        for k, a in kwargs.items():
            if isinstance(a, (Tensor, np.ndarray)):
                raise CaptureError(f"lamina.compile: {cls.__name__} got tensor keyword argument {k!r}; "
                                   "pass tensors positionally to Function.apply")
        v = self.graph.value(out.shape, out.dtype, "temp")
        needs = getattr(ctx, "needs_input_grad", None) if ctx is not None else None
        if needs is None:
            needs = tuple(False for _ in args)
        fn = FNode(cls, vals, dict(kwargs), ctx, v, pos, tuple(needs), len(self.fnodes))
        self.fnodes.append(fn)
        self.producer_of[v.id] = fn
        self.by_tensor[id(out)] = v
        self.keep.append(out)


    def describe(self, t):
        """What a traced tensor is, or None for constants and untraced tensors."""
        d = self.derived.get(id(t))
        if d is not None:
            return d
        v = self.by_tensor.get(id(t))
        if v is None or v.home == "const":
            return None
        fn = self.producer_of.get(v.id)
        return f"the output of {fn.op} (traced call #{fn.index})" if fn else f"a step {v.home}"
