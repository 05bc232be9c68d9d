"""Adamax, NAdam, RAdam, ASGD, Rprop, LBFGS and the remaining lr schedulers against PyTorch 2.13:
same start, same gradients, same numbers (float64 to rounding, float32 to a few ulps)."""
import copy
import warnings

import numpy as np
import pytest
import torch

import lamina
from lamina.optim import lr_scheduler as lsch

RNG = np.random.default_rng(1234)
A = RNG.standard_normal((7, 5))
B = RNG.standard_normal(7)
W0 = [RNG.standard_normal(5), RNG.standard_normal((2, 3))]


def _grads(ws):
    """A fixed least-squares loss on the first tensor, a quartic on the second (so gradients
    change sign and size over the run), computed in float64 from the current values."""
    w1, w2 = (np.asarray(w, dtype=np.float64) for w in ws)
    return [A.T @ (A @ w1 - B) + 0.1 * w1 ** 3, w2 ** 3 - 0.5 * w2]


def _pair(dtype):
    mine = [lamina.nn.Parameter(w.astype(dtype)) for w in W0]
    theirs = [torch.nn.Parameter(torch.tensor(w.astype(dtype))) for w in W0]
    return mine, theirs


def _set_grads(mine, theirs, dtype, sign=1.0):
    """sign=-1 gives the gradients of -loss, which maximize=True climbs to the same minimum."""
    for p, g in zip(mine, _grads([p._data for p in mine])):
        p.grad = lamina.tensor((sign * g).astype(dtype))
    for p, g in zip(theirs, _grads([p.detach().numpy() for p in theirs])):
        p.grad = torch.tensor((sign * g).astype(dtype))


def _state_value(v):
    return np.asarray(v.detach().numpy() if isinstance(v, torch.Tensor) else getattr(v, "_data", v), dtype=np.float64)


def _compare(mine, theirs, opt, topt, rtol, atol):
    for p, q in zip(mine, theirs):
        np.testing.assert_allclose(p._data, q.detach().numpy(), rtol=rtol, atol=atol)
    for p, q in zip(mine, theirs):
        s, t = opt.state[p], topt.state[q]
        assert set(s) == set(t)
        for k in t:
            np.testing.assert_allclose(_state_value(s[k]), _state_value(t[k]), rtol=rtol, atol=atol, err_msg=k)


