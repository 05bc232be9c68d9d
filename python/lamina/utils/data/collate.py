"""`default_collate` and `default_convert`, as PyTorch's: a list of samples becomes one batch
with the samples' structure (tuple/list -> list, dict -> dict, namedtuple -> namedtuple), each
field stacked and keeping its dtype.

NumPy fields of a lamina dtype (float32, float64, uint8, int8, int16, int32, int64, bool) keep it;
others are widened the way `lamina.tensor` widens them (uint16/uint32 -> int64, float16 -> float32).

>>> import lamina
>>> from lamina.utils.data import default_collate
>>> x, y = default_collate([(lamina.zeros(2), -1.04), (lamina.ones(2), -0.77)])
>>> x.shape, y.dtype, y.tolist()
((2, 2), dtype('float64'), [-1.04, -0.77])
"""
from __future__ import annotations

import collections.abc

import numpy as np

from ...tensor import Tensor, _SUPPORTED

__all__ = ["default_collate", "default_convert"]

_WIDEN = {"i": np.int64, "u": np.int64, "f": np.float32}


def _array_to_tensor(a: np.ndarray) -> Tensor:
    if a.dtype in _SUPPORTED:
        pass
    elif a.dtype.kind in _WIDEN and a.dtype.itemsize <= 8:
        a = a.astype(_WIDEN[a.dtype.kind])
    else:
        raise TypeError(f"default_collate: batch must contain tensors, NumPy arrays, numbers, "
                        f"dicts or lists; found NumPy dtype {a.dtype}")
    return Tensor._wrap(np.ascontiguousarray(a))


def _is_namedtuple(obj) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def default_convert(data):
    """NumPy arrays and scalars inside `data` become tensors (no batching): the collate used by
    `DataLoader(batch_size=None)`.

    >>> default_convert({"x": np.zeros(2, np.float32)})["x"].dtype
    dtype('float32')
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        if data.dtype.kind in "USO":
            return data
        return _array_to_tensor(data)
    if isinstance(data, np.generic):
        return _array_to_tensor(np.asarray(data))
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if _is_namedtuple(data):
        return type(data)(*(default_convert(v) for v in data))
    if isinstance(data, tuple):
        return [default_convert(v) for v in data]
    if isinstance(data, collections.abc.Sequence):
        return [default_convert(v) for v in data]
    return data


def _stack(arrays, what: str):
    first = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != first:
            raise RuntimeError(f"stack expects each {what} to be equal size, but got "
                               f"{list(first)} at entry 0 and {list(a.shape)} at entry {i}")
    return np.stack(arrays)


def default_collate(batch):
    """Merge a list of samples into a batch, field by field, each keeping its dtype.

    Tensors and arrays are stacked on a new first dimension; Python floats give float64, ints
    int64, bools bool; NumPy scalars keep their dtype; strings stay a list; dicts, tuples, lists
    and namedtuples are collated per field.

    >>> default_collate([{"a": 1}, {"a": 2}])["a"].tolist()
    [1, 2]
    """
    if not isinstance(batch, collections.abc.Sequence) or isinstance(batch, (str, bytes)):
        raise TypeError(f"default_collate: expected a list of samples, got {type(batch).__name__}")
    if len(batch) == 0:
        raise ValueError("default_collate: expected a non-empty list of samples")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor._wrap(_stack([t._data for t in batch], "tensor"))
    if isinstance(elem, np.ndarray) and elem.dtype.kind not in "USO":
        return _array_to_tensor(_stack([np.asarray(a) for a in batch], "array"))
    if isinstance(elem, np.generic) and elem.dtype.kind not in "USO":
        return _array_to_tensor(np.array(batch))
    if isinstance(elem, bool):
        return Tensor._wrap(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return Tensor._wrap(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor._wrap(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(field) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        for i, sample in enumerate(batch):
            if len(sample) != size:
                raise RuntimeError(f"each element in list of batch should be of equal size: "
                                   f"sample 0 has {size} fields, sample {i} has {len(sample)}")
        return [default_collate(field) for field in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, NumPy arrays, numbers, dicts "
                    f"or lists; found {type(elem).__name__}")
