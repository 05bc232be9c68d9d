"""conv1d / conv2d: forward and every gradient against PyTorch, float64 gradcheck over a grid,
module defaults, and bad arguments."""
import itertools
import math

import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina.autograd import gradcheck

from conftest import helper_test_op, requires_torch, tolerance

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


def _compare(lamina_fn, torch_fn, arrays, dtype, seed=0):
    """Same inputs into both (None: no bias); the output and the gradients of sum(y * v)."""
    arrays = [None if a is None else a.astype(dtype) for a in arrays]
    helper_test_op(None, lamina_fn, torch_fn, dtype=dtype, seed=seed, tol=TOL[dtype], inputs=arrays)


# batch, channels in/out, groups, input HxW, kernel, stride, padding, dilation
GRID = [
    (1, 1, 1, 1, (5, 5), 1, 1, 0, 1),        # single channel, kernel 1
    (2, 3, 4, 1, (7, 6), 3, 1, 1, 1),        # odd channels, non-square
    (3, 3, 5, 1, (9, 11), 5, 2, 2, 1),       # kernel 5, stride 2, pad 2
    (2, 4, 6, 2, (8, 7), 3, 3, 0, 1),        # groups 2, stride 3 (does not tile evenly)
    (2, 4, 4, 4, (6, 9), 3, 1, 1, 1),        # depthwise
    (1, 3, 2, 1, (10, 9), 3, 1, 2, 2),       # dilation 2
    (2, 6, 3, 3, (11, 8), (3, 1), (2, 1), (1, 0), (2, 1)),  # tuple args everywhere
    (2, 2, 3, 1, (4, 4), 1, 2, 0, 1),        # 1x1 strided
    (2, 5, 7, 1, (6, 6), 1, 1, 0, 1),        # pointwise (no im2col)
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", GRID)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_matches_torch(case, dtype, bias):
    torch = requires_torch()
    N, C, K, g, (H, W), k, s, p, d = case
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(hash((case, bias)) % 2**32)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C // g, kh, kw))
    b = rng.standard_normal(K) if bias else None
    _compare(lambda x, w, b: F.conv2d(x, w, b, s, p, d, g),
             lambda x, w, b: torch.nn.functional.conv2d(x, w, b, s, p, d, g), [x, w, b], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [(2, 3, 4, 1, 17, 3, 1, 1, 1), (1, 4, 6, 2, 20, 5, 2, 2, 2),
                                  (3, 4, 4, 4, 9, 3, 3, 0, 1), (2, 1, 2, 1, 8, 1, 1, 0, 1)])
def test_conv1d_matches_torch(case, dtype):
    torch = requires_torch()
    N, C, K, g, L, k, s, p, d = case
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((N, C, L)), rng.standard_normal((K, C // g, k)), rng.standard_normal(K)
    _compare(lambda x, w, b: F.conv1d(x, w, b, s, p, d, g),
             lambda x, w, b: torch.nn.functional.conv1d(x, w, b, s, p, d, g), [x, w, b], dtype)


def test_unbatched_and_string_padding_match_torch():
    torch = requires_torch()
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 7, 8)), rng.standard_normal((5, 3, 3, 3))
    _compare(lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: torch.nn.functional.conv2d(x, w, padding=1),
             [x, w], np.float64)
    _compare(lambda x, w: F.conv2d(x, w, padding="same", dilation=2),
             lambda x, w: torch.nn.functional.conv2d(x, w, padding="same", dilation=2), [x, w], np.float64)
    x1, w1 = rng.standard_normal((3, 12)), rng.standard_normal((2, 3, 4))
    _compare(lambda x, w: F.conv1d(x, w, stride=2), lambda x, w: torch.nn.functional.conv1d(x, w, stride=2),
             [x1, w1], np.float64)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("cls,shape,kwargs", [
    ("Conv2d", (2, 3, 6, 7), {"kernel_size": 3, "padding": 1}),
    ("Conv2d", (2, 3, 6, 7), {"kernel_size": (3, 2), "padding": (2, 1), "stride": 2}),
    ("Conv2d", (3, 6, 7), {"kernel_size": 4, "padding": "same"}),          # even kernel: asymmetric
    ("Conv2d", (2, 3, 6, 7), {"kernel_size": 2, "padding": "same", "dilation": 3}),
    ("Conv1d", (2, 3, 9), {"kernel_size": 3, "padding": 2}),
    ("Conv1d", (2, 3, 9), {"kernel_size": 4, "padding": "same"}),
])
def test_padding_modes_and_asymmetric_same_match_torch(mode, cls, shape, kwargs):
    torch = requires_torch()
    C = shape[-3] if cls == "Conv2d" else shape[-2]
    torch.manual_seed(0)
    t = getattr(torch.nn, cls)(C, 4, padding_mode=mode, dtype=torch.float64, **kwargs)
    lamina.manual_seed(0)
    m = getattr(lamina.nn, cls)(C, 4, padding_mode=mode, dtype=lamina.float64, **kwargs)
    assert repr(m) == repr(t)
    x = np.random.default_rng(5).standard_normal(shape)
    tx, mx = torch.tensor(x, requires_grad=True), lamina.tensor(x, requires_grad=True)
    ty, my = t(tx), m(mx)
    np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(6).standard_normal(tuple(ty.shape))
    (ty * torch.tensor(g)).sum().backward()
    (my * lamina.tensor(g)).sum().backward()
    for a, b in [(tx, mx), (t.weight, m.weight), (t.bias, m.bias)]:
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-11, atol=1e-11)
    if kwargs.get("padding") == "same":
        f = getattr(F, cls.lower())
        tf = getattr(torch.nn.functional, cls.lower())
        dil = kwargs.get("dilation", 1)
        np.testing.assert_allclose(f(mx, m.weight, None, padding="same", dilation=dil).detach().numpy(),
                                   tf(tx, t.weight, None, padding="same", dilation=dil).detach().numpy(),
                                   rtol=1e-12, atol=1e-12)


