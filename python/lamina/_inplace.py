"""Views and in-place writes, with PyTorch's autograd semantics.

A view (basic indexing, reshape of a contiguous tensor) shares its base's storage and version
counter and remembers how it was taken (`_view_fn`, a function from an array laid out like the
base to the view of it). An in-place write computes the new value out of place with an ordinary
differentiable op, copies it into the storage, bumps the version counter and, when a graph is
being recorded, rebases the history: the written tensor's producer becomes the op, and for a view
the base's producer becomes "old base with the view's region replaced" (`ViewScatter`), so
gradients reach the base and whatever fed the written value.
"""
from __future__ import annotations

import numpy as np

from . import _promotion
from .tensor import Function, Tensor, _grad_mode, _version_counter, cmp_operand, get_default_dtype
from .tensor import _api, _inplace as _tensor_hooks


# --------------------------------------------------------------------------- view ops
def is_basic_index(idx):
    """True for indices NumPy and PyTorch answer with a view: ints, slices, None, Ellipsis."""
    items = idx if type(idx) is tuple else (idx,)
    for i in items:
        if i is None or i is Ellipsis or type(i) is slice:
            continue
        if isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)):
            continue
        return False
    return True


def view_index(idx):
    """`idx` as a tuple ending in Ellipsis, so NumPy returns a 0-d array view, not a scalar copy."""
    items = idx if type(idx) is tuple else (idx,)
    if any(i is Ellipsis for i in items):
        return items
    return items + (Ellipsis,)


class IndexView(Function):
    """x[idx] for a basic index: a view of x's storage; backward writes dy into the region."""

    _reads_strided = True

    @staticmethod
    def forward(ctx, x, idx):
        ctx.shape, ctx.idx = x.shape, idx
        return x[idx]

    @staticmethod
    def backward(ctx, dy):
        dx = np.zeros(ctx.shape, dtype=dy.dtype)
        dx[ctx.idx] = dy  # a basic index selects each element once
        return dx, None


class ReshapeView(Function):
    """x.view(shape) of a strided x whose strides allow it (the caller checked): NumPy's reshape
    of the strided array itself, so the result shares x's storage, as PyTorch's view does."""

    _reads_strided = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, dy):
        return np.ascontiguousarray(dy).reshape(ctx.shape), None


def reshape_view(x, shape):
    """x's storage seen with `shape` (Tensor.view of a strided x; the caller checked that NumPy's
    reshape of it is a view)."""
    return mark_view(ReshapeView.apply(x, shape), x, lambda a: a.reshape(shape))


class ViewOf(Function):
    """A view of `base` after the base's history changed (it was written through a view)."""

    _reads_strided = True

    @staticmethod
    def forward(ctx, base, view_fn):
        ctx.shape, ctx.view_fn = base.shape, view_fn
        return view_fn(base)

    @staticmethod
    def backward(ctx, dy):
        dx = np.zeros(ctx.shape, dtype=dy.dtype)
        ctx.view_fn(dx)[...] = dy
        return dx, None


class ViewScatter(Function):
    """The base with `value` written into its view `view_fn(base)`, out of place (so a compiled
    replay computes it too): the old base's gradient is dy outside the region, the value's is dy
    inside it."""

    _reads_strided = True

    @staticmethod
    def forward(ctx, base, value, view_fn):
        ctx.view_fn = view_fn
        y = np.array(base, copy=True)
        view_fn(y)[...] = value
        return y

    @staticmethod
    def backward(ctx, dy):
        na, nv, _ = ctx.needs_input_grad
        dbase = dvalue = None
        if na:
            dbase = np.array(dy, copy=True)
            ctx.view_fn(dbase)[...] = 0
        if nv:
            dvalue = np.ascontiguousarray(ctx.view_fn(dy))
        return dbase, dvalue, None


class SetItem(Function):
    """x with x[idx] = value, out of place (the caller copies it into x's storage)."""

    @staticmethod
    def forward(ctx, x, value, idx):
        ctx.idx = idx
        y = np.array(x, copy=True)
        y[idx] = value
        return y

    @staticmethod
    def backward(ctx, dy):
        nx, nv, _ = ctx.needs_input_grad
        dx = dvalue = None
        if nx:
            dx = np.array(dy, copy=True)
            dx[ctx.idx] = 0
        if nv:
            dvalue = np.ascontiguousarray(dy[ctx.idx])  # the engine sums a broadcast value back
        return dx, dvalue, None


