"""SGD (momentum) and Adam steps on 1M float32 parameters: lamina kernel vs NumPy vs PyTorch.

    python -m pytest benchmarks/test_bench_optim.py --benchmark-only --benchmark-columns=median,ops

Before timing, three steps of each library are checked against three float64 NumPy steps
(numpy_ref.sgd_step / adam_step, PyTorch's formulas) from the same start.
"""
import numpy as np
import pytest

import numpy_ref as R
from lamina import _C

N = 1 << 20
LR = {"sgd": 0.01, "adam": 1e-3}


def lamina_step(opt, p, g, s1, s2):
    """One update as a function of the step count (1 first)."""
    if opt == "sgd":
        return lambda k: _C.sgd_step(p, g, s1, LR[opt], 0.9, 0.0, 0.0, False, k == 1)
    return lambda k: _C.adam_step(p, g, s1, s2, None, k, LR[opt], 0.9, 0.999, 1e-8, 0.0, False, False)


def numpy_step(opt, p, g, s1, s2):
    if opt == "sgd":
        return lambda k: R.sgd_step(p, g, s1, LR[opt], 0.9, first_step=k == 1)
    return lambda k: R.adam_step(p, g, s1, s2, k, LR[opt], 0.9, 0.999, 1e-8)


@pytest.mark.parametrize("impl", ["lamina", "numpy", "torch"])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_optimizer_step(benchmark, check_equal, opt, impl):
    rng = np.random.default_rng(0)
    p0, g = rng.standard_normal(N, dtype=np.float32), rng.standard_normal(N, dtype=np.float32)
    p, s1, s2 = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    if impl == "lamina":
        step = lamina_step(opt, p, g, s1, s2)
    elif impl == "numpy":
        step = numpy_step(opt, p, g, s1, s2)
    else:
        torch = pytest.importorskip("torch")
        tp = torch.from_numpy(p).requires_grad_(True)
        tp.grad = torch.from_numpy(g)
        o = (torch.optim.SGD([tp], lr=LR[opt], momentum=0.9) if opt == "sgd"
             else torch.optim.Adam([tp], lr=LR[opt]))
        step = lambda k: o.step()  # noqa: E731
    p64, g64 = p0.astype(np.float64), g.astype(np.float64)
    ref = numpy_step(opt, p64, g64, np.zeros_like(p64), np.zeros_like(p64))
    for k in (1, 2, 3):  # warm-up, checked before timing
        step(k)
        ref(k)
    check_equal(p, p64, rtol=1e-5, atol=1e-6, name=f"{impl} {opt} param after 3 steps")
    counter = iter(range(4, 1 << 30))
    benchmark(lambda: step(next(counter)))
    arrays = 3 if opt == "sgd" else 4
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["GB/s"] = round((2 * arrays - 1) * p.nbytes / benchmark.stats.stats.median / 1e9, 2)
