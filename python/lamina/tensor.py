"""Tensor and the reverse-mode autodiff engine.

A Tensor wraps a C-contiguous NumPy buffer. Every differentiable primitive is a `Function`
subclass (see lamina/ops/) with its forward (a call into lamina._C or NumPy) and its backward rule
side by side. `Function.apply` records a graph node when grad mode is on and an input needs a
gradient; `Tensor.backward` sorts the graph topologically once (iteratively, so a 10,000-op
chain is fine), sweeps it in reverse, and accumulates gradients on fan-out.
"""
from __future__ import annotations

import threading
import types

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
_SUPPORTED = (float32, float64, int64, bool_)
_FLOATS = (float32, float64)

_default_dtype = float32

# The ops the Tensor methods call (_api.Add, _api.matmul, ...). lamina.ops.registry fills it as
# each op registers, so this module never imports lamina.ops (ops import Tensor, not the reverse).
_api = types.SimpleNamespace()


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
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled():
    return _grad_mode.enabled


class no_grad:
    """Context manager (and decorator) that disables graph recording.

    >>> import lamina
    >>> x = lamina.ones(3, requires_grad=True)
    >>> with lamina.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __enter__(self):
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = False

    def __exit__(self, *exc):
        _grad_mode.enabled = self._prev

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


class enable_grad(no_grad):
    def __enter__(self):
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = True


# --------------------------------------------------------------------------- Function
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

    __slots__ = ("inputs", "saved_tensors", "needs_input_grad", "__dict__")

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays

    @property
    def op(self):
        return type(self).__name__

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = cls()
        requires = False
        if _grad_mode.enabled:
            for a in args:
                if type(a) is Tensor or isinstance(a, Tensor):
                    if a.requires_grad:
                        requires = True
                        break
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        if requires:
            ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        out = cls.forward(ctx, *raw, **kwargs)
        if type(out) is not np.ndarray:  # NumPy ufuncs turn 0-d results into scalars
            out = np.asarray(out)
        t = Tensor.__new__(Tensor)
        t.data = out
        t.grad = None
        if requires:
            t.requires_grad = True
            ctx.inputs = args
            t._node = ctx
        else:
            t.requires_grad = False
            t._node = None
        return t

    @staticmethod
    def forward(ctx, *args):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, dy):
        raise RuntimeError(f"no gradient rule for {type(ctx).__name__}")


def reduce_to_shape(g, shape):
    """Sum a broadcast gradient back to `shape` (the one place broadcasting is undone)."""
    if g.shape == shape:
        return g
    if g.ndim > len(shape):
        g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _topological_order(root_node):
    """Nodes reachable from root_node, parents before children, without recursion."""
    order = []
    seen = {id(root_node)}
    stack = [(root_node, iter(root_node.inputs))]
    while stack:
        node, it = stack[-1]
        for t in it:
            if isinstance(t, Tensor):
                child = t._node
                if child is not None and id(child) not in seen:
                    if child.inputs is None:
                        raise RuntimeError(
                            f"trying to backward through the graph a second time ({child.op}); "
                            "pass retain_graph=True to the first backward()")
                    seen.add(id(child))
                    stack.append((child, iter(child.inputs)))
                    break
        else:
            stack.pop()
            order.append(node)
    return order


def run_backward(root, grad=None, retain_graph=False):
    """Reverse sweep from `root`, seeded with `grad` (ones for a scalar)."""
    if not root.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs, got shape {root.shape}")
        g = np.ones_like(root.data)
    else:
        g = grad.data if isinstance(grad, Tensor) else np.asarray(grad, dtype=root.dtype)
        if g.shape != root.shape:
            raise ValueError(f"grad: expected shape {root.shape}, got {g.shape}")
    node = root._node
    if node is None:  # a leaf: its gradient is the seed
        _accumulate_leaf(root, g)
        return
    if node.inputs is None:
        raise RuntimeError(f"trying to backward through the graph a second time ({node.op}); "
                           "pass retain_graph=True to the first backward()")
    order = _topological_order(node)
    grads = {id(node): g}
    for node in reversed(order):
        dy = grads.pop(id(node), None)
        if dy is None:
            continue
        if type(dy) is not np.ndarray or not dy.flags.c_contiguous:
            dy = np.array(dy, order="C")  # kernels read C-contiguous arrays, not views or scalars
        in_grads = type(node).backward(node, dy)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        inputs = node.inputs
        if len(in_grads) < len(inputs):
            raise RuntimeError(f"{node.op}.backward returned {len(in_grads)} gradients for {len(inputs)} inputs")
        for t, need, gi in zip(inputs, node.needs_input_grad, in_grads):
            if not need:
                continue
            if gi is None:
                raise RuntimeError(f"no gradient rule for input of {node.op}")
            if gi.shape != t.data.shape:
                gi = reduce_to_shape(gi, t.data.shape)
            if gi.dtype != t.data.dtype:
                gi = gi.astype(t.data.dtype)
            child = t._node
            if child is None:
                _accumulate_leaf(t, gi)
            else:
                k = id(child)
                prev = grads.get(k)
                # Fan-out: a value used by several ops receives the sum of their gradients.
                grads[k] = gi if prev is None else prev + gi
        if not retain_graph:
            node.inputs = None
            node.saved_tensors = None
    if not retain_graph:
        for n in order:
            n.inputs = None


def _accumulate_leaf(t, g):
    if t.grad is None:
        # Own the buffer: g may alias an array still referenced by the graph.
        t.grad = Tensor._wrap(np.array(g, copy=True))
    else:
        t.grad.data += g


# --------------------------------------------------------------------------- Tensor
def _as_array(data, dtype):
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in _SUPPORTED:
            raise TypeError(f"dtype: expected one of float32, float64, int64, got {dtype}")
        return np.array(data, dtype=dtype, copy=True, order="C")
    arr = np.array(data, copy=True, order="C")
    k = arr.dtype.kind
    if k == "f":
        if isinstance(data, np.ndarray) and arr.dtype in _FLOATS:
            return arr
        return arr.astype(_default_dtype if not isinstance(data, np.ndarray) else float32)
    if k in "iu":
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

    __slots__ = ("data", "grad", "requires_grad", "_node", "__weakref__")
    __array_priority__ = 1000  # so ndarray OP Tensor defers to Tensor's reflected operator

    def __init__(self, data, dtype=None, requires_grad=False):
        self.data = _as_array(data, dtype)
        self.grad = None
        self._node = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(arr, requires_grad=False):
        t = Tensor.__new__(Tensor)
        t.data = arr
        t.grad = None
        t.requires_grad = requires_grad
        t._node = None
        return t

    # ---- properties
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

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
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): expected a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def numpy(self, *, force=False):
        """The underlying NumPy array (shares memory), as in PyTorch for CPU tensors.

        `force` is accepted for PyTorch compatibility; lamina tensors are always CPU, dense and
        unconjugated, so forcing changes nothing. NOTE: unlike PyTorch, a tensor that requires
        grad is not refused (lamina's own code and tests read parameters this way).

        >>> import lamina
        >>> lamina.tensor([1.0, 2.0]).numpy().tolist()
        [1.0, 2.0]
        """
        return self.data

    def __array__(self, dtype=None, copy=None):
        # NumPy 2 protocol: copy=True must copy, copy=False must not (or raise), None: only if needed.
        want = self.data.dtype if dtype is None else np.dtype(dtype)
        if copy:
            return np.array(self.data, dtype=want, copy=True)
        if want != self.data.dtype:
            if copy is False:
                raise ValueError(f"__array__: copy=False, but converting dtype {self.data.dtype} to {want} "
                                 "needs a copy")
            return self.data.astype(want)
        return self.data

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule over this tensor's memory (DLPack 1.0 when max_version >= (1, 0))."""
        from ._dlpack import export_capsule
        return export_capsule(self.data, self.requires_grad, stream=stream, max_version=max_version,
                              dl_device=dl_device, copy=copy)

    def __dlpack_device__(self):
        return (1, 0)   # (kDLCPU, device 0)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.dtype != _default_dtype and self.dtype.kind == "f" or self.dtype == bool_:
            extra += f", dtype=lamina.{self.dtype}"
        if self._node is not None:
            extra += f", grad_fn=<{self._node.op}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- autograd
    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype not in _FLOATS:
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, grad=None, retain_graph=False):
        run_backward(self, grad, retain_graph)

    def detach(self):
        return Tensor._wrap(self.data)

    def detach_(self):
        self._node = None
        self.requires_grad = False
        return self

    def zero_(self):
        self.data[...] = 0
        return self

    def clone(self):
        return _api.Clone.apply(self)

    def copy_(self, src):
        self.data[...] = src.data if isinstance(src, Tensor) else src
        return self

    # ---- dtype
    def to(self, dtype):
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        return _api.Cast.apply(self, dtype)

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def long(self):
        return self.to(int64)

    def type(self, dtype):
        return self.to(dtype)

    # ---- arithmetic (NumPy broadcasting; gradients reduced back in reduce_to_shape)
    def __add__(self, o):
        return _api.Add.apply(self, _coerce(o, self))

    def __radd__(self, o):
        return _api.Add.apply(_coerce(o, self), self)

    def __sub__(self, o):
        return _api.Sub.apply(self, _coerce(o, self))

    def __rsub__(self, o):
        return _api.Sub.apply(_coerce(o, self), self)

    def __mul__(self, o):
        return _api.Mul.apply(self, _coerce(o, self))

    def __rmul__(self, o):
        return _api.Mul.apply(_coerce(o, self), self)

    def __truediv__(self, o):
        return _api.Div.apply(self, _coerce(o, self))

    def __rtruediv__(self, o):
        return _api.Div.apply(_coerce(o, self), self)

    def __neg__(self):
        return _api.Neg.apply(self)

    def __pos__(self):
        return self

    def __pow__(self, p):
        if isinstance(p, Tensor):
            return _api.PowTensor.apply(self, p)
        return _api.Pow.apply(self, float(p))

    def __rpow__(self, base):
        return _api.PowTensor.apply(_coerce(base, self), self)

    def __matmul__(self, o):
        return _api.matmul(self, o if isinstance(o, Tensor) else Tensor(o, dtype=self.dtype))

    def __rmatmul__(self, o):
        return _api.matmul(Tensor(o, dtype=self.dtype), self)

    def __iadd__(self, o):
        self._check_inplace()
        self.data += o.data if isinstance(o, Tensor) else o
        return self

    def __isub__(self, o):
        self._check_inplace()
        self.data -= o.data if isinstance(o, Tensor) else o
        return self

    def __imul__(self, o):
        self._check_inplace()
        self.data *= o.data if isinstance(o, Tensor) else o
        return self

    def __itruediv__(self, o):
        self._check_inplace()
        self.data /= o.data if isinstance(o, Tensor) else o
        return self

    def _check_inplace(self):
        if self.requires_grad and _grad_mode.enabled:
            raise RuntimeError("a leaf tensor that requires grad is being used in an in-place "
                               "operation; wrap it in `with lamina.no_grad():`")

    # comparisons: no gradient, bool tensors
    def _cmp(self, o, f):
        return Tensor._wrap(f(self.data, o.data if isinstance(o, Tensor) else o))

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
        if self.data.size != 1:
            raise ValueError("the truth value of a tensor with more than one element is ambiguous")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise TypeError("only integer tensors can be used as an index")
        return int(self.item())

    def __getitem__(self, idx):
        return _api.GetItem.apply(self, _unwrap_index(idx))

    def __setitem__(self, idx, value):
        self._check_inplace()
        self.data[_unwrap_index(idx)] = value.data if isinstance(value, Tensor) else value

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ---- math
    def exp(self):
        return _api.Exp.apply(self)

    def log(self):
        return _api.Log.apply(self)

    def sqrt(self):
        return _api.Pow.apply(self, 0.5)

    def abs(self):
        return _api.Abs.apply(self)

    def sin(self):
        return _api.Sin.apply(self)

    def cos(self):
        return _api.Cos.apply(self)

    def relu(self):
        return _api.activation(self, "relu")

    def sigmoid(self):
        return _api.activation(self, "sigmoid")

    def tanh(self):
        return _api.activation(self, "tanh")

    def softmax(self, dim=-1):
        return _api.softmax(self, dim)

    def log_softmax(self, dim=-1):
        return _api.log_softmax(self, dim)

    def clamp(self, min=None, max=None):
        return _api.Clamp.apply(self, min, max)

    def sum(self, dim=None, keepdim=False):
        return _api.Sum.apply(self, _norm_dims(dim, self.ndim), keepdim)

    def mean(self, dim=None, keepdim=False):
        return _api.Mean.apply(self, _norm_dims(dim, self.ndim), keepdim)

    def max(self, dim=None, keepdim=False):
        return _api.max_(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return _api.min_(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._wrap(np.asarray(self.data.argmax(), dtype=int64))
        return Tensor._wrap(self.data.argmax(axis=dim, keepdims=keepdim).astype(int64, copy=False))

    def argmin(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._wrap(np.asarray(self.data.argmin(), dtype=int64))
        return Tensor._wrap(self.data.argmin(axis=dim, keepdims=keepdim).astype(int64, copy=False))

    # ---- shape
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _api.Reshape.apply(self, shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s = start_dim % nd
        e = end_dim % nd
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
        d0, d1 = _norm_dim(dim0, nd), _norm_dim(dim1, nd)
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return _api.Permute.apply(self, tuple(perm))

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
        dims = tuple(_norm_dim(d, nd) for d in dims)
        if sorted(dims) != list(range(nd)):
            raise ValueError(f"permute: dims {dims} are not a permutation of 0..{nd - 1}")
        return _api.Permute.apply(self, dims)

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            d = _norm_dim(dim, self.ndim)
            shape = self.shape if self.shape[d] != 1 else self.shape[:d] + self.shape[d + 1:]
        return self.reshape(shape)

    def unsqueeze(self, dim):
        d = _norm_dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def expand(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = tuple(s if s != -1 else self.shape[i - len(shape) + self.ndim]
                      for i, s in enumerate(shape))
        return _api.Expand.apply(self, shape)

    def contiguous(self):
        return self


def _norm_dim(d, nd):
    if not -max(nd, 1) <= d < max(nd, 1):
        raise IndexError(f"dim: expected a value in [{-max(nd, 1)}, {max(nd, 1) - 1}], got {d}")
    return d % max(nd, 1)


def _norm_dims(dim, nd):
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return tuple(sorted(_norm_dim(d, nd) for d in dim))
    return (_norm_dim(dim, nd),)


def _unwrap_index(idx):
    if isinstance(idx, Tensor):
        return idx.data
    if isinstance(idx, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in idx)
    return idx


def _coerce(o, like):
    """Python scalars and arrays take the tensor's dtype (as PyTorch does for scalars)."""
    if isinstance(o, Tensor):
        return o
    if isinstance(o, (int, float, bool, np.number)):
        dt = like.dtype if like.dtype in _FLOATS or isinstance(o, (int, np.integer)) else _default_dtype
        return Tensor._wrap(np.asarray(o, dtype=dt))
    return Tensor._wrap(_as_array(o, None))

