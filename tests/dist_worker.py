"""Scenarios that tests/test_distributed.py runs under `mpiexec -n N python tests/dist_worker.py NAME`.

Each scenario asserts on every rank; a failed assertion is an uncaught exception, which
lamina.distributed turns into an MPI abort (non-zero exit, message naming the rank). Rank 0
prints "OK <name>" when a scenario passed on all ranks.
"""
import os
import sys

import numpy as np

import lamina  # the copy the test process imported: test_distributed puts it on PYTHONPATH
import lamina.distributed as dist
from lamina.nn.parallel import DistributedDataParallel as DDP

F = lamina.nn.functional


def small_convnet():
    """Conv + pool + linear: several buckets with a tiny bucket_cap_mb, all compiled natively."""
    nn = lamina.nn
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3 * 3 * 3, 16), nn.Tanh(), nn.Linear(16, 4))


def make_model(kind, seed):
    lamina.manual_seed(seed)
    m = lamina.models.mlp((12, 16, 8, 4)) if kind == "mlp" else small_convnet()
    return m.double()


def make_optimizer(kind, params):
    if kind == "sgd":
        return lamina.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    return lamina.optim.Adam(params, lr=0.01)


def batches(kind, steps, batch, seed=7):
    rng = np.random.default_rng(seed)
    shape = (batch, 12) if kind == "mlp" else (batch, 1, 8, 8)
    return [(rng.standard_normal(shape), rng.integers(0, 4, batch)) for _ in range(steps)]


def train(model, opt, data, compiled):
    if compiled:
        step = lamina.compile(model, F.cross_entropy, opt)
        for x, y in data:
            step(x, y)
        return step
    for x, y in data:
        opt.zero_grad()
        F.cross_entropy(model(lamina.from_numpy(x)), lamina.from_numpy(y)).backward()
        opt.step()
    return None


def params_of(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def assert_ranks_identical(arrays, what):
    gathered = dist._world.comm.allgather([a.tobytes() for a in arrays])
    for r, theirs in enumerate(gathered):
        assert theirs == gathered[0], f"{what}: rank {r}'s parameters differ bitwise from rank 0's"


def equivalence():
    """2 ranks x batch B/2 == 1 process x batch B, for SGD momentum and Adam, eager and compiled,
    with rank 1 starting from other weights (DDP's broadcast must fix that)."""
    rank, size = dist.get_rank(), dist.get_world_size()
    steps, batch = 4, 8
    for model_kind in ("mlp", "conv"):
        for opt_kind in ("sgd", "adam"):
            for compiled in (False, True):
                what = f"{model_kind}/{opt_kind}/{'compiled' if compiled else 'eager'}"
                data = batches(model_kind, steps, batch)
                ref = make_model(model_kind, 0)
                train(ref, make_optimizer(opt_kind, ref.parameters()), data, compiled=False)
                expected = params_of(ref)

                local = make_model(model_kind, 0 if rank == 0 else 1000 + rank)
                ddp = DDP(local, bucket_cap_mb=0.0005)      # ~500 bytes: several buckets
                assert len(ddp._buckets) > 1, what
                opt = make_optimizer(opt_kind, ddp.parameters())
                shard = batch // size
                mine = [(x[rank * shard:(rank + 1) * shard], y[rank * shard:(rank + 1) * shard])
                        for x, y in data]
                step = train(ddp, opt, mine, compiled)
                if step is not None:
                    assert step.traces == 1, f"{what}: traced {step.traces} times"
                    text = str(step.graph)
                    assert "ddp_allreduce_start" in text and "ddp_allreduce_wait" in text, what
                got = params_of(local)
                for e, g in zip(expected, got):
                    np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-12, err_msg=what)
                assert_ranks_identical(got, what)
                dist.barrier()


def compiled_schedule_order():
    """In the compiled schedule each bucket's start follows its last gradient write and the wait
    precedes every optimizer node."""
    model = DDP(make_model("mlp", 0), bucket_cap_mb=0.0005)
    opt = make_optimizer("sgd", model.parameters())
    step = lamina.compile(model, F.cross_entropy, opt)
    for x, y in batches("mlp", 2, 4):
        step(x, y)
    ops = [n.attrs.fn if n.op == "pycall" else n.op for n in step.graph.nodes]
    starts = [i for i, o in enumerate(ops) if str(o).startswith("ddp_allreduce_start")]
    wait = ops.index("ddp_allreduce_wait")
    updates = [i for i, n in enumerate(step.graph.nodes) if n.op == "sgd"]
    assert len(starts) == len(model._buckets) and max(starts) < wait < min(updates), ops
    # Overlap: the first bucket is started before backward's last kernel node.
    backward_kernels = [i for i, n in enumerate(step.graph.nodes[:wait]) if n.op in ("gemm", "bias_grad_rows")]
    assert starts[0] < max(backward_kernels), ops