class Overwrite(Function):
    """x's storage overwritten with src broadcast to x's shape (copy_, fill_, zero_)."""

    @staticmethod
    def forward(ctx, x, src):
        return np.array(np.broadcast_to(src, x.shape), dtype=x.dtype, copy=True)

    @staticmethod
    def backward(ctx, dy):
        # NOTE: the old value is entirely replaced, so it gets a zero gradient.
        return np.zeros_like(dy), dy


def mark_view(out, src, view_fn):
    """Make `out` a view of `src`'s storage: share the base and version counter."""
    base = src._base if src._base is not None else src
    parent_fn = src._view_fn
    out._base = base
    out._view_fn = view_fn if parent_fn is None else (lambda a: view_fn(parent_fn(a)))
    out._vc = _version_counter(base)
    return out


def getitem(x, idx):
    if is_basic_index(idx):
        vidx = view_index(idx)
        out = IndexView.apply(x, vidx)
        return mark_view(out, x, lambda a: a[vidx])
    return _api.GetItem.apply(x, idx)


# --------------------------------------------------------------------------- in-place writes
class ReadOnlyTensorError(RuntimeError, ValueError):
    """An in-place write into read-only memory: a RuntimeError as PyTorch's in-place errors are,
    and the ValueError NumPy raises for a read-only destination."""


def check_inplace(t, op):
    """PyTorch refuses in-place writes into a leaf (or a view of one) that requires grad, and
    into an expand()ed tensor (a read-only view here)."""
    if not t._data.flags.writeable:
        if t._base is not None and t._base._data.flags.writeable:   # a read-only view of writeable memory
            raise RuntimeError(f"{op}: unsupported operation: more than one element of the written-to tensor "
                               "refers to a single memory location (an expand()ed tensor); clone() it first")
        # PyTorch leaves writes into a read-only NumPy array undefined; lamina says so up front
        raise ReadOnlyTensorError(f"{op}: the tensor's memory is read-only (it shares a non-writeable NumPy "
                                  "array, as lamina.from_numpy does); write into a copy (t.clone()) instead")
    if not _grad_mode.enabled:
        return
    if t.requires_grad and t._node is None:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is being used in an in-place "
                           "operation; wrap it in `with lamina.no_grad():` or use an out-of-place op")
    base = t._base
    if base is not None and base.requires_grad and base._node is None:
        raise RuntimeError(f"{op}: a view of a leaf tensor that requires grad is being used in an "
                           "in-place operation; wrap it in `with lamina.no_grad():`")


def bump_version(t):
    _version_counter(t).value += 1


def _active_tracer():
    """The lamina.compile tracer recording this step, if any (in-place writes must reach it)."""
    from .graph import trace
    get = getattr(trace, "active_tracer", None)
    return get() if get is not None else getattr(trace.Tracer, "_active", None)


def _recording(*tensors):
    if _active_tracer() is not None:
        return True  # the write must be an op the trace sees, with or without gradients
    if not _grad_mode.enabled:
        return False
    for t in tensors:
        if isinstance(t, Tensor) and t.requires_grad:
            return True
    return False


def commit(t, result, op):
    """Write `result` (t's new value, maybe with a graph) into t's storage and rebase t."""
    if _promotion.category(result.dtype) > _promotion.category(t.dtype):
        raise RuntimeError(f"{op}: result type {result.dtype} can't be cast to the desired output "
                           f"type {t.dtype} of the tensor written in place")
    if result.shape != t.shape:
        raise RuntimeError(f"{op}: output with shape {tuple(t.shape)} doesn't match the broadcast "
                           f"shape {tuple(result.shape)}")
    np.copyto(t._data, result._data, casting="unsafe")
    bump_version(t)
    tracer = _active_tracer()
    if result.requires_grad or tracer is not None:
        rebase(t, result, tracer)
    return t


