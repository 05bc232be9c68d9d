"""pytest-benchmark cases for 2x2/2 max and average pooling, forward and backward:
lamina vs NumPy (reshape + reduce, `numpy_ref`) vs PyTorch.

    python -m pytest benchmarks/test_bench_pool.py --benchmark-only --benchmark-columns=median,ops

Each library's output is checked against numpy_ref before timing (max pooling exactly,
including the first-max tie rule of the backward pass).
"""
import numpy as np
import pytest

import bench_conv as bc
import numpy_ref as R
from lamina import _C

torch = bc.torch
LIBS = ["lamina", "numpy"] + (["torch"] if torch is not None else [])
CASES = {c[0]: c[1] for c in bc.POOL_CASES}


@pytest.mark.parametrize("op", ["max_fwd", "max_bwd", "avg_fwd", "avg_bwd"])
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("case", list(CASES))
def test_pool2d(benchmark, check_equal, case, lib, op):
    shape = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    N, C, H, W = shape
    oshape = (N, C, H // 2, W // 2)
    dy = rng.standard_normal(oshape).astype(np.float32)
    y, idx, dx = np.empty(oshape, np.float32), np.empty(oshape, np.int64), np.empty_like(x)
    k, z = (2, 2), (0, 0)
    _C.max_pool2d_forward(x, y, idx, k, k, z, (1, 1), False)  # indices for the backward passes
    if lib == "lamina":
        fn = {"max_fwd": lambda: _C.max_pool2d_forward(x, y, idx, k, k, z, (1, 1), False),
              "max_bwd": lambda: _C.max_pool2d_backward(dy, idx, dx, k, k, z, (1, 1), False),
              "avg_fwd": lambda: _C.avg_pool2d_forward(x, y, k, k, z, False, True),
              "avg_bwd": lambda: _C.avg_pool2d_backward(dy, dx, k, k, z, False, True)}[op]
        result = lambda: y if op.endswith("fwd") else dx  # noqa: E731
    elif lib == "numpy":
        fn = {"max_fwd": lambda: R.max_pool2d(x), "max_bwd": lambda: R.max_pool2d_backward(x, dy),
              "avg_fwd": lambda: R.avg_pool2d(x), "avg_bwd": lambda: R.avg_pool2d_backward(x, dy)}[op]
        result = fn
    else:
        tx, tdy, tidx = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(idx)
        fn = {"max_fwd": lambda: torch.nn.functional.max_pool2d(tx, 2, return_indices=True)[0],
              "max_bwd": lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                  tdy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, tidx),
              "avg_fwd": lambda: torch.nn.functional.avg_pool2d(tx, 2),
              "avg_bwd": lambda: torch.ops.aten.avg_pool2d_backward(tdy, tx, [2, 2], [2, 2], [0, 0],
                                                                     False, True, None)}[op]
        result = lambda: fn().numpy()  # noqa: E731
    fn()  # warm-up, then check before timing
    want = {"max_fwd": lambda: R.max_pool2d(x), "max_bwd": lambda: R.max_pool2d_backward(x, dy),
            "avg_fwd": lambda: R.avg_pool2d(x), "avg_bwd": lambda: R.avg_pool2d_backward(x, dy)}[op]()
    exact = op.startswith("max")
    check_equal(result(), want, rtol=0 if exact else 1e-6, atol=0 if exact else 1e-6, name=f"{lib} {op}")
    benchmark(fn)
