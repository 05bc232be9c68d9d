import numpy as np
import pytest

import lamina
import lamina.nn as nn
import lamina.nn.functional as F


def test_lecture_xor_with_hard_thresholds():
    """h1 = [x1 + x2 - 0.5 > 0], h2 = [x1 + x2 - 1.5 > 0], y = [h1 - h2 - 0.5 > 0]."""
    net = nn.Sequential(nn.Linear(2, 2), nn.Step(), nn.Linear(2, 1), nn.Step())
    with lamina.no_grad():
        net[0].weight.copy_(np.array([[1.0, 1.0], [1.0, 1.0]]))
        net[0].bias.copy_(np.array([-0.5, -1.5]))
        net[2].weight.copy_(np.array([[1.0, -1.0]]))
        net[2].bias.copy_(np.array([-0.5]))
    x = lamina.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert net(x).detach().numpy().ravel().tolist() == [0.0, 1.0, 1.0, 0.0]


def test_shape_error_names_the_module_and_shapes():
    model = lamina.models.mlp((784, 300, 100, 10))
    with pytest.raises(ValueError) as e:
        model(lamina.zeros(2, 300))
    msg = str(e.value)
    assert "fc1" in msg and "784" in msg and "300" in msg
    nested = nn.Sequential(nn.Linear(4, 300), nn.ReLU(), nn.Sequential(nn.Linear(784, 10)))
    with pytest.raises(ValueError) as e:
        nested(lamina.zeros(2, 4))
    assert "'2.0'" in str(e.value) and "784" in str(e.value) and "300" in str(e.value)


def test_module_registration_state_dict_round_trip():
    lamina.manual_seed(0)
    a = lamina.models.mlp((5, 4, 3))
    names = [n for n, _ in a.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    lamina.manual_seed(1)
    b = lamina.models.mlp((5, 4, 3))
    b.load_state_dict(a.state_dict())
    for (n1, p1), (n2, p2) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())
    bad = a.state_dict()
    bad["fc1.weight"] = lamina.zeros(3, 3)
    with pytest.raises(ValueError, match="fc1.weight"):
        b.load_state_dict(bad)
    with pytest.raises(KeyError, match="Missing key"):
        b.load_state_dict({})


def test_linear_default_init_matches_pytorch_bounds():
    lamina.manual_seed(0)
    lin = nn.Linear(400, 120)
    bound = 1 / np.sqrt(400)
    assert np.abs(lin.weight.detach().numpy()).max() <= bound
    assert np.abs(lin.weight.detach().numpy()).max() > 0.9 * bound
    assert np.abs(lin.bias.detach().numpy()).max() <= bound


def test_train_eval_zero_grad_and_dtype():
    m = lamina.models.mlp((3, 2))
    m.eval()
    assert all(not mm.training for mm in m.modules())
    m.train()
    out = m(lamina.ones(1, 3)).sum()
    out.backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.double()
    assert all(p.dtype == lamina.float64 for p in m.parameters())
    assert m(lamina.ones(1, 3, dtype=lamina.float64)).dtype == lamina.float64


def test_shared_parameter_listed_once_and_gets_summed_gradient():
    lin = nn.Linear(3, 3, bias=False).double()
    model = nn.Sequential(lin, nn.Tanh(), lin)
    assert len(list(model.parameters())) == 1
    x = lamina.randn(2, 3, dtype=lamina.float64)
    assert lamina.autograd.gradcheck(lambda w: model(x).sum(), [lin.weight])


def test_init_functions():
    lamina.manual_seed(0)
    w = lamina.empty(200, 100)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / 100)) < 0.01
    nn.init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() <= np.sqrt(6 / 300) + 1e-7
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    assert np.abs(w.numpy()).max() <= np.sqrt(6 / 100) + 1e-7
    nn.init.xavier_normal_(w)
    assert abs(w.numpy().std() - np.sqrt(2 / 300)) < 0.01


def test_modules_vs_functional():
    x = lamina.randn(3, 4)
    for mod, fn in ((nn.ReLU(), F.relu), (nn.Sigmoid(), F.sigmoid), (nn.Tanh(), F.tanh),
                    (nn.Softplus(), F.softplus), (nn.LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2)),
                    (nn.Step(), F.step), (nn.Identity(), lambda t: t)):
        np.testing.assert_array_equal(mod(x).numpy(), fn(x).numpy())
    tgt = lamina.tensor([0, 1, 2])
    assert nn.CrossEntropyLoss()(x, tgt).item() == pytest.approx(F.cross_entropy(x, tgt).item())
    assert nn.MSELoss()(x, x * 0).item() == pytest.approx((x.numpy() ** 2).mean(), rel=1e-5)


def test_gradient_descent_fits_lecture_logistic_least_squares():
    """z = wx + b, y = sigma(z), L = 1/2 (y - t)^2: dL/dw = (y - t) sigma'(z) x."""
    w = lamina.tensor(0.5, dtype=lamina.float64, requires_grad=True)
    b = lamina.tensor(-0.3, dtype=lamina.float64, requires_grad=True)
    x, t = 1.7, 0.9
    y = F.sigmoid(w * x + b)
    L = 0.5 * (y - t) ** 2
    L.backward()
    yv = 1 / (1 + np.exp(-(0.5 * x - 0.3)))
    assert w.grad.item() == pytest.approx((yv - t) * yv * (1 - yv) * x, rel=1e-12)
    assert b.grad.item() == pytest.approx((yv - t) * yv * (1 - yv), rel=1e-12)
