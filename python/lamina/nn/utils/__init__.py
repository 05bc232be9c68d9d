"""nn.utils: gradient clipping with PyTorch's semantics (in place on each ``p.grad``), parameter
vectors, and conv/linear + batch-norm fusion for inference (fusion.py)."""
import math

import numpy as np

from ...tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so their joint ``norm_type`` norm is at most ``max_norm``;
    returns the norm before clipping (a 0-d Tensor). The scale is
    ``min(1, max_norm / (total_norm + 1e-6))``, as in PyTorch.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.zeros(2)); w.grad = lamina.tensor([3.0, 4.0])
    >>> lamina.nn.utils.clip_grad_norm_([w], max_norm=1.0).item()
    5.0
    >>> [round(g, 4) for g in w.grad.tolist()]
    [0.6, 0.8]
    """
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor._wrap(np.asarray(0.0, dtype=np.float32))
    if norm_type <= 0 and norm_type != -math.inf:
        raise ValueError(f"norm_type: expected a positive number or inf, got {norm_type}")
    dtype = np.result_type(*[g._data.dtype for g in grads])
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g._data))) if g._data.size else 0.0 for g in grads)
    else:
        # the norm of the per-tensor norms (each in float64) is the norm over every element
        norms = np.array([np.linalg.norm(g._data.ravel().astype(np.float64), ord=norm_type)
                          for g in grads])
        total = float(np.linalg.norm(norms, ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"parameters: the total norm of order {norm_type} of the gradients is "
                           f"{total}; clip_grad_norm_ cannot scale them (error_if_nonfinite=True)")
    coef = min(max_norm / (total + 1e-6), 1.0)
    if coef < 1.0 or math.isnan(coef):
        for g in grads:
            g._data *= g._data.dtype.type(coef)
    return Tensor._wrap(np.asarray(total, dtype=dtype))


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value], in place.

    >>> import numpy as np, lamina
    >>> w = lamina.nn.Parameter(np.zeros(3)); w.grad = lamina.tensor([-5.0, 0.5, 2.0])
    >>> lamina.nn.utils.clip_grad_value_([w], 1.0); w.grad.tolist()
    [-1.0, 0.5, 1.0]
    """
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_value: expected a value >= 0, got {clip_value}")
    for g in _grads(parameters):
        np.clip(g._data, -clip_value, clip_value, out=g._data)


def parameters_to_vector(parameters):
    """All parameters flattened and joined into one 1-d Tensor (a copy)."""
    return Tensor._wrap(np.concatenate([p._data.ravel() for p in parameters]))


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-d ``vec`` into each parameter, in place."""
    v = vec._data if isinstance(vec, Tensor) else np.asarray(vec)
    params = list(parameters)
    need = sum(p._data.size for p in params)
    if v.ndim != 1 or v.size != need:
        raise ValueError(f"vec: expected a 1-d tensor of {need} elements (the parameters' total), "
                         f"got shape {tuple(v.shape)}")
    i = 0
    for p in params:
        n = p._data.size
        p._data[...] = v[i:i + n].reshape(p._data.shape)
        i += n


from . import fusion, rnn  # noqa: E402,F401
from .weight_norms import remove_spectral_norm, remove_weight_norm, spectral_norm, weight_norm  # noqa: E402,F401
from .fusion import (fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval,  # noqa: E402,F401
                     fuse_linear_bn_weights)
