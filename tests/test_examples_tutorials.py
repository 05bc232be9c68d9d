"""PyTorch's beginner tutorials (examples/pytorch/blitz_*.py, tensors_tutorial.py) print what
PyTorch prints: each script runs as written for lamina and with its imports switched back to
torch, and the two outputs must be the same text once the framework's name and object addresses
are set aside (tensors, dtypes, sizes, grad_fn names, gradients: every printed digit)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lamina

from conftest import requires_torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "pytorch"
LAMINA_PARENT = str(Path(lamina.__file__).resolve().parent.parent)


def _run(src):
    env = dict(os.environ, PYTHONPATH=LAMINA_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def _normalized(out, framework):
    out = re.sub(r"object at 0x[0-9a-f]+", "object at ADDR", out)
    # NOTE: lamina's dtypes are NumPy's, which print as 'float32' where torch prints 'torch.float32'.
    out = re.sub(rf"\b{framework}\.(float32|float64|int64)\b", r"\1", out)
    return out.replace(f"{framework}.", "FW.")


@pytest.mark.parametrize("script", ["blitz_neural_networks.py", "blitz_autograd.py", "tensors_tutorial.py"])
def test_tutorial_prints_what_pytorch_prints(script):
    requires_torch()
    src = (EXAMPLES / script).read_text()
    assert "import lamina as torch" in src and "import torch\n" not in src
    torch_src = re.sub(r"^(import|from) lamina\b", r"\1 torch", src, flags=re.M)
    assert torch_src != src
    got, want = _normalized(_run(src), "lamina"), _normalized(_run(torch_src), "torch")
    assert got.splitlines() == want.splitlines()
