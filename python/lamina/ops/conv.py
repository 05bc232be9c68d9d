"""Convolution (1-D and 2-D) with autograd: each primitive calls its forward kernel in ``_C`` and
its backward rule sits right below it, calling the matching backward kernel; the lowering to
`conv2d_fwd` / `conv2d_bwd` graph nodes follows.

1-D ops run the 2-D kernels on (N, C, 1, L) views; unbatched inputs ((C, H, W) or (C, L)) get a
leading batch axis of 1, as in PyTorch.

>>> import lamina, lamina.nn.functional as F
>>> x = lamina.randn(2, 3, 8, 8, requires_grad=True)
>>> w = lamina.randn(4, 3, 3, 3, requires_grad=True)
>>> y = F.max_pool2d(F.conv2d(x, w, padding=1), 2)
>>> tuple(y.shape)
(2, 4, 4, 4)
>>> y.sum().backward(); tuple(x.grad.shape)
(2, 3, 8, 8)
"""
from collections import namedtuple

import numpy as np

from .. import _C
from ..tensor import Function, float32, float64
from ._common import is_float
from ._params import ConvAttrs, ConvParams
from ._window import _as_array, _check_float, _is_int, _out_size, _tuple
from .registry import BadSample, Sample, register

__all__ = ["conv1d", "conv2d", "conv2d_relu_max_pool2d", "conv_transpose2d", "conv_transpose1d", "unfold", "fold"]
_F = (float32, float64)


# ---- lowering: conv sizes travel as ConvParams (graph/ir.py); Conv1dFn is the 2-D op with
# H = KH = 1 on the same bytes.
def _lower_conv(L, fn, conv):
    x, w = fn.args[0], fn.args[1]
    b = fn.args[2] if 2 in fn.tensor_pos else None
    if not is_float(x, w) or w.dtype != x.dtype:
        return False
    act = getattr(fn, "act", "identity")
    fn.saved = ConvSaved(x=x, w=w, y=fn.out, act=act, conv=conv, has_bias=b is not None)
    L.emit("conv2d_fwd", [x, w, b], [fn.out], ConvAttrs(params=conv, act=act), src=fn.op)
    fn.lowered_by = "conv"
    return True


def _conv2d_params(x, w, stride, padding, dilation, groups):
    (N, C, H, Wd), (K, _, KH, KW) = x.shape, w.shape
    return ConvParams(N=N, C=C, H=H, W=Wd, K=K, KH=KH, KW=KW, stride_h=int(stride[0]), stride_w=int(stride[1]),
                      pad_h=int(padding[0]), pad_w=int(padding[1]), dil_h=int(dilation[0]), dil_w=int(dilation[1]),
                      groups=int(groups))


def _conv1d_params(x, w, stride, padding, dilation, groups):
    (N, C, Wd), (K, _, KW) = x.shape, w.shape
    return ConvParams(N=N, C=C, H=1, W=Wd, K=K, KH=1, KW=KW, stride_w=int(stride), pad_w=int(padding),
                      dil_w=int(dilation), groups=int(groups))


def _lower_conv2d(L, fn):
    x, w = fn.args[0], fn.args[1]
    if len(x.shape) != 4:
        return False
    return _lower_conv(L, fn, _conv2d_params(x, w, *fn.args[3:7]))


def _lower_conv1d(L, fn):
    x, w = fn.args[0], fn.args[1]
    if len(x.shape) != 3:
        return False
    return _lower_conv(L, fn, _conv1d_params(x, w, *fn.args[3:7]))


# The one backward of conv2d and conv1d (eager and compiled). y is the output: a fused
# activation's derivative reads it (compiled only: eager convs have act "identity").
ConvSaved = namedtuple("ConvSaved", "x w y act conv has_bias")


def _conv_rule(k, s, dy, out):
    x, w, y, act, conv, has_bias = s
    if act != "identity":
        dy = k.act_bwd(act, y, dy)
    dx, dw, db = k.conv2d_bwd(x, w, dy, conv, out[0], out[1], out[2] if has_bias else None)
    return dx, dw, db, None, None, None, None


_EPILOGUE = {"epilogue": (lambda fn: getattr(fn, "act", "identity"), lambda fn, act: setattr(fn, "act", act),
                          "the conv instruction (in place)")}


def _x(dt, shape, seed=60):
    return np.random.default_rng(seed).standard_normal(shape).astype(dt)


