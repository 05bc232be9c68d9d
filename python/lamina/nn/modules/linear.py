import math

import numpy as np

from .. import functional as F
from .. import init
from ..module import Module, ModuleShapeError, Parameter
from ...tensor import get_default_dtype


class Identity(Module):
    def forward(self, x):
        return x


class Linear(Module):
    """y = x W^T + b with PyTorch's default init (kaiming_uniform a=sqrt(5))."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if int(v) != v or v < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {v}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dt))
        if bias:
            self.bias = Parameter(np.empty((out_features,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.in_features == 0:
            return
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def _check(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ModuleShapeError(self, f"expected input with {self.in_features} features "
                                         f"(last dimension), got {x.shape[-1] if x.ndim else 'a scalar'} "
                                         f"(input shape {tuple(x.shape)})")

    def forward(self, x):
        self._check(x)
        return F.linear(x, self.weight, self.bias)

    def _forward_act(self, x, act):
        self._check(x)
        return F._linear_act(x, self.weight, self.bias, act)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
