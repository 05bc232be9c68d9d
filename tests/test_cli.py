"""`lamina train` / `lamina info` end to end on (a slice of) the real MNIST."""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lamina
import lamina.train  # noqa: F401  (monkeypatched below)
from lamina import cli
from lamina.serialization import load, load_metadata

from conftest import IN_CI, closed_port_url, needs_mnist

DATA = Path(os.environ.get("LAMINA_DATA", "/work/shared/data"))
PYTHON_DIR = str(Path(lamina.__file__).resolve().parent.parent)
ACC = re.compile(r"^test accuracy: (\d+\.\d\d)%$", re.M)


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@needs_mnist
def test_python_m_lamina_train_mlp(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "lamina", "train", "--model", "mlp", "--epochs", "1", "--limit-train", "2000",
         "--limit-test", "500", "--data", str(DATA), "--out", str(out), "--threads", "2"],
        capture_output=True, text=True, env=_env(), timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = ACC.search(proc.stdout)
    assert m, proc.stdout
    assert 40.0 <= float(m.group(1)) <= 100.0        # 32 steps from scratch: far above chance (10%)
    assert "epoch 1/1" in proc.stdout
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1
    rec = history[0]
    for key in ("train_loss", "train_acc", "test_acc", "images_per_s", "seconds"):
        assert np.isfinite(rec[key]), key
    assert abs(100 * rec["test_acc"] - float(m.group(1))) < 0.006
    sd = load(out / "model.safetensors")
    model = lamina.models.mlp()
    model.load_state_dict(OrderedDictFrom(sd, model))        # loads straight into a fresh mlp
    assert load_metadata(out / "model.safetensors")["epoch"] == "1"


def OrderedDictFrom(sd, model):
    """Only the model's own entries (the checkpoint also holds optim.* state)."""
    own = set(model.state_dict())
    assert own <= set(sd)
    assert all(k in own or k.startswith("optim.") for k in sd)
    return {k: v for k, v in sd.items() if k in own}


def _train(argv, capsys):
    rc = cli.main(["train", "--no-progress"] + argv)
    out = capsys.readouterr().out
    assert rc == 0, out
    return out


@needs_mnist
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_resume_matches_uninterrupted_run(tmp_path, capsys, monkeypatch, optimizer):
    common = ["--model", "mlp", "--limit-train", "1000", "--limit-test", "300", "--data", str(DATA),
              "--seed", "5", "--batch-size", "50", "--epochs", "3", "--optimizer", optimizer,
              "--weight-decay", "0.01"]
    full = _train(common + ["--out", str(tmp_path / "full")], capsys)

    # The same run, interrupted (Ctrl-C) right after its epoch-1 checkpoint is written.
    real_save = lamina.train.save_checkpoint

    def save_then_interrupt(path, model, optimizer=None, epoch=0, extra=None):
        real_save(path, model, optimizer, epoch, extra)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(lamina.train, "save_checkpoint", save_then_interrupt)
    assert cli.main(["train", "--no-progress"] + common + ["--out", str(tmp_path / "part")]) == 130
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(lamina.train, "save_checkpoint", real_save)
    ckpt = tmp_path / "part" / "model.safetensors"
    assert load_metadata(ckpt)["epoch"] == "1"

    lamina.manual_seed(123)                   # resuming must not depend on the global state
    resumed = _train(common + ["--out", str(tmp_path / "part"), "--resume", str(ckpt)], capsys)
    assert "resumed from" in resumed and "epoch 1/3" not in resumed and "epoch 3/3" in resumed
    a = load(tmp_path / "full" / "model.safetensors")
    b = load(ckpt)
    assert list(a) == list(b)
    assert any(k.startswith("optim.") for k in a)              # optimizer state is in there
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    ha = json.loads((tmp_path / "full" / "history.json").read_text())
    hb = json.loads((tmp_path / "part" / "history.json").read_text())
    assert [r["test_acc"] for r in ha] == [r["test_acc"] for r in hb]
    assert [r["train_loss"] for r in ha] == [r["train_loss"] for r in hb]
    assert ACC.findall(full) == ACC.findall(resumed)


