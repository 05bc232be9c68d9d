"""Smoke tests: each of the lecture's worked examples runs as a script and prints its result."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lamina

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PYTHON_DIR = str(Path(lamina.__file__).resolve().parent.parent)  # the lamina being tested


def run_example(name, *args, cwd, timeout=180):
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def has_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def test_xor_hard_threshold(tmp_path):
    out = run_example("xor_hard_threshold.py", cwd=tmp_path)
    assert "XOR correct on all 4 inputs" in out
    rows = [line.split("|")[-1].split() for line in out.splitlines()[1:5]]
    assert [r[0] for r in rows] == ["0", "1", "1", "0"]


def test_indicator_interval(tmp_path):
    out = run_example("indicator_interval.py", "--plot", "ind.png", cwd=tmp_path)
    assert re.search(r"hard thresholds: max \|error\| over \d+ points .* = 0\n", out)
    assert "ReLU L1 error = eps" in out
    assert (tmp_path / "ind.png").exists() == has_matplotlib()


def test_logistic_least_squares(tmp_path):
    out = run_example("logistic_least_squares.py", cwd=tmp_path)
    m = re.search(r"max \|hand - autodiff\| = (\S+)", out)
    assert m and float(m.group(1)) < 1e-14


def test_mlp_backprop_equations(tmp_path):
    out = run_example("mlp_backprop_equations.py", cwd=tmp_path)
    assert "match autodiff" in out
    assert "bar W1     (7, 5)" in out


def test_convolution_views(tmp_path):
    out = run_example("convolution_views.py", cwd=tmp_path)
    assert "(2, -1, 1) * (1, 1, 2) = [2, 1, 4, -1, 2]" in out
    assert out.count(" same") == 5 and "all views agree" in out


def _accuracy(out):
    m = re.search(r"test accuracy ([\d.]+)%", out)
    assert m, out
    return float(m.group(1))


def test_mnist_mlp_features(tmp_path, data_root):
    out = run_example("mnist_mlp_features.py", "--quick", "--data", data_root, "--out", str(tmp_path),
                      cwd=tmp_path)
    assert _accuracy(out) > 80.0  # two quick epochs of a 784-100-10 MLP; chance is 10%
    assert "78,400" in out  # the summary: 784 x 100 connections into the hidden layer
    if has_matplotlib():
        assert (tmp_path / "mlp_features.png").stat().st_size > 10_000
        assert (tmp_path / "mlp_curves.png").exists()


def test_lenet5_mnist(tmp_path, data_root):
    out = run_example("lenet5_mnist.py", "--quick", "--data", data_root, "--out", str(tmp_path),
                      cwd=tmp_path)
    assert "matches the lecture's table: True" in out
    assert "3 x 422,824 = 1,268,472" in out
    assert _accuracy(out) > 60.0  # one quick epoch on 6k images; chance is 10%
    if has_matplotlib():
        assert (tmp_path / "lenet5_c1.png").exists() and (tmp_path / "lenet5_curves.png").exists()


def test_mnist_example_reports_missing_data(tmp_path):
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    proc = subprocess.run([sys.executable, str(EXAMPLES / "mnist_mlp_features.py"), "--quick",
                           "--data", str(tmp_path / "nowhere")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "nowhere" in proc.stderr
