"""Batching: `ArrayDataset`, `Subset` and `DataLoader`.

A dataset is anything with `__len__` and `__getitem__` returning `(x, y)`. Datasets that
can hand over whole arrays (`arrays() -> (x, y)`, and no `transform`) are batched by numpy
fancy indexing instead of item by item: that is the path training loops take.

>>> import numpy as np
>>> from lamina.data import ArrayDataset, DataLoader
>>> ds = ArrayDataset(np.zeros((10, 3), np.float32), np.arange(10))
>>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0)
>>> len(loader), [tuple(x.shape) for x, y in loader]               # doctest: +SKIP
(3, [(4, 3), (4, 3), (2, 3)])
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["ArrayDataset", "TensorDataset", "Subset", "DataLoader"]


def _as_numpy(a, name: str) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "numpy"):          # a lamina Tensor
        return np.asarray(a.numpy())
    try:
        return np.asarray(a)
    except Exception as e:            # pragma: no cover - numpy's own message is clear
        raise TypeError(f"{name}: expected an array or Tensor, got {type(a).__name__}") from e


class ArrayDataset:
    """Pairs of rows `(x[i], y[i])` from two arrays (or lamina Tensors) of equal length.

    >>> import numpy as np
    >>> ds = ArrayDataset(np.ones((3, 2)), np.array([0, 1, 2]))
    >>> len(ds), ds[1][1]
    (3, 1)
    """

    def __init__(self, x, y):
        self.x = _as_numpy(x, "x")
        self.y = _as_numpy(y, "y")
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

    def arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        return self.x, self.y


TensorDataset = ArrayDataset


class Subset:
    """The items of `dataset` at `indices` (keeps the whole-array fast path if it has one).

    >>> import numpy as np
    >>> sub = Subset(ArrayDataset(np.arange(5), np.arange(5)), [4, 0])
    >>> len(sub), sub[0]
    (2, (4, 4))
    """

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise ValueError(f"indices: expected values in [{-n}, {n}), got range "
                             f"[{int(idx.min())}, {int(idx.max())}]")
        self.indices = idx
        self.transform = getattr(dataset, "transform", None)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        x, y = _whole_arrays(self.dataset)
        if x is None:
            raise TypeError(f"{type(self.dataset).__name__} offers no arrays() (or has a transform)")
        return x[self.indices], y[self.indices]


def _whole_arrays(dataset):
    """(x, y) arrays of the whole dataset when it offers them (and no transform), else (None, None)."""
    if getattr(dataset, "transform", None) is not None:
        return None, None
    arrays = getattr(dataset, "arrays", None)
    if arrays is None:
        return None, None
    x, y = arrays()
    return _as_numpy(x, "x"), _as_numpy(y, "y")


def _to_tensor(a: np.ndarray):
    import lamina
    return lamina.from_numpy(np.ascontiguousarray(a))


class DataLoader:
    """Iterate `dataset` in batches of `(x, y)` lamina Tensors (x float32, y int64).

    `shuffle=True` draws a fresh permutation each epoch from `(seed, epoch)`, so runs with
    the same seed see the same orders; `epoch` counts passes and may be set (for resuming).
    `len(loader)` is the number of batches.

    >>> import numpy as np
    >>> ds = ArrayDataset(np.arange(6, dtype=np.float32)[:, None], np.arange(6))
    >>> [y.numpy().tolist() for _, y in DataLoader(ds, batch_size=4)]   # doctest: +SKIP
    [[0, 1, 2, 3], [4, 5]]
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 seed: Optional[int] = None, drop_last: bool = False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"dataset: expected an object with __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        if seed is None:
            # No seed: draw one from lamina's generator, so lamina.manual_seed fixes it too.
            from .random import default_generator
            seed = int(default_generator().integers(0, 1 << 63))
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """Sample indices for `epoch` (a permutation when shuffling)."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n).astype(np.int64)

    def __iter__(self):
        order = self.order(self.epoch)
        self.epoch += 1
        x_all, y_all = _whole_arrays(self.dataset)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if x_all is not None:
                xb, yb = x_all[idx], y_all[idx]           # fancy indexing copies: contiguous
            else:
                items = [self.dataset[int(i)] for i in idx]
                xb = np.stack([_as_numpy(x, "x") for x, _ in items])
                yb = np.asarray([_as_numpy(y, "y") for _, y in items])
            yield (_to_tensor(xb.astype(np.float32, copy=False)),
                   _to_tensor(yb.astype(np.int64, copy=False)))
