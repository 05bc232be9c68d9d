"""Data-parallel training speed: 1 process x T threads against N ranks x T/N threads (MPI).

    python benchmarks/bench_dist.py                 # LeNet-5 and the MLP, global batch 64
    python benchmarks/bench_dist.py --ranks 2 --steps 40 --batch 128

For each model it reports images/s of a compiled training step (forward, backward, SGD with
momentum) at the same global batch: one process with all the threads, then `mpiexec -n N`
ranks with batch/N each under DistributedDataParallel. Under mpiexec it also measures
  allreduce   a blocking MPI_Allreduce of the model's gradient buckets, per step;
  exposed     step time with DDP minus step time under no_sync() (no communication);
  hidden      1 - exposed / allreduce: the share of the all-reduce overlapped with backward.
Inputs are synthetic (random images, random labels): speed does not depend on the values.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lamina_path  # noqa: E402

lamina_path.use_lamina()  # the source tree's dev build if it has one, else the installed package


def _model(name):
    import lamina
    lamina.manual_seed(0)
    return lamina.models.lenet5() if name == "lenet5" else lamina.models.mlp()


def _data(batch, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, batch)


def _time_steps(step, x, y, steps, warmup=3):
    for _ in range(warmup):
        step(x, y)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    return (time.perf_counter() - t0) / steps


def run_single(model_name, batch, steps):
    import lamina
    model = _model(model_name)
    opt = lamina.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    step = lamina.compile(model, lamina.nn.functional.cross_entropy, opt)
    x, y = _data(batch, 0)
    t = _time_steps(step, x, y, steps)
    return {"step_s": t, "images_per_s": batch / t}


def run_rank(model_name, batch, steps):
    """One rank of the mpiexec run: batch is the global batch."""
    import lamina
    import lamina.distributed as dist
    from lamina.nn.parallel import DistributedDataParallel as DDP
    from mpi4py import MPI
    rank, size = dist.get_rank(), dist.get_world_size()
    ddp = DDP(_model(model_name))
    opt = lamina.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    step = lamina.compile(ddp, lamina.nn.functional.cross_entropy, opt)
    x, y = _data(batch // size, 1 + rank)
    dist.barrier()
    t_ddp = _time_steps(step, x, y, steps)
    with ddp.no_sync():
        dist.barrier()
        t_local = _time_steps(step, x, y, steps)
    comm = dist._world.comm
    flats = [b.flat.copy() for b in ddp._buckets]
    for f in flats:   # warm-up
        comm.Allreduce(MPI.IN_PLACE, f)
    comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        for f in flats:
            comm.Allreduce(MPI.IN_PLACE, f)
    t_ar = (time.perf_counter() - t0) / steps
    # The slowest rank sets the pace: report the maximum over ranks.
    t_ddp, t_local, t_ar = (comm.allreduce(v, op=MPI.MAX) for v in (t_ddp, t_local, t_ar))
    exposed = max(t_ddp - t_local, 0.0)
    grad_bytes = sum(f.nbytes for f in flats)
    return {"step_s": t_ddp, "images_per_s": batch / t_ddp, "local_step_s": t_local,
            "allreduce_s": t_ar, "exposed_s": exposed,
            "hidden_share": min(max(1.0 - exposed / t_ar, 0.0), 1.0) if t_ar > 0 else float("nan"),
            "gradient_bytes": grad_bytes, "buckets": len(flats)}


def link_model(comm, reps=200):
    """Latency (an 8-byte Allreduce) and bus bandwidth (a 4 MiB float32 Allreduce moves
    2(N-1)/N of its bytes per rank, as a ring does) of this job's MPI transport."""
    from mpi4py import MPI
    n = comm.Get_size()
    out = {}
    for name, count, k in (("latency_s", 2, reps), ("big_s", 1 << 20, max(reps // 20, 5))):
        buf = np.ones(count, np.float32)
        comm.Allreduce(MPI.IN_PLACE, buf)
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(k):
            comm.Allreduce(MPI.IN_PLACE, buf)
        out[name] = comm.allreduce((time.perf_counter() - t0) / k, op=MPI.MAX)
    big_bytes = 4 * (1 << 20)
    out["bus_bytes_per_s"] = 2 * (n - 1) / n * big_bytes / max(out["big_s"] - out["latency_s"], 1e-12)
    return out


def worker(args):
    import lamina
    import lamina.distributed as dist
    dist.init_process_group("mpi")
    lamina.set_num_threads(args.threads)
    results = {m: run_rank(m, args.batch, args.steps) for m in args.models}
    results["link"] = link_model(dist._world.comm)
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(results), flush=True)
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="threads of the single process (default: --ranks)")
    ap.add_argument("--batch", type=int, default=64, help="global batch (split over the ranks)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--models", nargs="+", default=["lenet5", "mlp"], choices=["lenet5", "mlp"])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    import lamina
    print(lamina_path.host_line())
    threads = args.threads or args.ranks
    per_rank_threads = max(1, threads // args.ranks)
    lamina.set_num_threads(threads)
    single = {m: run_single(m, args.batch, args.steps) for m in args.models}
    exe = shutil.which("mpiexec")
    if exe is None:
        sys.exit("bench_dist: no mpiexec on PATH (pip install \"lamina[dist]\")")
    cmd = [exe, "-n", str(args.ranks), sys.executable, os.path.abspath(__file__), "--worker",
           "--threads", str(per_rank_threads), "--batch", str(args.batch), "--steps", str(args.steps),
           "--models", *args.models]
    env = dict(os.environ, LAMINA_NUM_THREADS=str(per_rank_threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"bench_dist: mpiexec run failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    multi = json.loads(line[len("RESULT "):])
    print(f"global batch {args.batch}; 1 process x {threads} threads vs {args.ranks} ranks x "
          f"{per_rank_threads} thread(s); compiled step, SGD momentum; {args.steps} timed steps")
    print(f"{'model':8} {'1 proc img/s':>13} {'DDP img/s':>10} {'speedup':>8} {'grad KiB':>9} "
          f"{'allreduce ms':>13} {'exposed ms':>11} {'hidden':>7}")
    for m in args.models:
        s, d = single[m], multi[m]
        print(f"{m:8} {s['images_per_s']:13.0f} {d['images_per_s']:10.0f} "
              f"{d['images_per_s'] / s['images_per_s']:8.2f} {d['gradient_bytes'] / 1024:9.0f} "
              f"{1e3 * d['allreduce_s']:13.3f} {1e3 * d['exposed_s']:11.3f} {100 * d['hidden_share']:6.0f}%")
    link = multi["link"]
    print(f"MPI link: Allreduce latency {1e6 * link['latency_s']:.1f} us, 4 MiB in "
          f"{1e3 * link['big_s']:.2f} ms = bus bandwidth {link['bus_bytes_per_s'] / 1e9:.2f} GB/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"single": single, "ddp": multi, "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()
