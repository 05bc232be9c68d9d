"""lamina.graph: capture a training step once, plan it, run forward + backward + update as one schedule.

>>> import numpy as np, lamina
>>> from lamina.graph import compile
>>> model = lamina.models.mlp((4, 8, 3))
>>> opt = lamina.optim.SGD(model.parameters(), lr=0.1)
>>> step = compile(model, lamina.nn.functional.cross_entropy, opt)
>>> x = np.ones((2, 4), np.float32); y = np.array([0, 2])
>>> loss = step(x, y)            # first call: eager step, traced; later calls: the compiled graph
>>> isinstance(step(x, y), float)
True

How a step is captured (see trace.py, lower.py, passes.py, executor.py):
 1. trace   The first call for a given input signature runs the real eager step (so its result
            is exactly eager's) with Function.apply recording every primitive call.
 2. fuse    Linear + relu/sigmoid/tanh -> one GEMM with the activation in its epilogue;
            Conv2d/Conv1d + relu/sigmoid/tanh -> one conv instruction applying it in place;
            softmax + cross-entropy is found already fused (CrossEntropy) and kept.
 3. lower   Every call becomes kernel nodes; the backward sweep is derived from each op's
            backward emitter (pycall nodes for ops without one); the optimizer update follows.
 4. dce     Nodes whose results nobody reads are removed; an elementwise node whose input
            dies there writes over it (relu' masks dy in place).
 5. plan    Liveness over the schedule gives every intermediate an offset in one arena
            (greedy by size: within a fraction of a percent of the bytes live at the peak).
 6. run     The C++ executor runs the whole schedule in one call with the GIL released
            (executor="python" runs the same nodes from Python, for checking).
A new input shape or dtype traces again (a small cache keyed by shapes and dtypes).

Native (C++ instruction, no GIL): Linear, MatMul2D, Activation, CrossEntropy, MSE and
BCE-with-logits losses, Reshape/Flatten (free views), Add/Sub/Mul/Div of equal shapes or with
one operand repeated over a contiguous block of dims (a bias (C, 1, 1) or (F,), a Python
scalar; for Div only x / s with no gradient for s), Neg, Exp, Log, Sin, Cos, Abs, Conv2d,
Conv1d, max/avg pooling (1-D and 2-D), adaptive average pooling, and the SGD / Adam / AdamW
updates. LeNet-5, resnet_mnist and the MLPs compile to no callback at all.
Still Python callbacks (each takes the GIL back; `graph.callbacks` lists them and `str(graph)`
marks them "[callback]"): Dropout, Pow, PowTensor, Clamp, Clone, Cast, Sum, Mean, MaxAll,
MaxDim, Permute, Expand, GetItem, Cat, MatMulBatched, Softmax/log_softmax (outside
cross-entropy), broadcasts of both operands ((N, 1) + (1, F)), s / x with s broadcast, x / s
when s needs a gradient, BCE-with-logits when its target needs a gradient, max pooling with
return_indices=True (the indices go back to Python), and optimizers other than SGD / Adam /
AdamW (one callback running optimizer.step()).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..tensor import Tensor, no_grad
from .executor import NATIVE_OPS, Memory, NativeExecutor, PythonExecutor
from .ir import Graph, Node, Value
from .lower import Lowering
from .passes import (check_plan, find_softmax_ce, fuse_activations,
                     plan_memory, remove_dead_nodes, reuse_inplace)
from .trace import CaptureError, Tracer

__all__ = ["compile", "CompiledStep", "CompiledForward", "CaptureError", "Graph", "Node", "Value",
           "NATIVE_OPS", "check_plan"]

_CACHE_SIZE = 8


def compile(model, loss_fn=None, optimizer=None, executor="native"):
    """Capture `model` (+ `loss_fn` and `optimizer`) into a planned graph.

    With a loss and an optimizer, returns a `CompiledStep`: `step(x, y) -> float` runs forward,
    loss, backward and the update. With the model alone, returns a `CompiledForward`:
    `f(x) -> Tensor` (inference, no gradients). executor: "native" (C++) or "python".
    """
    if executor not in ("native", "python"):
        raise ValueError(f"executor: expected 'native' or 'python', got {executor!r}")
    if loss_fn is None and optimizer is None:
        return CompiledForward(model, executor)
    if loss_fn is None or optimizer is None:
        raise ValueError("compile: a training step needs both loss_fn and optimizer "
                         f"(got loss_fn={loss_fn!r}, optimizer={optimizer!r}); pass neither for inference")
    return CompiledStep(model, loss_fn, optimizer, executor)


def _as_array(a, name):
    if isinstance(a, Tensor):
        a = a.data
    a = np.asarray(a)
    if a.dtype.kind in "iu" and a.dtype != np.int64:
        a = a.astype(np.int64)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a float or integer array, got dtype {a.dtype}")
    return np.ascontiguousarray(a)


def _key(arrays):
    # dtype objects hash in C; dtype.str is a Python-level property (~1 us per array per step).
    return tuple([(a.shape, a.dtype) for a in arrays])


class _Plan:
    """One traced signature: the graph, its memory, its executor and what to read back."""

    def __init__(self, graph, executor_kind, scalars, loss=None, out=None, params=(), opt=None):
        self.graph = graph
        self.scalars = scalars
        self.mem = Memory(graph)
        cls = NativeExecutor if executor_kind == "native" else PythonExecutor
        self.executor = cls(graph, self.mem, scalars)
        self.loss = loss
        self.out = out
        self.params = list(params)       # (Tensor, bound array): re-trace if .data was replaced
        self.opt = opt

    def valid(self):
        return all(t.data is arr for t, arr in self.params) and (self.opt is None or self.opt.valid())


class _Compiled:
    def __init__(self, model, executor):
        self.model = model
        self.executor = executor
        self._plans = OrderedDict()
        self.traces = 0
        self._last = None

    @property
    def graph(self):
        """The planned Graph of the most recent call (print it, or call .to_dot())."""
        if self._last is None:
            raise RuntimeError("no graph yet: call the compiled function once to trace it")
        return self._last.graph

    def _lookup(self, arrays):
        key = _key(arrays)
        plan = self._plans.get(key)
        if plan is not None and not plan.valid():
            del self._plans[key]
            plan = None
        if plan is not None:
            self._plans.move_to_end(key)
        return key, plan

    def _store(self, key, plan):
        self._plans[key] = plan
        if len(self._plans) > _CACHE_SIZE:
            self._plans.popitem(last=False)
        self._last = plan


class CompiledForward(_Compiled):
    """`f(x) -> Tensor`: the model's forward pass as one planned schedule (no gradients)."""

    def __call__(self, x):
        xa = _as_array(x, "x")
        key, plan = self._lookup([xa])
        if plan is None:
            plan, out = self._trace(xa)
            self._store(key, plan)
            return out
        self._last = plan
        plan.executor.run([xa], plan.scalars)
        return Tensor._wrap(plan.mem.arrays[plan.out.id].copy())

    def _trace(self, xa):
        g = Graph()
        vx = g.value(xa.shape, xa.dtype, "input", "x")
        g.inputs = [vx]
        xt = Tensor._wrap(xa)
        tr = Tracer(g, [(xt, vx)])
        with no_grad(), tr:
            out = self.model(xt)
        self.traces += 1
        vout = tr.by_tensor.get(id(out))
        if vout is None or vout.home == "input":
            raise CaptureError("lamina.compile: the model's output is not computed by lamina ops")
        fnodes, notes = _fuse(tr.fnodes, {vout.id})
        g.notes.extend(notes)
        L = Lowering(g, fnodes, [])
        L.forward()
        g.outputs = [vout]
        _finish(g)
        params = [(t, t.data) for t, _ in tr.params.values()]
        plan = _Plan(g, self.executor, np.zeros(0), out=vout, params=params)
        return plan, out.detach()


