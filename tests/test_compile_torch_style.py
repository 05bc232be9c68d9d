"""lamina.compile used as PyTorch code uses torch.compile: `model = torch.compile(model)`, then
the ordinary training loop (forward, loss.backward(), optimizer.step()) and evaluation, with the
same numbers as the uncompiled model; the decorator forms and PyTorch's keywords."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import nn
from lamina.graph import CompiledForward



def _net(seed=0):
    lamina.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 10))


def _batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [(lamina.tensor(rng.standard_normal((6, 1, 8, 8)).astype(np.float32)),
             lamina.tensor(rng.integers(0, 10, 6))) for _ in range(n)]


def _train(model, params, batches):
    opt = lamina.optim.SGD(params, lr=0.1, momentum=0.9)
    losses = []
    model.train()
    for x, y in batches:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_training_loop_through_the_compiled_module_matches_the_plain_model():
    plain, inner = _net(), _net()
    compiled = lamina.compile(inner)
    assert isinstance(compiled, CompiledForward) and compiled._orig_mod is inner
    batches = _batches()
    want = _train(plain, plain.parameters(), batches)
    got = _train(compiled, compiled.parameters(), batches)   # parameters(), train() are the model's
    assert got == want
    for a, b in zip(plain.parameters(), inner.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    # the output of a call where gradients flow carries them, as torch.compile's module's does
    out = compiled(batches[0][0])
    assert out.requires_grad and out.grad_fn is not None


def test_evaluation_under_no_grad_runs_the_planned_schedule():
    model = _net()
    compiled = lamina.compile(model)
    compiled.eval()
    assert not model.training                     # eval() reached the model
    x = _batches(1)[0][0]
    with lamina.no_grad():
        want = model(x).numpy()
        for _ in range(3):
            got = compiled(x)
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    assert compiled.traces == 1 and compiled._last is not None   # traced once, then planned runs
    assert not got.requires_grad


def test_a_frozen_model_runs_planned_even_with_grad_mode_on():
    model = _net().requires_grad_(False)
    compiled = lamina.compile(model)
    x = _batches(1)[0][0]
    compiled(x)
    compiled(x)
    assert compiled.traces == 1
    # an input that requires grad makes a gradient flow: eager, with a graph back to the input
    xg = x.detach().requires_grad_(True)
    out = compiled(xg)
    out.sum().backward()
    assert xg.grad is not None and xg.grad.shape == xg.shape
    assert compiled.traces == 1


def test_state_dict_and_attribute_access_go_to_the_model():
    model = _net()
    compiled = lamina.compile(model)
    assert list(compiled.state_dict()) == list(model.state_dict())
    assert next(iter(compiled.children())) is model[0]
    with pytest.raises(AttributeError, match="no_such_thing"):
        compiled.no_such_thing


def test_decorator_forms_and_torch_keywords():
    @lamina.compile
    def double(x):
        return x * 2

    @lamina.compile(mode="reduce-overhead", fullgraph=True, dynamic=False)
    def plus_one(x):
        return x + 1

    x = lamina.tensor([1.0, 2.0])
    np.testing.assert_array_equal(double(x).numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(plus_one(x).numpy(), [2.0, 3.0])
    model = _net()
    assert lamina.compile(model, disable=True) is model
    compiled = lamina.compile(model, mode="max-autotune", backend="inductor")
    assert compiled._orig_mod is model
    with pytest.raises(RuntimeError, match="Unrecognized mode=fastest"):
        lamina.compile(model, mode="fastest")
    with pytest.raises(RuntimeError, match="Either mode or options"):
        lamina.compile(model, mode="default", options={"x": 1})
    with pytest.raises(TypeError, match="model must be a Module or a function"):
        lamina.compile(3)


def test_compile_torch_parity():
    torch = pytest.importorskip("torch")
    lamina.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    with torch.no_grad():
        for tp, p in zip(tmodel.parameters(), model.parameters()):
            tp.copy_(torch.from_numpy(p.detach().numpy()))
    compiled = lamina.compile(model)
    opt = lamina.optim.Adam(compiled.parameters(), lr=0.01)
    topt = torch.optim.Adam(tmodel.parameters(), lr=0.01)   # eager torch: the oracle's numbers
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.standard_normal((4, 5)).astype(np.float32)
        y = rng.standard_normal((4, 3)).astype(np.float32)
        opt.zero_grad()
        loss = F.mse_loss(compiled(lamina.tensor(x)), lamina.tensor(y))
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.functional.mse_loss(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5, atol=1e-6)
    for tp, p in zip(tmodel.parameters(), model.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