def _conv2d_samples(dt):
    return [Sample((_x(dt, (2, 3, 6, 5)), _x(dt, (4, 3, 3, 3), 61), _x(dt, (4,), 62)), name="bias"),
            Sample((_x(dt, (2, 4, 6, 6)), _x(dt, (4, 2, 3, 3), 61)), {"stride": 2, "padding": 1, "groups": 2},
                   name="strided-groups"),
            Sample((_x(dt, (1, 1, 3, 3)), _x(dt, (1, 1, 1, 1), 61)), name="size1"),
            Sample((_x(dt, (3, 6, 5)), _x(dt, (2, 3, 3, 3), 61)), {"dilation": 1, "padding": "same"},
                   name="unbatched", compile=False)]


def _conv_bad():
    return [BadSample((np.ones((1, 3, 5, 5), np.float32), np.ones((2, 4, 3, 3), np.float32)), error=ValueError,
                      match="weight"),
            BadSample((np.ones((1, 3, 5, 5), np.int64), np.ones((2, 3, 3, 3), np.int64)), error=TypeError,
                      match="input"),
            BadSample((np.ones((1, 3, 5, 5), np.float32), np.ones((2, 3, 3, 3), np.float32)), {"stride": 0},
                      error=ValueError, match="stride")]


def _torch_conv2d(torch, x, w, b=None, **kw):
    return torch.nn.functional.conv2d(x, w, b, **kw)


def _torch_conv1d(torch, x, w, b=None, **kw):
    return torch.nn.functional.conv1d(x, w, b, **kw)


@register("conv2d", lower=_lower_conv2d, backward=_conv_rule,
          kernels=("_C.conv2d_forward", "_C.conv2d_backward"), dtypes=_F, traits=_EPILOGUE,
          call=lambda x, w, b=None, **kw: conv2d(x, w, b, **kw), samples=_conv2d_samples, bad_samples=_conv_bad,
          torch=_torch_conv2d)
class Conv2dFn(Function):
    """y = conv2d(x, w) + b on (N, C, H, W); stride / padding / dilation are (h, w) pairs."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        y = _conv2d_forward(x, w, b, stride, padding, dilation, groups)
        ctx.save_for_backward(*ConvSaved(x=x, w=w, y=None, act="identity",
                                         conv=_conv2d_params(x, w, stride, padding, dilation, groups),
                                         has_bias=b is not None))
        return y


def _conv2d_forward(x, w, b, stride, padding, dilation, groups):
    """y (N, K, OH, OW) of contiguous x (N, C, H, W) and w (K, C/groups, KH, KW)."""
    b = None if b is None else np.ascontiguousarray(b)
    N, _, H, W = x.shape
    OH = _out_size(H, w.shape[2], stride[0], padding[0], dilation[0])
    OW = _out_size(W, w.shape[3], stride[1], padding[1], dilation[1])
    # The kernel validates everything; a negative size only reaches it as a clear error.
    y = np.empty((N, w.shape[0], max(OH, 0), max(OW, 0)), dtype=x.dtype)
    _C.conv2d_forward(x, w, b, y, stride, padding, dilation, groups)
    return y


@register("conv1d", lower=_lower_conv1d, backward=_conv_rule,
          kernels=("_C.conv2d_forward", "_C.conv2d_backward"), dtypes=_F, traits=_EPILOGUE,
          call=lambda x, w, b=None, **kw: conv1d(x, w, b, **kw),
          samples=lambda dt: [Sample((_x(dt, (2, 3, 7)), _x(dt, (4, 3, 3), 61), _x(dt, (4,), 62))),
                              Sample((_x(dt, (2, 3, 7)), _x(dt, (4, 3, 2), 61)), {"stride": 2, "dilation": 2},
                                     name="strided")],
          torch=_torch_conv1d)
class Conv1dFn(Function):
    """y = conv1d(x, w) + b on (N, C, L): the 2-D kernels on (N, C, 1, L) views."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        y = _conv2d_forward(x[:, :, None, :], w[:, :, None, :], b, (1, stride), (0, padding), (1, dilation), groups)
        ctx.save_for_backward(*ConvSaved(x=x, w=w, y=None, act="identity",
                                         conv=_conv1d_params(x, w, stride, padding, dilation, groups),
                                         has_bias=b is not None))
        return y[:, :, 0, :]