CASES = [
    ("Adamax", {}),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("ASGD", dict(lr=0.05)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=5, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, t0=3, maximize=True)),
    ("Rprop", dict(lr=0.05)),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2), maximize=True)),
]
# float32: torch's fused multiply-adds are emulated, so most runs agree bit for bit; NAdam's two
# divisions per step let a last-bit difference grow a little over the run
F32_RTOL = {"NAdam": 2e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw", CASES)
def test_same_steps_as_torch(name, kw, dtype):
    mine, theirs = _pair(dtype)
    opt = getattr(lamina.optim, name)(mine, **kw)
    topt = getattr(torch.optim, name)(theirs, foreach=False, **kw)
    rtol = 1e-12 if dtype == np.float64 else F32_RTOL.get(name, 1e-6)
    atol = 1e-13 if dtype == np.float64 else 1e-6
    for _ in range(25):
        _set_grads(mine, theirs, dtype, -1.0 if kw.get("maximize") else 1.0)
        opt.step()
        topt.step()
        _compare(mine, theirs, opt, topt, rtol, atol)
    assert all(np.isfinite(p._data).all() for p in mine)
    assert not np.allclose(mine[0]._data, W0[0], atol=1e-3)   # the run went somewhere
    assert opt.param_groups[0].keys() == topt.param_groups[0].keys()
    for k, v in topt.defaults.items():
        assert k == "foreach" or opt.defaults[k] == v, k


@pytest.mark.parametrize("name,kw", [c for c in CASES if c[1]])
def test_state_dict_round_trip(name, kw):
    mine, _ = _pair(np.float64)
    ref = [lamina.nn.Parameter(w.copy()) for w in W0]
    opt = getattr(lamina.optim, name)(mine, **kw)
    ref_opt = getattr(lamina.optim, name)(ref, **kw)
    for _ in range(4):
        for ps, o in ((mine, opt), (ref, ref_opt)):
            for p, g in zip(ps, _grads([p._data for p in ps])):
                p.grad = lamina.tensor(g)
            o.step()
    saved = copy.deepcopy(opt.state_dict())
    resumed = getattr(lamina.optim, name)(mine, **kw)
    resumed.load_state_dict(saved)
    for _ in range(4):
        for ps, o in ((mine, resumed), (ref, ref_opt)):
            for p, g in zip(ps, _grads([p._data for p in ps])):
                p.grad = lamina.tensor(g)
            o.step()
    for p, q in zip(mine, ref):
        np.testing.assert_array_equal(p._data, q._data)
    # torch's state_dict loads into lamina's optimizer (0-dim tensors for the scalar state)
    _, theirs = _pair(np.float64)
    topt = getattr(torch.optim, name)(theirs, **kw)
    _set_grads(mine, theirs, np.float64)
    topt.step()
    tsd = topt.state_dict()
    fresh = getattr(lamina.optim, name)(mine, **kw)
    fresh.load_state_dict({"state": {i: {k: (lamina.tensor(v.numpy()) if v.dim() else v.item())
                                          for k, v in s.items()} for i, s in tsd["state"].items()},
                           "param_groups": tsd["param_groups"]})
    assert fresh.state[mine[0]]["step"] == 1
    assert set(fresh.state_dict()["state"][0]) == set(tsd["state"][0])


@pytest.mark.parametrize("name,kw,arg", [
    ("Adamax", dict(lr=-1.0), "lr"), ("Adamax", dict(betas=(1.0, 0.9)), "betas[0]"),
    ("Adamax", dict(eps=-1e-8), "eps"), ("NAdam", dict(betas=(0.9, 1.5)), "betas[1]"),
    ("NAdam", dict(momentum_decay=-1.0), "momentum_decay"), ("NAdam", dict(weight_decay=-0.1), "weight_decay"),
    ("RAdam", dict(lr=-0.1), "lr"), ("ASGD", dict(weight_decay=-1.0), "weight_decay"),
    ("ASGD", dict(lr=-1.0), "lr"), ("Rprop", dict(etas=(1.5, 1.2)), "etas"), ("Rprop", dict(lr=-1.0), "lr"),
    ("LBFGS", dict(lr=-1.0), "lr"),
])
def test_bad_arguments_raise_like_torch(name, kw, arg):
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2))], **kw)
    with pytest.raises(ValueError, match=arg.replace("[", r"\[").replace("]", r"\]")):
        getattr(lamina.optim, name)([lamina.nn.Parameter(np.zeros(2))], **kw)


def test_differentiable_is_refused_and_capturable_accepted():
    w = lamina.nn.Parameter(np.zeros(2))
    with pytest.raises(NotImplementedError, match="differentiable"):
        lamina.optim.NAdam([w], differentiable=True)
    lamina.optim.RAdam([w], capturable=True, foreach=True)


# ---- LBFGS: the time_sequence_prediction loop (closure re-evaluates the model) ----

def _lbfgs_run(lib, kw, steps=2):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 3))
    y = np.sin(x.sum(axis=1, keepdims=True))
    w1, b1 = rng.standard_normal((8, 3)) * 0.5, rng.standard_normal(8) * 0.1
    w2, b2 = rng.standard_normal((1, 8)) * 0.5, rng.standard_normal(1) * 0.1
    model = lib.nn.Sequential(lib.nn.Linear(3, 8), lib.nn.Tanh(), lib.nn.Linear(8, 1)).double()
    if lib is torch:
        tensor = torch.tensor
        params = list(model.parameters())
        with torch.no_grad():
            for p, v in zip(params, (w1, b1, w2, b2)):
                p.copy_(tensor(v))
    else:
        tensor = lamina.tensor
        params = list(model.parameters())
        for p, v in zip(params, (w1, b1, w2, b2)):
            p._data[...] = v
    opt = lib.optim.LBFGS(model.parameters(), **kw)
    crit = lib.nn.MSELoss()
    xin, target = tensor(x), tensor(y)
    losses = []   # every evaluation's loss, as the example prints them

    def closure():
        opt.zero_grad()
        loss = crit(model(xin), target)
        losses.append(loss.item())
        loss.backward()
        return loss
    for _ in range(steps):
        opt.step(closure)
    final = [np.array(p.detach().numpy() if lib is torch else p._data) for p in params]
    return losses, final, opt


