"""Training steps/s: eager lamina vs compiled lamina (lamina.graph) vs PyTorch, same thread count.

    PYTHONPATH=python python3 benchmarks/bench_compile.py [--threads 2] [--rounds 5] [--memory]
        [--cpu-time] [--only mlp|lenet5] [--no-speed] [--overhead]

--cpu-time: one thread for every library and process CPU time (time.process_time) per step, the
stable figure on a shared, loaded machine (wall time measures the other processes too).
--overhead: Python time per compiled step around the C++ run (batch-1 MLP), and its profile.

Each case builds identical models (same seed), warms up, then times `rounds` rounds of a fixed
number of steps and reports the median steps/s and images/s. Before timing, one compiled step
is checked against one eager step (same loss) outside the timed region. --memory also reports
the peak memory of one LeNet-5 step at batch 256 (tracemalloc; NumPy reports its buffers to it)
and the compiled plan's arena + parameter + gradient + optimizer-state bytes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lamina_path  # noqa: E402

lamina_path.use_lamina()  # the source tree's dev build if it has one, else the installed package
import lamina  # noqa: E402
import lamina.nn.functional as F  # noqa: E402
from lamina.graph import compile


_CLOCK = time.perf_counter
_STAT = statistics.median


def _time_interleaved(fns, steps, rounds):
    """Per-step time of each fn, their rounds interleaved (a burst of load on the shared machine
    hits all of them alike); the --stat of the rounds (median, or min)."""
    for fn in fns:
        for _ in range(3):
            fn()
    per = [[] for _ in fns]
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            t0 = _CLOCK()
            for _ in range(steps):
                fn()
            per[k].append((_CLOCK() - t0) / steps)
    return [_STAT(p) for p in per]


def _time(fn, steps, rounds):
    for _ in range(3):
        fn()
    per = []
    for _ in range(rounds):
        t0 = _CLOCK()
        for _ in range(steps):
            fn()
        per.append((_CLOCK() - t0) / steps)
    return _STAT(per)


def _lamina_case(model_name, batch):
    lamina.manual_seed(0)
    model = getattr(lamina.models, model_name)()
    opt = lamina.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return model, opt, x, y


def _eager_step(model, opt, x, y):
    """One eager lamina training step on the fixed batch (x, y), as a no-argument callable."""
    xt, yt = lamina.from_numpy(x), lamina.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
    return step


def _torch_step(model_name, batch, threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    import torch_ref
    nn = torch.nn
    net = torch_ref.model(model_name)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    lossf = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = lossf(net(x), y)
        loss.backward()
        opt.step()
    return step


def bench(cases, threads, rounds):
    lamina.set_num_threads(threads)
    clock = "process CPU time" if _CLOCK is time.process_time else "wall time"
    print(f"lamina {lamina.__version__}, {threads} threads, isa {lamina._C.isa()}; {clock}, "
          f"{_STAT.__name__} of {rounds} interleaved rounds")
    print(f"{'model':6s} {'batch':>5s} | {'eager st/s':>10s} {'compiled':>10s} {'torch':>10s} | "
          f"{'comp img/s':>10s} {'torch img/s':>11s} | {'comp/eager':>10s} {'comp/torch':>10s}")
    rows = []
    for model_name, batch in cases:
        steps = max(5, min(200, 4096 // batch)) if model_name == "mlp" else max(3, 1024 // batch)
        model, opt, x, y = _lamina_case(model_name, batch)
        # Correctness outside the timed region: one compiled step == one eager step.
        m2, o2, _, _ = _lamina_case(model_name, batch)
        cstep = compile(m2, F.cross_entropy, o2)
        cstep(x, y)
        ref_model, ref_opt, _, _ = _lamina_case(model_name, batch)
        ref_opt.zero_grad()
        ref = F.cross_entropy(ref_model(lamina.from_numpy(x)), lamina.from_numpy(y))
        ref.backward()
        ref_opt.step()
        ref_opt.zero_grad()
        l_eager = F.cross_entropy(ref_model(lamina.from_numpy(x)), lamina.from_numpy(y)).item()
        l_comp = cstep(x, y)
        assert abs(l_eager - l_comp) <= 1e-5 * max(1.0, abs(l_eager)), (l_eager, l_comp)

        eager = _eager_step(model, opt, x, y)
        tstep = _torch_step(model_name, batch, threads)
        fns = [eager, lambda: cstep(x, y)] + ([tstep] if tstep else [])
        te, tc, *rest = _time_interleaved(fns, steps, rounds)
        tt = rest[0] if rest else float("nan")
        rows.append((model_name, batch, te, tc, tt))
        print(f"{model_name:6s} {batch:5d} | {1 / te:10.0f} {1 / tc:10.0f} {1 / tt:10.0f} | "
              f"{batch / tc:10.0f} {batch / tt:11.0f} | {te / tc:10.2f} {tt / tc:10.2f}", flush=True)
    return rows


def memory(batch=256):
    """Peak bytes allocated during one LeNet-5 step (after warm-up), eager vs compiled."""
    model, opt, x, y = _lamina_case("lenet5", batch)
    eager = _eager_step(model, opt, x, y)

    m2, o2, _, _ = _lamina_case("lenet5", batch)
    step = compile(m2, F.cross_entropy, o2)
    for _ in range(2):
        eager()
        step(x, y)
    out = {}
    for name, fn in (("eager", eager), ("compiled", lambda: step(x, y))):
        tracemalloc.start()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out[name] = peak
    params = sum(p.detach().numpy().nbytes for p in m2.parameters())
    g = step.graph
    print(f"LeNet-5 batch {batch}: parameters {params / 1e6:.2f} MB (+ same for grads, momentum)")
    print(f"  eager    peak allocated during a step: {out['eager'] / 1e6:.2f} MB (activations, grads, temporaries)")
    print(f"  compiled peak allocated during a step: {out['compiled'] / 1e6:.2f} MB (outside the arena: "
          f"callback temporaries of ops without a C++ node; callbacks: {g.callbacks or 'none'})")
    print(f"  compiled arena (planned, reused): {g.arena_bytes / 1e6:.2f} MB; "
          f"arena + parameters = {(g.arena_bytes + params) / 1e6:.2f} MB")
    print(f"  compiled total in use per step  = arena + callback peak + params = "
          f"{(g.arena_bytes + out['compiled'] + params) / 1e6:.2f} MB vs eager peak + params = "
          f"{(out['eager'] + params) / 1e6:.2f} MB")
    return out, g.arena_bytes, params


def overhead(steps=2000):
    """Per-step time of the batch-1 MLP compiled step, split into the C++ run and the rest."""
    model, opt, x, y = _lamina_case("mlp", 1)
    step = compile(model, F.cross_entropy, opt)
    step(x, y)
    step(x, y)
    plan = step._last
    prog, scalars = plan.executor.prog, plan.scalars
    inputs = [x, y]
    t_full = _time(lambda: step(x, y), steps, 5)
    t_run = _time(lambda: prog.run(inputs, scalars, None), steps, 5)
    print(f"MLP batch 1: compiled step {t_full * 1e6:.1f} us, of which GraphProgram.run {t_run * 1e6:.1f} us "
          f"-> Python around it {(t_full - t_run) * 1e6:.1f} us")
    import cProfile
    import pstats
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(steps):
        step(x, y)
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(8)


def main():
    global _CLOCK, _STAT
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--cpu-time", action="store_true", help="1 thread, process CPU time")
    ap.add_argument("--no-speed", action="store_true", help="skip the steps/s table")
    ap.add_argument("--overhead", action="store_true", help="Python time around the C++ run (batch 1)")
    ap.add_argument("--stat", choices=["median", "min"], default="median",
                    help="min: the least-disturbed round, for a machine shared with other processes")
    ap.add_argument("--only", choices=["mlp", "lenet5"], default=None)
    args = ap.parse_args()
    _STAT = min if args.stat == "min" else statistics.median
    if args.cpu_time:
        _CLOCK = time.process_time
        args.threads = 1
    print(lamina_path.host_line())
    cases = [("mlp", b) for b in (1, 16, 64, 256)] + [("lenet5", b) for b in (64, 256)]
    if args.only:
        cases = [c for c in cases if c[0] == args.only]
    if not args.no_speed:
        bench(cases, args.threads, args.rounds)
    if args.memory:
        memory()
    if args.overhead:
        lamina.set_num_threads(1)
        overhead()


if __name__ == "__main__":
    main()
