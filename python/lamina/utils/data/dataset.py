"""Datasets as PyTorch's `torch.utils.data`: Dataset, IterableDataset, TensorDataset, Subset,
ConcatDataset, random_split.

A map-style dataset has `__getitem__` and `__len__`. Datasets that can fetch a whole batch at
once define `_batch(indices)`, returning the batch exactly as `default_collate` would build it
from the items; `DataLoader` takes that path only with the default collate (it is a speed-up,
never a different answer).

>>> import lamina
>>> from lamina.utils.data import TensorDataset, random_split
>>> ds = TensorDataset(lamina.arange(10), lamina.arange(10) * 2)
>>> train, val = random_split(ds, [0.8, 0.2], generator=lamina.Generator().manual_seed(0))
>>> len(train), len(val), ds[3][1].item()
(8, 2, 6)
"""
from __future__ import annotations

import bisect
import math
from typing import List, Sequence

import numpy as np

from ...tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "ArrayDataset", "Subset",
           "ConcatDataset", "random_split"]


class Dataset:
    """Base class of map-style datasets: subclass and define `__getitem__` and `__len__`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """Base class of stream datasets: subclass and define `__iter__`. With `num_workers > 0`
    every worker iterates its own copy; split the stream with `get_worker_info()`."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other):
        raise TypeError("IterableDataset does not support + (use itertools.chain)")


def _as_tensor(t, name: str) -> Tensor:
    if isinstance(t, Tensor):
        return t
    if isinstance(t, np.ndarray):
        from ...factory import tensor
        return tensor(t)
    raise TypeError(f"{name}: expected a lamina Tensor (or NumPy array), got {type(t).__name__}")


class TensorDataset(Dataset):
    """Rows of any number of tensors that share their first dimension: item i is
    `(t0[i], t1[i], ...)`.

    >>> import lamina
    >>> ds = TensorDataset(lamina.zeros(4, 2), lamina.arange(4))
    >>> len(ds), ds[1][0].shape, ds[1][1].item()
    (4, (2,), 1)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor, got none")
        self.tensors = tuple(_as_tensor(t, f"tensors[{i}]") for i, t in enumerate(tensors))
        n = self.tensors[0].shape[0] if self.tensors[0].ndim else None
        for i, t in enumerate(self.tensors):
            if t.ndim == 0 or t.shape[0] != n:
                raise ValueError(f"TensorDataset: size mismatch between tensors: tensors[0] has "
                                 f"{n} rows, tensors[{i}] has shape {tuple(t.shape)}")

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def __getitem__(self, index):
        return tuple(Tensor._wrap(t._data[index]) for t in self.tensors)

    def _batch(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        return [Tensor._wrap(np.ascontiguousarray(t._data[idx])) for t in self.tensors]


class ArrayDataset(Dataset):
    """Pairs of rows `(x[i], y[i])` of two NumPy arrays (or Tensors); items are NumPy rows.
    lamina's older form of TensorDataset, kept for existing code.

    >>> ds = ArrayDataset(np.ones((3, 2)), np.array([0, 1, 2]))
    >>> len(ds), int(ds[1][1])
    (3, 1)
    """

    def __init__(self, x, y):
        self.x = x._data if isinstance(x, Tensor) else np.asarray(x)
        self.y = y._data if isinstance(y, Tensor) else np.asarray(y)
        if self.x.ndim == 0 or self.y.ndim == 0:
            raise ValueError(f"x and y need a leading sample dimension, got shapes "
                             f"{self.x.shape} and {self.y.shape}")
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x and y must have the same length, got {self.x.shape[0]} "
                             f"and {self.y.shape[0]}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def arrays(self):
        return self.x, self.y

    def _batch(self, indices):
        from .collate import default_convert
        idx = np.asarray(indices, dtype=np.int64)
        return [default_convert(np.ascontiguousarray(self.x[idx])),
                default_convert(np.ascontiguousarray(self.y[idx]))]


def fetch_batch(dataset, indices):
    """The collated batch of `indices` from the dataset's whole-batch path, or None if it has none.

    The path counts only when the class that defines `_batch` also defines `__getitem__`: a
    subclass that changes its items (a transform in `__getitem__`) falls back to item by item.
    """
    cls = type(dataset)
    batch_owner = next((c for c in cls.__mro__ if "_batch" in c.__dict__), None)
    item_owner = next((c for c in cls.__mro__ if "__getitem__" in c.__dict__), None)
    if batch_owner is None or batch_owner is not item_owner:
        return None
    return dataset._batch(indices)


def _check_indices(indices, n: int) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ValueError(f"indices: expected values in [{-n}, {n}), got range "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    return idx


class Subset(Dataset):
    """The items of `dataset` at `indices`, in that order.

    >>> sub = Subset(ArrayDataset(np.arange(5), np.arange(5)), [4, 0])
    >>> len(sub), [int(v) for v in sub[0]]
    (2, [4, 4])
    """

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = _check_indices(indices, len(dataset))

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray)):
            return [self.dataset[int(self.indices[i])] for i in index]
        return self.dataset[int(self.indices[index])]

    @property
    def transform(self):
        return getattr(self.dataset, "transform", None)

    def arrays(self):
        x, y = self.dataset.arrays()
        return x[self.indices], y[self.indices]

    def _batch(self, indices):
        return fetch_batch(self.dataset, self.indices[np.asarray(indices, dtype=np.int64)])


class ConcatDataset(Dataset):
    """Several map-style datasets one after the other.

    >>> ds = ConcatDataset([ArrayDataset(np.arange(2), np.arange(2)), ArrayDataset(np.arange(3), np.arange(3))])
    >>> len(ds), int(ds[3][0]), ds.cumulative_sizes
    (5, 1, [2, 5])
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets: expected a non-empty list of datasets")
        for i, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise TypeError(f"datasets[{i}]: ConcatDataset does not support IterableDataset")
        self.cumulative_sizes: List[int] = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        n = len(self)
        if index < 0:
            if -index > n:
                raise ValueError(f"index: absolute value {-index} exceeds dataset length {n}")
            index += n
        if index >= n:
            raise IndexError(f"index {index} is out of range for a ConcatDataset of length {n}")
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths, generator=None) -> List[Subset]:
    """Split `dataset` into non-overlapping random Subsets of the given lengths, or of the given
    fractions (summing to 1; the remainder is dealt round-robin as PyTorch does).

    >>> parts = random_split(ArrayDataset(np.arange(10), np.arange(10)), [0.5, 0.5])
    >>> [len(p) for p in parts]
    [5, 5]
    """
    from ...random import generator_of
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(v, float) for v in lengths) and math.isclose(sum(lengths), 1.0) \
            and sum(lengths) <= 1.0 + 1e-9:
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"lengths: fraction at index {i} is not between 0 and 1, got {frac}")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    for i, v in enumerate(lengths):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"lengths: expected non-negative ints or fractions summing to 1, "
                             f"got {lengths[i]!r} at index {i}")
    if sum(lengths) != n:
        raise ValueError(f"lengths: sum of input lengths ({sum(lengths)}) does not equal the "
                         f"length of the input dataset ({n})")
    perm = generator_of(generator).permutation(n)
    out, offset = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[offset:offset + length]))
        offset += length
    return out
