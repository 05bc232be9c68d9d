"""Fetch the MNIST and Fashion-MNIST IDX files from well-known mirrors, verified by SHA-256.

Each file is tried on every mirror in turn (a mirror that fails, serves a bad gzip, or
fails the checksum moves on to the next). The checksum is of the DECOMPRESSED content, so
any faithful recompression is accepted. Files are written atomically (temp file in the
destination directory, fsync, os.replace): an interrupted download never leaves a
half-written file under the real name.

The mirror list can be overridden with `mirrors=` or $LAMINA_MNIST_MIRRORS /
$LAMINA_FASHION_MNIST_MIRRORS (comma-separated base URLs).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from ._mnist_files import not_found_error
from .serialization import _fsync_dir  # one copy of the durable-rename helper

__all__ = ["MIRRORS", "MNIST_SHA256", "FASHION_MNIST_MIRRORS", "FASHION_MNIST_SHA256", "download_mnist",
           "download_fashion_mnist", "download_idx", "download_file"]

MIRRORS: List[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

# SHA-256 of the decompressed IDX files (shared/data/mnist/README.md).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

FASHION_MNIST_MIRRORS: List[str] = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
]

# SHA-256 of the decompressed Fashion-MNIST files (shared/data/fashion-mnist/README.md).
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

_CHUNK = 1 << 16


def _mirrors(mirrors: Optional[Sequence[str]], env_name: str = "LAMINA_MNIST_MIRRORS",
             default: Sequence[str] = MIRRORS) -> List[str]:
    if mirrors is not None:
        return list(mirrors)
    env = os.environ.get(env_name)
    if env:
        return [m.strip() for m in env.split(",") if m.strip()]
    return list(default)


def _sha256_of_gzip(path: Path) -> str:
    h = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: Path, sha256: str, timeout: float = 30.0,
                  progress: bool = True) -> None:
    """Download gzip `url` to `dest` if its decompressed SHA-256 is `sha256`.

    Raises OSError/urllib errors on network failure and ValueError on a checksum or
    gzip failure; `dest` is only ever replaced by a complete, verified file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="." + dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "lamina"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                total = response.headers.get("Content-Length")
                bar = None
                if progress:
                    from tqdm import tqdm
                    bar = tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                               unit_divisor=1024, desc=dest.name, leave=False)
                try:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                finally:
                    if bar is not None:
                        bar.close()
            out.flush()
            os.fsync(out.fileno())
        try:
            got = _sha256_of_gzip(tmp)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"not a valid gzip file ({e})") from None
        if got != sha256:
            raise ValueError(f"SHA-256 of decompressed content is {got}, expected {sha256}")
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def download_idx(directory, names: Iterable[str], sha256: Dict[str, str], bases: Sequence[str],
                 not_found: Callable[[Path, List[str], str], Exception], timeout: float = 30.0,
                 progress: bool = True) -> List[Path]:
    """Download IDX files `names` into `directory` as `<name>.gz`, each verified against
    `sha256[name]` (of the decompressed content), trying the mirror `bases` in turn.

    Files already present (raw or .gz) are skipped. When a file cannot be fetched from any
    mirror, raises `not_found(directory, [name], detail)` (the data set's own one-line error).
    """
    directory = Path(directory)
    names = list(names)
    for name in names:
        if name not in sha256:
            raise ValueError(f"names: unknown file {name!r} (expected one of {list(sha256)})")
    written: List[Path] = []
    for name in names:
        if any((directory / n).is_file() for n in (name, name + ".gz")):
            continue
        dest = directory / (name + ".gz")
        failures = []
        for base in bases:
            url = base.rstrip("/") + "/" + name + ".gz"
            try:
                download_file(url, dest, sha256[name], timeout=timeout, progress=progress)
                break
            except (OSError, ValueError, urllib.error.URLError) as e:
                http = isinstance(e, urllib.error.HTTPError)  # its str() has the status code
                reason = e if http else (getattr(e, "reason", None) or e)
                failures.append(f"{url}: {' '.join(str(reason).split())}")  # keep it one line
        else:
            tried = "; ".join(failures) if failures else "no mirrors configured"
            raise not_found(directory, [name], f"download failed (offline? tried {tried})")
        written.append(dest)
    return written


def download_mnist(directory, names: Optional[Iterable[str]] = None,
                   mirrors: Optional[Sequence[str]] = None, timeout: float = 30.0,
                   progress: bool = True) -> List[Path]:
    """Download the MNIST files `names` (default: all four) into `directory` as `<name>.gz`.

    Files already present (raw or .gz) are skipped. Raises `MNISTNotFoundError` (one line,
    naming `--data DIR` / `LAMINA_DATA`) when some file cannot be fetched from any mirror.

    >>> download_mnist("/tmp/data/mnist", mirrors=["http://127.0.0.1:8000/"])  # doctest: +SKIP
    """
    names = list(MNIST_SHA256) if names is None else list(names)
    return download_idx(directory, names, MNIST_SHA256, _mirrors(mirrors), not_found_error("MNIST", "mnist"),
                        timeout=timeout, progress=progress)


def download_fashion_mnist(directory, names: Optional[Iterable[str]] = None,
                           mirrors: Optional[Sequence[str]] = None, timeout: float = 30.0,
                           progress: bool = True) -> List[Path]:
    """Download the Fashion-MNIST files `names` (default: all four) into `directory`."""
    names = list(FASHION_MNIST_SHA256) if names is None else list(names)
    return download_idx(directory, names, FASHION_MNIST_SHA256,
                        _mirrors(mirrors, "LAMINA_FASHION_MNIST_MIRRORS", FASHION_MNIST_MIRRORS),
                        not_found_error("Fashion-MNIST", "fashion-mnist"), timeout=timeout,
                        progress=progress)
