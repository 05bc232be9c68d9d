"""lamina.nn.parallel: DistributedDataParallel over lamina.distributed (MPI).

Every rank holds a full replica of the model and runs forward and backward on its own shard
of the batch; DDP averages the gradients across ranks during backward so that every replica
takes the same optimizer step. How it overlaps communication with backward:

  buckets   parameters are grouped, in reverse registration order (the order backward
            produces their gradients), into flat buffers of at most bucket_cap_mb (the first
            bucket 1 MiB, so the first reduction starts early); p.grad becomes a view of its
            bucket, so the reduced values are the gradients with no copy back.
  ready     a post-accumulate-grad hook per parameter counts the bucket down; a full bucket is
            handed (in bucket order, the same on every rank) to the communication thread,
            which posts MPI_Iallreduce and progresses it while backward goes on computing.
  wait      the hook of the last gradient waits for every bucket and divides by the world
            size, so p.grad holds the average when backward returns.

>>> import lamina, lamina.distributed as dist
>>> from lamina.nn.parallel import DistributedDataParallel as DDP
>>> dist.init_process_group("mpi")
>>> model = DDP(lamina.models.mlp((4, 8, 3)))
>>> model(lamina.ones(2, 4)).sum().backward()     # gradients averaged over the ranks
>>> dist.destroy_process_group()
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..tensor import Tensor, is_grad_enabled
from .module import Module

__all__ = ["DistributedDataParallel"]

_FIRST_BUCKET_BYTES = 1 << 20


class _Bucket:
    """One flat buffer of gradients all-reduced together."""

    def __init__(self, index, params, dtype):
        self.index = index
        self.params = params
        sizes = [p._data.size for p in params]
        self.flat = np.zeros(sum(sizes), dtype=dtype)
        self.views = []
        off = 0
        for p, n in zip(params, sizes):
            self.views.append(self.flat[off:off + n].reshape(p.shape))
            off += n
        self.ready = 0
        self.job = None

    def nbytes(self):
        return self.flat.nbytes


class DistributedDataParallel(Module):
    """Data parallelism across the ranks of `lamina.distributed` (PyTorch's DDP API).

    Wrapping broadcasts rank 0's parameters and buffers to every rank (so all replicas start
    equal) after checking that every rank's parameters have the same names, shapes and dtypes.
    Each backward then leaves every p.grad equal to the average over the ranks. With
    `broadcast_buffers`, rank 0's buffers are copied to all ranks before each forward.
    `lamina.compile` of a DDP-wrapped model runs the same bucketed all-reduces inside its
    schedule.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False,
                 check_reduction=False, gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        from .. import distributed as dist
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a lamina.nn.Module, got {type(module).__name__}")
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the default process group has not been "
                               "initialized; call lamina.distributed.init_process_group() first")
        if not isinstance(bucket_cap_mb, (int, float)) or isinstance(bucket_cap_mb, bool) or bucket_cap_mb <= 0:
            raise ValueError(f"bucket_cap_mb: expected a positive number, got {bucket_cap_mb!r}")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = bucket_cap_mb
        self.require_backward_grad_sync = True
        world = dist._require()
        object.__setattr__(self, "_world", world)
        object.__setattr__(self, "_comm", None)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        object.__setattr__(self, "_named_params", named)
        object.__setattr__(self, "_buckets", [])
        object.__setattr__(self, "_hooks", [])
        if world.size == 1:
            return
        self._check_same_parameters(world)
        for _, p in module.named_parameters():
            world.comm.Bcast(p._data, root=0)
        self._sync_buffers()
        object.__setattr__(self, "_comm", dist.CommThread(world.comm))
        self._build_buckets(float(bucket_cap_mb) * (1 << 20))

    # ---- setup
    def _check_same_parameters(self, world):
        mine = [(n, tuple(p.shape), p.dtype.str) for n, p in self.module.named_parameters()]
        mine += [(n, tuple(b.shape), b.dtype.str) for n, b in self.module.named_buffers()
                 if isinstance(b, Tensor)]
        every = world.comm.allgather(mine)
        ref = every[0]
        for r, theirs in enumerate(every[1:], start=1):
            if theirs == ref:
                continue
            if len(theirs) != len(ref):
                raise ValueError(f"DistributedDataParallel: rank 0 has {len(ref)} parameters and buffers, "
                                 f"rank {r} has {len(theirs)}; every rank must wrap the same model")
            for (n0, s0, d0), (n1, s1, d1) in zip(ref, theirs):
                if (n0, s0, d0) != (n1, s1, d1):
                    raise ValueError(
                        f"DistributedDataParallel: parameter {n0!r} has shape {s0} dtype {np.dtype(d0)} on "
                        f"rank 0 but {n1!r} has shape {s1} dtype {np.dtype(d1)} on rank {r}; "
                        "every rank must wrap the same model")

    def _build_buckets(self, cap_bytes):
        buckets, current, size, dtype = [], [], 0, None
        limit = min(_FIRST_BUCKET_BYTES, cap_bytes)
        # Reverse registration order: backward produces the last layer's gradients first.
        for _, p in reversed(self._named_params):
            nb = p._data.nbytes
            if current and (p.dtype != dtype or size + nb > limit):
                buckets.append(_Bucket(len(buckets), current, dtype))
                current, size, limit = [], 0, cap_bytes
            current.append(p)
            size += nb
            dtype = p.dtype
        if current:
            buckets.append(_Bucket(len(buckets), current, dtype))
        slot = {}
        for b in buckets:
            for p, view in zip(b.params, b.views):
                slot[id(p)] = (b, view)
        object.__setattr__(self, "_buckets", buckets)
        object.__setattr__(self, "_slot", slot)
        object.__setattr__(self, "_launched", 0)
        object.__setattr__(self, "_seen", set())
        hooks = [p.register_post_accumulate_grad_hook(self._grad_ready) for _, p in self._named_params]
        object.__setattr__(self, "_hooks", hooks)

    def _sync_buffers(self):
        for _, b in self.module.named_buffers():
            if isinstance(b, Tensor):
                self._world.comm.Bcast(b._data, root=0)

    # ---- the reduction, driven by gradient-ready hooks
    def _grad_ready(self, p):
        if not self.require_backward_grad_sync:
            return
        bucket, view = self._slot[id(p)]
        g = p.grad._data
        if g is not view:
            np.copyto(view, g)
            p.grad = Tensor._wrap(view)
        self._mark_ready(bucket, p)

    def _mark_ready(self, bucket, p, finish=True):
        if id(p) in self._seen:
            raise RuntimeError(f"DistributedDataParallel: parameter {self._name_of(p)!r} got its gradient "
                               "twice in one reduction (backward twice without an optimizer step? use no_sync())")
        self._seen.add(id(p))
        bucket.ready += 1
        if bucket.ready < len(bucket.params):
            return
        # Post in bucket order, whatever order the buckets filled in: all ranks must agree.
        buckets = self._buckets
        while self._launched < len(buckets) and buckets[self._launched].ready == len(buckets[self._launched].params):
            b = buckets[self._launched]
            b.job = self._comm.start_allreduce(b.flat)
            object.__setattr__(self, "_launched", self._launched + 1)
        if finish and self._launched == len(buckets):
            self._finish_reduction()

    def _finish_reduction(self):
        inv = self._world.size
        for b in self._buckets:
            b.job.wait()
            np.divide(b.flat, b.flat.dtype.type(inv), out=b.flat)
            b.job, b.ready = None, 0
        object.__setattr__(self, "_launched", 0)
        self._seen.clear()

    def _name_of(self, p):
        return next((n for n, q in self._named_params if q is p), "?")

    def _check_previous_reduction(self):
        if self._seen:
            missing = [n for n, p in self._named_params if id(p) not in self._seen]
            for b in self._buckets:
                if b.job is not None:
                    b.job.wait()
                b.job, b.ready = None, 0
            object.__setattr__(self, "_launched", 0)
            self._seen.clear()
            raise RuntimeError(
                "DistributedDataParallel: the previous backward did not produce gradients for "
                f"{missing}; every parameter that requires grad must take part in the loss "
                "(or set requires_grad=False on the unused ones before wrapping)")

    # ---- API
    def forward(self, *args, **kwargs):
        if self._buckets:
            self._check_previous_reduction()
            # Training forwards only (as PyTorch): evaluation may run on rank 0 alone.
            if self.broadcast_buffers and self.training and is_grad_enabled():
                self._sync_buffers()
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside this context backward accumulates local gradients without communicating; the
        first backward after it averages the accumulated sums.

        >>> # with ddp.no_sync():
        >>> #     ddp(x1).sum().backward()      # local only
        >>> # ddp(x2).sum().backward()          # grads = average of (g1 + g2) over ranks
        """
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def extra_repr(self):
        return f"world_size={self._world.size}, buckets={len(self._buckets)}"

    # ---- lamina.compile: the same buckets inside the compiled schedule
    def _compile_gradient_sync(self, graph, param_grads):
        """Insert the bucket all-reduces into a traced step's schedule (called by lamina.graph).

        param_grads: (parameter, gradient Value) pairs. After the node that writes a bucket's
        last gradient comes a callback that hands the bucket to the communication thread; at
        the end of backward (before the optimizer's nodes) one callback waits for all of them.
        """
        if not self._buckets:
            return
        from ..graph.ir import Node
        from ..ops._params import PyCallAttrs
        grad_of = {id(p): v for p, v in param_grads}
        for n, p in self._named_params:
            if id(p) not in grad_of:
                raise RuntimeError(f"DistributedDataParallel under lamina.compile: parameter {n!r} gets no "
                                   "gradient in the traced step; every parameter must take part in the loss")
        last_write = {}
        for i, node in enumerate(graph.nodes):
            for v in node.outputs:
                last_write[v.root().id] = i
        after = {}
        for b in self._buckets:
            vals = [grad_of[id(p)] for p in b.params]
            pos = max(last_write.get(v.root().id, -1) for v in vals)
            after.setdefault(pos, []).append(
                Node("pycall", vals, [], PyCallAttrs(fn=f"ddp_allreduce_start[{b.index}]", kind="call",
                                                     call=self._compiled_start(b, vals)),
                     src="DistributedDataParallel", effect=True))
        nodes = list(after.pop(-1, []))
        for i, node in enumerate(graph.nodes):
            nodes.append(node)
            nodes.extend(after.get(i, []))
        every = [v for b in self._buckets for v in (grad_of[id(p)] for p in b.params)]
        nodes.append(Node("pycall", every, [], PyCallAttrs(fn="ddp_allreduce_wait", kind="call",
                                                           call=self._compiled_wait),
                          src="DistributedDataParallel", effect=True))
        graph.nodes[:] = nodes
        graph.notes.append(f"DistributedDataParallel: {len(self._buckets)} bucket all-reduce(s) "
                           "started as their last gradient is written, waited for before the update")

    def _compiled_start(self, bucket, values):
        def start():
            if not self.require_backward_grad_sync:
                return
            for p, view, v in zip(bucket.params, bucket.views, values):
                if v.array is not view and not _same_memory(v.array, view):
                    np.copyto(view, v.array)
                self._mark_ready(bucket, p, finish=False)
        return start

    def _compiled_wait(self):
        if not self.require_backward_grad_sync:
            return
        if self._launched != len(self._buckets):
            raise RuntimeError("DistributedDataParallel under lamina.compile: not every bucket was started")
        self._finish_reduction()
        for b in self._buckets:
            for p, view in zip(b.params, b.views):
                g = p.grad._data if p.grad is not None else None
                if g is not view and g is not None and not _same_memory(g, view):
                    np.copyto(g, view)


def _same_memory(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.dtype == b.dtype)
