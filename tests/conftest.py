"""Shared test helpers: one function compares any lamina op with PyTorch (tinygrad style)."""
import os

import numpy as np
import pytest

import lamina

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # torch is only an oracle; outside CI its comparisons skip without it
    torch = None

# Under CI=true (set by .ci/run) nothing the suite needs may be missing: a missing oracle or data
# folder fails the run instead of turning checks into quiet skips.
IN_CI = os.environ.get("CI", "").lower() == "true"

DATA_ROOT = os.environ.get("LAMINA_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
if not os.path.isdir(os.path.join(DATA_ROOT, "mnist")) and os.path.isdir("/work/shared/data/mnist"):
    DATA_ROOT = "/work/shared/data"

# Tolerances from the dtype and the kind of operation, stated once. "exact" ops (elementwise,
# pooling, copies) differ from PyTorch only by rounding; "reduction" ops (GEMM, conv, losses)
# accumulate it over K terms; "optimizer" is many steps of a few flops each in float64; Winograd
# float32 is about 10x its measured error (measured on a Xeon: 1.5e-6 on y and dX, 6e-6 on db,
# 2.5e-5 on dW, each relative to 1 + |reference|; F(4x4): 1e-5 on y and dX).
_TOLERANCES = {
    ("exact", np.float32): dict(rtol=1e-5, atol=1e-6),
    ("exact", np.float64): dict(rtol=1e-12, atol=1e-12),
    ("reduction", np.float32): dict(rtol=1e-4, atol=1e-5),
    ("reduction", np.float64): dict(rtol=1e-10, atol=1e-11),
    ("optimizer", np.float64): dict(rtol=1e-12, atol=1e-14),
    ("winograd", np.float32): dict(rtol=2e-5, atol=2e-5),
    ("winograd_dw", np.float32): dict(rtol=3e-4, atol=3e-4),
    # F(4x4, 3x3) (the forward and dX of <= 128-channel 3x3 layers): ~1e-5 measured at C = 64
    ("winograd4", np.float32): dict(rtol=1e-4, atol=1e-4),
}


def tolerance(dtype, kind="reduction"):
    """rtol/atol for comparing a `kind` of op in `dtype` against an oracle (see _TOLERANCES)."""
    return dict(_TOLERANCES[(kind, np.dtype(dtype).type)])


TOL = {np.float32: tolerance(np.float32), np.float64: tolerance(np.float64)}


def pytest_sessionstart(session):
    if IN_CI and torch is None:
        pytest.exit("CI=true but PyTorch is not importable: the test oracle is required "
                    "(pip install torch==2.13.0)", returncode=1)


def _missing(reason):
    """Fail under CI, skip on a developer's machine."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def mnist_files_present(root=None):
    """The README's data rule: each of the four IDX files, gzip-compressed or raw."""
    d = os.path.join(root or DATA_ROOT, "mnist")
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    return all(os.path.exists(os.path.join(d, s)) or os.path.exists(os.path.join(d, s + ".gz")) for s in stems)


def require_mnist(root=None):
    """The one MNIST guard: returns the data root, or fails (CI) / skips (elsewhere)."""
    root = root or DATA_ROOT
    if not mnist_files_present(root):
        _missing(f"real MNIST not found under {root}/mnist: set LAMINA_DATA")
    return root


@pytest.fixture
def restore_conv_settings():
    """For tests that force a convolution algorithm or a thread count: put both back."""
    from lamina import _C
    n0 = _C.get_num_threads()
    yield
    _C._conv_set_algo("auto")
    _C._conv_set_row_winograd("auto")
    _C._conv_set_lane_gather("auto")
    _C.set_num_threads(n0)


@pytest.fixture
def mnist_guard():
    return require_mnist()


# For tests that read MNIST through their own paths: fails under CI, skips elsewhere.
needs_mnist = pytest.mark.usefixtures("mnist_guard")


@pytest.fixture
def data_root():
    if not mnist_files_present():
        pytest.fail(f"real MNIST not found under {DATA_ROOT}/mnist: set LAMINA_DATA")
    return DATA_ROOT


def requires_torch():
    if torch is None:
        _missing("PyTorch not installed (only used as an oracle)")
    return torch


def run_in_both(fn):
    """fn(fw) -> {name: Tensor or plain value}, run once with fw = lamina and once with fw = torch,
    each in float64 by default from manual_seed(0): (lamina's results, torch's), tensors as arrays."""
    t = requires_torch()
    out = []
    for fw in (lamina, t):
        prev = fw.get_default_dtype()
        fw.set_default_dtype(fw.float64)
        try:
            fw.manual_seed(0)
            out.append({k: (v.detach().numpy() if hasattr(v, "detach") else v) for k, v in fn(fw).items()})
        finally:
            fw.set_default_dtype(prev)
    return out[0], out[1]


def assert_same_results(got, want, tol=1e-10):
    """run_in_both's two dicts agree: arrays to `tol`, everything else exactly."""
    assert got.keys() == want.keys()
    for k in got:
        if isinstance(got[k], np.ndarray):
            np.testing.assert_allclose(got[k], want[k], rtol=tol, atol=tol, err_msg=k)
        else:
            assert got[k] == want[k], k


def closed_port_url():
    """A URL on a local port that nothing listens on: connecting to it is refused at once."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def helper_test_op(shapes, lamina_fn, torch_fn, dtype=np.float32, low=-2.0, high=2.0, seed=0,
                   grad=True, tol=None, inputs=None):
    """Run lamina_fn and torch_fn on identical seeded inputs; compare outputs and the gradients
    of sum(out * v) for a fixed random cotangent v."""
    t = requires_torch()
    rng = np.random.default_rng(seed)
    arrays = inputs if inputs is not None else [rng.uniform(low, high, s).astype(dtype) for s in shapes]
    tol = tol or TOL[np.dtype(dtype).type]
    # None stands for an absent optional input (a conv without bias) on both sides.
    lx = [None if a is None else lamina.tensor(a, requires_grad=grad) for a in arrays]
    tx = [None if a is None else t.tensor(a, requires_grad=grad) for a in arrays]
    lo, to = lamina_fn(*lx), torch_fn(*tx)
    np.testing.assert_allclose(lo.detach().numpy(), to.detach().numpy(), **tol, err_msg="forward")
    assert lo.detach().numpy().dtype == to.detach().numpy().dtype, "forward dtype"
    if grad:
        v = rng.standard_normal(lo.shape).astype(dtype)
        (lo * lamina.tensor(v)).sum().backward()
        (to * t.tensor(v)).sum().backward()
        for i, (a, b) in enumerate(zip(lx, tx)):
            if a is None:
                continue
            assert (a.grad is None) == (b.grad is None), f"input {i}: grad presence differs"
            if a.grad is not None:
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol, err_msg=f"grad of input {i}")
    return lo


def helper_gradcheck(shapes, fn, low=-2.0, high=2.0, seed=0):
    rng = np.random.default_rng(seed)
    xs = [lamina.tensor(rng.uniform(low, high, s), dtype=lamina.float64, requires_grad=True) for s in shapes]
    assert lamina.autograd.gradcheck(fn, xs)
