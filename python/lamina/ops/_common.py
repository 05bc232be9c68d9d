"""Helpers every op family shares: dtype checks, output allocation, the rule kernels.

A backward rule that both eager autodiff and the graph compiler run is written against a
*kernels* object `k`: `EAGER` computes with NumPy now; the compiler's recorder (graph/lower.py
`RuleKernels`) appends one graph node per call instead. So an op's compiled backward is the same
code as its eager backward and the two cannot drift.
"""
from __future__ import annotations

import numpy as np

from ..tensor import float32, float64

FLOATS = (float32, float64)


def empty(shape, dtype):
    return np.empty(shape, dtype=dtype)


def float_check(x, name, op):
    if x.dtype not in FLOATS:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {x.dtype}")


def is_float(*vs):
    """True when every value (array or graph Value) has a float32/float64 dtype."""
    return all(v.dtype in FLOATS for v in vs)


class EagerKernels:
    """The rule kernels on NumPy arrays (what eager backward runs)."""

    mul = staticmethod(np.multiply)
    div = staticmethod(np.true_divide)
    neg = staticmethod(np.negative)

    @staticmethod
    def unary(kind, x):
        return UNARY_KERNELS[kind](x)


# The one definition of each unary kernel: eager forward (ops/arith.py), the eager backward rules
# and the graph executor all call these. NumPy's exp/log/sin/cos are its SIMD loops (several
# times faster than the C library's scalar ones), and other implementations differ by an ulp, so
# the compiler never lowers them to a C++ node: they run this code as Python callbacks.
UNARY_KERNELS = {"neg": np.negative, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos,
                 "abs": np.abs, "sign": np.sign}
# Kinds every implementation computes exactly (no rounding), so the C++ `unary` node may run them.
EXACT_UNARY = ("neg", "abs", "sign")

EAGER = EagerKernels()
