"""A small residual network for MNIST: y = relu(x + conv(relu(conv(x)))) blocks (He et al. 2016)."""
from collections import OrderedDict

from .. import nn
from ..nn import functional as F


class BasicBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3, plus the identity skip, then ReLU; keeps (C, H, W).

    >>> import lamina
    >>> tuple(BasicBlock(8)(lamina.zeros(2, 8, 7, 7)).shape)
    (2, 8, 7, 7)
    """

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.conv2(self.relu(self.conv1(x))))

    def extra_repr(self):
        return f"channels={self.channels}"


def resnet_mnist(channels=16, num_classes=10):
    """stem conv 1->C, two BasicBlocks around a 2x2 max-pool, global average pool, linear.

    >>> import lamina
    >>> tuple(resnet_mnist()(lamina.zeros(2, 1, 28, 28)).shape)
    (2, 10)
    """
    return nn.Sequential(OrderedDict([
        ("stem", nn.Conv2d(1, channels, 3, padding=1)),   # -> C x 28 x 28
        ("stem_relu", nn.ReLU()),
        ("block1", BasicBlock(channels)),
        ("pool", nn.MaxPool2d(2)),                        # -> C x 14 x 14
        ("block2", BasicBlock(channels)),
        ("gap", nn.AdaptiveAvgPool2d(1)),                 # -> C x 1 x 1
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(channels, num_classes)),
    ]))
