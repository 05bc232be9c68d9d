"""lamina.optim.lr_scheduler against torch.optim.lr_scheduler: the same lr (and momentum)
sequence per parameter group, get_last_lr(), and state_dict resumption."""
import math
import warnings

import numpy as np
import pytest

from lamina import optim
from lamina.nn import Parameter

torch = pytest.importorskip("torch")

STEPS = 30


def _lamina_opt(cls="SGD", **kw):
    groups = [{"params": [Parameter(np.zeros(2))]}, {"params": [Parameter(np.zeros(1))], "lr": 0.05}]
    return getattr(optim, cls)(groups, **kw)


def _torch_opt(cls="SGD", **kw):
    groups = [{"params": [torch.zeros(2, requires_grad=True)]},
              {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.05}]
    return getattr(torch.optim, cls)(groups, **kw)


def _trace(opt, sched, steps=STEPS, metrics=None):
    """(lrs, momenta, get_last_lr) after construction and after each step."""
    rows = []
    for i in range(steps + 1):
        g = opt.param_groups
        rows.append(([x["lr"] for x in g],
                     [x.get("momentum", x.get("betas", (None,))[0]) for x in g],
                     list(sched.get_last_lr())))
        if i < steps:
            opt.step()
            if metrics is None:
                sched.step()
            else:
                sched.step(metrics[i])
    return rows


def _lambda_half_every_3(epoch):
    return 0.5 ** (epoch // 3)


class Warmup:
    """A callable object: LambdaLR saves its __dict__ in state_dict."""

    def __init__(self, n):
        self.n = n

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.n)


CASES = [
    ("StepLR", dict(step_size=4, gamma=0.5), {}),
    ("MultiStepLR", dict(milestones=[3, 7, 7, 20], gamma=0.3), {}),
    ("ExponentialLR", dict(gamma=0.9), {}),
    ("LambdaLR", dict(lr_lambda=_lambda_half_every_3), {}),
    ("LambdaLR", dict(lr_lambda=[Warmup(5), _lambda_half_every_3]), {}),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.95), {}),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.001), {}),
    ("ConstantLR", dict(factor=0.4, total_iters=6), {}),
    ("LinearLR", dict(start_factor=0.1, total_iters=8), {}),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.2, total_iters=12), {}),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=STEPS), dict(momentum=0.9)),
    ("OneCycleLR", dict(max_lr=[1.0, 0.5], total_steps=STEPS, anneal_strategy="linear",
                        three_phase=True, pct_start=0.25), dict(momentum=0.9)),
    ("OneCycleLR", dict(max_lr=0.3, epochs=3, steps_per_epoch=10, div_factor=10.0,
                        final_div_factor=100.0, cycle_momentum=False), {}),
]


@pytest.mark.parametrize("name,kw,optkw", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_lr_sequence_matches_torch(name, kw, optkw):
    opt = _lamina_opt(lr=0.1, **optkw)
    ours = _trace(opt, getattr(optim.lr_scheduler, name)(opt, **kw))
    topt = _torch_opt(lr=0.1, **optkw)
    ref = _trace(topt, getattr(torch.optim.lr_scheduler, name)(topt, **kw))
    for (lr, mom, last), (tlr, tmom, tlast) in zip(ours, ref):
        np.testing.assert_allclose(lr, tlr, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(last, tlast, rtol=1e-12, atol=1e-15)
        assert lr == last
        if tmom[0] is not None:
            np.testing.assert_allclose(mom, tmom, rtol=1e-12)
    assert len({round(r[0][0], 12) for r in ours}) >= 2  # the schedule moved the lr


def test_onecycle_cycles_adam_beta1_like_torch():
    opt = _lamina_opt("Adam", lr=0.1)
    ours = _trace(opt, optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=STEPS))
    topt = _torch_opt("Adam", lr=0.1)
    ref = _trace(topt, torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.01, total_steps=STEPS))
    for (lr, beta1, _), (tlr, tbeta1, _) in zip(ours, ref):
        np.testing.assert_allclose(lr, tlr, rtol=1e-12)
        np.testing.assert_allclose(beta1, tbeta1, rtol=1e-12)
    assert opt.param_groups[0]["betas"][1] == 0.999


def test_onecycle_refuses_to_step_past_total_steps():
    opt = _lamina_opt(lr=0.1, momentum=0.9)
    s = optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        s.step()
    with pytest.raises(ValueError, match="total_steps=3"):
        s.step()


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.1, threshold_mode="abs", cooldown=2),
    dict(factor=0.5, patience=1, cooldown=1, min_lr=[0.02, 0.04]),
    dict(factor=0.2, patience=0, min_lr=0.01, eps=1e-3),
]


