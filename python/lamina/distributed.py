"""lamina.distributed: collectives on tensors over MPI, with torch.distributed's names.

Run a script under `mpiexec -n N python script.py`; every process calls
`init_process_group(backend="mpi")` and then works on its own shard of the data. Outside
`mpiexec` (or without mpi4py installed) the same script runs as a world of size 1.

>>> import lamina, lamina.distributed as dist
>>> dist.init_process_group(backend="mpi")
>>> t = lamina.ones(3) * (dist.get_rank() + 1)
>>> dist.all_reduce(t, op=dist.ReduceOp.SUM)     # in place, on t's own buffer
>>> dist.get_world_size(), t.tolist()            # doctest: +SKIP
(1, [1.0, 1.0, 1.0])
>>> dist.destroy_process_group()

Collectives read and write the tensor's NumPy buffer directly (MPI receives its address: no
copy), so the tensor must be C-contiguous. mpi4py is imported by `init_process_group` only:
`import lamina` never loads MPI.
"""
from __future__ import annotations

import enum
import importlib.util
import os
import queue
import sys
import threading
import time
import traceback

import numpy as np

from .tensor import Tensor

__all__ = ["ReduceOp", "init_process_group", "is_available", "is_mpi_available", "is_initialized", "get_rank",
           "get_world_size", "get_backend", "destroy_process_group", "all_reduce", "broadcast",
           "all_gather", "reduce", "barrier", "all_gather_object", "broadcast_object_list"]

# Environment variables set by MPI launchers (MPICH/Hydra, Open MPI, PMIx, Slurm): the world size
# a process was started with, read without importing MPI.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


class ReduceOp(enum.Enum):
    """How all_reduce / reduce combine the ranks' values (AVG is SUM divided by the world size)."""
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64))


class _World:
    """The default process group: an MPI communicator, or None for the size-1 local world."""

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1
        self.previous_hooks = None


_world = None


def is_available():
    """True when mpi4py is installed (checked without importing it, so MPI is not started)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_mpi_available():
    return is_available()


def is_gloo_available():
    return False   # lamina's one backend is MPI


def is_nccl_available():
    return False


def is_initialized():
    return _world is not None


def _launched_size():
    for name in _LAUNCHER_SIZE_VARS[:3]:
        v = os.environ.get(name)
        if v is not None and v.isdigit():
            return int(v)
    return 1


def _mpi():
    from mpi4py import MPI
    return MPI


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None):
    """Join the default process group: MPI's COMM_WORLD (rank and size come from `mpiexec`).

    backend: "mpi" (or None). init_method, timeout, store and group_name are accepted for
    PyTorch compatibility and unused: MPI's launcher already wired the processes together.
    world_size / rank, if given, must match what mpiexec started. A rank whose Python raises
    an uncaught exception prints it and aborts the whole job (MPI_Abort), so no rank is left
    waiting forever in a collective.
    """
    global _world
    if _world is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process group twice")
    if backend is not None and str(backend).lower() != "mpi":
        raise ValueError(f"backend: expected 'mpi' (the one backend lamina has), got {backend!r}")
    if is_available():
        comm = _mpi().COMM_WORLD
    elif _launched_size() > 1:
        raise RuntimeError(f"init_process_group: started by an MPI launcher with {_launched_size()} ranks "
                           "but mpi4py is not installed; pip install \"lamina[dist]\"")
    else:
        comm = None   # no MPI at all: a world of one process
    world = _World(comm)
    if world_size not in (-1, None) and int(world_size) != world.size:
        raise ValueError(f"world_size: expected {world.size} (the ranks mpiexec started), got {world_size}")
    if rank not in (-1, None) and int(rank) != world.rank:
        raise ValueError(f"rank: expected {world.rank} (this process's MPI rank), got {rank}")
    if world.size > 1:
        _install_abort_hooks(world)
    _world = world


def destroy_process_group(group=None):
    """Leave the default group (MPI itself is finalized when the interpreter exits)."""
    global _world
    w = _world
    if w is None:
        return
    for comm_thread in list(_comm_threads):
        comm_thread.stop()
    if w.previous_hooks is not None:
        sys.excepthook, threading.excepthook = w.previous_hooks
    _world = None


def _require():
    if _world is None:
        raise RuntimeError("Default process group has not been initialized, "
                           "please make sure to call init_process_group.")
    return _world


def get_rank(group=None):
    """This process's rank in [0, world size)."""
    return _require().rank


def get_world_size(group=None):
    return _require().size


def get_backend(group=None):
    _require()
    return "mpi"


# --------------------------------------------------------------------------- faults
def abort(message, code=1):
    """Print `message` to stderr and end every rank of the job now (MPI_Abort)."""
    w = _world
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()
    if w is not None and w.comm is not None:
        # MPI_Abort makes mpiexec kill every rank, and its output forwarding with them: give it a
        # moment to pass the message on (under load the whole message was seen lost, 1 run in ~20)
        time.sleep(0.25)
        w.comm.Abort(code)
    os._exit(code)


