"""examples/pytorch: public PyTorch example code with only its imports changed, run end to end
on a slice of the real data (examples/pytorch/run_subset.py)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lamina

from conftest import requires_torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "pytorch"
# the lamina under test: the installed package in CI (a clean checkout's python/ has no built _C)
LAMINA_PARENT = str(Path(lamina.__file__).resolve().parent.parent)


def _data_root():
    for root in (os.environ.get("LAMINA_DATA"), ROOT.parent / "shared" / "data"):
        if root and (Path(root) / "fashion-mnist").is_dir() and (Path(root) / "mnist").is_dir():
            return str(root)
    pytest.fail("MNIST / Fashion-MNIST not found: set LAMINA_DATA")


def run_example(script, *args, limit=1000, cwd):
    env = dict(os.environ, LAMINA_DATA=_data_root(),
               PYTHONPATH=LAMINA_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(EXAMPLES / "run_subset.py"), "--limit", str(limit),
                           str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_quickstart(tmp_path):
    out = run_example("quickstart.py", cwd=tmp_path)
    assert "Shape of X [N, C, H, W]: lamina.Size([64, 1, 28, 28])" in out   # PyTorch: torch.Size([...])
    assert "Using cpu device" in out and "Done!" in out
    # one log line per epoch (16 batches of 64); SGD at lr 1e-3 barely moves from ln(10) = 2.30
    losses = [float(v) for v in re.findall(r"loss: ([\d.]+)  \[", out)]
    assert len(losses) == 5 and all(1.0 < v < 2.5 for v in losses), out
    accuracies = [float(v) for v in re.findall(r"Accuracy: ([\d.]+)%", out)]
    assert len(accuracies) == 5 and all(0.0 <= a <= 100.0 for a in accuracies)
    assert re.search(r'Predicted: "[^"]+", Actual: "Ankle boot"', out)
    assert (tmp_path / "model.pth").exists()



def test_mnist_main(tmp_path):
    # pytorch/examples mnist/main.py: conv-conv-pool-dropout, Adadelta lr 1.0, StepLR; 2 epochs on
    # 2,000 images give about 90% on the first 2,000 test images (chance: 10%).
    out = run_example("mnist_main.py", "--epochs", "2", "--log-interval", "5", "--save-model",
                      limit=2000, cwd=tmp_path)
    accuracies = [int(v) for v in re.findall(r"Accuracy: \d+/\d+ \((\d+)%\)", out)]
    assert len(accuracies) == 2 and accuracies[-1] >= 80, out
    assert (tmp_path / "mnist_cnn.pt").exists()


# ---- "Learning PyTorch with Examples": the polynomial fits and the custom-Function two-layer net

def _run_script(path, cwd, swap_to_torch=False):
    """Run an example as written (lamina), or the same text with `import torch` restored."""
    src = Path(path).read_text()
    assert src.count("import lamina as torch") == 1       # only the import differs from PyTorch's
    if swap_to_torch:
        src = src.replace("import lamina as torch", "import torch")
    else:   # the scripts draw their initial weights at random: fix the seed, as a test must
        src = "import lamina as _seeded\n_seeded.manual_seed(0)\n" + src
    env = dict(os.environ, PYTHONPATH=LAMINA_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def _losses(out):
    return [float(v) for v in re.findall(r"^\d+ ([\d.e+-]+)$", out, re.M)]


@pytest.mark.parametrize("script", ["polynomial_autograd.py", "polynomial_nn.py", "polynomial_optim.py"])
def test_polynomial_fits_converge(script, tmp_path):
    out = _run_script(EXAMPLES / script, tmp_path)
    losses = _losses(out)
    assert len(losses) == 20
    # the cubic Taylor-like fit of sin on [-pi, pi] bottoms out near 8.9 (sum of squares over 2000 points)
    assert losses[-1] < 15 and losses[-1] <= losses[0]
    coeffs = [float(v) for v in re.findall(r"([-\d.e+]+) x", out.splitlines()[-1])]
    assert abs(coeffs[0] - 0.857) < 0.05 and abs(coeffs[-1] + 0.093) < 0.01, out.splitlines()[-1]


def test_polynomial_custom_function_gives_pytorchs_numbers(tmp_path):
    """Fixed initial values: the run is deterministic, so lamina prints PyTorch's numbers."""
    requires_torch()
    ours = _losses(_run_script(EXAMPLES / "polynomial_custom_function.py", tmp_path))
    ref = _losses(_run_script(EXAMPLES / "polynomial_custom_function.py", tmp_path, swap_to_torch=True))
    assert len(ours) == len(ref) == 20
    np.testing.assert_allclose(ours, ref, rtol=2e-4)


def test_two_layer_net_custom_function_learns(tmp_path):
    losses = _losses(_run_script(EXAMPLES / "two_layer_net_custom_function.py", tmp_path))
    assert len(losses) == 5 and losses[-1] < 1e-2 * losses[0]
