"""F.nll_loss: PyTorch's values and gradients, and its target validated like cross_entropy's.

The first tests are the issue's silent wrong results: before this change a (N, 1) target
averaged over an N x N block, float labels were truncated, -1 picked the last class and a
batch mismatch surfaced as a raw NumPy IndexError.
"""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import nn
from conftest import helper_gradcheck, helper_test_op

torch = pytest.importorskip("torch")


def _logp(n=4, c=5, seed=0, dtype=np.float64):
    x = np.random.default_rng(seed).standard_normal((n, c)).astype(dtype)
    return lamina.tensor(x - np.log(np.exp(x).sum(1, keepdims=True)))


# ------------------------------------------------------------ the silent wrong results
def test_target_with_a_trailing_unit_dimension_is_refused():
    with pytest.raises(ValueError, match=r"target: expected shape \(4,\).*got \(4, 1\).*view\(-1\)"):
        F.nll_loss(_logp(), lamina.tensor(np.array([[1], [0], [4], [2]])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_labels_are_refused_not_truncated(dtype):
    with pytest.raises(TypeError, match="integer class indices.*long"):
        F.nll_loss(_logp(), lamina.tensor(np.array([1.7, 0.2, 4.0, 2.0], dtype=dtype)))
    with pytest.raises(RuntimeError):   # what torch raises, so torch-style handlers still catch it
        F.nll_loss(_logp(), np.array([1.0, 0.0, 4.0, 2.0], dtype=dtype))


@pytest.mark.parametrize("bad", [-1, 5, 100])
def test_out_of_range_labels_are_refused(bad):
    with pytest.raises(ValueError, match=rf"target: class index {bad} out of range \[0, 5\)"):
        F.nll_loss(_logp(), lamina.tensor([1, bad, 0, 2]))
    with pytest.raises(IndexError):   # torch raises IndexError here
        F.nll_loss(_logp(), lamina.tensor([1, bad, 0, 2]))


def test_batch_mismatch_names_both_sizes():
    with pytest.raises(ValueError, match=r"target: expected shape \(4,\) to match input's batch, got \(3,\)"):
        F.nll_loss(_logp(), lamina.tensor([1, 0, 2]))
    with pytest.raises(ValueError, match="target"):
        F.nll_loss(_logp(), lamina.tensor([1, 0, 2, 3, 0]))


def test_spatial_target_shape_is_checked():
    x = lamina.tensor(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"expected shape \(2, 4, 5\)"):
        F.nll_loss(x, lamina.tensor(np.zeros((2, 5, 4), dtype=np.int64)))


def test_ignore_index_is_exempt_from_the_range_check():
    logp = _logp()
    t = lamina.tensor([1, -100, 3, -100])
    got = F.nll_loss(logp, t).item()
    want = -(logp.data[0, 1] + logp.data[2, 3]) / 2
    assert got == pytest.approx(want, rel=1e-12)
    assert F.nll_loss(logp, lamina.tensor([1, 7, 3, 7]), ignore_index=7).item() == pytest.approx(want)
    with pytest.raises(ValueError, match="class index -100"):
        F.nll_loss(logp, t, ignore_index=3)


def test_weight_shape_and_input_dtype_are_checked():
    with pytest.raises(ValueError, match=r"weight: expected shape \(5,\)"):
        F.nll_loss(_logp(), lamina.tensor([1, 0, 2, 3]), weight=lamina.ones(4, dtype=lamina.float64))
    with pytest.raises(TypeError, match="input"):
        F.nll_loss(lamina.zeros(2, 3, dtype=np.int64), lamina.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.nll_loss(_logp(), lamina.tensor([1, 0, 2, 3]), reduction="avg")


def test_cross_entropy_float_labels_say_integer_class_indices_are_expected():
    x = lamina.zeros(3, 4)
    with pytest.raises(TypeError, match="expected integer class indices.*float32.*long"):
        F.cross_entropy(x, lamina.tensor(np.array([1.0, 2.0, 0.0], dtype=np.float32)))
    with pytest.raises(RuntimeError, match="integer class indices"):
        nn.CrossEntropyLoss()(x, np.array([1.0, 2.0, 0.0]))
    # float targets of the input's shape are class probabilities, as in torch
    p = np.full((3, 4), 0.25, dtype=np.float32)
    assert F.cross_entropy(x, lamina.tensor(p)).item() == pytest.approx(np.log(4), rel=1e-6)


def test_cross_entropy_out_of_range_and_trailing_dimension():
    with pytest.raises(IndexError, match=r"class index -1 out of range \[0, 4\)"):
        F.cross_entropy(lamina.zeros(3, 4), lamina.tensor([0, -1, 2]))
    with pytest.raises(ValueError, match=r"got \(3, 1\)"):
        F.cross_entropy(lamina.zeros(3, 4), lamina.tensor(np.array([[0], [1], [2]])))


# ------------------------------------------------------------ values and gradients vs torch
CASES = [
    ((6, 5), [0, 4, 2, 2, 1, 3], {}),
    ((6, 5), [0, 4, -100, 2, 1, -100], dict(reduction="sum")),
    ((6, 5), [0, 4, 2, 2, 1, 3], dict(reduction="none")),
    ((6, 5), [0, 4, 2, 2, 1, 3], dict(weight=[0.5, 1.0, 2.0, 0.1, 3.0])),
    ((6, 5), [0, 4, 1, 2, 1, 3], dict(weight=[0.5, 1.0, 2.0, 0.1, 3.0], ignore_index=1)),
    ((6, 5), [0, 4, 1, 2, 1, 3], dict(weight=[0.5, 1.0, 2.0, 0.1, 3.0], reduction="none")),
    ((5,), 3, {}),
    ((2, 3, 4), [[0, 1, 2, 2], [1, 1, 0, -100]], {}),
    ((2, 3, 2, 3), [[[0, 1, 2], [2, 2, 0]], [[1, 1, 0], [0, 2, 1]]], dict(weight=[1.0, 2.0, 0.5])),
    ((2, 3, 2, 3), [[[0, 1, 2], [2, 2, 0]], [[1, 1, 0], [0, 2, 1]]], dict(reduction="none")),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,target,kw", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_matches_torch(shape, target, kw, dtype):
    t = np.array(target, dtype=np.int64)

    def ours(x):
        k = dict(kw)
        if "weight" in k:
            k["weight"] = lamina.tensor(np.array(k["weight"], dtype=dtype))
        return F.nll_loss(x, lamina.tensor(t), **k)

    def ref(x):
        k = dict(kw)
        if "weight" in k:
            k["weight"] = torch.tensor(np.array(k["weight"], dtype=dtype))
        return torch.nn.functional.nll_loss(x, torch.tensor(t), **k)

    out = helper_test_op([shape], ours, ref, dtype=dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("shape,target,kw", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_gradcheck_float64(shape, target, kw):
    t = lamina.tensor(np.array(target, dtype=np.int64))
    k = dict(kw)
    if "weight" in k:
        k["weight"] = np.array(k["weight"])
    helper_gradcheck([shape], lambda x: F.nll_loss(x, t, **k).sum())


def test_module_matches_torch_and_takes_torchs_argument_order():
    logp = _logp(seed=3)
    t = lamina.tensor([1, 0, 4, 2])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    got = nn.NLLLoss(lamina.tensor(w))(logp, t).item()
    want = torch.nn.NLLLoss(torch.tensor(w))(torch.tensor(logp.data), torch.tensor(t.data)).item()
    assert got == pytest.approx(want, rel=1e-12)
    assert nn.NLLLoss(reduction="sum")(logp, t).item() == pytest.approx(
        torch.nn.NLLLoss(reduction="sum")(torch.tensor(logp.data), torch.tensor(t.data)).item())
    # log_softmax + nll_loss is cross_entropy
    x = lamina.tensor(np.random.default_rng(1).standard_normal((4, 5)))
    assert F.nll_loss(F.log_softmax(x, 1), t).item() == pytest.approx(F.cross_entropy(x, t).item(), rel=1e-12)


def test_all_targets_ignored_gives_nan_like_torch():
    out = F.nll_loss(_logp(), lamina.tensor([-100] * 4))
    assert np.isnan(out.item())
    assert np.isnan(torch.nn.functional.nll_loss(torch.zeros(4, 5), torch.full((4,), -100)).item())


def test_cross_entropy_spatial_none_keeps_the_target_shape():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    t = np.array([[0, 1, 2, 2], [1, 1, 0, 2]])
    got = F.cross_entropy(lamina.tensor(x), lamina.tensor(t), reduction="none")
    want = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t), reduction="none")
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def test_compiled_training_sees_each_batchs_labels():
    """The validated target must stay the batch's own array: the compiler feeds new labels by
    identity, and a copy or view would freeze the first batch's labels into the graph."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 16, 6)).astype(np.float32)
    y = rng.integers(0, 4, (3, 16))

    def run(compiled):
        lamina.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
        opt = lamina.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        step = lamina.compile(m, F.cross_entropy, opt) if compiled else None
        losses = []
        for xb, yb in zip(x, y):
            if compiled:
                losses.append(float(step(lamina.tensor(xb), lamina.tensor(yb))))
            else:
                opt.zero_grad()
                loss = F.cross_entropy(m(lamina.tensor(xb)), lamina.tensor(yb))
                loss.backward()
                opt.step()
                losses.append(loss.item())
        return losses

    np.testing.assert_allclose(run(True), run(False), rtol=1e-5)
