"""Tensor.numpy() and NumPy's array protocol behave as PyTorch's do on CPU tensors: a tensor
that requires grad is refused (unless force=True), everything else shares memory."""
import warnings

import numpy as np
import pytest
import torch

import lamina
from lamina import nn

TORCH_MESSAGE = "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."


def _torch_error(fn):
    # torch's __array__ lacks NumPy 2's copy keyword; its DeprecationWarning is not ours to test
    with warnings.catch_warnings(), pytest.raises(RuntimeError) as info:
        warnings.simplefilter("ignore", DeprecationWarning)
        fn(torch.ones(3, requires_grad=True))
    return str(info.value)


def _numpy_conversions():
    return {
        "numpy": lambda t: t.numpy(),
        "numpy_force_false": lambda t: t.numpy(force=False),
        "asarray": lambda t: np.asarray(t),
        "array": lambda t: np.array(t),
        "array_copy": lambda t: np.array(t, copy=True),
        "asarray_dtype": lambda t: np.asarray(t, dtype=np.float64),
    }


@pytest.mark.parametrize("how", sorted(_numpy_conversions()))
def test_requires_grad_leaf_is_refused_with_torchs_message(how):
    convert = _numpy_conversions()[how]
    t = lamina.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError) as info:
        convert(t)
    assert str(info.value) == TORCH_MESSAGE == _torch_error(convert)


def test_non_leaf_that_requires_grad_is_refused():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        y.numpy()
    assert y.detach().numpy().tolist() == [2.0, 4.0]


def test_parameters_are_refused_like_torchs():
    lin, tlin = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    for weight in (lin.weight, tlin.weight):
        with pytest.raises(RuntimeError, match="requires grad"):
            weight.numpy()
    # what PyTorch users write instead works, and sees later in-place updates
    view = lin.weight.detach().numpy()
    with lamina.no_grad():
        lin.weight.add_(1.0)
    np.testing.assert_array_equal(view, lin.weight.detach().numpy())


def test_force_true_detaches_and_shares_memory():
    t = lamina.tensor([1.0, 2.0], requires_grad=True)
    forced = t.numpy(force=True)
    assert np.shares_memory(forced, t.detach().numpy())
    forced[0] = 7.0
    assert t.tolist() == [7.0, 2.0]
    # PyTorch does the same for a CPU tensor: force=True shares rather than copies
    tt = torch.tensor([1.0, 2.0], requires_grad=True)
    assert np.shares_memory(tt.numpy(force=True), tt.detach().numpy())


def test_force_true_on_a_plain_tensor_shares_memory():
    t = lamina.tensor([3, 4])
    assert np.shares_memory(t.numpy(force=True), t.numpy())


def test_numpy_shares_memory_both_ways():
    t = lamina.zeros(4)
    a = t.numpy()
    a[1] = 5.0
    assert t.tolist() == [0.0, 5.0, 0.0, 0.0]
    t.add_(1.0)
    assert a.tolist() == [1.0, 6.0, 1.0, 1.0]


def test_outputs_under_no_grad_convert_freely():
    lin = nn.Linear(2, 1)
    with lamina.no_grad():
        y = lin(lamina.ones(1, 2))
    assert not y.requires_grad
    assert y.numpy().shape == (1, 1)
    assert np.asarray(y).shape == (1, 1)


def test_asarray_without_grad_shares_memory_and_copy_true_copies():
    t = lamina.tensor([1.0, 2.0])
    assert np.shares_memory(np.asarray(t), t.numpy())
    c = np.array(t, copy=True)
    c[0] = 9.0
    assert t.tolist() == [1.0, 2.0]


def test_tolist_and_item_still_work_with_grad_as_in_torch():
    t = lamina.tensor([1.5, 2.5], requires_grad=True)
    tt = torch.tensor([1.5, 2.5], requires_grad=True)
    assert t.tolist() == tt.tolist() == [1.5, 2.5]
    assert t[0].item() == tt[0].item() == 1.5
    assert t.sum().item() == tt.sum().item() == 4.0


def test_grad_itself_converts():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.numpy().tolist() == [2.0, 4.0]


def _readonly(a):
    a.flags.writeable = False
    return a


def test_from_numpy_of_a_read_only_array_warns_as_torch_and_shares():
    a = _readonly(np.arange(4, dtype=np.float32))
    with pytest.warns(UserWarning, match="not writable"):
        t = lamina.from_numpy(a)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.from_numpy(_readonly(np.arange(4, dtype=np.float32)))
    assert any("not writable" in str(w.message) for w in caught)   # PyTorch warns the same way
    assert np.shares_memory(t.numpy(), a)


@pytest.mark.parametrize("write", [
    lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(), lambda t: t.fill_(3.0),
    lambda t: t.copy_(lamina.ones(4)), lambda t: t.relu_(), lambda t: t.__setitem__(0, 5.0),
    lambda t: t[1:].add_(1), lambda t: t.uniform_(),
], ids=["add_", "mul_", "zero_", "fill_", "copy_", "relu_", "setitem", "view_add_", "uniform_"])
def test_in_place_write_into_read_only_memory_is_refused_clearly(write):
    a = _readonly(np.arange(4, dtype=np.float32))
    with pytest.warns(UserWarning):
        t = lamina.from_numpy(a)
    with pytest.raises(RuntimeError, match="read-only"):
        write(t)
    assert a.tolist() == [0.0, 1.0, 2.0, 3.0]
    # a copy is writeable, as the message says
    c = t.clone()
    c.add_(1)
    assert c.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_from_numpy_shares_memory_both_ways_as_torch():
    a = np.zeros(3, np.float64)
    t, tt = lamina.from_numpy(a), torch.from_numpy(a)
    a[1] = 2.0
    assert t.tolist() == tt.tolist() == [0.0, 2.0, 0.0]
    t.add_(1)
    assert a.tolist() == [1.0, 3.0, 1.0] and tt.tolist() == [1.0, 3.0, 1.0]