@pytest.mark.parametrize("kw", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_lr_on_plateau_matches_torch(kw):
    rng = np.random.default_rng(0)
    metrics = list(np.maximum.accumulate(rng.random(STEPS)) * -1 + 2 + 0.01 * rng.random(STEPS))
    metrics[::4] = [1.0] * len(metrics[::4])
    opt = _lamina_opt(lr=0.1)
    ours = _trace(opt, optim.lr_scheduler.ReduceLROnPlateau(opt, **kw), metrics=metrics)
    topt = _torch_opt(lr=0.1)
    ref = _trace(topt, torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw), metrics=metrics)
    for (lr, _, last), (tlr, _, tlast) in zip(ours, ref):
        np.testing.assert_allclose(lr, tlr, rtol=1e-12)
        np.testing.assert_allclose(last, tlast, rtol=1e-12)
    assert ours[-1][0] != ours[0][0]


def test_reduce_lr_on_plateau_accepts_a_tensor_metric_and_checks_arguments():
    import lamina
    opt = _lamina_opt(lr=0.1)
    s = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    s.step(lamina.tensor(1.0))
    s.step(lamina.tensor(2.0))
    assert s.get_last_lr() == [pytest.approx(0.01), pytest.approx(0.005)]
    with pytest.raises(ValueError, match="factor"):
        optim.lr_scheduler.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode"):
        optim.lr_scheduler.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="min_lr"):
        optim.lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1])


RESUMABLE = [c for c in CASES if c[0] != "MultiplicativeLR"] + [("ReduceLROnPlateau", dict(patience=1), {})]


@pytest.mark.parametrize("name,kw,optkw", RESUMABLE, ids=[f"{c[0]}-{i}" for i, c in enumerate(RESUMABLE)])
def test_state_dict_resumes_the_sequence(name, kw, optkw):
    metrics = [1.0 / (1 + i % 5) for i in range(STEPS)]
    plateau = name == "ReduceLROnPlateau"

    def advance(opt, s, rng):
        for i in rng:
            opt.step()
            s.step(metrics[i]) if plateau else s.step()

    opt = _lamina_opt(lr=0.1, **optkw)
    s = getattr(optim.lr_scheduler, name)(opt, **kw)
    advance(opt, s, range(STEPS))
    full = [g["lr"] for g in opt.param_groups]

    opt = _lamina_opt(lr=0.1, **optkw)
    s = getattr(optim.lr_scheduler, name)(opt, **kw)
    advance(opt, s, range(11))
    osd, ssd = opt.state_dict(), s.state_dict()
    assert "optimizer" not in ssd

    opt2 = _lamina_opt(lr=0.1, **optkw)
    s2 = getattr(optim.lr_scheduler, name)(opt2, **kw)
    opt2.load_state_dict(osd)
    s2.load_state_dict(ssd)
    assert s2.get_last_lr() == s.get_last_lr()
    advance(opt2, s2, range(11, STEPS))
    assert [g["lr"] for g in opt2.param_groups] == full


def test_lambda_lr_saves_callable_objects_but_not_functions():
    opt = _lamina_opt(lr=0.1)
    warm = Warmup(5)
    s = optim.lr_scheduler.LambdaLR(opt, [warm, _lambda_half_every_3])
    sd = s.state_dict()
    assert sd["lr_lambdas"] == [{"n": 5}, None]
    warm2 = Warmup(99)
    s2 = optim.lr_scheduler.LambdaLR(_lamina_opt(lr=0.1), [warm2, _lambda_half_every_3])
    s2.load_state_dict(sd)
    assert warm2.n == 5 and "lr_lambdas" in sd


def test_explicit_epoch_uses_the_closed_form():
    for name, kw in [("MultiStepLR", dict(milestones=[2, 5])), ("ExponentialLR", dict(gamma=0.5)),
                     ("StepLR", dict(step_size=2)), ("LinearLR", dict(start_factor=0.2, total_iters=10)),
                     ("ConstantLR", dict(factor=0.5, total_iters=4))]:
        opt, topt = _lamina_opt(lr=0.1), _torch_opt(lr=0.1)
        s = getattr(optim.lr_scheduler, name)(opt, **kw)
        ts = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s.step(6)
            ts.step(6)
        np.testing.assert_allclose(s.get_last_lr(), ts.get_last_lr(), rtol=1e-12)


def test_bad_arguments():
    opt = _lamina_opt(lr=0.1)
    with pytest.raises(TypeError, match="optimizer"):
        optim.lr_scheduler.StepLR(object(), step_size=1)
    with pytest.raises(ValueError, match="lr_lambda"):
        optim.lr_scheduler.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="total_steps"):
        optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="pct_start"):
        optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="cycle_momentum"):
        optim.lr_scheduler.OneCycleLR(_lamina_opt("Adagrad", lr=0.1), max_lr=1.0, total_steps=10)
    with pytest.raises(ValueError, match="milestones"):
        optim.lr_scheduler.MultiStepLR(opt, milestones=[1.5])
    assert math.isfinite(optim.lr_scheduler.ExponentialLR(opt, 0.5).get_last_lr()[0])
