"""PyTorch's tensor functions that lamina added later (tril, flip, roll, diag, unique, median,
quantile, lerp, addmm, the trig/hyperbolic/erf family, index_add, ...), each checked against
torch itself: values, dtypes, shapes, named-tuple fields, the gradient of a random weighted sum
wrt every float input (float64, tight tolerance; float64 finite differences for the new
backward rules), the Tensor-method form, and the errors for bad input."""
import numpy as np
import pytest

import lamina
from lamina.autograd import gradcheck

torch = pytest.importorskip("torch")

F64, F32 = np.float64, np.float32
TOL = {F64: dict(rtol=1e-9, atol=1e-11), F32: dict(rtol=2e-5, atol=2e-6)}


def _r(*shape, seed=0, low=None, high=None):
    x = np.random.default_rng(seed).standard_normal(shape)
    if low is not None:
        x = low + (high - low) * np.random.default_rng(seed).random(shape)
    return x


def _ints(*shape, high=5, seed=1):
    return np.random.default_rng(seed).integers(0, high, shape).astype(np.int64)


def _convert(args, dt, make, grad):
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            t = make(a.astype(dt) if a.dtype.kind == "f" else a.copy())
            if grad and a.dtype.kind == "f":
                t.requires_grad_(True)
            out.append(t)
        elif isinstance(a, (list, tuple)) and a and all(isinstance(b, np.ndarray) for b in a):
            out.append(type(a)(_convert(a, dt, make, grad)))
        else:
            out.append(a)
    return out


def _tensors(args):
    for a in args:
        if isinstance(a, (lamina.Tensor, torch.Tensor)):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from _tensors(a)


FIELDS = ("values", "indices", "min", "max")


def _compare(lo, to, dt, where):
    if isinstance(to, torch.Tensor):
        assert isinstance(lo, lamina.Tensor), f"{where}: expected a Tensor, got {type(lo).__name__}"
        tn = to.detach().numpy()
        assert tuple(lo.shape) == tuple(tn.shape), f"{where}: shape {tuple(lo.shape)} vs torch {tuple(tn.shape)}"
        assert lo.dtype == tn.dtype, f"{where}: dtype {lo.dtype} vs torch {tn.dtype}"
        tol = TOL[F32] if tn.dtype == np.float32 else TOL[F64]
        np.testing.assert_allclose(lo.detach().numpy(), tn, equal_nan=True, err_msg=where, **tol)
        return
    if isinstance(to, (tuple, list)):
        assert isinstance(lo, (tuple, list)) and len(lo) == len(to), f"{where}: {lo!r} vs torch {to!r}"
        for f in FIELDS:
            if hasattr(to, f) and not isinstance(to, torch.Tensor) and hasattr(type(to), "n_fields"):
                _compare(getattr(lo, f), getattr(to, f), dt, f"{where}.{f}")
        for i, (a, b) in enumerate(zip(lo, to)):
            _compare(a, b, dt, f"{where}[{i}]")
        return
    assert lo == to, f"{where}: {lo!r} vs torch {to!r}"


def _float_outs(res):
    if isinstance(res, (tuple, list)):
        return [o for r in res for o in _float_outs(r)]
    return [res] if isinstance(res, (lamina.Tensor, torch.Tensor)) and res.dtype in (lamina.float64, torch.float64) \
        and res.requires_grad else []


