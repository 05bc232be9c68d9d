"""Ready-made networks: the lecture's MLP, LeNet-5, a small ResNet, AlexNet (definition)."""
from .mlp import mlp  # noqa: F401

from .lenet import lenet5  # noqa: F401
from .resnet import BasicBlock, resnet_mnist  # noqa: F401
from .alexnet import alexnet  # noqa: F401