def _install_abort_hooks(world):
    prev_sys, prev_thread = sys.excepthook, threading.excepthook

    def on_uncaught(exc_type, exc, tb, where="main thread"):
        if issubclass(exc_type, KeyboardInterrupt):
            what = "was interrupted"
        else:
            what = f"raised {exc_type.__name__} in its {where}"
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        abort(f"{text}lamina.distributed: rank {world.rank} of {world.size} {what}: {exc}; "
              "aborting all ranks (MPI_Abort)")

    def on_thread(args):
        if args.exc_type is SystemExit:
            return prev_thread(args)
        on_uncaught(args.exc_type, args.exc_value, args.exc_traceback,
                    f"thread {args.thread.name if args.thread else '?'}")

    sys.excepthook = on_uncaught
    threading.excepthook = on_thread
    world.previous_hooks = (prev_sys, prev_thread)


# --------------------------------------------------------------------------- collectives
def _buffer(tensor, name="tensor"):
    """The tensor's own NumPy buffer, which MPI reads and writes in place."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a lamina Tensor, got {type(tensor).__name__}")
    arr = tensor._data
    if not isinstance(arr, np.ndarray) or not arr.flags.c_contiguous or not arr.flags.writeable:
        raise ValueError(f"{name}: collectives work in place on a writeable C-contiguous buffer; "
                         "call .clone() first")
    if arr.dtype not in _DTYPES:
        raise TypeError(f"{name}: expected dtype float32, float64 or int64, got {arr.dtype}")
    return arr


def _op(op, dtype):
    MPI = _mpi()
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.MAX: MPI.MAX,
            ReduceOp.MIN: MPI.MIN, ReduceOp.PRODUCT: MPI.PROD}[op]


class Work:
    """What an `async_op=True` collective returns: `wait()` blocks until it is done."""

    def __init__(self, request=None, finish=None):
        self._request = request
        self._finish = finish
        self._done = request is None

    def wait(self, timeout=None):
        if not self._done:
            self._request.Wait()
            self._done = True
            if self._finish is not None:
                self._finish()
        return True

    def is_completed(self):
        if not self._done and self._request.Test():
            self._done = True
            if self._finish is not None:
                self._finish()
        return self._done


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine `tensor` across ranks with `op`, in place on every rank.

    >>> import lamina, lamina.distributed as dist
    >>> dist.init_process_group("mpi")
    >>> t = lamina.tensor([1.0, 2.0]); dist.all_reduce(t, op=dist.ReduceOp.MAX); t.tolist()
    [1.0, 2.0]
    >>> dist.destroy_process_group()
    """
    w = _require()
    arr = _buffer(tensor)
    _op_checked(op, arr.dtype)
    if w.comm is None or w.size == 1:
        return Work() if async_op else None
    MPI = _mpi()
    mop = _op(op, arr.dtype)

    def finish():
        if op is ReduceOp.AVG:
            np.divide(arr, arr.dtype.type(w.size), out=arr)
    if async_op:
        return Work(w.comm.Iallreduce(MPI.IN_PLACE, arr, mop), finish)
    w.comm.Allreduce(MPI.IN_PLACE, arr, mop)
    finish()
    return None


def _op_checked(op, dtype):
    if not isinstance(op, ReduceOp):
        raise TypeError(f"op: expected a lamina.distributed.ReduceOp, got {op!r}")
    if op is ReduceOp.AVG and dtype.kind != "f":
        raise TypeError(f"op: ReduceOp.AVG needs a floating-point tensor, got dtype {dtype}")


def _check_rank(value, name, size):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < size:
        raise ValueError(f"{name}: expected a rank in [0, {size}), got {value!r}")
    return int(value)


def broadcast(tensor, src, group=None, async_op=False):
    """Copy rank `src`'s `tensor` into every other rank's `tensor`, in place."""
    w = _require()
    arr = _buffer(tensor)
    src = _check_rank(src, "src", w.size)
    if w.comm is None or w.size == 1:
        return Work() if async_op else None
    if async_op:
        return Work(w.comm.Ibcast(arr, root=src))
    w.comm.Bcast(arr, root=src)
    return None


