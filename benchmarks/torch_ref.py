"""PyTorch twins of lamina's benchmark models, layer for layer, for side-by-side timing.

One definition used by report.py, bench_compile.py and test_bench_end_to_end.py. torch is
only a benchmark oracle: lamina itself never imports it.
"""


def model(name):
    """torch.nn.Sequential matching lamina.models.mlp() ('mlp') or lenet5() ('lenet5')."""
    import torch

    nn = torch.nn
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                             nn.Linear(100, 10))
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    raise ValueError(f"model: expected 'mlp' or 'lenet5', got {name!r}")
