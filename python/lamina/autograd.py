"""lamina.autograd: the Function extension point, backward, and finite-difference gradcheck."""
import numpy as np

from . import _inplace
from .tensor import Function as _EngineFunction
from .tensor import (Tensor, _version_counter, enable_grad, inference_mode,  # noqa: F401
                     is_grad_enabled, no_grad, run_backward, set_grad_enabled,
                     _check_create_graph, _as_input_list, accumulate_into, capture_grads,
                     run_backward_many)


class FunctionCtx:
    """The `ctx` a custom Function's forward and backward share (PyTorch's names)."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved = ()
        self._saved_versions = ()
        self._non_differentiable = set()
        self._dirty = ()

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward: expected Tensors or None, got {type(t).__name__}; "
                                "keep other values as attributes of ctx")
        self._saved = tensors
        self._saved_versions = tuple(
            (_version_counter(t), _version_counter(t).value) if t is not None else None for t in tensors)

    @property
    def saved_tensors(self):
        for i, (t, vv) in enumerate(zip(self._saved, self._saved_versions)):
            if vv is not None and vv[0].value != vv[1]:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by an "
                    f"in-place operation: saved tensor {i} of {self._op}, saved at version {vv[1]}, "
                    f"is now at version {vv[0].value}")
        return self._saved

    def _refresh_dirty_saved(self, dirty):
        # A dirty input saved in forward is saved as the output: its version after the write counts.
        if dirty and self._saved_versions:
            self._saved_versions = tuple(
                (vv[0], vv[0].value) if vv is not None and any(t is d for d in dirty) else vv
                for t, vv in zip(self._saved, self._saved_versions))

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors):
        """Declare inputs that forward modified in place (and returns): apply bumps their version
        and makes this Function their producer, as PyTorch does."""
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"mark_dirty: expected Tensors, got {type(t).__name__}")
        self._dirty = self._dirty + tuple(tensors)

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)


class _CustomNode(_EngineFunction):
    """The graph node of one custom Function call: converts between the engine's arrays and
    the Tensors the user's backward receives and returns."""

    @staticmethod
    def backward(node, dy):
        outs = node.outputs
        if len(outs) == 1:
            dys = [dy]
        else:  # several outputs: dy is their gradients packed flat (see Function.apply)
            dys, start = [], 0
            for o in outs:
                n = o.size
                dys.append(dy[start:start + n].reshape(o.shape).astype(o.dtype, copy=False))
                start += n
        with no_grad():
            grads = node.fn_cls.backward(node.user_ctx, *(Tensor._wrap(np.ascontiguousarray(g)) for g in dys))
        if not isinstance(grads, tuple):
            grads = (grads,)
        n_in = len(node.inputs)
        if len(grads) < n_in or any(g is not None for g in grads[n_in:]):
            raise RuntimeError(f"{node.fn_cls.__name__}.backward returned {len(grads)} gradients; "
                               f"expected one per forward input ({n_in})")
        out = []
        for i, (g, t, need) in enumerate(zip(grads, node.inputs, node.needs_input_grad)):
            if not need:
                out.append(None)
            elif g is None:  # None means zero, as in PyTorch
                out.append(np.zeros(t.shape, dtype=t.dtype))
            else:
                arr = g._data if isinstance(g, Tensor) else np.asarray(g)
                try:
                    np.broadcast_shapes(arr.shape, t.shape)
                except ValueError:
                    raise RuntimeError(f"{node.fn_cls.__name__}.backward: gradient {i} has shape "
                                       f"{tuple(arr.shape)}, expected {tuple(t.shape)}") from None
                out.append(arr)
        return tuple(out)

    @property
    def op(self):
        return self.fn_cls.__name__

    def name(self):
        return f"{self.fn_cls.__name__}Backward"  # PyTorch's name for a custom Function's node


class _PackedOutput(_EngineFunction):
    """Output k of a several-output custom Function, read from the packed flat buffer."""

    @staticmethod
    def forward(ctx, packed, start, shape):
        ctx.size, ctx.start = packed.size, start
        n = int(np.prod(shape, dtype=np.int64))
        return packed[start:start + n].reshape(shape)

    @staticmethod
    def backward(ctx, dy):
        g = np.zeros(ctx.size, dtype=dy.dtype)
        g[ctx.start:ctx.start + dy.size] = dy.reshape(-1)
        return g, None, None


