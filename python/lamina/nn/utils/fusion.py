"""Fold an eval-mode BatchNorm into the convolution or linear layer before it (PyTorch's
``torch.nn.utils.fusion``: same names, signatures and results).

At eval, batch norm is a fixed per-channel affine map of the layer's output,
``y = (z - running_mean) * rsqrt(running_var + eps) * bn_weight + bn_bias``, and the layer
is linear in its weights, so the pair is one layer with

    W' = W * scale  (scale = bn_weight * rsqrt(running_var + eps), per output channel)
    b' = (b - running_mean) * scale + bn_bias

The result equals the unfused pair up to rounding (the products are formed in another order).

>>> import lamina
>>> conv, bn = lamina.nn.Conv2d(3, 4, 3), lamina.nn.BatchNorm2d(4)
>>> conv.eval(), bn.eval()  # doctest: +ELLIPSIS
(...)
>>> fused = lamina.nn.utils.fuse_conv_bn_eval(conv, bn)
>>> x = lamina.randn(2, 3, 8, 8)
>>> bool((fused(x) - bn(conv(x))).abs().max().item() < 1e-5)
True
"""
from __future__ import annotations

import copy

import numpy as np

from ...tensor import Tensor

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights",
           "FusionError", "fold_conv_bn_arrays"]


class FusionError(AssertionError, ValueError):
    """The modules cannot be fused (one is in training mode, or the batch norm has no running
    statistics). An AssertionError as PyTorch raises, and a ValueError as lamina raises for bad
    arguments, so either ``except`` catches it."""


def _array(t, name):
    if t is None:
        return None
    a = t._data if isinstance(t, Tensor) else np.asarray(t)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a float32 or float64 tensor, got dtype {a.dtype}")
    return a


def _requires_grad(t):
    return bool(getattr(t, "requires_grad", False))


def _check_channel(name, a, channels, what):
    if a is not None and tuple(a.shape) != (channels,):
        raise ValueError(f"{name}: expected shape ({channels},), one value per {what}, got {tuple(a.shape)}")


def fold_conv_bn_arrays(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False, out_w=None, out_b=None):
    """The folded (weight, bias) as NumPy arrays in the conv's dtypes; `out_w` / `out_b`, if
    given, are filled in place (the graph compiler re-folds into the arrays its plan holds)."""
    w_dtype = conv_w.dtype
    b_dtype = conv_b.dtype if conv_b is not None else w_dtype
    if conv_b is None:
        conv_b = np.zeros_like(bn_rm)
    if bn_w is None:
        bn_w = np.ones_like(bn_rm)
    if bn_b is None:
        bn_b = np.zeros_like(bn_rm)
    rsqrt = 1.0 / np.sqrt(bn_rv + bn_eps)
    # the output channels are dim 0 of a conv weight, dim 1 of a transposed conv's
    shape = (1, -1) if transpose else (-1, 1)
    shape = shape + (1,) * (conv_w.ndim - 2)
    w = (conv_w * (bn_w * rsqrt).reshape(shape)).astype(w_dtype, copy=False)
    b = ((conv_b - bn_rm) * rsqrt * bn_w + bn_b).astype(b_dtype, copy=False)
    if out_w is not None:
        out_w[...] = w
        w = out_w
    if out_b is not None:
        out_b[...] = b
        b = out_b
    return w, b


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """Fold batch-norm statistics and affine parameters into convolution weights.

    Returns ``(weight, bias)``, two new Parameters: the weight keeps ``conv_w.requires_grad``;
    the bias keeps ``conv_b.requires_grad``, or (as in PyTorch) does not require grad when
    ``conv_b`` is None. ``bn_w`` / ``bn_b`` None (``affine=False``) mean 1 and 0.
    ``transpose=True``: the output channels are dim 1 of ``conv_w`` (a transposed conv).

    >>> import lamina
    >>> w, b = lamina.nn.utils.fuse_conv_bn_weights(
    ...     lamina.ones(2, 1, 1, 1), None, lamina.tensor([1.0, 0.0]), lamina.tensor([3.0, 0.0]),
    ...     1.0, lamina.tensor([2.0, 1.0]), lamina.tensor([0.0, 5.0]))
    >>> w.flatten().tolist(), b.tolist()
    ([1.0, 1.0], [-1.0, 5.0])
    """
    from ..module import Parameter

    w = _array(conv_w, "conv_w")
    if w is None or w.ndim < 3:
        raise ValueError(f"conv_w: expected a convolution weight with at least 3 dims, got "
                         f"{None if w is None else tuple(w.shape)}")
    channels = w.shape[1] if transpose else w.shape[0]
    what = "output channel of conv_w" + (" (dim 1: transpose=True)" if transpose else " (dim 0)")
    arrays = {}
    for name, t in (("conv_b", conv_b), ("bn_rm", bn_rm), ("bn_rv", bn_rv), ("bn_w", bn_w), ("bn_b", bn_b)):
        arrays[name] = _array(t, name)
        _check_channel(name, arrays[name], channels, what)
    if arrays["bn_rm"] is None or arrays["bn_rv"] is None:
        raise ValueError("bn_rm, bn_rv: the running mean and variance are required, got None")
    fw, fb = fold_conv_bn_arrays(w, arrays["conv_b"], arrays["bn_rm"], arrays["bn_rv"], float(bn_eps),
                                 arrays["bn_w"], arrays["bn_b"], transpose)
    return Parameter(fw, _requires_grad(conv_w)), Parameter(fb, _requires_grad(conv_b))


