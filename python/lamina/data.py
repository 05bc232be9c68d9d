"""`lamina.data`: the same module as `lamina.utils.data` (an alias kept for existing code).

>>> import lamina
>>> lamina.data is lamina.utils.data
True
"""
import sys as _sys

from .utils import data as _data

_sys.modules[__name__] = _data
