"""Issue 19, findings 8-18, 20 and 21: each silent wrong answer or unhelpful error, checked
against PyTorch. Every test here failed on the code before the fix."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from conftest import requires_torch


def _np(t):
    return np.asarray(t.detach().numpy())


# ---- 8: a tensor saved for backward and then modified in place is refused
def test_f8_saved_tensor_modified_in_place_is_refused():
    x = lamina.ones(3, requires_grad=True)
    w = lamina.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * w).sum()
    with lamina.no_grad():
        w += 1000
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation.*Mul"):
        y.backward()


# ---- 9: enable_grad as a decorator turns grad on
def test_f9_enable_grad_decorator_enables():
    @lamina.enable_grad()
    def double(t):
        return t * 2

    x = lamina.ones(2, requires_grad=True)
    with lamina.no_grad():
        y = double(x)
        assert not lamina.is_grad_enabled()
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), [2.0, 2.0])


# ---- 10: writes into a tensor keep the written value in the graph
@pytest.mark.parametrize("write", ["x[0:1] = w", "x += w", "x.copy_(w)"])
def test_f10_inplace_write_keeps_w_in_graph(write):
    torch = requires_torch()
    grads = []
    for lib in (lamina, torch):
        w = lib.tensor([2.0], requires_grad=True)
        x = lib.zeros(3) if write != "x[0:1] = w" else lib.zeros(3)
        if write == "x[0:1] = w":
            x[0:1] = w
        elif write == "x += w":
            x += w
        else:
            x.copy_(w)
        (x * 3).sum().backward()
        grads.append(_np(w.grad))
    np.testing.assert_allclose(grads[0], grads[1])
    assert grads[0][0] in (3.0, 9.0)


# ---- 11: max with NaN and x ** 0 at 0
def test_f11_gradient_of_nan_maximum_goes_to_the_nan():
    torch = requires_torch()
    out = []
    for lib in (lamina, torch):
        x = lib.tensor([1.0, float("nan"), 3.0], requires_grad=True)
        x.max().backward()
        out.append(_np(x.grad))
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], [0.0, 1.0, 0.0])


def test_f11_nan_maximum_along_a_dim_and_min():
    torch = requires_torch()
    out = []
    for lib in (lamina, torch):
        x = lib.tensor([[1.0, float("nan"), 3.0], [4.0, 0.0, 2.0]], requires_grad=True)
        (x.max(1).values.sum() + x.min().sum() * 0 + x.min(0).values.sum()).backward()
        out.append(_np(x.grad))
    np.testing.assert_array_equal(out[0], out[1])


def test_f11_gradient_of_x_pow_0_is_zero():
    torch = requires_torch()
    out = []
    for lib in (lamina, torch):
        x = lib.tensor([0.0, 2.0, -1.0], requires_grad=True)
        (x ** 0).sum().backward()
        out.append(_np(x.grad))
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], [0.0, 0.0, 0.0])


# ---- 12: an integer cast does not require grad and stops the gradient
def test_f12_integer_cast_does_not_require_grad():
    x = lamina.tensor([1.5, 2.5], requires_grad=True)
    i = x.to(lamina.int64)
    assert not i.requires_grad and i.grad_fn is None
    with pytest.raises(RuntimeError):
        i.sum().backward()


# ---- 13: basic indexing gives a view, like reshape
def test_f13_basic_index_is_a_view():
    x = lamina.zeros(2, 3)
    v = x[0]
    v += 100
    np.testing.assert_array_equal(_np(x), [[100.0] * 3, [0.0] * 3])
    r = x.reshape(3, 2)
    r[2, 1] = -1.0
    assert x[1, 2].item() == -1.0


# ---- 14: out-of-range dims raise IndexError instead of wrapping
@pytest.mark.parametrize("call", [
    lambda x: lamina.cat([x, x], dim=2),
    lambda x: F.softmax(x, 2),
    lambda x: F.log_softmax(x, -3),
    lambda x: lamina.nn.Softmax(dim=5)(x),
    lambda x: lamina.nn.LogSoftmax(dim=2)(x) if hasattr(lamina.nn, "LogSoftmax") else x.log_softmax(2),
    lambda x: x.max(5),
    lambda x: x.softmax(2),
    lambda x: x.sum(2),
    lambda x: x.argmax(-3),
    lambda x: lamina.stack([x, x], dim=4),
])
def test_f14_out_of_range_dim_raises_index_error(call):
    x = lamina.randn(2, 3)
    with pytest.raises(IndexError, match="out of range"):
        call(x)


def test_f14_expand_minus_one_in_a_new_leading_dim_is_refused():
    torch = requires_torch()
    for lib in (lamina, torch):
        with pytest.raises(RuntimeError, match="leading, non-existing dimension"):
            lib.ones(3, 1).expand(-1, 3, 1)


# ---- 15: cross-entropy with probability targets honours label_smoothing and weight
@pytest.mark.parametrize("kwargs", [dict(label_smoothing=0.2), dict(weight=[1.0, 2.0, 0.5, 3.0]),
                                    dict(weight=[1.0, 2.0, 0.5, 3.0], label_smoothing=0.3,
                                         reduction="sum"),
                                    dict(weight=[1.0, 2.0, 0.5, 3.0], reduction="none")])
def test_f15_cross_entropy_probability_targets(kwargs):
    torch = requires_torch()
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4))
    probs = rng.random((5, 4))
    probs /= probs.sum(1, keepdims=True)
    res = []
    for lib, fn in ((lamina, F.cross_entropy), (torch, torch.nn.functional.cross_entropy)):
        x = lib.tensor(logits, requires_grad=True)
        kw = dict(kwargs)
        if "weight" in kw:
            kw["weight"] = lib.tensor(kw["weight"], dtype=lib.float64)
        loss = fn(x, lib.tensor(probs), **kw)
        loss.sum().backward()
        res.append((_np(loss), _np(x.grad)))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-10)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-10, atol=1e-12)


# ---- 16: softplus honours threshold (and beta)
@pytest.mark.parametrize("beta,threshold", [(1.0, 5.0), (2.0, 1.0), (0.5, 20.0)])
def test_f16_softplus_threshold(beta, threshold):
    torch = requires_torch()
    xs = np.linspace(-8, 8, 33)
    res = []
    for lib, fn in ((lamina, F.softplus), (torch, torch.nn.functional.softplus)):
        x = lib.tensor(xs, requires_grad=True)
        y = fn(x, beta=beta, threshold=threshold)
        y.sum().backward()
        res.append((_np(y), _np(x.grad)))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-12)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-12)


# ---- 17: Linear with no inputs has a zero bias
def test_f17_linear_with_zero_inputs_has_zero_bias():
    lin = lamina.nn.Linear(0, 3)
    np.testing.assert_array_equal(_np(lin.bias), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(_np(lin(lamina.ones(2, 0))), np.zeros((2, 3)))


# ---- 18: bool and unsigned rules, empty dim tuple, reshape arguments
def test_f18_bool_times_int_is_int64():
    y = lamina.tensor([True, False]) * 2
    assert y.dtype == lamina.int64 and y.tolist() == [2, 0]


def test_f18_uint64_beyond_int64_is_refused():
    with pytest.raises(OverflowError, match="int64"):
        lamina.tensor(np.array([2 ** 63 + 5], dtype=np.uint64))
    with pytest.raises(OverflowError):
        lamina.tensor(2 ** 63 + 5)
    assert lamina.tensor(np.array([7], dtype=np.uint64)).tolist() == [7]


def test_f18_sum_over_empty_dim_tuple_reduces_everything():
    torch = requires_torch()
    x = np.arange(6.0).reshape(2, 3)
    for name in ("sum", "mean"):
        ours = getattr(lamina.tensor(x), name)(())
        theirs = getattr(torch.tensor(x), name)(())
        assert tuple(ours.shape) == tuple(theirs.shape) == ()
        assert ours.item() == pytest.approx(theirs.item())


@pytest.mark.parametrize("shape", [(-2, 3), (-1, -1), (2, -3)])
def test_f18_reshape_refuses_bad_sizes(shape):
    torch = requires_torch()
    with pytest.raises(RuntimeError):
        torch.zeros(6).reshape(*shape)
    with pytest.raises(RuntimeError, match="reshape"):
        lamina.zeros(6).reshape(*shape)


# ---- 20: a dilated ceil-mode window wider than the padded input
def test_f20_max_pool_dilated_ceil_window_on_2x2():
    torch = requires_torch()
    x = np.random.default_rng(1).standard_normal((1, 2, 2, 2)).astype(np.float32)
    kw = dict(kernel_size=4, stride=2, padding=2, dilation=2, ceil_mode=True)
    ours = F.max_pool2d(lamina.tensor(x), **kw)
    theirs = torch.nn.functional.max_pool2d(torch.tensor(x), **kw)
    assert tuple(ours.shape) == tuple(theirs.shape) == (1, 2, 1, 1)
    np.testing.assert_array_equal(_np(ours), theirs.numpy())


# ---- 21: clear errors, or PyTorch's answer where PyTorch has one
def test_f21_linear_with_1d_weight_matches_pytorch():
    torch = requires_torch()
    x = np.random.default_rng(2).standard_normal((4, 3))
    w = np.array([0.5, -1.0, 2.0])
    ours = F.linear(lamina.tensor(x), lamina.tensor(w))
    theirs = torch.nn.functional.linear(torch.tensor(x), torch.tensor(w))
    np.testing.assert_allclose(_np(ours), theirs.numpy())


def test_f21_linear_with_mismatched_weight_names_it():
    with pytest.raises(ValueError, match="in_features"):
        F.linear(lamina.ones(4, 3), lamina.ones(2, 5))
    with pytest.raises(ValueError, match="weight"):
        F.linear(lamina.ones(4, 3), lamina.ones(2, 3, 1))


def test_f21_cross_entropy_unbatched_probability_target():
    torch = requires_torch()
    logits = np.array([0.2, -1.0, 0.7])
    probs = np.array([0.1, 0.3, 0.6])
    ours = F.cross_entropy(lamina.tensor(logits), lamina.tensor(probs))
    theirs = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(probs))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)


def test_f21_cat_of_0d_tensors_is_a_clear_error():
    with pytest.raises(ValueError, match="zero-dimensional tensor.*position 0"):
        lamina.cat([lamina.tensor(1.0), lamina.tensor(2.0)])


def test_f21_sum_of_0d_tensor_over_dim_0():
    torch = requires_torch()
    for d in (0, -1):
        assert lamina.tensor(3.0).sum(d).item() == torch.tensor(3.0).sum(d).item() == 3.0
    with pytest.raises(IndexError, match="out of range"):
        lamina.tensor(3.0).sum(1)
