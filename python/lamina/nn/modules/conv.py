"""Conv1d / Conv2d / Conv3d layers with PyTorch's constructor signatures and default initialization."""
import math

import numpy as np

from ...ops import conv as _conv
from .. import init
from ..module import Module, ModuleShapeError, new_weight_and_bias


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_channels(layer, in_channels, out_channels, groups, padding_mode):
    """Validate and set in_channels, out_channels and groups; check padding_mode."""
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if not _conv._is_int(v) or v <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    if in_channels % groups:
        raise ValueError(f"groups: in_channels ({in_channels}) must be divisible by groups ({groups})")
    if out_channels % groups:
        raise ValueError(f"groups: out_channels ({out_channels}) must be divisible by groups ({groups})")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {list(_PADDING_MODES)}, but got padding_mode='{padding_mode}'")
    layer.in_channels, layer.out_channels, layer.groups = int(in_channels), int(out_channels), int(groups)


class _ConvNd(Module):
    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", dtype=None):
        super().__init__()
        nd = self._nd
        _check_channels(self, in_channels, out_channels, groups, padding_mode)
        self.kernel_size = _conv._tuple(kernel_size, nd, "kernel_size", 1)
        self.stride = _conv._tuple(stride, nd, "stride", 1)
        self.dilation = _conv._tuple(dilation, nd, "dilation", 1)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"padding: expected an int, a tuple, 'valid' or 'same', got {padding!r}")
            _conv._string_padding(padding, self.kernel_size, self.dilation, self.stride)  # validate now
            self.padding = padding
        else:
            self.padding = _conv._tuple(padding, nd, "padding", 0)
        self.padding_mode = padding_mode
        # F.pad's list for a padding_mode other than zeros (PyTorch's attribute of this name)
        pairs = (_conv.same_pads(self.kernel_size, self.dilation) if padding == "same" else
                 [(0, 0)] * nd if padding == "valid" else [(p, p) for p in self.padding])
        self._reversed_padding_repeated_twice = list(_conv.reversed_pad_pairs(pairs))
        new_weight_and_bias(self, (out_channels, in_channels // groups) + self.kernel_size, out_channels, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's default: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = (self.in_channels // self.groups) * int(np.prod(self.kernel_size))
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def _check(self, x):
        nd = self._nd
        if x.ndim not in (nd + 1, nd + 2):
            want = {1: "(C, L) or (N, C, L)", 2: "(C, H, W) or (N, C, H, W)", 3: "(C, D, H, W) or (N, C, D, H, W)"}[nd]
            raise ModuleShapeError(self, f"expected a {nd + 1}-D or {nd + 2}-D input {want}, "
                                         f"got shape {tuple(x.shape)}")
        c = x.shape[-nd - 1]
        if c != self.in_channels:
            raise ModuleShapeError(self, f"expected {self.in_channels} input channels, got {c} "
                                         f"(input shape {tuple(x.shape)})")

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _padded(self, x):
        """x and the conv padding: for reflect / replicate / circular, x padded by F.pad first."""
        if self.padding_mode == "zeros":
            return x, self.padding
        from ...ops.nn_extra import pad
        return pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode), 0


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) or (C, H, W), PyTorch's ``nn.Conv2d``.

    >>> import lamina
    >>> conv = lamina.nn.Conv2d(1, 6, 5, padding=2)
    >>> tuple(conv(lamina.zeros(4, 1, 28, 28)).shape)
    (4, 6, 28, 28)
    """
    _nd = 2

    def forward(self, x):
        self._check(x)
        x, padding = self._padded(x)
        return _conv.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) or (C, L), PyTorch's ``nn.Conv1d``.

    >>> import lamina
    >>> tuple(lamina.nn.Conv1d(2, 4, 3)(lamina.zeros(5, 2, 10)).shape)
    (5, 4, 8)
    """
    _nd = 1

    def forward(self, x):
        self._check(x)
        x, padding = self._padded(x)
        return _conv.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv3d(_ConvNd):
    """3-D convolution over (N, C, D, H, W) or (C, D, H, W), PyTorch's ``nn.Conv3d`` (computed as
    kD conv2d calls over depth slices, see lamina.ops.volume).

    >>> import lamina
    >>> tuple(lamina.nn.Conv3d(1, 2, 3, padding=1)(lamina.zeros(2, 1, 4, 5, 6)).shape)
    (2, 2, 4, 5, 6)
    """
    _nd = 3

    def forward(self, x):
        from ...ops.volume import conv3d
        self._check(x)
        x, padding = self._padded(x)
        return conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class ConvTranspose2d(Module):
    """2-D transposed convolution, PyTorch's ``nn.ConvTranspose2d``: the input gradient of a Conv2d
    with the same arguments, so stride 2 doubles H and W (DCGAN's generator, decoders).
    `output_padding` (or `output_size` in forward) picks among the sizes a strided conv maps back.

    >>> import lamina
    >>> up = lamina.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
    >>> tuple(up(lamina.zeros(2, 16, 7, 7)).shape)
    (2, 8, 14, 14)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        _check_channels(self, in_channels, out_channels, groups, padding_mode)
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if device is not None and str(device) != "cpu":
            raise ValueError(f"device: lamina runs on the CPU, expected None or 'cpu', got {device!r}")
        self.kernel_size = _conv._tuple(kernel_size, 2, "kernel_size", 1)
        self.stride = _conv._tuple(stride, 2, "stride", 1)
        self.padding = _conv._tuple(padding, 2, "padding", 0)
        self.output_padding = _conv._tuple(output_padding, 2, "output_padding", 0)
        self.dilation = _conv._tuple(dilation, 2, "dilation", 1)
        if any(op >= s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"output_padding: expected each value smaller than the stride {self.stride}, "
                             f"got {self.output_padding}")
        self.padding_mode = padding_mode
        new_weight_and_bias(self, (in_channels, out_channels // groups) + self.kernel_size, out_channels, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's default, with fan_in read off this weight's layout: (out_channels/groups) kH kW.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = (self.out_channels // self.groups) * int(np.prod(self.kernel_size))
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        size = tuple(int(s) for s in output_size)[-2:]
        if len(size) != 2:
            raise ValueError(f"output_size: expected at least 2 sizes (H, W), got {output_size!r}")
        pads = []
        for d, want in enumerate(size):
            smallest = ((x.shape[-2 + d] - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            if not smallest <= want < smallest + self.stride[d]:
                raise ValueError(f"output_size: requested {size}, but the sizes this layer can give for input "
                                 f"{tuple(x.shape)} are {smallest} to {smallest + self.stride[d] - 1} in dim {d}")
            pads.append(want - smallest)
        return tuple(pads)

    def forward(self, x, output_size=None):
        if x.ndim not in (3, 4):
            raise ModuleShapeError(self, f"expected a 3-D or 4-D input (C, H, W) or (N, C, H, W), "
                                         f"got shape {tuple(x.shape)}")
        if x.shape[-3] != self.in_channels:
            raise ModuleShapeError(self, f"expected {self.in_channels} input channels, got {x.shape[-3]} "
                                         f"(input shape {tuple(x.shape)})")
        return _conv.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                      self._output_padding(x, output_size), self.groups, self.dilation)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
