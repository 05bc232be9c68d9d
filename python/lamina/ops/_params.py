"""Named records that ops hand to the graph compiler: convolution and pooling sizes.

Each mirrors the bound C++ struct of the same name (`_C.ConvParams`, `_C.PoolParams`; field
for field, checked by tests/test_graph_enums.py) and converts to it with `.native()`.
"""
from __future__ import annotations

import dataclasses

from .. import _C

__all__ = ["ConvParams", "PoolParams"]


class _Mirrored:
    """A frozen record whose fields are those of the bound C++ struct of the same name
    (tests/test_graph_enums.py checks the two lists are equal)."""

    def native(self):
        """The bound C++ struct (`_C.<class name>`) with the same field values."""
        return getattr(_C, type(self).__name__)(**dataclasses.asdict(self))


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
