"""kl_divergence(p, q) for pairs of the same kind, PyTorch's closed forms."""
from ..tensor import Tensor
from .kinds import Bernoulli, Categorical, Normal, Uniform

_KL = {}


def register_kl(type_p, type_q):
    """Decorator registering fn(p, q) as KL(p || q) for these two distribution types."""
    def deco(fn):
        _KL[(type_p, type_q)] = fn
        return fn
    return deco


def kl_divergence(p, q):
    fn = _KL.get((type(p), type(q)))
    if fn is None:
        raise NotImplementedError(f"kl_divergence: no formula for {type(p).__name__} and {type(q).__name__}")
    return fn(p, q)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale) ** 2
    t1 = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


def _where(cond, value, t):
    import numpy as np
    from ..functions import where
    return where(Tensor._wrap(np.broadcast_to(cond, tuple(t.shape))), Tensor._wrap(np.asarray(value, t.dtype)), t)


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t = _where(q.probs.detach().numpy() == 0, float("inf"), t)
    t = _where(p.probs.detach().numpy() == 0, 0.0, t)
    return t.sum(-1)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    from ..nn.functional import softplus
    t1 = p.probs * (softplus(-q.logits) - softplus(-p.logits))
    t1 = _where(q.probs.detach().numpy() == 0, float("inf"), t1)
    t1 = _where(p.probs.detach().numpy() == 0, 0.0, t1)
    t2 = (1 - p.probs) * (softplus(q.logits) - softplus(p.logits))
    t2 = _where(q.probs.detach().numpy() == 1, float("inf"), t2)
    t2 = _where(p.probs.detach().numpy() == 1, 0.0, t2)
    return t1 + t2


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    import numpy as np
    result = ((q.high - q.low) / (p.high - p.low)).log()
    outside = (q.low.detach().numpy() > p.low.detach().numpy()) | (q.high.detach().numpy() < p.high.detach().numpy())
    return _where(outside, np.inf, result)
