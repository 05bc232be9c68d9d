"""uint8, int8, int16 and int32 tensors, checked against PyTorch (the oracle) through one helper:
every op runs on lamina and on torch from the same NumPy inputs, and the two must agree on the
result's dtype and values, or both raise. Integer ops have no gradient, so only forward values are
compared; the float results that mixed ops promote to are checked for gradients at the end."""
import io
import warnings

import numpy as np
import pytest

import lamina

torch = pytest.importorskip("torch")

INTS = ["uint8", "int8", "int16", "int32", "int64"]
ALL = INTS + ["bool", "float32", "float64"]


def _sample(dtype, shape=(2, 3), seed=0):
    """Values that exercise wrapping: the full range of narrow types, no zeros (divisors)."""
    r = np.random.default_rng(seed)
    if dtype == "bool":
        return r.random(shape) < 0.5
    if dtype.startswith("float"):
        return (r.standard_normal(shape) * 50).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), -300), min(int(info.max), 300)
    a = r.integers(lo, hi + 1, shape).astype(dtype)
    a[a == 0] = 3
    return a


def _to_lamina(x):
    return lamina.tensor(x) if isinstance(x, np.ndarray) else x


def _to_torch(x):
    return torch.from_numpy(np.array(x)) if isinstance(x, np.ndarray) else x


def _plain(r, tensor_type):
    """A result as (dtype name, values) for tensors, or itself (tuples recursively)."""
    if isinstance(r, tuple):
        return tuple(_plain(v, tensor_type) for v in r)
    if isinstance(r, tensor_type):
        dt = str(r.dtype).replace("torch.", "")
        return dt, r.detach().numpy().tolist() if tensor_type is torch.Tensor else r.numpy().tolist()
    return r


