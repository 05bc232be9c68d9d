"""Normalization and dropout (issue 14): BatchNorm1d/2d, LayerNorm, GroupNorm, Dropout/Dropout2d
against PyTorch (forward, backward, train and eval, float32 and float64, running statistics
after several steps), float64 gradcheck, determinism, modes, state_dict, the compiled step
against eager, and bad arguments."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import _C, nn
from lamina.autograd import gradcheck

from conftest import requires_torch

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


def _torch():
    return requires_torch()


def _copy_params(lmod, tmod):
    torch = _torch()
    rng = np.random.default_rng(7)
    with torch.no_grad():
        for name, p in lmod.named_parameters():
            # Random affine parameters, so a wrong weight/bias gradient or use shows.
            p.data[...] = rng.uniform(0.5, 1.5, p.shape) if name.endswith("weight") else rng.uniform(-1, 1, p.shape)
            dict(tmod.named_parameters())[name].copy_(torch.from_numpy(p.detach().numpy().copy()))


def _step_both(lmod, tmod, x, v, dtype):
    """Forward + backward of sum(out * v) on both; returns the lamina and torch input grads."""
    torch = _torch()
    lx, tx = lamina.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ly, ty = lmod(lx), tmod(tx)
    np.testing.assert_allclose(ly.data, ty.detach().numpy(), **TOL[dtype], err_msg="forward")
    (ly * lamina.tensor(v)).sum().backward()
    (ty * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(lx.grad.data, tx.grad.numpy(), **TOL[dtype], err_msg="dx")
    for name, p in lmod.named_parameters():
        tp = dict(tmod.named_parameters())[name]
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), **TOL[dtype], err_msg=f"d{name}")
        p.grad = None
        tp.grad = None


BN_CASES = [
    ("BatchNorm1d", (16, 5)),
    ("BatchNorm1d", (6, 4, 9)),
    ("BatchNorm2d", (4, 3, 7, 5)),
    ("BatchNorm2d", (2, 8, 12, 12)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,shape", BN_CASES)
@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_torch_train_then_eval(cls, shape, momentum, affine, dtype):
    torch = _torch()
    lmod = getattr(nn, cls)(shape[1], momentum=momentum, affine=affine).to(dtype)
    tmod = getattr(torch.nn, cls)(shape[1], momentum=momentum, affine=affine).to(
        torch.float64 if dtype == np.float64 else torch.float32)
    if affine:
        _copy_params(lmod, tmod)
    rng = np.random.default_rng(3)
    for _ in range(4):   # running statistics after several steps
        x = (rng.standard_normal(shape) * 2.0 + 0.5).astype(dtype)
        _step_both(lmod, tmod, x, rng.standard_normal(shape).astype(dtype), dtype)
    np.testing.assert_allclose(lmod.running_mean.data, tmod.running_mean.numpy(), **TOL[dtype])
    np.testing.assert_allclose(lmod.running_var.data, tmod.running_var.numpy(), **TOL[dtype])
    assert int(lmod.num_batches_tracked.item()) == int(tmod.num_batches_tracked) == 4
    lmod.eval()
    tmod.eval()
    before = lmod.running_mean.detach().numpy().copy()
    x = (rng.standard_normal(shape) * 2.0 + 0.5).astype(dtype)
    _step_both(lmod, tmod, x, rng.standard_normal(shape).astype(dtype), dtype)
    np.testing.assert_array_equal(lmod.running_mean.data, before)   # eval does not update
    assert int(lmod.num_batches_tracked.item()) == 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_without_running_stats_uses_batch_stats_in_eval(dtype):
    torch = _torch()
    lmod = nn.BatchNorm2d(3, track_running_stats=False).to(dtype).eval()
    tmod = torch.nn.BatchNorm2d(3, track_running_stats=False).to(torch.float64 if dtype == np.float64 else torch.float32).eval()
    _copy_params(lmod, tmod)
    assert lmod.running_mean is None and list(lmod.state_dict()) == ["weight", "bias"]
    rng = np.random.default_rng(0)
    _step_both(lmod, tmod, rng.standard_normal((3, 3, 4, 4)).astype(dtype),
               rng.standard_normal((3, 3, 4, 4)).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_functional_batch_norm_matches_torch(training, dtype):
    torch = _torch()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4, 3)).astype(dtype)
    rm, rv = rng.standard_normal(4).astype(dtype), rng.uniform(0.5, 2, 4).astype(dtype)
    w, b = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    lrm, lrv, trm, trv = lamina.tensor(rm.copy()), lamina.tensor(rv.copy()), torch.tensor(rm.copy()), torch.tensor(rv.copy())
    y = F.batch_norm(lamina.tensor(x), lrm, lrv, lamina.tensor(w), lamina.tensor(b), training, 0.3, 1e-3)
    ty = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, torch.tensor(w), torch.tensor(b), training, 0.3, 1e-3)
    np.testing.assert_allclose(y.data, ty.numpy(), **TOL[dtype])
    np.testing.assert_allclose(lrm.data, trm.numpy(), **TOL[dtype])
    np.testing.assert_allclose(lrv.data, trv.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,normalized,affine", [
    ((4, 10), 10, True), ((3, 5, 6), (5, 6), True), ((2, 3, 17), (17,), False), ((7, 33), [33], True)])
def test_layer_norm_matches_torch(shape, normalized, affine, dtype):
    torch = _torch()
    lmod = nn.LayerNorm(normalized, elementwise_affine=affine).to(dtype)
    tmod = torch.nn.LayerNorm(normalized, elementwise_affine=affine).to(torch.float64 if dtype == np.float64 else torch.float32)
    if affine:
        _copy_params(lmod, tmod)
    rng = np.random.default_rng(2)
    _step_both(lmod, tmod, (rng.standard_normal(shape) * 3 + 1).astype(dtype), rng.standard_normal(shape).astype(dtype),
               dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups,channels,shape", [(2, 4, (3, 4, 5, 5)), (1, 6, (2, 6, 7)), (6, 6, (2, 6, 3, 3)),
                                                   (3, 12, (2, 12))])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(groups, channels, shape, affine, dtype):
    torch = _torch()
    lmod = nn.GroupNorm(groups, channels, affine=affine).to(dtype)
    tmod = torch.nn.GroupNorm(groups, channels, affine=affine).to(torch.float64 if dtype == np.float64 else torch.float32)
    if affine:
        _copy_params(lmod, tmod)
    rng = np.random.default_rng(4)
    _step_both(lmod, tmod, (rng.standard_normal(shape) * 2 - 1).astype(dtype), rng.standard_normal(shape).astype(dtype),
               dtype)


def _f64(rng, shape, requires_grad=True):
    return lamina.tensor(rng.standard_normal(shape), dtype=lamina.float64, requires_grad=requires_grad)


def test_gradcheck_float64():
    rng = np.random.default_rng(5)
    x, w, b = _f64(rng, (4, 3, 2, 3)), _f64(rng, (3,)), _f64(rng, (3,))
    rm, rv = lamina.tensor(rng.standard_normal(3)), lamina.tensor(rng.uniform(0.5, 2, 3))
    # Training: the batch statistics depend on x (running stats are updated by every call; the
    # output does not read them).
    assert gradcheck(lambda a, c, d: F.batch_norm(a, rm, rv, c, d, training=True), [x, w, b])
    assert gradcheck(lambda a, c, d: F.batch_norm(a, rm, rv, c, d, training=False), [x, w, b])
    assert gradcheck(lambda a: lamina.relu(F.batch_norm(a, None, None, training=True)), [_f64(rng, (6, 2))])
    xl, wl, bl = _f64(rng, (3, 2, 5)), _f64(rng, (2, 5)), _f64(rng, (2, 5))
    assert gradcheck(lambda a, c, d: F.layer_norm(a, (2, 5), c, d), [xl, wl, bl])
    xg, wg, bg = _f64(rng, (2, 4, 3)), _f64(rng, (4,)), _f64(rng, (4,))
    assert gradcheck(lambda a, c, d: F.group_norm(a, 2, c, d), [xg, wg, bg])

    def seeded_dropout(a):
        lamina.manual_seed(11)          # the same mask for every evaluation
        return F.dropout2d(F.dropout(a, 0.3), 0.5)
    assert gradcheck(seeded_dropout, [_f64(rng, (3, 4, 2, 2))])


def test_fused_relu_kernel_matches_bn_then_relu_bit_for_bit():
    rng = np.random.default_rng(6)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((4, 3, 5, 5)).astype(dtype)
        w, b = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
        dy = rng.standard_normal(x.shape).astype(dtype)
        outs = []
        for relu in (False, True):
            y, m, s = np.empty_like(x), np.empty(3, dtype), np.empty(3, dtype)
            _C.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5, relu, y, m, s)
            if not relu:
                z = y
                y = np.maximum(0, y)
                g = dy * (z > 0)
            dx, dw, db = np.empty_like(x), np.empty(3, dtype), np.empty(3, dtype)
            _C.batch_norm_backward(x, dy if relu else g, y if relu else None, w, m, s, True, dx, dw, db)
            outs.append((y, dx, dw, db))
        for a, c in zip(*outs):
            np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------------------- dropout
def test_dropout_is_seeded_deterministic_and_scaled():
    x = lamina.ones(4000)
    lamina.manual_seed(3)
    a = F.dropout(x, 0.25).numpy()
    lamina.manual_seed(3)
    b = F.dropout(x, 0.25).numpy()
    np.testing.assert_array_equal(a, b)
    c = F.dropout(x, 0.25).numpy()
    assert not np.array_equal(a, c)                        # the next call draws a new mask
    assert set(np.unique(a).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.03
    assert F.dropout(x, 1.0).numpy().sum() == 0
    assert F.dropout(x, 0.5, training=False) is x
    # Independent of the thread count: the mask is a hash of (key, index), not a stream.
    old = lamina.get_num_threads()
    big = lamina.ones(300000)
    try:
        lamina.set_num_threads(1)
        lamina.manual_seed(9)
        one = F.dropout(big, 0.5).numpy()
        lamina.set_num_threads(2)
        lamina.manual_seed(9)
        two = F.dropout(big, 0.5).numpy()
    finally:
        lamina.set_num_threads(old)
    np.testing.assert_array_equal(one, two)


def test_dropout_gradient_is_the_mask():
    lamina.manual_seed(1)
    x = lamina.randn(50, 20, requires_grad=True)
    y = F.dropout(x, 0.4)
    y.sum().backward()
    expected = np.where(y.data != 0, np.float32(1 / 0.6), 0).astype(np.float32)
    np.testing.assert_array_equal(x.grad.data, expected)
    np.testing.assert_allclose(y.data, x.data * expected, rtol=1e-6)


def test_dropout2d_zeroes_whole_channels():
    lamina.manual_seed(2)
    x = lamina.randn(8, 16, 5, 5) + 10.0
    y = nn.Dropout2d(0.5)(x).numpy()
    per_channel = (y == 0).reshape(8 * 16, 25)
    assert np.all(per_channel.all(1) | (~per_channel).all(1))
    assert 0.3 < per_channel.all(1).mean() < 0.7
    kept = ~per_channel.all(1)
    np.testing.assert_allclose(y.reshape(128, 25)[kept], 2 * x.numpy().reshape(128, 25)[kept], rtol=1e-6)
    y3 = F.dropout2d(lamina.randn(16, 4, 4) + 10.0, 0.5).numpy()   # unbatched (C, H, W)
    z3 = (y3 == 0).reshape(16, 16)
    assert np.all(z3.all(1) | (~z3).all(1))


def test_dropout_modes_and_module():
    m = nn.Sequential(nn.Linear(10, 10), nn.Dropout(0.5))
    x = lamina.randn(4, 10)
    m.eval()
    np.testing.assert_array_equal(m(x).detach().numpy(), m[0](x).detach().numpy())
    m.train()
    assert (m(x).detach().numpy() == 0).any()
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2, inplace=False)"


# ---------------------------------------------------------------------------- modules, state
def test_state_dict_keys_and_load_from_torch():
    torch = _torch()
    lmod, tmod = nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    assert list(lmod.state_dict()) == list(tmod.state_dict()) == \
        ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    tmod(torch.randn(3, 4, 2, 2) * 3 + 1)
    lmod.load_state_dict({k: v.numpy() for k, v in tmod.state_dict().items()})
    np.testing.assert_array_equal(lmod.running_var.data, tmod.running_var.numpy())
    assert int(lmod.num_batches_tracked.item()) == 1
    ln, tln = nn.LayerNorm((3, 2)), torch.nn.LayerNorm((3, 2))
    assert list(ln.state_dict()) == list(tln.state_dict())
    assert [k for k, _ in nn.GroupNorm(2, 4).named_parameters()] == ["weight", "bias"]
    assert repr(nn.BatchNorm2d(8)) == repr(torch.nn.BatchNorm2d(8))
    assert repr(nn.LayerNorm(4)) == repr(torch.nn.LayerNorm(4))
    assert repr(nn.GroupNorm(2, 4)) == repr(torch.nn.GroupNorm(2, 4))
    assert list(nn.BatchNorm2d(3, bias=False).state_dict()) == list(torch.nn.BatchNorm2d(3, bias=False).state_dict())
    bn = nn.BatchNorm1d(3).double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64


def test_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [lamina.randn(10, 2) * (i + 1) for i in range(3)]
    for x in xs:
        bn(x)
    means = np.mean([x.numpy().mean(0) for x in xs], axis=0)
    np.testing.assert_allclose(bn.running_mean.numpy(), means, rtol=1e-5, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="expected 4D input, got 3D"):
        nn.BatchNorm2d(3)(lamina.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="expected 3 channels"):
        nn.BatchNorm1d(3)(lamina.zeros(2, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(lamina.zeros(1, 3))
    with pytest.raises(TypeError, match="weight: expected dtype float32"):
        F.batch_norm(lamina.zeros(2, 3), None, None, lamina.zeros(3, dtype=lamina.float64), training=True)
    with pytest.raises(ValueError, match="running_mean: training=False"):
        F.batch_norm(lamina.zeros(2, 3), None, None)
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm2d(3, momentum=2.0)
    with pytest.raises(ValueError, match="trailing dims"):
        F.layer_norm(lamina.zeros(2, 5), (4,))
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="num_groups"):
        F.group_norm(lamina.zeros(2, 4, 3), 3)
    with pytest.raises(ValueError, match=r"p: dropout probability must be in \[0, 1\], got 1.5"):
        nn.Dropout2d(1.5)
    with pytest.raises(ValueError, match="dropout2d expects"):
        F.dropout2d(lamina.zeros(2, 3), 0.5)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.dropout(lamina.zeros(3, dtype=lamina.int64), 0.5)
    # The kernels check their buffers too: wrong shapes name the argument.
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"save_mean: expected shape \(3,\)"):
        _C.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5, False, np.empty_like(x),
                              np.empty(2, np.float32), np.empty(3, np.float32))
    with pytest.raises(ValueError, match="y: output must not overlap input x"):
        _C.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5, False, x,
                              np.empty(3, np.float32), np.empty(3, np.float32))


def test_train_and_eval_switch_a_model():
    net = lamina.models.lenet5(norm=True)
    x = lamina.randn(8, 1, 28, 28)
    net.train()
    a = net(x).detach().numpy()
    net.eval()
    b = net(x).detach().numpy()
    c = net(x).detach().numpy()
    assert not np.allclose(a, b)          # batch vs running statistics
    np.testing.assert_array_equal(b, c)   # eval is deterministic and does not update state
    assert all(not m.training for m in net.modules())


# ---------------------------------------------------------------------------- compiled == eager
class _NormZoo(nn.Module):
    """Every op of the family in one step: BN2d (+ReLU), Dropout2d, GroupNorm, LayerNorm,
    BN1d and Dropout."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.drop2d = nn.Dropout2d(0.25)
        self.gn = nn.GroupNorm(2, 4)
        self.fc = nn.Linear(4 * 7 * 7, 16)
        self.ln = nn.LayerNorm(16)
        self.bn1 = nn.BatchNorm1d(16, momentum=None)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 4)          # (N, 4, 7, 7)
        h = self.gn(self.drop2d(h)).reshape(x.shape[0], -1)
        h = F.relu(self.bn1(self.ln(self.fc(h))))
        return self.out(self.drop(h))


