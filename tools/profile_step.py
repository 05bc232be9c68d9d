"""Per-instruction profile of a compiled training step: where the step's time goes, node by node,
and how many fork/joins the thread team ran per step.

    PYTHONPATH=python python tools/profile_step.py [--model lenet5|mlp] [--batch 64 256]
        [--threads 2] [--steps 200] [--nodes]

Compiles the model with SGD (momentum 0.9) and cross-entropy, as benchmarks/bench_compile.py
does, turns on the C++ executor's step profile (GraphProgram.set_profiling: each instruction's
wall time summed over the profiled runs; off, it costs nothing), runs `steps` steps, and prints
the time per step grouped by op, by op and layer shape, and (--nodes) per node. "outside" is
the step's wall time not spent in any instruction (Python around the run, argument checks).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import lamina  # noqa: E402
import lamina.nn.functional as F  # noqa: E402
from lamina.graph import compile  # noqa: E402
from lamina.ops._params import ConvParams, PoolParams  # noqa: E402


def node_label(n):
    """The node's op with the sizes that tell its layer apart (conv C->K HxW, gemm MxNxK...)."""
    a = n.attrs                       # the node kind's typed record (lamina/ops/_params.py)
    p = getattr(a, "params", None)
    if isinstance(p, ConvParams):
        return f"{n.op} {p.C}->{p.K} {p.H}x{p.W} k{p.KH}"
    if isinstance(p, PoolParams):
        return f"{n.op} C{p.C} {p.H}x{p.W}"
    if n.op == "gemm":
        return f"gemm {'T' if a.trans_a else 'N'}{'T' if a.trans_b else 'N'} {a.M}x{a.N}x{a.K}"
    if hasattr(a, "n"):
        return f"{n.op} n={a.n}"
    return n.op


def profile(model_name, batch, threads, steps):
    lamina.set_num_threads(threads)
    lamina.manual_seed(0)
    model = getattr(lamina.models, model_name)()
    opt = lamina.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    if model_name == "mlp":
        x = x.reshape(batch, 784)
    y = rng.integers(0, 10, batch)
    step = compile(model, F.cross_entropy, opt)
    for _ in range(10):
        step(x, y)
    plan = step._last
    ex = plan.executor
    ex.set_profiling(True)
    lamina._C._gemm_load_stats(True)   # reset the thread team's counters
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    wall = (time.perf_counter() - t0) / steps
    team = lamina._C._gemm_load_stats(True)
    rows = ex.profile(plan.graph)
    ex.set_profiling(False)
    return wall, rows, {k: v / steps for k, v in team.items() if k != "worker_late_us_mean"}


def table(title, groups, wall):
    print(f"  {title:44s} {'us/step':>9s} {'%step':>6s} {'calls':>5s}")
    for name, (t, k) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
        print(f"  {name:44s} {t * 1e6:9.1f} {100 * t / wall:6.1f} {k:5d}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lenet5", choices=["lenet5", "mlp"])
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--nodes", action="store_true", help="also one row per node")
    args = ap.parse_args(argv)
    print(f"lamina {lamina.__version__}, isa {lamina._C.isa()}, {args.threads} threads")
    for batch in args.batch:
        wall, rows, team = profile(args.model, batch, args.threads, args.steps)
        inside = sum(t for _, t in rows)
        print(f"\n{args.model} batch {batch}: {wall * 1e6:.0f} us/step wall ({batch / wall:.0f} img/s), "
              f"instructions {inside * 1e6:.0f} us, outside {(wall - inside) * 1e6:.0f} us")
        # Fork/joins per step: regions run on the team, and calls the load backoff kept on one
        # thread (each would have been a region); the master's wait at the joins.
        print(f"  thread team per step: {team['parallel_regions']:.1f} parallel regions, "
              f"{team['backoff_single_calls']:.1f} calls kept on one thread by the load backoff, "
              f"{team['join_wait_us']:.0f} us waiting at joins, {team['slow_joins']:.2f} slow joins")
        by_op, by_label = defaultdict(lambda: [0.0, 0]), defaultdict(lambda: [0.0, 0])
        for n, t in rows:
            for d, key in ((by_op, n.op), (by_label, f"{node_label(n)}  [{n.src}]")):
                d[key][0] += t
                d[key][1] += 1
        by_op["(outside the instructions)"] = [wall - inside, 0]
        table("by op", by_op, wall)
        print()
        table("by op and layer  [traced Function]", by_label, wall)
        if args.nodes:
            print()
            for i, (n, t) in enumerate(rows):
                print(f"  {i:3d} {node_label(n):44s} {t * 1e6:9.1f}  {n.src}")


if __name__ == "__main__":
    main()
