"""`lamina.cuda`: present so PyTorch scripts can ask; lamina has no CUDA devices.

>>> import lamina
>>> lamina.cuda.is_available(), lamina.cuda.device_count()
(False, 0)
"""


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def manual_seed(seed) -> None:
    """No CUDA generators to seed (PyTorch also silently ignores this without CUDA)."""


def manual_seed_all(seed) -> None:
    """No CUDA generators to seed."""


def _unavailable(*args, **kwargs):
    raise RuntimeError("lamina.cuda: CUDA is not available: lamina runs on the CPU only")


current_device = _unavailable
set_device = _unavailable
get_device_name = _unavailable


def synchronize(device=None) -> None:
    """Nothing to wait for: CPU work is synchronous."""


class amp:
    """`lamina.cuda.amp.autocast / GradScaler`: without CUDA both disable themselves with
    PyTorch's warning (so `GradScaler(enabled=use_amp)` scripts run on the CPU unchanged)."""

    @staticmethod
    def autocast(enabled=True, dtype=None, cache_enabled=True):
        from .amp import autocast
        return autocast("cuda", dtype=dtype, enabled=enabled)

    @staticmethod
    def GradScaler(init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000, enabled=True):
        from .amp import GradScaler
        return GradScaler("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
