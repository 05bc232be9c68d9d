from collections import OrderedDict

from .. import nn

_ACTIVATIONS = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "softplus": nn.Softplus, "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh, "step": nn.Step, "identity": nn.Identity,
}


def mlp(sizes=(784, 300, 100, 10), activation="relu"):
    """A multilayer perceptron: Linear layers of `sizes`, `activation` between them.

    Images (N, 1, 28, 28) are flattened first, so the MNIST MLP takes raw image batches.

    >>> import lamina
    >>> net = lamina.models.mlp((4, 3, 2))
    >>> net(lamina.ones(5, 4)).shape
    lamina.Size([5, 2])
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least an input and an output size, got {tuple(sizes)}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    layers = OrderedDict([("flatten", nn.Flatten())])
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers[f"fc{i + 1}"] = nn.Linear(a, b)
        if i < len(sizes) - 2:
            layers[f"act{i + 1}"] = _ACTIVATIONS[activation]()
    return nn.Sequential(layers)
