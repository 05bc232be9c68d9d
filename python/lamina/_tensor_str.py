"""How a tensor prints: PyTorch's layout and number format, so a script that prints tensors
prints the same digits on lamina as on PyTorch.

The rules, as PyTorch documents and prints them: floats get 4 digits after the point
(`precision`), in fixed point unless the nonzero finite magnitudes span more than 1000x, exceed
1e8, or (for non-integers) go below 1e-4, when every element is printed in scientific notation;
a float tensor whose finite values are all integers prints them as "3." (or scientific past
the same bounds). Every element is padded to the widest one; rows wrap at `linewidth`; a tensor
of more than `threshold` elements prints `edgeitems` at each end of every dimension.
"""
from __future__ import annotations

import math

import numpy as np

_DEFAULTS = dict(precision=4, threshold=1000, edgeitems=3, linewidth=80, sci_mode=None)
_PROFILES = {"default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
             "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
             "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80)}


class _PrintOptions:
    def __init__(self):
        self.__dict__.update(_DEFAULTS)


PRINT_OPTS = _PrintOptions()


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """PyTorch's `torch.set_printoptions`: `profile` ("default", "short", "full") first, then
    each option given; `sci_mode` True/False forces scientific notation on or off, None decides
    per tensor."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"profile: expected one of {sorted(_PROFILES)}, got {profile!r}")
        PRINT_OPTS.__dict__.update(_PROFILES[profile])
    for name, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                        ("linewidth", linewidth)):
        if value is not None:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
            setattr(PRINT_OPTS, name, value)
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions():
    return {k: getattr(PRINT_OPTS, k) for k in _DEFAULTS}


class _Formatter:
    """The one element format (and width) of a whole tensor, from the values it will print."""

    def __init__(self, values):
        self.floating = values.dtype.kind in "fc"
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        p = PRINT_OPTS.precision
        flat = values.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(str(v)))
        else:
            vals = flat[np.isfinite(flat) & (flat != 0)]
            if vals.size:
                mags = np.abs(vals.astype(np.float64))
                lo, hi = float(mags.min()), float(mags.max())
                self.int_mode = bool(np.all(vals == np.ceil(vals)))
                forced = PRINT_OPTS.sci_mode
                self.sci_mode = (hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4) if forced is None else forced
                py = vals.astype(np.float64).tolist()
                if self.sci_mode:
                    widths = [len(f"{v:.{p}e}") for v in py]
                elif self.int_mode:    # "3.": one more for the point
                    widths = [len(f"{v:.0f}") + 1 for v in py]
                else:
                    widths = [len(f"{v:.{p}f}") for v in py]
                self.max_width = max(self.max_width, max(widths))

    def width(self):
        return self.max_width

    def format(self, v):
        p = PRINT_OPTS.precision
        if self.floating:
            if self.sci_mode:
                s = f"{v:{self.max_width}.{p}e}"
            elif self.int_mode:
                s = f"{v:.0f}"
                if not (math.isinf(v) or math.isnan(v)):
                    s += "."
            else:
                s = f"{v:.{p}f}"
        else:
            s = str(v)
        return (self.max_width - len(s)) * " " + s


def _edges(a, summarize):
    """The values that will print: every one, or `edgeitems` at each end of each dimension."""
    e = PRINT_OPTS.edgeitems
    if a.ndim == 0 or not summarize:
        return a
    if a.ndim == 1:
        return np.concatenate([a[:e], a[-e:]]) if a.shape[0] > 2 * e else a
    if a.shape[0] > 2 * e:
        return np.stack([_edges(a[i], summarize) for i in list(range(e)) + list(range(a.shape[0] - e, a.shape[0]))])
    return np.stack([_edges(x, summarize) for x in a])


def _vector(a, indent, summarize, fmt):
    e = PRINT_OPTS.edgeitems
    per_line = max(1, int(math.floor((PRINT_OPTS.linewidth - indent) / (fmt.width() + 2))))
    vals = a.tolist()
    if summarize and a.shape[0] > 2 * e:
        data = [fmt.format(v) for v in vals[:e]] + [" ..."] + [fmt.format(v) for v in vals[-e:]]
    else:
        data = [fmt.format(v) for v in vals]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(a, indent, summarize, fmt):
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector(a, indent, summarize, fmt)
    e = PRINT_OPTS.edgeitems
    if summarize and a.shape[0] > 2 * e:
        rows = [_nested(a[i], indent + 1, summarize, fmt) for i in range(e)] + ["..."] + \
               [_nested(a[i], indent + 1, summarize, fmt) for i in range(a.shape[0] - e, a.shape[0])]
    else:
        rows = [_nested(a[i], indent + 1, summarize, fmt) for i in range(a.shape[0])]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def array_str(a, indent):
    """The bracketed body of `tensor(...)` for the array `a`, continuation lines indented."""
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    summarize = a.size > PRINT_OPTS.threshold
    fmt = _Formatter(_edges(a, summarize))
    return _nested(a, indent, summarize, fmt)


def add_suffixes(text, suffixes, indent):
    """`, dtype=...`, `, grad_fn=...` after the body; one that would pass `linewidth` starts a line."""
    last = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > PRINT_OPTS.linewidth:
            text += ",\n" + " " * indent + s
            last = indent + len(s)
        else:
            text += ", " + s
            last += len(s) + 2
    return text + ")"
