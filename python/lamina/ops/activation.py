"""Activations (relu, leaky_relu, softplus, sigmoid, tanh, step), softmax / log_softmax."""
from __future__ import annotations

import warnings
from collections import namedtuple

import numpy as np

from .._dims import normalize_dim

from .. import _C
from ..tensor import Function, float32, float64
from ._common import empty, float_check, is_float
from ._params import ActAttrs
from .registry import BadSample, Sample, export, register

_F = (float32, float64)
# Activations whose derivative the kernel computes from the output y (the rest read x).
ACT_READS_Y = ("sigmoid", "tanh")
_KINDS = ("relu", "leaky_relu", "softplus", "sigmoid", "tanh", "step")


def _x(dt, shape, seed=40):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dt)
    return np.where(np.abs(x) < 0.05, dt.type(0.3), x)     # away from relu's kink at 0


# Both x and y are kept (so an in-place change to either is caught before backward), though the
# kernel reads one: y for ACT_READS_Y kinds, else x.
ActSaved = namedtuple("ActSaved", "x y kind negative_slope")


def _activation_rule(k, s, dy, out):
    """The one backward of every activation, eager and compiled."""
    x, y, kind, slope = s
    return k.activation_bwd(kind, y if kind in ACT_READS_Y else x, dy, slope, out=out[0]), None, None


def _lower_activation(L, fn):
    (x,) = fn.inputs()
    kind, slope = fn.args[1], fn.args[2]
    if not is_float(x):
        return False
    L.emit("act_fwd", [x], [fn.out], ActAttrs(n=x.size, kind=kind, negative_slope=float(slope)), src=fn.op)
    fn.saved = ActSaved(x=x, y=fn.out, kind=kind, negative_slope=slope)
    fn.lowered_by = "act"
    return True


def _torch_act(torch, x, kind="relu"):
    F = torch.nn.functional
    return {"relu": F.relu, "leaky_relu": F.leaky_relu, "softplus": F.softplus, "sigmoid": torch.sigmoid,
            "tanh": torch.tanh, "step": lambda t: (t > 0).to(t.dtype)}[kind](x)


def _np_act(x, kind="relu"):
    return {"relu": lambda: np.maximum(x, 0), "leaky_relu": lambda: np.where(x > 0, x, x * x.dtype.type(0.01)),
            "softplus": lambda: np.logaddexp(0, x), "sigmoid": lambda: 1 / (1 + np.exp(-x)),
            "tanh": lambda: np.tanh(x), "step": lambda: (x > 0).astype(x.dtype)}[kind]()


@register("activation", lower=_lower_activation, backward=_activation_rule,
          kernels=("_C.act_forward", "_C.act_backward"), dtypes=_F,
          call=lambda x, kind="relu": activation(x, kind),
          samples=lambda dt: [Sample((_x(dt, (3, 5)),), {"kind": k}, name=k, grad=k != "step") for k in _KINDS]
          + [Sample((_x(dt, (0, 5)),), {"kind": "relu"}, name="size0"),
             Sample((_x(dt, (1,)),), {"kind": "tanh"}, name="size1")],
          bad_samples=lambda: [BadSample((np.ones(3, np.int64),), {"kind": "relu"}, TypeError, "float")],
          reference=_np_act, torch=_torch_act)
class Activation(Function):
    @staticmethod
    def forward(ctx, x, kind, negative_slope):
        float_check(x, "input", kind)
        y = empty(x.shape, x.dtype)
        _C.act_forward(kind, x, y, negative_slope)
        ctx.save_for_backward(*ActSaved(x=x, y=y, kind=kind, negative_slope=negative_slope))
        return y


@export
def activation(x, kind, negative_slope=0.01):
    return Activation.apply(x, kind, negative_slope)


# ---------------------------------------------------------------- softmax
def _rows(x, dim):
    """Move `dim` last and flatten the rest: softmax kernels work on (rows, C)."""
    nd = x.ndim
    d = dim % max(nd, 1)
    if nd and d != nd - 1:
        x = np.moveaxis(x, d, -1)
    c = x.shape[-1] if nd else 1
    rows = int(np.prod(x.shape[:-1], dtype=np.int64)) if nd else 1  # explicit: -1 is ambiguous when c == 0
    return np.ascontiguousarray(x).reshape(rows, c), d


def _unrows(y2, shape, d):
    nd = len(shape)
    if nd and d != nd - 1:
        moved = tuple(s for i, s in enumerate(shape) if i != d) + (shape[d],)
        return np.ascontiguousarray(np.moveaxis(y2.reshape(moved), -1, d))
    return y2.reshape(shape)


def _np_softmax(x, dim=-1, log=False):
    z = x - x.max(axis=dim, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=dim, keepdims=True))
    return z - lse if log else np.exp(z - lse)


@register("softmax", kernels=("_C.softmax_forward", "_C.log_softmax_forward", "_C.softmax_backward",
                              "_C.log_softmax_backward"), dtypes=_F,
          call=lambda x, dim=-1, log=False: (log_softmax if log else softmax)(x, dim),
          samples=lambda dt: [Sample((_x(dt, (3, 5)),), {"log": lg}, name=f"log={lg}") for lg in (False, True)]
          + [Sample((_x(dt, (2, 3, 4)),), {"dim": 1}, name="dim1"), Sample((_x(dt, (0, 4)),), name="size0")],
          bad_samples=lambda: [BadSample((np.ones(3, np.int64),), error=TypeError, match="float")],
          reference=_np_softmax,
          torch=lambda torch, x, dim=-1, log=False: (torch.log_softmax if log else torch.softmax)(x, dim))
class Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim, log):
        float_check(x, "input", "softmax")
        x2, d = _rows(x, dim)
        y2 = empty(x2.shape, x.dtype)
        (_C.log_softmax_forward if log else _C.softmax_forward)(x2, y2)
        ctx.save_for_backward(y2)
        ctx.shape, ctx.d, ctx.log = x.shape, d, log
        return _unrows(y2, x.shape, d)

    @staticmethod
    def backward(ctx, dy):
        (y2,) = ctx.saved_tensors
        dy2, _ = _rows(dy, ctx.d)
        dx2 = empty(y2.shape, y2.dtype)
        (_C.log_softmax_backward if ctx.log else _C.softmax_backward)(y2, dy2, dx2)
        return _unrows(dx2, ctx.shape, ctx.d), None, None


def implicit_softmax_dim(name, ndim, stacklevel):
    """PyTorch's legacy rule for a softmax called without dim (dim 0 for 0-, 1- and 3-d input,
    else 1), with its deprecation warning: pass dim explicitly."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax(name, x, dim, stacklevel, dtype, log):
    if dim is None:
        dim = implicit_softmax_dim(name, x.ndim, stacklevel + 1)
    if dtype is not None:
        x = x.to(dtype)        # as PyTorch: cast the input first (to avoid overflow in float16)
    return Softmax.apply(x, normalize_dim(dim, x.ndim), log)


@export
def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along `dim` (PyTorch's F.softmax; dim=None picks one and warns).

    >>> import lamina
    >>> lamina.nn.functional.softmax(lamina.tensor([0.0, 0.0]), dim=0).tolist()
    [0.5, 0.5]
    """
    return _softmax("softmax", input, dim, _stacklevel, dtype, False)


@export
def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """x - log(sum(exp(x))) along `dim` (PyTorch's F.log_softmax; dim=None picks one and warns)."""
    return _softmax("log_softmax", input, dim, _stacklevel, dtype, True)
