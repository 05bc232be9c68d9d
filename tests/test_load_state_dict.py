"""Module.load_state_dict as PyTorch's: values of another dtype are cast into the parameter's
dtype (param.copy_(value)), problems are reported together in PyTorch's wording, and a failed
load copies nothing."""
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch

import lamina
from lamina import nn


def _pair(seed=0):
    torch.manual_seed(seed)
    tmodel = torch.nn.Sequential(OrderedDict([("fc1", torch.nn.Linear(5, 4)), ("act", torch.nn.ReLU()),
                                              ("fc2", torch.nn.Linear(4, 3))]))
    lmodel = nn.Sequential(OrderedDict([("fc1", nn.Linear(5, 4)), ("act", nn.ReLU()), ("fc2", nn.Linear(4, 3))]))
    return tmodel, lmodel


def _params(lmodel):
    return {k: v.detach().numpy().copy() for k, v in lmodel.state_dict().items()}


def test_torch_saved_float16_checkpoint_loads_into_float32_params(tmp_path):
    tmodel, lmodel = _pair()
    half = {k: v.half() for k, v in tmodel.state_dict().items()}
    torch.save(half, tmp_path / "half.pt")
    loaded = lamina.load(tmp_path / "half.pt")
    assert all(v.dtype == np.float16 for v in loaded.values())
    result = lmodel.load_state_dict(loaded)
    assert result.missing_keys == [] and result.unexpected_keys == []
    tmodel.load_state_dict(half)       # PyTorch casts the same way: its params stay float32
    for name, p in lmodel.named_parameters():
        assert p.dtype == np.float32 and p.requires_grad
        np.testing.assert_array_equal(p.detach().numpy(), tmodel.state_dict()[name].numpy())
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    with torch.no_grad():
        want = tmodel(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(lmodel(lamina.tensor(x)).detach().numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("source_dtype", [np.float64, np.float16, np.int64])
def test_other_dtypes_are_cast_into_the_params_dtype_as_copy_does(source_dtype):
    tmodel, lmodel = _pair()
    rng = np.random.default_rng(1)
    sd = {k: (rng.standard_normal(v.shape) * 3).astype(source_dtype) for k, v in tmodel.state_dict().items()}
    lmodel.load_state_dict(sd)   # NumPy arrays, as lamina accepts (float16 has no lamina Tensor)
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    for name, value in lmodel.state_dict().items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value.numpy(), tmodel.state_dict()[name].numpy())


def test_float64_model_takes_a_float32_checkpoint_and_stays_float64(tmp_path):
    _, small = _pair()
    lamina.save(small.state_dict(), tmp_path / "f32.safetensors")
    _, big = _pair()
    big.double()
    big.load_state_dict(lamina.load(tmp_path / "f32.safetensors"))
    for (name, p), q in zip(big.named_parameters(), small.parameters()):
        assert p.dtype == np.float64, name
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy().astype(np.float64))


def test_integer_buffer_takes_float_values_truncated_as_torch():
    lbn, tbn = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    sd = {k: v.numpy().copy() for k, v in tbn.state_dict().items()}
    sd["num_batches_tracked"] = np.array(5.7)
    sd["running_mean"] = np.array([1.5, -2.5, 0.25], np.float64)
    lbn.load_state_dict(sd)
    tbn.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()})
    assert lbn.num_batches_tracked.dtype == np.int64
    assert lbn.num_batches_tracked.item() == tbn.num_batches_tracked.item() == 5
    assert lbn.running_mean.dtype == np.float32
    np.testing.assert_array_equal(lbn.running_mean.numpy(), tbn.running_mean.numpy())


def test_one_element_vector_fills_a_scalar_buffer_as_torch():
    lbn, tbn = nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    sd = {k: v.numpy().copy() for k, v in tbn.state_dict().items()}
    sd["num_batches_tracked"] = np.array([7])
    lbn.load_state_dict(sd)
    tbn.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()})
    assert lbn.num_batches_tracked.shape == () and lbn.num_batches_tracked.item() == 7
    assert tbn.num_batches_tracked.item() == 7


def _torch_message(tmodel, sd, strict=True):
    with pytest.raises(RuntimeError) as info:
        tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=strict)
    # torch prints shapes as torch.Size([4, 5]); lamina as the tuples its .shape returns
    return re.sub(r"torch\.Size\(\[([^\]]*)\]\)", lambda m: str(tuple(int(n) for n in m[1].split(","))),
                  str(info.value))


@pytest.mark.parametrize("strict", [True, False])
def test_size_mismatch_is_refused_in_torchs_words_and_nothing_is_copied(strict):
    tmodel, lmodel = _pair()
    before = _params(lmodel)
    sd = {k: v.numpy().copy() + 1 for k, v in tmodel.state_dict().items()}
    sd["fc1.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(RuntimeError) as info:
        lmodel.load_state_dict(sd, strict=strict)
    message = str(info.value)
    assert message == _torch_message(tmodel, sd, strict).replace("torch.Tensor", "Tensor")
    assert message == ("Error(s) in loading state_dict for Sequential:\n\tsize mismatch for fc1.weight: "
                       "copying a param with shape (3, 3) from checkpoint, the shape in current model "
                       "is (4, 5).")
    # lamina loads all or nothing: fc2, which matched, is unchanged too
    for k, v in _params(lmodel).items():
        np.testing.assert_array_equal(v, before[k])
    assert isinstance(info.value, ValueError)   # what lamina raised for shapes before


def test_every_problem_is_listed_together_as_torch_does():
    tmodel, lmodel = _pair()
    sd = {k: v.numpy().copy() for k, v in tmodel.state_dict().items()}
    del sd["fc2.bias"]
    sd["extra"] = np.zeros(2, np.float32)
    sd["fc1.bias"] = np.zeros(7, np.float32)
    with pytest.raises(RuntimeError) as info:
        lmodel.load_state_dict(sd)
    assert str(info.value) == _torch_message(tmodel, sd)
    assert str(info.value).startswith('Error(s) in loading state_dict for Sequential:\n\t'
                                      'Missing key(s) in state_dict: "fc2.bias". \n\t'
                                      'Unexpected key(s) in state_dict: "extra". \n\tsize mismatch for fc1.bias')
    assert isinstance(info.value, KeyError)
    assert info.value.missing_keys == ["fc2.bias"] and info.value.unexpected_keys == ["extra"]


def test_a_value_that_is_not_an_array_is_refused_naming_the_key():
    _, lmodel = _pair()
    sd = lmodel.state_dict()
    sd["fc2.bias"] = "zeros"
    with pytest.raises(RuntimeError, match='While copying the parameter named "fc2.bias"'):
        lmodel.load_state_dict(sd)


def test_load_counts_as_an_in_place_write_for_saved_tensors():
    # PyTorch: copying into a weight saved for backward makes that backward raise
    _, lmodel = _pair()
    loss = lmodel(lamina.ones(2, 5)).sum()
    lmodel.load_state_dict(lmodel.state_dict())
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_all_keys_matched_repr_as_torch():
    tmodel, lmodel = _pair()
    result = lmodel.load_state_dict(lmodel.state_dict())
    assert repr(result) == repr(tmodel.load_state_dict(tmodel.state_dict())) == "<All keys matched successfully>"
    missing, unexpected = lmodel.load_state_dict({}, strict=False)
    assert missing == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"] and unexpected == []
