"""One report: every lamina kernel family against NumPy (and PyTorch), plus end-to-end training.

    python benchmarks/report.py --quick                    # < 3 minutes
    python benchmarks/report.py                            # full profile
    python benchmarks/report.py --quick --json new.json --compare old.json
    python benchmarks/report.py --from-json new.json --compare old.json   # no measuring
    python benchmarks/report.py --smoke                    # tiny shapes: checks the tooling (< 30 s)

Run from the repository root. For every case: each library runs once and its result is checked
against the NumPy reference (benchmarks/numpy_ref.py, float64 where it matters) BEFORE timing; then
lamina, NumPy and PyTorch are timed round-robin (so background load hits all alike; at 2 threads
in blocks after an idle pause, so one pool's spinning workers do not slow the next) at the same
thread count, and the median of the repetitions is reported, for 1 and 2 threads. Speedups are
other_time / lamina_time (> 1: lamina faster). Targets (PASS/BELOW per row): every kernel >= 1.0x
NumPy, elementwise activations >= 2x, GEMM >= 0.9x NumPy on large squares (n >= 512), conv2d and
training throughput >= 1.0x PyTorch.

Memory bandwidth: the best (fastest) of repeated 16M-float32 `np.copyto` calls (lamina has no copy
kernel); elementwise rows on 16M elements print the fraction of it they reach
((bytes read + written) / time / bandwidth).

End to end: MNIST training with SGD (lr 0.01, momentum 0.9) from identical initial weights: MLP
784-300-100-10 and LeNet-5, batch 64 and 256, for lamina eager, lamina compiled
(`lamina.compile(model, loss_fn, optimizer)`) and PyTorch, each config in a fresh subprocess so
`ru_maxrss` (peak RSS) is per config. The first 3 batches are warm-up (and their losses are checked
equal across the three); images/s is over the rest of one epoch (--quick: the median of 7 windows of
50 batches). The three processes run side by side: each warms up, then their timed windows take
turns (after an idle pause each), so a slow spell of the shared host falls on all three alike.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REGRESSION = 1.10        # new/old lamina time above this is flagged
WARMUP_BATCHES = 3       # end-to-end batches before the timed ones (the compiled step traces on the first)
E2E_PAUSE_S = 0.2        # idle before each end-to-end window: the last library's pool threads stop spinning


def _reexec_without_openblas_overrides():
    """OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it loads; forced values can pick a
    slower kernel than the CPU's own. Re-run this script with them unset (before numpy loads)."""
    found = [k for k in OPENBLAS_VARS if k in os.environ]
    if not found:
        return
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    env["_LAMINA_REPORT_UNSET"] = ",".join(f"{k}={os.environ[k]}" for k in found)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def _add_paths():
    sys.path.insert(0, HERE)  # numpy_ref, torch_ref, bench_conv, bench_gemm, lamina_path
    import lamina_path
    lamina_path.use_lamina()  # the source tree's dev build if it has one, else the installed package


# ============================================================================================
# Profiles and case lists
# ============================================================================================

PROFILES = {
    # budget: seconds of timing per case and thread count; reps clamp the repetitions.
    "smoke": dict(budget=0.01, min_reps=3, max_reps=5, bw_n=1 << 20, e2e_batches=5, e2e_windows=1),
    # quick: 5 windows of 50 batches, the median window's rate. One window of 50 LeNet-5 batches at
    # b=64 is ~0.1 s for lamina, short enough that one stolen time slice moved the ratio by 30%.
    "quick": dict(budget=0.25, min_reps=5, max_reps=50, bw_n=1 << 24, e2e_batches=50, e2e_windows=7),
    "full": dict(budget=1.0, min_reps=7, max_reps=200, bw_n=1 << 24, e2e_batches=None, e2e_windows=1),  # None: one epoch
}


def gemm_shapes(profile):
    import bench_gemm as bg  # the GEMM benchmark's network shapes (MLP, LeNet im2col)
    if profile == "smoke":
        return [("square 64", 64, 64, 64, False, False), ("mlp fwd 64x784x300 NN", 64, 784, 300, False, False)]
    squares = [256, 1024] if profile == "quick" else [256, 512, 1024, 2048]
    out = [(f"square {n}", n, n, n, False, False) for n in squares]
    if profile == "quick":
        for name, M, K, N in bg.NETWORK[:2] + bg.NETWORK[4:]:
            out.append((name + " NN", M, K, N, False, False))
    else:
        for name, M, K, N in bg.NETWORK:
            out += list(bg.variants(name, M, K, N))
    return out


def conv_shapes(profile):
    import bench_conv as bc
    if profile == "smoke":
        return [("C1 N=8 1x28x28->6@5x5 p2", 8, 1, 28, 28, 6, 5, 2)]
    return bc.CONV_CASES[:4] if profile == "quick" else bc.CONV_CASES


def pool_shapes(profile):
    import bench_conv as bc
    if profile == "smoke":
        return [("pool 8x6x28x28", (8, 6, 28, 28))]
    return bc.POOL_CASES[:1] if profile == "quick" else bc.POOL_CASES


def activation_sizes(profile):
    # 64K: cache-resident, so the row measures the kernels' arithmetic; 1M, 16M: past L2, where
    # a 1-thread elementwise kernel runs at memory speed (np.copyto's) once its math is cheap.
    return {"smoke": [1 << 20], "quick": [1 << 16, 1 << 24], "full": [1 << 16, 1 << 20, 1 << 24]}[profile]


def loss_shapes(profile):
    return [(256, 10)] if profile == "smoke" else [(256, 10), (4096, 1000)]


def optim_sizes(profile):
    return {"smoke": [1 << 20], "quick": [1 << 24], "full": [1 << 20, 1 << 24]}[profile]


def e2e_configs(profile):
    if profile == "smoke":
        return [("mlp", 64)]
    return [("mlp", 64), ("mlp", 256), ("lenet5", 64), ("lenet5", 256)]


# ============================================================================================
# Kernel cases: each builds its inputs once; check() runs every library once and compares with
# the NumPy reference (raises AssertionError); fns are the timed callables.
# ============================================================================================

class Case:
    def __init__(self, family, name, fns, check, target, flop=None, nbytes=None, n=None):
        self.family, self.name, self.fns, self.check = family, name, fns, check
        self.target = target    # list of (against, minimum speedup)
        self.flop, self.nbytes, self.n = flop, nbytes, n


def _lazy(fn):
    """Compute a reference once, on first use."""
    box = []

    def get():
        if not box:
            box.append(fn())
        return box[0]
    return get


