"""`lamina.accelerator`: PyTorch's device-agnostic query; lamina has no accelerator.

>>> import lamina
>>> lamina.accelerator.is_available(), lamina.accelerator.current_accelerator()
(False, None)
"""


def is_available() -> bool:
    return False


def current_accelerator(check_available: bool = False):
    return None


def device_count() -> int:
    return 0