def _check_eval(layer, bn, layer_name):
    if getattr(layer, "training", False) or getattr(bn, "training", False):
        raise FusionError(f"{layer_name}, bn: fusion is only for eval mode (batch norm must use its running "
                          f"statistics); got {layer_name}.training={layer.training}, bn.training={bn.training}: "
                          "call .eval() on both first")
    if getattr(bn, "running_mean", None) is None or getattr(bn, "running_var", None) is None:
        raise FusionError("bn: fusion needs the running statistics, but bn.running_mean / bn.running_var is None "
                          "(track_running_stats=False)")


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A new convolution (a deep copy of ``conv``) computing ``bn(conv(x))`` of the eval-mode
    pair; ``conv`` without a bias gets one. Both must be in eval mode (else `FusionError`, an
    AssertionError as in PyTorch) and ``bn`` must track running statistics.

    >>> import lamina
    >>> conv, bn = lamina.nn.Conv1d(2, 3, 1, bias=False).eval(), lamina.nn.BatchNorm1d(3).eval()
    >>> fused = lamina.nn.utils.fuse_conv_bn_eval(conv, bn)
    >>> fused.bias is not None and conv.bias is None
    True
    """
    _check_eval(conv, bn, "conv")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """Fold batch-norm statistics and affine parameters into a Linear's weight (out, in) and
    bias; ``bn`` may have one feature (broadcast over all outputs). Returns two Parameters."""
    from ..module import Parameter

    w = _array(linear_w, "linear_w")
    if w is None or w.ndim != 2:
        raise ValueError(f"linear_w: expected a (out_features, in_features) weight, got "
                         f"{None if w is None else tuple(w.shape)}")
    arrays = {name: _array(t, name) for name, t in (("linear_b", linear_b), ("bn_rm", bn_rm), ("bn_rv", bn_rv),
                                                    ("bn_w", bn_w), ("bn_b", bn_b))}
    _check_channel("linear_b", arrays["linear_b"], w.shape[0], "output feature")
    if arrays["bn_rm"] is None or arrays["bn_rv"] is None:
        raise ValueError("bn_rm, bn_rv: the running mean and variance are required, got None")
    n = arrays["bn_rm"].shape[0] if arrays["bn_rm"].ndim == 1 else -1
    if n not in (w.shape[0], 1):
        raise ValueError(f"bn_rm: expected {w.shape[0]} features (linear_w's outputs) or 1, "
                         f"got shape {tuple(arrays['bn_rm'].shape)}")
    for name in ("bn_rv", "bn_w", "bn_b"):
        _check_channel(name, arrays[name], n, "batch-norm feature")
    rm, rv = arrays["bn_rm"], arrays["bn_rv"]
    lb = arrays["linear_b"]
    w_dtype = w.dtype
    b_dtype = lb.dtype if lb is not None else w_dtype
    if lb is None:
        lb = np.zeros_like(rm)
    bw = arrays["bn_w"] if arrays["bn_w"] is not None else np.ones_like(rm)
    bb = arrays["bn_b"] if arrays["bn_b"] is not None else np.zeros_like(rm)
    scale = bw * (1.0 / np.sqrt(rv + float(bn_eps)))
    fw = w * scale[:, None].astype(w_dtype, copy=False)
    fb = ((lb - rm) * scale + bb).astype(b_dtype, copy=False)
    return Parameter(fw, _requires_grad(linear_w)), Parameter(fb, _requires_grad(linear_b))


def fuse_linear_bn_eval(linear, bn):
    """A new Linear (a deep copy of ``linear``) computing ``bn(linear(x))`` of the eval-mode
    pair (BatchNorm1d over the Linear's outputs). Both must be in eval mode (else `FusionError`)."""
    _check_eval(linear, bn, "linear")
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise FusionError(f"bn: to fuse, linear.out_features == bn.num_features or bn.num_features == 1, got "
                          f"linear.out_features={linear.out_features} and bn.num_features={bn.num_features}")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused
