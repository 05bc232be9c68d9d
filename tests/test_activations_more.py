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


NORMS = [
    ("x.norm()", lambda m, x, y: x.norm()),
    ("x.norm(dim=1)", lambda m, x, y: x.norm(dim=1)),
    ("x.norm(p=1, dim=0, keepdim)", lambda m, x, y: x.norm(p=1, dim=0, keepdim=True)),
    ("norm(p=3)", lambda m, x, y: m.norm(x, p=3)),
    ("vector_norm(inf, dim=1)", lambda m, x, y: m.linalg.vector_norm(x, float("inf"), dim=1)),
    ("vector_norm(-inf)", lambda m, x, y: m.linalg.vector_norm(x, float("-inf"), dim=1)),
    ("vector_norm(0)", lambda m, x, y: m.linalg.vector_norm(x, 0, dim=1)),
    ("linalg.norm", lambda m, x, y: m.linalg.norm(x)),
    ("F.normalize", lambda m, x, y: m.nn.functional.normalize(x)),
    ("F.normalize(p=1, dim=0)", lambda m, x, y: m.nn.functional.normalize(x, p=1, dim=0)),
    ("F.cosine_similarity", lambda m, x, y: m.nn.functional.cosine_similarity(x, y)),
    ("F.pairwise_distance", lambda m, x, y: m.nn.functional.pairwise_distance(x, y)),
]


@pytest.mark.parametrize("name,fn", NORMS, ids=[n for n, _ in NORMS])
def test_norms_and_distances_match_pytorch_with_a_zero_row(name, fn):
    torch = requires_torch()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    a[1] = 0.0  # PyTorch's gradient of a zero norm is 0, not 0/0
    a[2, 3] = a[2, 1] = 9.0  # a tie for the inf-norm: the gradient is shared
    lx, ly = lamina.tensor(a, requires_grad=True), lamina.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    lo, to = fn(lamina, lx, ly), fn(torch, tx, ty)
    np.testing.assert_allclose(lo.detach().numpy(), to.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = rng.standard_normal(tuple(to.shape))
    lo.backward(lamina.tensor(g))
    to.backward(torch.tensor(g))
    for l, t in ((lx, tx), (ly, ty)):
        if t.grad is not None:
            np.testing.assert_allclose(l.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-14)


PADS = [("ZeroPad2d", (1,)), ("ZeroPad2d", ((1, 0, 2, 1),)), ("ConstantPad2d", (2, 3.5)), ("ConstantPad1d", ((1, 2), -1.0)),
        ("ReflectionPad2d", (2,)), ("ReflectionPad1d", ((2, 1),)), ("ReplicationPad2d", ((1, 2, 0, 1),)),
        ("ReplicationPad1d", (3,)), ("ZeroPad1d", (2,))]


@pytest.mark.parametrize("name,args", PADS, ids=[f"{n}{i}" for i, (n, _) in enumerate(PADS)])
def test_padding_and_unflatten_modules_match_pytorch(name, args):
    torch = requires_torch()
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    if name.endswith("1d"):
        x = x[:, :, 0]
    tm, lm = getattr(torch.nn, name)(*args), getattr(nn, name)(*args)
    assert repr(lm) == repr(tm)
    np.testing.assert_array_equal(lm(lamina.tensor(x)).numpy(), tm(torch.tensor(x)).numpy())
    tu, lu = torch.nn.Unflatten(1, (3, 1)), nn.Unflatten(1, (3, 1))
    assert repr(lu) == repr(tu)
    np.testing.assert_array_equal(lu(lamina.tensor(x)).numpy(), tu(torch.tensor(x)).numpy())
