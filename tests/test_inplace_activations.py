"""inplace=True does what PyTorch's does: the activation is written into its input (which the call
returns), autograd sees the write, and what PyTorch refuses (a leaf that requires grad, a saved
output modified) lamina refuses too. Before, lamina accepted inplace=True and ignored it, so code
reading the input after F.relu(x, inplace=True) silently got the old values."""
import numpy as np
import pytest

import lamina
from conftest import requires_torch

MODULES = [
    ("ReLU", (), "relu"), ("LeakyReLU", (0.2,), "leaky_relu"), ("ELU", (0.9,), "elu"), ("SiLU", (), "silu"),
    ("Hardtanh", (-0.5, 0.5), "hardtanh"), ("ReLU6", (), "relu6"), ("Hardsigmoid", (), "hardsigmoid"),
    ("Hardswish", (), "hardswish"), ("SELU", (), "selu"), ("CELU", (0.7,), "celu"),
    ("Threshold", (0.1, -1.0), "threshold"), ("Dropout", (0.3,), "dropout"),
]


@pytest.mark.parametrize("name,args,fn", MODULES, ids=[m[0] for m in MODULES])
def test_inplace_module_matches_torch(name, args, fn):
    torch = requires_torch()
    rng = np.random.default_rng(7)
    x0, w0 = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    weights = np.arange(15.0).reshape(5, 3)
    res = {}
    for lib, fw in (("lamina", lamina), ("torch", torch)):
        m = getattr(fw.nn, name)(*args, inplace=True)
        w = fw.tensor(w0, requires_grad=True)
        h = fw.tensor(x0) @ w
        fw.manual_seed(1)
        out = m(h)
        assert out is h                                  # written into its input, which it returns
        (out * fw.tensor(weights)).sum().backward()
        res[lib] = (repr(m), h.detach().numpy().copy(), w.grad.numpy().copy())
    assert res["lamina"][0] == res["torch"][0]
    if name != "Dropout":                                # dropout's mask is drawn differently
        np.testing.assert_allclose(res["lamina"][1], res["torch"][1], rtol=1e-12, atol=1e-12)
        # CELU's float64 derivative differs from PyTorch's formula by ~1e-8 relative
        np.testing.assert_allclose(res["lamina"][2], res["torch"][2], rtol=1e-7, atol=1e-12)
    # the functional form on plain data: the input itself changes
    x = lamina.tensor([-1.0, 2.0, -3.0])
    xt = torch.tensor([-1.0, 2.0, -3.0])
    fargs = args if name != "Dropout" else (0.0,)
    lf = getattr(lamina.nn.functional, fn)
    tf = getattr(torch.nn.functional, fn)
    assert lf(x, *fargs, inplace=True) is x
    tf(xt, *fargs, inplace=True)
    np.testing.assert_allclose(x.numpy(), xt.numpy(), rtol=1e-6)


def test_inplace_refusals_match_torch():
    with pytest.raises(RuntimeError):
        lamina.nn.functional.relu(lamina.tensor([-1.0, 2.0], requires_grad=True), inplace=True)
    s = lamina.sigmoid(lamina.tensor([-1.0, 2.0], requires_grad=True))
    lamina.nn.functional.relu(s, inplace=True)           # sigmoid saved its output
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        s.sum().backward()
    with pytest.raises(TypeError, match="expected a Tensor"):
        lamina.nn.functional.relu(np.ones(2), inplace=True)


@pytest.mark.parametrize("layer", ["linear", "conv", "bn", "pool", "flatten"])
def test_inplace_relu_after_common_layers_trains(layer):
    """`y = layer(x); y.relu_()` is allowed in PyTorch after these layers (none of them keeps its
    output for backward); Linear used to keep it and refused."""
    torch = requires_torch()
    grads = {}
    for lib, fw in (("lamina", lamina), ("torch", torch)):
        fw.manual_seed(0)
        conv = fw.nn.Conv2d(1, 2, 3).double()
        lin = fw.nn.Linear(3, 2).double()
        x = fw.tensor(np.linspace(-1, 1, 50).reshape(2, 1, 5, 5))
        y = {"linear": lambda: lin(x[:, 0, 0, :3]), "conv": lambda: conv(x),
             "bn": lambda: fw.nn.BatchNorm2d(2).double()(conv(x)),
             "pool": lambda: fw.nn.functional.max_pool2d(conv(x), 2),
             "flatten": lambda: fw.flatten(conv(x), 1)}[layer]()
        y.relu_()
        y.sum().backward()
        p = lin if layer == "linear" else conv
        grads[lib] = p.weight.grad.numpy()
    np.testing.assert_allclose(grads["lamina"], grads["torch"], rtol=1e-10, atol=1e-12)
