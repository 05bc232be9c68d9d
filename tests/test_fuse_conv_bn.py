"""Conv/linear + batch-norm fusion for inference (issue 14): lamina.nn.utils.fuse_conv_bn_eval /
fuse_conv_bn_weights (and the linear pair) against PyTorch's torch.nn.utils.fusion on random
layers and statistics, against the unfused eval pair, PyTorch's requires_grad rules, and errors."""
import numpy as np
import pytest

import lamina
from lamina import nn
from lamina.nn.utils import fusion

from conftest import requires_torch

# fused vs torch's fused module and vs the unfused eval pair
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def _randomize(lconv, lbn, tconv, tbn, rng):
    """Random conv weights, affine parameters and running statistics (nonzero mean, var != 1),
    copied into both frameworks, so every term of the fold is exercised."""
    torch = requires_torch()
    lconv.weight.data[...] = rng.standard_normal(lconv.weight.shape)
    if lconv.bias is not None:
        lconv.bias.data[...] = rng.standard_normal(lconv.bias.shape)
    c = lbn.num_features
    lbn.running_mean.data[...] = rng.standard_normal(c)
    lbn.running_var.data[...] = rng.uniform(0.2, 3.0, c)
    if lbn.weight is not None:
        lbn.weight.data[...] = rng.uniform(0.5, 2.0, c)
        lbn.bias.data[...] = rng.standard_normal(c)
    with torch.no_grad():
        tconv.weight.copy_(torch.from_numpy(lconv.weight.detach().numpy().copy()))
        if lconv.bias is not None:
            tconv.bias.copy_(torch.from_numpy(lconv.bias.detach().numpy().copy()))
        tbn.running_mean.copy_(torch.from_numpy(lbn.running_mean.detach().numpy().copy()))
        tbn.running_var.copy_(torch.from_numpy(lbn.running_var.detach().numpy().copy()))
        if lbn.weight is not None:
            tbn.weight.copy_(torch.from_numpy(lbn.weight.detach().numpy().copy()))
            tbn.bias.copy_(torch.from_numpy(lbn.bias.detach().numpy().copy()))