@needs_mnist
def test_resume_with_wrong_model_is_an_error(tmp_path, capsys):
    _train(["--model", "mlp", "--epochs", "1", "--limit-train", "200", "--limit-test", "100",
            "--data", str(DATA), "--out", str(tmp_path)], capsys)
    rc = cli.main(["train", "--no-progress", "--model", "lenet5", "--data", str(DATA), "--limit-train", "200",
                   "--resume", str(tmp_path / "model.safetensors"), "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "holds a mlp model, not lenet5" in capsys.readouterr().err


@needs_mnist
def test_different_seed_differs(tmp_path, capsys):
    common = ["--model", "mlp", "--epochs", "1", "--limit-train", "500", "--limit-test", "100",
              "--data", str(DATA)]
    _train(common + ["--seed", "1", "--out", str(tmp_path / "a")], capsys)
    _train(common + ["--seed", "2", "--out", str(tmp_path / "b")], capsys)
    a = load(tmp_path / "a" / "model.safetensors")
    b = load(tmp_path / "b" / "model.safetensors")
    assert not np.array_equal(a["fc1.weight"].numpy(), b["fc1.weight"].numpy())




def test_offline_without_data_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lamina", "train", "--model", "mlp", "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=_env(LAMINA_MNIST_MIRRORS=closed_port_url()))
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("lamina: error: MNIST files not found") and "--data DIR" in err and "LAMINA_DATA" in err


def test_bad_arguments_are_rejected(capsys):
    for argv, needle in ((["train", "--epochs", "0"], "expected a positive integer, got 0"),
                         (["train", "--model", "vgg"], "invalid choice: 'vgg'"),
                         (["train", "--lr", "-1"], "expected a positive number"),
                         ([], "required")):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
        assert needle in capsys.readouterr().err


def test_info_prints_config():
    proc = subprocess.run([sys.executable, "-m", "lamina", "info"], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"lamina {lamina.__version__}")
    assert proc.stdout.count(f"lamina {lamina.__version__}") == 1


def test_model_defaults():
    args = cli.build_parser().parse_args(["train", "--model", "mlp"])
    cli._resolve_defaults(args)
    assert (args.epochs, args.optimizer, args.out) == (3, "sgd", os.path.join("runs", "mlp"))
    args = cli.build_parser().parse_args(["train"])
    cli._resolve_defaults(args)
    assert (args.model, args.epochs) == ("lenet5", 10)
    args = cli.build_parser().parse_args(["train", "--optimizer", "adam"])
    cli._resolve_defaults(args)
    assert args.lr == cli.ADAM_LR


def test_write_pictures_tolerates_missing_viz(tmp_path, monkeypatch):
    # Nothing to draw: nothing written.
    assert cli._write_pictures(None, [], tmp_path) == []
    # With matplotlib hidden, a finished run with history and a model writes no pictures and
    # does not fail.
    lamina.manual_seed(0)
    model = lamina.models.mlp((784, 8, 10))
    history = [dict(epoch=1, train_loss=1.0, test_accuracy=0.5)]
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli._write_pictures(model, history, tmp_path) == []
    assert os.listdir(tmp_path) == []


def test_write_pictures_writes_curves_and_filters(tmp_path):
    pytest.importorskip("matplotlib") if not IN_CI else None
    lamina.manual_seed(0)
    model = lamina.models.mlp((784, 8, 10))
    history = [dict(epoch=1, train_loss=1.0, test_accuracy=0.5), dict(epoch=2, train_loss=0.5, test_accuracy=0.7)]
    written = cli._write_pictures(model, history, tmp_path)
    assert sorted(p.name for p in written) == ["curves.png", "filters.png"]
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- --dataset fashion-mnist, --augment ------------------------------------------------------
def _fashion_root() -> Path:
    """$LAMINA_DATA, else the project's ../shared/data (never data inside the repository)."""
    for root in (DATA, Path(__file__).resolve().parents[2] / "shared" / "data"):
        if (root / "fashion-mnist" / "train-images-idx3-ubyte.gz").exists():
            return root
    pytest.skip("Fashion-MNIST not found: set LAMINA_DATA to a directory holding fashion-mnist/")


def test_fashion_mnist_short_real_run_reaches_accuracy_floor(tmp_path, capsys):
    # MLP, 3 epochs on 6,000 training images, tested on 2,000: 82-83% here; chance is 10%, and
    # MNIST digits fed to the same run would not match the labels.
    out = _train(["--dataset", "fashion-mnist", "--model", "mlp", "--epochs", "3", "--limit-train", "6000",
                  "--limit-test", "2000", "--data", str(_fashion_root()), "--seed", "1",
                  "--out", str(tmp_path)], capsys)
    assert "fashion-mnist images" in out
    acc = float(ACC.search(out).group(1))
    assert acc >= 78.0, out
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_fashion_mnist_augment_runs_and_learns(tmp_path, capsys):
    out = _train(["--dataset", "fashion-mnist", "--model", "mlp", "--epochs", "2", "--limit-train", "4000",
                  "--limit-test", "1000", "--data", str(_fashion_root()), "--augment",
                  "--out", str(tmp_path)], capsys)
    assert "augmented: crop pad 2 + flip" in out
    assert float(ACC.search(out).group(1)) >= 60.0, out


def test_augment_is_deterministic_per_epoch_and_changes_images():
    from lamina.augment import AugmentedLoader, PrefetchLoader
    from lamina.utils.data import DataLoader, TensorDataset
    x = lamina.rand(40, 1, 6, 6)
    ds = TensorDataset(x, lamina.arange(40))

    def epoch_batches(epoch):
        loader = PrefetchLoader(AugmentedLoader(DataLoader(ds, batch_size=16, shuffle=True, seed=3), seed=3,
                                                padding=2, flip=True))
        loader.epoch = epoch
        return [(xb.numpy().copy(), yb.numpy().copy()) for xb, yb in loader]

    a, b, c = epoch_batches(1), epoch_batches(1), epoch_batches(2)
    assert len(a) == 3
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], c[0][0])
    assert not np.array_equal(a[0][0], x.numpy()[a[0][1]])       # the images were changed


