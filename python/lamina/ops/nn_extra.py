"""nn-level ops: ELU, GELU, SiLU, Mish, constant/reflect/replicate/circular padding, embedding
lookup and binary cross-entropy on probabilities. Each is a Function (NumPy forward, or a _C
kernel for exact GELU, beside its backward rule) registered with samples; the compiler runs them
as callbacks (no lowering).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _C
from .._inplace import apply_inplace
from ..tensor import Function, Tensor, float32, float64
from .loss import TargetRangeError, _as_target, _legacy_reduction, _reduce
from .registry import BadSample, Sample, register

# The public functional names: lamina.nn.functional re-exports every name listed here.
__all__ = ["binary_cross_entropy", "channel_shuffle", "elu", "embedding", "embedding_bag", "gelu", "gumbel_softmax",
           "lp_pool1d", "lp_pool2d", "max_unpool1d", "max_unpool2d", "max_unpool3d", "pdist", "local_response_norm", "mish", "pad", "silu"]

_F = (float32, float64)
_erf = np.vectorize(math.erf, otypes=[np.float64])    # the test reference for exact GELU
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def _x(dt, shape, seed=70, low=-3.0, high=3.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dt)


def _float_input(input, fn):
    if not isinstance(input, Tensor):
        raise TypeError(f"input: {fn} expected a lamina Tensor, got {type(input).__name__}")
    if input.dtype not in _F:
        raise TypeError(f"input: {fn} expected dtype float32 or float64, got {input.dtype}")


def _loss_target(input, target, fn):
    _float_input(input, fn)
    if not isinstance(target, Tensor):
        target = Tensor._wrap(np.asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"target: {fn} expected the input's shape {tuple(input.shape)}, got {tuple(target.shape)}")
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    return target


def _flat(a):
    """A C-contiguous 1-D view (or copy) of `a`, 0-d included, for the elementwise kernels."""
    return np.ascontiguousarray(a).reshape(-1)


def _np_gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3)))
    return x * 0.5 * (1 + _erf(x / math.sqrt(2.0)).astype(np.float64))


@register("elu", dtypes=_F, call=lambda x, **kw: elu(x, **kw),
          samples=lambda dt: [Sample((_x(dt, (3, 5)),), name="alpha1"),
                              Sample((_x(dt, (4,)),), {"alpha": 0.3}, name="alpha0.3")],
          bad_samples=lambda: [BadSample((np.ones(3, np.int64),), error=TypeError, match="float")],
          reference=lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
          torch=lambda torch, x, **kw: torch.nn.functional.elu(x, **kw))
class ELU(Function):
    """x for x > 0, alpha * (e^x - 1) otherwise; the gradient at 0 takes the x <= 0 side
    (alpha), as PyTorch's does."""

    @staticmethod
    def forward(ctx, x, alpha):
        neg = x <= 0
        y = np.where(neg, alpha * np.expm1(np.minimum(x, 0)), x).astype(x.dtype, copy=False)
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return y

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        slope = np.where(x <= 0, ctx.alpha * np.exp(np.minimum(x, 0)), 1.0)
        return (dy * slope).astype(x.dtype, copy=False), None


@register("gelu", dtypes=_F, call=lambda x, **kw: gelu(x, **kw),
          kernels=("_C.gelu_forward", "_C.gelu_backward", "numpy (approximate='tanh')"),
          samples=lambda dt: [Sample((_x(dt, (3, 5)),), name="erf"),
                              Sample((_x(dt, (3, 5)),), {"approximate": "tanh"}, name="tanh"),
                              Sample((_x(dt, (0, 4)),), name="size0"), Sample((_x(dt, ()),), name="0d")],
          bad_samples=lambda: [BadSample((np.ones(3, np.float32),), {"approximate": "fast"}, ValueError,
                                         "approximate")],
          reference=_np_gelu, torch=lambda torch, x, **kw: torch.nn.functional.gelu(x, **kw))
