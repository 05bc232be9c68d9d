"""Issue 19, findings 1-7: a compiled step/forward is a guarded plan that follows its model, is
safe to call from several threads, and traces per thread. Each test failed before the fix.
The crash tests (findings 1 and 2) run in a subprocess."""
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import nn
from lamina.graph import CaptureError, compile

ROOT = Path(__file__).resolve().parent.parent
LAMINA_PARENT = str(Path(lamina.__file__).resolve().parent.parent)


def _mlp(seed=0, dropout=0.0):
    lamina.manual_seed(seed)
    layers = [nn.Flatten(), nn.Linear(12, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(16, 3))
    return nn.Sequential(*layers)


def _data(n=8, seed=1):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 12)).astype(np.float32), r.integers(0, 3, n).astype(np.int64)


def _eager_step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(lamina.from_numpy(x)), lamina.from_numpy(y))
    loss.backward()
    opt.step()
    return float(loss.item())


def _same_weights(m1, m2):
    return all(np.array_equal(a.data, b.data) for a, b in zip(m1.parameters(), m2.parameters()))


def _run_script(body, timeout=300):
    # the lamina under test (the installed package in CI, python/ in a developer's tree)
    code = "import sys; sys.path.insert(0, %r)\n" % LAMINA_PARENT + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


# ---- findings 1 and 2: concurrent calls of one compiled forward
_THREADS_SCRIPT = """
import threading, numpy as np, lamina
from lamina import nn
lamina.set_num_threads(1)
lamina.manual_seed(0)

class Head(nn.Module):
    # reads a 16-column slice of a huge input: each call's input is fresh and freed after it
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)
    def forward(self, x):
        return self.fc(x[:, :16])

model = Head()
model.requires_grad_(False)   # inference: no gradient can flow, so every call runs the planned schedule
f = lamina.compile(model)
W, b = model.fc.weight.detach().numpy().astype(np.float64), model.fc.bias.detach().numpy().astype(np.float64)
ROWS, COLS = {rows}, {cols}
f(np.ones((ROWS, COLS), np.float32))          # trace once
wrong, errors = [0], []

def worker(tid):
    r = np.random.default_rng(tid)
    try:
        for i in range(200):
            x = np.empty((ROWS, COLS), np.float32)
            x[:, :16] = r.standard_normal((ROWS, 16))
            want = x[:, :16].astype(np.float64) @ W.T + b
            got = f(x).numpy()
            del x                              # the caller's array is freed between calls
            if not np.allclose(got, want, rtol=1e-4, atol=1e-4):
                wrong[0] += 1
    except Exception as e:
        errors.append(repr(e))

ts = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print("WRONG", wrong[0], "ERRORS", errors[:3])
"""


@pytest.mark.parametrize("rows, cols", [(64, 16), (1000, 18000)], ids=["small", "72MB"])
def test_finding_1_2_concurrent_calls_of_one_compiled_forward(rows, cols):
    r = _run_script(_THREADS_SCRIPT.format(rows=rows, cols=cols))
    assert r.returncode == 0, f"rc {r.returncode}: {r.stderr[-2000:]}"
    assert "WRONG 0 ERRORS []" in r.stdout, r.stdout + r.stderr[-2000:]


# ---- finding 3: eval() after compiling
@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_finding_3_eval_after_compiling_turns_dropout_off():
    model = _mlp(dropout=0.5)
    f = compile(model)
    x, _ = _data()
    f(x)                                     # traced in training mode (dropout on)
    model.eval()
    with lamina.no_grad():
        want = model(lamina.from_numpy(x)).numpy()
    np.testing.assert_array_equal(f(x).numpy(), want)
    model.train()
    assert not np.array_equal(f(x).numpy(), want)     # training mode again: dropout applies


def test_finding_3_compiled_step_follows_eval():
    m1, m2 = _mlp(dropout=0.5), _mlp(dropout=0.5)
    o1, o2 = lamina.optim.SGD(m1.parameters(), lr=0.1), lamina.optim.SGD(m2.parameters(), lr=0.1)
    step = compile(m2, F.cross_entropy, o2)
    x, y = _data()
    o2.param_groups[0]["lr"] = 0.0
    step(x, y)                               # traced in training mode; lr 0 leaves the weights alone
    o2.param_groups[0]["lr"] = 0.1
    m1.eval()
    m2.eval()
    for _ in range(3):
        assert step(x, y) == _eager_step(m1, o1, x, y)
    assert _same_weights(m1, m2)


