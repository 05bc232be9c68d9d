"""A tensor prints as PyTorch prints it (digits, padding, scientific switch, wrapping,
summarizing, dtype and size suffixes), so a script that prints tensors prints the same text
with only `torch.` -> `lamina.` in dtype names."""
import numpy as np
import pytest

import lamina

torch = pytest.importorskip("torch")

CASES = [
    "T.tensor([True, False])", "T.zeros(0)", "T.zeros(2, 0)", "T.zeros(0, dtype=T.int32)",
    "T.tensor([1, 2], dtype=T.int32)", "T.tensor([float('nan'), 1.5, float('inf')])",
    "T.tensor([float('nan'), 1., -float('inf')])", "T.tensor([1e-5, 1.0])", "T.arange(2000.)",
    "T.ones(40, 40)", "T.tensor([0., 0.])", "T.tensor(1e-8)", "T.tensor(3.5)", "T.tensor(7)",
    "T.tensor([1, 2], dtype=T.uint8)", "T.tensor([123456.789, 1.0])", "T.tensor([[1.5, 2.0], [3.25, -1e-3]])",
    "T.arange(24.).reshape(2, 3, 4) / 7", "T.arange(3000).reshape(30, 100)", "T.tensor([1e9, 2.0])",
    "T.tensor([-0.0, 1.0])", "T.tensor([0.1, 0.25], dtype=T.float64)", "T.tensor([1.0, 2.0], requires_grad=True)",
    "T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)", "T.linspace(0, 1, 30)",
    "T.arange(100.).reshape(1, 100) * 1.5", "T.tensor([[[1.0]]])", "T.tensor([12345678.0, 1.0])",
    "T.tensor([1e-3, 1e-2, 0.5])", "T.tensor([3, -1000000])", "T.full((2, 3), -2.5)",
    "T.arange(12.).reshape(3, 4).t()", "T.arange(1200.).reshape(2, 600)[:, ::7]",
    "T.tensor([1.0, 2.0], dtype=T.float64).reshape(2, 1, 1)",
]


def _repr(lib, expr):
    return repr(eval(expr, {"T": lib})).replace(lib.__name__ + ".", "X.")


@pytest.mark.parametrize("expr", CASES)
def test_repr_is_pytorchs(expr):
    assert _repr(lamina, expr) == _repr(torch, expr)


@pytest.mark.parametrize("seed", range(12))
def test_random_arrays_print_as_pytorch(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 7, rng.integers(1, 4)))
    scale = 10.0 ** rng.integers(-6, 10)
    a = (rng.standard_normal(shape) * scale).astype(rng.choice([np.float32, np.float64]))
    if seed % 3 == 0:
        a = np.round(a)                    # integer-valued floats: the "3." form
    if seed % 4 == 1:
        a.reshape(-1)[0] = np.nan
    assert repr(lamina.tensor(a)).replace("lamina.", "X.") == repr(torch.tensor(a)).replace("torch.", "X.")


def test_printoptions_as_pytorch():
    a = np.linspace(-1, 1, 2500).astype(np.float32).reshape(50, 50)
    try:
        for kw in (dict(precision=2), dict(sci_mode=True), dict(threshold=10, edgeitems=1), dict(linewidth=40),
                   dict(profile="short"), dict(profile="full", linewidth=200)):
            lamina.set_printoptions(**kw)
            torch.set_printoptions(**kw)
            assert repr(lamina.tensor(a[:4, :9])) == repr(torch.tensor(a[:4, :9])), kw
            assert repr(lamina.tensor(a)) == repr(torch.tensor(a)), kw
    finally:
        lamina.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")
    assert lamina.get_printoptions()["precision"] == 4
    with pytest.raises(ValueError, match="profile"):
        lamina.set_printoptions(profile="long")
    with pytest.raises(ValueError, match="precision"):
        lamina.set_printoptions(precision=-1)


def test_shape_is_a_size_that_prints_as_pytorchs():
    import pickle
    for shape in [(2, 3), (), (5,), (1, 0, 4)]:
        a = np.zeros(shape, np.float32)
        ours, theirs = lamina.tensor(a), torch.tensor(a)
        assert repr(ours.shape).replace("lamina.", "X.") == repr(theirs.shape).replace("torch.", "X.")
        assert str(ours.size()).replace("lamina.", "X.") == str(theirs.size()).replace("torch.", "X.")
        assert ours.shape == shape and ours.shape == theirs.shape and hash(ours.shape) == hash(shape)
        assert ours.shape.numel() == theirs.shape.numel()
        assert pickle.loads(pickle.dumps(ours.shape)) == ours.shape
    s = lamina.zeros(2, 3, 4).shape
    assert isinstance(s[1:], lamina.Size) and s[1:] == (3, 4) and s[-1] == 4 and type(s[0]) is int
    assert isinstance(s + (5,), lamina.Size) and s + (5,) == (2, 3, 4, 5)
    assert lamina.Size([2, 3]) == (2, 3) and np.zeros(s).shape == (2, 3, 4)


def test_format_spec_on_a_scalar_tensor_formats_its_value():
    loss = lamina.tensor(2.302585, requires_grad=True) * 1.0
    tloss = torch.tensor(2.302585, requires_grad=True) * 1.0
    for spec in (".4f", "8.2e", "", ">12"):
        assert format(loss, spec).replace("lamina.", "X.") == format(tloss, spec).replace("torch.", "X.")
    assert f"{lamina.tensor(7):03d}" == f"{torch.tensor(7):03d}" == "007"
    with pytest.raises(TypeError):
        f"{lamina.tensor([1.0, 2.0]):.2f}"
    with pytest.raises(TypeError):
        f"{torch.tensor([1.0, 2.0]):.2f}"
