"""examples/pytorch: public PyTorch example code with only its imports changed, run end to end
on a slice of the real data (examples/pytorch/run_subset.py)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "pytorch"


def _data_root():
    for root in (os.environ.get("LAMINA_DATA"), ROOT.parent / "shared" / "data"):
        if root and (Path(root) / "fashion-mnist").is_dir() and (Path(root) / "mnist").is_dir():
            return str(root)
    pytest.fail("MNIST / Fashion-MNIST not found: set LAMINA_DATA")


def run_example(script, *args, limit=1000, cwd):
    env = dict(os.environ, LAMINA_DATA=_data_root(),
               PYTHONPATH=str(ROOT / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(EXAMPLES / "run_subset.py"), "--limit", str(limit),
                           str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_quickstart(tmp_path):
    out = run_example("quickstart.py", cwd=tmp_path)
    assert "Shape of X [N, C, H, W]: (64, 1, 28, 28)" in out
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
