"""The compiled graph folds conv + batch norm at eval (issue 14, graph/passes.py fold_conv_bn).

The folded conv rounds differently from conv-then-BN (W * scale is rounded before the sum), so
compiled eval equals eager eval to float32 tolerance, not bit for bit. The fold follows the
model: train()/eval() switches plans, and weights or running statistics changed in place
(load_state_dict, a training step) are re-folded before the next run.
"""
import numpy as np
import pytest

import lamina
import lamina.graph
import lamina.nn.functional as F
from lamina import nn

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-11, atol=1e-12)}
EXECUTORS = ["native", "python"]


def _random_stats(model, seed=3):
    """Batch norms with random running statistics and affine parameters, so a missing or wrong
    fold changes the output."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.running_mean is not None:
            c = m.num_features
            m.running_mean.data[...] = rng.standard_normal(c) * 0.5
            m.running_var.data[...] = rng.uniform(0.3, 2.0, c)
            if m.weight is not None:
                m.weight.data[...] = rng.uniform(0.5, 1.5, c)
                m.bias.data[...] = rng.standard_normal(c) * 0.3
    return model


def _resnet(seed=0, width=8):
    lamina.manual_seed(seed)
    return _random_stats(lamina.models.resnet_mnist(width=width), seed + 3)


def _eager_eval(model, x):
    with lamina.no_grad():
        return model(lamina.tensor(x)).data


def _x(shape, dtype=np.float32, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _bn_nodes(graph):
    return [n for n in graph.nodes if "BatchNorm" in n.src]


def _no_fold(graph, fnodes, keep_ids=(), trainable_ids=()):
    return fnodes, [], lamina.graph.FoldGuard()


@pytest.mark.parametrize("executor", EXECUTORS)
@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_compiled_eval_resnet_folds_and_matches_eager(executor, monkeypatch):
    model = _resnet().eval()
    x = _x((5, 1, 28, 28))
    f = lamina.compile(model, executor=executor)
    f(x)                                   # the trace (eager's own result)
    y = f(x).data                          # the folded plan
    np.testing.assert_allclose(y, _eager_eval(model, x), **TOL[np.float32])
    g = f.graph
    folded = [n for n in g.notes if n.startswith("folded BatchNormFn")]
    assert len(folded) == 9                # stem + 2 per block + 2 projections
    assert not _bn_nodes(g)
    assert g.callbacks == []                # the whole eval resnet runs natively
    # the same model without the pass: the batch norms are nodes of their own
    monkeypatch.setattr(lamina.graph, "fold_conv_bn", _no_fold)
    plain = lamina.compile(model, executor=executor)
    plain(x)
    assert len(_bn_nodes(plain.graph)) == 9
    assert len(g.nodes) <= len(plain.graph.nodes) - 9
    # not an identity: the batch norms change the result
    np.testing.assert_allclose(plain(x).data, y, **TOL[np.float32])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["conv1d", "conv2d"])
@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_fold_conv1d_conv2d_with_relu_and_dtypes(dtype, kind):
    lamina.manual_seed(4)
    if kind == "conv2d":
        model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1, dtype=dtype), nn.BatchNorm2d(5, dtype=dtype), nn.ReLU(),
                              nn.Conv2d(5, 4, 1, bias=False, dtype=dtype),
                              nn.BatchNorm2d(4, affine=False, dtype=dtype), nn.Flatten())
        x = _x((2, 3, 6, 6), dtype)
    else:
        model = nn.Sequential(nn.Conv1d(3, 5, 3, padding=1, dtype=dtype), nn.BatchNorm1d(5, dtype=dtype), nn.ReLU(),
                              nn.Conv1d(5, 4, 1, bias=False, dtype=dtype),
                              nn.BatchNorm1d(4, affine=False, dtype=dtype), nn.Flatten())
        x = _x((2, 3, 9), dtype)
    _random_stats(model).eval()
    f = lamina.compile(model)
    f(x)
    np.testing.assert_allclose(f(x).data, _eager_eval(model, x), **TOL[dtype])
    notes = f.graph.notes
    assert sum(n.startswith("folded") for n in notes) == 2
    assert any(n.startswith("fused relu into the conv") for n in notes)   # conv+BN+ReLU: one instruction
    assert not _bn_nodes(f.graph)


@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_train_eval_switch_replans_and_refolds_changed_statistics():
    model = _resnet(1)
    x, x2 = _x((6, 1, 28, 28)), _x((6, 1, 28, 28), seed=2)
    f = lamina.compile(model)
    model.eval()
    f(x)
    np.testing.assert_allclose(f(x).data, _eager_eval(model, x), **TOL[np.float32])
    assert not _bn_nodes(f.graph)
    # train mode: batch statistics, no fold, and the running statistics move in place
    model.train()
    twin = _resnet(1)
    twin.load_state_dict(model.state_dict())
    twin.train()
    y_train = f(x2).data
    assert _bn_nodes(f.graph) and not any(n.startswith("folded") for n in f.graph.notes)
    np.testing.assert_allclose(y_train, _eager_eval(twin, x2), **TOL[np.float32])
    f(x2)
    _eager_eval(twin, x2)
    stem = model.stem_bn.running_mean.detach().numpy().copy()
    np.testing.assert_allclose(stem, twin.stem_bn.running_mean.data, rtol=1e-5, atol=1e-6)
    # back to eval: the cached eval plan, re-folded from the new statistics (no new trace)
    model.eval()
    twin.eval()
    traces = f.traces
    y = f(x).data
    assert f.traces == traces
    np.testing.assert_allclose(y, _eager_eval(twin, x), **TOL[np.float32])
    np.testing.assert_allclose(y, _eager_eval(model, x), **TOL[np.float32])


@pytest.mark.parametrize("executor", EXECUTORS)
@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_load_state_dict_refolds(executor):
    a, b = _resnet(0), _resnet(7)
    a.eval()
    x = _x((4, 1, 28, 28))
    f = lamina.compile(a, executor=executor)
    f(x)
    ya = f(x).data
    a.load_state_dict(b.state_dict())          # copies in place: the same arrays, new values
    b.eval()
    yb = f(x).data
    want = _eager_eval(b, x)
    assert np.abs(want - ya).max() > 1e-2      # the two models differ
    np.testing.assert_allclose(yb, want, **TOL[np.float32])
    assert f._last.folds.refolds == 9
    # unchanged weights: nothing to re-fold
    f(x)
    assert f._last.folds.refolds == 9


@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_not_folded_when_the_fold_would_be_wrong():
    lamina.manual_seed(2)
    conv, bn = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3, track_running_stats=False)

    class Both(nn.Module):
        """The conv output is read twice: folding would change the second reader's input."""
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)

        def forward(self, x):
            z = self.conv(x)
            return self.bn(z) + z

    x = _x((2, 2, 5, 5))
    for model in (nn.Sequential(conv, bn), _random_stats(Both())):
        model.eval()
        f = lamina.compile(model)
        f(x)
        np.testing.assert_allclose(f(x).data, _eager_eval(model, x), **TOL[np.float32])
        assert not any(n.startswith("folded") for n in f.graph.notes)
        assert _bn_nodes(f.graph)