def same(fn, *args, **kwargs):
    """fn(lamina inputs) and fn(torch inputs) agree: same dtype and values, or both raise. NumPy
    arrays in args become tensors of their dtype on both sides; other args pass as they are.
    `fn` receives the library module first (lamina or torch)."""
    outs = []
    for lib, conv, ttype in ((torch, _to_torch, torch.Tensor), (lamina, _to_lamina, lamina.Tensor)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                r = fn(lib, *[conv(a) for a in args], **kwargs)
                outs.append(("ok", _plain(r, ttype)))
            except Exception as e:   # noqa: BLE001  (which errors both raise is compared below)
                outs.append(("raised", type(e)))
    want, got = outs
    if want[0] == "raised":
        assert got[0] == "raised", f"torch raised {want[1].__name__}, lamina returned {got[1]}"
        return None
    assert got[0] == "ok", f"lamina raised {got[1].__name__}, torch returned {want[1]}"
    w, g = want[1], got[1]
    if isinstance(w, tuple) and len(w) == 2 and isinstance(w[0], str):
        assert g[0] == w[0], f"dtype: torch {w[0]}, lamina {g[0]}"
        np.testing.assert_allclose(np.asarray(g[1], dtype=float), np.asarray(w[1], dtype=float), rtol=1e-6)
    else:
        assert g == w
    return g


# ---------------------------------------------------------------- names and constructors
def test_dtype_names_and_aliases():
    assert (lamina.uint8, lamina.int8, lamina.int16, lamina.int32) == tuple(
        np.dtype(t) for t in (np.uint8, np.int8, np.int16, np.int32))
    assert lamina.int == lamina.int32 and lamina.short == lamina.int16 and lamina.long == lamina.int64
    assert lamina.bool == np.dtype(bool)
    lamina.set_num_threads(lamina.get_num_threads())   # the module's own int() still works


@pytest.mark.parametrize("dt", INTS + ["bool"])
def test_from_numpy_shares_and_keeps_dtype(dt):
    a = _sample(dt)
    t = lamina.from_numpy(a)
    assert t.dtype == a.dtype and np.shares_memory(t.numpy(), a)
    assert lamina.as_tensor(a).numpy() is a or np.shares_memory(lamina.as_tensor(a).numpy(), a)
    assert same(lambda lib, x: lib.tensor(x), a)[0] == dt


@pytest.mark.parametrize("dt", INTS)
def test_numpy_scalars_keep_their_dtype(dt):
    for data in (np.dtype(dt).type(3), [np.dtype(dt).type(3)], np.array(3, dt), [[1, 2]]):
        same(lambda lib: lib.tensor(data))


@pytest.mark.parametrize("bad", ["uint16", "uint32", "float16", "complex64"])
def test_unsupported_numpy_dtype_is_refused_by_name(bad):
    with pytest.raises(ValueError, match=rf"from_numpy: dtype {bad} is not supported \(expected float32, .*uint8"):
        lamina.from_numpy(np.zeros(3, bad))
    with pytest.raises(TypeError, match=rf"dtype: expected one of .*int32.*, got {bad}"):
        lamina.zeros(2, dtype=bad)
    with pytest.raises(TypeError, match=rf"to\(\): dtype must be one of .*, got {bad}"):
        lamina.zeros(2).to(np.dtype(bad))


@pytest.mark.parametrize("dt", INTS)
def test_factories(dt):
    tdt, ldt = getattr(torch, dt), getattr(lamina, dt)
    for make in ("zeros", "ones", "empty"):
        a, b = getattr(lamina, make)(2, 3, dtype=ldt), getattr(torch, make)(2, 3, dtype=tdt)
        assert a.dtype == ldt and a.shape == tuple(b.shape)
        if make != "empty":
            assert a.tolist() == b.tolist()
    for fill in (7, -1, 127, 128, 255, 256, -129, 1.9):
        try:
            want = torch.full((2,), fill, dtype=tdt).tolist()
        except RuntimeError:
            with pytest.raises(RuntimeError, match="without overflow"):
                lamina.full((2,), fill, dtype=ldt)
        else:
            got = lamina.full((2,), fill, dtype=ldt)
            assert got.dtype == ldt and got.tolist() == want, (fill, got.tolist(), want)
    for data in ([1, 2, 3], [-1, 5], [300], [-129], [1.7, -1.7], [[255, 0]]):
        try:
            want = torch.tensor(data, dtype=tdt).tolist()
        except RuntimeError:
            with pytest.raises(RuntimeError, match="without overflow"):
                lamina.tensor(data, dtype=ldt)
        else:
            got = lamina.tensor(data, dtype=ldt)
            assert got.dtype == ldt and got.tolist() == want, (data, got.tolist(), want)
    assert lamina.arange(5, dtype=ldt).tolist() == torch.arange(5, dtype=tdt).tolist()
    assert lamina.arange(2, 11, 3, dtype=ldt).tolist() == torch.arange(2, 11, 3, dtype=tdt).tolist()
    assert lamina.linspace(0, 10, 5, dtype=ldt).tolist() == torch.linspace(0, 10, 5, dtype=tdt).tolist()
    assert lamina.randint(0, 10, (5,), dtype=ldt).dtype == ldt
    assert lamina.ones_like(lamina.zeros(2, dtype=ldt)).dtype == ldt
    assert lamina.eye(2, dtype=ldt).tolist() == torch.eye(2, dtype=tdt).tolist()


@pytest.mark.parametrize("make", [lambda d: lamina.zeros(2, dtype=d, requires_grad=True),
                                  lambda d: lamina.tensor([1], dtype=d, requires_grad=True),
                                  lambda d: lamina.ones(2, dtype=d).requires_grad_()])
@pytest.mark.parametrize("dt", INTS + ["bool_"])
def test_requires_grad_on_integers_raises_as_torch(make, dt):
    with pytest.raises(RuntimeError, match="only floating-point tensors can require gradients"):
        make(getattr(lamina, dt))


# ---------------------------------------------------------------- conversions
@pytest.mark.parametrize("src", ALL)
@pytest.mark.parametrize("method", ["byte", "char", "short", "int", "long", "float", "double", "bool"])
def test_conversion_methods(src, method):
    a = _sample(src) if src != "float32" else np.array([[-1.7, 300.5, 2.2], [0.0, -129.9, 127.9]], np.float32)
    same(lambda lib, x: getattr(x, method)(), a)


@pytest.mark.parametrize("src", ALL)
@pytest.mark.parametrize("dst", ALL)
def test_to_and_type(src, dst):
    a = _sample(src, seed=1)
    same(lambda lib, x: x.to(getattr(lib, dst)), a)
    same(lambda lib, x: x.type(getattr(lib, dst)), a)


def test_type_names():
    for dt, name in [("uint8", "ByteTensor"), ("int8", "CharTensor"), ("int16", "ShortTensor"),
                     ("int32", "IntTensor"), ("int64", "LongTensor"), ("float32", "FloatTensor"),
                     ("float64", "DoubleTensor"), ("bool", "BoolTensor")]:
        t = lamina.tensor(_sample(dt))
        assert torch.tensor(_sample(dt)).type() == "torch." + name
        assert t.type() == "lamina." + name
        assert t.type("torch.IntTensor").dtype == lamina.int32 and t.type("lamina." + name).dtype == t.dtype
    with pytest.raises(TypeError, match="dtype"):
        lamina.zeros(1).type("torch.HalfTensor")


@pytest.mark.parametrize("dt", INTS)
def test_repr_item_tolist_numpy(dt):
    a = _sample(dt)
    t = lamina.tensor(a)
    r = repr(t)
    assert (f"dtype=lamina.{dt}" in r) == (dt != "int64")
    assert repr(torch.tensor(a)).replace("torch.", "lamina.").split("dtype=")[-1] == r.split("dtype=")[-1] \
        or dt == "int64"
    assert type(t[0, 0].item()) is int and t[0, 0].item() == int(a[0, 0])
    assert t.tolist() == torch.tensor(a).tolist() and type(t.tolist()[0][0]) is int
    assert t.numpy().dtype == a.dtype


# ---------------------------------------------------------------- arithmetic and promotion
_BINARY = {
    "add": lambda lib, a, b: a + b, "sub": lambda lib, a, b: a - b, "mul": lambda lib, a, b: a * b,
    "truediv": lambda lib, a, b: a / b, "floordiv": lambda lib, a, b: a // b, "mod": lambda lib, a, b: a % b,
    "eq": lambda lib, a, b: a == b, "lt": lambda lib, a, b: a < b, "ge": lambda lib, a, b: a >= b,
    "maximum": lambda lib, a, b: lib.maximum(a, b), "where": lambda lib, a, b: lib.where(a > b, a, b),
}


@pytest.mark.parametrize("op", sorted(_BINARY))
@pytest.mark.parametrize("da", INTS + ["bool", "float32"])
@pytest.mark.parametrize("db", INTS + ["bool", "float64"])
def test_binary_tensor_tensor(op, da, db):
    same(_BINARY[op], _sample(da, seed=2), _sample(db, seed=3))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "floordiv", "mod", "eq", "lt", "ge"])