# ---- transposed convolution, the adjoint of conv2d: its forward is the input gradient of the
# conv2d whose input has y's shape, its input gradient is that conv2d's forward, and its weight
# gradient is conv2d's weight gradient with the roles of x and dy swapped. The same kernels, read
# the other way round; the weight (C_in, C_out/groups, KH, KW) is that conv2d's weight as it is.
def _transposed_params(x_shape, w_shape, stride, padding, output_padding, dilation, groups):
    """The ConvParams of the conv2d mapping y (N, C_out, OH, OW) back to x (N, C_in, H, W)."""
    (N, Cin, H, W), (_, Cout_g, KH, KW) = x_shape, w_shape
    OH = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (KH - 1) + output_padding[0] + 1
    OW = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (KW - 1) + output_padding[1] + 1
    if OH <= 0 or OW <= 0:
        raise ValueError(f"input: conv_transpose2d of spatial size {(H, W)} with kernel {(KH, KW)}, stride "
                         f"{tuple(stride)}, padding {tuple(padding)} gives output size {(OH, OW)}, which is too small")
    return ConvParams(N=N, C=Cout_g * groups, H=OH, W=OW, K=Cin, KH=KH, KW=KW, stride_h=stride[0],
                      stride_w=stride[1], pad_h=padding[0], pad_w=padding[1], dil_h=dilation[0],
                      dil_w=dilation[1], groups=groups)


def _conv_transpose2d_samples(dt):
    return [Sample((_x(dt, (2, 3, 4, 5)), _x(dt, (3, 2, 3, 3), 61), _x(dt, (2,), 62)), name="bias"),
            Sample((_x(dt, (2, 4, 3, 3)), _x(dt, (4, 3, 4, 4), 61)), {"stride": 2, "padding": 1}, name="dcgan"),
            Sample((_x(dt, (1, 4, 3, 4)), _x(dt, (4, 1, 3, 2), 61), _x(dt, (2,), 62)),
                   {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2), "groups": 2, "dilation": (1, 2)},
                   name="groups-output_padding"),
            Sample((_x(dt, (3, 4, 4)), _x(dt, (3, 2, 2, 2), 61)), {"stride": 2}, name="unbatched", compile=False)]


def _conv_transpose2d_bad():
    f = np.float32
    return [BadSample((np.ones((1, 3, 5, 5), f), np.ones((2, 4, 3, 3), f)), error=ValueError, match="weight"),
            BadSample((np.ones((1, 2, 5, 5), f), np.ones((2, 4, 3, 3), f)), {"stride": 2, "output_padding": 2},
                      error=ValueError, match="output_padding"),
            BadSample((np.ones((1, 2, 5, 5), np.int64), np.ones((2, 4, 3, 3), np.int64)), error=TypeError,
                      match="input")]


def _torch_conv_transpose2d(torch, x, w, b=None, **kw):
    return torch.nn.functional.conv_transpose2d(x, w, b, **kw)


@register("conv_transpose2d", kernels=("_C.conv2d_backward (forward, dW)", "_C.conv2d_forward (dX)"), dtypes=_F,
          call=lambda x, w, b=None, **kw: conv_transpose2d(x, w, b, **kw), samples=_conv_transpose2d_samples,
          bad_samples=_conv_transpose2d_bad, torch=_torch_conv_transpose2d)
