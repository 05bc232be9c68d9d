"""Shared test helpers: one function compares any lamina op with PyTorch (tinygrad style)."""
import os

import numpy as np
import pytest

import lamina

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # torch is only an oracle; comparisons skip without it
    torch = None

DATA_ROOT = os.environ.get("LAMINA_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
if not os.path.isdir(os.path.join(DATA_ROOT, "mnist")) and os.path.isdir("/work/shared/data/mnist"):
    DATA_ROOT = "/work/shared/data"

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


@pytest.fixture
def data_root():
    if not os.path.isdir(os.path.join(DATA_ROOT, "mnist")):
        pytest.fail(f"real MNIST not found under {DATA_ROOT}/mnist: set LAMINA_DATA")
    return DATA_ROOT


def requires_torch():
    if torch is None:
        pytest.skip("PyTorch not installed (only used as an oracle)")
    return torch


def helper_test_op(shapes, lamina_fn, torch_fn, dtype=np.float32, low=-2.0, high=2.0, seed=0,
                   grad=True, tol=None, inputs=None):
    """Run lamina_fn and torch_fn on identical seeded inputs; compare outputs and the gradients
    of sum(out * v) for a fixed random cotangent v."""
    t = requires_torch()
    rng = np.random.default_rng(seed)
    arrays = inputs if inputs is not None else [rng.uniform(low, high, s).astype(dtype) for s in shapes]
    tol = tol or TOL[np.dtype(dtype).type]
    lx = [lamina.tensor(a, requires_grad=grad) for a in arrays]
    tx = [t.tensor(a, requires_grad=grad) for a in arrays]
    lo, to = lamina_fn(*lx), torch_fn(*tx)
    np.testing.assert_allclose(lo.numpy(), to.detach().numpy(), **tol, err_msg="forward")
    if grad:
        v = rng.standard_normal(lo.shape).astype(dtype)
        (lo * lamina.tensor(v)).sum().backward()
        (to * t.tensor(v)).sum().backward()
        for i, (a, b) in enumerate(zip(lx, tx)):
            assert (a.grad is None) == (b.grad is None), f"input {i}: grad presence differs"
            if a.grad is not None:
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol, err_msg=f"grad of input {i}")
    return lo


def helper_gradcheck(shapes, fn, low=-2.0, high=2.0, seed=0):
    rng = np.random.default_rng(seed)
    xs = [lamina.tensor(rng.uniform(low, high, s), dtype=lamina.float64, requires_grad=True) for s in shapes]
    assert lamina.autograd.gradcheck(fn, xs)