class GELU(Function):
    """x * Phi(x) (exact, through erf) or PyTorch's tanh approximation."""

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3))
            return (0.5 * x * (1 + t)).astype(x.dtype, copy=False)
        y = np.empty(x.shape, x.dtype)
        _C.gelu_forward(_flat(x), y.reshape(-1))
        return y

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3)
            t = np.tanh(inner)
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
            slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner
        else:
            dx = np.empty(x.shape, x.dtype)       # d/dx x Phi(x) = Phi(x) + x phi(x), in the kernel
            _C.gelu_backward(_flat(x), _flat(dy.astype(x.dtype, copy=False)), dx.reshape(-1))
            return dx, None
        return (dy * slope).astype(x.dtype, copy=False), None


@register("silu", dtypes=_F, call=lambda x: silu(x),
          samples=lambda dt: [Sample((_x(dt, (3, 5)),)), Sample((_x(dt, (0, 2)),), name="size0")],
          bad_samples=lambda: [BadSample((np.ones(3, np.int64),), error=TypeError, match="float")],
          reference=lambda x: x / (1 + np.exp(-x)), torch=lambda torch, x: torch.nn.functional.silu(x))
class SiLU(Function):
    """x * sigmoid(x) (the swish)."""

    @staticmethod
    def forward(ctx, x):
        s = 0.5 * (1 + np.tanh(0.5 * x))   # sigmoid without overflow in exp
        ctx.save_for_backward(x, s)
        return (x * s).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, dy):
        x, s = ctx.saved_tensors
        return (dy * s * (1 + x * (1 - s))).astype(x.dtype, copy=False)


def _np_mish(x):
    return x * np.tanh(np.logaddexp(0, x))


@register("mish", dtypes=_F, call=lambda x: mish(x),
          samples=lambda dt: [Sample((_x(dt, (3, 5)),)), Sample((_x(dt, (6,), low=-40.0, high=40.0),), name="wide"),
                              Sample((_x(dt, (0, 2)),), name="size0"), Sample((_x(dt, ()),), name="0d")],
          bad_samples=lambda: [BadSample((np.ones(3, np.int64),), error=TypeError, match="float")],
          reference=_np_mish, torch=lambda torch, x: torch.nn.functional.mish(x))
