"""A small residual network for MNIST-sized images (He et al. 2016): the standard BasicBlock,
conv-BN-ReLU-conv-BN plus the skip, then ReLU; a 1x1 conv-BN projection on the skip when the
block changes the shape."""
from collections import OrderedDict

from .. import nn
from ..nn import functional as F


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + skip(x)): 3x3 convs without bias (BN's shift
    replaces it); skip is the identity, or conv1x1-BN when stride != 1 or the width changes.

    >>> import lamina
    >>> tuple(BasicBlock(8, 16, stride=2)(lamina.zeros(2, 8, 14, 14)).shape)
    (2, 16, 7, 7)
    """

    def __init__(self, in_channels, out_channels=None, stride=1):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)),
                ("bn", nn.BatchNorm2d(out_channels)),
            ]))
        else:
            self.downsample = None

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(out + skip)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def resnet_mnist(width=16, num_classes=10, in_channels=1):
    """stem conv3x3-BN-ReLU (in_channels -> width), three BasicBlocks of widths width, 2 width,
    4 width (the last two halve the resolution: 28 -> 14 -> 7), global average pool, linear.

    >>> import lamina
    >>> tuple(resnet_mnist()(lamina.zeros(2, 1, 28, 28)).shape)
    (2, 10)
    """
    w = int(width)
    if w <= 0 or int(in_channels) <= 0 or int(num_classes) <= 0:
        raise ValueError(f"width, in_channels, num_classes: expected positive integers, got "
                         f"{width}, {in_channels}, {num_classes}")
    return nn.Sequential(OrderedDict([
        ("stem", nn.Conv2d(in_channels, w, 3, padding=1, bias=False)),   # -> w x 28 x 28
        ("stem_bn", nn.BatchNorm2d(w)),
        ("stem_relu", nn.ReLU()),
        ("block1", BasicBlock(w, w)),                                   # -> w x 28 x 28
        ("block2", BasicBlock(w, 2 * w, stride=2)),                     # -> 2w x 14 x 14
        ("block3", BasicBlock(2 * w, 4 * w, stride=2)),                 # -> 4w x 7 x 7
        ("gap", nn.AdaptiveAvgPool2d(1)),                               # -> 4w x 1 x 1
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(4 * w, num_classes)),
    ]))
