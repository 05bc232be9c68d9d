"""Small PyTorch API gaps, each checked against torch: abs(t), lamina.softmax / log_softmax,
Module.state_dict(destination, prefix, keep_vars), load_state_dict(assign=True), Tensor.view on
strides that forbid a view, and NumPy ufuncs applied to a Tensor (np.exp(t))."""
import inspect
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import lamina
from lamina import nn

torch = pytest.importorskip("torch")


def _pair(values, dtype=np.float64, requires_grad=False):
    a = np.array(values, dtype=dtype)
    return (lamina.tensor(a.copy(), requires_grad=requires_grad),
            torch.tensor(a.copy(), requires_grad=requires_grad))


# ---------------------------------------------------------------------------- abs(t)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_builtin_abs_matches_torch(dtype):
    values = [[-3, 0, 2], [7, -1, -0.0 if dtype != np.int64 else 0]]
    lt, tt = _pair(values, dtype)
    got = abs(lt)
    assert isinstance(got, lamina.Tensor) and got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.numpy(), abs(tt).numpy())


def test_builtin_abs_gradient_matches_torch():
    values = [-2.5, -0.5, 0.0, 0.5, 4.0]      # 0.0: both give the subgradient 0
    lt, tt = _pair(values, requires_grad=True)
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    (abs(lt) * lamina.tensor(w)).sum().backward()
    (abs(tt) * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(lt.grad.numpy(), tt.grad.numpy())


# ---------------------------------------------------------------------------- top-level softmax
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_top_level_softmax_matches_torch(name, dim):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 5)) * 3
    lt, tt = _pair(a, requires_grad=True)
    got, want = getattr(lamina, name)(lt, dim), getattr(torch, name)(tt, dim)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = rng.standard_normal((4, 5))
    (got * lamina.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(lt.grad.numpy(), tt.grad.numpy(), rtol=1e-10, atol=1e-12)
    # keyword dim and dtype (the input is cast first), as torch.softmax(x, dim=1, dtype=...)
    l32 = lamina.tensor(a.astype(np.float32))
    t32 = torch.tensor(a.astype(np.float32))
    got = getattr(lamina, name)(l32, dim=dim, dtype=lamina.float64)
    want = getattr(torch, name)(t32, dim=dim, dtype=torch.float64)
    assert got.dtype == np.float64 and want.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_top_level_softmax_needs_an_int_dim_like_torch(name):
    lt, tt = _pair([[1.0, 2.0]])
    for fn, x in ((getattr(lamina, name), lt), (getattr(torch, name), tt)):
        with pytest.raises(TypeError, match="dim"):
            fn(x)
        with pytest.raises(TypeError, match="dim"):
            fn(x, None)
    with pytest.raises(TypeError, match="must be Tensor"):
        getattr(lamina, name)([1.0, 2.0], 0)


# ---------------------------------------------------------------------------- state_dict
class _Pair:
    """The same small network in lamina and torch: Linear -> BatchNorm1d -> Linear."""

    def __init__(self):
        self.lam = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
        self.ref = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))


def test_state_dict_signature_is_torchs():
    mine = inspect.signature(nn.Module.state_dict).parameters
    theirs = inspect.signature(torch.nn.Module.state_dict).parameters
    assert [(p.name, p.kind, p.default) for p in mine.values()] == \
           [(p.name, p.kind, p.default) for p in theirs.values()]
    mine = inspect.signature(nn.Module.load_state_dict).parameters
    theirs = inspect.signature(torch.nn.Module.load_state_dict).parameters
    assert [(p.name, p.default) for p in mine.values()] == [(p.name, p.default) for p in theirs.values()]


def test_state_dict_prefix_destination_keep_vars():
    pair = _Pair()
    assert list(pair.lam.state_dict(prefix="net.")) == list(pair.ref.state_dict(prefix="net."))
    dest = OrderedDict(already=1)
    out = pair.lam.state_dict(destination=dest, prefix="m.")
    assert out is dest and list(dest)[0] == "already" and "m.0.weight" in dest
    kept = pair.lam.state_dict(keep_vars=True)
    assert kept["0.weight"] is pair.lam[0].weight and kept["0.weight"].requires_grad
    detached = pair.lam.state_dict()
    assert detached["0.weight"] is not pair.lam[0].weight and not detached["0.weight"].requires_grad
    assert np.shares_memory(detached["0.weight"].numpy(), pair.lam[0].weight.detach().numpy())
    ref_kept = pair.ref.state_dict(keep_vars=True)
    assert ref_kept["0.weight"] is pair.ref[0].weight       # the same contract in torch