class ConvTranspose2dFn(Function):
    """y = conv_transpose2d(x, w) + b on (N, C_in, H, W), w (C_in, C_out/groups, KH, KW)."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, dilation, groups):
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        p = _transposed_params(x.shape, w.shape, stride, padding, output_padding, dilation, groups)
        y = np.empty((p.N, p.C, p.H, p.W), x.dtype)
        # conv2d_backward wants the conv's input for its shape (dx alone never reads it)
        _C.conv2d_backward(np.empty_like(y), w, x, y, None, None, *p.conf())
        if b is not None:
            y += np.asarray(b).reshape(1, -1, 1, 1)
        ctx.save_for_backward(x, w, p, b is not None)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, w, p, has_bias = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx = dw = db = None
        if need[0]:
            dx = np.empty(x.shape, x.dtype)
            _C.conv2d_forward(dy, w, None, dx, *p.conf())
        if need[1]:
            dw = np.empty(w.shape, w.dtype)
            _C.conv2d_backward(dy, w, x, None, dw, None, *p.conf())
        if has_bias and need[2]:
            db = dy.sum(axis=(0, 2, 3))
        return dx, dw, db, None, None, None, None, None


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution ("deconvolution"), PyTorch's ``F.conv_transpose2d``: the
    gradient of conv2d with respect to its input, so a stride-s layer upsamples by s. weight is
    (in_channels, out_channels/groups, kH, kW).

    >>> import lamina, lamina.nn.functional as F
    >>> F.conv_transpose2d(lamina.ones(1, 1, 2, 2), lamina.ones(1, 1, 2, 2), stride=2).shape
    lamina.Size([1, 1, 4, 4])
    """
    x, w = _as_array(input, "input"), _as_array(weight, "weight")
    if x.ndim not in (3, 4):
        raise ValueError(f"input: expected a 3-D or 4-D tensor (C, H, W) or (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"weight: expected a 4-D tensor (in_channels, out_channels/groups, kH, kW), "
                         f"got shape {w.shape}")
    _check_float(x, "input")
    if w.dtype != x.dtype:
        raise TypeError(f"weight: expected dtype {x.dtype} (the input's), got {w.dtype}")
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups: expected a positive integer, got {groups!r}")
    C = x.shape[-3]
    if w.shape[0] != C:
        raise ValueError(f"weight: expected shape[0] = in_channels = {C}, got weight shape {w.shape} "
                         f"for input shape {x.shape}")
    if C % groups:
        raise ValueError(f"groups: in_channels ({C}) must be divisible by groups={groups}")
    if bias is not None:
        b = _as_array(bias, "bias")
        if b.shape != (w.shape[1] * groups,):
            raise ValueError(f"bias: expected shape ({w.shape[1] * groups},), got {b.shape}")
        if b.dtype != x.dtype:
            raise TypeError(f"bias: expected dtype {x.dtype} (the input's), got {b.dtype}")
    stride, padding = _tuple(stride, 2, "stride", 1), _tuple(padding, 2, "padding", 0)
    dilation, output_padding = _tuple(dilation, 2, "dilation", 1), _tuple(output_padding, 2, "output_padding", 0)
    for op, st in zip(output_padding, stride):
        if op >= st:
            # PyTorch also allows output_padding < dilation; that output is not the adjoint of a conv
            raise ValueError(f"output_padding: expected each value smaller than the stride {tuple(stride)}, "
                             f"got {tuple(output_padding)}")
    args = (stride, padding, output_padding, dilation, int(groups))
    if x.ndim == 3:
        y = ConvTranspose2dFn.apply(input.reshape(1, *input.shape), weight, bias, *args)
        return y.reshape(*y.shape[1:])
    return ConvTranspose2dFn.apply(input, weight, bias, *args)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-D transposed convolution over (N, C, L) or (C, L), weight (in, out/groups, kW): the 2-D
    op on (.., 1, L)."""
    one = lambda v, name: _tuple(v, 1, name, 0)[0]  # noqa: E731
    y = conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, one(stride, "stride")),
                         (0, one(padding, "padding")), (0, one(output_padding, "output_padding")), groups,
                         (1, one(dilation, "dilation")))
    return y.squeeze(-2)


# ---- the fused conv block: max_pool2d(relu(conv2d(x, w) + b), 2) in one pass (csrc/conv_block.h)
def _block_params(x_shape, w_shape, conf):
    stride, padding, dilation, groups = conf
    (N, C, H, Wd), (K, _, KH, KW) = x_shape, w_shape
    return ConvParams(N=N, C=C, H=H, W=Wd, K=K, KH=KH, KW=KW, stride_h=int(stride[0]), stride_w=int(stride[1]),
                      pad_h=int(padding[0]), pad_w=int(padding[1]), dil_h=int(dilation[0]), dil_w=int(dilation[1]),
                      groups=int(groups))


def _lower_conv_block(L, fn):
    x, w = fn.args[0], fn.args[1]
    b = fn.args[2] if 2 in fn.tensor_pos else None
    if not is_float(x, w) or w.dtype != x.dtype:
        return False
    conv = _block_params(x.shape, w.shape, fn.args[3:7])
    code = L.g.value(fn.out.shape, np.uint8, "temp", "pool_code")
    fn.saved = ConvBlockSaved(x=x, w=w, code=code, conv=conv, has_bias=b is not None)
    L.emit("conv_block_fwd", [x, w, b], [fn.out, code], ConvAttrs(params=conv), src=fn.op)
    fn.lowered_by = "conv_block"
    return True


# The one backward of the block (eager and compiled): the conv's dy from the pooled dy and the
# window code (relu' and the pool's routing in one kernel), then the conv's backward.
ConvBlockSaved = namedtuple("ConvBlockSaved", "x w code conv has_bias")


def _conv_block_rule(k, s, dy, out):
    x, w, code, conv, has_bias = s
    db = out[2] if has_bias else None
    if out[0] or out[1] or db:
        dz = k.relu_max_pool_bwd(dy, code, conv)
        dx, dw, db = k.conv2d_bwd(x, w, dz, conv, out[0], out[1], db)
        return dx, dw, db, None, None, None, None
    return None, None, None, None, None, None, None


def _block_samples(dt):
    return [Sample((_x(dt, (2, 3, 7, 6)), _x(dt, (4, 3, 3, 3), 61), _x(dt, (4,), 62)), {"padding": 1}, name="bias"),
            Sample((_x(dt, (3, 2, 9, 9)), _x(dt, (2, 2, 3, 3), 61)), name="odd"),
            Sample((_x(dt, (17, 1, 12, 12)), _x(dt, (6, 1, 5, 5), 61), _x(dt, (6,), 62)), {"padding": 2},
                   name="lanes"),
            Sample((_x(dt, (2, 4, 8, 8)), _x(dt, (4, 2, 3, 3), 61)), {"stride": 1, "dilation": 2, "groups": 2},
                   name="dilated-groups")]


def _block_bad():
    return _conv_bad() + [BadSample((np.ones((1, 1, 3, 3), np.float32), np.ones((2, 1, 3, 3), np.float32)),
                                    error=ValueError, match="2x2")]


def _torch_block(torch, x, w, b=None, **kw):
    return torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(x, w, b, **kw)), 2)


@register("conv2d_relu_max_pool2d", lower=_lower_conv_block, backward=_conv_block_rule,
          kernels=("_C.conv2d_relu_max_pool2d_forward", "_C.relu_max_pool2d_backward", "_C.conv2d_backward"),
          dtypes=_F, call=lambda x, w, b=None, **kw: conv2d_relu_max_pool2d(x, w, b, **kw), samples=_block_samples,
          bad_samples=_block_bad, torch=_torch_block)
class Conv2dReLUMaxPool2dFn(Function):
    """y = max_pool2d(relu(conv2d(x, w) + b), 2) on (N, C, H, W): one pass writing the pooled
    output and a one-byte window code (what the backward needs), never the conv output."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        b = None if b is None else np.ascontiguousarray(b)
        OH = _out_size(x.shape[2], w.shape[2], stride[0], padding[0], dilation[0])
        OW = _out_size(x.shape[3], w.shape[3], stride[1], padding[1], dilation[1])
        shape = (x.shape[0], w.shape[0], max(OH, 0) // 2, max(OW, 0) // 2)
        y, code = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.uint8)
        _C.conv2d_relu_max_pool2d_forward(x, w, b, y, code, stride, padding, dilation, groups)
        conv = _block_params(x.shape, w.shape, (stride, padding, dilation, groups))
        ctx.save_for_backward(*ConvBlockSaved(x=x, w=w, code=code, conv=conv, has_bias=b is not None))
        return y


