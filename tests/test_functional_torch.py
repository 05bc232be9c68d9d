"""nn.functional additions against torch.nn.functional (forward values and the gradients of a
random projection, float32 and float64) and against float64 finite differences."""
import math

import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import nn
from conftest import helper_gradcheck, helper_test_op

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]


def _both(fn_name, *args, **kw):
    """(lamina fn, torch fn) applying the same named functional with the same extra args."""
    return (lambda *xs: getattr(F, fn_name)(*xs, *args, **kw),
            lambda *xs: getattr(TF, fn_name)(*xs, *args, **kw))


# ------------------------------------------------------------------ activations
ACTS = [("elu", {}), ("elu", dict(alpha=0.3)), ("gelu", {}), ("gelu", dict(approximate="tanh")),
        ("silu", {}), ("leaky_relu", dict(negative_slope=0.1)), ("softplus", dict(beta=2.0))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw", ACTS, ids=[f"{n}-{k}" for n, k in ACTS])
def test_activations_match_torch(name, kw, dtype):
    helper_test_op([(3, 7)], *_both(name, **kw), dtype=dtype, low=-4, high=4)


@pytest.mark.parametrize("name,kw", ACTS[:5], ids=[f"{n}-{k}" for n, k in ACTS[:5]])
def test_activations_gradcheck(name, kw):
    helper_gradcheck([(4, 5)], lambda x: getattr(F, name)(x, **kw), low=-3, high=3)


def test_silu_and_gelu_do_not_overflow():
    x = lamina.tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]))
    for f, tf in ((F.silu, TF.silu), (F.gelu, TF.gelu)):
        np.testing.assert_allclose(f(x).numpy(), tf(torch.tensor(x.data)).numpy(), atol=1e-12)


# ------------------------------------------------------------------ pad
PADS = [
    ((2, 3), (1, 2), "constant", 0.0),
    ((2, 3), (1, 2), "constant", -1.5),
    ((2, 3, 4), (1, 0, 2, 1), "constant", 0.5),
    ((2, 3, 4), (-1, 2, 0, -1), "constant", 0.0),         # negative pads crop
    ((2, 3, 5), (2, 1), "reflect", None),
    ((1, 2, 4, 5), (1, 2, 3, 1), "reflect", None),
    ((2, 3, 4), (3, 2), "replicate", None),
    ((1, 2, 3, 4), (2, 1, 2, 2), "replicate", None),
    ((2, 3, 4), (2, 4), "circular", None),
    ((1, 2, 3, 4), (1, 2, 3, 0), "circular", None),
    ((1, 1, 2, 3, 4), (1, 1, 1, 1, 1, 1), "replicate", None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,pad,mode,value", PADS, ids=[f"{p[2]}-{p[1]}-{p[0]}" for p in PADS])
def test_pad_matches_torch(shape, pad, mode, value, dtype):
    kw = {} if value is None else dict(value=value)
    helper_test_op([shape], lambda x: F.pad(x, pad, mode=mode, **kw),
                   lambda x: TF.pad(x, pad, mode=mode, **kw), dtype=dtype)


@pytest.mark.parametrize("shape,pad,mode,value", PADS[::2], ids=[f"{p[2]}-{p[1]}" for p in PADS[::2]])
def test_pad_gradcheck(shape, pad, mode, value):
    helper_gradcheck([shape], lambda x: F.pad(x, pad, mode=mode) * F.pad(x, pad, mode=mode))


def test_pad_errors_name_the_argument():
    x = lamina.zeros(2, 3)
    with pytest.raises(ValueError, match="pad: expected an even number"):
        F.pad(x, (1,))
    with pytest.raises(ValueError, match="pad: 6 values pad 3 dimensions, but input has 2"):
        F.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="reflect padding"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="mode"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="crops dimension 1"):
        F.pad(x, (-2, -2))


# ------------------------------------------------------------------ one_hot
def test_one_hot_matches_torch():
    t = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(F.one_hot(lamina.tensor(t)).numpy(), TF.one_hot(torch.tensor(t)).numpy())
    got = F.one_hot(lamina.tensor(t), num_classes=6)
    assert got.dtype == np.int64 and got.shape == (2, 2, 6)
    np.testing.assert_array_equal(got.numpy(), TF.one_hot(torch.tensor(t), 6).numpy())
    with pytest.raises(ValueError, match="class value 3 out of range for num_classes=3"):
        F.one_hot(lamina.tensor(t), 3)
    with pytest.raises(ValueError, match="non-negative"):
        F.one_hot(lamina.tensor([-1, 0]))
    with pytest.raises(TypeError, match="integer"):
        F.one_hot(lamina.tensor([0.0, 1.0]))


# ------------------------------------------------------------------ losses
REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kw", [("l1_loss", {}), ("mse_loss", {}), ("smooth_l1_loss", {}),
                                     ("smooth_l1_loss", dict(beta=0.3)), ("smooth_l1_loss", dict(beta=0.0)),
                                     ("huber_loss", {}), ("huber_loss", dict(delta=0.4))])
