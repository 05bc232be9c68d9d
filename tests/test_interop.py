"""Interop with NumPy and PyTorch: the array protocol and DLPack 1.0 both ways (issue 17)."""
import gc
import sys
import warnings

import numpy as np
import pytest
import torch

import lamina

DTYPES = [np.float32, np.float64, np.int64, np.bool_]


def _sample(dtype, shape=(3, 4)):
    return (np.arange(np.prod(shape)).reshape(shape) % 3 == 1).astype(dtype) if dtype == np.bool_ \
        else np.arange(np.prod(shape)).reshape(shape).astype(dtype)


# ---------------------------------------------------------------- NumPy's array protocol
def test_np_array_copy_true_is_a_real_copy():
    t = lamina.tensor([1.0, 2.0, 3.0])
    a = np.array(t, copy=True)
    a[0] = 99.0
    assert t.tolist() == [1.0, 2.0, 3.0]          # failed before: the "copy" aliased t
    assert not np.shares_memory(a, t.numpy())


def test_np_array_copy_false_and_none_share_memory():
    t = lamina.tensor([1.0, 2.0])
    for a in (np.array(t, copy=False), np.asarray(t), np.array(t, copy=None)):
        assert np.shares_memory(a, t.numpy())
    np.asarray(t)[1] = 7.0
    assert t.tolist() == [1.0, 7.0]


def test_copy_false_raises_when_a_copy_is_needed():
    t = lamina.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="copy"):
        np.array(t, dtype=np.float64, copy=False)
    b = np.asarray(t, dtype=np.float64)            # copy=None converts
    assert b.dtype == np.float64 and b.tolist() == [1.0, 2.0]
    c = np.array(t, dtype=np.float64, copy=True)
    assert c.dtype == np.float64


def test_no_deprecation_warning_under_numpy2():
    t = lamina.tensor([[1.0, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.array(t, copy=True), np.asarray(t), np.array(t, dtype=np.float64, copy=None)


def test_numpy_shares_memory_and_accepts_force():
    t = lamina.tensor([1.0, 2.0], requires_grad=True)
    assert np.shares_memory(t.detach().numpy(), t.numpy(force=True))
    w = lamina.tensor([3, 4])
    w.numpy(force=False)[0] = 5
    assert w.tolist() == [5, 4]


# ---------------------------------------------------------------- DLPack: lamina -> others
def _capsule_name(capsule):
    return repr(capsule).split('"')[1]


def test_dlpack_device_is_cpu():
    assert lamina.tensor([1.0]).__dlpack_device__() == (1, 0)


def test_versioned_capsule_only_when_asked():
    t = lamina.tensor([1.0, 2.0])
    assert _capsule_name(t.__dlpack__()) == "dltensor"
    assert _capsule_name(t.__dlpack__(max_version=(0, 8))) == "dltensor"
    assert _capsule_name(t.__dlpack__(max_version=(1, 0))) == "dltensor_versioned"
    assert _capsule_name(t.__dlpack__(max_version=(1, 3))) == "dltensor_versioned"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_numpy_from_dlpack_shares_memory(dtype):
    t = lamina.tensor(_sample(dtype))
    a = np.from_dlpack(t)
    assert a.dtype == t.dtype and a.shape == t.shape
    np.testing.assert_array_equal(a, t.numpy())
    a[1, 2] = 0 if dtype != np.bool_ else True
    assert t.numpy()[1, 2] == a[1, 2]              # a write through numpy is seen by lamina
    t.numpy()[0, 0] = 1
    assert a[0, 0] == 1                            # and the other way


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_torch_from_dlpack_shares_memory(dtype):
    t = lamina.tensor(_sample(dtype))
    tt = torch.from_dlpack(t)
    assert str(tt.dtype).split(".")[1] == {"float32": "float32", "float64": "float64", "int64": "int64",
                                           "bool": "bool"}[t.dtype.name]
    np.testing.assert_array_equal(tt.numpy(), t.numpy())
    tt[2, 3] = 1
    assert t.numpy()[2, 3] == 1
    t.numpy()[0, 1] = 0
    assert not bool(tt[0, 1])


def test_strided_view_exports_with_strides():
    base = lamina.tensor(np.arange(12, dtype=np.float64).reshape(3, 4))
    view = lamina.Tensor._wrap(base.numpy()[:, ::2])           # a non-contiguous lamina tensor
    tt = torch.from_dlpack(view)
    assert tt.stride() == (4, 2)
    np.testing.assert_array_equal(tt.numpy(), base.numpy()[:, ::2])
    tt[0, 1] = -1.0
    assert base.numpy()[0, 2] == -1.0


def test_capsule_keeps_memory_alive():
    t = lamina.tensor(np.full((256, 256), 3.0, np.float32))
    capsule = t.__dlpack__(max_version=(1, 0))
    del t
    gc.collect()
    _ = [np.ones((256, 256), np.float32) * 9 for _ in range(20)]   # churn the allocator
    t2 = lamina.from_dlpack(capsule)
    assert float(t2.numpy().min()) == 3.0 and float(t2.numpy().max()) == 3.0


def test_unconsumed_capsule_releases_its_reference():
    t = lamina.tensor([1.0, 2.0])
    data = t.numpy()
    counts = [sys.getrefcount(data)]               # (computed outside `assert`: pytest's rewriting holds refs)
    for kw in ({}, {"max_version": (1, 0)}):
        capsule = t.__dlpack__(**kw)
        counts.append(sys.getrefcount(data))
        del capsule
        counts.append(sys.getrefcount(data))
    a = np.from_dlpack(t)
    counts.append(sys.getrefcount(data))
    del a
    counts.append(sys.getrefcount(data))
    base = counts[0]
    assert counts == [base, base + 1, base, base + 1, base, base + 1, base]


def test_dlpack_arguments():
    t = lamina.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="stream"):
        t.__dlpack__(stream=1)
    with pytest.raises(BufferError, match="dl_device"):
        t.__dlpack__(dl_device=(2, 0))
    same = lamina.from_dlpack(t.__dlpack__(dl_device=(1, 0), max_version=(1, 0)))
    assert np.shares_memory(same.numpy(), t.numpy())
    copied = np.from_dlpack(t, copy=True)
    copied[0] = 50.0
    assert t.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="requires grad"):
        lamina.tensor([1.0], requires_grad=True).__dlpack__()
    np.testing.assert_array_equal(np.from_dlpack(lamina.tensor([1.0], requires_grad=True).detach()), [1.0])


def test_read_only_tensor_exports_read_only():
    arr = np.arange(4, dtype=np.float32)
    arr.flags.writeable = False
    t = lamina.Tensor._wrap(arr)
    a = np.from_dlpack(t)                  # NumPy asks for DLPack 1.0, which can carry the flag
    assert not a.flags.writeable
    with pytest.raises(BufferError, match="read-only"):
        t.__dlpack__()                     # the legacy struct cannot say "read-only"


# ---------------------------------------------------------------- DLPack: others -> lamina
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_lamina_from_numpy_dlpack_zero_copy(dtype):
    a = _sample(dtype)
    t = lamina.from_dlpack(a)
    assert isinstance(t, lamina.Tensor) and t.dtype == a.dtype and t.shape == a.shape
    assert np.shares_memory(t.numpy(), a)
    a[0, 0] = 1
    assert t.numpy()[0, 0] == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool], ids=str)
