"""Determinism: with lamina.manual_seed(s) and a fixed thread count, training runs repeat bit
for bit -- initial weights, data order, dropout masks and every kernel's reduction order.
"""
import numpy as np
import pytest

import lamina
import lamina.nn as nn
import lamina.nn.functional as F
from lamina.data import ArrayDataset, DataLoader


def _synthetic(n, shape, classes, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + shape).astype(np.float32)
    y = rng.integers(0, classes, n).astype(np.int64)
    return x, y


def _train(make_model, make_opt, x, y, seed, threads, epochs=2, batch=16):
    lamina.manual_seed(seed)
    prev = lamina.get_num_threads()
    lamina.set_num_threads(threads)
    try:
        model = make_model()
        opt = make_opt(model.parameters())
        loader = DataLoader(ArrayDataset(x, y), batch_size=batch, shuffle=True)  # seed drawn from lamina's RNG
        losses = []
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                losses.append(loss.item())
    finally:
        lamina.set_num_threads(prev)
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}, losses


def mlp():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 32), nn.Tanh(),
                         nn.Linear(32, 5))


def convnet():
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(8, 4))  # 10 -> 10 -> 5 -> 3 -> 1


def _same_bits(a, b):
    assert a.keys() == b.keys()
    return all(a[k].tobytes() == b[k].tobytes() for k in a)


@pytest.mark.parametrize("threads", [1, 2])
def test_mlp_training_is_bit_identical(threads):
    x, y = _synthetic(96, (20,), 5, seed=0)
    sgd = lambda p: lamina.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)  # noqa: E731
    p1, l1 = _train(mlp, sgd, x, y, seed=123, threads=threads)
    p2, l2 = _train(mlp, sgd, x, y, seed=123, threads=threads)
    assert l1 == l2
    assert _same_bits(p1, p2)
    p3, _ = _train(mlp, sgd, x, y, seed=124, threads=threads)
    assert not _same_bits(p1, p3), "a different seed must give different weights"


@pytest.mark.parametrize("threads", [1, 2])
def test_convnet_training_is_bit_identical(threads):
    x, y = _synthetic(64, (1, 10, 10), 4, seed=1)
    adam = lambda p: lamina.optim.AdamW(p, lr=3e-3, weight_decay=1e-2)  # noqa: E731
    p1, l1 = _train(convnet, adam, x, y, seed=7, threads=threads)
    p2, l2 = _train(convnet, adam, x, y, seed=7, threads=threads)
    assert l1 == l2
    assert _same_bits(p1, p2)
    assert all(np.isfinite(v).all() for v in p1.values())
    p3, _ = _train(convnet, adam, x, y, seed=8, threads=threads)
    assert not _same_bits(p1, p3)


def test_rng_state_round_trip_resumes_the_same_stream():
    lamina.manual_seed(5)
    lamina.randn(3)
    state = lamina.get_rng_state()
    a = lamina.randn(4).numpy().copy()
    lamina.set_rng_state(state)
    b = lamina.randn(4).numpy()
    assert a.tobytes() == b.tobytes()
