"""lamina.testing.assert_close (PyTorch's tolerances and messages), nn.RMSNorm / F.rms_norm,
nn.Buffer, the F.<act>_ in-place spellings and lamina.multiprocessing.spawn."""
import numpy as np
import pytest

import lamina
from conftest import assert_same_results, requires_torch, run_in_both

CASES = [((1.0,), (1.1,), {}, "f32"), (([[1, 2], [3, 4]],), ([[1, 2], [3, 5]],), {}, "int"),
         ((1.0, float("nan")), (1.0, float("nan")), {}, "f32"),
         ((1.0, float("nan")), (1.0, float("nan")), {"equal_nan": True}, "f32"),
         ((1.0, 2.0), (1.0, 2.0000001), {}, "f64"), ((1.0, 2.0), (1.0, 2.5), {"rtol": 0.3, "atol": 0.0}, "f32"),
         ((1.0, 2.0), (1.0, 2.00002), {}, "f32")]


@pytest.mark.parametrize("a,e,kw,kind", CASES)
def test_assert_close_passes_and_fails_with_torchs_message(a, e, kw, kind):
    torch = requires_torch()
    out = []
    for fw in (lamina, torch):
        dt = {"f32": fw.float32, "f64": fw.float64, "int": None}[kind]
        args = [fw.tensor(v[0] if kind == "int" else list(v), dtype=dt) for v in (a, e)]
        try:
            fw.testing.assert_close(*args, **kw)
            out.append("ok")
        except AssertionError as err:
            out.append(str(err))
    assert out[0] == out[1]


def test_assert_close_scalars_and_containers():
    torch = requires_torch()
    for fw in (lamina, torch):
        fw.testing.assert_close([fw.tensor([1.0]), {"a": 2}], [fw.tensor([1.0]), {"a": 2}])
        with pytest.raises(AssertionError, match="Scalars are not close"):
            fw.testing.assert_close(1.0, 1.5)
        with pytest.raises(AssertionError, match="dtype"):
            fw.testing.assert_close(fw.tensor([1.0]), fw.tensor([1.0], dtype=fw.float64))
        with pytest.raises(AssertionError, match="shape"):
            fw.testing.assert_close(fw.tensor([1.0, 2.0]), fw.tensor([1.0, 2.0, 3.0]))


def test_rms_norm_and_inplace_functional_spellings_match_torch():
    def program(fw):
        x = fw.tensor(np.linspace(-2, 3, 24).reshape(2, 3, 4), requires_grad=True)
        m, m2 = fw.nn.RMSNorm((3, 4), eps=1e-6), fw.nn.RMSNorm(4)
        with fw.no_grad():
            m.weight.mul_(fw.tensor(np.linspace(0.5, 1.5, 12).reshape(3, 4)))
        y = m(x) + m2(x) + fw.nn.functional.rms_norm(x, (4,))
        y.sum().backward()
        z = fw.tensor([-1.0, 0.5, 2.0])
        fw.nn.functional.elu_(z)
        fw.nn.functional.relu_(z)
        fw.nn.functional.hardtanh_(z, 0.0, 0.25)
        return {"y": y, "dx": x.grad, "dw": m.weight.grad, "r": repr(m) + repr(m2), "z": z}
    assert_same_results(*run_in_both(program), tol=1e-12)


def test_buffer_registers_as_torch():
    torch = requires_torch()
    out = []
    for fw in (lamina, torch):
        class M(fw.nn.Module):
            def __init__(self):
                super().__init__()
                self.a = fw.nn.Buffer(fw.ones(2))
                self.b = fw.nn.Buffer(fw.zeros(1), persistent=False)
        m = M()
        out.append((list(m.state_dict()), [n for n, _ in m.named_buffers()], m.a.tolist(),
                    [n for n, _ in m.named_parameters()]))
    assert out[0] == out[1]


def test_multiprocessing_spawn_runs_each_rank_and_reports_failures(tmp_path):
    # In a fresh interpreter: spawned children take the parent's sys.path, and other tests put the
    # source tree's python/ on it, which would hand the children a lamina without its built _C.
    import os
    import subprocess
    import sys
    code = f"""
import lamina.multiprocessing as mp
from mp_targets import fail_on_rank_one, square_into
mp.spawn(square_into, args=({str(tmp_path / 'out')!r},), nprocs=3)
try:
    mp.spawn(fail_on_rank_one, nprocs=2)
except mp.ProcessRaisedException as e:
    print("raised:", "rank one fails" in str(e), e.error_index)
"""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ)
    paths = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([here] + paths)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=here, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [int((tmp_path / f"out.{r}").read_text()) for r in range(3)] == [0, 1, 4]
    assert "raised: True 1" in proc.stdout, proc.stdout + proc.stderr
