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
