"""PyTorch's type promotion for binary ops.

Operands fall in three priority groups: tensors with dimensions, 0-d tensors, and Python
scalars. The result's category (bool < integer < float) is the highest of all operands, but a
lower-priority group only decides the dtype when its category is higher than the groups above
it: float32 * int64-tensor is float32, float32-tensor * 2.5 stays float32, int64-tensor * 2.5
is the default float dtype, bool-tensor * 2 is int64. Within a category the wider type wins,
as NumPy's promote_types and PyTorch agree for lamina's dtypes: uint8 + int8 is int16, uint8 +
int64 is int64, and a Python int never widens an integer tensor (uint8-tensor + 300 is uint8).
"""
from __future__ import annotations

import numpy as np

bool_ = np.dtype(np.bool_)
_CATEGORY = {bool_: 0, np.dtype(np.float32): 2, np.dtype(np.float64): 2,
             **{np.dtype(t): 1 for t in (np.uint8, np.int8, np.int16, np.int32, np.int64)}}
_SCALARS = (bool, int, float, np.number, np.bool_)


def category(dtype):
    """0 for bool, 1 for integers, 2 for floating point."""
    c = _CATEGORY.get(dtype)
    if c is None:
        kind = np.dtype(dtype).kind
        c = 0 if kind == "b" else 1 if kind in "iu" else 2
    return c


def _promote_pair(a, b):
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)  # same category: the wider one


def _scalar_dtype(x, default_float):
    if isinstance(x, (bool, np.bool_)):
        return bool_
    if isinstance(x, (int, np.integer)):
        return np.dtype(np.int64)
    if isinstance(x, (float, np.floating)):
        return default_float
    raise TypeError(f"expected a Tensor or a Python number, got {type(x).__name__}")


def result_type(operands, default_float):
    """The dtype PyTorch gives a binary op on these operands (Tensors, arrays or Python
    numbers); `default_float` is what a Python float means.

    >>> import lamina, numpy as np
    >>> from lamina._promotion import result_type
    >>> f32 = np.dtype(np.float32)
    >>> str(result_type([lamina.ones(2), lamina.tensor([1, 2])], f32)), str(result_type([lamina.tensor([1]), 2.5], f32))
    ('float32', 'float32')
    """
    groups = [None, None, None]  # dimensioned tensors, 0-d tensors, Python scalars
    for x in operands:
        if isinstance(x, _SCALARS):
            g, dt = 2, _scalar_dtype(x, default_float)
        else:
            a = x if isinstance(x, np.ndarray) else x._data  # a Tensor's storage
            g, dt = (0 if a.ndim else 1), a.dtype
        groups[g] = dt if groups[g] is None else _promote_pair(groups[g], dt)
    result = None
    for dt in groups:
        if dt is not None and (result is None or category(dt) > category(result)):
            result = dt
    return result


def true_divide_type(dtype, default_float):
    """Integer and bool true division gives the default float dtype."""
    return dtype if category(dtype) == 2 else default_float
