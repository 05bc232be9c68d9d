import math

import numpy as np
import pytest

import lamina


def test_lecture_fan_out_chain_rule():
    """f(x, y) = y + e^{xy}, x = cos t, y = t^2 (the lecture's multivariate chain rule)."""
    for tv in (0.3, 1.0, 2.5):
        t = lamina.tensor(tv, dtype=lamina.float64, requires_grad=True)
        x, y = t.cos(), t ** 2
        f = y + (x * y).exp()
        f.backward()
        xv, yv = math.cos(tv), tv * tv
        expected = yv * math.exp(xv * yv) * (-math.sin(tv)) + (1 + xv * math.exp(xv * yv)) * 2 * tv
        assert t.grad.item() == pytest.approx(expected, rel=1e-12)


def test_fan_out_square_plus_identity():
    x = lamina.tensor([1.0, -2.0, 3.0], dtype=lamina.float64, requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy() + 1)


def test_shared_weight_used_by_two_layers_accumulates():
    lin = lamina.nn.Linear(3, 3, dtype=lamina.float64)
    x = lamina.randn(4, 3, dtype=lamina.float64, requires_grad=True)
    lamina.autograd.gradcheck(lambda x, w: lamina.nn.functional.linear(
        lamina.nn.functional.linear(x, w).tanh(), w).sum(), [x, lin.weight])


def test_gradients_accumulate_across_backward_calls():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_long_chain_is_not_recursive():
    x = lamina.tensor(1.0, dtype=lamina.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-9)


def test_graph_freed_unless_retained():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_needs_scalar_or_grad():
    x = lamina.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(lamina.tensor([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 4.0])


def test_broadcast_gradient_reduced_to_input_shape():
    a = lamina.randn(3, 1, 4, dtype=lamina.float64, requires_grad=True)
    b = lamina.randn(5, 1, dtype=lamina.float64, requires_grad=True)
    lamina.autograd.gradcheck(lambda a, b: (a * b + b).sum(), [a, b])
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1, 4) and b.grad.shape == (5, 1)


def test_missing_rule_raises():
    class NoRule(lamina.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    x = lamina.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="no gradient rule for NoRule"):
        NoRule.apply(x).sum().backward()


def test_gradcheck_detects_a_wrong_rule():
    class Wrong(lamina.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, dy):
            return (dy,)  # should be 2 x dy

    x = lamina.randn(3, dtype=lamina.float64, requires_grad=True)
    with pytest.raises(AssertionError, match="differ"):
        lamina.autograd.gradcheck(lambda t: Wrong.apply(t).sum(), [x])


@pytest.mark.parametrize("fn", [
    lambda x: x.exp().sum(),
    lambda x: (x * x + 1.0).log().mean(),
    lambda x: (x / (x * x + 1.0)).sum(0).max(),
    lambda x: x.abs().sum(),
    lambda x: (x ** 3).transpose(0, 1).reshape(-1)[1:5].sum(),
    lambda x: x.sin().cos().sum(1, keepdim=True).sum(),
    lambda x: x.max(1).values.sum() + x.min(0).values.sum(),
    lambda x: lamina.cat([x, x * 2], 1).sum(),
    lambda x: x.clamp(-0.5, 0.5).sum(),
    lambda x: (x.unsqueeze(0).expand(3, -1, -1) * 2).sum(),
])
def test_gradcheck_primitives(fn):
    lamina.manual_seed(0)
    x = lamina.randn(4, 5, dtype=lamina.float64, requires_grad=True)
    assert lamina.autograd.gradcheck(fn, [x])
