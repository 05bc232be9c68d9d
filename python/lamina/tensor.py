"""Tensor and the reverse-mode autodiff engine.

A Tensor wraps a C-contiguous NumPy buffer. Every differentiable primitive is a `Function`
subclass (see lamina/ops/) with its forward (a call into lamina._C or NumPy) and its backward rule
side by side. `Function.apply` records a graph node when grad mode is on and an input needs a
gradient; `Tensor.backward` sorts the graph topologically once (iteratively, so a 10,000-op
chain is fine), sweeps it in reverse, and accumulates gradients on fan-out.
"""
from __future__ import annotations

import itertools
import operator
import threading
import types
import weakref

import numpy as np

from . import _C, _device, _promotion, _tensor_str
from ._dims import bcast_split, normalize_dim, normalize_dims
from ._grad_fn_names import torch_node_name

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
int16 = np.dtype(np.int16)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
_FLOATS = (float32, float64)
_INTS = (uint8, int8, int16, int32, int64)
_SUPPORTED = _FLOATS + _INTS + (bool_,)
_DTYPE_NAMES = "float32, float64, uint8, int8, int16, int32, int64 or bool"


def check_dtype(dtype, arg="dtype"):
    """`dtype` (a lamina/NumPy dtype, type or name) as a lamina dtype; TypeError naming `arg` if
    it is none of them."""
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{arg}: expected a dtype ({_DTYPE_NAMES}), got {dtype!r}") from None
    if d not in _SUPPORTED:
        raise TypeError(f"{arg}: expected one of {_DTYPE_NAMES}, got {d}")
    return d


class RequiresGradDtypeError(RuntimeError, TypeError):
    """requires_grad on an integer or bool tensor: PyTorch's RuntimeError, and the TypeError
    lamina raised before."""


class IntegerDivisionByZeroError(RuntimeError, ZeroDivisionError):
    """Integer // or % by zero: PyTorch raises a RuntimeError saying ZeroDivisionError."""


def wrap_int_scalar(v, dtype):
    """Python integer `v` as a 0-d array of integer `dtype`, modulo 2**bits: PyTorch's cast of a
    scalar operand (uint8 tensor + 300 adds 44, uint8 tensor == -1 compares with 255)."""
    bits = dtype.itemsize * 8
    v = int(v) & ((1 << bits) - 1)
    if dtype.kind == "i" and v >= 1 << (bits - 1):
        v -= 1 << bits
    return np.array(v, dtype=dtype)


def check_int_range(lo, hi, dtype, what):
    """PyTorch's checked conversion of values into integer `dtype` (tensor(), full(), clamp
    bounds): floats must lie in the type's range; integers too, except that uint8 takes
    negative integers (they wrap: -1 is 255)."""
    info = np.iinfo(dtype)
    is_float = isinstance(lo, (float, np.floating)) or isinstance(hi, (float, np.floating))
    low = np.iinfo(np.int64).min if dtype.kind == "u" and not is_float else info.min
    if lo < low or hi > info.max:
        bad = lo if lo < low else hi
        raise RuntimeError(f"{what}: value {bad} cannot be converted to type {dtype} without overflow")


def cast_array(a, dtype):
    """a.astype(dtype) as PyTorch casts: floats to a narrow integer type go through int64 (so
    -1.7 becomes 255 in uint8, 300.5 becomes 44), not through C's undefined narrowing."""
    if a.dtype.kind == "f" and dtype.kind in "iu" and dtype.itemsize < 8:
        with np.errstate(invalid="ignore"):
            return a.astype(int64).astype(dtype)
    return a.astype(dtype)

_default_dtype = float32

# The ops the Tensor methods call (_api.Add, _api.matmul, ...). lamina.ops.registry fills it as
# each op registers, so this module never imports lamina.ops (ops import Tensor, not the reverse).
_api = types.SimpleNamespace()

# Views and in-place writes (getitem, setitem, overwrite, binary_inplace, mark_view, check_inplace,
# reshape_view):
# lamina._inplace fills this as it is imported, so tensor.py never imports it (no import circle).
_inplace = types.SimpleNamespace()


def set_default_dtype(dtype):
    """Set the dtype that `tensor([1.5])`, `zeros`, `randn` ... produce (float32 or float64)."""
    global _default_dtype
    d = np.dtype(dtype)
    if d not in _FLOATS:
        raise ValueError(f"dtype: expected float32 or float64, got {d}")
    _default_dtype = d


def get_default_dtype():
    return _default_dtype


# --------------------------------------------------------------------------- grad mode
class _GradMode(threading.local):
    """Per-thread autograd state: grad mode, and the graph tracer recording this thread's ops
    (lamina.graph.trace.Tracer), if any. Other threads keep running eagerly while one traces."""
    enabled = True
    tracer = None


_grad_mode = _GradMode()


def current_tracer():
    """The tracer recording this thread's Function calls, or None."""
    return _grad_mode.tracer


# PyTorch's words, so code that matches on them behaves the same.
_NUMPY_REQUIRES_GRAD = ("Can't call numpy() on Tensor that requires grad. "
                        "Use tensor.detach().numpy() instead.")


def _check_read(t, what):
    """Reading a traced value into Python during capture (item(), bool(), numpy(), ...): the
    tracer raises CaptureError naming the op and the user's line."""
    tracer = _grad_mode.tracer
    if tracer is not None:
        tracer.check_read(t, what)


class Size(tuple):
    """A tensor's shape: a tuple of ints that prints as PyTorch's torch.Size does
    (`lamina.Size([2, 3])`), with `numel()`; slices and concatenations stay Sizes."""

    __slots__ = ()

    def __repr__(self):
        return f"lamina.Size({list(self)})"

    __str__ = __repr__

    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n

    def __getitem__(self, i):
        r = tuple.__getitem__(self, i)
        return Size(r) if isinstance(i, slice) else r

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple.__add__(self, other))

    def __reduce__(self):
        return (Size, (tuple(self),))


def is_grad_enabled():
    return _grad_mode.enabled


class _GradModeContext:
    """Base of the grad-mode switches: a context manager, and a decorator when called on a
    function (with or without parentheses: `@no_grad` and `@no_grad()` both work)."""

    _mode = True
    _takes_function = True

    def __new__(cls, *args, **kwargs):
        # `@no_grad` without parentheses passes the decorated function as the only argument.
        if cls._takes_function and len(args) == 1 and not kwargs and callable(args[0]):
            return cls()(args[0])
        return super().__new__(cls)

    def __enter__(self):
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = self._mode

    def __exit__(self, *exc):
        _grad_mode.enabled = self._prev

    def _fresh(self):
        return type(self)()

    def __call__(self, fn):
        import functools
        import inspect

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                # Each resumption runs under the mode, as PyTorch's decorators do for generators.
                gen = fn(*args, **kwargs)
                sent = None
                while True:
                    with self._fresh():
                        try:
                            value = gen.send(sent)
                        except StopIteration as stop:
                            return stop.value
                    try:
                        sent = yield value
                    except GeneratorExit:
                        gen.close()
                        raise
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self._fresh():  # a fresh context per call, so recursion and threads nest
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Context manager and decorator that disables graph recording.

    >>> import lamina
    >>> x = lamina.ones(3, requires_grad=True)
    >>> with lamina.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    _mode = False


class enable_grad(_GradModeContext):
    """Context manager and decorator that enables graph recording (inside `no_grad`).

    >>> import lamina
    >>> x = lamina.ones(3, requires_grad=True)
    >>> with lamina.no_grad():
    ...     with lamina.enable_grad():
    ...         y = x * 2
    >>> y.requires_grad
    True
    """

    _mode = True


