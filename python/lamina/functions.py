"""The top-level functions PyTorch users reach for (`lamina.sin(x)`, `lamina.cat`, `lamina.topk`,
...) and the Tensor methods of the same names (`x.pow(2)`, `x.eq(y)`, `x.gather(1, i)`).

Each is a thin entry over one registered op (lamina.ops) or a composition of them, so gradients,
the compiler and the OpInfo tests come from the op's one definition. Comparisons, isnan/isfinite,
all/any and argmax/argmin have no gradient and return bool / int64 tensors, as in PyTorch.

The Tensor methods are attached once, when lamina is imported (`_install_methods`): a method
that tensor.py already defines is left alone.
"""
from __future__ import annotations

import builtins as _builtins

import numpy as np

from . import _inplace, _promotion
from . import random as _random
from .ops import contract as _contract
from .ops import index as _index
from .ops.index import _ValuesIndices  # (values, indices), as sort and topk return them
from .ops import stack
from .ops.activation import log_softmax as _log_softmax_along, softmax as _softmax_along
from .ops import math as _math
from .ops import stats as _stats
from .ops.index import normalize_dim
from .tensor import Tensor, cmp_operand, get_default_dtype

__all__ = [
    "sin", "cos", "tan", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "neg", "negative",
    "sign", "pow", "clamp", "clip", "maximum", "minimum", "where", "sigmoid", "tanh", "relu",
    "flatten", "reshape", "squeeze", "unsqueeze", "permute", "transpose", "t", "mm", "bmm", "einsum",
    "split", "chunk", "unbind", "sum", "mean", "max", "min", "argmax", "argmin", "std", "var", "prod",
    "cumsum", "logsumexp", "eq", "ne", "lt", "le", "gt", "ge", "equal", "allclose", "all", "any",
    "isnan", "isfinite", "isinf", "topk", "sort", "argsort", "gather", "scatter", "scatter_add",
    "index_select", "masked_fill", "clone", "numel", "rand_like", "randn_like", "randint_like",
    "empty_like", "square", "exp2", "log2", "log10", "floor", "ceil", "round", "trunc",
    "is_tensor", "is_floating_point", "add", "sub", "subtract", "mul", "multiply", "div", "divide",
    "true_divide", "softmax", "log_softmax", "floor_divide", "remainder", "norm",
]


