"""Smaller layers PyTorch code reaches for: Softmax2d, CosineSimilarity, PairwiseDistance,
Bilinear, Mish, Dropout1d/3d, adaptive max pooling and 1-D adaptive average pooling,
ConvTranspose1d, Unfold, Fold, LocalResponseNorm, EmbeddingBag. Each forwards to lamina.nn.functional."""
import math

import numpy as np

from .. import functional as F
from .. import init
from ..module import Module, ModuleShapeError, Parameter, new_weight_and_bias
from ..normalization import Dropout
from .conv import ConvTranspose2d


class Softmax2d(Module):
    """softmax over the channels of (N, C, H, W) or (C, H, W)."""

    def forward(self, x):
        if x.ndim not in (3, 4):
            raise ModuleShapeError(self, f"expected a 3-D or 4-D input, got shape {tuple(x.shape)}")
        return F.softmax(x, -3)


class Mish(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.mish(x, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class CosineSimilarity(Module):
    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class Bilinear(Module):
    """y = x1^T A x2 + b, PyTorch's ``nn.Bilinear(in1_features, in2_features, out_features)``."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        if device is not None and str(device) != "cpu":
            raise ValueError(f"device: lamina runs on the CPU, expected None or 'cpu', got {device!r}")
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        new_weight_and_bias(self, (out_features, in1_features, in2_features), out_features, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x1, x2):
        return F.bilinear(x1, x2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Dropout1d(Dropout):
    """Zero whole channels of (N, C, L) or (C, L) input with probability p while training."""

    def forward(self, x):
        return F.dropout1d(x, self.p, self.training, self.inplace)


class Dropout3d(Dropout):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input with probability p while training."""

    def forward(self, x):
        return F.dropout3d(x, self.p, self.training, self.inplace)


class _AdaptivePool(Module):
    _fn = ""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        fn = getattr(F, self._fn)
        return fn(x, self.output_size, self.return_indices) if "max" in self._fn else fn(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(_AdaptivePool):
    _fn = "adaptive_max_pool2d"


class AdaptiveMaxPool3d(_AdaptivePool):
    _fn = "adaptive_max_pool3d"


class AdaptiveMaxPool1d(_AdaptivePool):
    _fn = "adaptive_max_pool1d"


class AdaptiveAvgPool1d(_AdaptivePool):
    _fn = "adaptive_avg_pool1d"

    def __init__(self, output_size):
        super().__init__(output_size)


class ConvTranspose1d(ConvTranspose2d):
    """1-D transposed convolution over (N, C, L) or (C, L): the 2-D layer on (N, C, 1, L)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        one = lambda v, name: v if isinstance(v, (int, np.integer)) else (  # noqa: E731
            v[0] if isinstance(v, (tuple, list)) and len(v) == 1 else _bad(name, v))
        super().__init__(in_channels, out_channels, (1, one(kernel_size, "kernel_size")),
                         (1, one(stride, "stride")), (0, one(padding, "padding")),
                         (0, one(output_padding, "output_padding")), groups, bias, (1, one(dilation, "dilation")),
                         padding_mode, device, dtype)
        self.weight = Parameter(self.weight.detach().numpy()[:, :, 0, :].copy())

    def forward(self, x, output_size=None):
        if x.ndim not in (2, 3):
            raise ModuleShapeError(self, f"expected a 2-D or 3-D input (C, L) or (N, C, L), got shape {tuple(x.shape)}")
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride[1], self.padding[1],
                                  self._output_padding1d(x, output_size), self.groups, self.dilation[1])

    def _output_padding1d(self, x, output_size):
        if output_size is None:
            return self.output_padding[1]
        x2 = x.unsqueeze(-2)
        size = tuple(output_size)[-1:]
        return self._output_padding(x2, (1,) + size)[1]

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size=({self.kernel_size[1]},), "
             f"stride=({self.stride[1]},)")
        if self.padding[1]:
            s += f", padding=({self.padding[1]},)"
        if self.dilation[1] != 1:
            s += f", dilation=({self.dilation[1]},)"
        if self.output_padding[1]:
            s += f", output_padding=({self.output_padding[1]},)"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


def _bad(name, v):
    raise ValueError(f"{name}: expected an int or a 1-tuple, got {v!r}")


class Unfold(Module):
    """Sliding blocks as columns, PyTorch's ``nn.Unfold`` (F.unfold)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Module):
    """Columns summed back into images, PyTorch's ``nn.Fold`` (F.fold)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class LocalResponseNorm(Module):
    """PyTorch's ``nn.LocalResponseNorm`` (F.local_response_norm)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return "{size}, alpha={alpha}, beta={beta}, k={k}".format(**self.__dict__)


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings, PyTorch's ``nn.EmbeddingBag`` (weight
    initialized N(0, 1) as PyTorch's, the padding row zero).

    >>> import lamina
    >>> bag = lamina.nn.EmbeddingBag(10, 3, mode="sum")
    >>> tuple(bag(lamina.tensor([1, 2, 4, 5, 4]), lamina.tensor([0, 2])).shape)
    (2, 3)
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None,
                 device=None, dtype=None):
        super().__init__()
        from ..._device import check_device
        from ...ops.nn_extra import check_dense_embedding
        from ...tensor import get_default_dtype
        check_device(device)
        check_dense_embedding(sparse)
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError("padding_idx must be within num_embeddings")
            padding_idx = padding_idx % self.num_embeddings
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.mode, self.sparse, self.include_last_offset, self.padding_idx = mode, sparse, include_last_offset, padding_idx
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        if _weight is None:
            self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=dt))
            self.reset_parameters()
        else:
            w = _weight._data if hasattr(_weight, "_data") else np.asarray(_weight)
            if w.shape != (self.num_embeddings, self.embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(np.array(w))

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                        mode="mean", sparse=False, include_last_offset=False, padding_idx=None):
        rows, dim = embeddings.shape
        bag = cls(rows, dim, max_norm, norm_type, scale_grad_by_freq, mode, sparse, embeddings,
                  include_last_offset, padding_idx)
        bag.weight.requires_grad = not freeze
        return bag

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                               self.mode, self.sparse, per_sample_weights, self.include_last_offset,
                               self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s


