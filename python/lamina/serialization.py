"""Checkpoints: `save` / `load` without pickle, so loading can never run code.

A file is safetensors: every tensor is one entry, and the nesting of dicts, lists and tuples
around them (with numbers, strings, bools and None) is JSON in the header's metadata. `save`
writes atomically: the bytes go to a temp file in the same directory, are fsynced, and only then
`os.replace`d over the target, so a crash mid-write leaves the old file.

`load` also reads PyTorch's `torch.save` zip files (.pt / .pth) through a restricted unpickler
(python/lamina/_torch_pickle.py) and `.safetensors` files written by other tools.

>>> import lamina
>>> lamina.save({"model": {"w": lamina.ones(2)}, "epoch": 3}, "/tmp/ck.lamina")   # doctest: +SKIP
>>> lamina.load("/tmp/ck.lamina")["epoch"]                                          # doctest: +SKIP
3
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from ._torch_pickle import CheckpointError, load_torch_zip

__all__ = ["save", "load", "load_arrays", "load_metadata", "atomic_write_bytes", "CheckpointError"]

_ORDER_KEY = "__lamina_keys__"           # metadata entry keeping a flat dict's key order
_STRUCTURE_KEY = "__lamina_structure__"  # metadata entry with the JSON nesting (nested saves)
_RESERVED = (_ORDER_KEY, _STRUCTURE_KEY)

# safetensors dtype names <-> NumPy. BF16 has no NumPy type: it is read as float32 (exact).
_ST_TO_NP = {"F16": "float16", "F32": "float32", "F64": "float64", "I8": "int8", "I16": "int16",
             "I32": "int32", "I64": "int64", "U8": "uint8", "U16": "uint16", "U32": "uint32",
             "U64": "uint64", "BOOL": "bool"}
_NP_TO_ST = {np.dtype(v): k for k, v in _ST_TO_NP.items()}
_SUPPORTED = set(_NP_TO_ST)
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))   # what a Parameter may hold
_ITEMSIZE = {"BF16": 2, **{k: np.dtype(v).itemsize for k, v in _ST_TO_NP.items()}}
_MAX_HEADER = 100 << 20                  # safetensors' own limit on the JSON header


# --------------------------------------------------------------------------- atomic writes
def _write_chunks(f, data, chunk: int = 1 << 20) -> None:
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


def atomic_write_bytes(path, data) -> None:
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


# --------------------------------------------------------------------------- safetensors
def _safetensors_bytes(arrays: "OrderedDict[str, np.ndarray]", metadata: Dict[str, str]) -> bytes:
    """The safetensors encoding: u64 header length, JSON header (padded to 8), raw LE data."""
    header: Dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, arr in arrays.items():
        header[name] = {"dtype": _NP_TO_ST[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    out = bytearray(len(head).to_bytes(8, "little"))
    out += head
    for arr in arrays.values():
        out += arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
    return bytes(out)


def _parse_safetensors(raw: bytes, where: str) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, str]]:
    """Entries (in file order) and metadata of a safetensors file; every field is checked."""
    def bad(why):
        return CheckpointError(f"{where}: not a valid safetensors file ({why})")

    if len(raw) < 8:
        raise bad(f"{len(raw)} bytes, shorter than the 8-byte header length")
    n = int.from_bytes(raw[:8], "little")
    if n > min(_MAX_HEADER, len(raw) - 8):
        raise bad(f"header length {n} exceeds the file ({len(raw) - 8} bytes after the length)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise bad(f"header is a JSON {type(header).__name__}, expected an object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise bad("__metadata__ must map strings to strings")
    data = memoryview(raw)[8 + n:]
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise bad(f"entry {name!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _ITEMSIZE:
            raise bad(f"entry {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise bad(f"entry {name!r}: shape must be a list of sizes >= 0, got {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise bad(f"entry {name!r}: data_offsets must be [begin, end], got {offsets!r}")
        begin, end = offsets
        nbytes = math.prod(shape) * _ITEMSIZE[dtype]
        if not 0 <= begin <= end <= len(data) or end - begin != nbytes:
            raise bad(f"entry {name!r}: data_offsets {offsets} do not hold {nbytes} bytes "
                      f"within the {len(data)}-byte data section (truncated file?)")
        entries.append((begin, name, dtype, shape, end))
    arrays: "OrderedDict[str, np.ndarray]" = OrderedDict()
    for begin, name, dtype, shape, end in sorted(entries, key=lambda e: e[0]):
        chunk = data[begin:end]
        if dtype == "BF16":   # bfloat16 is the top half of a float32
            arr = (np.frombuffer(chunk, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
        else:
            native = np.dtype(_ST_TO_NP[dtype])
            arr = np.frombuffer(chunk, native.newbyteorder("<")).astype(native).reshape(shape)  # own memory
        arrays[name] = arr
    return arrays, dict(meta)


# --------------------------------------------------------------------------- the JSON nesting
_ALLOWED = "Tensor, numpy array, dict, list, tuple, str, int, float, bool or None"


def _encode(obj, where: str, arrays: "OrderedDict[str, np.ndarray]", name: Optional[str] = None):
    """JSON for `obj`; tensors and arrays are moved to `arrays` and referenced by `name`
    (default: their position in the file)."""
    from .nn.module import Parameter
    from .tensor import Tensor

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else {"float": repr(value)}   # nan / inf are not JSON
    if isinstance(obj, (Tensor, np.ndarray)):
        arr = obj._data if isinstance(obj, Tensor) else obj
        if arr.dtype not in _SUPPORTED:
            raise TypeError(f"{where}: unsupported dtype {arr.dtype} "
                            f"(expected one of {sorted(str(d) for d in _SUPPORTED)})")
        name = str(len(arrays)) if name is None else name
        arrays[name] = arr if arr.flags.c_contiguous else arr.copy(order="C")
        node = {"tensor": name}   # NumPy arrays come back as Tensors (of the same dtype)
        if isinstance(obj, Tensor) and obj.requires_grad:
            node["requires_grad"] = True
        if isinstance(obj, Parameter):
            node["parameter"] = True   # comes back a Parameter, as torch.load gives one
        return node
    if isinstance(obj, Mapping):
        items = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, (bool, int, float, str))):
                raise TypeError(f"{where}: dict keys must be str, int, float, bool or None, "
                                f"got {type(k).__name__} ({k!r})")
            items.append([k, _encode(v, f"{where}[{k!r}]", arrays)])
        return {"odict" if isinstance(obj, OrderedDict) else "dict": items}
    if isinstance(obj, (list, tuple)):
        values = [_encode(v, f"{where}[{i}]", arrays) for i, v in enumerate(obj)]
        return {"tuple" if isinstance(obj, tuple) else "list": values}
    raise TypeError(f"{where}: cannot save a {type(obj).__name__}; expected {_ALLOWED}")


def _decode(node, where: str, arrays: Mapping[str, np.ndarray]):
    from .tensor import Tensor

    def bad(why):
        return CheckpointError(f"{where}: malformed checkpoint structure ({why})")

    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        raise bad("a bare JSON list")
    if not isinstance(node, dict) or len(node) not in (1, 2, 3):
        raise bad(f"expected a tagged object, got {type(node).__name__}")
    tag = next(iter(node))
    body = node[tag]
    if tag == "tensor":
        if not isinstance(body, str) or body not in arrays:
            raise bad(f"tensor entry {body!r} is not in the file")
        arr = arrays[body]
        if set(node) - {"tensor", "requires_grad", "parameter"}:
            raise bad(f"unexpected keys {sorted(node)}")
        requires_grad = node.get("requires_grad", False) is True and arr.dtype.kind == "f"
        if node.get("parameter", False) is True and arr.dtype in _FLOAT_DTYPES:
            from .nn.module import Parameter
            return Parameter(arr, requires_grad=requires_grad)
        return Tensor._wrap(arr, requires_grad=requires_grad)
    if len(node) != 1:
        raise bad(f"unexpected keys {sorted(node)}")
    if tag == "float":
        if body not in ("nan", "inf", "-inf"):
            raise bad(f"float {body!r}")
        return float(body)
    if tag in ("list", "tuple"):
        if not isinstance(body, list):
            raise bad(f"{tag} body is a {type(body).__name__}")
        values = [_decode(v, f"{where}[{i}]", arrays) for i, v in enumerate(body)]
        return tuple(values) if tag == "tuple" else values
    if tag in ("dict", "odict"):
        if not isinstance(body, list) or not all(isinstance(kv, list) and len(kv) == 2 for kv in body):
            raise bad(f"{tag} body must be a list of [key, value] pairs")
        out = OrderedDict() if tag == "odict" else {}
        for k, v in body:
            if not (k is None or isinstance(k, (bool, int, float, str))):
                raise bad(f"dict key {k!r}")
            out[k] = _decode(v, f"{where}[{k!r}]", arrays)
        return out
    raise bad(f"unknown tag {tag!r}")


def _is_flat_tensor_dict(obj) -> bool:
    from .tensor import Tensor
    return (isinstance(obj, Mapping) and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, (Tensor, np.ndarray)) for v in obj.values()))


# --------------------------------------------------------------------------- public API
def save(obj, f, metadata: Optional[Mapping[str, str]] = None) -> None:
    """Save `obj` to `f` (a path, written atomically, or a binary file object).

    `obj` is any nesting of dicts, lists and tuples of Tensors, NumPy arrays, numbers, strings,
    bools and None: a model's state_dict, an optimizer's, an epoch counter. A flat dict
    name -> tensor is stored with its names as the safetensors entries, so any safetensors
    reader sees the weights. `metadata` is an optional str -> str mapping kept in the header.

    >>> import lamina
    >>> model = lamina.nn.Linear(2, 1)
    >>> save({"model": model.state_dict(), "epoch": 4}, "/tmp/ck.lamina")     # doctest: +SKIP
    """
    meta: Dict[str, str] = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"metadata: keys and values must be str, got {k!r}: {type(v).__name__}")
        if k in _RESERVED:
            raise ValueError(f"metadata: key {k!r} is reserved")
        meta[k] = v
    arrays: "OrderedDict[str, np.ndarray]" = OrderedDict()
    if _is_flat_tensor_dict(obj):   # entries named by the dict's keys, in its order
        items = [[k, _encode(v, f"obj[{k!r}]", arrays, name=k)] for k, v in obj.items()]
        node = {"odict" if isinstance(obj, OrderedDict) else "dict": items}
        meta[_ORDER_KEY] = json.dumps(list(arrays))
    else:
        node = _encode(obj, "obj", arrays)
    meta[_STRUCTURE_KEY] = json.dumps(node, allow_nan=False)
    data = _safetensors_bytes(arrays, meta)
    if hasattr(f, "write"):
        f.write(data)
    else:
        atomic_write_bytes(f, data)


def _read_bytes(f) -> Tuple[bytes, str]:
    if hasattr(f, "read"):
        data = f.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"f: expected a binary file object, got one returning {type(data).__name__}")
        return bytes(data), getattr(f, "name", type(f).__name__)
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"f: expected a path or a binary file object, got {type(f).__name__}")
    return Path(f).read_bytes(), str(f)


def _check_map_location(map_location) -> None:
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return
    name = str(map_location)
    if name != "cpu" and not name.startswith("cpu:"):
        raise ValueError(f"map_location: lamina has only the CPU; expected None or 'cpu', got {map_location!r}")


def _to_tensors(arrays: "OrderedDict[str, np.ndarray]") -> "OrderedDict[str, object]":
    from .tensor import Tensor
    return OrderedDict((k, Tensor._wrap(a)) for k, a in arrays.items())


def load(f, map_location=None, weights_only=True):
    """Load a checkpoint: lamina's own files, PyTorch's `torch.save` zip files, `.safetensors`.

    Returns what was saved (dicts, lists, tuples, numbers, strings; Tensors for tensors and
    NumPy arrays alike); a plain
    safetensors file gives an OrderedDict name -> Tensor. Loading never runs code from the file:
    PyTorch files go through a restricted unpickler whatever `weights_only` says, and a bare
    pickle is refused. Tensors keep their stored dtype; bfloat16 entries become float32
    (exactly). `map_location` may only name the CPU.

    >>> sd = load("lenet.pt")                   # doctest: +SKIP
    >>> model.load_state_dict(sd)               # doctest: +SKIP
    """
    _check_map_location(map_location)
    raw, where = _read_bytes(f)
    if raw[:4] == b"PK\x03\x04":
        return load_torch_zip(raw, where)
    if raw[:1] == b"\x80" and len(raw) > 1 and raw[1:2] in b"\x02\x03\x04\x05":
        raise CheckpointError(f"{where}: a bare pickle file is refused (unpickling can run any code); "
                              "lamina reads its own checkpoints, safetensors, and torch.save's zip format")
    arrays, meta = _parse_safetensors(raw, where)
    structure = meta.get(_STRUCTURE_KEY)
    if structure is None:
        return _to_tensors(_ordered(arrays, meta.get(_ORDER_KEY), where))
    try:
        node = json.loads(structure)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{where}: malformed checkpoint structure ({_STRUCTURE_KEY} is not JSON: {e})") from None
    if not isinstance(node, (dict, str, int, float, bool)) and node is not None:
        raise CheckpointError(f"{where}: malformed checkpoint structure (top level is a JSON {type(node).__name__})")
    return _decode(node, where, arrays)


def _ordered(arrays, order, where) -> "OrderedDict[str, np.ndarray]":
    if order is None:
        return arrays
    try:
        keys = json.loads(order)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{where}: malformed metadata ({_ORDER_KEY} is not JSON: {e})") from None
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(arrays) or len(set(keys)) != len(keys):
        raise CheckpointError(f"{where}: malformed metadata ({_ORDER_KEY} does not list the file's entries)")
    return OrderedDict((k, arrays[k]) for k in keys)


def _read(path) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, str]]:
    raw, where = _read_bytes(path)
    arrays, meta = _parse_safetensors(raw, where)
    arrays = _ordered(arrays, meta.pop(_ORDER_KEY, None), where)
    meta.pop(_STRUCTURE_KEY, None)
    return arrays, meta


def load_arrays(path) -> "OrderedDict[str, np.ndarray]":
    """The entries of a safetensors checkpoint as NumPy arrays (saved order)."""
    return _read(path)[0]


def load_metadata(path) -> Dict[str, str]:
    """The str -> str metadata stored by `save(..., metadata=...)`."""
    return _read(path)[1]

