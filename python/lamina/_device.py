"""Devices as PyTorch names them. lamina computes on the CPU only: `device("cuda")` can be
written (so `device = "cuda" if cuda.is_available() else "cpu"` scripts run), but placing a
tensor or module on any non-CPU device raises a RuntimeError that names the device.

>>> import lamina
>>> lamina.device("cpu"), str(lamina.zeros(2, device="cpu").device)
(device(type='cpu'), 'cpu')
"""
from __future__ import annotations

import numpy as np

__all__ = ["device", "set_default_device", "get_default_device", "check_device", "parse_to_args"]

# PyTorch's list of device types: any other word is a typo, reported as such.
_KNOWN_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
                "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                "privateuseone")


class device:
    """A device: a type ("cpu", "cuda", ...) and an optional index.

    >>> device("cuda:1").type, device("cuda:1").index, device("cpu") == device("cpu")
    ('cuda', 1, True)
    """

    __slots__ = ("_type", "_index")

    def __init__(self, type, index=None):  # noqa: A002  (PyTorch's parameter name)
        if isinstance(type, device):
            if index is not None:
                raise ValueError("device: an index cannot be given with a device object")
            self._type, self._index = type.type, type.index
            return
        if isinstance(type, (int, np.integer)) and not isinstance(type, bool):
            type = f"cuda:{int(type)}"          # PyTorch: a bare ordinal names a CUDA device
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string like 'cpu' or a lamina.device, "
                            f"got {_type_name(type)}")
        name, _, idx = type.partition(":")
        if name not in _KNOWN_TYPES:
            raise RuntimeError(f"Expected one of {', '.join(_KNOWN_TYPES)} device type at start "
                               f"of device string: {type}")
        if idx:
            if index is not None:
                raise ValueError(f"device: {type!r} already has an index; do not pass index={index}")
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: {type!r}")
            index = int(idx)
        if index is not None:
            index = int(index)
            if index < 0:
                raise RuntimeError(f"Device index must not be negative, got {index}")
        self._type, self._index = name, index

    @property
    def type(self) -> str:
        return self._type

    @property
    def index(self):
        return self._index

    def __eq__(self, other):
        return isinstance(other, device) and (self._type, self._index) == (other._type, other._index)

    def __hash__(self):
        return hash((self._type, self._index))

    def __str__(self):
        return self._type if self._index is None else f"{self._type}:{self._index}"

    def __repr__(self):
        if self._index is None:
            return f"device(type='{self._type}')"
        return f"device(type='{self._type}', index={self._index})"

    def __reduce__(self):
        return (device, (self._type, self._index))


def _type_name(obj) -> str:
    return type(obj).__name__


CPU = device("cpu")


def check_device(dev, argname: str = "device") -> device:
    """`dev` as a CPU device; None means the default device. Any other device is an error naming it.

    >>> check_device("cpu")
    device(type='cpu')
    """
    if dev is None:
        return CPU
    d = dev if isinstance(dev, device) else device(dev)
    if d.type != "cpu":
        raise RuntimeError(f"{argname}: device '{d}' is not available: lamina runs on the CPU only "
                           f"(lamina.cuda.is_available() is False); use device='cpu'")
    return CPU


def set_default_device(dev) -> None:
    """Set the device factories use; only the CPU exists, so anything else is an error."""
    check_device(dev)


def get_default_device() -> device:
    return CPU


def _looks_like_device(arg) -> bool:
    if isinstance(arg, device):
        return True
    if isinstance(arg, str):
        return arg.partition(":")[0] in _KNOWN_TYPES
    return isinstance(arg, (int, np.integer)) and not isinstance(arg, bool)


def _is_tensor_like(obj) -> bool:
    # A Tensor (duck-typed: tensor.py imports this module): dtype and device on an instance that
    # is neither a dtype, a NumPy scalar type nor an array.
    return (hasattr(obj, "dtype") and hasattr(obj, "device")
            and not isinstance(obj, (type, np.dtype, np.ndarray, np.generic, str)))


def parse_to_args(args, kwargs):
    """The (device, dtype, copy) a `Tensor.to(...)` / `Module.to(...)` call asks for.

    Accepts PyTorch's forms: to(dtype), to(device), to(device, dtype), to(other_tensor), and the
    keywords device=, dtype=, non_blocking=, copy=. dtype is None when not asked for.

    >>> parse_to_args(("cpu", "float64"), {})
    (device(type='cpu'), dtype('float64'), False)
    """
    kwargs = dict(kwargs)
    dev = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    copy = bool(kwargs.pop("copy", False))
    if kwargs:
        raise TypeError(f"to(): unexpected keyword argument(s) {sorted(kwargs)}")
    args = list(args)
    if args and _is_tensor_like(args[0]):
        other = args.pop(0)                                   # to(other): its device and dtype
        dev, dtype = other.device, other.dtype
    elif args and _looks_like_device(args[0]):
        dev = args.pop(0)
    if args and dtype is None and not isinstance(args[0], bool):
        dtype = args.pop(0)
    if args and isinstance(args[0], bool):                    # positional non_blocking, copy
        args.pop(0)
        if args and isinstance(args[0], bool):
            copy = args.pop(0)
    if args:
        raise TypeError(f"to(): could not understand the arguments {args!r}; expected "
                        "to(dtype), to(device), to(device, dtype) or to(tensor)")
    if dev is not None:
        dev = check_device(dev, "to()")
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"to(): expected a dtype or a device, got {dtype!r}") from None
    return dev, dtype, copy
