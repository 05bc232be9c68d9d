"""Tensor constructors with PyTorch names: tensor, from_numpy, zeros, ones, full, rand, randn, ..."""
import warnings

import numpy as np

from . import random as _random
from ._device import check_device as _check_device
from .tensor import (Tensor, _DTYPE_NAMES, _FLOATS, _SUPPORTED, cast_array, check_dtype, check_int_range,
                     get_default_dtype, int64)


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    size = tuple(int(s) for s in size)
    for i, s in enumerate(size):
        if s < 0:
            raise ValueError(f"size: dimension {i} must be non-negative, got {s}")
    return size


def _dtype(dtype, default=None):
    return check_dtype(dtype) if dtype is not None else (default or get_default_dtype())


def _make(arr, requires_grad):
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (lists, scalars, arrays, tensors).

    >>> import lamina
    >>> lamina.tensor([1, 2]).dtype, lamina.tensor([1.5]).dtype
    (dtype('int64'), dtype('float32'))
    """
    _check_device(device)
    from .tensor import _as_array
    t = Tensor._wrap(_as_array(data, dtype))
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(a):
    """A tensor sharing memory with NumPy array `a` (of a lamina dtype: float32, float64, uint8,
    int8, int16, int32, int64 or bool). As in PyTorch, a strided view is shared with its strides
    (the tensor is then not contiguous); negative strides are refused.

    >>> import numpy as np, lamina
    >>> a = np.zeros(3, dtype=np.float32); t = lamina.from_numpy(a); a[0] = 5
    >>> float(t[0])
    5.0
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in _SUPPORTED:
        raise ValueError(f"from_numpy: dtype {a.dtype} is not supported (expected {_DTYPE_NAMES}); "
                         "use lamina.tensor(a) to make a converted copy")
    if any(st < 0 for st in a.strides):
        # as PyTorch: a tensor's strides are non-negative, so a reversed view cannot be shared
        raise ValueError("from_numpy: at least one stride in the given numpy array is negative "
                         f"(strides {a.strides}), which a tensor cannot share; copy it first "
                         "(a.copy() or lamina.tensor(a))")
    if any(st % a.itemsize for st in a.strides):
        raise ValueError(f"from_numpy: the given numpy array has byte strides {a.strides} that are not "
                         f"a multiple of the element size {a.itemsize}; copy it first (a.copy())")
    if not a.flags.writeable:
        # as PyTorch does: the tensor shares the memory, and any in-place write to it is refused
        warnings.warn("from_numpy: the given NumPy array is not writable; the tensor shares its memory, "
                      "so in-place operations on it will fail. Copy the array (np.array(a)) or make it "
                      "writable first to modify the tensor.", UserWarning, stacklevel=2)
    return Tensor._wrap(a)


