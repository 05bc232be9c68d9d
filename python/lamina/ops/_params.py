"""Named records that ops hand to the graph compiler: convolution and pooling sizes, and the
attributes of every graph node kind.

Each mirrors the bound C++ struct of the same name (`_C.ConvParams`, `_C.GemmAttrs`, ...; field
for field, checked by tests/test_graph_enums.py) and converts to it with `.native()`. A node's
record is made where the node is emitted, so a misspelt field or kind fails at trace time.
Kinds are names here ("relu", "mse"), turned into the bound enum by name in `.native()`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Tuple

from .. import _C

__all__ = ["ConvParams", "PoolParams", "GemmAttrs", "ActAttrs", "BiasGradAttrs", "CrossEntropyAttrs", "FillAttrs",
           "ElementwiseAttrs", "UnaryAttrs", "ScaleAttrs", "SgdAttrs", "AdamAttrs", "ConvAttrs", "PoolAttrs",
           "AdaptivePoolAttrs", "BroadcastAttrs", "ReduceBroadcastAttrs", "PointwiseLossAttrs", "BatchNormAttrs",
           "PyCallAttrs", "enum_member"]


def enum_member(enum, name):
    """The member of a bound enum named `name` (`enum_member(_C.Activation, "relu")` is RELU)."""
    try:
        return getattr(enum, name.upper())
    except (AttributeError, TypeError):
        raise ValueError(f"{enum.__name__}: no kind named {name!r}") from None


class _Mirrored:
    """A frozen record whose fields are those of the bound C++ struct of the same name
    (tests/test_graph_enums.py checks the two lists are equal), less `PYTHON_ONLY` ones.
    ENUMS maps a field to the name of its bound enum (the field holds the member's name)."""

    ENUMS: dict = {}
    PYTHON_ONLY: tuple = ()

    def __post_init__(self):
        for field, enum in self.ENUMS.items():
            enum_member(getattr(_C, enum), getattr(self, field))     # a misspelt kind fails here

    def native(self):
        """The bound C++ struct (`_C.<class name>`) with the same field values."""
        kw = {}
        for f in dataclasses.fields(self):
            if f.name in self.PYTHON_ONLY:
                continue
            v = getattr(self, f.name)
            if isinstance(v, _Mirrored):
                v = v.native()
            elif f.name in self.ENUMS:
                v = enum_member(getattr(_C, self.ENUMS[f.name]), v)
            kw[f.name] = v
        return getattr(_C, type(self).__name__)(**kw)

    def __getitem__(self, name):
        """Read a field by name, as from the dicts nodes carried before (`attrs["beta"]`)."""
        try:
            return getattr(self, name)
        except AttributeError:
            fields = ", ".join(f.name for f in dataclasses.fields(self))
            raise KeyError(f"{type(self).__name__} has no field {name!r} (fields: {fields})") from None


@dataclasses.dataclass(frozen=True)
class ConvParams(_Mirrored):
    """Convolution sizes (NCHW): x (N, C, H, W), w (K, C/groups, KH, KW); mirrors C++ ConvParams.

    >>> p = ConvParams(N=2, C=3, H=8, W=8, K=4, KH=3, KW=3, pad_h=1, pad_w=1)
    >>> p.OH, p.OW, p.native().K
    (8, 8, 4)
    """
    N: int = 1
    C: int = 1
    H: int = 1
    W: int = 1
    K: int = 1
    KH: int = 1
    KW: int = 1
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    dil_h: int = 1
    dil_w: int = 1
    groups: int = 1

    @property
    def OH(self):
        return (self.H + 2 * self.pad_h - self.dil_h * (self.KH - 1) - 1) // self.stride_h + 1

    @property
    def OW(self):
        return (self.W + 2 * self.pad_w - self.dil_w * (self.KW - 1) - 1) // self.stride_w + 1

    def conf(self):
        """(stride, padding, dilation, groups): the trailing arguments of the `_C.conv2d_*` kernels."""
        return (self.stride_h, self.stride_w), (self.pad_h, self.pad_w), (self.dil_h, self.dil_w), self.groups


@dataclasses.dataclass(frozen=True)
class PoolParams(_Mirrored):
    """Pooling window sizes (NCHW): x (N, C, H, W), window (KH, KW); mirrors C++ PoolParams.

    >>> PoolParams(N=1, C=2, H=4, W=4, KH=2, KW=2, stride_h=2, stride_w=2).native().stride_w
    2
    """
    N: int = 1
    C: int = 1
    H: int = 1
    W: int = 1
    KH: int = 1
    KW: int = 1
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    dil_h: int = 1
    dil_w: int = 1
    ceil_mode: bool = False


# ---------------------------------------------------------------- graph node attributes
@dataclass(frozen=True)
class GemmAttrs(_Mirrored):
    """gemm: C (M, N) = alpha op(A) op(B) + beta C, then the bias along `bias_axis` ("row" /
    "col") and the activation `act`; beta = 1 accumulates into C. batch != 1: that many GEMMs
    over (batch, ...) operands (batched matmul: no bias, act identity)."""
    trans_a: bool = False
    trans_b: bool = False
    M: int = 0
    N: int = 0
    K: int = 0
    act: str = "identity"
    bias_axis: str = "col"
    alpha: float = 1.0
    beta: float = 0.0
    batch: int = 1
    ENUMS = {"act": "Activation"}
    _AXES = {"row": "PER_ROW", "col": "PER_COL"}

    def __post_init__(self):
        super().__post_init__()
        if self.bias_axis not in self._AXES:
            raise ValueError(f"bias_axis: expected 'row' or 'col', got {self.bias_axis!r}")

    def native(self):
        return _C.GemmAttrs(trans_a=bool(self.trans_a), trans_b=bool(self.trans_b), M=self.M, N=self.N, K=self.K,
                            act=enum_member(_C.Activation, self.act),
                            bias_axis=getattr(_C.BiasAxis, self._AXES[self.bias_axis]), alpha=self.alpha,
                            beta=self.beta, batch=self.batch)


@dataclass(frozen=True)
class ActAttrs(_Mirrored):
    """act_fwd / act_bwd over n elements."""
    n: int = 0
    kind: str = "identity"
    negative_slope: float = 0.01
    ENUMS = {"kind": "Activation"}


@dataclass(frozen=True)
class BiasGradAttrs(_Mirrored):
    """bias_grad_rows: db (F) = column sums of dy (N, F)."""
    N: int = 0
    F: int = 0


@dataclass(frozen=True)
class CrossEntropyAttrs(_Mirrored):
    """ce_fwd / ce_bwd over (N, C) logits; mean: the loss is the sum over rows not ignored."""
    N: int = 0
    C: int = 0
    ignore_index: int = -100
    mean: bool = True


@dataclass(frozen=True)
class FillAttrs(_Mirrored):
    n: int = 0
    value: float = 0.0


@dataclass(frozen=True)
class ElementwiseAttrs(_Mirrored):
    """add, sub, mul, div, copy, accumulate over n elements."""
    n: int = 0


@dataclass(frozen=True)
class UnaryAttrs(_Mirrored):
    n: int = 0
    kind: str = "neg"
    ENUMS = {"kind": "UnaryKind"}


@dataclass(frozen=True)
class ScaleAttrs(_Mirrored):
    """scale: y = alpha x over n elements."""
    n: int = 0
    alpha: float = 1.0


@dataclass(frozen=True)
class SgdAttrs(_Mirrored):
    """sgd over n elements; the rest are indices into the step's scalar table (they change per step)."""
    n: int = 0
    lr: int = -1
    momentum: int = -1
    dampening: int = -1
    weight_decay: int = -1
    nesterov: int = -1
    first_step: int = -1


@dataclass(frozen=True)
class AdamAttrs(_Mirrored):
    """adam over n elements; lr..step are indices into the step's scalar table."""
    n: int = 0
    decoupled: bool = False
    amsgrad: bool = False
    lr: int = -1
    beta1: int = -1
    beta2: int = -1
    eps: int = -1
    weight_decay: int = -1
    step: int = -1


@dataclass(frozen=True)
class ConvAttrs(_Mirrored):
    """conv2d_fwd / conv2d_bwd; act applies to the forward output. `has` (Python only; the C++
    instruction reads -1 slots): which of (dx, dw, db) conv2d_bwd writes, in its outputs' order."""
    params: ConvParams = ConvParams()
    act: str = "identity"
    negative_slope: float = 0.01
    has: Tuple[bool, ...] = ()
    ENUMS = {"act": "Activation"}
    PYTHON_ONLY = ("has",)


@dataclass(frozen=True)
class PoolAttrs(_Mirrored):
    """max / average pooling; the last two fields: average pooling only."""
    params: PoolParams = PoolParams()
    count_include_pad: bool = False
    divisor_override: int = 0


@dataclass(frozen=True)
class AdaptivePoolAttrs(_Mirrored):
    """adaptive average pooling (N, C, H, W) -> (N, C, OH, OW)."""
    N: int = 1
    C: int = 1
    H: int = 1
    W: int = 1
    OH: int = 1
    OW: int = 1


@dataclass(frozen=True)
class BroadcastAttrs(_Mirrored):
    """broadcast: y (outer, mid, inner) = x kind s (mid); kind rsub is s - x."""
    outer: int = 1
    mid: int = 1
    inner: int = 1
    kind: str = "add"
    ENUMS = {"kind": "BroadcastKind"}


@dataclass(frozen=True)
class ReduceBroadcastAttrs(_Mirrored):
    """reduce_broadcast: ds (mid) = alpha * sum of dy (times x) over outer and inner."""
    outer: int = 1
    mid: int = 1
    inner: int = 1
    alpha: float = 1.0


@dataclass(frozen=True)
class PointwiseLossAttrs(_Mirrored):
    """loss_fwd / loss_bwd: scale * the summed loss `kind` over n elements."""
    n: int = 0
    kind: str = "mse"
    scale: float = 1.0
    ENUMS = {"kind": "LossKind"}


@dataclass(frozen=True)
class BatchNormAttrs(_Mirrored):
    """bn_fwd / bn_bwd over x (N, C, S). `has` (Python only): which of (dx, dw, db) bn_bwd writes."""
    N: int = 0
    C: int = 0
    S: int = 1
    training: bool = True
    relu: bool = False
    cumulative_average: bool = False
    momentum: float = 0.1
    eps: float = 1e-5
    has: Tuple[bool, ...] = ()
    PYTHON_ONLY = ("has",)


@dataclass(frozen=True)
class PyCallAttrs:
    """A Python callback node (no C++ struct: the instruction gets `_C.CallbackAttrs(id)` when
    the program is built). kind: "forward" / "backward" run a traced Function's eager code on
    arena views (`fnode`, with the `wanted` input positions), "call" runs `call()`."""
    fn: str
    kind: str
    fnode: Any = None
    wanted: Tuple[int, ...] = ()
    call: Any = None

    def __getitem__(self, name):
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None
