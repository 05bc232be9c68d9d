"""Never crash, never misread: every bad input to a `_C` kernel and to the public API is a
ValueError / TypeError whose message names the argument (expected vs actual).

Each row of CASES is (id, expected exception, regex the message must match, thunk). Run this
file as a script to print the table "bad input -> error received":

    PYTHONPATH=python python tests/test_validation.py

The 64-bit tests at the bottom address arrays whose element offsets pass 2**31 without
allocating them: the buffers are MAP_NORESERVE anonymous mappings, so untouched pages cost
nothing and reading them yields zeros.
"""
import mmap
import os
import re
import sys

import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import _C, nn

f32, f64 = np.float32, np.float64


def z(*shape, dtype=f64):
    return np.zeros(shape, dtype)


def readonly(a):
    a.flags.writeable = False
    return a


def colstrided(*shape, dtype=f64):
    """A view whose last axis has stride 2 (not row-contiguous)."""
    return np.zeros(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]


def overlapping_rows(rows, cols, dtype=f64):
    """A writeable (rows, cols) view whose rows all alias one buffer row (row stride 0)."""
    base = np.zeros(cols, dtype)
    return np.lib.stride_tricks.as_strided(base, (rows, cols), (0, base.itemsize), writeable=True)


def conv_args(x=None, w=None, b=None, y=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
              dtype=f32):
    x = z(1, 2, 5, 5, dtype=dtype) if x is None else x
    w = z(3, 2, 3, 3, dtype=dtype) if w is None else w
    y = z(1, 3, 3, 3, dtype=dtype) if y is None else y
    return (x, w, b, y, stride, padding, dilation, groups)


def conv_bwd_args(dy=None, dx=None, dw=None, db=None, **kw):
    x, w, _, y, s, p, d, g = conv_args(**kw)
    dy = np.zeros_like(y) if dy is None else dy
    return (x, w, dy, dx, dw, db, s, p, d, g)


def pool_args(x=None, y=None, idx=None, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
              ceil_mode=False):
    x = z(1, 2, 4, 4) if x is None else x
    y = z(1, 2, 2, 2) if y is None else y
    idx = np.zeros((1, 2, 2, 2), np.int64) if idx is None else idx
    return (x, y, idx, kernel, stride, padding, dilation, ceil_mode)


def adam(param=None, grad=None, m=None, v=None, vmax=None, step=1, amsgrad=False):
    param = z(3) if param is None else param
    grad = z(3) if grad is None else grad
    m = z(3) if m is None else m
    v = z(3) if v is None else v
    return _C.adam_step(param, grad, m, v, vmax, step, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, amsgrad)


def sgd(param=None, grad=None, buf=None, momentum=0.0, dampening=0.0, nesterov=False):
    param = z(3) if param is None else param
    grad = z(3) if grad is None else grad
    return _C.sgd_step(param, grad, buf, 0.1, momentum, dampening, 0.0, nesterov, True)


def shared(n=8):
    """Two overlapping views into one buffer (partial aliasing)."""
    base = np.zeros(n + 2)
    return base[:n], base[2:]


def _sgd_step_with_grad(grad_shape):
    p = nn.Parameter(np.zeros(3))
    opt = lamina.optim.SGD([p], lr=0.1)
    p.grad = lamina.tensor(np.zeros(grad_shape))
    opt.step()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def _bad_file(kind, tmp):
    if kind == "garbage":
        return _write(os.path.join(tmp, "garbage.safetensors"), b"\x01\x02\x03")
    if kind == "huge_header":  # header length claims 2**62 bytes
        return _write(os.path.join(tmp, "huge.safetensors"), (2 ** 62).to_bytes(8, "little") + b"{}")
    if kind == "truncated":
        p = os.path.join(tmp, "ok.safetensors")
        lamina.save({"w": np.arange(100, dtype=f32)}, p)
        raw = open(p, "rb").read()
        return _write(os.path.join(tmp, "trunc.safetensors"), raw[: len(raw) - 50])
    if kind == "bad_json":
        return _write(os.path.join(tmp, "json.safetensors"), (5).to_bytes(8, "little") + b"{nope")
    raise AssertionError(kind)


