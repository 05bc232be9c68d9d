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
