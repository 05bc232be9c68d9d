"""pytest-benchmark cases for 2x2/2 max and average pooling, forward and backward:
lamina vs NumPy (reshape + reduce) vs PyTorch.

    PYTHONPATH=python python3 -m pytest benchmarks/test_bench_pool.py --benchmark-group-by=param:case,param:op
"""
import numpy as np
import pytest

import bench_conv as bc
from lamina import _C

torch = bc.torch
LIBS = ["lamina", "numpy"] + (["torch"] if torch is not None else [])
CASES = {c[0]: c[1] for c in bc.POOL_CASES}


@pytest.fixture(autouse=True, scope="module")
def _threads():
    _C.set_num_threads(2)
    if torch is not None:
        torch.set_num_threads(2)


@pytest.mark.parametrize("op", ["max_fwd", "max_bwd", "avg_fwd", "avg_bwd"])
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("case", list(CASES))
def test_pool2d(benchmark, case, lib, op):
    shape = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    N, C, H, W = shape
    oshape = (N, C, H // 2, W // 2)
    dy = rng.standard_normal(oshape).astype(np.float32)
    y, idx, dx = np.empty(oshape, np.float32), np.empty(oshape, np.int64), np.empty_like(x)
    k, z = (2, 2), (0, 0)
    _C.max_pool2d_forward(x, y, idx, k, k, z, (1, 1), False)
    if lib == "lamina":
        fn = {"max_fwd": lambda: _C.max_pool2d_forward(x, y, idx, k, k, z, (1, 1), False),
              "max_bwd": lambda: _C.max_pool2d_backward(dy, idx, dx, k, k, z, (1, 1), False),
              "avg_fwd": lambda: _C.avg_pool2d_forward(x, y, k, k, z, False, True),
              "avg_bwd": lambda: _C.avg_pool2d_backward(dy, dx, k, k, z, False, True)}[op]
    elif lib == "numpy":
        ny = bc.np_pool_max(x)
        fn = {"max_fwd": lambda: bc.np_pool_max(x), "max_bwd": lambda: bc.np_pool_max_backward(x, ny, dy),
              "avg_fwd": lambda: bc.np_pool_avg(x), "avg_bwd": lambda: bc.np_pool_avg_backward(x, dy)}[op]
    else:
        tx, tdy, tidx = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(idx)
        fn = {"max_fwd": lambda: torch.nn.functional.max_pool2d(tx, 2, return_indices=True),
              "max_bwd": lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                  tdy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, tidx),
              "avg_fwd": lambda: torch.nn.functional.avg_pool2d(tx, 2),
              "avg_bwd": lambda: torch.ops.aten.avg_pool2d_backward(tdy, tx, [2, 2], [2, 2], [0, 0],
                                                                     False, True, None)}[op]
    benchmark(fn)
    if lib == "lamina":  # checked outside the timed region
        if op == "max_fwd":
            assert np.array_equal(y, bc.np_pool_max(x))
        elif op == "avg_fwd":
            np.testing.assert_allclose(y, bc.np_pool_avg(x), rtol=1e-6, atol=1e-6)
        elif op == "avg_bwd":
            np.testing.assert_allclose(dx, bc.np_pool_avg_backward(x, dy), rtol=1e-6, atol=1e-7)
