"""Batched matmul (B, M, K) @ (B, K, N): one backward rule (dA = dY B^T, dB = A^T dY per batch
entry) run by eager autodiff and, recorded, by the compiler, which lowers forward and backward
to `gemm` nodes with a batch count (no Python callback)."""
import numpy as np
import pytest
import torch

import lamina
from lamina import _C, nn
from lamina.graph.lower import RuleKernels
from lamina.ops import registry


def _pair(shape_a, shape_b, dtype, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal(shape_a).astype(dtype), r.standard_normal(shape_b).astype(dtype)


SHAPES = [((3, 4, 5), (3, 5, 2)),          # equal batches
          ((2, 3, 4, 5), (2, 3, 5, 6)),    # two batch dims
          ((2, 1, 4, 5), (3, 5, 2)),       # broadcast batch dims on both sides
          ((4, 5), (3, 5, 2)),             # a 2-D operand repeated over the batch
          ((3, 1, 5), (3, 5, 1)),          # M = N = 1
          ((0, 4, 5), (0, 5, 2))]          # an empty batch


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shape_a, shape_b", SHAPES)
def test_forward_and_gradients_match_torch(shape_a, shape_b, dtype, tol):
    a, b = _pair(shape_a, shape_b, dtype)
    dy = np.random.default_rng(1).standard_normal(np.broadcast_shapes(shape_a[:-2], shape_b[:-2])
                                                   + (shape_a[-2], shape_b[-1])).astype(dtype)
    ta, tb = lamina.tensor(a, requires_grad=True), lamina.tensor(b, requires_grad=True)
    y = ta @ tb
    (y * lamina.tensor(dy)).sum().backward()
    qa, qb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    qy = qa @ qb
    (qy * torch.tensor(dy)).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), qy.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ta.grad.numpy(), qa.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(tb.grad.numpy(), qb.grad.numpy(), rtol=tol, atol=tol)
    assert ta.grad.shape == shape_a and tb.grad.shape == shape_b


@pytest.mark.parametrize("shape_a, shape_b", SHAPES[:4])
def test_gradients_match_float64_finite_differences(shape_a, shape_b):
    a, b = _pair(shape_a, shape_b, np.float64, seed=2)
    ins = [lamina.tensor(a, requires_grad=True), lamina.tensor(b, requires_grad=True)]
    assert lamina.autograd.gradcheck(lambda x, w: x @ w, ins)


def test_the_op_has_one_rule_run_by_both_modes():
    op = registry.get("matmul_batched")
    assert op.backward is not None and op.lower is not None
    assert op.function.backward.rule is op.backward


class _Batched(nn.Module):
    """y = (x @ W) @ V per batch entry, both weights (B, ., .): a batched matmul on a parameter
    and on an intermediate, so every gradient of the rule is needed."""

    def __init__(self, shape_w=(3, 5, 4), shape_v=(3, 4, 2)):
        super().__init__()
        r = np.random.default_rng(3)
        self.w = nn.Parameter(r.standard_normal(shape_w).astype(np.float32) * 0.5)
        self.v = nn.Parameter(r.standard_normal(shape_v).astype(np.float32) * 0.5)

    def forward(self, x):
        return ((x @ self.w) @ self.v).reshape(x.shape[0], -1)


def _mse(out, y):
    return nn.functional.mse_loss(out, y)


def _eager_and_compiled(make, x, y, executor="native"):
    lamina.manual_seed(0)
    eager = make()
    loss = _mse(eager(lamina.tensor(x)), lamina.tensor(y))
    loss.backward()
    model = make()
    step = lamina.compile(model, _mse, lamina.optim.SGD(model.parameters(), lr=0.0), executor=executor)
    got = step(x, y)
    return (float(loss.item()), [p.grad.numpy() for p in eager.parameters()], got,
            [p.grad.numpy() for p in model.parameters()], step.graph)