class Mish(Function):
    """x * tanh(softplus(x)); d/dx = tanh(sp) + x * (1 - tanh(sp)^2) * sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        sp = np.logaddexp(0, x)            # softplus without overflow in exp
        ctx.save_for_backward(x, sp)
        return (x * np.tanh(sp)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, dy):
        x, sp = ctx.saved_tensors
        t = np.tanh(sp)
        s = -np.expm1(-sp)                 # sigmoid(x) = 1 - e^-softplus(x), exact far into x < 0
        return (dy * (t + x * (1 - t * t) * s)).astype(x.dtype, copy=False)


_NUMPY_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _source_index(size, before, after, mode):
    """For one padded dimension: the input index each output position reads (-1 = the fill)."""
    idx = np.arange(size)
    if mode == "constant":
        lo, hi = max(before, 0), max(after, 0)
        idx = np.pad(idx, (lo, hi), constant_values=-1)
        return idx[max(-before, 0): len(idx) - max(-after, 0)]
    return np.pad(idx, (before, after), mode=_NUMPY_PAD_MODE[mode])


@register("pad", dtypes=_F, call=lambda x, **kw: pad(x, **kw),
          samples=lambda dt: [Sample((_x(dt, (2, 3)),), {"pad": (1, 2), "value": 0.5}, name="constant"),
                              Sample((_x(dt, (2, 3, 4)),), {"pad": (-1, 2, 0, -1)}, name="crop"),
                              Sample((_x(dt, (1, 2, 4, 5)),), {"pad": (1, 2, 3, 1), "mode": "reflect"},
                                     name="reflect"),
                              Sample((_x(dt, (2, 3, 4)),), {"pad": (3, 2), "mode": "replicate"}, name="replicate"),
                              Sample((_x(dt, (2, 3, 4)),), {"pad": (2, 4), "mode": "circular"}, name="circular")],
          bad_samples=lambda: [BadSample((np.ones((2, 3), np.float32),), {"pad": (1,)}, ValueError, "even"),
                               BadSample((np.ones((2, 3), np.float32),), {"pad": (3, 0), "mode": "reflect"},
                                         ValueError, "reflect")],
          torch=lambda torch, x, **kw: torch.nn.functional.pad(x, **kw))
class Pad(Function):
    """Padding as a gather along each padded dimension; backward scatters (adds) the output
    gradient back to the positions it was read from, so reflect / replicate / circular
    borders receive the gradient of every copy."""

    @staticmethod
    def forward(ctx, x, pads, mode, value):
        # pads: ((dim, before, after), ...)
        ctx.plan = []
        y = x
        for dim, before, after in pads:
            idx = _source_index(y.shape[dim], before, after, mode)
            ctx.plan.append((dim, idx, y.shape[dim]))
            fill = idx < 0
            y = np.take(y, np.where(fill, 0, idx), axis=dim)
            if fill.any():
                shape = [1] * y.ndim
                shape[dim] = len(idx)
                y = np.where(fill.reshape(shape), np.asarray(value, dtype=x.dtype), y)
        return np.ascontiguousarray(y, dtype=x.dtype)

    @staticmethod
    def backward(ctx, dy):
        g = dy
        for dim, idx, size in reversed(ctx.plan):
            keep = idx >= 0
            moved = np.moveaxis(g, dim, 0)
            out = np.zeros((size,) + moved.shape[1:], dtype=dy.dtype)
            np.add.at(out, idx[keep], moved[keep])
            g = np.moveaxis(out, 0, dim)
        return np.ascontiguousarray(g), None, None, None


@register("embedding", dtypes=_F,
          call=lambda w, idx, **kw: embedding(idx, w, **kw),
          samples=lambda dt: [Sample((_x(dt, (5, 3)), np.array([[1, 4], [4, 0]])), name="plain"),
                              Sample((_x(dt, (5, 3)), np.array([1, 1, 2])), {"padding_idx": 1}, name="padding",
                                     grad=False),    # the padding row gets no gradient by definition
                              Sample((_x(dt, (5, 3)), np.array([[1, 4, 4], [4, 0, 1]])),
                                     {"scale_grad_by_freq": True}, name="freq", grad=False)],
          bad_samples=lambda: [BadSample((np.ones((5, 3), np.float32), np.array([0, 5])), error=IndexError,
                                         match="out of range"),
                               BadSample((np.ones((5, 3), np.float32), np.array([0.0, 1.0])), error=TypeError,
                                         match="integer")],
          reference=lambda w, idx, padding_idx=None, scale_grad_by_freq=False: w[idx],
          torch=lambda torch, w, idx, **kw: torch.nn.functional.embedding(idx, w, **kw))
class Embedding(Function):
    """weight[indices]; the weight's gradient adds each looked-up row's gradient (rows at
    padding_idx get none). With scale_grad_by_freq each row's gradient is divided by how often
    its index occurs in `indices` (PyTorch's rule, so frequent words do not dominate)."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx, scale_grad_by_freq=False):
        ctx.indices, ctx.padding_idx, ctx.rows = indices, padding_idx, weight.shape[0]
        ctx.scale_grad_by_freq = scale_grad_by_freq
        return weight[indices]

    @staticmethod
    def backward(ctx, dy):
        dw = np.zeros((ctx.rows,) + dy.shape[ctx.indices.ndim:], dtype=dy.dtype)
        flat = ctx.indices.reshape(-1)
        rows = dy.reshape((flat.size,) + dw.shape[1:])
        if ctx.scale_grad_by_freq:
            counts = np.bincount(flat, minlength=ctx.rows)
            rows = rows / counts[flat].astype(dy.dtype).reshape((-1,) + (1,) * (rows.ndim - 1))
        np.add.at(dw, flat, rows)
        if ctx.padding_idx is not None:
            dw[ctx.padding_idx] = 0
        return dw, None, None, None


@register("binary_cross_entropy", dtypes=_F,
          call=lambda x, t, **kw: binary_cross_entropy(x, t, **kw),
          samples=lambda dt: [Sample((_x(dt, (4, 3), 71, 0.05, 0.95), _x(dt, (4, 3), 72, 0.0, 1.0)), name="mean"),
                              Sample((_x(dt, (4, 3), 71, 0.05, 0.95), _x(dt, (4, 3), 72, 0.0, 1.0)),
                                     {"reduction": "none"}, name="none")],
          bad_samples=lambda: [BadSample((np.full(2, 1.5, np.float32), np.ones(2, np.float32)), error=ValueError,
                                         match="probabilities")],
          torch=lambda torch, x, t, **kw: torch.nn.functional.binary_cross_entropy(x, t, **kw))
class BinaryCrossEntropy(Function):
    """-w (t log x + (1 - t) log(1 - x)) per element, each log clamped at -100 and the input
    gradient's denominator at 1e-12, as PyTorch does (so x = 0 or 1 stays finite)."""

    @staticmethod
    def forward(ctx, x, t, w):
        with np.errstate(divide="ignore"):
            loss = -(t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log1p(-x), -100))
        if w is not None:
            loss = loss * w
        ctx.save_for_backward(x, t, w)
        return loss.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, dy):
        x, t, w = ctx.saved_tensors
        dx = dy * (x - t) / np.maximum((1 - x) * x, 1e-12)
        dt = None
        if ctx.needs_input_grad[1]:
            dt = dy * (np.maximum(np.log1p(-x), -100) - np.maximum(np.log(x), -100))
            dt = dt * w if w is not None else dt
        if w is not None:
            dx = dx * w
        return dx.astype(x.dtype, copy=False), dt, None


