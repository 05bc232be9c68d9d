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
