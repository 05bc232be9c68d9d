"""relu / sigmoid / tanh forward+backward: lamina vs NumPy vs PyTorch on 1M and 16M float32.

Run: PYTHONPATH=python python -m pytest benchmarks/test_bench_activation.py --benchmark-columns=median,ops
GB/s (bytes moved / median time) is recorded in extra_info.
"""
import numpy as np
import pytest

from lamina import _C

SIZES = [1 << 20, 1 << 24]
KINDS = ["relu", "sigmoid", "tanh"]


def _numpy_fwd_bwd(kind):
    if kind == "relu":
        return (lambda x, y: np.maximum(x, 0, out=y),
                lambda x, y, dy, dx: np.multiply(dy, x > 0, out=dx))
    if kind == "sigmoid":
        def f(x, y):
            np.negative(x, out=y); np.exp(y, out=y); y += 1; np.reciprocal(y, out=y)
        return f, lambda x, y, dy, dx: np.multiply(dy, y * (1 - y), out=dx)
    return (lambda x, y: np.tanh(x, out=y), lambda x, y, dy, dx: np.multiply(dy, 1 - y * y, out=dx))


def _torch_fwd_bwd(torch, kind):
    f = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[kind]
    bw = {"relu": lambda x, y, dy: torch.ops.aten.threshold_backward(dy, y, 0),
          "sigmoid": lambda x, y, dy: torch.ops.aten.sigmoid_backward(dy, y),
          "tanh": lambda x, y, dy: torch.ops.aten.tanh_backward(dy, y)}[kind]
    return f, bw


def _inputs(n):
    rng = np.random.default_rng(0)
    return rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("n", SIZES, ids=["1M", "16M"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", ["lamina", "numpy", "torch"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_activation(benchmark, direction, impl, kind, n):
    x, dy = _inputs(n)
    y, dx = np.empty_like(x), np.empty_like(x)
    _C.act_forward(kind, x, y)
    ref_y = y.copy()
    _C.act_backward(kind, x, y, dy, dx)
    ref_dx = dx.copy()
    if impl == "lamina":
        fwd = lambda: _C.act_forward(kind, x, y)  # noqa: E731
        bwd = lambda: _C.act_backward(kind, x, y, dy, dx)  # noqa: E731
        get = lambda: (y, dx)  # noqa: E731
    elif impl == "numpy":
        f, b = _numpy_fwd_bwd(kind)
        fwd, bwd = (lambda: f(x, y)), (lambda: b(x, ref_y, dy, dx))
        get = lambda: (y, dx)  # noqa: E731
    else:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(_C.get_num_threads())
        f, b = _torch_fwd_bwd(torch, kind)
        tx, tdy, ty = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(ref_y)
        out = {}
        fwd = lambda: out.__setitem__("y", f(tx))  # noqa: E731
        bwd = lambda: out.__setitem__("dx", b(tx, ty, tdy))  # noqa: E731
        get = lambda: (out["y"].numpy(), out["dx"].numpy())  # noqa: E731
    fn = fwd if direction == "forward" else bwd
    fn()  # warm-up (and the result check's input)
    fwd(); bwd()
    benchmark(fn)
    yy, dd = get()
    np.testing.assert_allclose(yy if direction == "forward" else dd, ref_y if direction == "forward" else ref_dx,
                               rtol=1e-5, atol=1e-6)
    nbytes = (2 if direction == "forward" else 3) * x.nbytes
    benchmark.extra_info["GB/s"] = round(nbytes / benchmark.stats.stats.median / 1e9, 2)