def as_tensor(data, dtype=None, device=None):
    """`data` as a tensor, sharing memory where it can, as PyTorch's `as_tensor`: a Tensor of
    the asked dtype comes back as is (another dtype goes through `.to`, so gradients flow); a
    C-contiguous NumPy array of a lamina dtype is shared as `from_numpy` shares it; anything
    else is copied into a new tensor as `tensor(data, dtype)` would.

    >>> import numpy as np, lamina
    >>> a = np.zeros(2, np.float32); t = lamina.as_tensor(a); a[0] = 3
    >>> t.tolist(), lamina.as_tensor([1, 2]).dtype
    ([3.0, 0.0], dtype('int64'))
    """
    _check_device(device)
    want = None if dtype is None else np.dtype(dtype)
    if isinstance(data, Tensor):
        return data if want is None or want == data.dtype else data.to(want)
    if (isinstance(data, np.ndarray) and data.dtype in _SUPPORTED
            and data.flags.c_contiguous and want in (None, data.dtype)):
        return from_numpy(data)
    return tensor(data, dtype=dtype)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return _make(np.zeros(_shape(size), dtype=_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return _make(np.ones(_shape(size), dtype=_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return _make(np.empty(_shape(size), dtype=_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    if dtype is None and isinstance(fill_value, (int, np.integer)) and not isinstance(fill_value, bool):
        dtype = np.int64
    if dtype is None and isinstance(fill_value, (bool, np.bool_)):
        dtype = np.bool_       # as PyTorch: full((2,), True) is a bool tensor
    d = _dtype(dtype)
    if d.kind in "iu" and d != int64 and isinstance(fill_value, (int, float, np.integer, np.floating)):
        check_int_range(fill_value, fill_value, d, "fill_value")   # PyTorch's overflow check
        return _make(cast_array(np.full(_shape((size,)), fill_value), d), requires_grad)
    return _make(np.full(_shape((size,)), fill_value, dtype=d), requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    d = _dtype(dtype)
    if d not in _FLOATS:
        raise TypeError(f"rand: dtype must be floating point, got {d}")
    return _make(_random.generator_of(generator).random(_shape(size), dtype=d), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    d = _dtype(dtype)
    if d not in _FLOATS:
        raise TypeError(f"randn: dtype must be floating point, got {d}")
    return _make(_random.generator_of(generator).standard_normal(_shape(size), dtype=d), requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    if isinstance(high, (tuple, list)):  # PyTorch's randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    arr = _random.generator_of(generator).integers(low, high, size=_shape((size,)))
    return _make(arr.astype(_dtype(dtype, np.dtype(np.int64))), requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """torch.normal: N(mean, std) with float mean and std and a `size`, or elementwise over tensor
    means and/or stds (broadcast together), drawn as PyTorch draws them."""
    _check_device(device)
    g = _random.generator_of(generator)
    mean_t, std_t = isinstance(mean, Tensor), isinstance(std, Tensor)
    if not mean_t and not std_t:
        if size is None:
            raise TypeError("normal: with float mean and std, expected a size")
        d = _dtype(dtype)
        if d not in _FLOATS:
            raise TypeError(f"normal: dtype must be floating point, got {d}")
        if not float(std) >= 0.0:
            raise ValueError(f"normal: std must be >= 0.0, got {std}")
        return _make(g.normal(float(mean), float(std), _shape((size,)), dtype=d), requires_grad)
    if size is not None:
        raise TypeError("normal: size is only taken with float mean and std")
    m = mean._data if mean_t else None
    sd = std._data if std_t else None
    for name, a in (("mean", m), ("std", sd)):
        if a is not None and a.dtype.kind != "f":
            raise TypeError(f"normal: {name} must be a floating point tensor, got {a.dtype}")
    if sd is not None and (sd < 0).any():
        raise ValueError("normal: std must be >= 0.0 everywhere")
    if not std_t and not float(std) >= 0.0:
        raise ValueError(f"normal: std must be >= 0.0, got {std}")
    d = (m if mean_t else sd).dtype
    shape = np.broadcast_shapes(*(a.shape for a in (m, sd) if a is not None))
    if mean_t and not std_t:   # PyTorch: normal_(0, std), then + mean
        out = g.normal(0.0, float(std), shape, dtype=d) + m
    else:                      # normal_(0, 1), then * std, then + mean
        out = g.normal(0.0, 1.0, shape, dtype=d) * sd
        out = out + (m if mean_t else d.type(mean))
    return _make(np.asarray(out, dtype=d), requires_grad)


def _probabilities(input, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected a Tensor of probabilities, got {type(input).__name__}")
    p = input._data
    if p.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating point tensor, got {p.dtype}")
    return p


def bernoulli(input, p=None, *, generator=None):
    """torch.bernoulli: 1 with probability input[i] (or with probability p, a float), else 0."""
    probs = _probabilities(input, "bernoulli")
    g = _random.generator_of(generator)
    if p is not None:
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"bernoulli: p must be in [0, 1], got {p}")
        return Tensor._wrap(g.bernoulli(float(p), probs.shape).astype(probs.dtype))
    if probs.size and not ((probs >= 0) & (probs <= 1)).all():
        raise ValueError("bernoulli: expected all probabilities in [0, 1]")
    return Tensor._wrap(g.bernoulli_probs(probs).astype(probs.dtype))


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """torch.multinomial: `num_samples` category indices per row of the (unnormalized)
    probabilities `input` (1-D or 2-D), with or without replacement, drawn as PyTorch draws them."""
    probs = _probabilities(input, "multinomial")
    if probs.ndim not in (1, 2):
        raise ValueError(f"multinomial: prob_dist must be 1 or 2 dim, got {probs.ndim}")
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be positive, got {num_samples}")
    k = probs.shape[-1]
    if not replacement and num_samples > k:
        raise ValueError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without "
                         f"replacement (n_sample {num_samples}, categories {k})")
    rows = probs.reshape(-1, k)
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise ValueError("multinomial: probability tensor contains either inf, nan or element < 0")
    if (rows.sum(axis=-1) <= 0).any():
        raise ValueError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    out = _random.generator_of(generator).multinomial(rows, num_samples, bool(replacement))
    return Tensor._wrap(out.reshape(probs.shape[:-1] + (num_samples,)))


def randperm(n, generator=None, dtype=None, device=None):
    _check_device(device)
    perm = _random.generator_of(generator).permutation(int(n))
    return Tensor._wrap(perm.astype(_dtype(dtype, np.dtype(np.int64))))


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("step: must be non-zero")
    is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    d = _dtype(dtype, np.dtype(np.int64) if is_int else None)
    return _make(cast_array(np.arange(start, end, step), d), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return _make(cast_array(np.linspace(start, end, int(steps)), _dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return _make(np.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def from_dlpack(obj):
    """A lamina tensor sharing memory with any DLPack producer (NumPy, PyTorch, JAX on CPU, ...).

    No copy is made for C-contiguous data of a lamina dtype (float32, float64, uint8, int8, int16,
    int32, int64, bool). Read-only producers
    give a tensor whose in-place writes raise. A strided (non-contiguous) producer is copied into
    a contiguous tensor, with a warning saying so, because lamina's kernels take dense rows.
    Other dtypes are refused: convert them on the producer's side first.

    >>> import numpy as np, lamina
    >>> a = np.arange(3, dtype=np.float32)
    >>> t = lamina.from_dlpack(a); a[0] = 7
    >>> t.tolist()
    [7.0, 1.0, 2.0]
    """
    from ._dlpack import import_array

    if isinstance(obj, Tensor):
        return obj.detach()
    return Tensor._wrap(import_array(obj))