GRAD_GRID = list(itertools.product(
    [1, 2],                    # batch
    [(3, 3, 1), (4, 2, 2), (3, 3, 3)],  # (C, K, groups): odd channels, grouped, depthwise
    [1, 3, 5],                 # kernel
    [1, 2, 3],                 # stride
    [0, 1, 2],                 # padding
    [1, 2],                    # dilation
))


def _fits(k, p, d, H=7, W=6):
    return H + 2 * p >= d * (k - 1) + 1 and W + 2 * p >= d * (k - 1) + 1


# The full grid (every point whose kernel fits the padded 7x6 input).
@pytest.mark.parametrize("N,ckg,k,s,p,d", [c for c in GRAD_GRID if _fits(*c[2:3], *c[4:6])])
def test_conv2d_gradcheck_grid(N, ckg, k, s, p, d):
    C, K, g = ckg
    H, W = 7, 6  # non-square; most strides do not tile it evenly
    rng = np.random.default_rng(N * 1000 + k * 100 + s * 10 + p + d)
    x = lamina.tensor(rng.standard_normal((N, C, H, W)), requires_grad=True)
    w = lamina.tensor(rng.standard_normal((K, C // g, k, k)), requires_grad=True)
    b = lamina.tensor(rng.standard_normal(K), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, s, p, d, g), [x, w, b], atol=1e-6, rtol=1e-5)


def test_conv1d_gradcheck():
    rng = np.random.default_rng(11)
    x = lamina.tensor(rng.standard_normal((2, 4, 13)), requires_grad=True)
    w = lamina.tensor(rng.standard_normal((6, 2, 3)), requires_grad=True)
    b = lamina.tensor(rng.standard_normal(6), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, 2, 1, 2, 2), [x, w, b], atol=1e-6, rtol=1e-5)


def test_gradient_only_for_what_requires_it():
    rng = np.random.default_rng(0)
    x = lamina.tensor(rng.standard_normal((2, 3, 6, 6)))
    conv = lamina.nn.Conv2d(3, 4, 3)
    conv.weight.data = conv.weight.detach().numpy().astype(np.float64)
    conv.bias.data = conv.bias.detach().numpy().astype(np.float64)
    conv(x).sum().backward()
    assert x.grad is None and conv.weight.grad is not None and conv.bias.grad is not None
    # d(sum y)/db = number of output positions per image times the batch.
    np.testing.assert_allclose(conv.bias.grad.data, np.full(4, 2 * 4 * 4.0))


def test_conv_fan_out_weight_shared():
    # The same weight used twice: gradients add (engine fan-out through a conv).
    torch = requires_torch()
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    _compare(lambda x, w: F.conv2d(F.conv2d(x, w, padding=1), w),
             lambda x, w: torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, w, padding=1), w),
             [x, w], np.float64)


