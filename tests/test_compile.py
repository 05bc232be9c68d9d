"""lamina.graph: compiled training steps against the eager step, the passes, the executors."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import _C, nn
from lamina.graph import CaptureError, check_plan, compile

TOL = {np.float64: 1e-10, np.float32: 1e-5}


def _pair(make_model, dtype, make_opt):
    lamina.manual_seed(0)
    m1 = make_model().to(dtype)
    lamina.manual_seed(0)
    m2 = make_model().to(dtype)
    return m1, make_opt(m1.parameters()), m2, make_opt(m2.parameters())


def _eager_step(model, opt, x, y, loss_fn=F.cross_entropy):
    opt.zero_grad()
    loss = loss_fn(model(lamina.from_numpy(x)), lamina.from_numpy(y))
    loss.backward()
    opt.step()
    return loss.item()


def _max_rel_err(m1, m2):
    return max(float(np.abs(a.data - b.data).max() / max(np.abs(a.data).max(), 1e-30))
               for a, b in zip(m1.parameters(), m2.parameters()))


def _compare(make_model, dtype, make_opt, steps=10, batch=8, executor="native", shape=(1, 28, 28),
             classes=10, loss_fn=F.cross_entropy, lr_change=None):
    m1, o1, m2, o2 = _pair(make_model, dtype, make_opt)
    step = compile(m2, loss_fn, o2, executor=executor)
    rng = np.random.default_rng(1)
    for i in range(steps):
        if lr_change is not None and i == lr_change:
            for o in (o1, o2):
                for g in o.param_groups:
                    g["lr"] = g["lr"] * 0.1
        x = rng.standard_normal((batch,) + shape).astype(dtype)
        y = rng.integers(0, classes, batch)
        l1 = _eager_step(m1, o1, x, y, loss_fn)
        l2 = step(x, y)
        assert isinstance(l2, float)
        assert abs(l1 - l2) <= TOL[dtype] * max(1.0, abs(l1)), (i, l1, l2)
    err = _max_rel_err(m1, m2)
    assert err <= TOL[dtype], err
    assert step.traces == 1
    return step


SGD = lambda ps: lamina.optim.SGD(ps, lr=0.05, momentum=0.9)            # noqa: E731
ADAM = lambda ps: lamina.optim.Adam(ps, lr=1e-3)                        # noqa: E731
ADAMW = lambda ps: lamina.optim.AdamW(ps, lr=1e-3, weight_decay=0.1)    # noqa: E731


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make_opt", [SGD, ADAM, ADAMW], ids=["sgd", "adam", "adamw"])
@pytest.mark.parametrize("executor", ["native", "python"])
def test_mlp_matches_eager(dtype, make_opt, executor):
    step = _compare(lamina.models.mlp, dtype, make_opt, executor=executor)
    # Every MLP node runs in C++: no Python callback in the schedule.
    assert all(n.op != "pycall" for n in step.graph.nodes)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("executor", ["native", "python"])
def test_batch_one_linear_runs_as_w_times_x(dtype, executor):
    step = _compare(lamina.models.mlp, dtype, ADAM, batch=1, executor=executor)
    fwd = [n for n in step.graph.nodes if n.op == "gemm" and n.src == "Linear" and n.attrs.beta == 0.0
           and n.attrs.bias_axis == "row"]
    assert len(fwd) == 3 and all(n.attrs.N == 1 for n in fwd)      # y^T = W x^T, per-row bias


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make_opt", [SGD, ADAM], ids=["sgd", "adam"])
@pytest.mark.parametrize("executor", ["native", "python"])
def test_lenet5_matches_eager(dtype, make_opt, executor):
    step = _compare(lamina.models.lenet5, dtype, make_opt, batch=4, executor=executor)
    g = step.graph
    # Conv, ReLU, max-pool forward and backward are all C++ instructions: no callback left.
    assert g.callbacks == [] and "0 Python callback(s)" in str(g)
    ops = [n.op for n in g.nodes]
    # Both conv ReLUs go into the conv instruction, and each conv + relu + 2x2 max pool then
    # becomes one fused conv block, forward and backward (only the GEMMs' relu' remain).
    assert ops.count("conv_block_fwd") == 2 and ops.count("conv_block_bwd") == 2 and ops.count("conv2d_bwd") == 2
    assert "max_pool_fwd" not in ops and "max_pool_bwd" not in ops and ops.count("act_bwd") == 2
    assert "act_fwd" not in ops and str(g).count("into the conv instruction (in place)") == 2
    assert str(g).count("fused conv + relu + 2x2 max pool") == 2
    check_plan(g)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_resnet_matches_eager(dtype):
    step = _compare(lamina.models.resnet_mnist, dtype, SGD, batch=2)
    # The residual Add's gradient reaches both branches; one of them reuses dy without a copy.
    assert sum(n.op == "accumulate" for n in step.graph.nodes) >= 2
    # conv, skip add, global average pool and batch norm are all native (no callback); BN + ReLU
    # is one batch_norm_forward with the fused ReLU, its backward one instruction masking by y.
    assert step.graph.callbacks == []
    bn = [n for n in step.graph.nodes if n.op == "bn_fwd"]
    assert bn and any(n.attrs.relu for n in bn) and any(n.op == "bn_bwd" for n in step.graph.nodes)
    check_plan(step.graph)


class _ConvZoo(nn.Module):
    """Every lowered conv/pool variant: conv1d + tanh (fused), avg_pool1d, strided/dilated/grouped
    conv2d + sigmoid (fused), ceil-mode avg pool without padded cells, divisor override, a
    max-pool with padding and dilation, adaptive pool to 2x3, and one conv weight used twice."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2)
        self.shared = nn.Conv2d(6, 6, 1)
        self.fc = nn.Linear(6 * 2 * 3 + 4 * 4, 5)

    def forward(self, x):                        # x (N, 3, 8) reshaped from (N, 24)
        n = x.shape[0]
        h1 = F.avg_pool1d(F.tanh(self.c1(x.reshape(n, 3, 8))), 2)            # (N, 4, 4)
        img = h1.reshape(n, 4, 4, 1) * h1.reshape(n, 4, 1, 4)                 # (N, 4, 4, 4)
        h = F.sigmoid(self.c2(img))                                           # (N, 6, 3, 3)
        h = self.shared(self.shared(h))                                       # shared weight
        h = F.avg_pool2d(h, 2, stride=1, padding=1, ceil_mode=True, count_include_pad=False)
        h = F.max_pool2d(h, 2, stride=1, padding=1, dilation=2) + F.avg_pool2d(h, 1, divisor_override=2)
        h = F.adaptive_avg_pool2d(h, (2, 3))
        return self.fc(lamina.cat([h.reshape(n, -1), h1.reshape(n, -1)], 1))


