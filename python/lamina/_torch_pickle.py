"""Read `torch.save` zip files without torch, through an unpickler that can build only tensors.

A torch checkpoint is a zip: `<name>/data.pkl` (a pickle of the object) and `<name>/data/<key>`
(each storage's raw bytes). Unpickling normally imports and calls whatever the pickle names; here
`find_class` answers only a short allow-list (tensor rebuilds, storage types, OrderedDict), each
mapped to lamina's own stand-in, so any other global (`os.system`, `builtins.eval`, a model
class) is refused while the pickle is being read, before anything it names can run.

>>> sd = load_torch_zip(open("lenet.pt", "rb").read(), "lenet.pt")   # doctest: +SKIP
"""
from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np



class CheckpointError(ValueError):
    """A checkpoint file that is malformed, truncated, or not a format lamina reads."""

# torch storage type -> NumPy dtype of its elements (bfloat16 is decoded to float32).
_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
}


class _StorageType:
    """Stand-in for `torch.FloatStorage` & co.: only its element dtype matters."""

    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


def _as_numpy(storage_bytes: bytes, dtype: str, big_endian: bool) -> np.ndarray:
    if dtype == "bfloat16":   # bfloat16 is the top half of a float32: widening is exact
        bits = np.frombuffer(storage_bytes, ">u2" if big_endian else "<u2").astype(np.uint32)
        return (bits << 16).view(np.float32)
    dt = np.dtype(dtype).newbyteorder(">" if big_endian else "<")
    return np.frombuffer(storage_bytes, dt).astype(np.dtype(dtype))   # native order, own memory


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                    metadata=None):
    """torch._utils._rebuild_tensor_v2, as a lamina Tensor with its own contiguous memory."""
    from .tensor import Tensor

    if not isinstance(storage, np.ndarray):
        raise CheckpointError(f"tensor rebuild: expected a storage, got {type(storage).__name__}")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise CheckpointError(f"tensor rebuild: bad size {size} / stride {stride}")
    offset = int(storage_offset)
    if any(n == 0 for n in size):
        return Tensor._wrap(np.zeros(size, storage.dtype))
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if offset < 0 or last >= storage.size:
        raise CheckpointError(f"tensor rebuild: size {size}, stride {stride} and offset {offset} "
                              f"reach past the storage's {storage.size} elements")
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=tuple(s * storage.itemsize for s in stride))
    arr = np.array(view, order="C", copy=True)
    return Tensor._wrap(arr, requires_grad=bool(requires_grad) and arr.dtype.kind == "f")


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    from .nn import Parameter
    if data.dtype not in (np.float32, np.float64):   # lamina Parameters are float32/float64
        return data
    return Parameter(data, requires_grad=bool(requires_grad))


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): lambda storage, offset, size, stride: _rebuild_tensor(storage, offset, size, stride),
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, big_endian: bool, where: str):
        super().__init__(io.BytesIO(data))
        self._archive, self._prefix, self._big_endian, self._where = archive, prefix, big_endian, where
        self._storages = {}

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"{self._where}: refused to load global {module}.{name}: lamina's reader only "
                "accepts tensors, storages and plain containers (a torch checkpoint that pickles "
                "code or whole model objects cannot be read; save model.state_dict() instead)") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"{self._where}: unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        key = str(key)
        if key not in self._storages:
            entry = f"{self._prefix}/data/{key}"
            try:
                raw = self._archive.read(entry)
            except KeyError:
                raise CheckpointError(f"{self._where}: storage {entry} is missing from the archive") from None
            itemsize = 2 if storage_type.dtype == "bfloat16" else np.dtype(storage_type.dtype).itemsize
            if len(raw) % itemsize:
                raise CheckpointError(f"{self._where}: storage {entry} has {len(raw)} bytes, "
                                      f"not a whole number of {storage_type.dtype} elements")
            arr = _as_numpy(raw, storage_type.dtype, self._big_endian)
            if arr.size < int(numel):
                raise CheckpointError(f"{self._where}: storage {entry} holds {arr.size} elements, "
                                      f"the pickle says {int(numel)}")
            self._storages[key] = arr
        return self._storages[key]


def load_torch_zip(raw: bytes, where: str):
    """The object in a torch.save zip file, with lamina Tensors for torch tensors."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        names = archive.namelist()
    except (zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{where}: not a valid torch.save zip file ({e})") from None
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointError(f"{where}: a zip file but not torch.save's format "
                              f"(expected one <name>/data.pkl, found {len(pickles)})")
    prefix = pickles[0][: -len("/data.pkl")] if "/" in pickles[0] else ""
    order_entry = f"{prefix}/byteorder" if prefix else "byteorder"
    byteorder = archive.read(order_entry).decode().strip() if order_entry in names else "little"
    if byteorder not in ("little", "big"):
        raise CheckpointError(f"{where}: unknown byteorder {byteorder!r}")
    unpickler = _RestrictedUnpickler(archive.read(pickles[0]), archive, prefix, byteorder == "big", where)
    try:
        return unpickler.load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError) as e:
        raise CheckpointError(f"{where}: malformed torch checkpoint ({type(e).__name__}: {e})") from None
