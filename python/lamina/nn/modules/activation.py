from .. import functional as F
from ..module import Module


class ReLU(Module):
    """max(0, z); ReLU'(0) = 0."""
    _fused = "relu"

    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Softplus(Module):
    """The lecture's soft ReLU, log(1 + e^z)."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)


class Sigmoid(Module):
    _fused = "sigmoid"

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    _fused = "tanh"

    def forward(self, x):
        return F.tanh(x)


class Step(Module):
    """The hard threshold I[z > 0] (no useful gradient: it is zero everywhere)."""

    def forward(self, x):
        return F.step(x)


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, self.dim)
