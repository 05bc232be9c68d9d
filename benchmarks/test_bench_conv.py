"""pytest-benchmark cases for conv2d forward / backward: lamina vs NumPy im2col vs PyTorch.

    python -m pytest benchmarks/test_bench_conv.py --benchmark-only --benchmark-columns=median,ops

Each library's result (y, or dx/dw/db) is checked against the float64 NumPy reference
(`numpy_ref.conv2d_*`) before timing. The side-by-side ratio table is benchmarks/bench_conv.py
(and the conv family of benchmarks/report.py).
"""
import numpy as np
import pytest

import bench_conv as bc
import numpy_ref as R

torch = bc.torch
LIBS = ["lamina", "numpy"] + (["torch"] if torch is not None else [])
CASES = {c[0]: c[1:] for c in bc.CONV_CASES}


_REF = {}


def _reference(case, pass_, x, w, b, dy, pad):
    """float64 NumPy result of one pass, computed once per case (shared by the three libraries)."""
    key = (case, pass_)
    if key not in _REF:
        x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
        if pass_ == "fwd":
            _REF[key] = (R.conv2d_forward(x64, w64, b.astype(np.float64), (1, 1), (pad, pad)),)
        else:
            _REF[key] = R.conv2d_backward(x64, w64, dy64, (1, 1), (pad, pad))
    return _REF[key]


@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("case", list(CASES))
def test_conv2d(benchmark, check_equal, case, lib, pass_):
    N, C, H, W, K, k, pad = CASES[case]
    x, w, b, dy = bc.conv_case(N, C, H, W, K, k, pad, np.random.default_rng(0))
    if lib == "lamina":
        fwd, bwd, (y, dx, dw, db) = bc.lamina_conv_fns(x, w, b, dy, pad)
        fn = fwd if pass_ == "fwd" else bwd
        result = lambda: (y,) if pass_ == "fwd" else (dx, dw, db)  # noqa: E731
    elif lib == "numpy":
        fn = ((lambda: R.conv2d_forward(x, w, b, (1, 1), (pad, pad))) if pass_ == "fwd"
              else (lambda: R.conv2d_backward(x, w, dy, (1, 1), (pad, pad))))
        result = lambda: (out,) if pass_ == "fwd" else out  # noqa: E731
    else:
        tf, tb = bc.torch_conv_fns(x, w, b, dy, pad)
        fn = tf if pass_ == "fwd" else tb
        result = lambda: (out.numpy(),) if pass_ == "fwd" else tuple(t.numpy() for t in out)  # noqa: E731
    out = fn()  # warm-up (grows lamina's im2col workspace), checked before timing
    names = ("y",) if pass_ == "fwd" else ("dx", "dw", "db")
    for got, want, name in zip(result(), _reference(case, pass_, x, w, b, dy, pad), names):
        check_equal(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())), name=f"{lib} {name}")
    benchmark.extra_info["gflop"] = 2.0 * N * K * C * k * k * dy.shape[2] * dy.shape[3] / 1e9
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
