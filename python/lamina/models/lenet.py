"""LeNet-5 (LeCun et al. 1998) as the lecture draws it, with named layers c1, s2, c3, s4, f5, f6,
output so a summary can reproduce the lecture's table of units, connections and weights."""
from collections import OrderedDict

from .. import nn


def lenet5(paper=False, norm=False):
    """LeNet-5 for 10 classes.

    paper=False: MNIST-ready, input (N, 1, 28, 28); C1 pads by 2 so C1 is 6@28x28 as in the paper.
    paper=True: the paper's input (N, 1, 32, 32) with no padding (same layer sizes); C3 is fully
    connected to S2's 6 maps (not the paper's sparse connection table), matching the lecture's
    counts: C1 4704 units / 150 weights, C3 1600 units / 2400 weights (biases aside).

    >>> import lamina
    >>> net = lamina.models.lenet5()
    >>> tuple(net(lamina.zeros(2, 1, 28, 28)).shape)
    (2, 10)
    >>> tuple(lamina.models.lenet5(paper=True)(lamina.zeros(1, 1, 32, 32)).shape)
    (1, 10)

    norm=True: batch normalization after C1, C3, F5 and F6 (before each ReLU), whose layers
    then have no bias (BN's shift replaces it).
    """
    if norm:
        return nn.Sequential(OrderedDict([
            ("c1", nn.Conv2d(1, 6, 5, padding=0 if paper else 2, bias=False)),
            ("bn1", nn.BatchNorm2d(6)),
            ("relu1", nn.ReLU()),
            ("s2", nn.MaxPool2d(2)),
            ("c3", nn.Conv2d(6, 16, 5, bias=False)),
            ("bn3", nn.BatchNorm2d(16)),
            ("relu3", nn.ReLU()),
            ("s4", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()),
            ("f5", nn.Linear(400, 120, bias=False)),
            ("bn5", nn.BatchNorm1d(120)),
            ("relu5", nn.ReLU()),
            ("f6", nn.Linear(120, 84, bias=False)),
            ("bn6", nn.BatchNorm1d(84)),
            ("relu6", nn.ReLU()),
            ("output", nn.Linear(84, 10)),
        ]))
    return nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(1, 6, 5, padding=0 if paper else 2)),  # -> 6 x 28 x 28
        ("relu1", nn.ReLU()),
        ("s2", nn.MaxPool2d(2)),                                 # -> 6 x 14 x 14
        ("c3", nn.Conv2d(6, 16, 5)),                             # -> 16 x 10 x 10
        ("relu3", nn.ReLU()),
        ("s4", nn.MaxPool2d(2)),                                 # -> 16 x 5 x 5
        ("flatten", nn.Flatten()),                               # -> 400
        ("f5", nn.Linear(400, 120)),
        ("relu5", nn.ReLU()),
        ("f6", nn.Linear(120, 84)),
        ("relu6", nn.ReLU()),
        ("output", nn.Linear(84, 10)),
    ]))