def reduce(tensor, dst, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine `tensor` across ranks into rank `dst`'s `tensor` (the others' are left as they are)."""
    w = _require()
    arr = _buffer(tensor)
    dst = _check_rank(dst, "dst", w.size)
    _op_checked(op, arr.dtype)
    if w.comm is None or w.size == 1:
        return Work() if async_op else None
    MPI = _mpi()
    if w.rank == dst:
        w.comm.Reduce(MPI.IN_PLACE, arr, _op(op, arr.dtype), root=dst)
        if op is ReduceOp.AVG:
            np.divide(arr, arr.dtype.type(w.size), out=arr)
    else:
        w.comm.Reduce(arr, None, _op(op, arr.dtype), root=dst)
    return Work() if async_op else None


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill `tensor_list[r]` with rank r's `tensor` on every rank."""
    w = _require()
    arr = _buffer(tensor)
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != w.size:
        n = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else type(tensor_list).__name__
        raise ValueError(f"tensor_list: expected a list of {w.size} tensors (one per rank), got {n}")
    outs = [_buffer(t, f"tensor_list[{i}]") for i, t in enumerate(tensor_list)]
    for i, o in enumerate(outs):
        if o.shape != arr.shape or o.dtype != arr.dtype:
            raise ValueError(f"tensor_list[{i}]: expected shape {arr.shape} and dtype {arr.dtype} like "
                             f"tensor, got {o.shape} {o.dtype}")
    if w.comm is None or w.size == 1:
        np.copyto(outs[0], arr)
        return Work() if async_op else None
    gathered = np.empty((w.size,) + arr.shape, arr.dtype)
    w.comm.Allgather(arr, gathered)
    for r, o in enumerate(outs):
        np.copyto(o, gathered[r])
    return Work() if async_op else None


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every rank has called barrier()."""
    w = _require()
    if w.comm is not None and w.size > 1:
        w.comm.Barrier()
    return Work() if async_op else None


def all_gather_object(object_list, obj, group=None):
    """Fill `object_list[r]` with rank r's picklable `obj`."""
    w = _require()
    if len(object_list) != w.size:
        raise ValueError(f"object_list: expected a list of {w.size} entries, got {len(object_list)}")
    got = w.comm.allgather(obj) if w.comm is not None and w.size > 1 else [obj]
    object_list[:] = got


def broadcast_object_list(object_list, src=0, group=None, device=None):
    """Replace `object_list`'s entries on every rank by rank `src`'s (picklable objects)."""
    w = _require()
    src = _check_rank(src, "src", w.size)
    if w.comm is not None and w.size > 1:
        object_list[:] = w.comm.bcast(list(object_list), root=src)


# --------------------------------------------------------------------------- background all-reduce
_comm_threads = set()


class _Pending:
    __slots__ = ("array", "event", "request")

    def __init__(self, array):
        self.array = array
        self.event = threading.Event()
        self.request = None

    def wait(self):
        self.event.wait()


class CommThread:
    """Runs MPI non-blocking all-reduces (SUM, in place) and drives their progress.

    `start_allreduce(array)` queues an array and returns at once; the thread posts
    MPI_Iallreduce on its own communicator (a duplicate, so its collectives never interleave
    with the main thread's) and polls MPI_Test until the reduction is done, which is what
    moves MPICH's progress engine while the main thread computes backward. Reductions are
    posted in the order they were queued, which every rank must share.

    While a reduction is in flight the thread never blocks: it takes new jobs with
    `get_nowait()` and sleeps between polls. NOTE: not `SimpleQueue.get(timeout=...)`: when
    the thread is descheduled past that deadline (a loaded machine), CPython 3.11's
    SimpleQueue recomputes a negative remaining time, which its lock reads as "wait forever",
    so the thread sleeps until the next put -- which never comes while backward waits for
    this very reduction, and the other ranks wait in it too (the hang of a 2-rank run).
    """

    _POLL_S = 50e-6   # between MPI_Test calls while reductions are in flight
    _Queue = queue.SimpleQueue   # the job queue (a class attribute, so a test can substitute it)

    def __init__(self, comm):
        self.comm = comm.Dup()
        self._queue = self._Queue()
        self._thread = threading.Thread(target=self._loop, name="lamina-allreduce", daemon=True)
        self._thread.start()
        _comm_threads.add(self)

    def start_allreduce(self, array):
        job = _Pending(array)
        self._queue.put(job)
        return job

    def stop(self):
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            self.comm.Free()
        _comm_threads.discard(self)

    def _loop(self):
        MPI = _mpi()
        in_flight = []
        while True:
            if in_flight:
                try:
                    job = self._queue.get_nowait()   # never a timed wait: see the class docstring
                except queue.Empty:
                    job = False
            else:
                job = self._queue.get()              # idle: block until the next job (or stop)
            if job is None:
                for j in in_flight:
                    j.request.Wait()
                    j.event.set()
                return
            if job is not False:
                job.request = self.comm.Iallreduce(MPI.IN_PLACE, job.array, MPI.SUM)
                in_flight.append(job)
            still = []
            for j in in_flight:
                if j.request.Test():
                    j.event.set()
                else:
                    still.append(j)
            in_flight = still
            if in_flight and job is False:
                time.sleep(self._POLL_S)