# ---- finding 4: freezing after compiling
def test_finding_4_frozen_parameter_is_not_updated():
    m1, m2 = _mlp(), _mlp()
    o1, o2 = lamina.optim.SGD(m1.parameters(), lr=0.1), lamina.optim.SGD(m2.parameters(), lr=0.1)
    step = compile(m2, F.cross_entropy, o2)
    x, y = _data()
    step(x, y)
    step(x, y)
    _eager_step(m1, o1, x, y)
    _eager_step(m1, o1, x, y)
    for m in (m1, m2):
        m[1].weight.requires_grad_(False)
    frozen = m2[1].weight.detach().numpy().copy()
    for _ in range(2):
        assert step(x, y) == _eager_step(m1, o1, x, y)
    np.testing.assert_array_equal(m2[1].weight.data, frozen)
    assert _same_weights(m1, m2)


# ---- finding 5: stale traces
class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 3)
        self.scale = 2.0
        self.shift = lamina.zeros(3)

    def forward(self, x):
        return self.fc(x) * self.scale + self.shift


def _eager_forward(model, x):
    with lamina.no_grad():
        return model(lamina.from_numpy(x)).numpy()


@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_finding_5_new_parameter_float_and_tensor_attributes_retrace():
    lamina.manual_seed(0)
    model = _Scaled()
    f = compile(model)
    x, _ = _data()
    np.testing.assert_array_equal(f(x).numpy(), _eager_forward(model, x))
    model.fc.weight = nn.Parameter(np.full((3, 12), 0.5, np.float32))          # a new Parameter
    np.testing.assert_array_equal(f(x).numpy(), _eager_forward(model, x))
    model.scale = 3.0                                                             # a float attribute
    np.testing.assert_array_equal(f(x).numpy(), _eager_forward(model, x))
    model.shift = lamina.ones(3)                                                  # a tensor attribute
    np.testing.assert_array_equal(f(x).numpy(), _eager_forward(model, x))
    assert f.traces == 4


@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_finding_5_unchanged_model_does_not_retrace():
    lamina.manual_seed(0)
    model = _Scaled()
    f = compile(model)
    x, _ = _data()
    for _ in range(5):
        f(x)
    assert f.traces == 1


def test_finding_5_compiled_step_after_swapping_a_parameter():
    m1, m2 = _mlp(), _mlp()
    o1, o2 = (lamina.optim.SGD(m.parameters(), lr=0.1) for m in (m1, m2))
    step = compile(m2, F.cross_entropy, o2)
    x, y = _data()
    assert step(x, y) == _eager_step(m1, o1, x, y)
    for m in (m1, m2):       # the new weight is not in the optimizer: it gets a gradient, no update
        m[3].weight = nn.Parameter(np.full((3, 16), 0.25, np.float32))
    for _ in range(2):
        assert step(x, y) == _eager_step(m1, o1, x, y)
    assert _same_weights(m1, m2)


# ---- finding 6: optimizers the compiler does not lower
class _PlainSGD(lamina.optim.Optimizer):
    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.data -= group["lr"] * p.grad.data


@pytest.mark.parametrize("make_opt", [
    lambda m: lamina.optim.SGD(m[3].parameters(), lr=0.1, momentum=0.9),         # a subset (the head)
    lambda m: _PlainSGD(m.parameters(), lr=0.1),                                   # a custom subclass
    lambda m: lamina.optim.Adam(m[3].parameters(), lr=0.01),
], ids=["subset", "custom", "adam-subset"])
def test_finding_6_unlowered_optimizers_match_eager(make_opt):
    m1, m2 = _mlp(), _mlp()
    o1, o2 = make_opt(m1), make_opt(m2)
    step = compile(m2, F.cross_entropy, o2)
    x, y = _data()
    for _ in range(4):
        assert step(x, y) == _eager_step(m1, o1, x, y)
        # p.grad is the step's gradient for the optimizer's parameters (the others accumulate
        # across eager steps, since zero_grad() does not reach them: only their values are compared)
        for a, b in zip((p for g in o1.param_groups for p in g["params"]),
                        (p for g in o2.param_groups for p in g["params"])):
            np.testing.assert_array_equal(a.grad.data, b.grad.data)
    assert _same_weights(m1, m2)


def test_finding_6_add_param_group_after_compiling():
    m1, m2 = _mlp(), _mlp()
    o1, o2 = (lamina.optim.SGD(m[1].parameters(), lr=0.1) for m in (m1, m2))
    step = compile(m2, F.cross_entropy, o2)
    x, y = _data()
    for i in range(4):
        if i == 2:
            for m, o in ((m1, o1), (m2, o2)):
                o.add_param_group({"params": list(m[3].parameters()), "lr": 0.05})
        assert step(x, y) == _eager_step(m1, o1, x, y)
    assert _same_weights(m1, m2)


