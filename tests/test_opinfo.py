"""The OpInfo table test: walks the op registry (lamina.ops.registry) and checks every op, in
every dtype it declares, on every sample it gives: forward against NumPy and PyTorch, the
gradient against float64 finite differences and PyTorch, compiled against eager bit for bit
(values and gradients), and that each bad sample raises the op's own error. A newly
registered op is tested here with no test code beyond its samples."""
import numpy as np
import pytest

import lamina
from lamina import nn
from lamina.autograd import gradcheck
from lamina.ops import registry

torch = pytest.importorskip("torch")

TOL = {np.dtype(np.float32): dict(rtol=2e-4, atol=2e-5), np.dtype(np.float64): dict(rtol=1e-9, atol=1e-11)}


def _cases():
    for op in registry.all_ops():
        if op.samples is None or op.call is None:
            continue
        for dt in op.dtypes:
            dt = np.dtype(dt)
            for i, s in enumerate(op.samples(dt)):
                yield pytest.param(op, dt, s, id=f"{op.name}-{dt.name}-{s.name or i}")


def _bad_cases():
    for op in registry.all_ops():
        if op.bad_samples is None or op.call is None:
            continue
        for i, b in enumerate(op.bad_samples()):
            yield pytest.param(op, b, id=f"{op.name}-bad{i}")


CASES = list(_cases())


def _compiled_cases():
    for c in CASES:
        op, dt, s = c.values
        if s.compile:
            yield c


def _as_tensors(args, make, requires_grad=False):
    """Arrays in a sample's args become tensors via `make` (lamina or torch, each from its own copy);
    float ones require grad when asked; everything else passes through."""
    out = []
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype.kind in "fiub":
            t = make(a.copy())
            if requires_grad and a.dtype.kind == "f":
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(a)
    return out


def _tensors(args, requires_grad=False):
    return _as_tensors(args, lamina.tensor, requires_grad)


def _torch_args(args, requires_grad=False):
    return _as_tensors(args, torch.from_numpy, requires_grad)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def test_the_registry_is_walked():
    names = {c.values[0].name for c in CASES}
    assert {"add", "mul", "matmul", "linear", "conv2d", "max_pool2d", "cross_entropy", "softmax"} <= names


@pytest.mark.parametrize("op, dtype, sample", CASES)
def test_forward_against_numpy_and_torch(op, dtype, sample):
    out = _first(op.call(*_tensors(sample.args), **sample.kwargs))
    got = out.numpy()
    if op.reference is not None:
        want = np.asarray(op.reference(*sample.args, **sample.kwargs))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **TOL[dtype])
    if op.torch is not None:
        want = _first(op.torch(torch, *_torch_args(sample.args), **sample.kwargs)).detach().numpy()
        assert got.shape == tuple(want.shape)
        np.testing.assert_allclose(got, want, **TOL[dtype])


def _differentiable(sample):
    floats = [a for a in sample.args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return sample.grad and floats and all(a.size for a in floats)


@pytest.mark.parametrize("op, dtype, sample", [c for c in CASES if c.values[1] == np.float64
                                               and _differentiable(c.values[2])])
def test_gradient_against_finite_differences_and_torch(op, dtype, sample):
    ts = _tensors(sample.args, requires_grad=True)
    diff = [t for t in ts if isinstance(t, lamina.Tensor) and t.requires_grad]

    def fn(*xs):
        return _first(op.call(*xs, **sample.kwargs))
    assert gradcheck(fn, ts, eps=1e-6, atol=1e-6, rtol=1e-4)
    if op.torch is None:
        return
    for t in diff:
        t.grad = None
    _first(op.call(*ts, **sample.kwargs)).sum().backward()
    tts = _torch_args(sample.args, requires_grad=True)
    _first(op.torch(torch, *tts, **sample.kwargs)).sum().backward()
    for t, tt in zip([t for t in ts if isinstance(t, lamina.Tensor)], [t for t in tts if torch.is_tensor(t)]):
        if t.requires_grad:
            np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-7, atol=1e-9)


class _OpModule(nn.Module):
    """The op over its sample: float inputs are Parameters, the rest constants; x is unused."""

    def __init__(self, op, sample):
        super().__init__()
        self.op, self.kwargs, self.args = op, sample.kwargs, []
        for i, a in enumerate(sample.args):
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                p = nn.Parameter(a.copy())
                setattr(self, f"p{i}", p)
                self.args.append(p)
            elif isinstance(a, np.ndarray):
                self.args.append(lamina.tensor(a.copy()))
            else:
                self.args.append(a)

    def forward(self, x):
        return _first(self.op.call(*self.args, **self.kwargs))


@pytest.mark.parametrize("op, dtype, sample", list(_compiled_cases()))
def test_compiled_equals_eager_bit_for_bit(op, dtype, sample):
    eager = _OpModule(op, sample)
    with lamina.no_grad():
        want = eager(None).numpy()
    f = lamina.compile(_OpModule(op, sample))
    x = np.zeros(1, dtype)
    with lamina.no_grad():                           # inference: the planned schedule, not the eager fallback
        f(x)                                         # the trace (an eager call)
        np.testing.assert_array_equal(f(x).numpy(), want)   # the planned schedule
    if not sample.grad or want.dtype.kind != "f":
        return
    # gradients: one compiled training step with lr = 0 against eager backward of the same loss
    cot = np.random.default_rng(0).standard_normal(want.shape).astype(want.dtype)
    model = _OpModule(op, sample)
    if not list(model.parameters()):
        return
    opt = lamina.optim.SGD(model.parameters(), lr=0.0)
    step = lamina.compile(model, lambda out, y: (out * y).sum(), opt)
    step(x, cot)
    step(x, cot)
    ref = _OpModule(op, sample)
    (ref(None) * lamina.tensor(cot)).sum().backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    if op.backward is not None:
        # an op with one backward rule: once its forward is lowered, its compiled backward is
        # that rule recorded as graph nodes, never the eager backward run as a callback
        name = op.function.__name__
        if name not in step.graph.callbacks:
            assert name + ".backward" not in step.graph.callbacks


@pytest.mark.parametrize("op, bad", list(_bad_cases()))
def test_bad_input_raises_the_ops_own_error(op, bad):
    with pytest.raises(bad.error, match=bad.match or None):
        op.call(*_tensors(bad.args), **bad.kwargs)
