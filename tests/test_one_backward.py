"""One backward per op: the compiled backward of Linear, matmul, conv, pooling and the losses IS
their eager backward -- the registry's rule run on a node recorder instead of on the kernels --
so there is no second emitter to drift. tests/test_opinfo.py checks compiled == eager bit for
bit on every op's samples (values and gradients); this file pins the structure and the
accumulation paths (a second contribution to one gradient)."""
import dataclasses
import importlib

import numpy as np
import pytest

import lamina
from lamina import nn
from lamina.graph.lower import RuleKernels
from lamina.ops import registry
from lamina.ops._common import EAGER, EagerKernels

ONE_RULE_OPS = ("matmul", "linear", "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
                "cross_entropy", "mse_loss", "bce_with_logits", "conv2d_relu_max_pool2d", "activation",
                "reshape", "batch_norm", "neg", "exp", "log", "sin", "cos", "abs", "add", "sub", "mul", "div")
FAMILIES = ("lamina.ops.linalg", "lamina.ops.conv", "lamina.ops.pool", "lamina.ops.loss", "lamina.ops.activation",
            "lamina.ops.shape", "lamina.ops.norm", "lamina.ops.arith")


@pytest.mark.parametrize("name", ONE_RULE_OPS)
def test_the_op_has_one_backward_rule_and_no_emitter(name):
    op = registry.get(name)
    assert op.backward is not None
    # the eager Function.backward is the same rule, installed by register()
    assert op.function.backward.rule is op.backward


@pytest.mark.parametrize("module", FAMILIES)
def test_no_backward_emitter_is_left_in_the_family_modules(module):
    mod = importlib.import_module(module)
    assert not [n for n in vars(mod) if n.startswith("_lower_backward")]


def test_register_refuses_a_rule_beside_a_second_backward():
    class Twice(lamina.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, dy):
            return (dy,)

    with pytest.raises(ValueError, match="must not define backward"):
        registry.register("twice_demo", backward=lambda k, s, dy, out: (dy,))(Twice)
    assert "twice_demo" not in {op.name for op in registry.all_ops()}


def test_the_registry_has_no_second_backward_path():
    # a backward emitter beside the rule is gone for good: the record has no field for one
    assert "lower_backward" not in {f.name for f in dataclasses.fields(registry.OpInfo)}
    with pytest.raises(TypeError, match="lower_backward"):
        registry.register("emitter_demo", lower_backward=lambda L, fn, dy: None)(
            type("EmitterDemo", (lamina.autograd.Function,), {}))


def test_every_recorder_kernel_has_an_eager_twin():
    # the rule runs on either object, so they expose the same kernels
    def kernels(cls):
        return {n for n in vars(cls) if not n.startswith("_")}
    assert kernels(RuleKernels) <= kernels(EagerKernels)
    assert isinstance(EAGER, EagerKernels)


def _rule_calls(monkeypatch, name):
    """Wrap op `name`'s rule (for the compiler, which reads it from the registry) and record the
    kernels object each call gets."""
    op = registry.get(name)
    seen, rule = [], op.backward

    def spy(k, s, dy, out):
        seen.append(type(k))
        return rule(k, s, dy, out)
    monkeypatch.setattr(op, "backward", spy)
    return seen


def test_the_compiled_backward_runs_the_rule(monkeypatch):
    calls = {n: _rule_calls(monkeypatch, n) for n in ("linear", "conv2d", "max_pool2d", "cross_entropy")}
    lamina.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(2 * 3 * 3, 4))
    step = lamina.compile(model, lamina.nn.functional.cross_entropy, lamina.optim.SGD(model.parameters(), lr=0.1))
    x = np.random.default_rng(0).standard_normal((5, 1, 6, 6)).astype(np.float32)
    step(x, np.array([0, 1, 2, 3, 0]))
    assert all(c == [RuleKernels] for c in calls.values()), calls
    assert step.graph.callbacks == []


def _eager_and_compiled_grads(make, x, y, loss):
    lamina.manual_seed(0)
    eager = make()
    loss(eager(lamina.tensor(x)), lamina.tensor(y)).backward()
    lamina.manual_seed(0)
    model = make()
    step = lamina.compile(model, loss, lamina.optim.SGD(model.parameters(), lr=0.0))
    step(x, y)
    return [p.grad.numpy() for p in eager.parameters()], [p.grad.numpy() for p in model.parameters()], step.graph


