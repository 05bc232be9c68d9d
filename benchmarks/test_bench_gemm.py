"""pytest-benchmark cases for GEMM: lamina vs numpy vs torch on the same inputs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=python python3 -m pytest benchmarks/test_bench_gemm.py \
        --benchmark-group-by=param:shape --benchmark-columns=median,ops
"""
import numpy as np
import pytest

from lamina import _C

try:
    import torch  # comparison only
except Exception:  # pragma: no cover
    torch = None

# (M, K, N): square sizes and the MLP / LeNet im2col shapes.
SHAPES = [(512, 512, 512), (64, 784, 300), (256, 784, 300), (50176, 25, 6), (6400, 150, 16)]
LIBS = ["lamina", "numpy"] + (["torch"] if torch is not None else [])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gemm(benchmark, shape, lib, dtype):
    M, K, N = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = np.empty((M, N), dtype)
    if lib == "lamina":
        fn = lambda: _C.gemm(a, b, c)  # noqa: E731
    elif lib == "numpy":
        fn = lambda: np.matmul(a, b, out=c)  # noqa: E731
    else:
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
        fn = lambda: torch.matmul(ta, tb, out=tc)  # noqa: E731
    benchmark.extra_info["gflop"] = 2.0 * M * N * K / 1e9
    benchmark(fn)
    # checked outside the timed region
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-3 if dtype == "float32" else 1e-10,
                               atol=1e-3 if dtype == "float32" else 1e-10)
    benchmark.extra_info["gflops"] = benchmark.extra_info["gflop"] / benchmark.stats.stats.median