def conv2d_relu_max_pool2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``max_pool2d(relu(conv2d(input, weight, bias, stride, padding, dilation, groups)), 2)`` as
    one fused op (LeNet's conv blocks): the same values and gradients, bit for bit, without
    writing the conv output (in the style of ``torch.ao.nn.intrinsic.ConvReLU2d``).

    >>> import lamina, lamina.nn.functional as F
    >>> x, w = lamina.ones(1, 1, 4, 4), lamina.ones(1, 1, 1, 1)
    >>> F.conv2d_relu_max_pool2d(x, w, lamina.tensor([-0.5])).tolist()
    [[[[0.5, 0.5], [0.5, 0.5]]]]
    """
    _check_conv(input, weight, bias, groups, 2)
    if len(input.shape) != 4:
        raise ValueError(f"input: expected a 4-D tensor (N, C, H, W), got shape {tuple(input.shape)}")
    args = (_tuple(stride, 2, "stride", 1), _tuple(padding, 2, "padding", 0),
            _tuple(dilation, 2, "dilation", 1), int(groups))
    out = _spatial_out(input.shape[-2:], weight.shape[-2:], *args[:3])
    if min(out) < 2:
        raise ValueError(f"input: the conv output {out[0]}x{out[1]} is smaller than the 2x2 pool window")
    return Conv2dReLUMaxPool2dFn.apply(input, weight, bias, *args)


def _check_conv(input, weight, bias, groups, nd):
    x, w = _as_array(input, "input"), _as_array(weight, "weight")
    if x.ndim not in (nd + 1, nd + 2):
        want = "(C, L) or (N, C, L)" if nd == 1 else "(C, H, W) or (N, C, H, W)"
        raise ValueError(f"input: expected a {nd + 1}-D or {nd + 2}-D tensor {want}, got shape {x.shape}")
    if w.ndim != nd + 2:
        want = "(out_channels, in_channels/groups, kW)" if nd == 1 else \
            "(out_channels, in_channels/groups, kH, kW)"
        raise ValueError(f"weight: expected a {nd + 2}-D tensor {want}, got shape {w.shape}")
    _check_float(x, "input")
    if w.dtype != x.dtype:
        raise TypeError(f"weight: expected dtype {x.dtype} (the input's), got {w.dtype}")
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups: expected a positive integer, got {groups!r}")
    C = x.shape[-nd - 1]
    if C % groups or w.shape[0] % groups:
        raise ValueError(f"groups: in_channels ({C}) and out_channels ({w.shape[0]}) must both be "
                         f"divisible by groups={groups}")
    if w.shape[1] * groups != C:
        raise ValueError(f"weight: expected shape[1] = in_channels/groups = {C // groups}, "
                         f"got weight shape {w.shape} for input shape {x.shape}")
    if bias is not None:
        b = _as_array(bias, "bias")
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias: expected shape ({w.shape[0]},), got {b.shape}")
        if b.dtype != x.dtype:
            raise TypeError(f"bias: expected dtype {x.dtype} (the input's), got {b.dtype}")
    return x.ndim == nd + 1  # unbatched


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, PyTorch's ``torch.nn.functional.conv2d``.

    >>> import lamina, lamina.nn.functional as F
    >>> F.conv2d(lamina.ones(1, 1, 3, 3), lamina.ones(1, 1, 2, 2)).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    unbatched = _check_conv(input, weight, bias, groups, 2)
    if isinstance(padding, str):
        mode = padding
        padding = _string_padding(mode, weight.shape[2:], _tuple(dilation, 2, "dilation", 1),
                                  _tuple(stride, 2, "stride", 1))
        if padding is None:  # 'same' with an even extent: pad the odd unit after, as PyTorch
            from .nn_extra import pad
            pairs = same_pads(weight.shape[2:], _tuple(dilation, 2, "dilation", 1))
            return conv2d(pad(input, reversed_pad_pairs(pairs)), weight, bias, stride, 0, dilation, groups)
    args = (_tuple(stride, 2, "stride", 1), _tuple(padding, 2, "padding", 0),
            _tuple(dilation, 2, "dilation", 1), int(groups))
    if unbatched:
        return Conv2dFn.apply(input.reshape(1, *input.shape), weight, bias, *args).reshape(
            -1, *_spatial_out(input.shape[-2:], weight.shape[-2:], *args[:3]))
    return Conv2dFn.apply(input, weight, bias, *args)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation, PyTorch's ``torch.nn.functional.conv1d``.

    >>> import lamina, lamina.nn.functional as F
    >>> F.conv1d(lamina.tensor([[[1.0, 2.0, 3.0]]]), lamina.tensor([[[1.0, -1.0]]])).tolist()
    [[[-1.0, -1.0]]]
    """
    unbatched = _check_conv(input, weight, bias, groups, 1)
    if isinstance(padding, str):
        mode = padding
        padding = _string_padding(mode, weight.shape[2:], _tuple(dilation, 1, "dilation", 1),
                                  _tuple(stride, 1, "stride", 1))
        if padding is None:
            from .nn_extra import pad
            pairs = same_pads(weight.shape[2:], _tuple(dilation, 1, "dilation", 1))
            return conv1d(pad(input, reversed_pad_pairs(pairs)), weight, bias, stride, 0, dilation, groups)
    args = (_tuple(stride, 1, "stride", 1)[0], _tuple(padding, 1, "padding", 0)[0],
            _tuple(dilation, 1, "dilation", 1)[0], int(groups))
    if unbatched:
        L = _out_size(input.shape[-1], weight.shape[-1], args[0], args[1], args[2])
        return Conv1dFn.apply(input.reshape(1, *input.shape), weight, bias, *args).reshape(-1, L)
    return Conv1dFn.apply(input, weight, bias, *args)


def _spatial_out(size, kernel, stride, padding, dilation):
    return tuple(_out_size(s, k, st, p, d) for s, k, st, p, d in zip(size, kernel, stride, padding, dilation))


def same_pads(kernel, dilation):
    """(before, after) per spatial dim keeping the size at stride 1, as PyTorch: the total
    d (k - 1), its odd unit after."""
    return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]