@pytest.mark.parametrize("executor", ["native", "python"])
def test_conv_pool_variants_match_eager(executor):
    step = _compare(_ConvZoo, np.float64, ADAM, shape=(24,), classes=5, executor=executor)
    g = step.graph
    ops = [n.op for n in g.nodes]
    for op in ("conv2d_fwd", "conv2d_bwd", "avg_pool_fwd", "avg_pool_bwd", "max_pool_fwd", "max_pool_bwd",
               "adaptive_avg_pool_fwd", "adaptive_avg_pool_bwd"):
        assert op in ops, op
    acts = sorted(n.attrs.act for n in g.nodes if n.op == "conv2d_fwd")
    assert acts == ["identity", "identity", "sigmoid", "tanh"]
    check_plan(g)


class _Broadcasts(nn.Module):
    """Bias-like broadcasting: (C, 1, 1) on a conv map, (F,) and (1, F) on rows, Python scalars
    on both sides of -, and a per-feature scale; one parameter read twice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, bias=False)
        self.cbias = nn.Parameter(lamina.randn(3, 1, 1))
        self.fc = nn.Linear(3 * 4 * 4, 5)
        self.scale = nn.Parameter(lamina.randn(5))
        self.shift = nn.Parameter(lamina.randn(1, 5))

    def forward(self, x):
        h = F.relu(self.conv(x) + self.cbias)                       # (N, 3, 4, 4) + (3, 1, 1)
        h = self.fc(h.reshape(h.shape[0], -1))
        h = (h * self.scale - self.shift) * 0.5                     # (N, 5) with (5,), (1, 5), ()
        return (1.0 - h) + h * self.scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("executor", ["native", "python"])
def test_broadcasting_elementwise_is_native(dtype, executor):
    step = _compare(_Broadcasts, dtype, ADAM, shape=(1, 6, 6), classes=5, executor=executor)
    g = step.graph
    assert g.callbacks == []
    # x + s (cbias), x - s (shift), s - x (1.0 - h), x * s (scale, 0.5)
    assert {n.attrs.kind for n in g.nodes if n.op == "broadcast"} == {"add", "sub", "rsub", "mul"}
    assert sum(n.op == "reduce_broadcast" for n in g.nodes) >= 4      # cbias, scale (x2), shift


def test_broadcast_split():
    from lamina.ops.arith import bcast_split as _bcast_split
    assert _bcast_split((8, 3, 4, 4), (3, 1, 1)) == (8, 3, 16)
    assert _bcast_split((8, 5), (5,)) == (8, 5, 1)
    assert _bcast_split((8, 5), (1, 5)) == (8, 5, 1)
    assert _bcast_split((8, 5), (8, 1)) == (1, 8, 5)
    assert _bcast_split((8, 5), ()) == (40, 1, 1)
    assert _bcast_split((2, 3, 4), (2, 1, 4)) is None              # two separate blocks
    assert _bcast_split((2, 3), (3, 3)) is None


def test_max_pool_with_indices_stays_a_marked_callback():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.fc = nn.Linear(2 * 3 * 3, 4)

        def forward(self, x):
            y, _idx = F.max_pool2d(self.conv(x), 2, return_indices=True)    # indices go to Python
            return self.fc(y.reshape(y.shape[0], -1))
    step = _compare(Net, np.float64, SGD, shape=(1, 6, 6), classes=4)
    assert step.graph.callbacks == ["MaxPool2dFn", "MaxPool2dFn.backward"]
    text = str(step.graph)
    assert "2 Python callback(s): MaxPool2dFn, MaxPool2dFn.backward" in text
    assert text.count("[callback]") == 2


def test_learning_rate_change_is_seen():
    _compare(lamina.models.mlp, np.float64, SGD, lr_change=4)


def test_run_contract_returns_loss_and_logits():
    lamina.manual_seed(0)
    m = lamina.models.mlp((6, 5, 3)).to(np.float64)
    step = compile(m, F.cross_entropy, lamina.optim.SGD(m.parameters(), lr=0.1))
    x = np.random.default_rng(0).standard_normal((4, 6))
    y = np.array([0, 1, 2, 0])
    step(x, y)
    with lamina.no_grad():   # the forward that run() is about to do, on the current weights
        ref = m(lamina.from_numpy(x))
        ref_loss = float(F.cross_entropy(ref, lamina.from_numpy(y)).item())
    loss, logits = step.run(x, y)
    # run() returns the loss and logits of the forward before its own update, as eager would.
    assert logits.shape == (4, 3)
    np.testing.assert_allclose(logits.numpy(), ref.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-12)
    with lamina.no_grad():   # and the weights did move
        assert not np.allclose(m(lamina.from_numpy(x)).numpy(), ref.numpy())
    # p.grad is the live gradient buffer the compiled backward writes in place.
    g = m[1].weight.grad.numpy().copy()
    step(x, y)
    assert not np.array_equal(g, m[1].weight.grad.numpy())


def test_fallback_ops_run_as_callbacks():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 4)

        def forward(self, x):
            h = self.fc(x)
            return h ** 3 - h.clamp(-0.5, 0.5)     # Pow, Clamp: no C++ node -> Python callbacks
    step = _compare(Net, np.float64, SGD, shape=(5,), classes=4)
    assert set(step.graph.callbacks) == {"Pow", "Clamp", "Pow.backward", "Clamp.backward"}


class _Unary(nn.Module):
    """Neg, Exp, Log, Sin, Cos, Abs, Div (same shape, and by a Python scalar): all native."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 4)
        self.fc2 = nn.Linear(5, 4)

    def forward(self, x):
        h, k = self.fc(x), self.fc2(x)
        a = (0.5 * h).exp() - h.sin() + (-k).cos()
        b = (h.abs() + 1.0).log() / 3.0
        return a / (k * k + 1.0) + b


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("executor", ["native", "python"])
def test_exact_unary_and_div_are_native(dtype, executor):
    step = _compare(_Unary, dtype, ADAM, shape=(5,), classes=4, executor=executor)
    g = step.graph
    # exp/log/sin/cos run NumPy's kernels as callbacks (what eager runs, so bit for bit)
    assert sorted(g.callbacks) == sorted(["Exp", "Sin", "Cos", "Log", "Exp.backward", "Sin.backward",
                                          "Cos.backward", "Log.backward"])
    kinds = {n.attrs.kind for n in g.nodes if n.op == "unary"}
    assert kinds == {"neg", "abs", "sign"}     # sign: Abs' backward
    assert any(n.op == "div" for n in g.nodes) and any(n.op == "broadcast" and n.attrs.kind == "div"
                                                       for n in g.nodes)


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("executor", ["native", "python"])
def test_mse_and_bce_losses_are_native(loss, dtype, executor):
    loss_fn = {"mse": F.mse_loss, "bce": F.binary_cross_entropy_with_logits}[loss]
    make = lambda: lamina.models.mlp((6, 5, 3), activation="tanh")      # noqa: E731
    m1, o1, m2, o2 = _pair(make, dtype, ADAM)
    step = compile(m2, loss_fn, o2, executor=executor)
    rng = np.random.default_rng(3)
    for i in range(10):
        x = rng.standard_normal((4, 6)).astype(dtype)
        y = (rng.random((4, 3)) > 0.5).astype(dtype) if loss == "bce" else rng.standard_normal((4, 3)).astype(dtype)
        l1, l2 = _eager_step(m1, o1, x, y, loss_fn), step(x, y)
        assert abs(l1 - l2) <= TOL[dtype] * max(1.0, abs(l1)), (i, l1, l2)
    assert _max_rel_err(m1, m2) <= TOL[dtype]
    assert step.graph.callbacks == [] and any(n.op == "loss_bwd" for n in step.graph.nodes)