def test_regression_losses_match_torch(name, kw, reduction, dtype):
    helper_test_op([(4, 6), (4, 6)], *_both(name, reduction=reduction, **kw), dtype=dtype, low=-2, high=2)


@pytest.mark.parametrize("name,kw", [("l1_loss", {}), ("smooth_l1_loss", dict(beta=0.5)),
                                     ("huber_loss", dict(delta=0.7)), ("mse_loss", dict(reduction="none"))])
def test_regression_losses_gradcheck(name, kw):
    # inputs away from the kinks (|d| = 0 and |d| = beta), where finite differences are exact
    rng = np.random.default_rng(0)
    d = rng.choice([-1, 1], (3, 4)) * rng.uniform(0.05, 0.4, (3, 4))
    d[0] *= 5
    t = rng.standard_normal((3, 4))
    x = lamina.tensor(t + d, requires_grad=True)
    assert lamina.autograd.gradcheck(lambda x: getattr(F, name)(x, lamina.tensor(t), **kw).sum(), [x])


def test_l1_gradient_at_equality_is_zero_like_torch():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    F.l1_loss(x, lamina.tensor([1.0, 0.0]), reduction="sum").backward()
    assert x.grad.tolist() == [0.0, 1.0]


def _probs(shape, seed, dtype):
    return np.random.default_rng(seed).uniform(0.02, 0.98, shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_matches_torch(reduction, weighted, dtype):
    x, t = _probs((5, 3), 0, dtype), _probs((5, 3), 1, dtype)
    w = np.random.default_rng(2).uniform(0.5, 2, (3,)).astype(dtype) if weighted else None
    helper_test_op([], lambda a, b: F.binary_cross_entropy(a, b, weight=None if w is None else lamina.tensor(w),
                                                           reduction=reduction),
                   lambda a, b: TF.binary_cross_entropy(a, b, weight=None if w is None else torch.tensor(w),
                                                        reduction=reduction),
                   dtype=dtype, inputs=[x, t])


def test_binary_cross_entropy_gradcheck_and_edges():
    x = lamina.tensor(_probs((3, 4), 3, np.float64), requires_grad=True)
    t = lamina.tensor(_probs((3, 4), 4, np.float64), requires_grad=True)
    assert lamina.autograd.gradcheck(lambda a, b: F.binary_cross_entropy(a, b), [x, t])
    # p = 0 and 1 stay finite (logs clamped at -100, like torch)
    p = np.array([0.0, 1.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    lx = lamina.tensor(p, requires_grad=True)
    tx = torch.tensor(p, requires_grad=True)
    lo, to = F.binary_cross_entropy(lx, lamina.tensor(y)), TF.binary_cross_entropy(tx, torch.tensor(y))
    lo.backward()
    to.backward()
    assert lo.item() == pytest.approx(to.item())
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)   # -(1/4)/1e-12 at p=0, t=1
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*with_logits"):
        F.binary_cross_entropy(lamina.tensor([1.5]), lamina.tensor([1.0]))
    with pytest.raises(ValueError, match="target"):
        F.binary_cross_entropy(lamina.tensor([0.5, 0.5]), lamina.tensor([1.0]))


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")   # torch's notice about 'mean'
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target, dtype):
    rng = np.random.default_rng(0)
    logq = np.log(rng.dirichlet(np.ones(5), 4)).astype(dtype)
    p = rng.dirichlet(np.ones(5), 4).astype(dtype)
    p[0, 1] = 0.0     # a zero target contributes 0 (0 log 0 = 0)
    t = np.log(p + 1e-3).astype(dtype) if log_target else p
    helper_test_op([], lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
                   lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target),
                   dtype=dtype, inputs=[logq, t], grad=False)
    x = lamina.tensor(logq, requires_grad=True)
    tx = torch.tensor(logq, requires_grad=True)
    F.kl_div(x, lamina.tensor(t), reduction=reduction, log_target=log_target).sum().backward()
    TF.kl_div(tx, torch.tensor(t), reduction=reduction, log_target=log_target).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