def check(name, *args, grad=True, method=True, dtypes=(F64, F32), fd=False, **kwargs):
    """lamina.<name> vs torch.<name> on the same inputs: outputs in every dtype; in float64 the
    gradients of a random weighted sum wrt every float input (and finite differences when fd);
    and the Tensor-method form gives the function's result."""
    for dt in dtypes:
        la = _convert(args, dt, lambda a: lamina.tensor(a), False)
        ta = _convert(args, dt, torch.from_numpy, False)
        lo = getattr(lamina, name)(*la, **kwargs)
        to = getattr(torch, name)(*ta, **kwargs)
        _compare(lo, to, dt, f"{name}[{np.dtype(dt).name}]")
        if method and la and isinstance(la[0], lamina.Tensor):
            mo = getattr(la[0], name)(*la[1:], **kwargs)
            _compare(mo, to, dt, f"Tensor.{name}[{np.dtype(dt).name}]")
    if not grad:
        return
    la = _convert(args, F64, lambda a: lamina.tensor(a), True)
    ta = _convert(args, F64, torch.from_numpy, True)
    lo = _float_outs(getattr(lamina, name)(*la, **kwargs))
    to = _float_outs(getattr(torch, name)(*ta, **kwargs))
    assert len(lo) == len(to) and lo, f"{name}: differentiable outputs {len(lo)} vs torch {len(to)}"
    rng = np.random.default_rng(7)
    ws = [rng.standard_normal(tuple(o.shape)) for o in to]
    lsum = sum((o * lamina.tensor(w)).sum() for o, w in zip(lo, ws))
    tsum = sum((o * torch.from_numpy(w)).sum() for o, w in zip(to, ws))
    lsum.backward()
    tsum.backward()
    for i, (a, b) in enumerate(zip(_tensors(la), _tensors(ta))):
        if b.requires_grad:
            tg = b.grad.numpy(force=True) if b.grad is not None else np.zeros(tuple(b.shape))
            lg = a.grad.numpy() if a.grad is not None else np.zeros(tuple(a.shape))
            np.testing.assert_allclose(lg, tg, rtol=1e-8, atol=1e-10, err_msg=f"{name}: grad of input {i}")
    if fd:
        fresh = _convert(args, F64, lambda a: lamina.tensor(a), True)
        diff = list(_tensors(fresh))
        assert gradcheck(lambda *ts: _first(getattr(lamina, name)(*_rebuild(args, ts), **kwargs)), diff)


def _first(res):
    return res[0] if isinstance(res, (tuple, list)) else res


def _rebuild(args, tensors):
    it = iter(tensors)
    return [next(it) if isinstance(a, np.ndarray) else a for a in args]


# ---------------------------------------------------------------- triangles, flips, diagonals
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 3), (0, 3)])
@pytest.mark.parametrize("k", [0, 1, -2])
def test_tril_triu(shape, k):
    check("tril", _r(*shape), k)
    check("triu", _r(*shape), diagonal=k)
    check("tril", _ints(*shape), k, grad=False)


def test_flips_and_roll():
    x = _r(2, 3, 4)
    check("flip", x, (0, 2))
    check("flip", x, [-1])
    check("fliplr", x)
    check("flipud", x)
    check("roll", x, 1)
    check("roll", x, (2, -1), (1, 2))
    check("roll", x, -5, 2)
    check("roll", _r(0, 3), 1, 0)
    for k in (0, 1, 2, 3, -1, 6):
        check("rot90", x, k, (1, 2))
    check("roll", _ints(3, 4), 1, 1, grad=False)


def test_diagonals_and_trace():
    for k in (0, 1, -1, 3):
        check("diag", _r(4), k)
        check("diag", _r(3, 5), k)
    check("diagonal", _r(2, 3, 4), 1, 0, 2)
    check("diagonal", _r(3, 4), -1)
    check("diag_embed", _r(2, 3))
    check("diag_embed", _r(2, 3), 1, 0, 2)
    check("trace", _r(3, 4))
    check("trace", _ints(3, 3), grad=False)
    r, c = lamina.tril_indices(3, 4, 1), torch.tril_indices(3, 4, 1)
    _compare(r, c, F64, "tril_indices")
    _compare(lamina.triu_indices(4, 3, -1), torch.triu_indices(4, 3, -1), F64, "triu_indices")


# ---------------------------------------------------------------- products
def test_products():
    check("outer", _r(3), _r(4, seed=1))
    check("ger", _r(3), _r(4, seed=1))
    check("dot", _r(5), _r(5, seed=1))
    check("vdot", _r(5), _r(5, seed=1))
    check("inner", _r(2, 5), _r(3, 5, seed=1))
    check("mv", _r(3, 5), _r(5, seed=1))
    check("addmm", _r(3, 4), _r(3, 5, seed=1), _r(5, 4, seed=2))
    check("addmm", _r(4), _r(3, 5, seed=1), _r(5, 4, seed=2), beta=0.5, alpha=2.0)
    check("addmv", _r(3), _r(3, 5, seed=1), _r(5, seed=2), alpha=-1.5)
    check("addr", _r(3, 4), _r(3, seed=1), _r(4, seed=2))
    check("baddbmm", _r(2, 3, 4), _r(2, 3, 5, seed=1), _r(2, 5, 4, seed=2), beta=2.0)
    check("addbmm", _r(3, 4), _r(2, 3, 5, seed=1), _r(2, 5, 4, seed=2))
    check("kron", _r(2, 3), _r(3, 2, seed=1))
    check("kron", _r(2), _r(2, 3, seed=1))
    check("tensordot", _r(2, 3, 4), _r(3, 4, 5, seed=1), dims=2, method=False)
    check("tensordot", _r(2, 3, 4), _r(4, 3, seed=1), dims=([1, 2], [1, 0]), method=False)
    check("cross", _r(4, 3), _r(4, 3, seed=1), dim=1)
    check("cross", _r(3, 2), _r(3, 2, seed=1), dim=0)
    check("dist", _r(3, 4), _r(3, 4, seed=1))
    check("dist", _r(3, 4), _r(4, seed=1), 1)
    check("cdist", _r(3, 4), _r(5, 4, seed=1), method=False)
    check("cdist", _r(2, 3, 4), _r(2, 5, 4, seed=1), p=1.0, method=False)


# ---------------------------------------------------------------- elementwise
UNIT = dict(low=-0.9, high=0.9)


@pytest.mark.parametrize("name,kw", [("sinh", {}), ("cosh", {}), ("asin", UNIT), ("acos", UNIT), ("atan", {}),
                                     ("asinh", {}), ("acosh", dict(low=1.2, high=3.0)), ("atanh", UNIT),
                                     ("erf", {}), ("erfc", {}), ("erfinv", UNIT),
                                     ("reciprocal", dict(low=0.5, high=2.0)), ("frac", dict(low=-3.1, high=3.1)),
                                     ("deg2rad", {}), ("rad2deg", {}), ("sgn", {}),
                                     ("logit", dict(low=0.1, high=0.9)), ("arcsin", UNIT), ("arctanh", UNIT)])
def test_unary(name, kw):
    check(name, _r(3, 4, **kw))
    check(name, _r(0, 2, **kw))
    check(name, np.asarray(_r(1, **kw)[0]))


def test_unary_on_integers_promotes():
    for name in ("sinh", "atan", "erf", "reciprocal", "deg2rad"):
        check(name, np.array([1, 2, 3]), grad=False)


def test_binary_elementwise():
    a, b = _r(3, 4), _r(4, seed=1)
    for name in ("atan2", "hypot", "logaddexp", "logaddexp2", "copysign", "fmax", "fmin", "xlogy"):
        check(name, a, b)
    pos = _r(3, 4, low=0.2, high=2.0, seed=3)
    x0 = _r(3, 4, seed=4)
    x0[0, :2] = 0
    check("xlogy", x0, pos)
    n = _r(3, 4, seed=5)
    n[0, 0], n[1, 1] = np.nan, np.nan
    m = _r(3, 4, seed=6)
    m[1, 1], m[2, 2] = np.nan, np.nan
    check("fmax", n, m)
    check("fmin", n, m)
    check("logit", _r(3, 4, low=0.01, high=0.99), eps=0.1)
    check("heaviside", np.array([-1.5, 0.0, 2.0]), np.array([0.5, 0.25, 0.75]), grad=False)
    check("signbit", np.array([-1.5, -0.0, 0.0, 2.0]), grad=False)
    check("nan_to_num", np.array([np.nan, np.inf, -np.inf, 1.5]))
    check("nan_to_num", np.array([np.nan, np.inf, -np.inf, 1.5]), nan=2.0, posinf=9.0, neginf=-9.0)


def test_arithmetic_compositions():
    a, b, c = _r(3, 4), _r(3, 4, seed=1), _r(4, seed=2, low=0.5, high=2.0)
    check("lerp", a, b, 0.3)
    check("lerp", a, b, _r(3, 4, seed=3))
    check("addcmul", a, b, c, value=0.5)
    check("addcdiv", a, b, c, value=-2.0)
    check("addcdiv", a, b, c)
    check("clamp_min", a, 0.1)
    check("clamp_max", a, -0.1)


def test_logic_and_bits():
    a, b = _ints(3, 4, high=3), _ints(3, 4, high=3, seed=2)
    for name in ("logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor"):
        check(name, a, b, grad=False)
        check(name, a > 0, b > 1, grad=False)
    check("logical_not", a, grad=False)
    check("bitwise_not", a, grad=False)
    check("bitwise_not", a > 1, grad=False)
    x, y = _r(3, 4), _r(3, 4)
    y[0, 0] += 1e-3
    check("isclose", x, y, grad=False)
    check("isclose", x, y, rtol=1e-2, atol=1e-3, grad=False)
    check("count_nonzero", a, grad=False)
    check("count_nonzero", a, dim=1, grad=False)
    check("count_nonzero", a, dim=(0, 1), grad=False)