class ChannelShuffle(Module):
    """PyTorch's ``nn.ChannelShuffle(groups)``."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        return F.channel_shuffle(x, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"


class _MaxUnpool(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = stride if stride is not None else kernel_size

    def forward(self, input, indices, output_size=None):
        f = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}[self._nd]
        return f(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpool):
    """PyTorch's ``nn.MaxUnpool1d``."""
    _nd = 1


class MaxUnpool2d(_MaxUnpool):
    """PyTorch's ``nn.MaxUnpool2d`` (SegNet-style decoders)."""
    _nd = 2


class MaxUnpool3d(_MaxUnpool):
    """PyTorch's ``nn.MaxUnpool3d``."""
    _nd = 3


class _LPPool(Module):
    _nd = 2

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode

    def forward(self, x):
        f = {1: F.lp_pool1d, 2: F.lp_pool2d, 3: F.lp_pool3d}[self._nd]
        return f(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPool):
    _nd = 1


class LPPool2d(_LPPool):
    _nd = 2


class LPPool3d(_LPPool):
    _nd = 3


class DataParallel(Module):
    """PyTorch's ``nn.DataParallel`` on a machine without GPUs: the wrapped module runs as is
    (PyTorch does the same when no device is available), reachable as ``.module``, so state
    dicts carry the ``module.`` prefix PyTorch's do."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        self.module = module
        self.device_ids, self.output_device, self.dim = [], None, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


class LazyLinear(Module):
    """PyTorch's ``nn.LazyLinear(out_features)``: in_features is read from the first input; the
    weight and bias are created then, with Linear's initial draws, and the module becomes a
    Linear (as PyTorch's does)."""

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features, self._bias, self._dtype = 0, int(out_features), bool(bias), dtype

    def forward(self, x):
        from .linear import Linear
        training = self.training
        real = Linear(x.shape[-1], self.out_features, self._bias, dtype=self._dtype)
        self.__dict__.clear()
        self.__dict__.update(real.__dict__)
        self.training = training
        self.__class__ = Linear
        return self(x)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self._bias}"