def gemm_cases(profile, L):
    np, R, _C, torch = L["np"], L["R"], L["_C"], L["torch"]
    rng = np.random.default_rng(0)
    for name, M, K, N, ta, tb in gemm_shapes(profile):
        a = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
        b = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
        outs = {lib: np.full((M, N), np.nan, np.float32) for lib in ("lamina", "numpy", "torch")}
        fns = {"lamina": (lambda a=a, b=b, c=outs["lamina"], ta=ta, tb=tb: _C.gemm(a, b, c, ta, tb)),  # positional, as ops.py calls it
               "numpy": (lambda a=a, b=b, c=outs["numpy"], ta=ta, tb=tb: R.gemm(a, b, out=c, trans_a=ta, trans_b=tb))}
        if torch is not None:
            A, B = torch.from_numpy(a), torch.from_numpy(b)
            A, B = (A.t() if ta else A), (B.t() if tb else B)
            fns["torch"] = lambda A=A, B=B, C=torch.from_numpy(outs["torch"]): torch.matmul(A, B, out=C)
        ref = _lazy(lambda a=a, b=b, ta=ta, tb=tb: R.gemm(a.astype(np.float64), b.astype(np.float64),
                                                          trans_a=ta, trans_b=tb))

        def check(fns=fns, outs=outs, ref=ref):
            r = ref()
            for lib, fn in fns.items():
                outs[lib].fill(np.nan)
                fn()
                # float32 sums of up to 50k products: error scales with the result's magnitude
                R.check_equal(outs[lib], r, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(r).max())),
                              name=f"{lib} gemm")
        large = name.startswith("square") and M >= 512
        yield Case("gemm", name, fns, check, [("numpy", 0.9 if large else 1.0)], flop=2.0 * M * N * K)


def conv_cases(profile, L):
    np, R, torch = L["np"], L["R"], L["torch"]
    import bench_conv as bc
    rng = np.random.default_rng(0)
    for name, N, C, H, W, K, k, pad in conv_shapes(profile):
        x, w, b, dy = bc.conv_case(N, C, H, W, K, k, pad, rng)
        lf, lb, (y, dx, dw, db) = bc.lamina_conv_fns(x, w, b, dy, pad)
        p = (pad, pad)
        flop = 2.0 * N * K * C * k * k * dy.shape[2] * dy.shape[3]
        tf = tb = None
        if torch is not None:
            tf, tb = bc.torch_conv_fns(x, w, b, dy, pad)
        x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
        ref_f = _lazy(lambda x64=x64, w64=w64, b=b, p=p: (R.conv2d_forward(x64, w64, b.astype(np.float64), (1, 1), p),))
        ref_b = _lazy(lambda x64=x64, w64=w64, dy64=dy64, p=p: R.conv2d_backward(x64, w64, dy64, (1, 1), p))
        nf = lambda x=x, w=w, b=b, p=p: R.conv2d_forward(x, w, b, (1, 1), p)  # noqa: E731
        nb = lambda x=x, w=w, dy=dy, p=p: R.conv2d_backward(x, w, dy, (1, 1), p)  # noqa: E731
        for pass_, lfn, nfn, tfn, ref, lamina_out, names, mult in (
                ("fwd", lf, nf, tf, ref_f, (y,), ("y",), 1),
                ("bwd", lb, nb, tb, ref_b, (dx, dw, db), ("dx", "dw", "db"), 2)):
            fns = {"lamina": lfn, "numpy": nfn}
            if tfn is not None:
                fns["torch"] = tfn

            def check(fns=fns, ref=ref, lamina_out=lamina_out, names=names, pass_=pass_):
                want = ref()
                for lib, fn in fns.items():
                    got = fn()
                    if lib == "lamina":
                        got = lamina_out
                    elif lib == "torch":
                        got = (got,) if pass_ == "fwd" else got
                        got = tuple(t.numpy() for t in got)
                    elif pass_ == "fwd":
                        got = (got,)
                    for g, r, nm in zip(got, want, names):
                        R.check_equal(g, r, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(r).max())),
                                      name=f"{lib} conv {nm}")
            yield Case("conv", f"{name} {pass_}", fns, check, [("numpy", 1.0), ("torch", 1.0)], flop=mult * flop)


def pool_cases(profile, L):
    np, R, _C, torch = L["np"], L["R"], L["_C"], L["torch"]
    rng = np.random.default_rng(0)
    for name, shape in pool_shapes(profile):
        x = rng.standard_normal(shape, dtype=np.float32)
        N, C, H, W = shape
        oshape = (N, C, H // 2, W // 2)
        dy = rng.standard_normal(oshape, dtype=np.float32)
        y, idx, dx = np.empty(oshape, np.float32), np.empty(oshape, np.int64), np.empty_like(x)
        k, z = (2, 2), (0, 0)
        _C.max_pool2d_forward(x, y, idx, k, k, z, (1, 1), False)  # indices for the backward pass
        lam = {"max fwd": (lambda: _C.max_pool2d_forward(x, y, idx, k, k, z, (1, 1), False), lambda: y),
               "max bwd": (lambda: _C.max_pool2d_backward(dy, idx, dx, k, k, z, (1, 1), False), lambda: dx),
               "avg fwd": (lambda: _C.avg_pool2d_forward(x, y, k, k, z, False, True), lambda: y),
               "avg bwd": (lambda: _C.avg_pool2d_backward(dy, dx, k, k, z, False, True), lambda: dx)}
        ref = {"max fwd": lambda: R.max_pool2d(x), "max bwd": lambda: R.max_pool2d_backward(x, dy),
               "avg fwd": lambda: R.avg_pool2d(x), "avg bwd": lambda: R.avg_pool2d_backward(x, dy)}
        tor = {}
        if torch is not None:
            F = torch.nn.functional
            tx, tdy, tidx = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(idx)
            tor = {"max fwd": lambda: F.max_pool2d(tx, 2, return_indices=True)[0],
                   "max bwd": lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                       tdy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, tidx),
                   "avg fwd": lambda: F.avg_pool2d(tx, 2),
                   "avg bwd": lambda: torch.ops.aten.avg_pool2d_backward(tdy, tx, [2, 2], [2, 2], [0, 0],
                                                                          False, True, None)}
        for op in ("max fwd", "max bwd", "avg fwd", "avg bwd"):
            fns = {"lamina": lam[op][0], "numpy": ref[op]}
            if op in tor:
                fns["torch"] = tor[op]

            def check(fns=fns, op=op):
                want = ref[op]()
                exact = op.startswith("max")  # max pooling moves values: bit-exact, first max on ties
                for lib, fn in fns.items():
                    got = fn()
                    got = lam[op][1]() if lib == "lamina" else (got.numpy() if lib == "torch" else got)
                    R.check_equal(got, want, rtol=0 if exact else 1e-6, atol=0 if exact else 1e-6,
                                  name=f"{lib} {op}")
            nbytes = x.nbytes + y.nbytes  # read x, write y (or read dy, write dx)
            yield Case("pool", f"{op} {name[5:]} 2x2/2", fns, check, [("numpy", 1.0)], nbytes=nbytes)


