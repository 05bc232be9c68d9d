"""lamina.save / lamina.load: nested checkpoints without pickle, every dtype, clear errors on
malformed files (issue 13 "Checkpoints", issue 19 finding 19), and PyTorch's torch.save files read
without torch through a restricted unpickler (issue 17)."""
import io
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import lamina
from lamina.serialization import CheckpointError

PYTHON_DIR = str(Path(lamina.__file__).resolve().parent.parent)


def _same(a, b):
    """Deep equality for loaded checkpoints: containers by type, tensors by dtype and values."""
    if isinstance(a, lamina.Tensor):
        want = b.data if isinstance(b, lamina.Tensor) else np.asarray(b)
        assert isinstance(b, (lamina.Tensor, np.ndarray)) and a.dtype == want.dtype and a.shape == want.shape
        np.testing.assert_array_equal(a.numpy(), want)
        return
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


# ---------------------------------------------------------------- lamina's own format
def test_nested_round_trip_keeps_structure_types_and_order(tmp_path):
    lamina.manual_seed(0)
    model = lamina.nn.Sequential(lamina.nn.Linear(3, 4), lamina.nn.ReLU(), lamina.nn.Linear(4, 2))
    obj = {
        "model": model.state_dict(),
        "epoch": 7, "best": 0.125, "name": "run-1", "done": False, "note": None,
        "history": [1.5, float("nan"), float("inf"), -float("inf")],
        "shape": (2, (3, [4, True])),
        "by_index": {0: lamina.tensor([1, 2]), 2: "two", 1.5: None, True: 3},
        "empty": {}, "empty_list": [], "empty_tuple": (),
        "big": 3 << 70,
    }
    lamina.save(obj, tmp_path / "ck.lamina")
    back = lamina.load(tmp_path / "ck.lamina")
    for k in obj:
        _same(back[k], obj[k]) if k != "model" else None
    assert isinstance(back["model"], OrderedDict) and list(back["model"]) == list(obj["model"])
    for k, v in obj["model"].items():
        _same(back["model"][k], v)


