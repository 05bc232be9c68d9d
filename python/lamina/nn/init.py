"""Weight initialisation with PyTorch's names and formulas (lamina's global RNG)."""
import math

import numpy as np

from .. import random as _random
from ..tensor import no_grad


def calculate_gain(nonlinearity, param=None):
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "identity", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"nonlinearity: unsupported {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError("fan in and fan out need a tensor with at least 2 dimensions")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode: expected 'fan_in' or 'fan_out', got {mode!r}")


def _fill(tensor, values):
    with no_grad():
        tensor._data[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def _draw_dtype(tensor):
    # PyTorch draws float64 tensors from 64-bit outputs and every other float dtype in float32.
    return np.float64 if tensor.dtype == np.float64 else np.float32


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    g = _random.generator_of(generator)
    return _fill(tensor, g.uniform(a, b, tuple(tensor.shape), dtype=_draw_dtype(tensor)))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    g = _random.generator_of(generator)
    return _fill(tensor, g.normal(mean, std, tuple(tensor.shape), dtype=_draw_dtype(tensor)))


def constant_(tensor, val):
    tensor._data[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std  # PyTorch's arithmetic, so the float32 bounds round alike
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialisation, uniform: bound = gain * sqrt(3 / fan)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Normal(mean, std) values truncated to [a, b] by rejection, PyTorch's algorithm draw for
    draw (so one seed gives PyTorch's values): when [a, b] holds more than 30% of the mass, out of
    range values are redrawn from the normal until none is left; otherwise uniform candidates on
    [a, b] are accepted with probability pdf / pdf at the mode."""
    import math
    import warnings

    def cdf(v):
        return (1.0 + math.erf(v / math.sqrt(2.0))) / 2.0
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    g = _random.generator_of(generator)
    shape, dt = tuple(tensor.shape), np.dtype(tensor.dtype)
    draw_dt = _draw_dtype(tensor)
    if cdf((b - mean) / std) - cdf((a - mean) / std) > 0.3:
        lo, hi = dt.type(a), dt.type(b)
        result = g.normal(mean, std, shape, dtype=draw_dt).astype(dt)
        while True:
            redo = (result < lo) | (result > hi)
            if not redo.any():
                break
            result = np.where(redo, g.normal(mean, std, shape, dtype=draw_dt).astype(dt), result)
        return _fill(tensor, result)
    mode = max(a, min(mean, b))
    log_peak = -0.5 * ((mode - mean) / std) ** 2
    m, s, half, lp = dt.type(mean), dt.type(std), dt.type(-0.5), dt.type(log_peak)

    def log_ratio(c):  # log(pdf(c) / pdf(mode)), in the tensor's dtype op by op as PyTorch rounds it
        z = (c - m) / s
        return z * z * half - lp
    result = g.uniform(a, b, shape, dtype=draw_dt).astype(dt)
    pending = np.log(g.uniform(0.0, 1.0, shape, dtype=draw_dt).astype(dt)) > log_ratio(result)
    while pending.any():
        cand = g.uniform(a, b, shape, dtype=draw_dt).astype(dt)
        result = np.where(pending, cand, result)
        pending = np.where(pending, np.log(g.uniform(0.0, 1.0, shape, dtype=draw_dt).astype(dt)) > log_ratio(cand),
                           pending)
    return _fill(tensor, result)


def orthogonal_(tensor, gain=1.0, generator=None):
    """A (semi-)orthogonal matrix (Saxe et al. 2013) from the QR decomposition of a normal draw,
    signs fixed by R's diagonal so the result is unique, as PyTorch's."""
    if tensor.ndim < 2:
        raise ValueError("orthogonal_: only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    g = _random.generator_of(generator)
    flat = g.normal(0.0, 1.0, (rows, cols), dtype=_draw_dtype(tensor)).astype(tensor.dtype)
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (q * gain).reshape(tuple(tensor.shape)))


def eye_(tensor):
    """The identity matrix in a 2-D tensor (Linear layers that start as the identity)."""
    if tensor.ndim != 2:
        raise ValueError("eye_: only 2-D tensors are supported")
    return _fill(tensor, np.eye(*tensor.shape, dtype=tensor.dtype))


def dirac_(tensor, groups=1):
    """Conv weights (3-, 4- or 5-D) that pass their input channels through unchanged."""
    d = tensor.ndim
    if d not in (3, 4, 5):
        raise ValueError("dirac_: only tensors with 3, 4, or 5 dimensions are supported")
    out_per_group = tensor.shape[0] // groups
    if tensor.shape[0] % groups:
        raise ValueError("dirac_: dim 0 must be divisible by groups")
    w = np.zeros(tuple(tensor.shape), dtype=tensor.dtype)
    centre = tuple(s // 2 for s in tensor.shape[2:])
    for gi in range(groups):
        for k in range(min(out_per_group, tensor.shape[1])):
            w[(gi * out_per_group + k, k) + centre] = 1
    return _fill(tensor, w)
