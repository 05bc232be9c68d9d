"""lamina.distributed, DistributedDataParallel, DistributedSampler and `mpiexec -n N lamina train`.

The multi-rank tests start `mpiexec -n N python tests/dist_worker.py SCENARIO...` (the
scenarios assert on every rank; a failure aborts the job with the rank named). They need
mpi4py and an `mpiexec` (pip install "lamina[dist]"); they skip only when those are absent (and fail then under CI=true).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
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
    env["PYTHONPATH"] = os.pathsep.join([LAMINA_PARENT, env.get("PYTHONPATH", "")])
    env["LAMINA_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def run_mpi(n, args, timeout=120, env=None):
    """Run `mpiexec -n n args...`; past `timeout`, kill the launcher and its ranks (own session)."""
    cmd = [_mpiexec(), "-n", str(n)] + args
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or _env(), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} still running after {timeout} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), time.monotonic() - t0


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
    proc2 = subprocess.run(args2[0:1] + args2[1:] + ["--resume", str(out_dir / "model.safetensors")],
                           capture_output=True, text=True, timeout=180, env=_env())
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    assert "resumed from" in proc2.stdout and "epoch 2/2" in proc2.stdout
    assert len(json.loads((out_dir / "history.json").read_text())) == 2
