"""Normal, Categorical, Bernoulli and Uniform, with PyTorch's formulas and sampling calls."""
import math

import numpy as np

from .. import factory
from ..tensor import Tensor, no_grad
from .distribution import Distribution, as_tensor, broadcast_all


def _data(t):
    return t.detach().numpy()


class Normal(Distribution):
    """Normal(loc, scale): sample / rsample (loc + scale * eps), log_prob, entropy, mean, variance."""
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(tuple(self.loc.shape), (), validate_args)
        self._check("loc", self.loc, np.isfinite(_data(self.loc)), "Real()")
        self._check("scale", self.scale, _data(self.scale) > 0, "GreaterThan(lower_bound=0.0)")

    mean = property(lambda self: self.loc)
    mode = property(lambda self: self.loc)
    stddev = property(lambda self: self.scale)
    variance = property(lambda self: self.scale ** 2)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            return factory.normal(self.loc.expand(*shape), self.scale.expand(*shape))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        eps = factory.empty(*shape, dtype=self.loc.dtype).normal_()
        return self.loc + eps * self.scale

    def log_prob(self, value):
        value = as_tensor(value, self.loc)
        return -((value - self.loc) ** 2) / (2 * self.variance) - self.scale.log() - math.log(math.sqrt(2 * math.pi))

    def entropy(self):
        return 0.5 + 0.5 * math.log(2 * math.pi) + self.scale.log()

    def _repr_params(self):
        return [("loc", self.loc), ("scale", self.scale)]


