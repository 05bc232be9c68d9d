"""PyTorch's autograd surface beyond `.backward()`: torch.autograd.grad, backward(gradient=,
inputs=), several roots in one sweep, Tensor.register_hook / retain_grad, grad_fn names and
next_functions, and out= on the top-level functions. Each is checked against PyTorch."""
import warnings

import numpy as np
import pytest

import lamina
from conftest import requires_torch


def _pair(seed=0):
    """The same small graph in lamina and torch: x (3x4) @ w (4x2) -> tanh -> squared sum."""
    torch = requires_torch()
    rng = np.random.default_rng(seed)
    xa, wa = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    out = {}
    for name, fw in (("lamina", lamina), ("torch", torch)):
        x = fw.tensor(xa, requires_grad=True)
        w = fw.tensor(wa, requires_grad=True)
        h = x @ w
        y = fw.tanh(h)
        loss = (y ** 2).sum()
        out[name] = dict(x=x, w=w, h=h, y=y, loss=loss)
    return out["lamina"], out["torch"]


def _np(t):
    return None if t is None else (t.numpy() if hasattr(t, "numpy") else np.asarray(t))


def test_autograd_grad_matches_torch_and_leaves_grad_untouched():
    lam, tor = _pair()
    torch = requires_torch()
    got = lamina.autograd.grad(lam["loss"], [lam["x"], lam["w"], lam["h"]], retain_graph=True)
    want = torch.autograd.grad(tor["loss"], [tor["x"], tor["w"], tor["h"]], retain_graph=True)
    for g, w in zip(got, want):
        np.testing.assert_allclose(_np(g), w.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert lam["x"].grad is None and lam["w"].grad is None
    # grad_outputs scales the seed; a single input gives a 1-tuple
    (gy,) = lamina.autograd.grad(lam["y"], lam["x"], grad_outputs=lamina.ones(3, 2, dtype=lamina.float64) * 2)
    (ty,) = torch.autograd.grad(tor["y"], tor["x"], grad_outputs=torch.ones(3, 2, dtype=torch.float64) * 2)
    np.testing.assert_allclose(_np(gy), ty.numpy(), rtol=1e-12)


def test_autograd_grad_unused_inputs_and_freed_graph():
    lam, _ = _pair()
    z = lamina.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"inputs\[1\] was not used"):
        lamina.autograd.grad(lam["loss"], [lam["x"], z], retain_graph=True)
    g = lamina.autograd.grad(lam["loss"], [lam["x"], z], allow_unused=True, retain_graph=True)
    assert g[1] is None
    g = lamina.autograd.grad(lam["loss"], [z, lam["x"]], materialize_grads=True, retain_graph=True)
    assert g[0].tolist() == [0.0, 0.0]
    lamina.autograd.grad(lam["loss"], lam["x"])  # frees the graph
    with pytest.raises(RuntimeError, match="second time"):
        lamina.autograd.grad(lam["loss"], lam["x"])
    with pytest.raises(NotImplementedError, match="create_graph"):
        lamina.autograd.grad(lam["y"].sum(), lam["x"], create_graph=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        lamina.autograd.grad(lam["y"].sum(), lamina.ones(2))


def test_backward_gradient_keyword_and_inputs():
    lam, tor = _pair()
    seed = np.array([[1.0, 0.5], [0.25, 2.0], [-1.0, 3.0]])
    lam["y"].backward(gradient=lamina.tensor(seed), retain_graph=True)
    tor["y"].backward(gradient=requires_torch().tensor(seed), retain_graph=True)
    np.testing.assert_allclose(_np(lam["x"].grad), tor["x"].grad.numpy(), rtol=1e-12)
    for d in (lam, tor):
        d["x"].grad = None
        d["w"].grad = None
        d["loss"].backward(inputs=[d["w"]])
    assert lam["x"].grad is None and tor["x"].grad is None
    np.testing.assert_allclose(_np(lam["w"].grad), tor["w"].grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="cannot be empty"):
        lam["y"].sum().backward(inputs=[])


def test_several_roots_in_one_sweep():
    torch = requires_torch()
    res = {}
    for name, fw in (("lamina", lamina), ("torch", torch)):
        a = fw.tensor([1.0, 2.0, 3.0], requires_grad=True)
        s = a * a  # shared by both roots: one sweep must still free the graph only once
        fw.autograd.backward([(s * 3).sum(), s.sum()], [fw.tensor(2.0), None])
        res[name] = a.grad
    np.testing.assert_allclose(_np(res["lamina"]), res["torch"].numpy())


def test_register_hook_and_retain_grad():
    torch = requires_torch()
    res = {}
    for name, fw in (("lamina", lamina), ("torch", torch)):
        x = fw.tensor([1.0, -2.0, 0.5], requires_grad=True)
        seen_leaf, seen_mid = [], []
        x.register_hook(lambda g: seen_leaf.append(g.clone()))          # observes only
        h = x * 3
        h.retain_grad()
        handle = h.register_hook(lambda g: g * 10)                      # replaces the gradient
        h.register_hook(lambda g: seen_mid.append(g.clone()))
        (h * h + x).sum().backward(retain_graph=True)
        first = (_np(x.grad).copy(), _np(h.grad).copy(), _np(seen_leaf[0]), _np(seen_mid[0]))
        handle.remove()
        x.grad = None
        (h * 2).sum().backward()
        res[name] = first + (_np(x.grad), h.retains_grad, x.retains_grad, len(seen_leaf))
    for got, want in zip(res["lamina"], res["torch"]):
        np.testing.assert_allclose(got, want)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        lamina.ones(2).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        lamina.ones(2).retain_grad()


def test_grad_fn_names_and_next_functions():
    torch = requires_torch()
    names = {}
    for name, fw in (("lamina", lamina), ("torch", torch)):
        fw.manual_seed(0)
        lin = fw.nn.Linear(4, 3)
        x = fw.randn(2, 4, requires_grad=True)
        y = fw.relu(lin(x))
        loss = fw.nn.functional.mse_loss(y, fw.zeros(2, 3))
        nf = loss.grad_fn.next_functions[0][0]
        names[name] = [loss.grad_fn.name(), nf.name(), nf.next_functions[0][0].name(),
                       (x * 2).grad_fn.name(), (x + 1).grad_fn.name(), x.sum().grad_fn.name(),
                       x.sum(1).grad_fn.name(), fw.sigmoid(x).grad_fn.name(), (x @ x.T).grad_fn.name(),
                       x.view(8).grad_fn.name(), x.mean().grad_fn.name(), x[0].grad_fn.name(),
                       x[1:].grad_fn.name(), x[:, 0].grad_fn.name(), x[None].grad_fn.name()]
        assert repr(loss).endswith("grad_fn=<MseLossBackward0>)")
        assert repr(loss.grad_fn).startswith("<MseLossBackward0 object at 0x")
    assert names["lamina"] == names["torch"]


def test_custom_function_node_name():
    class Cube(lamina.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, dy):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * dy

    y = Cube.apply(lamina.ones(2, requires_grad=True))
    assert y.grad_fn.name() == "CubeBackward"


def test_out_keyword_matches_torch():
    torch = requires_torch()
    rng = np.random.default_rng(3)
    a_np, b_np = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    res = {}
    for name, fw in (("lamina", lamina), ("torch", torch)):
        a, b = fw.tensor(a_np), fw.tensor(b_np)
        c = fw.empty(3, 4)
        assert fw.add(a, b, out=c) is c
        m = fw.empty(3, 3)
        fw.matmul(a, b.T, out=m)
        v, i = fw.empty(3), fw.empty(3, dtype=fw.int64)
        r = fw.max(a, 1, out=(v, i))
        assert r[0] is v and r[1] is i
        z = fw.empty(2, 3, dtype=fw.float64)
        fw.ones(2, 3, out=z)
        ar = fw.empty(5, dtype=fw.int64)
        fw.arange(5, out=ar)
        st = fw.empty(2, 3, 4)
        fw.stack([a, b], out=st)
        e = fw.empty(0)
        fw.exp(a, out=e)  # an empty out is resized without a warning
        res[name] = [_np(t) for t in (c, m, v, i, z, ar, st, e)] + [str(z.dtype).split(".")[-1]]
    for got, want in zip(res["lamina"], res["torch"]):
        if isinstance(got, str):
            assert got == want
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_out_keyword_errors_and_resize_warning():
    a = lamina.randn(3, 4)
    with pytest.raises(RuntimeError, match="can't be cast"):
        lamina.add(a, a, out=lamina.empty(3, 4, dtype=lamina.int64))
    x = lamina.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        lamina.exp(x, out=lamina.empty(3))
    with lamina.no_grad():
        y = lamina.empty(3)
        lamina.exp(x, out=y)
    np.testing.assert_allclose(y.numpy(), np.exp(x.detach().numpy()), rtol=1e-6)
    small = lamina.empty(2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        lamina.mul(a, a, out=small)
    assert tuple(small.shape) == (3, 4) and any("resized" in str(m.message) for m in w)
    base = lamina.zeros(4, 4)
    with pytest.raises(RuntimeError, match="view"):
        lamina.add(a, a, out=base[:2])
    with pytest.raises(TypeError, match="out"):
        lamina.add(a, a, out=np.empty((3, 4)))


def test_ieee_specials_without_numpy_warnings():
    """log(0), x / 0, sqrt(-1), 0 ** -1 and their gradients give inf / nan quietly, as PyTorch does
    (NumPy would print a RuntimeWarning for each)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = lamina.tensor([0.0, 1.0], requires_grad=True)
        (lamina.log(x).sum() + x.sqrt().sum() + (x / 0.0).sum()).backward()
        assert np.isinf(x.grad.numpy()[0])
        y = lamina.tensor([1.0, 0.0]) / lamina.tensor([0.0, 0.0])
        assert np.isinf(y.numpy()[0]) and np.isnan(y.numpy()[1])
        assert np.isnan(lamina.tensor([-1.0]).sqrt().item())
        assert np.isinf((lamina.tensor([0.0]) ** -1).item())
        assert np.isinf((lamina.tensor([0.0]) ** lamina.tensor([-1.0])).item())