def test_compiled_step_in_eval_folds_only_a_frozen_pair():
    """Fine-tuning a head over a frozen backbone in eval mode: the frozen conv+BN folds (the
    input gradient is the same through the folded conv); a trainable pair does not (its weight
    gradients need the unfolded graph)."""
    def build(freeze):
        lamina.manual_seed(5)
        m = _random_stats(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                        nn.Flatten(), nn.Linear(4 * 6 * 6, 3)))
        for layer in list(m)[:3] if freeze else ():
            layer.requires_grad_(False)
        return m.eval()

    x, y = _x((4, 1, 6, 6)), np.array([0, 1, 2, 1])
    for freeze, want_folds in ((True, 1), (False, 0)):
        m, ref = build(freeze), build(freeze)
        opt = lamina.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
        ref_opt = lamina.optim.SGD([p for p in ref.parameters() if p.requires_grad], lr=0.1)
        step = lamina.compile(m, F.cross_entropy, opt)
        for _ in range(3):
            loss = step(x, y)
            ref_opt.zero_grad()
            ref_loss = F.cross_entropy(ref(lamina.tensor(x)), lamina.tensor(y))
            ref_loss.backward()
            ref_opt.step()
            assert loss == pytest.approx(float(ref_loss.item()), rel=1e-5)
        assert sum(n.startswith("folded") for n in step.graph.notes) == want_folds
        for p, q in zip(m.parameters(), ref.parameters()):
            np.testing.assert_allclose(p.data, q.data, rtol=1e-4, atol=1e-5)
