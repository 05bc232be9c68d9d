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
from .ops.activation import log_softmax as _log_softmax_along, softmax as _softmax_along
from .ops import math as _math
from .ops import stats as _stats
from .ops.index import normalize_dim
from .tensor import Tensor, cmp_operand, get_default_dtype

__all__ = [
    "sin", "cos", "tan", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "neg", "negative",
    "sign", "pow", "clamp", "clip", "maximum", "minimum", "where", "sigmoid", "tanh", "relu",
    "flatten", "reshape", "squeeze", "unsqueeze", "permute", "transpose", "t", "mm", "bmm", "einsum",
    "split", "chunk", "sum", "mean", "max", "min", "argmax", "argmin", "std", "var", "prod",
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
    "split": split, "chunk": chunk, "std": std, "var": var, "prod": prod, "cumsum": cumsum,
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
        if not hasattr(Tensor, name):
            setattr(Tensor, name, fn)
