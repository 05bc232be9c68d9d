"""Normalization and dropout: BatchNorm1d/2d, LayerNorm, GroupNorm, Dropout, Dropout2d.

The ops (Function + kernels, registered) are in lamina.ops.norm; here are the functional forms
and the Modules, with PyTorch's names, signatures, defaults and state_dict keys.

>>> import lamina
>>> bn = lamina.nn.BatchNorm2d(3)
>>> y = bn(lamina.randn(4, 3, 5, 5))
>>> [k for k in bn.state_dict()]
['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
"""
from __future__ import annotations

import numbers

import numpy as np

from ..ops.norm import BatchNormFn, DropoutFn, GroupNormFn, LayerNormFn  # noqa: F401
from .._inplace import apply_inplace
from ..tensor import Tensor, get_default_dtype
from .module import Module, ModuleShapeError, Parameter


# --------------------------------------------------------------------------- functional forms
def _check_float(input, name="input"):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected a lamina Tensor, got {type(input).__name__}")
    if input.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected float32 or float64, got {input.dtype}")


def _check_param(t, name, shape, dtype):
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a lamina Tensor or None, got {type(t).__name__}")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(t.shape)}")
    if t.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (the input's), got {t.dtype}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """PyTorch's F.batch_norm over (N, C, ...): batch statistics when `training` (the running
    ones updated in place), else the running statistics.

    >>> import lamina, lamina.nn.functional as F
    >>> x = lamina.tensor([[1.0], [3.0]])
    >>> F.batch_norm(x, None, None, training=True, eps=0.0).tolist()
    [[-1.0], [1.0]]
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                num_batches_tracked=None, relu=False):
    _check_float(input)
    if input.ndim < 2:
        raise ValueError(f"input: expected (N, C, ...) with at least 2 dims, got shape {tuple(input.shape)}")
    c = input.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        _check_param(t, name, (c,), input.dtype)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_var: running_mean and running_var must both be given or both be None")
    if not training and running_mean is None:
        raise ValueError("running_mean: training=False uses the running statistics; got None")
    if momentum is not None and not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"momentum: expected a value in [0, 1] or None, got {momentum}")
    return BatchNormFn.apply(input, weight, bias, running_mean, running_var, num_batches_tracked, bool(training),
                             momentum, float(eps), relu)


