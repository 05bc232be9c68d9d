#!/usr/bin/env python3
"""Measure the test suite's strength: inject known bugs, one at a time, and report which tests catch
each. Not part of CI (each mutation rebuilds the module and reruns its tests: minutes).

Each mutation runs in a detached git worktree of HEAD under a temporary directory (the committed
tree only; your working copy is untouched), built with tools/dev_build.sh (ccache makes the rebuild
of one file cheap), then `ctest` where the mutation is in C++ and the named pytest files.

    python tools/mutation_check.py                 # all mutations
    python tools/mutation_check.py adam_eps relu   # those whose name contains a word given
A mutation whose source text is no longer in the tree is reported as "stale", never as caught.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Mutation:
    name: str
    why: str                                   # the real bug it stands for
    edits: List[Tuple[str, str, str]]          # (file, old text, new text)
    tests: List[str]                           # pytest files to run
    ctest: bool = False                        # C++ change: run the C++ unit tests too
    env: dict = field(default_factory=dict)


MUTATIONS = [
    Mutation("conv_nan", "a conv kernel that writes a NaN into its output",
             [("csrc/conv.cpp", '#include "conv.h"\n', '#include "conv.h"\n#include <limits>\n'),
              ("csrc/conv.cpp",
               "  conv2d_forward(p, x, w, b, y, Act::identity);\n",
               "  conv2d_forward(p, x, w, b, y, Act::identity);\n"
               "  if (p.N > 0 && p.K > 0 && p.OH() > 0 && p.OW() > 0) y[0] = std::numeric_limits<T>::quiet_NaN();\n")],
             ["tests/test_conv.py"], ctest=True),
    Mutation("adam_eps_inside_sqrt", "Adam with eps under the square root",
             [("csrc/optim.cpp", "std::sqrt(vh) * inv_bc2_sqrt + eps",
               "std::sqrt(vh * inv_bc2_sqrt * inv_bc2_sqrt + eps)"),
              ("csrc/optim_avx2.cpp", "K::add(K::mul(K::sqrt(vh), ibc2), epsv)",
               "K::sqrt(K::add(K::mul(vh, K::mul(ibc2, ibc2)), epsv))")],
             ["tests/test_optim.py"], ctest=True),
    Mutation("sgd_dampening_ignored", "SGD momentum that ignores dampening",
             [("csrc/optim.cpp", "momentum * buf[i] + one_minus_dampening * g", "momentum * buf[i] + g")],
             ["tests/test_optim.py"], ctest=True),
    Mutation("relu_grad_at_zero", "relu'(0) = 1 instead of the documented 0",
             [("csrc/activation.cpp", "dx[i] = v[i] <= T(0) ? T(0) : g;", "dx[i] = v[i] < T(0) ? T(0) : g;"),
              ("csrc/activation_avx2.cpp", "K::select(K::le(x, zero), zero, g)", "K::select(K::lt(x, zero), zero, g)")],
             ["tests/test_ops.py", "tests/test_kernels_elementwise.py", "tests/test_properties.py"], ctest=True),
    Mutation("maxpool_last_tie", "max-pool ties going to the last maximum instead of the first",
             [("csrc/pool.h", "const bool t = (v > m) | (v != v);", "const bool t = (v >= m) | (v != v);")],
             ["tests/test_pool.py", "tests/test_properties.py"], ctest=True),
    Mutation("fanout_overwrites", "a leaf's gradient overwritten instead of accumulated on fan-out",
             [("python/lamina/tensor.py", "t.grad._data += g", "t.grad._data[...] = g")],
             ["tests/test_autograd.py", "tests/test_ops.py", "tests/test_nn.py"]),
]


def run(cmd, cwd, env=None, timeout=1800):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def check(m: Mutation, keep: bool = False) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"mut-{m.name}-", dir=os.environ.get("TMPDIR", "/tmp")))
    tree = tmp / "tree"
    run(["git", "worktree", "add", "--detach", str(tree), "HEAD"], ROOT).check_returncode()
    try:
        for path, old, new in m.edits:
            f = tree / path
            text = f.read_text() if f.exists() else ""
            if old not in text:
                return dict(name=m.name, status="stale", detail=f"{path}: text not found")
            f.write_text(text.replace(old, new))
        build = run(["bash", "tools/dev_build.sh", "build/mut"], tree)
        if build.returncode != 0:
            return dict(name=m.name, status="build failed", detail=build.stderr[-400:])
        caught = []
        if m.ctest:
            ct = run(["ctest", "--output-on-failure"], tree / "build" / "mut")
            caught += [f"ctest:{t}" for t in re.findall(r"\d+ - (\S+) \(Failed\)", ct.stdout)]
        env = dict(os.environ, PYTHONPATH=str(tree / "python"), **m.env)
        py = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *m.tests], tree, env)
        caught += re.findall(r"^FAILED (\S+)", py.stdout, re.M)
        return dict(name=m.name, status="caught" if caught else "MISSED", detail=caught)
    finally:
        if not keep:
            run(["git", "worktree", "remove", "--force", str(tree)], ROOT)
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    chosen = [m for m in MUTATIONS if not argv or any(a in m.name for a in argv)]
    rows = []
    for m in chosen:
        r = check(m)
        rows.append((m, r))
        detail = r["detail"]
        n = len(detail) if isinstance(detail, list) else 0
        print(f"{m.name:24s} {r['status']:8s} {n:4d} failing  ({m.why})", flush=True)
    print("\n| mutation | the bug | result | tests that caught it |\n|---|---|---|---|")
    for m, r in rows:
        d = r["detail"]
        if isinstance(d, list):
            shown = ", ".join(d[:4]) + (f" (+{len(d) - 4} more)" if len(d) > 4 else "")
        else:
            shown = d
        print(f"| {m.name} | {m.why} | {r['status']} ({len(d) if isinstance(d, list) else 0}) | {shown} |")
    return 1 if any(r["status"] == "MISSED" for _, r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