class Function:
    """Define a differentiable operation with Tensors, as in PyTorch.

    forward(ctx, *args) receives the Tensors (and other values) given to `apply` and returns a
    Tensor or a tuple of them; it runs without recording a graph. backward(ctx, *grad_outputs)
    receives one gradient Tensor per output and returns one per forward input (None for inputs
    that need none). `ctx.save_for_backward`, `ctx.saved_tensors`, `ctx.needs_input_grad` and
    `ctx.mark_non_differentiable` work as in PyTorch.

    >>> import lamina
    >>> class Cube(lamina.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, dy):
    ...         (x,) = ctx.saved_tensors
    ...         return 3 * x ** 2 * dy
    >>> t = lamina.tensor([2.0], requires_grad=True)
    >>> Cube.apply(t).sum().backward(); t.grad.tolist()
    [12.0]
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a custom Function must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise RuntimeError(f"no gradient rule for {ctx._op}")

    @classmethod
    def apply(cls, *args, **kwargs):
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        ctx._op = cls.__name__
        with no_grad():
            result = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(result, tuple)
        outs = [result] if single else list(result)
        dirty = _check_dirty(cls, ctx, args, outs)
        returned = list(outs)       # what the caller gets: a dirty input is returned as itself
        for k, o in enumerate(outs):
            if isinstance(o, np.ndarray):
                outs[k] = returned[k] = o = Tensor._wrap(o)
            if isinstance(o, Tensor) and any(o is d for d in dirty):
                outs[k] = Tensor._wrap(o._data)      # the node's output; rebased onto the input below
            elif isinstance(o, Tensor) and any(o is a for a in args):
                outs[k] = returned[k] = o.detach()  # an input returned unmarked: a new tensor
        differentiable = [k for k, o in enumerate(outs)
                          if isinstance(o, Tensor) and o._data.dtype.kind == "f"
                          and id(returned[k]) not in ctx._non_differentiable]
        if is_grad_enabled() and any(needs) and differentiable:
            node = _CustomNode()
            node.fn_cls, node.user_ctx = cls, ctx
            node.inputs = args
            node.input_nodes = tuple(a._node if isinstance(a, Tensor) else None for a in args)
            node.needs_input_grad = needs
            tensors = [o for o in outs if isinstance(o, Tensor)]
            node.outputs = [o._data for o in tensors]
            if len(tensors) == 1:
                tensors[0]._node = node
                tensors[0].requires_grad = True
            else:
                _link_packed(node, tensors, [outs[k] for k in differentiable])
        for k, o in enumerate(returned):
            if any(o is d for d in dirty):
                _inplace.bump_version(o)
                if outs[k].requires_grad:
                    _inplace.rebase(o, outs[k])     # o's (or its base's) producer is now this call
        ctx._refresh_dirty_saved(dirty)
        return returned[0] if single else tuple(returned)


def _check_dirty(cls, ctx, args, outs):
    """The inputs forward marked dirty, checked as PyTorch checks them."""
    dirty = ctx._dirty
    for d in dirty:
        if not any(d is a for a in args):
            raise RuntimeError(f"{cls.__name__}.forward: mark_dirty got a tensor that is not an input")
        if not any(d is o for o in outs):
            raise RuntimeError(f"{cls.__name__}.forward: some tensors marked as dirty were not returned "
                               "as outputs; the inputs modified in place must all be outputs of the Function")
        _inplace.check_inplace(d, cls.__name__)
    return dirty


def _link_packed(node, tensors, differentiable):
    """Several outputs share one node through a flat buffer holding all of them: each output
    reads its slice, so the node's gradient is the sum of the slices' gradients, packed."""
    dtype = np.result_type(*[t._data.dtype for t in tensors if t._data.dtype.kind == "f"])
    packed = Tensor._wrap(np.concatenate([t._data.reshape(-1).astype(dtype) for t in tensors]))
    packed._node = node
    packed.requires_grad = True
    start = 0
    for t in tensors:
        if any(t is d for d in differentiable):
            with enable_grad():
                sliced = _PackedOutput.apply(packed, start, t.shape)
            t._node = sliced._node
            t.requires_grad = True
        start += t._data.size


class GradcheckError(AssertionError):
    pass


def _as_list(x, what):
    if isinstance(x, Tensor):
        return [x]
    if x is None:
        return None
    out = list(x)
    for i, t in enumerate(out):
        if what == "outputs" and not isinstance(t, Tensor):
            raise TypeError(f"{what}[{i}] must be a Tensor, got {type(t).__name__}")
    return out


def _grads_for(outputs, grad_outputs, where):
    grads = _as_list(grad_outputs, "grad_outputs")
    if grads is None:
        return [None] * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"{where}: got {len(grads)} grad_outputs for {len(outputs)} outputs")
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
             inputs=None):
    """Sum the gradients of `tensors` (seeded with `grad_tensors`) into the leaves' `.grad`, in
    one sweep over the graph they share (PyTorch's torch.autograd.backward)."""
    _check_create_graph(create_graph, "autograd.backward")
    tensors = _as_list(tensors, "outputs")
    grads = _grads_for(tensors, grad_tensors if grad_tensors is not None else grad_variables,
                       "autograd.backward")
    if inputs is not None:
        accumulate_into(_as_input_list(inputs, "autograd.backward"), tensors, grads, bool(retain_graph))
    else:
        run_backward_many(tensors, grads, bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs`, returned as a tuple and not summed
    into any `.grad` (PyTorch's torch.autograd.grad). An input the outputs do not depend on
    raises unless allow_unused=True (then its gradient is None, or zeros with
    materialize_grads=True)."""
    _check_create_graph(create_graph, "autograd.grad")
    if is_grads_batched:
        raise NotImplementedError("autograd.grad(is_grads_batched=True) is not supported by lamina")
    outputs = _as_list(outputs, "outputs")
    single = isinstance(inputs, Tensor)
    ins = [inputs] if single else list(inputs)
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor):
            raise TypeError(f"autograd.grad: inputs[{i}] must be a Tensor, got {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError(f"autograd.grad: inputs[{i}] does not require grad")
    if allow_unused is None:
        allow_unused = materialize_grads
    grads = capture_grads(ins, outputs, _grads_for(outputs, grad_outputs, "autograd.grad"), bool(retain_graph))
    result = []
    for i, (t, g) in enumerate(zip(ins, grads)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"autograd.grad: inputs[{i}] was not used in the graph of the outputs; "
                                   "pass allow_unused=True if this is the desired behavior")
            result.append(Tensor._wrap(np.zeros_like(t._data)) if materialize_grads else None)
        else:
            result.append(Tensor._wrap(np.ascontiguousarray(g)))
    return tuple(result)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Compare autodiff gradients of `fn(*inputs)` with central finite differences (float64).

    The output is contracted with a fixed random cotangent v, so one backward gives v^T J,
    checked entry by entry against (f(x + eps e_i) - f(x - eps e_i)) . v / (2 eps).

    >>> import lamina
    >>> x = lamina.randn(3, dtype=lamina.float64, requires_grad=True)
    >>> lamina.autograd.gradcheck(lambda t: (t * t).exp().sum(), [x])
    True
    """
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    inputs = list(inputs)
    diff = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for t in diff:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for finite differences, got {t.dtype}")
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else [out]
    rng = np.random.default_rng(seed)
    vs = [rng.standard_normal(o.shape) for o in outs]

    def scalar():
        with no_grad():
            o = fn(*inputs)
        os_ = o if isinstance(o, (tuple, list)) else [o]
        return sum(float((oo._data * v).sum()) for oo, v in zip(os_, vs))

    for t in diff:
        t.grad = None
    with enable_grad():
        total = None
        for o, v in zip(outs, vs):
            if o.requires_grad:
                term = (o * Tensor._wrap(v.astype(o.dtype))).sum()
                total = term if total is None else total + term
        if total is not None:
            total.backward()
    for k, t in enumerate(diff):
        analytic = np.zeros(t.shape) if t.grad is None else t.grad._data.astype(np.float64)
        numeric = np.zeros(t.shape)
        flat = t._data.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            fp = scalar()
            flat[i] = orig - eps
            fm = scalar()
            flat[i] = orig
            numeric.reshape(-1)[i] = (fp - fm) / (2 * eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            err = np.abs(analytic - numeric)
            i = int(err.argmax())
            msg = (f"gradcheck: input {k} (shape {t.shape}): analytic and numeric gradients differ; "
                   f"worst at flat index {i}: analytic {analytic.reshape(-1)[i]:.6g}, "
                   f"numeric {numeric.reshape(-1)[i]:.6g}")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