class inference_mode(_GradModeContext):
    """`inference_mode()` (or `inference_mode(False)`): like `no_grad` when mode is True.

    >>> import lamina
    >>> with lamina.inference_mode():
    ...     y = lamina.ones(2, requires_grad=True) * 2
    >>> y.requires_grad
    False
    """

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):
            return cls()(mode)
        return object.__new__(cls)

    def __init__(self, mode=True):
        self._inference = bool(mode)

    def __enter__(self):
        self._prev = _grad_mode.enabled
        self._prev_inference = getattr(_grad_mode, "inference", False)
        _grad_mode.enabled = self._prev and not self._inference
        _grad_mode.inference = self._inference  # what is_inference_mode_enabled() reports

    def __exit__(self, *exc):
        _grad_mode.enabled = self._prev
        _grad_mode.inference = self._prev_inference

    def _fresh(self):
        return type(self)(self._inference)


class set_grad_enabled(_GradModeContext):
    """`set_grad_enabled(mode)`: sets grad mode at once; as a context manager or decorator it
    restores the previous mode on exit.

    >>> import lamina
    >>> with lamina.set_grad_enabled(False):
    ...     lamina.is_grad_enabled()
    False
    >>> lamina.is_grad_enabled()
    True
    """

    _takes_function = False

    def __init__(self, mode):
        if not isinstance(mode, (bool, int)):
            raise TypeError(f"set_grad_enabled: mode must be a bool, got {type(mode).__name__}")
        self._prev = _grad_mode.enabled
        self._mode = bool(mode)
        _grad_mode.enabled = self._mode

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _grad_mode.enabled = self._prev

    def _fresh(self):
        ctx = object.__new__(type(self))
        ctx._mode = self._mode
        ctx._prev = _grad_mode.enabled
        _grad_mode.enabled = self._mode
        return ctx

    def __call__(self, fn):
        _grad_mode.enabled = self._prev  # decorating does not change the mode now
        return super().__call__(fn)


# --------------------------------------------------------------------------- Function
# Node creation counter (itertools.count's next() is atomic under the GIL: threads may share it).
_node_seq = itertools.count()

class Function:
    """A differentiable primitive: subclass and define two static methods.

    ``forward(ctx, *args)`` receives NumPy arrays in place of Tensor arguments and returns a
    new array; ``backward(ctx, dy)`` returns one gradient (array or None) per positional
    argument of forward. ``ctx.save_for_backward(*arrays)``, ``ctx.saved_tensors`` and
    ``ctx.needs_input_grad`` work as in PyTorch.

    >>> import numpy as np, lamina
    >>> class Square(lamina.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, dy):
    ...         (x,) = ctx.saved_tensors
    ...         return (2 * x * dy,)
    >>> t = lamina.tensor([3.0], requires_grad=True)
    >>> Square.apply(t).sum().backward(); float(t.grad.item())
    6.0
    """

    __slots__ = ("inputs", "saved_tensors", "needs_input_grad", "seq", "__dict__")
    _saves = False  # set on the instance by save_for_backward (cheaper to test than an unset slot)

    def __init__(self):
        # Creation order: the backward sweep runs in its reverse, as the compiled graph does,
        # so a gradient with 3+ contributions is summed in the same order by both (bit for bit).
        self.seq = next(_node_seq)

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays
        self._saves = True

    @property
    def op(self):
        return type(self).__name__

    # ---- what PyTorch code reads off a grad_fn
    def name(self):
        """PyTorch's name for this node: `(x * 2).grad_fn.name() == 'MulBackward0'`."""
        return torch_node_name(self)

    @property
    def next_functions(self):
        """((node, 0), ...) per tensor input, as PyTorch's: the input's grad_fn, an AccumulateGrad
        for a leaf that requires grad, or None for one that does not."""
        inputs = self.inputs
        if inputs is None:  # freed by backward: the producers are still known, the leaves are not
            return tuple((n, 0) for n in self.input_nodes if n is not None)
        pairs = [(a, n) for a, n in zip(inputs, self.input_nodes) if isinstance(a, Tensor)]
        if self.op == "Linear" and len(pairs) == 3:  # PyTorch's addmm lists the bias first
            pairs = [pairs[2], pairs[0], pairs[1]]
        return tuple((n if n is not None else AccumulateGrad(t) if t.requires_grad else None, 0)
                     for t, n in pairs)

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    # Ops that return views of their input (basic indexing) read strided arrays; the rest get
    # C-contiguous copies of strided views, since the kernels read C-contiguous buffers.
    _reads_strided = False

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = cls()
        requires = False
        grad_on = _grad_mode.enabled
        raw = []
        for a in args:
            if isinstance(a, Tensor):
                d = a._data
                # Only views and leaves (from_numpy of a strided array) can be strided; an op's
                # own output is C-contiguous, so it skips the flags lookup (~50 ns). Most
                # kernels read C-contiguous buffers.
                if (not cls._reads_strided and (a._base is not None or a._node is None)
                        and not d.flags.c_contiguous):
                    d = np.ascontiguousarray(d)
                raw.append(d)
                if grad_on and a.requires_grad:
                    requires = True
            else:
                raw.append(a)
        if requires:
            needs, nodes = [], []
            for a in args:
                if isinstance(a, Tensor):
                    needs.append(a.requires_grad)
                    nodes.append(a._node)
                else:
                    needs.append(False)
                    nodes.append(None)
            ctx.needs_input_grad = tuple(needs)
        out = cls.forward(ctx, *raw, **kwargs)
        if type(out) is not np.ndarray:  # NumPy ufuncs turn 0-d results into scalars
            out = np.asarray(out)
        t = _object_new(Tensor)  # the fields Tensor.__new__ sets, inline: this is the hot path
        t._data = out
        t.grad = None
        t._vc = None
        t._base = None
        t._view_fn = None
        if requires and out.dtype.kind == "f":  # integer and bool results never require grad
            t.requires_grad = True
            ctx.inputs = args
            # The producer of each input now: a later in-place op may give the tensor a new one.
            ctx.input_nodes = tuple(nodes)
            if ctx._saves:
                ctx.saved_versions = _saved_versions(ctx.saved_tensors, raw, args, t)
            t._node = ctx
        else:
            t.requires_grad = False
            t._node = None
        tracer = _grad_mode.tracer
        if tracer is not None:
            tracer.record(cls, args, kwargs, t)
        return t

    @staticmethod
    def forward(ctx, *args):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, dy):
        raise RuntimeError(f"no gradient rule for {type(ctx).__name__}")


_object_new = object.__new__


class AccumulateGrad:
    """The node PyTorch shows in `next_functions` for a leaf that requires grad: where its
    gradient is summed into `.grad`. `variable` is the leaf."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "AccumulateGrad"

    next_functions = ()

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


class _VersionCounter:
    """How many in-place writes a tensor's storage has had; shared by a tensor and its views."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


def _version_counter(t):
    vc = t._vc
    if vc is None:
        vc = t._vc = _VersionCounter()
    return vc


def _saved_versions(saved, raw, args, out):
    """[(counter, version at save, input index or -1 for the output)] for each saved array that
    is an input's or the output's storage, so backward can refuse tensors modified since."""
    found = []
    out_data = out._data
    for s in saved:
        if s is out_data:
            found.append((_version_counter(out), 0, -1))
            continue
        i = 0
        for r in raw:
            if s is r:
                a = args[i]
                if isinstance(a, Tensor):
                    vc = a._vc
                    if vc is None:
                        vc = a._vc = _VersionCounter()
                    found.append((vc, vc.value, i))
                break
            i += 1
    return found


def _check_saved_versions(node):
    for vc, version, index in node.saved_versions:
        if vc.value != version:
            which = "output 0" if index < 0 else f"input {index}"
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"in-place operation: {which} of {node.op}, saved at version {version}, is now at "
                f"version {vc.value}. Use an out-of-place op or .clone() the tensor before "
                "modifying it.")