def reversed_pad_pairs(pairs):
    """F.pad's list (last dim first) for per-dim (before, after) pairs."""
    return tuple(v for before, after in reversed(pairs) for v in (before, after))


def _string_padding(mode, kernel, dilation, stride):
    """padding='valid' -> 0; 'same' -> the padding keeping the size (stride 1), a per-dim tuple,
    or None when it is asymmetric (an even dilated extent): the caller pads the input first."""
    if mode == "valid":
        return (0,) * len(kernel)
    if mode == "same":
        if any(s != 1 for s in stride):
            raise ValueError("padding: 'same' is only supported with stride 1")
        pairs = same_pads(kernel, dilation)
        return tuple(b for b, _ in pairs) if all(b == a for b, a in pairs) else None
    raise ValueError(f"padding: expected an int, a tuple, 'valid' or 'same', got {mode!r}")




# ---------------------------------------------------------------------------- unfold / fold
# F.unfold is im2col made visible: (N, C, H, W) -> (N, C*kh*kw, L), L sliding blocks, row index
# c*kh*kw + i*kw + j (PyTorch's order); F.fold is its adjoint, col2im, summing where blocks
# overlap. Each one's backward is the other, on the same geometry.
_Blocks = namedtuple("_Blocks", "kernel dilation padding stride")


