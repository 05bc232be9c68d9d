"""DataLoader worker processes: each loads whole batches (fetch + collate) for the tasks the
main process sends it, and sends them back; the main process yields them in order.

Workers are started with the "forkserver" method (or "spawn"), never a plain fork of the main
process: libgomp's thread pool does not survive fork, so a child forked after any OpenMP kernel
ran could hang in its first parallel region. The cost is that the dataset, collate_fn and
worker_init_fn must be picklable (module-level functions, not lambdas).
"""
from __future__ import annotations

import dataclasses
import queue
import random
import traceback

import numpy as np

__all__ = ["WorkerInfo", "get_worker_info"]


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """What `get_worker_info()` returns inside a worker process."""
    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info = None


def get_worker_info():
    """This worker's `WorkerInfo`, or None in the main process.

    >>> get_worker_info() is None
    True
    """
    return _worker_info


class _Wire:
    """A tensor on its way between processes: its array only (no graph, no grad)."""
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def to_wire(obj):
    from ...tensor import Tensor
    if isinstance(obj, Tensor):
        return _Wire(obj._data)
    if isinstance(obj, list):
        return [to_wire(v) for v in obj]
    if isinstance(obj, tuple):
        items = [to_wire(v) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, dict):
        return {k: to_wire(v) for k, v in obj.items()}
    return obj


def from_wire(obj):
    from ...tensor import Tensor
    if isinstance(obj, _Wire):
        return Tensor._wrap(obj.array)
    if isinstance(obj, list):
        return [from_wire(v) for v in obj]
    if isinstance(obj, tuple):
        items = [from_wire(v) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, dict):
        return {k: from_wire(v) for k, v in obj.items()}
    return obj


class WorkerError:
    """An exception raised in a worker, carried back with its traceback as text."""

    def __init__(self, exc: BaseException, worker_id: int):
        self.exc_type = type(exc)
        self.message = (f"Caught {type(exc).__name__} in DataLoader worker process {worker_id}.\n"
                        f"Original {traceback.format_exc()}")

    def reraise(self):
        try:
            err = self.exc_type(self.message)
        except Exception:
            err = RuntimeError(self.message)
        raise err


class StreamEnd:
    """An IterableDataset worker's copy of the stream is exhausted."""


def seed_worker(seed: int) -> None:
    """Seed every generator a transform may draw from: lamina's, NumPy's legacy one, Python's."""
    import lamina
    lamina.manual_seed(seed % (1 << 63))
    np.random.seed(seed % (1 << 32))
    random.seed(seed)


def worker_loop(dataset, fetch, collate_fn, index_queue, result_queue, worker_id: int,
                num_workers: int, base_seed: int, init_fn) -> None:
    """Serve tasks `(epoch, task_id, payload)` until a None arrives.

    `fetch(dataset, payload, stream)` makes one batch; for an IterableDataset the payload is
    ignored and `stream` is this worker's iterator (restarted when a new epoch's task arrives).
    """
    global _worker_info
    seed = base_seed + worker_id
    seed_worker(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    init_error = None
    if init_fn is not None:
        try:
            init_fn(worker_id)
        except Exception as e:  # reported with the first task, as PyTorch does
            init_error = WorkerError(e, worker_id)
    stream, stream_epoch = None, None
    while True:
        try:
            task = index_queue.get(timeout=5.0)
        except queue.Empty:
            continue
        if task is None:
            break
        epoch, task_id, payload = task
        if init_error is not None:
            result_queue.put((epoch, task_id, init_error))
            continue
        try:
            if fetch is fetch_stream and stream_epoch != epoch:
                stream, stream_epoch = iter(dataset), epoch
            batch = fetch(dataset, payload, stream, collate_fn)
            result_queue.put((epoch, task_id, to_wire(batch)))
        except Exception as e:
            result_queue.put((epoch, task_id, WorkerError(e, worker_id)))


def fetch_map(dataset, indices, stream, collate_fn):
    """One batch of a map-style dataset (indices a list, or one index when not batching)."""
    if collate_fn is None:                       # default collate: try the whole-batch path
        from .dataset import fetch_batch
        batch = fetch_batch(dataset, indices) if isinstance(indices, list) else None
        if batch is not None:
            return batch
        from .collate import default_collate
        collate_fn = default_collate
    if isinstance(indices, list):
        return collate_fn([dataset[i] for i in indices])
    return collate_fn(dataset[indices])


def fetch_stream(dataset, spec, stream, collate_fn):
    """The next batch (`spec` = (batch_size, drop_last)) of this worker's stream, or StreamEnd."""
    batch_size, drop_last = spec
    if batch_size is None:
        for item in stream:
            return collate_fn(item)
        return StreamEnd()
    items = []
    for item in stream:
        items.append(item)
        if len(items) == batch_size:
            break
    if not items or (drop_last and len(items) < batch_size):
        return StreamEnd()
    return collate_fn(items)