def test_kl_div_gradcheck_and_errors():
    rng = np.random.default_rng(1)
    x = lamina.tensor(np.log(rng.dirichlet(np.ones(4), 3)), requires_grad=True)
    t = lamina.tensor(rng.dirichlet(np.ones(4), 3), requires_grad=True)
    assert lamina.autograd.gradcheck(lambda a, b: F.kl_div(a, b, reduction="batchmean"), [x, t])
    with pytest.raises(ValueError, match="reduction"):
        F.kl_div(x, t, reduction="avg")
    with pytest.raises(ValueError, match="probabilities"):
        F.kl_div(x, -t)


def test_kl_div_batchmean_is_the_kl_divergence():
    p = np.array([[0.2, 0.8], [0.5, 0.5]])
    q = np.array([[0.5, 0.5], [0.9, 0.1]])
    want = np.mean([np.sum(pi * np.log(pi / qi)) for pi, qi in zip(p, q)])
    got = F.kl_div(lamina.tensor(np.log(q)), lamina.tensor(p), reduction="batchmean").item()
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("name,tname,kw", [
    ("L1Loss", "L1Loss", {}), ("SmoothL1Loss", "SmoothL1Loss", dict(beta=0.5)),
    ("HuberLoss", "HuberLoss", dict(delta=2.0)), ("MSELoss", "MSELoss", dict(reduction="sum")),
    ("KLDivLoss", "KLDivLoss", dict(reduction="batchmean")),
])
def test_loss_modules_match_torch(name, tname, kw):
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 0.9, (4, 3)), rng.uniform(0.1, 0.9, (4, 3))
    got = getattr(nn, name)(**kw)(lamina.tensor(a), lamina.tensor(b)).item()
    want = getattr(torch.nn, tname)(**kw)(torch.tensor(a), torch.tensor(b)).item()
    assert got == pytest.approx(want, rel=1e-12)
    bce = nn.BCELoss()(lamina.tensor(a), lamina.tensor(b)).item()
    assert bce == pytest.approx(torch.nn.BCELoss()(torch.tensor(a), torch.tensor(b)).item(), rel=1e-12)


def test_legacy_size_average_and_reduce_flags():
    a, b = lamina.tensor([1.0, 4.0]), lamina.tensor([0.0, 0.0])
    assert F.l1_loss(a, b, size_average=False).item() == 5.0
    assert F.mse_loss(a, b, reduce=False).tolist() == [1.0, 16.0]
    assert nn.MSELoss(size_average=False)(a, b).item() == 17.0


# ------------------------------------------------------------------ embedding, dropout
@pytest.mark.parametrize("padding_idx", [None, 1])
def test_embedding_matches_torch_and_gradchecks(padding_idx):
    w = np.random.default_rng(0).standard_normal((5, 3))
    idx = np.array([[1, 4], [4, 0]])
    helper_test_op([], lambda weight: F.embedding(lamina.tensor(idx), weight, padding_idx=padding_idx),
                   lambda weight: TF.embedding(torch.tensor(idx), weight, padding_idx=padding_idx),
                   dtype=np.float64, inputs=[w])
    x = lamina.tensor(w, requires_grad=True)
    assert lamina.autograd.gradcheck(lambda weight: F.embedding(lamina.tensor(idx), weight), [x])


def test_dropout_functional_semantics():
    x = lamina.ones(1000, dtype=lamina.float64)
    assert F.dropout(x, 0.3, training=False) is x
    lamina.manual_seed(0)
    y = F.dropout(x, 0.25).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    assert 0.65 < kept.mean() < 0.85


# ------------------------------------------------------------------ clip_grad
def _grads(lib, tensor):
    rng = np.random.default_rng(0)
    ps = [tensor(rng.standard_normal(s)) for s in [(3, 4), (5,), (2, 2)]]
    for p, s in zip(ps, [(3, 4), (5,), (2, 2)]):
        p.grad = lib.tensor(rng.standard_normal(s) * 3)
    return ps


