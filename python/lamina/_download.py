"""Fetch the MNIST IDX files from well-known mirrors, verified by SHA-256.

Each file is tried on every mirror in turn (a mirror that fails, serves a bad gzip, or
fails the checksum moves on to the next). The checksum is of the DECOMPRESSED content, so
any faithful recompression is accepted. Files are written atomically (temp file in the
destination directory, fsync, os.replace): an interrupted download never leaves a
half-written file under the real name.

The mirror list can be overridden with `mirrors=` or $LAMINA_MNIST_MIRRORS
(comma-separated base URLs).
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
from typing import Iterable, List, Optional, Sequence
from ._mnist_files import MNISTNotFoundError, _find_file, _missing_message
from .serialization import _fsync_dir  # one copy of the durable-rename helper

__all__ = ["MIRRORS", "MNIST_SHA256", "download_mnist", "download_file"]

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

_CHUNK = 1 << 16


def _mirrors(mirrors: Optional[Sequence[str]]) -> List[str]:
    if mirrors is not None:
        return list(mirrors)
    env = os.environ.get("LAMINA_MNIST_MIRRORS")
    if env:
        return [m.strip() for m in env.split(",") if m.strip()]
    return list(MIRRORS)


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


def download_mnist(directory, names: Optional[Iterable[str]] = None,
                   mirrors: Optional[Sequence[str]] = None, timeout: float = 30.0,
                   progress: bool = True) -> List[Path]:
    """Download the MNIST files `names` (default: all four) into `directory` as `<name>.gz`.

    Files already present (raw or .gz) are skipped. Raises `MNISTNotFoundError` (one line,
    naming `--data DIR` / `LAMINA_DATA`) when some file cannot be fetched from any mirror.

    >>> download_mnist("/tmp/data/mnist", mirrors=["http://127.0.0.1:8000/"])  # doctest: +SKIP
    """
    directory = Path(directory)
    names = list(MNIST_SHA256) if names is None else list(names)
    for name in names:
        if name not in MNIST_SHA256:
            raise ValueError(f"names: unknown MNIST file {name!r} (expected one of {list(MNIST_SHA256)})")
    bases = _mirrors(mirrors)
    written: List[Path] = []
    for name in names:
        if _find_file(directory, name) is not None:
            continue
        dest = directory / (name + ".gz")
        failures = []
        for base in bases:
            url = base.rstrip("/") + "/" + name + ".gz"
            try:
                download_file(url, dest, MNIST_SHA256[name], timeout=timeout, progress=progress)
                break
            except (OSError, ValueError, urllib.error.URLError) as e:
                http = isinstance(e, urllib.error.HTTPError)  # its str() has the status code
                reason = e if http else (getattr(e, "reason", None) or e)
                failures.append(f"{url}: {' '.join(str(reason).split())}")  # keep it one line
        else:
            tried = "; ".join(failures) if failures else "no mirrors configured"
            detail = f"download failed (offline? tried {tried})"
            raise MNISTNotFoundError(_missing_message(directory, [name], detail))
        written.append(dest)
    return written
