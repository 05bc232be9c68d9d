"""lamina._C elementwise, loss and optimizer kernels vs NumPy (and PyTorch where installed)."""
import numpy as np
import pytest

from lamina import _C

from conftest import requires_torch

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-6, np.float64: 1e-13}
SHAPES = [(1,), (7,), (33,), (3, 5), (2, 3, 9), (70001,)]
KINDS = ["identity", "relu", "leaky_relu", "softplus", "sigmoid", "tanh", "step"]
ISAS = (["portable"] + (["avx2"] if _C.cpu_supports_avx2_fma() else [])
        + (["avx512"] if _C.cpu_supports_avx512() else []))


@pytest.fixture(params=ISAS)
def isa(request):
    before = {"avx2+fma": "avx2"}.get(_C.isa(), _C.isa())
    _C.set_isa(request.param)
    yield request.param
    _C.set_isa(before)


def np_forward(kind, x, slope=0.01):
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        f = {
            "identity": lambda z: z,
            "relu": lambda z: np.maximum(z, 0),
            "leaky_relu": lambda z: np.where(z > 0, z, slope * z),
            "softplus": lambda z: np.where(z > 20, z, np.logaddexp(0, z)),
            "sigmoid": lambda z: np.exp(-np.logaddexp(0, -z)),
            "tanh": np.tanh,
            "step": lambda z: np.heaviside(z, 0.0),
        }[kind](x64)
    return f


def np_grad(kind, x, slope=0.01):
    x64 = x.astype(np.float64)
    s = np.exp(-np.logaddexp(0, -x64))
    return {
        "identity": np.ones_like(x64),
        "relu": (x64 > 0).astype(np.float64),
        "leaky_relu": np.where(x64 > 0, 1.0, slope),
        "softplus": np.where(x64 > 20, 1.0, s),
        "sigmoid": s * (1 - s),
        "tanh": 1 - np.tanh(x64) ** 2,
        "step": np.zeros_like(x64),
    }[kind]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_activation_vs_numpy(isa, kind, shape, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 6).astype(dtype)
    y = np.empty_like(x)
    _C.act_forward(kind, x, y, negative_slope=0.1)
    np.testing.assert_allclose(y, np_forward(kind, x, 0.1), rtol=4 * RTOL[dtype], atol=1e-30)
    dy = rng.standard_normal(shape).astype(dtype)
    dx = np.empty_like(x)
    _C.act_backward(kind, x, y, dy, dx, negative_slope=0.1)
    np.testing.assert_allclose(dx, dy * np_grad(kind, x, 0.1), rtol=20 * RTOL[dtype], atol=20 * RTOL[dtype])
    # in place: y written over x, dx over dy
    xi, dyi = x.copy(), dy.copy()
    _C.act_forward(kind, xi, xi, negative_slope=0.1)
    np.testing.assert_array_equal(xi, y)
    _C.act_backward(kind, x, y, dyi, dyi, negative_slope=0.1)
    np.testing.assert_array_equal(dyi, dx)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_activation_special_values(isa, kind, dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 20.0, -100.0], dtype=dtype)
    y = np.empty_like(x)
    _C.act_forward(kind, x, y)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(y, np_forward(kind, x).astype(dtype), rtol=4 * RTOL[dtype], atol=1e-30)
    assert np.isnan(y[4])  # NaN propagates like NumPy


def test_documented_kinks():
    z = np.zeros(3)
    y, dx = np.empty(3), np.empty(3)
    _C.act_forward("step", z, y)
    assert y.tolist() == [0.0, 0.0, 0.0]
    _C.act_backward("relu", z, None, np.ones(3), dx)
    assert dx.tolist() == [0.0, 0.0, 0.0]
    _C.act_backward("step", np.array([-1.0, 0.0, 1.0]), None, np.ones(3), dx)
    assert dx.tolist() == [0.0, 0.0, 0.0]
    _C.act_backward("leaky_relu", z, None, np.ones(3), dx, negative_slope=0.2)
    assert dx.tolist() == [0.2, 0.2, 0.2]


@pytest.mark.parametrize("kind", ["relu", "leaky_relu", "softplus", "sigmoid", "tanh"])
def test_activation_vs_torch(kind):
    torch = requires_torch()
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(10001) * 10).astype(np.float32)
    t = torch.tensor(x, requires_grad=True)
    fn = {"relu": torch.relu, "leaky_relu": torch.nn.functional.leaky_relu,
          "softplus": torch.nn.functional.softplus, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[kind]
    out = fn(t)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    out.backward(torch.tensor(dy))
    y, dx = np.empty_like(x), np.empty_like(x)
    _C.act_forward(kind, x, y)
    _C.act_backward(kind, x, y, dy, dx)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (64, 33), (5, 4, 9), (2, 3, 4, 5)])
