"""Every lamina optimizer against torch.optim: same float64 weights, same 20 gradients.

The cases use large eps / decays where a misplaced term would move the result well past the
tolerance (an Adam with eps inside the square root, an RMSprop with eps under the root, an
Adadelta with eps outside, a maximize that negated after weight decay all fail here).
"""
import numpy as np
import pytest

import lamina
from lamina import nn, optim
from lamina.nn import Parameter

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), (1,)]
STEPS = 20
RTOL = 1e-9   # float64 over 20 steps: only rounding may differ


def _grads(seed, steps=STEPS, shrink=1.0):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) * shrink ** i for s in SHAPES] for i in range(steps)]


def _init(seed):
    return [np.random.default_rng(seed).standard_normal(s) for s in SHAPES]


def _lamina_run(make, init, grads, params=None, opt=None):
    params = params or [Parameter(w.copy()) for w in init]
    views = [p.detach().numpy() for p in params]
    opt = opt or make(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = lamina.tensor(g.copy())
        opt.step()
    assert all(p.detach().numpy() is v for p, v in zip(params, views)), "the update must be in place"
    return params, opt


def _torch_run(make, init, grads):
    params = [torch.tensor(w.copy(), requires_grad=True) for w in init]
    opt = make(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g.copy())
        opt.step()
    return params, opt


CASES = [
    ("SGD", dict(lr=0.1, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("Adam", dict(lr=1e-2, eps=0.1)),
    ("Adam", dict(lr=1e-2, eps=0.05, amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, eps=0.05, maximize=True, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, eps=0.05, weight_decay=0.2, maximize=True)),
    ("AdamW", dict(lr=1e-2, eps=0.05, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=1e-2, alpha=0.9, eps=0.1)),
    ("RMSprop", dict(lr=1e-2, eps=0.1, momentum=0.8, weight_decay=0.1)),
    ("RMSprop", dict(lr=1e-2, eps=0.1, centered=True)),
    ("RMSprop", dict(lr=1e-2, eps=0.05, centered=True, momentum=0.5, weight_decay=0.05, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, eps=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3, eps=0.01)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=0.1)),
    ("Adadelta", dict(lr=1.0, rho=0.95, eps=1e-3, weight_decay=0.1, maximize=True)),
]


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_matches_torch_over_20_float64_steps(name, kw):
    init, grads = _init(1), _grads(2, shrink=0.85)   # shrinking grads: amsgrad's max matters
    ours, _ = _lamina_run(lambda p: getattr(optim, name)(p, **kw), init, grads)
    ref, _ = _torch_run(lambda p: getattr(torch.optim, name)(p, **kw), init, grads)
    for a, b, w in zip(ours, ref, init):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=RTOL, atol=1e-12)
        assert not np.allclose(a.data, w)


def test_maximize_climbs():
    w = Parameter(np.array([0.0]))
    opt = optim.RMSprop([w], lr=0.1, maximize=True)
    w.grad = lamina.tensor(np.array([1.0]))
    opt.step()
    assert w.data[0] > 0


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_state_dict_resumes_bit_identically(name, kw):
    init, grads = _init(3), _grads(4)
    full, _ = _lamina_run(lambda p: getattr(optim, name)(p, **kw), init, grads)

    params, opt = _lamina_run(lambda p: getattr(optim, name)(p, **kw), init, grads[:8])
    sd = opt.state_dict()
    copies = [Parameter(p.detach().numpy().copy()) for p in params]
    fresh = getattr(optim, name)(copies, **{**kw, "lr": 123.0})
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    _lamina_run(None, None, grads[8:], params=copies, opt=fresh)
    for a, b in zip(full, copies):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("name,kw", [c for c in CASES if c[0] != "SGD" or "momentum" in c[1]],
                         ids=[f"{n}-{k}" for n, k in CASES if n != "SGD" or "momentum" in k])
def test_state_dict_layout_is_torchs(name, kw):
    init, grads = _init(5), _grads(6, steps=3)
    _, ours = _lamina_run(lambda p: getattr(optim, name)(p, **kw), init, grads)
    _, ref = _torch_run(lambda p: getattr(torch.optim, name)(p, **kw), init, grads)
    a, b = ours.state_dict(), ref.state_dict()
    assert sorted(a) == ["param_groups", "state"]
    assert sorted(a["state"]) == sorted(b["state"]) == [0, 1, 2]
    for i in b["state"]:
        assert sorted(a["state"][i]) == sorted(b["state"][i])
        for k, v in b["state"][i].items():
            np.testing.assert_allclose(np.asarray(a["state"][i][k], dtype=np.float64),
                                       v.detach().numpy() if hasattr(v, "detach") else v,
                                       rtol=1e-9, atol=1e-12)
    assert a["param_groups"][0]["params"] == b["param_groups"][0]["params"] == [0, 1, 2]
    for k in ("lr", "weight_decay", "maximize"):
        assert a["param_groups"][0][k] == b["param_groups"][0][k]


def test_state_dict_is_a_copy():
    w = Parameter(np.ones(3))
    opt = optim.Adam([w], lr=0.1)
    w.grad = lamina.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    opt.step()
    assert sd["state"][0]["step"] == 1
    assert not np.array_equal(sd["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_add_param_group_matches_torch():
    init, grads = _init(7), _grads(8, steps=10)

    def run(lib, opt_cls, tensor):
        a, b, c = (tensor(w.copy()) for w in init)
        opt = opt_cls([a, b], lr=0.05, momentum=0.9)
        opt.add_param_group({"params": [c], "lr": 0.2, "momentum": 0.5})
        assert len(opt.param_groups) == 2 and opt.param_groups[1]["dampening"] == 0
        for gs in grads:
            for p, g in zip((a, b, c), gs):
                p.grad = lib.tensor(g.copy())
            opt.step()
        return [np.array(p.detach().numpy() if hasattr(p, "numpy") else p.data) for p in (a, b, c)]

    ours = run(lamina, optim.SGD, Parameter)
    ref = run(torch, torch.optim.SGD, lambda w: torch.tensor(w, requires_grad=True))
    for x, y in zip(ours, ref):
        np.testing.assert_allclose(x, y, rtol=RTOL)


def test_adagrad_state_exists_before_the_first_step_and_in_added_groups():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = optim.Adagrad([a], initial_accumulator_value=0.5)
    opt.add_param_group({"params": [b]})
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 0 and sd["state"][1]["sum"].tolist() == [0.5] * 3


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.RMSprop(p, lr=-1), "lr"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "alpha"),
    (lambda p: optim.RMSprop(p, momentum=-1), "momentum"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "lr_decay"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda p: optim.Adadelta(p, rho=1.5), "rho"),
    (lambda p: optim.Adadelta(p, eps=-1), "eps"),
    (lambda p: optim.Adadelta(p, weight_decay=float("nan")), "weight_decay"),
])
def test_bad_hyperparameters_name_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.ones(2))])


