"""What the README promises, each checked: bit-identical training at 1 and 2 threads, the
environment variables it documents, the default `lamina train`, `--eager`, `--threads`, `--resume`
(LeNet-5 and ResNet, with another thread count), and the conv shape error that names the layer."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
import lamina.train  # noqa: F401  (monkeypatched)
from lamina import cli
from lamina.serialization import load

from conftest import DATA_ROOT, needs_mnist

PYTHON_DIR = str(Path(lamina.__file__).resolve().parent.parent)


def _python(code, **env):
    """Run `code` in a fresh interpreter with lamina importable and `env` added; return stdout."""
    full = dict(os.environ)
    full["PYTHONPATH"] = PYTHON_DIR + os.pathsep + full.get("PYTHONPATH", "")
    for k, v in env.items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


# ---------------------------------------------------------------- environment variables

def test_lamina_num_threads_sets_the_kernel_threads():
    code = "import lamina; print(lamina.get_num_threads())"
    assert _python(code, LAMINA_NUM_THREADS="1") == "1"
    assert _python(code, LAMINA_NUM_THREADS="2") == "2"


def test_lamina_isa_caps_the_kernel_path():
    code = "import lamina; print(lamina._C.isa())"
    assert _python(code, LAMINA_ISA="portable") == "portable"
    best = _python(code, LAMINA_ISA=None)
    capped = _python(code, LAMINA_ISA="avx2")
    if lamina._C.cpu_supports_avx2_fma():
        assert capped == "avx2+fma"
    else:  # a cap above what the CPU has leaves the best path
        assert capped == best
    # The capped and portable paths compute the same GEMM as the best one, to rounding.
    code = ("import numpy as np, lamina; r = np.random.default_rng(0);"
            "a = lamina.tensor(r.standard_normal((67, 45)).astype(np.float32));"
            "b = lamina.tensor(r.standard_normal((45, 33)).astype(np.float32));"
            "print(repr((a @ b).numpy().astype(np.float64).tolist()))")
    ref = np.array(eval(_python(code, LAMINA_ISA=None)))
    for isa in ("avx2", "portable"):
        np.testing.assert_allclose(np.array(eval(_python(code, LAMINA_ISA=isa))), ref, rtol=1e-5, atol=1e-5)


def test_gomp_spincount_is_set_at_import_unless_the_user_set_it():
    code = "import os, lamina; print(os.environ.get('GOMP_SPINCOUNT'))"
    assert _python(code, GOMP_SPINCOUNT=None) == "20000"
    assert _python(code, GOMP_SPINCOUNT="123") == "123"


def test_lamina_malloc_tuning_zero_leaves_malloc_alone():
    code = "import lamina; print(lamina._C.malloc_tuned)"
    assert _python(code, LAMINA_MALLOC_TUNING="0") == "False"
    import platform
    if platform.libc_ver()[0] == "glibc":
        assert _python(code, LAMINA_MALLOC_TUNING=None) == "True"   # glibc: thresholds raised


# ---------------------------------------------------------------- bit-identical at 1 and 2 threads

def _train_steps(model_fn, threads, compiled, steps=4, seed=3):
    old = lamina.get_num_threads()
    lamina.set_num_threads(threads)
    try:
        lamina.manual_seed(seed)
        model = model_fn()
        opt = lamina.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        rng = np.random.default_rng(seed)
        xs = [rng.standard_normal((32, 1, 28, 28)).astype(np.float32) for _ in range(steps)]
        ys = [rng.integers(0, 10, 32) for _ in range(steps)]
        if compiled:
            step = lamina.compile(model, F.cross_entropy, opt)
            for x, y in zip(xs, ys):
                step(x, y)
        else:
            for x, y in zip(xs, ys):
                opt.zero_grad()
                F.cross_entropy(model(lamina.from_numpy(x)), lamina.from_numpy(y)).backward()
                opt.step()
        return {k: v.numpy().copy() for k, v in model.state_dict().items()}
    finally:
        lamina.set_num_threads(old)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", ["lenet5", "resnet_mnist"])
def test_training_is_bit_identical_at_1_and_2_threads(name, compiled):
    fn = getattr(lamina.models, name)
    one = _train_steps(fn, 1, compiled)
    two = _train_steps(fn, 2, compiled)
    assert one.keys() == two.keys()
    for k in one:
        assert np.array_equal(one[k], two[k]), f"{name} {k} differs between 1 and 2 threads"
    lamina.manual_seed(3)
    start = {k: v.numpy() for k, v in fn().state_dict().items()}
    assert any(not np.array_equal(one[k], start[k]) for k in one)   # it trained


# ---------------------------------------------------------------- the command line

def _cli(argv, capsys):
    rc = cli.main(["train", "--no-progress", "--data", str(DATA_ROOT)] + argv)
    out = capsys.readouterr().out
    assert rc == 0, out
    return out


def _weights(path):
    sd = load(path)
    return {k: v.numpy() for k, v in sd.items() if not k.startswith("optim.")}


SHORT = ["--epochs", "1", "--limit-train", "512", "--limit-test", "200", "--batch-size", "64", "--seed", "4"]


@needs_mnist
def test_default_train_is_lenet5(tmp_path, capsys):
    old = lamina.get_num_threads()
    try:
        out = _cli(SHORT + ["--out", str(tmp_path / "d")], capsys)
    finally:
        lamina.set_num_threads(old)
    assert "test accuracy:" in out
    w = _weights(tmp_path / "d" / "model.safetensors")
    lenet = lamina.models.lenet5().state_dict()
    assert set(w) == set(lenet)
    assert all(w[k].shape == tuple(lenet[k].shape) for k in w)


@needs_mnist
@pytest.mark.parametrize("model", ["lenet5", "mlp"])
def test_eager_flag_gives_the_same_weights_as_compiled(tmp_path, capsys, model):
    old = lamina.get_num_threads()
    try:
        _cli(SHORT + ["--model", model, "--out", str(tmp_path / "c")], capsys)
        _cli(SHORT + ["--model", model, "--eager", "--out", str(tmp_path / "e")], capsys)
    finally:
        lamina.set_num_threads(old)
    c, e = _weights(tmp_path / "c" / "model.safetensors"), _weights(tmp_path / "e" / "model.safetensors")
    for k in c:
        assert np.array_equal(c[k], e[k]), k


@needs_mnist
def test_threads_flag_sets_threads_and_keeps_results(tmp_path, capsys, monkeypatch):
    seen = []
    real = lamina.set_num_threads
    monkeypatch.setattr(lamina, "set_num_threads", lambda n: (seen.append(n), real(n))[1])
    old = lamina.get_num_threads()
    try:
        _cli(SHORT + ["--threads", "1", "--out", str(tmp_path / "t1")], capsys)
        assert lamina.get_num_threads() == 1 or 1 in seen
        _cli(SHORT + ["--threads", "2", "--out", str(tmp_path / "t2")], capsys)
        assert lamina.get_num_threads() == 2 or 2 in seen
    finally:
        real(old)
    a, b = _weights(tmp_path / "t1" / "model.safetensors"), _weights(tmp_path / "t2" / "model.safetensors")
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@needs_mnist
@pytest.mark.parametrize("model", ["lenet5", "resnet"])
def test_resume_with_another_thread_count_matches_an_uninterrupted_run(tmp_path, capsys, monkeypatch, model):
    common = ["--model", model, "--limit-train", "256", "--limit-test", "100", "--batch-size", "64",
              "--seed", "6", "--epochs", "2"]
    old = lamina.get_num_threads()
    try:
        _cli(common + ["--threads", "2", "--out", str(tmp_path / "full")], capsys)
        # The same run at 2 threads, interrupted right after its epoch-1 checkpoint...
        real_save = lamina.train.save_checkpoint

        def save_then_interrupt(path, model, optimizer=None, epoch=0, extra=None):
            real_save(path, model, optimizer, epoch, extra)
            if epoch == 1:
                raise KeyboardInterrupt

        monkeypatch.setattr(lamina.train, "save_checkpoint", save_then_interrupt)
        assert cli.main(["train", "--no-progress", "--data", str(DATA_ROOT)] + common +
                        ["--threads", "2", "--out", str(tmp_path / "part")]) == 130
        capsys.readouterr()
        monkeypatch.setattr(lamina.train, "save_checkpoint", real_save)
        ckpt = tmp_path / "part" / "model.safetensors"
        half = _weights(ckpt)
        # ...resumed at 1 thread.
        out = _cli(common + ["--threads", "1", "--resume", str(ckpt), "--out", str(tmp_path / "part")], capsys)
    finally:
        lamina.set_num_threads(old)
    assert "resumed from" in out and "epoch 2/2" in out
    full = _weights(tmp_path / "full" / "model.safetensors")
    resumed = _weights(ckpt)
    assert full.keys() == resumed.keys()
    for k in full:
        assert np.array_equal(full[k], resumed[k]), k
    assert any(not np.array_equal(full[k], half[k]) for k in full)   # the second epoch did train


# ---------------------------------------------------------------- the named shape error

def test_conv_shape_error_names_the_layer():
    model = lamina.models.lenet5()
    with pytest.raises(ValueError) as info:
        model(lamina.zeros(1, 3, 28, 28))
    assert str(info.value).startswith("Conv2d 'c1': expected 1 input channels, got 3"), str(info.value)
