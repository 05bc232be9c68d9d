"""LeNet's conv blocks, fused against unfused: conv + bias + ReLU + 2x2 max pool forward and the
backward to the conv's dy, on one thread, timed by this thread's CPU time (robust on a shared
machine); median of 7 samples.

    PYTHONPATH=python python tools/bench_conv_block.py [--batch 256]

Unfused: conv2d_forward, then relu (act_forward), then max_pool2d_forward (the kernels the
compiled graph ran before fuse_conv_relu_pool); fused: conv2d_relu_max_pool2d_forward. Backward:
max_pool2d_backward + relu' against relu_max_pool2d_backward. The results are checked equal
(bit for bit) outside the timed region.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import lamina  # noqa: E402
from lamina import _C  # noqa: E402

LAYERS = {"C1": (1, 28, 6, 2), "C3": (6, 14, 16, 0)}   # C, H (= W), K, padding; 5x5 kernels


def _time(fn, reps=20):
    fn()
    samples = []
    for _ in range(7):
        t0 = time.thread_time()
        for _ in range(reps):
            fn()
        samples.append((time.thread_time() - t0) / reps)
    return float(np.median(samples)) * 1e3


def bench(name, N):
    C, H, K, pad = LAYERS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    w = rng.standard_normal((K, C, 5, 5)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    OH = H + 2 * pad - 4
    P = OH // 2
    conf = ((1, 1), (pad, pad), (1, 1), 1)
    pool = ((2, 2), (2, 2), (0, 0), (1, 1), False)
    z, g, dz = (np.empty((N, K, OH, OH), np.float32) for _ in range(3))
    y0, y1 = np.empty((N, K, P, P), np.float32), np.empty((N, K, P, P), np.float32)
    idx, code = np.empty((N, K, P, P), np.int64), np.empty((N, K, P, P), np.uint8)
    dy = rng.standard_normal((N, K, P, P)).astype(np.float32)

    def unfused_fwd():
        _C.conv2d_forward(x, w, b, z, *conf)
        _C.act_forward("relu", z, z, 0.01)
        _C.max_pool2d_forward(z, y0, idx, *pool)

    def unfused_bwd():
        _C.max_pool2d_backward(dy, idx, g, *pool)
        _C.act_backward("relu", z, z, g, g, 0.01)

    def fused_fwd():
        _C.conv2d_relu_max_pool2d_forward(x, w, b, y1, code, *conf)

    def fused_bwd():
        _C.relu_max_pool2d_backward(dy, code, dz)

    unfused_fwd(), unfused_bwd(), fused_fwd(), fused_bwd()
    assert np.array_equal(y0, y1) and np.array_equal(g, dz), "fused != unfused"
    t = [_time(f) for f in (unfused_fwd, fused_fwd, unfused_bwd, fused_bwd)]
    print(f"{name} N={N:4d} | fwd unfused {t[0]:7.3f} fused {t[1]:7.3f} ({t[0] / t[1]:.2f}x) | "
          f"bwd unfused {t[2]:7.3f} fused {t[3]:7.3f} ({t[2] / t[3]:.2f}x)  ms", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    args = ap.parse_args(argv)
    lamina.set_num_threads(1)
    print(f"lamina {lamina.__version__}, isa {_C.isa()}, 1 thread, thread CPU time (median of 7)")
    for N in args.batch:
        for name in LAYERS:
            bench(name, N)


if __name__ == "__main__":
    main()
