"""Devices as PyTorch names them: only the CPU exists; asking for another is a clear error."""
import numpy as np
import pytest

import lamina
from lamina import nn

torch = pytest.importorskip("torch")


def test_queries_and_device_objects():
    assert lamina.cuda.is_available() is False and lamina.cuda.device_count() == 0
    assert lamina.backends.mps.is_available() is False
    assert lamina.accelerator.is_available() is False
    for spec in ["cpu", "cuda", "cuda:1", "mps"]:
        ours, theirs = lamina.device(spec), torch.device(spec)
        assert (str(ours), repr(ours).replace("lamina.", ""), ours.type, ours.index) == \
            (str(theirs), repr(theirs), theirs.type, theirs.index)
    assert lamina.device("cuda", 0) == lamina.device("cuda:0") != lamina.device("cpu")
    assert len({lamina.device("cpu"), lamina.device("cpu")}) == 1
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda.*device string: gpu"):
        lamina.device("gpu")
    lamina.set_default_device("cpu")
    assert lamina.get_default_device() == lamina.device("cpu")
    with pytest.raises(RuntimeError, match="'cuda' is not available"):
        lamina.set_default_device("cuda")


def test_tensor_device_and_to():
    x = lamina.tensor([1.5, 2.5])
    assert x.device == lamina.device("cpu") and str(x.device) == "cpu" and x.is_cuda is False
    assert x.to("cpu") is x and x.cpu() is x and x.to(lamina.device("cpu")) is x
    assert x.to(lamina.float32) is x
    y = x.to(lamina.float64)
    assert y.dtype == lamina.float64 and y.tolist() == [1.5, 2.5]
    z = x.to("cpu", lamina.float64)
    assert z.dtype == lamina.float64
    assert x.to(device="cpu", dtype=lamina.int64).tolist() == [1, 2]
    assert x.to(lamina.zeros(1, dtype=lamina.float64)).dtype == lamina.float64   # to(other)
    assert x.to("cpu", copy=True) is not x
    for bad in ["cuda", "cuda:0", lamina.device("mps"), 0]:
        with pytest.raises(RuntimeError, match="is not available: lamina runs on the CPU only"):
            x.to(bad)
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        x.cuda()
    with pytest.raises(TypeError, match="to\\(\\): could not understand"):
        x.to("cpu", lamina.float32, "extra")


def test_to_keeps_the_graph():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    (x.to("cpu", lamina.float64) * 3).sum().backward()
    assert x.grad.dtype == lamina.float32 and x.grad.tolist() == [3.0, 3.0]


FACTORIES = {
    "tensor": lambda d: lamina.tensor([1.0], device=d),
    "zeros": lambda d: lamina.zeros(2, 3, device=d),
    "ones": lambda d: lamina.ones(2, device=d),
    "empty": lambda d: lamina.empty(2, device=d),
    "full": lambda d: lamina.full((2,), 1.5, device=d),
    "zeros_like": lambda d: lamina.zeros_like(lamina.ones(2), device=d),
    "ones_like": lambda d: lamina.ones_like(lamina.ones(2), device=d),
    "full_like": lambda d: lamina.full_like(lamina.ones(2), 3.0, device=d),
    "rand": lambda d: lamina.rand(2, device=d),
    "randn": lambda d: lamina.randn(2, device=d),
    "randint": lambda d: lamina.randint(0, 5, (3,), device=d),
    "randperm": lambda d: lamina.randperm(4, device=d),
    "arange": lambda d: lamina.arange(4, device=d),
    "linspace": lambda d: lamina.linspace(-1, 1, 5, device=d),
    "eye": lambda d: lamina.eye(3, device=d),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_factories_take_device(name):
    make = FACTORIES[name]
    for d in [None, "cpu", lamina.device("cpu")]:
        assert make(d).device == lamina.device("cpu")
    with pytest.raises(RuntimeError, match="device 'cuda:0' is not available"):
        make("cuda:0")


def test_linspace_with_device_matches_pytorch():
    ours = lamina.linspace(-np.pi, np.pi, 7, device="cpu")
    theirs = torch.linspace(-np.pi, np.pi, 7, device="cpu")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_module_to_device_and_dtype():
    model = nn.Linear(3, 2)
    assert model.to("cpu") is model and model.to(lamina.device("cpu")) is model
    assert model.cpu() is model
    model.to("cpu", lamina.float64)
    assert all(p.dtype == lamina.float64 for p in model.parameters())
    model.to(dtype=lamina.float32)
    assert all(p.dtype == lamina.float32 for p in model.parameters())
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        model.to("cuda")
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        model.cuda()


def test_generator_seeds_factories():
    g1, g2 = lamina.Generator().manual_seed(7), lamina.Generator().manual_seed(7)
    assert lamina.randn(4, generator=g1).tolist() == lamina.randn(4, generator=g2).tolist()
    assert g1.initial_seed() == 7
    lamina.manual_seed(0)
    a = lamina.rand(3)
    lamina.randperm(10, generator=lamina.Generator().manual_seed(1))   # leaves the global one alone
    b = lamina.rand(3)
    lamina.manual_seed(0)
    assert lamina.rand(3).tolist() == a.tolist() and lamina.rand(3).tolist() == b.tolist()


def test_device_script_pattern_runs():
    # The lines every PyTorch example starts with.
    use_cuda = lamina.cuda.is_available()
    device = lamina.device("cuda" if use_cuda else "cpu")
    model = nn.Linear(4, 2).to(device)
    data = lamina.randn(3, 4).to(device)
    assert model(data).shape == (3, 2)
