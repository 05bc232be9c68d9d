"""IDX reader, MNIST data set, and the mirror-fallback download (against a local HTTP server)."""
import functools
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from lamina import _download
from lamina.datasets import MNIST, MNISTNotFoundError, parse_idx, read_idx, resolve_data_root

from conftest import closed_port_url, needs_mnist

DATA = Path(os.environ.get("LAMINA_DATA", "/work/shared/data"))


def idx_bytes(arr: np.ndarray, code: int) -> bytes:
    be = arr.astype(arr.dtype.newbyteorder(">"))
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + be.tobytes()


# ---- IDX reader ------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                        (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)])
def test_idx_roundtrip_raw_and_gz(tmp_path, gz, dtype, code):
    arr = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    if dtype == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(arr, code)
    path = tmp_path / ("a.idx" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # own, writeable memory


def test_idx_truncated_names_file_and_sizes(tmp_path):
    data = idx_bytes(np.zeros((5, 4, 4), np.uint8), 0x08)
    path = tmp_path / "trunc-idx3-ubyte"
    path.write_bytes(data[:-3])
    with pytest.raises(ValueError, match=r"trunc-idx3-ubyte.*truncated.*need 80 data bytes, file has 77"):
        read_idx(path)
    path.write_bytes(data[:2])
    with pytest.raises(ValueError, match="truncated IDX file: expected at least 4 header bytes, got 2"):
        read_idx(path)
    path.write_bytes(data[:9])   # header says 3 dims = 16 bytes
    with pytest.raises(ValueError, match="truncated IDX header: expected 16 bytes"):
        read_idx(path)


def test_idx_trailing_bytes_rejected(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros(3, np.uint8), 0x08) + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes.*need 3 data bytes, file has 4"):
        read_idx(path)


def test_idx_wrong_magic_and_type(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x1f\x8b\x08\x01" + bytes(8))   # e.g. a gzip file without .gz suffix
    with pytest.raises(ValueError, match="wrong IDX magic: expected first two bytes 0x00 0x00, got 0x1f 0x8b"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x08, 0]))
    with pytest.raises(ValueError, match="0 dimensions"):
        read_idx(path)


def test_idx_oversized_header(tmp_path):
    path = tmp_path / "big"
    # 4 dims of 2^32-1: ~3e38 bytes claimed; must be refused before any allocation.
    path.write_bytes(bytes([0, 0, 0x0E, 4]) + b"\xff" * 16 + bytes(8))
    with pytest.raises(ValueError, match="oversized IDX header"):
        read_idx(path)
    # Plausible size but far more than the file holds.
    path.write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 1_000_000) + bytes(10))
    with pytest.raises(ValueError, match="need 1000000 data bytes, file has 10"):
        read_idx(path)


def test_idx_bad_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"x\.gz: not a valid gzip file"):
        read_idx(path)
    good = gzip.compress(idx_bytes(np.zeros(100, np.uint8), 0x08))
    path.write_bytes(good[:-10])
    with pytest.raises(ValueError, match="not a valid gzip file"):
        read_idx(path)


def _check_consistent(arr, buf):
    assert isinstance(arr, np.ndarray)
    ndim = buf[3]
    assert arr.ndim == ndim
    assert arr.nbytes == len(buf) - 4 - 4 * ndim


def test_idx_fuzz_raw():
    rng = np.random.default_rng(1234)
    images = idx_bytes(rng.integers(0, 256, (3, 4, 5)).astype(np.uint8), 0x08)
    labels = idx_bytes(np.arange(7, dtype=np.int32), 0x0C)
    outcomes = {"ok": 0, "ValueError": 0}
    for trial in range(3000):
        buf = bytearray(images if trial % 2 else labels)
        kind = rng.integers(0, 4)
        if kind == 0:           # flip a few bytes, biased toward the header
            for _ in range(rng.integers(1, 4)):
                pos = int(rng.integers(0, min(len(buf), 24))) if rng.random() < 0.7 else int(rng.integers(0, len(buf)))
                buf[pos] = int(rng.integers(0, 256))
        elif kind == 1:         # truncate
            del buf[int(rng.integers(0, len(buf))):]
        elif kind == 2:         # extend
            buf += bytes(rng.integers(0, 256, int(rng.integers(1, 9))).astype(np.uint8))
        else:                   # set a dim byte to something large
            buf[int(rng.integers(4, 8))] = 0xFF
        buf = bytes(buf)
        try:
            arr = parse_idx(buf, "fuzz")
        except ValueError as e:
            assert str(e).startswith("fuzz: ")
            outcomes["ValueError"] += 1
        else:
            _check_consistent(arr, buf)
            outcomes["ok"] += 1
    assert outcomes["ok"] > 50 and outcomes["ValueError"] > 500   # both paths exercised


