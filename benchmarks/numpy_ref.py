"""NumPy equivalents of lamina's kernels, written the way a good NumPy user would write them.

One module, reviewed once, used by every benchmark (pytest-benchmark files and report.py) both as
the timed NumPy competitor and as the correctness reference (`check_equal`) before timing.

Rules followed here: vectorized (no Python loop over the batch or the pixels), BLAS through
`np.matmul`/`np.tensordot`, `out=` and in-place operators where they save a pass over memory,
im2col as a strided view (`sliding_window_view`), 2x2 pooling as reshape + reduce, a max-shifted
(stable) softmax cross-entropy, and PyTorch's SGD/Adam formulas as in-place array updates.

>>> import numpy as np
>>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
>>> max_pool2d(x)[0].tolist()
[[[5.0, 7.0], [13.0, 15.0]]]
>>> check_equal(np.ones(3), np.ones(3), name="y")
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "check_equal", "gemm",
    "conv2d_forward", "conv2d_backward",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "act_forward", "act_backward", "ACTIVATIONS",
    "softmax_cross_entropy", "sgd_step", "adam_step", "copy", "mnist_model_loss",
]


# ---- the check every benchmark runs before timing ------------------------------------------

def check_equal(got, ref, rtol=None, atol=None, name="result"):
    """Raise AssertionError (naming `name`, the worst element and its error) unless `got` matches
    `ref` elementwise: |got - ref| <= atol + rtol * |ref|. Tolerances default per dtype of `got`
    (float32: 1e-4 / 1e-5 scaled by max|ref|, float64: 1e-9). Shapes must match exactly.

    Used BEFORE timing so a fast wrong answer fails instead of winning.

    >>> check_equal(np.array([1.0, 2.0]), np.array([1.0, 2.5]), name="y")
    Traceback (most recent call last):
    ...
    AssertionError: y: 1 of 2 elements differ; worst at (1,): got 2.0, expected 2.5 (|err| 0.5 > tol 5e-09)
    """
    got = np.asarray(got)
    ref = np.asarray(ref)
    if got.shape != ref.shape:
        raise AssertionError(f"{name}: shape {got.shape} != expected {ref.shape}")
    single = got.dtype == np.float32 or ref.dtype == np.float32
    if rtol is None:
        rtol = 1e-4 if single else 1e-9
    if atol is None:
        # Absolute floor relative to the data's scale: sums of many terms cancel to ~0.
        scale = float(np.max(np.abs(ref))) if ref.size else 1.0
        atol = (1e-5 if single else 1e-9) * max(1.0, scale)
    if got.size == 0:
        return
    g = got.astype(np.float64)
    r = ref.astype(np.float64)
    err = np.abs(g - r)
    tol = atol + rtol * np.abs(r)
    bad = ~(err <= tol)  # NaN in either counts as a mismatch
    if bad.any():
        where = np.unravel_index(int(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -1.0))), got.shape)
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {got.size} elements differ; worst at {tuple(int(i) for i in where)}: "
            f"got {float(g[where])!r}, expected {float(r[where])!r} (|err| {err[where]:.3g} > tol {tol[where]:.3g})")


# ---- GEMM ----------------------------------------------------------------------------------

def gemm(a, b, out=None, trans_a=False, trans_b=False):
    """out = op(a) @ op(b); the transposes are free views, BLAS does the rest."""
    return np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=out)


# ---- convolution (im2col as a strided view) --------------------------------------------------

def _pad(x, pad):
    ph, pw = pad
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _windows(xp, KH, KW, stride):
    # (N, C, OH, OW, KH, KW): every receptive field, no copy until BLAS needs one.
    cols = sliding_window_view(xp, (KH, KW), axis=(2, 3))
    sh, sw = stride
    return cols[:, :, ::sh, ::sw] if (sh, sw) != (1, 1) else cols


def conv2d_forward(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """y (N, K, OH, OW) = cross-correlation of x (N, C, H, W) with w (K, C, KH, KW), + b (K,)."""
    K, C, KH, KW = w.shape
    cols = _windows(_pad(x, padding), KH, KW, stride)           # (N, C, OH, OW, KH, KW)
    y = np.tensordot(cols, w, axes=([1, 4, 5], [1, 2, 3]))      # (N, OH, OW, K): one GEMM
    if b is not None:
        y += b
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))         # (N, K, OH, OW)


def conv2d_backward(x, w, dy, stride=(1, 1), padding=(0, 0)):
    """(dx, dw, db) of conv2d_forward for the upstream gradient dy (N, K, OH, OW)."""
    N, C, H, W = x.shape
    K, _, KH, KW = w.shape
    OH, OW = dy.shape[2:]
    sh, sw = stride
    ph, pw = padding
    xp = _pad(x, padding)
    cols = _windows(xp, KH, KW, stride)                          # (N, C, OH, OW, KH, KW)
    dw = np.tensordot(dy, cols, axes=([0, 2, 3], [0, 2, 3]))     # (K, C, KH, KW)
    db = dy.sum(axis=(0, 2, 3))
    dcols = np.tensordot(w, dy, axes=([0], [1]))                 # (C, KH, KW, N, OH, OW)
    dxp = np.zeros((C, N) + xp.shape[2:], dtype=x.dtype)         # channel-major: slices stay 2-D strided
    for kh in range(KH):  # col2im: one vectorized scatter-add per tap (KH*KW of them)
        for kw in range(KW):
            dxp[:, :, kh:kh + sh * OH:sh, kw:kw + sw * OW:sw] += dcols[:, kh, kw]
    dx = dxp[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(dx), dw, db


# ---- 2x2 / stride-2 pooling (reshape + reduce) -----------------------------------------------

def _blocks(x):
    N, C, H, W = x.shape
    return x[:, :, :H // 2 * 2, :W // 2 * 2].reshape(N, C, H // 2, 2, W // 2, 2)


def max_pool2d(x):
    """2x2 max pooling with stride 2 (odd edges dropped, as floor mode does)."""
    return _blocks(x).max(axis=(3, 5))


def max_pool2d_backward(x, dy):
    """dx: each dy goes to its window's FIRST maximum (lamina's and PyTorch's tie rule)."""
    N, C, H, W = x.shape
    OH, OW = H // 2, W // 2
    win = _blocks(x).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, OH, OW, 4)  # window in row-major order
    first = win.argmax(axis=4)                                              # first max wins ties
    dwin = np.zeros((N, C, OH, OW, 4), dtype=dy.dtype)
    np.put_along_axis(dwin, first[..., None], dy[..., None], axis=4)
    dx = np.zeros_like(x, dtype=dy.dtype)
    dx[:, :, :OH * 2, :OW * 2] = dwin.reshape(N, C, OH, OW, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        N, C, OH * 2, OW * 2)
    return dx


