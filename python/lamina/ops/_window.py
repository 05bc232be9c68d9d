"""Argument normalization shared by convolution and pooling (ints or tuples -> checked tuples)."""
import numbers

import numpy as np

from ..tensor import Tensor


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _tuple(v, n, name, minimum):
    """int or length-n sequence of ints -> n-tuple, each >= minimum (ValueError naming `name`)."""
    if _is_int(v):
        t = (int(v),) * n
    elif isinstance(v, (tuple, list)) and len(v) == n and all(_is_int(e) for e in v):
        t = tuple(int(e) for e in v)
    else:
        raise ValueError(f"{name}: expected an int or a tuple of {n} ints, got {v!r}")
    if any(e < minimum for e in t):
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name}: expected {kind} values, got {v!r}")
    if any(e >= 2 ** 31 for e in t):  # as the kernels' bound; checked before any allocation
        raise ValueError(f"{name}: expected values below 2^31, got {v!r}")
    return t


def _as_array(t, name):
    if isinstance(t, Tensor):
        return t._data
    if isinstance(t, np.ndarray):
        return t
    raise TypeError(f"{name}: expected a lamina.Tensor, got {type(t).__name__}")


def _check_float(a, name):
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected dtype float32 or float64, got {a.dtype}")


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