# ---------------------------------------------------------------- reductions and order statistics
def _ties():
    return np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.25], [-1.0, 4.0, 2.0, 4.0]])


def test_amax_amin_split_ties():
    for fn in ("amax", "amin"):
        check(fn, _ties())
        check(fn, _ties(), 1)
        check(fn, _ties(), (0, 1), True)
        check(fn, _ties(), -1, keepdim=True)
        check(fn, _ints(3, 4), 0, grad=False)
        check(fn, np.asarray(2.5))
    check("aminmax", _ties(), dim=1)
    check("aminmax", _ties())


def test_median_kthvalue_mode():
    distinct = np.random.default_rng(3).permutation(20).reshape(4, 5) * 0.5 - 3
    check("median", distinct)
    check("median", distinct, 1)
    check("median", distinct, 0, True)
    check("median", _r(6), 0)
    check("nanmedian", distinct, 1)
    withnan = distinct.copy()
    withnan[0, 1] = withnan[2, 2] = np.nan
    check("nanmedian", withnan, 1, grad=False)
    check("nanmedian", withnan, grad=False)
    check("median", withnan, grad=False, method=False)
    for k in (1, 3, 5):
        check("kthvalue", distinct, k, 1)
    check("kthvalue", distinct, 2, 0, True)
    modes = np.array([[1.0, 3.0, 3.0, 2.0, 2.0, 5.0], [4.0, 4.0, 1.0, 1.0, 1.0, 4.0]])
    check("mode", modes)
    check("mode", modes, 0, grad=False)
    check("mode", _ints(3, 7), 1, grad=False)
    check("msort", distinct)


def test_quantile():
    x = _r(4, 6)
    for interp in ("linear", "lower", "higher", "midpoint", "nearest"):
        check("quantile", x, 0.3, interpolation=interp)
        check("quantile", x, 0.75, 1, interpolation=interp)
    check("quantile", x, np.array([0.1, 0.5, 0.9]), 0, True)
    withnan = x.copy()
    withnan[1, 2] = np.nan
    check("nanquantile", withnan, 0.4, 1)
    check("quantile", withnan, 0.4, 1, grad=False)


def test_scans():
    check("cumprod", _r(3, 4), 1, fd=True)
    z = _r(3, 4)
    z[0, 1] = z[1, 0] = z[1, 2] = 0.0
    check("cumprod", z, 1, fd=True)
    check("cumprod", z, 0)
    check("cumprod", _ints(3, 4), 1, grad=False)
    ties = np.array([[1.0, 3.0, 3.0, 2.0, 5.0, 5.0], [2.0, 1.0, 1.0, 0.5, 3.0, 0.5]])
    check("cummax", ties, 1)
    check("cummin", ties, 1)
    check("cummax", ties, 0)
    check("cummin", _ints(3, 5), 1, grad=False)


def test_nan_reductions_and_moments():
    x = _r(3, 4)
    x[0, 1] = x[2, 3] = np.nan
    check("nansum", x)
    check("nansum", x, 1)
    check("nanmean", x, 0, True)
    check("nanmean", x)
    y = _r(3, 4)
    check("var_mean", y, 1, method=False)
    check("std_mean", y, 0, keepdim=True, method=False)
    check("var_mean", y, method=False)
    check("diff", y)
    check("diff", y, 2, 0)
    check("diff", y, 1, -1, _r(3, 1, seed=2), _r(3, 2, seed=3))
    check("diff", _ints(3, 4), grad=False)
    check("diff", _ints(5) > 2, grad=False)


