"""Export a lamina model to ONNX, to serve it with onnxruntime or any other ONNX runtime.

The model is exported by a module walk: `export` runs the model once on `example_input`
(in eval mode) and visits its modules in execution order, each known module class writing its
ONNX nodes through a rule in `_RULES` (containers recurse; residual blocks write their add).
Running the real layers gives every intermediate shape, so Flatten, adaptive pooling and the
checks need no shape inference. A module with no rule is refused with its name and class.

Needs the optional `onnx` package (`pip install lamina[onnx]`); the core never imports it.

>>> import lamina
>>> model = lamina.models.mlp((4, 8, 3))
>>> lamina.onnx.export(model, lamina.zeros(2, 4), "/tmp/mlp.onnx")   # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from . import nn
from .tensor import Tensor, no_grad

__all__ = ["export"]


class _Builder:
    """Collects nodes and initializers; names every value uniquely."""

    def __init__(self, onnx_module):
        self.onnx = onnx_module
        self.nodes, self.initializers, self._used = [], [], set()

    def fresh(self, hint: str) -> str:
        hint = hint.lstrip(".") or "node"      # the top-level module has the empty name
        name, i = hint, 1
        while name in self._used:
            name, i = f"{hint}_{i}", i + 1
        self._used.add(name)
        return name

    def constant(self, hint: str, array: np.ndarray) -> str:
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs, hint: str, **attrs) -> str:
        out = self.fresh(hint)
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out


def _pair(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _conv(b, m, x, name, x_val):
    nd = len(m.kernel_size)
    if getattr(m, "padding_mode", "zeros") != "zeros":
        raise NotImplementedError(f"{name}: padding_mode={m.padding_mode!r} has no ONNX export (only 'zeros')")
    if isinstance(m.padding, str):
        if m.padding == "valid":
            begin = end = (0,) * nd
        else:   # 'same' (stride 1): PyTorch puts the odd extra pad at the end
            total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
            begin, end = tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
    else:
        begin = end = tuple(m.padding)
    inputs = [x, b.constant(f"{name}.weight", m.weight._data)]
    if m.bias is not None:
        inputs.append(b.constant(f"{name}.bias", m.bias._data))
    return b.node("Conv", inputs, name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                  pads=list(begin) + list(end), dilations=list(m.dilation), group=m.groups)


def _linear(b, m, x, name, x_val):
    w = b.constant(f"{name}.weight", m.weight._data)
    if x_val.ndim == 2:
        inputs = [x, w] + ([b.constant(f"{name}.bias", m.bias._data)] if m.bias is not None else [])
        return b.node("Gemm", inputs, name, transB=1)
    y = b.node("MatMul", [x, b.constant(f"{name}.weight_t", m.weight._data.T)], name)
    return b.node("Add", [y, b.constant(f"{name}.bias", m.bias._data)], name + ".add") if m.bias is not None else y


def _max_pool(b, m, x, name, x_val):
    nd = x_val.ndim - 2
    if m.return_indices:
        raise NotImplementedError(f"{name}: MaxPool with return_indices=True has no export")
    pad = _pair(m.padding, nd)
    return b.node("MaxPool", [x], name, kernel_shape=list(_pair(m.kernel_size, nd)),
                  strides=list(_pair(m.stride, nd)), pads=list(pad) * 2,
                  dilations=list(_pair(m.dilation, nd)), ceil_mode=int(bool(m.ceil_mode)))


def _avg_pool(b, m, x, name, x_val):
    nd = x_val.ndim - 2
    if getattr(m, "divisor_override", None):
        raise NotImplementedError(f"{name}: AvgPool divisor_override has no ONNX export")
    pad = _pair(m.padding, nd)
    return b.node("AveragePool", [x], name, kernel_shape=list(_pair(m.kernel_size, nd)),
                  strides=list(_pair(m.stride, nd)), pads=list(pad) * 2, ceil_mode=int(bool(m.ceil_mode)),
                  count_include_pad=int(bool(m.count_include_pad)))


def _adaptive_avg_pool(b, m, x, name, x_val):
    in_hw = x_val.shape[2:]
    out_hw = tuple(o if o is not None else i for o, i in zip(_pair(m.output_size, 2), in_hw))
    if out_hw == (1, 1):
        return b.node("GlobalAveragePool", [x], name)
    if any(i % o for i, o in zip(in_hw, out_hw)):
        raise NotImplementedError(f"{name}: AdaptiveAvgPool2d from {in_hw} to {out_hw} (not a whole "
                                  "number of windows) has no single ONNX op")
    k = [i // o for i, o in zip(in_hw, out_hw)]
    return b.node("AveragePool", [x], name, kernel_shape=k, strides=k)


def _flatten(b, m, x, name, x_val):
    nd = x_val.ndim
    start, end = m.start_dim % nd, m.end_dim % nd
    if start == 1 and end == nd - 1:      # ONNX Flatten always makes 2-D: only this case matches
        return b.node("Flatten", [x], name, axis=1)
    # keep leading dims (0 = copy the input's, so the batch stays dynamic), merge start..end
    shape = [0] * start + [-1] + list(x_val.shape[end + 1:])
    return b.node("Reshape", [x, b.constant(f"{name}.shape", np.array(shape, np.int64))], name)


def _softplus(b, m, x, name, x_val):
    """softplus(beta x) / beta, and x itself where beta x > threshold (as PyTorch)."""
    beta = b.constant(f"{name}.beta", np.array(m.beta, x_val.dtype))
    bx = b.node("Mul", [x, beta], name + ".scale")
    y = b.node("Div", [b.node("Softplus", [bx], name + ".softplus"), beta], name + ".unscale")
    above = b.node("Greater", [bx, b.constant(f"{name}.threshold", np.array(m.threshold, x_val.dtype))],
                   name + ".above")
    return b.node("Where", [above, x, y], name)


def _gelu(b, m, x, name, x_val):
    dt = x_val.dtype
    half, one = b.constant(f"{name}.half", np.array(0.5, dt)), b.constant(f"{name}.one", np.array(1.0, dt))
    if m.approximate == "tanh":   # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.node("Mul", [x, b.node("Mul", [x, x], name + ".sq")], name + ".cube")
        inner = b.node("Add", [x, b.node("Mul", [cube, b.constant(f"{name}.c", np.array(0.044715, dt))],
                                         name + ".cx3")], name + ".inner")
        scaled = b.node("Mul", [inner, b.constant(f"{name}.k", np.array(np.sqrt(2 / np.pi), dt))], name + ".k_inner")
        core = b.node("Tanh", [scaled], name + ".tanh")
    else:                         # 0.5 x (1 + erf(x / sqrt 2))
        core = b.node("Erf", [b.node("Div", [x, b.constant(f"{name}.sqrt2", np.array(np.sqrt(2.0), dt))],
                                     name + ".scaled")], name + ".erf")
    return b.node("Mul", [b.node("Mul", [x, half], name + ".half_x"), b.node("Add", [core, one], name + ".1p")], name)


def _silu(b, m, x, name, x_val):
    return b.node("Mul", [x, b.node("Sigmoid", [x], name + ".sigmoid")], name)


def _softmax_axis(m, x_val):
    if m.dim is not None:
        return int(m.dim)
    return 0 if x_val.ndim in (0, 1, 3) else 1     # PyTorch's implicit dim


def _step(b, m, x, name, x_val):
    zero = b.constant(f"{name}.zero", np.array(0, x_val.dtype))
    return b.node("Cast", [b.node("Greater", [x, zero], name + ".gt")], name, to=_onnx_dtype(b, x_val.dtype))


def _basic_block(b, m, x, name, x_val):
    """resnet's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + skip(x)), skip = x or conv1x1-BN."""
    h, v = x, x_val
    for child in ("conv1", "bn1", "relu", "conv2", "bn2"):
        h = _emit(b, getattr(m, child), h, f"{name}.{child}", v)
        v = getattr(m, child)(v)
    skip = x if m.downsample is None else _emit(b, m.downsample, x, f"{name}.downsample", x_val)
    return b.node("Relu", [b.node("Add", [skip, h], f"{name}.add")], f"{name}.out")


