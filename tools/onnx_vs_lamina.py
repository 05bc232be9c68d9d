"""Inference images/s: lamina eager vs onnxruntime on the same exported model, same threads.

    PYTHONPATH=python python tools/onnx_vs_lamina.py [--threads 1] [--batch 256] [--reps 5]

Each model is exported with lamina.onnx.export, both runtimes get the same input after a
warm-up, outputs are compared outside the timed region, and the best of `reps` runs is kept.
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import lamina


def best_seconds(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    lamina.set_num_threads(args.threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    x = np.random.default_rng(0).random((args.batch, 1, 28, 28), dtype=np.float32)
    print(f"batch {args.batch}, {args.threads} thread(s), best of {args.reps}; images/s")
    print(f"{'model':14s} {'lamina':>10s} {'onnxruntime':>12s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("mlp", "lenet5", "resnet_mnist"):
            lamina.manual_seed(0)
            model = getattr(lamina.models, name)().eval()
            path = Path(tmp) / f"{name}.onnx"
            lamina.onnx.export(model, lamina.tensor(x[:2]), path)
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            xt = lamina.tensor(x)

            def run_lamina():
                with lamina.no_grad():
                    return model(xt)

            def run_ort():
                return session.run(None, {"input": x})[0]

            want, got = run_lamina().numpy(), run_ort()        # warm-up and the check
            assert np.abs(want - got).max() <= 1e-4, name
            t_lamina, t_ort = best_seconds(run_lamina, args.reps), best_seconds(run_ort, args.reps)
            print(f"{name:14s} {args.batch / t_lamina:10.0f} {args.batch / t_ort:12.0f}")


if __name__ == "__main__":
    main()
