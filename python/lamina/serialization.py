"""Checkpoints in the safetensors format: no pickle, so loading can never run code.

`save` writes atomically: the bytes go to a temp file in the same directory, are fsynced,
and only then `os.replace`d over the target, so a crash mid-write leaves the old file.

>>> import numpy as np, lamina
>>> lamina.save({"w": np.eye(2, dtype=np.float32)}, "/tmp/ck.safetensors", metadata={"epoch": "3"})  # doctest: +SKIP
>>> lamina.load("/tmp/ck.safetensors")["w"].shape                                                      # doctest: +SKIP
(2, 2)
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

__all__ = ["save", "load", "load_arrays", "load_metadata", "atomic_write_bytes"]

_ORDER_KEY = "__lamina_keys__"     # metadata entry keeping the caller's key order
_SUPPORTED = {np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32",
                                    "int64", "uint8", "uint16", "uint32", "uint64", "bool")}


def _to_numpy(value, key: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        arr = value
    elif hasattr(value, "numpy") and callable(value.numpy):     # lamina Tensor
        arr = np.asarray(value.numpy())
    else:
        raise TypeError(f"state_dict[{key!r}]: expected a Tensor or numpy array, "
                        f"got {type(value).__name__}")
    if arr.dtype not in _SUPPORTED:
        raise TypeError(f"state_dict[{key!r}]: unsupported dtype {arr.dtype} "
                        f"(expected one of {sorted(str(d) for d in _SUPPORTED)})")
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)


def _write_chunks(f, data: bytes, chunk: int = 1 << 20) -> None:
    """Write `data` to `f` in chunks (a seam tests use to simulate a crash mid-write)."""
    view = memoryview(data)
    for start in range(0, len(view), chunk):
        f.write(view[start:start + chunk])


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes) -> None:
    """Replace `path` by `data` atomically (temp file in the same dir + fsync + os.replace)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_chunks(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def save(state_dict: Mapping, path, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Save a mapping name -> Tensor/ndarray to `path` (safetensors), atomically.

    `metadata` is a str -> str mapping stored in the file header (e.g. epoch, hyperparameters).

    >>> import numpy as np
    >>> save({"b": np.zeros(3, np.float64)}, "/tmp/b.safetensors")   # doctest: +SKIP
    """
    from safetensors.numpy import save as st_save

    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict: expected a mapping name -> Tensor, got {type(state_dict).__name__}")
    tensors: Dict[str, np.ndarray] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"state_dict: keys must be str, got {type(key).__name__} ({key!r})")
        tensors[key] = _to_numpy(value, key)
    meta: Dict[str, str] = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"metadata: keys and values must be str, got {k!r}: {type(v).__name__}")
        if k == _ORDER_KEY:
            raise ValueError(f"metadata: key {_ORDER_KEY!r} is reserved")
        meta[k] = v
    meta[_ORDER_KEY] = json.dumps(list(tensors))
    atomic_write_bytes(path, st_save(tensors, metadata=meta))


def _read(path) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    path = Path(path)
    raw = path.read_bytes()
    try:
        arrays = st_load(raw)
    except (SafetensorError, ValueError) as e:
        raise ValueError(f"{path}: not a valid safetensors file ({e})") from None
    meta = _header_metadata(raw, path)
    order = meta.pop(_ORDER_KEY, None)
    keys = json.loads(order) if order else sorted(arrays)
    if sorted(keys) != sorted(arrays):
        keys = sorted(arrays)
    return OrderedDict((k, arrays[k]) for k in keys), meta


def _header_metadata(raw: bytes, path: Path) -> Dict[str, str]:
    # Header: 8-byte little-endian length, then JSON; safetensors already validated it.
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    return dict(header.get("__metadata__") or {})


def load(path) -> "OrderedDict[str, object]":
    """Load a checkpoint written by `save`: an OrderedDict name -> lamina Tensor (saved order).

    >>> sd = load("/tmp/b.safetensors")    # doctest: +SKIP
    """
    import lamina

    arrays, _ = _read(path)
    return OrderedDict((k, lamina.from_numpy(np.array(a))) for k, a in arrays.items())


def load_arrays(path) -> "OrderedDict[str, np.ndarray]":
    """Like `load` but returns numpy arrays (no Tensor wrapping)."""
    return _read(path)[0]


def load_metadata(path) -> Dict[str, str]:
    """The str -> str metadata stored by `save(..., metadata=...)`."""
    return _read(path)[1]
