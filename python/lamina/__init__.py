"""lamina: a neural-network engine whose hot paths are compiled C++ kernels.

>>> import lamina
>>> x = lamina.tensor([1.0, 2.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad.tolist()
[2.0, 4.0]
"""
import builtins as _builtins
import os as _os

# Threads that wait for work spin briefly (~10 us) then sleep, instead of spinning for ms:
# on a shared machine a spinning thread waiting on a descheduled peer wastes the core it
# needs. Set before libgomp loads with _C; a user's own setting wins.
_os.environ.setdefault("GOMP_SPINCOUNT", "20000")

from . import _C  # noqa: E402
from .tensor import (Tensor, bool_, enable_grad, float32, float64, get_default_dtype,  # noqa: E402,F401
                     int8, int16, int32, int64, is_grad_enabled, no_grad, set_default_dtype, uint8)
from .tensor import Size, inference_mode, set_grad_enabled  # noqa: E402,F401
from .tensor import (BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, IntTensor,  # noqa: E402,F401
                     LongTensor, ShortTensor)
from ._tensor_str import get_printoptions, set_printoptions  # noqa: E402,F401
from . import _inplace  # noqa: E402,F401  (views and in-place writes for Tensor methods)
from .factory import (arange, as_tensor, empty, eye, from_dlpack, from_numpy, full, full_like,  # noqa: E402,F401
                      bernoulli, linspace, multinomial, normal, ones, ones_like, rand, randint, randn, randperm, tensor,
                      zeros, zeros_like)
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state  # noqa: E402,F401
from ._device import device, get_default_device, set_default_device  # noqa: E402,F401
from . import linalg  # noqa: E402,F401  (torch.linalg.vector_norm, norm)
from .ops import cat, matmul, stack  # noqa: E402,F401
from .functions import *  # noqa: E402,F401,F403  (sin, pow, topk, gather, ...: PyTorch's top-level functions)
from .functions import _install_methods  # noqa: E402

_install_methods()
from . import autograd, nn, optim, models  # noqa: E402,F401
from ._torch_nn import *  # noqa: E402,F401,F403  (torch.conv2d, torch.batch_norm, ...: ATen's signatures)
from . import accelerator, amp, backends, cuda, jit, utils, data, datasets, distributed, onnx, transforms, signal, viz  # noqa: E402,F401
from . import distributions  # noqa: E402,F401
from .amp import autocast  # noqa: E402,F401
from . import multiprocessing, testing  # noqa: E402,F401
from .serialization import load, save  # noqa: E402,F401
from ._dtype_info import (are_deterministic_algorithms_enabled, can_cast, finfo, iinfo,  # noqa: E402,F401
                          is_deterministic_algorithms_warn_only_enabled, is_inference_mode_enabled, promote_types,
                          result_type, use_deterministic_algorithms)
from .summary import Summary, summary  # noqa: E402,F401
from .graph import compile  # noqa: E402,F401  (capture a training step once, replay it)

__version__ = _C.__version__

float = float32  # noqa: A001  (PyTorch aliases)
double = float64
long = int64
int = int32  # noqa: A001
short = int16
bool = bool_  # noqa: A001


def get_num_threads():
    """Threads lamina's kernels use (separate from NumPy's BLAS threads)."""
    return _C.get_num_threads()


def set_num_threads(n):
    """Set the threads lamina's kernels may use; each kernel still uses fewer when the work is
    too small to pay for a fork/join. Does not touch NumPy's or PyTorch's own thread pools."""
    _C.set_num_threads(_builtins.int(n))


def show_config(file=None):
    """Print version, compiler, the ISA path chosen at run time and the thread count."""
    import platform
    import sys

    import numpy as np
    lines = [
        f"lamina {__version__}",
        f"  compiler:    {_C.compiler}",
        f"  isa:         {_C.isa()} (cpu avx2+fma: {_C.cpu_supports_avx2_fma()}, avx512f: {_C.cpu_supports_avx512()};"
        " LAMINA_ISA=avx2 or portable caps it)",
        f"  threads:     {_C.get_num_threads()} (OpenMP; GOMP_SPINCOUNT={_os.environ.get('GOMP_SPINCOUNT')})",
        f"  malloc:      {'freed buffers kept for reuse' if _C.malloc_tuned else 'system default'}"
        " (LAMINA_MALLOC_TUNING=0 to leave it)",
        f"  python:      {platform.python_version()} on {platform.machine()}",
        f"  numpy:       {np.__version__}",
    ]
    text = "\n".join(lines)
    print(text, file=file or sys.stdout)
    return text

from . import _out as _out_module  # noqa: E402

_out_module.install(globals())  # out= on the top-level functions, as PyTorch's take it
