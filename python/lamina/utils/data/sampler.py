"""Samplers as PyTorch's: which indices a DataLoader fetches, and in what groups.

>>> from lamina.utils.data import BatchSampler, SequentialSampler
>>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
[[0, 1], [2, 3], [4]]
"""
from __future__ import annotations

import numpy as np

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


class Sampler:
    """Base class: subclass and define `__iter__` (yielding indices) and usually `__len__`."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


def _pass_generator(generator):
    """The generator one pass draws from, as PyTorch's RandomSampler: the given one itself, or,
    when None, a fresh one seeded by one draw from lamina's global generator (so
    `lamina.manual_seed` fixes every epoch's order, and the orders are PyTorch's)."""
    from ...random import Generator, default_generator
    if generator is not None:
        return generator
    return Generator().manual_seed(default_generator().random_int64())


class RandomSampler(Sampler):
    """A random permutation per pass (or `num_samples` draws with replacement).

    >>> import lamina
    >>> sorted(RandomSampler(range(4), generator=lamina.Generator().manual_seed(1)))
    [0, 1, 2, 3]
    """

    def __init__(self, data_source, replacement: bool = False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement: expected a bool, got {replacement!r}")
        if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer))
                                        or num_samples <= 0):
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self):
        # A generator function, as PyTorch's: nothing is drawn until the first index is asked for,
        # and the draws come in PyTorch's order (32 indices at a time with replacement; whole
        # permutations, the last one cut, without), so the orders are PyTorch's too.
        n = len(self.data_source)
        if n == 0:  # nothing to order (PyTorch refuses an empty source when it is built)
            return
        g = _pass_generator(self.generator)
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from g.integers(0, n, size=32).tolist()
            if self.num_samples % 32:
                yield from g.integers(0, n, size=self.num_samples % 32).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from g.permutation(n).tolist()
        yield from g.permutation(n).tolist()[:self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order each pass."""

    def __init__(self, indices, generator=None):
        self.indices = list(indices)
        self.generator = generator

    def __iter__(self):
        from ...random import generator_of
        for i in generator_of(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices drawn in proportion to `weights` (with replacement by default): one
    `multinomial` draw per pass, as PyTorch's, so a seeded pass gives PyTorch's indices.

    >>> import lamina
    >>> _ = lamina.manual_seed(0)
    >>> sorted(set(WeightedRandomSampler([0.0, 1.0, 0.0, 1.0], 6)))
    [1, 3]
    """

    def __init__(self, weights, num_samples, replacement: bool = True, generator=None):
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        from ...tensor import Tensor
        w = np.asarray(weights._data if isinstance(weights, Tensor) else weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}")
        self.weights = Tensor._wrap(w)
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        from ...factory import multinomial
        yield from multinomial(self.weights, self.num_samples, self.replacement,
                               generator=self.generator).tolist()

    def __len__(self) -> int:
        return self.num_samples


class _EpochSeededSampler(Sampler):
    """lamina's `DataLoader(seed=...)`: the order of pass e is a permutation drawn from
    (seed, e) alone, so a run resumed at epoch e sees the same order as an unbroken one."""

    def __init__(self, data_source, seed: int, loader):
        self.data_source = data_source
        self.seed = int(seed)
        self.loader = loader

    def __iter__(self):
        rng = np.random.default_rng([self.seed, int(self.loader._pass_epoch)])
        return iter(rng.permutation(len(self.data_source)).tolist())

    def __len__(self) -> int:
        return len(self.data_source)


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of `batch_size` (the last one shorter unless
    `drop_last`)."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