def _sequential(b, m, x, name, x_val):
    for child_name, child in m._modules.items():
        full = f"{name}.{child_name}" if name else child_name
        x = _emit(b, child, x, full, x_val)
        x_val = child(x_val)
    return x


def _onnx_dtype(b, dtype):
    return b.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


_RULES = {
    nn.Linear: _linear, nn.Conv1d: _conv, nn.Conv2d: _conv,
    nn.MaxPool1d: _max_pool, nn.MaxPool2d: _max_pool, nn.AvgPool1d: _avg_pool, nn.AvgPool2d: _avg_pool,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool, nn.Flatten: _flatten, nn.Sequential: _sequential,
    nn.ReLU: lambda b, m, x, name, v: b.node("Relu", [x], name),
    nn.Sigmoid: lambda b, m, x, name, v: b.node("Sigmoid", [x], name),
    nn.Tanh: lambda b, m, x, name, v: b.node("Tanh", [x], name),
    nn.LeakyReLU: lambda b, m, x, name, v: b.node("LeakyRelu", [x], name, alpha=float(m.negative_slope)),
    nn.Softmax: lambda b, m, x, name, v: b.node("Softmax", [x], name, axis=_softmax_axis(m, v)),
    nn.LogSoftmax: lambda b, m, x, name, v: b.node("LogSoftmax", [x], name, axis=_softmax_axis(m, v)),
    nn.Softplus: _softplus, nn.Step: _step,
    nn.Identity: lambda b, m, x, name, v: b.node("Identity", [x], name),
    nn.Dropout: lambda b, m, x, name, v: b.node("Identity", [x], name),   # inference: dropout is identity
}
# issue 11's activations, where this checkout has them
for _cls_name, _rule in (("GELU", _gelu), ("SiLU", _silu),
                         ("ELU", lambda b, m, x, name, v: b.node("Elu", [x], name, alpha=float(m.alpha)))):
    if hasattr(nn, _cls_name):
        _RULES[getattr(nn, _cls_name)] = _rule



