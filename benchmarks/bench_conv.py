"""Convolution and pooling benchmark: lamina vs a NumPy im2col reference vs PyTorch, one run.

    PYTHONPATH=python python3 benchmarks/bench_conv.py [--quick] [--threads 2]
    PYTHONPATH=python python3 benchmarks/bench_conv.py --cpu-time     # 1 thread, CPU time
    PYTHONPATH=python python3 benchmarks/bench_conv.py --threads 1 --case mid   # one layer

--cpu-time measures single-threaded process CPU time (min over reps) instead of wall time:
on a machine shared with other jobs it is far less disturbed by their load.

Every case runs the three on the same float32 inputs after a warm-up, timed round-robin
(so background load hits all alike), with the same thread count (lamina, PyTorch and NumPy's
BLAS pool set to --threads; 1 for --cpu-time), and checks lamina's results against PyTorch
(or NumPy) outside the timed region. Times are medians in ms; the ratio columns are
other/lamina (> 1 means lamina is faster). "bwd" computes dx, dw and db.
"""
import argparse
import os
import statistics
import sys
import time

def _blas_threads(argv):
    """NumPy's BLAS pool size: 1 for --cpu-time, else --threads (if given)."""
    if "--cpu-time" in argv:
        return "1"
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


# A BLAS pool busy-waiting after NumPy's call steals a core from whichever library runs next
# (and process_time bills its spinning to that library: it doubled lamina's --cpu-time
# figures), so it gets the same thread budget as lamina and PyTorch; set before numpy loads.
if _blas_threads(sys.argv):
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _blas_threads(sys.argv)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lamina_path  # noqa: E402

lamina_path.use_lamina()  # the source tree's dev build if it has one, else the installed package
import numpy_ref as R  # noqa: E402
from lamina import _C  # noqa: E402

try:
    import torch  # comparison only; lamina itself never imports torch
except Exception:  # pragma: no cover
    torch = None

# name, N, C, H, W, K, k, pad
CONV_CASES = [
    ("C1 N=64 1x28x28->6@5x5 p2", 64, 1, 28, 28, 6, 5, 2),
    ("C1 N=256 1x28x28->6@5x5 p2", 256, 1, 28, 28, 6, 5, 2),
    ("C3 N=64 6x14x14->16@5x5", 64, 6, 14, 14, 16, 5, 0),
    ("C3 N=256 6x14x14->16@5x5", 256, 6, 14, 14, 16, 5, 0),
    ("mid N=32 64x32x32->64@3x3 p1", 32, 64, 32, 32, 64, 3, 1),
    ("wide N=8 128x56x56->128@3x3 p1", 8, 128, 56, 56, 128, 3, 1),
]
# name, (N, C, H, W); 2x2 windows, stride 2
POOL_CASES = [
    ("pool 64x6x28x28", (64, 6, 28, 28)),
    ("pool 32x64x32x32", (32, 64, 32, 32)),
]


CLOCK = time.perf_counter
THREADS = 1  # main() sets it: 2-thread wall-clock rows are timed in blocks after an idle pause


def interleaved_ms(fns, min_time=0.3, max_reps=200):
    """Median ms of each fn, timed round-robin (A B C A B C ...) so that load from other
    processes hits every library alike and the ratios stay meaningful on a shared machine;
    at 2+ threads on the wall clock, in blocks after an idle pause instead (see below)."""
    one = []
    for fn in fns:
        fn()  # warm-up (also grows lamina's im2col workspace)
        t0 = time.perf_counter()
        fn()
        one.append(time.perf_counter() - t0)
    reps = int(min(max_reps, max(7, min_time / max(sum(one), 1e-6))))
    # process_time ticks are coarse: repeat fast calls so one sample is >= ~5 ms
    inner = [max(1, int(0.005 / max(o, 1e-7))) if CLOCK is time.process_time else 1 for o in one]
    # At 2+ threads on the wall clock, blocks after an idle pause (as report.py times its
    # 2-thread rows): interleaved call by call, NumPy's OpenBLAS workers (yield-spinning ~0.1 s
    # after each call) sat on the core lamina's and PyTorch's second thread needed, and the mid
    # layer measured no faster at 2 threads than at 1 (12.3 vs 11.5 ms; 6.3 ms alone).
    from bench_gemm import sample_round_robin
    blocks = THREADS > 1 and CLOCK is time.perf_counter
    samples = sample_round_robin(fns, inner, reps, CLOCK, idle_gap=0.15 if blocks else 0.0)
    pick = min if CLOCK is time.process_time else statistics.median
    return [1e3 * pick(a) for a in samples]