@pytest.mark.parametrize("dt", INTS)
@pytest.mark.parametrize("scalar", [3, -1, 300, 2 ** 40, 2.5, True])
def test_binary_tensor_scalar_wraps_like_torch(op, dt, scalar):
    if op in ("floordiv", "mod") and isinstance(scalar, bool):
        scalar = 7
    same(lambda lib, a: _BINARY[op](lib, a, scalar), _sample(dt, seed=4))
    if op not in ("eq", "lt", "ge"):
        same(lambda lib, a: _BINARY[op](lib, scalar, a), _sample(dt, seed=4))


@pytest.mark.parametrize("da", INTS)
@pytest.mark.parametrize("db", ["int64", "float64", "uint8"])
def test_zero_dim_operand_does_not_widen(da, db):
    same(lambda lib, a, b: a + b, _sample(da), np.array(5, db))
    same(lambda lib, a, b: a * b, _sample(da), np.array(-3).astype(db))


def test_wrapping_overflow_and_division_by_zero():
    u = np.array([1, 200, 255], np.uint8)
    same(lambda lib, a: a * a, u)
    same(lambda lib, a: -a, u)
    same(lambda lib, a: a + a, u)
    same(lambda lib, a: a ** 2, u)
    same(lambda lib, a: a ** 0.5, u)
    same(lambda lib, a: lib.abs(a), np.array([-128, 5], np.int8))
    for op in ("floordiv", "mod"):
        out = same(lambda lib, a, b: _BINARY[op](lib, a, b), np.array([1, 2], np.int32), np.array([1, 0], np.int32))
        assert out is None   # both raise
    with pytest.raises(ZeroDivisionError):
        lamina.tensor([3]) // 0
    with pytest.raises(RuntimeError, match="bool"):
        lamina.tensor([True]) // lamina.tensor([True])
    same(lambda lib, a, b: a - b, np.array([True]), np.array([False]))