def test_lecture_example_as_conv1d():
    # The lecture's (2, -1, 1) * (1, 1, 2) through its own Toeplitz matrix gives
    # (2, 1, 4, -1, 2) (= numpy.convolve; the slide's printed "3" for the middle entry is a
    # typo: 2*2 + (-1)*1 + 1*1 = 4). A true convolution is a cross-correlation with the
    # flipped kernel and full padding.
    a = lamina.tensor([[[2.0, -1.0, 1.0]]])
    b = lamina.tensor([[[2.0, 1.0, 1.0]]])  # (1, 1, 2) flipped
    assert F.conv1d(a, b, padding=2).tolist() == [[[2.0, 1.0, 4.0, -1.0, 2.0]]]
    assert np.convolve([2, -1, 1], [1, 1, 2]).tolist() == [2, 1, 4, -1, 2]


def test_modules_default_init_and_repr():
    lamina.manual_seed(0)
    conv = lamina.nn.Conv2d(6, 16, 5)
    bound = 1 / math.sqrt(6 * 25)
    assert conv.weight.shape == (16, 6, 5, 5) and conv.bias.shape == (16,)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.8 * bound  # really uniform over the range
    assert conv.weight.dtype == np.float32
    assert repr(conv) == "Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))"
    c1 = lamina.nn.Conv1d(4, 8, 3, stride=2, padding=1, groups=2, bias=False)
    assert c1.weight.shape == (8, 2, 3) and c1.bias is None
    assert "groups=2" in repr(c1) and "bias=False" in repr(c1)
    assert tuple(c1(lamina.zeros(2, 4, 10)).shape) == (2, 8, 5)
    assert tuple(lamina.nn.Conv2d(3, 4, 3, padding="same")(lamina.zeros(3, 9, 7)).shape) == (4, 9, 7)


def test_conv_errors():
    x = lamina.zeros(2, 4, 5, 5)
    w = lamina.zeros(6, 4, 3, 3)
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, lamina.zeros(6, 2, 3, 3), groups=3)
    with pytest.raises(ValueError, match="weight"):
        F.conv2d(x, lamina.zeros(6, 3, 3, 3))
    with pytest.raises(ValueError, match="padding"):
        F.conv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="dilation"):
        F.conv2d(x, w, dilation=(1, 0))
    with pytest.raises(ValueError, match="kernel|larger"):
        F.conv2d(x, lamina.zeros(6, 4, 7, 7))
    with pytest.raises(ValueError, match="input"):
        F.conv2d(lamina.zeros(4, 5), w)
    with pytest.raises(ValueError, match="input"):
        F.conv2d(lamina.zeros(1, 2, 4, 5, 5), w)
    with pytest.raises(ValueError, match="weight"):
        F.conv2d(x, lamina.zeros(6, 4, 3))
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(x, w, lamina.zeros(5))
    with pytest.raises(TypeError, match="weight"):
        F.conv2d(x, lamina.zeros(6, 4, 3, 3, dtype=lamina.float64))
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(x, w, stride=(1, 2, 3))
    with pytest.raises(ValueError, match=r"^Conv2d: expected 3 input channels, got 4 \(input shape \(2, 4, 5, 5\)\)$"):
        lamina.nn.Conv2d(3, 4, 3)(x)
    with pytest.raises(ValueError, match="groups"):
        lamina.nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        lamina.nn.Conv2d(4, 6, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="zeros"):
        lamina.nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="kernel_size"):
        lamina.nn.Conv2d(4, 6, 0)