def _rule_for(module):
    from .models.resnet import BasicBlock
    if type(module) is BasicBlock:
        return _basic_block
    for cls in type(module).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    name = type(module).__name__        # issue 11's layers, matched by name until they are on main
    if name in ("BatchNorm1d", "BatchNorm2d"):
        return _batch_norm
    if name == "LayerNorm":
        return _layer_norm
    return None


def _layer_norm(b, m, x, name, x_val):
    shape = tuple(m.normalized_shape)
    weight = getattr(m, "weight", None)
    bias = getattr(m, "bias", None)
    scale = weight._data if weight is not None else np.ones(shape, x_val.dtype)
    inputs = [x, b.constant(f"{name}.weight", np.asarray(scale, x_val.dtype))]
    if bias is not None:
        inputs.append(b.constant(f"{name}.bias", np.asarray(bias._data, x_val.dtype)))
    return b.node("LayerNormalization", inputs, name, axis=-len(shape), epsilon=float(m.eps))


def _batch_norm(b, m, x, name, x_val):
    c = x_val.shape[1]
    scale = m.weight._data if getattr(m, "weight", None) is not None else np.ones(c, x_val.dtype)
    bias = m.bias._data if getattr(m, "bias", None) is not None else np.zeros(c, x_val.dtype)
    mean, var = getattr(m, "running_mean", None), getattr(m, "running_var", None)
    if mean is None or var is None:
        raise NotImplementedError(f"{name}: BatchNorm without running statistics has no inference export")
    mean = mean._data if isinstance(mean, Tensor) else np.asarray(mean)
    var = var._data if isinstance(var, Tensor) else np.asarray(var)
    inputs = [x] + [b.constant(f"{name}.{k}", np.asarray(v, x_val.dtype))
                    for k, v in (("weight", scale), ("bias", bias), ("running_mean", mean), ("running_var", var))]
    return b.node("BatchNormalization", inputs, name, epsilon=float(m.eps))


def _emit(b, module, x, name, x_val):
    rule = _rule_for(module)
    if rule is None:
        raise NotImplementedError(f"onnx.export: module {name or '<model>'} ({type(module).__name__}) has no "
                                  f"ONNX export rule; supported: {sorted(c.__name__ for c in _RULES)}, BasicBlock")
    return rule(b, module, x, name, x_val)


def export(model, example_input, path, input_names=None, output_names=None, dynamic_batch=True,
           opset_version=17):
    """Write `model` as an ONNX file at `path` (atomically) and return the `onnx.ModelProto`.

    `example_input` (a Tensor or array, batch first) fixes every dim but the batch, which stays
    symbolic ("batch") when `dynamic_batch`. The model is exported as in eval mode (dropout is
    the identity, batch norm uses running statistics) and its mode is restored afterwards.

    >>> import lamina
    >>> net = lamina.models.lenet5()
    >>> proto = lamina.onnx.export(net, lamina.zeros(1, 1, 28, 28), "/tmp/lenet.onnx")  # doctest: +SKIP
    """
    try:
        import onnx
    except ImportError:
        raise ImportError("lamina.onnx.export needs the onnx package: pip install 'lamina[onnx]'") from None
    from .serialization import atomic_write_bytes

    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a lamina.nn.Module, got {type(model).__name__}")
    x_val = example_input if isinstance(example_input, Tensor) else Tensor(np.asarray(example_input))
    if x_val.ndim < 1:
        raise ValueError(f"example_input: expected a batch (ndim >= 1), got shape {tuple(x_val.shape)}")
    if not isinstance(opset_version, int) or not 13 <= opset_version <= 21:
        raise ValueError(f"opset_version: expected an int in [13, 21], got {opset_version!r}")
    input_names = list(input_names) if input_names is not None else ["input"]
    output_names = list(output_names) if output_names is not None else ["output"]
    if len(input_names) != 1 or len(output_names) != 1:
        raise ValueError(f"input_names / output_names: expected one name each, got {input_names} / {output_names}")

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            b = _Builder(onnx)
            b._used.update((input_names[0], output_names[0]))
            out = _emit(b, model, input_names[0], "", x_val)
            y_val = model(x_val)
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)
    b.nodes.append(onnx.helper.make_node("Identity", [out], [output_names[0]], name=output_names[0]))

    def value_info(name, arr):
        shape = list(arr.shape)
        if dynamic_batch:
            shape[0] = "batch"
        return onnx.helper.make_tensor_value_info(name, _onnx_dtype(b, arr.dtype), shape)

    graph = onnx.helper.make_graph(b.nodes, type(model).__name__, [value_info(input_names[0], x_val._data)],
                                   [value_info(output_names[0], y_val._data)], initializer=b.initializers)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset_version)],
                                   producer_name="lamina")
    proto.ir_version = min(proto.ir_version, 9)     # onnxruntime 1.16+ reads IR 9
    onnx.checker.check_model(proto, full_check=True)
    atomic_write_bytes(path, proto.SerializeToString())
    return proto
