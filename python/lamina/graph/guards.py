"""Guards of a compiled plan: what its trace assumed about the model, checked before every call.

A plan is valid while, for every module of the model:
  - its `training` flag is the traced one (part of the plan-cache key, so train/eval keep a plan each);
  - every parameter and buffer is the same Tensor object, over the same array (so the same shape
    and dtype), with the same `requires_grad`;
  - every submodule is the same object;
  - every plain attribute the forward may read -- Python scalars, strings, tuples of them, Tensors
    and arrays -- is the traced one (a float changed by the user re-traces).
A failed guard drops the plan and the call traces again (one eager step, as the first call did).
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor

_SCALARS = (bool, int, float, str, type(None))
_MISSING = object()


def _is_plain(v):
    if isinstance(v, _SCALARS):
        return True
    return isinstance(v, tuple) and len(v) <= 8 and all(isinstance(e, _SCALARS) for e in v)


def modules_of(model):
    mods = getattr(model, "modules", None)
    return list(mods()) if callable(mods) else []


def training_flags(modules):
    return tuple([m.__dict__.get("training", True) for m in modules])


class ModelGuards:
    """Snapshot of the model at trace time; `check()` is True while it still holds."""

    def __init__(self, modules):
        self.values = []      # (dict, name, value): scalars compare by value, objects by identity
        self.tensors = []     # (dict, name, Tensor, array, requires_grad)
        self.objects = []     # (dict, name, object): submodules, by identity
        for m in modules:
            d = m.__dict__
            for name, v in d.items():
                if name in ("_parameters", "_buffers", "_modules", "training"):
                    continue
                if _is_plain(v):
                    self.values.append((d, name, v))
                elif isinstance(v, Tensor):
                    self.tensors.append((d, name, v, v._data, v.requires_grad))
                elif isinstance(v, np.ndarray):
                    self.objects.append((d, name, v))
            for key in ("_parameters", "_buffers"):
                for name, t in d.get(key, {}).items():
                    if isinstance(t, Tensor):
                        self.tensors.append((d[key], name, t, t._data, t.requires_grad))
                    else:
                        self.objects.append((d[key], name, t))
            for name, sub in d.get("_modules", {}).items():
                self.objects.append((d["_modules"], name, sub))

    def check(self):
        for d, name, v in self.values:
            cur = d.get(name, _MISSING)
            if cur is not v and (type(cur) is not type(v) or cur != v):
                return False
        for d, name, t, arr, rg in self.tensors:
            if d.get(name) is not t or t._data is not arr or t.requires_grad != rg:
                return False
        for d, name, obj in self.objects:
            if d.get(name, _MISSING) is not obj:
                return False
        return True

    def __len__(self):
        return len(self.values) + len(self.tensors) + len(self.objects)