def test_binding_validates_outputs():
    from lamina import _C
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="out"):
        _C.conv2d_forward(x, w, None, np.zeros((1, 3, 4, 4), np.float32), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(TypeError, match="out"):
        _C.conv2d_forward(x, w, None, np.zeros((1, 3, 3, 3)), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="grad_weight"):
        _C.conv2d_backward(x, w, np.zeros((1, 3, 3, 3), np.float32), None, np.zeros((3, 2, 3), np.float32),
                           None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="out"):
        _C.conv2d_forward(x, w, None, x, (1, 1), (0, 0), (1, 1), 1)  # wrong shape (and aliasing)
    with pytest.raises(ValueError, match="contiguous"):
        _C.conv2d_forward(np.zeros((1, 2, 5, 10), np.float32)[..., ::2], w, None,
                          np.zeros((1, 3, 3, 3), np.float32), (1, 1), (0, 0), (1, 1), 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hw,pad", [((16, 16), 1), ((15, 17), 0), ((14, 14), 2)])
def test_winograd_route_matches_torch(hw, pad, dtype):
    """Deep 3x3 stride-1 layers take the Winograd path (forward and both gradients; 64 channels:
    F(4x4) for y, dx and, on Intel, dw)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 64, *hw))
    w = rng.standard_normal((64, 64, 3, 3)) * 0.05
    b = rng.standard_normal(64)
    tol = tolerance(dtype, "winograd4") if dtype == np.float32 else dict(rtol=1e-9, atol=1e-10)
    tol_dw = tolerance(dtype, "winograd_dw") if dtype == np.float32 else tol
    torch = requires_torch()
    lt = [lamina.tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
    tt = [torch.tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*lt, padding=pad)
    yt = torch.nn.functional.conv2d(*tt, padding=pad)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), **tol)
    v = rng.standard_normal(y.shape).astype(dtype)
    (y * lamina.tensor(v)).sum().backward()
    (yt * torch.tensor(v)).sum().backward()
    for name, a, t in zip(("x", "w", "b"), lt, tt):
        np.testing.assert_allclose(a.grad.data, t.grad.numpy(), **(tol_dw if name == "w" else tol), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo", ["direct", "auto"])
@pytest.mark.parametrize("case", [
    (5, 1, 28, 28, 6, 5, 2),    # LeNet C1
    (5, 6, 14, 14, 16, 5, 0),   # LeNet C3
    (3, 2, 9, 13, 7, 3, 1),     # a wide row ending inside a vector, K not a block multiple
    (2, 3, 6, 5, 17, 3, 2),     # several channel blocks, a ragged last one
])
def test_direct_conv_matches_torch(case, algo, dtype):
    """Few-input-channel layers on the direct path (forced, and chosen automatically): forward
    and all three gradients against PyTorch, at 1 and 2 threads."""
    torch = requires_torch()
    N, C, H, W, K, k, pad = case
    rng = np.random.default_rng(11)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((K, C, k, k)) * 0.2, rng.standard_normal(K)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)
    n0 = lamina._C.get_num_threads()
    try:
        lamina._C._conv_set_algo(algo)
        for threads in (1, 2):
            lamina._C.set_num_threads(threads)
            lt = [lamina.tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
            tt = [torch.tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
            y = F.relu(F.conv2d(*lt, padding=pad))
            yt = torch.relu(torch.nn.functional.conv2d(*tt, padding=pad))
            np.testing.assert_allclose(y.data, yt.detach().numpy(), **tol)
            v = rng.standard_normal(y.shape).astype(dtype)
            (y * lamina.tensor(v)).sum().backward()
            (yt * torch.tensor(v)).sum().backward()
            for a, t in zip(lt, tt):
                np.testing.assert_allclose(a.grad.data, t.grad.numpy(), **tol)
    finally:
        lamina._C._conv_set_algo("auto")
        lamina._C.set_num_threads(n0)


def test_direct_conv_agrees_with_im2col_and_is_thread_count_independent():
    """The direct path and im2col + GEMM give the same answer (to rounding), and the direct
    path's answer does not depend on the thread count (each image is one task)."""
    from lamina import _C
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    out = {}
    n0 = _C.get_num_threads()
    try:
        for algo, threads in (("im2col", 1), ("direct", 1), ("direct", 2)):
            _C._conv_set_algo(algo)
            _C.set_num_threads(threads)
            out[algo, threads] = np.empty((9, 16, 10, 10), np.float32)
            _C.conv2d_forward(x, w, b, out[algo, threads], (1, 1), (0, 0), (1, 1), 1)
    finally:
        _C._conv_set_algo("auto")
        _C.set_num_threads(n0)
    np.testing.assert_allclose(out["direct", 1], out["im2col", 1], rtol=1e-5, atol=1e-4)
    assert np.array_equal(out["direct", 1], out["direct", 2])
    with pytest.raises(ValueError, match="algo"):
        _C._conv_set_algo("fft")