def test_load_state_dict_rejects_a_mismatched_layout():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = optim.RMSprop([a, b])
    a.grad, b.grad = lamina.tensor(np.ones(2)), lamina.tensor(np.ones(3))
    opt.step()
    with pytest.raises(ValueError, match="parameter"):
        optim.RMSprop([a]).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="shape"):
        optim.RMSprop([b, a]).load_state_dict(opt.state_dict())


@pytest.mark.parametrize("make", [lambda p: optim.RMSprop(p, lr=0.01),
                                  lambda p: optim.Adagrad(p, lr=0.1),
                                  lambda p: optim.Adadelta(p),
                                  lambda p: optim.SGD(p, lr=0.1, maximize=True)])
def test_compiled_step_with_an_eager_only_optimizer_matches_eager(make):
    """An optimizer without a native lowering still trains under lamina.compile, and gives the
    eager trajectory (the compiler calls its step())."""
    import lamina.nn.functional as F
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4))
    y = rng.integers(0, 3, 8)

    def model():
        lamina.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).double()

    eager = model()
    opt = make(list(eager.parameters()))
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(eager(lamina.tensor(x)), y).backward()
        opt.step()
    compiled = model()
    step = lamina.compile(compiled, F.cross_entropy, make(list(compiled.parameters())))
    for _ in range(3):
        step(lamina.tensor(x), lamina.tensor(y))
    for a, b in zip(eager.parameters(), compiled.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-9, atol=1e-12)


def test_torch_only_keywords_are_accepted_and_differentiable_is_refused():
    w = Parameter(np.ones(2))
    optim.SGD([w], lr=0.1, foreach=False, fused=None)
    optim.Adam([w], foreach=True, capturable=False)
    optim.RMSprop([w], foreach=None)
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad, optim.Adadelta):
        with pytest.raises(NotImplementedError, match="differentiable"):
            cls([w], lr=0.1, differentiable=True)


