"""`lamina.jit`: PyTorch's TorchScript entry points for scripts that call them. lamina has no
TorchScript: `script` and `trace` return the module or function itself (so calling it computes
exactly what the eager one does; lamina's own compiler is `lamina.compile`), the decorators
pass their function through, and saving or loading TorchScript files raises.

>>> import lamina
>>> m = lamina.nn.Linear(2, 1)
>>> lamina.jit.script(m) is m, lamina.jit.is_scripting()
(True, False)
"""
from __future__ import annotations

from typing import Final  # noqa: F401  (torch.jit.Final)

__all__ = ["script", "trace", "trace_module", "ignore", "unused", "export", "is_scripting", "is_tracing",
           "save", "load", "freeze", "optimize_for_inference", "Final"]


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """The module or function itself: it runs as eager lamina code."""
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    """The module or function itself (after one call on example_inputs, as PyTorch traces)."""
    if example_inputs is not None:
        func(*example_inputs) if isinstance(example_inputs, tuple) else func(example_inputs)
    return func


def trace_module(mod, inputs, *args, **kwargs):
    return mod


def freeze(mod, preserved_attrs=None, optimize_numerics=True):
    return mod


def optimize_for_inference(mod, other_methods=None):
    return mod


def ignore(drop=False, **kwargs):
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    return fn


def export(fn):
    return fn


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


def save(m, f, _extra_files=None):
    raise NotImplementedError("lamina.jit.save: lamina has no TorchScript; save the state_dict with lamina.save, "
                              "or export the model with lamina.onnx.export")


def load(f, map_location=None, _extra_files=None):
    raise NotImplementedError("lamina.jit.load: lamina cannot read TorchScript archives; load a state_dict "
                              "saved by torch.save with lamina.load")
