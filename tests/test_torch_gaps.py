"""PyTorch behaviours issue 13 left open, each checked against torch itself: softmax's implicit
dim, ctx.mark_dirty, views from transpose/permute/t/expand, exact GELU through its kernel, and
Embedding's scale_grad_by_freq / sparse."""
import math
import warnings

import numpy as np
import pytest

import lamina
from lamina import nn
from lamina.autograd import gradcheck

torch = pytest.importorskip("torch")
F = lamina.nn.functional
TF = torch.nn.functional


def _both(a):
    return lamina.tensor(a.copy()), torch.from_numpy(a.copy())


def _warnings_of(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


# ------------------------------------------------------------------ softmax without dim
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_without_dim_picks_pytorchs_dim_and_warns(shape, name):
    a = np.random.default_rng(0).standard_normal(shape)
    lx, tx = _both(a)
    got, lw = _warnings_of(lambda: getattr(F, name)(lx))
    want, tw = _warnings_of(lambda: getattr(TF, name)(tx))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-14)
    assert len(lw) == 1 and len(tw) == 1
    assert f"Implicit dimension choice for {name}" in lw[0] and "dim=X" in lw[0]


@pytest.mark.parametrize("cls", ["Softmax", "LogSoftmax"])
def test_softmax_modules_without_dim_match_torch(cls):
    a = np.random.default_rng(1).standard_normal((2, 3, 4))      # 3-d: PyTorch picks dim 0, not -1
    lx, tx = _both(a)
    got, lw = _warnings_of(lambda: getattr(nn, cls)()(lx))
    want, _ = _warnings_of(lambda: getattr(torch.nn, cls)()(tx))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    assert np.allclose(np.exp(got.numpy()).sum(0) if cls == "LogSoftmax" else got.numpy().sum(0), 1.0)
    assert len(lw) == 1


def test_softmax_with_dim_does_not_warn_and_takes_dtype():
    a = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    lx, tx = _both(a)
    got, lw = _warnings_of(lambda: F.softmax(lx, dim=1, dtype=lamina.float64))
    assert lw == [] and got.dtype == lamina.float64
    np.testing.assert_allclose(got.numpy(), TF.softmax(tx, dim=1, dtype=torch.float64).numpy(), rtol=1e-12)