class CompiledStep(_Compiled):
    """`step(x, y) -> float`: one training step (forward, loss, backward, update) per call.

    `step.run(x, y) -> (loss Tensor, logits Tensor)` is the contract of lamina.train.make_step.
    """

    def __init__(self, model, loss_fn, optimizer, executor="native"):
        super().__init__(model, executor)
        self.loss_fn = loss_fn
        self.optimizer = optimizer

    def __call__(self, x, y):
        return self.run(x, y, want_logits=False)[0]

    def run(self, x, y, want_logits=True):
        xa, ya = _as_array(x, "x"), _as_array(y, "y")
        key, plan = self._lookup([xa, ya])
        if plan is None:
            plan, loss, logits = self._trace(xa, ya)
            self._store(key, plan)
            return (float(loss.data), logits.detach()) if want_logits else (float(loss.data), None)
        self._last = plan
        plan.opt.before_step(plan.scalars)
        plan.executor.run([xa, ya], plan.scalars)
        plan.opt.after_step()
        loss = float(plan.mem.arrays[plan.loss.id])
        if not want_logits:
            return loss, None
        return loss, Tensor._wrap(plan.mem.arrays[plan.out.id].copy())

    def _trace(self, xa, ya):
        g = Graph()
        vx = g.value(xa.shape, xa.dtype, "input", "x")
        vy = g.value(ya.shape, ya.dtype, "input", "y")
        g.inputs = [vx, vy]
        xt, yt = Tensor._wrap(xa), Tensor._wrap(ya)
        opt = self.optimizer
        opt.zero_grad()
        tr = Tracer(g, [(xt, vx), (yt, vy)])
        with tr:
            logits = self.model(xt)
            loss = self.loss_fn(logits, yt)
        # The first step for this signature is the eager step itself.
        loss.backward()
        opt.step()
        self.traces += 1
        vloss = tr.by_tensor.get(id(loss))
        vlogits = tr.by_tensor.get(id(logits))
        if vloss is None or vloss.shape != ():
            raise CaptureError("lamina.compile: loss_fn must return a scalar computed by lamina ops, "
                               f"got shape {getattr(loss, 'shape', None)}")
        if vlogits is None:
            raise CaptureError("lamina.compile: the model's output is not computed by lamina ops")
        fnodes, notes = _fuse(tr.fnodes, {vlogits.id, vloss.id})
        g.notes.extend(notes)
        g.notes.extend(find_softmax_ce(fnodes))
        params = [(t, v) for t, v in tr.params.values()]
        grad_bufs = {}
        for t, v in params:
            if not t.requires_grad:
                continue
            if t.grad is not None and t.grad.data.shape == t.shape and t.grad.data.dtype == t.dtype \
                    and t.grad.data.flags.c_contiguous and t.grad.data.flags.writeable:
                arr = t.grad.data            # adopt eager's buffer: p.grad stays the live gradient
            else:
                arr = np.zeros_like(t.data)
                t.grad = Tensor._wrap(arr)
            grad_bufs[v.id] = g.value(t.shape, t.dtype, "grad", "grad", array=arr)
        L = Lowering(g, fnodes, [v for t, v in params if t.requires_grad])
        L.forward()
        L.backward(vloss, grad_bufs)
        sync = getattr(self.model, "_compile_gradient_sync", None)   # DistributedDataParallel's
        if sync is not None:                                         # bucket all-reduces
            sync(g, [(t, grad_bufs[v.id]) for t, v in params
                     if v.id in grad_bufs and grad_bufs[v.id].id in L.grad_written])
        written = {v.id for v in grad_bufs.values() if v.id in L.grad_written}
        updater = _Optimizer(opt, g, [(t, v, grad_bufs[v.id]) for t, v in params
                                      if v.id in grad_bufs and grad_bufs[v.id].id in written])
        g.outputs = [vloss, vlogits]
        _finish(g)
        plan = _Plan(g, self.executor, updater.scalars, loss=vloss, out=vlogits,
                     params=[(t, t.data) for t, _ in params], opt=updater)
        return plan, loss, logits