@pytest.mark.parametrize("executor", ["native", "python"])
def test_compiled_equals_eager_bit_for_bit_with_no_callback(monkeypatch, executor):
    op = registry.get("matmul_batched")
    seen, rule = [], op.backward
    monkeypatch.setattr(op, "backward", lambda k, s, dy, out: seen.append(type(k)) or rule(k, s, dy, out))
    x = np.random.default_rng(4).standard_normal((3, 6, 5)).astype(np.float32)
    y = np.random.default_rng(5).standard_normal((3, 12)).astype(np.float32)
    want_loss, want, got_loss, got, g = _eager_and_compiled(_Batched, x, y, executor)
    assert got_loss == want_loss
    for a, b in zip(want, got):
        np.testing.assert_array_equal(b, a)
    assert g.callbacks == []
    gemms = [n for n in g.nodes if n.op == "gemm" and n.src == "MatMulBatched"]
    # 2 forward, then dV, dH (the intermediate x @ W), dW; no dX for the step's input
    assert len(gemms) == 5 and all(n.attrs.batch == 3 for n in gemms)
    assert seen == [RuleKernels, RuleKernels]


def test_a_weight_used_twice_accumulates_with_beta_1():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.random.default_rng(6).standard_normal((2, 4, 4)).astype(np.float32) * 0.5)

        def forward(self, x):
            return ((x @ self.w) @ self.w).reshape(x.shape[0], -1)

    x = np.random.default_rng(7).standard_normal((2, 3, 4)).astype(np.float32)
    y = np.random.default_rng(8).standard_normal((2, 12)).astype(np.float32)
    want_loss, want, got_loss, got, g = _eager_and_compiled(Twice, x, y)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)      # the two parts summed in another order
    dw = [n for n in g.nodes if n.op == "gemm" and n.outputs[0].home == "grad"]
    assert [n.attrs.beta for n in dw] == [0.0, 1.0] and dw[1].inplace


def test_broadcast_batch_dims_compile_and_match_eager():
    # (B, 1, M, K) @ (C, K, N): matmul expands the batch dims; Expand's backward sums them back
    class Bcast(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.random.default_rng(9).standard_normal((3, 5, 2)).astype(np.float32))

        def forward(self, x):
            return (x @ self.w).reshape(x.shape[0], -1)

    x = np.random.default_rng(10).standard_normal((2, 1, 4, 5)).astype(np.float32)
    y = np.zeros((2, 3 * 4 * 2), np.float32)
    want_loss, want, got_loss, got, g = _eager_and_compiled(Bcast, x, y)
    assert got_loss == want_loss
    np.testing.assert_array_equal(got[0], want[0])
    assert any(n.op == "gemm" and n.attrs.batch == 6 for n in g.nodes)


@pytest.mark.parametrize("act, bias_slot", [(_C.Activation.RELU, -1), (_C.Activation.IDENTITY, 2)])
def test_the_native_gemm_node_refuses_a_batched_epilogue(act, bias_slot):
    attrs = _C.GemmAttrs(M=2, N=2, K=2, batch=2, act=act)
    prog = _C.GraphProgram([_C.GraphInstr(_C.OpCode.GEMM, _C.DType.FLOAT32, [0, 1, 2, bias_slot], attrs)], 3, 0)
    arena = np.zeros(256, np.uint8)
    prog.set_arena(arena, [1, 2], [0, 64], [32, 32])
    prog.set_inputs([0], ["float32"], [32])
    with pytest.raises(ValueError, match="batch: a batched GEMM takes no bias and act identity"):
        prog.run([np.ones(8, np.float32)], np.zeros(0), None)


def test_the_native_batched_gemm_node_runs_the_eager_kernel():
    a, b = _pair((3, 2, 4), (3, 4, 5), np.float32, seed=11)
    prog = _C.GraphProgram([_C.GraphInstr(_C.OpCode.GEMM, _C.DType.FLOAT32, [0, 1, 2, -1],
                                          _C.GemmAttrs(M=2, N=5, K=4, batch=3))], 3, 0)
    arena = np.zeros(1024, np.uint8)
    prog.set_arena(arena, [1, 2], [0, 256], [b.nbytes, 3 * 2 * 5 * 4])
    arena[:b.nbytes] = b.reshape(-1).view(np.uint8)
    prog.set_inputs([0], ["float32"], [a.nbytes])
    prog.run([a], np.zeros(0), None)
    want = np.empty((3, 2, 5), np.float32)
    _C.gemm_batched(a, b, want)
    np.testing.assert_array_equal(arena[256:256 + want.nbytes].view(np.float32).reshape(3, 2, 5), want)
