"""`out=` for PyTorch's top-level functions (`torch.add(a, b, out=c)`, `torch.max(x, 1,
out=(v, i))`): the result is computed as usual, then written into `out` as PyTorch writes it.

- No autodiff through `out=`: under grad mode, an argument that requires grad is an error (PyTorch:
  "functions with out=... arguments don't support automatic differentiation").
- The result is cast to out's dtype when the cast stays within its kind or widens it (float ->
  int is an error, as PyTorch's "result type Float can't be cast to the desired output type Long").
- An `out` of another shape is resized (a UserWarning when it held elements); a view cannot be.
- Factories (zeros, arange, randn, ...) make out's dtype unless `dtype=` is given."""
import functools
import warnings

import numpy as np

from . import _inplace
from .tensor import Tensor, is_grad_enabled, no_grad

# lamina's functions whose PyTorch counterparts take out= (their docs list "out (Tensor, optional)").
OUT_FUNCTIONS = (
    "abs", "add", "all", "any", "bmm", "cat", "ceil", "clamp", "cos", "cumsum", "div", "eq", "exp",
    "floor", "floor_divide", "gather", "ge", "gt", "index_select", "le", "log", "log10", "log1p",
    "log2", "logsumexp", "lt", "matmul", "max", "maximum", "mean", "min", "minimum", "mm", "mul",
    "ne", "neg", "norm", "pow", "remainder", "round", "rsqrt", "sigmoid", "sign", "sin", "sort",
    "sqrt", "square", "stack", "std", "sub", "tan", "tanh", "topk", "trunc", "var", "where",
    "sum", "prod", "argmax", "argmin", "mv", "dot", "outer", "erf", "reciprocal", "atan2", "hypot")
FACTORIES = ("arange", "bernoulli", "empty", "eye", "full", "linspace", "multinomial", "normal", "ones",
             "rand", "randint", "randn", "randperm", "zeros")


def _write(name, out, result):
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be a Tensor, got {type(out).__name__}")
    if not isinstance(result, Tensor):
        result = Tensor._wrap(np.asarray(result))
    if is_grad_enabled() and (result.requires_grad or out.requires_grad):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                           "differentiation, but one of the arguments requires grad.")
    src, dst = result.dtype, out.dtype
    if not (np.can_cast(src, dst, casting="same_kind") or (src.kind == "b") or
            (src.kind in "iu" and dst.kind in "iuf")):
        raise RuntimeError(f"{name}(): result type {src} can't be cast to the desired output type {dst} (out)")
    if tuple(out.shape) != tuple(result.shape):
        if out._base is not None:
            raise RuntimeError(f"{name}(): out is a view of shape {tuple(out.shape)} and cannot be resized to "
                               f"the result's shape {tuple(result.shape)}")
        if out.numel() != 0:
            warnings.warn(f"{name}(): an output with one or more elements was resized since it had shape "
                          f"{list(out.shape)}, which does not match the required output shape "
                          f"{list(result.shape)}", UserWarning, stacklevel=3)
        out._data = np.empty(result.shape, dst)
    with no_grad():
        _inplace.overwrite(out, result, name)
    return out


def with_out(fn, name, factory=False):
    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if factory and kwargs.get("dtype") is None and isinstance(out, Tensor):
            kwargs["dtype"] = out.dtype
        result = fn(*args, **kwargs)
        if isinstance(result, tuple):
            if not isinstance(out, (tuple, list)) or len(out) != len(result):
                raise TypeError(f"{name}(): out must be a tuple of {len(result)} Tensors")
            for o, r in zip(out, result):
                _write(name, o, r)
            return type(result)(*out) if hasattr(result, "_fields") else tuple(out)
        return _write(name, out, result)
    wrapper.__wrapped_out__ = True
    return wrapper


def install(namespace):
    """Wrap the functions of `namespace` (a module's globals) that PyTorch gives out=."""
    for names, factory in ((OUT_FUNCTIONS, False), (FACTORIES, True)):
        for n in names:
            fn = namespace.get(n)
            if callable(fn) and not getattr(fn, "__wrapped_out__", False):
                namespace[n] = with_out(fn, n, factory)