_RESUME = [
    (optim.Adam, dict(lr=0.01, amsgrad=True), "MultiStepLR", dict(milestones=[2, 6])),
    (optim.AdamW, dict(lr=0.01, maximize=False), "CosineAnnealingLR", dict(T_max=5)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True), "OneCycleLR", dict(max_lr=0.1, total_steps=10)),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.01), "ExponentialLR", dict(gamma=0.9)),
    (optim.Adadelta, dict(), "ReduceLROnPlateau", dict(patience=0)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), "LambdaLR", dict(lr_lambda=lambda e: 0.9 ** e)),
]


@pytest.mark.parametrize("cls,kw,sched,skw", _RESUME, ids=[f"{c.__name__}-{s}" for c, _, s, _ in _RESUME])
def test_training_resumed_from_a_lamina_save_file_is_bit_identical(tmp_path, cls, kw, sched, skw):
    """model + optimizer + scheduler state through lamina.save / lamina.load, then 6 more steps:
    the same bits as 10 uninterrupted steps."""
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((10, 4, 3)), rng.standard_normal((10, 4, 2))
    plateau = sched == "ReduceLROnPlateau"

    def make(seed):
        lamina.manual_seed(seed)
        m = nn.Linear(3, 2).double()
        o = cls(m.parameters(), **kw)
        return m, o, getattr(optim.lr_scheduler, sched)(o, **skw)

    def train(m, o, s, steps):
        for i in steps:
            o.zero_grad()
            loss = ((m(lamina.tensor(xs[i])) - lamina.tensor(ys[i])) ** 2).mean()
            loss.backward()
            o.step()
            s.step(loss.item()) if plateau else s.step()

    m, o, s = make(0)
    train(m, o, s, range(10))
    full = [p.detach().numpy().copy() for p in m.parameters()]

    m, o, s = make(0)
    train(m, o, s, range(4))
    path = tmp_path / "checkpoint.pt"
    lamina.save({"model": m.state_dict(), "optimizer": o.state_dict(), "scheduler": s.state_dict(),
                 "epoch": 4}, path)
    ck = lamina.load(path)
    m2, o2, s2 = make(1)   # different initial weights: everything must come from the file
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["optimizer"])
    s2.load_state_dict(ck["scheduler"])
    assert ck["epoch"] == 4 and s2.get_last_lr() == s.get_last_lr()
    train(m2, o2, s2, range(4, 10))
    for a, p in zip(full, m2.parameters()):
        np.testing.assert_array_equal(p.data, a)


def test_a_user_written_optimizer_runs_like_torchs():
    """The torch pattern: subclass Optimizer, keep per-parameter state in self.state[p]."""

    def make(base, lib):
        class HeavyBall(base):
            def __init__(self, params, lr=0.1, beta=0.5):
                super().__init__(params, dict(lr=lr, beta=beta))

            def step(self, closure=None):
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is None:
                            continue
                        state = self.state[p]
                        if "velocity" not in state:
                            state["velocity"] = lib.zeros(p.shape, dtype=p.dtype)
                            state["step"] = 0
                        state["step"] += 1
                        v = state["velocity"]
                        v.data[...] = group["beta"] * v.data + p.grad.data
                        p.data[...] = p.data - group["lr"] * v.data
        return HeavyBall

    init, grads = _init(9), _grads(10, steps=6)
    ours, opt = _lamina_run(lambda p: make(optim.Optimizer, lamina)(p), init, grads)
    w = [torch.tensor(a.copy()) for a in init]
    ref_opt = make(torch.optim.Optimizer, torch)(w)
    for gs in grads:
        for p, g in zip(w, gs):
            p.grad = torch.tensor(g)
        ref_opt.step()
    for a, b in zip(ours, w):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-12)
    assert opt.state[ours[0]]["step"] == 6
    sd = opt.state_dict()
    assert sorted(sd["state"][0]) == ["step", "velocity"]
    fresh = make(optim.Optimizer, lamina)([Parameter(a.detach().numpy().copy()) for a in ours])
    fresh.load_state_dict(sd)
    assert isinstance(fresh.state[fresh.param_groups[0]["params"][0]]["velocity"], lamina.Tensor)


def test_builtin_state_is_reachable_by_parameter():
    w = Parameter(np.ones(2))
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    assert w not in opt.state
    w.grad = lamina.tensor(np.ones(2))
    opt.step()
    assert w in opt.state and opt.state[w]["momentum_buffer"].tolist() == [1.0, 1.0]
