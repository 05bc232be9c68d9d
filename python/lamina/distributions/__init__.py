"""lamina.distributions: PyTorch's torch.distributions for the distributions training code
reaches for most (policy gradients, VAEs, probabilistic regression): Normal, Categorical,
Bernoulli, Uniform, and kl_divergence between two of a kind.

Sampling calls the same generator functions PyTorch's do (normal, multinomial, bernoulli, rand),
whose draws lamina reproduces, so one manual_seed gives PyTorch's samples; log_prob, entropy and
rsample are compositions of differentiable ops (rsample's reparameterized samples carry
gradients to the parameters).

>>> import lamina
>>> from lamina.distributions import Categorical
>>> m = Categorical(probs=lamina.tensor([0.25, 0.75]))
>>> round(m.log_prob(lamina.tensor(1)).exp().item(), 2)
0.75
"""
from .distribution import Distribution  # noqa: F401
from .kinds import Bernoulli, Categorical, Normal, Uniform  # noqa: F401
from .kl import kl_divergence, register_kl  # noqa: F401
