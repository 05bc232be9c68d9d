"""Every op against NumPy / PyTorch (forward + gradient) and float64 finite differences."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from conftest import helper_gradcheck, helper_test_op, torch

SHAPES_2D = [(1, 1), (1, 7), (5, 1), (3, 4), (17, 33), (64, 10)]
DTYPES = [np.float32, np.float64]

ACTS = {
    "relu": (F.relu, lambda t: t.relu()),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda t: torch.nn.functional.leaky_relu(t, 0.1)),
    "softplus": (F.softplus, lambda t: torch.nn.functional.softplus(t)),
    "sigmoid": (F.sigmoid, lambda t: t.sigmoid()),
    "tanh": (F.tanh, lambda t: t.tanh()),
}


@pytest.mark.parametrize("name", sorted(ACTS))
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 3, 33)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_vs_torch(name, shape, dtype):
    lf, tf = ACTS[name]
    helper_test_op([shape], lf, tf, dtype=dtype, low=-25, high=25)


@pytest.mark.parametrize("name", sorted(ACTS))
def test_activation_gradcheck(name):
    lf, _ = ACTS[name]
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (4, 5))
    x[np.abs(x) < 0.05] = 0.5  # finite differences straddling relu's kink are meaningless
    t = lamina.tensor(x, requires_grad=True)
    assert lamina.autograd.gradcheck(lambda v: lf(v).sum(), [t])


def test_activation_values_vs_numpy():
    x = np.linspace(-30, 30, 121).astype(np.float64)
    t = lamina.tensor(x)
    np.testing.assert_allclose(F.relu(t).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(F.sigmoid(t).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(F.tanh(t).numpy(), np.tanh(x), rtol=1e-12, atol=1e-15)
    # PyTorch's threshold: softplus(x) = x for x > 20
    np.testing.assert_allclose(F.softplus(t).numpy(), np.where(x > 20, x, np.logaddexp(0, x)), rtol=1e-12)
    np.testing.assert_allclose(F.step(t).numpy(), (x > 0).astype(np.float64))
    np.testing.assert_allclose(F.leaky_relu(t, 0.2).numpy(), np.where(x > 0, x, 0.2 * x))


def test_kinks_have_documented_gradients():
    x = lamina.tensor([0.0, -1.0, 1.0], requires_grad=True)
    F.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]  # ReLU'(0) = 0
    x.grad = None
    y = F.step(x)
    assert y.tolist() == [0.0, 0.0, 1.0]  # step(0) = 0
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]  # the hard threshold has zero gradient


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (2, 3, 4), (7, 1, 5), (17, 33, 9), (64, 100, 30)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_vs_torch(m, k, n, dtype):
    helper_test_op([(m, k), (k, n)], lambda a, b: a @ b, lambda a, b: a @ b, dtype=dtype)


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 5, 3), (3, 4)),
                                   ((2, 5, 3), (2, 3, 4)), ((1, 5, 3), (4, 3, 2))])
def test_matmul_shapes_vs_torch(sa, sb):
    helper_test_op([sa, sb], lambda a, b: a @ b, lambda a, b: a @ b, dtype=np.float64)


def test_matmul_gradcheck_and_errors():
    helper_gradcheck([(3, 4), (4, 2)], lambda a, b: (a @ b).sum())
    helper_gradcheck([(2, 3, 4), (2, 4, 2)], lambda a, b: (a @ b).sum())
    with pytest.raises(ValueError, match="cannot be multiplied"):
        lamina.ones(2, 3) @ lamina.ones(4, 2)
    with pytest.raises(TypeError, match="dtypes differ"):
        lamina.ones(2, 3) @ lamina.ones(3, 2, dtype=lamina.float64)


@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (4, 7, 3), (64, 784, 300), (5, 33, 17)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_vs_torch(n, i, o, bias, dtype):
    shapes = [(n, i), (o, i)] + ([(o,)] if bias else [])
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else None  # K=784 float32 sums
    helper_test_op(shapes, lambda *a: F.linear(*a), lambda *a: torch.nn.functional.linear(*a), dtype=dtype,
                   tol=tol)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_fused_linear_activation_equals_unfused(act):
    lamina.manual_seed(1)
    seq = lamina.nn.Sequential(lamina.nn.Linear(6, 5), {"relu": lamina.nn.ReLU, "sigmoid": lamina.nn.Sigmoid,
                                                       "tanh": lamina.nn.Tanh}[act]()).double()
    x = lamina.randn(4, 6, dtype=lamina.float64, requires_grad=True)
    fused = seq(x)
    unfused = getattr(F, act)(F.linear(x, seq[0].weight, seq[0].bias))
    np.testing.assert_allclose(fused.detach().numpy(), unfused.detach().numpy(), rtol=1e-12)
    assert lamina.autograd.gradcheck(lambda x, w, b: seq(x).sum(), [x, seq[0].weight, seq[0].bias])


def test_linear_gradcheck():
    helper_gradcheck([(3, 4), (2, 4), (2,)], lambda x, w, b: (F.linear(x, w, b) ** 2).sum())


@pytest.mark.parametrize("shape,dim", [((3, 5), -1), ((3, 5), 0), ((1, 1), 1), ((2, 3, 4), 1), ((4, 1000), 1)])
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_vs_torch(shape, dim, log, dtype):
    lf = (lambda x: F.log_softmax(x, dim)) if log else (lambda x: F.softmax(x, dim))
    tf = (lambda x: torch.log_softmax(x, dim)) if log else (lambda x: torch.softmax(x, dim))
    helper_test_op([shape], lf, tf, dtype=dtype, low=-10, high=10)


def test_softmax_is_stable_for_huge_logits():
    x = lamina.tensor([[1e4, 0.0, -1e4]])
    y = F.softmax(x, dim=1).numpy()
    assert np.isfinite(y).all() and y[0, 0] == pytest.approx(1.0)
    assert np.isfinite(F.log_softmax(x, dim=1).numpy()).all()


@pytest.mark.parametrize("n,c", [(1, 2), (4, 10), (33, 7), (256, 10)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_vs_torch(n, c, dtype):
    rng = np.random.default_rng(n * c)
    target = rng.integers(0, c, n)
    helper_test_op([(n, c)], lambda x: F.cross_entropy(x, target),
                   lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(target)), dtype=dtype, low=-5, high=5)
    helper_test_op([(n, c)], lambda x: F.cross_entropy(x, lamina.tensor(target), reduction="sum"),
                   lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(target), reduction="sum"),
                   dtype=dtype)


def test_cross_entropy_variants_vs_torch():
    rng = np.random.default_rng(0)
    target = np.array([0, 2, -100, 1])
    for kw in (dict(reduction="none"), dict(ignore_index=-100), dict(label_smoothing=0.1),
               dict(weight=np.array([1.0, 2.0, 0.5]))):
        tkw = dict(kw)
        if "weight" in tkw:
            tkw["weight"] = torch.tensor(tkw["weight"])
        helper_test_op([(4, 3)], lambda x: F.cross_entropy(x, target, **kw),
                       lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(target), **tkw),
                       dtype=np.float64)


def test_cross_entropy_gradcheck_and_errors():
    target = np.array([1, 0, 3])
    helper_gradcheck([(3, 4)], lambda x: F.cross_entropy(x, target))
    with pytest.raises(ValueError, match="out of range"):
        F.cross_entropy(lamina.zeros(2, 3), [0, 3])
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(lamina.zeros(2, 3), [0, 1, 2])
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(lamina.zeros(2, 3), np.array([0.5, 1.5], dtype=np.complex64))


def test_lecture_softmax_cross_entropy_gradient_is_y_minus_t():
    z = lamina.tensor([[2.0, 1.0, 0.1]], dtype=lamina.float64, requires_grad=True)
    F.cross_entropy(z, [0]).backward()
    y = np.exp(z.detach().numpy()) / np.exp(z.detach().numpy()).sum()
    np.testing.assert_allclose(z.grad.numpy(), y - np.array([[1.0, 0, 0]]), rtol=1e-12)


@pytest.mark.parametrize("shape", [(1,), (5,), (3, 4), (2, 3, 5)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_vs_torch(shape, dtype):
    helper_test_op([shape, shape], F.mse_loss, torch.nn.functional.mse_loss, dtype=dtype)
    helper_test_op([shape, shape], lambda a, b: F.mse_loss(a, b, reduction="sum"),
                   lambda a, b: torch.nn.functional.mse_loss(a, b, reduction="sum"), dtype=dtype)


@pytest.mark.parametrize("shape", [(1,), (6,), (4, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_vs_torch(shape, dtype):
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, shape).astype(dtype)
    helper_test_op([shape], lambda x: F.binary_cross_entropy_with_logits(x, t),
                   lambda x: torch.nn.functional.binary_cross_entropy_with_logits(x, torch.tensor(t)),
                   dtype=dtype, low=-30, high=30)


def test_losses_gradcheck():
    t = lamina.tensor(np.random.default_rng(1).uniform(size=(3, 4)))
    helper_gradcheck([(3, 4)], lambda x: F.mse_loss(x, t))
    helper_gradcheck([(3, 4)], lambda x: F.binary_cross_entropy_with_logits(x, t))


@pytest.mark.parametrize("fn", [
    (lambda a, b: a + b), (lambda a, b: a - b), (lambda a, b: a * b), (lambda a, b: a / (b * b + 1.0)),
])
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 5)), ((1,), (2, 3))])
def test_arithmetic_vs_torch(fn, sa, sb):
    helper_test_op([sa, sb], fn, fn, dtype=np.float64)


@pytest.mark.parametrize("fn", [
    lambda x: x.exp(), lambda x: (x * x + 1.0).log(), lambda x: x.sum(1), lambda x: x.mean(),
    lambda x: x.mean(0, keepdim=True), lambda x: x.max(1).values, lambda x: x.permute(1, 0),
    lambda x: x.reshape(2, -1), lambda x: -x, lambda x: x ** 3, lambda x: x.abs(),
])
def test_unary_vs_torch(fn):
    helper_test_op([(4, 6)], fn, fn, dtype=np.float64)
