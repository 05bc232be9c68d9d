"""Softmax cross-entropy forward+backward: lamina's fused kernel vs NumPy vs PyTorch.

Run: PYTHONPATH=python python -m pytest benchmarks/test_bench_loss.py --benchmark-columns=median,ops
"""
import numpy as np
import pytest

from lamina import _C

SHAPES = [(256, 10), (4096, 1000)]


def _numpy_ce(x, t):
    m = x.max(1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(1, keepdims=True)
    loss = (np.log(s[:, 0]) + m[:, 0] - x[np.arange(len(t)), t]).mean()
    g = e / s
    g[np.arange(len(t)), t] -= 1
    g /= len(t)
    return loss, g


@pytest.mark.parametrize("shape", SHAPES, ids=["256x10", "4096x1000"])
@pytest.mark.parametrize("impl", ["lamina", "numpy", "torch"])
def test_softmax_cross_entropy(benchmark, impl, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    t = rng.integers(0, shape[1], shape[0])
    ref_loss, ref_g = _numpy_ce(x.astype(np.float64), t)
    if impl == "lamina":
        probs, g = np.empty_like(x), np.empty_like(x)

        def run():
            s, n = _C.cross_entropy_forward(x, t, probs)
            _C.cross_entropy_backward(probs, t, g, 1.0 / n)
            return s / n, g
    elif impl == "numpy":
        def run():
            return _numpy_ce(x, t)
    else:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(_C.get_num_threads())
        tt = torch.from_numpy(t)

        def run():
            tx = torch.from_numpy(x).requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(tx, tt)
            loss.backward()
            return loss.item(), tx.grad.numpy()
    run()
    benchmark(run)
    loss, g = run()
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(g, ref_g, rtol=1e-4, atol=1e-7)
    benchmark.extra_info["GB/s"] = round(3 * x.nbytes / benchmark.stats.stats.median / 1e9, 2)
