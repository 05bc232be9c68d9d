"""lamina.nn.functional: PyTorch's functional names on lamina's ops (defined in lamina.ops)."""
from __future__ import annotations

from ..ops.activation import activation as _activation, log_softmax, softmax  # noqa: F401
from ..ops.conv import conv1d, conv2d  # noqa: F401
from ..ops.linalg import check_linear as _check_linear, linear_checked  # noqa: F401
from ..ops.loss import (BCEWithLogits, CrossEntropy, MSE, _as_target, _cross_entropy_composite,  # noqa: F401
                        _reduce, binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss)
from ..ops.pool import adaptive_avg_pool2d, avg_pool1d, avg_pool2d, max_pool1d, max_pool2d  # noqa: F401


def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, on lamina's GEMM (bias fused into its epilogue).

    >>> import lamina, lamina.nn.functional as F
    >>> F.linear(lamina.ones(2, 3), lamina.ones(4, 3)).shape
    (2, 4)
    """
    return linear_checked(input, weight, bias)


def _linear_act(input, weight, bias, act):
    """linear followed by relu/sigmoid/tanh in one GEMM pass (used by Sequential)."""
    return linear_checked(input, weight, bias, act)


def identity(input):
    return input


def relu(input, inplace=False):
    return _activation(input, "relu")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _activation(input, "leaky_relu", float(negative_slope))


def softplus(input, beta=1.0, threshold=20.0):
    """Soft ReLU, log(1 + e^x) (PyTorch's beta=1, threshold=20 form)."""
    if beta != 1.0 or threshold != 20.0:
        return (1.0 / beta) * _activation(input * beta, "softplus")
    return _activation(input, "softplus")


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


# Normalization and dropout: the functional forms beside their modules (ops in lamina.ops.norm).
from .normalization import batch_norm, dropout, dropout2d, group_norm, layer_norm  # noqa: E402,F401
