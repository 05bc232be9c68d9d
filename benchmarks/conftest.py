"""Shared fixtures for the pytest-benchmark suite (one file per kernel family).

    python -m pytest benchmarks/ --benchmark-only              # time lamina vs NumPy vs PyTorch
    python -m pytest benchmarks/ --benchmark-disable           # correctness only (CI, < 60 s)
    python -m pytest benchmarks/ --benchmark-only --bench-threads 1

Every case checks its result against `numpy_ref` (with `check_equal`) BEFORE timing, so a fast
wrong answer fails. All three libraries run with the same thread count (--bench-threads,
default 2): lamina via `lamina.set_num_threads`, NumPy's BLAS via threadpoolctl, PyTorch via
`torch.set_num_threads`. Results are grouped per case (family + parameters other than the
library), so lamina, NumPy and PyTorch sit side by side in one group.
"""
import os
import sys

# OpenBLAS reads these when it loads: a forced core type / L2 size can pick a slower kernel
# than the CPU's own. Unset them before anything imports NumPy (report.py does the same).
_UNSET_OPENBLAS = {k: os.environ.pop(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
_NUMPY_PRELOADED = "numpy" in sys.modules

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)  # numpy_ref, bench_conv, lamina_path
import lamina_path  # noqa: E402

lamina_path.use_lamina()  # the source tree's dev build if it has one, else the installed package

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lamina  # noqa: E402,F811
import numpy_ref  # noqa: E402

try:
    import torch  # comparison only; lamina itself never imports torch
except ImportError:  # pragma: no cover
    torch = None

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_info = threadpool_limits = None

LIB_PARAMS = ("lib", "impl")  # the parameter naming the library under test in each family file


def pytest_addoption(parser):
    parser.addoption("--bench-threads", type=int, default=2,
                     help="threads for lamina, NumPy's BLAS and PyTorch alike (default 2)")


def pytest_report_header(config):
    blas = "threadpoolctl not installed"
    if threadpool_info is not None:
        blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                         for i in threadpool_info() if i.get("user_api") == "blas") or "no BLAS found"
    unset = f"; unset {sorted(_UNSET_OPENBLAS)}" if _UNSET_OPENBLAS else ""
    warn = " (WARNING: numpy was imported before the unset took effect)" if _UNSET_OPENBLAS and _NUMPY_PRELOADED else ""
    return (f"lamina {lamina.__version__} isa={lamina._C.isa()} threads={config.getoption('--bench-threads')}; "
            f"numpy {np.__version__} BLAS {blas}{unset}{warn}; torch {torch.__version__ if torch else 'n/a'}")


def pytest_collection_modifyitems(config, items):
    """Group each benchmark by family (file) + case parameters, the library left out."""
    for item in items:
        family = os.path.basename(str(item.fspath))[len("test_bench_"):-len(".py")]
        params = getattr(getattr(item, "callspec", None), "params", {})
        case = [f"{k}={_short(v)}" for k, v in params.items() if k not in LIB_PARAMS]
        item.add_marker(pytest.mark.benchmark(group=" ".join([family] + case)))


def _short(v):
    if isinstance(v, (tuple, list)):
        return "x".join(map(str, v))
    return str(v)


class Threads:
    """Set lamina's, NumPy's (BLAS) and PyTorch's thread counts together; restore on exit."""

    def __init__(self, n):
        self.n = int(n)

    def __enter__(self):
        self._lamina = lamina.get_num_threads()
        lamina.set_num_threads(self.n)
        self._blas = threadpool_limits(limits=self.n, user_api="blas") if threadpool_limits else None
        if torch is not None:
            self._torch = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        lamina.set_num_threads(self._lamina)
        if self._blas is not None:
            self._blas.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(self._torch)


@pytest.fixture(scope="session", autouse=True)
def bench_threads(request):
    """The thread count every library runs with in this session (--bench-threads)."""
    with Threads(request.config.getoption("--bench-threads")) as t:
        yield t.n


@pytest.fixture(scope="session")
def check_equal():
    """numpy_ref.check_equal(got, ref, rtol=None, atol=None, name=...): call it before timing."""
    return numpy_ref.check_equal


@pytest.fixture(scope="session")
def ref():
    """The NumPy reference module (numpy_ref)."""
    return numpy_ref


@pytest.fixture(scope="session")
def torch_or_skip():
    if torch is None:
        pytest.skip("PyTorch not installed (comparison only)")
    return torch