# ---------------------------------------------------------------- sets, counting, searching (no gradient)
def test_nonzero_argwhere_unique():
    a = _ints(3, 4, high=3)
    check("nonzero", a, grad=False)
    check("argwhere", a, grad=False)
    check("nonzero", a, as_tuple=True, grad=False)
    check("nonzero", np.zeros((0, 3)), grad=False)
    check("nonzero", np.asarray(3), grad=False)
    check("nonzero", np.asarray(0.0), grad=False)
    check("unique", a, grad=False)
    check("unique", a, return_inverse=True, return_counts=True, grad=False)
    check("unique", _r(3, 4).round(0), return_inverse=True, grad=False)
    rows = np.array([[1, 2], [0, 5], [1, 2], [0, 5], [3, 3]])
    check("unique", rows, dim=0, return_inverse=True, return_counts=True, grad=False)
    runs = np.array([1, 1, 2, 2, 3, 1, 1, 2])
    check("unique_consecutive", runs, grad=False)
    check("unique_consecutive", runs, return_inverse=True, return_counts=True, grad=False)
    check("unique_consecutive", rows, dim=0, return_inverse=True, return_counts=True, grad=False)
    check("bincount", np.array([0, 1, 1, 3, 7]), grad=False)
    check("bincount", np.array([0, 1, 1, 3]), np.array([0.5, 1.0, 2.0, 3.0]), minlength=6, grad=False)
    check("histc", _r(50), bins=7, grad=False)
    check("histc", _r(50), bins=4, min=-1, max=1, grad=False)


def test_searchsorted_bucketize():
    seq = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    vals = np.array([[3.0, 6.0, 9.0], [0.5, 7.0, 10.0]])
    check("searchsorted", seq, vals, grad=False, method=False)
    check("searchsorted", seq, vals, right=True, grad=False, method=False)
    check("searchsorted", seq, vals, side="right", out_int32=True, grad=False, method=False)
    check("searchsorted", np.sort(_r(2, 5), axis=1), _r(2, 3, seed=2), grad=False, method=False)
    check("bucketize", vals, seq, grad=False, method=False)
    check("bucketize", vals, seq, right=True, grad=False, method=False)


# ---------------------------------------------------------------- selecting and placing
def test_masked_select_take():
    x = _r(3, 4)
    m = _r(3, 4, seed=3) > 0
    check("masked_select", x, m)
    check("masked_select", x, m[0])
    check("take", x, np.array([[0, 11], [5, -1]]))
    check("take_along_dim", x, np.argsort(x, 1), 1)
    check("take_along_dim", x, np.array([[0], [2], [1]]), 1)
    check("take_along_dim", x, np.array([3, 0]))


def test_index_add_copy_fill():
    x, src = _r(5, 3), _r(4, 3, seed=2)
    idx = np.array([0, 4, 0, 2])
    check("index_add", x, 0, idx, src)
    check("index_add", x, 0, idx, src, alpha=2.5)
    check("index_add", _r(3, 5), 1, np.array([1, 1]), _r(3, 2, seed=3))
    check("index_copy", x, 0, np.array([4, 1, 2, 0]), src)
    check("index_fill", x, 1, np.array([0, 2]), -1.5)
    check("index_add", _ints(5, 3), 0, idx, _ints(4, 3), grad=False)


def test_inplace_index_methods_match_torch():
    for name, extra in (("index_add_", (np.array([0, 2]), _r(2, 3, seed=2))),
                        ("index_copy_", (np.array([2, 0]), _r(2, 3, seed=2))),
                        ("index_fill_", (np.array([1]), 2.5))):
        lx, tx = lamina.tensor(_r(4, 3)), torch.from_numpy(_r(4, 3))
        largs = [lamina.tensor(a) if isinstance(a, np.ndarray) else a for a in extra]
        targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in extra]
        assert getattr(lx, name)(0, *largs) is lx
        getattr(tx, name)(0, *targs)
        _compare(lx, tx, F64, name)
    for name, extra in (("addcmul_", (_r(3, seed=1), _r(3, seed=2))), ("addcdiv_", (_r(3, seed=1), _r(3, seed=2))),
                        ("lerp_", (_r(3, seed=1), 0.25))):
        lx, tx = lamina.tensor(_r(3)), torch.from_numpy(_r(3))
        largs = [lamina.tensor(a) if isinstance(a, np.ndarray) else a for a in extra]
        targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in extra]
        getattr(lx, name)(*largs)
        getattr(tx, name)(*targs)
        _compare(lx, tx, F64, name)
    # the in-place write is recorded: the gradient reaches the written-from source
    src = lamina.tensor(_r(2, 3), requires_grad=True)
    base = lamina.zeros(4, 3, dtype=lamina.float64)
    base.index_add_(0, lamina.tensor([1, 1]), src)
    (base * lamina.tensor(_r(4, 3, seed=9))).sum().backward()
    np.testing.assert_allclose(src.grad.numpy(), np.stack([_r(4, 3, seed=9)[1]] * 2))


