"""pytest-benchmark cases for conv2d forward / backward: lamina vs NumPy im2col vs PyTorch.

    PYTHONPATH=python python3 -m pytest benchmarks/test_bench_conv.py \
        --benchmark-group-by=param:case,param:pass_ --benchmark-columns=median,ops

The side-by-side ratio table is printed by benchmarks/bench_conv.py.
"""
import numpy as np
import pytest

import bench_conv as bc
from lamina import _C

torch = bc.torch
LIBS = ["lamina", "numpy"] + (["torch"] if torch is not None else [])
CASES = {c[0]: c[1:] for c in bc.CONV_CASES}


@pytest.fixture(autouse=True, scope="module")
def _threads():
    _C.set_num_threads(2)
    if torch is not None:
        torch.set_num_threads(2)


@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("case", list(CASES))
def test_conv2d(benchmark, case, lib, pass_):
    N, C, H, W, K, k, pad = CASES[case]
    x, w, b, dy = bc.conv_case(N, C, H, W, K, k, pad, np.random.default_rng(0))
    if lib == "lamina":
        fwd, bwd, outs = bc.lamina_conv_fns(x, w, b, dy, pad)
    elif lib == "numpy":
        fwd = lambda: bc.np_conv_forward(x, w, b, pad)  # noqa: E731
        bwd = lambda: bc.np_conv_backward(x, w, dy, pad)  # noqa: E731
    else:
        fwd, bwd = bc.torch_conv_fns(x, w, b, dy, pad)
    benchmark.extra_info["gflop"] = 2.0 * N * K * C * k * k * dy.shape[2] * dy.shape[3] / 1e9
    benchmark.pedantic(fwd if pass_ == "fwd" else bwd, rounds=5, iterations=1, warmup_rounds=1)
    if lib == "lamina":  # checked outside the timed region
        fwd()
        bwd()
        bc.check_conv(x, w, b, dy, pad, outs)