def test_every_dtype_round_trips(tmp_path):
    values = {
        "float32": lamina.tensor(np.array([1.5, -2.25], np.float32)),
        "float64": lamina.tensor(np.array([1e-300, 3.0])),
        "int64": lamina.tensor(np.array([-(1 << 62), 5])),
        "bool": lamina.tensor(np.array([True, False])),
        # lamina keeps the dtype of arrays it did not make itself
        **{f"np_{d}": np.array([0, 1, 2], dtype=d) for d in
           ("float16", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64")},
        "np_bool": np.array([[True], [False]]),
        "scalar": lamina.tensor(np.float32(2.5)),
        "empty": lamina.zeros(0, 3),
    }
    for nested in (False, True):   # a flat dict (entries named by key) and a nested object
        obj = {"inner": values, "n": 1} if nested else values
        lamina.save(obj, tmp_path / "dt.lamina")
        back = lamina.load(tmp_path / "dt.lamina")
        got = back["inner"] if nested else back
        for k, v in values.items():
            want = v.data if isinstance(v, lamina.Tensor) else v
            assert isinstance(got[k], lamina.Tensor) and got[k].dtype == want.dtype, k
            np.testing.assert_array_equal(got[k].numpy(), want)


def test_finding19_flat_float16_int32_bool_load(tmp_path):
    path = tmp_path / "f19.safetensors"
    lamina.save({"h": np.ones(3, np.float16), "i": np.arange(3, dtype=np.int32), "b": np.ones(2, bool)}, path)
    back = lamina.load(path)
    assert [back[k].dtype for k in "hib"] == [np.float16, np.int32, np.bool_]


def test_bf16_entries_load_as_exact_float32(tmp_path):
    from safetensors.torch import save_file
    values = torch.tensor([1.0, -2.5, 3.140625, 1e30, -0.0], dtype=torch.bfloat16)
    save_file({"w": values, "h": torch.ones(2, dtype=torch.float16)}, str(tmp_path / "bf.safetensors"))
    back = lamina.load(tmp_path / "bf.safetensors")
    assert back["w"].dtype == np.float32 and back["h"].dtype == np.float16
    np.testing.assert_array_equal(back["w"].numpy(), values.float().numpy())


def test_optimizer_resume_is_bit_identical(tmp_path):
    rng = np.random.default_rng(0)
    x = lamina.tensor(rng.standard_normal((16, 5)).astype(np.float32))
    y = lamina.tensor(rng.standard_normal((16, 2)).astype(np.float32))

    def make():
        lamina.manual_seed(3)
        model = lamina.nn.Sequential(lamina.nn.Linear(5, 8), lamina.nn.Tanh(), lamina.nn.Linear(8, 2))
        return model, lamina.optim.Adam(model.parameters(), lr=0.01)

    def steps(model, opt, n):
        for _ in range(n):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()

    model, opt = make()
    steps(model, opt, 6)
    reference = [p.detach().numpy().copy() for p in model.parameters()]

    model, opt = make()
    steps(model, opt, 3)
    lamina.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, tmp_path / "r.lamina")
    del model, opt
    model, opt = make()
    ck = lamina.load(tmp_path / "r.lamina")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    assert ck["epoch"] == 3
    steps(model, opt, 3)
    for p, want in zip(model.parameters(), reference):
        np.testing.assert_array_equal(p.detach().numpy(), want)


def test_file_objects_and_map_location(tmp_path):
    buf = io.BytesIO()
    lamina.save({"w": lamina.ones(2), "k": [1, "a"]}, buf)
    buf.seek(0)
    back = lamina.load(buf, map_location="cpu")
    assert back["k"] == [1, "a"] and back["w"].tolist() == [1.0, 1.0]
    buf.seek(0)
    with pytest.raises(ValueError, match="map_location: lamina has only the CPU"):
        lamina.load(buf, map_location="cuda:0")


def test_flat_dict_is_plain_safetensors_for_other_readers(tmp_path):
    from safetensors.numpy import load_file
    lamina.save({"a.weight": lamina.ones(2, 3), "b": np.arange(3, dtype=np.int32)}, tmp_path / "m.safetensors")
    plain = load_file(str(tmp_path / "m.safetensors"))
    assert set(plain) == {"a.weight", "b"} and plain["b"].dtype == np.int32


def test_reads_files_todays_save_wrote(tmp_path):
    """The writer before nested checkpoints: safetensors + a JSON key order, no structure."""
    from safetensors.numpy import save as st_save
    arrays = {"z": np.ones(2, np.float32), "a": np.arange(3, dtype=np.int64)}
    raw = st_save(arrays, metadata={"epoch": "3", "__lamina_keys__": json.dumps(["z", "a"])})
    (tmp_path / "old.safetensors").write_bytes(raw)
    back = lamina.load(tmp_path / "old.safetensors")
    assert isinstance(back, OrderedDict) and list(back) == ["z", "a"]
    np.testing.assert_array_equal(back["a"].numpy(), [0, 1, 2])
    assert lamina.serialization.load_metadata(tmp_path / "old.safetensors") == {"epoch": "3"}


def test_failed_save_leaves_the_old_file(tmp_path):
    path = tmp_path / "ck.lamina"
    lamina.save({"w": lamina.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"obj\['extra'\]\[1\]: cannot save a set"):
        lamina.save({"w": lamina.zeros(3), "extra": [1, {2}]}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ck.lamina"]


def _safetensors_file(path, header, data=b""):
    head = json.dumps(header).encode()
    path.write_bytes(len(head).to_bytes(8, "little") + head + data)
    return path


MALFORMED = [
    ("structure not JSON", {"__metadata__": {"__lamina_structure__": "{nope"}}, "not JSON"),
    ("structure unknown tag", {"__metadata__": {"__lamina_structure__": '{"exec": 1}'}}, "unknown tag 'exec'"),
    ("structure missing tensor", {"__metadata__": {"__lamina_structure__": '{"tensor": "9"}'}}, "'9' is not in the file"),
    ("structure bad dict body", {"__metadata__": {"__lamina_structure__": '{"dict": [1]}'}}, "key, value"),
    ("key order not JSON", {"__metadata__": {"__lamina_keys__": "[oops"}}, "__lamina_keys__ is not JSON"),
    ("key order wrong", {"__metadata__": {"__lamina_keys__": '["x"]'}}, "does not list the file's entries"),
    ("metadata not str", {"__metadata__": {"epoch": 3}}, "must map strings to strings"),
    ("header a list", [1, 2], "header is a JSON list"),
    ("unknown dtype", {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, "unknown dtype 'F128'"),
    ("missing shape", {"w": {"dtype": "F32", "data_offsets": [0, 4]}}, "shape must be a list"),
    ("negative size", {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "shape must be a list"),
    ("offsets past the end", {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, "truncated"),
    ("offsets bad", {"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}}, "data_offsets must be"),
]


@pytest.mark.parametrize("name,header,pattern", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_raise_a_clear_error(tmp_path, name, header, pattern):
    path = _safetensors_file(tmp_path / "bad.safetensors", header, b"\0" * 8)
    with pytest.raises(CheckpointError, match=pattern) as info:
        lamina.load(path)
    assert isinstance(info.value, ValueError) and "bad.safetensors" in str(info.value)


def test_non_utf8_header_is_a_clear_error(tmp_path):
    path = tmp_path / "u.safetensors"
    path.write_bytes((4).to_bytes(8, "little") + b"\xff\xfe{}")
    with pytest.raises(CheckpointError, match="header is not JSON"):
        lamina.load(path)


# ---------------------------------------------------------------- PyTorch files, without torch
def _torch_lenet():
    import torch.nn as tnn
    return tnn.Sequential(OrderedDict([
        ("c1", tnn.Conv2d(1, 6, 5, padding=2)), ("relu1", tnn.ReLU()), ("s2", tnn.MaxPool2d(2)),
        ("c3", tnn.Conv2d(6, 16, 5)), ("relu3", tnn.ReLU()), ("s4", tnn.MaxPool2d(2)),
        ("flatten", tnn.Flatten()), ("f5", tnn.Linear(400, 120)), ("relu5", tnn.ReLU()),
        ("f6", tnn.Linear(120, 84)), ("relu6", tnn.ReLU()), ("output", tnn.Linear(84, 10))]))


NO_TORCH_LOADER = textwrap.dedent("""
    import sys
    sys.modules["torch"] = None          # `import torch` now fails: lamina must not need it
    sys.path.insert(0, {python_dir!r})
    import numpy as np
    import lamina
    try:
        import torch
        raise SystemExit("torch was importable")
    except ImportError:
        pass
    model = lamina.models.lenet5()
    result = model.load_state_dict(lamina.load({pt!r}))
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == [], result
    with lamina.no_grad():
        out = model(lamina.tensor(np.load({x!r}))).numpy()
    want = np.load({y!r})
    err = float(np.abs(out - want).max())
    assert "torch" not in sys.modules or sys.modules["torch"] is None
    print("MAXERR", err)
""")


def test_torch_trained_lenet_loads_without_torch(tmp_path):
    torch.manual_seed(0)
    net = _torch_lenet()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):                     # a few real training steps, so weights are not the init
        xb = torch.randn(32, 1, 28, 28, generator=gen)
        yb = torch.randint(0, 10, (32,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()
    torch.save(net.state_dict(), tmp_path / "lenet.pt")
    x = torch.randn(8, 1, 28, 28, generator=gen)
    with torch.no_grad():
        y = net(x)
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    script = NO_TORCH_LOADER.format(python_dir=PYTHON_DIR, pt=str(tmp_path / "lenet.pt"),
                                    x=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    err = float(proc.stdout.split("MAXERR")[1])
    assert err <= 1e-5, err


def test_torch_checkpoint_with_optimizer_and_views(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    base = torch.arange(12.0).reshape(3, 4)
    obj = {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 4,
           "view": base.t(), "slice": base[1:, 2:], "half": torch.ones(2, dtype=torch.float16),
           "i32": torch.tensor([1, 2], dtype=torch.int32), "flag": torch.tensor([True, False]),
           "param": torch.nn.Parameter(torch.ones(2)), "tuple": (1, "a", None)}
    torch.save(obj, tmp_path / "ck.pth")
    back = lamina.load(tmp_path / "ck.pth")
    assert back["epoch"] == 4 and back["tuple"] == (1, "a", None)
    np.testing.assert_array_equal(back["view"].numpy(), base.t().numpy())
    np.testing.assert_array_equal(back["slice"].numpy(), base[1:, 2:].numpy())
    assert back["half"].dtype == np.float16 and back["i32"].dtype == np.int32 and back["flag"].dtype == np.bool_
    assert isinstance(back["param"], lamina.nn.Parameter) and back["param"].requires_grad
    state = back["optimizer"]["state"][0]
    np.testing.assert_array_equal(state["exp_avg"].numpy(), opt.state_dict()["state"][0]["exp_avg"].numpy())
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back["model"][k].numpy(), v.numpy())


def _zip_with_pickle(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/byteorder", "little")
    return path


def test_pickle_calling_os_system_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps({"w": Evil()}, protocol=2)
    assert b"system" in payload
    with pytest.raises(CheckpointError, match=r"refused to load global (posix|os)\.system"):
        lamina.load(_zip_with_pickle(tmp_path / "evil.pt", payload))
    assert not marker.exists()
    # A bare pickle (no torch zip around it) is refused without being read at all.
    (tmp_path / "evil.pkl").write_bytes(payload)
    with pytest.raises(CheckpointError, match="bare pickle file is refused"):
        lamina.load(tmp_path / "evil.pkl")
    assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("builtins", "getattr"), ("subprocess", "Popen"),
                                         ("torch", "load"), ("torch.nn.modules.linear", "Linear")])
def test_any_other_global_is_refused(tmp_path, module, name):
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."
    with pytest.raises(CheckpointError, match=f"refused to load global {module}.{name}"):
        lamina.load(_zip_with_pickle(tmp_path / "g.pt", payload))


def test_whole_torch_module_pickle_is_refused(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(CheckpointError, match="save model.state_dict"):
        lamina.load(tmp_path / "module.pt")


def test_broken_torch_zip_is_a_clear_error(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "ok.pt")
    with zipfile.ZipFile(tmp_path / "ok.pt") as src, zipfile.ZipFile(tmp_path / "nodata.pt", "w") as dst:
        for item in src.namelist():
            if "/data/" not in item:
                dst.writestr(item, src.read(item))
    with pytest.raises(CheckpointError, match="missing from the archive"):
        lamina.load(tmp_path / "nodata.pt")
    raw = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        lamina.load(tmp_path / "cut.pt")


def test_strict_false_reports_keys_as_pytorch(tmp_path):
    import torch.nn as tnn
    tmodel = tnn.Sequential(OrderedDict([("fc1", tnn.Linear(4, 3)), ("fc2", tnn.Linear(3, 2))]))
    sd = tmodel.state_dict()
    del sd["fc2.bias"]
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "partial.pt")
    want = tmodel.load_state_dict(sd, strict=False)
    lmodel = lamina.nn.Sequential(OrderedDict([("fc1", lamina.nn.Linear(4, 3)), ("fc2", lamina.nn.Linear(3, 2))]))
    got = lmodel.load_state_dict(lamina.load(tmp_path / "partial.pt"), strict=False)
    assert got.missing_keys == want.missing_keys == ["fc2.bias"]
    assert got.unexpected_keys == want.unexpected_keys == ["extra.weight"]
    missing, unexpected = got
    assert (missing, unexpected) == (["fc2.bias"], ["extra.weight"])
    np.testing.assert_array_equal(lmodel.fc1.weight.detach().numpy(), tmodel.fc1.weight.detach().numpy())
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "fc2.bias"'):
        lmodel.load_state_dict(lamina.load(tmp_path / "partial.pt"))


def test_weights_only_false_is_still_restricted(tmp_path):
    payload = pickle.dumps({"w": os.getcwd}, protocol=2)   # a callable global
    with pytest.raises(CheckpointError, match="refused to load global posix.getcwd"):
        lamina.load(_zip_with_pickle(tmp_path / "g.pt", payload), weights_only=False)
