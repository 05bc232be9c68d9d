"""lamina.distributions against torch.distributions from the same seed: samples (the same
generator calls, so the same draws), log_prob, entropy, rsample gradients, kl_divergence,
shapes and argument validation."""
import numpy as np
import pytest

import lamina
from conftest import requires_torch


def _run(fw):
    D = fw.distributions
    fw.manual_seed(0)
    out = {}
    logits = fw.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    probs = fw.softmax(logits, -1)
    m = D.Categorical(probs)
    a = m.sample()
    out.update(cat_sample=a, cat_sample2=m.sample((2, 5)), cat_lp=m.log_prob(a), cat_ent=m.entropy(),
               cat_shape=(tuple(m.batch_shape), tuple(m.event_shape), tuple(m.sample((2,)).shape)))
    (-m.log_prob(a).sum() - m.entropy().sum()).backward()
    out["cat_grad"] = logits.grad
    c2 = D.Categorical(logits=fw.tensor([0.1, -0.4, 2.0, 0.0]))
    out.update(c2_probs=c2.probs, c2_sample=c2.sample((6,)), c2_lp=c2.log_prob(fw.tensor([0, 3])),
               kl_cat=D.kl_divergence(D.Categorical(probs), D.Categorical(logits=fw.tensor([[0.0, 1.0, 2.0, 3.0]] * 3))))
    loc = fw.tensor([0.3, -1.2], requires_grad=True)
    scale = fw.tensor([0.5, 2.0], requires_grad=True)
    n = D.Normal(loc, scale)
    out.update(n_sample=n.sample((3,)), n_lp=n.log_prob(fw.tensor([0.3, -1.0])), n_ent=n.entropy(),
               n_std=n.stddev, n_var=n.variance, n_std01=D.Normal(0.0, 1.0).log_prob(fw.tensor(0.5)))
    r = n.rsample((4,))
    (r * r).sum().backward()
    out.update(n_rsample=r, n_dloc=loc.grad, n_dscale=scale.grad,
               kl_normal=D.kl_divergence(D.Normal(loc, scale), D.Normal(0.0, 1.0)))
    b = D.Bernoulli(probs=fw.tensor([0.2, 0.9]))
    b2 = D.Bernoulli(logits=fw.tensor([0.3, -2.0]))
    out.update(b_sample=b.sample((3,)), b_lp=b.log_prob(fw.tensor([1.0, 0.0])), b_ent=b.entropy(), b_logits=b.logits,
               b2_probs=b2.probs, b2_sample=b2.sample(), kl_bern=D.kl_divergence(b, b2))
    u = D.Uniform(fw.tensor([0.0, 1.0]), fw.tensor([1.0, 3.0]))
    out.update(u_sample=u.sample((2,)), u_lp=u.log_prob(fw.tensor([0.5, 2.5])), u_ent=u.entropy(), u_mean=u.mean,
               u_var=u.variance, after=fw.randn(3))
    return {k: (v.detach().numpy() if hasattr(v, "detach") else v) for k, v in out.items()}


def test_distributions_match_torch():
    torch = requires_torch()
    got, want = _run(lamina), _run(torch)
    assert got.keys() == want.keys()
    for k in got:
        if isinstance(got[k], tuple):
            assert got[k] == want[k], k
        else:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-7, err_msg=k)


@pytest.mark.parametrize("bad", [
    lambda D: D.Normal(0.0, -1.0), lambda D: D.Bernoulli(1.5),
    lambda D: D.Uniform(0.0, 1.0).log_prob(lamina.tensor(1.5)), lambda D: D.Bernoulli(0.3).log_prob(lamina.tensor(0.5)),
    lambda D: D.Categorical(lamina.tensor([0.5, 0.5])).log_prob(lamina.tensor(2)),
    lambda D: D.Categorical(probs=lamina.tensor([0.5]), logits=lamina.tensor([0.1]))])
def test_invalid_arguments_raise(bad):
    with pytest.raises(ValueError):
        bad(lamina.distributions)


def test_reinforce_step_matches_torch():
    """pytorch/examples reinforcement_learning/reinforce.py's update, one episode of fixed states."""
    torch = requires_torch()

    def episode(fw):
        fw.manual_seed(3)
        policy = fw.nn.Sequential(fw.nn.Linear(4, 16), fw.nn.Dropout(0.6), fw.nn.ReLU(), fw.nn.Linear(16, 2))
        opt = fw.optim.Adam(policy.parameters(), lr=1e-2)
        states = fw.tensor(np.random.default_rng(5).standard_normal((6, 4)).astype(np.float32))
        log_probs, rewards = [], []
        policy.eval()  # dropout masks are drawn differently; everything else is compared
        for s in states:
            m = fw.distributions.Categorical(fw.softmax(policy(s.unsqueeze(0)), dim=1))
            action = m.sample()
            log_probs.append(m.log_prob(action))
            rewards.append(float(action.item()) - 0.5)
        R, returns = 0.0, []
        for r in rewards[::-1]:
            R = r + 0.99 * R
            returns.insert(0, R)
        returns = fw.tensor(returns)
        returns = (returns - returns.mean()) / (returns.std() + 1e-8)
        loss = fw.cat([-lp * R for lp, R in zip(log_probs, returns)]).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item(), rewards, [p.detach().numpy().copy() for p in policy.parameters()]
    (la, lr_, lp), (ta, tr, tp) = episode(lamina), episode(torch)
    assert lr_ == tr
    np.testing.assert_allclose(la, ta, rtol=1e-5)
    for a, b in zip(lp, tp):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
