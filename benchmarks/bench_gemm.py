"""GEMM benchmark: lamina vs NumPy (OpenBLAS) vs PyTorch, side by side in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=python python3 benchmarks/bench_gemm.py [--quick]
    ... bench_gemm.py --under-load     # 2 threads with a busy loop on one core vs 1 thread
    ... bench_gemm.py --interleave --stat min   # alternating rounds, each library's best round
    ... bench_gemm.py --threads 1 --clock thread   # CPU time of the calling thread (a shared box)

Prints GFLOP/s (median of several timed reps after a warm-up) for float32 and float64 at
1 and 2 threads. Every result is checked against numpy outside the timed region.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lamina_path  # noqa: E402

lamina_path.use_lamina()  # the source tree's dev build if it has one, else the installed package
from lamina import _C  # noqa: E402

try:
    import torch  # oracle / comparison only; lamina itself never imports torch
except Exception:  # pragma: no cover
    torch = None

try:
    from threadpoolctl import threadpool_limits
except Exception:  # pragma: no cover
    threadpool_limits = None

# (name, M, K, N, trans_a, trans_b): C = op(A) @ op(B), op(A) is M x K, op(B) is K x N.
NETWORK = [
    ("mlp fwd 64x784x300", 64, 784, 300),
    ("mlp fwd 256x784x300", 256, 784, 300),
    ("mlp fwd 64x300x100", 64, 300, 100),
    ("lenet fc 256x400x120", 256, 400, 120),
    ("conv1 im2col 50176x25x6", 50176, 25, 6),
    ("conv2 im2col 6400x150x16", 6400, 150, 16),
]
# LeNet-5's fully connected layers F5, F6 and the output layer at batch 64 and 256 (full runs
# only, each with its forward and both backward products; report.py slices NETWORK).
LENET_FC = [
    (f"lenet {layer} {b}x{k}x{n}", b, k, n)
    for layer, k, n in (("f5", 400, 120), ("f6", 120, 84), ("out", 84, 10)) for b in (64, 256)
]


def variants(name, M, K, N):
    """NN forward plus the backward shapes: dX = dY @ W^T (NT), dW = X^T @ dY (TN)."""
    yield (name + " NN", M, K, N, False, False)
    yield (name + " NT dX", M, N, K, False, True)   # dY (M x N) @ W^T, W stored K x N -> (K x N)^T
    yield (name + " TN dW", K, M, N, True, False)   # X^T (K x M) @ dY (M x N)


def operands(M, K, N, ta, tb, dtype, rng):
    a = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    return a, b


STAT = statistics.median  # --stat min: best of the reps, robust when other processes share the cores
# --clock thread: the calling thread's CPU time (time.thread_time) instead of wall time, so time
# the OS gave the core to other processes is not counted. Only meaningful at 1 thread, where
# lamina, OpenBLAS and PyTorch all compute in the calling thread.
CLOCK = time.perf_counter


def settle_and_warm(fn, pause=0.15, warm=0.02):
    """Before timing a library: an idle pause, so the previous library's idle threads go to
    sleep (OpenBLAS's workers yield-spin ~0.1 s after a call and would sit on the core the
    next library needs); then `warm` seconds of untimed calls, so every library is timed in
    its steady state (the first calls after a pause wait for halted vCPUs, 0.2-1 ms here)."""
    time.sleep(pause)
    t_warm = time.perf_counter()
    fn()
    while time.perf_counter() - t_warm < warm:
        fn()


def sample_round_robin(fns, inner, reps, clock, idle_gap=0.0):
    """Seconds per call of each fn, `reps` samples each (a sample: inner[i] calls of fns[i]).
    Round-robin (A B C A B C ...), so load from other processes hits every library alike; with
    idle_gap > 0 (multi-threaded wall-clock timing) in two cycles of blocks (A.. B.. C.. A.. B..
    C..), each after settle_and_warm, so one pool's spinning workers do not slow the next."""
    samples = [[] for _ in fns]

    def sample(fn, k, acc):
        t0 = clock()
        for _ in range(k):
            fn()
        acc.append((clock() - t0) / k)

    if idle_gap > 0:
        per_block = max(1, -(-reps // 2))
        for _ in range(2):
            for fn, k, acc in zip(fns, inner, samples):
                settle_and_warm(fn, pause=idle_gap)
                for _ in range(per_block):
                    sample(fn, k, acc)
    else:
        for _ in range(reps):
            for fn, k, acc in zip(fns, inner, samples):
                sample(fn, k, acc)
    return samples


def median_time(fn, reps, min_time=0.02):
    settle_and_warm(fn)
    # choose an inner loop count so each timed sample is >= min_time
    t0 = time.perf_counter(); fn(); one = time.perf_counter() - t0
    inner = max(1, int(min_time / max(one, 1e-7)))
    samples = []
    for _ in range(reps):
        t0 = CLOCK()
        for _ in range(inner):
            fn()
        samples.append((CLOCK() - t0) / inner)
    return STAT(samples)


class Limits:
    """Thread count for all three libraries at once."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        _C.set_num_threads(self.n)
        if torch is not None:
            self._torch = torch.get_num_threads()
            torch.set_num_threads(self.n)
        self._tp = threadpool_limits(self.n) if threadpool_limits else None
        return self

    def __exit__(self, *exc):
        if self._tp is not None:
            self._tp.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(self._torch)


def interleaved_cases(cases_fns, rounds, min_time=0.02):
    """STAT of per-call seconds for each library of each case, timed in rounds: in each round
    every case in turn, and within a case the libraries one after another (A B C), one block
    of >= min_time each after settle_and_warm. A noisy phase of the shared machine then hits
    every library alike, and hits a case in one round, not in all of them."""
    inner = []
    for fns in cases_fns:
        inner.append([])
        for fn in fns:
            fn()
            t0 = time.perf_counter(); fn(); one = time.perf_counter() - t0
            inner[-1].append(max(1, int(min_time / max(one, 1e-7))))
    samples = [[[] for _ in fns] for fns in cases_fns]
    for _ in range(rounds):
        for fns, ks, accs in zip(cases_fns, inner, samples):
            for fn, k, acc in zip(fns, ks, accs):
                settle_and_warm(fn)
                t0 = CLOCK()
                for _ in range(k):
                    fn()
                acc.append((CLOCK() - t0) / k)
    return [[STAT(a) for a in accs] for accs in samples]


def prepare_case(M, K, N, ta, tb, dtype, rng):
    """{library: a callable computing op(a) @ op(b)}, each checked against numpy once."""
    a, b = operands(M, K, N, ta, tb, dtype, rng)
    oa = a.T if ta else a
    ob = b.T if tb else b
    c = np.empty((M, N), dtype)
    ref = oa @ ob
    # Positional, as lamina's own layers call it (ops.py): pybind11's keyword matching costs
    # ~0.6 us a call, 10% of a 64^3 product.
    f_lamina = lambda: _C.gemm(a, b, c, ta, tb)  # noqa: E731
    f_lamina()
    tol = 1e-3 if dtype == np.float32 else 1e-10
    err = np.abs(c - ref).max() / max(1.0, np.abs(ref).max())
    if not err <= tol:
        raise AssertionError(f"lamina result wrong for {M}x{K}x{N} ta={ta} tb={tb}: rel err {err}")
    cn = np.empty((M, N), dtype)
    fns = {"lamina": f_lamina, "numpy": lambda: np.matmul(oa, ob, out=cn)}
    if torch is not None:
        ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
        ota = ta_.t() if ta else ta_
        otb = tb_.t() if tb else tb_
        tc = torch.empty((M, N), dtype=ota.dtype)
        fns["torch"] = lambda: torch.matmul(ota, otb, out=tc)  # noqa: E731
        fns["torch"]()
        assert np.abs(tc.numpy() - ref).max() / max(1.0, np.abs(ref).max()) <= tol
    return fns


def bench_case(M, K, N, ta, tb, dtype, reps, rng):
    fns = prepare_case(M, K, N, ta, tb, dtype, rng)
    times = {name: median_time(fn, reps) for name, fn in fns.items()}
    return {name: 2.0 * M * N * K / t / 1e9 for name, t in times.items()}


def cases(quick):
    squares = [64, 128, 256, 512, 1024] if quick else [64, 128, 256, 512, 1024, 2048]
    out = [(f"square {n}", n, n, n, False, False) for n in squares]
    for name, M, K, N in (NETWORK[:1] + NETWORK[4:] if quick else NETWORK + LENET_FC):
        out += list(variants(name, M, K, N)) if not quick else [(name + " NN", M, K, N, False, False)]
    return out


def run_table(quick, dtypes, threads, reps, peak, interleave=False):
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        for nt in threads:
            # FMA limit of nt cores for this dtype (a float64 vector holds half as many lanes)
            limit = peak * nt / (2 if dtype == np.float64 else 1)
            how = f"{STAT.__name__} of {reps} interleaved rounds" if interleave else f"{STAT.__name__} of {reps}"
            print(f"\n== {np.dtype(dtype).name}, {nt} thread(s), GFLOP/s ({how});"
                  f" %peak: lamina vs {limit:.0f} GFLOP/s = {nt} x the measured FMA limit ==")
            hdr = (f"{'case':38s} {'lamina':>8s} {'numpy':>8s} {'torch':>8s} {'l/np':>6s} {'l/torch':>7s}"
                   f" {'%peak':>6s}")
            print(hdr)
            with Limits(nt):
                table = cases(quick)
                if interleave:
                    # Every case's rounds spread over the whole section (case 1, 2, ..., n, then
                    # again): a noisy phase of the VM, which can last seconds, then costs one
                    # round of a case rather than all of them.
                    fns = [prepare_case(M, K, N, ta, tb, dtype, rng) for _, M, K, N, ta, tb in table]
                    times = interleaved_cases([list(f.values()) for f in fns], reps)
                    results = [{lib: 2.0 * M * N * K / t / 1e9 for lib, t in zip(f, ts)}
                               for f, ts, (_, M, K, N, _, _) in zip(fns, times, table)]
                    del fns
                else:
                    results = [bench_case(M, K, N, ta, tb, dtype, reps, rng) for _, M, K, N, ta, tb in table]
                for (name, M, K, N, ta, tb), r in zip(table, results):
                    t = r.get("torch", float("nan"))
                    pct = 100 * r["lamina"] / limit if limit > 0 else float("nan")
                    print(f"{name:38s} {r['lamina']:8.1f} {r['numpy']:8.1f} {t:8.1f} "
                          f"{r['lamina'] / r['numpy']:6.2f} {r['lamina'] / t:7.2f} {pct:5.0f}%", flush=True)


SPIN = "import time\nt=time.time()\nwhile time.time()-t<{s}: pass\n"


def under_load(reps):
    """2 threads with a busy process competing for one core vs 1 thread without it.

    'spin' runs a pure-Python busy loop in another process for the whole measurement; 'no
    backoff' disables lamina's fall-back to one thread after a slow OpenMP join."""
    rng = np.random.default_rng(0)
    shapes = [(512, 512, 512), (256, 784, 300), (64, 784, 300), (6400, 150, 16), (1024, 1024, 1024)]
    print(f"\n== under load: float32, milliseconds ({STAT.__name__} of {reps}) ==")
    print(f"{'shape':18s} {'1 thr':>8s} {'2 thr':>8s} {'2 thr+spin':>11s} {'ratio':>6s}"
          f" {'no backoff':>11s} {'ratio':>6s}   (ratio = 2 threads under load / 1 thread)")
    for M, K, N in shapes:
        a, b = operands(M, K, N, False, False, np.float32, rng)
        c = np.empty((M, N), np.float32)
        f = lambda: _C.gemm(a, b, c)  # noqa: E731
        _C.set_num_threads(1); t1 = median_time(f, reps)
        _C.set_num_threads(2); t2 = median_time(f, reps)
        spin = subprocess.Popen([sys.executable, "-c", SPIN.format(s=120)])
        try:
            time.sleep(0.3)
            tl = median_time(f, reps)
            _C._gemm_set_path_override(load_backoff=False)
            tn = median_time(f, reps)
        finally:
            _C._gemm_set_path_override()
            spin.kill(); spin.wait()
        assert np.allclose(c, a @ b, rtol=1e-3, atol=1e-3)
        print(f"{f'{M}x{K}x{N}':18s} {t1 * 1e3:8.3f} {t2 * 1e3:8.3f} {tl * 1e3:11.3f} {tl / t1:6.2f}"
              f" {tn * 1e3:11.3f} {tn / t1:6.2f}", flush=True)
    _C.set_num_threads(2)


def peak_clock(peak, isa):
    """The clock the measured FMA peak implies, from the flops per cycle the CPU's vendor and
    family give for the probe's vectors (cpu_info's fma_f32_flops_per_cycle, derived, not
    measured: zmm 64 with two 512-bit FMA pipes, 32 on Zen 4, which runs zmm double-pumped on
    two 256-bit pipes; ymm 32), beside the measured zmm / ymm ratio that checks it (~1:
    double-pumped or one 512-bit pipe, ~2: two 512-bit pipes) and the clock /proc/cpuinfo
    reports (often the nominal one, below the turbo the probe runs at)."""
    info = _C.cpu_info() if hasattr(_C, "cpu_info") else {}
    per_cycle = info.get("fma_f32_flops_per_cycle") or (64 if isa == "avx512" else 32)
    width = {"avx512": "zmm", "avx2": "ymm"}.get(isa, isa)
    text = (f"{per_cycle} f32 flops/cycle for {width} FMAs ({info.get('vendor', '?')} family"
            f" {info.get('family', 0):#x} model {info.get('model_number', 0):#x}) at {peak / per_cycle:.2f} GHz")
    if isa == "avx512":
        try:
            ymm = _C.fma_peak_gflops(0.2, "avx2")
            text += f"; measured zmm/ymm {peak / ymm:.2f}" if ymm > 0 else ""
        except TypeError:  # an older build without the isa argument
            pass
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
    except (OSError, ValueError):
        mhz = []
    return text + (f" (/proc/cpuinfo: {mhz[0] * 1e-3:.2f} GHz)" if mhz else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer shapes and reps")
    ap.add_argument("--under-load", action="store_true", help="only the under-load comparison")
    ap.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    ap.add_argument("--threads", default="2,1", help="comma list of thread counts")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--interleave", action="store_true",
                    help="time the libraries in alternating rounds (reps = rounds), so a noisy phase of a "
                         "shared machine hits all alike; with --stat min: each library's least-disturbed round")
    ap.add_argument("--stat", choices=["median", "min"], default="median",
                    help="median of the timed reps (default) or min (best-case, for a busy machine)")
    ap.add_argument("--clock", choices=["wall", "thread"], default="wall",
                    help="wall time (default) or the calling thread's CPU time (1 thread only: "
                         "leaves out the time other processes held the core)")
    args = ap.parse_args()
    if args.clock == "thread" and args.threads != "1":
        ap.error("--clock thread: expected --threads 1 (other threads' work is not counted), "
                 f"got --threads {args.threads}")
    if threadpool_limits is None:
        if os.environ.get("_LAMINA_BENCH_CHILD") is None:
            # No threadpoolctl: re-run one child per thread count with OpenBLAS's env set.
            for nt in args.threads.split(","):
                env = dict(os.environ, OPENBLAS_NUM_THREADS=nt, OMP_NUM_THREADS=nt, _LAMINA_BENCH_CHILD="1")
                argv = [a for a in sys.argv[1:] if not a.startswith("--threads")]
                subprocess.run([sys.executable, __file__, *argv, f"--threads={nt}"], env=env, check=True)
            return
    reps = args.reps or (5 if args.quick else 7)
    global STAT, CLOCK
    STAT = min if args.stat == "min" else statistics.median
    CLOCK = time.thread_time if args.clock == "thread" else time.perf_counter
    print(f"lamina {_C.__version__} isa={_C.isa()} numpy {np.__version__}"
          f" torch {torch.__version__ if torch else 'n/a'}"
          f" OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}"
          f" loadavg={os.getloadavg()[0]:.2f} kernels (M=64/256): f32 N=300 '{_C._gemm_kernel_name(300, 'float32', 64)}',"
          f" N=6 '{_C._gemm_kernel_name(6, 'float32')}', N=16 '{_C._gemm_kernel_name(16, 'float32')}',"
          f" f64 N=300 '{_C._gemm_kernel_name(300, 'float64', 64)}'"
          + ("; f32 from 64x64x128: AMX tiles, bf16x9 (float32 accuracy)"
             if hasattr(_C, "cpu_info") and _C.cpu_info().get("gemm_amx") else ""))
    peak = _C.fma_peak_gflops(0.3)
    print(f"FMA limit of one core (measured: FMA chains, no memory traffic): {peak:.1f} GFLOP/s float32"
          f" = {peak_clock(peak, _C.isa())}")
    if args.under_load:
        under_load(reps)
        return
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [np.dtype(args.dtype).type]
    run_table(args.quick, dtypes, [int(t) for t in args.threads.split(",")], reps, peak, args.interleave)


if __name__ == "__main__":
    main()
