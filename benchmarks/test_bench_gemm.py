"""pytest-benchmark cases for GEMM: lamina vs NumPy (BLAS) vs PyTorch on the same inputs.

    python -m pytest benchmarks/test_bench_gemm.py --benchmark-only --benchmark-columns=median,ops

Each case computes C = A @ B once and checks it against a float64 NumPy product before timing;
GFLOP/s is recorded in extra_info. The side-by-side ratio table is `benchmarks/bench_gemm.py`
(and the gemm family of `benchmarks/report.py`).
"""
import numpy as np
import pytest

import numpy_ref as R
from lamina import _C

try:
    import torch  # comparison only
except Exception:  # pragma: no cover
    torch = None

# (M, K, N): square sizes and the MLP / LeNet im2col shapes.
SHAPES = [(512, 512, 512), (64, 784, 300), (256, 784, 300), (50176, 25, 6), (6400, 150, 16)]
LIBS = ["lamina", "numpy"] + (["torch"] if torch is not None else [])
TOL = {"float32": dict(rtol=1e-4, atol=1e-3), "float64": dict(rtol=1e-10, atol=1e-10)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gemm(benchmark, check_equal, shape, lib, dtype):
    M, K, N = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = np.full((M, N), np.nan, dtype)
    if lib == "lamina":
        fn = lambda: _C.gemm(a, b, c)  # noqa: E731
    elif lib == "numpy":
        fn = lambda: R.gemm(a, b, out=c)  # noqa: E731
    else:
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
        fn = lambda: torch.matmul(ta, tb, out=tc)  # noqa: E731
    fn()  # checked before timing (and the warm-up)
    check_equal(c, R.gemm(a.astype(np.float64), b.astype(np.float64)), name=f"{lib} gemm {shape}", **TOL[dtype])
    benchmark.extra_info["gflop"] = 2.0 * M * N * K / 1e9
    benchmark(fn)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["gflops"] = round(benchmark.extra_info["gflop"] / benchmark.stats.stats.median, 2)
