"""Checkpoints: safetensors round trip, metadata, no pickle, atomic replace under SIGKILL."""
import os
import signal
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina.serialization import load, load_arrays, load_metadata, save

PYTHON_DIR = str(Path(lamina.__file__).resolve().parent.parent)


def test_round_trip_dtypes_shapes_and_order(tmp_path):
    rng = np.random.default_rng(0)
    sd = OrderedDict([
        ("z.weight", lamina.tensor(rng.standard_normal((3, 4)).astype(np.float32))),
        ("a.bias", lamina.tensor(rng.standard_normal(5))),                       # float64
        ("m.count", lamina.tensor(np.array([1, -2, 3 << 40], dtype=np.int64))),
        ("scalar", lamina.tensor(np.float32(2.5))),
        ("empty", lamina.tensor(np.zeros((0, 3), np.float32))),
        ("raw_numpy", np.arange(6, dtype=np.int64).reshape(2, 3).T),              # non-contiguous
    ])
    path = tmp_path / "ck.safetensors"
    save(sd, path, metadata={"epoch": "3", "note": "hello"})
    out = load(path)
    assert isinstance(out, OrderedDict) and list(out) == list(sd)               # order kept
    for k, v in sd.items():
        want = v if isinstance(v, np.ndarray) else v.numpy()
        got = out[k]
        assert isinstance(got, lamina.Tensor)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.numpy(), want)
    assert load_metadata(path) == {"epoch": "3", "note": "hello"}
    out["z.weight"].numpy()[0, 0] = 99.0                                          # writeable, own memory
    assert load_arrays(path)["z.weight"][0, 0] != 99.0


def test_model_state_dict_round_trip(tmp_path):
    lamina.manual_seed(0)
    model = lamina.nn.Sequential(lamina.nn.Linear(4, 3), lamina.nn.ReLU(), lamina.nn.Linear(3, 2))
    save(model.state_dict(), tmp_path / "m.safetensors")
    lamina.manual_seed(1)
    other = lamina.nn.Sequential(lamina.nn.Linear(4, 3), lamina.nn.ReLU(), lamina.nn.Linear(3, 2))
    other.load_state_dict(load(tmp_path / "m.safetensors"))
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), other.state_dict().items()):
        assert n1 == n2
        np.testing.assert_array_equal(p1.numpy(), p2.numpy())


def test_file_is_safetensors_not_pickle(tmp_path):
    path = tmp_path / "ck.safetensors"
    save({"w": np.ones(3, np.float32)}, path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and b'"w"' in raw[8:8 + n]                          # JSON header
    assert not raw.startswith(b"\x80") and b"PK\x03\x04" not in raw[:4]           # no pickle / zip
    from safetensors.numpy import load_file
    np.testing.assert_array_equal(load_file(str(path))["w"], np.ones(3))         # plain safetensors


def test_pickle_file_is_rejected_without_running_it(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match="a bare pickle file is refused"):
        load(path)
    assert not marker.exists()


def test_bad_inputs(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['w'\]\[1\]: cannot save a set; expected Tensor"):
        save({"w": [1, {2}]}, tmp_path / "x")
    with pytest.raises(TypeError, match="dict keys must be str, int, float, bool or None, got tuple"):
        save({(1, 2): np.zeros(1)}, tmp_path / "x")
    with pytest.raises(TypeError, match="metadata: keys and values must be str"):
        save({"w": np.zeros(1)}, tmp_path / "x", metadata={"epoch": 3})
    with pytest.raises(TypeError, match=r"obj\['w'\]: unsupported dtype complex128"):
        save({"w": np.zeros(1, np.complex128)}, tmp_path / "x")
    (tmp_path / "junk").write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match="junk: not a valid safetensors file"):
        load(tmp_path / "junk")


WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, {python_dir!r})
    import lamina.serialization as ser

    def slow_chunks(f, data, chunk=1 << 20):
        view = memoryview(data)
        f.write(view[: len(view) // 2]); f.flush()      # half the new file is on disk...
        print("HALF", flush=True)
        time.sleep(60)                                   # ...when the parent kills us
        f.write(view[len(view) // 2:])

    ser._write_chunks = slow_chunks
    ser.save({{"w": np.full((256, 1024), 2.0, np.float32)}}, {path!r}, metadata={{"v": "new"}})
""")


def test_killed_writer_leaves_old_checkpoint(tmp_path):
    path = tmp_path / "model.safetensors"
    old = np.full((256, 1024), 1.0, np.float32)
    save({"w": old}, path, metadata={"v": "old"})
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(python_dir=PYTHON_DIR, path=str(path))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "HALF", proc.stderr.read()
        temps = [p for p in tmp_path.iterdir() if p.name != "model.safetensors"]
        assert len(temps) == 1 and temps[0].stat().st_size > 0               # the writer got halfway
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    np.testing.assert_array_equal(load(path)["w"], old)
    assert load_metadata(path) == {"v": "old"}
    # The next save still works and replaces it.
    save({"w": old + 1}, path)
    np.testing.assert_array_equal(load(path)["w"], old + 1)
