"""Datasets for tests/test_utils_data.py that DataLoader worker processes import by name.

Kept apart from the test module so a worker does not import PyTorch (seconds per process).
"""
import os

import numpy as np

import lamina
from lamina.utils.data import Dataset, IterableDataset, get_worker_info


class Regression(Dataset):
    """Items (x float32 (3,), y a Python float): float regression targets."""

    def __init__(self, n=10):
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((n, 3)).astype(np.float32)
        self.y = rng.standard_normal(n).round(2)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], float(self.y[i])


class SingleArray(Dataset):
    """Each item is one array (an autoencoder's input), not an (x, y) pair."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return np.full(4, i, dtype=np.float32)


class Noisy(Dataset):
    """Items that draw from lamina's generator, as a random transform does."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return lamina.rand(2) + i, i


class Stream(IterableDataset):
    """0..n-1, split between workers by get_worker_info()."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


class Failing(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise KeyError(f"item {i} is broken")
        return i


def pid_item(i):
    return os.getpid()


class Pids(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return os.getpid()


def init_marker(worker_id):
    os.environ["LAMINA_TEST_WORKER"] = str(worker_id)


class WorkerEnv(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return int(os.environ.get("LAMINA_TEST_WORKER", "-1"))
