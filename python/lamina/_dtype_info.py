"""torch.finfo / iinfo / promote_types / result_type / can_cast and the determinism switches,
over lamina's dtypes (which are NumPy's)."""
import numpy as np

from . import _promotion
from .tensor import Tensor, get_default_dtype

_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


class finfo:
    """Machine limits of a float dtype, PyTorch's names (Python floats, as torch.finfo gives):
    bits, eps, max, min, tiny (= smallest_normal), resolution, dtype.

    >>> import lamina
    >>> lamina.finfo(lamina.float32).eps
    1.1920928955078125e-07
    """

    def __init__(self, type=None):
        dt = np.dtype(type) if type is not None else get_default_dtype()
        if dt.kind != "f":
            raise TypeError(f"finfo: expected a floating-point dtype, got {dt}")
        f = np.finfo(dt)
        self.bits, self.eps, self.max, self.min = int(f.bits), float(f.eps), float(f.max), float(f.min)
        self.tiny = self.smallest_normal = float(f.tiny)
        self.resolution = 10.0 ** -int(f.precision)  # exact, as PyTorch gives it (1e-06, not float32(1e-06))
        self.dtype = _NAMES.get(dt, str(dt))

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype: bits, min, max, dtype (Python ints)."""

    def __init__(self, type):
        dt = np.dtype(type)
        if dt.kind not in "iub":
            raise TypeError(f"iinfo: expected an integer dtype, got {dt}")
        if dt.kind == "b":
            self.bits, self.min, self.max = 8, 0, 1
        else:
            i = np.iinfo(dt)
            self.bits, self.min, self.max = int(i.bits), int(i.min), int(i.max)
        self.dtype = str(dt)

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def promote_types(type1, type2):
    """The dtype both promote to (PyTorch's rules: a float beats any integer, bool is lowest)."""
    return _promotion._promote_pair(np.dtype(type1), np.dtype(type2))


def result_type(tensor1, tensor2):
    """The dtype of a binary op on these Tensors or Python numbers (0-d tensors and numbers
    take part only by category, as in PyTorch)."""
    return _promotion.result_type([tensor1, tensor2], get_default_dtype())


def can_cast(from_, to):
    """Whether PyTorch's type promotion allows casting from_ to `to` (no float -> integer, no
    number -> bool)."""
    return _promotion.category(np.dtype(from_)) <= _promotion.category(np.dtype(to))


_deterministic = {"on": False, "warn_only": False}


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Recorded for are_deterministic_algorithms_enabled(). lamina's kernels are deterministic
    already: the same inputs and thread count give the same bits, so there is nothing to switch."""
    _deterministic["on"], _deterministic["warn_only"] = bool(mode), bool(warn_only)


def are_deterministic_algorithms_enabled():
    return _deterministic["on"]


def is_deterministic_algorithms_warn_only_enabled():
    return _deterministic["warn_only"]


def is_inference_mode_enabled():
    from .tensor import _grad_mode
    return bool(getattr(_grad_mode, "inference", False))


def is_tensor(obj):
    return isinstance(obj, Tensor)