# ---- NumPy reference: benchmarks/numpy_ref.py (im2col as a strided view, reshape pooling) ----

def np_conv_forward(x, w, b, pad):
    return R.conv2d_forward(x, w, b, (1, 1), (pad, pad))


def np_conv_backward(x, w, dy, pad):
    return R.conv2d_backward(x, w, dy, (1, 1), (pad, pad))


# ---- cases ---------------------------------------------------------------------------------

def conv_case(N, C, H, W, K, k, pad, rng):
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((K, C, k, k)) / np.sqrt(C * k * k)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    OH, OW = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    dy = rng.standard_normal((N, K, OH, OW)).astype(np.float32)
    return x, w, b, dy


def lamina_conv_fns(x, w, b, dy, pad):
    y = np.empty(dy.shape, np.float32)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    s, p, d = (1, 1), (pad, pad), (1, 1)
    fwd = lambda: _C.conv2d_forward(x, w, b, y, s, p, d, 1)  # noqa: E731
    bwd = lambda: _C.conv2d_backward(x, w, dy, dx, dw, db, s, p, d, 1)  # noqa: E731
    return fwd, bwd, (y, dx, dw, db)


def torch_conv_fns(x, w, b, dy, pad):
    tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
    fwd = lambda: torch.nn.functional.conv2d(tx, tw, tb, 1, pad)  # noqa: E731
    bwd = lambda: torch.ops.aten.convolution_backward(  # noqa: E731
        tdy, tx, tw, [tw.shape[0]], [1, 1], [pad, pad], [1, 1], False, [0, 0], 1, [True, True, True])
    return fwd, bwd


def check_conv(x, w, b, dy, pad, outs):
    """lamina's (y, dx, dw, db) against the float64 NumPy reference."""
    y, dx, dw, db = outs
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    ref_y = np_conv_forward(x64, w64, b.astype(np.float64), pad)
    rdx, rdw, rdb = np_conv_backward(x64, w64, dy64, pad)
    for got, ref, name in ((y, ref_y, "y"), (dx, rdx, "dx"), (dw, rdw, "dw"), (db, rdb, "db")):
        R.check_equal(got, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())), name=f"conv {name}")


def run_conv(cases, threads, rng, rows):
    for name, N, C, H, W, K, k, pad in cases:
        x, w, b, dy = conv_case(N, C, H, W, K, k, pad, rng)
        fwd, bwd, outs = lamina_conv_fns(x, w, b, dy, pad)
        fwd(); bwd()
        check_conv(x, w, b, dy, pad, outs)
        flops = 2.0 * N * K * C * k * k * dy.shape[2] * dy.shape[3]
        nf = lambda: np_conv_forward(x, w, b, pad)  # noqa: E731
        nb = lambda: np_conv_backward(x, w, dy, pad)  # noqa: E731
        if torch is not None:
            tf, tbw = torch_conv_fns(x, w, b, dy, pad)
            t = interleaved_ms([fwd, nf, tf]) + interleaved_ms([bwd, nb, tbw])
        else:
            t = interleaved_ms([fwd, nf]) + interleaved_ms([bwd, nb])
        k = len(t) // 2
        r = {"name": name, "lamina": (t[0], t[k]), "numpy": (t[1], t[k + 1]), "gflops": flops}
        if torch is not None:
            r["torch"] = (t[2], t[k + 2])
        rows.append(r)


