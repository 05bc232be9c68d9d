"""PyTorch's names for graph nodes, so `grad_fn`, `grad_fn.name()` and tensor reprs read as they
do in PyTorch (`grad_fn=<MulBackward0>`). A node is named by its op class; most classes are named
as PyTorch's op is (Exp -> ExpBackward0). This table holds the ones that differ, and `_variants`
the ones whose PyTorch name depends on the call (sum over everything vs over dims)."""

_RENAMED = {
    "MatMul2D": "MmBackward0", "MatMulBatched": "BmmBackward0", "Linear": "AddmmBackward0",
    "Conv2dFn": "ConvolutionBackward0", "Conv1dFn": "ConvolutionBackward0",
    "Conv2dReLUMaxPool2dFn": "MaxPool2DWithIndicesBackward0",
    "MaxPool2dFn": "MaxPool2DWithIndicesBackward0", "AvgPool2dFn": "AvgPool2DBackward0",
    "AdaptiveAvgPool2dFn": "AdaptiveAvgPool2DBackward0",
    "CrossEntropy": "NllLossBackward0", "MSE": "MseLossBackward0",
    "BCEWithLogits": "BinaryCrossEntropyWithLogitsBackward0",
    "BinaryCrossEntropy": "BinaryCrossEntropyBackward0",
    "Reshape": "ViewBackward0", "ReshapeView": "ViewBackward0", "ViewOf": "ViewBackward0",
    "GetItem": "IndexBackward0", "IndexView": "SliceBackward0", "SetItem": "CopySlices",
    "ViewScatter": "CopySlices", "Overwrite": "CopyBackwards",
    "PowTensor": "PowBackward1", "Clamp": "ClampBackward1", "Cast": "ToCopyBackward0",
    "MaxAll": "MaxBackward1", "MaxDim": "MaxBackward0", "LogSumExp": "LogsumexpBackward0",
    "VectorNorm": "LinalgVectorNormBackward0", "BatchNormFn": "NativeBatchNormBackward0",
    "LayerNormFn": "NativeLayerNormBackward0", "GroupNormFn": "NativeGroupNormBackward0",
    "DropoutFn": "NativeDropoutBackward0", "PReLUFn": "PreluKernelBackward0", "GELU": "GeluBackward0",
    "SiLU": "SiluBackward0", "ELU": "EluBackward0", "Pad": "ConstantPadNdBackward0",
    "Softmax": "SoftmaxBackward0", "Einsum": "SumBackward1", "MaskedFill": "MaskedFillBackward0",
    "Gather": "GatherBackward0", "Scatter": "ScatterBackward0", "IndexSelect": "IndexSelectBackward0",
}

_ACTIVATIONS = {"relu": "ReluBackward0", "sigmoid": "SigmoidBackward0", "tanh": "TanhBackward0",
                "leaky_relu": "LeakyReluBackward0", "softplus": "SoftplusBackward0",
                "identity": "AliasBackward0", "step": "HeavisideBackward0"}


def _variants(op, inputs):
    if op == "Activation" and inputs is not None and len(inputs) > 1:
        return _ACTIVATIONS.get(inputs[1])
    if op == "IndexView" and inputs is not None and len(inputs) > 1:
        return _basic_index_name(inputs[1])
    if op in ("Sum", "Mean") and inputs is not None and len(inputs) > 1:
        return f"{op}Backward{0 if inputs[1] is None else 1}"
    return None


def _basic_index_name(idx):
    """PyTorch applies a basic index item by item; the node shown is the last real one's."""
    name = "AliasBackward0"
    for item in idx if isinstance(idx, tuple) else (idx,):
        if item is None:
            name = "UnsqueezeBackward0"
        elif isinstance(item, slice):
            if item != slice(None):
                name = "SliceBackward0"
        elif item is not Ellipsis:
            name = "SelectBackward0"
    return name


def torch_node_name(node):
    op = node.op
    return _variants(op, node.inputs) or _RENAMED.get(op) or f"{op}Backward0"