def _normalized_shape(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(d) for d in normalized_shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """PyTorch's F.layer_norm: normalize over the trailing `normalized_shape` dims.

    >>> import lamina, lamina.nn.functional as F
    >>> F.layer_norm(lamina.tensor([[1.0, 3.0]]), (2,), eps=0.0).tolist()
    [[-1.0, 1.0]]
    """
    _check_float(input)
    shape = _normalized_shape(normalized_shape)
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"normalized_shape: expected positive sizes, got {normalized_shape}")
    if tuple(input.shape[input.ndim - len(shape):]) != shape or input.ndim < len(shape):
        raise ValueError(f"input: expected trailing dims {shape} (normalized_shape), got shape {tuple(input.shape)}")
    _check_param(weight, "weight", shape, input.dtype)
    _check_param(bias, "bias", shape, input.dtype)
    return LayerNormFn.apply(input, weight, bias, int(np.prod(shape)), float(eps))


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2 over the trailing normalized_shape dims) + eps) * weight, PyTorch's
    F.rms_norm (eps None: the dtype's machine epsilon, as PyTorch). A composition of
    differentiable ops.

    >>> import lamina, lamina.nn.functional as F
    >>> F.rms_norm(lamina.tensor([[3.0, 4.0]]), (2,), eps=0.0).tolist()
    [[0.8485281467437744, 1.1313709020614624]]
    """
    _check_float(input)
    shape = _normalized_shape(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or input.ndim < len(shape):
        raise ValueError(f"input: expected trailing dims {shape} (normalized_shape), got shape {tuple(input.shape)}")
    _check_param(weight, "weight", shape, input.dtype)
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    dims = list(range(input.ndim - len(shape), input.ndim))
    y = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return y * weight if weight is not None else y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """PyTorch's F.group_norm over (N, C, ...) with `num_groups` groups of channels."""
    _check_float(input)
    if input.ndim < 2:
        raise ValueError(f"input: expected (N, C, ...) with at least 2 dims, got shape {tuple(input.shape)}")
    c = input.shape[1]
    if int(num_groups) <= 0 or c % int(num_groups):
        raise ValueError(f"num_groups: expected a positive divisor of the {c} channels, got {num_groups}")
    _check_param(weight, "weight", (c,), input.dtype)
    _check_param(bias, "bias", (c,), input.dtype)
    return GroupNormFn.apply(input, weight, bias, int(num_groups), float(eps))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalize each (sample, channel) plane of (N, C, ...) by its own mean and variance, PyTorch's
    F.instance_norm: group_norm with one channel per group. With running statistics given and
    use_input_stats, they are updated as PyTorch does (the batch average of each instance's
    mean and unbiased variance, mixed in by momentum); use_input_stats=False normalizes by them."""
    _check_float(input)
    if input.ndim < 3:
        raise ValueError(f"input: expected (N, C, ...) with at least one spatial dim, got shape {tuple(input.shape)}")
    c = input.shape[1]
    for t, name in ((running_mean, "running_mean"), (running_var, "running_var")):
        _check_param(t, name, (c,), input.dtype)
    _check_param(weight, "weight", (c,), input.dtype)
    _check_param(bias, "bias", (c,), input.dtype)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean, running_var: expected both when use_input_stats=False")
        shape = (1, c) + (1,) * (input.ndim - 2)
        y = (input - running_mean.detach().reshape(shape)) / (running_var.detach().reshape(shape) + eps).sqrt()
        if weight is not None:
            y = y * weight.reshape(shape)
        if bias is not None:
            y = y + bias.reshape(shape)
        return y
    if running_mean is not None or running_var is not None:
        x = input.detach().numpy().astype(np.float64).reshape(input.shape[0], c, -1)
        n, m = x.shape[2], float(momentum)
        if running_mean is not None:
            running_mean._data[...] = (1 - m) * running_mean._data + m * x.mean(axis=2).mean(axis=0)
        if running_var is not None:
            var = x.var(axis=2, ddof=1) if n > 1 else np.full(x.shape[:2], np.nan)
            running_var._data[...] = (1 - m) * running_var._data + m * var.mean(axis=0)
    return group_norm(input, c, weight, bias, eps)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, L) or (C, L) input with probability p."""
    _check_p(p)
    if input.ndim not in (2, 3):
        raise ValueError(f"input: dropout1d expects (N, C, L) or (C, L), got shape {tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    _check_float(input)
    if inplace:
        return apply_inplace(input, "dropout1d_", dropout1d, p, training)
    return DropoutFn.apply(input, float(p), int(input.shape[-1]))


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input with probability p."""
    _check_p(p)
    if input.ndim not in (4, 5):
        raise ValueError(f"input: dropout3d expects (N, C, D, H, W) or (C, D, H, W), got shape {tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    _check_float(input)
    if inplace:
        return apply_inplace(input, "dropout3d_", dropout3d, p, training)
    return DropoutFn.apply(input, float(p), int(np.prod(input.shape[-3:])))


def _check_p(p):
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p: dropout probability must be in [0, 1], got {p}")


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1 / (1 - p); the identity
    when not training. Seeded by lamina.manual_seed.

    >>> import lamina, lamina.nn.functional as F
    >>> F.dropout(lamina.ones(3), 0.5, training=False).tolist()
    [1.0, 1.0, 1.0]
    """
    _check_p(p)
    if not training or p == 0.0:
        return input
    _check_float(input)
    if inplace:
        return apply_inplace(input, "dropout_", dropout, p, training)
    return DropoutFn.apply(input, float(p), 1)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, H, W) or (C, H, W) input with probability p."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    _check_float(input)
    if input.ndim not in (3, 4):
        raise ValueError(f"input: dropout2d expects (N, C, H, W) or (C, H, W), got shape {tuple(input.shape)}")
    if inplace:
        return apply_inplace(input, "dropout2d_", dropout2d, p, training)
    return DropoutFn.apply(input, float(p), int(input.shape[-1] * input.shape[-2]))


_SELU_ALPHA_PRIME = 1.7580993408473766   # -SELU's scale * alpha: the value SELU saturates to


def _alpha_dropout(input, p, training, inplace, feature, name):
    """PyTorch's alpha dropout: dropped units are set to SELU's saturation value -alpha', then an
    affine map a * x + b restores zero mean and unit variance for SELU-normal input. The mask is
    drawn as PyTorch's bernoulli_(1 - p) draws it (one per element, or one per (N, C) channel for
    the feature form); p = 1 gives zeros, as there. A composition (x * noise + b), so the gradient
    is dy * a at the kept units and 0 at the dropped ones."""
    _check_p(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    _check_float(input)
    if feature and input.ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if inplace:
        return apply_inplace(input, name + "_", lambda x: _alpha_dropout(x, p, True, False, feature, name))
    dt = input.dtype
    if p == 1.0:
        return input * Tensor._wrap(np.zeros((), dt))
    from .. import random as _random
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2) if feature else tuple(input.shape)
    keep = _random.default_generator().bernoulli(1.0 - p, int(np.prod(shape))).reshape(shape).astype(dt)
    alpha = _SELU_ALPHA_PRIME
    a = 1.0 / np.sqrt((alpha * alpha * p + 1) * (1 - p))
    b = ((keep - 1) * (alpha * a) + alpha * a * p).astype(dt)
    return input * Tensor._wrap((keep * a).astype(dt)) + Tensor._wrap(b)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout that keeps SELU's self-normalizing mean 0 and variance 1 (PyTorch's F.alpha_dropout)."""
    return _alpha_dropout(input, p, training, inplace, False, "alpha_dropout")


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """alpha_dropout of whole channels: one draw per (N, C) (PyTorch's F.feature_alpha_dropout)."""
    return _alpha_dropout(input, p, training, inplace, True, "feature_alpha_dropout")


# --------------------------------------------------------------------------- modules
def _check_device(device):
    if device is not None and str(device) != "cpu":
        raise ValueError(f"device: lamina runs on the CPU, expected None or 'cpu', got {device!r}")


class _NormBase(Module):
    """What batch and instance norm share: the affine parameters and the running statistics."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        _check_device(device)
        if not isinstance(num_features, numbers.Integral) or num_features <= 0:
            raise ValueError(f"num_features: expected a positive integer, got {num_features!r}")
        if momentum is not None and not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"momentum: expected a value in [0, 1] or None, got {momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.has_bias = bool(affine and bias)
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.register_parameter("weight", Parameter(np.ones(num_features, dtype=dt)) if self.affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_features, dtype=dt)) if self.has_bias else None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor._wrap(np.zeros(num_features, dtype=dt)))
            self.register_buffer("running_var", Tensor._wrap(np.ones(num_features, dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor._wrap(np.zeros((), dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.weight is not None:
            self.weight._data[...] = 1
        if self.bias is not None:
            self.bias._data[...] = 0


class _BatchNorm(_NormBase):
    _dims = ()          # accepted input ndims
    _want = ""

    def _check(self, x):
        if x.ndim not in self._dims:
            raise ModuleShapeError(self, f"expected {self._want} input, got {x.ndim}D input of shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ModuleShapeError(self, f"expected {self.num_features} channels (num_features), got {x.shape[1]} "
                                         f"(input shape {tuple(x.shape)})")

    def forward(self, x):
        return self._forward(x, relu=False)

    def _forward(self, x, relu):
        self._check(x)
        # As PyTorch: batch statistics when training, or when there are no running statistics.
        bn_training = self.training or self.running_mean is None
        return _batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, bn_training,
                           self.momentum, self.eps, self.num_batches_tracked if self.training else None, relu)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.has_bias}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L), PyTorch's ``nn.BatchNorm1d``.

    >>> import lamina
    >>> tuple(lamina.nn.BatchNorm1d(4)(lamina.randn(8, 4)).shape)
    (8, 4)
    """
    _dims = (2, 3)
    _want = "2D or 3D"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W), PyTorch's ``nn.BatchNorm2d``."""
    _dims = (4,)
    _want = "4D"