def avg_pool2d(x):
    """2x2 average pooling with stride 2."""
    return _blocks(x).mean(axis=(3, 5), dtype=x.dtype)


def avg_pool2d_backward(x, dy):
    """dx: each dy spread evenly (1/4) over its window."""
    N, C, H, W = x.shape
    OH, OW = dy.shape[2:]
    q = dy * dy.dtype.type(0.25)
    dx = np.zeros_like(x, dtype=dy.dtype)
    # (N, C, OH, 2, OW, 2) view of dx's covered part; broadcast the quarter into it.
    dx[:, :, :OH * 2, :OW * 2].reshape(N, C, OH, 2, OW, 2)[...] = q[:, :, :, None, :, None]
    return dx


# ---- elementwise activations (out= everywhere: one pass per ufunc) ---------------------------

ACTIVATIONS = ("relu", "sigmoid", "tanh")


def act_forward(kind, x, y):
    """y = f(x) in place into y."""
    if kind == "relu":
        np.maximum(x, 0, out=y)
    elif kind == "sigmoid":
        with np.errstate(over="ignore"):  # exp overflow -> inf -> 1/inf = 0: the exact limit
            np.negative(x, out=y)
            np.exp(y, out=y)
            y += 1
            np.reciprocal(y, out=y)
    elif kind == "tanh":
        np.tanh(x, out=y)
    else:
        raise ValueError(f"kind: expected one of {ACTIVATIONS}, got {kind!r}")
    return y