a34, b45 = z(3, 4), z(4, 5)
# (id, exception, message regex, thunk). The regex always names the offending argument.
CASES = [
    # ---------------------------------------------------------------- _C.gemm / gemm_batched
    ("gemm a int32", TypeError, r"^a: expected dtype float32 or float64, got int32",
     lambda: _C.gemm(z(3, 4, dtype=np.int32), b45, z(3, 5))),
    ("gemm b float32 vs a float64", TypeError, r"^b: expected dtype float64",
     lambda: _C.gemm(a34, z(4, 5, dtype=f32), z(3, 5))),
    ("gemm c float32 vs float64", TypeError, r"^c: expected dtype float64",
     lambda: _C.gemm(a34, b45, z(3, 5, dtype=f32))),
    ("gemm a 1-D", ValueError, r"^a: expected 2-D array, got 1-D", lambda: _C.gemm(z(4), b45, z(3, 5))),
    ("gemm K mismatch", ValueError, r"^b: expected shape \(4, \*\)", lambda: _C.gemm(a34, z(5, 5), z(3, 5))),
    ("gemm K mismatch trans_b", ValueError, r"^b: expected shape \(\*, 4\) \(trans_b=True\)",
     lambda: _C.gemm(a34, z(5, 5), z(3, 5), trans_b=True)),
    ("gemm c wrong shape", ValueError, r"^c: expected shape \(3, 5\)", lambda: _C.gemm(a34, b45, z(5, 3))),
    ("gemm c read-only", ValueError, r"^c: expected a writeable array",
     lambda: _C.gemm(a34, b45, readonly(z(3, 5)))),
    ("gemm c aliases a", ValueError, r"^c: output must not overlap input a",
     lambda: (lambda s: _C.gemm(s, s, s))(z(4, 4))),
    ("gemm c overlaps b partially", ValueError, r"^c: output must not overlap input b",
     lambda: (lambda buf: _C.gemm(z(3, 3), buf[:9].reshape(3, 3), buf[3:12].reshape(3, 3)))(z(12))),
    ("gemm a column-strided", ValueError, r"^a: expected the last stride to equal the itemsize",
     lambda: _C.gemm(colstrided(3, 4), b45, z(3, 5))),
    ("gemm a negative row stride", ValueError, r"^a: expected a non-negative row stride",
     lambda: _C.gemm(np.zeros((3, 4))[::-1], b45, z(3, 5))),
    ("gemm c rows overlap (stride 0)", ValueError, r"^c: expected rows that do not overlap",
     lambda: _C.gemm(a34, b45, overlapping_rows(3, 5))),
    ("gemm bias wrong length", ValueError, r"^bias: expected shape \(5,\), got \(3,\)",
     lambda: _C.gemm(a34, b45, z(3, 5), bias=z(3))),
    ("gemm bias row axis wrong length", ValueError, r"^bias: expected shape \(3,\)",
     lambda: _C.gemm(a34, b45, z(3, 5), bias=z(5), bias_axis="row")),
    ("gemm bias float32", TypeError, r"^bias: expected dtype float64",
     lambda: _C.gemm(a34, b45, z(3, 5), bias=z(5, dtype=f32))),
    ("gemm bias is a list", TypeError, r"^bias: expected a numpy array or None, got list",
     lambda: _C.gemm(a34, b45, z(3, 5), bias=[0.0] * 5)),
    ("gemm bias 2-D", ValueError, r"^bias: expected 1-D", lambda: _C.gemm(a34, b45, z(3, 5), bias=z(1, 5))),
    ("gemm act unknown", ValueError, r"^act: expected one of", lambda: _C.gemm(a34, b45, z(3, 5), act="gelu")),
    ("gemm bias_axis unknown", ValueError, r"^bias_axis: expected 'col'",
     lambda: _C.gemm(a34, b45, z(3, 5), bias=z(5), bias_axis="diag")),
    ("gemm_reference a int64", TypeError, r"^a: expected dtype float32 or float64, got int64",
     lambda: _C.gemm_reference(z(3, 4, dtype=np.int64), b45, z(3, 5))),
    ("gemm_batched a 2-D", ValueError, r"^a: expected 3-D", lambda: _C.gemm_batched(a34, z(2, 4, 5), z(2, 3, 5))),
    ("gemm_batched b batch mismatch", ValueError, r"^b: expected shape \(2, 4, 5\)",
     lambda: _C.gemm_batched(z(2, 3, 4), z(3, 4, 5), z(2, 3, 5))),
    ("gemm_batched c shape", ValueError, r"^c: expected shape \(2, 3, 5\)",
     lambda: _C.gemm_batched(z(2, 3, 4), z(2, 4, 5), z(2, 5, 3))),
    ("gemm_batched a not contiguous", ValueError, r"^a: expected a C-contiguous array",
     lambda: _C.gemm_batched(colstrided(2, 3, 4), z(2, 4, 5), z(2, 3, 5))),
    ("gemm_batched c aliases b", ValueError, r"^c: output must not overlap input b",
     lambda: (lambda s: _C.gemm_batched(z(2, 3, 3), s, s))(z(2, 3, 3))),
    ("gemm_batched int", TypeError, r"^a: expected dtype float32 or float64",
     lambda: _C.gemm_batched(z(2, 3, 4, dtype=np.int32), z(2, 4, 5), z(2, 3, 5))),
    # ---------------------------------------------------------------- activations
    ("act_forward unknown kind", ValueError, r"^kind: expected one of",
     lambda: _C.act_forward("swish", z(3), z(3))),
    ("act_forward x int64", TypeError, r"^x: expected dtype float32 or float64, got int64",
     lambda: _C.act_forward("relu", z(3, dtype=np.int64), z(3))),
    ("act_forward y float32", TypeError, r"^y: expected dtype float64",
     lambda: _C.act_forward("relu", z(3), z(3, dtype=f32))),
    ("act_forward y shape", ValueError, r"^y: expected shape \(3,\), got \(4,\)",
     lambda: _C.act_forward("relu", z(3), z(4))),
    ("act_forward y read-only", ValueError, r"^y: expected a writeable array",
     lambda: _C.act_forward("tanh", z(3), readonly(z(3)))),
    ("act_forward y not contiguous", ValueError, r"^y: expected a C-contiguous array",
     lambda: _C.act_forward("relu", z(3, 4), colstrided(3, 4))),
    ("act_forward x not contiguous", ValueError, r"^x: expected a C-contiguous array",
     lambda: _C.act_forward("relu", colstrided(3, 4), z(3, 4))),
    ("act_forward y overlaps x partially", ValueError, r"^y: output must not overlap input x",
     lambda: (lambda s: _C.act_forward("relu", s[0], s[1]))(shared())),
    ("act_backward sigmoid without y", ValueError, r"^y: sigmoid backward reads the forward output y, got None",
     lambda: _C.act_backward("sigmoid", z(3), None, z(3), z(3))),
    ("act_backward relu x is a list", TypeError, r"^x: expected a numpy array",
     lambda: _C.act_backward("relu", [0.0, 1.0], None, z(2), z(2))),
    ("act_backward dy shape", ValueError, r"^dy: expected shape \(3,\)",
     lambda: _C.act_backward("relu", z(3), None, z(4), z(3))),
    ("act_backward dx dtype", TypeError, r"^dx: expected dtype float64",
     lambda: _C.act_backward("relu", z(3), None, z(3), z(3, dtype=f32))),
    ("act_backward dx overlaps dy", ValueError, r"^dx: output must not overlap input dy",
     lambda: (lambda s: _C.act_backward("relu", z(8), None, s[0], s[1]))(shared())),
    ("bias_add_rows 0-d y", ValueError, r"^y: expected an array with at least 1 dimension",
     lambda: _C.bias_add_rows(z(), z(1))),
    ("bias_add_rows b shape", ValueError, r"^b: expected shape \(4,\), got \(3,\)",
     lambda: _C.bias_add_rows(z(2, 4), z(3))),
    ("bias_add_rows y read-only", ValueError, r"^y: expected a writeable array",
     lambda: _C.bias_add_rows(readonly(z(2, 4)), z(4))),
    ("bias_add_channels y 1-D", ValueError, r"^y: expected shape \(N, C, \*spatial\)",
     lambda: _C.bias_add_channels(z(4), z(4))),
    ("bias_add_channels b dtype", TypeError, r"^b: expected dtype float64",
     lambda: _C.bias_add_channels(z(1, 2, 3), z(2, dtype=f32))),
    ("bias_grad_rows db shape", ValueError, r"^db: expected shape \(4,\)",
     lambda: _C.bias_grad_rows(z(2, 4), z(2))),
    ("bias_grad_channels db aliases dy", ValueError, r"^db: output must not overlap input dy",
     lambda: (lambda dy: _C.bias_grad_channels(dy, dy.reshape(-1)[:2]))(z(1, 2, 1))),
    # ---------------------------------------------------------------- softmax / losses
    ("softmax_forward x 1-D", ValueError, r"^x: expected 2-D array, got 1-D",
     lambda: _C.softmax_forward(z(3), z(3))),
    ("softmax_forward y shape", ValueError, r"^y: expected shape \(2, 3\), got \(3, 2\)",
     lambda: _C.softmax_forward(z(2, 3), z(3, 2))),
    ("softmax_forward x float16", TypeError, r"^x: expected dtype float32 or float64, got float16",
     lambda: _C.softmax_forward(z(2, 3, dtype=np.float16), z(2, 3, dtype=np.float16))),
    ("softmax_backward dy shape", ValueError, r"^dy: expected shape \(2, 3\)",
     lambda: _C.softmax_backward(z(2, 3), z(2, 4), z(2, 3))),
    ("log_softmax_forward y is x", ValueError, r"^y: output must not overlap input x",
     lambda: (lambda s: _C.log_softmax_forward(s, s))(z(2, 3))),
    ("log_softmax_backward dx dtype", TypeError, r"^dx: expected dtype float64",
     lambda: _C.log_softmax_backward(z(2, 3), z(2, 3), z(2, 3, dtype=f32))),
    ("cross_entropy target int32", TypeError, r"^target: expected dtype int64 \(class indices\), got int32",
     lambda: _C.cross_entropy_forward(z(2, 3), np.zeros(2, np.int32), z(2, 3))),
    ("cross_entropy target float", TypeError, r"^target: expected dtype int64",
     lambda: _C.cross_entropy_forward(z(2, 3), z(2), z(2, 3))),
    ("cross_entropy target length", ValueError, r"^target: expected shape \(2,\), got \(3,\)",
     lambda: _C.cross_entropy_forward(z(2, 3), np.zeros(3, np.int64), z(2, 3))),
    ("cross_entropy target out of range", ValueError, r"^target: class index 3 out of range \[0, 3\) at position 1",
     lambda: _C.cross_entropy_forward(z(2, 3), np.array([0, 3]), z(2, 3))),
    ("cross_entropy target negative", ValueError, r"^target: class index -2 out of range",
     lambda: _C.cross_entropy_forward(z(2, 3), np.array([-2, 0]), z(2, 3))),
    ("cross_entropy zero classes", ValueError, r"^target: class index 0 out of range \[0, 0\)",
     lambda: _C.cross_entropy_forward(z(2, 0), np.zeros(2, np.int64), z(2, 0))),
    ("cross_entropy logits int", TypeError, r"^logits: expected dtype float32 or float64",
     lambda: _C.cross_entropy_forward(z(2, 3, dtype=np.int64), np.zeros(2, np.int64), z(2, 3))),
    ("cross_entropy probs shape", ValueError, r"^probs: expected shape \(2, 3\)",
     lambda: _C.cross_entropy_forward(z(2, 3), np.zeros(2, np.int64), z(2, 2))),
    ("cross_entropy losses shape", ValueError, r"^losses: expected shape \(2,\)",
     lambda: _C.cross_entropy_forward(z(2, 3), np.zeros(2, np.int64), z(2, 3), -100, z(3))),
    ("cross_entropy losses is a list", TypeError, r"^losses: expected a numpy array or None",
     lambda: _C.cross_entropy_forward(z(2, 3), np.zeros(2, np.int64), z(2, 3), -100, [0.0, 0.0])),
    ("cross_entropy_backward target out of range", ValueError, r"^target: class index 7 out of range",
     lambda: _C.cross_entropy_backward(z(2, 3), np.array([0, 7]), z(2, 3), 1.0)),
    ("cross_entropy_backward dlogits shape", ValueError, r"^dlogits: expected shape \(2, 3\)",
     lambda: _C.cross_entropy_backward(z(2, 3), np.zeros(2, np.int64), z(3, 2), 1.0)),
    ("mse_forward t shape", ValueError, r"^t: expected shape \(3,\), got \(4,\)",
     lambda: _C.mse_forward(z(3), z(4))),
    ("mse_forward t dtype", TypeError, r"^t: expected dtype float64", lambda: _C.mse_forward(z(3), z(3, dtype=f32))),
    ("mse_backward dx shape", ValueError, r"^dx: expected shape \(3,\)",
     lambda: _C.mse_backward(z(3), z(3), 1.0, z(2))),
    ("mse_backward dx read-only", ValueError, r"^dx: expected a writeable array",
     lambda: _C.mse_backward(z(3), z(3), 1.0, readonly(z(3)))),
    ("bce_forward t shape", ValueError, r"^t: expected shape \(2, 2\)",
     lambda: _C.bce_with_logits_forward(z(2, 2), z(4))),
    ("bce_backward dx dtype", TypeError, r"^dx: expected dtype float64",
     lambda: _C.bce_with_logits_backward(z(3), z(3), 1.0, z(3, dtype=f32))),
    # ---------------------------------------------------------------- optimizers
    ("sgd_step param int64", TypeError, r"^param: expected dtype float32 or float64, got int64",
     lambda: sgd(param=z(3, dtype=np.int64), grad=z(3, dtype=np.int64))),
    ("sgd_step grad shape", ValueError, r"^grad: expected shape \(3,\), got \(4,\)", lambda: sgd(grad=z(4))),
    ("sgd_step grad dtype", TypeError, r"^grad: expected dtype float64", lambda: sgd(grad=z(3, dtype=f32))),
    ("sgd_step momentum without buf", ValueError, r"^buf: momentum=0.9 needs a momentum buffer, got None",
     lambda: sgd(momentum=0.9)),
    ("sgd_step buf shape", ValueError, r"^buf: expected shape \(3,\)", lambda: sgd(momentum=0.9, buf=z(2))),
    ("sgd_step buf is a list", TypeError, r"^buf: expected a numpy array", lambda: sgd(momentum=0.9, buf=[0.0] * 3)),
    ("sgd_step nesterov with dampening", ValueError, r"^nesterov: requires momentum > 0 and dampening = 0",
     lambda: sgd(momentum=0.9, buf=z(3), dampening=0.1, nesterov=True)),
    ("sgd_step param read-only", ValueError, r"^param: expected a writeable array", lambda: sgd(param=readonly(z(3)))),
    ("sgd_step param is grad", ValueError, r"^param: output must not overlap input grad",
     lambda: (lambda p: sgd(param=p, grad=p))(z(3))),
    ("sgd_step buf is grad", ValueError, r"^buf: output must not overlap input grad",
     lambda: (lambda g: sgd(grad=g, buf=g, momentum=0.9))(z(3))),
    ("adam_step step 0", ValueError, r"^step: expected the step count after this update \(>= 1\), got 0",
     lambda: adam(step=0)),
    ("adam_step exp_avg shape", ValueError, r"^exp_avg: expected shape \(3,\), got \(2,\)", lambda: adam(m=z(2))),
    ("adam_step exp_avg_sq dtype", TypeError, r"^exp_avg_sq: expected dtype float64", lambda: adam(v=z(3, dtype=f32))),
    ("adam_step amsgrad without buffer", ValueError, r"^max_exp_avg_sq: amsgrad=True needs a buffer",
     lambda: adam(amsgrad=True)),
    ("adam_step exp_avg is exp_avg_sq", ValueError, r"^exp_avg_sq: output must not overlap input exp_avg",
     lambda: (lambda m: adam(m=m, v=m))(z(3))),
    ("adam_step exp_avg is grad", ValueError, r"^exp_avg: output must not overlap input grad",
     lambda: (lambda g: adam(grad=g, m=g))(z(3))),
    ("adam_step max_exp_avg_sq is exp_avg", ValueError, r"^max_exp_avg_sq: output must not overlap input exp_avg\b",
     lambda: (lambda m: adam(m=m, vmax=m, amsgrad=True))(z(3))),
    # ---------------------------------------------------------------- convolution
    ("conv2d input 3-D", ValueError, r"^input: expected 4-D array, got 3-D",
     lambda: _C.conv2d_forward(*conv_args(x=z(2, 5, 5, dtype=f32)))),
    ("conv2d weight in-channels", ValueError, r"^weight: expected shape\[1\] == in_channels/groups = 2",
     lambda: _C.conv2d_forward(*conv_args(w=z(3, 1, 3, 3, dtype=f32)))),
    ("conv2d stride 0", ValueError, r"^stride: expected positive integers, got \(0, 1\)",
     lambda: _C.conv2d_forward(*conv_args(stride=(0, 1)))),
    ("conv2d stride negative", ValueError, r"^stride: expected positive integers, got \(1, -2\)",
     lambda: _C.conv2d_forward(*conv_args(stride=(1, -2)))),
    ("conv2d padding negative", ValueError, r"^padding: expected non-negative integers",
     lambda: _C.conv2d_forward(*conv_args(padding=(-1, 0)))),
    ("conv2d dilation 0", ValueError, r"^dilation: expected positive integers",
     lambda: _C.conv2d_forward(*conv_args(dilation=(1, 0)))),
    ("conv2d groups 0", ValueError, r"^groups: expected a positive integer, got 0",
     lambda: _C.conv2d_forward(*conv_args(groups=0))),
    ("conv2d groups not dividing", ValueError, r"^groups: output channels 3 .* not divisible by groups=2",
     lambda: _C.conv2d_forward(*conv_args(w=z(3, 1, 3, 3, dtype=f32), groups=2))),
    ("conv2d kernel larger than input", ValueError, r"^weight: kernel 7x7 .* larger than the padded input 5x5",
     lambda: _C.conv2d_forward(*conv_args(w=z(3, 2, 7, 7, dtype=f32)))),
    ("conv2d empty weight", ValueError, r"^weight: expected non-empty shape",
     lambda: _C.conv2d_forward(*conv_args(w=z(0, 2, 3, 3, dtype=f32), y=z(1, 0, 3, 3, dtype=f32)))),
    ("conv2d out shape", ValueError, r"^out: expected shape \(1, 3, 3, 3\), got \(1, 3, 2, 2\)",
     lambda: _C.conv2d_forward(*conv_args(y=z(1, 3, 2, 2, dtype=f32)))),
    ("conv2d out dtype", TypeError, r"^out: expected dtype float32 \(same as input\), got float64",
     lambda: _C.conv2d_forward(*conv_args(y=z(1, 3, 3, 3)))),
    ("conv2d weight dtype", TypeError, r"^weight: expected dtype float32",
     lambda: _C.conv2d_forward(*conv_args(w=z(3, 2, 3, 3)))),
    ("conv2d input float16", TypeError, r"^input: expected dtype float32 or float64, got float16",
     lambda: _C.conv2d_forward(*conv_args(dtype=np.float16))),
    ("conv2d input not contiguous", ValueError, r"^input: expected a C-contiguous array",
     lambda: _C.conv2d_forward(*conv_args(x=colstrided(1, 2, 5, 5, dtype=f32)))),
    ("conv2d out read-only", ValueError, r"^out: expected a writeable array",
     lambda: _C.conv2d_forward(*conv_args(y=readonly(z(1, 3, 3, 3, dtype=f32))))),
    ("conv2d bias shape", ValueError, r"^bias: expected shape \(3,\), got \(2,\)",
     lambda: _C.conv2d_forward(*conv_args(b=z(2, dtype=f32)))),
    ("conv2d bias is a list", TypeError, r"^bias: expected a numpy array or None",
     lambda: _C.conv2d_forward(*conv_args(b=[0.0, 0.0, 0.0]))),
    ("conv2d out overlaps input", ValueError, r"^out: output must not overlap input input",
     lambda: (lambda buf: _C.conv2d_forward(*conv_args(x=buf[:50].reshape(1, 2, 5, 5),
                                                       y=buf[10:37].reshape(1, 3, 3, 3))))(z(60, dtype=f32))),
    ("conv2d padding overflows int64", ValueError, r"^padding: expected values below 2\^31",
     lambda: _C.conv2d_forward(*conv_args(padding=(2 ** 62, 0)))),
    ("conv2d dilation overflows int64", ValueError, r"^dilation: expected values below 2\^31",
     lambda: _C.conv2d_forward(*conv_args(dilation=(2 ** 62, 1)))),
    ("conv2d stride beyond int64", TypeError, r"stride",
     lambda: _C.conv2d_forward(*conv_args(stride=(2 ** 64, 1)))),
    ("conv2d_backward grad_output shape", ValueError, r"^grad_output: expected shape \(1, 3, 3, 3\)",
     lambda: _C.conv2d_backward(*conv_bwd_args(dy=z(1, 3, 2, 2, dtype=f32)))),
    ("conv2d_backward grad_input shape", ValueError, r"^grad_input: expected shape \(1, 2, 5, 5\)",
     lambda: _C.conv2d_backward(*conv_bwd_args(dx=z(1, 2, 4, 4, dtype=f32)))),
    ("conv2d_backward grad_weight dtype", TypeError, r"^grad_weight: expected dtype float32",
     lambda: _C.conv2d_backward(*conv_bwd_args(dw=z(3, 2, 3, 3)))),
    ("conv2d_backward grad_bias is a list", TypeError, r"^grad_bias: expected a numpy array or None",
     lambda: _C.conv2d_backward(*conv_bwd_args(db=[0.0] * 3))),
    ("conv2d_backward grad_input aliases grad_output", ValueError, r"^grad_input: output must not overlap input grad_output",
     lambda: (lambda buf: _C.conv2d_backward(*conv_bwd_args(dy=buf[:27].reshape(1, 3, 3, 3),
                                                            dx=buf[:50].reshape(1, 2, 5, 5))))(z(50, dtype=f32))),
    ("conv_output_size stride 0", ValueError, r"^stride: expected a positive integer, got 0",
     lambda: _C.conv_output_size(5, 3, 0, 0, 1)),
    ("conv_output_size kernel 0", ValueError, r"^kernel: expected a positive integer, got 0",
     lambda: _C.conv_output_size(5, 0, 1, 0, 1)),
    # ---------------------------------------------------------------- pooling
    ("max_pool2d kernel 0", ValueError, r"^kernel_size: expected positive integers, got \(0, 2\)",
     lambda: _C.max_pool2d_forward(*pool_args(kernel=(0, 2)))),
    ("max_pool2d stride negative", ValueError, r"^stride: expected positive integers",
     lambda: _C.max_pool2d_forward(*pool_args(stride=(-1, 2)))),
    ("max_pool2d padding > kernel/2", ValueError, r"^padding: expected at most half the kernel size",
     lambda: _C.max_pool2d_forward(*pool_args(padding=(2, 0)))),
    ("max_pool2d dilation 0", ValueError, r"^dilation: expected positive integers",
     lambda: _C.max_pool2d_forward(*pool_args(dilation=(0, 1)))),
    ("max_pool2d window larger than input", ValueError, r"^kernel_size: window \(5, 5\)",
     lambda: _C.max_pool2d_forward(*pool_args(kernel=(5, 5)))),
    ("max_pool2d indices int32", TypeError, r"^indices: expected dtype int64, got int32",
     lambda: _C.max_pool2d_forward(*pool_args(idx=np.zeros((1, 2, 2, 2), np.int32)))),
    ("max_pool2d out shape", ValueError, r"^out: expected shape \(1, 2, 2, 2\)",
     lambda: _C.max_pool2d_forward(*pool_args(y=z(1, 2, 3, 3)))),
    ("max_pool2d input 2-D", ValueError, r"^input: expected 4-D array, got 2-D",
     lambda: _C.max_pool2d_forward(*pool_args(x=z(4, 4)))),
    ("max_pool2d empty plane", ValueError, r"^input: expected non-empty \(C, H, W\)",
     lambda: _C.max_pool2d_forward(*pool_args(x=z(1, 2, 0, 4)))),
    ("max_pool2d input int64", TypeError, r"^input: expected dtype float32 or float64, got int64",
     lambda: _C.max_pool2d_forward(*pool_args(x=z(1, 2, 4, 4, dtype=np.int64), y=z(1, 2, 2, 2, dtype=np.int64)))),
    ("max_pool2d stride overflows", ValueError, r"^stride: expected values below 2\^31",
     lambda: _C.max_pool2d_forward(*pool_args(stride=(2 ** 62, 2)))),
    ("max_pool2d kernel overflows", ValueError, r"^kernel_size: expected values below 2\^31",
     lambda: _C.max_pool2d_forward(*pool_args(kernel=(2 ** 62, 2), padding=(2 ** 61, 0),
                                             y=z(1, 2, 5, 2), idx=np.zeros((1, 2, 5, 2), np.int64)))),
    ("max_pool2d_backward index out of range", ValueError, r"^indices: expected values in \[0, 16\), got 99",
     lambda: _C.max_pool2d_backward(z(1, 2, 2, 2), np.full((1, 2, 2, 2), 99, np.int64), z(1, 2, 4, 4),
                                    (2, 2), (2, 2), (0, 0), (1, 1), False)),
    ("max_pool2d_backward negative index", ValueError, r"^indices: expected values in \[0, 16\), got -1",
     lambda: _C.max_pool2d_backward(z(1, 2, 2, 2), np.full((1, 2, 2, 2), -1, np.int64), z(1, 2, 4, 4),
                                    (2, 2), (2, 2), (0, 0), (1, 1), False)),
    ("max_pool2d_backward grad_output shape", ValueError, r"^grad_output: expected shape \(1, 2, 2, 2\)",
     lambda: _C.max_pool2d_backward(z(1, 2, 3, 3), np.zeros((1, 2, 2, 2), np.int64), z(1, 2, 4, 4),
                                    (2, 2), (2, 2), (0, 0), (1, 1), False)),
    ("avg_pool2d divisor negative", ValueError, r"^divisor_override: expected a positive integer or 0",
     lambda: _C.avg_pool2d_forward(z(1, 2, 4, 4), z(1, 2, 2, 2), (2, 2), (2, 2), (0, 0), False, True, -1)),
    ("avg_pool2d out dtype", TypeError, r"^out: expected dtype float64",
     lambda: _C.avg_pool2d_forward(z(1, 2, 4, 4), z(1, 2, 2, 2, dtype=f32), (2, 2), (2, 2), (0, 0), False, True)),
    ("avg_pool2d_backward grad_output shape", ValueError, r"^grad_output: expected shape \(1, 2, 2, 2\)",
     lambda: _C.avg_pool2d_backward(z(1, 2, 1, 1), z(1, 2, 4, 4), (2, 2), (2, 2), (0, 0), False, True)),
    ("avg_pool2d padding overflows", ValueError, r"^padding: expected values below 2\^31",
     lambda: _C.avg_pool2d_forward(z(1, 2, 4, 4), z(1, 2, 5, 5), (4, 4), (1, 1), (2 ** 61, 0), False, True)),
    ("adaptive_avg_pool2d out N differs", ValueError, r"^out: expected the same \(N, C\) as input",
     lambda: _C.adaptive_avg_pool2d_forward(z(1, 2, 4, 4), z(2, 2, 1, 1))),
    ("adaptive_avg_pool2d output size 0", ValueError, r"^output_size: expected positive sizes",
     lambda: _C.adaptive_avg_pool2d_forward(z(1, 2, 4, 4), z(1, 2, 0, 1))),
    ("adaptive_avg_pool2d input 3-D", ValueError, r"^input: expected 4-D array",
     lambda: _C.adaptive_avg_pool2d_forward(z(2, 4, 4), z(1, 2, 1, 1))),
    ("adaptive_avg_pool2d_backward grad_output C", ValueError, r"^grad_output: expected the same \(N, C\)",
     lambda: _C.adaptive_avg_pool2d_backward(z(1, 3, 1, 1), z(1, 2, 4, 4))),
    ("pool_output_size stride 0", ValueError, r"^stride: expected a positive integer, got 0",
     lambda: _C.pool_output_size(5, 3, 0, 0, 1, False)),
    ("pool_output_size dilation 0", ValueError, r"^dilation: expected a positive integer, got 0",
     lambda: _C.pool_output_size(5, 3, 1, 0, 0, False)),
    # ---------------------------------------------------------------- runtime / graph executor
    ("set_num_threads 0", ValueError, r"^num_threads: expected a positive integer, got 0",
     lambda: _C.set_num_threads(0)),
    ("set_isa unknown", ValueError, r"^isa: expected 'portable', 'avx2' or 'avx512'", lambda: _C.set_isa("sse9")),
    ("GraphProgram n_slots -1", ValueError, r"^n_slots: expected >= 0, got -1", lambda: _C.GraphProgram([], -1, 0)),
    ("GraphProgram unknown op", ValueError, r"unknown op code 99",
     lambda: (lambda g: (g.set_slot(0, z(4, dtype=f32)), g.run([], np.zeros(0))))(
         _C.GraphProgram([_C.GraphInstr(_C.OpCode(99), _C.DType.FLOAT32, [0], _C.FillAttrs(n=4))], 1, 0))),
    ("GraphProgram attrs of another op", ValueError, r"attrs: expected FillAttrs, got ElementwiseAttrs",
     lambda: (lambda g: (g.set_slot(0, z(4, dtype=f32)), g.run([], np.zeros(0))))(
         _C.GraphProgram([_C.GraphInstr(_C.OpCode.FILL, _C.DType.FLOAT32, [0], _C.ElementwiseAttrs(n=4))], 1, 0))),
    ("GraphProgram instruction not a GraphInstr", TypeError, r"^instrs\[0\]: expected a GraphInstr, got tuple",
     lambda: _C.GraphProgram([(6, "float32", [0], [4], [1.0], [])], 1, 0)),
    ("GraphInstr unknown attrs field", TypeError, r"^GemmAttrs: unknown field 'transA'",
     lambda: _C.GemmAttrs(transA=True)),
    ("GraphInstr attrs field of the wrong type", TypeError, r"^ActAttrs.kind: cannot take a value of type int",
     lambda: _C.ActAttrs(kind=1)),
    ("GraphProgram arena region wraps int64", ValueError,
     r"^offsets\[0\]: region of 4611686018427387904 bytes at offset 4611686018427387904 lies outside",
     lambda: _C.GraphProgram([_C.GraphInstr(_C.OpCode.FILL, _C.DType.FLOAT32, [0], _C.FillAttrs(n=4, value=1.0))],
                             1, 0).set_arena(np.zeros(16, np.uint8), [0], [2 ** 62], [2 ** 62])),
    ("GraphProgram slot out of range", ValueError, r"^slot: expected an index in \[0, 1\), got 3",
     lambda: _C.GraphProgram([], 1, 0).set_slot(3, z(2))),
    ("GraphProgram op size overflows", ValueError, r"slot\[0\]: buffer holds 16 bytes",
     lambda: (lambda g: (g.set_slot(0, z(4, dtype=f32)), g.set_slot(1, z(4, dtype=f32)),
                         g.set_slot(2, z(4, dtype=f32)), g.run([], np.zeros(0))))(
         _C.GraphProgram([_C.GraphInstr(_C.OpCode.GEMM, _C.DType.FLOAT32, [0, 1, 2, -1],
                                        _C.GemmAttrs(M=2 ** 32, N=2 ** 32, K=2 ** 32))], 3, 0))),
    # ---------------------------------------------------------------- public API: tensors, ops
    ("tensor from strings", TypeError, r"^data: cannot make a tensor from dtype <U1",
     lambda: lamina.tensor(["a", "b"])),
    ("tensor complex dtype", TypeError, r"^dtype: expected one of float32, float64, uint8, int8, int16, int32, int64 or bool, got complex64",
     lambda: lamina.tensor([1.0], dtype=np.complex64)),
    ("from_numpy uint16", ValueError, r"^from_numpy: dtype uint16 is not supported \(expected float32, float64, uint8",
     lambda: lamina.from_numpy(np.zeros(3, np.uint16))),
    ("from_numpy negative stride", ValueError, r"^from_numpy: at least one stride in the given numpy array is negative",
     lambda: lamina.from_numpy(np.zeros((3, 4), np.float32)[::-1])),
    ("zeros negative size", ValueError, r"^size: dimension 1 must be non-negative, got -2",
     lambda: lamina.zeros(3, -2)),
    ("set_default_dtype int64", ValueError, r"^dtype: expected float32 or float64, got int64",
     lambda: lamina.set_default_dtype(np.int64)),
    ("requires_grad on int64", TypeError, r"only floating-point tensors can require gradients, got dtype int64",
     lambda: lamina.tensor([1, 2]).requires_grad_()),
    ("matmul int64", TypeError, r"^matmul: expected float tensors, got int64",
     lambda: lamina.tensor([[1, 2]]) @ lamina.tensor([[1], [2]])),
    ("matmul float32 @ float64", TypeError, r"^matmul: dtypes differ: float32 and float64",
     lambda: lamina.matmul(lamina.zeros(2, 3), lamina.zeros(3, 2, dtype=np.float64))),
    ("matmul inner mismatch", ValueError, r"^matmul: shapes \(2, 3\) and \(4, 2\) cannot be multiplied",
     lambda: lamina.zeros(2, 3) @ lamina.zeros(4, 2)),
    ("matmul 0-d", ValueError, r"^matmul: both arguments need at least 1 dimension",
     lambda: lamina.matmul(lamina.tensor(1.0), lamina.zeros(2))),
    ("reshape bad size", ValueError, r"^reshape: shape \(5,\) is invalid for input of shape \(2, 3\)",
     lambda: lamina.zeros(2, 3).reshape(5)),
    ("permute not a permutation", ValueError, r"^permute: dims \(0, 0\) are not a permutation",
     lambda: lamina.zeros(2, 3).permute(0, 0)),
    ("sum dim out of range", IndexError, r"^dim: expected a value in \[-2, 1\], got 5",
     lambda: lamina.zeros(2, 3).sum(5)),
    ("item of 3 elements", ValueError, r"^item\(\): expected a tensor with one element",
     lambda: lamina.zeros(3).item()),
    ("backward grad shape", ValueError, r"^grad: expected shape \(3,\), got \(2,\)",
     lambda: (lamina.zeros(3, requires_grad=True) * 2).backward(np.ones(2, np.float32))),
    ("relu on int64", TypeError, r"^relu: input must be float32 or float64, got int64",
     lambda: lamina.tensor([1, 2]).relu()),
    ("softmax on int64", TypeError, r"^softmax: input must be float32 or float64, got int64",
     lambda: lamina.tensor([[1, 2]]).softmax(-1)),
    # PyTorch's range: a negative seed counts as seed + 2**64 (tests/test_random_torch.py)
    ("manual_seed out of range", ValueError, r"^seed: expected an integer in \[-2\*\*63, 2\*\*64\), got -9223372036854775809",
     lambda: lamina.manual_seed(-(2 ** 63) - 1)),
    ("set_num_threads 0 (public)", ValueError, r"^num_threads: expected a positive integer",
     lambda: lamina.set_num_threads(0)),
    # ---------------------------------------------------------------- public API: nn.functional, nn
    ("F.linear in_features mismatch", ValueError, r"^input: expected last dimension 3 \(in_features\), got shape \(2, 4\)",
     lambda: F.linear(lamina.zeros(2, 4), lamina.zeros(5, 3))),
    ("F.linear dtype mismatch", TypeError, r"^input: expected dtype float32 \(the weight's\), got float64",
     lambda: F.linear(lamina.zeros(2, 3, dtype=np.float64), lamina.zeros(5, 3))),
    ("F.linear bias shape", ValueError, r"^bias: expected shape \(5,\), got \(4,\)",
     lambda: F.linear(lamina.zeros(2, 3), lamina.zeros(5, 3), lamina.zeros(4))),
    ("nn.Linear negative in_features", ValueError, r"^in_features: expected a non-negative integer, got -1",
     lambda: nn.Linear(-1, 3)),
    ("nn.Linear wrong feature count", ValueError, r"expected input with 3 features \(last dimension\), got 5",
     lambda: nn.Linear(3, 2)(lamina.zeros(4, 5))),
    ("F.conv2d input 2-D", ValueError, r"^input: expected a 3-D or 4-D tensor",
     lambda: F.conv2d(lamina.zeros(5, 5), lamina.zeros(1, 1, 3, 3))),
    ("F.conv2d weight dtype", TypeError, r"^weight: expected dtype float32 \(the input's\), got float64",
     lambda: F.conv2d(lamina.zeros(1, 1, 5, 5), lamina.zeros(1, 1, 3, 3, dtype=np.float64))),
    ("F.conv2d input int64", TypeError, r"^input: expected dtype float32 or float64, got int64",
     lambda: F.conv2d(lamina.zeros(1, 1, 5, 5, dtype=np.int64), lamina.zeros(1, 1, 3, 3, dtype=np.int64))),
    ("F.conv2d stride 0", ValueError, r"^stride: expected positive values, got 0",
     lambda: F.conv2d(lamina.zeros(1, 1, 5, 5), lamina.zeros(1, 1, 3, 3), stride=0)),
    ("F.conv2d padding -1", ValueError, r"^padding: expected non-negative values",
     lambda: F.conv2d(lamina.zeros(1, 1, 5, 5), lamina.zeros(1, 1, 3, 3), padding=-1)),
    ("F.conv2d padding float", ValueError, r"^padding: expected an int or a tuple of 2 ints, got 1.5",
     lambda: F.conv2d(lamina.zeros(1, 1, 5, 5), lamina.zeros(1, 1, 3, 3), padding=1.5)),
    ("F.conv2d same with stride 2", ValueError, r"^padding: 'same' is only supported with stride 1",
     lambda: F.conv2d(lamina.zeros(1, 1, 5, 5), lamina.zeros(1, 1, 3, 3), padding="same", stride=2)),
    ("F.conv2d groups 0", ValueError, r"^groups: expected a positive integer, got 0",
     lambda: F.conv2d(lamina.zeros(1, 2, 5, 5), lamina.zeros(2, 2, 3, 3), groups=0)),
    ("F.conv2d groups mismatch", ValueError, r"^groups: in_channels \(3\) and out_channels \(2\) must both be divisible by groups=2",
     lambda: F.conv2d(lamina.zeros(1, 3, 5, 5), lamina.zeros(2, 1, 3, 3), groups=2)),
    ("F.conv2d kernel larger than input", ValueError, r"^weight: kernel 7x7 .* larger than the padded input 5x5",
     lambda: F.conv2d(lamina.zeros(1, 1, 5, 5), lamina.zeros(1, 1, 7, 7))),
    ("F.conv2d bias shape", ValueError, r"^bias: expected shape \(2,\), got \(3,\)",
     lambda: F.conv2d(lamina.zeros(1, 1, 5, 5), lamina.zeros(2, 1, 3, 3), lamina.zeros(3))),
    ("F.conv2d weight is a list", TypeError, r"^weight: expected a lamina.Tensor, got list",
     lambda: F.conv2d(lamina.zeros(1, 1, 5, 5), [[[[1.0]]]])),
    ("F.conv1d input 4-D", ValueError, r"^input: expected a 2-D or 3-D tensor",
     lambda: F.conv1d(lamina.zeros(1, 1, 5, 5), lamina.zeros(1, 1, 3))),
    ("F.max_pool2d kernel 0", ValueError, r"^kernel_size: expected positive values, got 0",
     lambda: F.max_pool2d(lamina.zeros(1, 1, 4, 4), 0)),
    ("F.max_pool2d padding > kernel/2", ValueError, r"^padding: expected at most half the kernel size",
     lambda: F.max_pool2d(lamina.zeros(1, 1, 4, 4), 2, padding=2)),
    ("F.max_pool2d input 2-D", ValueError, r"^input: expected a 3-D or 4-D tensor",
     lambda: F.max_pool2d(lamina.zeros(4, 4), 2)),
    ("F.max_pool2d input int64", TypeError, r"^input: expected dtype float32 or float64, got int64",
     lambda: F.max_pool2d(lamina.zeros(1, 1, 4, 4, dtype=np.int64), 2)),
    ("F.max_pool2d window larger than input", ValueError, r"^kernel_size: window \(5, 5\)",
     lambda: F.max_pool2d(lamina.zeros(1, 1, 4, 4), 5)),
    ("F.max_pool2d dilation 0", ValueError, r"^dilation: expected positive values",
     lambda: F.max_pool2d(lamina.zeros(1, 1, 4, 4), 2, dilation=0)),
    ("F.avg_pool2d divisor_override 0", ValueError, r"^divisor_override: expected a positive integer or None, got 0",
     lambda: F.avg_pool2d(lamina.zeros(1, 1, 4, 4), 2, divisor_override=0)),
    ("F.adaptive_avg_pool2d output 0", ValueError, r"^output_size: expected positive values",
     lambda: F.adaptive_avg_pool2d(lamina.zeros(1, 1, 4, 4), 0)),
    ("F.cross_entropy target out of range", ValueError, r"^target: class index 4 out of range \[0, 4\)",
     lambda: F.cross_entropy(lamina.zeros(2, 4), [1, 4])),
    ("F.cross_entropy target negative", ValueError, r"^target: class index -3 out of range",
     lambda: F.cross_entropy(lamina.zeros(2, 4), [-3, 1])),
    ("F.cross_entropy target length", ValueError, r"^target: expected shape \(2,\) to match input's batch, got \(3,\)",
     lambda: F.cross_entropy(lamina.zeros(2, 4), [1, 2, 3])),
    ("F.cross_entropy target strings", TypeError, r"^target: expected integer class indices, got dtype <U1",
     lambda: F.cross_entropy(lamina.zeros(2, 4), ["a", "b"])),
    ("F.cross_entropy probability target shape", ValueError, r"^target: class-probability targets must have the input's shape",
     lambda: F.cross_entropy(lamina.zeros(2, 4), np.zeros((2, 3), np.float32))),
    ("F.cross_entropy input int64", TypeError, r"^input: expected float logits, got int64",
     lambda: F.cross_entropy(lamina.zeros(2, 4, dtype=np.int64), [1, 2])),
    ("F.cross_entropy reduction", ValueError, r"^reduction: expected 'mean', 'sum' or 'none', got 'avg'",
     lambda: F.cross_entropy(lamina.zeros(2, 4), [1, 2], reduction="avg")),
    ("F.cross_entropy weighted target out of range", ValueError, r"^target: class index 9 out of range",
     lambda: F.cross_entropy(lamina.zeros(2, 4), [1, 9], weight=np.ones(4, np.float32))),
    ("F.binary_cross_entropy_with_logits shape", ValueError, r"^target: expected shape \(3,\) \(the input's\)",
     lambda: F.binary_cross_entropy_with_logits(lamina.zeros(3), lamina.zeros(4))),
    ("F.dropout p=2", ValueError, r"^p: dropout probability must be in \[0, 1\], got 2",
     lambda: F.dropout(lamina.zeros(3), 2)),
    # ---------------------------------------------------------------- optimizers (public)
    ("SGD lr negative", ValueError, r"^lr: expected a value >= 0, got -0.1",
     lambda: lamina.optim.SGD([nn.Parameter(np.zeros(2))], lr=-0.1)),
    ("SGD empty params", ValueError, r"^params: optimizer got an empty parameter list",
     lambda: lamina.optim.SGD([], lr=0.1)),
    ("SGD int64 param", TypeError, r"^params: expected float32 or float64 parameters, got int64",
     lambda: lamina.optim.SGD([lamina.tensor([1, 2])], lr=0.1)),
    ("SGD single tensor", TypeError, r"^params: expected an iterable of Tensors or dicts",
     lambda: lamina.optim.SGD(nn.Parameter(np.zeros(2)), lr=0.1)),
    ("SGD nesterov without momentum", ValueError, r"^nesterov: requires momentum > 0",
     lambda: lamina.optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1, nesterov=True)),
    ("SGD step with wrong grad shape", ValueError, r"^grad: expected shape \(3,\) \(the parameter's\), got \(4,\)",
     lambda: _sgd_step_with_grad((4,))),
    ("Adam beta1 = 1", ValueError, r"^betas\[0\]: expected a value in \[0, 1\), got 1.0",
     lambda: lamina.optim.Adam([nn.Parameter(np.zeros(2))], betas=(1.0, 0.999))),
    ("Adam eps negative", ValueError, r"^eps: expected a value >= 0",
     lambda: lamina.optim.Adam([nn.Parameter(np.zeros(2))], eps=-1.0)),
    ("AdamW weight_decay negative", ValueError, r"^weight_decay: expected a value >= 0",
     lambda: lamina.optim.AdamW([nn.Parameter(np.zeros(2))], weight_decay=-1.0)),
    # ---------------------------------------------------------------- checkpoints
    ("save set value", TypeError, r"^obj\['w'\]: cannot save a set; expected Tensor",
     lambda: lamina.save({"w": {1.0}}, "/nonexistent-dir-never-written/x")),
    ("save object in a list", TypeError, r"^obj\[0\]: cannot save a object; expected Tensor",
     lambda: lamina.save([object()], "/nonexistent-dir-never-written/x")),
]