def _pair(kind, dtype, bias, affine, groups=1, eps=1e-5):
    torch = requires_torch()
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    cin, cout = 4, 6
    if kind == "conv2d":
        lconv = nn.Conv2d(cin, cout, 3, padding=1, stride=(1, 2), groups=groups, bias=bias, dtype=dtype)
        tconv = torch.nn.Conv2d(cin, cout, 3, padding=1, stride=(1, 2), groups=groups, bias=bias, dtype=tdt)
        lbn, tbn = nn.BatchNorm2d(cout, eps=eps, affine=affine, dtype=dtype), \
            torch.nn.BatchNorm2d(cout, eps=eps, affine=affine, dtype=tdt)
        shape = (3, cin, 7, 9)
    else:
        lconv = nn.Conv1d(cin, cout, 3, padding=2, dilation=2, groups=groups, bias=bias, dtype=dtype)
        tconv = torch.nn.Conv1d(cin, cout, 3, padding=2, dilation=2, groups=groups, bias=bias, dtype=tdt)
        lbn, tbn = nn.BatchNorm1d(cout, eps=eps, affine=affine, dtype=dtype), \
            torch.nn.BatchNorm1d(cout, eps=eps, affine=affine, dtype=tdt)
        shape = (3, cin, 11)
    _randomize(lconv, lbn, tconv, tbn, np.random.default_rng(5))
    for m in (lconv, lbn, tconv, tbn):
        m.eval()
    return lconv, lbn, tconv, tbn, shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["conv2d", "conv1d"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_fuse_conv_bn_eval_matches_torch_and_unfused(dtype, kind, bias, affine):
    torch = requires_torch()
    lconv, lbn, tconv, tbn, shape = _pair(kind, dtype, bias, affine, groups=2 if bias else 1)
    fused = lamina.nn.utils.fuse_conv_bn_eval(lconv, lbn)
    tfused = torch.nn.utils.fusion.fuse_conv_bn_eval(tconv, tbn)
    assert type(fused) is type(lconv) and fused is not lconv
    assert fused.bias is not None
    assert fused.weight.dtype == dtype and fused.bias.dtype == dtype
    np.testing.assert_allclose(fused.weight.data, tfused.weight.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(fused.bias.data, tfused.bias.detach().numpy(), **TOL[dtype])
    # PyTorch's requires_grad rule: the weight keeps the conv's; a bias made from nothing does not.
    assert fused.weight.requires_grad == tfused.weight.requires_grad is True
    assert fused.bias.requires_grad == tfused.bias.requires_grad == bias

    x = np.random.default_rng(11).standard_normal(shape).astype(dtype)
    y = fused(lamina.tensor(x)).data
    with torch.no_grad():
        ty = tfused(torch.from_numpy(x)).numpy()
    unfused = lbn(lconv(lamina.tensor(x))).data
    np.testing.assert_allclose(y, ty, **TOL[dtype], err_msg="fused vs torch's fused")
    np.testing.assert_allclose(y, unfused, **TOL[dtype], err_msg="fused vs unfused eval")
    # The fold is not an identity: batch norm with these statistics changes the output.
    assert np.abs(unfused - lconv(lamina.tensor(x)).data).max() > 0.1


def test_fuse_leaves_the_originals_alone():
    lconv, lbn, _, _, shape = _pair("conv2d", np.float32, False, True)
    w = lconv.weight.detach().numpy().copy()
    fused = lamina.nn.utils.fuse_conv_bn_eval(lconv, lbn)
    assert lconv.bias is None and fused.bias is not None
    np.testing.assert_array_equal(lconv.weight.data, w)
    assert not np.shares_memory(fused.weight.detach().numpy(), lconv.weight.detach().numpy())
    # the copy keeps the conv's hyper-parameters
    assert (fused.stride, fused.padding, fused.groups) == (lconv.stride, lconv.padding, lconv.groups)
    assert "bias" in dict(fused.named_parameters()) and "bias" in fused.state_dict()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose", [False, True])
def test_fuse_conv_bn_weights_matches_torch(dtype, transpose):
    torch = requires_torch()
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 3, 2, 2)).astype(dtype)
    c = w.shape[1] if transpose else w.shape[0]
    b, rm = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rv = rng.uniform(0.1, 2.0, c).astype(dtype)
    bw, bb = rng.uniform(0.5, 2, c).astype(dtype), rng.standard_normal(c).astype(dtype)
    lw = nn.Parameter(w)
    got_w, got_b = lamina.nn.utils.fuse_conv_bn_weights(lw, lamina.tensor(b), lamina.tensor(rm), lamina.tensor(rv),
                                                        1e-3, lamina.tensor(bw), lamina.tensor(bb), transpose)
    t = [torch.from_numpy(a) for a in (w, b, rm, rv, bw, bb)]
    want_w, want_b = torch.nn.utils.fusion.fuse_conv_bn_weights(t[0], t[1], t[2], t[3], 1e-3, t[4], t[5],
                                                                transpose)
    assert isinstance(got_w, nn.Parameter) and isinstance(got_b, nn.Parameter)
    np.testing.assert_allclose(got_w.data, want_w.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(got_b.data, want_b.detach().numpy(), **TOL[dtype])
    assert got_w.requires_grad and not got_b.requires_grad      # as torch: from each source's flag


@pytest.mark.parametrize("bias", [True, False])
def test_fuse_linear_bn_eval_matches_torch(bias):
    torch = requires_torch()
    rng = np.random.default_rng(9)
    lin, bn = nn.Linear(5, 4, bias=bias), nn.BatchNorm1d(4)
    tlin, tbn = torch.nn.Linear(5, 4, bias=bias), torch.nn.BatchNorm1d(4)
    lin.weight.data[...] = rng.standard_normal((4, 5))
    if bias:
        lin.bias.data[...] = rng.standard_normal(4)
    bn.running_mean.data[...] = rng.standard_normal(4)
    bn.running_var.data[...] = rng.uniform(0.2, 2, 4)
    bn.weight.data[...] = rng.uniform(0.5, 2, 4)
    bn.bias.data[...] = rng.standard_normal(4)
    with torch.no_grad():
        tlin.weight.copy_(torch.from_numpy(lin.weight.detach().numpy().copy()))
        if bias:
            tlin.bias.copy_(torch.from_numpy(lin.bias.detach().numpy().copy()))
        for name in ("running_mean", "running_var", "weight", "bias"):
            getattr(tbn, name).copy_(torch.from_numpy(getattr(bn, name).detach().numpy().copy()))
    for m in (lin, bn, tlin, tbn):
        m.eval()
    fused, tfused = lamina.nn.utils.fuse_linear_bn_eval(lin, bn), torch.nn.utils.fusion.fuse_linear_bn_eval(tlin, tbn)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    with torch.no_grad():
        want = tfused(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(fused(lamina.tensor(x)).data, want, **TOL[np.float32])
    np.testing.assert_allclose(fused(lamina.tensor(x)).data, bn(lin(lamina.tensor(x))).data, **TOL[np.float32])


@pytest.mark.parametrize("which", ["conv", "bn", "both"])
def test_training_mode_raises(which):
    lconv, lbn, _, _, _ = _pair("conv2d", np.float32, True, True)
    if which in ("conv", "both"):
        lconv.train()
    if which in ("bn", "both"):
        lbn.train()
    # an AssertionError as PyTorch raises, and a ValueError as lamina does for bad arguments
    with pytest.raises(AssertionError, match="eval mode"):
        lamina.nn.utils.fuse_conv_bn_eval(lconv, lbn)
    with pytest.raises(ValueError, match="training=True"):
        lamina.nn.utils.fuse_conv_bn_eval(lconv, lbn)


def test_bad_arguments():
    conv = nn.Conv2d(2, 3, 1).eval()
    bn = nn.BatchNorm2d(3, track_running_stats=False).eval()
    with pytest.raises(fusion.FusionError, match="running"):
        lamina.nn.utils.fuse_conv_bn_eval(conv, bn)
    rm, rv = lamina.zeros(4), lamina.ones(4)
    with pytest.raises(ValueError, match=r"bn_rm: expected shape \(3,\)"):
        lamina.nn.utils.fuse_conv_bn_weights(conv.weight, conv.bias, rm, rv, 1e-5, None, None)
    with pytest.raises(ValueError, match="conv_w"):
        lamina.nn.utils.fuse_conv_bn_weights(lamina.ones(3), None, rm, rv, 1e-5, None, None)
    with pytest.raises(TypeError, match="bn_rv"):
        lamina.nn.utils.fuse_conv_bn_weights(conv.weight, None, lamina.zeros(3),
                                             np.ones(3, np.int64), 1e-5, None, None)
    lin, bn4 = nn.Linear(2, 3).eval(), nn.BatchNorm1d(4).eval()
    with pytest.raises(AssertionError, match="num_features"):
        lamina.nn.utils.fuse_linear_bn_eval(lin, bn4)


def test_fusion_module_importable_like_torch():
    import lamina.nn.utils.fusion as f
    for name in ("fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"):
        assert getattr(f, name) is getattr(lamina.nn.utils, name)
