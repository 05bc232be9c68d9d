"""The top-level (torch.*) forms of nn.functional ops, with ATen's signatures where they differ
from F's: losses take `reduction` as ATen's int enum (0 none, 1 mean, 2 sum), torch.embedding
takes (weight, indices) with padding_idx=-1 for none, torch.batch_norm / instance_norm take every
argument positionally (weight and bias before the running statistics), torch.dropout's `train`
is required, and torch.adaptive_max_pool1d returns (values, indices). Each is an alias of, or a
call into, the one functional definition, so values and gradients are the same."""
from __future__ import annotations

from .nn import functional as _F

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "batch_norm", "layer_norm",
           "group_norm", "instance_norm", "dropout", "dropout_", "alpha_dropout", "alpha_dropout_",
           "feature_alpha_dropout", "feature_alpha_dropout_", "feature_dropout", "feature_dropout_", "embedding",
           "bilinear", "celu", "celu_", "selu", "selu_", "rrelu", "rrelu_", "hardshrink", "threshold", "threshold_",
           "prelu", "kl_div", "cosine_similarity", "pairwise_distance", "pdist", "hinge_embedding_loss",
           "cosine_embedding_loss", "margin_ranking_loss", "triplet_margin_loss", "poisson_nll_loss",
           "binary_cross_entropy_with_logits", "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d",
           "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "channel_shuffle",
           "native_channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "rms_norm", "relu_"]

conv1d, conv2d, conv3d = _F.conv1d, _F.conv2d, _F.conv3d
conv_transpose1d, conv_transpose2d = _F.conv_transpose1d, _F.conv_transpose2d
bilinear, cosine_similarity, pairwise_distance, pdist = _F.bilinear, _F.cosine_similarity, _F.pairwise_distance, _F.pdist
hardshrink, prelu, channel_shuffle = _F.hardshrink, _F.prelu, _F.channel_shuffle
native_channel_shuffle = _F.channel_shuffle
pixel_shuffle, pixel_unshuffle, avg_pool1d, adaptive_avg_pool1d = (_F.pixel_shuffle, _F.pixel_unshuffle,
                                                                   _F.avg_pool1d, _F.adaptive_avg_pool1d)
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(r):
    if r not in _REDUCTIONS:
        raise RuntimeError(f"reduction: expected 0 (none), 1 (mean) or 2 (sum), got {r!r}")
    return _REDUCTIONS[r]


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):
    return _F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    return _F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    return _F.group_norm(input, num_groups, weight, bias, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled):
    return _F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    return _F.rms_norm(input, normalized_shape, weight, eps)


def dropout(input, p, train):
    return _F.dropout(input, p, train)


def dropout_(input, p, train):
    return _F.dropout(input, p, train, inplace=True)


def alpha_dropout(input, p, train):
    return _F.alpha_dropout(input, p, train)


def alpha_dropout_(input, p, train):
    return _F.alpha_dropout(input, p, train, inplace=True)


def feature_alpha_dropout(input, p, train):
    return _F.feature_alpha_dropout(input, p, train)


def feature_alpha_dropout_(input, p, train):
    return _F.feature_alpha_dropout(input, p, train, inplace=True)


def _feature_dropout(input, p, train, inplace):
    """Channel dropout for any input of 2+ dims: one draw per (N, C), as ATen's feature_dropout."""
    if input.ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    from .nn.normalization import DropoutFn, _check_float, _check_p
    _check_p(p)
    if not train or p == 0.0 or input.numel() == 0:
        return input
    _check_float(input)
    if inplace:
        from ._inplace import apply_inplace
        return apply_inplace(input, "feature_dropout_", lambda x: _feature_dropout(x, p, train, False))
    unit = 1
    for s in input.shape[2:]:
        unit *= int(s)
    return DropoutFn.apply(input, float(p), unit)


def feature_dropout(input, p, train):
    return _feature_dropout(input, p, train, False)


def feature_dropout_(input, p, train):
    return _feature_dropout(input, p, train, True)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return _F.embedding(indices, weight, None if padding_idx is None or padding_idx < 0 else padding_idx,
                        scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def celu(input, alpha=1.0):
    return _F.celu(input, alpha)


def celu_(input, alpha=1.0):
    return _F.celu(input, alpha, inplace=True)


def selu(input):
    return _F.selu(input)


def selu_(input):
    return _F.selu(input, inplace=True)


def relu_(input):
    return _F.relu(input, inplace=True)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    return _F.rrelu(input, lower, upper, training)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    return _F.rrelu(input, lower, upper, training, inplace=True)


def threshold(input, threshold, value):
    return _F.threshold(input, threshold, value)


def threshold_(input, threshold, value):
    return _F.threshold(input, threshold, value, inplace=True)


def kl_div(input, target, reduction=1, *, log_target=False):
    return _F.kl_div(input, target, reduction=_reduction(reduction), log_target=log_target)


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):
    return _F.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    return _F.cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    return _F.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction=1):
    return _F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction=_reduction(reduction))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    return _F.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction(reduction))


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return _F.binary_cross_entropy_with_logits(input, target, weight, reduction=_reduction(reduction),
                                               pos_weight=pos_weight)


def adaptive_max_pool1d(input, output_size):
    return _F.adaptive_max_pool1d(input, output_size, return_indices=True)


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return _F.max_pool1d(input, kernel_size, stride or None, padding, dilation, ceil_mode)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return _F.max_pool2d(input, kernel_size, stride or None, padding, dilation, ceil_mode)


def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return _F.max_pool3d(input, kernel_size, stride or None, padding, dilation, ceil_mode)


def max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return _F.max_pool1d(input, kernel_size, stride or None, padding, dilation, ceil_mode, return_indices=True)