def reduce_to_shape(g, shape):
    """Sum a broadcast gradient back to `shape` (the one place broadcasting is undone).

    A float gradient whose target repeats as one block of dims (a bias, a scalar) is summed by
    _C.bias_grad_split, the kernel the graph executor's reduce_broadcast runs, so eager and
    compiled gradients are bit-identical."""
    if g.shape == shape:
        return g
    split = bcast_split(g.shape, shape) if g.dtype in (np.float32, np.float64) else None
    if split is not None:
        out = np.empty(shape, g.dtype)
        _C.bias_grad_split(np.ascontiguousarray(g), out, *split)
        return out
    if g.ndim > len(shape):
        g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _topological_order(root_nodes):
    """Nodes reachable from root_nodes in creation order (inputs' producers first: a node is
    made after the nodes it reads), found without recursion."""
    order = []
    seen = set()
    for root_node in root_nodes:
        if id(root_node) in seen:
            continue
        seen.add(id(root_node))
        stack = [(root_node, iter(root_node.input_nodes))]
        while stack:
            node, it = stack[-1]
            for child in it:
                if child is not None and id(child) not in seen:
                    if child.inputs is None:
                        raise RuntimeError(
                            f"trying to backward through the graph a second time ({child.op}); "
                            "pass retain_graph=True to the first backward()")
                    seen.add(id(child))
                    stack.append((child, iter(child.input_nodes)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.sort(key=_seq_key)
    return order


_seq_key = operator.attrgetter("seq")


def _seed(root, grad):
    """The gradient a sweep starts from at `root`: `grad`, or ones for a one-element root."""
    if not root.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    if grad is None:
        if root._data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs, got shape {tuple(root.shape)}")
        return np.ones_like(root._data)
    g = grad._data if isinstance(grad, Tensor) else np.asarray(grad, dtype=root.dtype)
    if g.shape != root.shape:
        raise ValueError(f"grad: expected shape {tuple(root.shape)}, got {g.shape}")
    return g


def run_backward(root, grad=None, retain_graph=False):
    """Reverse sweep from `root`, seeded with `grad` (ones for a scalar)."""
    g = _seed(root, grad)
    node = root._node
    if node is None:  # a leaf: its gradient is the seed
        _accumulate_leaf(root, _leaf_hooks(root, g) if _hooked_tensors else g)
        _run_post_accumulate_hooks(root)
        return
    if node.inputs is None:
        raise RuntimeError(f"trying to backward through the graph a second time ({node.op}); "
                           "pass retain_graph=True to the first backward()")
    _sweep([node], {id(node): g}, retain_graph)


def run_backward_many(roots, grads, retain_graph=False, capture=None):
    """One reverse sweep from several roots (their seeds summed where they share a node). With
    `capture` ({id(tensor): [tensor, None]}), the gradients of those tensors are collected into
    the entries and no leaf's `.grad` is touched (autograd.grad, backward(inputs=...))."""
    seeds, nodes = {}, []
    for r, g in zip(roots, grads):
        g = _seed(r, g)
        if r._node is None:  # a leaf root: its seed is its whole gradient from this root
            if capture is None:
                _accumulate_leaf(r, _leaf_hooks(r, g) if _hooked_tensors else g)
                _run_post_accumulate_hooks(r)
            elif id(r) in capture:
                _add_captured(capture[id(r)], g)
            continue
        if r._node.inputs is None:
            raise RuntimeError(f"trying to backward through the graph a second time ({r._node.op}); "
                               "pass retain_graph=True to the first backward()")
        k = id(r._node)
        if k in seeds:
            seeds[k] = seeds[k] + g
        else:
            seeds[k] = g
            nodes.append(r._node)
    if nodes:
        _sweep(nodes, seeds, retain_graph, capture)


def _add_captured(entry, g):
    entry[1] = np.array(g, copy=True) if entry[1] is None else entry[1] + g


def _sweep(root_nodes, grads, retain_graph, capture=None):
    # IEEE results (1/0 = inf, 0/0 = nan) without NumPy's RuntimeWarnings, as PyTorch gives them
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        _sweep_quiet(root_nodes, grads, retain_graph, capture)


def _sweep_quiet(root_nodes, grads, retain_graph, capture):
    order = _topological_order(root_nodes)
    # Leaves with post-accumulate hooks: how many contributions each still awaits in this sweep.
    pending = _pending_hook_leaves(order) if _hooked_leaves and capture is None else None
    # Non-leaf tensors to capture, by the node that made them; tensor hooks: the leaves' summed
    # gradients wait for the end of the sweep (a hook sees a leaf's whole gradient, as in PyTorch).
    captured_nodes = ({id(e[0]._node): e for e in capture.values() if e[0]._node is not None}
                      if capture else None)
    held_leaves = {} if _hooked_tensors and capture is None else None
    for node in reversed(order):
        dy = grads.pop(id(node), None)
        if dy is None:
            continue
        if type(dy) is not np.ndarray or not dy.flags.c_contiguous:
            dy = np.array(dy, order="C")  # kernels read C-contiguous arrays, not views or scalars
        if _hooked_tensors and "hooked_output" in node.__dict__:
            dy = _output_hooks(node, dy)
        if captured_nodes is not None and id(node) in captured_nodes:
            _add_captured(captured_nodes[id(node)], dy)
        if "saved_versions" in node.__dict__:
            _check_saved_versions(node)
        in_grads = type(node).backward(node, dy)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        inputs = node.inputs
        if len(in_grads) < len(inputs):
            raise RuntimeError(f"{node.op}.backward returned {len(in_grads)} gradients for {len(inputs)} inputs")
        for t, child, need, gi in zip(inputs, node.input_nodes, node.needs_input_grad, in_grads):
            if not need:
                continue
            if gi is None:
                raise RuntimeError(f"no gradient rule for input of {node.op}")
            if gi.shape != t._data.shape:
                gi = reduce_to_shape(gi, t._data.shape)
            if gi.dtype != t._data.dtype:
                gi = gi.astype(t._data.dtype)
            if child is None:
                if capture is not None:
                    if id(t) in capture:
                        _add_captured(capture[id(t)], gi)
                elif held_leaves is not None and getattr(t, "_grad_hooks", None):
                    held = held_leaves.get(id(t))
                    held_leaves[id(t)] = [t, np.array(gi, copy=True)] if held is None else [t, held[1] + gi]
                else:
                    _accumulate_leaf(t, gi)
                    if pending and id(t) in pending:
                        _count_down_hooks(pending, t)
            else:
                k = id(child)
                prev = grads.get(k)
                # Fan-out: a value used by several ops receives the sum of their gradients.
                grads[k] = gi if prev is None else prev + gi
        if not retain_graph:
            node.inputs = None
            node.saved_tensors = None
    if held_leaves:
        for t, g in held_leaves.values():
            _accumulate_leaf(t, _leaf_hooks(t, g))
            if pending and id(t) in pending:
                pending[id(t)][1] = 1
                _count_down_hooks(pending, t)
    if not retain_graph:
        for n in order:
            n.inputs = None


def _check_create_graph(create_graph, where):
    if create_graph:
        raise NotImplementedError(f"{where}(create_graph=True): higher-order gradients are not supported by "
                                  "lamina (its backward rules compute on arrays, not on recorded tensors)")


def _as_input_list(inputs, where):
    seq = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not seq:
        raise RuntimeError(f"{where}: 'inputs' argument to backward() cannot be empty")
    for i, t in enumerate(seq):
        if not isinstance(t, Tensor):
            raise TypeError(f"{where}: inputs[{i}] must be a Tensor, got {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError(f"{where}: inputs[{i}] does not require grad")
    return seq


def capture_grads(inputs, roots, grads, retain_graph):
    """The gradients of `roots` (seeded with `grads`) with respect to each of `inputs`, as arrays
    (None where an input is not reached); no `.grad` is touched."""
    capture = {}
    for t in inputs:
        capture.setdefault(id(t), [t, None])
    run_backward_many(roots, grads, retain_graph, capture)
    return [capture[id(t)][1] for t in inputs]


def accumulate_into(inputs, roots, grads, retain_graph):
    """backward(inputs=...): gradients summed into those tensors' `.grad` only."""
    for t, g in zip(inputs, capture_grads(inputs, roots, grads, retain_graph)):
        if g is not None:
            _accumulate_leaf(t, g)
            if t._node is None:
                _run_post_accumulate_hooks(t)


class _HookHandle:
    def __init__(self, tensor, key):
        self._tensor, self._key = weakref.ref(tensor), key

    def remove(self):
        t = self._tensor()
        hooks = getattr(t, "_grad_hooks", None) if t is not None else None
        if hooks and hooks.pop(self._key, None) is not None:
            _unwatch_tensor(t)


_hook_keys = itertools.count()


def _add_tensor_hook(t, hook):
    hooks = getattr(t, "_grad_hooks", None)
    if hooks is None:
        t._grad_hooks = hooks = {}
    key = next(_hook_keys)
    hooks[key] = hook
    _watch_tensor(t)
    return _HookHandle(t, key)


def _watch_tensor(t):
    global _hooked_tensors
    _hooked_tensors += 1
    if t._node is not None:
        t._node.hooked_output = weakref.ref(t)


def _unwatch_tensor(t):
    global _hooked_tensors
    _hooked_tensors = max(0, _hooked_tensors - 1)


# ---- tensor hooks (Tensor.register_hook, Tensor.retain_grad)
# Number of tensors holding gradient hooks or retaining their gradient: the sweep skips this
# bookkeeping entirely while it is 0.
_hooked_tensors = 0


def _apply_hooks(t, g):
    for hook in list(getattr(t, "_grad_hooks", {}).values()):
        r = hook(Tensor._wrap(g))
        if r is not None:
            r = r._data if isinstance(r, Tensor) else np.asarray(r)
            if r.shape != g.shape:
                raise RuntimeError(f"hook: expected a gradient of shape {tuple(g.shape)}, got {tuple(r.shape)}")
            g = r.astype(g.dtype, copy=False)
    return g


def _leaf_hooks(t, g):
    return _apply_hooks(t, g) if getattr(t, "_grad_hooks", None) else g


def _output_hooks(node, dy):
    """The hooks of the non-leaf tensor `node` made, then retain_grad's copy into its .grad."""
    t = node.hooked_output()
    if t is None or t._node is not node:
        return dy
    dy = _apply_hooks(t, dy)
    if getattr(t, "_retains_grad", False):
        _accumulate_leaf(t, dy)
    return dy


# Number of leaves holding post-accumulate-grad hooks: run_backward skips the hook
# bookkeeping entirely while it is 0.
_hooked_leaves = 0


class _RemovableHandle:
    """What register_post_accumulate_grad_hook returns: `.remove()` unregisters the hook."""

    def __init__(self, tensor, key):
        self._tensor, self._key = tensor, key

    def remove(self):
        global _hooked_leaves
        hooks = getattr(self._tensor, "_post_acc_hooks", None)
        if hooks and hooks.pop(self._key, None) is not None and not hooks:
            _hooked_leaves -= 1


def _pending_hook_leaves(order):
    """{id(leaf): [leaf, contributions this sweep]} for the hooked leaves reached from `order`."""
    pending = {}
    for n in order:
        for t, child, need in zip(n.inputs, n.input_nodes, n.needs_input_grad):
            if need and child is None and getattr(t, "_post_acc_hooks", None):
                entry = pending.setdefault(id(t), [t, 0])
                entry[1] += 1
    return pending


def _count_down_hooks(pending, t):
    entry = pending[id(t)]
    entry[1] -= 1
    if entry[1] == 0:  # the last contribution: .grad is final for this backward
        _run_post_accumulate_hooks(t)


def _run_post_accumulate_hooks(t):
    hooks = getattr(t, "_post_acc_hooks", None)
    if hooks:
        for hook in list(hooks.values()):
            hook(t)


def _accumulate_leaf(t, g):
    if t.grad is None:
        # Own the buffer: g may alias an array still referenced by the graph.
        t.grad = Tensor._wrap(np.array(g, copy=True))
    else:
        t.grad._data += g


# --------------------------------------------------------------------------- Tensor
def _legacy_array(args, dtype, what):
    """PyTorch's legacy construction in `dtype`: zeros of the given sizes (ints or one Size; no
    arguments: empty), or the one data argument converted."""
    if args and isinstance(args[0], Size):
        shape = tuple(int(a) for a in args[0])
    elif all(isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)) for a in args):
        shape = tuple(int(a) for a in args) if args else (0,)
    else:
        if len(args) != 1:
            raise TypeError(f"{what}(): expected sizes (ints) or one data argument, got {args!r}")
        return _as_array(args[0], dtype)
    if any(d < 0 for d in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {list(shape)}")
    return np.zeros(shape, dtype)


def _legacy_tensor_data(args, dtype):
    if dtype is not None:
        if len(args) != 1:
            raise TypeError(f"Tensor(data, dtype=...): expected one data argument, got {len(args)}")
        return _as_array(args[0], dtype)
    if len(args) == 1 and isinstance(args[0], Tensor):
        if args[0]._data.dtype != _default_dtype:
            raise TypeError(f"expected {_default_dtype} (the default dtype), got a {args[0]._data.dtype} tensor; "
                            "use lamina.tensor(t) or t.to(dtype)")
        return args[0]._data
    return _legacy_array(args, _default_dtype, "Tensor")


def _typed_tensor_class(dtype, name):
    """lamina.FloatTensor & co: PyTorch's legacy typed constructors (sizes or data of that dtype),
    also accepted by isinstance and by Tensor.type()."""
    def new(cls, *args, device=None):
        return Tensor._wrap(_legacy_array(args, dtype, name))

    class _Meta(type):
        def __instancecheck__(cls, obj):
            return isinstance(obj, Tensor) and obj._data.dtype == dtype

    return _Meta(name, (), {"__new__": new, "dtype": dtype, "__doc__": f"PyTorch's {name}: a {dtype} tensor."})


def _as_array(data, dtype):
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        dtype = check_dtype(dtype)
        if dtype.kind in "iu" and dtype != int64:
            # Python numbers are checked into range as PyTorch does; arrays are cast (wrapping)
            arr = np.array(data, copy=True, order="C")
            if not isinstance(data, np.ndarray) and arr.dtype.kind in "iuf" and arr.size:
                check_int_range(arr.min(), arr.max(), dtype, "data")
            return cast_array(arr, dtype) if arr.dtype != dtype else arr
        return np.array(data, dtype=dtype, copy=True, order="C")
    arr = np.array(data, copy=True, order="C")
    k = arr.dtype.kind
    if k == "f":
        if isinstance(data, np.ndarray) and arr.dtype in _FLOATS:
            return arr
        return arr.astype(_default_dtype if not isinstance(data, np.ndarray) else float32)
    if k in "iu":
        if arr.dtype in _INTS:
            return arr      # NumPy arrays and scalars keep their integer dtype, as in PyTorch
        if k == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise OverflowError(f"data: value {arr.max()} does not fit in int64, the integer dtype "
                                "lamina tensors hold")
        return arr.astype(int64)
    if k == "b":
        return arr
    raise TypeError(f"data: cannot make a tensor from dtype {arr.dtype}; expected float or integer data")


class Tensor:
    """An n-dimensional array with automatic differentiation.

    >>> import lamina
    >>> x = lamina.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.numpy().tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """

    # _vc: the version counter (made on first use, shared with views and detach());
    # _base/_view_fn: for a view, the tensor owning the storage and how to take this view of
    # an array laid out like the base's (so in-place writes can rebase the base's history).
    # _post_acc_hooks: register_post_accumulate_grad_hook's hooks (unset until the first).
    # _grad_hooks, _retains_grad: register_hook's hooks and retain_grad()'s flag (unset until used).
    # _data: the storage, a numpy array (kernels read it directly); `.data` is PyTorch's view of it.
    __slots__ = ("_data", "grad", "requires_grad", "_node", "_vc", "_base", "_view_fn",
                 "_post_acc_hooks", "_grad_hooks", "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # so ndarray OP Tensor defers to Tensor's reflected operator

    def __new__(cls, *args, **kwargs):
        # Every construction path (including Tensor.__new__(Tensor)) gets all fields set.
        t = object.__new__(cls)
        t.grad = None
        t.requires_grad = False
        t._node = None
        t._vc = None
        t._base = None
        t._view_fn = None
        return t

    def __init__(self, *args, dtype=None, requires_grad=False, device=None):
        # PyTorch's legacy constructor: Tensor(2, 3) or Tensor(Size) is an uninitialized (here:
        # zero) tensor of that shape, Tensor(data) a tensor of the default float dtype (Tensor([1,
        # 2]) holds 1.0 and 2.0), Tensor() an empty one. lamina.tensor() keeps data's own dtype.
        self._data = _legacy_tensor_data(args, dtype)
        if requires_grad:
            self.requires_grad_(True)

    def __reduce_ex__(self, protocol):
        # Pickle and deepcopy give a standalone tensor of the same class: the values, grad and
        # requires_grad travel; view links, version counter and graph do not (nor could the
        # view's function be pickled).
        # np.array, not np.ascontiguousarray: that one turns a 0-d array into shape (1,)
        return (_rebuild_tensor, (type(self), np.array(self._data, order="C", copy=True), self.requires_grad,
                                  self.grad))

    @staticmethod
    def _wrap(arr, requires_grad=False):
        t = Tensor.__new__(Tensor)
        t._data = arr
        t.requires_grad = requires_grad
        return t

    # ---- properties
    @property
    def data(self):
        """PyTorch's `.data`: a tensor sharing this one's storage, outside autograd (no history,
        requires_grad=False, its own version counter), so `p.data.mul_(0.5)` or
        `m.weight.data.normal_(0, 0.02)` writes the parameter without being recorded."""
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value):
        # PyTorch's `x.data = y`: x takes y's storage (shape and dtype may change); history kept.
        if isinstance(value, Tensor):
            self._data = value._data
        elif isinstance(value, np.ndarray):
            self._data = value
        else:
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")

    @property
    def shape(self):
        return Size(self._data.shape)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def grad_fn(self):
        return self._node

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def T(self):
        if self.ndim < 2:
            return self
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return Size(self._data.shape) if dim is None else self._data.shape[normalize_dim(dim, self.ndim)]

    def dim(self):
        return self._data.ndim

    def numel(self):
        return self._data.size

    def __len__(self):
        return len(self._data)

    def item(self):
        _check_read(self, "item")
        return self._scalar()

    def _scalar(self):
        if self._data.size != 1:
            raise ValueError(f"item(): expected a tensor with one element, got shape {tuple(self.shape)}")
        return self._data.item()

    def tolist(self):
        _check_read(self, "tolist")
        return self._data.tolist()

    def numpy(self, *, force=False):
        """The underlying NumPy array, sharing memory, as PyTorch's `Tensor.numpy` on CPU.

        A tensor that requires grad is refused with PyTorch's RuntimeError unless
        `force=True`, which detaches first (lamina tensors are CPU, dense and unconjugated, so
        the forced array still shares memory, as PyTorch's does for such a tensor).

        >>> import lamina
        >>> lamina.tensor([1.0, 2.0]).numpy().tolist()
        [1.0, 2.0]
        >>> lamina.tensor([1.0], requires_grad=True).detach().numpy().tolist()
        [1.0]
        """
        _check_read(self, "numpy")
        if self.requires_grad and not force:
            raise RuntimeError(_NUMPY_REQUIRES_GRAD)
        return self._data

    def __array__(self, dtype=None, copy=None):
        # NumPy 2 protocol: copy=True must copy, copy=False must not (or raise), None: only if
        # needed. Like PyTorch, np.asarray(t) goes through numpy(), so a tensor requiring grad
        # is refused with the same message.
        if self.requires_grad:
            raise RuntimeError(_NUMPY_REQUIRES_GRAD)
        want = self._data.dtype if dtype is None else np.dtype(dtype)
        if copy:
            return np.array(self._data, dtype=want, copy=True)
        if want != self._data.dtype:
            if copy is False:
                raise ValueError(f"__array__: copy=False, but converting dtype {self._data.dtype} to {want} "
                                 "needs a copy")
            return self._data.astype(want)
        return self._data

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # A NumPy ufunc on a Tensor (np.exp(t), np.add(t, 1)) returns a Tensor over the result, as
        # PyTorch's __array_wrap__ does (0-d results too). NumPy read the input through __array__,
        # so a tensor that requires grad was refused there. A bool result becomes uint8, as
        # PyTorch's __array_wrap__ makes it (np.isnan(t) is a uint8 tensor there too).
        array = np.asarray(array)
        return Tensor._wrap(array.astype(uint8) if array.dtype == bool_ else array)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule over this tensor's memory (DLPack 1.0 when max_version >= (1, 0))."""
        from ._dlpack import export_capsule
        return export_capsule(self._data, self.requires_grad, stream=stream, max_version=max_version,
                              dl_device=dl_device, copy=copy)

    def __dlpack_device__(self):
        return (1, 0)   # (kDLCPU, device 0)

    def __format__(self, spec):
        # f"{loss:.4f}" formats a one-element 0-d tensor's value, as PyTorch does; any other
        # tensor takes only the empty spec (its repr).
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __repr__(self):
        # PyTorch's layout and digits (_tensor_str.py); the dtype is named unless it is the
        # default float, int64 or bool, as PyTorch names it.
        prefix = "tensor("
        indent = len(prefix)
        suffixes = []
        a = self._data
        dt = self.dtype
        shown_dtype = not (dt == _default_dtype or dt == int64 or dt == bool_)
        if a.size == 0:
            if a.ndim != 1:
                suffixes.append(f"size={tuple(a.shape)}")
            body = "[]"
        else:
            body = _tensor_str.array_str(a, indent)
        if shown_dtype:
            suffixes.append(f"dtype=lamina.{dt}")
        if self._node is not None:
            suffixes.append(f"grad_fn=<{self._node.name()}>")
        elif self.requires_grad:
            suffixes.append("requires_grad=True")
        return _tensor_str.add_suffixes(prefix + body, suffixes, indent)

    # ---- autograd
    def requires_grad_(self, requires_grad=True):
        if requires_grad and self._data.dtype not in _FLOATS:
            raise RequiresGradDtypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Sum d(self)/d(leaf) . gradient into each leaf's `.grad` (PyTorch's signature).
        `gradient` is needed unless self has one element; `inputs` limits the accumulation to
        those tensors. `create_graph=True` (gradients that are themselves differentiable) is not
        supported: lamina's backward rules compute on arrays."""
        _check_create_graph(create_graph, "backward")
        retain = bool(retain_graph)
        if inputs is None:
            run_backward(self, gradient, retain)
            return
        accumulate_into(_as_input_list(inputs, "backward"), [self], [gradient], retain)

    def register_hook(self, hook):
        """Call `hook(grad)` with this tensor's gradient each backward; a tensor it returns
        replaces the gradient. Returns a handle whose `.remove()` unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        return _add_tensor_hook(self, hook)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in `.grad` after backward (leaves always do)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node is not None and not getattr(self, "_retains_grad", False):
            self._retains_grad = True
            _watch_tensor(self)

    @property
    def retains_grad(self):
        return self._node is not None and getattr(self, "_retains_grad", False)

    def register_post_accumulate_grad_hook(self, hook):
        """Run `hook(self)` once per backward, after this leaf's `.grad` has received its last
        contribution (as PyTorch's; DistributedDataParallel starts its all-reduces from here).
        Returns a handle whose `.remove()` unregisters the hook.

        >>> import lamina
        >>> w = lamina.ones(2, requires_grad=True)
        >>> seen = []
        >>> h = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
        >>> (w * w + w).sum().backward(); seen
        [[3.0, 3.0]]
        >>> h.remove()
        """
        global _hooked_leaves
        if self._node is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not callable(hook):
            raise TypeError(f"hook: expected a callable, got {type(hook).__name__}")
        hooks = getattr(self, "_post_acc_hooks", None)
        if hooks is None:
            hooks = self._post_acc_hooks = {}
        if not hooks:
            _hooked_leaves += 1
        key = object()
        hooks[key] = hook
        return _RemovableHandle(self, key)

    @property
    def _version(self):
        """How many in-place writes this tensor's storage has had (shared with its views)."""
        return 0 if self._vc is None else self._vc.value

    @property
    def _is_view(self):
        return self._base is not None

    def detach(self):
        """A tensor sharing storage and version counter, outside the graph."""
        t = Tensor._wrap(self._data)
        t._vc = _version_counter(self)
        return t

    def detach_(self):
        self._node = None
        self.requires_grad = False
        return self

    def zero_(self):
        return _inplace.overwrite(self, 0, "zero_")

    def fill_(self, value):
        return _inplace.overwrite(self, value, "fill_")

    def clone(self):
        return _api.Clone.apply(self)

    def copy_(self, src):
        """Copy src (broadcast, cast to this dtype) into this tensor; recorded in the graph."""
        return _inplace.overwrite(self, src, "copy_")

    def add_(self, other, alpha=1):
        return _inplace.binary_inplace(self, other if alpha == 1 else other * alpha, "add_",
                                       np.add, Tensor.__add__)

    def sub_(self, other, alpha=1):
        return _inplace.binary_inplace(self, other if alpha == 1 else other * alpha, "sub_",
                                       np.subtract, Tensor.__sub__)

    def mul_(self, other):
        return _inplace.binary_inplace(self, other, "mul_", np.multiply, Tensor.__mul__)

    def div_(self, other):
        return _inplace.binary_inplace(self, other, "div_", np.true_divide, Tensor.__truediv__)

    # ---- device and dtype (device rules live in _device.py: only the CPU exists)
    @property
    def device(self):
        return _device.CPU

    @property
    def is_cuda(self):
        return False

    def to(self, *args, **kwargs):
        """to(dtype), to(device), to(device, dtype), to(other); returns self when nothing changes.

        >>> import lamina
        >>> lamina.zeros(2).to("cpu", lamina.float64).dtype
        dtype('float64')
        """
        _, dtype, copy = _device.parse_to_args(args, kwargs)
        if dtype is None or dtype == self.dtype:
            return self.clone() if copy else self
        if dtype not in _SUPPORTED:
            raise TypeError(f"to(): dtype must be one of {_DTYPE_NAMES}, got {dtype}")
        return _api.Cast.apply(self, dtype)

    def cpu(self):
        return self

    def cuda(self, device=None, non_blocking=False):
        _device.check_device("cuda" if device is None else device, "cuda()")
        return self

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def long(self):
        return self.to(int64)

    def int(self):
        return self.to(int32)

    def short(self):
        return self.to(int16)

    def char(self):
        return self.to(int8)

    def byte(self):
        return self.to(uint8)

    def bool(self):
        return self.to(bool_)

    def type(self, dtype=None, non_blocking=False):
        """type(): the type's name ("lamina.ByteTensor", as PyTorch's "torch.ByteTensor");
        type(dtype) or type("torch.IntTensor" / "lamina.IntTensor"): this tensor in that dtype."""
        if dtype is None:
            return "lamina." + _TYPE_NAMES[self.dtype]
        if isinstance(dtype, str) and dtype.rsplit(".", 1)[-1] in _TYPE_DTYPES:
            dtype = _TYPE_DTYPES[dtype.rsplit(".", 1)[-1]]
        elif isinstance(dtype, type) and isinstance(getattr(dtype, "dtype", None), np.dtype):
            dtype = dtype.dtype         # lamina.LongTensor and the other typed classes
        return self.to(check_dtype(dtype))

    def new(self, *args, **kwargs):
        """PyTorch's legacy x.new(...): Tensor(...) in this tensor's dtype (sizes or data)."""
        return Tensor._wrap(_legacy_array(args, self._data.dtype, "new"))

    # ---- arithmetic (NumPy broadcasting; gradients reduced back in reduce_to_shape)
    def __add__(self, o):
        return _api.Add.apply(*_operands(self, o))

    def __radd__(self, o):
        return _api.Add.apply(*_operands(o, self))

    def __sub__(self, o):
        _check_bool_sub(self, o)
        return _api.Sub.apply(*_operands(self, o))

    def __rsub__(self, o):
        _check_bool_sub(self, o)
        return _api.Sub.apply(*_operands(o, self))

    def __mul__(self, o):
        return _api.Mul.apply(*_operands(self, o))

    def __rmul__(self, o):
        return _api.Mul.apply(*_operands(o, self))

    def __truediv__(self, o):
        return _api.Div.apply(*_operands(self, o, divide=True))

    def __rtruediv__(self, o):
        return _api.Div.apply(*_operands(o, self, divide=True))

    def __floordiv__(self, o):
        return _floor_divide(self, o)

    def __rfloordiv__(self, o):
        return _floor_divide(o, self)

    def __mod__(self, o):
        return _remainder(self, o)

    def __rmod__(self, o):
        return _remainder(o, self)

    def __neg__(self):
        return _api.Neg.apply(self)

    def __abs__(self):
        return self.abs()

    def __pos__(self):
        return self

    def __pow__(self, p):
        if isinstance(p, Tensor):
            return _api.PowTensor.apply(*_operands(self, p))
        x = self
        if isinstance(p, (float, np.floating)) and self._data.dtype.kind != "f":
            x = _api.Cast.apply(self, _default_dtype)  # int ** 0.5 is a float, as in PyTorch
        if isinstance(p, (int, np.integer)) and not isinstance(p, bool) and x._data.dtype.kind != "f":
            if x._data.dtype.kind in "iu":   # PyTorch converts the exponent into the dtype, checked
                check_int_range(int(p), int(p), x._data.dtype, "exponent")
            return _api.Pow.apply(x, int(p))  # int ** int stays an integer
        return _api.Pow.apply(x, float(p))

    def __rpow__(self, base):
        return _api.PowTensor.apply(*_operands(base, self))

    def __matmul__(self, o):
        return _api.matmul(self, o if isinstance(o, Tensor) else Tensor(o, dtype=self.dtype))

    def __rmatmul__(self, o):
        return _api.matmul(Tensor(o, dtype=self.dtype), self)

    def __iadd__(self, o):
        return _inplace.binary_inplace(self, o, "add_", np.add, Tensor.__add__)

    def __isub__(self, o):
        return _inplace.binary_inplace(self, o, "sub_", np.subtract, Tensor.__sub__)

    def __imul__(self, o):
        return _inplace.binary_inplace(self, o, "mul_", np.multiply, Tensor.__mul__)

    def __itruediv__(self, o):
        return _inplace.binary_inplace(self, o, "div_", np.true_divide, Tensor.__truediv__)

    def _check_inplace(self):
        _inplace.check_inplace(self, "in-place operation")

    # comparisons: no gradient, bool tensors
    def _cmp(self, o, f):
        if getattr(o, "__array_ufunc__", 0) is None:
            return NotImplemented    # an object that compares itself (pytest.approx): as PyTorch
        out = Tensor._wrap(f(self._data, cmp_operand(self._data, o)))
        tracer = _grad_mode.tracer
        if tracer is not None:   # a comparison of a traced value is data too
            tracer.derive(out, self, f.__name__)
        return out

    def __eq__(self, o):
        return self._cmp(o, np.equal)

    def __ne__(self, o):
        return self._cmp(o, np.not_equal)

    def __lt__(self, o):
        return self._cmp(o, np.less)

    def __le__(self, o):
        return self._cmp(o, np.less_equal)

    def __gt__(self, o):
        return self._cmp(o, np.greater)

    def __ge__(self, o):
        return self._cmp(o, np.greater_equal)

    __hash__ = object.__hash__

    def __bool__(self):
        _check_read(self, "__bool__")
        if self._data.size != 1:
            raise ValueError("the truth value of a tensor with more than one element is ambiguous")
        return bool(self._data)

    def __float__(self):
        _check_read(self, "__float__")
        return float(self._scalar())

    def __int__(self):
        _check_read(self, "__int__")
        return int(self._scalar())

    def __index__(self):
        _check_read(self, "__index__")
        if self.dtype.kind not in "iu":
            raise TypeError("only integer tensors can be used as an index")
        return int(self.item())

    def __getitem__(self, idx):
        """Basic indexing (ints, slices, None, Ellipsis) gives a view sharing storage; advanced
        indexing (tensors, lists, bools) gives a copy, as in PyTorch."""
        return _inplace.getitem(self, _unwrap_index(idx))

    def __setitem__(self, idx, value):
        if isinstance(idx, Tensor) and idx._data.dtype == uint8 and not isinstance(value, Tensor):
            raise RuntimeError("setitem: masked_fill_ only supports boolean masks, but got mask with dtype "
                               "uint8 (as PyTorch); use a bool mask")
        _inplace.setitem(self, _unwrap_index(idx), value)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ---- math
    def _as_float(self):
        """Integer and bool inputs of float functions (exp, sqrt, ...) become the default float
        dtype first, as in PyTorch (NumPy would give float16 for uint8, float64 for int64)."""
        return self if self._data.dtype.kind == "f" else _api.Cast.apply(self, _default_dtype)

    def exp(self):
        return _api.Exp.apply(self._as_float())

    def log(self):
        return _api.Log.apply(self._as_float())

    def sqrt(self):
        return _api.Pow.apply(self._as_float(), 0.5)

    def abs(self):
        return _api.Abs.apply(self)

    def sin(self):
        return _api.Sin.apply(self._as_float())

    def cos(self):
        return _api.Cos.apply(self._as_float())

    def relu(self):
        return _api.activation(self, "relu")

    def sigmoid(self):
        return _api.activation(self, "sigmoid")

    def tanh(self):
        return _api.activation(self, "tanh")

    def softmax(self, dim=-1):
        return _api.softmax(self, normalize_dim(dim, self.ndim))

    def log_softmax(self, dim=-1):
        return _api.log_softmax(self, normalize_dim(dim, self.ndim))

    def clamp(self, min=None, max=None):
        x = self
        if self._data.dtype.kind in "iu":
            # PyTorch: a float bound makes the result float; an integer bound is converted into
            # the tensor's dtype with its overflow check (uint8 clamp(max=300) raises)
            dt = _promotion.result_type([self] + [b for b in (min, max) if b is not None], _default_dtype)
            if dt != self._data.dtype:
                x = _api.Cast.apply(self, dt)
            min, max = _int_bound(min, dt), _int_bound(max, dt)
        return _api.Clamp.apply(x, min, max)

    def sum(self, dim=None, keepdim=False, *, dtype=None):
        """Integer and bool tensors sum into int64, as in PyTorch (`dtype` casts first, and
        an integer `dtype` is also the result's)."""
        x = self if dtype is None else self.to(dtype)
        out = _api.Sum.apply(x, normalize_dims(dim, x.ndim), keepdim)
        return out if dtype is None or out.dtype == x.dtype else out.to(x.dtype)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if x._data.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating "
                               f"point, got {x.dtype}; pass dtype=lamina.float32 or call .float() first")
        return _api.Mean.apply(x, normalize_dims(dim, x.ndim), keepdim)

    def max(self, dim=None, keepdim=False):
        return self._max_min(dim, keepdim, _api.max_)

    def min(self, dim=None, keepdim=False):
        return self._max_min(dim, keepdim, _api.min_)

    def _max_min(self, dim, keepdim, op):
        if dim is None:
            return op(self)
        d = normalize_dim(dim, self.ndim)
        if self.ndim == 0:  # PyTorch accepts dim 0 / -1 on a 0-d tensor: the value, index 0
            return op(self.reshape(1), 0, False)
        return op(self, d, keepdim)

    def _check_arg_reduce(self, name):
        if self._data.dtype == bool_:
            raise RuntimeError(f"{name}(): does not support bool input (as PyTorch); convert it with .int() first")

    def argmax(self, dim=None, keepdim=False):
        self._check_arg_reduce("argmax")
        if dim is None:
            return Tensor._wrap(np.asarray(self._data.argmax(), dtype=int64))
        d = normalize_dim(dim, self.ndim)
        if self.ndim == 0:
            return Tensor._wrap(np.zeros((), dtype=int64))
        return Tensor._wrap(self._data.argmax(axis=d, keepdims=keepdim).astype(int64, copy=False))

    def argmin(self, dim=None, keepdim=False):
        self._check_arg_reduce("argmin")
        if dim is None:
            return Tensor._wrap(np.asarray(self._data.argmin(), dtype=int64))
        d = normalize_dim(dim, self.ndim)
        if self.ndim == 0:
            return Tensor._wrap(np.zeros((), dtype=int64))
        return Tensor._wrap(self._data.argmin(axis=d, keepdims=keepdim).astype(int64, copy=False))

    # ---- shape
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = _check_shape(shape, "reshape")
        contiguous = self._data.flags.c_contiguous
        out = _api.Reshape.apply(self, shape)
        if contiguous:  # NumPy reshaped the storage itself: a view, as in PyTorch
            target = out._data.shape
            _inplace.mark_view(out, self, lambda a: a.reshape(target))
        return out

    def view(self, *shape):
        """The same storage seen with another shape (PyTorch's Tensor.view): writes through either
        show in both. Where the strides make that impossible (a transposed matrix flattened, say)
        it raises RuntimeError, as PyTorch does; .reshape() copies in that case.

        >>> import lamina
        >>> x = lamina.zeros(2, 3); v = x.view(3, 2); v[0, 0] = 5.0; x[0, 0].item()
        5.0
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = _check_shape(shape, "view")
        if not self._data.flags.c_contiguous and self._data.size > 0:
            try:
                probe = self._data.reshape(shape)
            except ValueError:
                probe = None       # a wrong number of elements: reshape below names it
            if probe is not None:
                if not np.may_share_memory(probe, self._data):
                    raise RuntimeError("view size is not compatible with input tensor's size and stride (at "
                                       "least one dimension spans across two contiguous subspaces). Use "
                                       ".reshape(...) instead.")
                # reshape would copy a strided input: view its storage instead
                return _inplace.reshape_view(self, probe.shape)
        return self.reshape(shape)

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s = normalize_dim(start_dim, nd)
        e = normalize_dim(end_dim, nd)
        if s > e:
            raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
        shape = self.shape[:s] + (-1,) + self.shape[e + 1:]
        if any(d == 0 for d in self.shape):
            n = 1
            for d in self.shape[s:e + 1]:
                n *= d
            shape = self.shape[:s] + (n,) + self.shape[e + 1:]
        return self.reshape(shape)

    def transpose(self, dim0, dim1):
        nd = self.ndim
        perm = list(range(nd))
        d0, d1 = normalize_dim(dim0, nd), normalize_dim(dim1, nd)
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return self.permute(perm)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t(): expected a tensor with <= 2 dimensions, got {self.ndim}")
        return self.T

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        nd = self.ndim
        if len(dims) != nd:
            raise ValueError(f"permute: expected {nd} dims, got {len(dims)}")
        dims = tuple(normalize_dim(d, nd) for d in dims)
        if sorted(dims) != list(range(nd)):
            raise ValueError(f"permute: dims {dims} are not a permutation of 0..{nd - 1}")
        return _inplace.mark_view(_api.Permute.apply(self, dims), self, lambda a: a.transpose(dims))

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            d = normalize_dim(dim, self.ndim)
            shape = self.shape if self.shape[d] != 1 else self.shape[:d] + self.shape[d + 1:]
        return self.reshape(shape)

    def unsqueeze(self, dim):
        d = normalize_dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def expand(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = _check_shape(shape, "expand", one_inferred=False)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise RuntimeError(f"expand: the number of sizes provided ({len(shape)}) must be greater "
                               f"or equal to the number of dimensions in the tensor ({self.ndim})")
        for i, s in enumerate(shape[:lead]):
            if s == -1:
                raise RuntimeError(f"expand: the expanded size of the tensor (-1) isn't allowed in a "
                                   f"leading, non-existing dimension {i}")
        shape = tuple(s if s != -1 else self.shape[i - lead] for i, s in enumerate(shape))
        for i in range(self.ndim):
            if self.shape[i] != 1 and shape[lead + i] != self.shape[i]:
                raise RuntimeError(f"expand: the expanded size of the tensor ({shape[lead + i]}) must "
                                   f"match the existing size ({self.shape[i]}) at non-singleton "
                                   f"dimension {lead + i}; target sizes {list(shape)}, tensor sizes "
                                   f"{list(self.shape)}")
        return _inplace.mark_view(_api.Expand.apply(self, shape), self, lambda a: np.broadcast_to(a, shape))

    def contiguous(self):
        """This tensor if its storage is C-contiguous, else a contiguous copy (a strided view)."""
        return self if self._data.flags.c_contiguous else _api.Clone.apply(self)

    def is_contiguous(self):
        return bool(self._data.flags.c_contiguous)


def _int_bound(b, dtype):
    if dtype.kind not in "iu" or b is None:
        return b
    if isinstance(b, Tensor):
        return b._data if b._data.dtype == dtype else cast_array(b._data, dtype)
    if isinstance(b, (int, np.integer)) and not isinstance(b, bool):
        check_int_range(int(b), int(b), dtype, "clamp")
        return wrap_int_scalar(b, dtype)
    return b


def _index_storage(t):
    """A Tensor used as an index, as NumPy reads it: PyTorch takes uint8 as a (deprecated) mask
    and refuses int8/int16."""
    a = t._data
    dt = a.dtype
    if dt == uint8:
        import warnings
        warnings.warn("indexing with dtype lamina.uint8 is now deprecated, please use a dtype lamina.bool "
                      "instead (a uint8 index is a mask, as in PyTorch)", UserWarning, stacklevel=4)
        return a.astype(bool_)
    if dt in (int8, int16) or dt.kind == "f":
        raise IndexError(f"index: tensors used as indices must be long, int, byte or bool tensors, got {dt}")
    return a


def _unwrap_index(idx):
    if isinstance(idx, Tensor):
        return _index_storage(idx)
    if isinstance(idx, tuple):
        return tuple(_index_storage(i) if isinstance(i, Tensor) else i for i in idx)
    return idx


def _rebuild_tensor(cls, data, requires_grad, grad):
    t = cls.__new__(cls)
    t._data = data
    t.requires_grad = requires_grad
    t.grad = grad
    return t


def _check_shape(shape, op, one_inferred=True):
    """PyTorch's checks on a requested shape: ints, nothing below -1, at most one -1 (when -1
    means "inferred"; for expand it means "keep")."""
    out = []
    inferred = None
    for i, s in enumerate(shape):
        if isinstance(s, Tensor):
            s = s.__index__()
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{op}: shape entries must be ints, got {type(s).__name__} at index {i}")
        s = int(s)
        if s < -1:
            raise RuntimeError(f"{op}: invalid shape dimension {s} at index {i} of shape {list(shape)}")
        if s == -1:
            if inferred is not None and one_inferred:
                raise RuntimeError(f"{op}: only one dimension can be inferred, got -1 at indices "
                                   f"{inferred} and {i}")
            inferred = i
        out.append(s)
    return tuple(out)


def _operands(a, b, divide=False):
    """a and b as Tensors of PyTorch's common dtype (casts are differentiable)."""
    ta, tb = type(a) is Tensor, type(b) is Tensor
    if ta and tb:
        dt = a._data.dtype
        if dt == b._data.dtype and (not divide or dt.kind == "f"):
            return a, b
    elif ta and type(b) in (float, int) and a._data.dtype.kind == "f":
        return a, Tensor._wrap(np.asarray(b, dtype=a._data.dtype))
    elif tb and type(a) in (float, int) and b._data.dtype.kind == "f":
        return Tensor._wrap(np.asarray(a, dtype=b._data.dtype)), b
    if not isinstance(a, (Tensor, int, float, bool, np.number, np.bool_)):
        a = Tensor._wrap(_as_array(a, None))
    if not isinstance(b, (Tensor, int, float, bool, np.number, np.bool_)):
        b = Tensor._wrap(_as_array(b, None))
    dt = _promotion.result_type((a, b), _default_dtype)
    if divide:
        dt = _promotion.true_divide_type(dt, _default_dtype)
    return _cast_to(a, dt), _cast_to(b, dt)


