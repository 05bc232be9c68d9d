"""One rule for `dim` arguments, PyTorch's: a dim must lie in [-ndim, ndim - 1] (a 0-d tensor
accepts 0 and -1); anything else is an IndexError, never a silent wrap to another axis. Also
bcast_split: the (outer, mid, inner) block a broadcast operand repeats over."""
from __future__ import annotations

import math

import numpy as np


def normalize_dim(dim, ndim):
    """`dim` as an index in [0, ndim) (0 for a 0-d tensor), or IndexError as PyTorch raises.

    >>> normalize_dim(-1, 3), normalize_dim(0, 0)
    (2, 0)
    """
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim: expected an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"dim: expected a value in [{-n}, {n - 1}], got {dim} "
                         "(Dimension out of range)")
    return int(dim) + n if dim < 0 else int(dim)


def normalize_dims(dims, ndim):
    """A reduction's `dim`: None or an empty tuple/list means every dim (returns None, as PyTorch
    reduces everything for `dim=()`); an int or a sequence gives a sorted tuple of indices, a
    repeated dim is a RuntimeError."""
    if dims is None:
        return None
    if isinstance(dims, (tuple, list)):
        if len(dims) == 0:
            return None
        out = [normalize_dim(d, ndim) for d in dims]
        if len(set(out)) != len(out):
            raise RuntimeError(f"dim: {dims} names a dimension more than once")
        return tuple(sorted(out)) if ndim else None
    d = normalize_dim(dims, ndim)
    return (d,) if ndim else None


def bcast_split(out_shape, small_shape):
    """(outer, mid, inner) when `small` broadcasts to `out` as one contiguous block of its
    dims (a bias (F) on (N, F), (C, 1, 1) on (N, C, H, W), a scalar), else None."""
    n = len(out_shape)
    if len(small_shape) > n:
        return None
    s = (1,) * (n - len(small_shape)) + tuple(small_shape)
    big = [d for d in range(n) if s[d] != 1]
    if any(s[d] != out_shape[d] for d in big) or (big and big[-1] - big[0] + 1 != len(big)):
        return None
    d0, d1 = (big[0], big[-1] + 1) if big else (n, n)
    return math.prod(out_shape[:d0]), math.prod(out_shape[d0:d1]), math.prod(out_shape[d1:])
