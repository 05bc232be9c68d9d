"""lamina: a neural-network engine whose hot paths are compiled C++ kernels."""
import os as _os

# Threads that wait for work spin briefly (~10 us) then sleep, instead of spinning for ms:
# on a shared machine a spinning thread waiting on a descheduled peer wastes the core it
# needs. Set before libgomp loads with _C; a user's own setting wins.
_os.environ.setdefault("GOMP_SPINCOUNT", "20000")

from . import _C  # noqa: E402

__version__ = _C.__version__
