"""lamina.optim vs torch.optim: same initial weights, same gradient sequence, ~20 steps, float64."""
import numpy as np
import pytest

import lamina
from lamina import optim
from lamina.nn import Parameter

from conftest import requires_torch, tolerance

SHAPES = [(3, 4), (7,), (1,)]


def _grads(seed, steps):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def _run_lamina(make_opt, init, grads, sched=None):
    params = [Parameter(w.copy()) for w in init]
    views = [p.detach().numpy() for p in params]  # the update must be in place: these stay the parameters
    opt = make_opt(params)
    s = sched(opt) if sched else None
    lrs = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = lamina.tensor(g.copy())
        opt.step()
        if s:
            lrs.append(opt.param_groups[0]["lr"])
            s.step()
    for p, v in zip(params, views):
        assert p.detach().numpy() is v
    return [p.detach().numpy() for p in params], lrs


def _run_torch(make_opt, init, grads, sched=None):
    torch = requires_torch()
    params = [torch.tensor(w.copy(), requires_grad=True) for w in init]
    opt = make_opt(params)
    s = sched(opt) if sched else None
    lrs = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g.copy())
        opt.step()
        if s:
            lrs.append(opt.param_groups[0]["lr"])
            s.step()
    return [p.detach().numpy() for p in params], lrs


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
    dict(lr=0.1, momentum=0.8, dampening=0.3),
    dict(lr=0.02, momentum=0.9, dampening=0.0, weight_decay=1e-3, nesterov=True),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=[str(k) for k in SGD_CASES])
def test_sgd_matches_torch(kw):
    torch = requires_torch()
    init = [np.random.default_rng(1).standard_normal(s) for s in SHAPES]
    grads = _grads(2, 20)
    ours, _ = _run_lamina(lambda p: optim.SGD(p, **kw), init, grads)
    ref, _ = _run_torch(lambda p: torch.optim.SGD(p, **kw), init, grads)
    for a, b, w in zip(ours, ref, init):
        np.testing.assert_allclose(a, b, **tolerance(np.float64, "optimizer"))
        assert not np.allclose(a, w)  # it moved


ADAM_CASES = [
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("Adam", dict(lr=3e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.05, amsgrad=True)),
]


@pytest.mark.parametrize("name,kw", ADAM_CASES, ids=[f"{n}-{k}" for n, k in ADAM_CASES])
def test_adam_matches_torch(name, kw):
    torch = requires_torch()
    init = [np.random.default_rng(3).standard_normal(s) for s in SHAPES]
    # gradients that shrink: amsgrad's max then differs from the plain second moment
    grads = [[g * (0.8 ** i) for g in gs] for i, gs in enumerate(_grads(4, 20))]
    ours, _ = _run_lamina(lambda p: getattr(optim, name)(p, **kw), init, grads)
    ref, _ = _run_torch(lambda p: getattr(torch.optim, name)(p, **kw), init, grads)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, **tolerance(np.float64, "optimizer"))


def test_amsgrad_changes_the_trajectory():
    init = [np.random.default_rng(3).standard_normal(s) for s in SHAPES]
    grads = [[g * (0.5 ** i) for g in gs] for i, gs in enumerate(_grads(4, 10))]
    a, _ = _run_lamina(lambda p: optim.Adam(p, lr=1e-2), init, grads)
    b, _ = _run_lamina(lambda p: optim.Adam(p, lr=1e-2, amsgrad=True), init, grads)
    assert not np.allclose(a[0], b[0])


SCHEDS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01)),  # 20 steps: goes past T_max and back up
]


@pytest.mark.parametrize("name,kw", SCHEDS, ids=[f"{n}-{k}" for n, k in SCHEDS])
def test_schedulers_match_torch(name, kw):
    torch = requires_torch()
    init = [np.random.default_rng(5).standard_normal(s) for s in SHAPES]
    grads = _grads(6, 20)
    ours, lrs = _run_lamina(lambda p: optim.SGD(p, lr=0.1, momentum=0.9), init, grads,
                            lambda o: getattr(optim.lr_scheduler, name)(o, **kw))
    ref, tlrs = _run_torch(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), init, grads,
                           lambda o: getattr(torch.optim.lr_scheduler, name)(o, **kw))
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=1e-15)
    assert len(set(np.round(lrs, 12))) > 1  # the schedule did change the lr
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, **tolerance(np.float64, "optimizer"))


def test_float32_params_updated_in_float32():
    p = Parameter(np.ones(5, dtype=np.float32))
    opt = optim.Adam([p], lr=0.1)
    p.grad = lamina.tensor(np.ones(5, dtype=np.float32))
    opt.step()
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, 0.9, rtol=1e-6)


def test_skips_params_without_grad_and_zero_grad():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = lamina.tensor(np.ones(2))
    opt.step()
    assert a.data.tolist() == [0.0, 0.0] and b.data.tolist() == [1.0, 1.0]
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and a.grad.data.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert a.grad is None


def test_param_groups_have_their_own_hyperparameters():
    a, b = Parameter(np.ones(1)), Parameter(np.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad = lamina.tensor(np.ones(1))
    b.grad = lamina.tensor(np.ones(1))
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_state_dict_round_trip_continues_the_trajectory():
    init = [np.random.default_rng(7).standard_normal(s) for s in SHAPES]
    grads = _grads(8, 10)
    full, _ = _run_lamina(lambda p: optim.Adam(p, lr=1e-2, amsgrad=True), init, grads)

    params = [Parameter(w.copy()) for w in init]
    opt = optim.Adam(params, lr=1e-2, amsgrad=True)
    for gs in grads[:5]:
        for p, g in zip(params, gs):
            p.grad = lamina.tensor(g)
        opt.step()
    sd = opt.state_dict()
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert sd["param_groups"][0]["params"] == [0, 1, 2]
    opt2 = optim.Adam(params, lr=1.0, amsgrad=True)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 1e-2
    for gs in grads[5:]:
        for p, g in zip(params, gs):
            p.grad = lamina.tensor(g)
        opt2.step()
    for a, b in zip(full, params):
        np.testing.assert_allclose(b.data, a, rtol=1e-12)


def test_bad_arguments():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    p.grad = lamina.tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"grad: expected shape \(2,\)"):
        opt.step()