def no_sync():
    """Two micro-batches, the first under no_sync(): p.grad == average over ranks of the summed
    local gradients."""
    rank, size = dist.get_rank(), dist.get_world_size()
    data = batches("mlp", 2 * size, 4)
    ref = make_model("mlp", 0)
    for x, y in data:
        F.cross_entropy(ref(lamina.from_numpy(x)), lamina.from_numpy(y)).backward()
    expected = [p.grad.numpy() / size for p in ref.parameters()]
    ddp = DDP(make_model("mlp", 0))
    (x0, y0), (x1, y1) = data[2 * rank], data[2 * rank + 1]
    with ddp.no_sync():
        F.cross_entropy(ddp(lamina.from_numpy(x0)), lamina.from_numpy(y0)).backward()
    F.cross_entropy(ddp(lamina.from_numpy(x1)), lamina.from_numpy(y1)).backward()
    for e, p in zip(expected, ddp.parameters()):
        np.testing.assert_allclose(p.grad.data, e, rtol=1e-9, atol=1e-12)


def shape_mismatch():
    """Ranks whose models differ in parameter shapes get a clear error at wrap time."""
    lamina.manual_seed(0)
    width = 16 if dist.get_rank() == 0 else 17
    model = lamina.models.mlp((12, width, 4)).double()
    try:
        DDP(model)
    except ValueError as e:
        msg = str(e)
        assert "fc1.weight" in msg and "rank 1" in msg and "(16, 12)" in msg and "(17, 12)" in msg, msg
    else:
        raise AssertionError("DDP accepted models of different shapes")


def collectives():
    """all_reduce (every op), broadcast, reduce, all_gather, barrier on the tensors' own buffers."""
    rank, size = dist.get_rank(), dist.get_world_size()
    base = np.arange(6, dtype=np.float64).reshape(2, 3)
    ranks = np.arange(size)
    for op, want in ((dist.ReduceOp.SUM, sum(base + r for r in ranks)),
                     (dist.ReduceOp.AVG, sum(base + r for r in ranks) / size),
                     (dist.ReduceOp.MAX, base + size - 1), (dist.ReduceOp.MIN, base)):
        t = lamina.from_numpy(base + rank)
        buf = t.numpy()
        assert dist.all_reduce(t, op=op) is None
        assert t.detach().numpy() is buf, "all_reduce replaced the buffer instead of writing it in place"
        np.testing.assert_allclose(t.data, want, rtol=0, atol=1e-12, err_msg=str(op))
    ti = lamina.tensor([rank + 1, 10 * (rank + 1)])
    dist.all_reduce(ti)
    assert ti.tolist() == [size * (size + 1) // 2, 10 * size * (size + 1) // 2], ti.tolist()
    t = lamina.tensor(np.full(4, float(rank)), dtype=lamina.float32)
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    assert t.tolist() == [float(sum(ranks))] * 4
    src = size - 1
    t = lamina.from_numpy(np.full((3,), 100.0 + rank))
    dist.broadcast(t, src=src)
    assert t.tolist() == [100.0 + src] * 3, t.tolist()
    t = lamina.from_numpy(np.full((2,), 1.0 + rank))
    dist.reduce(t, dst=1, op=dist.ReduceOp.SUM)
    if rank == 1:
        assert t.tolist() == [float(sum(ranks + 1))] * 2
    else:
        assert t.tolist() == [1.0 + rank] * 2
    out = [lamina.zeros(2, dtype=lamina.float64) for _ in range(size)]
    dist.all_gather(out, lamina.from_numpy(np.array([rank, -rank], dtype=np.float64)))
    assert [o.tolist() for o in out] == [[r, -r] for r in ranks], [o.tolist() for o in out]
    objs = [None] * size
    dist.all_gather_object(objs, {"rank": rank})
    assert objs == [{"rank": r} for r in ranks]
    dist.barrier()
    # Bad input: clear errors, no MPI call made.
    for bad, exc in ((lambda: dist.broadcast(lamina.zeros(2), src=size), ValueError),
                     (lambda: dist.all_reduce(lamina.Tensor._wrap(np.zeros((4, 4)).T)), ValueError),
                     (lambda: dist.all_reduce(lamina.zeros(2), op="sum"), TypeError),
                     (lambda: dist.all_gather([lamina.zeros(2)], lamina.zeros(2)), ValueError)):
        try:
            bad()
        except exc:
            pass
        else:
            raise AssertionError("bad input accepted")


def raise_on_rank1():
    """Rank 1 raises while rank 0 waits in a collective: the job must end, naming rank 1."""
    if dist.get_rank() == 1:
        raise RuntimeError("deliberate failure on rank 1")
    dist.barrier()


def die_on_rank1():
    """Rank 1 is killed (SIGKILL) while rank 0 waits in a collective."""
    import signal
    if dist.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.barrier()


def hang_on_rank1():
    """Rank 1 waits forever while rank 0 waits in a collective (the test's deadline must end it)."""
    import threading
    if dist.get_rank() == 1:
        threading.Event().wait()
    dist.barrier()


SCENARIOS = {f.__name__: f for f in (equivalence, compiled_schedule_order, no_sync, shape_mismatch,
                                     collectives, raise_on_rank1, die_on_rank1, hang_on_rank1)}


def main(names):
    lamina.set_num_threads(1)
    dist.init_process_group(backend="mpi")
    for name in names:
        SCENARIOS[name]()
        dist.barrier()
        if dist.get_rank() == 0:
            print(f"OK {name}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
