"""`DataLoader`, as PyTorch's: batches from a dataset through a sampler and a collate function,
optionally loaded by worker processes, always yielded in sampler order.

>>> import lamina
>>> from lamina.utils.data import DataLoader, TensorDataset
>>> ds = TensorDataset(lamina.arange(6).float(), lamina.arange(6))
>>> [y.tolist() for _, y in DataLoader(ds, batch_size=4)]
[[0, 1, 2, 3], [4, 5]]
"""
from __future__ import annotations

import itertools
import multiprocessing
import queue
import time

import numpy as np

from . import worker as _worker
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler, _EpochSeededSampler

__all__ = ["DataLoader"]

_NOTHING = object()
_POLL_S = 1.0          # how often a waiting main process checks that its workers are alive


def _check_int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{name}: expected {kind}, got {value!r}")
    return int(value)


class DataLoader:
    """Iterate `dataset` in batches.

    Arguments and their rules are PyTorch's: `batch_size` (None: no batching), `shuffle`,
    `sampler`, `batch_sampler`, `num_workers`, `collate_fn`, `pin_memory` (no effect: there is
    only host memory), `drop_last`, `timeout`, `worker_init_fn`, `multiprocessing_context`,
    `generator`, `prefetch_factor`, `persistent_workers`. `seed=` is lamina's own: with it, the
    shuffle order of pass e depends on (seed, e) only, and `loader.epoch` says which pass is next
    (set it to resume).

    `num_workers > 0` loads batches in that many worker processes (started with forkserver, see
    `lamina.utils.data.worker`), batch i by worker i % num_workers, each worker seeded with
    base_seed + worker_id where base_seed is drawn from `generator` (or lamina's global one): the
    batches are the same on every run after the same `lamina.manual_seed`.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True, seed=None):
        if not (hasattr(dataset, "__getitem__") or hasattr(dataset, "__iter__")):
            raise TypeError(f"dataset: expected an object with __len__ and __getitem__ (or an "
                            f"IterableDataset), got {type(dataset).__name__}")
        num_workers = _check_int(num_workers, "num_workers", 0)
        if timeout is None or timeout < 0:
            raise ValueError(f"timeout option should be non-negative, got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. "
                             "let num_workers > 0 to enable multiprocessing, otherwise set "
                             "prefetch_factor to None.")
        if prefetch_factor is None:
            prefetch_factor = 2
        prefetch_factor = _check_int(prefetch_factor, "prefetch_factor", 1)
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if not in_order:
            raise ValueError("in_order=False is not supported: lamina's DataLoader always yields in order")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = bool(pin_memory)
        self.timeout = float(timeout)
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.persistent_workers = bool(persistent_workers)
        self.epoch = 0
        self._pass_epoch = 0
        self._pool = None
        self._is_iterable = isinstance(dataset, IterableDataset)

        if self._is_iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None:
            if drop_last:
                raise ValueError("batch_size=None option disables auto-batching and is mutually "
                                 "exclusive with drop_last")
        else:
            _check_int(batch_size, "batch_size", 1)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if sampler is None and not self._is_iterable:
            if shuffle and seed is not None:
                sampler = _EpochSeededSampler(dataset, seed, self)
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._is_iterable:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.seed = seed
        self._auto_collation = batch_sampler is not None or (self._is_iterable and batch_size is not None)
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    # ---- sizes and order
    def __len__(self) -> int:
        if self._is_iterable:
            n = len(self.dataset)      # TypeError when the stream has no length, as PyTorch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def _tasks(self):
        """The payload of each batch of this pass: index lists (or single indices)."""
        if self.batch_sampler is not None:
            return iter(self.batch_sampler)
        return iter(self.sampler)

    def _collate_for_workers(self):
        # None asks the fetcher to use a dataset's whole-batch path (same result, faster).
        return None if self.collate_fn is default_collate else self.collate_fn

    def _draw_base_seed(self) -> int:
        from ...random import generator_of
        return generator_of(self.generator).random_int64()

    # ---- iteration
    def __iter__(self):
        self._pass_epoch = self.epoch
        self.epoch += 1
        # The workers' base seed is drawn here, when the pass starts, workers or not (persistent
        # workers: only when their pool starts), and the sampler draws at the first batch: PyTorch's
        # order, so after the same manual_seed the shuffles and the draws after them are PyTorch's,
        # with or without workers.
        reuse_pool = self.num_workers > 0 and self.persistent_workers and self._pool is not None \
            and self._pool.alive()
        base_seed = None if reuse_pool else self._draw_base_seed()
        if self.num_workers == 0:
            return self._single_process()
        return self._multi_process(base_seed)

    def _multi_process(self, base_seed):
        if self._is_iterable:
            spec = (self.batch_size, self.drop_last)
            tasks = iter(lambda: spec, None)       # endless: workers say when their stream ends
        else:
            tasks = self._tasks()
            first = next(tasks, _NOTHING)
            if first is _NOTHING:
                return
            tasks = itertools.chain([first], tasks)
        if self.persistent_workers:
            if self._pool is None or not self._pool.alive():
                self._pool = _WorkerPool(self, base_seed if base_seed is not None else self._draw_base_seed())
            yield from self._pool.run_pass(self._pass_epoch, tasks)
            return
        pool = _WorkerPool(self, base_seed)
        try:
            yield from pool.run_pass(self._pass_epoch, tasks)
        finally:
            pool.close()

    def _single_process(self):
        if self._is_iterable:
            spec = (self.batch_size, self.drop_last)
            stream = iter(self.dataset)
            while True:
                batch = _worker.fetch_stream(self.dataset, spec, stream, self.collate_fn)
                if isinstance(batch, _worker.StreamEnd):
                    return
                yield batch
        collate = self._collate_for_workers()
        for payload in self._tasks():
            yield _worker.fetch_map(self.dataset, payload, None, collate)

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()


class _WorkerPool:
    """num_workers processes, one task queue each and a shared result queue."""

    def __init__(self, loader: DataLoader, base_seed: int):
        self.loader = loader
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        if isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        if ctx.get_start_method() == "forkserver":
            # The server imports lamina once (no kernel runs at import, so no OpenMP pool to
            # break); each worker forked from it then starts without re-importing it.
            ctx.set_forkserver_preload(["lamina"])
        self.result_queue = ctx.Queue()
        self.index_queues = []
        self.workers = []
        fetch = _worker.fetch_stream if loader._is_iterable else _worker.fetch_map
        collate = loader.collate_fn if loader._is_iterable else loader._collate_for_workers()
        for worker_id in range(loader.num_workers):
            iq = ctx.Queue()
            p = ctx.Process(target=_worker.worker_loop, daemon=True,
                            args=(loader.dataset, fetch, collate, iq, self.result_queue, worker_id,
                                  loader.num_workers, base_seed, loader.worker_init_fn))
            try:
                p.start()
            except Exception as e:
                self.close()
                raise RuntimeError(f"DataLoader: could not start worker {worker_id} ({e}); with "
                                   f"num_workers > 0 the dataset, collate_fn and worker_init_fn "
                                   f"must be picklable (module-level functions, not lambdas)") from e
            self.index_queues.append(iq)
            self.workers.append(p)
        self.closed = False

    def alive(self) -> bool:
        return not self.closed and all(p.is_alive() for p in self.workers)

    def _get(self, deadline):
        while True:
            wait = _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - time.monotonic()))
            try:
                return self.result_queue.get(timeout=wait)
            except queue.Empty:
                pass
            for worker_id, p in enumerate(self.workers):
                if not p.is_alive():
                    self.close()
                    raise RuntimeError(f"DataLoader worker {worker_id} (pid {p.pid}) exited "
                                       f"unexpectedly with exit code {p.exitcode}")
            if deadline is not None and time.monotonic() >= deadline:
                self.close()
                raise RuntimeError(f"DataLoader timed out after {self.loader.timeout} seconds "
                                   "waiting for a batch")

    def run_pass(self, epoch: int, tasks):
        """Yield the batches of `tasks` in order, keeping prefetch_factor tasks per worker queued."""
        loader = self.loader
        n_workers = loader.num_workers
        live = list(range(n_workers))              # workers whose stream has not ended
        owner = {}                                 # task id -> worker id
        ready = {}
        next_task, next_yield, rr = 0, 0, 0

        def send_one():
            nonlocal next_task, rr
            if not live:
                return False
            payload = next(tasks, _NOTHING)
            if payload is _NOTHING:
                return False
            worker_id = live[rr % len(live)]
            rr += 1
            self.index_queues[worker_id].put((epoch, next_task, payload))
            owner[next_task] = worker_id
            next_task += 1
            return True

        for _ in range(loader.prefetch_factor * n_workers):
            if not send_one():
                break
        while next_yield < next_task:
            deadline = time.monotonic() + loader.timeout if loader.timeout > 0 else None
            while next_yield not in ready:
                got_epoch, task_id, batch = self._get(deadline)
                if got_epoch == epoch:          # results of an abandoned pass are dropped
                    ready[task_id] = batch
            batch = ready.pop(next_yield)
            worker_id = owner.pop(next_yield)
            next_yield += 1
            if isinstance(batch, _worker.WorkerError):
                batch.reraise()
            if isinstance(batch, _worker.StreamEnd):
                if worker_id in live:
                    live.remove(worker_id)
                send_one() if not loader._is_iterable else None
                continue
            send_one()
            yield _worker.from_wire(batch)

    def close(self):
        if getattr(self, "closed", True) and not self.workers:
            return
        self.closed = True
        for iq in self.index_queues:
            try:
                iq.put(None)
            except Exception:
                pass
        for p in self.workers:
            p.join(timeout=2.0)
            if p.is_alive():
                p.terminate()
                p.join(timeout=1.0)
        self.workers = []
