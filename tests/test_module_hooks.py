"""Module forward / backward hooks, against PyTorch's behaviour on the same programs."""
import numpy as np
import pytest

import lamina
from conftest import requires_torch


def _both(program):
    torch = requires_torch()
    return program(lamina), program(torch)


def _np(t):
    return None if t is None else np.round(t.detach().numpy().astype(np.float64), 6).tolist()


def test_forward_hooks_see_and_replace_as_torch_inside_a_fusing_sequential():
    def program(fw):
        fw.manual_seed(0)
        net = fw.nn.Sequential(fw.nn.Linear(3, 4), fw.nn.ReLU(), fw.nn.Linear(4, 2))
        seen = []
        h1 = net[1].register_forward_hook(lambda m, a, o: seen.append(("relu", _np(a[0]), _np(o))))
        h2 = net[0].register_forward_pre_hook(lambda m, a: (a[0] * 2,))
        h3 = net[2].register_forward_hook(lambda m, a, o: o + 1)
        h4 = net[2].register_forward_pre_hook(lambda m, a, k: seen.append(("kw", sorted(k))), with_kwargs=True)
        x = fw.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype=fw.float32)
        seen.append(("y", _np(net(x))))
        for h in (h1, h2, h3, h4):
            h.remove()
        seen.append(("after remove", _np(net(x))))
        with net[0].register_forward_hook(lambda m, a, o: o * 0):
            seen.append(("with", _np(net(x))))
        seen.append(("after with", _np(net(x))))
        return seen
    got, want = _both(program)
    assert got == want


def test_prepend_orders_hooks_as_torch():
    def program(fw):
        m = fw.nn.Identity()
        order = []
        m.register_forward_hook(lambda *a: order.append("a"))
        m.register_forward_hook(lambda *a: order.append("b"), prepend=True)
        m.register_forward_pre_hook(lambda *a: order.append("pre"))
        m(fw.ones(1))
        return order
    got, want = _both(program)
    assert got == want == ["pre", "b", "a"]


def test_full_backward_hooks_see_and_replace_gradients_as_torch():
    def program(fw):
        fw.manual_seed(0)
        net = fw.nn.Sequential(fw.nn.Linear(3, 4), fw.nn.Tanh(), fw.nn.Linear(4, 2))
        log = []
        net[0].register_full_backward_hook(lambda m, gi, go: log.append(("0", [_np(g) for g in gi], [_np(g) for g in go])))
        net[1].register_full_backward_hook(lambda m, gi, go: tuple(None if g is None else g * 3 for g in gi))
        net[1].register_full_backward_hook(lambda m, gi, go: log.append(("1", [_np(g) for g in gi])))
        net[2].register_full_backward_pre_hook(lambda m, go: (go[0] * 0.5,))
        x = fw.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype=fw.float32)
        y = net(x)
        (y * y).sum().backward()
        log.append(("w0", _np(net[0].weight.grad)))
        x2 = fw.tensor(np.ones((1, 3)), dtype=fw.float32, requires_grad=True)
        net(x2).sum().backward()
        log.append(("x2", _np(x2.grad)))
        return log
    with pytest.warns(UserWarning):  # torch warns when no input needs a gradient
        got, want = _both(program)
    assert got == want


def test_hooked_conv_features_for_visualisation():
    # the "look at a layer's activations" pattern: a forward hook storing a copy
    def program(fw):
        fw.manual_seed(1)
        net = fw.nn.Sequential(fw.nn.Conv2d(1, 2, 3), fw.nn.ReLU(), fw.nn.MaxPool2d(2))
        store = {}
        net[1].register_forward_hook(lambda m, a, o: store.__setitem__("act", o.detach()))
        net(fw.tensor(np.arange(36.0).reshape(1, 1, 6, 6) / 36, dtype=fw.float32))
        return _np(store["act"])
    got, want = _both(program)
    np.testing.assert_allclose(got, want, atol=1e-6)
