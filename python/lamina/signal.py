"""Signal-processing convolution (the lecture's operator) on NumPy arrays, run on lamina's conv
kernels: a true convolution (a * b)_t = sum_tau a_tau b_{t - tau} is a deep-learning conv
(a cross-correlation) with the kernel flipped and the input zero-padded by len(b) - 1.

>>> from lamina.signal import convolve, conv_matrix
>>> convolve([2, -1, 1], [1, 1, 2]).tolist()
[2, 1, 4, -1, 2]
>>> (conv_matrix([1, 1, 2], 3) @ [2, -1, 1]).tolist()
[2, 1, 4, -1, 2]
"""
import numpy as np

from . import _C

__all__ = ["convolve", "correlate", "convolve2d", "correlate2d", "conv_matrix"]

_MODES = ("full", "same", "valid")


def _prepare(a, b, nd, name_a, name_b):
    a, b = np.asarray(a), np.asarray(b)
    for arr, name in ((a, name_a), (b, name_b)):
        if arr.ndim != nd:
            raise ValueError(f"{name}: expected a {nd}-D array, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{name}: expected a non-empty array")
        if np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    out_dtype = np.result_type(a, b)
    if out_dtype == bool:
        out_dtype = np.dtype(np.int64)
    work = np.float32 if out_dtype == np.float32 else np.float64
    return a, b, out_dtype, work


def _finish(y, out_dtype):
    if np.issubdtype(out_dtype, np.integer):
        return np.rint(y).astype(out_dtype)  # exact for integer inputs below 2**53
    return y.astype(out_dtype, copy=False)


def _full_corr(x, k, work):
    """Full cross-correlation of 2-D x with 2-D kernel k, (H+KH-1, W+KW-1), via conv2d."""
    x4 = np.ascontiguousarray(x, dtype=work)[None, None]
    k4 = np.ascontiguousarray(k, dtype=work)[None, None]
    KH, KW = k.shape
    # (1, 1, H, W) conv (1, 1, KH, KW) with padding (KH-1, KW-1) -> (1, 1, H+KH-1, W+KW-1)
    y = np.empty((1, 1, x.shape[0] + KH - 1, x.shape[1] + KW - 1), dtype=work)
    _C.conv2d_forward(x4, k4, None, y, (1, 1), (KH - 1, KW - 1), (1, 1), 1)
    return y[0, 0]


def _check_mode(mode):
    if mode not in _MODES:
        raise ValueError(f"mode: expected one of {_MODES}, got {mode!r}")


def convolve(a, v, mode="full"):
    """1-D convolution with ``numpy.convolve``'s result and modes.

    >>> convolve([1.0, 2.0, 3.0], [0.0, 1.0, 0.5], mode="same").tolist()
    [1.0, 2.5, 4.0]
    """
    _check_mode(mode)
    a, v, out_dtype, work = _prepare(a, v, 1, "a", "v")
    if v.size > a.size:  # convolution commutes; numpy centers on the longer input
        a, v = v, a
    n, m = a.size, v.size
    full = _full_corr(a[None, :], v[None, ::-1], work)[0]
    if mode == "same":
        full = full[(m - 1) // 2:(m - 1) // 2 + n]
    elif mode == "valid":
        full = full[m - 1:n]
    return _finish(full, out_dtype)


def correlate(a, v, mode="valid"):
    """1-D cross-correlation with ``numpy.correlate``'s result and modes (real inputs)."""
    _check_mode(mode)
    a, v, out_dtype, work = _prepare(a, v, 1, "a", "v")
    swapped = v.size > a.size
    if swapped:  # correlate(a, v) = reverse(correlate(v, a)) for real inputs
        a, v = v, a
    n, m = a.size, v.size
    full = _full_corr(a[None, :], v[None, :], work)[0]
    if mode == "same":
        start = (m - 1) // 2
        full = full[start:start + n]
    elif mode == "valid":
        full = full[m - 1:n]
    if swapped:
        full = full[::-1]
    return _finish(full, out_dtype)


def _valid_swap(a, b, name):
    """scipy's rule: 'valid' needs one input at least as large as the other in every dim."""
    if all(x >= y for x, y in zip(a.shape, b.shape)):
        return a, b, False
    if all(x <= y for x, y in zip(a.shape, b.shape)):
        return b, a, True
    raise ValueError(f"{name}: for 'valid' mode one input must be at least as large as the other "
                     f"in every dimension, got {a.shape} and {b.shape}")


def convolve2d(in1, in2, mode="full"):
    """2-D convolution with ``scipy.signal.convolve2d``'s result and modes (zero boundary).

    >>> convolve2d([[1, 2], [3, 4]], [[1, 1]]).tolist()
    [[1, 3, 2], [3, 7, 4]]
    """
    _check_mode(mode)
    a, b, out_dtype, work = _prepare(in1, in2, 2, "in1", "in2")
    if mode == "valid":
        a, b, _ = _valid_swap(a, b, "in2")
    full = _full_corr(a, b[::-1, ::-1], work)
    return _finish(_crop(full, a.shape, b.shape, mode), out_dtype)


def correlate2d(in1, in2, mode="full"):
    """2-D cross-correlation with ``scipy.signal.correlate2d``'s result and modes (zero boundary).

    >>> correlate2d([[1, 2], [3, 4]], [[1, -1]]).tolist()
    [[-1, -1, 2], [-3, -1, 4]]
    """
    _check_mode(mode)
    a, b, out_dtype, work = _prepare(in1, in2, 2, "in1", "in2")
    swapped = False
    if mode == "valid":
        a, b, swapped = _valid_swap(a, b, "in2")
    if swapped:
        # correlate(a, b) = flip(correlate(b, a)) for real inputs: here b is the larger one.
        full = _full_corr(a, b, work)[::-1, ::-1]
        return _finish(_crop(full, a.shape, b.shape, mode), out_dtype)
    full = _full_corr(a, b, work)
    return _finish(_crop(full, a.shape, b.shape, mode, corr=True), out_dtype)


def _crop(full, sa, sb, mode, corr=False):
    if mode == "full":
        return full
    if mode == "same":  # size of in1, centered in the full result
        # scipy centers an even-sized kernel one step later for correlation than for convolution
        r0, c0 = ((sb[0] // 2, sb[1] // 2) if corr else ((sb[0] - 1) // 2, (sb[1] - 1) // 2))
        return full[r0:r0 + sa[0], c0:c0 + sa[1]]
    return full[sb[0] - 1:sa[0], sb[1] - 1:sa[1]]  # valid


def conv_matrix(b, n):
    """The (n + m - 1) x n Toeplitz matrix T with T @ a == convolve(a, b) for len(a) == n:
    column j holds b shifted down by j (the lecture's "convolution as matrix multiplication").

    >>> conv_matrix([1, 1, 2], 3).tolist()
    [[1, 0, 0], [1, 1, 0], [2, 1, 1], [0, 2, 1], [0, 0, 2]]
    """
    b = np.asarray(b)
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"b: expected a non-empty 1-D array, got shape {b.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    m = b.size
    i = np.arange(n + m - 1)[:, None]
    j = np.arange(n)[None, :]
    k = i - j  # T[i, j] = b[i - j] where 0 <= i - j < m
    inside = (k >= 0) & (k < m)
    T = np.zeros((n + m - 1, n), dtype=b.dtype if b.dtype != bool else np.int64)
    T[inside] = b[k[inside]]
    return T
