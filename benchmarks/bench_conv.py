"""Convolution and pooling benchmark: lamina vs a NumPy im2col reference vs PyTorch, one run.

    PYTHONPATH=python python3 benchmarks/bench_conv.py [--quick] [--threads 2]

Every case runs the three on the same float32 inputs after a warm-up, with the same thread
count (lamina and PyTorch set to --threads; NumPy's BLAS uses its default pool), and checks
lamina's results against PyTorch (or NumPy) outside the timed region. Times are medians in ms;
the ratio columns are other/lamina (> 1 means lamina is faster). "bwd" computes dx, dw and db.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
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


def median_ms(fn, min_time=0.25, max_reps=200):
    fn()  # warm-up (also grows lamina's im2col workspace)
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    reps = int(min(max_reps, max(5, min_time / max(one, 1e-6))))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(samples)


# ---- NumPy im2col reference (stride tricks + one tensordot each way) ----------------------

def np_conv_forward(x, w, b, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = sliding_window_view(xp, w.shape[2:], axis=(2, 3))  # (N, C, OH, OW, KH, KW), a view
    y = np.tensordot(cols, w, axes=([1, 4, 5], [1, 2, 3]))    # (N, OH, OW, K)
    y += b
    return y.transpose(0, 3, 1, 2)


def np_conv_backward(x, w, dy, pad):
    N, C, H, W = x.shape
    K, _, KH, KW = w.shape
    OH, OW = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = sliding_window_view(xp, (KH, KW), axis=(2, 3))
    dw = np.tensordot(dy, cols, axes=([0, 2, 3], [0, 2, 3]))      # (K, C, KH, KW)
    db = dy.sum(axis=(0, 2, 3))
    dcols = np.tensordot(dy, w, axes=([1], [0]))                   # (N, OH, OW, C, KH, KW)
    dxp = np.zeros_like(xp)
    for kh in range(KH):  # col2im: scatter each tap back
        for kw in range(KW):
            dxp[:, :, kh:kh + OH, kw:kw + OW] += dcols[:, :, :, :, kh, kw].transpose(0, 3, 1, 2)
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


def np_pool_max(x):
    N, C, H, W = x.shape
    return x[:, :, :H // 2 * 2, :W // 2 * 2].reshape(N, C, H // 2, 2, W // 2, 2).max(axis=(3, 5))


def np_pool_max_backward(x, y, dy):
    # Route dy to every position equal to its window max (first-max bookkeeping skipped: the
    # reference only needs a comparable amount of work).
    N, C, H, W = x.shape
    xr = x.reshape(N, C, H // 2, 2, W // 2, 2)
    mask = xr == y[:, :, :, None, :, None]
    return (mask * dy[:, :, :, None, :, None]).reshape(N, C, H, W)


def np_pool_avg(x):
    N, C, H, W = x.shape
    return x.reshape(N, C, H // 2, 2, W // 2, 2).mean(axis=(3, 5))


def np_pool_avg_backward(x, dy):
    return np.repeat(np.repeat(dy, 2, axis=2), 2, axis=3) * 0.25


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
    y, dx, dw, db = outs
    ref_y = np_conv_forward(x.astype(np.float64), w.astype(np.float64), b, pad)
    rdx, rdw, rdb = np_conv_backward(x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64), pad)
    for got, ref, name in ((y, ref_y, "y"), (dx, rdx, "dx"), (dw, rdw, "dw"), (db, rdb, "db")):
        err = np.abs(got - ref).max() / max(1.0, np.abs(ref).max())
        assert err < 1e-4, f"{name} mismatch {err}"


def run_conv(cases, threads, rng, rows):
    for name, N, C, H, W, K, k, pad in cases:
        x, w, b, dy = conv_case(N, C, H, W, K, k, pad, rng)
        fwd, bwd, outs = lamina_conv_fns(x, w, b, dy, pad)
        fwd(); bwd()
        check_conv(x, w, b, dy, pad, outs)
        flops = 2.0 * N * K * C * k * k * dy.shape[2] * dy.shape[3]
        r = {"name": name, "lamina": (median_ms(fwd), median_ms(bwd)),
             "numpy": (median_ms(lambda: np.ascontiguousarray(np_conv_forward(x, w, b, pad))),
                       median_ms(lambda: np_conv_backward(x, w, dy, pad))),
             "gflops": flops}
        if torch is not None:
            tf, tbw = torch_conv_fns(x, w, b, dy, pad)
            r["torch"] = (median_ms(tf), median_ms(tbw))
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
        assert np.array_equal(y, np_pool_max(x)) and np.allclose(ya, np_pool_avg(x), atol=1e-6)
        ny = np_pool_max(x)
        for kind, lf, lb, nf, nb, tf, tb in (
            ("max", mf, mb, lambda: np_pool_max(x), lambda: np_pool_max_backward(x, ny, dy),
             "max", "max"),
            ("avg", af, ab, lambda: np_pool_avg(x), lambda: np_pool_avg_backward(x, dy), "avg", "avg")):
            r = {"name": f"{kind}{name[4:]} 2x2/2", "lamina": (median_ms(lf), median_ms(lb)),
                 "numpy": (median_ms(nf), median_ms(nb)), "gflops": None}
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
                r["torch"] = (median_ms(t_f), median_ms(t_b))
            rows.append(r)


def print_table(rows, threads):
    print(f"threads={threads}  isa={_C.isa()}  times: median ms  ratios: other/lamina (>1: lamina faster)")
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
    args = ap.parse_args(argv)
    _C.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    conv = CONV_CASES[:4] if args.quick else CONV_CASES
    run_conv(conv, args.threads, rng, rows)
    run_pool(POOL_CASES[:1] if args.quick else POOL_CASES, args.threads, rng, rows)
    print_table(rows, args.threads)


if __name__ == "__main__":
    main()