class Categorical(Distribution):
    """Categorical(probs=... or logits=...) over the last dim's K categories."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            probs = as_tensor(probs)
            if probs.ndim < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self._probs = probs / probs.sum(-1, keepdim=True)
            self._logits = None
        else:
            logits = as_tensor(logits)
            if logits.ndim < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self._logits = logits - logits.logsumexp(-1, keepdim=True)
            self._probs = None
        param = self._probs if probs is not None else self._logits
        self._num_events = param.shape[-1]
        super().__init__(tuple(param.shape[:-1]), (), validate_args)
        if probs is not None:
            p = _data(probs)
            self._check("probs", probs, (p >= 0) & np.isfinite(p), "Simplex()")

    @property
    def probs(self):
        if self._probs is None:
            from ..ops.activation import softmax
            self._probs = softmax(self._logits, -1)
        return self._probs

    @property
    def logits(self):
        if self._logits is None:
            eps = float(np.finfo(self._probs.dtype).eps)
            self._logits = self._probs.clamp(min=eps, max=1 - eps).log()
        return self._logits

    param_shape = property(lambda self: (self._probs if self._probs is not None else self._logits).shape)
    mean = property(lambda self: Tensor._wrap(np.full(tuple(self.batch_shape), np.nan, dtype=self.probs.dtype)))
    mode = property(lambda self: self.probs.argmax(-1))

    def sample(self, sample_shape=()):
        n = int(np.prod(tuple(sample_shape), dtype=np.int64))
        with no_grad():
            probs_2d = self.probs.reshape(-1, self._num_events)
            samples_2d = factory.multinomial(probs_2d, n, True).T
        return samples_2d.reshape(*self._extended_shape(sample_shape))

    def log_prob(self, value):
        v = value._data if isinstance(value, Tensor) else np.asarray(value)
        v = v.astype(np.int64)
        if self._validate_args and (v.size and (v.min() < 0 or v.max() >= self._num_events)):
            raise ValueError(f"Expected value argument to be within the support IntegerInterval(lower_bound=0, "
                             f"upper_bound={self._num_events - 1}) of the distribution Categorical")
        logits = self.logits
        shape = np.broadcast_shapes(v.shape + (1,), tuple(logits.shape))
        idx = np.broadcast_to(v[..., None], shape[:-1] + (1,))
        from ..functions import gather
        log_pmf = logits.expand(*shape) if tuple(logits.shape) != shape else logits
        return gather(log_pmf, -1, Tensor._wrap(np.ascontiguousarray(idx))).squeeze(-1)

    def entropy(self):
        min_real = float(np.finfo(self.logits.dtype).min)
        return -(self.logits.clamp(min=min_real) * self.probs).sum(-1)

    def enumerate_support(self, expand=True):
        values = factory.arange(self._num_events).reshape(-1, *([1] * len(self.batch_shape)))
        return values.expand(-1, *self.batch_shape) if expand else values

    def _repr_params(self):  # what has been computed so far, as PyTorch's (its lazy properties)
        return [(k, v) for k, v in (("probs", self._probs), ("logits", self._logits)) if v is not None]


class Bernoulli(Distribution):
    """Bernoulli(probs=... or logits=...): 1 with probability p."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (self._probs,) = broadcast_all(probs)
            self._logits = None
            p = _data(self._probs)
            super().__init__(tuple(self._probs.shape), (), validate_args)
            self._check("probs", self._probs, (p >= 0) & (p <= 1), "Interval(lower_bound=0.0, upper_bound=1.0)")
        else:
            (self._logits,) = broadcast_all(logits)
            self._probs = None
            super().__init__(tuple(self._logits.shape), (), validate_args)

    @property
    def probs(self):
        if self._probs is None:
            self._probs = self._logits.sigmoid()
        return self._probs

    @property
    def logits(self):
        if self._logits is None:
            eps = float(np.finfo(self._probs.dtype).eps)
            p = self._probs.clamp(min=eps, max=1 - eps)
            self._logits = p.log() - (-p).log1p()
        return self._logits

    mean = property(lambda self: self.probs)
    variance = property(lambda self: self.probs * (1 - self.probs))

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            return factory.bernoulli(self.probs.expand(*shape))

    def log_prob(self, value):
        from ..ops.loss import binary_cross_entropy_with_logits
        if self._validate_args and not np.isin(np.asarray(_data(as_tensor(value, self.logits))), (0, 1)).all():
            raise ValueError("Expected value argument to be within the support Boolean() of the distribution "
                             "Bernoulli, but found invalid values")
        logits, value = broadcast_all(self.logits, as_tensor(value, self.logits))
        return -binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        from ..ops.loss import binary_cross_entropy_with_logits
        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def _repr_params(self):  # what has been computed so far, as PyTorch's (its lazy properties)
        return [(k, v) for k, v in (("probs", self._probs), ("logits", self._logits)) if v is not None]


class Uniform(Distribution):
    """Uniform(low, high) on [low, high)."""
    has_rsample = True

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = broadcast_all(low, high)
        super().__init__(tuple(self.low.shape), (), validate_args)
        self._check("low", self.low, _data(self.low) < _data(self.high), "LessThan(upper_bound=high)")

    mean = property(lambda self: (self.high + self.low) / 2)
    stddev = property(lambda self: (self.high - self.low) / 12 ** 0.5)
    variance = property(lambda self: (self.high - self.low) ** 2 / 12)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        rand = factory.rand(*shape, dtype=self.low.dtype)
        return self.low + rand * (self.high - self.low)

    def log_prob(self, value):
        value = as_tensor(value, self.low)
        if self._validate_args:
            v = _data(value)
            if not ((v >= _data(self.low)) & (v < _data(self.high))).all():
                raise ValueError(f"Expected value argument (Tensor of shape {tuple(value.shape)}) to be within the "
                                 f"support [low, high) of the distribution Uniform, but found invalid values")
        inside = Tensor._wrap(((_data(self.low) <= _data(value)) & (_data(self.high) > _data(value)))
                              .astype(self.low.dtype))
        return inside.log() - (self.high - self.low).log()

    def entropy(self):
        return (self.high - self.low).log()

    def _repr_params(self):
        return [("low", self.low), ("high", self.high)]