@pytest.mark.parametrize("dt", INTS)
def test_floor_divide_and_remainder_functions(dt):
    a, b = _sample(dt, seed=5), _sample(dt, seed=6)
    same(lambda lib, x, y: lib.floor_divide(x, y), a, b)
    same(lambda lib, x, y: lib.remainder(x, y), a, b)
    same(lambda lib, x, y: x.remainder(y), a, b)
    same(lambda lib, x: lib.remainder(x, -7), a)
    same(lambda lib, x: x.floor_divide(-7), a)


def test_float_floordiv_mod_match_torch():
    a, b = _sample("float32", seed=7), _sample("float32", seed=8)
    same(lambda lib, x, y: x // y, a, b)
    same(lambda lib, x, y: x % y, a, b)
    same(lambda lib, x: x % -2.5, a)


# ---------------------------------------------------------------- in-place
_INPLACE = {"add_": lambda a, b: a.add_(b), "sub_": lambda a, b: a.sub_(b), "mul_": lambda a, b: a.mul_(b),
            "div_": lambda a, b: a.div_(b), "iadd": lambda a, b: a.__iadd__(b), "imul": lambda a, b: a.__imul__(b)}


@pytest.mark.parametrize("op", sorted(_INPLACE))
@pytest.mark.parametrize("da", ["uint8", "int8", "int32"])
@pytest.mark.parametrize("other", ["int64", "uint8", "float32", "bool", 300, -1, 1.5])
def test_inplace_keeps_dtype_or_raises(op, da, other):
    def f(lib, a, *b):
        r = _INPLACE[op](a, b[0] if b else other)
        assert r is a
        return a
    if isinstance(other, str):
        same(f, _sample(da, seed=9), _sample(other, seed=10))
    else:
        same(f, _sample(da, seed=9))


def test_inplace_refusal_message():
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type uint8"):
        lamina.tensor([1], dtype=lamina.uint8).add_(1.5)


# ---------------------------------------------------------------- reductions, clamp, indexing
@pytest.mark.parametrize("dt", INTS + ["bool"])
def test_reductions(dt):
    a = _sample(dt, (3, 4), seed=11)
    same(lambda lib, x: x.sum(), a)
    same(lambda lib, x: x.sum(1), a)
    same(lambda lib, x: x.sum(0, keepdim=True), a)
    same(lambda lib, x: lib.sum(x, dtype=lib.uint8), a)
    same(lambda lib, x: x.sum(dtype=lib.int32), a)
    same(lambda lib, x: x.prod(1), a)
    same(lambda lib, x: x.cumsum(1), a)
    same(lambda lib, x: x.mean(), a)          # both raise for integers
    same(lambda lib, x: x.mean(dtype=lib.float64), a)
    same(lambda lib, x: x.argmax(), a)
    same(lambda lib, x: x.argmax(1), a)
    same(lambda lib, x: x.argmin(0), a)
    if dt != "bool":
        same(lambda lib, x: x.max(), a)
        same(lambda lib, x: x.min(), a)
        same(lambda lib, x: tuple(x.max(1)), a)
        same(lambda lib, x: tuple(x.min(0, keepdim=True)), a)


@pytest.mark.parametrize("dt", INTS)
@pytest.mark.parametrize("bounds", [(2, 100), (None, 7), (-1, None), (-128, None), (0.5, None), (None, 300),
                                    (-129, 200), (-5, 2.5)])
def test_clamp(dt, bounds):
    lo, hi = bounds
    same(lambda lib, x: x.clamp(lo, hi), _sample(dt, seed=12))
    same(lambda lib, x: lib.clamp(x, lo, hi), _sample(dt, seed=12))


@pytest.mark.parametrize("dt", INTS)
def test_clamp_tensor_bounds(dt):
    same(lambda lib, x, b: x.clamp(min=b), _sample(dt, seed=13), np.array(3, np.int64))
    same(lambda lib, x, b: lib.clamp(x, max=b), _sample(dt, seed=13), np.array(2.5, np.float32))


@pytest.mark.parametrize("idx_dt", ["uint8", "int8", "int16", "int32", "int64", "bool"])
def test_indexing_with_integer_tensors(idx_dt):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    idx = np.array([1, 0, 1], idx_dt)
    same(lambda lib, a, i: a[i], x, idx)
    same(lambda lib, a, i: a[:, i[:3] if len(i) else i], x, idx)

    def write(lib, a, i):
        a[i] = -1.0
        return a
    same(write, x, idx)


def test_uint8_index_is_a_deprecated_mask():
    x = lamina.arange(3)
    with pytest.warns(UserWarning, match="uint8 is now deprecated"):
        assert x[lamina.tensor([1, 0, 1], dtype=lamina.uint8)].tolist() == [0, 2]
    with pytest.raises(IndexError, match="long, int, byte or bool"):
        x[lamina.tensor([1], dtype=lamina.int8)]


@pytest.mark.parametrize("dt", INTS)
def test_cat_stack_where_and_shape_ops_keep_dtype(dt):
    a, b = _sample(dt, seed=14), _sample("uint8", seed=15)
    same(lambda lib, x, y: lib.cat([x, y]), a, b)
    same(lambda lib, x: lib.stack([x, x]), a)
    same(lambda lib, x: x.reshape(3, 2).t().flatten(), a)
    same(lambda lib, x: x[1:, ::2], a)
    same(lambda lib, x: lib.sign(x), a)


def test_float_results_of_integer_ops_have_gradients():
    """An int tensor mixed with a float one promotes to float; the gradient reaches the float
    operand (checked against float64 finite differences and torch)."""
    ints = np.array([[1, 200], [255, 3]], np.uint8)
    w0 = np.array([[0.5, -1.5], [2.0, 0.25]])
    w = lamina.tensor(w0, requires_grad=True)
    (w * lamina.tensor(ints) + (lamina.tensor(ints) % 7) * w * w).sum().backward()
    tw = torch.tensor(w0, requires_grad=True)
    (tw * torch.tensor(ints) + (torch.tensor(ints) % 7) * tw * tw).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    f = lambda v: float(np.sum(v * ints + (ints % 7) * v * v))   # noqa: E731
    eps = 1e-6
    fd = np.zeros_like(w0)
    for i in np.ndindex(w0.shape):
        d = np.zeros_like(w0)
        d[i] = eps
        fd[i] = (f(w0 + d) - f(w0 - d)) / (2 * eps)
    np.testing.assert_allclose(w.grad.numpy(), fd, rtol=1e-6)


def test_float_remainder_gradient_matches_torch():
    a0, b0 = np.array([5.5, -3.25, 7.0]), np.array([2.0, 1.5, -3.0])
    a, b = lamina.tensor(a0, requires_grad=True), lamina.tensor(b0, requires_grad=True)
    (a % b).sum().backward()
    ta, tb = torch.tensor(a0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    (ta % tb).sum().backward()
    np.testing.assert_allclose((a % b).detach().numpy(), (ta % tb).detach().numpy())
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())


# ---------------------------------------------------------------- serialization and DLPack
@pytest.mark.parametrize("dt", INTS + ["bool"])
def test_safetensors_round_trip(dt, tmp_path):
    a = _sample(dt)
    lamina.save({"x": lamina.tensor(a), "nested": [lamina.tensor(a[:1])]}, tmp_path / "ck.lamina")
    back = lamina.load(tmp_path / "ck.lamina")
    assert isinstance(back["x"], lamina.Tensor) and back["x"].dtype == a.dtype
    np.testing.assert_array_equal(back["x"].numpy(), a)
    assert back["nested"][0].dtype == a.dtype


@pytest.mark.parametrize("dt", INTS + ["bool"])
def test_safetensors_interop_with_torch(dt, tmp_path):
    st = pytest.importorskip("safetensors.torch")
    a = _sample(dt)
    st.save_file({"x": torch.from_numpy(a)}, str(tmp_path / "t.safetensors"))
    back = lamina.load(tmp_path / "t.safetensors")["x"]
    assert back.dtype == a.dtype and back.tolist() == a.tolist()
    lamina.save({"x": lamina.tensor(a)}, tmp_path / "l.safetensors")
    tt = st.load_file(str(tmp_path / "l.safetensors"))["x"]
    assert str(tt.dtype) == f"torch.{dt}" and tt.tolist() == a.tolist()


@pytest.mark.parametrize("dt", INTS + ["bool"])
def test_torch_checkpoint_keeps_dtype(dt, tmp_path):
    a = _sample(dt)
    buf = io.BytesIO()
    torch.save({"x": torch.from_numpy(a), "t": torch.from_numpy(a).t()}, buf)
    path = tmp_path / "ck.pt"
    path.write_bytes(buf.getvalue())
    back = lamina.load(path)
    assert back["x"].dtype == a.dtype and back["x"].tolist() == a.tolist()
    assert back["t"].dtype == a.dtype and back["t"].tolist() == a.T.tolist()


@pytest.mark.parametrize("dt", INTS + ["bool"])
def test_dlpack_both_ways(dt):
    a = _sample(dt)
    tt = torch.from_numpy(a.copy())
    lt = lamina.from_dlpack(tt)
    assert lt.dtype == a.dtype and lt.tolist() == a.tolist()
    tt[0, 0] = 1
    assert lt[0, 0].item() == 1          # shares memory
    back = torch.utils.dlpack.from_dlpack(lamina.tensor(a))
    assert back.dtype == getattr(torch, dt) and back.tolist() == a.tolist()
    with pytest.raises(TypeError, match="uint16 is not a lamina dtype"):
        lamina.from_dlpack(np.zeros(2, np.uint16))


def test_collate_keeps_integer_dtypes():
    from lamina.utils.data import default_collate
    xs, ys = default_collate([(np.zeros(2, np.uint8), np.int32(3)), (np.ones(2, np.uint8), np.int32(4))])
    assert xs.dtype == lamina.uint8 and ys.dtype == lamina.int32 and ys.tolist() == [3, 4]
    tx, ty = torch.utils.data.default_collate([(np.zeros(2, np.uint8), np.int32(3)),
                                               (np.ones(2, np.uint8), np.int32(4))])
    assert (str(tx.dtype), str(ty.dtype)) == ("torch.uint8", "torch.int32")


@pytest.mark.parametrize("dt", INTS + ["bool"])
@pytest.mark.parametrize("fn", ["exp", "sqrt", "sin", "cos", "log"])
def test_float_functions_of_integers_give_the_default_float(dt, fn):
    a = np.abs(_sample(dt, seed=16)) if dt != "bool" else _sample(dt, seed=16)
    if dt == "int8":
        a = np.abs(a.astype(np.int16)).clip(0, 127).astype(np.int8)
    with np.errstate(all="ignore"):
        same(lambda lib, x: getattr(x, fn)(), a)
        same(lambda lib, x: getattr(lib, fn)(x), a)


@pytest.mark.parametrize("dt", INTS)
@pytest.mark.parametrize("p", [0, 1, 2, 3, 7, 300, -1])
def test_integer_powers_wrap_like_torch(dt, p):
    a = _sample(dt, seed=17)
    same(lambda lib, x: x ** p, a)
    same(lambda lib, x: lib.pow(x, p), a)


def test_numpy_ufunc_bool_result_is_uint8_like_torch():
    a = np.array([1.0, -2.0, np.nan], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # torch's __array_wrap__ signature
        want = np.greater(torch.from_numpy(a), 0)
    got = np.greater(lamina.tensor(a), 0)
    assert isinstance(got, lamina.Tensor) and str(want.dtype) == "torch.uint8" and got.dtype == lamina.uint8
    assert got.tolist() == want.tolist() == [1, 0, 0]
    assert np.exp(lamina.tensor(a)).dtype == lamina.float32
