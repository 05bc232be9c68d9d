"""relu / sigmoid / tanh forward and backward: lamina vs NumPy vs PyTorch on 1M and 16M float32.

    python -m pytest benchmarks/test_bench_activation.py --benchmark-only --benchmark-columns=median,ops

Each library's output is checked against the float64 NumPy reference (numpy_ref) before timing;
GB/s (bytes read + written / median time) is recorded in extra_info.
"""
import functools

import numpy as np
import pytest

import numpy_ref as R
from lamina import _C

SIZES = [1 << 20, 1 << 24]
KINDS = list(R.ACTIVATIONS)
TOL = dict(rtol=1e-5, atol=1e-6)


@functools.lru_cache(maxsize=2)
def _inputs(n):
    """x, dy and the float64 references y, dx per kind (shared by every library and kind)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    dy = rng.standard_normal(n, dtype=np.float32)
    return x, dy


@functools.lru_cache(maxsize=6)
def _reference(kind, n):
    x, dy = _inputs(n)
    x64 = x.astype(np.float64)
    y = R.act_forward(kind, x64, np.empty_like(x64))
    dx = R.act_backward(kind, x64, y, dy.astype(np.float64), np.empty_like(x64))
    return y, dx


def _torch_fwd_bwd(torch, kind):
    f = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[kind]
    bw = {"relu": lambda x, y, dy: torch.ops.aten.threshold_backward(dy, x, 0),
          "sigmoid": lambda x, y, dy: torch.ops.aten.sigmoid_backward(dy, y),
          "tanh": lambda x, y, dy: torch.ops.aten.tanh_backward(dy, y)}[kind]
    return f, bw


@pytest.mark.parametrize("n", SIZES, ids=["1M", "16M"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", ["lamina", "numpy", "torch"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_activation(benchmark, check_equal, direction, impl, kind, n):
    x, dy = _inputs(n)
    ref_y, ref_dx = _reference(kind, n)
    y32 = ref_y.astype(np.float32)  # the saved output the backward pass reads
    y, dx = np.empty_like(x), np.empty_like(x)
    if impl == "lamina":
        fwd = lambda: _C.act_forward(kind, x, y)  # noqa: E731
        bwd = lambda: _C.act_backward(kind, x, y32, dy, dx)  # noqa: E731
        get = lambda: (y, dx)  # noqa: E731
    elif impl == "numpy":
        fwd = lambda: R.act_forward(kind, x, y)  # noqa: E731
        bwd = lambda: R.act_backward(kind, x, y32, dy, dx)  # noqa: E731
        get = lambda: (y, dx)  # noqa: E731
    else:
        torch = pytest.importorskip("torch")
        f, b = _torch_fwd_bwd(torch, kind)
        tx, tdy, ty = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(y32)
        out = {}
        fwd = lambda: out.__setitem__("y", f(tx))  # noqa: E731
        bwd = lambda: out.__setitem__("dx", b(tx, ty, tdy))  # noqa: E731
        get = lambda: (out.get("y", torch.empty(0)).numpy(), out.get("dx", torch.empty(0)).numpy())  # noqa: E731
    fn = fwd if direction == "forward" else bwd
    fn()  # warm-up, checked before timing
    got = get()[0 if direction == "forward" else 1]
    check_equal(got, ref_y if direction == "forward" else ref_dx, name=f"{impl} {kind} {direction}", **TOL)
    benchmark(fn)
    nbytes = (2 if direction == "forward" else 3) * x.nbytes
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["GB/s"] = round(nbytes / benchmark.stats.stats.median / 1e9, 2)
