"""`lamina.testing`: PyTorch's ``assert_close`` and ``make_tensor``, for tests and tutorials.

>>> import lamina
>>> lamina.testing.assert_close(lamina.tensor([1.0, 2.0]), lamina.tensor([1.0, 2.0 + 1e-7]))
>>> lamina.testing.assert_close(lamina.tensor([1.0]), lamina.tensor([1.1]))
Traceback (most recent call last):
...
AssertionError: Tensor-likes are not close!
<BLANKLINE>
Mismatched elements: 1 / 1 (100.0%)
Greatest absolute difference: 0.10000002384185791 at index (0,) (up to 1e-05 allowed)
Greatest relative difference: 0.09090910851955414 at index (0,) (up to 1.3e-06 allowed)
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .tensor import Tensor

__all__ = ["assert_close", "make_tensor", "assert_allclose"]

# PyTorch's default (rtol, atol) per dtype; exact for integers and bool
_DEFAULT_TOL = {np.dtype(np.float16): (1e-3, 1e-5), np.dtype(np.float32): (1.3e-6, 1e-5),
                np.dtype(np.float64): (1e-7, 1e-7)}


def _tol(dtype):
    return _DEFAULT_TOL.get(np.dtype(dtype), (0.0, 0.0))


def _as_array(x):
    if isinstance(x, Tensor):
        return x.detach()._data, True
    if isinstance(x, np.ndarray):
        return x, True
    if isinstance(x, (bool, int, float, np.number)):
        return np.asarray(x), False
    return None, False


def _compare(actual, expected, rtol, atol, equal_nan, check_dtype, msg, path):
    a, a_is_tensor = _as_array(actual)
    e, _ = _as_array(expected)
    where = f" at {path}" if path else ""
    if a is None or e is None:
        if isinstance(actual, Mapping) and isinstance(expected, Mapping):
            if set(actual) != set(expected):
                raise AssertionError(f"The keys of the mappings do not match{where}: {sorted(map(str, actual))} != "
                                     f"{sorted(map(str, expected))}")
            for k in actual:
                _compare(actual[k], expected[k], rtol, atol, equal_nan, check_dtype, msg, f"{path}[{k!r}]")
            return
        if (isinstance(actual, Sequence) and isinstance(expected, Sequence) and not isinstance(actual, str)
                and not isinstance(expected, str)):
            if len(actual) != len(expected):
                raise AssertionError(f"The length of the sequences mismatch{where}: {len(actual)} != {len(expected)}")
            for i, (x, y) in enumerate(zip(actual, expected)):
                _compare(x, y, rtol, atol, equal_nan, check_dtype, msg, f"{path}[{i}]")
            return
        if actual != expected:
            raise AssertionError(msg or f"Objects are not equal{where}: {actual!r} != {expected!r}")
        return
    if a.shape != e.shape:
        sa = actual.shape if isinstance(actual, Tensor) else tuple(a.shape)
        se = expected.shape if isinstance(expected, Tensor) else tuple(e.shape)
        raise AssertionError(msg or f"The values for attribute 'shape' do not match{where}: {sa} != {se}.")
    if check_dtype and isinstance(actual, Tensor) and isinstance(expected, Tensor) and a.dtype != e.dtype:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match{where}: {a.dtype} != {e.dtype}.")
    dt = np.result_type(a.dtype, e.dtype)
    if rtol is None:
        rtol, atol = (max(_tol(a.dtype)[0], _tol(e.dtype)[0]), max(_tol(a.dtype)[1], _tol(e.dtype)[1]))
    af, ef = a.astype(np.float64), e.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = (af == ef) | (np.abs(af - ef) <= atol + rtol * np.abs(ef))
        if equal_nan:
            ok |= np.isnan(af) & np.isnan(ef)
    if ok.all():
        return
    if msg:
        raise AssertionError(msg)
    n_bad, n = int((~ok).sum()), ok.size
    exact = dt.kind not in "fc"
    if a.ndim == 0 and not a_is_tensor:
        d = abs(af.item() - ef.item())
        raise AssertionError(f"Scalars are not {'equal' if exact else 'close'}!\n\nExpected {expected} but got {actual}.\n"
                             f"Absolute difference: {d}" + ("" if exact else f" (up to {atol} allowed)") + "\n"
                             f"Relative difference: {d / abs(ef.item()) if ef.item() else math.inf}"
                             + ("" if exact else f" (up to {rtol} allowed)"))
    # the differences as PyTorch reports them: in the common dtype (relative ones in float32 for integers)
    work = dt if not exact else np.dtype(np.int64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        absd = np.abs(a.astype(work) - e.astype(work))
        rel = (absd.astype(np.float32) / np.abs(e.astype(np.float32))) if exact else absd / np.abs(e.astype(work))
    pick = lambda v: np.unravel_index(int(np.argmax(np.where(ok, -np.inf, np.where(np.isnan(v), np.inf, v)))),  # noqa: E731
                                      a.shape)
    ia, ir = pick(absd.astype(np.float64)), pick(rel.astype(np.float64))
    fmt = lambda v: repr(int(v)) if exact and float(v).is_integer() else repr(float(v))  # noqa: E731
    kind = "Tensor-likes" if a_is_tensor else "Scalars"
    raise AssertionError(
        f"{kind} are not {'equal' if exact else 'close'}!{where}\n\nMismatched elements: {n_bad} / {n} "
        f"({100 * n_bad / n:.1f}%)\n"
        f"Greatest absolute difference: {fmt(absd[ia])} at index {tuple(int(i) for i in ia)}"
        + ("" if exact else f" (up to {atol} allowed)") + "\n"
        f"Greatest relative difference: {float(rel[ir])!r} at index {tuple(int(i) for i in ir)}"
        + ("" if exact else f" (up to {rtol} allowed)"))


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None, equal_nan=False,
                 check_device=True, check_dtype=True, check_layout=True, check_stride=False, msg=None):
    """Raise AssertionError unless |actual - expected| <= atol + rtol * |expected| elementwise
    (PyTorch's defaults per dtype: float32 1.3e-6 / 1e-5, float64 1e-7 / 1e-7, exact for
    integers), for tensors, numbers, and sequences or mappings of them."""
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but got no {'rtol' if rtol is None else 'atol'}.")
    _compare(actual, expected, rtol, atol, equal_nan, check_dtype, msg, "")


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan=True, msg=""):
    """The deprecated form: dtypes are not checked."""
    _compare(actual, expected, rtol, atol, equal_nan, False, msg or None, "")


def make_tensor(*shape, dtype, device=None, low=None, high=None, requires_grad=False, noncontiguous=False,
                exclude_zero=False, memory_format=None):
    """A tensor of uniform random values in [low, high) (PyTorch's defaults: [-9, 9) for floats)."""
    from .factory import tensor
    from .random import default_generator
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    dt = np.dtype(dtype)
    g = default_generator()
    if dt == np.bool_:
        data = g.uniform(0.0, 1.0, shape, np.float64) < 0.5
    elif dt.kind in "iu":
        lo = -9 if low is None else int(low)
        hi = 10 if high is None else int(high)
        lo = max(lo, 0) if dt.kind == "u" else lo
        data = np.floor(g.uniform(lo, hi, shape, np.float64)).astype(dt)
    else:
        lo = -9.0 if low is None else float(low)
        hi = 9.0 if high is None else float(high)
        data = g.uniform(lo, hi, shape, dt)
    if exclude_zero:
        data = np.where(data == 0, np.asarray(1, dt), data)
    return tensor(np.asarray(data, dtype=dt), requires_grad=requires_grad)