def activation_cases(profile, L):
    np, R, _C, torch = L["np"], L["R"], L["_C"], L["torch"]
    for n in activation_sizes(profile):
        rng = np.random.default_rng(0)
        x = rng.standard_normal(n, dtype=np.float32)
        dy = rng.standard_normal(n, dtype=np.float32)
        x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
        size = f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K"
        for kind in R.ACTIVATIONS:
            y64 = R.act_forward(kind, x64, np.empty_like(x64))
            dx64 = R.act_backward(kind, x64, y64, dy64, np.empty_like(x64))
            y32 = y64.astype(np.float32)  # the saved output the backward pass reads
            bufs = {lib: (np.empty_like(x), np.empty_like(x)) for lib in ("lamina", "numpy")}
            ly, ldx = bufs["lamina"]
            ny, ndx = bufs["numpy"]
            fwd = {"lamina": (lambda kind=kind, ly=ly: _C.act_forward(kind, x, ly), lambda ly=ly: ly),
                   "numpy": (lambda kind=kind, ny=ny: R.act_forward(kind, x, ny), lambda ny=ny: ny)}
            bwd = {"lamina": (lambda kind=kind, ldx=ldx, y32=y32: _C.act_backward(kind, x, y32, dy, ldx),
                              lambda ldx=ldx: ldx),
                   "numpy": (lambda kind=kind, ndx=ndx, y32=y32: R.act_backward(kind, x, y32, dy, ndx),
                             lambda ndx=ndx: ndx)}
            if torch is not None:
                tf = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[kind]
                tx, tdy, ty = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(y32)
                tb = {"relu": lambda: torch.ops.aten.threshold_backward(tdy, tx, 0),
                      "sigmoid": lambda: torch.ops.aten.sigmoid_backward(tdy, ty),
                      "tanh": lambda: torch.ops.aten.tanh_backward(tdy, ty)}[kind]
                box = {}
                fwd["torch"] = (lambda tf=tf, tx=tx, box=box: box.__setitem__("y", tf(tx)),
                                lambda box=box: box["y"].numpy())
                bwd["torch"] = (lambda tb=tb, box=box: box.__setitem__("dx", tb()),
                                lambda box=box: box["dx"].numpy())
            for pass_, table, want, arrays in (("fwd", fwd, y64, 2), ("bwd", bwd, dx64, 3)):
                fns = {lib: f for lib, (f, _) in table.items()}

                def check(table=table, want=want, kind=kind, pass_=pass_):
                    for lib, (fn, get) in table.items():
                        fn()
                        R.check_equal(get(), want, rtol=1e-5, atol=1e-6, name=f"{lib} {kind} {pass_}")
                yield Case("activation", f"{kind} {pass_} {size}", fns, check, [("numpy", 2.0)],
                           nbytes=arrays * x.nbytes, n=n)


def loss_cases(profile, L):
    np, R, _C, torch = L["np"], L["R"], L["_C"], L["torch"]
    for N, C in loss_shapes(profile):
        rng = np.random.default_rng(0)
        x = (rng.standard_normal((N, C)) * 3).astype(np.float32)
        t = rng.integers(0, C, N)
        probs, g = np.empty_like(x), np.empty_like(x)

        def lamina_ce(x=x, t=t, probs=probs, g=g):
            s, n = _C.cross_entropy_forward(x, t, probs)
            _C.cross_entropy_backward(probs, t, g, 1.0 / n)
            return s / n, g
        fns = {"lamina": lamina_ce, "numpy": lambda x=x, t=t: R.softmax_cross_entropy(x, t)}
        if torch is not None:
            tt = torch.from_numpy(t)

            def torch_ce(x=x, tt=tt):
                tx = torch.from_numpy(x).requires_grad_(True)
                loss = torch.nn.functional.cross_entropy(tx, tt)
                loss.backward()
                return loss.item(), tx.grad.numpy()
            fns["torch"] = torch_ce

        def check(fns=fns, x=x, t=t):
            ref_loss, ref_g = R.softmax_cross_entropy(x.astype(np.float64), t)
            for lib, fn in fns.items():
                loss, grad = fn()
                R.check_equal(np.float64(loss), np.float64(ref_loss), rtol=1e-5, name=f"{lib} loss")
                R.check_equal(grad, ref_g, rtol=1e-4, atol=1e-7, name=f"{lib} dlogits")
        yield Case("loss", f"softmax-CE fwd+bwd {N}x{C}", fns, check, [("numpy", 1.0)], nbytes=3 * x.nbytes)


def optim_cases(profile, L):
    np, R, _C, torch = L["np"], L["R"], L["_C"], L["torch"]
    for n in optim_sizes(profile):
        rng = np.random.default_rng(0)
        p0 = rng.standard_normal(n, dtype=np.float32)
        g = rng.standard_normal(n, dtype=np.float32)
        for opt, lr, arrays in (("sgd", 0.01, 5), ("adam", 1e-3, 7)):
            # per library: [param, momentum / exp_avg, exp_avg_sq, steps taken, torch optimizer]
            state = {lib: [p0.copy(), np.zeros_like(p0), np.zeros_like(p0), 0, None]
                     for lib in ("lamina", "numpy", "torch")}

            def lamina_step(s=state["lamina"], opt=opt, lr=lr):
                s[3] += 1
                if opt == "sgd":
                    _C.sgd_step(s[0], g, s[1], lr, 0.9, 0.0, 0.0, False, s[3] == 1)
                else:
                    _C.adam_step(s[0], g, s[1], s[2], None, s[3], lr, 0.9, 0.999, 1e-8, 0.0, False, False)

            def numpy_step(s=state["numpy"], opt=opt, lr=lr):
                s[3] += 1
                if opt == "sgd":
                    R.sgd_step(s[0], g, s[1], lr, 0.9, first_step=s[3] == 1)
                else:
                    R.adam_step(s[0], g, s[1], s[2], s[3], lr, 0.9, 0.999, 1e-8)

            def torch_reset(s=state["torch"], opt=opt, lr=lr):
                tp = torch.from_numpy(s[0]).requires_grad_(True)
                tp.grad = torch.from_numpy(g)
                s[4] = torch.optim.SGD([tp], lr=lr, momentum=0.9) if opt == "sgd" else torch.optim.Adam([tp], lr=lr)
            fns = {"lamina": lamina_step, "numpy": numpy_step}
            if torch is not None:
                fns["torch"] = lambda s=state["torch"]: s[4].step()

            def check(fns=fns, state=state, opt=opt, lr=lr, torch_reset=torch_reset):
                # From the same start: three steps of each library vs three float64 NumPy steps.
                p64, g64 = p0.astype(np.float64), g.astype(np.float64)
                m64, v64 = np.zeros_like(p64), np.zeros_like(p64)
                for k in (1, 2, 3):
                    if opt == "sgd":
                        R.sgd_step(p64, g64, m64, lr, 0.9, first_step=k == 1)
                    else:
                        R.adam_step(p64, g64, m64, v64, k, lr, 0.9, 0.999, 1e-8)
                for lib, fn in fns.items():
                    s = state[lib]
                    s[0][...] = p0
                    s[1].fill(0)
                    s[2].fill(0)
                    s[3] = 0
                    if lib == "torch":
                        torch_reset()
                    for _ in range(3):
                        fn()
                    R.check_equal(s[0], p64, rtol=1e-5, atol=1e-6, name=f"{lib} {opt} param after 3 steps")
            yield Case("optim", f"{opt} step {n >> 20}M", fns, check, [("numpy", 1.0)], nbytes=arrays * p0.nbytes, n=n)


