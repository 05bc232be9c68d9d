"""`Tensor.data` as PyTorch has it: a tensor sharing the storage, outside autograd.

Public PyTorch code writes parameters through `.data` (DCGAN's `m.weight.data.normal_(0, 0.02)`,
old-style SGD `p.data.add_(p.grad.data, alpha=-lr)`, `output.data.max(1)[1]`), and replaces a
tensor's storage with `x.data = y`. Each case runs on lamina and on torch with the same numbers.
"""
import numpy as np
import pytest

import lamina
import lamina.nn as nn

torch = pytest.importorskip("torch")


def test_data_is_a_tensor_sharing_storage_outside_autograd():
    x = lamina.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = x.data
    assert isinstance(d, lamina.Tensor)
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    d.mul_(2.0)                                  # writes x's storage, recorded nowhere
    assert x.tolist() == [2.0, 4.0, 6.0] and x.requires_grad and x.grad_fn is None
    y = (x * x).sum()
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0, 12.0]


def test_data_of_a_nonleaf_is_detached():
    x = lamina.tensor([1.0, -2.0], requires_grad=True)
    y = x * 3.0
    assert y.grad_fn is not None and y.data.grad_fn is None and not y.data.requires_grad
    assert y.data.tolist() == [3.0, -6.0]


def test_assigning_data_replaces_the_storage_like_torch():
    for lib in (lamina, torch):
        x = lib.zeros(2, 3, requires_grad=True)
        x.data = lib.ones(4)                     # shape may change; requires_grad stays
        assert tuple(x.shape) == (4,) and x.requires_grad
        (x * 2.0).sum().backward()
        assert x.grad.tolist() == [2.0] * 4
    with pytest.raises(TypeError, match="data"):
        lamina.zeros(2).data = [1.0, 2.0]


def _sgd_by_data(lib, steps=3, lr=0.1):
    lib.manual_seed(0)
    w = lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    x = lib.tensor(np.arange(8, dtype=np.float32).reshape(2, 4) / 8)
    for _ in range(steps):
        loss = ((x @ w.t()) ** 2).mean()
        w.grad = None
        loss.backward()
        w.data.add_(w.grad.data, alpha=-lr)      # the pre-optim idiom
        w.data.mul_(0.99)
    return w.detach().numpy()


def test_old_style_sgd_through_data_matches_torch():
    np.testing.assert_allclose(_sgd_by_data(lamina), _sgd_by_data(torch), rtol=1e-6)


def test_dcgan_weights_init_through_data():
    def weights_init(m):
        name = m.__class__.__name__
        if name.find("Conv") != -1:
            m.weight.data.normal_(0.0, 0.02)
        elif name.find("BatchNorm") != -1:
            m.weight.data.normal_(1.0, 0.02)
            m.bias.data.fill_(0)

    lamina.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
    before = net[0].weight.detach().numpy().copy()
    net.apply(weights_init)
    w, g, b = (t.detach().numpy() for t in (net[0].weight, net[1].weight, net[1].bias))
    assert not np.array_equal(w, before)
    assert abs(w.std() - 0.02) < 0.002 and abs(w.mean()) < 0.002
    assert abs(g.mean() - 1.0) < 0.01 and np.all(b == 0)
    assert all(p.requires_grad and p.grad_fn is None for p in net.parameters())


def test_prediction_through_data_max():
    lamina.manual_seed(0)
    out = lamina.randn(5, 3, requires_grad=True) * 2.0
    target = lamina.tensor([0, 1, 2, 0, 1])
    pred = out.data.max(1, keepdim=True)[1]
    correct = pred.eq(target.data.view_as(pred)).sum().item()
    assert correct == int((out.detach().numpy().argmax(1) == target.numpy()).sum())


@lamina.no_grad()  # an inference call: the planned schedule, not the eager fallback
def test_compiled_step_sees_a_storage_swapped_through_data():
    lamina.manual_seed(0)
    model = nn.Linear(4, 2)
    step = lamina.compile(model)
    x = lamina.randn(3, 4)
    first = step(x).detach().numpy().copy()
    model.weight.data = lamina.zeros(2, 4)
    model.bias.data = lamina.ones(2)
    np.testing.assert_array_equal(step(x).detach().numpy(), np.ones((3, 2), np.float32))
    assert not np.array_equal(first, np.ones((3, 2), np.float32))


def test_comparison_with_pytest_approx_defers_like_torch():
    assert lamina.tensor(0.9) == pytest.approx(0.9)
    assert lamina.tensor([1.0, 2.0]).data == pytest.approx([1.0, 2.0])