class BatchNorm3d(_BatchNorm):
    """Batch normalization over (N, C, D, H, W), PyTorch's ``nn.BatchNorm3d``."""
    _dims = (5,)
    _want = "5D"


class LayerNorm(Module):
    """Layer normalization over the trailing `normalized_shape` dims, PyTorch's ``nn.LayerNorm``.

    >>> import lamina
    >>> tuple(lamina.nn.LayerNorm(6)(lamina.randn(2, 6)).shape)
    (2, 6)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.normalized_shape = _normalized_shape(normalized_shape)
        if not self.normalized_shape or any(d <= 0 for d in self.normalized_shape):
            raise ValueError(f"normalized_shape: expected positive sizes, got {normalized_shape}")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        self.has_bias = bool(elementwise_affine and bias)
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        shape = self.normalized_shape
        self.register_parameter("weight", Parameter(np.ones(shape, dtype=dt)) if self.elementwise_affine else None)
        self.register_parameter("bias", Parameter(np.zeros(shape, dtype=dt)) if self.has_bias else None)

    def forward(self, x):
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.has_bias}")


class RMSNorm(Module):
    """Root-mean-square normalization over the trailing `normalized_shape` dims, PyTorch's
    ``nn.RMSNorm`` (LLaMA-style transformer blocks).

    >>> import lamina
    >>> lamina.nn.RMSNorm(4)
    RMSNorm((4,), eps=None, elementwise_affine=True)
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.normalized_shape = _normalized_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, bool(elementwise_affine)
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.register_parameter("weight", Parameter(np.ones(self.normalized_shape, dtype=dt))
                                if self.elementwise_affine else None)

    def reset_parameters(self):
        if self.weight is not None:
            self.weight._data[...] = 1

    def forward(self, x):
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Group normalization, PyTorch's ``nn.GroupNorm(num_groups, num_channels, eps, affine)``.

    >>> import lamina
    >>> tuple(lamina.nn.GroupNorm(2, 4)(lamina.randn(3, 4, 5, 5)).shape)
    (3, 4, 5, 5)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        _check_device(device)
        if int(num_groups) <= 0 or int(num_channels) <= 0 or num_channels % num_groups:
            raise ValueError(f"num_channels: must be divisible by num_groups (positive integers), "
                             f"got num_channels={num_channels}, num_groups={num_groups}")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = float(eps), bool(affine)
        self.has_bias = bool(affine and bias)
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.register_parameter("weight", Parameter(np.ones(num_channels, dtype=dt)) if self.affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_channels, dtype=dt)) if self.has_bias else None)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ModuleShapeError(self, f"expected (N, {self.num_channels}, ...) input, got shape {tuple(x.shape)}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.has_bias}"


class _InstanceNorm(_NormBase):
    _spatial = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, x):
        nd = self._spatial
        if x.ndim not in (nd + 1, nd + 2):
            raise ModuleShapeError(self, f"expected {nd + 1}D (unbatched) or {nd + 2}D input, got {x.ndim}D input "
                                         f"of shape {tuple(x.shape)}")
        unbatched = x.ndim == nd + 1
        c = x.shape[-nd - 1]
        if self.affine and c != self.num_features:
            raise ModuleShapeError(self, f"expected {self.num_features} channels (num_features), got {c} "
                                         f"(input shape {tuple(x.shape)})")
        xb = x.reshape(1, *x.shape) if unbatched else x
        use_input_stats = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data[...] += 1
        y = instance_norm(xb, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
                          0.1 if self.momentum is None else self.momentum, self.eps)
        return y.reshape(*x.shape) if unbatched else y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.has_bias}, track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over (N, C, L) or (C, L), PyTorch's ``nn.InstanceNorm1d``."""
    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over (N, C, H, W) or (C, H, W), PyTorch's ``nn.InstanceNorm2d``
    (style transfer networks normalize each image's feature maps on their own).

    >>> import lamina
    >>> tuple(lamina.nn.InstanceNorm2d(3)(lamina.randn(2, 3, 4, 4)).shape)
    (2, 3, 4, 4)
    """
    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over (N, C, D, H, W) or (C, D, H, W)."""
    _spatial = 3


class Dropout(Module):
    """Zero elements with probability p while training (scaled by 1 / (1 - p)); identity in eval.

    >>> import lamina
    >>> lamina.nn.Dropout(0.5).eval()(lamina.ones(2)).tolist()
    [1.0, 1.0]
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        _check_p(p)
        self.p, self.inplace = float(p), inplace

    def forward(self, x):
        return dropout(x, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class AlphaDropout(Dropout):
    """Alpha dropout for SELU networks while training (PyTorch's nn.AlphaDropout); identity in eval."""

    def forward(self, x):
        return alpha_dropout(x, self.p, self.training, self.inplace)


class FeatureAlphaDropout(Dropout):
    """Alpha dropout of whole channels (PyTorch's nn.FeatureAlphaDropout)."""

    def forward(self, x):
        return feature_alpha_dropout(x, self.p, self.training, self.inplace)


class Dropout2d(Dropout):
    """Zero whole channels of (N, C, H, W) input with probability p while training."""

    def forward(self, x):
        return dropout2d(x, self.p, self.training, self.inplace)