def _t(x, like=None):
    """A Tensor from x (numbers become 0-d tensors in `like`'s dtype, as PyTorch's scalars do)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, bool, np.number)):
        return Tensor._wrap(np.asarray(x, dtype=like.dtype if like.dtype.kind == "f" else None))
    return Tensor._wrap(np.asarray(x))


def _need_tensor(x, op, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(x).__name__}")
    return x


# ---------------------------------------------------------------- elementwise
def sin(input):
    return _need_tensor(input, "sin").sin()


def cos(input):
    return _need_tensor(input, "cos").cos()


def tan(input):
    return _math.Tan.apply(_float(input, "tan"))


def exp(input):
    return _need_tensor(input, "exp").exp()


def log(input):
    return _need_tensor(input, "log").log()


def log1p(input):
    return _math.Log1p.apply(_float(input, "log1p"))


def expm1(input):
    return _math.Expm1.apply(_float(input, "expm1"))


def sqrt(input):
    return _float(input, "sqrt").sqrt()


def rsqrt(input):
    return _math.Rsqrt.apply(_float(input, "rsqrt"))


def square(input):
    return _need_tensor(input, "square") * input


def exp2(input):
    return 2.0 ** _float(input, "exp2")


def log2(input):
    return _float(input, "log2").log() * (1.0 / np.log(2.0))


def log10(input):
    return _float(input, "log10").log() * (1.0 / np.log(10.0))


def _no_grad_unary(np_fn, name):
    def f(input):
        x = _need_tensor(input, name)
        return Tensor._wrap(np_fn(x._data))
    f.__name__ = name
    f.__doc__ = f"{name}(input): elementwise, no gradient (piecewise constant: zero almost everywhere)."
    return f


floor = _no_grad_unary(np.floor, "floor")
ceil = _no_grad_unary(np.ceil, "ceil")
trunc = _no_grad_unary(np.trunc, "trunc")


def round(input, decimals=0):
    x = _need_tensor(input, "round")
    return Tensor._wrap(np.round(x._data, decimals))


def abs(input):
    return _need_tensor(input, "abs").abs()


def neg(input):
    return -_need_tensor(input, "neg")


negative = neg


def sign(input):
    x = _need_tensor(input, "sign")
    if x.dtype.kind in "biu":
        return Tensor._wrap(np.sign(x._data))
    return _math.Sign.apply(x)


def pow(input, exponent):
    if not isinstance(input, Tensor):           # pow(2, t)
        return _t(input, exponent) ** exponent
    return input ** exponent


def clamp(input, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    x = _need_tensor(input, "clamp")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, _t(min, x))
        if max is not None:
            out = minimum(out, _t(max, x))
        return out
    return x.clamp(min, max)


clip = clamp


def maximum(input, other):
    a, b = _same_kind(input, other, "maximum")
    if a.dtype.kind in "biu":
        return Tensor._wrap(np.maximum(a._data, b._data))
    return _math.Maximum.apply(a, b)


def minimum(input, other):
    a, b = _same_kind(input, other, "minimum")
    if a.dtype.kind in "biu":
        return Tensor._wrap(np.minimum(a._data, b._data))
    return _math.Minimum.apply(a, b)


def _same_kind(a, b, op):
    a, b = _need_tensor(a, op), _need_tensor(b, op, "other")
    if a.dtype != b.dtype:
        dt = _promotion.result_type((a, b), get_default_dtype())   # PyTorch's promotion (0-d rule too)
        a, b = a.to(dt) if a.dtype != dt else a, b.to(dt) if b.dtype != dt else b
    return a, b


def where(condition, input=None, other=None):
    """where(cond, x, y): x where cond else y; where(cond) alone: the indices of True (nonzero)."""
    c = _t(condition)
    if input is None and other is None:
        return tuple(Tensor._wrap(i.astype(np.int64)) for i in np.nonzero(c._data))
    if c.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {c.dtype}")
    ref = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    a, b = _t(input, ref), _t(other, ref)
    if a.dtype != b.dtype:
        a, b = _same_kind(a, b, "where")
    try:
        np.broadcast_shapes(c.shape, a.shape, b.shape)
    except ValueError:
        raise RuntimeError(f"where: shapes {tuple(c.shape)}, {tuple(a.shape)}, {tuple(b.shape)} do not broadcast") from None
    if a.dtype.kind != "f":
        return Tensor._wrap(np.where(c._data, a._data, b._data))
    return _math.Where.apply(c._data, a, b)


def sigmoid(input):
    return _need_tensor(input, "sigmoid").sigmoid()


def tanh(input):
    return _need_tensor(input, "tanh").tanh()


def softmax(input, dim, dtype=None):
    """exp(x) / sum(exp(x)) along `dim`, as torch.softmax: `dim` is required (the implicit choice
    of lamina.nn.functional.softmax is not offered here either); `dtype` casts the input first.

    >>> import lamina
    >>> lamina.softmax(lamina.tensor([0.0, 0.0]), dim=0).tolist()
    [0.5, 0.5]
    """
    return _softmax_top("softmax", input, dim, dtype, _softmax_along)


def log_softmax(input, dim, dtype=None):
    """x - log(sum(exp(x))) along `dim`, as torch.log_softmax (`dim` required)."""
    return _softmax_top("log_softmax", input, dim, dtype, _log_softmax_along)


def _softmax_top(name, input, dim, dtype, fn):
    _need_tensor(input, name)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}(): argument 'dim' must be int, not {type(dim).__name__}")
    return fn(input, int(dim), dtype=dtype)


def relu(input):
    return _need_tensor(input, "relu").relu()


def _float(x, op):
    x = _need_tensor(x, op)
    if x.dtype.kind != "f":
        from .tensor import get_default_dtype
        x = x.to(get_default_dtype())
    return x


# ---------------------------------------------------------------- shapes
def flatten(input, start_dim=0, end_dim=-1):
    return _need_tensor(input, "flatten").flatten(start_dim, end_dim)


def reshape(input, shape):
    return _need_tensor(input, "reshape").reshape(shape)


def squeeze(input, dim=None):
    return _need_tensor(input, "squeeze").squeeze(dim)


def unsqueeze(input, dim):
    return _need_tensor(input, "unsqueeze").unsqueeze(dim)


def permute(input, dims):
    return _need_tensor(input, "permute").permute(dims)


def transpose(input, dim0, dim1):
    return _need_tensor(input, "transpose").transpose(dim0, dim1)


def t(input):
    return _need_tensor(input, "t").t()


mm = _contract.mm
bmm = _contract.bmm
einsum = _contract.einsum


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of `split_size` along dim (the last may be smaller), or of the listed sizes."""
    x = _need_tensor(tensor, "split", "tensor")
    d = normalize_dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if _builtins.sum(sizes) != n or _builtins.any(s < 0 for s in sizes):
            raise RuntimeError(f"split: split_sizes {sizes} must sum to the dim's size {n}")
    else:
        size = int(split_size_or_sections)
        if size <= 0 and not (size == 0 and n == 0):
            raise RuntimeError(f"split: split_size must be positive, got {size}")
        sizes = [_builtins.min(size, n - s) for s in range(0, n, size)] if n else [0]
    out, start = [], 0
    for s in sizes:
        idx = [slice(None)] * x.ndim
        idx[d] = slice(start, start + s)
        out.append(x[tuple(idx)])
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    """PyTorch's chunk: pieces of ceil(n / chunks) along dim; possibly fewer than `chunks`."""
    x = _need_tensor(input, "chunk")
    if int(chunks) <= 0:
        raise RuntimeError(f"chunk: chunks must be positive, got {chunks}")
    d = normalize_dim(dim, x.ndim, "chunk")
    n = x.shape[d]
    size = -(-n // int(chunks)) if n else 0
    if size == 0:
        return tuple(split(x, [0] * 1 if n == 0 else [n], d))
    return split(x, size, d)


def unbind(input, dim=0):
    """The slices along dim, each without that dim (PyTorch's unbind): a tuple of views."""
    x = _need_tensor(input, "unbind")
    d = normalize_dim(dim, x.ndim, "unbind")
    idx = [slice(None)] * x.ndim
    out = []
    for i in range(x.shape[d]):
        idx[d] = i
        out.append(x[tuple(idx)])
    return tuple(out)


# ---------------------------------------------------------------- reductions
def sum(input, dim=None, keepdim=False, *, dtype=None):
    return _need_tensor(input, "sum").sum(dim, keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    return _need_tensor(input, "mean").mean(dim, keepdim, dtype=dtype)


def max(input, dim=None, keepdim=False):
    """max(x) -> the max; max(x, dim) -> (values, indices); max(x, other) -> elementwise maximum."""
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    x = _need_tensor(input, "max")
    return x.max() if dim is None else x.max(dim, keepdim)


def min(input, dim=None, keepdim=False):
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    x = _need_tensor(input, "min")
    return x.min() if dim is None else x.min(dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    return _need_tensor(input, "argmax").argmax(dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _need_tensor(input, "argmin").argmin(dim, keepdim)


var = _stats.var
std = _stats.std
prod = _stats.prod
cumsum = _stats.cumsum
norm = _stats.norm
logsumexp = _stats.logsumexp


# ---------------------------------------------------------------- comparisons (no gradient)
def _cmp(np_fn, name):
    def f(input, other):
        x = _need_tensor(input, name)
        o = cmp_operand(x._data, other)
        try:
            np.broadcast_shapes(x.shape, np.shape(o))
        except ValueError:
            raise RuntimeError(f"{name}: shapes {tuple(x.shape)} and {tuple(np.shape(o))} do not broadcast") from None
        return Tensor._wrap(np.asarray(np_fn(x._data, o)))
    f.__name__ = name
    f.__doc__ = f"{name}(input, other): elementwise comparison, a bool tensor (no gradient)."
    return f


eq = _cmp(np.equal, "eq")
ne = _cmp(np.not_equal, "ne")
lt = _cmp(np.less, "lt")
le = _cmp(np.less_equal, "le")
gt = _cmp(np.greater, "gt")
ge = _cmp(np.greater_equal, "ge")
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def equal(input, other):
    """True when both have the same shape and elements (a Python bool)."""
    return tuple(input.shape) == tuple(other.shape) and bool(np.array_equal(input._data, other._data))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(np.allclose(input._data, _t(other)._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def _bool_reduce(np_fn, name):
    def f(input, dim=None, keepdim=False):
        x = _need_tensor(input, name)
        if dim is None:
            return Tensor._wrap(np.asarray(np_fn(x._data)))
        d = normalize_dim(dim, x.ndim, name)
        if x.ndim == 0:
            return Tensor._wrap(np.asarray(np_fn(x._data)))
        return Tensor._wrap(np.asarray(np_fn(x._data, axis=d, keepdims=keepdim)))
    f.__name__ = name
    f.__doc__ = f"{name}(input, dim=None, keepdim=False): a bool tensor (no gradient)."
    return f


all = _bool_reduce(np.all, "all")
any = _bool_reduce(np.any, "any")


def isnan(input):
    return Tensor._wrap(np.isnan(_need_tensor(input, "isnan")._data))


def isfinite(input):
    return Tensor._wrap(np.isfinite(_need_tensor(input, "isfinite")._data))


def isinf(input):
    return Tensor._wrap(np.isinf(_need_tensor(input, "isinf")._data))


# ---------------------------------------------------------------- indexing
topk = _index.topk
sort = _index.sort
argsort = _index.argsort
gather = _index.gather
index_select = _index.index_select
masked_fill = _index.masked_fill


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    if reduce is not None:
        if reduce != "add":
            raise NotImplementedError(f"scatter: reduce={reduce!r} is not supported (use 'add' or scatter_add)")
        return _index.scatter(input, dim, index, src, value, add=True)
    if src is not None and not isinstance(src, Tensor):
        value, src = src, None
    return _index.scatter(input, dim, index, src, value)


def scatter_add(input, dim, index, src):
    return _index.scatter(input, dim, index, src, add=True)


# ---------------------------------------------------------------- plumbing
def clone(input):
    return _need_tensor(input, "clone").clone()


def numel(input):
    return int(_need_tensor(input, "numel")._data.size)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(input):
    return _need_tensor(input, "is_floating_point").dtype.kind == "f"


def _like_dtype(t, dtype):
    return np.dtype(dtype) if dtype is not None else t.dtype


def rand_like(input, dtype=None, requires_grad=False):
    from .factory import rand
    return rand(tuple(input.shape), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def randn_like(input, dtype=None, requires_grad=False):
    from .factory import randn
    return randn(tuple(input.shape), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


def randint_like(input, low=0, high=None, dtype=None):
    if high is None:
        low, high = 0, low
    arr = _random.default_generator().integers(low, high, size=tuple(input.shape))
    return Tensor._wrap(arr.astype(_like_dtype(input, dtype)))


def empty_like(input, dtype=None, requires_grad=False):
    from .factory import empty
    return empty(tuple(input.shape), dtype=_like_dtype(input, dtype), requires_grad=requires_grad)


# ---------------------------------------------------------------- arithmetic by name
def add(input, other, *, alpha=1):
    x = _need_tensor(input, "add")
    return x + (other if alpha == 1 else other * alpha)


def sub(input, other, *, alpha=1):
    x = _need_tensor(input, "sub")
    return x - (other if alpha == 1 else other * alpha)


subtract = sub


def mul(input, other):
    return _need_tensor(input, "mul") * other


multiply = mul


def div(input, other, *, rounding_mode=None):
    x = _need_tensor(input, "div")
    if rounding_mode is None:
        return x / other
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    o = other._data if isinstance(other, Tensor) else other
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.true_divide(x._data, o)
        q = np.trunc(q) if rounding_mode == "trunc" else np.floor(q)
    dt = np.result_type(x._data, o) if x.dtype.kind in "iu" else x.dtype
    return Tensor._wrap(q.astype(dt))     # piecewise constant: no gradient, as PyTorch


divide = true_divide = div


def floor_divide(input, other):
    """input // other (rounding down, as Python and PyTorch)."""
    return _need_tensor(input, "floor_divide") // other


def remainder(input, other):
    """input % other (the sign of the divisor, as Python and PyTorch)."""
    if not isinstance(input, Tensor):
        return input % _need_tensor(other, "remainder", "other")
    return input % other


# ---------------------------------------------------------------- in-place variants
def _inplace_of(name, out_of_place):
    """`x.name_(...)`: out_of_place(x, ...) written into x's storage. Recorded in the graph (and
    the version counter bumped) exactly like `x.copy_(...)`, so autograd sees the write."""
    def method(self, *args, **kwargs):
        return _inplace.apply_inplace(self, name, out_of_place, *args, **kwargs)
    method.__name__ = name
    method.__doc__ = f"In-place {name[:-1]}: the result is written into this tensor."
    return method


def _random_fill(name, draw):
    def method(self, *args, **kwargs):
        _inplace.check_inplace(self, name)
        if self.dtype.kind != "f":
            raise TypeError(f"{name}: expected a floating-point tensor, got {self.dtype}")
        generator = _random.generator_of(kwargs.pop("generator", None))
        dtype = np.float64 if self.dtype == np.float64 else np.float32  # as PyTorch draws them
        values = draw(generator, tuple(self.shape), dtype, *args, **kwargs)
        return _inplace.overwrite(self, np.asarray(values, dtype=self.dtype), name)
    method.__name__ = name
    return method


def _bernoulli_(self, p=0.5, generator=None):
    """In place: 1 with probability p (a float or a tensor broadcast to this one), else 0."""
    _inplace.check_inplace(self, "bernoulli_")
    g = _random.generator_of(generator)
    if isinstance(p, Tensor):
        probs = np.broadcast_to(p._data, tuple(self.shape))
        values = g.bernoulli_probs(probs)
    else:
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"bernoulli_: p must be in [0, 1], got {p}")
        values = g.bernoulli(float(p), tuple(self.shape))
    return _inplace.overwrite(self, np.asarray(values, dtype=self.dtype), "bernoulli_")


def _random_(self, from_=None, to=None, generator=None, **kwargs):
    """In place: integers drawn uniformly from [from, to) (random_(to): [0, to); random_(): the
    dtype's whole range, up to 2^mantissa for floats), as PyTorch draws them."""
    _inplace.check_inplace(self, "random_")
    if "from" in kwargs:
        from_ = kwargs.pop("from")
    if kwargs:
        raise TypeError(f"random_: unexpected arguments {sorted(kwargs)}")
    g = _random.generator_of(generator)
    shape = tuple(self.shape)
    if from_ is None and to is None:
        values = g.random_full(shape, self.dtype)
    else:
        low, high = (0, from_) if to is None else (from_, to)
        if int(high) <= int(low):
            raise ValueError(f"random_: expected from < to, got from={low}, to={high}")
        values = g.integers(int(low), int(high), shape)
    return _inplace.overwrite(self, np.asarray(values).astype(self.dtype), "random_")


def _factory_bernoulli(self, p=None, generator=None):
    from .factory import bernoulli
    return bernoulli(self, p, generator=generator)


# ---------------------------------------------------------------- Tensor methods
def _method_new(fill):
    def new(self, *size, dtype=None, requires_grad=False):
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        t = Tensor._wrap(np.full(size, fill, dtype=np.dtype(dtype) if dtype is not None else self.dtype))
        if requires_grad:
            t.requires_grad_(True)
        return t
    return new


def _view_as(self, other):
    return self.reshape(tuple(other.shape))


def _type_as(self, other):
    return self if self.dtype == other.dtype else self.to(other.dtype)


def _method_pow(self, exponent):
    return self ** exponent


_METHODS = {
    "tan": tan, "log1p": log1p, "expm1": expm1, "rsqrt": rsqrt, "neg": neg, "negative": neg, "sign": sign,
    "pow": _method_pow, "clip": clamp, "square": square, "maximum": maximum, "minimum": minimum,
    "view_as": _view_as, "type_as": _type_as, "repeat": _index.repeat,
    "mm": mm, "matmul": lambda self, other: self @ other, "bmm": bmm,
    "norm": _stats.norm, "clamp_min": lambda self, min: clamp(self, min=min),
    "clamp_max": lambda self, max: clamp(self, max=max),
    "expand_as": lambda self, other: self.expand(*other.shape),
    "split": split, "chunk": chunk, "unbind": unbind, "std": std, "var": var, "prod": prod, "cumsum": cumsum,
    "logsumexp": logsumexp, "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
    "all": all, "any": any, "isnan": isnan, "isfinite": isfinite, "isinf": isinf,
    "topk": topk, "sort": sort, "argsort": argsort, "gather": gather, "scatter": scatter,
    "scatter_add": scatter_add, "index_select": index_select, "masked_fill": masked_fill,
    "new_zeros": _method_new(0), "new_ones": _method_new(1), "floor": floor, "ceil": ceil, "trunc": trunc,
    "round": round, "is_floating_point": is_floating_point, "equal": equal, "allclose": allclose,
    "add": add, "sub": sub, "subtract": sub, "mul": mul, "multiply": mul, "div": div, "divide": div,
    "true_divide": div, "floor_divide": floor_divide, "remainder": remainder,
    "pow_": _inplace_of("pow_", lambda x, e: x ** e),
    "clamp_": _inplace_of("clamp_", lambda x, min=None, max=None: clamp(x, min, max)),
    "clip_": _inplace_of("clip_", lambda x, min=None, max=None: clamp(x, min, max)),
    "clamp_min_": _inplace_of("clamp_min_", lambda x, min: clamp(x, min=min)),
    "clamp_max_": _inplace_of("clamp_max_", lambda x, max: clamp(x, max=max)),
    "exp_": _inplace_of("exp_", exp), "log_": _inplace_of("log_", log), "sqrt_": _inplace_of("sqrt_", sqrt),
    "abs_": _inplace_of("abs_", abs), "neg_": _inplace_of("neg_", neg), "sin_": _inplace_of("sin_", sin),
    "cos_": _inplace_of("cos_", cos), "tanh_": _inplace_of("tanh_", tanh),
    "sigmoid_": _inplace_of("sigmoid_", sigmoid), "relu_": _inplace_of("relu_", relu),
    "masked_fill_": _inplace_of("masked_fill_", lambda x, mask, value: masked_fill(x, mask, value)),
    "scatter_": _inplace_of("scatter_", lambda x, dim, index, src=None, value=None, **kw:
                            scatter(x, dim, index, src, value, **kw)),
    "floor_": _inplace_of("floor_", floor), "ceil_": _inplace_of("ceil_", ceil),
    "exponential_": _random_fill("exponential_", lambda g, shape, dtype, lambd=1.0: g.exponential(lambd, shape, dtype)),
    "bernoulli_": _bernoulli_,
    "random_": _random_,
    "bernoulli": lambda self, p=None, generator=None: _factory_bernoulli(self, p, generator=generator),
    "uniform_": _random_fill("uniform_", lambda g, shape, dtype, a=0.0, b=1.0: g.uniform(a, b, shape, dtype)),
    "normal_": _random_fill("normal_", lambda g, shape, dtype, mean=0.0, std=1.0: g.normal(mean, std, shape, dtype)),
}


def _install_methods():
    """Attach the methods tensor.py does not define itself (called once, at import)."""
    for name, fn in _METHODS.items():
        # the class's own attributes only: `type.__or__` (Tensor | None annotations) is not a method
        if not _builtins.any(name in k.__dict__ for k in Tensor.__mro__ if k is not object):
            setattr(Tensor, name, fn)


# ================================================================ more of PyTorch's functions
# Compositions of differentiable ops where PyTorch defines a gradient (so backward, the compiler
# and the gradient checks come from those ops), NumPy where the result is integer / bool.
def _int64(a):
    return Tensor._wrap(np.asarray(a, dtype=np.int64))


def _bool(a):
    return Tensor._wrap(np.asarray(a, dtype=np.bool_))


def _dim(dim, ndim, op):
    return normalize_dim(dim, ndim, op)


def _at_least(x, n, op):
    if x.ndim < n:
        raise RuntimeError(f"{op}(): input must have at least {n} dimensions, got {x.ndim}")


def _zero_like_slot(x):
    """A 1-element tensor of zero in x's dtype (no grad): the 'empty' slot of zero-slot indexing."""
    return Tensor._wrap(np.zeros(x.shape[:-1] + (1,), dtype=x.dtype))


def _take_last(x, idx):
    """x[..., idx] for an integer array idx (any shape), differentiable (a gather on a copy)."""
    return x[(Ellipsis, _int64(idx))]


# ---------------------------------------------------------------- triangles, diagonals, flips
def _keep(x, mask):
    """x where mask holds (broadcast over leading dims), zero elsewhere."""
    mask = np.broadcast_to(mask, tuple(x.shape))
    return masked_fill(x, _bool(~mask), 0)


def tril(input, diagonal=0):
    """The lower triangle of the last two dims (at and below `diagonal`), the rest zero."""
    x = _need_tensor(input, "tril")
    _at_least(x, 2, "tril")
    return _keep(x, np.tri(x.shape[-2], x.shape[-1], int(diagonal), dtype=bool))


def triu(input, diagonal=0):
    """The upper triangle of the last two dims (at and above `diagonal`), the rest zero."""
    x = _need_tensor(input, "triu")
    _at_least(x, 2, "triu")
    return _keep(x, ~np.tri(x.shape[-2], x.shape[-1], int(diagonal) - 1, dtype=bool))


def _dims_list(dims, ndim, op):
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    out = [_dim(d, ndim, op) for d in dims]
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}(): dims {tuple(dims)} has a dim appearing more than once")
    return out


def flip(input, dims):
    """A copy with the order of elements reversed along `dims` (PyTorch's flip copies too)."""
    x = _need_tensor(input, "flip")
    idx = [slice(None)] * x.ndim
    for d in _dims_list(dims, x.ndim, "flip"):
        if x.ndim:
            idx[d] = slice(None, None, -1)
    return x[tuple(idx)].clone()


def fliplr(input):
    x = _need_tensor(input, "fliplr")
    _at_least(x, 2, "fliplr")
    return flip(x, [1])


def flipud(input):
    x = _need_tensor(input, "flipud")
    _at_least(x, 1, "flipud")
    return flip(x, [0])


def roll(input, shifts, dims=None):
    """Elements shifted along dims, wrapping around; dims=None rolls the flattened tensor."""
    x = _need_tensor(input, "roll")
    if dims is None:
        if not isinstance(shifts, (int, np.integer)):
            if len(shifts) != 1:
                raise RuntimeError(f"roll(): shifts {tuple(shifts)} needs dims when it has more than one entry")
            shifts = shifts[0]
        return roll(x.reshape(-1), shifts, 0).reshape(tuple(x.shape))
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll(): shifts and dims must align, got {len(shifts)} shifts and {len(dims)} dims")
    return _roll_impl(x, shifts, dims)


def _roll_impl(x, shifts, dims):
    out = x
    for s, d in zip(shifts, dims):
        d = _dim(d, x.ndim, "roll")
        n = x.shape[d] if x.ndim else 1
        if n == 0 or x.ndim == 0 or int(s) % n == 0:
            continue
        s = int(s) % n
        out = _cat_any([narrow(out, d, n - s, s), narrow(out, d, 0, n - s)], d)
    return out.clone() if out is x else out


def _cat_any(tensors, dim):
    """cat for every dtype (integer and bool tensors concatenate in NumPy: no gradient to keep)."""
    if _builtins.all(t.dtype.kind == "f" for t in tensors):
        from .ops import cat as _cat
        return _cat(tensors, dim)
    dt = _promotion.result_type(tuple(tensors), get_default_dtype())
    return Tensor._wrap(np.concatenate([np.asarray(t._data, dtype=dt) for t in tensors], axis=dim))


def rot90(input, k=1, dims=(0, 1)):
    """Rotate by 90 degrees k times in the plane of `dims`, from the first dim towards the second."""
    x = _need_tensor(input, "rot90")
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90(): expected total rotation dims == 2, but got dims = {len(dims)}")
    if x.ndim < 2:
        raise RuntimeError(f"rot90(): expected total dims >= 2, but got total dims = {x.ndim}")
    d0, d1 = _dim(dims[0], x.ndim, "rot90"), _dim(dims[1], x.ndim, "rot90")
    if d0 == d1:
        raise RuntimeError(f"rot90(): expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k = int(k) % 4
    if k == 1:
        return flip(x, [d1]).transpose(d0, d1)
    if k == 2:
        return flip(x, [d0, d1])
    if k == 3:
        return flip(x, [d0]).transpose(d0, d1)
    return x.clone()


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal of the (dim1, dim2) planes, appended as the last dim (a copy here)."""
    x = _need_tensor(input, "diagonal")
    _at_least(x, 2, "diagonal")
    d1, d2 = _dim(dim1, x.ndim, "diagonal"), _dim(dim2, x.ndim, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal(): dim1 and dim2 cannot be identical, got {d1} and {d2}")
    x = movedim(x, (d1, d2), (-2, -1))
    r, c = x.shape[-2], x.shape[-1]
    offset = int(offset)
    n = _builtins.max(0, _builtins.min(r + _builtins.min(offset, 0), c - _builtins.max(offset, 0)))
    rows = np.arange(n) + _builtins.max(-offset, 0)
    cols = np.arange(n) + _builtins.max(offset, 0)
    return x[(Ellipsis, _int64(rows), _int64(cols))]


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """The last dim of input laid on the diagonals of new (dim1, dim2) planes, zeros elsewhere."""
    x = _need_tensor(input, "diag_embed")
    nd = x.ndim + 1
    d1, d2 = _dim(dim1, nd, "diag_embed"), _dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise RuntimeError(f"diag_embed(): dim1 and dim2 cannot be identical, got {d1} and {d2}")
    if x.ndim == 0:
        x = x.reshape(1)
    n = x.shape[-1]
    offset = int(offset)
    m = n + _builtins.abs(offset)
    idx = np.full((m, m), n)            # index n: the zero slot
    ar = np.arange(n)
    idx[ar + _builtins.max(-offset, 0), ar + _builtins.max(offset, 0)] = ar
    out = _take_last(_cat_any([x, _zero_like_slot(x)], -1), idx)
    return movedim(out, (-2, -1), (d1, d2))


def diag(input, diagonal=0):
    """1-D input: a square matrix with it on the `diagonal`-th diagonal; 2-D: that diagonal."""
    x = _need_tensor(input, "diag")
    if x.ndim == 1:
        return diag_embed(x, diagonal)
    if x.ndim == 2:
        return globals()["diagonal"](x, diagonal)
    raise RuntimeError(f"diag(): input must be 1-D or 2-D, got {x.ndim}-D")


def trace(input):
    x = _need_tensor(input, "trace")
    if x.ndim != 2:
        raise RuntimeError(f"trace(): expected a matrix, but got tensor with dim {x.ndim}")
    d = diagonal(x)
    return d.sum() if x.dtype.kind == "f" else Tensor._wrap(np.asarray(d._data.sum(dtype=np.int64)))


def tril_indices(row, col, offset=0, *, dtype=None):
    r, c = np.tril_indices(int(row), int(offset), int(col))
    return Tensor._wrap(np.stack([r, c]).astype(dtype or np.int64).reshape(2, -1))


def triu_indices(row, col, offset=0, *, dtype=None):
    r, c = np.triu_indices(int(row), int(offset), int(col))
    return Tensor._wrap(np.stack([r, c]).astype(dtype or np.int64).reshape(2, -1))


# ---------------------------------------------------------------- products
def _need_dims(x, n, op, name="input"):
    if x.ndim != n:
        raise RuntimeError(f"{op}(): argument '{name}' must be {n}-D, got {x.ndim}-D (shape {tuple(x.shape)})")


def _same_dtype(a, b, op):
    if a.dtype != b.dtype:
        raise RuntimeError(f"{op}(): expected both arguments to have the same dtype, but got {a.dtype} and {b.dtype}")


def outer(input, vec2):
    a, b = _need_tensor(input, "outer"), _need_tensor(vec2, "outer", "vec2")
    _need_dims(a, 1, "outer")
    _need_dims(b, 1, "outer", "vec2")
    return a.reshape(-1, 1) * b.reshape(1, -1)


ger = outer


def dot(input, tensor):
    a, b = _need_tensor(input, "dot"), _need_tensor(tensor, "dot", "tensor")
    _need_dims(a, 1, "dot")
    _need_dims(b, 1, "dot", "tensor")
    _same_dtype(a, b, "dot")
    if a.shape != b.shape:
        raise RuntimeError(f"dot(): inconsistent tensor size, expected {a.shape[0]} elements in both, "
                           f"got {a.shape[0]} and {b.shape[0]}")
    return (a * b).sum()


vdot = dot       # real tensors only: no conjugate to take


def mv(input, vec):
    m, v = _need_tensor(input, "mv"), _need_tensor(vec, "mv", "vec")
    _need_dims(m, 2, "mv")
    _need_dims(v, 1, "mv", "vec")
    if m.shape[1] != v.shape[0]:
        raise RuntimeError(f"mv(): size mismatch, input {tuple(m.shape)}, vec {tuple(v.shape)}")
    return m @ v


def inner(input, other):
    a, b = _need_tensor(input, "inner"), _need_tensor(other, "inner", "other")
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return tensordot(a, b, dims=([-1], [-1]))


def tensordot(a, b, dims=2):
    """Sum over the paired dims of a and b (the last `dims` of a with the first of b, or lists)."""
    a, b = _need_tensor(a, "tensordot", "a"), _need_tensor(b, "tensordot", "b")
    if isinstance(dims, (int, np.integer)):
        if dims < 0:
            raise RuntimeError(f"tensordot(): expects dims >= 0, but got dims={dims}")
        da, db = list(range(a.ndim - int(dims), a.ndim)), list(range(int(dims)))
    else:
        da, db = dims
        da = [da] if isinstance(da, (int, np.integer)) else list(da)
        db = [db] if isinstance(db, (int, np.integer)) else list(db)
    da = [_dim(d, a.ndim, "tensordot") for d in da]
    db = [_dim(d, b.ndim, "tensordot") for d in db]
    if len(da) != len(db) or _builtins.any(a.shape[i] != b.shape[j] for i, j in zip(da, db)):
        raise RuntimeError(f"tensordot(): contracted dims of a {tuple(a.shape)} at {da} and b {tuple(b.shape)} "
                           f"at {db} do not match")
    fa = [d for d in range(a.ndim) if d not in da]
    fb = [d for d in range(b.ndim) if d not in db]
    k = int(np.prod([a.shape[d] for d in da]))
    am = a.permute(fa + da).reshape(-1, k)
    bm = b.permute(db + fb).reshape(k, -1)
    out_shape = tuple(a.shape[d] for d in fa) + tuple(b.shape[d] for d in fb)
    if a.dtype.kind != "f":
        return Tensor._wrap((am._data @ bm._data).reshape(out_shape))
    return (am @ bm).reshape(out_shape)


def _scaled(x, s):
    return x if s == 1 else x * s


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2); beta=0 ignores input (NaN there does not leak)."""
    x, a, b = _need_tensor(input, "addmm"), _need_tensor(mat1, "addmm", "mat1"), _need_tensor(mat2, "addmm", "mat2")
    _need_dims(a, 2, "addmm", "mat1")
    _need_dims(b, 2, "addmm", "mat2")
    prod_ = _scaled(mm(a, b), alpha)
    return _combine(x, prod_, beta, "addmm")


def _combine(x, prod_, beta, op):
    try:
        shape = np.broadcast_shapes(tuple(x.shape), tuple(prod_.shape))
    except ValueError:
        raise RuntimeError(f"{op}(): input of shape {tuple(x.shape)} does not broadcast to the product's "
                           f"shape {tuple(prod_.shape)}") from None
    if shape != tuple(prod_.shape):
        raise RuntimeError(f"{op}(): input of shape {tuple(x.shape)} does not broadcast to the product's "
                           f"shape {tuple(prod_.shape)}")
    if beta == 0:
        return prod_
    return _scaled(x, beta) + prod_


def addmv(input, mat, vec, *, beta=1, alpha=1):
    return _combine(_need_tensor(input, "addmv"), _scaled(mv(mat, vec), alpha), beta, "addmv")


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    return _combine(_need_tensor(input, "addr"), _scaled(outer(vec1, vec2), alpha), beta, "addr")


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    return _combine(_need_tensor(input, "baddbmm"), _scaled(bmm(batch1, batch2), alpha), beta, "baddbmm")


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    return _combine(_need_tensor(input, "addbmm"), _scaled(bmm(batch1, batch2).sum(0), alpha), beta, "addbmm")


def kron(input, other):
    a, b = _need_tensor(input, "kron"), _need_tensor(other, "kron", "other")
    nd = _builtins.max(a.ndim, b.ndim)
    a = a.reshape((1,) * (nd - a.ndim) + tuple(a.shape))
    b = b.reshape((1,) * (nd - b.ndim) + tuple(b.shape))
    ia, ib = [], []
    for i in range(nd):             # a's dims interleaved with b's: (a0, 1, a1, 1) * (1, b0, 1, b1)
        ia += [a.shape[i], 1]
        ib += [1, b.shape[i]]
    out = a.reshape(ia) * b.reshape(ib)
    return out.reshape(tuple(a.shape[i] * b.shape[i] for i in range(nd)))


def cross(input, other, dim=None):
    """The cross product of 3-vectors along `dim` (None: the first dim of size 3, as torch.cross)."""
    a, b = _need_tensor(input, "cross"), _need_tensor(other, "cross", "other")
    shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    a, b = a.expand(shape), b.expand(shape)
    if dim is None:
        dims3 = [i for i, s in enumerate(shape) if s == 3]
        if not dims3:
            raise RuntimeError(f"cross(): no dimension of size 3 in input of shape {tuple(shape)}")
        d = dims3[0]
    else:
        d = _dim(dim, len(shape), "cross")
    if shape[d] != 3:
        raise RuntimeError(f"cross(): inputs dimension {d} must have length 3, got {shape[d]}")
    ax = [narrow(a, d, i, 1) for i in range(3)]
    bx = [narrow(b, d, i, 1) for i in range(3)]
    return _cat_any([ax[1] * bx[2] - ax[2] * bx[1], ax[2] * bx[0] - ax[0] * bx[2],
                     ax[0] * bx[1] - ax[1] * bx[0]], d)


def dist(input, other, p=2):
    a, b = _need_tensor(input, "dist"), _need_tensor(other, "dist", "other")
    return _stats.vector_norm(a - b, ord=p)


def cdist(x1, x2, p=2.0):
    """Pairwise p-norm distances between the rows of x1 (.., P, M) and of x2 (.., R, M)."""
    a, b = _need_tensor(x1, "cdist", "x1"), _need_tensor(x2, "cdist", "x2")
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-1]:
        raise RuntimeError(f"cdist(): x1 {tuple(a.shape)} and x2 {tuple(b.shape)} must be at least 2-D with "
                           "the same last dim")
    diff_ = a.unsqueeze(-2) - b.unsqueeze(-3)
    return _stats.vector_norm(diff_, ord=p, dim=-1)


# ---------------------------------------------------------------- arithmetic compositions
def lerp(input, end, weight):
    """input + weight * (end - input)."""
    x, e = _need_tensor(input, "lerp"), _need_tensor(end, "lerp", "end")
    _same_dtype(x, e, "lerp")
    return x + weight * (e - x)


def addcmul(input, tensor1, tensor2, *, value=1):
    return _need_tensor(input, "addcmul") + _scaled(tensor1 * tensor2, value)


def addcdiv(input, tensor1, tensor2, *, value=1):
    t1, t2 = _need_tensor(tensor1, "addcdiv", "tensor1"), _need_tensor(tensor2, "addcdiv", "tensor2")
    if t1.dtype.kind in "biu" and t2.dtype.kind in "biu":
        raise RuntimeError("addcdiv(): integer division of tensors is no longer supported; use true division "
                           "(tensor1 / tensor2) with addcmul")
    return _need_tensor(input, "addcdiv") + _scaled(t1 / t2, value)


def hypot(input, other):
    a, b = _same_kind(input, other, "hypot")
    return (a * a + b * b).sqrt()


def atan2(input, other):
    a, b = _same_kind(_float(input, "atan2"), _float(other, "atan2"), "atan2")
    return _math.Atan2.apply(a, b)


arctan2 = atan2


def logaddexp(input, other):
    """log(exp(a) + exp(b)) without overflow: the larger is factored out (a constant for the
    gradient, which the formula does not depend on)."""
    a, b = _same_kind(_float(input, "logaddexp"), _float(other, "logaddexp"), "logaddexp")
    m = Tensor._wrap(np.where(np.isinf(np.maximum(a._data, b._data)), 0, np.maximum(a._data, b._data))
                     .astype(a.dtype))
    return m + ((a - m).exp() + (b - m).exp()).log()


def logaddexp2(input, other):
    ln2 = float(np.log(2.0))
    return logaddexp(_float(input, "logaddexp2") * ln2, _float(other, "logaddexp2") * ln2) * (1 / ln2)


def frac(input):
    x = _need_tensor(input, "frac")
    if x.dtype.kind != "f":
        raise RuntimeError(f"frac(): not implemented for integer tensors ({x.dtype})")
    return x - Tensor._wrap(np.trunc(x._data))


def deg2rad(input):
    return _float(input, "deg2rad") * float(np.pi / 180.0)


def rad2deg(input):
    return _float(input, "rad2deg") * float(180.0 / np.pi)


def heaviside(input, values):
    x, v = _need_tensor(input, "heaviside"), _need_tensor(values, "heaviside", "values")
    _same_dtype(x, v, "heaviside")
    out = np.where(x._data == 0, v._data, (x._data > 0).astype(x.dtype))
    return Tensor._wrap(np.asarray(out, dtype=x.dtype))


def logit(input, eps=None):
    x = _float(input, "logit")
    if eps is not None:
        x = clamp(x, float(eps), 1.0 - float(eps))
    return (x / (1 - x)).log()


def xlogy(input, other):
    """input * log(other), 0 where input == 0 (unless other is NaN); d/dinput = log(other)."""
    ref = input if isinstance(input, Tensor) else other
    x, y = _same_kind(_float(_t(input, ref), "xlogy"), _float(_t(other, ref), "xlogy"), "xlogy")
    shape = np.broadcast_shapes(tuple(x.shape), tuple(y.shape))
    xd, yd = np.broadcast_to(x._data, shape), np.broadcast_to(y._data, shape)
    # where input is 0 and log(other) is not finite (other <= 0), the product would be 0 * -inf: 0
    bad = (xd == 0) & ~np.isnan(yd) & (yd <= 0)
    log_y = y.log()
    if bad.any():
        log_y = where(_bool(bad), Tensor._wrap(np.zeros((), y.dtype)), log_y.expand(*shape))
    return x * log_y


def sgn(input):
    return sign(input)


def signbit(input):
    return _bool(np.signbit(_need_tensor(input, "signbit")._data))


def copysign(input, other):
    x = _float(input, "copysign")
    o = other._data if isinstance(other, Tensor) else np.asarray(other)
    s = np.where(np.signbit(o), -1.0, 1.0).astype(x.dtype)
    return x.abs() * Tensor._wrap(s)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    x = _need_tensor(input, "nan_to_num")
    if x.dtype.kind != "f":
        return x.clone()
    d = x._data
    fi = np.finfo(x.dtype)
    out = x
    for bad, value in ((np.isnan(d), nan), (np.isposinf(d), fi.max if posinf is None else posinf),
                       (np.isneginf(d), fi.min if neginf is None else neginf)):
        if bad.any():
            out = masked_fill(out, _bool(bad), value)
    return out if out is not x else x.clone()


def fmax(input, other):
    """maximum that ignores NaN: NaN only where both are NaN."""
    return _fminmax(input, other, maximum, np.fmax, "fmax")


def fmin(input, other):
    return _fminmax(input, other, minimum, np.fmin, "fmin")


def _fminmax(input, other, pick, np_pick, op):
    a, b = _same_kind(input, other, op)
    if a.dtype.kind != "f":
        return Tensor._wrap(np_pick(a._data, b._data))
    an, bn = np.isnan(a._data), np.isnan(b._data)
    # a NaN side takes the other's value, so the pick (and its gradient) goes to the number
    a2 = where(_bool(an & ~bn), b, a) if (an & ~bn).any() else a
    b2 = where(_bool(bn & ~an), a, b) if (bn & ~an).any() else b
    if (an & bn).any():     # both NaN: the first input's NaN takes the whole gradient, as PyTorch's
        loser = -np.inf if op == "fmax" else np.inf
        b2 = where(_bool(an & bn), Tensor._wrap(np.asarray(loser, a.dtype)), b2)
    return pick(a2, b2)


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


# ---------------------------------------------------------------- logic and bits (no gradient)
def _logical(np_fn, name):
    def f(input, other):
        a, b = _need_tensor(input, name), _t(other)
        return _bool(np_fn(a._data.astype(bool), b._data.astype(bool)))
    f.__name__ = name
    f.__doc__ = f"{name}(input, other): elementwise on truth values (nonzero is True), a bool tensor."
    return f


logical_and = _logical(np.logical_and, "logical_and")
logical_or = _logical(np.logical_or, "logical_or")
logical_xor = _logical(np.logical_xor, "logical_xor")


def logical_not(input):
    return _bool(np.logical_not(_need_tensor(input, "logical_not")._data))


def _bitwise(np_fn, name):
    def f(input, other):
        a = _need_tensor(input, name)
        b = _t(other, a)
        if a.dtype.kind not in "biu" or b.dtype.kind not in "biu":
            raise TypeError(f"{name}(): expected integer or bool tensors, got {a.dtype} and {b.dtype}")
        dt = _promotion.result_type((a, b), get_default_dtype())
        return Tensor._wrap(np.asarray(np_fn(a._data.astype(dt), b._data.astype(dt))))
    f.__name__ = name
    return f


bitwise_and = _bitwise(np.bitwise_and, "bitwise_and")
bitwise_or = _bitwise(np.bitwise_or, "bitwise_or")
bitwise_xor = _bitwise(np.bitwise_xor, "bitwise_xor")


def bitwise_not(input):
    x = _need_tensor(input, "bitwise_not")
    if x.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not(): expected an integer or bool tensor, got {x.dtype}")
    return Tensor._wrap(np.invert(x._data))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = _need_tensor(input, "isclose"), _t(other, input)
    if a.dtype != b.dtype:
        raise RuntimeError(f"isclose(): expected both arguments to have the same dtype, got {a.dtype} and {b.dtype}")
    return _bool(np.isclose(a._data, b._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def count_nonzero(input, dim=None):
    x = _need_tensor(input, "count_nonzero")
    if dim is None:
        return _int64(np.count_nonzero(x._data))
    dims = tuple(_dims_list(dim, x.ndim, "count_nonzero"))
    return _int64(np.count_nonzero(x._data, axis=dims) if x.ndim else np.count_nonzero(x._data))


def nonzero(input, *, as_tuple=False):
    x = _need_tensor(input, "nonzero")
    if as_tuple:
        d = x._data if x.ndim else x._data.reshape(1)
        return tuple(_int64(i) for i in np.nonzero(d))
    return _int64(np.argwhere(x._data))


def argwhere(input):
    return nonzero(input)


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    e = _t(elements)
    return _bool(np.isin(e._data, _t(test_elements)._data, invert=invert))


def isposinf(input):
    return _bool(np.isposinf(_need_tensor(input, "isposinf")._data))


def isneginf(input):
    return _bool(np.isneginf(_need_tensor(input, "isneginf")._data))


def isreal(input):
    return _bool(np.ones(tuple(_need_tensor(input, "isreal").shape), dtype=bool))


# ---------------------------------------------------------------- counting, sets, searching
def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values (always sorted, as PyTorch's CPU unique), optionally the index of each
    input element's value in them and each value's count; dim: distinct slices along dim."""
    x = _need_tensor(input, "unique")
    if dim is None:
        vals, inv, counts = np.unique(x._data.reshape(-1), return_inverse=True, return_counts=True)
        inv = inv.reshape(tuple(x.shape))
    else:
        d = _dim(dim, x.ndim, "unique")
        vals, inv, counts = np.unique(x._data, return_inverse=True, return_counts=True, axis=d)
        inv = inv.reshape(-1)
    out = [Tensor._wrap(vals.astype(x.dtype))]
    if return_inverse:
        out.append(_int64(inv))
    if return_counts:
        out.append(_int64(counts))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """Collapse each run of equal consecutive values (or slices along dim) to one."""
    x = _need_tensor(input, "unique_consecutive")
    if dim is None:
        a = x._data.reshape(-1)
        new = np.ones(a.shape[0], dtype=bool)
        new[1:] = a[1:] != a[:-1]
        vals = a[new]
        inv_shape = tuple(x.shape)
    else:
        d = _dim(dim, x.ndim, "unique_consecutive")
        a = np.moveaxis(x._data, d, 0)
        new = np.ones(a.shape[0], dtype=bool)
        if a.shape[0] > 1:
            new[1:] = (a[1:] != a[:-1]).reshape(a.shape[0] - 1, -1).any(axis=1)
        vals = np.moveaxis(a[new], 0, d)
        inv_shape = (a.shape[0],)
    inv = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, new.shape[0]))
    out = [Tensor._wrap(np.ascontiguousarray(vals))]
    if return_inverse:
        out.append(_int64(inv.reshape(inv_shape)))
    if return_counts:
        out.append(_int64(counts))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input, weights=None, minlength=0):
    x = _need_tensor(input, "bincount")
    if x.ndim != 1 or x.dtype.kind not in "iu":
        raise RuntimeError(f"bincount(): input must be a 1-D non-negative integer tensor, got {x.ndim}-D {x.dtype}")
    if x.numel() and x._data.min() < 0:
        raise RuntimeError("bincount(): input must contain only non-negative integers")
    if minlength < 0:
        raise RuntimeError(f"bincount(): minlength should be >= 0, got {minlength}")
    if weights is None:
        return _int64(np.bincount(x._data, minlength=minlength))
    w = _need_tensor(weights, "bincount", "weights")
    if w.shape != x.shape:
        raise RuntimeError(f"bincount(): weights shape {tuple(w.shape)} must match input shape {tuple(x.shape)}")
    dt = w.dtype if w.dtype.kind == "f" else np.float64
    return Tensor._wrap(np.bincount(x._data, weights=w._data.astype(np.float64), minlength=minlength).astype(dt))


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    """Where each value of input would go in the innermost rows of sorted_sequence to keep them sorted."""
    seq = _need_tensor(sorted_sequence, "searchsorted", "sorted_sequence")
    scalar = not isinstance(input, Tensor)
    vals = np.asarray(input._data if not scalar else input)
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"searchsorted(): side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise RuntimeError("searchsorted(): side and right can't be set to opposites, got side of left "
                               "while right was True")
        right = side == "right"
    s = seq._data
    if sorter is not None:
        s = np.take_along_axis(s, _t(sorter)._data, axis=-1)
    how = "right" if right else "left"
    if s.ndim == 1:
        out = np.searchsorted(s, vals, side=how)
    else:
        if vals.shape[:-1] != s.shape[:-1]:
            raise RuntimeError(f"searchsorted(): boundaries {tuple(s.shape)} and input {tuple(vals.shape)} must "
                               "have the same leading dims")
        rows_s, rows_v = s.reshape(-1, s.shape[-1]), vals.reshape(-1, vals.shape[-1])
        out = np.stack([np.searchsorted(a, v, side=how) for a, v in zip(rows_s, rows_v)]).reshape(vals.shape)
    return Tensor._wrap(np.asarray(out, dtype=np.int32 if out_int32 else np.int64))


def bucketize(input, boundaries, *, out_int32=False, right=False):
    b = _need_tensor(boundaries, "bucketize", "boundaries")
    if b.ndim != 1:
        raise RuntimeError(f"bucketize(): boundaries tensor must be 1 dimension, but got dim({b.ndim})")
    return searchsorted(b, input, out_int32=out_int32, right=right)


def histc(input, bins=100, min=0, max=0):
    x = _need_tensor(input, "histc")
    if x.dtype.kind != "f":
        raise RuntimeError(f"histc(): expected a floating-point tensor, got {x.dtype}")
    if bins <= 0:
        raise RuntimeError(f"histc(): bins must be > 0, but got {bins}")
    lo, hi = float(min), float(max)
    d = x._data.reshape(-1)
    if lo == hi and d.size:
        lo, hi = float(d.min()), float(d.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError(f"histc(): max must be larger than min, got min={min}, max={max}")
    counts, _ = np.histogram(d, bins=int(bins), range=(lo, hi))
    return Tensor._wrap(counts.astype(x.dtype))


# ---------------------------------------------------------------- order statistics
def _pick_along(x, d, idx, keepdim):
    """x's elements at idx (keepdim-shaped index along d): values through gather, so the gradient
    goes to the chosen element, as PyTorch routes it; plus the int64 indices."""
    values = gather(x, d, _int64(idx)) if x.dtype.kind == "f" else Tensor._wrap(np.take_along_axis(x._data, idx, d))
    if not keepdim:
        values = values.squeeze(d)
        idx = np.squeeze(idx, d)
    return _ValuesIndices((values, _int64(idx)))


def _order_dim(x, dim, op):
    d = _dim(dim, x.ndim, op)
    if x.ndim and x.shape[d] == 0:
        raise IndexError(f"{op}(): expected reduction dimension {d} to have non-zero size")
    return d


def _kth_index(data, d, k_of_n, nan_mode):
    """Index along d of the k-th smallest (0-based k from k_of_n(count of valid values)).
    nan_mode 'propagate': a slice with NaN answers its first NaN; 'ignore': NaNs are skipped."""
    order = np.argsort(data, axis=d, kind="stable")        # NaN sorts last
    if data.dtype.kind == "f":
        nans = np.isnan(data)
        valid = data.shape[d] - nans.sum(axis=d, keepdims=True)
    else:
        nans = None
        valid = np.full(data.shape[:d] + (1,) + data.shape[d + 1:], data.shape[d])
    k = np.clip(k_of_n(valid), 0, data.shape[d] - 1)
    idx = np.take_along_axis(order, k, d)
    if nans is not None:
        any_nan = nans.any(axis=d, keepdims=True)
        first_nan = np.expand_dims(np.argmax(nans, axis=d), d)
        if nan_mode == "propagate":
            idx = np.where(any_nan, first_nan, idx)
        else:
            idx = np.where(valid == 0, first_nan, idx)
    return idx


def median(input, dim=None, keepdim=False):
    """The lower of the two middle values (PyTorch's median); with dim, (values, indices)."""
    return _median(input, dim, keepdim, "median", "propagate")


def nanmedian(input, dim=None, keepdim=False):
    """median ignoring NaN (NaN only where a slice is all NaN)."""
    return _median(input, dim, keepdim, "nanmedian", "ignore")


def _median(input, dim, keepdim, op, nan_mode):
    x = _need_tensor(input, op)
    if dim is None:
        if x.numel() == 0:
            return Tensor._wrap(np.asarray(np.nan, dtype=x.dtype if x.dtype.kind == "f" else np.float32))
        flat = x.reshape(-1)
        return _median(flat, 0, False, op, nan_mode).values
    if x.ndim == 0:
        _dim(dim, 0, op)
        return _ValuesIndices((x.clone(), _int64(0)))
    d = _order_dim(x, dim, op)
    idx = _kth_index(x._data, d, lambda n: (n - 1) // 2, nan_mode)
    return _pick_along(x, d, idx, keepdim)


def kthvalue(input, k, dim=-1, keepdim=False):
    """The k-th smallest value (k from 1) along dim and its index."""
    x = _need_tensor(input, "kthvalue")
    if x.ndim == 0:
        _dim(dim, 0, "kthvalue")
        if k != 1:
            raise RuntimeError(f"kthvalue(): selected number k ({k}) out of range for a 0-d tensor")
        return _ValuesIndices((x.clone(), _int64(0)))
    d = _order_dim(x, dim, "kthvalue")
    if not 1 <= int(k) <= x.shape[d]:
        raise RuntimeError(f"kthvalue(): selected number k ({k}) out of range for dimension {d} of size {x.shape[d]}")
    order = np.argsort(x._data, axis=d, kind="stable")
    idx = np.take(order, [int(k) - 1], axis=d)
    return _pick_along(x, d, idx, keepdim)


def mode(input, dim=-1, keepdim=False):
    """The most frequent value along dim (the smallest such on ties) and the last index it is at."""
    x = _need_tensor(input, "mode")
    if x.ndim == 0:
        _dim(dim, 0, "mode")
        return _ValuesIndices((x.clone(), _int64(0)))
    d = _order_dim(x, dim, "mode")
    a = np.moveaxis(x._data, d, -1)
    rows = a.reshape(-1, a.shape[-1])
    best = np.empty(rows.shape[0], dtype=np.int64)
    for r, row in enumerate(rows):
        vals, counts = np.unique(row, return_counts=True)
        v = vals[np.argmax(counts)]                     # argmax: the first (smallest) of the most frequent
        hits = np.flatnonzero((row == v) | (np.isnan(row) & np.isnan(v)) if row.dtype.kind == "f" else row == v)
        best[r] = hits[-1]
    idx = np.expand_dims(best.reshape(a.shape[:-1]), d)
    return _pick_along(x, d, idx, keepdim)


def msort(input):
    return sort(_need_tensor(input, "msort"), 0).values


def _quantile(input, q, dim, keepdim, interpolation, op, ignore_nan):
    x = _need_tensor(input, op)
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}(): input tensor must be either float or double dtype, got {x.dtype}")
    qs = np.asarray(q._data if isinstance(q, Tensor) else q, dtype=np.float64)
    if qs.ndim > 1:
        raise RuntimeError(f"{op}(): q must be a scalar or 1D tensor, got {qs.ndim}-D")
    if isinstance(q, Tensor) and q.dtype != x.dtype:
        raise RuntimeError(f"{op}(): q tensor must be same dtype as the input tensor ({x.dtype}), got {q.dtype}")
    if ((qs < 0) | (qs > 1)).any():
        raise RuntimeError(f"{op}(): q values must be in the range [0, 1]")
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise RuntimeError(f"{op}(): interpolation must be one of linear, lower, higher, midpoint or nearest, "
                           f"got {interpolation!r}")
    if x.numel() == 0:
        raise RuntimeError(f"{op}(): input tensor must be non-empty")
    if dim is None:
        src, d = x.reshape(-1), 0
    else:
        d = _dim(dim, x.ndim, op)
        src = x if x.ndim else x.reshape(1)
        d = 0 if x.ndim == 0 else d
    data = src._data
    order = np.argsort(data, axis=d, kind="stable")              # NaN last
    nans = np.isnan(data)
    n = src.shape[d]
    valid = n - nans.sum(axis=d, keepdims=True) if ignore_nan else np.full(
        data.shape[:d] + (1,) + data.shape[d + 1:], n)
    has_nan = nans.any(axis=d, keepdims=True)
    outs = []
    for qi, qv in enumerate(qs.reshape(-1)):
        pos = qv * (valid - 1).astype(np.float64)
        lo = np.floor(pos).astype(np.int64)
        hi = np.ceil(pos).astype(np.int64)
        w = pos - lo
        if interpolation == "lower":
            hi, w = lo, np.zeros_like(w)
        elif interpolation == "higher":
            lo, w = hi, np.zeros_like(w)
        elif interpolation == "nearest":
            near = np.round(pos).astype(np.int64)      # round half to even, as PyTorch
            lo = hi = near
            w = np.zeros_like(w)
        elif interpolation == "midpoint":
            w = np.where(hi > lo, 0.5, 0.0)
        lo, hi = np.clip(lo, 0, n - 1), np.clip(hi, 0, n - 1)
        a = gather(src, d, _int64(np.take_along_axis(order, lo, d)))
        b = gather(src, d, _int64(np.take_along_axis(order, hi, d)))
        weight = Tensor._wrap(w.astype(x.dtype))
        if interpolation == "linear" and isinstance(q, Tensor) and q.requires_grad:
            # the weight depends on q: keep it differentiable, as PyTorch does
            weight = q.reshape(-1)[qi] * Tensor._wrap((valid - 1).astype(x.dtype)) - Tensor._wrap(lo.astype(x.dtype))
        out = a + (b - a) * weight
        bad = (valid == 0) if ignore_nan else has_nan
        if bad.any():
            out = masked_fill(out, _bool(bad), float("nan"))
        if not keepdim:
            out = out.squeeze(d) if dim is not None else out.reshape(())
        elif dim is None:
            out = out.reshape((1,) * x.ndim)
        outs.append(out)
    if qs.ndim == 0:
        return outs[0]
    return stack(outs, 0) if x.dtype.kind == "f" else outs


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The q-th quantiles along dim (or of all elements), interpolating between the order statistics."""
    return _quantile(input, q, dim, keepdim, interpolation, "quantile", False)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    return _quantile(input, q, dim, keepdim, interpolation, "nanquantile", True)


def _cum_extreme(input, dim, op, better):
    x = _need_tensor(input, op)
    if x.ndim == 0:
        _dim(dim, 0, op)
        return _ValuesIndices((x.clone(), _int64(0)))
    d = _dim(dim, x.ndim, op)
    a = np.moveaxis(x._data, d, -1)
    idx = np.zeros(a.shape, dtype=np.int64)
    if a.shape[-1]:
        best = a[..., 0].copy()
        for i in range(1, a.shape[-1]):
            v = a[..., i]
            # ties move to the later index; NaN wins and stays (as PyTorch's cummax/cummin)
            take = better(v, best) | (v == best) | np.isnan(v) if a.dtype.kind == "f" else better(v, best) | (v == best)
            if a.dtype.kind == "f":
                take &= ~(np.isnan(best) & ~np.isnan(v))
            best = np.where(take, v, best)
            idx[..., i] = np.where(take, i, idx[..., i - 1])
    idx = np.ascontiguousarray(np.moveaxis(idx, -1, d))
    return _pick_along(x, d, idx, True)


def cummax(input, dim):
    return _cum_extreme(input, dim, "cummax", np.greater)


def cummin(input, dim):
    return _cum_extreme(input, dim, "cummin", np.less)


cumprod = _stats.cumprod
amax = _stats.amax
amin = _stats.amin


def aminmax(input, *, dim=None, keepdim=False):
    x = _need_tensor(input, "aminmax")
    d = () if dim is None else dim
    return _MinMax(amin(x, d, keepdim), amax(x, d, keepdim))


class _MinMax(tuple):
    _fields = ("min", "max")

    def __new__(cls, mn, mx):
        return super().__new__(cls, (mn, mx))

    @property
    def min(self):
        return self[0]

    @property
    def max(self):
        return self[1]


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim) \
        if dim is not None else mean(input)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    m = mean(input, dim, keepdim) if dim is not None else mean(input)
    return std(input, dim, unbiased, keepdim, correction=correction), m


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    x = _need_tensor(input, "nansum")
    if x.dtype.kind == "f":
        nan_ = np.isnan(x._data)
        if nan_.any():
            x = masked_fill(x, _bool(nan_), 0.0)
    return x.sum(dim, keepdim, dtype=dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    x = _need_tensor(input, "nanmean")
    if x.dtype.kind != "f":
        raise RuntimeError(f"nanmean(): expected a floating-point input, got {x.dtype}")
    count = Tensor._wrap((~np.isnan(x._data)).astype(x.dtype))
    return nansum(x, dim, keepdim, dtype=dtype) / count.sum(dim, keepdim)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    x = _need_tensor(input, "diff")
    if x.ndim == 0:
        raise RuntimeError("diff(): expects input to be at least one-dimensional")
    d = _dim(dim, x.ndim, "diff")
    parts = [p for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        x = _cat_any([_t(p, x) if p.ndim else _t(p, x).expand(*x.shape[:d], 1, *x.shape[d + 1:])
                      for p in (_t(q, x) for q in parts)], d)
    for _ in range(int(n)):
        m = x.shape[d]
        if m == 0:
            break
        hi, lo = narrow(x, d, 1, m - 1), narrow(x, d, 0, m - 1)
        x = Tensor._wrap(hi._data != lo._data) if x.dtype == np.bool_ else hi - lo
    return x


# ---------------------------------------------------------------- selecting and placing
def masked_select(input, mask):
    """The elements where mask (broadcast with input) is True, as a 1-D tensor."""
    x = _need_tensor(input, "masked_select")
    m = _need_tensor(mask, "masked_select", "mask")
    if m.dtype != np.bool_:
        raise RuntimeError(f"masked_select(): expected mask to be a bool tensor, got {m.dtype}")
    shape = np.broadcast_shapes(tuple(x.shape), tuple(m.shape))
    xb = x.expand(shape) if tuple(x.shape) != shape else x
    where_ = np.nonzero(np.broadcast_to(m._data, shape))
    return xb[tuple(_int64(w) for w in where_)] if shape else xb.reshape(1)[_int64(np.nonzero(m._data.reshape(1))[0])]


def take(input, index):
    x = _need_tensor(input, "take")
    idx = _index._index_array(index, "take")
    n = x.numel()
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"take(): index out of range in self (size {n})")
    return x.reshape(-1)[_int64(np.where(idx < 0, idx + n, idx))]


def take_along_dim(input, indices, dim=None):
    x = _need_tensor(input, "take_along_dim")
    idx = _index._index_array(indices, "take_along_dim")
    if dim is None:
        return take(x.reshape(-1), _int64(idx.reshape(-1)))
    d = _dim(dim, x.ndim, "take_along_dim")
    if idx.ndim != x.ndim:
        raise RuntimeError(f"take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {x.ndim} and {idx.ndim}")
    shape_x = list(np.broadcast_shapes(tuple(s for i, s in enumerate(x.shape) if i != d),
                                       tuple(s for i, s in enumerate(idx.shape) if i != d)))
    sx, si = list(shape_x), list(shape_x)
    sx.insert(d, x.shape[d])
    si.insert(d, idx.shape[d])
    xb = x.expand(sx) if tuple(sx) != tuple(x.shape) else x
    return gather(xb, d, _int64(np.broadcast_to(idx, si)))


def _index_along(x, dim, index, op):
    d = _dim(dim, x.ndim, op)
    idx = _index._index_array(index, op).reshape(-1)
    n = x.shape[d] if x.ndim else 1
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"{op}(): index out of range for dim {d} of size {n}")
    return d, np.where(idx < 0, idx + n, idx)


def _source_index(x, d, idx, src, op):
    """The scatter index placing src's slices (along d) at idx along d of x."""
    if x.ndim and (src.ndim != x.ndim or src.shape[d] != idx.size or
                   tuple(src.shape[:d] + src.shape[d + 1:]) != tuple(x.shape[:d] + x.shape[d + 1:])):
        raise RuntimeError(f"{op}(): source of shape {tuple(src.shape)} does not match index of {idx.size} "
                           f"entries along dim {d} of input {tuple(x.shape)}")
    shape = [1] * src.ndim
    shape[d] = idx.size
    return np.ascontiguousarray(np.broadcast_to(idx.reshape(shape), tuple(src.shape)))


def index_add(input, dim, index, source, *, alpha=1):
    """input with alpha * source's slices added at `index` along dim (repeats accumulate)."""
    x = _need_tensor(input, "index_add")
    src = _need_tensor(source, "index_add", "source")
    d, idx = _index_along(x, dim, index, "index_add")
    full = _source_index(x, d, idx, src, "index_add")
    if x.dtype.kind != "f":
        out = x._data.copy()
        np.add.at(out, _index._full_index(full, d), (src._data * alpha).astype(x.dtype))
        return Tensor._wrap(out)
    return _index.Scatter.apply(x, _scaled(src, alpha), d, full, True)


def index_copy(input, dim, index, source):
    x = _need_tensor(input, "index_copy")
    src = _need_tensor(source, "index_copy", "source")
    d, idx = _index_along(x, dim, index, "index_copy")
    full = _source_index(x, d, idx, src, "index_copy")
    if x.dtype.kind != "f":
        out = x._data.copy()
        out[_index._full_index(full, d)] = src._data
        return Tensor._wrap(out)
    return _index.Scatter.apply(x, src, d, full, False)


def index_fill(input, dim, index, value):
    x = _need_tensor(input, "index_fill")
    d, idx = _index_along(x, dim, index, "index_fill")
    mask = np.zeros(tuple(x.shape), dtype=bool)
    sl = [slice(None)] * x.ndim
    if x.ndim:
        sl[d] = idx
        mask[tuple(sl)] = True
    else:
        mask[...] = idx.size > 0
    return masked_fill(x, _bool(mask), value)


def narrow(input, dim, start, length):
    """The `length` elements from `start` along dim (a view)."""
    x = _need_tensor(input, "narrow")
    d = _dim(dim, x.ndim, "narrow")
    n = x.shape[d]
    start = int(start.item() if isinstance(start, Tensor) else start)
    if not -n <= start <= n:
        raise IndexError(f"narrow(): start ({start}) out of range for dimension {d} of size {n}")
    start = start + n if start < 0 else start
    if length < 0 or start + length > n:
        raise RuntimeError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({n})")
    idx = [slice(None)] * x.ndim
    idx[d] = slice(start, start + int(length))
    return x[tuple(idx)]


def movedim(input, source, destination):
    x = _need_tensor(input, "movedim")
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim(): Invalid source or destination dims: source ({src} dims) should contain "
                           f"the same number of dims as destination ({dst} dims)")
    if x.ndim == 0:
        for s in src + dst:
            _dim(s, 0, "movedim")
        return x
    src = _dims_list(src, x.ndim, "movedim")
    dst = _dims_list(dst, x.ndim, "movedim")
    perm = [None] * x.ndim
    for s, t_ in zip(src, dst):
        perm[t_] = s
    rest = iter(d for d in range(x.ndim) if d not in src)
    perm = [p if p is not None else next(rest) for p in perm]
    return x.permute(perm)


moveaxis = movedim


def swapaxes(input, axis0, axis1):
    return _need_tensor(input, "swapaxes").transpose(axis0, axis1)


swapdims = swapaxes


def tile(input, dims):
    x = _need_tensor(input, "tile")
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    dims = (1,) * (x.ndim - len(dims)) + tuple(int(r) for r in dims)
    if x.dtype.kind != "f":
        return Tensor._wrap(np.tile(x._data, dims))
    return _index.repeat(x, *dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element (or slice along dim) repeated `repeats` times in place; repeat_interleave(r)
    on an integer tensor r: each index i repeated r[i] times."""
    x = _need_tensor(input, "repeat_interleave")
    if repeats is None:
        r = x._data.reshape(-1)
        if x.ndim > 1 or r.dtype.kind not in "iu":
            raise RuntimeError("repeat_interleave(): repeats must be a 1-D integer tensor")
        return _int64(np.repeat(np.arange(r.size), r))
    if dim is None:
        x, d = x.reshape(-1), 0
    else:
        d = _dim(dim, x.ndim, "repeat_interleave")
        if x.ndim == 0:
            x = x.reshape(1)
    n = x.shape[d]
    r = np.asarray(repeats._data if isinstance(repeats, Tensor) else repeats, dtype=np.int64).reshape(-1)
    if r.size not in (1, n):
        raise RuntimeError(f"repeat_interleave(): repeats must have the same size as input along dim, but got "
                           f"repeats.size(0) = {r.size} and input.size({d}) = {n}")
    if (r < 0).any():
        raise RuntimeError("repeat_interleave(): repeats can not be negative")
    idx = np.repeat(np.arange(n), np.broadcast_to(r, (n,)))
    if x.dtype.kind != "f":
        return Tensor._wrap(np.take(x._data, idx, axis=d))
    return _index.IndexSelect.apply(x, d, idx)


def broadcast_to(input, size):
    return _need_tensor(input, "broadcast_to").expand(*size)


def broadcast_shapes(*shapes):
    from .tensor import Size
    try:
        return Size(np.broadcast_shapes(*[(s,) if isinstance(s, (int, np.integer)) else tuple(s) for s in shapes]))
    except ValueError:
        raise RuntimeError(f"broadcast_shapes(): shapes {shapes} cannot be broadcast together") from None


def broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = tuple(broadcast_shapes(*[tuple(_need_tensor(t_, "broadcast_tensors").shape) for t_ in tensors]))
    return tuple(t_.expand(*shape) for t_ in tensors)


def _atleast(n, name):
    def f(*tensors):
        if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
            return tuple(f(t_) for t_ in tensors[0])
        if len(tensors) > 1:
            return tuple(f(t_) for t_ in tensors)
        x = _need_tensor(tensors[0], name)
        if x.ndim >= n:
            return x
        if n == 3 and x.ndim == 2:
            return x.unsqueeze(-1)
        return x.reshape((1,) * (n - x.ndim - (1 if n == 3 and x.ndim == 1 else 0)) + tuple(x.shape)
                         + ((1,) if n == 3 and x.ndim == 1 else ()))
    f.__name__ = name
    return f


atleast_1d = _atleast(1, "atleast_1d")
atleast_2d = _atleast(2, "atleast_2d")
atleast_3d = _atleast(3, "atleast_3d")


def _seq(tensors, op):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{op}(): expects a non-empty TensorList")
    return [_need_tensor(t_, op, "tensors") for t_ in tensors]


def hstack(tensors):
    ts = [atleast_1d(t_) for t_ in _seq(tensors, "hstack")]
    return _cat_any(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    ts = _seq(tensors, "vstack")
    return _cat_any([atleast_2d(t_) for t_ in ts], 0)


row_stack = vstack


def dstack(tensors):
    ts = _seq(tensors, "dstack")
    return _cat_any([atleast_3d(t_) for t_ in ts], 2)


def column_stack(tensors):
    ts = _seq(tensors, "column_stack")
    return _cat_any([t_.reshape(-1, 1) if t_.ndim <= 1 else t_ for t_ in ts], 1)


def tensor_split(input, indices_or_sections, dim=0):
    """Split into n nearly equal parts (the first n % size one longer) or at the given indices."""
    x = _need_tensor(input, "tensor_split")
    d = _dim(dim, x.ndim, "tensor_split")
    n = x.shape[d]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        ios = ios.tolist() if ios.ndim else int(ios.item())
    if isinstance(ios, (int, np.integer)):
        if ios <= 0:
            raise RuntimeError(f"tensor_split(): number of sections must be larger than 0, got {ios}")
        q, r = divmod(n, int(ios))
        sizes = [q + 1] * r + [q] * (int(ios) - r)
        bounds = np.cumsum([0] + sizes)
    else:
        bounds = [0] + [_builtins.min(_builtins.max(int(i) if i >= 0 else int(i) + n, 0), n) for i in ios] + [n]
    return tuple(narrow(x, d, int(s), _builtins.max(int(e) - int(s), 0)) for s, e in zip(bounds[:-1], bounds[1:]))


def _split_n(op, need, dim_of):
    def f(input, indices_or_sections):
        x = _need_tensor(input, op)
        _at_least(x, need, op)
        d = dim_of(x)
        if isinstance(indices_or_sections, (int, np.integer)) and x.shape[d] % int(indices_or_sections):
            raise RuntimeError(f"{op}(): tensor of size {x.shape[d]} along dim {d} is not divisible by the split "
                               f"size {indices_or_sections}")
        return tensor_split(x, indices_or_sections, d)
    f.__name__ = op
    return f


hsplit = _split_n("hsplit", 1, lambda x: 0 if x.ndim == 1 else 1)
vsplit = _split_n("vsplit", 2, lambda x: 0)
dsplit = _split_n("dsplit", 3, lambda x: 2)


def block_diag(*tensors):
    ts = [_need_tensor(t_, "block_diag", "tensors") for t_ in tensors]
    ts = [t_.reshape(1, 1) if t_.ndim == 0 else t_.reshape(1, -1) if t_.ndim == 1 else t_ for t_ in ts]
    if _builtins.any(t_.ndim != 2 for t_ in ts):
        raise RuntimeError("block_diag(): input tensors must have 2 or fewer dimensions")
    if not ts:
        return Tensor._wrap(np.zeros((1, 0), dtype=get_default_dtype()))
    dt = _promotion.result_type(tuple(ts), get_default_dtype())
    cols = _builtins.sum(t_.shape[1] for t_ in ts)
    rows, left = [], 0
    for t_ in ts:
        t_ = t_ if t_.dtype == dt else t_.to(dt)
        pieces = []
        if left:
            pieces.append(Tensor._wrap(np.zeros((t_.shape[0], left), dt)))
        pieces.append(t_)
        right = cols - left - t_.shape[1]
        if right:
            pieces.append(Tensor._wrap(np.zeros((t_.shape[0], right), dt)))
        rows.append(_cat_any(pieces, 1) if len(pieces) > 1 else t_)
        left += t_.shape[1]
    return _cat_any(rows, 0)


def meshgrid(*tensors, indexing=None):
    """Grids from 1-D tensors: output i varies along dim i ('ij', PyTorch's default) or with the
    first two dims swapped ('xy')."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    ts = [_need_tensor(t_, "meshgrid", "tensors") for t_ in tensors]
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid(): indexing must be 'ij' or 'xy', got {indexing!r}")
    for t_ in ts:
        if t_.ndim > 1:
            raise RuntimeError(f"meshgrid(): expects all tensors to be 0-D or 1-D, got {t_.ndim}-D")
    ts = [t_.reshape(-1) for t_ in ts]
    swap = indexing == "xy" and len(ts) >= 2
    order = list(range(len(ts)))
    if swap:
        order[0], order[1] = 1, 0
    shape = tuple(ts[i].shape[0] for i in order)
    out = []
    for i, t_ in enumerate(ts):
        pos = order.index(i)
        view = [1] * len(ts)
        view[pos] = -1
        out.append(t_.reshape(view).expand(*shape))
    return tuple(out)


def cartesian_prod(*tensors):
    grids = meshgrid(*tensors, indexing="ij")
    if len(grids) == 1:
        return grids[0]
    flat = [g.reshape(-1) for g in grids]
    if _builtins.all(f.dtype.kind == "f" for f in flat):
        return stack(flat, 1)
    return Tensor._wrap(np.stack([f._data for f in flat], 1))


def logspace(start, end, steps, base=10.0, *, dtype=None, requires_grad=False):
    dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
    exps = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    t_ = Tensor._wrap(np.power(float(base), exps).astype(dt))
    return t_.requires_grad_(True) if requires_grad else t_


# ---------------------------------------------------------------- elementwise math as ops
def _unary_op(cls, name):
    def f(input):
        return cls.apply(_float(input, name))
    f.__name__ = name
    f.__doc__ = f"{name}(input): elementwise, with its derivative (lamina.ops.math)."
    return f


sinh = _unary_op(_math.Sinh, "sinh")
cosh = _unary_op(_math.Cosh, "cosh")
asin = arcsin = _unary_op(_math.Asin, "asin")
acos = arccos = _unary_op(_math.Acos, "acos")
atan = arctan = _unary_op(_math.Atan, "atan")
asinh = arcsinh = _unary_op(_math.Asinh, "asinh")
acosh = arccosh = _unary_op(_math.Acosh, "acosh")
atanh = arctanh = _unary_op(_math.Atanh, "atanh")
erf = _unary_op(_math.Erf, "erf")
erfc = _unary_op(_math.Erfc, "erfc")
erfinv = _unary_op(_math.Erfinv, "erfinv")
reciprocal = _unary_op(_math.Reciprocal, "reciprocal")


# ---------------------------------------------------------------- more Tensor methods
def _new_full(self, size, fill_value, *, dtype=None, requires_grad=False):
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    t_ = Tensor._wrap(np.full(size, fill_value, dtype=np.dtype(dtype) if dtype is not None else self.dtype))
    return t_.requires_grad_(True) if requires_grad else t_


def _new_empty(self, *size, dtype=None, requires_grad=False):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return _new_full(self, size, 0, dtype=dtype, requires_grad=requires_grad)


def _new_tensor(self, data, *, dtype=None, requires_grad=False):
    src = data._data if isinstance(data, Tensor) else data
    arr = np.array(src, dtype=np.dtype(dtype) if dtype is not None else None)
    if dtype is None and not isinstance(data, Tensor):
        arr = arr.astype(self.dtype) if arr.dtype.kind == "f" or self.dtype.kind == "f" or arr.dtype.kind == "iu" else arr
    t_ = Tensor._wrap(np.ascontiguousarray(arr))
    return t_.requires_grad_(True) if requires_grad else t_


def _fill_diagonal_(self, fill_value, wrap=False):
    if self.ndim < 2:
        raise RuntimeError(f"fill_diagonal_(): dimensions must be larger than 1, got {self.ndim}")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise RuntimeError("fill_diagonal_(): all dimensions of input must be of equal length")
    mask = np.zeros(tuple(self.shape), dtype=bool)
    np.fill_diagonal(mask, True, wrap=wrap)
    return _inplace.apply_inplace(self, "fill_diagonal_", lambda x: masked_fill(x, _bool(mask), fill_value))


def _reshape_inplace(name, shape_of):
    """squeeze_/unsqueeze_/t_: change this tensor's shape (same storage)."""
    def method(self, *args):
        if self.requires_grad:
            raise RuntimeError(f"{name}(): lamina changes a shape in place only for tensors that do not require "
                               f"grad; use the out-of-place {name[:-1]}() instead")
        self._data = shape_of(self, *args)._data
        return self
    method.__name__ = name
    return method


def _sum_to_size(self, *size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    size = tuple(int(s) for s in size)
    try:
        ok = np.broadcast_shapes(size, tuple(self.shape)) == tuple(self.shape)
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(f"sum_to_size(): size {list(size)} is not expandable to size {list(self.shape)}")
    out, lead = self, self.ndim - len(size)
    if lead:
        out = out.sum(tuple(range(lead)))
    dims = tuple(i for i, (s, have) in enumerate(zip(size, out.shape)) if s == 1 and have != 1)
    if dims:
        out = out.sum(dims, keepdim=True)
    return out if out is not self else self


def _unfold(self, dimension, size, step):
    """Every window of `size` elements, `step` apart, along `dimension`, as a new last dim."""
    x = self if self.ndim else self.reshape(1)
    d = _dim(dimension, self.ndim, "unfold") if self.ndim else 0
    n = x.shape[d]
    if size < 0 or size > n:
        raise RuntimeError(f"unfold(): maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"unfold(): step is {step} but must be > 0")
    count = (n - size) // step + 1
    idx = (np.arange(count)[:, None] * step + np.arange(size)).reshape(-1)
    picked = (_index.IndexSelect.apply(x, d, idx) if x.dtype.kind == "f"
              else Tensor._wrap(np.take(x._data, idx, axis=d)))
    out = picked.reshape(tuple(x.shape[:d]) + (count, size) + tuple(x.shape[d + 1:]))
    out = movedim(out, d + 1, -1)
    return out.reshape(size) if self.ndim == 0 else out


def _stride(self, dim=None):
    strides = tuple(s // self._data.itemsize for s in self._data.strides)
    if dim is None:
        return strides
    return strides[_dim(dim, self.ndim, "stride")]


def _storage_offset(self):
    base = self._base
    while base is not None and base._base is not None:
        base = base._base
    if base is None:
        return 0
    here = self._data.__array_interface__["data"][0]
    start = base._data.__array_interface__["data"][0]
    return (here - start) // self._data.itemsize


def _no_16_bit(name):
    def method(self, *args, **kwargs):
        raise TypeError(f"{name}(): lamina has no 16-bit floating-point dtype; use float() (float32) or double()")
    method.__name__ = name
    return method


_MORE_METHODS = {
    "tril": tril, "triu": triu, "flip": lambda self, *dims: flip(self, dims[0] if len(dims) == 1 and not
                                                                     isinstance(dims[0], int) else dims),
    "fliplr": fliplr, "flipud": flipud, "roll": roll, "rot90": rot90, "diag": diag, "diagonal": diagonal,
    "diag_embed": diag_embed, "outer": outer, "ger": ger, "isclose": isclose, "amax": amax, "amin": amin,
    "aminmax": aminmax, "nonzero": nonzero, "argwhere": argwhere, "unique": unique,
    "unique_consecutive": unique_consecutive, "bincount": bincount, "histc": histc, "median": median,
    "nanmedian": nanmedian, "mode": mode, "kthvalue": kthvalue, "quantile": quantile, "nanquantile": nanquantile,
    "nan_to_num": nan_to_num, "cumprod": cumprod, "cummax": cummax, "cummin": cummin, "kron": kron,
    "trace": trace, "cross": cross, "dist": dist, "count_nonzero": count_nonzero, "logical_and": logical_and,
    "logical_or": logical_or, "logical_not": logical_not, "logical_xor": logical_xor, "bitwise_and": bitwise_and,
    "bitwise_or": bitwise_or, "bitwise_xor": bitwise_xor, "bitwise_not": bitwise_not, "fmax": fmax, "fmin": fmin,
    "lerp": lerp, "addcmul": addcmul, "addcdiv": addcdiv, "addmm": addmm, "addbmm": addbmm, "baddbmm": baddbmm,
    "addmv": addmv, "addr": addr, "mv": mv, "dot": dot, "vdot": vdot, "inner": inner, "sinh": sinh, "cosh": cosh,
    "asin": asin, "acos": acos, "atan": atan, "asinh": asinh, "acosh": acosh, "atanh": atanh, "arcsin": asin,
    "arccos": acos, "arctan": atan, "arcsinh": asinh, "arccosh": acosh, "arctanh": atanh, "atan2": atan2,
    "arctan2": atan2, "erf": erf, "erfc": erfc, "erfinv": erfinv, "logaddexp": logaddexp,
    "logaddexp2": logaddexp2, "hypot": hypot, "frac": frac, "reciprocal": reciprocal, "deg2rad": deg2rad,
    "rad2deg": rad2deg, "heaviside": heaviside, "logit": logit, "xlogy": xlogy, "sgn": sgn, "signbit": signbit,
    "copysign": copysign, "masked_select": masked_select, "take": take, "take_along_dim": take_along_dim,
    "index_add": index_add, "index_copy": index_copy, "index_fill": index_fill, "narrow": narrow,
    "movedim": movedim, "moveaxis": moveaxis, "swapaxes": swapaxes, "swapdims": swapdims, "tile": tile,
    "repeat_interleave": repeat_interleave, "broadcast_to": broadcast_to, "tensor_split": tensor_split,
    "hsplit": hsplit, "vsplit": vsplit, "dsplit": dsplit, "msort": msort, "nansum": nansum, "nanmean": nanmean,
    "diff": diff, "isposinf": isposinf, "isneginf": isneginf, "isreal": isreal,
    "new_full": _new_full, "new_empty": _new_empty, "new_tensor": _new_tensor,
    "fill_diagonal_": _fill_diagonal_,
    "index_add_": _inplace_of("index_add_", index_add), "index_copy_": _inplace_of("index_copy_", index_copy),
    "index_fill_": _inplace_of("index_fill_", index_fill),
    "addcmul_": _inplace_of("addcmul_", addcmul), "addcdiv_": _inplace_of("addcdiv_", addcdiv),
    "lerp_": _inplace_of("lerp_", lerp),
    "squeeze_": _reshape_inplace("squeeze_", lambda x, dim=None: x.squeeze(dim)),
    "unsqueeze_": _reshape_inplace("unsqueeze_", lambda x, dim: x.unsqueeze(dim)),
    "t_": _reshape_inplace("t_", lambda x: x.t()),
    "sum_to_size": _sum_to_size, "unfold": _unfold, "stride": _stride, "storage_offset": _storage_offset,
    "element_size": lambda self: int(self._data.itemsize),
    "nbytes": property(lambda self: int(self._data.nbytes)),
    "itemsize": property(lambda self: int(self._data.itemsize)),
    "half": _no_16_bit("half"), "bfloat16": _no_16_bit("bfloat16"),
}
_METHODS.update(_MORE_METHODS)

__all__ += [
    "tril", "triu", "flip", "fliplr", "flipud", "roll", "rot90", "diag", "diagonal", "diag_embed", "outer", "ger",
    "meshgrid", "isclose", "amax", "amin", "aminmax", "nonzero", "argwhere", "unique", "unique_consecutive",
    "bincount", "searchsorted", "bucketize", "histc", "median", "nanmedian", "mode", "kthvalue", "quantile",
    "nanquantile", "nan_to_num", "cumprod", "cummax", "cummin", "kron", "trace", "cross", "dist", "cdist",
    "tensordot", "count_nonzero", "logical_and", "logical_or", "logical_not", "logical_xor", "bitwise_and",
    "bitwise_or", "bitwise_xor", "bitwise_not", "fmax", "fmin", "lerp", "addcmul", "addcdiv", "addmm", "addbmm",
    "baddbmm", "addmv", "addr", "mv", "dot", "vdot", "inner", "sinh", "cosh", "asin", "acos", "atan", "atan2",
    "arcsin", "arccos", "arctan", "arctan2", "arcsinh", "arccosh", "arctanh",
    "asinh", "acosh", "atanh", "erf", "erfc", "erfinv", "logaddexp", "logaddexp2", "hypot", "frac", "reciprocal",
    "deg2rad", "rad2deg", "heaviside", "logit", "xlogy", "sgn", "signbit", "copysign", "masked_select", "take",
    "take_along_dim", "index_add", "index_copy", "index_fill", "narrow", "movedim", "moveaxis", "swapaxes",
    "swapdims", "tile", "repeat_interleave", "broadcast_to", "broadcast_shapes", "broadcast_tensors",
    "atleast_1d", "atleast_2d", "atleast_3d", "column_stack", "hstack", "vstack", "row_stack", "dstack",
    "tensor_split", "hsplit", "vsplit", "dsplit", "block_diag", "cartesian_prod", "clamp_min", "clamp_max",
    "logspace", "tril_indices", "triu_indices", "msort", "var_mean", "std_mean", "nansum", "nanmean", "diff",
    "isin", "isposinf", "isneginf", "isreal",
]

# the in-place forms PyTorch has of the functions above: x.name_(...) = name(x, ...) written into x
for _name in ("acos", "acosh", "addbmm", "addmm", "asin", "asinh", "atan2", "atan", "atanh", "baddbmm",
              "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor", "copysign", "cosh", "cumprod", "deg2rad",
              "erf", "erfc", "erfinv", "frac", "heaviside", "hypot", "logical_and", "logical_not", "logical_or",
              "logical_xor", "logit", "nan_to_num", "rad2deg", "reciprocal", "sgn", "sinh", "tril", "triu", "xlogy",
              "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "arctan2", "fmax", "fmin"):
    _METHODS.setdefault(_name + "_", _inplace_of(_name + "_", globals()[_name]))
_METHODS["swapaxes_"] = _reshape_inplace("swapaxes_", lambda x, a, b: x.transpose(a, b))
_METHODS["swapdims_"] = _reshape_inplace("swapdims_", lambda x, a, b: x.transpose(a, b))
del _name


# ================================================================ small PyTorch functions and methods
# Compositions of the ops above (so gradients come from them), with PyTorch's names.
def fmod(input, other):
    """input - trunc(input / other) * other: C's remainder, the sign of the dividend (PyTorch's fmod)."""
    x = _need_tensor(input, "fmod")
    if x.dtype.kind != "f":
        o = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(np.fmod(x._data, o))
    return x - (x / other).trunc() * other


def select(input, dim, index):
    """The slice at `index` along dim, without that dim (a view)."""
    x = _need_tensor(input, "select")
    d = normalize_dim(dim, x.ndim, "select")
    n = x.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(x.shape)} at dimension {d}")
    return x[(slice(None),) * d + (int(index),)]


def unflatten(input, dim, sizes):
    """Dim `dim` split into `sizes` (one of them may be -1)."""
    x = _need_tensor(input, "unflatten")
    d = normalize_dim(dim, x.ndim, "unflatten")
    sizes = tuple(int(s) for s in sizes)
    known = int(np.prod([s for s in sizes if s != -1], dtype=np.int64))
    if sizes.count(-1) > 1 or (sizes.count(-1) == 0 and known != x.shape[d]) or \
            (sizes.count(-1) == 1 and (known == 0 or x.shape[d] % known)):
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                           f"({x.shape[d]}) in the input tensor")
    return x.reshape(*x.shape[:d], *sizes, *x.shape[d + 1:])


def detach(input):
    return _need_tensor(input, "detach").detach()


def is_complex(input):
    _need_tensor(input, "is_complex")
    return False


def float_power(input, exponent):
    """input ** exponent computed in float64, as PyTorch's float_power."""
    x = _need_tensor(input, "float_power").to(np.float64)
    return x ** (exponent.to(np.float64) if isinstance(exponent, Tensor) else exponent)


def cov(input, *, correction=1, fweights=None, aweights=None):
    """Covariance of the rows (variables) over the columns (observations) of a 1-D or 2-D input."""
    x = _need_tensor(input, "cov")
    if fweights is not None or aweights is not None:
        raise NotImplementedError("cov: fweights and aweights are not supported by lamina")
    if x.ndim > 2:
        raise ValueError(f"cov(): expected input to have two or fewer dimensions but got an input with {x.ndim} dimensions")
    x = x.reshape(1, -1) if x.ndim < 2 else x
    n = x.shape[1]
    xc = x - x.mean(1, keepdim=True)
    c = (xc @ xc.t()) / _builtins.max(n - correction, 0)
    return c.reshape(()) if input.ndim < 2 else c


def corrcoef(input):
    """Pearson correlation coefficients of the rows, clipped to [-1, 1] as PyTorch's."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal().sqrt()
    return (c / d.reshape(-1, 1) / d.reshape(1, -1)).clamp(-1, 1)


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """The trapezoidal rule along dim, with sample points x or spacing dx (default 1)."""
    y = _need_tensor(y, "trapezoid", "y")
    d = normalize_dim(dim, y.ndim, "trapezoid")
    n = y.shape[d]
    if n == 0:
        return y.sum(d)
    a, b = y.narrow(d, 1, n - 1), y.narrow(d, 0, n - 1)
    if x is not None:
        xs = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=y.dtype))
        if xs.ndim == 1:
            shape = [1] * y.ndim
            shape[d] = n - 1
            dxs = (xs[1:] - xs[:-1]).reshape(*shape)
        else:
            dxs = xs.narrow(d, 1, n - 1) - xs.narrow(d, 0, n - 1)
        return ((a + b) * dxs).sum(d) / 2
    return (a + b).sum(d) * ((1.0 if dx is None else dx) / 2)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    y = _need_tensor(y, "cumulative_trapezoid", "y")
    d = normalize_dim(dim, y.ndim, "cumulative_trapezoid")
    n = y.shape[d]
    a, b = y.narrow(d, 1, n - 1), y.narrow(d, 0, n - 1)
    if x is not None:
        xs = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=y.dtype))
        shape = [1] * y.ndim
        shape[d] = n - 1
        dxs = (xs[1:] - xs[:-1]).reshape(*shape) if xs.ndim == 1 else xs.narrow(d, 1, n - 1) - xs.narrow(d, 0, n - 1)
        return ((a + b) * dxs / 2).cumsum(d)
    return ((a + b) * ((1.0 if dx is None else dx) / 2)).cumsum(d)


def chain_matmul(*matrices, out=None):
    if not matrices:
        raise RuntimeError("chain_matmul(): Expected one or more matrices")
    y = matrices[0]
    for m in matrices[1:]:
        y = y @ m
    return y


def combinations(input, r=2, with_replacement=False):
    """The r-element combinations of a 1-D tensor's elements, one per row (itertools' order)."""
    import itertools
    x = _need_tensor(input, "combinations")
    if x.ndim != 1:
        raise ValueError(f"Expect a 1D vector, but got shape {list(x.shape)}")
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(range(x.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    if idx.size == 0:
        return Tensor._wrap(np.zeros((0,) if r != 1 else (0, 1), dtype=x.dtype))
    return x[Tensor._wrap(idx)]


def vander(x, N=None, increasing=False):
    """Columns x^(N-1) ... x^0 (or increasing powers), as PyTorch's vander."""
    x = _need_tensor(x, "vander", "x")
    n = x.shape[0] if N is None else int(N)
    powers = range(n) if increasing else range(n - 1, -1, -1)
    cols = [x ** p if p else x * 0 + 1 for p in powers]
    return stack(cols, 1) if cols else Tensor._wrap(np.zeros((x.shape[0], 0), x.dtype))


def _window(name, length, periodic, dtype, values):
    if int(length) != length or length < 0:
        raise RuntimeError(f"{name} requires non-negative window length, got window_length={length}")
    length = int(length)
    dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
    if length == 0:
        return Tensor._wrap(np.zeros(0, dt))
    if length == 1:
        return Tensor._wrap(np.ones(1, dt))
    n = length + 1 if periodic else length
    return Tensor._wrap(np.asarray(values(n)[:length], dtype=dt))


def hann_window(window_length, periodic=True, *, dtype=None, **kwargs):
    return _window("hann_window", window_length, periodic, dtype,
                   lambda n: 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1)))


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None, **kwargs):
    return _window("hamming_window", window_length, periodic, dtype,
                   lambda n: alpha - beta * np.cos(2 * np.pi * np.arange(n) / (n - 1)))


def blackman_window(window_length, periodic=True, *, dtype=None, **kwargs):
    return _window("blackman_window", window_length, periodic, dtype,
                   lambda n: 0.42 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1))
                   + 0.08 * np.cos(4 * np.pi * np.arange(n) / (n - 1)))


def bartlett_window(window_length, periodic=True, *, dtype=None, **kwargs):
    return _window("bartlett_window", window_length, periodic, dtype,
                   lambda n: 1 - np.abs(2 * np.arange(n) / (n - 1) - 1))


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, **kwargs):
    return _window("kaiser_window", window_length, periodic, dtype,
                   lambda n: np.i0(beta * np.sqrt(np.clip(1 - (2 * np.arange(n) / (n - 1) - 1) ** 2, 0, None)))
                   / np.i0(beta))


def _logcumsumexp(self, dim):
    d = normalize_dim(dim, self.ndim, "logcumsumexp")
    m = self.detach().amax(d, keepdim=True) if self.numel() else self.detach()
    m = m.masked_fill(m.isfinite().logical_not(), 0.0) if m.numel() else m
    return (self - m).exp().cumsum(d).log() + m


def logcumsumexp(input, dim):
    return _logcumsumexp(_need_tensor(input, "logcumsumexp"), dim)


def _index_put(self, indices, values, accumulate=False):
    """out-of-place index_put: a copy of self with self[indices] = values (or += with accumulate)."""
    idx = tuple(indices)
    out = self.clone()
    if accumulate:
        flat = np.ravel_multi_index(tuple(np.broadcast_arrays(*[np.asarray(i._data if isinstance(i, Tensor) else i)
                                                                  for i in idx])), self.shape[:len(idx)])
        rest = int(np.prod(self.shape[len(idx):], dtype=np.int64))
        src = values if isinstance(values, Tensor) else Tensor(np.asarray(values, dtype=self.dtype))
        src = src.expand(*flat.shape, *self.shape[len(idx):]).reshape(-1, rest) if src.numel() != 1 or rest != 1 \
            else src.reshape(1, 1).expand(flat.size, 1)
        return index_add(out.reshape(-1, rest), 0, Tensor._wrap(flat.reshape(-1).astype(np.int64)),
                         src).reshape(*self.shape)
    out[idx] = values
    return out


def _apply_(self, fn):
    """fn applied to every element in place (CPU, no autograd), as PyTorch's Tensor.apply_."""
    if self.requires_grad:
        raise RuntimeError("apply_ is only implemented on tensors that do not require grad")
    _inplace.check_inplace(self, "apply_")
    a = self._data
    for i in np.ndindex(a.shape):
        a[i] = fn(a[i].item())
    _inplace.bump_version(self)
    return self


def _contains(self, element):
    if isinstance(element, (Tensor, int, float, bool, np.number)):
        return bool((self == element).any().item())
    raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a {type(element)}.")


_MORE_SMALL_METHODS = {
    "fmod": fmod, "fmod_": _inplace_of("fmod_", fmod), "select": select, "unflatten": unflatten,
    "float_power": float_power, "logcumsumexp": _logcumsumexp,
    "reshape_as": lambda self, other: self.reshape(*other.shape),
    "where": lambda self, condition, other: where(condition, self, other),
    "transpose_": _reshape_inplace("transpose_", lambda x, a, b: x.transpose(a, b)),
    "scatter_add_": _inplace_of("scatter_add_", scatter_add),
    "index_put": _index_put, "index_put_": _inplace_of("index_put_", _index_put),
    "square_": _inplace_of("square_", square), "log2": log2, "log10": log10,
    "ndimension": lambda self: self.ndim, "nelement": lambda self: self.numel(),
    "data_ptr": lambda self: int(self._data.ctypes.data), "get_device": lambda self: -1,
    "is_pinned": lambda self, device=None: False, "pin_memory": lambda self, device=None: self,
    "share_memory_": lambda self: self, "is_shared": lambda self: False,
    "mT": property(lambda self: self.transpose(-2, -1)),
    "H": property(lambda self: self.t() if self.ndim <= 2 else (_ for _ in ()).throw(
        RuntimeError("tensor.H is only supported on matrices (2-D tensors)"))),
    "mH": property(lambda self: self.transpose(-2, -1)),
    "apply_": _apply_, "__contains__": _contains,
    "__reversed__": lambda self: self if self.ndim == 0 else self.flip(0),
}
_METHODS.update(_MORE_SMALL_METHODS)
__all__ += ["fmod", "select", "unflatten", "detach", "is_complex", "float_power", "cov", "corrcoef", "trapezoid",
            "trapz", "cumulative_trapezoid", "chain_matmul", "combinations", "vander", "hann_window", "hamming_window",
            "blackman_window", "bartlett_window", "kaiser_window", "logcumsumexp"]
trapz = trapezoid


def _shift(np_fn, name):
    def f(self, other):
        b = _t(other, self)
        if self.dtype.kind not in "iu" or b.dtype.kind not in "iu":
            raise TypeError(f"{name}: expected integer tensors, got {self.dtype} and {b.dtype}")
        dt = _promotion.result_type((self, b), get_default_dtype())
        return Tensor._wrap(np.asarray(np_fn(self._data.astype(dt), b._data.astype(dt))))
    return f


# The mask operators PyTorch code writes: ~m, m1 & m2, m1 | m2, m1 ^ m2 (bool / integer tensors),
# and the integer shifts; Python scalars on either side.
_METHODS.update({
    "__invert__": bitwise_not,
    "__and__": bitwise_and, "__rand__": lambda self, o: bitwise_and(self, o),
    "__or__": bitwise_or, "__ror__": lambda self, o: bitwise_or(self, o),
    "__xor__": bitwise_xor, "__rxor__": lambda self, o: bitwise_xor(self, o),
    "__iand__": _inplace_of("__iand__", bitwise_and), "__ior__": _inplace_of("__ior__", bitwise_or),
    "__ixor__": _inplace_of("__ixor__", bitwise_xor),
    "__lshift__": _shift(np.left_shift, "__lshift__"), "__rshift__": _shift(np.right_shift, "__rshift__"),
    "bitwise_left_shift": _shift(np.left_shift, "bitwise_left_shift"),
    "bitwise_right_shift": _shift(np.right_shift, "bitwise_right_shift"),
})


def _decomp():
    from .ops import decomp
    return decomp


def inverse(input):
    return _decomp().inv(input)


def det(input):
    return _decomp().det(input)


def logdet(input):
    return _decomp().logdet(input)


def slogdet(input):
    return _decomp().slogdet(input)


def cholesky(input, upper=False):
    return _decomp().cholesky(input, upper=upper)


_METHODS.update({"inverse": inverse, "det": det, "logdet": logdet, "slogdet": slogdet, "cholesky": cholesky})
__all__ += ["inverse", "det", "logdet", "slogdet", "cholesky"]


# ================================================================ PyTorch names lamina lacked (parity31)
# Aliases and compositions of the ops above (gradients come from them) and the elementwise ops
# in lamina.ops.math (lgamma, digamma, i0, sinc: registered there with their derivatives).
import math as _pymath  # noqa: E402

e, pi, inf, nan, newaxis = _pymath.e, _pymath.pi, _pymath.inf, _pymath.nan, None
lgamma = _unary_op(_math.Lgamma, "lgamma")
digamma = _unary_op(_math.Digamma, "digamma")
i0 = _unary_op(_math.I0, "i0")
sinc = _unary_op(_math.Sinc, "sinc")
absolute = abs
fix = trunc


def concat(tensors, dim=0):
    from .ops import cat
    return cat(tensors, dim)


def concatenate(tensors, axis=0):
    from .ops import cat
    return cat(tensors, axis)


def positive(input):
    x = _need_tensor(input, "positive")
    if x.dtype == np.bool_:
        raise TypeError("The `+` operator, on a bool tensor is not supported.")
    return x


def ldexp(input, other):
    """input * 2**other (a float result, as PyTorch's: integer inputs become the default dtype)."""
    x = _need_tensor(input, "ldexp")
    o = other if isinstance(other, Tensor) else Tensor._wrap(np.asarray(other))
    dt = _promotion.result_type((x, o), get_default_dtype())
    if np.dtype(dt).kind != "f":
        dt = get_default_dtype()
    return x.to(dt) * (2.0 ** o.to(dt))


class _Frexp(tuple):
    """(mantissa, exponent) with PyTorch's field names."""

    @property
    def mantissa(self):
        return self[0]

    @property
    def exponent(self):
        return self[1]


def frexp(input):
    """x = mantissa * 2**exponent, |mantissa| in [0.5, 1); exponent int32 (no gradient)."""
    x = _need_tensor(input, "frexp")
    if x.dtype.kind != "f":
        raise RuntimeError(f"torch.frexp() only supports floating-point dtypes, got {x.dtype}")
    m, ex = np.frexp(x._data)
    return _Frexp((Tensor._wrap(np.asarray(m, x.dtype)), Tensor._wrap(np.asarray(ex, np.int32))))


def _int_pair(np_fn, name):
    def f(input, other):
        x = _need_tensor(input, name)
        o = _t(other, x)
        if x.dtype.kind not in "iu" or o.dtype.kind not in "iu":
            raise RuntimeError(f"{name}: expected integer tensors, got {x.dtype} and {o.dtype}")
        dt = _promotion.result_type((x, o), get_default_dtype())
        return Tensor._wrap(np.asarray(np_fn(x._data.astype(dt), o._data.astype(dt)), dt))
    f.__name__ = name
    return f


gcd = _int_pair(np.gcd, "gcd")
lcm = _int_pair(np.lcm, "lcm")


def angle(input):
    """The argument of a real number: 0 for x >= 0, pi for x < 0, NaN stays NaN; the gradient is
    zero, as PyTorch's for real inputs (a `where` that always picks the constant)."""
    x = _float(input, "angle")
    with np.errstate(invalid="ignore"):
        v = np.where(x._data < 0, np.pi, 0.0).astype(x.dtype)
    v = np.where(np.isnan(x._data), x._data, v)
    if not x.requires_grad:
        return Tensor._wrap(v)
    return _math.Where.apply(np.ones(x.shape, np.bool_), Tensor._wrap(v), x)


def nextafter(input, other):
    x = _need_tensor(input, "nextafter")
    o = _t(other, x)
    if x.dtype != o.dtype and not isinstance(other, (int, float)):
        raise RuntimeError(f"nextafter: expected both inputs to have the same dtype, got {x.dtype} and {o.dtype}")
    return Tensor._wrap(np.asarray(np.nextafter(x._data, o._data.astype(x.dtype)), x.dtype))


def diagflat(input, offset=0):
    """A square matrix with the flattened input on its `offset`-th diagonal."""
    return diag(_need_tensor(input, "diagflat").reshape(-1), offset)


def is_nonzero(input):
    x = _need_tensor(input, "is_nonzero")
    if x.numel() == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if x.numel() > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(x._data.reshape(()) != 0)


def is_same_size(input, other):
    return tuple(_need_tensor(input, "is_same_size").shape) == tuple(_need_tensor(other, "is_same_size", "other").shape)


def is_signed(input):
    return _need_tensor(input, "is_signed").dtype.kind in "fi"


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    """obj as a tensor, sharing memory with a tensor or NumPy array when the dtype allows (and
    copy is not True); copy=False where a copy is needed is an error, as in PyTorch."""
    from .factory import _check_device, as_tensor
    _check_device(device)
    want = None if dtype is None else np.dtype(dtype)
    if isinstance(obj, Tensor):
        same = want is None or want == obj.dtype
        if copy is False and not same:
            raise ValueError("asarray: can't alias tensor with a different dtype (copy=False)")
        out = obj if same and not copy else obj.to(want or obj.dtype).clone() if copy else obj.to(want)
    elif isinstance(obj, np.ndarray) or hasattr(obj, "__array_interface__"):
        a = np.asarray(obj)
        if copy is False and want is not None and want != a.dtype:
            raise ValueError("asarray: can't alias an array with a different dtype (copy=False)")
        a = np.array(a, dtype=want, copy=True) if copy else a.astype(want or a.dtype, copy=False)
        from .factory import from_numpy
        out = from_numpy(a) if a.flags.c_contiguous and not a.strides.count(0) else from_numpy(a.copy())
    else:
        if copy is False:
            raise ValueError(f"asarray: can't alias a {type(obj).__name__} (copy=False)")
        out = as_tensor(obj, dtype=dtype)
    if requires_grad and not out.requires_grad:
        # a new tensor on the same memory: the caller's own tensor is not changed
        out = (out.detach() if out is obj else out).requires_grad_(True)
    return out


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False):
    """A 1-D tensor sharing the memory of a Python buffer (bytes, bytearray, array.array, ...)."""
    import warnings
    dt = np.dtype(dtype)
    nbytes = memoryview(buffer).nbytes
    if offset < 0 or offset > nbytes - (0 if count == 0 else 1):
        raise ValueError(f"both buffer length ({nbytes}) and offset ({offset}) must be greater than zero; "
                         "offset must be less than the buffer length")
    if count == -1 and (nbytes - offset) % dt.itemsize:
        raise ValueError(f"buffer length ({nbytes - offset} after offset) must be a multiple of element size "
                         f"({dt.itemsize})")
    if count == 0 or (count == -1 and nbytes == offset):
        raise ValueError("both buffer length and count must be greater than zero")
    a = np.frombuffer(buffer, dtype=dt, count=count, offset=offset)
    if not a.flags.writeable:
        warnings.warn("The given buffer is not writable, and PyTorch does not support non-writable tensors. "
                      "This means you can write to the underlying (supposedly non-writable) buffer using the "
                      "tensor. You may want to copy the buffer to protect its data or make it writable before "
                      "converting it to a tensor.", UserWarning, stacklevel=2)
    t = Tensor._wrap(a)
    return t.requires_grad_(True) if requires_grad else t


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """An uninitialized (here: zero) tensor of `size` with the element strides `stride`."""
    from .factory import _check_device
    _check_device(device)
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape: {len(stride)} vs {len(size)}")
    if _builtins.any(s < 0 for s in stride):
        raise RuntimeError("empty_strided: negative strides are not supported")
    dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
    extent = 0 if 0 in size else 1 + _builtins.sum((n - 1) * s for n, s in zip(size, stride))
    base = np.zeros(extent, dt)
    a = np.lib.stride_tricks.as_strided(base, size, tuple(s * dt.itemsize for s in stride)) if extent else \
        np.zeros(size, dt)
    t = Tensor._wrap(a)
    return t.requires_grad_(True) if requires_grad else t


_MATMUL_PRECISION = ["highest"]


def get_float32_matmul_precision():
    return _MATMUL_PRECISION[0]


def set_float32_matmul_precision(precision):
    """Accepted for PyTorch code; lamina's float32 GEMM always computes in full float32 (no TF32 or
    bf16 passes), which is what "highest" asks for."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision {precision!r}: expected 'highest', 'high' or 'medium'")
    _MATMUL_PRECISION[0] = precision


_INTEROP = [1]


def get_num_interop_threads():
    """lamina runs one op at a time (no inter-op pool): 1 unless set."""
    return _INTEROP[0]


def set_num_interop_threads(n):
    if int(n) < 1:
        raise RuntimeError("Number of inter-op threads must be positive")
    _INTEROP[0] = int(n)


class _Histogram(tuple):
    @property
    def hist(self):
        return self[0]

    @property
    def bin_edges(self):
        return self[1]


def histogram(input, bins, *, range=None, weight=None, density=False):
    """(hist, bin_edges) as PyTorch's: `bins` equal bins over `range` (default the input's min and
    max, widened by 0.5 each side when they are equal) or the given edges; the last bin is closed."""
    x = _need_tensor(input, "histogram")
    if x.dtype.kind != "f":
        raise RuntimeError(f"torch.histogram: input tensor and bins tensors should have the same dtype, "
                           f"but got input {x.dtype}")
    data = x._data.reshape(-1)
    if isinstance(bins, Tensor):
        edges = bins._data.astype(x.dtype)
        if edges.ndim != 1 or edges.size < 1:
            raise RuntimeError("torch.histogram(): bins tensor should have one dimension and at least 1 element")
    else:
        if int(bins) <= 0:
            raise RuntimeError("torch.histogram(): bins must be > 0")
        if range is not None:
            lo, hi = float(range[0]), float(range[1])
            if lo > hi:
                raise RuntimeError(f"torch.histogram(): min should not exceed max, but got min {lo} max {hi}")
        elif data.size:
            lo, hi = float(data.min()), float(data.max())
        else:
            lo, hi = 0.0, 0.0
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        from .factory import linspace
        edges = linspace(lo, hi, int(bins) + 1, dtype=x.dtype)._data
    w = None if weight is None else weight._data.reshape(-1).astype(np.float64)
    inside = (data >= edges[0]) & (data <= edges[-1])
    idx = np.searchsorted(edges, data, side="right") - 1
    idx = np.minimum(idx, edges.size - 2)
    hist = np.bincount(idx[inside], weights=None if w is None else w[inside], minlength=edges.size - 1)
    hist = hist[:edges.size - 1].astype(x.dtype)
    if density:
        hist = (hist / (hist.sum() * np.diff(edges))).astype(x.dtype)
    return _Histogram((Tensor._wrap(hist), Tensor._wrap(np.array(edges, x.dtype))))


__all__ += ["e", "pi", "inf", "nan", "newaxis", "lgamma", "digamma", "i0", "sinc", "absolute", "fix", "concat",
            "concatenate", "positive", "ldexp", "frexp", "gcd", "lcm", "angle", "nextafter", "diagflat", "is_nonzero",
            "is_same_size", "is_signed", "asarray", "frombuffer", "empty_strided", "get_float32_matmul_precision",
            "set_float32_matmul_precision", "get_num_interop_threads", "set_num_interop_threads", "histogram",
            "greater", "greater_equal", "less", "less_equal", "not_equal"]


scatter_reduce = _index.scatter_reduce


def masked_scatter(input, mask, source):
    """input with the places where mask (broadcast to input) holds filled, in order, from
    source's leading elements: a `where` over an index into source, so both get gradients."""
    x = _need_tensor(input, "masked_scatter")
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise RuntimeError(f"masked_scatter_: expected BoolTensor for mask, got {m.dtype}")
    if not isinstance(source, Tensor) or source.dtype != x.dtype:
        raise RuntimeError("masked_scatter: expected self and source to have same dtypes but got "
                           f"{x.dtype} and {getattr(source, 'dtype', type(source).__name__)}")
    m = np.broadcast_to(m, x.shape)
    need = int(m.sum())
    if need > source.numel():
        raise RuntimeError(f"masked_scatter: Number of elements of source < number of ones in mask "
                           f"({source.numel()} < {need})")
    if need == 0:
        return x.clone()
    pos = np.maximum(np.cumsum(m.reshape(-1)) - 1, 0).reshape(x.shape)
    picked = source.reshape(-1)[_int64(pos)]
    return where(Tensor._wrap(np.ascontiguousarray(m)), picked, x)


def matrix_power(input, n):
    """input @ input @ ... (n times) by repeated squaring; n = 0 the identity, n < 0 the inverse's power."""
    x = _need_tensor(input, "matrix_power")
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, but they are "
                           f"{x.shape[-2] if x.ndim >= 2 else 1} by {x.shape[-1] if x.ndim else 1} matrices")
    n = int(n)
    if n == 0:
        eye = Tensor._wrap(np.broadcast_to(np.eye(x.shape[-1], dtype=x.dtype), x.shape).copy())
        # PyTorch's identity still belongs to the graph (a zero gradient), as angle's result does
        return _math.Where.apply(np.ones(x.shape, np.bool_), eye, x) if x.requires_grad else eye
    if n < 0:
        x, n = inverse(x), -n
    result, base = None, x
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result


def matrix_exp(input):
    """exp(A) by scaling and squaring of a degree-18 Taylor polynomial (Horner form), so its
    gradient is that of the matmuls: within rounding of PyTorch's Frechet derivative."""
    x = _need_tensor(input, "matrix_exp")
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise RuntimeError("matrix_exp: expected a tensor of square matrices")
    if x.dtype.kind != "f":
        raise RuntimeError(f"matrix_exp: expected a floating-point tensor, got {x.dtype}")
    if x.shape[-1] == 0 or x.numel() == 0:
        return x.clone()
    norm = float(np.abs(x._data).sum(-2).max()) if x.numel() else 0.0
    s = _builtins.max(0, int(np.ceil(np.log2(norm / 0.5))) if norm > 0.5 else 0)
    a = x * (0.5 ** s) if s else x
    eye = Tensor._wrap(np.broadcast_to(np.eye(x.shape[-1], dtype=x.dtype), x.shape).copy())
    y = eye
    for k in range(18, 0, -1):          # I + A/1 (I + A/2 (I + ... (I + A/18)))
        y = eye + (a @ y) * (1.0 / k)
    for _ in range(s):
        y = y @ y
    return y


def renorm(input, p, dim, maxnorm):
    """Each slice along dim whose p-norm exceeds maxnorm scaled to norm maxnorm (PyTorch's
    factor maxnorm / (norm + 1e-7)); differentiable through the norm, as PyTorch's."""
    x = _need_tensor(input, "renorm")
    if x.dtype.kind != "f":
        raise RuntimeError(f"renorm: expected a floating-point tensor, got {x.dtype}")
    if float(p) <= 0:
        raise RuntimeError(f"renorm: non-positive-norm not supported, got p={p}")
    if float(maxnorm) < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = normalize_dim(dim, x.ndim, "renorm")
    others = [i for i in range(x.ndim) if i != d]
    from .ops.stats import vector_norm
    norms = vector_norm(x, float(p), others, True) if others else x.abs()
    over = norms._data > maxnorm
    factor = where(Tensor._wrap(over), float(maxnorm) / (norms + 1e-7), Tensor._wrap(np.ones((), x.dtype)))
    return x * factor


def split_with_sizes(input, split_sizes, dim=0):
    return split(input, list(split_sizes), dim)


def _resize_(self, *sizes, memory_format=None):
    """Resize in place: the first elements (in order) kept, any new ones zero (PyTorch leaves them
    uninitialized); not on a tensor that requires grad, as in PyTorch."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    sizes = tuple(int(s) for s in sizes)
    if self.requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    if _builtins.any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {list(sizes)}")
    _inplace.check_inplace(self, "resize_")
    n = int(np.prod(sizes, dtype=np.int64))
    if n == self.numel() and self._base is None:
        self._data = self._data.reshape(sizes) if self._data.flags.c_contiguous else \
            np.ascontiguousarray(self._data).reshape(sizes)
    else:
        if self._base is not None:
            raise RuntimeError("resize_: lamina cannot resize a view")
        flat = np.zeros(n, self.dtype)
        old = self._data.reshape(-1)
        k = _builtins.min(n, old.size)
        flat[:k] = old[:k]
        self._data = flat.reshape(sizes)
    _inplace.bump_version(self)
    return self


def _log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    """exp(N(mean, std)) per element, drawn as PyTorch's CPU kernel draws them."""
    return _serial_fill(self, "log_normal_", generator,
                        lambda g: _pymath.exp(g._normal_one(float(mean), float(std))),
                        std > 0 or _bad(f"log_normal_ expects std > 0.0, but found std={std}"))


def _geometric_(self, p, *, generator=None):
    """The number of Bernoulli(p) trials up to the first success: ceil(log(u) / log1p(-p))."""
    ok = 0 < p < 1 or _bad(f"geometric_ expects p to be in (0, 1), but got p={p}")
    return _serial_fill(self, "geometric_", generator,
                        lambda g: _pymath.ceil(_pymath.log(float(g._uniform01(1, np.float64)[0]))
                                               / _pymath.log1p(-float(p))), ok, float_only=False)


def _cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    """median + sigma * tan(pi * (u - 1/2))."""
    return _serial_fill(self, "cauchy_", generator,
                        lambda g: float(median) + float(sigma) * _pymath.tan(
                            _pymath.pi * (float(g._uniform01(1, np.float64)[0]) - 0.5)), True)


def _bad(msg):
    raise RuntimeError(msg)


def _serial_fill(self, name, generator, draw, ok, float_only=True):
    _inplace.check_inplace(self, name)
    if float_only and self.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point tensor, got {self.dtype}")
    g = _random.generator_of(generator)
    with g._lock:
        values = [draw(g) for _ in range(self.numel())]
    return _inplace.overwrite(self, np.asarray(values, dtype=np.float64).reshape(self.shape).astype(self.dtype), name)


def _float_power_(self, exponent):
    if self.dtype != np.float64:
        raise RuntimeError(f"the base given to float_power_ has dtype {self.dtype} but the operation's result "
                           "requires dtype Double")
    return _inplace.apply_inplace(self, "float_power_", float_power, exponent)


def _hardshrink(self, lambd=0.5):
    from .tensor import _api     # ops.act_extra's (importing it here would close an import circle)
    return _api.hardshrink(self, lambd)


def _prelu(self, weight):
    from .tensor import _api
    return _api.prelu(self, weight)


def _cumsum_(self, dim, *, dtype=None):
    return _inplace.apply_inplace(self, "cumsum_", lambda x: cumsum(x, dim, dtype=dtype))


class _Layout:
    """torch.layout: lamina's tensors are all dense and strided."""

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"torch.{self._name}"

    def __reduce__(self):
        return (_layout_named, (self._name,))


def _layout_named(name):
    return globals()[name]


layout = _Layout
strided = _Layout("strided")


_PARITY_METHODS = {
    "absolute": abs, "ravel": lambda self: self.reshape(-1), "positive": positive, "renorm": renorm,
    "prelu": _prelu, "hardshrink": _hardshrink, "sinc": sinc, "exp2": exp2, "lgamma": lgamma, "digamma": digamma,
    "i0": i0, "fix": fix, "ldexp": ldexp, "frexp": frexp, "gcd": gcd, "lcm": lcm, "angle": angle,
    "nextafter": nextafter, "diagflat": diagflat, "histogram": histogram,
    "is_complex": lambda self: False, "is_signed": is_signed, "is_nonzero": is_nonzero,
    "is_same_size": is_same_size, "is_cpu": property(lambda self: True), "is_sparse": property(lambda self: False),
    "is_quantized": property(lambda self: False), "is_meta": property(lambda self: False),
    "layout": property(lambda self: strided), "name": property(lambda self: None),
    "scatter_reduce": scatter_reduce, "masked_scatter": masked_scatter, "split_with_sizes": split_with_sizes,
    "resize_": _resize_, "resize_as_": lambda self, other: _resize_(self, tuple(other.shape)),
    "matrix_power": matrix_power, "matrix_exp": matrix_exp, "cov": cov, "corrcoef": corrcoef,
    "multinomial": lambda self, num_samples, replacement=False, *, generator=None:
        _factory_multinomial(self, num_samples, replacement, generator),
    "greater": gt, "greater_equal": ge, "less": lt, "less_equal": le, "not_equal": ne,
    "log_normal_": _log_normal_, "geometric_": _geometric_, "cauchy_": _cauchy_,
    "float_power_": _float_power_, "cumsum_": _cumsum_,
    "divide_": _inplace_of("divide_", div), "true_divide_": _inplace_of("true_divide_", div),
}


def _factory_multinomial(self, num_samples, replacement, generator):
    from .factory import multinomial
    return multinomial(self, num_samples, replacement, generator=generator)


# x.name_(...) = name(x, ...) written into x, for the names PyTorch has in place
for _name, _fn in {"round": round, "trunc": trunc, "sign": sign, "rsqrt": rsqrt, "log1p": log1p, "log2": log2,
                   "log10": log10, "expm1": expm1, "tan": tan, "exp2": exp2, "eq": eq, "ne": ne, "lt": lt, "le": le,
                   "gt": gt, "ge": ge, "greater": gt, "greater_equal": ge, "less": lt, "less_equal": le,
                   "not_equal": ne, "subtract": sub, "multiply": mul, "floor_divide": floor_divide,
                   "remainder": remainder, "negative": neg, "lgamma": lgamma, "digamma": digamma, "i0": i0,
                   "sinc": sinc, "fix": fix, "absolute": abs, "gcd": gcd, "lcm": lcm, "ldexp": ldexp,
                   "nextafter": nextafter, "renorm": renorm, "scatter_reduce": scatter_reduce,
                   "masked_scatter": masked_scatter, "exp": exp, "clamp": clamp}.items():
    _PARITY_METHODS.setdefault(_name + "_", _inplace_of(_name + "_", _fn))
del _name, _fn
_METHODS.update({k: v for k, v in _PARITY_METHODS.items() if k not in _METHODS})
__all__ += ["scatter_reduce", "masked_scatter", "matrix_power", "matrix_exp", "renorm", "split_with_sizes",
            "layout", "strided"]


# torch.exp_(x), torch.clamp_(x, 0, 1), ...: PyTorch's top-level in-place forms, each the Tensor
# method of the same name (so autograd's version checks and the compiler see the method call).
def _toplevel_inplace(name):
    def fn(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"`input.{name}(...)`: {name[:-1]} in place, returning `input` (PyTorch's torch.{name})."
    return fn


_TOPLEVEL_INPLACE = [
    "abs_", "acos_", "acosh_", "arccos_", "arccosh_", "arcsin_", "arcsinh_", "arctan_", "arctanh_", "asin_",
    "asinh_", "atan_", "atanh_", "ceil_", "clamp_", "clamp_max_", "clamp_min_", "clip_", "cos_", "cosh_",
    "deg2rad_", "detach_", "erf_", "erfc_", "exp2_", "exp_", "expm1_", "fill_", "fix_", "floor_", "frac_",
    "gcd_", "i0_", "index_put_", "lcm_", "ldexp_", "log10_", "log1p_", "log2_", "log_", "logit_",
    "nan_to_num_", "neg_", "negative_", "rad2deg_", "reciprocal_", "resize_as_", "round_", "rsqrt_",
    "sigmoid_", "sin_", "sinc_", "sinh_", "sqrt_", "square_", "tan_", "tanh_", "trunc_", "xlogy_", "zero_",
]
for _name in _TOPLEVEL_INPLACE:
    if _name not in globals():
        globals()[_name] = _toplevel_inplace(_name)
        __all__.append(_name)
del _name
