"""Fingerprint training: hash the final weights of short, seeded MLP / LeNet-5 / resnet_mnist runs.

Run before and after a refactor that must not change behaviour; the hashes must be identical.
Each model trains eagerly and compiled (lamina.compile, native executor), one thread, on a fixed
MNIST prefix (a subset so the whole script takes about a minute or two on a shared core):
  mlp        3 epochs over all 60000 training images, SGD momentum 0.9, batch 64
  lenet5     1 epoch over the first 10000 images, SGD momentum 0.9, batch 32
  resnet     1 epoch over the first 2048 images, Adam, batch 32

    LAMINA_DATA=/work/shared/data PYTHONPATH=python python tools/train_fingerprint.py
"""
from __future__ import annotations

import hashlib
import sys

import numpy as np

import lamina
from lamina.datasets import MNIST
from lamina.train import make_step

CASES = {
    # name: (model factory, optimizer factory, images, epochs, batch)
    "mlp": (lambda: lamina.models.mlp(), lambda ps: lamina.optim.SGD(ps, lr=0.05, momentum=0.9), 60000, 3, 64),
    "lenet5": (lambda: lamina.models.lenet5(), lambda ps: lamina.optim.SGD(ps, lr=0.05, momentum=0.9), 10000, 1, 32),
    "resnet": (lambda: lamina.models.resnet_mnist(), lambda ps: lamina.optim.Adam(ps, lr=1e-3), 2048, 1, 32),
}


def weights_hash(model):
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(t.numpy() if hasattr(t, "numpy") else t).tobytes())
    return h.hexdigest()[:16]


def run(name, compiled, x_all, y_all):
    make_model, make_opt, n, epochs, batch = CASES[name]
    lamina.manual_seed(0)
    model = make_model()
    opt = make_opt(model.parameters())
    step = make_step(model, lamina.nn.functional.cross_entropy, opt, eager=not compiled)
    x, y = x_all[:n], y_all[:n]
    last = None
    for _ in range(epochs):
        for i in range(0, n - batch + 1, batch):   # whole batches only: one traced shape
            xb = x[i:i + batch] if compiled else lamina.tensor(x[i:i + batch])
            yb = y[i:i + batch] if compiled else lamina.tensor(y[i:i + batch])
            loss, _ = step(xb, yb)
            last = float(loss.item())
    return weights_hash(model), last


def main(argv):
    lamina.set_num_threads(1)
    x_all, y_all = MNIST(train=True, download=False).arrays()
    names = argv or list(CASES)
    for name in names:
        for compiled in (False, True):
            digest, loss = run(name, compiled, x_all, y_all)
            print(f"{name:7s} {'compiled' if compiled else 'eager':8s} weights {digest}  last loss {loss!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