def _fuse(fnodes, keep_ids):
    return fuse_activations(fnodes, keep_ids)


def _finish(g):
    removed = remove_dead_nodes(g)
    if removed:
        g.notes.append(f"dead-node removal: {removed} node(s) removed")
    inplace = reuse_inplace(g)
    if inplace:
        g.notes.append(f"in place: {inplace} elementwise node(s) write over an input that dies there")
    plan_memory(g)
    temps = [v for v in g.values if v.home == "temp" and v.base is None and v.offset is not None]
    g.notes.append(f"memory plan: {len(temps)} intermediates, {sum(v.nbytes for v in temps)} bytes "
                   f"without reuse -> arena of {g.arena_bytes} bytes")


# ------------------------------------------------------------------------ optimizer update
def _state_of(optimizer, p):
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


def _arr(x):
    if isinstance(x, Tensor):
        return x.data
    return x if isinstance(x, np.ndarray) else None


class _Optimizer:
    """Lowers SGD / Adam / AdamW into sgd/adam nodes over the optimizer's own state arrays (so
    checkpoints and a later eager step see the same state); anything else becomes one pycall
    node running optimizer.step() on the compiled gradients. Hyperparameters are re-read from
    param_groups before every step (learning-rate schedules work)."""

    def __init__(self, opt, g, items):
        self.opt = opt
        self.items = items
        self.kind = type(opt).__name__
        self.rows = []            # per-step scalar refresh: (index, group, key, transform)
        self.steps = []           # (state dict, scalar index) for Adam step counters
        scal = []
        group_of = {}
        for gi, group in enumerate(getattr(opt, "param_groups", [])):
            for p in group["params"]:
                group_of[id(p)] = gi
        # maximize has no native lowering: such groups take the eager optimizer.step() callback
        native = (self.kind in ("SGD", "Adam", "AdamW") and all(id(t) in group_of for t, _, _ in items)
                  and not any(g.get("maximize", False) for g in getattr(opt, "param_groups", [])))
        nodes = []
        if native:
            base_of = {}
            for t, v, gv in items:
                gi = group_of[id(t)]
                group = opt.param_groups[gi]
                st = _state_of(opt, t)
                if self.kind == "SGD":
                    if gi not in base_of:
                        base_of[gi] = len(scal)
                        for key in ("lr", "momentum", "dampening", "weight_decay", "nesterov"):
                            self.rows.append((len(scal), group, key))
                            scal.append(0.0)
                        scal.append(0.0)          # first_step: the eager trace step made the buffer
                    b = base_of[gi]
                    outs = [v]
                    if group.get("momentum", 0):
                        buf = _arr(st.get("momentum_buffer")) if st else None
                        if buf is None:
                            native = False
                            break
                        outs.append(g.value(buf.shape, buf.dtype, "state", "momentum_buffer", array=buf))
                    nodes.append(Node("sgd", [gv], outs, {"n": v.size, "sc": list(range(b, b + 6))},
                                      inplace=outs, src="SGD", effect=True))
                else:
                    if gi not in base_of:
                        base_of[gi] = len(scal)
                        for key in ("lr", "beta1", "beta2", "eps", "weight_decay"):
                            self.rows.append((len(scal), group, key))
                            scal.append(0.0)
                    b = base_of[gi]
                    arrs = [_arr(st.get(k)) if st else None for k in ("exp_avg", "exp_avg_sq")]
                    ams = bool(group.get("amsgrad", False))
                    if ams:
                        arrs.append(_arr(st.get("max_exp_avg_sq")) if st else None)
                    if any(a is None for a in arrs) or "step" not in st:
                        native = False
                        break
                    outs = [v] + [g.value(a.shape, a.dtype, "state", k, array=a)
                                  for a, k in zip(arrs, ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))]
                    si = len(scal)
                    scal.append(0.0)
                    self.steps.append((st, si))
                    nodes.append(Node("adam", [gv], outs,
                                      {"n": v.size, "sc": [b, b + 1, b + 2, b + 3, b + 4, si],
                                       "decoupled": bool(getattr(opt, "_decoupled", self.kind == "AdamW")),
                                       "amsgrad": ams},
                                      inplace=outs, src=self.kind, effect=True))
        if native:
            for n in nodes:
                g.add(n)
        else:
            self.rows, self.steps, scal = [], [], []
            grads = [gv for _, _, gv in items]
            g.add(Node("pycall", grads, [], {"fn": f"{self.kind}.step", "_kind": "call",
                                             "_call": self._python_step}, src=self.kind, effect=True))
            g.notes.append(f"optimizer {self.kind}: no native lowering, runs optimizer.step() as a callback")
        self.native = native
        # (param, its state dict, key, array) to notice a load_state_dict replacing them.
        self._state_obj = getattr(opt, "state", None)
        self.bound = [(t, _state_of(opt, t), v.name, v.array) for n in (nodes if native else [])
                      for t, v in [(self._param_of(n), o) for o in n.outputs[1:]]]
        self.scalars = np.zeros(len(scal), dtype=np.float64)

    def _param_of(self, node):
        for t, v, gv in self.items:
            if node.outputs[0] is v:
                return t
        return None

    def valid(self):
        # Runs before every step: identity checks only (load_state_dict replaces opt.state).
        if getattr(self.opt, "state", None) is not self._state_obj:
            return False
        for t, st, key, arr in self.bound:
            if _state_of(self.opt, t) is not st or _arr(st.get(key)) is not arr:
                return False
        return True

    def _python_step(self):
        for t, v, gv in self.items:
            if t.grad is None or t.grad.data is not gv.array:
                t.grad = Tensor._wrap(gv.array)
        self.opt.step()

    def before_step(self, scalars):
        for i, group, key in self.rows:
            if key in ("beta1", "beta2"):
                val = group["betas"][0 if key == "beta1" else 1]
            else:
                val = group.get(key, 0.0)
            scalars[i] = float(val)
        for st, i in self.steps:
            scalars[i] = _step_value(st["step"]) + 1

    def after_step(self):
        for st, _ in self.steps:
            s = st["step"]
            if isinstance(s, Tensor):
                s.data += 1
            elif isinstance(s, np.ndarray):
                s += 1
            else:
                st["step"] = s + 1


def _step_value(s):
    if isinstance(s, Tensor):
        return float(s.data)
    return float(s)
