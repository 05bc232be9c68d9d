"""The op registry: one record per op, read by eager autodiff, the graph compiler and the tests.

An op is a `Function` subclass (forward and eager backward rule side by side) registered with
`@register(...)` in its family module (`ops/arith.py`, `ops/linalg.py`, ...). The record says
everything else the rest of lamina needs to know about it:

  name         the op's name (errors, graph dumps, the OpInfo test ids)
  function     the Function class: forward + eager backward
  lower        forward emitter `lower(L, fn) -> bool`: append graph nodes for one recorded
               call, or return False to leave it to a Python callback (the eager forward)
  backward     the op's one backward rule `rule(k, saved, dy, out)` (ops/_common.py): eager
               autodiff runs it on the `_C` kernels (`register` makes it the Function's
               backward), the compiler on its node recorder (graph/lower.py RuleKernels);
               an op without one keeps its Function.backward, which the compiled graph runs
               as a Python callback
  kernels      the native kernels (`_C` functions) its forward and backward call
  dtypes       the dtypes its samples are run in by tests/test_opinfo.py
  call         the public entry taking Tensors (`lambda x: x.exp()`), used by the test
  samples      `samples(dtype) -> [Sample]`: inputs the test runs (forward vs NumPy/PyTorch,
               gradients vs float64 finite differences, compiled vs eager)
  bad_samples  `bad_samples() -> [BadSample]`: inputs that must raise the op's own error
  reference    NumPy reference `reference(*arrays, **kwargs) -> ndarray`
  torch        PyTorch reference `torch(torch_module, *tensors, **kwargs)` (None: not compared)
  traits       what graph passes may do with it, e.g. {"epilogue": (get_act, set_act, where)}:
               a following relu/sigmoid/tanh can be folded into its output (an optional 4th
               entry narrows which: batch norm folds relu only)

The compiler looks ops up by class (`of(cls)`), never by class-name strings; the Tensor methods
reach ops through `api`, a namespace the family modules fill, so tensor.py never imports ops.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from ..tensor import _api as api
from ._common import eager_backward


@dataclass
class Sample:
    """One set of inputs for an op: `args` (ndarrays become Tensors in the test), `kwargs`.
    `grad`: check gradients (False for non-differentiable inputs or kinked points);
    `compile`: check compiled == eager bit for bit."""
    args: Tuple[Any, ...]
    kwargs: Dict[str, Any] = field(default_factory=dict)
    grad: bool = True
    compile: bool = True
    name: str = ""


@dataclass
class BadSample:
    """Inputs that must raise `error` (the op's own ValueError/TypeError/IndexError) whose
    message contains `match`."""
    args: Tuple[Any, ...]
    kwargs: Dict[str, Any] = field(default_factory=dict)
    error: type = ValueError
    match: str = ""


@dataclass
class OpInfo:
    name: str
    function: type
    lower: Optional[Callable] = None
    backward: Optional[Callable] = None
    kernels: Sequence[str] = ()
    dtypes: Sequence[Any] = ()
    call: Optional[Callable] = None
    samples: Optional[Callable] = None
    bad_samples: Optional[Callable] = None
    reference: Optional[Callable] = None
    torch: Optional[Callable] = None
    traits: Dict[str, Any] = field(default_factory=dict)

    def __repr__(self):
        return f"OpInfo({self.name})"


_BY_NAME: Dict[str, OpInfo] = {}
_BY_FUNCTION: Dict[type, OpInfo] = {}

# api: the public entry points the Tensor methods call (api.Add, api.matmul, ...), filled here.


def register(name=None, **info):
    """Class decorator: register a Function subclass as op `name` (default: the class name).

    >>> import numpy as np
    >>> from lamina.autograd import Function
    >>> from lamina.ops.registry import register, of
    >>> @register("square_demo", dtypes=(np.float64,))
    ... class SquareDemo(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, dy):
    ...         (x,) = ctx.saved_tensors
    ...         return (2 * x * dy,)
    >>> of(SquareDemo).name
    'square_demo'
    >>> unregister("square_demo")
    """
    def deco(cls):
        op = OpInfo(name or cls.__name__, cls, **info)
        if op.name in _BY_NAME and _BY_NAME[op.name].function is not cls:
            raise ValueError(f"register: op {op.name!r} is already registered "
                             f"(by {_BY_NAME[op.name].function.__qualname__})")
        if op.backward is not None:
            if "backward" in vars(cls):
                raise ValueError(f"register: op {op.name!r} has a backward rule; {cls.__qualname__} "
                                 "must not define backward too")
            cls.backward = eager_backward(op.backward)
        _BY_NAME[op.name] = op
        _BY_FUNCTION[cls] = op
        setattr(api, cls.__name__, cls)
        return cls
    return deco


def unregister(name):
    op = _BY_NAME.pop(name)
    _BY_FUNCTION.pop(op.function, None)


def export(fn):
    """Function decorator: make a public helper (matmul, softmax, ...) reachable as api.<name>."""
    setattr(api, fn.__name__, fn)
    return fn


def of(cls) -> Optional[OpInfo]:
    """The registered op of a Function class, or None (an unregistered user Function)."""
    return _BY_FUNCTION.get(cls)


def get(name) -> OpInfo:
    op = _BY_NAME.get(name)
    if op is None:
        raise KeyError(f"no op named {name!r}; registered: {sorted(_BY_NAME)}")
    return op


def all_ops():
    """Every registered op, in registration order."""
    return list(_BY_NAME.values())


__all__ = ["Sample", "BadSample", "OpInfo", "register", "unregister", "export", "of", "get",
           "all_ops", "api"]