class _SharedLinear(nn.Module):
    """One Linear applied twice: its weight and bias gradients get two contributions each."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        return self.out(self.fc(self.fc(x).relu()))


class _SharedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 2 * 2, 3)

    def forward(self, x):
        h = nn.functional.max_pool2d(self.conv(self.conv(x)), 2)
        return self.fc(h.flatten(1))


def test_a_shared_linear_accumulates_with_gemm_beta_1():
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    want, got, g = _eager_and_compiled_grads(_SharedLinear, x, y, nn.functional.cross_entropy)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)   # summed in another order
    linear_gemms = [n for n in g.nodes if n.op == "gemm" and n.src == "Linear"]
    # the second dW of fc accumulates in the GEMM itself, into the gradient buffer
    assert any(n.attrs.beta == 1.0 and n.inplace and n.outputs[0].home == "grad" for n in linear_gemms)
    assert any(n.op == "accumulate" and n.src == "Linear" for n in g.nodes)      # the bias: sum, then +=


def test_a_shared_conv_overwrites_then_accumulates():
    x = np.random.default_rng(2).standard_normal((2, 2, 4, 4)).astype(np.float32)
    y = np.array([0, 2])
    want, got, g = _eager_and_compiled_grads(_SharedConv, x, y, nn.functional.cross_entropy)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)   # summed in another order
    bwd = [i for i, n in enumerate(g.nodes) if n.op == "conv2d_bwd"]
    assert len(bwd) == 2
    # the later-recorded conv2d_bwd (the first conv call) writes dw and db to temps, then += them
    second = g.nodes[bwd[1]]
    assert second.attrs.has == (False, True, True)
    adds = [n for n in g.nodes[bwd[1] + 1:] if n.op == "accumulate" and n.src == "Conv2dFn"]
    assert {n.outputs[0].home for n in adds} == {"grad"} and len(adds) == 2


def test_unwanted_gradients_are_not_computed():
    # a frozen weight: no dW GEMM; the input x is a step argument: no dX for the first layer
    lamina.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    model[2].weight.requires_grad_(False)
    step = lamina.compile(model, nn.functional.cross_entropy, lamina.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.1))
    step(np.ones((2, 5), np.float32), np.array([0, 1]))
    gemms = [n for n in step.graph.nodes if n.op == "gemm"]
    # 2 forward + (dX of layer 2) + (dW of layer 1): no dW for the frozen weight, no dX for the input
    assert len(gemms) == 4


def test_mse_with_a_target_gradient_is_one_rule_in_both_modes():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(np.linspace(-1, 1, 6).reshape(2, 3))
            self.b = nn.Parameter(np.linspace(1, -2, 6).reshape(2, 3))

        def forward(self, x):
            return nn.functional.mse_loss(self.a, self.b)

    eager = Pair()
    eager(None).backward()
    model = Pair()
    step = lamina.compile(model, lambda out, y: out, lamina.optim.SGD(model.parameters(), lr=0.0))
    step(np.zeros(1), np.zeros(1))
    for p, q in zip(model.parameters(), eager.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    np.testing.assert_array_equal(model.b.grad.numpy(), -model.a.grad.numpy())
    assert step.graph.callbacks == []


@pytest.mark.parametrize("kind", ["relu", "leaky_relu", "softplus", "sigmoid", "tanh"])
def test_an_activation_used_twice_is_one_rule_in_both_modes(monkeypatch, kind):
    calls = _rule_calls(monkeypatch, "activation")

    class Twice(nn.Module):
        # x feeds the activation twice: its gradient is one act_bwd written in place, then a
        # second one into a temp that is accumulated
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(np.linspace(-2, 2, 12).reshape(3, 4) + 0.05)

        def forward(self, x):
            act = lambda t: nn.functional._activation(t, kind, 0.2)   # noqa: E731
            return (act(self.a) * act(self.a * 2.0)).sum() + act(self.a).sum()

    eager = Twice()
    eager(None).backward()
    model = Twice()
    step = lamina.compile(model, lambda out, y: out, lamina.optim.SGD(model.parameters(), lr=0.0))
    step(np.zeros(1), np.zeros(1))
    np.testing.assert_array_equal(model.a.grad.numpy(), eager.a.grad.numpy())
    assert RuleKernels in calls
    bwd = [n for n in step.graph.nodes if n.op == "act_bwd"]
    assert len(bwd) == 3 and all(n.attrs.negative_slope == 0.2 for n in bwd)
    # sigmoid and tanh read their output, the rest their input
    reads_y = kind in ("sigmoid", "tanh")
    fwd_out = {n.outputs[0].id for n in step.graph.nodes if n.op == "act_fwd"}
    assert all((n.inputs[0].id in fwd_out) == reads_y for n in bwd)
    assert any(n.op == "accumulate" and n.src == "Activation" for n in step.graph.nodes)
    assert not [c for c in step.graph.callbacks if c.startswith("Activation")]


def test_a_reshape_gradient_is_a_view_then_a_copy_in_both_modes(monkeypatch):
    calls = _rule_calls(monkeypatch, "reshape")

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(np.linspace(-1, 1, 12).reshape(3, 4))

        def forward(self, x):
            h = self.a * 2.0
            # h gets two gradients through reshape: the first is a view of dy, the second a copy
            # accumulated into it
            return (h.reshape(12) * h.reshape(2, 6).flatten()).sum() + h.reshape(4, 3).sum()

    eager = Twice()
    eager(None).backward()
    model = Twice()
    step = lamina.compile(model, lambda out, y: out, lamina.optim.SGD(model.parameters(), lr=0.0))
    step(np.zeros(1), np.zeros(1))
    np.testing.assert_array_equal(model.a.grad.numpy(), eager.a.grad.numpy())
    assert RuleKernels in calls
    reshape_nodes = [n for n in step.graph.nodes if n.src == "Reshape"]
    assert reshape_nodes and all(n.op in ("copy", "accumulate") for n in reshape_nodes)
    assert not [c for c in step.graph.callbacks if c.startswith("Reshape")]


def test_batch_norm_relu_is_one_rule_in_both_modes(monkeypatch):
    calls = _rule_calls(monkeypatch, "batch_norm")
    make = lambda: nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),  # noqa: E731
                                 nn.Linear(3 * 4 * 4, 4))
    x = np.random.default_rng(3).standard_normal((5, 1, 6, 6)).astype(np.float32)
    want, got, g = _eager_and_compiled_grads(make, x, np.array([0, 1, 2, 3, 0]), nn.functional.cross_entropy)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(b, a)
    assert RuleKernels in calls
    # the relu is fused into the batch-norm kernel: its backward reads y and writes dx, dw, db
    (bwd,) = [n for n in g.nodes if n.op == "bn_bwd"]
    assert bwd.attrs.relu and bwd.inputs[2] is not None and bwd.attrs.has == (True, True, True)
    assert not [n for n in g.nodes if n.op == "act_bwd" and n.src == "Activation"]
    assert g.callbacks == []


def test_a_batch_norm_weight_used_twice_accumulates(monkeypatch):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(4)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(self.bn(self.bn(x) * 2.0))

    x = np.random.default_rng(4).standard_normal((6, 4)).astype(np.float32)
    want, got, g = _eager_and_compiled_grads(Twice, x, np.array([0, 1, 2, 0, 1, 2]), nn.functional.cross_entropy)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)   # summed in another order
    bwd = [i for i, n in enumerate(g.nodes) if n.op == "bn_bwd"]
    assert len(bwd) == 2
    adds = [n for n in g.nodes[bwd[1] + 1:] if n.op == "accumulate" and n.src == "BatchNormFn"]
    assert {n.outputs[0].home for n in adds} == {"grad"} and len(adds) == 2


@pytest.mark.parametrize("x_grad, w_grad", [(False, True), (True, False), (True, True)])
def test_eager_conv_backward_computes_only_the_wanted_gradients(monkeypatch, x_grad, w_grad):
    # A network's input needs no dx: eager must not ask the kernel for it (wasted work, not a
    # wrong value, so only the kernel's arguments can show it).
    from lamina.ops import _common
    seen = []
    real = _common._C.conv2d_backward

    def spy(x, w, dy, dx, dw, db, *conf):
        seen.append((dx is not None, dw is not None, db is not None))
        return real(x, w, dy, dx, dw, db, *conf)

    monkeypatch.setattr(_common._C, "conv2d_backward", spy)
    rng = np.random.default_rng(3)
    x = lamina.tensor(rng.standard_normal((2, 3, 7, 7)).astype(np.float32), requires_grad=x_grad)
    conv = nn.Conv2d(3, 4, 3, bias=False)
    conv.weight.requires_grad_(w_grad)
    conv(x).sum().backward()
    assert seen == [(x_grad, w_grad, False)]
    assert (x.grad is not None) == x_grad and (conv.weight.grad is not None) == w_grad


# ---- add / sub / mul / div: one rule each, equal shapes and the bias-like broadcast
def _params_step(module):
    """(eager gradients, compiled gradients, graph) of `module()(None)`, a scalar."""
    eager = module()
    eager(None).backward()
    model = module()
    step = lamina.compile(model, lambda out, y: out, lamina.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.0))
    step(np.zeros(1), np.zeros(1))
    grads = lambda m: [None if p.grad is None else p.grad.numpy() for p in m.parameters()]  # noqa: E731
    return grads(eager), grads(model), step.graph


def _same(want, got):
    assert len(want) == len(got)
    for a, b in zip(want, got):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(b, a)


def _binary_module(forward, a_shape=(3, 4), b_shape=(3, 4), frozen=()):
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            r = np.random.default_rng(7)
            self.a = nn.Parameter(r.standard_normal(a_shape).astype(np.float32))
            self.b = nn.Parameter(np.abs(r.standard_normal(b_shape)).astype(np.float32) + 0.5)
            for n in frozen:
                getattr(self, n).requires_grad_(False)

        def forward(self, x):
            return forward(self.a, self.b)
    return Pair


def _weighted_sum(t):
    # a native loss with a non-uniform dy (t - target), so a swapped or unscaled gradient shows
    target = lamina.tensor(np.linspace(-1.0, 2.0, t.numel()).reshape(t.shape).astype(np.float32))
    return nn.functional.mse_loss(t, target)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_the_binary_rules_run_on_the_recorder(monkeypatch, name):
    calls = _rule_calls(monkeypatch, name)
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b}[name]
    for shapes in (((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 4), (3, 1))):
        frozen = ("b",) if name == "div" and shapes[0] != shapes[1] else ()   # x / s: s wants no gradient
        want, got, g = _params_step(_binary_module(lambda a, b: _weighted_sum(fn(a, b)), *shapes, frozen=frozen))
        _same(want, got)
        assert g.callbacks == []
    assert calls and set(calls) == {RuleKernels}


def test_a_bias_added_twice_reduces_then_accumulates():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.linspace(-1, 1, 24).reshape(2, 3, 4).astype(np.float32))
            self.bias = nn.Parameter(np.linspace(0.5, -0.5, 4).astype(np.float32))

        def forward(self, x):
            h = self.w + self.bias
            return _weighted_sum((h * h) + self.bias)

    want, got, g = _params_step(Twice)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)   # the two sums added in another order
    reduces = [i for i, n in enumerate(g.nodes) if n.op == "reduce_broadcast" and n.src == "Add"]
    assert len(reduces) == 2
    # the first (the later add) writes the bias gradient, the second a temp added into it
    assert g.nodes[reduces[0]].outputs[0].home == "grad"
    first = g.nodes[reduces[1]]
    assert first.outputs[0].home == "temp"
    assert any(n.op == "accumulate" and n.inputs[0] is first.outputs[0] and n.outputs[0].home == "grad"
               for n in g.nodes[reduces[1] + 1:])
    assert g.callbacks == []


def test_sub_with_both_sides_wanting_gradients():
    want, got, g = _params_step(_binary_module(lambda a, b: _weighted_sum(a - b)))
    _same(want, got)
    np.testing.assert_array_equal(got[1], -got[0])
    # parameters keep their own gradient buffers: dy copied into a's, scaled by -1 into b's
    assert [n.op for n in g.nodes if n.src == "Sub"] == ["sub", "copy", "scale"]


def test_sub_of_two_intermediates_hands_dy_over_without_a_copy():
    want, got, g = _params_step(_binary_module(lambda a, b: _weighted_sum((a * 2.0) - (b * 2.0))))
    _same(want, got)
    np.testing.assert_array_equal(got[1], -got[0])
    sub_nodes = [n for n in g.nodes if n.src == "Sub"]
    assert [n.op for n in sub_nodes] == ["sub", "scale"] and sub_nodes[1].attrs.alpha == -1.0
    # a * 2's gradient is dy itself: the Mul backward reads a view of the loss gradient
    dy = sub_nodes[1].inputs[0]
    assert any(n.src == "Mul" and any(v is not None and v.base is dy for v in n.inputs) for n in g.nodes)


@pytest.mark.parametrize("op", ["sub", "add"])
def test_x_op_x_gets_both_contributions(op):
    class Same(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(np.linspace(-1, 1, 12).reshape(3, 4).astype(np.float32))

        def forward(self, x):
            h = self.a * 2.0
            return _weighted_sum(h - h if op == "sub" else h + h)

    want, got, g = _params_step(Same)
    _same(want, got)
    if op == "sub":
        np.testing.assert_array_equal(got[0], np.zeros((3, 4), np.float32))
    else:
        np.testing.assert_array_equal(got[0], want[0])
        assert np.abs(got[0]).min() > 0
    # the first operand takes dy as a view, the second goes to a temp accumulated into it
    src = "Sub" if op == "sub" else "Add"
    assert [n.op for n in g.nodes if n.src == src][1:] == ["scale" if op == "sub" else "copy", "accumulate"]


def test_the_same_shape_add_gives_dy_to_one_operand_only():
    want, got, g = _params_step(_binary_module(lambda a, b: _weighted_sum((a * 1.0) + (b * 1.0))))
    _same(want, got)
    add_nodes = [n for n in g.nodes if n.src == "Add"]
    # one operand aliases dy, the other gets a copy (a later write into one would change the other)
    assert [n.op for n in add_nodes] == ["add", "copy"]


@pytest.mark.parametrize("frozen", ["a", "b"])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((4,), (2, 3, 4))])
def test_a_frozen_operand_gets_no_gradient_node(frozen, shapes):
    want, got, g = _params_step(_binary_module(lambda a, b: _weighted_sum(a * b), *shapes, frozen=(frozen,)))
    _same(want, got)
    mul_nodes = [n for n in g.nodes if n.src == "Mul"]
    assert len(mul_nodes) == 2            # the forward and the one wanted gradient
    assert g.callbacks == []


@pytest.mark.parametrize("expr", ["x - s", "s - x", "s * x", "x / s", "x + s", "s + x"])
def test_bias_like_broadcasts_match_eager(expr):
    frozen = ("b",) if expr == "x / s" else ()
    f = {"x - s": lambda a, b: a - b, "s - x": lambda a, b: b - a, "s * x": lambda a, b: b * a,
         "x / s": lambda a, b: a / b, "x + s": lambda a, b: a + b, "s + x": lambda a, b: b + a}[expr]
    want, got, g = _params_step(_binary_module(lambda a, b: _weighted_sum(f(a, b)), (2, 3, 1, 1), (3, 1, 1),
                                               frozen=frozen))
    _same(want, got)
    assert g.callbacks == []


def test_a_lowered_op_without_a_rule_is_refused_when_a_gradient_is_needed():
    # its forward runs as nodes, so there is no ctx for a Python backward: say so at compile time
    from lamina.ops._params import ScaleAttrs
    from lamina.tensor import Function

    def lower(L, fn):
        L.emit("scale", [fn.args[0]], [fn.out], ScaleAttrs(n=fn.args[0].size, alpha=2.0), src=fn.op)
        fn.lowered_by = "scale"
        return True

    class Twice(Function):       # the engine's Function, as the ops use
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, dy):
            return (dy * 2,)

    registry.register("twice_no_rule_demo", lower=lower)(Twice)
    try:
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Parameter(np.ones((2, 3), np.float32))

            def forward(self, x):
                return nn.functional.mse_loss(Twice.apply(self.a), lamina.tensor(np.zeros((2, 3), np.float32)))

        model = M()
        step = lamina.compile(model, lambda out, y: out, lamina.optim.SGD(model.parameters(), lr=0.1))
        with pytest.raises(NotImplementedError, match="twice_no_rule_demo.*no backward rule"):
            step(np.zeros(1), np.zeros(1))
    finally:
        registry.unregister("twice_no_rule_demo")
