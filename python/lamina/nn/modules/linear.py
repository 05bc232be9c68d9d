import math

import numpy as np

from .. import functional as F
from .. import init
from ..module import Module, ModuleShapeError, Parameter, new_weight_and_bias
from ...ops.nn_extra import check_dense_embedding
from ...tensor import get_default_dtype


class Identity(Module):
    def forward(self, x):
        return x


class Linear(Module):
    """y = x W^T + b with PyTorch's default init (kaiming_uniform a=sqrt(5))."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        if device is not None and str(device) != "cpu":
            raise ValueError(f"device: lamina runs on the CPU, expected None or 'cpu', got {device!r}")
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if int(v) != v or v < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {v}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        new_weight_and_bias(self, (out_features, in_features), out_features, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        if self.in_features == 0:
            # No inputs: the weight is empty and the bias bound 1/sqrt(0) is taken as 0 (PyTorch).
            if self.bias is not None:
                self.bias._data[...] = 0
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


class Unflatten(Module):
    """Dim `dim` becomes the dims `unflattened_size` (the inverse of Flatten)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        d = self.dim + x.ndim if self.dim < 0 else self.dim
        if not 0 <= d < x.ndim:
            raise IndexError(f"dim: Unflatten expected a dim in [{-x.ndim}, {x.ndim - 1}], got {self.dim}")
        return x.reshape(tuple(x.shape[:d]) + self.unflattened_size + tuple(x.shape[d + 1:]))

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Embedding(Module):
    """A lookup table: ``weight`` (num_embeddings, embedding_dim) initialized N(0, 1), the row at
    ``padding_idx`` zero and never updated by gradients.

    >>> import lamina
    >>> emb = lamina.nn.Embedding(10, 3, padding_idx=0)
    >>> emb(lamina.tensor([[0, 4], [9, 0]])).shape, emb.weight[0].tolist()
    (lamina.Size([2, 2, 3]), [0.0, 0.0, 0.0])
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None,
                 dtype=None):
        super().__init__()
        for name, v in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if int(v) != v or v < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {v}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"padding_idx: expected a value in [-{self.num_embeddings}, "
                                 f"{self.num_embeddings}), got {padding_idx}")
            padding_idx = padding_idx % self.num_embeddings
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        check_dense_embedding(sparse)       # at construction, not at the first forward
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        if _weight is None:
            self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=dt),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            w = _weight._data if hasattr(_weight, "_data") else np.asarray(_weight)
            if w.shape != (self.num_embeddings, self.embedding_dim):
                raise ValueError(f"_weight: expected shape ({self.num_embeddings}, {self.embedding_dim}), "
                                 f"got {tuple(w.shape)}")
            self.weight = Parameter(np.array(w, dtype=w.dtype if w.dtype.kind == "f" else dt),
                                    requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings: expected a 2-d tensor, got shape {tuple(embeddings.shape)}")
        rows, dim = embeddings.shape
        return cls(rows, dim, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=embeddings, _freeze=freeze)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