def _pair_of(make, dtype):
    lamina.manual_seed(0)
    a = make().to(dtype)
    lamina.manual_seed(0)
    b = make().to(dtype)
    return a, b


def _state(m):
    return [v.detach().numpy().copy() for v in m.state_dict().values()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [_NormZoo, lambda: lamina.models.resnet_mnist(width=4)], ids=["zoo", "resnet"])
@pytest.mark.parametrize("executor", ["native", "python"])
def test_compiled_step_equals_eager_bit_for_bit(make, dtype, executor):
    from lamina.graph import check_plan, compile
    eager, comp = _pair_of(make, dtype)
    o1 = lamina.optim.SGD(eager.parameters(), lr=0.05, momentum=0.9)
    o2 = lamina.optim.SGD(comp.parameters(), lr=0.05, momentum=0.9)
    step = compile(comp, F.cross_entropy, o2, executor=executor)
    rng = np.random.default_rng(1)
    for i in range(4):
        x = rng.standard_normal((6, 1, 28, 28)).astype(dtype)
        y = rng.integers(0, 10, 6)
        lamina.manual_seed(100 + i)       # the same dropout keys for both
        o1.zero_grad()
        l1 = F.cross_entropy(eager(lamina.tensor(x)), lamina.tensor(y))
        l1.backward()
        o1.step()
        lamina.manual_seed(100 + i)
        l2 = step(x, y)
        assert float(l1.item()) == l2, (i, float(l1.item()), l2)
    for a, b in zip(_state(eager), _state(comp)):
        np.testing.assert_array_equal(a, b)      # weights and running statistics, bit for bit
    assert step.traces == 1
    check_plan(step.graph)
    # BN+ReLU: the relu after each batch norm runs inside the batch-norm kernel.
    fused = [n for n in step.graph.notes if "into the batch-norm kernel" in n]
    assert len(fused) == (2 if make is _NormZoo else 4), step.graph.notes
    # eval(): the compiled step and forward follow the mode (a new plan), as eager does.
    eager.eval()
    comp.eval()
    x = rng.standard_normal((5, 1, 28, 28)).astype(dtype)
    fwd = compile(comp, executor=executor)
    with lamina.no_grad():   # inference: the planned schedule, not the eager fallback
        np.testing.assert_array_equal(fwd(x).detach().numpy(), eager(lamina.tensor(x)).detach().numpy())   # the trace: eager itself
        # The compiled forward folds each conv+BN at eval (test_compile_fold_bn.py): equal to rounding.
        np.testing.assert_allclose(fwd(x).detach().numpy(), eager(lamina.tensor(x)).detach().numpy(),
                                   **(dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)))
    y = rng.integers(0, 10, 5)
    o1.zero_grad()
    l1 = F.cross_entropy(eager(lamina.tensor(x)), lamina.tensor(y))
    l1.backward()
    o1.step()
    assert step(x, y) == float(l1.item())
    assert step.traces == 2
    comp.train()
    eager.train()
    x = rng.standard_normal((6, 1, 28, 28)).astype(dtype)
    lamina.manual_seed(7)
    o1.zero_grad()
    l1 = F.cross_entropy(eager(lamina.tensor(x)), lamina.tensor(y[:1].repeat(6)))
    l1.backward()
    o1.step()
    lamina.manual_seed(7)
    assert step(x, y[:1].repeat(6)) == float(l1.item())
    assert step.traces == 2                      # the training plan was kept
    for a, b in zip(_state(eager), _state(comp)):
        np.testing.assert_array_equal(a, b)