FAMILIES = {"gemm": gemm_cases, "conv": conv_cases, "pool": pool_cases, "activation": activation_cases,
            "loss": loss_cases, "optim": optim_cases}
ALL_FAMILIES = list(FAMILIES) + ["end_to_end"]


# ============================================================================================
# Timing
# ============================================================================================

def time_round_robin(fns, budget, min_reps, max_reps, min_sample=2e-3, clock=time.perf_counter,
                     idle_gap=0.0):
    """Median seconds per call of each fn, timed round-robin (A B C A B C ...) so load from
    other processes hits every library alike. Fast fns repeat inside a sample (>= min_sample).
    clock=time.thread_time measures this thread's CPU time (valid when everything runs on it).

    idle_gap > 0 (multi-threaded wall-clock rows): libraries are timed in blocks (A.. B.. C..
    A.. B.. C..) with an idle pause before each block, because a pool's idle workers keep
    spinning after a call (OpenBLAS yield-spins ~0.1 s) and would sit on the core the next
    library's second thread needs: interleaving call by call measured 2-thread GEMMs at half
    speed for lamina and PyTorch alike. After each pause every library runs ~20 ms of untimed
    calls first, so all are timed in their steady state (the first calls after an idle pause
    wait for halted vCPUs to be rescheduled, 0.2-1 ms each on this VM)."""
    from bench_gemm import sample_round_robin  # one idle-pause + warm-up rule for every benchmark
    est = []
    for fn in fns:
        fn()  # warm-up
        t0 = clock()
        fn()
        est.append(max(clock() - t0, 1e-7))
    inner = [max(1, math.ceil(min_sample / e)) for e in est]
    per_round = sum(e * k for e, k in zip(est, inner))
    reps = int(min(max_reps, max(min_reps, budget / per_round)))
    samples = sample_round_robin(fns, inner, reps, clock, idle_gap)
    return [statistics.median(a) for a in samples]


class Threads:
    """lamina, NumPy's BLAS (threadpoolctl) and PyTorch at the same thread count."""

    def __init__(self, L, n):
        self.L, self.n = L, n

    def __enter__(self):
        L = self.L
        L["lamina"].set_num_threads(self.n)
        self._tp = L["threadpool_limits"](limits=self.n, user_api="blas") if L["threadpool_limits"] else None
        if L["torch"] is not None:
            self._torch = L["torch"].get_num_threads()
            L["torch"].set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self._tp is not None:
            self._tp.restore_original_limits()
        if self.L["torch"] is not None:
            self.L["torch"].set_num_threads(self._torch)


def measure_bandwidth(L, n, threads, prof):
    """GB/s of the best (fastest) np.copyto on n float32 (n read + n written), per thread count.

    NumPy's copy is one memmove whatever the thread count, so the yardstick for the elementwise
    rows is the best over all of them (a busy neighbour only ever makes a copy slower)."""
    np = L["np"]
    clock = L.get("clock", time.perf_counter)  # the kernels' clock: CPU time with --cpu-time
    src = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    dst = np.empty_like(src)
    out = {}
    for nt in threads:
        with Threads(L, nt):
            best = float("inf")
            np.copyto(dst, src)  # fault the pages in
            for _ in range(max(10, prof["min_reps"] * 4)):
                t0 = clock()
                np.copyto(dst, src)
                best = min(best, clock() - t0)
        L["R"].check_equal(dst, src, rtol=0, atol=0, name="copy")
        out[nt] = 2 * src.nbytes / best
    return out


def status_of(row, target):
    """PASS / BELOW against each (library, minimum speedup); n/a if the library is missing."""
    parts, ok = [], True
    for against, need in target:
        got = row.get(f"vs_{against}")
        if got is None:
            parts.append(f"{against} n/a")
            continue
        parts.append(f">={need:g}x {'np' if against == 'numpy' else 'pt'}")
        ok = ok and got >= need
    desc = ", ".join(parts)
    if all(row.get(f"vs_{a}") is None for a, _ in target):
        return desc, "n/a"
    return desc, "PASS" if ok else "BELOW"


def run_kernels(L, families, threads, prof, bandwidth, log):
    rows = []
    for fam in families:
        for case in FAMILIES[fam](L["profile"], L):
            libs = list(case.fns)
            for nt in threads:
                row = {"family": fam, "case": case.name, "threads": nt}
                with Threads(L, nt):
                    try:
                        case.check()  # every library once, against the NumPy reference, BEFORE timing
                    except AssertionError as e:
                        row.update(status="WRONG", error=str(e), target="checked equal")
                        rows.append(row)
                        log(f"  {fam} {case.name} t={nt}: WRONG: {e}")
                        continue
                    wall = L.get("clock", time.perf_counter) is time.perf_counter
                    times = time_round_robin([case.fns[lib] for lib in libs], prof["budget"], prof["min_reps"],
                                             prof["max_reps"], clock=L.get("clock", time.perf_counter),
                                             idle_gap=0.15 if (nt > 1 and wall) else 0.0)
                t = dict(zip(libs, times))
                row.update(lamina_s=t["lamina"], numpy_s=t.get("numpy"), torch_s=t.get("torch"))
                for other in ("numpy", "torch"):
                    row[f"vs_{other}"] = t[other] / t["lamina"] if other in t else None
                if case.flop:
                    row["gflops"] = case.flop / t["lamina"] / 1e9
                if case.nbytes:
                    row["gbps"] = case.nbytes / t["lamina"] / 1e9
                if case.nbytes and case.n == prof["bw_n"] and bandwidth:
                    best = max(bandwidth.values())
                    row["bw_frac"] = {lib: case.nbytes / t[lib] / best for lib in libs}
                row["target"], row["status"] = status_of(row, case.target)
                rows.append(row)
                log(f"  {fam:10s} {case.name:34s} t={nt} lamina {fmt_t(t['lamina'])} "
                    f"numpy {fmt_t(t.get('numpy'))} torch {fmt_t(t.get('torch'))}")
    return rows


# ============================================================================================
# End to end: one subprocess per (model, batch, implementation)
# ============================================================================================

