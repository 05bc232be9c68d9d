"""The compiled step's per-instruction profile (GraphProgram.set_profiling, tools/profile_step.py)."""
import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina.graph import compile


def _step(batch=8):
    lamina.manual_seed(0)
    model = lamina.models.lenet5()
    opt = lamina.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return compile(model, F.cross_entropy, opt), model, x, y


def test_profile_counts_runs_and_times_every_instruction():
    step, _, x, y = _step()
    step(x, y)
    plan = step._last
    ex = plan.executor
    with pytest.raises(RuntimeError, match="no profiled run"):
        ex.profile(plan.graph)
    ex.set_profiling(True)
    for _ in range(3):
        step(x, y)
    assert ex.prog.profile_runs == 3
    rows = ex.profile(plan.graph)
    assert [n for n, _ in rows] == plan.graph.nodes
    secs = np.array([t for _, t in rows])
    assert (secs >= 0).all() and secs.sum() > 0
    conv = [t for n, t in rows if n.op.startswith("conv2d")]
    assert conv and all(t > 0 for t in conv)
    ex.set_profiling(False)
    step(x, y)
    assert ex.prog.profile_runs == 0
    assert not ex.prog.profile_seconds().any()


def test_profiling_does_not_change_the_step():
    a, ma, x, y = _step()
    b, mb, _, _ = _step()
    a(x, y)
    b(x, y)
    b._last.executor.set_profiling(True)
    for _ in range(3):
        la, lb = a(x, y), b(x, y)
        assert la == lb
    for pa, pb in zip(ma.parameters(), mb.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_profile_step_tool_prints_a_table(capsys):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "profile_step.py"
    spec = importlib.util.spec_from_file_location("profile_step", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    threads = lamina.get_num_threads()
    try:
        mod.main(["--batch", "4", "--steps", "2", "--threads", "1", "--nodes"])
    finally:
        lamina.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "conv_block_fwd 1->6 28x28 k5" in out and "(outside the instructions)" in out


def test_bench_conv_block_tool_checks_and_prints(capsys):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "bench_conv_block.py"
    spec = importlib.util.spec_from_file_location("bench_conv_block", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    threads = lamina.get_num_threads()
    try:
        mod.main(["--batch", "17"])
    finally:
        lamina.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "C1 N=  17" in out and "C3 N=  17" in out and "fused" in out