def _cast_to(x, dtype):
    if isinstance(x, Tensor):
        return x if x._data.dtype == dtype else _api.Cast.apply(x, dtype)
    if dtype.kind in "iu" and isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return Tensor._wrap(wrap_int_scalar(x, dtype))
    return Tensor._wrap(np.asarray(x, dtype=dtype))


def cmp_operand(a, o):
    """The other operand of a comparison with array `a`: a Tensor's storage, or a Python integer
    wrapped into `a`'s integer dtype as PyTorch does (uint8 tensor == -1 compares with 255)."""
    if isinstance(o, Tensor):
        return o._data
    if a.dtype.kind in "iu" and isinstance(o, (int, np.integer)) and not isinstance(o, (bool, np.bool_)):
        return wrap_int_scalar(o, a.dtype)
    return o


_TYPE_NAMES = {float32: "FloatTensor", float64: "DoubleTensor", int64: "LongTensor", int32: "IntTensor",
               int16: "ShortTensor", int8: "CharTensor", uint8: "ByteTensor", bool_: "BoolTensor"}
_TYPE_DTYPES = {v: k for k, v in _TYPE_NAMES.items()}
FloatTensor, DoubleTensor, LongTensor, IntTensor, ShortTensor, CharTensor, ByteTensor, BoolTensor = (
    _typed_tensor_class(dt, name) for dt, name in _TYPE_NAMES.items())


