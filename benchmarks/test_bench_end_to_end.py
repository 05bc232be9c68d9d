"""pytest-benchmark cases for one MNIST training step (forward, loss, backward, SGD update):
lamina eager vs lamina compiled (`lamina.compile`) vs PyTorch, MLP 784-300-100-10 and LeNet-5.

    python -m pytest benchmarks/test_bench_end_to_end.py --benchmark-only --benchmark-columns=median,ops

All three start from identical weights. Before timing, the first loss must equal the NumPy
forward pass (numpy_ref.mnist_model_loss, float64) and the first three losses (two updates in)
must equal lamina eager's. images/s is recorded in extra_info. Whole-epoch throughput and peak
RSS per configuration (fresh process each) are in benchmarks/report.py's end_to_end table.
"""
import functools
import os

import numpy as np
import pytest

import numpy_ref as R
import torch_ref
import lamina
import lamina.nn.functional as F

try:
    import torch  # comparison only
except ImportError:  # pragma: no cover
    torch = None

DATA = os.environ.get("LAMINA_DATA", "/work/shared/data")
BATCHES = 8  # distinct batches the timed loop cycles through
IMPLS = ["eager", "compiled"] + (["torch"] if torch is not None else [])


@functools.lru_cache(maxsize=1)
def _mnist():
    from lamina.datasets import MNIST
    try:
        ds = MNIST(DATA, train=True, download=False)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"real MNIST not found under {DATA}/mnist ({e}): set LAMINA_DATA")
    x, y = ds.arrays()  # the whole split at once
    n = 256 * BATCHES
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(y[:n])


@functools.lru_cache(maxsize=2)
def _initial_weights(model_name):
    lamina.manual_seed(0)
    return [p.detach().numpy().copy() for p in _lamina_model(model_name).parameters()]


def _lamina_model(model_name):
    return lamina.models.mlp() if model_name == "mlp" else lamina.models.lenet5()


def _batches(batch):
    x, y = _mnist()
    return [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(BATCHES)]


def make_step(impl, model_name):
    """step(x, y) -> float loss, one SGD(lr 0.01, momentum 0.9) update, from the shared weights."""
    weights = _initial_weights(model_name)
    if impl == "torch":
        nn = torch.nn
        net = torch_ref.model(model_name)
        with torch.no_grad():
            for p, w in zip(net.parameters(), weights, strict=True):
                p.copy_(torch.from_numpy(w))
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        lossf = nn.CrossEntropyLoss()

        def step(x, y):
            opt.zero_grad()
            loss = lossf(net(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            opt.step()
            return loss.item()
        return step
    model = _lamina_model(model_name)
    for p, w in zip(model.parameters(), weights, strict=True):
        p.data[...] = w
    opt = lamina.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if impl == "compiled":
        return lamina.compile(model, F.cross_entropy, opt)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(lamina.from_numpy(x)), lamina.from_numpy(y))
        loss.backward()
        opt.step()
        return loss.item()
    return step


@functools.lru_cache(maxsize=4)
def _eager_losses(model_name, batch):
    step = make_step("eager", model_name)
    return np.array([step(x, y) for x, y in _batches(batch)[:3]])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("model_name", ["mlp", "lenet5"])
def test_train_step(benchmark, check_equal, model_name, batch, impl):
    batches = _batches(batch)
    step = make_step(impl, model_name)
    losses = np.array([step(x, y) for x, y in batches[:3]])  # warm-up (the compiled step traces), checked
    w64 = [w.astype(np.float64) for w in _initial_weights(model_name)]
    x0, y0 = batches[0]
    check_equal(np.float64(losses[0]), np.float64(R.mnist_model_loss(model_name, w64, x0.astype(np.float64), y0)),
                rtol=1e-5, name=f"{impl} first loss vs NumPy forward")
    check_equal(losses, _eager_losses(model_name, batch), rtol=1e-4, atol=1e-5, name=f"{impl} losses vs eager")
    it = iter(range(1 << 30))

    def one():
        x, y = batches[next(it) % BATCHES]
        return step(x, y)
    benchmark(one)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["images/s"] = round(batch / benchmark.stats.stats.median)