# ---------------------------------------------------------------- shapes
def test_narrow_movedim_tile_repeat():
    x = _r(2, 3, 4)
    check("narrow", x, 2, 1, 2)
    check("narrow", x, -1, -3, 3)
    check("movedim", x, 0, 2)
    check("movedim", x, (0, 1), (2, 0))
    check("moveaxis", x, -1, 0)
    check("swapaxes", x, 0, 2)
    check("swapdims", x, 1, -1)
    check("tile", x, (2,))
    check("tile", x, (2, 1, 1, 2))
    check("tile", _ints(2, 3), (2, 2), grad=False)
    check("repeat_interleave", x, 2)
    check("repeat_interleave", x, 3, 1)
    check("repeat_interleave", x, np.array([1, 0, 2]), dim=1)
    check("repeat_interleave", np.array([2, 0, 1]), grad=False)
    check("broadcast_to", _r(3, 1), (2, 3, 4))
    outs_l = lamina.broadcast_tensors(lamina.tensor(_r(3, 1)), lamina.tensor(_r(4)))
    outs_t = torch.broadcast_tensors(torch.from_numpy(_r(3, 1)), torch.from_numpy(_r(4)))
    _compare(outs_l, outs_t, F64, "broadcast_tensors")
    assert tuple(lamina.broadcast_shapes((3, 1), (4,), 1)) == tuple(torch.broadcast_shapes((3, 1), (4,), 1))


def test_stacks_and_splits():
    a, b = _r(3), _r(3, seed=1)
    m, n = _r(2, 3), _r(2, 3, seed=1)
    for name in ("hstack", "vstack", "dstack", "column_stack", "row_stack"):
        check(name, [a, b], method=False)
        check(name, [m, n], method=False)
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for x in (np.asarray(1.5), a, m, _r(2, 3, 4)):
            check(name, x, method=False)
    x = _r(7, 4)
    check("tensor_split", x, 3)
    check("tensor_split", x, [1, 5], 0)
    check("tensor_split", x, (1, -1, 9), dim=1)
    check("hsplit", _r(4, 6), 3)
    check("vsplit", _r(4, 6), [1, 3])
    check("dsplit", _r(2, 2, 4), 2)
    check("block_diag", _r(2, 3), _r(1, seed=1), _r(2, 2, seed=2), method=False)
    check("cartesian_prod", a, _r(2, seed=1), method=False)
    g = check("meshgrid", a, _r(2, seed=1), indexing="ij", method=False)
    check("meshgrid", a, _r(2, seed=1), _r(4, seed=2), indexing="xy", method=False)
    assert g is None


def test_factories():
    for args, kw in (((0, 2, 5), {}), ((1, -1, 4), dict(base=2.0)), ((0, 3, 4), dict(dtype=lamina.float64))):
        tkw = dict(kw, dtype=torch.float64) if "dtype" in kw else kw
        _compare(lamina.logspace(*args, **kw), torch.logspace(*args, **tkw), F32, "logspace")


# ---------------------------------------------------------------- Tensor methods with no function
def test_new_and_layout_methods():
    x = lamina.tensor(_r(3, 4).astype(F32))
    t = torch.from_numpy(_r(3, 4).astype(F32))
    _compare(x.new_full((2, 2), 1.5), t.new_full((2, 2), 1.5), F32, "new_full")
    _compare(x.new_full((2,), 3, dtype=lamina.int64), t.new_full((2,), 3, dtype=torch.int64), F32, "new_full int")
    assert tuple(x.new_empty(2, 5).shape) == (2, 5) and x.new_empty((1,)).dtype == lamina.float32
    _compare(x.new_tensor([1, 2]), t.new_tensor([1, 2]), F32, "new_tensor")
    _compare(x.new_tensor([1.0, 2.5]), t.new_tensor([1.0, 2.5]), F32, "new_tensor float")
    assert x.element_size() == t.element_size() and x.nbytes == t.nbytes and x.itemsize == t.itemsize
    xt = lamina.tensor(_r(3, 4))
    tt = torch.from_numpy(_r(3, 4))
    assert xt.stride() == tt.stride() and xt.t().stride() == tt.t().stride() and xt.stride(1) == tt.stride(1)
    assert xt[1:, 2:].storage_offset() == tt[1:, 2:].storage_offset() == 6
    assert xt.storage_offset() == 0
    assert xt.t().is_contiguous() is False and xt.is_contiguous() is True
    for name in ("half", "bfloat16"):
        with pytest.raises(TypeError, match="16-bit"):
            getattr(xt, name)()