def test_lamina_from_torch_shares_memory(dtype):
    tt = (torch.arange(6).reshape(2, 3) % 2).to(dtype)
    t = lamina.from_dlpack(tt)
    np.testing.assert_array_equal(t.numpy(), tt.numpy())
    tt[1, 2] = 1
    assert t.numpy()[1, 2] == 1                    # torch's write seen by lamina
    t.numpy()[0, 0] = 1
    assert bool(tt[0, 0])                          # lamina's write seen by torch


def test_lamina_from_torch_keeps_memory_alive_and_computes():
    tt = torch.arange(8, dtype=torch.float32)
    t = lamina.from_dlpack(tt)
    del tt
    gc.collect()
    assert (t * 2).tolist() == [float(2 * i) for i in range(8)]


def test_from_read_only_numpy_refuses_writes():
    a = np.arange(3, dtype=np.float64)
    a.flags.writeable = False
    t = lamina.from_dlpack(a)
    assert np.shares_memory(t.numpy(), a) and not t.numpy().flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        t.numpy()[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        t += 1.0
    assert a.tolist() == [0.0, 1.0, 2.0]


def test_from_non_contiguous_copies_with_a_note():
    tt = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    with pytest.warns(UserWarning, match="not C-contiguous; lamina copied it"):
        t = lamina.from_dlpack(tt)
    np.testing.assert_array_equal(t.numpy(), tt.numpy())
    assert t.numpy().flags.c_contiguous
    tt[0, 0] = 100.0
    assert t.numpy()[0, 0] == 0.0                  # a copy, as the warning said
    a = np.arange(10.0)[::3]
    with pytest.warns(UserWarning, match="copied"):
        np.testing.assert_array_equal(lamina.from_dlpack(a).numpy(), a)


def test_from_dlpack_refusals():
    with pytest.raises(TypeError, match="uint16 is not a lamina dtype"):
        lamina.from_dlpack(np.zeros(3, np.uint16))
    with pytest.raises(TypeError, match="expected an object with __dlpack__"):
        lamina.from_dlpack([1.0, 2.0])
    capsule = np.arange(3.0).__dlpack__()
    lamina.from_dlpack(capsule)
    with pytest.raises(ValueError, match="unconsumed DLPack capsule"):
        lamina.from_dlpack(capsule)                # a capsule is consumed once
    with pytest.raises(BufferError, match="bfloat16"):
        lamina.from_dlpack(torch.zeros(2, dtype=torch.bfloat16))


def test_round_trip_through_torch_and_back():
    t = lamina.tensor(np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32))
    back = lamina.from_dlpack(torch.from_dlpack(t))
    assert np.shares_memory(back.numpy(), t.numpy())
    x = lamina.from_dlpack(np.from_dlpack(t))
    assert np.shares_memory(x.numpy(), t.numpy())


def test_mpi4py_takes_tensors_without_a_copy():
    MPI = pytest.importorskip("mpi4py.MPI")
    send = lamina.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    recv = lamina.zeros(2, 3)
    before = recv.numpy()
    MPI.COMM_SELF.Allreduce(send, recv, op=MPI.SUM)     # mpi4py reads and writes through __dlpack__
    assert recv.numpy() is before
    np.testing.assert_array_equal(recv.numpy(), send.numpy())
