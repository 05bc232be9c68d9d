"""examples/pytorch give PyTorch's numbers: each "Learning PyTorch with Examples" script runs twice,
as written for lamina and with `import torch` restored, from the same initial weights. A prelude
(the same text for both frameworks) replaces the framework's `randn` and `nn.Linear` initializer
with draws from one seeded NumPy stream, so the only difference left is the framework doing the
arithmetic. The loss sequences the scripts print must agree: to 1e-6 in float64 (the scripts' dtype
switched by a default-dtype call or a one-word source edit), more loosely in the scripts' own
float32."""
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
LAMINA_PARENT = str(Path(lamina.__file__).resolve().parent.parent)

# `fw` is the framework module (lamina or torch); everything below uses only names both share.
PRELUDE = '''
import math as _math
import numpy as _np
import {fw} as _fw
_rng = _np.random.default_rng(1234)
if {float64}:
    _fw.set_default_dtype(_fw.float64)


def _randn(*size, dtype=None, device=None, requires_grad=False, **kwargs):
    shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
    t = _fw.tensor(_np.asarray(_rng.standard_normal(shape)), dtype=dtype or _fw.get_default_dtype(),
                   device=device)
    return t.requires_grad_(requires_grad)


def _reset_linear(self):
    bound = 1.0 / _math.sqrt(self.in_features)
    with _fw.no_grad():
        self.weight.copy_(_fw.tensor(_rng.uniform(-bound, bound, tuple(self.weight.shape))))
        if self.bias is not None:
            self.bias.copy_(_fw.tensor(_rng.uniform(-bound, bound, tuple(self.bias.shape))))


_fw.randn = _randn
_fw.nn.Linear.reset_parameters = _reset_linear
'''


# Only a seed (and the float64 switch): since lamina draws PyTorch's random numbers, the scripts'
# own randn calls and nn.Linear's default init already agree.
SEED_ONLY = '''
import {fw} as _fw
_fw.manual_seed(1234)
if {float64}:
    _fw.set_default_dtype(_fw.float64)
'''


def _run(script, framework, float64, prelude_text=None):
    src = (EXAMPLES / script).read_text()
    assert src.count("import lamina as torch") == 1        # only the import differs from PyTorch's
    if framework == "torch":
        src = src.replace("import lamina as torch", "import torch")
    if float64:
        src = src.replace("dtype = torch.float\n", "dtype = torch.float64\n")
    prelude = (prelude_text or PRELUDE).format(fw="lamina" if framework == "lamina" else "torch", float64=float64)
    env = dict(os.environ, PYTHONPATH=LAMINA_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", prelude + src], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def _losses(out):
    return np.array([float(v) for v in re.findall(r"^\d+ ([\d.e+-]+)$", out, re.M)])


def _coefficients(out):
    """The fitted a, b, c, d of the last line, 'Result: y = a + b x + c x^2 + d x^3'."""
    terms = out.strip().splitlines()[-1].split("y = ", 1)[1].split(" + ")
    return np.array([float(t.split()[0]) for t in terms])


SCRIPTS = {   # script: (printed losses, how many of them are compared tightly, float64 rtol, float32 rtol)
    "polynomial_autograd.py": (20, 20, 1e-6, 1e-3),
    "polynomial_nn.py": (20, 20, 1e-6, 1e-3),
    # NOTE: RMSprop's normalized steps leave the fit hopping around the noise floor (loss ~8.9) after
    # ~1000 steps, where the last bit decides the path: torch itself, its initial weights changed by
    # 1e-15 relative, moves the losses printed from step 1099 on by up to 1e-3 (step 1599). So those
    # are compared at the level torch agrees with itself, the first ten (to step 999) tightly.
    "polynomial_optim.py": (20, 10, 1e-6, 1e-3),
    "polynomial_custom_function.py": (20, 20, 1e-6, 1e-3),
    # float32: the loss falls 1e7-fold, and the last residuals (1e-4) are float32 GEMM rounding
    # (lamina's and torch's sum in different orders), so they agree to 1e-2, the rest far closer
    "two_layer_net_custom_function.py": (5, 5, 1e-6, 1e-2),
}


@pytest.mark.parametrize("prelude", ["numpy draws", "seed only"])
@pytest.mark.parametrize("float64", [True, False], ids=["float64", "float32"])
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_example_prints_pytorchs_losses_from_the_same_weights(script, float64, prelude):
    requires_torch()
    count, tight, rtol64, rtol32 = SCRIPTS[script]
    rtol = rtol64 if float64 else rtol32
    text = PRELUDE if prelude == "numpy draws" else SEED_ONLY
    if script == "polynomial_optim.py" and prelude == "seed only":
        # From PyTorch's own initial weights the RMSprop fit reaches its noise floor a little
        # sooner: step 999 already moves by 1e-5 with the last bit of a float64 sum (the same
        # happens with both frameworks given identical linspace values).
        tight = 9
    ours_out, ref_out = _run(script, "lamina", float64, text), _run(script, "torch", float64, text)
    ours, ref = _losses(ours_out), _losses(ref_out)
    assert len(ours) == len(ref) == count, (ours_out[-500:], ref_out[-500:])
    assert ref[-1] < ref[0]                    # the run learns something, so the comparison means something
    np.testing.assert_allclose(ours[:tight], ref[:tight], rtol=rtol)
    # The tail is the noise-floor hopping described above: on an Intel Xeon (AVX-512 GEMM and sum
    # orders) the float64 seed-only RMSprop run read 9.105 against torch's 8.907 at step 1699 (2.2%)
    # while every earlier step agreed; 5% still fails a wrong optimizer (it never reaches ~8.9).
    np.testing.assert_allclose(ours[tight:], ref[tight:], rtol=5e-2)
    if script in ("polynomial_autograd.py", "polynomial_nn.py", "polynomial_optim.py"):   # same fit
        a, b = _coefficients(ours_out), _coefficients(ref_out)
        assert len(a) == len(b) == 4, (ours_out[-300:], ref_out[-300:])
        if tight < count:
            np.testing.assert_allclose(a, b, atol=1e-2)
        else:
            np.testing.assert_allclose(a, b, rtol=rtol if float64 else 10 * rtol, atol=1e-9 if float64 else 1e-4)


def test_the_prelude_really_fixes_the_initial_weights():
    """Two lamina runs give identical output, and a different seed changes it: the test above is
    not comparing two runs that would agree anyway."""
    a = _run("two_layer_net_custom_function.py", "lamina", True)
    assert a == _run("two_layer_net_custom_function.py", "lamina", True)
    changed = PRELUDE
    try:
        globals()["PRELUDE"] = PRELUDE.replace("default_rng(1234)", "default_rng(99)")
        b = _run("two_layer_net_custom_function.py", "lamina", True)
    finally:
        globals()["PRELUDE"] = changed
    assert _losses(a)[0] != _losses(b)[0]