def run_pool(cases, threads, rng, rows):
    for name, shape in cases:
        x = rng.standard_normal(shape).astype(np.float32)
        N, C, H, W = shape
        oshape = (N, C, H // 2, W // 2)
        y, idx = np.empty(oshape, np.float32), np.empty(oshape, np.int64)
        dy = rng.standard_normal(oshape).astype(np.float32)
        dx = np.empty_like(x)
        k = (2, 2)
        mf = lambda: _C.max_pool2d_forward(x, y, idx, k, k, (0, 0), (1, 1), False)  # noqa: E731
        mb = lambda: _C.max_pool2d_backward(dy, idx, dx, k, k, (0, 0), (1, 1), False)  # noqa: E731
        ya = np.empty(oshape, np.float32)
        af = lambda: _C.avg_pool2d_forward(x, ya, k, k, (0, 0), False, True)  # noqa: E731
        ab = lambda: _C.avg_pool2d_backward(dy, dx, k, k, (0, 0), False, True)  # noqa: E731
        mf(); af()
        R.check_equal(y, R.max_pool2d(x), rtol=0, atol=0, name="max_pool y")
        R.check_equal(ya, R.avg_pool2d(x), name="avg_pool y")
        mb()
        R.check_equal(dx, R.max_pool2d_backward(x, dy), rtol=0, atol=0, name="max_pool dx")
        ab()
        R.check_equal(dx, R.avg_pool2d_backward(x, dy), name="avg_pool dx")
        for kind, lf, lb, nf, nb, tf, tb in (
            ("max", mf, mb, lambda: R.max_pool2d(x), lambda: R.max_pool2d_backward(x, dy),
             "max", "max"),
            ("avg", af, ab, lambda: R.avg_pool2d(x), lambda: R.avg_pool2d_backward(x, dy), "avg", "avg")):
            r = {"name": f"{kind}{name[4:]} 2x2/2", "gflops": None}
            t_f = t_b = None
            if torch is not None:
                tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
                if kind == "max":
                    _, tidx = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
                    assert np.array_equal(tidx.numpy(), idx)
                    t_f = lambda: torch.nn.functional.max_pool2d(tx, 2, return_indices=True)  # noqa: E731
                    t_b = lambda: torch.ops.aten.max_pool2d_with_indices_backward(  # noqa: E731
                        tdy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, tidx)
                else:
                    t_f = lambda: torch.nn.functional.avg_pool2d(tx, 2)  # noqa: E731
                    t_b = lambda: torch.ops.aten.avg_pool2d_backward(  # noqa: E731
                        tdy, tx, [2, 2], [2, 2], [0, 0], False, True, None)
            fw = interleaved_ms([lf, nf] + ([t_f] if t_f else []))
            bw = interleaved_ms([lb, nb] + ([t_b] if t_b else []))
            r["lamina"], r["numpy"] = (fw[0], bw[0]), (fw[1], bw[1])
            if t_f:
                r["torch"] = (fw[2], bw[2])
            rows.append(r)


def print_table(rows, threads):
    what = "min CPU ms (1 thread)" if CLOCK is time.process_time else "median wall ms"
    print(f"threads={threads}  isa={_C.isa()}  times: {what}  ratios: other/lamina (>1: lamina faster)")
    hdr = (f"{'case':34s} {'lamina fwd':>10s} {'bwd':>8s} {'GF/s':>6s} | {'numpy fwd':>9s} {'bwd':>8s} "
           f"{'x fwd':>6s} {'x bwd':>6s} | {'torch fwd':>9s} {'bwd':>8s} {'x fwd':>6s} {'x bwd':>6s} {'x f+b':>6s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        lf, lb = r["lamina"]
        nf, nb = r["numpy"]
        gf = f"{r['gflops'] / lf / 1e6:6.1f}" if r["gflops"] else "     -"
        line = (f"{r['name']:34s} {lf:10.3f} {lb:8.3f} {gf} | {nf:9.3f} {nb:8.3f} {nf / lf:6.2f} {nb / lb:6.2f} |")
        if "torch" in r:
            tf, tb = r["torch"]
            line += f" {tf:9.3f} {tb:8.3f} {tf / lf:6.2f} {tb / lb:6.2f} {(tf + tb) / (lf + lb):6.2f}"
        print(line)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="LeNet shapes and the small pool only")
    ap.add_argument("--cpu-time", action="store_true", help="1 thread, process CPU time (robust under load)")
    ap.add_argument("--case", default="", help="only the cases whose name contains this text (e.g. mid)")
    args = ap.parse_args(argv)
    global CLOCK, THREADS
    if args.cpu_time:
        CLOCK, args.threads = time.process_time, 1
    THREADS = args.threads
    _C.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(lamina_path.host_line())
    rng = np.random.default_rng(0)
    rows = []
    conv = CONV_CASES[:4] if args.quick else CONV_CASES
    pool = POOL_CASES[:1] if args.quick else POOL_CASES
    conv = [c for c in conv if args.case in c[0]]
    pool = [c for c in pool if args.case in c[0]]
    if not conv and not pool:
        raise SystemExit(f"--case: no case name contains {args.case!r}")
    run_conv(conv, args.threads, rng, rows)
    run_pool(pool, args.threads, rng, rows)
    print_table(rows, args.threads)


if __name__ == "__main__":
    main()