def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def e2e_child(spec, interleaved=False):
    """Runs in a fresh process: train `batches` timed batches after WARMUP_BATCHES, print JSON.

    interleaved: after the warm-up print {"ready": true}, then time one window per "go" line read
    from stdin, printing {"window_s": ...} after each; the summary JSON comes last."""
    import resource
    import numpy as np
    x_all = np.load(spec["x"])
    y_all = np.load(spec["y"])
    weights = np.load(spec["weights"])
    weights = [weights[f"p{i}"] for i in range(len(weights.files))]
    impl, model_name, batch, threads = spec["impl"], spec["model"], spec["batch"], spec["threads"]
    if impl == "torch":
        import torch
        torch.set_num_threads(threads)
        _add_paths()
        import torch_ref
        nn = torch.nn
        net = torch_ref.model(model_name)
        params = list(net.parameters())
        assert [tuple(p.shape) for p in params] == [w.shape for w in weights], "torch model != lamina model"
        with torch.no_grad():
            for p, w in zip(params, weights):
                p.copy_(torch.from_numpy(w))
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        lossf = nn.CrossEntropyLoss()

        def step(xb, yb):
            opt.zero_grad()
            loss = lossf(net(torch.from_numpy(xb)), torch.from_numpy(yb))
            loss.backward()
            opt.step()
            return loss.item()
        version = torch.__version__
    else:
        _add_paths()
        import lamina
        import lamina.nn.functional as F
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(limits=threads, user_api="blas")
        except ImportError:
            pass
        lamina.set_num_threads(threads)
        model = lamina.models.mlp() if model_name == "mlp" else lamina.models.lenet5()
        params = list(model.parameters())
        assert [tuple(p.shape) for p in params] == [w.shape for w in weights], "lamina model changed"
        for p, w in zip(params, weights):
            p.data[...] = w
        opt = lamina.optim.SGD(params, lr=0.01, momentum=0.9)
        if impl == "compiled":
            step = lamina.compile(model, F.cross_entropy, opt)
        else:
            def step(xb, yb):
                opt.zero_grad()
                loss = F.cross_entropy(model(lamina.from_numpy(xb)), lamina.from_numpy(yb))
                loss.backward()
                opt.step()
                return loss.item()
        version = lamina.__version__
    nb = spec["epoch_images"] // batch  # one epoch, the last partial batch dropped
    per_window = nb - WARMUP_BATCHES if spec["batches"] is None else spec["batches"]
    windows = spec.get("windows", 1)
    assert (min(nb, WARMUP_BATCHES + per_window * windows)) * batch <= len(x_all), "the parent saved too few images"

    def batch_at(i):  # the timed batches go round the saved images when the windows need more
        i %= min(nb, len(x_all) // batch)
        return x_all[i * batch:(i + 1) * batch], y_all[i * batch:(i + 1) * batch]
    losses = []
    for i in range(WARMUP_BATCHES):  # the compiled step traces on the first call
        losses.append(float(step(*batch_at(i))))
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:  # reset the high-water mark (VmHWM) so the training-only peak is visible (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        rss_start = _rss_kib("VmRSS")
    except OSError:
        rss_start = None
    window_s, window_t0, wall, cpu, i = [], [], 0.0, 0.0, WARMUP_BATCHES
    if interleaved:  # the launcher starts each window ("go") in turn with the other libraries' windows
        print(json.dumps({"ready": True}), flush=True)
    for _ in range(windows):
        if interleaved and sys.stdin.readline().strip() != "go":
            raise SystemExit("e2e child: expected 'go' from the launcher")
        window_t0.append(time.time())  # the epoch clock: comparable across the interleaved processes
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(per_window):
            last = step(*batch_at(i))
            i += 1
        w, c = time.perf_counter() - t0, time.process_time() - c0
        window_s.append(c if spec.get("cpu_time") else w)
        wall, cpu = wall + w, cpu + c
        if interleaved:
            print(json.dumps({"window_s": window_s[-1]}), flush=True)
    elapsed = sorted(window_s)[len(window_s) // 2]  # the median window (windows is odd)
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm = _rss_kib("VmHWM") if rss_start is not None else None
    timed = per_window
    print(json.dumps({
        "impl": impl, "version": version, "warmup_losses": losses, "last_loss": float(last),
        "timed_batches": timed, "windows": windows, "window_images_per_s": [timed * batch / t for t in window_s],
        "window_started": window_t0,
        "epoch_batches": nb, "seconds": elapsed, "wall_s": wall, "cpu_s": cpu,
        "images_per_s": timed * batch / elapsed, "step_s": elapsed / timed,
        "peak_rss_mb": max(peak_before, peak_after) / 1024,
        "train_peak_over_start_mb": max(0, hwm - rss_start) / 1024 if rss_start is not None else None,
    }))


class Launcher:
    """Starts the end-to-end children from a small process started before numpy loads.

    A child's ru_maxrss starts at its parent's RSS at fork/exec time (Linux copies the high-water
    mark), so children spawned from the report process itself (hundreds of MB of benchmark arrays)
    would all report that. This launcher (~10 MB) spawns them instead: each child's peak is its own.
    """

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_launcher"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run_interleaved(self, specs, windows, pause_s):
        """One result per spec ({"rc", "stdout", "stderr"}), their timed windows interleaved."""
        self.proc.stdin.write(json.dumps({"specs": specs, "windows": windows, "pause_s": pause_s}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["results"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


def interleave_children(specs, windows, pause_s):
    """Start one child per spec (each warms up alone, then waits), then time their windows in turn:
    window w runs child (w + k) % n for k = 0..n-1, each after an idle pause. So every library's
    window k is measured within a few seconds of the others' window k, under the same background
    load; one library's spinning pool threads have gone to sleep before the next starts.

    Why: the host is shared, and its speed drifts by 20-40% over seconds. Measured one library
    after the other, a slow spell under one of them moved the ratio from 2x to 7x between runs."""
    procs, errs = [], []
    try:
        for spec in specs:
            err = tempfile.TemporaryFile(mode="w+")
            p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_e2e-child", json.dumps(spec),
                                  "--_interleaved"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                 text=True)
            procs.append(p)
            errs.append(err)
            line = p.stdout.readline()  # the warm-up is done; the child waits for "go"
            if not line.strip().startswith('{"ready"'):
                break
        alive = [p.poll() is None for p in procs]
        if len(procs) == len(specs) and all(alive):
            n = len(procs)
            for w in range(windows):
                for k in range(n):
                    p = procs[(w + k) % n]
                    time.sleep(pause_s)
                    p.stdin.write("go\n")
                    p.stdin.flush()
                    if not p.stdout.readline().strip():
                        raise RuntimeError("an end-to-end child stopped before its window ended")
        results = []
        for p, err in zip(procs, errs):
            p.stdin.close()
            out = p.stdout.read()  # not communicate(): readline() may already hold the summary in its buffer
            p.wait()
            err.seek(0)
            results.append({"rc": p.returncode, "stdout": out, "stderr": err.read()})
        results += [{"rc": -1, "stdout": "", "stderr": "not started: an earlier child failed"}] * (len(specs) - len(procs))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for err in errs:
            err.close()


def launcher_loop():
    """--_launcher: for each JSON request line on stdin, run its children interleaved; reply with
    one JSON line."""
    for line in sys.stdin:
        req = json.loads(line)
        try:
            results = interleave_children(req["specs"], req["windows"], req["pause_s"])
        except Exception as e:  # noqa: BLE001 - reported to the parent, which raises
            results = [{"rc": -1, "stdout": "", "stderr": f"launcher: {e!r}"}] * len(req["specs"])
        sys.stdout.write(json.dumps({"results": results}) + "\n")
        sys.stdout.flush()


def run_end_to_end(L, prof, data_root, threads, log, launcher, cpu_time=False):
    np, lamina = L["np"], L["lamina"]
    from lamina.datasets import MNIST
    configs = e2e_configs(L["profile"])
    rows, details = [], []
    try:
        ds = MNIST(data_root, train=True, download=False)
    except Exception as e:  # noqa: BLE001 - report and keep the kernel tables
        log(f"end_to_end skipped: {e}")
        return rows, {"skipped": str(e)}
    x, y = ds.arrays()  # whole split at once: float32 (N, 1, 28, 28) in [0, 1], int64 (N,)
    need = len(x) if prof["e2e_batches"] is None else min(
        len(x), max(b for _, b in configs) * (WARMUP_BATCHES + prof["e2e_batches"] * prof["e2e_windows"]))
    torch_ok = L["torch"] is not None
    with tempfile.TemporaryDirectory(prefix="lamina_report_") as tmp:
        np.save(os.path.join(tmp, "x.npy"), np.ascontiguousarray(x[:need]))
        np.save(os.path.join(tmp, "y.npy"), np.ascontiguousarray(y[:need]))
        for model_name, batch in configs:
            lamina.manual_seed(0)
            model = lamina.models.mlp() if model_name == "mlp" else lamina.models.lenet5()
            wpath = os.path.join(tmp, f"{model_name}.npz")
            np.savez(wpath, **{f"p{i}": p.data for i, p in enumerate(model.parameters())})
            res = {}
            impls = ["eager", "compiled"] + (["torch"] if torch_ok else [])
            specs = [dict(impl=impl, model=model_name, batch=batch, threads=threads, batches=prof["e2e_batches"],
                          windows=prof["e2e_windows"], epoch_images=len(x), cpu_time=cpu_time,
                          x=os.path.join(tmp, "x.npy"), y=os.path.join(tmp, "y.npy"), weights=wpath)
                     for impl in impls]
            procs = launcher.run_interleaved(specs, prof["e2e_windows"], E2E_PAUSE_S)
            for impl, proc in zip(impls, procs):
                if proc["rc"] != 0:
                    raise RuntimeError(f"end-to-end child {impl} {model_name} b={batch} failed:\n{proc['stderr'][-3000:]}")
                res[impl] = json.loads(proc["stdout"].strip().splitlines()[-1])
                log(f"  end_to_end {model_name} b={batch} {impl}: {res[impl]['images_per_s']:.0f} img/s, "
                    f"peak RSS {res[impl]['peak_rss_mb']:.0f} MB")
            # Checked equal: identical weights and batches, so the warm-up losses must agree, and the
            # first one must be the NumPy forward pass's loss (float64, from the same weights).
            err = None
            try:
                w64 = [p.detach().numpy().astype(np.float64) for p in model.parameters()]
                ref0 = L["R"].mnist_model_loss(model_name, w64, x[:batch].astype(np.float64), y[:batch])
                for impl in res:
                    L["R"].check_equal(np.float64(res[impl]["warmup_losses"][0]), np.float64(ref0), rtol=1e-5,
                                       name=f"{impl} first loss vs NumPy forward")
                for impl in res:
                    L["R"].check_equal(np.array(res[impl]["warmup_losses"]), np.array(res["eager"]["warmup_losses"]),
                                       rtol=1e-4, atol=1e-5, name=f"{impl} warm-up losses vs eager")
            except AssertionError as e:
                err = str(e)
            details.append({"model": model_name, "batch": batch, "results": res})
            t = res.get("torch")
            for impl in ("eager", "compiled"):
                r = res[impl]
                row = {"family": "end_to_end", "case": f"{model_name} b={batch} {impl}", "threads": threads,
                       "clock": "process CPU time" if cpu_time else "wall time",
                       "lamina_s": r["step_s"], "numpy_s": None, "torch_s": t["step_s"] if t else None,
                       "vs_numpy": None, "vs_torch": t["step_s"] / r["step_s"] if t else None,
                       "images_per_s": r["images_per_s"], "torch_images_per_s": t["images_per_s"] if t else None,
                       "peak_rss_mb": r["peak_rss_mb"], "torch_peak_rss_mb": t["peak_rss_mb"] if t else None,
                       "train_peak_mb": r["train_peak_over_start_mb"],
                       "torch_train_peak_mb": t["train_peak_over_start_mb"] if t else None,
                       "timed_batches": r["timed_batches"], "windows": r["windows"],
                       "epoch_batches": r["epoch_batches"],
                       # window k of every library ran back to back: their ratio shares the load
                       "window_vs_torch": [a / b for a, b in zip(r["window_images_per_s"],
                                                                 t["window_images_per_s"])] if t else None}
                row["target"], row["status"] = status_of(row, [("torch", 1.0)])
                if err:
                    row.update(status="WRONG", error=err)
                rows.append(row)
    return rows, {"configs": details}


# ============================================================================================
# Printing
# ============================================================================================

def fmt_t(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f}us"
    if s < 1:
        return f"{s * 1e3:.2f}ms"
    return f"{s:.2f}s"


def fmt_x(r):
    return "-" if r is None else f"{r:.2f}x"


def print_header(meta, out):
    w = out.write
    w("=" * 100 + "\n")
    w(f"lamina {meta['lamina']}  isa={meta['isa']}  threads measured: {meta['threads']}  "
      f"profile: {meta['profile']}\n")
    w(f"numpy {meta['numpy']}  BLAS: {meta['blas']}\n")
    w(f"torch {meta['torch'] or 'not used (not installed, or --no-torch)'}\n")
    w(f"cpu: {meta['cpu']}  ({meta['cpus']} cpus)  python {meta['python']}\n")
    if meta.get("caches"):
        w(f"lamina sees: {meta['cpu_model']}; {meta['caches']}; f32 GEMM blocking {meta['gemm_blocking']}; "
          f"FMA peak (1 core, f32) {meta['fma_peak_gflops']:.1f} GFLOP/s\n")
    if meta.get("lamina_path"):
        w(f"lamina imported from {meta['lamina_path']}\n")
    w(f"OpenBLAS overrides unset for this run: {meta['openblas_unset'] or 'none were set'}\n")
    w(f"load average at start: {meta['load_start']}"
      + (f"  at end: {meta['load_end']}" if meta.get("load_end") else "") + "\n")
    if meta.get("bandwidth"):
        bw = "  ".join(f"{k} thread(s): {v / 1e9:.1f} GB/s" for k, v in meta["bandwidth"].items())
        w(f"memory bandwidth (best np.copyto of {meta['bw_n'] >> 20}M float32, read+write): {bw}; "
          f"BW% columns use the best, {max(meta['bandwidth'].values()) / 1e9:.1f} GB/s\n")
    w(f"times: median per call ({meta.get('clock', 'wall (perf_counter)')}); "
      "speedup = other time / lamina time (> 1: lamina faster)\n")


def print_family(fam, rows, out):
    rows = [r for r in rows if r["family"] == fam]
    if not rows:
        return
    w = out.write
    w(f"\n== {fam} ==\n")
    if fam == "end_to_end":
        r0 = rows[0]
        what = ("one epoch" if r0["timed_batches"] + WARMUP_BATCHES == r0["epoch_batches"]
                else f"{r0['timed_batches']} batches (a fraction of an epoch)")
        if r0.get("windows", 1) > 1:
            what = f"{r0['windows']} windows of {r0['timed_batches']} batches, img/s of the median window"
        w(f"MNIST training, SGD momentum, {r0['threads']} thread(s), {r0.get('clock', 'wall time')}; "
          f"{WARMUP_BATCHES} warm-up batches then {what}; "
          f"peak RSS = ru_maxrss of the config's own process; +train = peak above RSS at the start of timing\n")
        hdr = (f"{'case':26s} {'img/s':>9s} {'torch img/s':>11s} {'vs pt':>7s} | {'peak RSS':>9s} {'torch':>7s} "
               f"| {'+train':>7s} {'torch':>7s} | {'target':16s} status")
        w(hdr + "\n" + "-" * len(hdr) + "\n")
        for r in rows:
            if "images_per_s" not in r:
                w(f"{r['case']:26s} {r['status']}: {r.get('error', '')}\n")
                continue

            def mb(v):
                return "-" if v is None else f"{v:.0f}MB" if abs(v) >= 10 else f"{v:.1f}MB"
            ti = r["torch_images_per_s"]
            w(f"{r['case']:26s} {r['images_per_s']:9.0f} {'-' if ti is None else f'{ti:.0f}':>11s} "
              f"{fmt_x(r['vs_torch']):>7s} | {mb(r['peak_rss_mb']):>9s} {mb(r['torch_peak_rss_mb']):>7s} | "
              f"{mb(r['train_peak_mb']):>7s} {mb(r['torch_train_peak_mb']):>7s} | {r['target']:16s} {r['status']}\n")
        paired = [r for r in rows if r.get("window_vs_torch") and len(r["window_vs_torch"]) > 1]
        if paired:
            w("windows run in turn (lamina eager, compiled, torch, then rotated); vs pt of each window k:\n")
            for r in paired:
                w(f"  {r['case']:24s} " + " ".join(f"{v:.2f}x" for v in r["window_vs_torch"]) + "\n")
        return
    extra = "GF/s" if fam in ("gemm", "conv") else "GB/s"
    hdr = (f"{'case':34s} {'thr':>3s} {'lamina':>9s} {'numpy':>9s} {'torch':>9s} {'vs np':>7s} {'vs pt':>7s} "
           f"{extra:>6s} {'BW% l/np/pt':>12s} | {'target':22s} status")
    w(hdr + "\n" + "-" * len(hdr) + "\n")
    for r in rows:
        if "lamina_s" not in r:
            w(f"{r['case']:34s} {r['threads']:3d} {r['status']}: {r.get('error', '')}\n")
            continue
        rate = r.get("gflops") if extra == "GF/s" else r.get("gbps")
        bw = r.get("bw_frac")
        bws = "/".join(f"{100 * bw[k]:.0f}" if k in bw else "-" for k in ("lamina", "numpy", "torch")) if bw else ""
        w(f"{r['case']:34s} {r['threads']:3d} {fmt_t(r['lamina_s']):>9s} {fmt_t(r['numpy_s']):>9s} "
          f"{fmt_t(r['torch_s']):>9s} {fmt_x(r['vs_numpy']):>7s} {fmt_x(r['vs_torch']):>7s} "
          f"{'-' if rate is None else f'{rate:.1f}':>6s} {bws:>12s} | {r['target']:22s} {r['status']}\n")


def print_summary(rows, out):
    w = out.write
    counts = {}
    for r in rows:
        counts.setdefault(r["family"], {}).setdefault(r["status"], 0)
        counts[r["family"]][r["status"]] += 1
    w("\n== targets ==\n")
    for fam, c in counts.items():
        w(f"{fam:12s} " + "  ".join(f"{k} {v}" for k, v in sorted(c.items())) + "\n")
    below = [r for r in rows if r["status"] in ("BELOW", "WRONG")]
    if below:
        w("below target / wrong:\n")
        for r in below:
            w(f"  {r['family']:10s} {r['case']:34s} t={r['threads']}  {r['status']}  "
              f"(vs np {fmt_x(r.get('vs_numpy'))}, vs pt {fmt_x(r.get('vs_torch'))}; target {r['target']})"
              f"{'  ' + r['error'][:200] if r.get('error') else ''}\n")
    else:
        w("every row meets its target\n")


def compare(new_rows, old_path, out):
    """Rows matched by (family, case, threads); ratio = new lamina time / old lamina time."""
    with open(old_path) as f:
        old = json.load(f)
    old_rows = {(r["family"], r["case"], r["threads"]): r for r in old["rows"] if r.get("lamina_s")}
    w = out.write
    w(f"\n== compare with {old_path} (lamina time new/old; > {REGRESSION:.2f} flagged) ==\n")
    hdr = f"{'family':10s} {'case':34s} {'thr':>3s} {'old':>9s} {'new':>9s} {'new/old':>8s}  flag"
    w(hdr + "\n" + "-" * len(hdr) + "\n")
    regressions = improvements = 0
    seen = set()
    for r in new_rows:
        key = (r["family"], r["case"], r["threads"])
        o = old_rows.get(key)
        if o is None or not r.get("lamina_s"):
            continue
        seen.add(key)
        ratio = r["lamina_s"] / o["lamina_s"]
        flag = ""
        if ratio > REGRESSION:
            flag, regressions = "REGRESSION", regressions + 1
        elif ratio < 1 / REGRESSION:
            flag, improvements = "faster", improvements + 1
        w(f"{r['family']:10s} {r['case']:34s} {r['threads']:3d} {fmt_t(o['lamina_s']):>9s} "
          f"{fmt_t(r['lamina_s']):>9s} {ratio:8.2f}  {flag}\n")
    only_new = sum(1 for r in new_rows if (r["family"], r["case"], r["threads"]) not in old_rows)
    only_old = sum(1 for k in old_rows if k not in seen)
    w(f"{regressions} regression(s) (> {100 * (REGRESSION - 1):.0f}% slower), {improvements} faster, "
      f"{len(seen)} rows compared, {only_new} only in the new run, {only_old} only in {old_path}\n")
    return regressions


# ============================================================================================
# Main
# ============================================================================================

def collect_meta(L, profile, threads, prof):
    np, lamina, torch = L["np"], L["lamina"], L["torch"]
    blas = "threadpoolctl not installed"
    if L["threadpool_info"] is not None:
        blas = "; ".join(f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
                         f"threading={i.get('threading_layer')} default_threads={i.get('num_threads')}"
                         for i in L["threadpool_info"]() if i.get("user_api") == "blas") or "none found"
    cpu, fam_model, flags = platform.processor() or "unknown", "", set()
    try:
        info = {}
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                k, _, v = line.partition(":")
                info[k.strip()] = v.strip()
        cpu = info.get("model name", cpu)
        fam_model = f" family {info.get('cpu family')} model {info.get('model')}"
        flags = set(info.get("flags", "").split())
    except OSError:
        pass
    simd = ",".join(f for f in ("avx2", "fma", "avx512f") if f in flags)
    return {
        "lamina": lamina.__version__, "isa": lamina._C.isa(), "threads": threads, "profile": profile,
        "numpy": np.__version__, "blas": blas, "torch": torch.__version__ if torch is not None else None,
        "cpu": f"{cpu}{fam_model} [{simd}]", "cpus": os.cpu_count(), "python": platform.python_version(),
        "openblas_unset": os.environ.get("_LAMINA_REPORT_UNSET", ""),
        "load_start": " ".join(f"{v:.2f}" for v in os.getloadavg()), "bw_n": prof["bw_n"],
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "lamina_path": os.path.dirname(os.path.abspath(lamina.__file__)),
        **_cpu_facts(lamina._C, smoke=profile == "smoke"),
    }


def _cpu_facts(_C, smoke):
    """What lamina reads from the CPU (model, caches, the GEMM blocking it chose) and this
    core's measured FMA peak, so figures from different hosts can be compared."""
    if not hasattr(_C, "cpu_info"):  # an older build
        return {}
    info = _C.cpu_info()
    c = info["caches"]
    blk = info["gemm_blocking"]["float32"]
    return {
        "cpu_model": info["model"],
        "caches": f"L1d {c['l1d'] >> 10} KiB, L2 {c['l2'] >> 10} KiB, L3 {c['l3'] >> 20} MiB ({c['source']})",
        "gemm_blocking": f"{blk['kernel']}: MR {blk['MR']} NR {blk['NR']} KC {blk['KC']} MC {blk['MC']} NC {blk['NC']}"
                         + ("; f32 from 64x64x128 on AMX tiles (bf16x9, float32 accuracy)" if info.get("gemm_amx") else ""),
        "fma_peak_gflops": _C.fma_peak_gflops(0.05 if smoke else 0.3),
    }


def load_libs(profile, use_torch=True):
    _add_paths()
    import numpy as np
    import lamina
    from lamina import _C
    import numpy_ref as R
    torch = None
    if use_torch:
        try:
            import torch  # comparison only; lamina itself never imports torch
        except ImportError:
            pass
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        threadpool_info = threadpool_limits = None
    return dict(np=np, lamina=lamina, _C=_C, R=R, torch=torch, threadpool_info=threadpool_info,
                threadpool_limits=threadpool_limits, profile=profile)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="fewer shapes and reps, 50 training batches (< 3 min)")
    g.add_argument("--smoke", action="store_true", help="tiny shapes: checks the tooling, not the speed")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts for the kernel tables")
    ap.add_argument("--cpu-time", action="store_true",
                    help="1 thread, timed by CPU time (kernels: this thread's; training: the process's): "
                         "robust on a loaded machine")
    ap.add_argument("--e2e-threads", type=int, default=2, help="threads for end-to-end training (default 2)")
    ap.add_argument("--families", default=",".join(ALL_FAMILIES), help=f"subset of {','.join(ALL_FAMILIES)}")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    ap.add_argument("--data", default=None, help="data root holding mnist/ (default $LAMINA_DATA or /work/shared/data)")
    ap.add_argument("--json", metavar="OUT", help="write machine-readable results here")
    ap.add_argument("--compare", metavar="OLD", help="flag rows whose lamina time grew > 10%% vs this JSON")
    ap.add_argument("--from-json", metavar="FILE", help="print tables (and --compare) from a saved JSON; no measuring")
    ap.add_argument("--_e2e-child", dest="e2e_child", help=argparse.SUPPRESS)
    ap.add_argument("--_launcher", dest="launcher", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_interleaved", dest="interleaved", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    fams = [f.strip() for f in args.families.split(",") if f.strip()]
    bad = [f for f in fams if f not in ALL_FAMILIES]
    if bad:
        ap.error(f"--families: unknown {bad}; expected a subset of {ALL_FAMILIES}")
    args.families = fams
    try:
        args.threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        ap.error(f"--threads: expected a comma list of integers, got {args.threads!r}")
    if any(t < 1 for t in args.threads):
        ap.error(f"--threads: expected positive counts, got {args.threads}")
    if args.cpu_time:
        if args.threads not in ([1], [1, 2]):
            ap.error(f"--cpu-time: CPU time of one thread only measures 1 thread, got --threads {args.threads}")
        args.threads = [1]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.e2e_child:
        e2e_child(json.loads(args.e2e_child), interleaved=args.interleaved)
        return 0
    if args.launcher:
        launcher_loop()
        return 0
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        out = sys.stdout
        print_header(saved["meta"], out)
        for fam in ALL_FAMILIES:
            print_family(fam, saved["rows"], out)
        print_summary(saved["rows"], out)
        if args.compare:
            compare(saved["rows"], args.compare, out)
        return 0
    _reexec_without_openblas_overrides()
    # Before numpy and the benchmark arrays: children inherit this process's RSS as their peak.
    launcher = Launcher() if "end_to_end" in args.families else None
    try:
        return _measure(args, launcher)
    finally:
        if launcher is not None:
            launcher.close()


def _measure(args, launcher):
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    prof = PROFILES[profile]
    L = load_libs(profile, use_torch=not args.no_torch)
    if args.cpu_time:
        L["clock"] = time.thread_time  # lamina, NumPy's BLAS and PyTorch all run on this thread at 1 thread
    out = sys.stdout
    t_start = time.perf_counter()
    meta = collect_meta(L, profile, args.threads, prof)
    meta["clock"] = "thread CPU time" if args.cpu_time else "wall (perf_counter)"
    kernel_fams = [f for f in args.families if f in FAMILIES]
    bandwidth = measure_bandwidth(L, prof["bw_n"], args.threads, prof) if kernel_fams else {}
    meta["bandwidth"] = {str(k): v for k, v in bandwidth.items()}
    print_header(meta, out)
    out.flush()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)
    rows = run_kernels(L, kernel_fams, args.threads, prof, bandwidth, log)
    e2e = {}
    if "end_to_end" in args.families:
        root = args.data or os.environ.get("LAMINA_DATA") or "/work/shared/data"
        e2e_rows, e2e = run_end_to_end(L, prof, root, 1 if args.cpu_time else args.e2e_threads, log, launcher,
                                       cpu_time=args.cpu_time)
        rows += e2e_rows
    meta["load_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    meta["seconds"] = round(time.perf_counter() - t_start, 1)
    for fam in ALL_FAMILIES:
        print_family(fam, rows, out)
    print_summary(rows, out)
    out.write(f"\nload average at end: {meta['load_end']}; report took {meta['seconds']} s\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows, "end_to_end": e2e}, f, indent=1)
        out.write(f"wrote {args.json}\n")
    if args.compare:
        compare(rows, args.compare, out)
    return 1 if any(r["status"] == "WRONG" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
