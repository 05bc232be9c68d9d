"""Smoke test of benchmarks/report.py: tiny shapes (--smoke, well under 30 s), every table, the JSON,
--compare flagging, and that a wrong kernel result is reported WRONG instead of being timed."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
REPORT = os.path.join(ROOT, "benchmarks", "report.py")
FAMILIES = ["gemm", "conv", "pool", "activation", "loss", "optim", "end_to_end"]


def _run(*args):
    return subprocess.run([sys.executable, REPORT, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "smoke.json"
    p = _run("--smoke", "--json", str(out))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    with open(out) as f:
        return p.stdout, json.load(f), out


def test_header_names_versions_isa_threads_blas_cpu_and_bandwidth(smoke):
    text, data, _ = smoke
    import lamina
    head = text.split("== gemm ==")[0]
    assert f"lamina {lamina.__version__}" in head and f"isa={lamina._C.isa()}" in head
    assert "threads measured: [1, 2]" in head
    assert f"numpy {np.__version__}" in head and "BLAS:" in head and "kernel=" in head
    assert "torch " in head and "cpu: " in head
    assert "memory bandwidth" in head and "GB/s" in head
    info = lamina._C.cpu_info()
    assert f"lamina sees: {info['model']}" in head and "L1d" in head and "FMA peak" in head
    assert "GEMM blocking" in head and "lamina imported from" in head
    assert data["meta"]["fma_peak_gflops"] >= 0
    meta = data["meta"]
    assert meta["profile"] == "smoke" and meta["threads"] == [1, 2]
    assert set(meta["bandwidth"]) == {"1", "2"}
    # No floor on a measured speed (the machine is shared): the values are real measurements,
    # and the header prints exactly what the JSON records.
    for k, v in meta["bandwidth"].items():
        assert np.isfinite(v) and v > 0
        assert f"{k} thread(s): {v / 1e9:.1f} GB/s" in head


def test_every_family_has_a_table_and_rows_for_both_thread_counts(smoke):
    text, data, _ = smoke
    rows = data["rows"]
    for fam in FAMILIES:
        assert f"== {fam} ==" in text
        fam_rows = [r for r in rows if r["family"] == fam]
        assert fam_rows, fam
        if fam != "end_to_end":
            assert {r["threads"] for r in fam_rows} == {1, 2}, fam
    for r in rows:
        assert r["status"] in ("PASS", "BELOW", "n/a"), r  # no WRONG: every result checked equal
        assert r["status"] in text
        assert r["lamina_s"] > 0
        if r["numpy_s"] is not None:
            assert r["vs_numpy"] == pytest.approx(r["numpy_s"] / r["lamina_s"])
        if r["torch_s"] is not None:
            assert r["vs_torch"] == pytest.approx(r["torch_s"] / r["lamina_s"])
    act = [r for r in rows if r["family"] == "activation"]
    assert all("bw_frac" in r and r["bw_frac"]["lamina"] > 0 for r in act)  # smoke: bandwidth on 1M
    targets = {r["family"]: r["target"] for r in rows}
    assert ">=2x np" in targets["activation"] and ">=1x np" in targets["loss"]
    assert ">=1x pt" in targets["end_to_end"] or "n/a" in targets["end_to_end"]


def test_end_to_end_rows_are_per_process(smoke):
    text, data, _ = smoke
    e2e = [r for r in data["rows"] if r["family"] == "end_to_end"]
    assert {r["case"] for r in e2e} == {"mlp b=64 eager", "mlp b=64 compiled"}
    for r in e2e:
        assert r["images_per_s"] > 0 and r["timed_batches"] == 5 and r["epoch_batches"] == 60000 // 64
        # Spawned from the small launcher: a lamina child's peak is its own, far below the report's.
        assert 10 < r["peak_rss_mb"] < 400
    assert "a fraction of an epoch" in text


def test_compare_flags_a_slower_row_and_a_faster_row(smoke, tmp_path):
    _, data, new_path = smoke
    old = json.loads(json.dumps(data))
    slower = next(r for r in old["rows"] if r["family"] == "loss" and r["threads"] == 1)
    slower["lamina_s"] /= 2.0            # it was twice as fast before: the new run regressed
    faster = next(r for r in old["rows"] if r["family"] == "gemm" and r["threads"] == 2)
    faster["lamina_s"] *= 3.0
    old_path = tmp_path / "old.json"
    old_path.write_text(json.dumps(old))
    p = _run("--from-json", str(new_path), "--compare", str(old_path))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("== compare with")[1].splitlines()
    bad = [ln for ln in lines if "REGRESSION" in ln]
    assert len(bad) == 1 and slower["case"] in bad[0] and "2.00" in bad[0]
    assert any("faster" in ln and faster["case"] in ln for ln in lines)
    assert "1 regression(s)" in p.stdout


def _load_report():
    spec = importlib.util.spec_from_file_location("lamina_report", REPORT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_fast_wrong_answer_is_reported_wrong_not_timed(monkeypatch):
    report = _load_report()
    L = report.load_libs("smoke", use_torch=False)
    R = L["R"]
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    y = np.empty_like(x)
    timed = []

    def wrong():  # "relu" that forgets negative inputs
        timed.append(1)
        np.copyto(y, x)

    def check():
        wrong()
        R.check_equal(y, np.maximum(x, 0), name="lamina relu")

    def family(profile, L):
        yield report.Case("activation", "broken relu", {"lamina": wrong, "numpy": lambda: np.maximum(x, 0)},
                          check, [("numpy", 2.0)])
    monkeypatch.setitem(report.FAMILIES, "activation", family)
    rows = report.run_kernels(L, ["activation"], [1], report.PROFILES["smoke"], {}, lambda m: None)
    assert len(rows) == 1 and rows[0]["status"] == "WRONG"
    assert "lamina relu" in rows[0]["error"] and "lamina_s" not in rows[0]
    assert len(timed) == 1  # only the check ran it


def test_bad_arguments_are_named():
    p = _run("--families", "gemm,nope")
    assert p.returncode != 0 and "--families" in p.stderr and "nope" in p.stderr
    p = _run("--threads", "0")
    assert p.returncode != 0 and "--threads" in p.stderr


def test_cpu_time_mode_measures_one_thread_by_cpu_time():
    p = _run("--smoke", "--cpu-time", "--no-torch", "--families", "loss")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "thread CPU time" in p.stdout and "threads measured: [1]" in p.stdout
    assert "torch not used" in p.stdout
    rows = [ln for ln in p.stdout.splitlines() if ln.startswith("softmax-CE")]
    assert rows and all(ln.split()[3] == "1" for ln in rows)  # the thr column
    assert all(ln.split()[6] == "-" for ln in rows)  # no torch time without torch
    p = _run("--cpu-time", "--threads", "2")
    assert p.returncode != 0 and "--cpu-time" in p.stderr


def test_end_to_end_child_times_windows_and_reports_the_median(tmp_path):
    """--quick times several windows of batches (one short window was too noisy to read a ratio
    from); the rate reported is the median window's, and windows go round the saved images."""
    import lamina
    rng = np.random.default_rng(0)
    batch, saved = 8, 40  # 5 batches saved, 3 warm-up + 3 windows x 2 timed: wraps around
    np.save(tmp_path / "x.npy", rng.random((saved, 1, 28, 28), dtype=np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 10, saved))
    lamina.manual_seed(0)
    np.savez(tmp_path / "w.npz", **{f"p{i}": p.detach().numpy() for i, p in enumerate(lamina.models.mlp().parameters())})
    spec = dict(impl="compiled", model="mlp", batch=batch, threads=1, batches=2, windows=3,
                epoch_images=saved, cpu_time=False, x=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy"),
                weights=str(tmp_path / "w.npz"))
    p = _run("--_e2e-child", json.dumps(spec))
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["windows"] == 3 and r["timed_batches"] == 2 and len(r["window_images_per_s"]) == 3
    assert r["images_per_s"] == pytest.approx(sorted(r["window_images_per_s"])[1])
    assert r["step_s"] == pytest.approx(batch / r["images_per_s"])
    assert np.isfinite(r["last_loss"]) and len(r["warmup_losses"]) == 3