FILE_CASES = [  # lamina.load on bad files: (kind, message regex)
    ("garbage", r"garbage.safetensors: not a valid safetensors file"),
    ("huge_header", r"huge.safetensors: not a valid safetensors file"),
    ("truncated", r"trunc.safetensors: not a valid safetensors file"),
    ("bad_json", r"json.safetensors: not a valid safetensors file"),
]


@pytest.mark.parametrize("name,exc,pattern,thunk", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_named_error(name, exc, pattern, thunk):
    with pytest.raises(exc) as info:
        thunk()
    assert re.search(pattern, str(info.value)), f"{name}: message {str(info.value)!r} does not match {pattern!r}"


@pytest.mark.parametrize("kind,pattern", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_load_bad_file(tmp_path, kind, pattern):
    path = _bad_file(kind, str(tmp_path))
    with pytest.raises(ValueError, match=pattern):
        lamina.load(path)


def test_load_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        lamina.load(tmp_path / "nope.safetensors")


def test_failed_calls_leave_outputs_untouched():
    """A rejected call writes nothing: validation happens before the kernel runs."""
    c = np.full((3, 5), 7.0)
    with pytest.raises(ValueError):
        _C.gemm(z(3, 4), z(5, 5), c)
    p = np.full(3, 2.0)
    with pytest.raises(ValueError):
        _C.sgd_step(p, z(4), None, 0.1, 0.0, 0.0, 0.0, False, True)
    dx = np.full((1, 2, 4, 4), 3.0)
    with pytest.raises(ValueError):
        _C.max_pool2d_backward(z(1, 2, 2, 2), np.full((1, 2, 2, 2), 16, np.int64), dx, (2, 2), (2, 2),
                               (0, 0), (1, 1), False)
    assert (c == 7.0).all() and (p == 2.0).all() and (dx == 3.0).all()


# ------------------------------------------------------------------ non-contiguous input: never misread
def test_gemm_accepts_row_strided_and_broadcast_views():
    rng = np.random.default_rng(0)
    big = rng.standard_normal((6, 10))
    a = big[::2, 1:5]                       # row stride 20 elements, rows contiguous
    b = np.broadcast_to(rng.standard_normal(3), (4, 3))  # row stride 0 (an input may repeat rows)
    c = np.zeros((3, 3))
    _C.gemm(a, b, c)
    np.testing.assert_allclose(c, np.ascontiguousarray(a) @ np.ascontiguousarray(b), rtol=1e-12)
    out = np.zeros((3, 8))[:, ::2]          # strided columns in c: rejected, never written wrongly
    with pytest.raises(ValueError, match="^c: expected the last stride"):
        _C.gemm(a, b, out)


def test_public_api_makes_views_contiguous():
    rng = np.random.default_rng(1)
    x = lamina.tensor(rng.standard_normal((4, 6)).astype(f32))
    xt = x.T                                   # a permuted (transposed) tensor
    np.testing.assert_allclose(xt.relu().numpy(), np.maximum(x.numpy().T, 0))
    np.testing.assert_allclose((xt @ x).numpy(), x.numpy().T @ x.numpy(), rtol=1e-5, atol=1e-5)
    e = x[:, 1].reshape(4, 1).expand(4, 6)     # a broadcast tensor
    np.testing.assert_allclose(F.softmax(e, -1).numpy(), np.full((4, 6), 1 / 6, f32), rtol=1e-6)
    img = lamina.tensor(rng.standard_normal((1, 5, 5, 2)).astype(f32)).permute(0, 3, 1, 2)  # NHWC -> NCHW
    w = lamina.tensor(rng.standard_normal((3, 2, 3, 3)).astype(f32))
    ref = F.conv2d(lamina.tensor(np.ascontiguousarray(img.numpy())), w)
    np.testing.assert_allclose(F.conv2d(img, w).numpy(), ref.numpy(), rtol=1e-6)
    np.testing.assert_allclose(F.max_pool2d(img, 2).numpy(),
                               F.max_pool2d(lamina.tensor(np.ascontiguousarray(img.numpy())), 2).numpy())
    # from_numpy shares a strided array with its strides (as torch) and every op reads it right;
    # tensor() copies.
    s = rng.standard_normal((4, 8))[:, ::2]
    shared = lamina.from_numpy(s)
    assert not shared.is_contiguous()
    np.testing.assert_allclose((shared @ shared.T).numpy(), s @ s.T, rtol=1e-12)
    np.testing.assert_allclose(F.softmax(shared, -1).numpy(), np.exp(s) / np.exp(s).sum(-1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(lamina.tensor(s, dtype=f64).numpy(), s)


# ------------------------------------------------------------------ 64-bit index arithmetic
def _huge_zero_buffer(nbytes):
    """Anonymous MAP_NORESERVE mapping: reads of untouched pages return zeros, no memory is used."""
    flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_ANONYMOUS", 0x20) | getattr(mmap, "MAP_NORESERVE", 0x4000)
    try:
        return mmap.mmap(-1, nbytes, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except (OSError, ValueError, OverflowError) as e:  # e.g. a 32-bit address space or a hard ulimit -v
        pytest.skip(f"cannot reserve {nbytes} bytes of address space: {e}")


BIG = 2 ** 31 + 64  # elements: every row offset past the first is beyond int32


@pytest.mark.parametrize("trans_a", [False, True])
def test_gemm_row_stride_beyond_int32(trans_a):
    """ld * row passes 2**31 elements: an int32 offset would read the wrong row (or crash)."""
    rng = np.random.default_rng(2)
    mm = _huge_zero_buffer(3 * BIG * 4)
    buf = np.frombuffer(mm, dtype=f32)
    rows, cols = (3, 2) if trans_a else (2, 3)          # stored A; op(A) is 2x3
    a = np.lib.stride_tricks.as_strided(buf, (rows, cols), (BIG * 4, 4))
    a[...] = rng.standard_normal((rows, cols)).astype(f32)
    b = rng.standard_normal((3, 4)).astype(f32)
    c_mm = _huge_zero_buffer(2 * BIG * 4)
    c = np.lib.stride_tricks.as_strided(np.frombuffer(c_mm, dtype=f32), (2, 4), (BIG * 4, 4))
    _C.gemm(a, b, c, trans_a=trans_a)
    a_dense = np.ascontiguousarray(a.T if trans_a else a)
    np.testing.assert_allclose(np.array(c), a_dense @ b, rtol=1e-5, atol=1e-6)
    del a, c, buf
    # A numpy view still exports the buffer until collected; closing is best-effort.


def _huge_image():
    """(1, 1, H, W) float32 with H*W > 2**31, four nonzero samples at the stride-(S, S) grid."""
    H = W = 46341                      # H*W = 2147488281 > 2**31
    S = 46340
    mm = _huge_zero_buffer(H * W * 4)
    x = np.frombuffer(mm, dtype=f32).reshape(1, 1, H, W)
    vals = np.array([[1.5, -2.0], [3.25, 4.0]], f32)
    for i in range(2):
        for j in range(2):
            x[0, 0, i * S, j * S] = vals[i, j]
    assert (H - 1) * W + (W - 1) > 2 ** 31
    return x, vals, S


def test_conv2d_and_pool_on_plane_beyond_int32():
    x, vals, S = _huge_image()
    w = np.full((2, 1, 1, 1), 2.0, f32)
    b = np.array([0.5, -1.0], f32)
    y = np.empty((1, 2, 2, 2), f32)
    _C.conv2d_forward(x, w, b, y, (S, S), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(y[0, 0], 2 * vals + 0.5)
    np.testing.assert_allclose(y[0, 1], 2 * vals - 1.0)
    # Weight and bias gradients read x only at the sampled taps.
    dw = np.empty_like(w)
    db = np.empty_like(b)
    _C.conv2d_backward(x, w, np.ones_like(y), None, dw, db, (S, S), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(dw.reshape(2), [vals.sum()] * 2, rtol=1e-6)
    np.testing.assert_allclose(db, [4.0, 4.0])
    # Max pooling: the int64 argmax indices themselves pass 2**31.
    out = np.empty((1, 1, 2, 2), f32)
    idx = np.empty((1, 1, 2, 2), np.int64)
    _C.max_pool2d_forward(x, out, idx, (1, 1), (S, S), (0, 0), (1, 1), False)
    W = x.shape[3]
    np.testing.assert_array_equal(out[0, 0], vals)
    np.testing.assert_array_equal(idx[0, 0], [[0, S], [S * W, S * W + S]])
    assert idx.max() > 2 ** 31
    out2 = np.empty((1, 1, 2, 2), f32)
    _C.avg_pool2d_forward(x, out2, (1, 1), (S, S), (0, 0), False, True, 0)
    np.testing.assert_array_equal(out2[0, 0], vals)


def test_huge_sizes_rejected_before_allocation():
    """Sizes whose arithmetic would overflow are refused by the argument checks, not attempted."""
    with pytest.raises(ValueError, match="^c: expected shape"):
        _C.gemm(z(2, 3), z(3, 2), z(2, 3))
    x = z(1, 1, 4, 4, dtype=f32)
    for kw, pat in [(dict(padding=(2 ** 40, 0)), "^padding"), (dict(dilation=(1, 2 ** 40)), "^dilation"),
                    (dict(stride=(2 ** 40, 1)), "^stride")]:
        with pytest.raises(ValueError, match=pat):
            _C.conv2d_forward(*conv_args(x=x, w=z(1, 1, 3, 3, dtype=f32), y=z(1, 1, 2, 2, dtype=f32), **kw))
    with pytest.raises(ValueError, match="^stride"):
        _C.conv_output_size(2 ** 40, 3, 2 ** 62, 0, 1)


def test_huge_pooling_windows_cost_the_input_not_the_window():
    """A 2^30 window over a 4x4 input: the taps in the padding are skipped in O(1) (a loop over
    them used to hang), and the average divisor (2^60 with count_include_pad) does not overflow."""
    x = np.arange(16, dtype=f64).reshape(1, 1, 4, 4) - 5.0
    K, P = 2 ** 30, 2 ** 29
    y = np.empty((1, 1, 1, 1))
    idx = np.empty((1, 1, 1, 1), np.int64)
    _C.max_pool2d_forward(x, y, idx, (K, K), (P, P), (P, P), (1, 1), False)
    assert y[0, 0, 0, 0] == 10.0 and idx[0, 0, 0, 0] == 15
    _C.avg_pool2d_forward(x, y, (K, K), (P, P), (P, P), False, True, 0)
    assert y[0, 0, 0, 0] == x.sum() / 2.0 ** 60
    _C.avg_pool2d_forward(x, y, (K, K), (P, P), (P, P), False, False, 0)
    assert y[0, 0, 0, 0] == x.mean()


def _table():
    rows = []
    for name, exc, pattern, thunk in CASES:
        try:
            thunk()
            got = "NO ERROR"
        except Exception as e:  # noqa: BLE001 - the table reports whatever came back
            got = f"{type(e).__name__}: {str(e).splitlines()[0][:110]}"
        rows.append((name, got))
    return rows


if __name__ == "__main__":
    for name, got in _table():
        print(f"| {name} | {got} |")
    sys.exit(0)