def rebase(t, result, tracer=None):
    """t's producer becomes result's; for a view, the base's becomes the scatter of result into
    it and the view's a view of that. A tracer maps the tensors to the new values too."""
    base = t._base
    if base is None:
        if result.requires_grad:
            t._node = result._node
            t.requires_grad = True
        if tracer is not None:
            _retrace(tracer, t, result)
        return
    view_fn = t._view_fn
    scattered = ViewScatter.apply(base, result, view_fn)
    view = ViewOf.apply(scattered, view_fn)
    if scattered.requires_grad:
        base._node = scattered._node
        base.requires_grad = True
        t._node = view._node
        t.requires_grad = True
    if tracer is not None:
        _retrace(tracer, base, scattered)
        _retrace(tracer, t, view)


def _retrace(tracer, t, now):
    """Later reads of t in the trace see the value `now` (recorded by the traced apply)."""
    value = tracer.by_tensor.get(id(now))
    if value is not None:
        tracer.by_tensor[id(t)] = value
        tracer.keep.append(t)


def apply_inplace(t, name, out_of_place, *args, **kwargs):
    """`out_of_place(t, ...)` written into t's storage (x.relu_(), F.relu(x, inplace=True)):
    recorded in the graph and the version counter bumped, as `x.copy_(...)` is. The op reads a
    snapshot when recording, so what it saves for backward is not the storage the write changes."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a Tensor to write into, got {type(t).__name__}")
    check_inplace(t, name)
    src = _snapshot(t) if _recording(t, *args) else t
    return commit(t, out_of_place(src, *args, **kwargs), name)


def _snapshot(t):
    """t's current value and history, with its own copy of the data: ops that save their input
    (mul, div) must not see the write that follows."""
    s = Tensor._wrap(np.array(t._data, copy=True))
    s._node = t._node
    s.requires_grad = t.requires_grad
    return s


def binary_inplace(t, other, name, ufunc, out_of_place):
    """t op= other: a NumPy in-place ufunc when nothing is recorded, else out_of_place(t, other)
    committed into t."""
    check_inplace(t, name)
    if _recording(t, other):
        return commit(t, out_of_place(_snapshot(t) if name in ("mul_", "div_") else t, other), name)
    if name == "sub_" and (t.dtype == np.bool_ or getattr(other, "dtype", None) == np.bool_
                           or isinstance(other, (bool, np.bool_))):
        raise RuntimeError("sub_: subtraction with a bool tensor is not supported (as in PyTorch)")
    result = _promotion.result_type((t, other), get_default_dtype())
    if name == "div_":
        result = _promotion.true_divide_type(result, get_default_dtype())
    if _promotion.category(result) > _promotion.category(t.dtype):
        raise RuntimeError(f"{name}: result type {result} can't be cast to the desired output type "
                           f"{t.dtype} of the tensor written in place")
    o = cmp_operand(t._data, other)   # a Python int wraps into t's integer dtype, as in PyTorch
    ufunc(t._data, o, out=t._data, casting="unsafe")
    bump_version(t)
    return t


def setitem(t, idx, value):
    check_inplace(t, "setitem")
    if _recording(t, value):
        if not isinstance(value, Tensor):
            value = Tensor(value, dtype=t.dtype)
        return commit(t, SetItem.apply(t, value, idx), "setitem")
    t._data[idx] = value._data if isinstance(value, Tensor) else value
    bump_version(t)
    return t


def overwrite(t, src, op):
    check_inplace(t, op)
    if _recording(t, src):
        if not isinstance(src, Tensor):
            src = Tensor._wrap(np.asarray(src, dtype=t.dtype))
        try:
            np.broadcast_shapes(src.shape, t.shape)
        except ValueError:
            raise RuntimeError(f"{op}: src of shape {tuple(src.shape)} cannot be broadcast to the "
                               f"tensor's shape {tuple(t.shape)}") from None
        return commit(t, Overwrite.apply(t, src), op)
    s = src._data if isinstance(src, Tensor) else src
    try:
        np.copyto(t._data, np.broadcast_to(s, t.shape), casting="unsafe")
    except ValueError:
        raise RuntimeError(f"{op}: src of shape {tuple(np.shape(s))} cannot be broadcast to the "
                           f"tensor's shape {tuple(t.shape)}") from None
    bump_version(t)
    return t


# Tensor methods reach these through tensor._inplace (tensor.py does not import this module).
for _f in (getitem, setitem, overwrite, binary_inplace, mark_view, check_inplace, reshape_view):
    setattr(_tensor_hooks, _f.__name__, _f)
