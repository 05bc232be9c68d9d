"""DLPack both ways: lamina tensors as producers (`Tensor.__dlpack__`) and `from_dlpack`.

The capsules themselves are built and consumed in C++ (csrc/bindings/bind_dlpack.cpp); this
module holds the protocol's argument rules.

>>> import numpy as np, lamina
>>> t = lamina.tensor([1.0, 2.0])
>>> a = np.from_dlpack(t); a[0] = 5.0      # shares memory
>>> t.tolist()
[5.0, 2.0]
"""
from __future__ import annotations

import warnings

import numpy as np

from . import _C

__all__ = ["import_array", "export_capsule", "CPU_DEVICE"]

CPU_DEVICE = (1, 0)   # (kDLCPU, device 0): the only device lamina has
_LAMINA_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.uint8, np.int8, np.int16, np.int32,
                                               np.int64, np.bool_))


class RequiresGradExportError(RuntimeError, BufferError):
    """__dlpack__ of a tensor that requires grad: the BufferError that DLPack consumers expect
    (PyTorch raises one) and a RuntimeError, as lamina raised before."""


def export_capsule(array, requires_grad, *, stream=None, max_version=None, dl_device=None, copy=None):
    """The capsule behind `Tensor.__dlpack__` (arguments as in the array API standard)."""
    if stream is not None:
        raise ValueError(f"stream: lamina tensors live on the CPU, which has no streams; expected None, got {stream!r}")
    if dl_device is not None and tuple(dl_device) != CPU_DEVICE:
        raise BufferError(f"dl_device: lamina can only export to the CPU {CPU_DEVICE}, got {tuple(dl_device)}")
    if copy is not None and not isinstance(copy, bool):
        raise TypeError(f"copy: expected True, False or None, got {copy!r}")
    if requires_grad:
        raise RequiresGradExportError("__dlpack__: can't export a tensor that requires grad; use tensor.detach() first")
    versioned = max_version is not None and tuple(max_version) >= (1, 0)
    read_only = not array.flags.writeable
    if copy:
        array = np.array(array, copy=True)
        read_only = False
    return _C.dlpack_export(array, versioned, read_only, bool(copy))


def _capsule_from(obj):
    """A DLPack capsule from a producer, asking for DLPack 1.0 and falling back to legacy."""
    if type(obj).__name__ == "PyCapsule":
        return obj
    if not hasattr(obj, "__dlpack__"):
        raise TypeError(f"obj: expected an object with __dlpack__ (a NumPy array, a PyTorch tensor, ...) "
                        f"or a DLPack capsule, got {type(obj).__name__}")
    if hasattr(obj, "__dlpack_device__"):
        device = tuple(int(v) for v in obj.__dlpack_device__())
        if device[0] not in (1, 3, 13):     # CPU, CUDA host (pinned), CUDA managed
            raise BufferError(f"obj: expected a tensor on the CPU (DLPack device type 1), got device {device}")
    try:
        return obj.__dlpack__(max_version=(1, 0))
    except TypeError:                        # a producer from before DLPack 1.0
        return obj.__dlpack__()


def import_array(obj) -> np.ndarray:
    """The NumPy array behind `lamina.from_dlpack(obj)` (see factory.from_dlpack)."""
    array, read_only = _C.dlpack_import(_capsule_from(obj))
    if array.dtype not in _LAMINA_DTYPES:
        raise TypeError(f"obj: dtype {array.dtype} is not a lamina dtype (float32, float64, uint8, int8, int16, "
                        "int32, int64, bool); "
                        f"convert it before from_dlpack (e.g. tensor.float() in PyTorch)")
    if read_only:
        array.flags.writeable = False
    if not array.flags.c_contiguous:
        warnings.warn(f"from_dlpack: input with shape {array.shape} and strides {array.strides} is not "
                      "C-contiguous; lamina copied it (the tensor does not share memory with obj)",
                      stacklevel=3)
        array = np.ascontiguousarray(array) if array.ndim else array.copy()
    return array