def test_idx_fuzz_gz(tmp_path):
    rng = np.random.default_rng(99)
    data = gzip.compress(idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 20), 0x08))
    path = tmp_path / "f.gz"
    errors = 0
    for _ in range(800):
        buf = bytearray(data)
        for _ in range(rng.integers(1, 3)):
            buf[int(rng.integers(0, len(buf)))] = int(rng.integers(0, 256))
        path.write_bytes(bytes(buf))
        try:
            arr = read_idx(path)
        except ValueError:
            errors += 1
        else:
            assert arr.ndim >= 1 and arr.size * arr.itemsize == arr.nbytes
    assert errors > 100


# ---- data root and MNIST ---------------------------------------------------------------------

def test_resolve_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMINA_DATA", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_root() == tmp_path / "env"
    monkeypatch.delenv("LAMINA_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_root() == tmp_path / ".cache" / "lamina"


@needs_mnist
def test_mnist_test_split():
    ds = MNIST(DATA, train=False, download=False)
    assert len(ds) == 10000
    assert ds.data.shape == (10000, 28, 28) and ds.data.dtype == np.uint8
    assert ds.targets.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(ds.targets, minlength=10),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    image, label = ds[0]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.max() == 1.0
    assert label == int(ds.targets[0]) and isinstance(label, int)
    x, y = ds.arrays()
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(x[123], ds[123][0])         # fast path == item path
    np.testing.assert_array_equal(y, ds.targets)


@needs_mnist
def test_mnist_data_and_targets_are_tensors_like_torchvision():
    """torchvision's MNIST: `.data` a uint8 (N, 28, 28) Tensor, `.targets` an int64 (N,) Tensor;
    code written for it (masks, .float() / 255, slicing a subset) runs unchanged."""
    import lamina
    ds = MNIST(DATA, train=False, download=False)
    assert isinstance(ds.data, lamina.Tensor) and isinstance(ds.targets, lamina.Tensor)
    assert ds.data.dtype == lamina.uint8 and ds.targets.dtype == lamina.int64
    assert "dtype=lamina.uint8" in repr(ds.data[0, 0, :3])
    threes = ds.data[ds.targets == 3]
    assert threes.shape == (1010, 28, 28) and threes.dtype == lamina.uint8
    x = ds.data.float() / 255
    assert x.dtype == lamina.float32 and float(x.max()) == 1.0
    assert int(ds.data[0].sum()) == int(ds.data[0].numpy().astype(np.int64).sum())   # no uint8 wrap
    assert ds.data[0].sum().dtype == lamina.int64
    assert ds.targets[:5].tolist() == [7, 2, 1, 0, 4]
    xa, ya = ds.arrays()
    np.testing.assert_array_equal(xa[:, 0], ds.data.numpy() / np.float32(255.0))
    assert ya.dtype == np.int64 and np.array_equal(ya, ds.targets.numpy())
    # a subset assigned as torchvision users do (Tensors or NumPy arrays): items and arrays follow
    for cut in (lambda t: t[:100], lambda t: t.numpy()[:100]):
        sub = MNIST(DATA, train=False, download=False)
        sub.data, sub.targets = cut(sub.data), cut(sub.targets)
        assert len(sub) == 100 and sub.arrays()[0].shape == (100, 1, 28, 28)
        assert sub[99][1] == int(ds.targets[99]) and np.array_equal(sub[99][0].numpy(), ds[99][0].numpy())
    loader = lamina.utils.data.DataLoader(ds, batch_size=64)
    xb, yb = next(iter(loader))
    assert xb.dtype == lamina.float32 and yb.dtype == lamina.int64 and yb.tolist() == ds.targets[:64].tolist()


@needs_mnist
def test_mnist_transform_and_env(monkeypatch):
    monkeypatch.setenv("LAMINA_DATA", str(DATA))
    ds = MNIST(train=False, transform=lambda im: im.sum(), download=False)
    image, _ = ds[5]
    assert image == int(ds.data[5].sum())


@needs_mnist
def test_mnist_raw_files_and_inconsistent_counts(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    (d / "t10k-images-idx3-ubyte").write_bytes(gzip.decompress((DATA / "mnist/t10k-images-idx3-ubyte.gz").read_bytes()))
    (d / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(9999, np.uint8), 0x08))
    with pytest.raises(ValueError, match="10000 images but .* 9999 labels"):
        MNIST(tmp_path, train=False, download=False)
    (d / "t10k-labels-idx1-ubyte").write_bytes(gzip.decompress((DATA / "mnist/t10k-labels-idx1-ubyte.gz").read_bytes()))
    ds = MNIST(tmp_path, train=False, download=False)   # raw (uncompressed) files work too
    assert len(ds) == 10000


@needs_mnist
def test_mnist_root_may_be_the_mnist_folder_itself():
    ds = MNIST(DATA / "mnist", train=False, download=False)
    assert len(ds) == 10000 and ds.mnist_dir == DATA / "mnist"


def test_mnist_missing_without_download(tmp_path):
    with pytest.raises(MNISTNotFoundError) as err:
        MNIST(tmp_path, train=True, download=False)
    msg = str(err.value)
    assert "\n" not in msg and "--data DIR" in msg and "LAMINA_DATA" in msg
    assert "train-images-idx3-ubyte" in msg


# ---- download: mirror fallback against a local server ---------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()




def _serve(root, mirror, name, content: bytes):
    d = root / mirror
    d.mkdir(exist_ok=True)
    (d / (name + ".gz")).write_bytes(content)


@needs_mnist
def test_download_falls_back_past_404_and_dead_mirror(server, tmp_path):
    root, base = server
    name = "t10k-labels-idx1-ubyte"
    (root / "empty").mkdir()                                          # serves 404
    _serve(root, "good", name, (DATA / "mnist" / (name + ".gz")).read_bytes())
    dest = tmp_path / "data" / "mnist"
    written = _download.download_mnist(dest, names=[name], progress=False, timeout=5,
                                       mirrors=[closed_port_url(), base + "/empty/", base + "/good/"])
    assert written == [dest / (name + ".gz")]
    raw = gzip.decompress(written[0].read_bytes())
    assert hashlib.sha256(raw).hexdigest() == _download.MNIST_SHA256[name]
    assert [p.name for p in dest.iterdir()] == [name + ".gz"]         # no temp files left
    # Present now: a second call downloads nothing even with no mirrors at all.
    assert _download.download_mnist(dest, names=[name], mirrors=[], progress=False) == []


@needs_mnist
def test_download_rejects_corrupt_then_uses_next_mirror(server, tmp_path):
    root, base = server
    name = "t10k-labels-idx1-ubyte"
    raw = bytearray(gzip.decompress((DATA / "mnist" / (name + ".gz")).read_bytes()))
    raw[100] ^= 1                                                     # one label changed
    _serve(root, "corrupt", name, gzip.compress(bytes(raw)))
    _serve(root, "notgzip", name, b"<html>captive portal</html>")
    dest = tmp_path / "mnist"
    with pytest.raises(MNISTNotFoundError) as err:
        _download.download_mnist(dest, names=[name], progress=False, timeout=5,
                                 mirrors=[base + "/corrupt/", base + "/notgzip/"])
    msg = str(err.value)
    assert "\n" not in msg
    assert "SHA-256" in msg and "not a valid gzip" in msg and "--data DIR" in msg
    assert not dest.exists() or list(dest.iterdir()) == []           # nothing half-written
    _serve(root, "good", name, (DATA / "mnist" / (name + ".gz")).read_bytes())
    _download.download_mnist(dest, names=[name], progress=False, timeout=5,
                             mirrors=[base + "/corrupt/", base + "/good/"])
    assert (dest / (name + ".gz")).exists()


@needs_mnist
def test_mnist_downloads_via_env_mirrors(server, tmp_path, monkeypatch):
    root, base = server
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        _serve(root, "m", name, (DATA / "mnist" / (name + ".gz")).read_bytes())
    monkeypatch.setenv("LAMINA_MNIST_MIRRORS", f"{base}/missing/, {base}/m/")
    ds = MNIST(tmp_path / "cache", train=False, download=True)
    assert len(ds) == 10000 and int(ds.targets[0]) == 7


def test_offline_error_is_one_line_and_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv("LAMINA_MNIST_MIRRORS", closed_port_url() + "," + closed_port_url())
    with pytest.raises(MNISTNotFoundError) as err:
        MNIST(tmp_path, train=True, download=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert "--data DIR" in msg and "LAMINA_DATA" in msg and "offline?" in msg
    assert str(tmp_path / "mnist") in msg
    assert isinstance(err.value, FileNotFoundError)


# ---- torchvision-style items, FashionMNIST ---------------------------------------------------
HAVE_FASHION = (DATA / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists()
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason=f"Fashion-MNIST not found under {DATA}/fashion-mnist")


@needs_mnist
def test_mnist_items_are_tensors_and_transforms_see_uint8():
    import lamina
    from lamina import transforms
    from lamina.utils.data import DataLoader
    ds = MNIST(DATA, train=False, download=False)
    image, label = ds[0]
    assert isinstance(image, lamina.Tensor) and image.shape == (1, 28, 28) and image.dtype == lamina.float32
    assert isinstance(label, int) and label == 7
    seen = []
    ds_t = MNIST(DATA, train=False, download=False,
                 transform=lambda im: seen.append((im.dtype, im.shape)) or transforms.ToTensor()(im),
                 target_transform=lambda y: y + 100)
    image_t, label_t = ds_t[0]
    assert seen == [(np.uint8, (28, 28))] and label_t == 107
    np.testing.assert_array_equal(image_t.numpy(), image.numpy())
    # the DataLoader's whole-batch path gives what collating the items gives
    fast_x, fast_y = next(iter(DataLoader(ds, batch_size=5)))
    slow_x, slow_y = next(iter(DataLoader(ds_t, batch_size=5)))
    np.testing.assert_array_equal(fast_x.numpy(), slow_x.numpy())
    np.testing.assert_array_equal(fast_y.numpy() + 100, slow_y.numpy())
    assert fast_y.dtype == lamina.int64 and fast_x.dtype == lamina.float32


@needs_fashion
def test_fashion_mnist_reads_its_own_folder():
    from lamina.datasets import FashionMNIST
    ds = FashionMNIST(DATA, train=False, download=False)
    assert len(ds) == 10000 and ds.mnist_dir == DATA / "fashion-mnist"
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot" and len(ds.classes) == 10
    assert ds.class_to_idx["Sneaker"] == 7
    np.testing.assert_array_equal(np.bincount(ds.targets, minlength=10), [1000] * 10)
    assert ds.classes[ds[0][1]] == "Ankle boot"
    digits = MNIST(DATA, train=False, download=False)
    assert not np.array_equal(ds.data[:10], digits.data[:10])


@needs_fashion
def test_fashion_mnist_checksums_match_its_readme():
    readme = (DATA / "fashion-mnist" / "README.md").read_text()
    for name, digest in _download.FASHION_MNIST_SHA256.items():
        assert f"{digest}  {name}" in readme
        content = gzip.decompress((DATA / "fashion-mnist" / (name + ".gz")).read_bytes())
        assert hashlib.sha256(content).hexdigest() == digest


@needs_fashion
def test_fashion_mnist_downloads_with_checks(server, tmp_path, monkeypatch):
    from lamina.datasets import FashionMNIST
    root, base = server
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        _serve(root, "f", name, (DATA / "fashion-mnist" / (name + ".gz")).read_bytes())
        # an MNIST file under the Fashion name fails the checksum and is skipped
        _serve(root, "wrong", name, (DATA / "mnist" / (name + ".gz")).read_bytes())
    monkeypatch.setenv("LAMINA_FASHION_MNIST_MIRRORS", f"{base}/wrong/,{base}/f/")
    ds = FashionMNIST(tmp_path, train=False, download=True)
    assert len(ds) == 10000 and (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    with pytest.raises(MNISTNotFoundError) as err:
        FashionMNIST(tmp_path / "empty", train=True, download=False)
    msg = str(err.value)
    assert "Fashion-MNIST files not found" in msg and "fashion-mnist/" in msg and "\n" not in msg