def test_p_grad_holds_the_compiled_steps_gradient_after_zero_grad():
    m1, m2 = _mlp(), _mlp()
    o1, o2 = (lamina.optim.SGD(m.parameters(), lr=0.1) for m in (m1, m2))
    step = compile(m2, F.cross_entropy, o2)
    x, y = _data()
    for _ in range(3):
        o2.zero_grad()                       # set_to_none: the compiled step must publish p.grad again
        step(x, y)
        _eager_step(m1, o1, x, y)
        for a, b in zip(m1.parameters(), m2.parameters()):
            np.testing.assert_array_equal(a.grad.data, b.grad.data)


# ---- finding 7: tracing is per thread
def test_finding_7_one_thread_compiles_while_two_run_eager_autodiff():
    errors, results = [], {}
    done = threading.Event()
    x, y = _data(seed=3)

    def compiled_worker():
        try:
            m = _mlp(seed=5)
            opt = lamina.optim.SGD(m.parameters(), lr=0.1)
            traces = 0
            for i in range(30):
                step = compile(m, F.cross_entropy, opt)     # a fresh trace every other step
                step(x, y)
                step(x, y)
                traces += step.traces
            results["compiled"] = [p.detach().numpy().copy() for p in m.parameters()]
            results["traces"] = traces
        except Exception as e:
            errors.append(f"compiled thread: {e!r}")
        finally:
            done.set()

    def eager_worker(tid):
        r = np.random.default_rng(tid)
        n = 0
        while not done.is_set() or n < 200:
            n += 1
            v = r.standard_normal(5)
            t = lamina.tensor(v, requires_grad=True)
            try:
                loss = (t * t).sum()
                if loss.item() < 0:        # .item() here must never see the other thread's tracer
                    errors.append("negative")
                loss.backward()
            except Exception as e:
                errors.append(f"thread {tid}: {e!r}")
                return
            if not np.allclose(t.grad.numpy(), 2 * v):
                errors.append(f"thread {tid}: wrong gradient")

    threads = [threading.Thread(target=eager_worker, args=(t,)) for t in (1, 2)] + \
              [threading.Thread(target=compiled_worker)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results["traces"] == 30
    m = _mlp(seed=5)
    o = lamina.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(60):
        _eager_step(m, o, x, y)
    for want, got in zip((p.data for p in m.parameters()), results["compiled"]):
        np.testing.assert_array_equal(got, want)


def test_finding_7_three_threads_compile_their_own_models():
    outs, errors = {}, []

    def worker(tid):
        try:
            m = _mlp(seed=tid)
            f = compile(m)
            x, _ = _data(seed=tid)
            with lamina.no_grad():      # grad mode is per thread: inference, the planned schedule
                for _ in range(20):
                    got = f(x).numpy()
            outs[tid] = (got, _eager_forward(m, x))
        except Exception as e:          # "nested tracing is not supported" before the fix
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for got, want in outs.values():
        np.testing.assert_array_equal(got, want)


# ---- values read back to Python during capture
class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        h = self.fc(x)
        if h.sum().item() > 1e9:            # data-dependent control flow
            return h * 2
        return h


@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_item_during_capture_names_the_line():
    lamina.manual_seed(0)
    f = compile(_Branchy())
    x, _ = _data()
    with pytest.raises(CaptureError, match=r"item\(\) on the output of Sum .* at .*test_compiled_guards\.py:\d+"):
        f(x)


@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_numpy_during_capture_is_a_capture_error():
    lamina.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 3))
    model.forward = lambda x: model[0](x) * float(model[0](x).numpy().mean() > 0)
    with pytest.raises(CaptureError, match=r"numpy\(\)"):
        compile(model)(_data()[0])


@lamina.no_grad()  # its compiled calls are inference: the planned schedule, not the eager fallback
def test_fallback_eager_runs_the_step_eagerly():
    lamina.manual_seed(0)
    model = _Branchy()
    f = compile(model, fallback="eager")
    x, _ = _data()
    with pytest.warns(RuntimeWarning, match="running eagerly"):
        got = f(x).numpy()
    np.testing.assert_array_equal(got, _eager_forward(model, x))
    np.testing.assert_array_equal(f(x).numpy(), _eager_forward(model, x))


def test_fallback_argument_is_checked():
    with pytest.raises(ValueError, match="fallback"):
        compile(_mlp(), fallback="sometimes")
