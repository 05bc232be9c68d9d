import numpy as np
import pytest

import lamina


def test_tensor_copies_and_default_dtypes():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = lamina.tensor(a)
    a[0, 0] = 100
    assert t.numpy()[0, 0] == 0  # always copies
    assert t.dtype == lamina.float64  # numpy float64 keeps its dtype
    assert lamina.tensor([1.5, 2]).dtype == lamina.float32
    assert lamina.tensor([1, 2]).dtype == lamina.int64
    assert lamina.tensor([1, 2], dtype=lamina.float64).dtype == lamina.float64
    assert t.shape == (2, 3) and t.ndim == 2 and t.numel() == 6


def test_from_numpy_shares_memory_and_rejects_others():
    a = np.zeros((2, 2), dtype=np.float32)
    t = lamina.from_numpy(a)
    a[1, 1] = 7
    assert t.numpy()[1, 1] == 7 and np.shares_memory(t.numpy(), a)
    strided = np.zeros((4, 4), dtype=np.float32)[:, ::2]
    s = lamina.from_numpy(strided)  # shared with its strides, as torch.from_numpy
    strided[0, 1] = 3
    assert s.tolist()[0] == [0, 3] and not s.is_contiguous() and s.stride() == (4, 2)
    with pytest.raises(ValueError, match="negative"):
        lamina.from_numpy(np.zeros(4, dtype=np.float32)[::-1])
    with pytest.raises(ValueError, match="lamina.tensor"):
        lamina.from_numpy(np.zeros(3, dtype=np.float16))
    assert np.asarray(t) is t.numpy() or np.shares_memory(np.asarray(t), a)


def test_constructors_and_seed():
    assert lamina.zeros(2, 3).numpy().sum() == 0
    assert lamina.ones((2, 3)).numpy().sum() == 6
    assert lamina.full((2,), 3.5).numpy().tolist() == [3.5, 3.5]
    assert lamina.arange(5).numpy().tolist() == [0, 1, 2, 3, 4]
    assert lamina.arange(0, 1, 0.25).dtype == lamina.float32
    lamina.manual_seed(3)
    a = lamina.randn(4, 5)
    b = lamina.rand(3)
    lamina.manual_seed(3)
    assert np.array_equal(a.numpy(), lamina.randn(4, 5).numpy())
    assert np.array_equal(b.numpy(), lamina.rand(3).numpy())
    assert 0 <= b.numpy().min() and b.numpy().max() < 1
    with pytest.raises(ValueError, match="size"):
        lamina.zeros(-1)


def test_item_repr_and_errors():
    assert lamina.tensor([2.5]).item() == 2.5
    with pytest.raises(ValueError, match="one element"):
        lamina.ones(2).item()
    assert "grad_fn=<MulBackward0>" in repr(lamina.ones(2, requires_grad=True) * 2)
    with pytest.raises(TypeError, match="floating-point"):
        lamina.tensor([1, 2], requires_grad=True)


def test_shape_ops_match_numpy():
    a = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    t = lamina.tensor(a)
    np.testing.assert_array_equal(t.reshape(6, 4).numpy(), a.reshape(6, 4))
    np.testing.assert_array_equal(t.reshape(-1).numpy(), a.reshape(-1))
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), a.transpose(2, 1, 0))
    np.testing.assert_array_equal(t.permute(1, 2, 0).numpy(), a.transpose(1, 2, 0))
    np.testing.assert_array_equal(t.flatten(1).numpy(), a.reshape(2, 12))
    np.testing.assert_array_equal(t.T.numpy(), a.T)
    np.testing.assert_array_equal(t.sum(1).numpy(), a.sum(1))
    np.testing.assert_allclose(t.mean((0, 2), keepdim=True).numpy(), a.mean((0, 2), keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(t.max(2).values.numpy(), a.max(2))
    np.testing.assert_array_equal(t.max(2).indices.numpy(), a.argmax(2))
    assert t.max().item() == a.max()
    with pytest.raises(ValueError, match="reshape"):
        t.reshape(5, 5)


def test_broadcast_arithmetic_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 1, 4)).astype(np.float32)
    b = rng.standard_normal((5, 1)).astype(np.float32)
    ta, tb = lamina.tensor(a), lamina.tensor(b)
    for f in (lambda x, y: x + y, lambda x, y: x - y, lambda x, y: x * y, lambda x, y: x / (y * y + 1)):
        np.testing.assert_allclose(f(ta, tb).numpy(), f(a, b), rtol=1e-6)
    np.testing.assert_allclose((2.0 - ta).numpy(), 2.0 - a)
    np.testing.assert_allclose((ta ** 2).numpy(), a ** 2, rtol=1e-6)
    assert (ta * 2.0).dtype == lamina.float32  # python scalars take the tensor's dtype


def test_no_grad_and_detach():
    x = lamina.ones(3, requires_grad=True)
    with lamina.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    z = (x * 2).detach()
    assert not z.requires_grad


def test_dtype_conversion_and_int_labels():
    t = lamina.ones(2, 2)
    assert t.double().dtype == lamina.float64
    assert t.to(lamina.float64).float().dtype == lamina.float32
    labels = lamina.tensor(np.array([1, 2, 3], dtype=np.int32))
    assert labels.dtype == lamina.int32            # an array keeps its dtype, as torch.tensor does
    assert labels.long().dtype == lamina.int64 and labels.long().tolist() == [1, 2, 3]
    assert lamina.tensor(np.array([7], dtype=np.uint16)).dtype == lamina.int64   # no uint16: widened


def test_numpy_interop_with_ndarray_on_left():
    a = np.ones(3, dtype=np.float32)
    t = lamina.ones(3, requires_grad=True)
    y = a * t
    assert isinstance(y, lamina.Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), a)
