"""Which lamina the benchmark scripts import.

A dev build (`bash tools/dev_build.sh build/dev`) installs `_C` into the source tree's
`python/lamina`; `pip install .` installs the package elsewhere and leaves the source tree with
no `_C`. The scripts use the source tree when it has a built `_C`, otherwise the installed
package, so that both `PYTHONPATH=python python benchmarks/bench_gemm.py` after a dev build and
`python benchmarks/bench_gemm.py` after `pip install .` work.

>>> import lamina_path
>>> lamina_path.use_lamina() in ("source", "installed")
True
"""
from __future__ import annotations

import glob
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.normpath(os.path.join(HERE, "..", "python"))


def source_tree_has_built_C(source: str = SOURCE) -> bool:
    """True if `source`/lamina holds a compiled `_C` extension module."""
    pkg = os.path.join(source, "lamina")
    return any(glob.glob(os.path.join(pkg, pattern)) for pattern in ("_C*.so", "_C*.pyd", "_C*.dylib"))


def use_lamina(source: str = SOURCE) -> str:
    """Arrange sys.path so `import lamina` gets a usable package; returns "source" or "installed".

    The benchmarks folder goes on the path too (numpy_ref, torch_ref, bench_conv, ...). A source
    tree without `_C` is taken off the path (PYTHONPATH=python from the README's dev commands),
    since importing it would fail with `cannot import name '_C'`.
    """
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    norm = os.path.normcase(os.path.realpath(source))
    if source_tree_has_built_C(source):
        if not any(os.path.normcase(os.path.realpath(p or ".")) == norm for p in sys.path):
            sys.path.insert(0, source)
        return "source"
    sys.path[:] = [p for p in sys.path if os.path.normcase(os.path.realpath(p or ".")) != norm]
    if "lamina" in sys.modules and not hasattr(sys.modules["lamina"], "_C"):
        del sys.modules["lamina"]  # a half-imported source package from before the fix-up
    return "installed"


def host_line(peak_seconds: float = 0.3) -> str:
    """One line on the host every benchmark script prints first, so that figures from different
    machines can be compared: the CPU model (vendor, family/model), the ISA path lamina runs, the
    cache sizes it read, its f32 GEMM micro-kernel, this core's measured FMA peak and where lamina
    was imported from (dev build or installed package)."""
    import lamina
    from lamina import _C

    info = _C.cpu_info()
    c = info["caches"]
    blk = info["gemm_blocking"]["float32"]
    peak = _C.fma_peak_gflops(peak_seconds)
    return (f"cpu: {info['model']} ({info['vendor']} family {info['family']} model {info['model_number']}, "
            f"{platform.machine()}, {os.cpu_count()} cpus); isa {_C.isa()}; "
            f"L1d {c['l1d'] >> 10} KiB, L2 {c['l2'] >> 10} KiB, L3 {c['l3'] >> 20} MiB ({c['source']}); "
            f"f32 GEMM {blk['kernel']} MC {blk['MC']} KC {blk['KC']} NC {blk['NC']}; "
            f"FMA peak (1 core, f32, measured) {peak:.1f} GFLOP/s; "
            f"lamina {lamina.__version__} from {os.path.dirname(os.path.abspath(lamina.__file__))}")