class _LazyModule(Module):
    """A module whose channel count is read from its first input (PyTorch's nn.Lazy*): the real
    layer is built then, with its usual initial draws, and this module becomes it, as LazyLinear
    does. `_build(channels)` makes the layer; `_channel_dim(x)` says where the channels are."""
    _unbatched_ndim = None        # the input rank at which there is no batch dim (channels at 0)

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._args, self._kwargs = args, kwargs

    def _channels(self, x):
        return x.shape[0] if self._unbatched_ndim is not None and x.ndim == self._unbatched_ndim else x.shape[1]

    def forward(self, *inputs, **kwargs):
        training = self.training
        real = self._build(int(self._channels(inputs[0])))
        self.__dict__.clear()
        self.__dict__.update(real.__dict__)
        self.training = training
        self.__class__ = type(real)
        return self(*inputs, **kwargs)

    def has_uninitialized_params(self):
        return True

    def extra_repr(self):
        return ", ".join([repr(a) for a in self._args] + [f"{k}={v!r}" for k, v in self._kwargs.items()])


def _lazy(name, make, unbatched_ndim=None, doc="", defaults=None):
    def build(self, c):
        return make()(c, *self._args, **{**(defaults or {}), **self._kwargs})
    cls = type(name, (_LazyModule,), {"_build": build,
                                      "_unbatched_ndim": unbatched_ndim, "__doc__": doc, "__module__": __name__})
    return cls


def _conv_cls(n):
    from . import conv
    return getattr(conv, n)


def _norm_cls(n):
    from .. import normalization
    return getattr(normalization, n)


# PyTorch's LazyInstanceNorm defaults differ from InstanceNorm's: affine and running statistics on
_LAZY_INSTANCE = {"affine": True, "track_running_stats": True}
LazyConv1d = _lazy("LazyConv1d", lambda: _conv_cls("Conv1d"), 2, "nn.Conv1d with in_channels from the first input.")
LazyConv2d = _lazy("LazyConv2d", lambda: _conv_cls("Conv2d"), 3, "nn.Conv2d with in_channels from the first input.")
LazyConv3d = _lazy("LazyConv3d", lambda: _conv_cls("Conv3d"), 4, "nn.Conv3d with in_channels from the first input.")
LazyConvTranspose1d = _lazy("LazyConvTranspose1d", lambda: ConvTranspose1d, 2,
                            "nn.ConvTranspose1d with in_channels from the first input.")
LazyConvTranspose2d = _lazy("LazyConvTranspose2d", lambda: ConvTranspose2d, 3,
                            "nn.ConvTranspose2d with in_channels from the first input.")
LazyBatchNorm1d = _lazy("LazyBatchNorm1d", lambda: _norm_cls("BatchNorm1d"), None,
                        "nn.BatchNorm1d with num_features from the first input's dim 1.")
LazyBatchNorm2d = _lazy("LazyBatchNorm2d", lambda: _norm_cls("BatchNorm2d"), None,
                        "nn.BatchNorm2d with num_features from the first input's dim 1.")
LazyBatchNorm3d = _lazy("LazyBatchNorm3d", lambda: _norm_cls("BatchNorm3d"), None,
                        "nn.BatchNorm3d with num_features from the first input's dim 1.")
LazyInstanceNorm1d = _lazy("LazyInstanceNorm1d", lambda: _norm_cls("InstanceNorm1d"), None,
                           "nn.InstanceNorm1d with num_features from the first input's dim 1.", _LAZY_INSTANCE)
LazyInstanceNorm2d = _lazy("LazyInstanceNorm2d", lambda: _norm_cls("InstanceNorm2d"), None,
                           "nn.InstanceNorm2d with num_features from the first input's dim 1.", _LAZY_INSTANCE)
LazyInstanceNorm3d = _lazy("LazyInstanceNorm3d", lambda: _norm_cls("InstanceNorm3d"), None,
                           "nn.InstanceNorm3d with num_features from the first input's dim 1.", _LAZY_INSTANCE)