def test_random_crop_flip_gives_windows_of_padded_images():
    from lamina.augment import random_crop_flip
    rng = np.random.default_rng(0)
    x = rng.random((64, 2, 5, 5)).astype(np.float32)
    out = random_crop_flip(x, np.random.default_rng(1), padding=2, flip=True)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    kinds = set()
    for i in range(len(x)):
        found = [(flip, top, left) for flip in (False, True) for top in range(5) for left in range(5)
                 if np.array_equal(out[i], (padded[i, :, top:top + 5, left:left + 5])[..., ::-1 if flip else 1])]
        assert found, i
        kinds.add(found[0][0])
    assert kinds == {False, True}
    digits = random_crop_flip(x, np.random.default_rng(1), padding=2, flip=False)
    assert digits.shape == x.shape


def test_prefetch_loader_propagates_errors_and_stops():
    from lamina.augment import PrefetchLoader

    def broken():
        yield 1
        raise KeyError("bad batch")

    class Source:
        def __iter__(self):
            return broken()

        def __len__(self):
            return 2

    it = iter(PrefetchLoader(Source()))
    assert next(it) == 1
    with pytest.raises(KeyError, match="bad batch"):
        next(it)
    assert list(PrefetchLoader(list(range(50)), depth=3)) == list(range(50))
    first = iter(PrefetchLoader(list(range(50)), depth=1))
    assert next(first) == 0
    first.close()                                                   # abandoned: thread stops
