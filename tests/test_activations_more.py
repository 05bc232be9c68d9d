"""The activations beyond the lecture's (lamina.ops.act_extra) as modules: PyTorch's constructors,
reprs, outputs and gradients, side by side with PyTorch (the ops themselves are checked one by
one in tests/test_opinfo.py)."""
import numpy as np
import pytest

import lamina
from lamina import nn

from conftest import requires_torch

MODULES = [
    ("Hardtanh", (), {}), ("Hardtanh", (-2.0, 0.5), {}), ("ReLU6", (), {}), ("Hardsigmoid", (), {}),
    ("Hardswish", (), {}), ("SELU", (), {}), ("CELU", (0.7,), {}), ("Softsign", (), {}), ("LogSigmoid", (), {}),
    ("Tanhshrink", (), {}), ("Hardshrink", (0.3,), {}), ("Softshrink", (), {}), ("Threshold", (0.1, 20.0), {}),
    ("Softmin", (), {"dim": 1}), ("GLU", (), {}), ("GLU", (1,), {}), ("PReLU", (), {}), ("PReLU", (4,), {"init": 0.1}),
]


@pytest.mark.parametrize("name,args,kwargs", MODULES, ids=[f"{m[0]}{i}" for i, m in enumerate(MODULES)])
def test_module_matches_pytorch(name, args, kwargs):
    torch = requires_torch()
    x = np.random.default_rng(0).uniform(-8, 8, (3, 4, 6)).astype(np.float64)
    tm, lm = getattr(torch.nn, name)(*args, **kwargs).double(), getattr(nn, name)(*args, **kwargs).to(np.float64)
    assert repr(lm) == repr(tm)
    tx, lx = torch.tensor(x, requires_grad=True), lamina.tensor(x, requires_grad=True)
    ty, ly = tm(tx), lm(lx)
    np.testing.assert_allclose(ly.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(ty.shape)
    ty.backward(torch.tensor(g))
    ly.backward(lamina.tensor(g))
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    for (tn, tp), (ln, lp) in zip(tm.named_parameters(), lm.named_parameters()):
        assert tn == ln
        np.testing.assert_allclose(lp.grad.numpy(), tp.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_kinks_take_pytorchs_side():
    torch = requires_torch()
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0])
    for name, kw in [("hardtanh", {}), ("relu6", {}), ("hardsigmoid", {}), ("hardswish", {}), ("selu", {}),
                     ("celu", {}), ("hardshrink", {}), ("softshrink", {}), ("threshold", {"threshold": 1.0, "value": 0.0})]:
        tx, lx = torch.tensor(x, requires_grad=True), lamina.tensor(x, requires_grad=True)
        getattr(torch.nn.functional, name)(tx, **kw).sum().backward()
        getattr(lamina.nn.functional, name)(lx, **kw).sum().backward()
        np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy(), err_msg=name)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="max_val: expected max_val >= min_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(ValueError, match="weight: prelu expected 1 slope or 4"):
        lamina.nn.functional.prelu(lamina.ones(2, 4), lamina.ones(3))
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        lamina.nn.functional.glu(lamina.ones(2, 3))
    with pytest.raises(TypeError, match="input: softsign expected dtype float32 or float64"):
        lamina.nn.functional.softsign(lamina.ones(2, dtype=lamina.int64))
    with pytest.raises(ValueError, match="num_parameters: expected a positive integer"):
        nn.PReLU(0)


def test_prelu_trains_in_a_compiled_step():
    lamina.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.PReLU(4), nn.Linear(4, 2))
    opt = lamina.optim.SGD(model.parameters(), lr=0.1)
    step = lamina.compile(model, lamina.nn.functional.cross_entropy, opt)
    x, y = lamina.randn(8, 5), lamina.randint(0, 2, (8,))
    before = model[1].weight.detach().numpy().copy()
    losses = [step(x, y) for _ in range(5)]
    assert losses[-1] < losses[0] and not np.array_equal(model[1].weight.detach().numpy(), before)
