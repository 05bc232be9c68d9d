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
 2. fold    At eval, conv + batch norm (running statistics) -> one conv with folded weights,
            re-folded when those weights or statistics change in place (passes.FoldGuard);
            equal to eager eval to float32 rounding, not bit for bit.
    fuse    Linear + relu/sigmoid/tanh -> one GEMM with the activation in its epilogue;
            Conv2d/Conv1d + relu/sigmoid/tanh -> one conv instruction applying it in place;
            softmax + cross-entropy is found already fused (CrossEntropy) and kept.
 3. lower   Every call becomes kernel nodes; the backward sweep runs each op's one backward
            rule (the eager one) on a node recorder (pycall nodes for ops lowered to none); the
            optimizer update follows.
 4. dce     Nodes whose results nobody reads are removed; an elementwise node whose input
            dies there writes over it (relu' masks dy in place).
 5. plan    Liveness over the schedule gives every intermediate an offset in one arena
            (greedy by size: within a fraction of a percent of the bytes live at the peak).
 6. run     The C++ executor runs the whole schedule in one call with the GIL released
            (executor="python" runs the same nodes from Python, for checking).
A new input shape or dtype, or a different train/eval mode, traces again (a small cache keyed by
shapes, dtypes and the modules' training flags); a changed guard (guards.py: a swapped or frozen
parameter, a changed module attribute, new optimizer groups) drops the plan and traces again.

Native (C++ instruction, no GIL): Linear, MatMul2D, MatMulBatched ((B, M, K) @ (B, K, N): one
gemm node with a batch count), Activation, CrossEntropy, MSE and
BCE-with-logits losses, Reshape/Flatten (free views), Add/Sub/Mul/Div of equal shapes or with
one operand repeated over a contiguous block of dims (a bias (C, 1, 1) or (F,), a Python
scalar; for Div only x / s with no gradient for s), Neg, Abs, Conv2d, Conv1d, max/avg pooling
(1-D and 2-D), adaptive average pooling, and the SGD / Adam / AdamW updates. LeNet-5,
resnet_mnist and the MLPs compile to no callback at all.
Still Python callbacks (each takes the GIL back; `graph.callbacks` lists them and `str(graph)`
marks them "[callback]"): Exp, Log, Sin, Cos (NumPy's SIMD kernels, exactly as eager runs
them), Dropout, Pow, PowTensor, Clamp, Clone, Cast, Sum, Mean, MaxAll, MaxDim, Permute, Expand (so also
the batch dims that matmul broadcasts), GetItem, Cat, Softmax/log_softmax (outside
cross-entropy), broadcasts of both operands ((N, 1) + (1, F)), s / x with s broadcast, x / s
when s needs a gradient, BCE-with-logits when its target needs a gradient, max pooling with
return_indices=True (the indices go back to Python), and optimizers other than SGD / Adam /
AdamW (one callback running optimizer.step()).
"""
from __future__ import annotations

import threading
import warnings
from collections import OrderedDict

import numpy as np

from ..tensor import Tensor, is_grad_enabled, no_grad
from .executor import NATIVE_OPS, Memory, NativeExecutor, PythonExecutor
from .guards import ModelGuards, modules_of, training_flags
from .ir import Graph, Node, Value
from .lower import Lowering
from .passes import (FoldGuard, check_plan, find_softmax_ce, fold_conv_bn, fuse_activations, fuse_conv_relu_pool,
                     plan_memory, remove_dead_nodes, reuse_inplace)
from .trace import CaptureError, Tracer
from .update import Update, UpdateItem, state_of

__all__ = ["compile", "CompiledStep", "CompiledForward", "CaptureError", "Graph", "Node", "Value",
           "NATIVE_OPS", "check_plan"]

_CACHE_SIZE = 8


_TORCH_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile(model=None, loss_fn=None, optimizer=None, executor="native", fallback="error", *, fullgraph=False,
            dynamic=None, backend="inductor", mode=None, options=None, disable=False):
    """Capture `model` (+ `loss_fn` and `optimizer`) into a planned graph.

    With a loss and an optimizer, returns a `CompiledStep`: `step(x, y) -> float` runs forward,
    loss, backward and the update. With the model alone, returns a `CompiledForward`:
    `f(x) -> Tensor`, the planned forward pass wherever no gradient can flow (under no_grad,
    or nothing requires grad); where one can, it runs the model eagerly so backward() works,
    as the module torch.compile(model) returns does. executor: "native" (C++) or "python".
    fallback: "error" raises CaptureError when the step cannot be captured (a value read back
    to Python with .item() / .numpy() / bool() during the trace); "eager" runs it eagerly instead.

    PyTorch's keywords are accepted: `lamina.compile()` / `lamina.compile(mode=...)` without a
    model is a decorator; disable=True returns the model itself; fullgraph, dynamic, backend,
    mode and options are checked as PyTorch checks them and otherwise change nothing (lamina
    has one compiler).

    Every call checks the plan's guards (module training flags, parameter/buffer identity,
    shape, dtype and requires_grad, module attributes, optimizer groups) and re-traces when one
    changed; concurrent calls of one compiled object run one at a time.
    """
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if mode is not None and mode not in _TORCH_MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: {', '.join(_TORCH_MODES)}")
    if model is None:
        def decorate(fn):
            return compile(fn, loss_fn, optimizer, executor, fallback, fullgraph=fullgraph, dynamic=dynamic,
                           backend=backend, mode=mode, options=options, disable=disable)
        return decorate
    if not callable(model):
        raise TypeError(f"compile: model must be a Module or a function, got {type(model).__name__}")
    if executor not in ("native", "python"):
        raise ValueError(f"executor: expected 'native' or 'python', got {executor!r}")
    if fallback not in ("error", "eager"):
        raise ValueError(f"fallback: expected 'error' or 'eager', got {fallback!r}")
    if disable:
        return model
    if loss_fn is None and optimizer is None:
        return CompiledForward(model, executor, fallback)
    if loss_fn is None or optimizer is None:
        raise ValueError("compile: a training step needs both loss_fn and optimizer "
                         f"(got loss_fn={loss_fn!r}, optimizer={optimizer!r}); pass neither for inference")
    return CompiledStep(model, loss_fn, optimizer, executor, fallback)


def _as_array(a, name):
    if isinstance(a, Tensor):
        a = a._data
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
    """One traced signature: the graph, its memory, its executor, its guards, what to read back."""

    def __init__(self, graph, executor_kind, scalars, guards, loss=None, out=None, params=(), update=None,
                 grads=(), folds=None):
        self.graph = graph
        self.scalars = scalars
        self.mem = Memory(graph)
        cls = NativeExecutor if executor_kind == "native" else PythonExecutor
        self.executor = cls(graph, self.mem, scalars)
        self.guards = guards
        self.loss = loss
        self.out = out
        self.params = list(params)       # (Tensor, bound array, requires_grad) of every traced leaf
        self.update = update
        self.grads = list(grads)         # (param Tensor, its compiled gradient array)
        self.folds = folds if folds is not None else FoldGuard()   # conv+BN pairs folded at eval

    def valid(self):
        for t, arr, rg in self.params:
            if t._data is not arr or t.requires_grad != rg:
                return False
        return self.guards.check() and (self.update is None or self.update.valid())

    def publish_grads(self):
        # After a compiled step p.grad is the step's gradient, as after an eager step.
        for t, arr in self.grads:
            g = t.grad
            if g is None or g._data is not arr:
                t.grad = Tensor._wrap(arr)


class _Compiled:
    def __init__(self, model, executor, fallback="error"):
        self.model = model
        self.executor = executor
        self.fallback = fallback
        self._plans = OrderedDict()
        self.traces = 0
        self.eager = False               # fallback="eager" after a CaptureError: run eagerly from now on
        self._last = None
        self._lock = threading.Lock()    # one call at a time: a plan's arena and slots are per plan
        self._modules = modules_of(model)

    @property
    def graph(self):
        """The planned Graph of the most recent call (print it, or call .to_dot())."""
        if self._last is None:
            raise RuntimeError("no graph yet: call the compiled function once to trace it")
        return self._last.graph

    def _lookup(self, arrays):
        key = (_key(arrays), training_flags(self._modules))
        plan = self._plans.get(key)
        if plan is not None and not plan.valid():
            del self._plans[key]
            plan = None
        if plan is not None:
            plan.folds.refresh()
            self._plans.move_to_end(key)
        return key, plan

    def _store(self, key, plan):
        self._modules = modules_of(self.model)
        key = (key[0], training_flags(self._modules))
        self._plans[key] = plan
        if len(self._plans) > _CACHE_SIZE:
            self._plans.popitem(last=False)
        self._last = plan

    def _capture_failed(self, err):
        if self.fallback != "eager":
            raise err
        warnings.warn(f"lamina.compile: running eagerly: {err}", RuntimeWarning, stacklevel=3)
        self.eager = True

    def _traced_leaves(self, tr):
        return [(t, t._data, t.requires_grad) for t, _ in tr.params.values()] + \
               [(t, t._data, t.requires_grad) for t in tr.consts]


class CompiledForward(_Compiled):
    """`f(x) -> Tensor`: the model's forward pass as one planned schedule (no gradients).

    Stands in for the model as torch.compile's module does: attributes it does not have
    (parameters(), train(), eval(), state_dict(), ...) are the model's, and `_orig_mod` is the
    model. A call where a gradient can flow (grad mode on, and the input or a parameter requires
    grad), or with other than one positional input, runs the model eagerly: the planned schedule
    keeps no autograd record, and a training loop must get one."""

    def __getattr__(self, name):  # only for names the object itself lacks
        model = self.__dict__.get("model")
        if model is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(model, name)

    @property
    def _orig_mod(self):
        return self.model

    def forward(self, *args, **kwargs):
        return self(*args, **kwargs)

    def _grad_can_flow(self, x):
        if not is_grad_enabled():
            return False
        if isinstance(x, Tensor) and x.requires_grad:
            return True
        params = getattr(self.model, "parameters", None)
        return callable(params) and any(p.requires_grad for p in params())

    def __call__(self, *args, **kwargs):
        if len(args) != 1 or kwargs or self._grad_can_flow(args[0]):
            return self.model(*args, **kwargs)
        xa = _as_array(args[0], "x")
        with self._lock:
            if self.eager:
                with no_grad():
                    return self.model(Tensor._wrap(xa)).detach()
            key, plan = self._lookup([xa])
            if plan is None:
                try:
                    plan, out = self._trace(xa)
                except CaptureError as err:
                    self._capture_failed(err)
                    with no_grad():
                        return self.model(Tensor._wrap(xa)).detach()
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
        guards = ModelGuards(modules_of(self.model))
        tr = Tracer(g, [(xt, vx)])
        with no_grad(), tr:
            out = self.model(xt)
        self.traces += 1
        vout = tr.by_tensor.get(id(out))
        if vout is None or vout.home == "input":
            raise CaptureError("lamina.compile: the model's output is not computed by lamina ops")
        fnodes, notes, folds = fold_conv_bn(g, tr.fnodes, {vout.id})
        fnodes, more = _fuse(fnodes, {vout.id})
        g.notes.extend(notes + more)
        L = Lowering(g, fnodes, [])
        L.forward()
        g.outputs = [vout]
        _finish(g)
        plan = _Plan(g, self.executor, np.zeros(0), guards, out=vout, params=self._traced_leaves(tr), folds=folds)
        return plan, out.detach()


class CompiledStep(_Compiled):
    """`step(x, y) -> float`: one training step (forward, loss, backward, update) per call.

    `step.run(x, y) -> (loss Tensor, logits Tensor)` is the contract of lamina.train.make_step.
    """

    def __init__(self, model, loss_fn, optimizer, executor="native", fallback="error"):
        super().__init__(model, executor, fallback)
        self.loss_fn = loss_fn
        self.optimizer = optimizer

    def __call__(self, x, y):
        return self.run(x, y, want_logits=False)[0]

    def run(self, x, y, want_logits=True):
        xa, ya = _as_array(x, "x"), _as_array(y, "y")
        with self._lock:
            if self.eager:
                return self._eager_step(xa, ya, want_logits)
            key, plan = self._lookup([xa, ya])
            if plan is None:
                try:
                    plan, loss, logits = self._trace(xa, ya)
                except CaptureError as err:
                    self._capture_failed(err)
                    return self._eager_step(xa, ya, want_logits)
                self._store(key, plan)
                return (float(loss._data), logits.detach()) if want_logits else (float(loss._data), None)
            self._last = plan
            plan.update.before_step(plan.scalars)
            plan.executor.run([xa, ya], plan.scalars)
            plan.update.after_step()
            plan.publish_grads()
            loss = float(plan.mem.arrays[plan.loss.id])
            if not want_logits:
                return loss, None
            return loss, Tensor._wrap(plan.mem.arrays[plan.out.id].copy())

    def _eager_step(self, xa, ya, want_logits):
        opt = self.optimizer
        opt.zero_grad()
        logits = self.model(Tensor._wrap(xa))
        loss = self.loss_fn(logits, Tensor._wrap(ya))
        loss.backward()
        opt.step()
        return float(loss._data), (logits.detach() if want_logits else None)

    def _trace(self, xa, ya):
        g = Graph()
        vx = g.value(xa.shape, xa.dtype, "input", "x")
        vy = g.value(ya.shape, ya.dtype, "input", "y")
        g.inputs = [vx, vy]
        xt, yt = Tensor._wrap(xa), Tensor._wrap(ya)
        opt = self.optimizer
        guards = ModelGuards(modules_of(self.model))
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
        # Only pairs whose weights get no gradient fold (a frozen backbone in eval mode).
        trainable = {v.id for t, v in tr.params.values() if t.requires_grad}
        fnodes, notes, folds = fold_conv_bn(g, tr.fnodes, {vlogits.id, vloss.id}, trainable)
        fnodes, more = _fuse(fnodes, {vlogits.id, vloss.id})
        g.notes.extend(notes + more)
        g.notes.extend(find_softmax_ce(fnodes))
        params = [(t, v) for t, v in tr.params.values()]
        grad_bufs = {}
        had_no_grad = set()                  # ids of the leaves whose eager step left p.grad None
        for t, v in params:
            if not t.requires_grad:
                continue
            if t.grad is not None and t.grad._data.shape == t.shape and t.grad._data.dtype == t.dtype \
                    and t.grad._data.flags.c_contiguous and t.grad._data.flags.writeable:
                arr = t.grad._data            # adopt eager's buffer: p.grad stays the live gradient
            else:
                if t.grad is None:
                    had_no_grad.add(id(t))
                arr = np.zeros_like(t._data)
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
        update = Update(opt, g, _update_items(opt, params, grad_bufs, written))
        g.outputs = [vloss, vlogits]
        _finish(g)
        # A leaf the loss does not reach keeps p.grad None, as eager and PyTorch leave it.
        for t, v in params:
            if v.id in grad_bufs and grad_bufs[v.id].id not in written and id(t) in had_no_grad:
                t.grad = None
        grads = [(t, grad_bufs[v.id].array) for t, v in params
                 if v.id in grad_bufs and (grad_bufs[v.id].id in written or id(t) not in had_no_grad)]
        plan = _Plan(g, self.executor, update.scalars, guards, loss=vloss, out=vlogits,
                     params=self._traced_leaves(tr), update=update, grads=grads, folds=folds)
        return plan, loss, logits


def _update_items(opt, params, grad_bufs, written):
    """The parameters the optimizer holds that received a gradient, in the optimizer's order."""
    group_of = {}
    for gi, group in enumerate(getattr(opt, "param_groups", [])):
        for p in group["params"]:
            group_of[id(p)] = gi
    return [UpdateItem(t, v, grad_bufs[v.id], group_of[id(t)], state_of(opt, t)) for t, v in params
            if v.id in grad_bufs and grad_bufs[v.id].id in written and id(t) in group_of]


def _fuse(fnodes, keep_ids):
    return fuse_activations(fnodes, keep_ids)


def _finish(g):
    g.notes.extend(fuse_conv_relu_pool(g))
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
