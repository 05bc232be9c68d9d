"""Bugs found by tools/fuzz_graph.py, each pinned by the smallest program that showed it."""
import numpy as np

import lamina
from lamina import nn


class _DeadBranch(nn.Module):
    """`dead` is used in the forward, but its result never reaches the loss (fuzz seed 19)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.eye(3, dtype=np.float32))
        self.dead = nn.Parameter(np.ones((3, 3), np.float32))

    def forward(self, x):
        _ = x @ self.dead
        return x @ self.w


def test_a_parameter_off_the_loss_path_keeps_grad_none_when_compiled():
    # Eager (and PyTorch) leave p.grad None for a parameter the loss does not depend on, and the
    # optimizer skips it; the compiled step published a zero gradient for it instead.
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.zeros((2, 3), np.float32)
    eager = _DeadBranch()
    opt = lamina.optim.SGD(eager.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.mse_loss(eager(lamina.tensor(x)), lamina.tensor(y)).backward()
        opt.step()
    assert eager.dead.grad is None
    model = _DeadBranch()
    step = lamina.compile(model, nn.functional.mse_loss, lamina.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(3):
        step(x, y)
        assert model.dead.grad is None
    np.testing.assert_array_equal(model.w.detach().numpy(), eager.w.detach().numpy())
    np.testing.assert_array_equal(model.dead.detach().numpy(), eager.dead.detach().numpy())


def test_a_mean_pointwise_loss_over_an_empty_batch_is_nan_as_in_pytorch():
    # fuzz seeds 3, 11, 25, 29 (batch 0): mse_loss returned 0.0 where PyTorch returns NaN (a mean
    # over nothing); csrc/loss.h's reduced_loss already says so, the pointwise losses skipped it.
    torch = __import__("pytest").importorskip("torch")
    x = np.zeros((0, 3), np.float32)
    for name in ("mse_loss", "binary_cross_entropy_with_logits"):
        got = getattr(nn.functional, name)(lamina.tensor(x, requires_grad=True), lamina.tensor(x))
        want = getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(x))
        assert np.isnan(want.item()) and np.isnan(got.item()), name
        assert got.dtype == lamina.float32
        got.backward()                                   # an empty gradient, no error
    s = getattr(nn.functional, "mse_loss")(lamina.tensor(x), lamina.tensor(x), reduction="sum")
    assert s.item() == 0.0
    model = nn.Linear(3, 3)
    step = lamina.compile(model, nn.functional.mse_loss, lamina.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(2):                                   # the traced step, then the compiled one
        assert np.isnan(step(x, x))


class _ThreeUses(nn.Module):
    """An intermediate `v` read by three ops, in an order that a depth-first walk of the graph
    from the loss does not follow (fuzz seeds 3097, 3146, 2036)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(np.linspace(-1.3, 1.7, 12).reshape(4, 3))

    def forward(self, x):
        v = x @ self.w
        p = v * 2.1              # consumers made in the order p, q, r ...
        q = v * 3.3
        r = v / 0.7
        return (r + q) + p       # ... but a depth-first walk from the loss meets r first


def test_a_value_with_many_gradient_contributions_sums_them_as_eager_does():
    # Eager swept its graph depth-first while the compiler went in reverse creation order, so
    # three or more contributions were summed in another order: ~1 ulp apart from step 1 on.
    rng = np.random.default_rng(3097)
    xs = [rng.standard_normal((5, 4)) for _ in range(3)]
    ys = [rng.standard_normal((5, 3)) for _ in range(3)]
    eager, compiled = _ThreeUses(), _ThreeUses()
    opt = lamina.optim.SGD(eager.parameters(), lr=0.01, momentum=0.9)
    step = lamina.compile(compiled, nn.functional.mse_loss,
                          lamina.optim.SGD(compiled.parameters(), lr=0.01, momentum=0.9))
    for x, y in zip(xs, ys):
        opt.zero_grad()
        loss = nn.functional.mse_loss(eager(lamina.tensor(x)), lamina.tensor(y))
        loss.backward()
        opt.step()
        assert step(x, y) == loss.item()
        np.testing.assert_array_equal(compiled.w.grad.numpy(), eager.w.grad.numpy())
    np.testing.assert_array_equal(compiled.w.detach().numpy(), eager.w.detach().numpy())
