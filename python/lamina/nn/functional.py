"""lamina.nn.functional: PyTorch's functional names on lamina's ops (defined in lamina.ops)."""
from __future__ import annotations

import numpy as np

from .._inplace import apply_inplace as _apply_inplace
from ..tensor import Tensor, float32, float64

from ..ops.activation import activation as _activation, log_softmax, softmax  # noqa: F401
from ..ops import act_extra as _act_extra, conv as _conv, nn_extra as _nn_extra, pool as _pool
from ..ops import attention as _attention, loss_extra as _loss_extra, resample as _resample, volume as _volume, grid as _grid
from ..ops.linalg import check_linear as _check_linear, linear_checked  # noqa: F401
from ..ops.stats import vector_norm as _vector_norm
from ..ops.loss import (BCEWithLogits, CrossEntropy, MSE, TargetDtypeError, TargetRangeError,  # noqa: F401
                        _as_target, _cross_entropy_composite, _legacy_reduction, _reduce,
                        binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss)

# A family module's public functional names are its __all__: a new op listed there is
# F.<name> with no edit here (see README.md, "Adding an op").
for _family in (_conv, _pool, _nn_extra, _act_extra, _resample, _attention, _loss_extra, _volume, _grid):
    globals().update({_name: getattr(_family, _name) for _name in _family.__all__})