# ------------------------------------------------------------------ ctx.mark_dirty
def _mul_two_inplace(mod):
    class MulTwo_(mod.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            x.mul_(2)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2
    return MulTwo_


def _add_saved_inplace(mod):
    class AddSquare_(mod.autograd.Function):
        """x += y * y in place; saves the written x (allowed: it is the output)."""

        @staticmethod
        def forward(ctx, x, y):
            ctx.mark_dirty(x)
            x.add_(y * y)
            ctx.save_for_backward(x, y)
            return x

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return g, 2 * y * g
    return AddSquare_


def test_mark_dirty_returns_the_input_bumps_its_version_and_rebases_it():
    results = []
    for mod in (lamina, torch):
        a = mod.tensor([1.0, 2.0, 3.0], dtype=mod.float64, requires_grad=True)
        b = a.clone()
        c = _mul_two_inplace(mod).apply(b)
        assert c is b
        results.append((b._version, b.detach().numpy().copy()))
        (c * c).sum().backward()
        results.append(a.grad.numpy().copy())
    assert results[0][0] == results[2][0]                    # same version count (2) as PyTorch
    np.testing.assert_array_equal(results[0][1], results[2][1])
    np.testing.assert_array_equal(results[1], results[3])    # d/da (2a)^2 = 8a


def test_mark_dirty_with_a_saved_output_and_two_inputs_matches_torch():
    grads = []
    for mod in (lamina, torch):
        a = mod.tensor([0.5, -1.0], dtype=mod.float64, requires_grad=True)
        y = mod.tensor([2.0, 3.0], dtype=mod.float64, requires_grad=True)
        x = a * 1.0
        out = _add_saved_inplace(mod).apply(x, y)
        (out * out).sum().backward()
        grads.append((a.grad.numpy().copy(), y.grad.numpy().copy(), out.detach().numpy().copy()))
    for g, h in zip(*grads):
        np.testing.assert_allclose(g, h, rtol=1e-12)


def test_mark_dirty_through_a_view_reaches_the_base():
    for mod in (lamina, torch):
        a = mod.tensor([1.0, 2.0, 3.0], dtype=mod.float64, requires_grad=True)
        base = a.clone()
        _mul_two_inplace(mod).apply(base[1:])
        base.sum().backward()
        assert a.grad.tolist() == [1.0, 2.0, 2.0] and base.tolist() == [1.0, 4.0, 6.0]


def test_mark_dirty_errors_as_torch():
    a = lamina.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        _mul_two_inplace(lamina).apply(a)

    class NotReturned(lamina.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g
    with pytest.raises(RuntimeError, match="dirty"):
        NotReturned.apply(a.clone())
    # a tensor saved by another op before the write: its backward refuses, naming the op
    b = a.clone()
    y = b * b
    _mul_two_inplace(lamina).apply(b)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_mark_dirty_without_grad_still_bumps_the_version():
    d = lamina.ones(3)
    e = _mul_two_inplace(lamina).apply(d)
    assert e is d and d._version == 2 and not e.requires_grad and d.tolist() == [2.0, 2.0, 2.0]


# ------------------------------------------------------------------ views
@pytest.mark.parametrize("make", [lambda t: t.t(), lambda t: t.T, lambda t: t.transpose(0, 1),
                                  lambda t: t.permute(1, 0)], ids=["t", "T", "transpose", "permute"])
def test_transposes_are_views_sharing_storage_and_version(make):
    a = np.arange(6.0).reshape(2, 3)
    for mod in (lamina, torch):
        leaf = mod.tensor(a, requires_grad=True)
        x = leaf * 1.0
        v = make(x)
        assert v.shape == (3, 2)
        v[0, 1] = 100.0                      # a write through the view shows in x
        assert x[1, 0].item() == 100.0 and x._version == v._version == 1
        x.add_(1.0)                          # and a write to x shows in the view
        assert v[0, 1].item() == 101.0
        w = mod.tensor(np.arange(6.0).reshape(3, 2) + 1.0)
        (make(x) * w).sum().backward()
        if mod is lamina:
            got = leaf.grad.numpy().copy()
        else:
            np.testing.assert_array_equal(got, leaf.grad.numpy())    # the overwritten element gets 0


def test_permute_view_of_3d_and_gradients_match_torch():
    a = np.random.default_rng(3).standard_normal((2, 3, 4))
    w = np.random.default_rng(4).standard_normal((4, 2, 3))
    grads = []
    for mod in (lamina, torch):
        leaf = mod.tensor(a.copy(), requires_grad=True)
        x = leaf * 2.0
        p = x.permute(2, 0, 1)
        p.mul_(mod.tensor(w))
        (x * x).sum().backward()
        grads.append(leaf.grad.numpy().copy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_expand_is_a_view_and_writes_into_it_are_refused():
    x = lamina.tensor([[1.0], [2.0]])
    e = x.expand(2, 3)
    x.add_(1.0)
    assert e.tolist() == [[2.0, 2.0, 2.0], [3.0, 3.0, 3.0]] and e._version == x._version == 1
    with pytest.raises(RuntimeError, match="single memory location"):
        e.add_(1.0)
    leaf = lamina.tensor([[1.0], [2.0]], requires_grad=True)
    tl = torch.tensor([[1.0], [2.0]], requires_grad=True)
    (leaf.expand(2, 3) * lamina.tensor(np.arange(6.0).reshape(2, 3))).sum().backward()
    (tl.expand(2, 3) * torch.arange(6.0).reshape(2, 3)).sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), tl.grad.numpy())


def test_a_transposed_view_feeds_kernels_correctly():
    a = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    b = np.random.default_rng(6).standard_normal((4, 5)).astype(np.float32)
    la, ta = _both(a)
    lb, tb = _both(b)
    np.testing.assert_allclose((la.t() @ lb).numpy(), (ta.t() @ tb).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F.relu(la.t()).numpy(), TF.relu(ta.t()).numpy())
    assert la.t().contiguous().is_contiguous() and not la.t().is_contiguous()


# ------------------------------------------------------------------ exact GELU
def _ulps(got, want):
    got, want = np.asarray(got), np.asarray(want)
    spacing = np.spacing(np.maximum(np.abs(want), np.finfo(want.dtype).tiny).astype(want.dtype))
    return np.abs(got.astype(np.float64) - want.astype(np.float64)) / spacing


def _gelu_reference(a):
    """x * Phi(x) and Phi(x) + x phi(x) in float64 (erfc: no cancellation in the left tail)."""
    x = a.astype(np.float64)
    cdf = 0.5 * np.vectorize(math.erfc)(-x / math.sqrt(2.0))
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_gelu_matches_torch_and_is_accurate(dtype):
    a = np.concatenate([np.random.default_rng(7).uniform(-8, 8, 20000),
                        [0.0, -0.0, 1e-30, -12.0, 40.0]]).astype(dtype)
    dy = np.random.default_rng(8).standard_normal(a.shape).astype(dtype)
    lx = lamina.tensor(a.copy(), requires_grad=True)
    tx = torch.from_numpy(a.copy()).requires_grad_(True)
    ly, ty = F.gelu(lx), TF.gelu(tx)
    ly.backward(lamina.tensor(dy))
    ty.backward(torch.from_numpy(dy))
    eps = np.finfo(dtype).eps
    # against torch: a few ulp, plus the error of torch's 1 + erf(x), which cancels in the left tail
    # (a few ulp of 1, times |x|: there torch is the less accurate one, see the float64 check below)
    tol = 4 * np.spacing(np.abs(ty.detach().numpy())) + 8 * np.abs(a) * eps
    assert (np.abs(ly.detach().numpy() - ty.detach().numpy()) <= tol).all()
    gtol = 8 * eps * (1 + np.abs(tx.grad.numpy())) + 8 * np.abs(a * dy) * eps
    assert (np.abs(lx.grad.numpy() - tx.grad.numpy()) <= gtol).all()
    if dtype == np.float32:             # against float64 math: a few float32 ulp everywhere
        y64, s64 = _gelu_reference(a)
        assert _ulps(ly.detach().numpy(), y64.astype(dtype)).max() <= 4
        np.testing.assert_allclose(lx.grad.numpy(), (dy * s64).astype(dtype), rtol=8 * eps, atol=1e-30)
    assert np.isnan(F.gelu(lamina.tensor(np.array([np.nan], dtype))).numpy()).all()


def test_exact_gelu_gradcheck_and_module():
    x = lamina.tensor(np.random.default_rng(9).uniform(-3, 3, (3, 4)), requires_grad=True)
    assert gradcheck(lambda t: F.gelu(t), [x])
    assert gradcheck(lambda t: nn.GELU()(t * t), [x])


def test_gelu_kernel_rejects_bad_buffers():
    with pytest.raises(ValueError, match="y: expected shape"):
        lamina._C.gelu_forward(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="float32 or float64|dtype"):
        lamina._C.gelu_forward(np.zeros(3, np.int64), np.zeros(3, np.int64))


# ------------------------------------------------------------------ Embedding
@pytest.mark.parametrize("padding_idx", [None, 4, -2])
def test_embedding_scale_grad_by_freq_matches_torch(padding_idx):
    w = np.random.default_rng(10).standard_normal((6, 3))
    idx = np.array([[1, 4, 4], [4, 0, 1], [5, 5, 5]])
    dy = np.random.default_rng(11).standard_normal(idx.shape + (3,))
    lw, tw = lamina.tensor(w.copy(), requires_grad=True), torch.tensor(w.copy(), requires_grad=True)
    F.embedding(lamina.tensor(idx), lw, padding_idx=padding_idx, scale_grad_by_freq=True).backward(lamina.tensor(dy))
    TF.embedding(torch.tensor(idx), tw, padding_idx=padding_idx, scale_grad_by_freq=True).backward(torch.tensor(dy))
    np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    # the module passes the flag through
    torch.manual_seed(0)
    te = torch.nn.Embedding(6, 3, scale_grad_by_freq=True)
    le = nn.Embedding(6, 3, scale_grad_by_freq=True, _weight=lamina.tensor(te.weight.detach().numpy().copy()))
    le(lamina.tensor(idx)).sum().backward()
    te(torch.tensor(idx)).sum().backward()
    np.testing.assert_allclose(le.weight.grad.numpy(), te.weight.grad.numpy(), rtol=1e-6)


def test_embedding_sparse_is_a_clear_error():
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(5, 2, sparse=True)
    with pytest.raises(NotImplementedError, match="sparse=False"):
        F.embedding(lamina.tensor([0, 1]), lamina.ones(5, 2), sparse=True)