@pytest.mark.parametrize("kw", [dict(lr=0.8, max_iter=12), dict(lr=1, line_search_fn="strong_wolfe"),
                                dict(lr=0.5, history_size=3, max_iter=7),
                                dict(line_search_fn="strong_wolfe", history_size=4, max_iter=15, max_eval=18)])
def test_lbfgs_same_losses_as_torch(kw):
    # 2 steps of up to 20 iterations: nearer the minimum the line search amplifies the last-bit
    # differences of the two libraries' forward passes and dot products (~100x per step), so much
    # longer runs still take the same iterations and evaluations but agree less than 1e-10
    mine, mine_params, opt = _lbfgs_run(lamina, kw)
    theirs, their_params, topt = _lbfgs_run(torch, kw)
    assert len(mine) == len(theirs)
    np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-14)
    for a, b in zip(mine_params, their_params):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    s, t = next(iter(opt.state.values())), next(iter(topt.state.values()))
    assert (s["func_evals"], s["n_iter"]) == (t["func_evals"], t["n_iter"])
    assert mine[-1] < mine[0]


def test_lbfgs_needs_closure_and_one_group():
    w = lamina.nn.Parameter(np.ones(2))
    opt = lamina.optim.LBFGS([w])
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="one parameter group"):
        lamina.optim.LBFGS([{"params": [w]}, {"params": [lamina.nn.Parameter(np.ones(2))]}])
    with pytest.raises(ValueError, match="line_search_fn"):
        lamina.optim.LBFGS([w], line_search_fn="backtracking")


# ---- schedulers: the lr sequence (and cycled momentum) step for step ----

def _opts(optimizer="SGD", lrs=(0.1, 0.02), **kw):
    mine = getattr(lamina.optim, optimizer)([{"params": [lamina.nn.Parameter(np.zeros(1))], "lr": lr}
                                             for lr in lrs], **kw)
    theirs = getattr(torch.optim, optimizer)([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr}
                                              for lr in lrs], **kw)
    return mine, theirs


def _sequence(lib_sched, opt, make, steps):
    sched = make(lib_sched, opt)
    out = []
    for _ in range(steps):
        out.append([(g["lr"], g.get("momentum"), g.get("betas", (None,))[0]) for g in opt.param_groups]
                   + [tuple(sched.get_last_lr())])
        opt.step()
        sched.step()
    return out, sched


SCHEDULES = {
    "poly": (dict(), lambda S, o: S.PolynomialLR(o, total_iters=30, power=2.0)),
    "poly_default": (dict(), lambda S, o: S.PolynomialLR(o)),
    "warm_restarts": (dict(), lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=7, eta_min=1e-3)),
    "warm_restarts_mult": (dict(), lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2)),
    "cyclic_triangular": (dict(momentum=0.9), lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.05],
                                                                      step_size_up=4, step_size_down=6)),
    "cyclic_triangular2": (dict(momentum=0.9), lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=5,
                                                                       mode="triangular2")),
    "cyclic_exp_range": (dict(momentum=0.9), lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="exp_range",
                                                                     gamma=0.97, base_momentum=0.7,
                                                                     max_momentum=0.95)),
    "cyclic_no_momentum": (dict(), lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=4, cycle_momentum=False)),
    "cyclic_scale_fn": (dict(momentum=0.5), lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=4,
                                                                    scale_fn=lambda x: 0.9 ** x,
                                                                    scale_mode="iterations")),
    "sequential": (dict(), lambda S, o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                                           S.CosineAnnealingLR(o, T_max=20, eta_min=1e-4),
                                                           S.ExponentialLR(o, gamma=0.9)],
                                                       milestones=[5, 25])),
    "sequential_poly": (dict(), lambda S, o: S.SequentialLR(o, [S.ConstantLR(o, factor=0.5, total_iters=3),
                                                                S.PolynomialLR(o, total_iters=40, power=0.5)],
                                                            milestones=[10])),
    "chained": (dict(), lambda S, o: S.ChainedScheduler([S.ConstantLR(o, factor=0.3, total_iters=4),
                                                         S.ExponentialLR(o, gamma=0.95),
                                                         S.MultiStepLR(o, milestones=[10, 30], gamma=0.5)])),
    "chained_poly_linear": (dict(), lambda S, o: S.ChainedScheduler([S.LinearLR(o, 0.2, total_iters=6),
                                                                     S.PolynomialLR(o, total_iters=30)], o)),
}


