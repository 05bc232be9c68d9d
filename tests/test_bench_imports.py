"""The benchmark scripts run against the installed package when the source tree has no built
_C (after `pip install .`), and against the dev build when it has one (issue 15)."""
import os
import shutil
import subprocess
import sys

import pytest

import lamina

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BENCH = os.path.join(ROOT, "benchmarks")
PKG = os.path.join(ROOT, "python", "lamina")
SCRIPTS = ["bench_gemm.py", "bench_conv.py", "bench_compile.py", "bench_dist.py", "report.py"]

sys.path.insert(0, BENCH)
import lamina_path  # noqa: E402


def _has_built_c():
    return lamina_path.source_tree_has_built_C(os.path.join(ROOT, "python"))


@pytest.fixture(scope="module")
def checkout_without_c(tmp_path_factory):
    """A copy of the repository's benchmarks and python/lamina with no _C (what `pip install .`
    leaves behind), and a site directory holding the lamina under test (the installed package in
    CI, the dev build in a developer's tree) as the installed one."""
    tmp_path = tmp_path_factory.mktemp("bench_imports")
    repo = tmp_path / "repo"
    shutil.copytree(BENCH, repo / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PKG, repo / "python" / "lamina",
                    ignore=shutil.ignore_patterns("__pycache__", "_C*.so", "_C*.pyd"))
    site = tmp_path / "site"
    site.mkdir()
    os.symlink(os.path.dirname(os.path.abspath(lamina.__file__)), site / "lamina")
    return repo, site


def _run(args, cwd, pythonpath):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_source_tree_detection(tmp_path):
    (tmp_path / "lamina").mkdir()
    (tmp_path / "lamina" / "__init__.py").write_text("")
    assert not lamina_path.source_tree_has_built_C(str(tmp_path))
    (tmp_path / "lamina" / "_C.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    assert lamina_path.source_tree_has_built_C(str(tmp_path))


@pytest.mark.parametrize("script, with_source_on_path",
                         [(s, True) for s in SCRIPTS] + [("bench_gemm.py", False)])
def test_scripts_import_the_installed_package(checkout_without_c, script, with_source_on_path):
    repo, site = checkout_without_c
    path = ([repo / "python"] if with_source_on_path else []) + [site]  # README: PYTHONPATH=python
    p = _run([str(repo / "benchmarks" / script), "--help"], repo, path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "cannot import name '_C'" not in p.stderr
    assert "usage" in p.stdout.lower()


def test_which_lamina_is_chosen(checkout_without_c):
    repo, site = checkout_without_c
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import lamina_path; "
             "print(lamina_path.use_lamina()); import lamina; print(lamina.__file__); "
             "from lamina import _C; print(_C.isa())")
    p = _run(["-c", probe, str(repo / "benchmarks")], repo, [repo / "python", site])
    assert p.returncode == 0, p.stderr[-2000:]
    which, where, _ = p.stdout.split("\n", 2)
    assert which == "installed" and where.startswith(str(site))
    # The real checkout: its dev build is used ahead of anything installed; a clean checkout (CI,
    # after `pip install .`) has none, and the installed package is used.
    p = _run(["-c", probe, BENCH], ROOT, [site])
    assert p.returncode == 0, p.stderr[-2000:]
    which, where, _ = p.stdout.split("\n", 2)
    if _has_built_c():
        assert which == "source" and os.path.realpath(where).startswith(os.path.realpath(PKG))
    else:
        assert which == "installed" and where.startswith(str(site))


def test_host_line_names_the_cpu_isa_caches_and_peak():
    """Every benchmark script prints this line first (issue 15: figures from different hosts must
    be comparable)."""
    from lamina import _C
    line = lamina_path.host_line(peak_seconds=0.02)
    info = _C.cpu_info()
    assert line.startswith(f"cpu: {info['model']} ")
    assert f"isa {_C.isa()};" in line
    assert f"L1d {info['caches']['l1d'] >> 10} KiB" in line and f"L2 {info['caches']['l2'] >> 10} KiB" in line
    assert info["gemm_blocking"]["float32"]["kernel"] in line
    peak = float(line.split("FMA peak (1 core, f32, measured) ")[1].split(" GFLOP/s")[0])
    assert peak > 0.5  # GFLOP/s: any core that runs the tests beats this


@pytest.mark.parametrize("script", ["bench_conv.py", "bench_compile.py", "bench_dist.py"])
def test_scripts_print_the_host_line(script):
    src = open(os.path.join(BENCH, script)).read()
    assert "print(lamina_path.host_line())" in src
