"""lamina.nn: layers, losses and containers with PyTorch's names and semantics."""
from . import functional, init  # noqa: F401
from .module import Module, ModuleShapeError, Parameter  # noqa: F401
from .modules.activation import (LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus,  # noqa: F401
                                 Step, Tanh)
from .modules.container import ModuleDict, ModuleList, Sequential  # noqa: F401
from .modules.linear import Flatten, Identity, Linear  # noqa: F401
from .modules.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss  # noqa: F401

from .modules.conv import Conv1d, Conv2d  # noqa: F401
from .modules.pooling import (AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d,  # noqa: F401
                              MaxPool2d)
from .normalization import (BatchNorm1d, BatchNorm2d, Dropout, Dropout2d, GroupNorm,  # noqa: F401
                            LayerNorm)
