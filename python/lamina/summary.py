"""Size of a network, counted the lecture's way: units, connections, weights (and biases).

`summary(model, input_shape)` runs one forward pass on a batch of one and records every leaf
layer's input and output shapes, then counts per layer (lecture, "Size of a Conv Net"):

- **units**: the activations a layer computes (its output size). Parameter-free elementwise
  and reshape layers (ReLU, Sigmoid, Tanh, Dropout, Flatten, Identity, Softmax...) apply the
  nonlinearity to units an earlier layer already counted, so they are listed with 0 units,
  connections and weights; the totals then equal the lecture's sum over C/S/F layers.
- **connections**: links from a real input unit to a unit. A conv unit connects to the
  in-bounds taps of its receptive field in its group's input channels, a pooling unit to
  the in-bounds inputs of its window; a padded zero is not a unit, so it is not counted.
- **weights**: free parameters excluding biases (a weight shared by two layers is counted
  once, on its first use); **biases** have their own column.
- **macs**: multiply-adds the forward pass actually computes for weighted layers (conv taps
  on padded zeros included); pooling and activations do none.

A layer whose type has no counting rule is listed with its units and parameters and with
connections and macs unknown (`None`, shown as "?"), left out of those totals.

>>> import lamina
>>> from lamina.summary import summary
>>> s = summary(lamina.models.mlp((4, 3, 2)), (4,))
>>> [(r.name, r.units, r.connections, r.weights, r.biases) for r in s.rows if r.units]
[('fc1', 3, 12, 12, 3), ('fc2', 2, 6, 6, 2)]
>>> s.total_connections, 3 * s.total_connections == s.training_macs
(18, True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["summary", "Summary", "LayerRow"]

_MISSING = object()


@dataclass
class LayerRow:
    """One layer call of the forward pass."""
    name: str                      # dotted module name ("features.0"); "(model)" for the root
    type: str                      # class name ("Conv2d")
    input_shape: Tuple[int, ...]   # without the batch dimension
    output_shape: Tuple[int, ...]  # without the batch dimension
    units: int
    connections: Optional[int]     # None: no counting rule for this layer type
    weights: int
    biases: int
    macs: Optional[int]
    kind: str = "layer"            # "weighted", "pool", "passthrough" (0 units), "norm" (0 units, weights) or "unknown"
    note: str = ""                 # e.g. "shared weights", "2nd call"


@dataclass
class Summary:
    """Per-layer rows and totals; `str()` renders the table."""
    model_name: str
    input_shape: Tuple[int, ...]
    rows: List[LayerRow] = field(default_factory=list)
    itemsize: int = 4
    parameters: int = 0            # all parameters of the model (weights + biases), used or not

    @property
    def total_units(self) -> int:
        return sum(r.units for r in self.rows)

    @property
    def total_connections(self) -> int:
        return sum(r.connections for r in self.rows if r.connections is not None)

    @property
    def total_weights(self) -> int:
        return sum(r.weights for r in self.rows)

    @property
    def total_biases(self) -> int:
        return sum(r.biases for r in self.rows)

    @property
    def total_params(self) -> int:
        return self.total_weights + self.total_biases

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows if r.macs is not None)

    @property
    def training_macs(self) -> int:
        """Lecture's rule of thumb: ~3 multiply-adds per connection (1 forward, 2 backward)."""
        return 3 * self.total_connections

    def row(self, name: str) -> LayerRow:
        """The (first) row of the layer called `name`."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"name: no layer {name!r}; layers are {[r.name for r in self.rows]}")

    def to_dicts(self) -> List[dict]:
        return [dict(r.__dict__) for r in self.rows]

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return (f"Summary({self.model_name}, input={self.input_shape}, layers={len(self.rows)}, "
                f"units={self.total_units:,}, connections={self.total_connections:,}, "
                f"weights={self.total_weights:,}, biases={self.total_biases:,})")

    def render(self, show_passthrough: bool = True) -> str:
        """The table; `show_passthrough=False` hides the 0-unit activation/reshape rows."""
        head = ("Layer", "Type", "Output shape", "Units", "Connections", "Weights", "Biases", "MACs")

        def num(v, blank_zero):
            if v is None:
                return "?"
            if v == 0 and blank_zero:
                return "-"
            return f"{v:,}"

        body = []
        for r in self.rows:
            if not show_passthrough and r.kind == "passthrough":
                continue
            blank = r.kind == "passthrough"
            name = r.name + (f" ({r.note})" if r.note else "")
            body.append((name, r.type, "x".join(map(str, r.output_shape)) or "scalar",
                         num(r.units, blank), num(r.connections, blank), num(r.weights, blank),
                         num(r.biases, blank), num(r.macs, blank)))
        total = ("Total", "", "", f"{self.total_units:,}", f"{self.total_connections:,}",
                 f"{self.total_weights:,}", f"{self.total_biases:,}", f"{self.total_macs:,}")
        widths = [max(len(row[i]) for row in [head, total] + body) for i in range(len(head))]
        left = {0, 1, 2}

        def fmt(row):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))).rstrip()

        rule = "-" * len(fmt(head))
        shape = "x".join(map(str, self.input_shape))
        lines = [f"{self.model_name}, input {shape} (batch dimension excluded)", rule, fmt(head), rule]
        lines += [fmt(b) for b in body]
        lines += [rule, fmt(total), rule]
        unknown = [r.name for r in self.rows if r.connections is None]
        mem = self.total_units * self.itemsize
        lines += [
            f"parameters: {self.total_weights:,} weights + {self.total_biases:,} biases = "
            f"{self.total_params:,} ({_bytes(self.total_params * self.itemsize)})",
            f"units (activations stored for backprop, per example): {self.total_units:,} ({_bytes(mem)})",
            f"forward multiply-adds computed (padding included): {self.total_macs:,}",
            f"training cost ~ 3 multiply-adds per connection (1 forward, 2 backward): "
            f"3 x {self.total_connections:,} = {self.training_macs:,} per example",
        ]
        if self.parameters != self.total_params:
            lines.append(f"note: the model holds {self.parameters:,} parameters; "
                         f"{self.parameters - self.total_params:,} of them were not used by this forward pass")
        if unknown:
            lines.append(f"note: no counting rule for {unknown}: their connections and MACs are '?' "
                         f"and left out of the totals")
        return "\n".join(lines)


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n} B"  # pragma: no cover


# ---------------------------------------------------------------------------------- counting
def _tuple(v, n, name, module) -> Tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise ValueError(f"{type(module).__name__}.{name}: expected {n} values, got {tuple(v)}")
        return tuple(int(a) for a in v)
    return (int(v),) * n


def _valid_taps(L_in: int, L_out: int, K: int, stride: int, pad: int, dilation: int) -> int:
    """Sum over the L_out outputs of one axis of how many of its K taps land inside [0, L_in)."""
    o = np.arange(L_out, dtype=np.int64)[:, None]
    k = np.arange(K, dtype=np.int64)[None, :]
    i = o * stride - pad + k * dilation  # input index tap k of output o reads (may be padding)
    return int(((i >= 0) & (i < L_in)).sum())


def _adaptive_taps(L_in: int, L_out: int) -> int:
    """Sum of adaptive-pool window lengths: window o is [floor(o L/out), ceil((o+1) L/out))."""
    return sum(-((-(o + 1) * L_in) // L_out) - (o * L_in) // L_out for o in range(L_out))


def _count_linear(m, xs, ys):
    fan_in = int(m.in_features)
    units = int(np.prod(ys))
    weights = m.weight.numel() if m.weight is not None else 0
    biases = m.bias.numel() if getattr(m, "bias", None) is not None else 0
    return dict(kind="weighted", units=units, connections=units * fan_in, weights=weights,
                biases=biases, macs=units * fan_in)


def _count_conv(m, xs, ys):
    nd = len(ys) - 1  # (C, *spatial)
    K = _tuple(m.kernel_size, nd, "kernel_size", m)
    S = _tuple(m.stride, nd, "stride", m)
    D = _tuple(getattr(m, "dilation", 1), nd, "dilation", m)
    P = getattr(m, "padding", 0)
    if isinstance(P, str):  # "valid" / "same": recover the left padding from the shapes
        P = tuple(((ys[1 + d] - 1) * S[d] + D[d] * (K[d] - 1) + 1 - xs[1 + d]) // 2 if P == "same" else 0
                  for d in range(nd))
    P = _tuple(P, nd, "padding", m)
    groups = int(getattr(m, "groups", 1))
    c_out = int(ys[0])
    c_in_per_group = int(xs[0]) // groups
    units = int(np.prod(ys))
    taps = 1
    for d in range(nd):  # the count factorizes over axes: a tap is in bounds iff it is on each axis
        taps *= _valid_taps(xs[1 + d], ys[1 + d], K[d], S[d], P[d], D[d])
    weights = m.weight.numel()
    biases = m.bias.numel() if getattr(m, "bias", None) is not None else 0
    return dict(kind="weighted", units=units, connections=c_out * c_in_per_group * taps,
                weights=weights, biases=biases,
                macs=units * c_in_per_group * int(np.prod(K)))


def _count_pool(m, xs, ys):
    nd = len(ys) - 1
    K = _tuple(m.kernel_size, nd, "kernel_size", m)
    stride = getattr(m, "stride", None)
    S = _tuple(K if stride is None or stride == () else stride, nd, "stride", m)
    P = _tuple(getattr(m, "padding", 0), nd, "padding", m)
    D = _tuple(getattr(m, "dilation", 1), nd, "dilation", m)
    taps = 1
    for d in range(nd):
        taps *= _valid_taps(xs[1 + d], ys[1 + d], K[d], S[d], P[d], D[d])
    return dict(kind="pool", units=int(np.prod(ys)), connections=int(ys[0]) * taps, weights=0,
                biases=0, macs=0)


def _count_adaptive_pool(m, xs, ys):
    nd = len(ys) - 1
    taps = 1
    for d in range(nd):
        taps *= _adaptive_taps(xs[1 + d], ys[1 + d])
    return dict(kind="pool", units=int(np.prod(ys)), connections=int(ys[0]) * taps, weights=0,
                biases=0, macs=0)


def _count_norm(m, xs, ys):
    # Normalization rescales units an earlier layer counted (one multiply-add per unit with
    # the affine); its scale and shift are weights and biases.
    weights = m.weight.numel() if getattr(m, "weight", None) is not None else 0
    biases = m.bias.numel() if getattr(m, "bias", None) is not None else 0
    return dict(kind="norm", units=0, connections=0, weights=weights, biases=biases,
                macs=int(np.prod(ys)) if weights else 0)


def _count_passthrough(m, xs, ys):
    return dict(kind="passthrough", units=0, connections=0, weights=0, biases=0, macs=0)


_PASSTHROUGH = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softplus", "Step", "Softmax",
                "LogSoftmax", "Dropout", "Dropout2d", "Flatten", "Identity", "Unflatten", "GELU", "ELU")


def _rule_for(m):
    from . import nn
    types = []
    for cls_name, rule in (("Linear", _count_linear), ("Conv1d", _count_conv), ("Conv2d", _count_conv),
                           ("Conv3d", _count_conv), ("MaxPool1d", _count_pool),
                           ("MaxPool2d", _count_pool), ("AvgPool1d", _count_pool),
                           ("AvgPool2d", _count_pool), ("AdaptiveAvgPool1d", _count_adaptive_pool),
                           ("AdaptiveAvgPool2d", _count_adaptive_pool),
                           ("AdaptiveMaxPool2d", _count_adaptive_pool), ("BatchNorm1d", _count_norm),
                           ("BatchNorm2d", _count_norm), ("LayerNorm", _count_norm), ("GroupNorm", _count_norm)):
        cls = getattr(nn, cls_name, None)
        if cls is not None:
            types.append((cls, rule))
    for cls, rule in types:
        if isinstance(m, cls):
            return rule
    for cls_name in _PASSTHROUGH:
        cls = getattr(nn, cls_name, None)
        if cls is not None and isinstance(m, cls):
            return _count_passthrough
    return None


def _count_unknown(m, xs, ys, own_params):
    weights = sum(int(p.numel()) for n, p in own_params if not n.endswith("bias"))
    biases = sum(int(p.numel()) for n, p in own_params if n.endswith("bias"))
    return dict(kind="unknown", units=int(np.prod(ys)) if ys is not None else 0, connections=None,
                weights=weights, biases=biases, macs=None)


# ---------------------------------------------------------------------------------- recording
def _shape_of(v):
    from .tensor import Tensor
    if isinstance(v, Tensor) or isinstance(v, np.ndarray):
        return tuple(int(s) for s in v.shape)
    if isinstance(v, (tuple, list)) and v:
        return _shape_of(v[0])
    return None


def _no_batch(shape):
    return tuple(shape[1:]) if shape is not None and len(shape) >= 1 else ()


def _check_input_shape(input_shape) -> Tuple[int, ...]:
    if isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
        input_shape = (int(input_shape),)
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"input_shape: expected a tuple of positive ints without the batch dimension "
                        f"(e.g. (1, 28, 28)), got {type(input_shape).__name__} {input_shape!r}")
    out = []
    for s in input_shape:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0:
            raise ValueError(f"input_shape: expected positive ints without the batch dimension "
                             f"(e.g. (1, 28, 28)), got {tuple(input_shape)!r}")
        out.append(int(s))
    return tuple(out)


def summary(model, input_shape: Sequence[int], dtype=None) -> Summary:
    """Count units, connections, weights, biases and MACs of `model` per layer.

    `input_shape` excludes the batch dimension; one forward pass runs on a batch of one
    zeros input under `no_grad` in eval mode (modes are restored afterwards). `dtype`
    defaults to the dtype of the model's first parameter.

    >>> import lamina
    >>> from lamina.summary import summary
    >>> s = summary(lamina.models.mlp((784, 300, 10)), (1, 28, 28))
    >>> s.total_units, s.total_weights, s.total_biases
    (310, 238200, 310)
    >>> print(s.render(show_passthrough=False).splitlines()[0])
    Sequential, input 1x28x28 (batch dimension excluded)
    """
    from . import nn
    from .tensor import get_default_dtype, no_grad
    from .factory import zeros

    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a lamina.nn.Module, got {type(model).__name__}")
    shape = _check_input_shape(input_shape)
    params = list(model.parameters())
    if dtype is None:
        dtype = params[0].dtype if params else get_default_dtype()
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype: expected a floating dtype, got {dtype}")

    named = list(model.named_modules())
    names = {}
    parents = {}  # id(child) -> list of (parent, key): to find the activation a fused Linear skips
    for n, m in named:
        names.setdefault(id(m), n or "(model)")
        for key, c in m._modules.items():
            if c is not None:
                parents.setdefault(id(c), []).append((m, key))
    recorded = [m for _, m in named if not any(c is not None for c in m._modules.values())
                or any(p is not None for p in m._parameters.values())]

    rows: List[LayerRow] = []
    seen_params = set()
    calls = {}

    def add_row(m, xs, ys):
        k = calls.get(id(m), 0)
        calls[id(m)] = k + 1
        own = [(n, p) for n, p in m._parameters.items() if p is not None]
        leaf = not any(c is not None for c in m._modules.values())
        rule = _rule_for(m) if leaf else None
        if xs is None or ys is None:
            rule = None
        if rule is None:
            counts = _count_unknown(m, xs, ys, own)
        else:
            counts = rule(m, xs, ys)
        note = ""
        # a parameter counts once, on its first use: shared weights are one set of free parameters
        fresh_w = sum(int(p.numel()) for n, p in own if id(p) not in seen_params and not n.endswith("bias"))
        fresh_b = sum(int(p.numel()) for n, p in own if id(p) not in seen_params and n.endswith("bias"))
        if own and (fresh_w, fresh_b) != (counts["weights"], counts["biases"]):
            note = "shared weights" if k == 0 else f"call {k + 1}, shared weights"
            counts["weights"], counts["biases"] = fresh_w, fresh_b
        elif k > 0:
            note = f"call {k + 1}"
        seen_params.update(id(p) for _, p in own)
        rows.append(LayerRow(name=names[id(m)], type=type(m).__name__, input_shape=tuple(xs or ()),
                             output_shape=tuple(ys or ()), note=note, **counts))

    def wrap_forward(m, orig):
        def forward(*args, **kwargs):
            y = orig(*args, **kwargs)
            add_row(m, _no_batch(_shape_of(args[0]) if args else None), _no_batch(_shape_of(y)))
            return y
        return forward

    def wrap_forward_act(m, orig):
        # Sequential runs Linear+activation as one fused call and never calls the activation
        # module: record both layers here (the activation is the Linear's next sibling).
        def _forward_act(x, act, *args, **kwargs):
            y = orig(x, act, *args, **kwargs)
            xs, ys = _no_batch(_shape_of(x)), _no_batch(_shape_of(y))
            add_row(m, xs, ys)
            act_mod = None
            for parent, key in parents.get(id(m), ()):
                keys = list(parent._modules)
                i = keys.index(key)
                if i + 1 < len(keys):
                    nxt = parent._modules[keys[i + 1]]
                    if nxt is not None and getattr(nxt, "_fused", None) == act:
                        act_mod = nxt
                        break
            if act_mod is not None:
                add_row(act_mod, ys, ys)
            else:  # pragma: no cover - a fused call from somewhere we cannot name
                rows.append(LayerRow(name=names[id(m)] + f".<{act}>", type=str(act), input_shape=ys,
                                     output_shape=ys, **_count_passthrough(None, ys, ys)))
            return y
        return _forward_act

    patched = []  # (module, attribute, previous instance value or _MISSING)
    modes = [(m, m.training) for _, m in named]
    try:
        for m in recorded:
            for attr, wrap in (("forward", wrap_forward), ("_forward_act", wrap_forward_act)):
                if attr == "_forward_act" and not hasattr(type(m), "_forward_act"):
                    continue
                patched.append((m, attr, m.__dict__.get(attr, _MISSING)))
                object.__setattr__(m, attr, wrap(m, getattr(m, attr)))
        model.eval()
        x = zeros(1, *shape, dtype=dtype)
        with no_grad():
            model(x)
    finally:
        for m, attr, previous in reversed(patched):
            if previous is _MISSING:
                m.__dict__.pop(attr, None)
            else:
                m.__dict__[attr] = previous
        for m, mode in modes:
            object.__setattr__(m, "training", mode)

    total_params = sum(int(p.numel()) for p in params)
    return Summary(model_name=type(model).__name__, input_shape=shape, rows=rows,
                   itemsize=dtype.itemsize, parameters=total_params)
