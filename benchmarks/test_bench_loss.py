"""Softmax cross-entropy forward+backward: lamina's fused kernel vs NumPy vs PyTorch.

    python -m pytest benchmarks/test_bench_loss.py --benchmark-only --benchmark-columns=median,ops

Loss and dlogits are checked against the float64 NumPy reference before timing.
"""
import numpy as np
import pytest

import numpy_ref as R
from lamina import _C

SHAPES = [(256, 10), (4096, 1000)]


def lamina_ce(x, t):
    """(mean loss, dlogits) through lamina's two fused kernels; buffers reused across calls."""
    probs, g = np.empty_like(x), np.empty_like(x)

    def run():
        s, n = _C.cross_entropy_forward(x, t, probs)
        _C.cross_entropy_backward(probs, t, g, 1.0 / n)
        return s / n, g
    return run


def torch_ce(torch, x, t):
    tt = torch.from_numpy(t)

    def run():
        tx = torch.from_numpy(x).requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(tx, tt)
        loss.backward()
        return loss.item(), tx.grad.numpy()
    return run


@pytest.mark.parametrize("shape", SHAPES, ids=["256x10", "4096x1000"])
@pytest.mark.parametrize("impl", ["lamina", "numpy", "torch"])
def test_softmax_cross_entropy(benchmark, check_equal, impl, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    t = rng.integers(0, shape[1], shape[0])
    ref_loss, ref_g = R.softmax_cross_entropy(x.astype(np.float64), t)
    if impl == "lamina":
        run = lamina_ce(x, t)
    elif impl == "numpy":
        run = lambda: R.softmax_cross_entropy(x, t)  # noqa: E731
    else:
        run = torch_ce(pytest.importorskip("torch"), x, t)
    loss, g = run()  # warm-up, checked before timing
    check_equal(np.float64(loss), np.float64(ref_loss), rtol=1e-5, name=f"{impl} loss")
    check_equal(g, ref_g, rtol=1e-4, atol=1e-7, name=f"{impl} dlogits")
    benchmark(run)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["GB/s"] = round(3 * x.nbytes / benchmark.stats.stats.median / 1e9, 2)
