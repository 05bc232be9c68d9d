"""The optimizer update of a compiled step.

Each optimizer lowers itself: `optimizer.lower_update(builder, items)` (a method of the optimizer
class; SGD, Adam and AdamW define one) appends update nodes over the optimizer's own state
arrays, so checkpoints and a later eager step see the same state, and returns True. An optimizer
without a lowering (a custom subclass, or one whose state is not there yet) returns False: the
compiled step then runs the exact eager `optimizer.step()` on the compiled gradients, as one
callback after the backward. Parameters the optimizer does not hold (fine-tuning a subset) get
their gradients and no update, as in eager.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from ..ops._params import PyCallAttrs
from .ir import Node


def state_of(optimizer, p):
    st = getattr(optimizer, "state", None)
    if st is None:
        return None
    if isinstance(st, dict):          # lamina's optimizers key state by id(param): no exception
        s = st.get(id(p))
        if s is not None:
            return s
    try:
        return st[p]
    except (KeyError, TypeError):
        return None


def as_array(x):
    if isinstance(x, Tensor):
        return x._data
    return x if isinstance(x, np.ndarray) else None


class UpdateItem:
    """One parameter to update: its Tensor, Value, gradient Value, group index and state dict."""
    __slots__ = ("param", "value", "grad", "group", "state")

    def __init__(self, param, value, grad, group, state):
        self.param, self.value, self.grad, self.group, self.state = param, value, grad, group, state


class UpdateBuilder:
    """What an optimizer's `lower_update` calls: scalars re-read from param_groups before every
    step, state arrays bound as graph Values, nodes appended only if the whole lowering succeeds."""

    def __init__(self, graph, optimizer):
        self.g = graph
        self.opt = optimizer
        self.nodes = []
        self.rows = []            # (scalar index, group, read(group) -> float), refreshed per step
        self.steps = []           # (state dict, scalar index): step counters incremented per step
        self.bound = []           # (param, state dict, key, array) to notice load_state_dict
        self.live_keys = set()    # group keys read per step (not guards)
        self._groups = {}
        self.n_scalars = 0

    def group_scalars(self, gi, readers, extra=0):
        """Indices of one scalar per `readers` entry ({key: read(group)}) for group gi, shared
        by all of the group's parameters; `extra` constant-zero scalars follow."""
        key = (gi, tuple(readers))
        base = self._groups.get(key)
        if base is None:
            base = self._groups[key] = self.n_scalars
            group = self.opt.param_groups[gi]
            for name, read in readers.items():
                self.rows.append((self.n_scalars, group, read))
                self.live_keys.add(name)
                self.n_scalars += 1
            self.n_scalars += extra
        return list(range(base, base + len(readers) + extra))

    def step_scalar(self, state):
        i = self.n_scalars
        self.n_scalars += 1
        self.steps.append((state, i))
        return i

    def state(self, item, key):
        """The graph Value of state array `key` of item's parameter, or None if missing."""
        arr = as_array(item.state.get(key)) if item.state else None
        if arr is None:
            return None
        self.bound.append((item.param, item.state, key, arr))
        return self.g.value(arr.shape, arr.dtype, "state", key, array=arr)

    def emit(self, op, inputs, outputs, attrs):
        self.nodes.append(Node(op, inputs, outputs, attrs, inplace=outputs, src=type(self.opt).__name__,
                               effect=True))


class Update:
    """The update part of one plan: native nodes from the optimizer's lowering, or its eager step."""

    def __init__(self, opt, g, items):
        self.opt = opt
        self.items = items
        kind = type(opt).__name__
        b = UpdateBuilder(g, opt)
        lower = getattr(opt, "lower_update", None)
        self.native = bool(lower is not None and items and lower(b, items))
        if self.native:
            for n in b.nodes:
                g.add(n)
        else:
            b = UpdateBuilder(g, opt)
            b.live_keys = None        # the eager step reads every hyper-parameter itself
            g.add(Node("pycall", [it.grad for it in items], [],
                       PyCallAttrs(fn=f"{kind}.step", kind="call", call=self._eager_step), src=kind, effect=True))
            g.notes.append(f"optimizer {kind}: no native lowering, runs optimizer.step() after the compiled backward")
        self.rows, self.steps, self.bound = b.rows, b.steps, b.bound
        self._state_obj = getattr(opt, "state", None)
        self.scalars = np.zeros(b.n_scalars, dtype=np.float64)
        self.groups = self._group_snapshot(b.live_keys)
        self._live_keys = b.live_keys

    def _group_snapshot(self, live_keys):
        # Structure and the hyper-parameters baked into the nodes (not re-read per step).
        snap = []
        for group in getattr(self.opt, "param_groups", []):
            fixed = {} if live_keys is None else {k: v for k, v in group.items()
                                                  if k != "params" and k not in live_keys}
            snap.append((group, tuple(id(p) for p in group["params"]), fixed))
        return snap

    def valid(self):
        # Runs before every step: identity checks (load_state_dict replaces opt.state), groups.
        # (state_of and as_array inlined for lamina's id-keyed dict and bare arrays: this is
        # per-step Python time, ~10 us of a 1 ms LeNet-5 step before)
        opt = self.opt
        state = getattr(opt, "state", None)
        if state is not self._state_obj:
            return False
        by_id = state.get if type(state) is dict else None
        for t, st, key, arr in self.bound:
            s = by_id(id(t)) if by_id is not None else None
            if s is not st and state_of(opt, t) is not st:
                return False
            v = st.get(key)
            if v is not arr and as_array(v) is not arr:
                return False
        groups = getattr(opt, "param_groups", [])
        if len(groups) != len(self.groups):
            return False
        for group, (snap, ids, fixed) in zip(groups, self.groups):
            if group is not snap or tuple(map(id, group["params"])) != ids:
                return False
            for k, v in fixed.items():
                cur = group.get(k)
                if cur is not v and cur != v:
                    return False
        return True

    def _eager_step(self):
        for it in self.items:
            if it.param.grad is None or it.param.grad._data is not it.grad.array:
                it.param.grad = Tensor._wrap(it.grad.array)
        self.opt.step()

    def before_step(self, scalars):
        for i, group, read in self.rows:
            scalars[i] = float(read(group))
        for st, i in self.steps:
            scalars[i] = _step_value(st["step"]) + 1

    def after_step(self):
        for st, _ in self.steps:
            s = st["step"]
            if isinstance(s, Tensor):
                s._data += 1
            elif isinstance(s, np.ndarray):
                s += 1
            else:
                st["step"] = s + 1


def _step_value(s):
    if isinstance(s, Tensor):
        return float(s._data)
    return float(s)