@pytest.mark.parametrize("key", sorted(SCHEDULES))
def test_scheduler_sequence_as_torch(key):
    kw, make = SCHEDULES[key]
    mine_opt, their_opt = _opts(**kw)
    mine, sched = _sequence(lsch, mine_opt, make, 50)
    theirs, tsched = _sequence(torch.optim.lr_scheduler, their_opt, make, 50)
    assert len(mine) == len(theirs)
    for i, (a, b) in enumerate(zip(mine, theirs)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(np.array(x, dtype=float), np.array(y, dtype=float), rtol=1e-15, atol=0,
                                       err_msg=f"step {i}")
    assert getattr(sched, "last_epoch", None) == getattr(tsched, "last_epoch", None)


def test_cyclic_lr_cycles_adam_beta1():
    mine_opt, their_opt = _opts("Adam", lrs=(0.1,))
    make = lambda S, o: S.CyclicLR(o, 0.001, 0.01, step_size_up=3, mode="triangular2")  # noqa: E731
    mine, _ = _sequence(lsch, mine_opt, make, 20)
    theirs, _ = _sequence(torch.optim.lr_scheduler, their_opt, make, 20)
    np.testing.assert_allclose(np.array([r[0][::2] for r in mine], dtype=float),
                               np.array([r[0][::2] for r in theirs], dtype=float), rtol=1e-15)


def test_warm_restarts_with_explicit_epochs():
    mine_opt, their_opt = _opts()
    s = lsch.CosineAnnealingWarmRestarts(mine_opt, T_0=4, T_mult=2)
    t = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(their_opt, T_0=4, T_mult=2)
    for epoch in np.arange(0, 30, 0.37):
        s.step(float(epoch))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # torch's epoch-argument deprecation notice
            t.step(float(epoch))
        assert s.get_last_lr() == pytest.approx(t.get_last_lr(), rel=1e-15, abs=0)
    with pytest.raises(ValueError, match="epoch"):
        s.step(-1)


@pytest.mark.parametrize("key", ["sequential", "chained", "cyclic_triangular2", "warm_restarts_mult"])
def test_scheduler_state_dict_resumes(key):
    kw, make = SCHEDULES[key]
    ref_opt, _ = _opts(**kw)
    ref, _ = _sequence(lsch, ref_opt, make, 30)
    opt, _ = _opts(**kw)
    sched = make(lsch, opt)
    for _ in range(12):
        opt.step()
        sched.step()
    saved = copy.deepcopy(sched.state_dict())
    opt_saved = opt.state_dict()
    opt2, _ = _opts(**kw)
    opt2.load_state_dict(opt_saved)
    sched2 = make(lsch, opt2)
    sched2.load_state_dict(saved)
    for g, lr in zip(opt2.param_groups, sched.get_last_lr()):
        g["lr"] = lr
    rest = []
    for _ in range(18):
        rest.append(tuple(sched2.get_last_lr()))
        opt2.step()
        sched2.step()
    assert rest == [r[-1] for r in ref[12:]]


def test_scheduler_bad_arguments():
    opt, _ = _opts()
    with pytest.raises(ValueError, match="T_0"):
        lsch.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="T_mult"):
        lsch.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0)
    with pytest.raises(ValueError, match="mode"):
        lsch.CyclicLR(opt, 0.1, 1.0, mode="sawtooth")
    with pytest.raises(ValueError, match="cycle_momentum"):
        lsch.CyclicLR(lamina.optim.Adagrad([lamina.nn.Parameter(np.zeros(1))]), 0.1, 1.0)
    with pytest.raises(ValueError, match="max_lr"):
        lsch.CyclicLR(opt, 0.1, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="milestones"):
        lsch.SequentialLR(opt, [lsch.ConstantLR(opt), lsch.ConstantLR(opt)], milestones=[1, 2])
    other, _ = _opts()
    with pytest.raises(ValueError, match="same optimizer"):
        lsch.ChainedScheduler([lsch.ConstantLR(opt), lsch.ConstantLR(other)])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        lsch.SequentialLR(opt, [lsch.ConstantLR(opt), lsch.ReduceLROnPlateau(opt)], milestones=[2])
