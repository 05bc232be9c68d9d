"""Module methods and the new nn modules, against torch.nn's names, orders and values."""
import doctest
import sys

import numpy as np
import pytest

import lamina
from lamina import nn
from conftest import helper_test_op

torch = pytest.importorskip("torch")


class Block(nn.Module):
    def __init__(self, mod):
        super().__init__()
        self.fc = mod.Linear(3, 4)
        self.register_buffer("count", mod.zeros(2) if mod is not nn else lamina.zeros(2))
        self.register_buffer("scratch", (mod.ones(1) if mod is not nn else lamina.ones(1)), persistent=False)
        self.act = mod.ReLU()


class Net(nn.Module):
    def __init__(self, mod, lib):
        super().__init__()
        self.stem = mod.Linear(2, 3)
        self.blocks = mod.ModuleList([_block(mod, lib), _block(mod, lib)])
        self.heads = mod.ModuleDict({"b": mod.Linear(4, 1), "a": mod.Identity()})
        self.register_buffer("mask", lib.ones(3))
        self.shared = self.stem   # the same module reachable twice


def _block(mod, lib):
    b = (nn.Module if mod is nn else torch.nn.Module)()
    b.fc = mod.Linear(3, 4)
    b.register_buffer("count", lib.zeros(2))
    b.register_buffer("scratch", lib.ones(1), persistent=False)
    b.act = mod.ReLU()
    return b


def _pair():
    return Net(nn, lamina), Net.__new__(Net)


def _torch_net():
    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Linear(2, 3)
            self.blocks = torch.nn.ModuleList([_block(torch.nn, torch), _block(torch.nn, torch)])
            self.heads = torch.nn.ModuleDict({"b": torch.nn.Linear(4, 1), "a": torch.nn.Identity()})
            self.register_buffer("mask", torch.ones(3))
            self.shared = self.stem
    return TNet()


def test_traversal_orders_match_torch():
    ours, ref = Net(nn, lamina), _torch_net()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in ref.named_children()]
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__.replace("TNet", "Net")
                                                          for m in ref.children()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in ref.named_buffers()]
    assert [n for n, _ in ours.named_buffers(recurse=False)] == ["mask"]
    assert [n for n, _ in ours.named_buffers(prefix="net")][0] == "net.mask"
    assert len(list(ours.buffers())) == len(list(ref.buffers())) == 5
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == \
        [n for n, _ in ref.named_modules(remove_duplicate=False)]


def test_apply_visits_children_before_parents_like_torch():
    ours, ref = Net(nn, lamina), _torch_net()
    a, b = [], []
    ours.apply(lambda m: a.append(type(m).__name__))
    ref.apply(lambda m: b.append(type(m).__name__))
    assert a == [n.replace("TNet", "Net") for n in b]
    assert a[-1] == "Net" and a[0] == "Linear"


def test_apply_initializes_weights():
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))

    def zero_linear(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.0)

    assert net.apply(zero_linear) is net
    assert all(not p.detach().numpy().any() for n, p in net.named_parameters() if n.endswith("weight"))


def test_buffers_persistence_state_dict_and_dtype():
    m = Block(nn)
    sd = m.state_dict()
    assert "count" in sd and "scratch" not in sd
    m.count.data[...] = 7
    m2 = Block(nn)
    m2.load_state_dict(m.state_dict())
    assert m2.count.tolist() == [7.0, 7.0]
    m.double()
    assert m.count.dtype == np.float64 and m.fc.weight.dtype == np.float64
    m.count = lamina.tensor([1.0, 2.0])   # assigning to a buffer's name replaces the buffer
    assert dict(m.named_buffers())["count"].tolist() == [1.0, 2.0]


def test_register_buffer_checks_its_arguments():
    m = nn.Module()
    m.x = 3
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("x", lamina.zeros(1))
    with pytest.raises(KeyError, match=r"'\.'"):
        m.register_buffer("a.b", lamina.zeros(1))
    with pytest.raises(TypeError, match="tensor"):
        m.register_buffer("y", np.zeros(2))
    m.register_buffer("z", None)
    assert list(m.named_buffers()) == [] and "z" not in m.state_dict()


def test_get_submodule_parameter_buffer():
    net = Net(nn, lamina)
    assert net.get_submodule("blocks.1.fc") is net.blocks[1].fc
    assert net.get_submodule("") is net
    assert net.get_parameter("blocks.0.fc.bias") is net.blocks[0].fc.bias
    assert net.get_buffer("blocks.1.count") is net.blocks[1].count
    with pytest.raises(AttributeError, match="no submodule 'fx'"):
        net.get_submodule("blocks.0.fx")
    with pytest.raises(AttributeError, match="no parameter"):
        net.get_parameter("stem.gamma")


def test_module_list_behaves_like_torchs():
    ours = nn.ModuleList([nn.Linear(1, 1), nn.ReLU()])
    ref = torch.nn.ModuleList([torch.nn.Linear(1, 1), torch.nn.ReLU()])
    for lst, mod in ((ours, nn), (ref, torch.nn)):
        lst.append(mod.Tanh())
        lst.extend([mod.Sigmoid(), mod.Identity()])
        lst.insert(1, mod.Softplus())
        del lst[0]
        lst[-1] = mod.SiLU()
        lst += [mod.ELU()]
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in ref.named_children()]
    assert isinstance(ours[1:3], nn.ModuleList) and len(ours[1:3]) == 2
    assert type(ours.pop(0)).__name__ == "Softplus" and len(ours) == 5
    with pytest.raises(IndexError, match="out of range"):
        ours[9]