def test_from_numpy_of_a_strided_view_shares_and_computes_as_torch():
    # pytorch/examples' time_sequence_prediction feeds data[3:, :-1] (a strided view) to an LSTMCell
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    view = base[1:, :-1]
    t, tt = lamina.from_numpy(view), torch.from_numpy(view)
    assert t.stride() == tt.stride() and t.is_contiguous() == tt.is_contiguous() is False
    base[2, 0] = -5.0
    assert t.tolist() == tt.tolist()
    w = lamina.tensor(np.linspace(-1, 1, 15).reshape(5, 3), requires_grad=True)
    tw = torch.tensor(np.linspace(-1, 1, 15).reshape(5, 3), requires_grad=True)
    (t.split(2, dim=1)[0].exp() @ w[:2]).sum().backward()
    (tt.split(2, dim=1)[0].exp() @ tw[:2]).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    t.mul_(2)  # in place through the view writes the shared array, as torch does
    assert base[1, 0] == 12.0 and base[3, 5] == 23.0


@pytest.mark.parametrize("values", [3.5, [1, 2], [[True, False]], [[1.5, -2.0], [0.0, 4.0]]], ids=repr)
def test_tolist_and_asarray_dtype_match_torch(values):
    t, tt = lamina.tensor(values), torch.tensor(values)
    assert t.tolist() == tt.tolist()
    assert type(t.tolist()) is type(tt.tolist())
    assert np.asarray(t).dtype == np.asarray(tt).dtype


def test_save_and_load_keep_requires_grad_as_torch(tmp_path):
    t = lamina.tensor([1.0, 2.0], requires_grad=True)
    lamina.save({"w": t, "b": lamina.tensor([3.0])}, tmp_path / "c.lt")
    got = lamina.load(tmp_path / "c.lt")
    tt = torch.tensor([1.0, 2.0], requires_grad=True)
    torch.save({"w": tt, "b": torch.tensor([3.0])}, tmp_path / "c.pt")
    want = torch.load(tmp_path / "c.pt")
    assert got["w"].requires_grad == want["w"].requires_grad is True
    assert got["b"].requires_grad == want["b"].requires_grad is False
    assert got["w"].detach().numpy().tolist() == [1.0, 2.0]


def test_as_tensor_shares_and_copies_where_torch_does():
    a = np.zeros(3, np.float32)
    t, tt = lamina.as_tensor(a), torch.as_tensor(a)
    a[0] = 4.0
    assert t.tolist() == tt.tolist() == [4.0, 0.0, 0.0]
    # another dtype is a converted copy in both
    b = np.zeros(2, np.float64)
    c, tc = lamina.as_tensor(b, dtype=lamina.float32), torch.as_tensor(b, dtype=torch.float32)
    b[0] = 1.0
    assert c.tolist() == tc.tolist() == [0.0, 0.0] and c.dtype == np.float32
    # Python data gets tensor()'s dtypes
    for data in ([1, 2], [1.5], 2.0, [[True]]):
        assert str(lamina.as_tensor(data).dtype) == str(torch.as_tensor(data).dtype).replace("torch.", "")
    # a tensor comes back as is, or through a differentiable cast
    x = lamina.ones(2, requires_grad=True)
    assert lamina.as_tensor(x) is x
    y = lamina.as_tensor(x, dtype=lamina.float64)
    y.sum().backward()
    assert y.dtype == np.float64 and x.grad.tolist() == [1.0, 1.0]
    with pytest.raises(Exception, match="cuda"):
        lamina.as_tensor([1.0], device="cuda")


def test_dlpack_export_of_a_grad_tensor_raises_buffererror_as_torch():
    t, tt = lamina.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    for x in (t, tt):
        with pytest.raises(BufferError, match="detach"):
            np.from_dlpack(x)
    with pytest.raises(RuntimeError):
        t.__dlpack__()
    assert np.from_dlpack(t.detach()).tolist() == [1.0, 1.0]


def test_save_and_load_keep_parameters_parameters_as_torch(tmp_path):
    lin, tlin = nn.Linear(2, 1), torch.nn.Linear(2, 1)
    frozen = nn.Parameter(lamina.zeros(3), requires_grad=False)
    lamina.save({"w": lin.weight, "frozen": frozen, "plain": lin.weight.detach()}, tmp_path / "p.lt")
    got = lamina.load(tmp_path / "p.lt")
    torch.save({"w": tlin.weight, "frozen": torch.nn.Parameter(torch.zeros(3), requires_grad=False),
                "plain": tlin.weight.detach()}, tmp_path / "p.pt")
    want = torch.load(tmp_path / "p.pt")
    for key in ("w", "frozen", "plain"):
        assert isinstance(got[key], nn.Parameter) == isinstance(want[key], torch.nn.Parameter), key
        assert got[key].requires_grad == want[key].requires_grad, key
    np.testing.assert_array_equal(got["w"].detach().numpy(), lin.weight.detach().numpy())
