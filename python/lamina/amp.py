"""`lamina.amp`: PyTorch's mixed-precision entry points, for scripts written with them.

lamina computes in float32 / float64 only (no float16 or bfloat16 kernels), so `autocast` changes
no dtype: disabled it does nothing, as in PyTorch; enabled it warns once that ops run at full
precision, since PyTorch would have run matmuls and convolutions in a lower one (results are
then more accurate than PyTorch's, not equal). `GradScaler` is real loss scaling with PyTorch's
schedule (scale, unscale, skip steps whose gradients overflow, grow and back off), which works
unchanged in float32.

>>> import lamina
>>> w = lamina.nn.Parameter(lamina.tensor([1.0]))
>>> opt = lamina.optim.SGD([w], lr=0.1)
>>> scaler = lamina.amp.GradScaler(init_scale=8.0)
>>> scaler.scale((w * 2).sum()).backward()
>>> w.grad.item(), scaler.step(opt), w.item()
(16.0, None, 0.800000011920929)
>>> scaler.update(); scaler.get_scale()
8.0
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from .tensor import Tensor, no_grad

__all__ = ["autocast", "GradScaler", "is_autocast_available"]

_warned = False


def is_autocast_available(device_type) -> bool:
    return str(device_type) == "cpu"


class autocast:
    """`with lamina.autocast("cpu"):` -- a context manager and decorator with PyTorch's
    signature. lamina has no reduced-precision kernels: enabled, it warns once and every op
    keeps its float32 / float64 inputs' precision."""

    def __init__(self, device_type="cpu", dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if enabled and device_type != "cpu":   # as PyTorch without that device
            warnings.warn(f"User provided device_type of '{device_type}', but {device_type.upper()} is not "
                          "available. Disabling", UserWarning, stacklevel=2)
            enabled = False
        self.device_type, self.fast_dtype, self._enabled = device_type, dtype, bool(enabled)

    def __enter__(self):
        global _warned
        if self._enabled and not _warned:
            _warned = True
            warnings.warn("lamina.autocast: lamina has no float16 / bfloat16 kernels, so autocast regions run "
                          "in full precision (results differ from PyTorch's reduced-precision ones)",
                          UserWarning, stacklevel=2)
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return run


class GradScaler:
    """Dynamic loss scaling, PyTorch's `GradScaler` with its defaults and state_dict: `scale`
    multiplies the loss by the scale; `step` unscales the gradients (unless `unscale_` already
    did), skips the optimizer step if any is inf / NaN; `update` halves the scale after a skipped
    step and doubles it after `growth_interval` clean ones."""

    def __init__(self, device="cpu", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if growth_factor <= 1.0:
            raise ValueError("The growth factor must be > 1.0.")
        if backoff_factor >= 1.0:
            raise ValueError("The backoff factor must be < 1.0.")
        if enabled and str(device) != "cpu":   # as PyTorch without that device
            warnings.warn(f"torch.{device}.amp.GradScaler is enabled, but {str(device).upper()} is not available.  "
                          "Disabling.", UserWarning, stacklevel=2)
            enabled = False
        self._enabled = bool(enabled)
        self._init_scale, self._growth_factor, self._backoff_factor = float(init_scale), float(growth_factor), float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._scale = float(init_scale)
        self._growth_tracker = 0
        self._per_optimizer = {}

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def get_growth_interval(self):
        return self._growth_interval

    def scale(self, outputs):
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"unscaled": False, "found_inf": False,
                                                             "stepped": False})

    def unscale_(self, optimizer):
        if not self._enabled:
            return
        st = self._state(optimizer)
        if st["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if st["stepped"]:
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        found = False
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad._data
                    g *= g.dtype.type(inv)
                    if not np.all(np.isfinite(g)):
                        found = True
        st["unscaled"], st["found_inf"] = True, found

    def step(self, optimizer, *args, **kwargs):
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        st = self._state(optimizer)
        if st["stepped"]:
            raise RuntimeError("step() has already been called since the last update().")
        if not st["unscaled"]:
            self.unscale_(optimizer)
        st["stepped"] = True
        if st["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale)
        elif self._per_optimizer:
            found = any(st["found_inf"] for st in self._per_optimizer.values())
            if found:
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = self._scale * self._growth_factor
                    if math.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._init_scale = self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
