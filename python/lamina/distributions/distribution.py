"""The Distribution base: shapes, sampling entry points and argument validation."""
import numpy as np

from ..tensor import Size, Tensor, get_default_dtype, no_grad


def as_tensor(v, like=None):
    if isinstance(v, Tensor):
        return v
    dt = like.dtype if isinstance(like, Tensor) and like.dtype.kind == "f" else get_default_dtype()
    return Tensor._wrap(np.asarray(v, dtype=dt))


def broadcast_all(*values):
    """Numbers and tensors broadcast to one shape (numbers take the tensors' float dtype)."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    ts = [as_tensor(v, like) for v in values]
    shape = np.broadcast_shapes(*(tuple(t.shape) for t in ts))
    return [t if tuple(t.shape) == shape else t.expand(*shape) for t in ts]


class Distribution:
    has_rsample = False
    _validate_default = True

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape, self._event_shape = Size(batch_shape), Size(event_shape)
        self._validate_args = self._validate_default if validate_args is None else bool(validate_args)

    @staticmethod
    def set_default_validate_args(value):
        Distribution._validate_default = bool(value)

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    def _extended_shape(self, sample_shape=()):
        return Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def sample(self, sample_shape=()):
        with no_grad():
            return self.rsample(sample_shape)

    def sample_n(self, n):
        return self.sample((n,))

    def rsample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampling (rsample)")

    @property
    def stddev(self):
        return self.variance.sqrt()

    def perplexity(self):
        return self.entropy().exp()

    def _check(self, name, value, ok, constraint):
        if self._validate_args and not bool(np.all(ok)):
            raise ValueError(f"Expected parameter {name} ({type(value).__name__} of shape {tuple(np.shape(value))}) "
                             f"of distribution {type(self).__name__} to satisfy the constraint {constraint}, "
                             f"but found invalid values")

    def __repr__(self):
        params = ", ".join(f"{k}: {v if getattr(v, 'numel', lambda: 2)() == 1 else Size(v.shape)}"
                           for k, v in self._repr_params())
        return f"{type(self).__name__}({params})"

    def _repr_params(self):
        return []
