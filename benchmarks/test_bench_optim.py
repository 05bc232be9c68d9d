"""SGD (momentum) and Adam steps on 1M float32 parameters: lamina kernel vs NumPy vs PyTorch.

Run: PYTHONPATH=python python -m pytest benchmarks/test_bench_optim.py --benchmark-columns=median,ops
"""
import numpy as np
import pytest

from lamina import _C

N = 1 << 20


def _np_sgd(p, g, buf):
    buf *= 0.9
    buf += g
    p -= 0.01 * buf


def _np_adam(p, g, m, v, step):
    m += 0.1 * (g - m)
    v *= 0.999
    v += 0.001 * g * g
    denom = np.sqrt(v) / np.sqrt(1 - 0.999 ** step) + 1e-8
    p -= (1e-3 / (1 - 0.9 ** step)) * (m / denom)


@pytest.mark.parametrize("impl", ["lamina", "numpy", "torch"])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_optimizer_step(benchmark, opt, impl):
    rng = np.random.default_rng(0)
    p0, g = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    p, s1, s2 = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    if impl == "lamina":
        if opt == "sgd":
            run = lambda: _C.sgd_step(p, g, s1, 0.01, 0.9, 0.0, 0.0, False, False)  # noqa: E731
        else:
            run = lambda: _C.adam_step(p, g, s1, s2, None, 10, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False)  # noqa: E731
    elif impl == "numpy":
        run = (lambda: _np_sgd(p, g, s1)) if opt == "sgd" else (lambda: _np_adam(p, g, s1, s2, 10))
    else:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(_C.get_num_threads())
        tp = torch.from_numpy(p).requires_grad_(True)
        tp.grad = torch.from_numpy(g)
        o = torch.optim.SGD([tp], lr=0.01, momentum=0.9) if opt == "sgd" else torch.optim.Adam([tp], lr=1e-3)
        run = o.step
    run()
    benchmark(run)
    assert np.all(np.isfinite(p)) and not np.array_equal(p, p0)  # it updated in place
    arrays = 3 if opt == "sgd" else 4
    benchmark.extra_info["GB/s"] = round((2 * arrays - 1) * p.nbytes / benchmark.stats.stats.median / 1e9, 2)