def _blocks(kernel_size, dilation, padding, stride):
    return _Blocks(_tuple(kernel_size, 2, "kernel_size", 1), _tuple(dilation, 2, "dilation", 1),
                   _tuple(padding, 2, "padding", 0), _tuple(stride, 2, "stride", 1))


def _grid(hw, b):
    """Number of block positions along H and W for an (H, W) image."""
    return tuple(_out_size(hw[d], b.kernel[d], b.stride[d], b.padding[d], b.dilation[d]) for d in range(2))


def _tap(b, i, j, grid):
    """The padded-image slices tap (i, j) of every block reads."""
    (dh, dw), (sh, sw), (oh, ow) = b.dilation, b.stride, grid
    return (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _unfold_array(x, b):
    N, C, H, W = x.shape
    (kh, kw), (ph, pw) = b.kernel, b.padding
    grid = _grid((H, W), b)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = np.empty((N, C, kh, kw) + grid, x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[(slice(None), slice(None)) + _tap(b, i, j, grid)]
    return cols.reshape(N, C * kh * kw, grid[0] * grid[1])


def _fold_array(cols, hw, b):
    N, CK, _ = cols.shape
    (kh, kw), (ph, pw) = b.kernel, b.padding
    C = CK // (kh * kw)
    grid = _grid(hw, b)
    blocks = cols.reshape(N, C, kh, kw, *grid)
    xp = np.zeros((N, C, hw[0] + 2 * ph, hw[1] + 2 * pw), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[(slice(None), slice(None)) + _tap(b, i, j, grid)] += blocks[:, :, i, j]
    return np.ascontiguousarray(xp[:, :, ph:ph + hw[0], pw:pw + hw[1]])


def _unfold_samples(dt):
    return [Sample((_x(dt, (2, 3, 5, 6)),), {"kernel_size": 2}, name="plain"),
            Sample((_x(dt, (1, 2, 7, 6)),), {"kernel_size": (3, 2), "dilation": (1, 2), "padding": 1,
                                               "stride": (2, 1)}, name="all"),
            Sample((_x(dt, (2, 5, 4)),), {"kernel_size": 3, "padding": 1}, name="unbatched")]


def _fold_samples(dt):
    return [Sample((_x(dt, (2, 12, 20)),), {"output_size": (5, 6), "kernel_size": 2}, name="plain"),
            Sample((_x(dt, (1, 12, 24)),), {"output_size": (7, 6), "kernel_size": (3, 2), "dilation": (1, 2),
                                             "padding": 1, "stride": (2, 1)}, name="all"),
            Sample((_x(dt, (45, 16)),), {"output_size": 4, "kernel_size": 3, "padding": 1}, name="unbatched")]


@register("unfold", dtypes=_F, call=lambda x, **kw: unfold(x, **kw), samples=_unfold_samples,
          bad_samples=lambda: [BadSample((np.ones((2, 3), np.float32),), {"kernel_size": 2}, ValueError, "3-D or 4-D"),
                               BadSample((np.ones((1, 1, 2, 2), np.float32),), {"kernel_size": 3}, ValueError,
                                         "too small")],
          torch=lambda torch, x, **kw: torch.nn.functional.unfold(x, **kw))
class Unfold(Function):
    @staticmethod
    def forward(ctx, x, blocks):
        ctx.hw, ctx.blocks = x.shape[2:], blocks
        return _unfold_array(x, blocks)

    @staticmethod
    def backward(ctx, dy):
        return _fold_array(dy, ctx.hw, ctx.blocks), None


@register("fold", dtypes=_F, call=lambda x, **kw: fold(x, **kw), samples=_fold_samples,
          bad_samples=lambda: [BadSample((np.ones((1, 12, 19), np.float32),), {"output_size": (5, 6), "kernel_size": 2},
                                         ValueError, "sliding blocks")],
          torch=lambda torch, x, **kw: torch.nn.functional.fold(x, **kw))
class Fold(Function):
    @staticmethod
    def forward(ctx, cols, hw, blocks):
        ctx.blocks = blocks
        return _fold_array(cols, hw, blocks)

    @staticmethod
    def backward(ctx, dy):
        return _unfold_array(dy, ctx.blocks), None, None






def _float_tensor(x, name, op):
    from ..tensor import Tensor
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a lamina Tensor, got {type(x).__name__}")
    if x.dtype not in _F:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {x.dtype}")


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks of a batch of images as columns, PyTorch's ``F.unfold`` (im2col):
    (N, C, H, W) -> (N, C * kh * kw, L), or (C, H, W) -> (C * kh * kw, L).

    >>> import lamina, lamina.nn.functional as F
    >>> F.unfold(lamina.arange(9.0).reshape(1, 1, 3, 3), 2).tolist()
    [[[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]]
    """
    _float_tensor(input, "input", "unfold")
    if input.ndim not in (3, 4):
        raise ValueError(f"unfold: expected a 3-D or 4-D input (C, H, W) or (N, C, H, W), got shape {tuple(input.shape)}")
    b = _blocks(kernel_size, dilation, padding, stride)
    hw = tuple(input.shape[-2:])
    grid = _grid(hw, b)
    if min(grid) < 1:
        raise ValueError(f"unfold: input {hw} (padding {b.padding}) is too small for kernel_size {b.kernel} "
                         f"with dilation {b.dilation}: no sliding block fits")
    if input.ndim == 3:
        return Unfold.apply(input.reshape(1, *input.shape), b).reshape(-1, grid[0] * grid[1])
    return Unfold.apply(input, b)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum sliding blocks back into images, PyTorch's ``F.fold`` (col2im, the adjoint of unfold):
    (N, C * kh * kw, L) -> (N, C, H, W), or (C * kh * kw, L) -> (C, H, W).

    >>> import lamina, lamina.nn.functional as F
    >>> F.fold(lamina.ones(1, 4, 4), (3, 3), 2).tolist()
    [[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]
    """
    _float_tensor(input, "input", "fold")
    if input.ndim not in (2, 3):
        raise ValueError(f"fold: expected a 2-D or 3-D input (C*kh*kw, L) or (N, C*kh*kw, L), "
                         f"got shape {tuple(input.shape)}")
    hw = _tuple(output_size, 2, "output_size", 1)
    b = _blocks(kernel_size, dilation, padding, stride)
    kk = b.kernel[0] * b.kernel[1]
    ck, L = input.shape[-2:]
    if ck % kk:
        raise ValueError(f"fold: expected size of input's dimension {input.ndim - 2} to be divisible by the "
                         f"product of kernel_size {kk}, but got input.size({input.ndim - 2})={ck}")
    grid = _grid(hw, b)
    if min(grid) < 1 or grid[0] * grid[1] != L:
        raise ValueError(f"fold: given output_size={hw}, kernel_size={b.kernel}, dilation={b.dilation}, "
                         f"padding={b.padding}, stride={b.stride}, expected size of input's dimension "
                         f"{input.ndim - 1} to match the calculated number of sliding blocks "
                         f"{grid[0]} * {grid[1]} = {grid[0] * grid[1]}, but got input.size({input.ndim - 1})={L}")
    if input.ndim == 2:
        return Fold.apply(input.reshape(1, *input.shape), hw, b).reshape(-1, *hw)
    return Fold.apply(input, hw, b)