def act_backward(kind, x, y, dy, dx):
    """dx = dy * f'(x), using the saved output y where f' is a function of y."""
    if kind == "relu":
        np.multiply(dy, x > 0, out=dx)        # NOTE: relu'(0) = 0, as in lamina and PyTorch
    elif kind == "sigmoid":
        np.subtract(1, y, out=dx)
        dx *= y
        dx *= dy
    elif kind == "tanh":
        np.multiply(y, y, out=dx)
        np.subtract(1, dx, out=dx)
        dx *= dy
    else:
        raise ValueError(f"kind: expected one of {ACTIVATIONS}, got {kind!r}")
    return dx


# ---- softmax cross-entropy (max-shifted, mean over the batch) --------------------------------

def softmax_cross_entropy(logits, target):
    """(mean loss, dlogits) of softmax cross-entropy; logits (N, C), target int (N,)."""
    n = logits.shape[0]
    rows = np.arange(n)
    m = logits.max(axis=1, keepdims=True)
    e = logits - m                           # shifted: exp never overflows
    z = e[rows, target].copy()
    np.exp(e, out=e)
    s = e.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(s[:, 0]) - z))
    e /= s                                   # softmax probabilities
    e[rows, target] -= 1
    e /= n
    return loss, e


# ---- optimizers (PyTorch formulas, in place) -------------------------------------------------

def sgd_step(p, g, buf, lr, momentum=0.0, first_step=False):
    """torch.optim.SGD (no dampening / weight decay / nesterov): buf = m*buf + g; p -= lr*buf."""
    if momentum == 0.0:
        p -= lr * g
        return
    if first_step:
        buf[...] = g
    else:
        buf *= momentum
        buf += g
    p -= lr * buf


def adam_step(p, g, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """torch.optim.Adam (no weight decay / amsgrad); `step` counts this update (1 first)."""
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * (g * g)
    bc1 = 1 - beta1 ** step
    bc2 = 1 - beta2 ** step
    denom = np.sqrt(v)
    denom /= np.sqrt(bc2)
    denom += eps
    p -= (lr / bc1) * (m / denom)


def copy(src, dst):
    """dst[...] = src: the memory-bandwidth yardstick."""
    np.copyto(dst, src)
    return dst


# ---- the end-to-end models' loss (checks lamina eager / compiled / PyTorch training) ----------

def mnist_model_loss(model, weights, x, y):
    """Mean softmax cross-entropy of `model` ("mlp": 784-300-100-10 ReLU, or "lenet5": C1 pad 2,
    ReLU, 2x2 max, C3, ReLU, 2x2 max, 400-120-84-10 ReLU) with `weights` in parameter order
    (weight, bias per layer; Linear weights are (out, in)) on images x (N, 1, 28, 28), labels y."""
    w = list(weights)
    h = x
    if model == "lenet5":
        for pad in (2, 0):
            k, b = w.pop(0), w.pop(0)
            h = conv2d_forward(h, k, b, (1, 1), (pad, pad))
            h = max_pool2d(np.maximum(h, 0))
    elif model != "mlp":
        raise ValueError(f"model: expected 'mlp' or 'lenet5', got {model!r}")
    h = h.reshape(len(h), -1)
    while w:
        W, b = w.pop(0), w.pop(0)
        h = h @ W.T + b
        if w:
            h = np.maximum(h, 0)
    return softmax_cross_entropy(h, y)[0]