def _derive(out, src, what):
    tracer = _grad_mode.tracer
    if tracer is not None:   # a value computed outside the graph from a traced one is data too
        tracer.derive(out, src, what)
    return out


def _is_bool(x):
    return isinstance(x, (bool, np.bool_)) or (isinstance(x, Tensor) and x._data.dtype == bool_)


def _check_bool_sub(a, b):
    if _is_bool(a) or _is_bool(b):
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported (as in "
                           "PyTorch); use the `~` or `logical_not()` operator, or convert to an integer first")


def _floor_divide(a, b):
    """a // b with PyTorch's promotion; floors like Python (and PyTorch). No gradient: the
    result is piecewise constant. Integer division by zero raises, as PyTorch does."""
    ta, tb = _operands(a, b)
    x, y = ta._data, tb._data
    if x.dtype.kind in "biu":
        if x.dtype == bool_:
            raise RuntimeError("floor_divide: not implemented for bool tensors (as PyTorch)")
        if (y == 0).any():
            raise IntegerDivisionByZeroError("ZeroDivisionError: integer floor division by zero")
        return _derive(Tensor._wrap(np.asarray(np.floor_divide(x, y))), ta, "floor_divide")
    with np.errstate(divide="ignore", invalid="ignore"):
        return _derive(Tensor._wrap(np.asarray(np.floor_divide(x, y))), ta, "floor_divide")


def _remainder(a, b):
    """a % b, PyTorch's remainder: the sign of the divisor, as Python's %. For floats that need a
    gradient it is a - floor(a / b) * b, whose derivatives are PyTorch's (1 and -floor(a / b))."""
    ta, tb = _operands(a, b)
    x, y = ta._data, tb._data
    if x.dtype.kind in "biu":
        if x.dtype == bool_:
            raise RuntimeError("remainder: not implemented for bool tensors (as PyTorch)")
        if (y == 0).any():
            raise IntegerDivisionByZeroError("ZeroDivisionError: integer remainder by zero")
        return _derive(Tensor._wrap(np.asarray(np.remainder(x, y))), ta, "remainder")
    if _grad_mode.enabled and (ta.requires_grad or tb.requires_grad):
        return ta - _floor_divide(ta.detach(), tb.detach()) * tb
    with np.errstate(divide="ignore", invalid="ignore"):
        return _derive(Tensor._wrap(np.asarray(np.remainder(x, y))), ta, "remainder")