def test_module_dict_behaves_like_torchs():
    d = nn.ModuleDict({"x": nn.Linear(1, 1)})
    d.update([("y", nn.ReLU())])
    d["z"] = nn.Tanh()
    assert list(d) == ["x", "y", "z"] and "y" in d and len(d) == 3
    assert type(d.pop("y")).__name__ == "ReLU" and list(d.keys()) == ["x", "z"]
    assert [n for n, _ in d.named_parameters()] == ["x.weight", "x.bias"]
    with pytest.raises(KeyError, match="no module named 'q'"):
        d["q"]
    d.clear()
    assert len(d) == 0


# ------------------------------------------------------------------ the new modules vs torch
ACTS = [
    ("Identity", {}), ("LeakyReLU", dict(negative_slope=0.2)), ("ELU", {}), ("ELU", dict(alpha=0.5)),
    ("GELU", {}), ("GELU", dict(approximate="tanh")), ("SiLU", {}), ("Softplus", {}),
    ("Softplus", dict(beta=2.0)), ("Softmax", dict(dim=1)), ("LogSoftmax", dict(dim=1)),
    ("Softmax", dict(dim=0)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", ACTS, ids=[f"{n}-{k}" for n, k in ACTS])
def test_activation_modules_match_torch(name, kw, dtype):
    helper_test_op([(4, 5)], getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw), dtype=dtype, low=-3, high=3)


def test_softmax_without_dim_uses_torchs_implicit_dim():
    import warnings
    for shape in [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)]:
        x = np.random.default_rng(0).standard_normal(shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = torch.nn.Softmax()(torch.tensor(x)).numpy()
        np.testing.assert_allclose(nn.Softmax()(lamina.tensor(x)).numpy(), want, rtol=1e-12)


def test_elu_gradient_at_zero_takes_the_negative_side_like_torch():
    x = lamina.tensor([0.0, -1.0, 1.0], requires_grad=True)
    nn.ELU(alpha=0.5)(x).sum().backward()
    tx = torch.tensor([0.0, -1.0, 1.0], requires_grad=True)
    torch.nn.ELU(alpha=0.5)(tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_embedding_matches_torch_including_padding_idx():
    w = np.random.default_rng(0).standard_normal((6, 3))
    idx = np.array([[0, 2, 5], [2, 2, 1]])
    ours = nn.Embedding.from_pretrained(lamina.tensor(w), freeze=False, padding_idx=2)
    ref = torch.nn.Embedding.from_pretrained(torch.tensor(w), freeze=False, padding_idx=2)
    y, ty = ours(lamina.tensor(idx)), ref(torch.tensor(idx))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy())
    v = np.random.default_rng(1).standard_normal(y.shape)
    (y * lamina.tensor(v)).sum().backward()
    (ty * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-12)
    assert not ours.weight.grad.numpy()[2].any()


def test_embedding_init_and_errors():
    lamina.manual_seed(0)
    e = nn.Embedding(1000, 8, padding_idx=-1)
    assert e.padding_idx == 999 and not e.weight.data[999].any()
    assert abs(float(e.weight.detach().numpy().std()) - 1.0) < 0.05   # N(0, 1) like torch
    assert e.weight.dtype == lamina.get_default_dtype()
    with pytest.raises(ValueError, match=r"index 1000 out of range \[0, 1000\)"):
        e(lamina.tensor([1, 1000]))
    with pytest.raises(TypeError, match="integer indices"):
        e(lamina.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(3, 2, padding_idx=3)
    frozen = nn.Embedding.from_pretrained(lamina.tensor(np.eye(3)))
    assert not frozen.weight.requires_grad


def test_embedding_max_norm_renormalizes_looked_up_rows_like_torch():
    w = np.random.default_rng(0).standard_normal((5, 4)) * 3
    ours = nn.Embedding.from_pretrained(lamina.tensor(w.copy()), max_norm=1.0)
    ref = torch.nn.Embedding.from_pretrained(torch.tensor(w.copy()), max_norm=1.0)
    idx = np.array([0, 3, 3])
    np.testing.assert_allclose(ours(lamina.tensor(idx)).numpy(), ref(torch.tensor(idx)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.weight.numpy(), ref.weight.detach().numpy(), rtol=1e-6)


def test_embedding_trains_with_an_optimizer():
    lamina.manual_seed(0)
    e = nn.Embedding(4, 2)
    opt = lamina.optim.SGD(e.parameters(), lr=0.5)
    before = e.weight.detach().numpy().copy()
    (e(lamina.tensor([1, 1, 3])) ** 2).sum().backward()
    opt.step()
    changed = np.any(e.weight.detach().numpy() != before, axis=1)
    assert changed.tolist() == [False, True, False, True]


def test_public_docstrings_run():
    import lamina.nn.modules.container
    import lamina.nn.module
    import lamina.nn.utils
    import lamina.optim.adaptive
    import lamina.optim.lr_scheduler
    import lamina.ops.nn_extra  # noqa: F401
    for name in ("lamina.nn.module", "lamina.nn.modules.container", "lamina.nn.modules.linear",
                 "lamina.nn.utils", "lamina.nn.utils.rnn", "lamina.optim.adaptive", "lamina.optim.lr_scheduler",
                 "lamina.nn.functional", "lamina.ops.nn_extra"):
        result = doctest.testmod(sys.modules[name])
        assert result.failed == 0 and result.attempted > 0, name