def test_end_to_end_children_take_turns_window_by_window(tmp_path):
    """The end-to-end libraries run side by side: each child warms up, then window k of every
    child runs before window k + 1 of any, the first child rotating, so a slow spell of the host
    falls on all of them alike."""
    import lamina
    report = _load_report()
    rng = np.random.default_rng(0)
    batch, saved = 8, 64
    np.save(tmp_path / "x.npy", rng.random((saved, 1, 28, 28), dtype=np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 10, saved))
    lamina.manual_seed(0)
    np.savez(tmp_path / "w.npz", **{f"p{i}": p.detach().numpy() for i, p in enumerate(lamina.models.mlp().parameters())})
    specs = [dict(impl=impl, model="mlp", batch=batch, threads=1, batches=2, windows=3, epoch_images=saved,
                  cpu_time=False, x=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy"), weights=str(tmp_path / "w.npz"))
             for impl in ("eager", "compiled")]
    results = report.interleave_children(specs, 3, 0.01)
    assert [r["rc"] for r in results] == [0, 0], [r["stderr"][-2000:] for r in results]
    out = [json.loads(r["stdout"].strip().splitlines()[-1]) for r in results]
    assert [o["impl"] for o in out] == ["eager", "compiled"]
    assert all(len(o["window_started"]) == 3 and len(o["window_images_per_s"]) == 3 for o in out)
    order = sorted((t, c) for c, o in enumerate(out) for t in o["window_started"])
    assert [c for _, c in order] == [0, 1, 1, 0, 0, 1]  # window w starts with child w % 2
    # Same weights and batches: the two implementations' warm-up losses agree.
    np.testing.assert_allclose(out[0]["warmup_losses"], out[1]["warmup_losses"], rtol=1e-4, atol=1e-5)


def test_an_end_to_end_child_that_fails_is_reported_not_hung(tmp_path):
    report = _load_report()
    bad = dict(impl="compiled", model="mlp", batch=8, threads=1, batches=2, windows=2, epoch_images=16,
               cpu_time=False, x=str(tmp_path / "missing.npy"), y=str(tmp_path / "missing.npy"),
               weights=str(tmp_path / "missing.npz"))
    results = report.interleave_children([bad, dict(bad)], 2, 0.01)
    assert results[0]["rc"] != 0 and "missing.npy" in results[0]["stderr"]
    assert results[1]["rc"] != 0  # not started after the first failed