def test_state_dict_positional_arguments_warn_like_torch():
    pair = _Pair()
    for module in (pair.lam, pair.ref):
        dest = OrderedDict()
        with pytest.warns(FutureWarning, match="Positional args are being deprecated"):
            out = module.state_dict(dest, "p.", True)
        assert out is dest and next(iter(dest)) == "p.0.weight"
        assert dest["p.0.weight"] is module[0].weight


def test_state_dict_bad_arguments():
    with pytest.raises(TypeError, match="prefix: expected a str"):
        nn.Linear(2, 2).state_dict(prefix=3)
    with pytest.raises(TypeError, match="destination: expected a dict"):
        nn.Linear(2, 2).state_dict(destination=5)


# ---------------------------------------------------------------------------- load_state_dict(assign=)
def test_load_state_dict_assign_takes_the_given_tensors_like_torch():
    lam, ref = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    lam.bias.requires_grad_(False)
    ref.bias.requires_grad_(False)
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((2, 3)), rng.standard_normal(2)     # float64 into a float32 module
    lsd = {"weight": lamina.tensor(w), "bias": lamina.tensor(b)}
    tsd = {"weight": torch.tensor(w), "bias": torch.tensor(b)}
    lam.load_state_dict(lsd, assign=True)
    ref.load_state_dict(tsd, assign=True)
    for name in ("weight", "bias"):
        lp, tp = getattr(lam, name), getattr(ref, name)
        assert isinstance(lp, nn.Parameter) and isinstance(tp, torch.nn.Parameter)
        assert lp.dtype == np.float64 and tp.dtype == torch.float64          # the state dict's dtype
        assert lp.requires_grad == tp.requires_grad                          # the module's flag
    assert lam.weight.requires_grad and not lam.bias.requires_grad
    # the module now holds the given storage: a write to the state dict's tensor shows in both
    lsd["weight"].data[0, 0] = 42.0
    tsd["weight"][0, 0] = 42.0
    assert lam.weight.detach().numpy()[0, 0] == 42.0 == float(ref.weight.detach()[0, 0])
    x = rng.standard_normal((4, 3))
    np.testing.assert_allclose(lam(lamina.tensor(x)).detach().numpy(), ref(torch.tensor(x)).detach().numpy(),
                               rtol=1e-12)


def test_load_state_dict_without_assign_copies_and_casts_like_torch():
    lam, ref = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    w = np.arange(6.0).reshape(2, 3)
    lsd, tsd = {"weight": lamina.tensor(w), "bias": lamina.zeros(2, dtype=lamina.float64)}, \
        {"weight": torch.tensor(w), "bias": torch.zeros(2, dtype=torch.float64)}
    keep = lam.weight
    lam.load_state_dict(lsd)
    ref.load_state_dict(tsd)
    assert lam.weight is keep and lam.weight.dtype == np.float32 and ref.weight.dtype == torch.float32
    lsd["weight"].data[0, 0] = 42.0
    assert lam.weight.detach().numpy()[0, 0] == 0.0


def test_load_state_dict_assign_buffers_and_failures():
    bn = nn.BatchNorm1d(3)
    mean = lamina.tensor([1.0, 2.0, 3.0])
    sd = {k: v.clone() for k, v in bn.state_dict().items()}
    sd["running_mean"] = mean
    bn.load_state_dict(sd, assign=True)
    assert bn.running_mean is mean
    before = bn.weight
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        bn.load_state_dict({**sd, "weight": lamina.ones(4)}, assign=True)
    assert bn.weight is before                       # a failed load assigns nothing
    with pytest.raises(RuntimeError, match="Missing key"):
        bn.load_state_dict({"weight": lamina.ones(3)}, assign=True)
    assert bn.weight is before


def test_load_state_dict_assign_shared_module_under_two_names():
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(sd, assign=True)
    assert net[0] is net[2] and net[0].weight is net[2].weight


# ---------------------------------------------------------------------------- view()
_VIEW_CASES = [
    # (base shape, how to take a non-contiguous tensor from it, view shape)
    ((3, 4), lambda x: x.t(), (12,)),                 # impossible: torch raises
    ((3, 4), lambda x: x.t(), (2, 6)),                # impossible
    ((3, 4), lambda x: x.t(), (4, 3)),                # same shape: a view
    ((4, 6), lambda x: x[:, :4], (4, 2, 2)),          # split the inner dimension: a view
    ((4, 6), lambda x: x[:, :4], (16,)),              # merge across the row gap: impossible
    ((2, 3, 4), lambda x: x.permute(1, 0, 2), (3, 8)),  # merge dims 0 and 1 of the permuted: impossible
    ((2, 3, 4), lambda x: x.permute(1, 0, 2), (3, 2, 2, 2)),  # split the contiguous last dim: a view
    ((6, 4), lambda x: x[::2], (3, 2, 2)),            # strided rows, split the row: a view
    ((6, 4), lambda x: x[::2], (-1,)),                # impossible
]


@pytest.mark.parametrize("case", range(len(_VIEW_CASES)))
def test_view_of_a_non_contiguous_tensor_is_a_view_or_raises_like_torch(case):
    shape, take, new_shape = _VIEW_CASES[case]
    a = np.arange(float(np.prod(shape))).reshape(shape)
    lbase, tbase = lamina.tensor(a.copy()), torch.tensor(a.copy())
    lx, tx = take(lbase), take(tbase)
    assert not tx.is_contiguous()
    try:
        tv = tx.view(new_shape)
    except RuntimeError as e:
        with pytest.raises(RuntimeError) as got:
            lx.view(new_shape)
        assert str(got.value) == str(e)
        return
    lv = lx.view(new_shape)
    np.testing.assert_array_equal(lv.numpy(), tv.numpy())
    # a real view: a write through it reaches the base, as in torch
    index = (0,) * (len(tv.shape) - 1) + (1,)
    lv[index] = -7.0
    tv[index] = -7.0
    np.testing.assert_array_equal(lbase.numpy(), tbase.numpy())
    assert (lbase.numpy() == -7.0).sum() == 1


def test_view_gradient_and_errors():
    a = np.arange(24.0).reshape(4, 6)
    lx, tx = _pair(a, requires_grad=True)
    w = np.arange(16.0).reshape(4, 2, 2)
    (lx[:, :4].view(4, 2, 2) * lamina.tensor(w)).sum().backward()
    (tx[:, :4].view(4, 2, 2) * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())
    with pytest.raises(ValueError, match="invalid for input"):
        lamina.zeros(4, 6)[:, :4].view(5, 3)        # a wrong element count names the shapes
    contiguous = lamina.zeros(2, 3)
    v = contiguous.view(-1)
    v[4] = 1.0
    assert contiguous.numpy()[1, 1] == 1.0


def test_view_of_a_view_then_an_in_place_op_keeps_autograd_right():
    a = np.arange(24.0).reshape(4, 6)
    lx, tx = _pair(a, requires_grad=True)
    ly, ty = lx * 1.0, tx * 1.0
    lv, tv = ly[:, :4].view(4, 2, 2), ty[:, :4].view(4, 2, 2)
    lv.mul_(3.0)
    tv.mul_(3.0)
    np.testing.assert_array_equal(ly.detach().numpy(), ty.detach().numpy())
    (ly * ly).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())


# ---------------------------------------------------------------------------- NumPy ufuncs
@pytest.mark.parametrize("ufunc, args", [
    (np.exp, ()), (np.sqrt, ()), (np.add, (1.0,)), (np.maximum, (0.5,)), (np.negative, ()),
])
def test_numpy_ufunc_on_a_tensor_returns_a_tensor_like_torch(ufunc, args):
    a = np.array([[0.25, 1.0], [2.0, 9.0]], dtype=np.float32)
    lt, tt = lamina.tensor(a.copy()), torch.tensor(a.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)     # torch's __array_wrap__ signature
        want = ufunc(tt, *args)
    got = ufunc(lt, *args)
    assert isinstance(want, torch.Tensor)
    assert isinstance(got, lamina.Tensor) and not got.requires_grad
    assert got.dtype == np.dtype(str(want.dtype).replace("torch.", ""))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_numpy_ufunc_edge_cases_like_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        t0 = np.exp(torch.tensor(1.0))
        ti = np.exp(torch.tensor([1, 2]))
    l0 = np.exp(lamina.tensor(1.0))
    assert isinstance(l0, lamina.Tensor) and l0.shape == tuple(t0.shape) == ()
    li = np.exp(lamina.tensor([1, 2]))
    assert li.dtype == np.float64 and ti.dtype == torch.float64
    np.testing.assert_allclose(li.numpy(), ti.numpy())
    # an explicit NumPy out= stays an ndarray (torch: the same)
    out = np.empty(2)
    assert np.exp(lamina.tensor([0.0, 1.0]), out=out) is out
    # a tensor that requires grad is refused with torch's message
    lg, tg = _pair([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError) as theirs:
        np.exp(tg)
    with pytest.raises(RuntimeError) as mine:
        np.exp(lg)
    assert str(mine.value) == str(theirs.value)