del _family


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p over dim, eps), as PyTorch's F.normalize.

    >>> import lamina, lamina.nn.functional as F
    >>> F.normalize(lamina.tensor([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    if out is not None:
        raise TypeError("normalize: out= is not supported")
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)
    return input / denom


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 / ||x1|| * x2 / ||x2||) over dim, each norm at least eps (PyTorch's formula)."""
    from ..tensor import no_grad
    n1 = _vector_norm(x1, 2, dim, True)
    n2 = _vector_norm(x2, 2, dim, True)
    with no_grad():  # PyTorch clamps the norms in place, outside autograd
        n1._data[...] = np.maximum(n1._data, eps)
        n2._data[...] = np.maximum(n2._data, eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim."""
    diff = x1 - x2 + eps
    return _vector_norm(diff, p, -1 if diff.ndim else None, keepdim)


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, on lamina's GEMM (bias fused into its epilogue).

    >>> import lamina, lamina.nn.functional as F
    >>> F.linear(lamina.ones(2, 3), lamina.ones(4, 3)).shape
    lamina.Size([2, 4])
    """
    return linear_checked(input, weight, bias)


def _linear_act(input, weight, bias, act):
    """linear followed by relu/sigmoid/tanh in one GEMM pass (used by Sequential)."""
    return linear_checked(input, weight, bias, act)


def identity(input):
    return input


def relu(input, inplace=False):
    if inplace:
        return _apply_inplace(input, "relu_", relu)
    return _activation(input, "relu")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    if inplace:
        return _apply_inplace(input, "leaky_relu_", leaky_relu, negative_slope)
    return _activation(input, "leaky_relu", float(negative_slope))


def softplus(input, beta=1.0, threshold=20.0):
    """Soft ReLU, (1/beta) log(1 + e^(beta x)), and x itself where beta x > threshold (PyTorch).

    >>> import lamina, lamina.nn.functional as F
    >>> F.softplus(lamina.tensor([0.0, 6.0]), threshold=5).tolist()
    [0.6931471824645996, 6.0]
    """
    z = input if beta == 1.0 else input * beta
    linear = z._data > threshold
    soft = _activation(z, "softplus")
    if beta != 1.0:
        soft = soft * (1.0 / beta)
    if not linear.any():
        return soft
    keep = linear.astype(input.dtype)
    return soft * (1 - keep) + input * keep


def sigmoid(input):
    return _activation(input, "sigmoid")


def tanh(input):
    return _activation(input, "tanh")


def step(input):
    """The lecture's hard threshold I[z > 0]: step(0) = 0, and the gradient is zero everywhere.

    >>> import lamina, lamina.nn.functional as F
    >>> F.step(lamina.tensor([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 1.0]
    """
    return _activation(input, "step")


# --------------------------------------------------------------------------- issue 13 additions
from ..ops.nn_extra import _loss_target  # noqa: E402


def _float_input(input, fn):
    if not isinstance(input, Tensor):
        raise TypeError(f"input: {fn} expected a lamina Tensor, got {type(input).__name__}")
    if input.dtype not in (float32, float64):
        raise TypeError(f"input: {fn} expected dtype float32 or float64, got {input.dtype}")


def one_hot(tensor, num_classes=-1):
    """int64 one-hot rows: shape ``tensor.shape + (num_classes,)``; ``-1`` means max + 1.

    >>> import lamina, lamina.nn.functional as F
    >>> F.one_hot(lamina.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    t = _as_target(tensor)
    if t.dtype.kind not in "iu":
        raise TypeError(f"tensor: one_hot expected integer class indices, got dtype {t.dtype}")
    if int(num_classes) != num_classes or num_classes < -1:
        raise ValueError(f"num_classes: expected a non-negative integer or -1, got {num_classes}")
    if t.size and t.min() < 0:
        raise ValueError(f"tensor: class values must be non-negative, got {int(t.min())}")
    if num_classes == -1:
        if t.size == 0:
            raise ValueError("num_classes: cannot infer it (-1) from an empty tensor")
        num_classes = int(t.max()) + 1
    elif t.size and t.max() >= num_classes:
        raise ValueError(f"tensor: class value {int(t.max())} out of range for num_classes={num_classes}")
    out = np.zeros(t.shape + (int(num_classes),), dtype=np.int64)
    np.put_along_axis(out, t.astype(np.int64)[..., None], 1, axis=-1)
    return Tensor._wrap(out)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """|input - target|, reduced (the gradient at equality is 0).

    >>> import lamina, lamina.nn.functional as F
    >>> F.l1_loss(lamina.tensor([1.0, 3.0]), lamina.tensor([2.0, 1.0])).item()
    1.5
    """
    target = _loss_target(input, target, "l1_loss")
    return _reduce((input - target).abs(), _legacy_reduction(size_average, reduce, reduction))


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target); beta = 0 is L1.

    >>> import lamina, lamina.nn.functional as F
    >>> F.smooth_l1_loss(lamina.tensor([0.5, 3.0]), lamina.tensor([0.0, 0.0]), reduction="sum").item()
    2.625
    """
    if beta < 0:
        raise ValueError(f"beta: expected a value >= 0, got {beta}")
    target = _loss_target(input, target, "smooth_l1_loss")
    reduction = _legacy_reduction(size_average, reduce, reduction)
    a = (input - target).abs()
    if beta == 0:
        return _reduce(a, reduction)
    m = a.clamp(max=float(beta))   # |d| inside the quadratic zone, beta outside
    return _reduce(m * m * (0.5 / beta) + (a - m), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta): smooth_l1 scaled by delta."""
    if delta <= 0:
        raise ValueError(f"delta: expected a value > 0, got {delta}")
    target = _loss_target(input, target, "huber_loss")
    a = (input - target).abs()
    m = a.clamp(max=float(delta))
    return _reduce(m * m * 0.5 + (a - m) * float(delta), reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || q) pointwise with ``input = log q``: target * (log target - input), 0 where
    target = 0 (or exp(t) * (t - input) with ``log_target``). ``reduction='batchmean'`` divides
    the sum by the batch size, which is the true KL divergence; 'mean' (the default, as in
    PyTorch) divides by the number of elements.

    >>> import math, lamina, lamina.nn.functional as F
    >>> p = lamina.tensor([0.5, 0.5])
    >>> round(F.kl_div(p.log(), p, reduction="sum").item(), 6)
    0.0
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"reduction: expected 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}")
    target = _loss_target(input, target, "kl_div")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        if target._data.size and target._data.min() < 0:
            raise ValueError(f"target: kl_div expects probabilities (>= 0), got a minimum of {target._data.min()}"
                             " (pass log_target=True for log-probabilities)")
        zero = Tensor._wrap((target._data == 0).astype(input.dtype))
        loss = target * ((target + zero).log() - input)   # xlogy: 0 * log 0 = 0
    if reduction == "batchmean":
        return loss.sum() / float(input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


# Normalization and dropout: the functional forms beside their modules (ops in lamina.ops.norm).
from .normalization import (batch_norm, dropout, dropout1d, dropout2d, dropout3d, group_norm, rms_norm,  # noqa: E402,F401
                            instance_norm, layer_norm, alpha_dropout, feature_alpha_dropout)


def bilinear(input1, input2, weight, bias=None):
    """y = x1^T A x2 + b over the last dims: x1 (*, I), x2 (*, J), weight (O, I, J), bias (O,)."""
    if weight.ndim != 3:
        raise ValueError(f"weight: expected 3-D (out, in1, in2), got shape {tuple(weight.shape)}")
    O, I, J = weight.shape
    if input1.shape[-1] != I or input2.shape[-1] != J or tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise ValueError(f"input1, input2: expected (*, {I}) and (*, {J}) with the same leading dims, got "
                         f"{tuple(input1.shape)} and {tuple(input2.shape)}")
    lead = tuple(input1.shape[:-1])
    x1, x2 = input1.reshape(-1, I), input2.reshape(-1, J)
    t = (x1 @ weight.permute(1, 0, 2).reshape(I, O * J)).reshape(-1, O, J)
    y = (t * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, O)


# PyTorch's in-place spellings: F.relu_(x) is F.relu(x, inplace=True)
def _inplace_alias(name):
    def f(input, *args, **kwargs):
        return globals()[name](input, *args, inplace=True, **kwargs)
    f.__name__ = name + "_"
    f.__doc__ = f"F.{name}(input, ..., inplace=True)"
    return f


for _name in ("relu", "elu", "leaky_relu", "hardtanh", "threshold", "selu", "celu"):
    globals()[_name + "_"] = _inplace_alias(_name)
del _name


native_channel_shuffle = channel_shuffle  # noqa: F821  (PyTorch's name for the same op)
