"""Padding layers with PyTorch's names: ZeroPad / ConstantPad / ReflectionPad / ReplicationPad /
CircularPad in 1-D, 2-D and 3-D, over F.pad (lamina.ops.nn_extra)."""
from .. import functional as F
from ..module import Module


class _Pad(Module):
    _mode = "constant"
    _sides = 2   # pad entries per padded dim pair: 2 for 1-D, 4 for 2-D

    def __init__(self, padding, value=0.0):
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * self._sides
        padding = tuple(int(p) for p in padding)
        if len(padding) != self._sides:
            raise ValueError(f"padding: expected an int or {self._sides} ints, got {padding}")
        self.padding = padding
        self.value = value

    def forward(self, x):
        if self._mode == "constant":
            return F.pad(x, self.padding, "constant", self.value)
        return F.pad(x, self.padding, self._mode)

    def extra_repr(self):   # PyTorch's: ConstantPad names its fields, the others show the tuple
        return f"padding={self.padding}, value={self.value}" if self._mode == "constant" else f"{self.padding}"


class ConstantPad1d(_Pad):
    def __init__(self, padding, value):
        super().__init__(padding, value)


class ConstantPad2d(_Pad):
    _sides = 4

    def __init__(self, padding, value):
        super().__init__(padding, value)


class ZeroPad1d(_Pad):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(_Pad):
    _sides = 4

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_Pad):
    _mode = "reflect"


class ReflectionPad2d(_Pad):
    _mode = "reflect"
    _sides = 4


class ReplicationPad1d(_Pad):
    _mode = "replicate"


class ReplicationPad2d(_Pad):
    _mode = "replicate"
    _sides = 4


class ConstantPad3d(_Pad):
    _sides = 6

    def __init__(self, padding, value):
        super().__init__(padding, value)


class ZeroPad3d(_Pad):
    _sides = 6

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad3d(_Pad):
    _mode = "reflect"
    _sides = 6


class ReplicationPad3d(_Pad):
    _mode = "replicate"
    _sides = 6


class CircularPad1d(_Pad):
    _mode = "circular"


class CircularPad2d(_Pad):
    _mode = "circular"
    _sides = 4


class CircularPad3d(_Pad):
    _mode = "circular"
    _sides = 6
