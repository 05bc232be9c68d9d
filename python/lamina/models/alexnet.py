"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012) for 3x224x224 images, as a definition.

Two single-tower layouts:

- ``variant="torchvision"`` (default): the layout torchvision ships ("one weird trick",
  Krizhevsky 2014): conv 64-192-384-256-256, an adaptive 6x6 average pool, no grouping;
  61,100,840 parameters.
- ``variant="paper"``: the 2012 paper's two-GPU network merged into one tower. Each GPU
  held half of the filters and conv2, conv4, conv5 saw only their own GPU's half of the
  previous layer: exactly ``groups=2``. conv1 uses padding 2 so 224x224 gives the paper's
  55x55 maps. Local response normalization has no weights and is left out. 60,965,224
  parameters: the paper's "60 million".
"""
from collections import OrderedDict

from .. import nn

__all__ = ["alexnet"]


def _classifier(num_classes, dropout):
    """fc6-fc8, the same in both layouts: 256 x 6 x 6 -> 4096 -> 4096 -> classes."""
    return nn.Sequential(OrderedDict([
        ("drop6", nn.Dropout(dropout)), ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU()),
        ("drop7", nn.Dropout(dropout)), ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU()),
        ("fc8", nn.Linear(4096, num_classes)),
    ]))


def _torchvision(num_classes, dropout):
    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(kernel_size=3, stride=2)),                       # 55 -> 27
        ("conv2", nn.Conv2d(64, 192, kernel_size=5, padding=2)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(kernel_size=3, stride=2)),                       # 27 -> 13
        ("conv3", nn.Conv2d(192, 384, kernel_size=3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 256, kernel_size=3, padding=1)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(256, 256, kernel_size=3, padding=1)), ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(kernel_size=3, stride=2)),                       # 13 -> 6
    ]))
    classifier = _classifier(num_classes, dropout)
    return nn.Sequential(OrderedDict([
        ("features", features),
        ("avgpool", nn.AdaptiveAvgPool2d((6, 6))),  # any input size >= 63x63 -> 6x6 for fc6
        ("flatten", nn.Flatten()),
        ("classifier", classifier),
    ]))


def _paper(num_classes, dropout):
    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 96, kernel_size=11, stride=4, padding=2)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(kernel_size=3, stride=2)),                       # 55 -> 27, overlapping
        ("conv2", nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(kernel_size=3, stride=2)),                       # 27 -> 13
        ("conv3", nn.Conv2d(256, 384, kernel_size=3, padding=1)), ("relu3", nn.ReLU()),  # crosses GPUs
        ("conv4", nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2)), ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(kernel_size=3, stride=2)),                       # 13 -> 6
    ]))
    classifier = _classifier(num_classes, dropout)
    return nn.Sequential(OrderedDict([
        ("features", features), ("flatten", nn.Flatten()), ("classifier", classifier),
    ]))


def alexnet(num_classes=1000, variant="torchvision", dropout=0.5):
    """AlexNet for (N, 3, 224, 224) inputs; see the module docstring for the two variants.

    >>> import lamina
    >>> net = lamina.models.alexnet(num_classes=10)
    >>> sum(p.numel() for p in net.parameters())
    57044810
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
    if variant == "torchvision":
        return _torchvision(num_classes, dropout)
    if variant == "paper":
        return _paper(num_classes, dropout)
    raise ValueError(f"variant: expected 'torchvision' or 'paper', got {variant!r}")