@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (2.0, math.inf), (1.0, 3)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    ours = _grads(lamina, lambda a: nn.Parameter(a))
    ref = _grads(torch, lambda a: torch.tensor(a, requires_grad=True))
    n = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    tn = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type)
    assert n.item() == pytest.approx(tn.item(), rel=1e-12)
    for p, t in zip(ours, ref):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_matches_torch_and_single_tensor_argument():
    ours = _grads(lamina, lambda a: nn.Parameter(a))
    ref = _grads(torch, lambda a: torch.tensor(a, requires_grad=True))
    nn.utils.clip_grad_value_(ours, 1.5)
    torch.nn.utils.clip_grad_value_(ref, 1.5)
    for p, t in zip(ours, ref):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
    single = nn.Parameter(np.zeros(2))
    single.grad = lamina.tensor([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(single, 1.0).item() == pytest.approx(5.0)
    with pytest.raises(ValueError, match="clip_value"):
        nn.utils.clip_grad_value_(ours, -1.0)


def test_clip_grad_norm_nonfinite():
    p = nn.Parameter(np.zeros(2))
    p.grad = lamina.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_inside_a_training_loop():
    lamina.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = lamina.optim.SGD(model.parameters(), lr=0.1)
    loss = (model(lamina.tensor(np.full((4, 3), 100.0, dtype=np.float32))) ** 2).mean()
    loss.backward()
    before = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    assert before.item() > 1.0
    after = math.sqrt(sum(float((p.grad.detach().numpy().astype(np.float64) ** 2).sum()) for p in model.parameters()))
    assert after == pytest.approx(1.0, rel=1e-5)
    opt.step()


# ------------------------------------------------------------------ the registered records
NN_OPS = ["elu", "gelu", "silu", "pad", "embedding", "binary_cross_entropy"]


@pytest.mark.parametrize("name", NN_OPS)
def test_registered_samples_match_torch_gradcheck_and_bad_samples_raise(name):
    """Each op's registry record (what the OpInfo walk and the compiler read) is consistent:
    its samples match torch in every dtype, pass float64 gradcheck, and its bad samples raise."""
    from lamina.ops import registry
    op = registry.get(name)
    assert op.dtypes and op.samples and op.bad_samples and op.torch
    for dt in op.dtypes:
        for s in op.samples(dt):
            args = [lamina.tensor(a) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else
                    (lamina.tensor(a) if isinstance(a, np.ndarray) else a) for a in s.args]
            got = op.call(*args, **s.kwargs)
            targs = [torch.tensor(a) if isinstance(a, np.ndarray) else a for a in s.args]
            want = op.torch(torch, *targs, **s.kwargs)
            tol = dict(rtol=1e-5, atol=1e-6) if dt == np.float32 else dict(rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(got.numpy(), want.numpy(), **tol, err_msg=f"{name} {s.name} {dt}")
            if op.reference is not None:
                np.testing.assert_allclose(got.numpy(), op.reference(*s.args, **s.kwargs), **tol)
            if dt == np.float64 and s.grad:
                xs = [lamina.tensor(a, requires_grad=True) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                      else lamina.tensor(a) for a in s.args]
                grads = [x for x in xs if x.requires_grad]
                assert lamina.autograd.gradcheck(lambda *g: op.call(*_swap(xs, g), **s.kwargs), grads)
    for b in op.bad_samples():
        with pytest.raises(b.error, match=b.match):
            op.call(*[lamina.tensor(a) if isinstance(a, np.ndarray) else a for a in b.args], **b.kwargs)


def _swap(xs, new):
    """xs with its requires_grad tensors replaced, in order, by `new`."""
    it = iter(new)
    return [next(it) if x.requires_grad else x for x in xs]


def test_new_activations_train_the_same_compiled_and_eager():
    import lamina.nn.functional as F
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8, 4))
    y = rng.integers(0, 3, (3, 8))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, x):
            h = nn.functional.gelu(self.a(x)) + nn.functional.silu(self.a(x)) + nn.functional.elu(self.a(x))
            return self.b(nn.functional.pad(h, (1, -1), mode="constant"))

    def run(compiled):
        lamina.manual_seed(0)
        m = Net().double()
        opt = lamina.optim.SGD(m.parameters(), lr=0.1)
        step = lamina.compile(m, F.cross_entropy, opt) if compiled else None
        out = []
        for xb, yb in zip(x, y):
            if compiled:
                out.append(float(step(lamina.tensor(xb), lamina.tensor(yb))))
            else:
                opt.zero_grad()
                loss = F.cross_entropy(m(lamina.tensor(xb)), lamina.tensor(yb))
                loss.backward()
                opt.step()
                out.append(loss.item())
        return out, [p.detach().numpy().copy() for p in m.parameters()]

    (le, pe), (lc, pc) = run(False), run(True)
    np.testing.assert_allclose(lc, le, rtol=1e-12)
    for a, b in zip(pe, pc):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_dropout_takes_torchs_inplace_keyword():
    x = lamina.ones(4)
    assert F.dropout(x, 0.5, training=False, inplace=False) is x
    assert nn.Dropout(0.25, inplace=False).p == 0.25