# ---------------------------------------------------------------- public entries
def elu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x) - 1).

    >>> import lamina, lamina.nn.functional as F
    >>> [round(v, 4) for v in F.elu(lamina.tensor([-1.0, 2.0])).tolist()]
    [-0.6321, 2.0]
    """
    if inplace:
        return apply_inplace(input, "elu_", elu, alpha)
    _float_input(input, "elu")
    return ELU.apply(input, float(alpha))


def gelu(input, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF; ``approximate='tanh'`` is PyTorch's tanh form.

    >>> import lamina, lamina.nn.functional as F
    >>> round(F.gelu(lamina.tensor([1.0])).item(), 4)
    0.8413
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    _float_input(input, "gelu")
    return GELU.apply(input, approximate)


def silu(input, inplace=False):
    """x * sigmoid(x).

    >>> import lamina, lamina.nn.functional as F
    >>> F.silu(lamina.tensor([0.0])).item()
    0.0
    """
    if inplace:
        return apply_inplace(input, "silu_", silu)
    _float_input(input, "silu")
    return SiLU.apply(input)


def mish(input, inplace=False):
    """x * tanh(softplus(x)) (PyTorch's F.mish).

    >>> import lamina, lamina.nn.functional as F
    >>> round(F.mish(lamina.tensor([1.0])).item(), 4)
    0.8651
    """
    if inplace:
        return apply_inplace(input, "mish_", mish)
    _float_input(input, "mish")
    return Mish.apply(input)


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dimensions: ``pad = (left, right, top, bottom, ...)``
    starts from the LAST dimension, as in PyTorch. Modes: constant (negative pads crop),
    reflect, replicate, circular.

    >>> import lamina, lamina.nn.functional as F
    >>> F.pad(lamina.tensor([[1.0, 2.0]]), (1, 2), value=9.0).tolist()
    [[9.0, 1.0, 2.0, 9.0, 9.0]]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"input: expected a lamina Tensor, got {type(input).__name__}")
    pad = tuple(pad)
    if len(pad) % 2 or any(int(p) != p for p in pad):
        raise ValueError(f"pad: expected an even number of integers (left, right, ...), got {pad}")
    if len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: {len(pad)} values pad {len(pad) // 2} dimensions, but input has "
                         f"{input.ndim} (shape {tuple(input.shape)})")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(f"mode: expected 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if mode != "constant" and value not in (None, 0, 0.0):
        raise ValueError(f"value: only mode='constant' fills with a value, got value={value} with mode={mode!r}")
    plan = []
    for i in range(len(pad) // 2):
        dim = input.ndim - 1 - i
        before, after = int(pad[2 * i]), int(pad[2 * i + 1])
        size = input.shape[dim]
        if mode == "constant":
            if size + before + after < 0:
                raise ValueError(f"pad: ({before}, {after}) crops dimension {dim} of size {size} below zero")
        elif before < 0 or after < 0:
            raise ValueError(f"pad: mode {mode!r} needs non-negative pads, got ({before}, {after}) for dimension {dim}")
        elif mode == "reflect" and (before >= size or after >= size):
            raise ValueError(f"pad: reflect padding ({before}, {after}) must be smaller than dimension {dim}'s "
                             f"size {size}")
        elif mode == "circular" and (before > size or after > size):
            raise ValueError(f"pad: circular padding ({before}, {after}) must be at most dimension {dim}'s "
                             f"size {size}")
        elif mode == "replicate" and size == 0:
            raise ValueError(f"pad: replicate padding of dimension {dim} needs a non-empty dimension")
        if before or after:
            plan.append((dim, before, after))
    return Pad.apply(input, tuple(plan), mode, 0.0 if value is None else float(value))


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta (AlexNet's LRN), as
    PyTorch's: the window of channel c is [c - size//2, c + (size-1)//2], zero beyond the ends,
    and the mean always divides by `size`. A composition of differentiable ops.

    >>> import lamina, lamina.nn.functional as F
    >>> round(F.local_response_norm(lamina.ones(1, 3, 1, 1), 2, alpha=1.0, k=1.0)[0, 0, 0, 0].item(), 4)
    0.7378
    """
    from .pool import avg_pool2d
    if not isinstance(input, Tensor):
        raise TypeError(f"input: expected a lamina Tensor, got {type(input).__name__}")
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} dimensions)")
    if int(size) != size or size < 1:
        raise ValueError(f"size: expected a positive integer, got {size!r}")
    size = int(size)
    if input.numel() == 0:
        return input
    shape = tuple(input.shape)
    sq = (input * input).reshape(shape[0], 1, shape[1], -1)                 # (N, 1, C, rest)
    sq = pad(sq, (0, 0, size // 2, (size - 1) // 2))
    div = avg_pool2d(sq, (size, 1), stride=1).reshape(shape)
    return input / (div * alpha + k) ** beta


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``input``: shape input.shape + (dim,).

    >>> import lamina, lamina.nn.functional as F
    >>> F.embedding(lamina.tensor([2, 0]), lamina.tensor([[0.0], [1.0], [2.0]])).tolist()
    [[2.0], [0.0]]
    """
    idx = _as_target(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"input: embedding expected integer indices, got dtype {idx.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"weight: expected shape (num_embeddings, embedding_dim), got {tuple(weight.shape)}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)].flat[0]
        raise TargetRangeError(f"input: index {int(bad)} out of range [0, {n}) (num_embeddings)")
    if padding_idx is not None:
        padding_idx = int(padding_idx) + (n if padding_idx < 0 else 0)
    if max_norm is not None:
        _renorm_rows_(weight, idx, float(max_norm), float(norm_type))
    check_dense_embedding(sparse)
    return Embedding.apply(weight, np.ascontiguousarray(idx, dtype=np.int64), padding_idx,
                           bool(scale_grad_by_freq))


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,
                  mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False,
                  padding_idx=None):
    """Sums, means or maxima of bags of embedding rows, PyTorch's ``F.embedding_bag``: a 2-D
    input is B bags of equal length; a 1-D input is cut into bags at `offsets` (bag b holds
    input[offsets[b]:offsets[b+1]], the last one running to the end unless
    include_last_offset). Entries equal to padding_idx are left out (and not counted by mean);
    an empty bag gives zeros. per_sample_weights scale the rows (mode='sum' only). Built from
    the embedding lookup and a (B, n) weighting matmul, so gradients come from those ops.

    >>> import lamina, lamina.nn.functional as F
    >>> w = lamina.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    >>> F.embedding_bag(lamina.tensor([0, 1, 2, 2]), w, lamina.tensor([0, 2])).tolist()
    [[0.5, 1.0], [4.0, 4.0]]
    """
    from ..ops.shape import stack
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    idx = _as_target(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"input: embedding_bag expected integer indices, got dtype {idx.dtype}")
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch "
                             "of fixed length sequences.")
        B, L = idx.shape
        starts = np.arange(B, dtype=np.int64) * L
        flat = idx.reshape(-1)
        ends = starts + L
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        off = np.asarray(_as_target(offsets), dtype=np.int64)
        if off.ndim != 1:
            raise ValueError(f"offsets has to be a 1D Tensor, got shape {off.shape}")
        flat = idx
        if include_last_offset:
            starts, ends = off[:-1], off[1:]
        else:
            starts, ends = off, np.append(off[1:], idx.shape[0])
        if off.size and (off[0] != 0 or np.any(np.diff(off) < 0) or off[-1] > idx.shape[0]):
            raise ValueError(f"offsets: expected non-decreasing values starting at 0 and at most "
                             f"{idx.shape[0]} (the input's length), got {off.tolist()}")
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {idx.ndim}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is "
                                      f"only supported for mode='sum' (got mode='{mode}'). Please open a "
                                      "feature request on GitHub.")
        if tuple(per_sample_weights.shape) != tuple(np.shape(idx)):
            raise ValueError(f"per_sample_weights: expected shape {tuple(np.shape(idx))} (the input's), "
                             f"got {tuple(per_sample_weights.shape)}")
    n = weight.shape[0]
    if padding_idx is not None:
        padding_idx = int(padding_idx) + (n if padding_idx < 0 else 0)
    rows = embedding(Tensor._wrap(np.ascontiguousarray(flat, dtype=np.int64)), weight, None, max_norm,
                     norm_type, scale_grad_by_freq, sparse)                          # (n_total, D)
    keep = np.ones(flat.shape[0], bool) if padding_idx is None else flat != padding_idx
    B = len(starts)
    if mode == "max":
        D = weight.shape[1]
        bags = []
        for b in range(B):
            sel = np.nonzero(keep[starts[b]:ends[b]])[0] + starts[b]
            bags.append(rows[Tensor._wrap(sel)].max(0)[0] if sel.size else
                        Tensor._wrap(np.zeros(D, weight.dtype)))
        return stack(bags, 0) if B else Tensor._wrap(np.zeros((0, D), weight.dtype))
    mix = np.zeros((B, flat.shape[0]), weight.dtype)        # bag b's weight on each row
    for b in range(B):
        k = keep[starts[b]:ends[b]]
        if mode == "mean" and k.any():
            mix[b, starts[b]:ends[b]] = k / k.sum()
        else:
            mix[b, starts[b]:ends[b]] = k
    mix = Tensor._wrap(mix)
    if per_sample_weights is not None:
        mix = mix * per_sample_weights.reshape(1, -1)
    return mix @ rows


def check_dense_embedding(sparse):
    if sparse:
        raise NotImplementedError("sparse: lamina has no sparse tensors, so embedding gradients are dense; "
                                  "pass sparse=False (optimizers then update the whole weight)")


def _renorm_rows_(weight, idx, max_norm, norm_type):
    # PyTorch renormalizes the looked-up rows of the weight in place (outside autograd)
    rows = np.unique(idx)
    w = weight._data[rows]
    norms = (np.abs(w) ** norm_type).sum(1) ** (1.0 / norm_type)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    weight._data[rows] = w * scale[:, None]


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) on probabilities ``input`` in [0, 1] (logs clamped at
    -100 as in PyTorch). Prefer binary_cross_entropy_with_logits on raw scores.

    >>> import lamina, lamina.nn.functional as F
    >>> round(F.binary_cross_entropy(lamina.tensor([0.5]), lamina.tensor([1.0])).item(), 4)
    0.6931
    """
    target = _loss_target(input, target, "binary_cross_entropy")
    x = input._data
    if x.size and not (np.all(x >= 0) and np.all(x <= 1)):
        raise ValueError("input: binary_cross_entropy expects probabilities in [0, 1] (apply sigmoid, or use "
                         f"binary_cross_entropy_with_logits), got values in [{x.min()}, {x.max()}]")
    w = None
    if weight is not None:
        w = np.asarray(_as_target(weight), dtype=input.dtype)
        try:
            w = np.ascontiguousarray(np.broadcast_to(w, input.shape))
        except ValueError:
            raise ValueError(f"weight: expected a shape broadcastable to the input's {tuple(input.shape)}, "
                             f"got {w.shape}") from None
    loss = BinaryCrossEntropy.apply(input, target, w)
    return _reduce(loss, _legacy_reduction(size_average, reduce, reduction))



# ---------------------------------------------------------------------------- small compositions
def channel_shuffle(input, groups):
    """(N, g*c, ...) -> channels reordered as (c, g): ShuffleNet's channel shuffle."""
    if int(groups) <= 0 or input.shape[1] % int(groups):
        raise ValueError(f"Number of channels must be divisible by groups. Got {input.shape[1]} channels and "
                         f"{groups} groups.")
    g = int(groups)
    n, c = input.shape[0], input.shape[1]
    rest = tuple(input.shape[2:])
    return input.reshape(n, g, c // g, *rest).transpose(1, 2).reshape(n, c, *rest)


def pdist(input, p=2):
    """The p-norm distances between each pair of rows of an (N, M) input, the upper triangle
    flattened row by row (N (N - 1) / 2 values), as PyTorch's pdist."""
    if input.ndim != 2:
        raise ValueError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    if i.size == 0:
        return input.sum(1)[:0]
    d = input[Tensor._wrap(i.astype(np.int64))] - input[Tensor._wrap(j.astype(np.int64))]
    return d.norm(p, 1)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """Samples from the Gumbel-softmax distribution, PyTorch's draws (-log of exponential_
    draws); hard=True returns one-hot vectors with the soft sample's gradient (straight-through)."""
    from .activation import softmax
    g = -logits.new_empty(tuple(logits.shape)).exponential_().log()
    y = softmax((logits + g) / tau, dim)
    if not hard:
        return y
    idx = y.detach().argmax(dim, keepdim=True)
    onehot = logits.new_zeros(tuple(logits.shape)).scatter_(dim, idx, 1.0)
    return onehot - y.detach() + y


def _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, nd):
    from .pool import avg_pool1d, avg_pool2d
    k = (kernel_size,) * nd if isinstance(kernel_size, int) else tuple(kernel_size)
    pooled = (avg_pool1d if nd == 1 else avg_pool2d)(input ** norm_type, kernel_size, stride, 0, ceil_mode)
    from ..functions import sign
    from .activation import activation
    return (sign(pooled) * activation(pooled.abs(), "relu")).mul(float(np.prod(k))) ** (1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum of x^p over each window)^(1/p), PyTorch's lp_pool1d."""
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum of x^p over each window)^(1/p), PyTorch's lp_pool2d."""
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, 2)


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, nd):
    """Place each value at its max-pool index in a zero (N, C, *out) map (indices flat per plane)."""
    k = (kernel_size,) * nd if isinstance(kernel_size, int) else tuple(kernel_size)
    s = k if stride is None else ((stride,) * nd if isinstance(stride, int) else tuple(stride))
    p = (padding,) * nd if isinstance(padding, int) else tuple(padding)
    lead = tuple(input.shape[:-nd])
    size = tuple(input.shape[-nd:])
    if output_size is None:
        out = tuple((size[d] - 1) * s[d] - 2 * p[d] + k[d] for d in range(nd))
    else:
        out = tuple(int(v) for v in tuple(output_size)[-nd:])
    plane = int(np.prod(out))
    idx = indices._data if isinstance(indices, Tensor) else np.asarray(indices)
    if idx.size and (idx.min() < 0 or idx.max() >= plane):
        raise ValueError(f"Found an invalid max index: {int(idx.max())} (output volumes are of size "
                         f"{'x'.join(map(str, out))})")
    flat_in = input.reshape(-1, int(np.prod(size)))
    rows = flat_in.shape[0]
    base = (np.arange(rows, dtype=np.int64) * plane)[:, None]
    target = Tensor._wrap((idx.reshape(rows, -1).astype(np.int64) + base).reshape(-1))
    zeros = Tensor._wrap(np.zeros(rows * plane, dtype=input.dtype))
    from ..functions import index_add
    return index_add(zeros, 0, target, flat_in.reshape(-1)).reshape(*lead, *out)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of max_pool1d(return_indices=True): values at their indices, zeros elsewhere."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of max_pool3d(return_indices=True): values at their indices, zeros elsewhere."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of max_pool2d(return_indices=True): values at their indices, zeros elsewhere."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)
