"""lamina.distributed, DistributedDataParallel, DistributedSampler and `mpiexec -n N lamina train`.

The multi-rank tests start `mpiexec -n N python tests/dist_worker.py SCENARIO...` (the
scenarios assert on every rank; a failure aborts the job with the rank named). They need
mpi4py and an `mpiexec` (pip install "lamina[dist]"); they skip only when those are absent (and fail then under CI=true).
A subprocess still running at its deadline fails its test with the Python stacks of all its
processes (see stackdump/sitecustomize.py), never hangs the suite.
"""
import collections
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

import lamina
import lamina.distributed as dist
from lamina.nn.parallel import DistributedDataParallel as DDP
from lamina.utils.data import DistributedSampler

from conftest import _missing

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "dist_worker.py")
# The ranks import the same lamina as this process (the source tree or the installed package).
LAMINA_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(lamina.__file__)))
# Its sitecustomize lets a deadline dump the stacks of the Python processes a test started.
STACKDUMP = os.path.join(HERE, "stackdump")


def _mpiexec():
    """mpiexec, or a skip (a failure under CI=true, where `make test` installs the dist extra)."""
    if not dist.is_available():
        _missing("mpi4py not installed (pip install \"lamina[dist]\")")
    exe = shutil.which("mpiexec")
    if exe is None:
        _missing("no mpiexec on PATH (pip install mpich)")
    return exe


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([STACKDUMP, LAMINA_PARENT, env.get("PYTHONPATH", "")])
    env["LAMINA_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def _environ_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            pairs = [entry.partition(b"=") for entry in f.read().split(b"\0") if entry]
    except OSError:
        return {}
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def _started_here(pid, stacks):
    """True when process `pid` is alive and was started by this run (its environment names
    `stacks`), so a recycled PID is never signalled."""
    return _environ_of(pid).get("LAMINA_TEST_STACKS") == stacks


def _shared_memory_files(pid):
    """The /dev/shm files process `pid` has mapped (MPICH's segment of this job): a killed job
    leaves them behind, so the deadline removes them once the job's processes are gone."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return {line.split(None, 5)[5].strip() for line in f
                    if len(line.split(None, 5)) == 6 and line.split(None, 5)[5].startswith("/dev/shm/")}
    except OSError:
        return set()


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:   # it ended meanwhile
        pass


def run_with_deadline(cmd, timeout, env=None):
    """Run `cmd` in its own session and return (CompletedProcess, seconds).

    Past `timeout` the test fails instead of waiting forever: every Python process the command
    started (MPI ranks included, each in its own session under mpiexec) gets SIGUSR1 and writes
    its threads' stacks (stackdump/sitecustomize.py), then all of them and the command are
    killed, and the failure shows each process's stacks.
    """
    stacks = tempfile.mkdtemp(prefix="lamina-stacks-")
    env = dict(env or _env(), LAMINA_TEST_STACKS=stacks)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
            return subprocess.CompletedProcess(cmd, proc.returncode, out, err), time.monotonic() - t0
        except subprocess.TimeoutExpired:
            pass
        pids = sorted(int(name[:-4]) for name in os.listdir(stacks) if name.endswith(".txt"))
        pids = [pid for pid in pids if _started_here(pid, stacks)]
        label = {pid: f"process {pid}" + (f" (MPI rank {_environ_of(pid)['PMI_RANK']})"
                                          if "PMI_RANK" in _environ_of(pid) else "") for pid in pids}
        for pid in pids:
            _signal(pid, signal.SIGUSR1)
        dumps = {}
        give_up = time.monotonic() + 15            # a loaded machine may take a while to schedule them
        while len(dumps) < len(pids) and time.monotonic() < give_up:
            time.sleep(0.2)
            for pid in pids:
                with open(os.path.join(stacks, f"{pid}.txt")) as f:
                    text = f.read()
                if "most recent call first" in text:
                    dumps[pid] = text
        segments = set()
        for pid in pids:
            if _started_here(pid, stacks):
                segments |= _shared_memory_files(pid)
                _signal(pid, signal.SIGKILL)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            out, err = "", "(its output pipes were still open 30 s after the kill)"
        for path in segments:      # only this job's processes had them mapped, and they are dead
            try:
                os.unlink(path)
            except OSError:
                pass
        removed = f"; removed its shared-memory files {sorted(segments)}" if segments else ""
        shown = "\n".join(f"--- {label[pid]}:\n{dumps.get(pid, '(no stack written)')}" for pid in pids)
        pytest.fail(f"{' '.join(cmd)} still running after {timeout} s; killed. Python stacks of its "
                    f"{len(pids)} Python process(es){removed}:\n{shown}\n--- stdout:\n{out[-4000:]}\n--- stderr:\n{err[-4000:]}")
    finally:
        shutil.rmtree(stacks, ignore_errors=True)


def run_mpi(n, args, timeout=120, env=None):
    """Run `mpiexec -n n args...` under `run_with_deadline`."""
    return run_with_deadline([_mpiexec(), "-n", str(n)] + args, timeout, env)


def run_scenarios(n, *names):
    proc, _ = run_mpi(n, [sys.executable, WORKER, *names])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for name in names:
        assert f"OK {name}" in proc.stdout, out


# ---------------------------------------------------------------------------- one process
@pytest.fixture
def world1():
    dist.init_process_group(backend="mpi")
    yield
    dist.destroy_process_group()


def test_import_lamina_does_not_load_mpi():
    code = "import sys, lamina, lamina.distributed, lamina.nn.parallel; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_world_of_one_outside_mpiexec(world1):
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    assert dist.get_backend() == "mpi" and dist.is_mpi_available() and not dist.is_nccl_available()
    t = lamina.tensor([1.0, -2.0])
    for op in dist.ReduceOp:
        dist.all_reduce(t, op=op)
    assert t.tolist() == [1.0, -2.0]
    out = [lamina.zeros(2)]
    dist.all_gather(out, t)
    assert out[0].tolist() == [1.0, -2.0]


def test_init_errors(world1):
    with pytest.raises(RuntimeError, match="twice"):
        dist.init_process_group("mpi")
    dist.destroy_process_group()
    with pytest.raises(ValueError, match="backend: expected 'mpi'"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="world_size: expected 1"):
        dist.init_process_group("mpi", world_size=4)
    with pytest.raises(RuntimeError, match="not been initialized"):
        dist.get_rank()
    dist.init_process_group("mpi")


def test_collective_argument_errors(world1):
    with pytest.raises(TypeError, match="tensor: expected a lamina Tensor"):
        dist.all_reduce(np.zeros(3))
    with pytest.raises(ValueError, match="C-contiguous"):
        dist.all_reduce(lamina.Tensor._wrap(np.zeros((3, 2)).T))
    with pytest.raises(TypeError, match="AVG needs a floating-point"):
        dist.all_reduce(lamina.tensor([1, 2]), op=dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match=r"src: expected a rank in \[0, 1\), got 1"):
        dist.broadcast(lamina.zeros(2), src=1)
    with pytest.raises(ValueError, match="tensor_list: expected a list of 1"):
        dist.all_gather([lamina.zeros(2), lamina.zeros(2)], lamina.zeros(2))


def test_ddp_world_of_one_is_the_plain_module(world1):
    lamina.manual_seed(0)
    model = lamina.models.mlp((4, 8, 3))
    ddp = DDP(model)
    x = lamina.randn(5, 4)
    np.testing.assert_array_equal(ddp(x).detach().numpy(), model(x).detach().numpy())
    assert list(ddp.state_dict()) == ["module." + k for k in model.state_dict()]


def test_ddp_needs_a_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        DDP(lamina.models.mlp((4, 3)))


def test_post_accumulate_grad_hook_runs_once_after_the_last_contribution():
    w = lamina.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    # w feeds three ops (fan-out): the hook sees the finished sum, once.
    ((w * w).sum() + (w * 3).sum() + w.sum()).backward()
    assert seen == [[6.0, 8.0]]
    (w * 2).sum().backward()
    assert seen[-1] == [8.0, 10.0] and len(seen) == 2
    handle.remove()
    w.sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)


# ---------------------------------------------------------------------------- communication thread
class _TimeoutIgnoringQueue:
    """A job queue whose timed `get` waits for the next put, whatever its timeout: what CPython
    3.11's SimpleQueue.get(timeout=t) does when its thread is descheduled past the deadline (the
    remaining time goes negative, which the lock reads as "forever"). Seen on a loaded machine
    in a hung 2-rank `lamina train`: gdb showed PyThread_acquire_lock_timed(microseconds=-198)
    under _queue_SimpleQueue_get_impl on one rank, both main threads waiting for the bucket."""

    def __init__(self):
        self._items = collections.deque()
        self._cond = threading.Condition()
        self.timed_gets = 0

    def put(self, item):
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def get(self, block=True, timeout=None):
        with self._cond:
            if not block:
                if not self._items:
                    raise queue.Empty
            else:
                self.timed_gets += timeout is not None
                self._cond.wait_for(lambda: self._items)
            return self._items.popleft()

    def get_nowait(self):
        return self.get(block=False)


class _FakeRequest:
    """An MPI request that completes on its `polls`-th Test()."""

    def __init__(self, polls):
        self.polls_left = polls

    def Test(self):
        self.polls_left -= 1
        return self.polls_left <= 0

    def Wait(self):
        self.polls_left = 0


class _FakeComm:
    def __init__(self, polls):
        self.polls = polls
        self.posted = []

    def Dup(self):
        return self

    def Free(self):
        pass

    def Iallreduce(self, sendbuf, recvbuf, op):
        self.posted.append(recvbuf)
        return _FakeRequest(self.polls)


def test_comm_thread_keeps_polling_while_a_reduction_is_in_flight():
    """Regression for the intermittent hang of test_cli_two_ranks: with a reduction in flight the
    communication thread must never wait on its job queue (it would stop calling MPI_Test, so
    neither this rank nor the others could finish the all-reduce that backward is waiting for)."""
    if not dist.is_available():
        _missing("mpi4py not installed (pip install \"lamina[dist]\")")

    class CommThread(dist.CommThread):
        _Queue = _TimeoutIgnoringQueue

    comm = _FakeComm(polls=5)
    thread = CommThread(comm)
    try:
        arrays = [np.full(3, float(i)) for i in range(3)]
        jobs = [thread.start_allreduce(a) for a in arrays]
        for i, job in enumerate(jobs):
            assert job.event.wait(30), (f"all-reduce {i} never completed: the communication thread stopped "
                                        "polling MPI_Test while it was in flight")
        assert [id(a) for a in comm.posted] == [id(a) for a in arrays]   # posted in queue order
        assert thread._queue.timed_gets == 0
    finally:
        thread.stop()


# ---------------------------------------------------------------------------- sampler
def test_distributed_sampler_partitions_and_reshuffles():
    data = list(range(10))
    parts = [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]   # padded to 12 by wrapping
    assert all(len(DistributedSampler(data, 3, r)) == 4 for r in range(3))
    dropped = [list(DistributedSampler(data, 3, r, shuffle=False, drop_last=True)) for r in range(3)]
    assert dropped == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    s = [DistributedSampler(data, 2, r, shuffle=True, seed=5) for r in range(2)]
    e0 = [list(x) for x in s]
    assert sorted(e0[0] + e0[1]) == data
    for x in s:
        x.set_epoch(1)
    e1 = [list(x) for x in s]
    assert sorted(e1[0] + e1[1]) == data and e1 != e0
    for x in s:
        x.set_epoch(0)
    assert [list(x) for x in s] == e0          # the order depends on (seed, epoch) only
    with pytest.raises(ValueError, match="rank: expected a value in \\[0, 2\\]"):
        DistributedSampler(data, num_replicas=3, rank=3)


# ---------------------------------------------------------------------------- under mpiexec
def test_equivalence_two_ranks_sgd_adam_eager_compiled():
    run_scenarios(2, "equivalence", "compiled_schedule_order", "no_sync", "shape_mismatch", "collectives")


def test_collectives_three_ranks():
    run_scenarios(3, "collectives")


@pytest.mark.parametrize("scenario", ["raise_on_rank1", "die_on_rank1"])
def test_failing_rank_ends_the_job(scenario):
    proc, seconds = run_mpi(2, [sys.executable, WORKER, scenario], timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert seconds < 60
    if scenario == "raise_on_rank1":
        assert "rank 1 of 2 raised RuntimeError" in out and "deliberate failure on rank 1" in out, out
    else:
        assert "BAD TERMINATION" in out or "signal 9" in out or "Killed" in out, out


def test_a_hung_job_fails_with_every_rank_stack():
    """The deadline of run_mpi: a job that never ends fails its test, showing each rank's stack."""
    with pytest.raises(pytest.fail.Exception) as failure:
        run_mpi(2, [sys.executable, WORKER, "hang_on_rank1"], timeout=20)
    text = str(failure.value)
    assert "still running after 20 s" in text and "2 Python process(es)" in text, text
    assert text.count("most recent call first") >= 2, text     # both ranks, every thread
    assert "in hang_on_rank1" in text, text


def test_cli_two_ranks(tmp_path, data_root):
    out_dir = tmp_path / "run"
    args = [sys.executable, "-m", "lamina", "train", "--model", "mlp", "--epochs", "1",
            "--limit-train", "4000", "--limit-test", "500", "--batch-size", "32", "--no-progress", "--no-download",
            "--data", data_root, "--out", str(out_dir)]
    proc, _ = run_mpi(2, args, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert proc.stdout.count("test accuracy:") == 1, out
    assert "data-parallel on 2 ranks" in proc.stdout and "rank 1: " in proc.stdout, out
    assert (out_dir / "model.safetensors").exists()
    hist = json.loads((out_dir / "history.json").read_text())
    assert len(hist) == 1 and hist[0]["test_acc"] > 0.5
    # --resume with another number of ranks: the single process continues at epoch 1.
    args2 = args[:]
    args2[args2.index("--epochs") + 1] = "2"
    proc2, _ = run_with_deadline(args2 + ["--resume", str(out_dir / "model.safetensors")], timeout=180)
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    assert "resumed from" in proc2.stdout and "epoch 2/2" in proc2.stdout
    assert len(json.loads((out_dir / "history.json").read_text())) == 2