def test_bias_ops_vs_numpy(shape, dtype):
    rng = np.random.default_rng(2)
    y0 = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape[-1]).astype(dtype)
    y = y0.copy()
    _C.bias_add_rows(y, b)
    np.testing.assert_array_equal(y, y0 + b)
    db = np.full(shape[-1], 99, dtype)
    _C.bias_grad_rows(y0, db)
    np.testing.assert_allclose(db, y0.reshape(-1, shape[-1]).sum(0), rtol=RTOL[dtype] * 50)
    bc = rng.standard_normal(shape[1]).astype(dtype)
    y = y0.copy()
    _C.bias_add_channels(y, bc)
    np.testing.assert_array_equal(y, y0 + bc.reshape((1, -1) + (1,) * (len(shape) - 2)))
    dbc = np.empty(shape[1], dtype)
    _C.bias_grad_channels(y0, dbc)
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(dbc, y0.sum(axis=axes), rtol=RTOL[dtype] * 50, atol=RTOL[dtype] * 50)



@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("split", [(1, 1, 1), (4, 3, 5), (1, 7, 1), (300, 1, 1), (2, 33, 17), (0, 3, 2),
                                   (70000, 1, 1), (40, 300, 1), (3, 2, 70000)])
def test_bias_grad_split_sums_each_block(split, dtype):
    rng = np.random.default_rng(3)
    outer, mid, inner = split
    dy = rng.standard_normal(split).astype(dtype)
    x = rng.standard_normal(split).astype(dtype)
    ds = np.full(mid, 99, dtype)
    _C.bias_grad_split(dy, ds, outer, mid, inner)
    want = dy.astype(np.float64).sum(axis=(0, 2))
    tol = dict(rtol=RTOL[dtype] * 50, atol=RTOL[dtype] * 50 * np.sqrt(outer * inner + 1))
    np.testing.assert_allclose(ds, want, **tol)
    again = np.empty_like(ds)
    _C.bias_grad_split(dy, again, outer, mid, inner)
    np.testing.assert_array_equal(again, ds)           # one fixed summation order
    _C.bias_grad_split(dy, ds, outer, mid, inner, x=x, alpha=-1.0)
    prod = (dy * x).astype(np.float64)     # each product rounded to the dtype first, as eager's dy * x
    np.testing.assert_allclose(ds, -prod.sum(axis=(0, 2)), **tol)


def test_bias_grad_split_rejects_bad_arguments():
    dy = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="dy: expected 30 elements"):
        _C.bias_grad_split(dy, np.empty(3), 2, 3, 5)
    with pytest.raises(ValueError, match="ds: expected 3 elements, got 4"):
        _C.bias_grad_split(dy, np.empty(4), 2, 3, 4)
    with pytest.raises(TypeError, match="ds"):
        _C.bias_grad_split(dy, np.empty(3, np.float32), 2, 3, 4)
    with pytest.raises(ValueError, match="x: expected shape"):
        _C.bias_grad_split(dy, np.empty(3), 2, 3, 4, x=np.ones(24))
    with pytest.raises(ValueError, match="non-negative"):
        _C.bias_grad_split(dy, np.empty(3), -2, 3, -4)

