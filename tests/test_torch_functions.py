"""PyTorch's top-level functions and Tensor methods on lamina (issue 10's list): each compared
with torch through the one helper (forward, and the gradient of sum(out * v)), in float32 and
float64, plus float64 finite differences for the differentiable ones and PyTorch's errors."""
import numpy as np
import pytest

import lamina

from conftest import helper_gradcheck, helper_test_op, requires_torch

DTYPES = [np.float32, np.float64]


def _pos(shape, seed=0):
    return np.abs(np.random.default_rng(seed).standard_normal(shape)) + 0.3


# name, lamina fn, torch fn, shapes, (low, high) or None for positive inputs
UNARY = [
    ("sin", lambda m: m.sin, (-2, 2)), ("cos", lambda m: m.cos, (-2, 2)), ("tan", lambda m: m.tan, (-1, 1)),
    ("exp", lambda m: m.exp, (-2, 2)), ("log", lambda m: m.log, None), ("log1p", lambda m: m.log1p, None),
    ("expm1", lambda m: m.expm1, (-2, 2)), ("sqrt", lambda m: m.sqrt, None), ("rsqrt", lambda m: m.rsqrt, None),
    ("abs", lambda m: m.abs, (-2, 2)), ("neg", lambda m: m.neg, (-2, 2)), ("sigmoid", lambda m: m.sigmoid, (-2, 2)),
    ("tanh", lambda m: m.tanh, (-2, 2)), ("relu", lambda m: m.relu, (-2, 2)), ("square", lambda m: m.square, (-2, 2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,get,rng", UNARY, ids=[u[0] for u in UNARY])
def test_unary_top_level_and_method(name, get, rng, dtype):
    torch = requires_torch()
    shape = (3, 4)
    x = (_pos(shape, 1) if rng is None else np.random.default_rng(1).uniform(*rng, shape)).astype(dtype)
    x = np.where(np.abs(x) < 0.05, 0.3, x).astype(dtype)       # away from kinks
    helper_test_op(None, get(lamina), get(torch), dtype=dtype, inputs=[x])
    helper_test_op(None, lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), dtype=dtype, inputs=[x])


CASES = [
    # name, lamina fn, torch fn, input arrays builder
    ("pow_scalar", lambda x: lamina.pow(x, 3), lambda x: x.pow(3), lambda d: [_pos((3, 4), 2).astype(d)]),
    ("pow_method", lambda x: x.pow(0.5), lambda x: x.pow(0.5), lambda d: [_pos((3, 4), 3).astype(d)]),
    ("pow_tensor", lambda a, b: lamina.pow(a, b), lambda a, b: a.pow(b),
     lambda d: [_pos((3, 4), 4).astype(d), np.random.default_rng(5).standard_normal((3, 4)).astype(d)]),
    ("clamp", lambda x: lamina.clamp(x, -0.5, 0.7), lambda x: x.clamp(-0.5, 0.7),
     lambda d: [np.random.default_rng(6).uniform(-2, 2, (4, 5)).astype(d)]),
    ("clip_method", lambda x: x.clip(min=-0.5), lambda x: x.clip(min=-0.5),
     lambda d: [np.random.default_rng(7).uniform(-2, 2, (4, 5)).astype(d)]),
    ("maximum", lamina.maximum, lambda a, b: a.maximum(b),
     lambda d: [np.random.default_rng(8).standard_normal((3, 4)).astype(d),
                np.random.default_rng(9).standard_normal((3, 4)).astype(d)]),
    ("minimum_bcast", lamina.minimum, lambda a, b: a.minimum(b),
     lambda d: [np.random.default_rng(10).standard_normal((3, 4)).astype(d),
                np.random.default_rng(11).standard_normal((4,)).astype(d)]),
    ("max_binary", lambda a, b: lamina.max(a, b), lambda a, b: a.max(b),
     lambda d: [np.random.default_rng(12).standard_normal((3, 4)).astype(d),
                np.random.default_rng(13).standard_normal((3, 4)).astype(d)]),
    ("where", lambda a, b: lamina.where(a > 0, a, b), lambda a, b: __import__("torch").where(a > 0, a, b),
     lambda d: [np.random.default_rng(14).standard_normal((3, 4)).astype(d),
                np.random.default_rng(15).standard_normal((3, 4)).astype(d)]),
    ("flatten", lambda x: lamina.flatten(x, 1), lambda x: x.flatten(1),
     lambda d: [np.random.default_rng(16).standard_normal((2, 3, 4)).astype(d)]),
    ("view_as", lambda x, y: x.view_as(y), lambda x, y: x.view_as(y),
     lambda d: [np.random.default_rng(17).standard_normal((2, 6)).astype(d),
                np.random.default_rng(18).standard_normal((3, 4)).astype(d)]),
    ("repeat", lambda x: x.repeat(2, 1, 3), lambda x: x.repeat(2, 1, 3),
     lambda d: [np.random.default_rng(19).standard_normal((2, 3)).astype(d)]),
    ("mm", lamina.mm, lambda a, b: a.mm(b),
     lambda d: [np.random.default_rng(20).standard_normal((3, 5)).astype(d),
                np.random.default_rng(21).standard_normal((5, 2)).astype(d)]),
    ("bmm", lambda a, b: a.bmm(b), lambda a, b: a.bmm(b),
     lambda d: [np.random.default_rng(22).standard_normal((2, 3, 5)).astype(d),
                np.random.default_rng(23).standard_normal((2, 5, 4)).astype(d)]),
    ("matmul_method", lambda a, b: a.matmul(b), lambda a, b: a.matmul(b),
     lambda d: [np.random.default_rng(24).standard_normal((3, 5)).astype(d),
                np.random.default_rng(25).standard_normal((5,)).astype(d)]),
    ("einsum_bilinear", lambda a, b, c: lamina.einsum("bi,ij,bj->b", a, b, c),
     lambda a, b, c: __import__("torch").einsum("bi,ij,bj->b", a, b, c),
     lambda d: [np.random.default_rng(26).standard_normal((4, 3)).astype(d),
                np.random.default_rng(27).standard_normal((3, 5)).astype(d),
                np.random.default_rng(28).standard_normal((4, 5)).astype(d)]),
    ("einsum_sum_out", lambda a: lamina.einsum("ijk->j", a), lambda a: __import__("torch").einsum("ijk->j", a),
     lambda d: [np.random.default_rng(29).standard_normal((2, 3, 4)).astype(d)]),
    ("split_sizes", lambda x: lamina.split(x, [1, 3], 1)[1], lambda x: x.split([1, 3], 1)[1],
     lambda d: [np.random.default_rng(30).standard_normal((2, 4)).astype(d)]),
    ("chunk", lambda x: x.chunk(3, 0)[-1], lambda x: x.chunk(3, 0)[-1],
     lambda d: [np.random.default_rng(31).standard_normal((7, 2)).astype(d)]),
    ("std", lambda x: lamina.std(x, 1), lambda x: x.std(1),
     lambda d: [np.random.default_rng(32).standard_normal((3, 5)).astype(d)]),
    ("var_all", lambda x: x.var(), lambda x: x.var(),
     lambda d: [np.random.default_rng(33).standard_normal((3, 5)).astype(d)]),
    ("var_correction0_keepdim", lambda x: x.var(0, keepdim=True, correction=0),
     lambda x: x.var(0, keepdim=True, correction=0), lambda d: [np.random.default_rng(34).standard_normal((3, 5)).astype(d)]),
    ("prod_dim", lambda x: lamina.prod(x, 1), lambda x: x.prod(1),
     lambda d: [np.random.default_rng(35).standard_normal((3, 4)).astype(d)]),
    ("prod_with_zero", lambda x: x.prod(), lambda x: x.prod(),
     lambda d: [np.array([[1.5, 0.0], [2.0, -0.5]], d)]),
    ("cumsum", lambda x: lamina.cumsum(x, 1), lambda x: x.cumsum(1),
     lambda d: [np.random.default_rng(36).standard_normal((3, 4)).astype(d)]),
    ("logsumexp", lambda x: lamina.logsumexp(x, 1), lambda x: x.logsumexp(1),
     lambda d: [(np.random.default_rng(37).standard_normal((3, 4)) * 30).astype(d)]),
    ("topk", lambda x: lamina.topk(x, 2, dim=1).values, lambda x: x.topk(2, dim=1).values,
     lambda d: [np.random.default_rng(38).permutation(12).reshape(3, 4).astype(d)]),
    ("topk_smallest", lambda x: x.topk(2, 0, largest=False)[0], lambda x: x.topk(2, 0, largest=False)[0],
     lambda d: [np.random.default_rng(39).permutation(12).reshape(3, 4).astype(d)]),
    ("sort_desc", lambda x: lamina.sort(x, 1, descending=True).values, lambda x: x.sort(1, descending=True).values,
     lambda d: [np.random.default_rng(40).permutation(12).reshape(3, 4).astype(d)]),
    ("gather", lambda x: x.gather(1, lamina.tensor([[0, 0], [1, 3], [2, 1]])),
     lambda x: x.gather(1, __import__("torch").tensor([[0, 0], [1, 3], [2, 1]])),
     lambda d: [np.random.default_rng(41).standard_normal((3, 4)).astype(d)]),
    ("scatter", lambda x, s: x.scatter(0, lamina.tensor([[0, 1, 2, 0]]), s),
     lambda x, s: x.scatter(0, __import__("torch").tensor([[0, 1, 2, 0]]), s),
     lambda d: [np.random.default_rng(42).standard_normal((3, 4)).astype(d),
                np.random.default_rng(43).standard_normal((1, 4)).astype(d)]),
    ("scatter_add", lambda x, s: lamina.scatter_add(x, 1, lamina.tensor([[0, 0], [2, 1]]), s),
     lambda x, s: x.scatter_add(1, __import__("torch").tensor([[0, 0], [2, 1]]), s),
     lambda d: [np.random.default_rng(44).standard_normal((2, 3)).astype(d),
                np.random.default_rng(45).standard_normal((2, 2)).astype(d)]),
    ("index_select", lambda x: lamina.index_select(x, 0, lamina.tensor([2, 0, 2])),
     lambda x: x.index_select(0, __import__("torch").tensor([2, 0, 2])),
     lambda d: [np.random.default_rng(46).standard_normal((3, 4)).astype(d)]),
    ("masked_fill", lambda x: x.masked_fill(x > 0.5, -1.0), lambda x: x.masked_fill(x > 0.5, -1.0),
     lambda d: [np.random.default_rng(47).standard_normal((3, 4)).astype(d)]),
    ("squeeze_unsqueeze_t", lambda x: lamina.t(lamina.squeeze(lamina.unsqueeze(x, 0), 0)),
     lambda x: x.unsqueeze(0).squeeze(0).t(), lambda d: [np.random.default_rng(48).standard_normal((3, 4)).astype(d)]),
    ("transpose_permute", lambda x: lamina.permute(lamina.transpose(x, 0, 2), (1, 0, 2)),
     lambda x: x.transpose(0, 2).permute(1, 0, 2), lambda d: [np.random.default_rng(49).standard_normal((2, 3, 4)).astype(d)]),
    ("reshape_top", lambda x: lamina.reshape(x, (4, -1)), lambda x: x.reshape(4, -1),
     lambda d: [np.random.default_rng(50).standard_normal((2, 3, 4)).astype(d)]),
    ("type_as", lambda x, y: x.type_as(y) * 2, lambda x, y: x.type_as(y) * 2,
     lambda d: [np.random.default_rng(51).standard_normal((2, 3)).astype(d),
                np.random.default_rng(52).standard_normal((2, 3)).astype(d)]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,lf,tf,build", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, lf, tf, build, dtype):
    requires_torch()
    helper_test_op(None, lf, tf, dtype=dtype, inputs=build(dtype))


GRADCHECK = [c for c in CASES if c[0] not in ("type_as",)]


@pytest.mark.parametrize("name,lf,tf,build", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_float64_finite_differences(name, lf, tf, build):
    arrays = build(np.float64)
    xs = [lamina.tensor(a, requires_grad=True) for a in arrays]
    assert lamina.autograd.gradcheck(lambda *t: lf(*t), xs)


def test_no_grad_results_and_dtypes():
    torch = requires_torch()
    a = np.array([[1.0, np.nan, 3.0], [np.inf, 0.0, -2.0]])
    x, tx = lamina.tensor(a), torch.tensor(a)
    for name in ("isnan", "isfinite", "isinf"):
        np.testing.assert_array_equal(getattr(lamina, name)(x).numpy(), getattr(torch, name)(tx).numpy())
    b = np.array([[1.0, 2.0, 3.0], [4.0, 0.0, -2.0]])
    y, ty = lamina.tensor(b, requires_grad=True), torch.tensor(b)
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        out = getattr(y, name)(2.0)
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), getattr(ty, name)(2.0).numpy())
        np.testing.assert_array_equal(getattr(lamina, name)(y, y * 0 + 2).numpy(), getattr(torch, name)(ty, ty * 0 + 2).numpy())
    m = y > 0
    assert m.all().item() == (ty > 0).all().item() and m.any(1).numpy().tolist() == (ty > 0).any(1).tolist()
    assert lamina.all(m, 0, keepdim=True).shape == (1, 3)
    for name in ("argmax", "argmin"):
        assert getattr(lamina, name)(y, 1).numpy().tolist() == getattr(torch, name)(ty, 1).tolist()
    v, i = lamina.topk(y, 2)
    tv, ti = torch.topk(ty, 2)
    assert i.dtype == np.int64 and i.numpy().tolist() == ti.tolist()
    np.testing.assert_array_equal(v.detach().numpy(), tv.numpy())
    s = y.sort(0, descending=True)
    assert s.indices.numpy().tolist() == ty.sort(0, descending=True).indices.tolist()
    z = y.new_zeros(2, 3)
    assert z.dtype == y.dtype and z.shape == (2, 3) and not z.numpy().any()
    assert y.new_ones((4,)).numpy().tolist() == [1.0] * 4
    assert lamina.numel(y) == 6 and lamina.clone(y).detach().numpy().tolist() == b.tolist()
    lamina.manual_seed(0)
    r = lamina.rand_like(y)
    assert r.shape == y.shape and r.dtype == y.dtype and ((r.numpy() >= 0) & (r.numpy() < 1)).all()
    assert lamina.randn_like(y, dtype=lamina.float32).dtype == np.float32
    # sort puts NaN last ascending and first descending, as PyTorch
    n = np.array([3.0, np.nan, 1.0, 2.0])
    assert lamina.sort(lamina.tensor(n)).indices.numpy().tolist() == torch.sort(torch.tensor(n)).indices.tolist()
    assert (lamina.sort(lamina.tensor(n), descending=True).indices.numpy().tolist()
            == torch.sort(torch.tensor(n), descending=True).indices.tolist())


def test_prod_gradient_at_zeros_is_exact():
    torch = requires_torch()
    a = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0]])
    x, tx = lamina.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    x.prod(1).sum().backward()
    tx.prod(1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_maximum_tie_splits_the_gradient():
    a = lamina.tensor([1.0, 2.0], requires_grad=True)
    b = lamina.tensor([1.0, 3.0], requires_grad=True)
    lamina.maximum(a, b).sum().backward()
    assert a.grad.numpy().tolist() == [0.5, 0.0] and b.grad.numpy().tolist() == [0.5, 1.0]


def test_split_and_chunk_shapes_match_torch():
    torch = requires_torch()
    x, tx = lamina.zeros(7, 3), torch.zeros(7, 3)
    for args in [(2,), (3,), (7,), (10,), ([2, 5],)]:
        assert [p.shape for p in lamina.split(x, *args)] == [tuple(p.shape) for p in torch.split(tx, *args)]
    for n in (1, 2, 3, 4, 6, 7, 9):
        assert [p.shape for p in x.chunk(n)] == [tuple(p.shape) for p in tx.chunk(n)], n


@pytest.mark.parametrize("call,exc,match", [
    (lambda: lamina.mm(lamina.zeros(2, 3), lamina.zeros(4, 2)), RuntimeError, r"cannot be multiplied \(2x3 and 4x2\)"),
    (lambda: lamina.mm(lamina.zeros(2, 3, 1), lamina.zeros(3, 2)), RuntimeError, "expected 2-D"),
    (lambda: lamina.bmm(lamina.zeros(2, 3, 4), lamina.zeros(3, 4, 2)), RuntimeError, "batch sizes differ"),
    (lambda: lamina.gather(lamina.zeros(2, 3), 1, lamina.tensor([[3]])), IndexError, "out of bounds"),
    (lambda: lamina.gather(lamina.zeros(2, 3), 2, lamina.tensor([[0]])), IndexError, "out of range"),
    (lambda: lamina.gather(lamina.zeros(2, 3), 1, lamina.tensor([[0.5]])), TypeError, "integer"),
    (lambda: lamina.index_select(lamina.zeros(2, 3), 0, lamina.tensor([2])), IndexError, "out of range"),
    (lambda: lamina.topk(lamina.zeros(2, 3), 4), RuntimeError, "k \\(4\\) out of range"),
    (lambda: lamina.cumsum(lamina.zeros(2, 3), 2), IndexError, "out of range"),
    (lambda: lamina.logsumexp(lamina.zeros(2, 3), (0, 0)), RuntimeError, "multiple times"),
    (lambda: lamina.zeros(2, 3).masked_fill(lamina.zeros(2, 3), 1.0), TypeError, "bool"),
    (lambda: lamina.einsum("ij,jk->ik", lamina.zeros(2, 3), lamina.zeros(4, 5)), ValueError, "size 3"),
    (lambda: lamina.split(lamina.zeros(4), [1, 2]), RuntimeError, "sum to"),
    (lambda: lamina.zeros(2, 3).repeat(2), RuntimeError, "can not be smaller"),
    (lambda: lamina.clamp(lamina.zeros(2)), ValueError, "at least one"),
    (lambda: lamina.sin([1.0, 2.0]), TypeError, "must be Tensor"),
    (lambda: lamina.where(lamina.zeros(2), lamina.zeros(2), lamina.zeros(2)), TypeError, "bool"),
])
def test_bad_input_raises_pytorch_style_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_compiled_training_step_runs_new_ops_as_eager():
    """A model using the new ops compiles (as Python callbacks) and trains exactly like eager."""
    import lamina.nn.functional as F

    class Net(lamina.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lamina.nn.Linear(6, 4)

        def forward(self, x):
            h = self.fc(x)
            return lamina.maximum(h, h * 0.1) + lamina.logsumexp(h, 1, keepdim=True) * 0.01 + h.cumsum(1) * 0.1

    def run(compiled):
        lamina.manual_seed(0)
        m = Net().to(np.float64)
        opt = lamina.optim.SGD(m.parameters(), lr=0.1)
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((8, 6)), rng.integers(0, 4, 8)
        if compiled:
            step = lamina.compile(m, F.cross_entropy, opt)
            for _ in range(3):
                step(x, y)
        else:
            for _ in range(3):
                opt.zero_grad()
                F.cross_entropy(m(lamina.from_numpy(x)), lamina.from_numpy(y)).backward()
                opt.step()
        return m.fc.weight.detach().numpy().copy()

    np.testing.assert_array_equal(run(True), run(False))


INPLACE = [
    ("pow_", (2,)), ("clamp_", (-0.5, 0.5)), ("clip_", (None, 0.3)), ("clamp_min_", (0.1,)), ("clamp_max_", (0.2,)),
    ("exp_", ()), ("abs_", ()), ("neg_", ()), ("sin_", ()), ("cos_", ()), ("tanh_", ()), ("sigmoid_", ()),
    ("relu_", ()), ("sqrt_", ()), ("log_", ()),
]


@pytest.mark.parametrize("name,args", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_variants_match_torch_values_and_gradients(name, args):
    """x = w * 1.0; x.op_(...); the write is in x, and w's gradient flows through it."""
    torch = requires_torch()
    a = np.abs(np.random.default_rng(60).standard_normal((3, 4))) + 0.2
    w, tw = lamina.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    x, tx = w * 1.5, tw * 1.5
    v0 = x._version if hasattr(x, "_version") else None
    assert getattr(x, name)(*args) is x
    getattr(tx, name)(*args)
    np.testing.assert_allclose(x.detach().numpy(), tx.detach().numpy(), rtol=1e-12)
    if v0 is not None:
        assert x._version == v0 + 1
    (x * x).sum().backward()
    (tx * tx).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_inplace_on_a_leaf_that_requires_grad_is_refused_and_no_grad_allows_it():
    w = lamina.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.clamp_(0, 0.5)
    with lamina.no_grad():
        w.uniform_(-0.1, 0.1)
        w.normal_(0.0, 0.01)
        w.masked_fill_(w > 0, 0.0)
    assert (w.detach().numpy() <= 0).all() and w.requires_grad


def test_named_arithmetic_matches_torch():
    torch = requires_torch()
    a = np.random.default_rng(61).standard_normal((3, 4))
    b = np.random.default_rng(62).standard_normal((3, 4))
    x, y, tx, ty = lamina.tensor(a), lamina.tensor(b), torch.tensor(a), torch.tensor(b)
    for got, want in [(x.add(y, alpha=2), tx.add(ty, alpha=2)), (lamina.sub(x, y), torch.sub(tx, ty)),
                      (x.mul(3), tx.mul(3)), (lamina.div(x, y), torch.div(tx, ty)),
                      (x.div(y, rounding_mode="floor"), tx.div(ty, rounding_mode="floor")),
                      (lamina.div(x, y, rounding_mode="trunc"), torch.div(tx, ty, rounding_mode="trunc"))]:
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    i, ti = lamina.tensor([7, -7]), torch.tensor([7, -7])
    assert lamina.div(i, 2, rounding_mode="floor").numpy().tolist() == torch.div(ti, 2, rounding_mode="floor").tolist()
    assert lamina.div(i, 2).dtype == np.float32   # integer true division: the default float dtype
