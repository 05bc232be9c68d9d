"""`lamina.utils.data`: PyTorch's `torch.utils.data` (also importable as `lamina.data`).

>>> import lamina
>>> from lamina.utils.data import DataLoader, TensorDataset
>>> loader = DataLoader(TensorDataset(lamina.randn(10, 3), lamina.arange(10)), batch_size=4, shuffle=True)
>>> [tuple(x.shape) for x, y in loader]
[(4, 3), (4, 3), (2, 3)]
"""
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import (ArrayDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,
                      random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)
from .worker import WorkerInfo, get_worker_info

__all__ = ["DataLoader", "Dataset", "IterableDataset", "TensorDataset", "ArrayDataset", "Subset",
           "ConcatDataset", "random_split", "Sampler", "SequentialSampler", "RandomSampler",
           "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler", "default_collate", "default_convert",
           "get_worker_info", "WorkerInfo"]

try:  # DistributedSampler lives in its own module (helper mpi adds it)
    from .distributed import DistributedSampler  # noqa: F401
    __all__.append("DistributedSampler")
except ImportError as _e:  # pragma: no cover - only before distributed.py exists
    if "distributed" not in str(_e):
        raise