def np_log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(1, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (7, 3), (256, 10), (33, 1000)])
def test_softmax_family_vs_numpy(isa, shape, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    ls = np_log_softmax(x)
    p = np.exp(ls)
    y, ly = np.empty_like(x), np.empty_like(x)
    _C.softmax_forward(x, y)
    _C.log_softmax_forward(x, ly)
    np.testing.assert_allclose(y, p, rtol=4 * RTOL[dtype], atol=1e-7 if dtype == np.float32 else 1e-15)
    np.testing.assert_allclose(ly, ls, rtol=4 * RTOL[dtype], atol=4 * RTOL[dtype])
    dy = rng.standard_normal(shape).astype(dtype)
    dx, ldx = np.empty_like(x), np.empty_like(x)
    _C.softmax_backward(y, dy, dx)
    _C.log_softmax_backward(ly, dy, ldx)
    np.testing.assert_allclose(dx, p * (dy - (dy * p).sum(1, keepdims=True)), rtol=1e-4, atol=20 * RTOL[dtype])
    np.testing.assert_allclose(ldx, dy - p * dy.sum(1, keepdims=True), rtol=1e-4, atol=100 * RTOL[dtype])
    # cross-entropy with a few ignored rows
    N, C = shape
    t = rng.integers(0, C, N)
    t[::4] = -100 if N > 1 else t[::4]
    probs, losses = np.empty_like(x), np.empty(N, dtype)
    s, n = _C.cross_entropy_forward(x, t, probs, losses=losses)
    keep = t != -100
    ref = -ls[np.arange(N)[keep], t[keep]]
    assert n == keep.sum()
    np.testing.assert_allclose(s, ref.sum(), rtol=4 * RTOL[dtype])
    np.testing.assert_allclose(losses[keep], ref, rtol=4 * RTOL[dtype], atol=4 * RTOL[dtype])
    assert np.all(losses[~keep] == 0)
    np.testing.assert_array_equal(probs, y)
    dl = np.empty_like(x)
    _C.cross_entropy_backward(probs, t, dl, 1.0 / max(n, 1))
    onehot = np.zeros(shape)
    onehot[np.arange(N)[keep], t[keep]] = 1
    ref_dl = (p - onehot) / max(n, 1) * keep[:, None]
    np.testing.assert_allclose(dl, ref_dl, rtol=1e-5, atol=4 * RTOL[dtype])


def test_softmax_huge_logits_stable():
    x = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, -1e4]], dtype=np.float32)
    y, ly = np.empty_like(x), np.empty_like(x)
    _C.softmax_forward(x, y)
    _C.log_softmax_forward(x, ly)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(ly))
    np.testing.assert_allclose(y, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
    s, n = _C.cross_entropy_forward(x, np.array([1, 0]), np.empty_like(x))
    assert n == 2 and s == pytest.approx(1e4 + np.log(2), rel=1e-6)


def test_cross_entropy_vs_torch():
    torch = requires_torch()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 10))
    t = rng.integers(0, 10, 64)
    t[5] = -100
    tx = torch.tensor(x, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(tx, torch.tensor(t))
    loss.backward()
    probs = np.empty_like(x)
    s, n = _C.cross_entropy_forward(x, t, probs)
    dl = np.empty_like(x)
    _C.cross_entropy_backward(probs, t, dl, 1.0 / n)
    assert s / n == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(dl, tx.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (9,), (4, 33), (100003,)])
def test_mse_bce_vs_numpy(shape, dtype):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    t = rng.random(shape).astype(dtype)
    d = x.astype(np.float64) - t
    assert _C.mse_forward(x, t) == pytest.approx((d * d).sum(), rel=1e-12)
    dx = np.empty_like(x)
    _C.mse_backward(x, t, 0.5, dx)
    np.testing.assert_allclose(dx, 0.5 * d, rtol=RTOL[dtype], atol=RTOL[dtype])
    x64 = x.astype(np.float64)
    ref = (np.maximum(x64, 0) - x64 * t + np.log1p(np.exp(-np.abs(x64)))).sum()
    assert _C.bce_with_logits_forward(x, t) == pytest.approx(ref, rel=10 * RTOL[dtype])
    _C.bce_with_logits_backward(x, t, 2.0, dx)
    np.testing.assert_allclose(dx, 2.0 * (np.exp(-np.logaddexp(0, -x64)) - t), rtol=10 * RTOL[dtype],
                               atol=10 * RTOL[dtype])


def test_bce_vs_torch():
    torch = requires_torch()
    rng = np.random.default_rng(6)
    x = rng.standard_normal(100) * 30
    t = rng.random(100)
    tx = torch.tensor(x, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.tensor(t))
    loss.backward()
    assert _C.bce_with_logits_forward(x, t) / 100 == pytest.approx(loss.item(), rel=1e-12)
    dx = np.empty_like(x)
    _C.bce_with_logits_backward(x, t, 1 / 100, dx)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_optim_kernels_vs_numpy(dtype):
    rng = np.random.default_rng(7)
    p0, g = rng.standard_normal(1001).astype(dtype), rng.standard_normal(1001).astype(dtype)
    p, buf = p0.copy(), np.empty_like(p0)
    _C.sgd_step(p, g, buf, 0.1, 0.9, 0.0, 0.01, True, True)
    d = g + 0.01 * p0
    np.testing.assert_allclose(buf, d, rtol=RTOL[dtype])
    np.testing.assert_allclose(p, p0 - 0.1 * (d + 0.9 * d), rtol=10 * RTOL[dtype], atol=10 * RTOL[dtype])
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    _C.adam_step(p, g, m, v, None, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False, False)
    np.testing.assert_allclose(p, p0 - 0.1 * g / (np.abs(g) + 1e-8), rtol=10 * RTOL[dtype], atol=1e-6)