def test_fill_diagonal_and_shape_inplace():
    for shape, wrap in (((3, 3), False), ((7, 3), True), ((7, 3), False), ((2, 5), False)):
        lx, tx = lamina.zeros(*shape), torch.zeros(*shape)
        lx.fill_diagonal_(2.0, wrap)
        tx.fill_diagonal_(2.0, wrap)
        _compare(lx, tx, F32, f"fill_diagonal_{shape}")
    lx, tx = lamina.tensor(_r(1, 3, 1)), torch.from_numpy(_r(1, 3, 1))
    assert lx.squeeze_() is lx
    tx.squeeze_()
    _compare(lx, tx, F64, "squeeze_")
    lx.unsqueeze_(1)
    tx.unsqueeze_(1)
    _compare(lx, tx, F64, "unsqueeze_")
    lm, tm = lamina.tensor(_r(2, 3)), torch.from_numpy(_r(2, 3))
    lm.t_()
    tm.t_()
    _compare(lm, tm, F64, "t_")


def test_sum_to_size_and_unfold():
    x, t = lamina.tensor(_r(2, 3, 4), requires_grad=True), torch.from_numpy(_r(2, 3, 4)).requires_grad_(True)
    for size in ((3, 1), (1, 3, 4), (2, 1, 4), (4,)):
        _compare(x.sum_to_size(size), t.sum_to_size(size), F64, f"sum_to_size{size}")
    _compare(x.sum_to_size(1, 1), t.sum_to_size(1, 1), F64, "sum_to_size(1, 1)")
    for dim, size, step in ((2, 2, 1), (2, 3, 2), (0, 1, 1), (1, 3, 3), (-1, 4, 1)):
        lu, tu = x.unfold(dim, size, step), t.unfold(dim, size, step)
        _compare(lu, tu, F64, f"unfold{(dim, size, step)}")
    w = _r(2, 3, 2, seed=5)
    (x.unfold(2, 2, 1)[..., 0] * lamina.tensor(np.pad(w, ((0, 0), (0, 0), (0, 1)))[..., :3])).sum().backward()
    (t.unfold(2, 2, 1)[..., 0] * torch.from_numpy(np.pad(w, ((0, 0), (0, 0), (0, 1)))[..., :3])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
    _compare(lamina.tensor(_ints(6)).unfold(0, 2, 2), torch.from_numpy(_ints(6)).unfold(0, 2, 2), F64, "unfold int")


# ---------------------------------------------------------------- finite differences for the new backward rules
def test_finite_differences():
    check("amax", _r(3, 4), 1, fd=True, dtypes=(F64,))
    check("atan2", _r(3, 4), _r(3, 4, seed=1), fd=True, dtypes=(F64,))
    check("median", _r(3, 5), 1, fd=True, dtypes=(F64,))
    check("quantile", _r(3, 5), 0.3, 1, fd=True, dtypes=(F64,))
    check("erfinv", _r(4, **UNIT), fd=True, dtypes=(F64,))
    check("cdist", _r(3, 4), _r(2, 4, seed=1), fd=True, dtypes=(F64,), method=False)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("call,error,match", [
    (lambda x: lamina.tril(lamina.ones(3)), RuntimeError, "at least 2"),
    (lambda x: lamina.flip(x, (0, 0)), RuntimeError, "more than once"),
    (lambda x: lamina.flip(x, 3), IndexError, "flip"),
    (lambda x: lamina.roll(x, (1, 2), 0), RuntimeError, "align"),
    (lambda x: lamina.rot90(x, 1, (0, 0)), RuntimeError, "different"),
    (lambda x: lamina.diag(lamina.ones(2, 2, 2)), RuntimeError, "1-D or 2-D"),
    (lambda x: lamina.outer(x, lamina.ones(3)), RuntimeError, "'input' must be 1-D"),
    (lambda x: lamina.dot(lamina.ones(3), lamina.ones(4)), RuntimeError, "inconsistent"),
    (lambda x: lamina.dot(lamina.ones(3), lamina.ones(3, dtype=lamina.float64)), RuntimeError, "same dtype"),
    (lambda x: lamina.mv(x, lamina.ones(5)), RuntimeError, "size mismatch"),
    (lambda x: lamina.amax(x, 5), IndexError, "amax"),
    (lambda x: lamina.amax(lamina.ones(0, 3), 0), IndexError, "non-zero size"),
    (lambda x: lamina.kthvalue(x, 9, 1), RuntimeError, "out of range"),
    (lambda x: lamina.median(x, 4), IndexError, "median"),
    (lambda x: lamina.quantile(x, 1.5), RuntimeError, "range"),
    (lambda x: lamina.quantile(x, 0.5, interpolation="cubic"), RuntimeError, "interpolation"),
    (lambda x: lamina.quantile(lamina.ones(3, dtype=lamina.int64), 0.5), RuntimeError, "float"),
    (lambda x: lamina.bincount(lamina.tensor([1, -1])), RuntimeError, "non-negative"),
    (lambda x: lamina.bincount(x), RuntimeError, "1-D"),
    (lambda x: lamina.narrow(x, 1, 2, 5), RuntimeError, "exceeds"),
    (lambda x: lamina.narrow(x, 1, 9, 1), IndexError, "start"),
    (lambda x: lamina.take(x, lamina.tensor([12])), IndexError, "out of range"),
    (lambda x: lamina.index_add(x, 0, lamina.tensor([0]), lamina.ones(2, 4)), RuntimeError, "source"),
    (lambda x: lamina.index_fill(x, 0, lamina.tensor([3]), 1.0), IndexError, "out of range"),
    (lambda x: lamina.movedim(x, (0, 1), 0), RuntimeError, "same number"),
    (lambda x: lamina.repeat_interleave(x, lamina.tensor([1, 2]), dim=0), RuntimeError, "same size"),
    (lambda x: lamina.cross(lamina.ones(2, 4), lamina.ones(2, 4)), RuntimeError, "size 3"),
    (lambda x: lamina.bitwise_and(x, x), TypeError, "integer"),
    (lambda x: lamina.searchsorted(lamina.ones(3), x, side="middle"), RuntimeError, "side"),
    (lambda x: lamina.meshgrid(x, indexing="yx"), ValueError, "indexing"),
    (lambda x: lamina.tensor_split(x, 0), RuntimeError, "larger than 0"),
    (lambda x: lamina.hsplit(x, 3), RuntimeError, "divisible"),
    (lambda x: x.unfold(1, 5, 1), RuntimeError, "maximum size"),
    (lambda x: x.unfold(1, 2, 0), RuntimeError, "step"),
    (lambda x: x.sum_to_size(3), RuntimeError, "expandable"),
    (lambda x: lamina.ones(2, requires_grad=True).unsqueeze_(0), RuntimeError, "require"),
    (lambda x: x.fill_diagonal_(1.0) if False else lamina.ones(2, 3, 4).fill_diagonal_(1.0), RuntimeError, "equal"),
    (lambda x: lamina.addcdiv(x, lamina.tensor([1]), lamina.tensor([2])), RuntimeError, "integer division"),
    (lambda x: lamina.trace(lamina.ones(3)), RuntimeError, "matrix"),
])
def test_errors(call, error, match):
    x = lamina.ones(3, 4)
    with pytest.raises(error, match=match):
        call(x)


def test_integer_results_carry_no_grad():
    x = lamina.tensor(_r(3, 4), requires_grad=True)
    for out in (lamina.nonzero(x > 0), lamina.isclose(x, x), lamina.count_nonzero(x), lamina.unique(x.detach()),
                lamina.argwhere(x), lamina.bucketize(x, lamina.tensor([0.0])), lamina.signbit(x),
                lamina.median(x, 1).indices, lamina.logical_not(x)):
        assert not out.requires_grad


@pytest.mark.parametrize("name,args", [("sinh_", ()), ("erf_", ()), ("reciprocal_", ()), ("tril_", (1,)),
                                       ("triu_", (-1,)), ("atan2_", (_r(3, 3, seed=2),)), ("xlogy_", (np.abs(_r(3, 3, seed=3)),)),
                                       ("cumprod_", (1,)), ("nan_to_num_", ()), ("logit_", ())])
def test_more_inplace_methods(name, args):
    x = np.clip(np.abs(_r(3, 3)), 0.05, 0.95)
    lx, tx = lamina.tensor(x), torch.from_numpy(x.copy())
    la = [lamina.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    ta = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
    assert getattr(lx, name)(*la) is lx
    getattr(tx, name)(*ta)
    _compare(lx, tx, F64, name)