def test_mse_gradient_reaches_a_learned_target():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.target = nn.Linear(4, 3)

        def forward(self, x):
            return F.mse_loss(self.fc(x), self.target(x))   # both sides need a gradient
    m1, o1, m2, o2 = _pair(Net, np.float64, SGD)
    ident = lambda out, y: out                               # noqa: E731
    step = compile(m2, ident, o2)
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = rng.standard_normal((5, 4))
        assert abs(_eager_step(m1, o1, x, np.zeros(5), ident) - step(x, np.zeros(5))) < 1e-12
    assert _max_rel_err(m1, m2) < 1e-10 and step.graph.callbacks == []


def test_division_by_a_parameter_scalar_keeps_the_eager_rule():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 4)
            self.t = nn.Parameter(lamina.tensor(2.0))

        def forward(self, x):
            return self.fc(x) / self.t               # s wants a gradient: Div runs eagerly
    step = _compare(Net, np.float64, SGD, shape=(5,), classes=4)
    assert step.graph.callbacks == ["Div", "Div.backward"]


# ---------------------------------------------------------------- passes
class _Unfused(nn.Module):
    """Linear then relu as separate calls (eager runs two kernels)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        h = F.relu(F.linear(x, self.fc1.weight, self.fc1.bias))
        _unused = F.tanh(h) * 3.0         # a dead branch: nothing reads it
        return self.fc2(h)


def test_fusion_and_dead_node_removal():
    step = _compare(_Unfused, np.float64, SGD, shape=(6,), classes=3)
    g = step.graph
    text = str(g)
    assert "fused relu into the GEMM epilogue" in text
    assert any(n.op == "gemm" and n.attrs.act == "relu" for n in g.nodes)
    assert not any(n.op == "act_fwd" for n in g.nodes)        # tanh was dead, relu fused
    assert "dead-node removal" in text
    assert "softmax+cross-entropy: one fused kernel already" in text


def test_memory_plan_reuses_buffers():
    lamina.manual_seed(0)
    m = lamina.models.lenet5()
    step = compile(m, F.cross_entropy, lamina.optim.SGD(m.parameters(), lr=0.01))
    x = np.random.default_rng(0).standard_normal((16, 1, 28, 28)).astype(np.float32)
    step(x, np.arange(16) % 10)
    g = step.graph
    check_plan(g)
    temps = [v for v in g.values if v.home == "temp" and v.base is None and v.offset is not None]
    assert g.arena_bytes < sum(v.nbytes for v in temps)       # some buffer was reused
    offsets = [v.offset for v in temps]
    assert len(set(offsets)) < len(offsets)
    assert all(o % 64 == 0 for o in offsets)
    # Greedy-by-size placement leaves almost no holes: within 2% of the bytes live at the peak.
    from lamina.graph.passes import live_bytes_peak
    assert live_bytes_peak(g) <= g.arena_bytes <= 1.02 * live_bytes_peak(g)


def test_conv_activation_fusion_only_when_safe():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 2, 3)
            self.c2 = nn.Conv2d(2, 2, 3)
            self.fc = nn.Linear(2 * 2 * 2, 3)

        def forward(self, x):
            h = self.c1(x)
            h = F.relu(h) + h                  # the conv output has a second reader: not fused
            h = F.leaky_relu(self.c2(h))       # leaky_relu' reads the input: not fused
            return self.fc(h.reshape(h.shape[0], -1))
    step = _compare(Net, np.float64, SGD, shape=(1, 6, 6), classes=3)
    g = step.graph
    assert [n.attrs.act for n in g.nodes if n.op == "conv2d_fwd"] == ["identity", "identity"]
    assert sorted(n.attrs.kind for n in g.nodes if n.op == "act_fwd") == ["leaky_relu", "relu"]
    assert "into the conv instruction" not in str(g) and g.callbacks == []


def test_relu_backward_masks_dy_in_place():
    lamina.manual_seed(0)
    m = lamina.models.lenet5().to(np.float64)
    step = compile(m, F.cross_entropy, lamina.optim.SGD(m.parameters(), lr=0.01))
    step(np.zeros((3, 1, 28, 28)), np.arange(3))
    g = step.graph
    bwd = [n for n in g.nodes if n.op == "act_bwd"]
    assert len(bwd) == 2                       # the 2 Linear ReLUs (the conv ReLUs' are in the conv blocks)
    # dy dies at relu': the output is written over it (the same arena bytes).
    assert all(n.outputs[0].root() is n.inputs[1].root() for n in bwd)
    assert "in place: 2 elementwise node(s)" in str(g)
    check_plan(g)


def test_check_plan_detects_overlap():
    lamina.manual_seed(0)
    m = lamina.models.mlp((6, 5, 3))
    step = compile(m, F.cross_entropy, lamina.optim.SGD(m.parameters(), lr=0.1))
    step(np.ones((2, 6), np.float32), np.array([0, 1]))
    g = step.graph
    temps = [v for v in g.values if v.home == "temp" and v.base is None and v.offset is not None]
    for v in temps:
        v.offset = 0
    with pytest.raises(AssertionError, match="arena overlap"):
        check_plan(g)


# ---------------------------------------------------------------- printing, retrace, errors
def test_graph_print_and_dot():
    lamina.manual_seed(0)
    m = lamina.models.mlp((6, 5, 3))
    step = compile(m, F.cross_entropy, lamina.optim.SGD(m.parameters(), lr=0.1))
    with pytest.raises(RuntimeError, match="call the compiled function once"):
        step.graph
    step(np.ones((2, 6), np.float32), np.array([0, 1]))
    text = str(step.graph)
    lines = [ln for ln in text.splitlines() if ln.strip()[:1].isdigit()]
    assert len(lines) == len(step.graph.nodes)
    assert "gemm(" in text and "float32[2x5] @" in text and "ce_fwd(" in text and "sgd(" in text
    dot = step.graph.to_dot()
    assert dot.startswith("digraph lamina {") and dot.rstrip().endswith("}")
    assert dot.count("shape=box") == len(step.graph.nodes)


def test_retrace_on_new_shape_and_dtype():
    lamina.manual_seed(0)
    m1, o1, m2, o2 = _pair(lambda: lamina.models.mlp((6, 5, 3)), np.float64, SGD)
    step = compile(m2, F.cross_entropy, o2)
    rng = np.random.default_rng(0)
    for batch in (4, 4, 7, 4, 7, 1):
        x = rng.standard_normal((batch, 6))
        y = rng.integers(0, 3, batch)
        assert abs(_eager_step(m1, o1, x, y) - step(x, y)) < 1e-12
    assert step.traces == 3                      # batches 4, 7, 1: one trace each, then cached
    assert _max_rel_err(m1, m2) < 1e-10


def test_retrace_when_parameters_are_replaced():
    lamina.manual_seed(0)
    m = lamina.models.mlp((6, 5, 3))
    opt = lamina.optim.SGD(m.parameters(), lr=0.1)
    step = compile(m, F.cross_entropy, opt)
    x, y = np.ones((2, 6), np.float32), np.array([0, 1])
    step(x, y)
    step(x, y)
    m.to(np.float64)                             # new arrays: the old plan's pointers are stale
    step(x.astype(np.float64), y)
    assert step.traces == 2


def test_capture_error_names_the_op():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            h = self.fc(x)
            if h.sum() > 0:                      # Python control flow on a traced value
                h = h * 2.0
            return h

    m = DataDependent()
    step = compile(m, F.cross_entropy, lamina.optim.SGD(m.parameters(), lr=0.1))
    with pytest.raises(CaptureError, match=r"__bool__\(\) on greater of the output of Sum \(traced call #1\)"):
        step(np.ones((2, 4), np.float32), np.array([0, 1]))

    class ItemCall(DataDependent):
        def forward(self, x):
            h = self.fc(x)
            return h * float(h.mean().item())

    m = ItemCall()
    step = compile(m, F.cross_entropy, lamina.optim.SGD(m.parameters(), lr=0.1))
    with pytest.raises(CaptureError, match=r"item\(\) on the output of Mean"):
        step(np.ones((2, 4), np.float32), np.array([0, 1]))
    # Tracing restored the hooks: eager code works again.
    assert lamina.tensor([2.0]).item() == 2.0 and bool(lamina.tensor([1.0]))


def test_bad_target_raises_value_error():
    lamina.manual_seed(0)
    m = lamina.models.mlp((6, 5, 3))
    step = compile(m, F.cross_entropy, lamina.optim.SGD(m.parameters(), lr=0.1))
    step(np.ones((2, 6), np.float32), np.array([0, 1]))
    with pytest.raises(ValueError, match="class index 7"):
        step(np.ones((2, 6), np.float32), np.array([0, 7]))


def test_compile_argument_errors():
    m = lamina.models.mlp((6, 5, 3))
    with pytest.raises(ValueError, match="needs both loss_fn and optimizer"):
        compile(m, F.cross_entropy)
    with pytest.raises(ValueError, match="executor"):
        compile(m, executor="jit")


# ---------------------------------------------------------------- inference
@pytest.mark.parametrize("executor", ["native", "python"])
@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_inference_compile(executor):
    lamina.manual_seed(0)
    m = lamina.models.lenet5().to(np.float64)
    f = compile(m, executor=executor)
    rng = np.random.default_rng(0)
    for batch in (3, 3, 5):
        x = rng.standard_normal((batch, 1, 28, 28))
        with lamina.no_grad():
            ref = m(lamina.from_numpy(x)).numpy()
        np.testing.assert_allclose(f(x).numpy(), ref, rtol=1e-12, atol=1e-12)
    assert f.traces == 2
    assert not any(n.op in ("sgd", "act_bwd") for n in f.graph.nodes)


# ---------------------------------------------------------------- the C++ program directly
def _relu_instr(n):
    return _C.GraphInstr(_C.OpCode.ACT_FORWARD, _C.DType.FLOAT32, [0, 1], _C.ActAttrs(n=n, kind=_C.Activation.RELU))


def test_graph_program_validates_and_checks_inputs():
    # y = relu(x) over 4 floats: slot 0 input, slot 1 arena.
    prog = _C.GraphProgram([_relu_instr(4)], 2, 0)
    arena = np.zeros(64, np.uint8)
    prog.set_arena(arena, [1], [0], [16])
    prog.set_inputs([0], ["float32"], [16])
    prog.run([np.array([-1, 2, -3, 4], np.float32)], np.zeros(0), None)
    assert arena[:16].view(np.float32).tolist() == [0, 2, 0, 4]
    with pytest.raises(TypeError, match=r"inputs\[0\]: expected dtype float32, got float64"):
        prog.run([np.zeros(4)], np.zeros(0), None)
    with pytest.raises(ValueError, match="expected 16 bytes"):
        prog.run([np.zeros(5, np.float32)], np.zeros(0), None)
    # A buffer too small for what the op touches is refused before anything runs.
    bad = _C.GraphProgram([_relu_instr(8)], 2, 0)
    bad.set_arena(arena, [1], [0], [16])
    bad.set_inputs([0], ["float32"], [32])
    with pytest.raises(ValueError, match=r"instruction 0 \(act_forward\): slot\[1\]: buffer holds 16 bytes"):
        bad.run([np.zeros(8, np.float32)], np.zeros(0), None)
    with pytest.raises(ValueError, match="outside the arena"):
        prog.set_arena(arena, [1], [60], [16])


_CONV_FIELDS = ("N", "C", "H", "W", "K", "KH", "KW", "stride_h", "stride_w", "pad_h", "pad_w", "dil_h", "dil_w",
                "groups")


def _conv_prog(conv, act=_C.Activation.IDENTITY, x_bytes=None, arena=None):
    N, C, H, W, K, KH, KW = conv[:7]
    attrs = _C.ConvAttrs(params=_C.ConvParams(**dict(zip(_CONV_FIELDS, conv))), act=act, negative_slope=0.0)
    prog = _C.GraphProgram([_C.GraphInstr(_C.OpCode.CONV2D_FORWARD, _C.DType.FLOAT32, [0, 1, -1, 2], attrs)], 3, 0)
    arena = np.zeros(1 << 16, np.uint8) if arena is None else arena
    prog.set_arena(arena, [2], [0], [4096])
    prog.set_slot(1, np.ones((K, C, KH, KW), np.float32))
    nb = N * C * H * W * 4 if x_bytes is None else x_bytes
    prog.set_inputs([0], ["float32"], [nb])
    return prog, np.ones(nb // 4, np.float32)


def test_graph_program_rejects_bad_conv_and_pool_programs():
    good = (2, 1, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1)
    arena = np.zeros(1 << 16, np.uint8)
    prog, x = _conv_prog(good, act=_C.Activation.RELU, arena=arena)
    prog.run([x], np.zeros(0), None)                              # the sane program runs, and right:
    # ones * ones, 3x3, pad 1, through ReLU: each output counts the window's in-bounds cells.
    inside = np.pad(np.ones((5, 5)), 1)
    counts = sum(inside[a:a + 5, b:b + 5] for a in range(3) for b in range(3))
    y = arena[:2 * 3 * 25 * 4].view(np.float32).reshape(2, 3, 5, 5)
    np.testing.assert_array_equal(y, np.broadcast_to(counts, (2, 3, 5, 5)))
    bad = {7: (0, "stride"), 9: (1 << 40, r"pad_h: expected a value in \[0, 2\^31\)"),
           5: (99, "kernel is larger than the padded input"), 13: (2, "divisible by groups")}
    for k, (val, msg) in bad.items():
        conv = list(good)
        conv[k] = val
        prog, x = _conv_prog(conv)
        with pytest.raises(ValueError, match=r"instruction 0 \(conv2d_forward\): .*" + msg):
            prog.run([x], np.zeros(0), None)
    prog, x = _conv_prog(good, x_bytes=4 * 2 * 25 - 4)             # x one element short
    with pytest.raises(ValueError, match=r"slot\[0\]: buffer holds 196 bytes, the op touches 200"):
        prog.run([x], np.zeros(0), None)
    prog, x = _conv_prog(good, act=_C.Activation(12))
    with pytest.raises(ValueError, match="activation kind out of range"):
        prog.run([x], np.zeros(0), None)
    # max-pool indices are int64: a float-sized index buffer is refused before anything runs.
    pool = _C.PoolAttrs(params=_C.PoolParams(N=1, C=1, H=4, W=4, KH=2, KW=2, stride_h=2, stride_w=2))
    p = _C.GraphProgram([_C.GraphInstr(_C.OpCode.MAX_POOL2D_FORWARD, _C.DType.FLOAT32, [0, 1, 2], pool)], 3, 0)
    arena = np.zeros(256, np.uint8)
    p.set_arena(arena, [1, 2], [0, 64], [16, 16])
    p.set_inputs([0], ["float32"], [64])
    with pytest.raises(ValueError, match=r"slot\[2\]: buffer holds 16 bytes, the op touches 32"):
        p.run([np.zeros(16, np.float32)], np.zeros(0), None)


def test_graph_program_callback_errors_propagate():
    prog = _C.GraphProgram([_C.GraphInstr(_C.OpCode.CALLBACK, _C.DType.FLOAT32, [], _C.CallbackAttrs(id=0))], 0, 0)
    prog.set_inputs([], [], [])
    seen = []
    prog.run([], np.zeros(0), seen.append)
    assert seen == [0]

    def boom(i):
        raise KeyError("from the callback")
    with pytest.raises(KeyError, match="from the callback"):
        prog.run([], np.zeros(0), boom)