def test_errors_name_the_argument():
    x32, x64 = np.zeros(4, np.float32), np.zeros(4)
    with pytest.raises(ValueError, match="kind: expected one of"):
        _C.act_forward("gelu", x64, x64.copy())
    with pytest.raises(TypeError, match="y: expected dtype float64"):
        _C.act_forward("relu", x64, x32)
    with pytest.raises(TypeError, match="x: expected dtype float32 or float64, got int64"):
        _C.act_forward("relu", np.zeros(4, np.int64), x64)
    with pytest.raises(ValueError, match=r"y: expected shape \(4,\), got \(5,\)"):
        _C.act_forward("relu", x64, np.zeros(5))
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.act_forward("relu", np.zeros(8)[::2], x64)
    with pytest.raises(ValueError, match="overlap"):
        buf = np.zeros(8)
        _C.act_forward("relu", buf[:4], buf[2:6])
    with pytest.raises(ValueError, match="y: sigmoid backward reads the forward output y, got None"):
        _C.act_backward("sigmoid", x64, None, x64, x64.copy())
    with pytest.raises(ValueError, match="writeable"):
        ro = np.zeros(4)
        ro.flags.writeable = False
        _C.act_forward("relu", x64, ro)
    with pytest.raises(ValueError, match=r"b: expected shape \(3,\)"):
        _C.bias_add_rows(np.zeros((2, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="x: expected 2-D"):
        _C.softmax_forward(x64, x64.copy())
    with pytest.raises(ValueError, match=r"target: class index 12 out of range \[0, 10\)"):
        _C.cross_entropy_forward(np.zeros((2, 10)), np.array([1, 12]), np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"target: class index -3 out of range \[0, 10\)"):
        _C.cross_entropy_backward(np.zeros((2, 10)), np.array([-3, 1]), np.zeros((2, 10)), 1.0)
    with pytest.raises(TypeError, match="target: expected dtype int64"):
        _C.cross_entropy_forward(np.zeros((2, 10)), np.array([1, 2], np.int32), np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"target: expected shape \(2,\)"):
        _C.cross_entropy_forward(np.zeros((2, 10)), np.array([1, 2, 3]), np.zeros((2, 10)))
    with pytest.raises(ValueError, match="buf: momentum=0.9 needs a momentum buffer"):
        _C.sgd_step(x64, x64.copy(), None, 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="max_exp_avg_sq: amsgrad=True"):
        _C.adam_step(x64, x64.copy(), x64.copy(), x64.copy(), None, 1, 0.1, 0.9, 0.999, 1e-8, 0, False, True)
    with pytest.raises(ValueError, match="step: expected"):
        _C.adam_step(x64, x64.copy(), x64.copy(), x64.copy(), None, 0, 0.1, 0.9, 0.999, 1e-8, 0, False, False)
    with pytest.raises(TypeError, match="grad: expected dtype float64"):
        _C.sgd_step(x64, x32, None, 0.1, 0.0, 0.0, 0.0, False, True)


# float tanh / sigmoid in ulp of the float64 value: the AVX-512 and portable kernels hold 2 ulp,
# AVX2's rational tanh 6 and its sigmoid 3 (csrc/activation.h).
ULP_LIMIT = {"portable": {"tanh": 2, "sigmoid": 2}, "avx2": {"tanh": 6, "sigmoid": 3},
             "avx512": {"tanh": 2, "sigmoid": 2}}


@pytest.mark.parametrize("kind", ["tanh", "sigmoid"])
def test_tanh_sigmoid_ulp_sweep(isa, kind):
    bits = np.arange(0, 1 << 32, 8191, dtype=np.uint64).astype(np.uint32)  # every binade, both signs
    x = bits.view(np.float32)
    edges = np.array([0.0, 1e-45, 1.2e-38, 0.0625, 0.625, 9.2, 9.02, 87.5, 104.0, 1e30, np.inf], np.float32)
    x = np.concatenate([x, edges, -edges])
    y = np.empty_like(x)
    _C.act_forward(kind, x, y)
    finite = ~np.isnan(x)
    assert np.isnan(y[~finite]).all()
    x64 = x[finite].astype(np.float64)
    with np.errstate(over="ignore"):
        ref = np.tanh(x64) if kind == "tanh" else 1.0 / (1.0 + np.exp(-x64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    err = np.abs(y[finite].astype(np.float64) - ref) / ulp
    worst = int(np.argmax(err))
    assert err[worst] <= ULP_LIMIT[isa][kind], (isa, kind, float(x[finite][worst]), float(err[worst]))
    lo, hi = (-1.0, 1.0) if kind == "tanh" else (0.0, 1.0)
    assert ((y[finite] >= lo) & (y[finite] <= hi)).all()
    tiny = np.abs(x) < 2.0 ** -12
    if kind == "tanh":
        np.testing.assert_array_equal(y[tiny], x[tiny])  # tanh(x) = x, signed zeros and denormals kept
        assert y[x == np.inf].tolist() == [1.0] and y[x == -np.inf].tolist() == [-1.0]
    else:
        assert y[x == np.inf].tolist() == [1.0] and y[x == -np.inf].tolist() == [0.0]
