"""PyTorch names lamina lacked (parity31): top-level aliases (torch.conv2d, torch.batch_norm with
ATen's signatures, ...), elementwise math (lgamma, digamma, i0, sinc, ldexp, frexp, gcd, ...),
Tensor methods and in-place forms, RReLU / alpha dropout, 3-D adaptive max / LP pooling and
unpooling, the Lazy* layers and two losses: values and gradients against torch 2.13, float32
and float64; random ops by torch's own draws under manual_seed and by their statistics."""
import warnings

import numpy as np
import pytest

import lamina
from conftest import assert_same_results, helper_test_op, requires_torch, run_in_both

torch = pytest.importorskip("torch")
F, TF = lamina.nn.functional, torch.nn.functional
DTYPES = [np.float32, np.float64]


def _pair(a, grad=False):
    return lamina.tensor(a.copy(), requires_grad=grad), torch.tensor(a.copy(), requires_grad=grad)


# ------------------------------------------------------------------ elementwise math, forward + backward
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5)])
@pytest.mark.parametrize("name,low,high", [("lgamma", 0.1, 6.0), ("digamma", 0.1, 6.0), ("i0", -4.0, 4.0),
                                           ("sinc", -3.0, 3.0), ("lgamma", -3.9, -0.1), ("digamma", -3.9, -0.1)])
def test_unary_math_matches_torch(name, low, high, shape, dtype):
    # torch's trigamma (digamma's derivative) is a truncated series, ~1e-9 from the true value
    tol = dict(rtol=1e-8, atol=1e-8) if name == "digamma" and dtype == np.float64 else None
    helper_test_op([shape], lambda x: getattr(lamina, name)(x), lambda x: getattr(torch, name)(x),
                   dtype=dtype, low=low, high=high, tol=tol)
    helper_test_op([shape], lambda x: getattr(x, name)(), lambda x: getattr(x, name)(), dtype=dtype, low=low,
                   high=high, tol=tol)


def test_unary_math_special_points():
    x = np.array([0.0, -1.0, -2.0, 1.0, 2.0, 0.5, np.inf, np.nan])
    for name in ("lgamma", "digamma", "i0", "sinc"):
        got = getattr(lamina, name)(lamina.tensor(x)).numpy()
        want = getattr(torch, name)(torch.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)
    g = lamina.tensor([0.0], requires_grad=True)
    lamina.sinc(g).sum().backward()
    assert g.grad.tolist() == [0.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_ldexp_renorm_matrix_ops_match_torch(dtype):
    r = np.random.default_rng(2)
    pair = [r.uniform(-3, 3, (3, 4)).astype(dtype), r.integers(-3, 4, (3, 4)).astype(dtype)]
    helper_test_op([], lambda a, b: lamina.ldexp(a, b), lambda a, b: torch.ldexp(a, b), dtype=dtype, inputs=pair)
    # an integer exponent: values only (torch's gradient through pow(2., int tensor) is 0 at negative ones)
    helper_test_op([], lambda a: lamina.ldexp(a, lamina.tensor([1, -2, 0, 3])),
                   lambda a: torch.ldexp(a, torch.tensor([1, -2, 0, 3])), dtype=dtype, inputs=pair[:1], grad=False)
    for p, dim, maxnorm in ((2, 0, 1.0), (1, 1, 2.0), (3, 2, 0.5)):
        helper_test_op([(3, 4, 2)], lambda x: x.renorm(p, dim, maxnorm), lambda x: x.renorm(p, dim, maxnorm),
                       dtype=dtype)
    for n in (0, 1, 2, 3, 5, -2):
        helper_test_op([(2, 3, 3)], lambda x: x.matrix_power(n), lambda x: x.matrix_power(n), dtype=dtype,
                       tol=dict(rtol=1e-3, atol=1e-3) if dtype == np.float32 else None,
                       inputs=[np.eye(3, dtype=dtype) * 2 + np.random.default_rng(3).uniform(-.5, .5, (2, 3, 3))
                               .astype(dtype)])
    for scale in (0.1, 1.0, 4.0):
        helper_test_op([(2, 4, 4)], lambda x: lamina.matrix_exp(x), lambda x: torch.matrix_exp(x), dtype=dtype,
                       low=-scale, high=scale,
                       tol=dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10))


def test_top_level_functions_match_torch():
    def program(fw):
        out = {}
        x = fw.tensor(np.linspace(-3, 3, 12).reshape(3, 4), requires_grad=True)
        y = fw.tensor(np.linspace(1, 2, 12).reshape(3, 4))
        out["absolute"] = fw.absolute(x) + x.absolute()
        out["fix"] = fw.fix(x * 1.3) + x.fix()
        out["positive"] = fw.positive(x) + x.positive()
        out["concat"] = fw.concat([x, y], 1).sum(1) + fw.concatenate([x, y], axis=0).sum(0).sum()
        out["cmp"] = (fw.greater(x, y).double() + fw.greater_equal(x, 0).double() + fw.less(x, y).double()
                      + fw.less_equal(x, 0).double() + fw.not_equal(x, 0).double())
        out["angle"] = fw.angle(x) + x.angle()
        out["diagflat"] = fw.diagflat(x[0]) + fw.diagflat(x[:2, :2], 1).sum() + x[1].diagflat(-1)[1:, :-1]
        out["ravel"] = x.ravel()
        out["exp2"] = x.exp2()
        out["hardshrink"] = x.hardshrink(0.7) + fw.hardshrink(x, 1.5)
        out["prelu"] = x.prelu(fw.tensor([0.2])) + fw.prelu(x, fw.tensor([0.3]))
        out["celu"] = fw.celu(x, 1.5)
        out["selu"] = fw.selu(x)
        out["cov"] = x.cov() + x.corrcoef()
        out["masked_scatter"] = x.masked_scatter(y > 1.5, x * 3 + 1)
        out["scatter_reduce"] = x.scatter_reduce(0, fw.tensor([[0, 1, 2, 0], [2, 2, 0, 1]]), x[:2] * 2, "amax")
        out["split"] = x.split_with_sizes([1, 3], 1)[1]
        sum(v.sum() for v in out.values()).backward()
        out["dx"] = x.grad
        out["frexp"] = tuple(t.tolist() for t in fw.frexp(fw.tensor([0.0, 1.0, -3.5, 1e-3, 1e10])))
        out["frexp_dtype"] = str(fw.frexp(fw.tensor([1.5]))[1].dtype).split(".")[-1]
        out["gcd"] = fw.gcd(fw.tensor([12, -18, 0, 7]), fw.tensor([8, 12, 5, 0])).tolist()
        out["lcm"] = fw.lcm(fw.tensor([4, -6, 0, 7]), fw.tensor([6, 4, 5, 3])).tolist()
        out["nextafter"] = fw.nextafter(fw.tensor([1.0, 0.0]), fw.tensor([2.0, -1.0]))
        out["is"] = (fw.is_nonzero(fw.tensor([1.5])), fw.is_nonzero(fw.tensor(0)), fw.is_same_size(x, y),
                     fw.is_same_size(x, y[0]), fw.is_signed(x), fw.is_signed(fw.tensor([1], dtype=fw.uint8)),
                     x.is_signed(), x.is_complex(), x.is_cpu, x.is_sparse, x.is_quantized, x.is_meta,
                     x.name, str(x.layout), x.is_nonzero() if x.numel() == 1 else x[0, 0].is_nonzero(),
                     x.is_same_size(y))
        out["consts"] = (fw.e, fw.pi, fw.inf, fw.nan != fw.nan, fw.newaxis)
        out["ints"] = (fw.get_num_interop_threads() >= 1, fw.get_float32_matmul_precision())
        h, edges = fw.histogram(fw.tensor([1.0, 2.0, 1.0, 4.0, 2.5, 3.99]), 3)
        out["hist"], out["edges"] = h, edges
        out["hist_w"] = fw.histogram(fw.tensor([1.0, 2.0, 1.0, 4.0]), 4, range=(0.0, 4.0),
                                     weight=fw.tensor([1.0, 2.0, 3.0, 4.0]), density=True).hist
        out["hist_edges"] = fw.histogram(fw.tensor([0.5, 1.5, 2.5, 9.0]), fw.tensor([0.0, 1.0, 2.0, 3.0]))[0]
        out["hist_same"] = fw.histogram(fw.tensor([2.0, 2.0]), 2).bin_edges
        return out
    assert_same_results(*run_in_both(program), tol=1e-10)


def test_factories_and_buffers_share_memory_like_torch():
    a = np.arange(6, dtype=np.float32)
    t = lamina.asarray(a)
    a[0] = 9
    assert t[0].item() == 9 and t.dtype == lamina.float32
    assert lamina.asarray(a, copy=True)._data is not a
    assert lamina.asarray([1.5, 2]).dtype == torch.asarray([1.5, 2]).numpy().dtype
    assert lamina.asarray([1, 2], dtype=lamina.float64).dtype == lamina.float64
    x = lamina.ones(3)
    assert lamina.asarray(x) is x and lamina.asarray(x, requires_grad=True).requires_grad
    with pytest.raises(ValueError):
        lamina.asarray(x, dtype=lamina.float64, copy=False)
    buf = bytearray(np.arange(5, dtype=np.int32).tobytes())
    got = lamina.frombuffer(buf, dtype=lamina.int32, count=3, offset=4)
    want = torch.frombuffer(bytearray(buf), dtype=torch.int32, count=3, offset=4)
    assert got.tolist() == want.tolist() == [1, 2, 3]
    with pytest.warns(UserWarning):
        lamina.frombuffer(b"\x00" * 8, dtype=lamina.float32)
    with pytest.raises(ValueError):
        lamina.frombuffer(b"\x00" * 7, dtype=lamina.float32)
    e = lamina.empty_strided((2, 3), (1, 2))
    assert e.shape == (2, 3) and e.stride() == torch.empty_strided((2, 3), (1, 2)).stride()
    lamina.set_float32_matmul_precision("high")
    assert lamina.get_float32_matmul_precision() == "high"
    lamina.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError):
        lamina.set_float32_matmul_precision("low")


def test_errors_match_torch_types():
    for fw in (lamina, torch):
        with pytest.raises(RuntimeError):
            fw.is_nonzero(fw.tensor([1.0, 2.0]))
        with pytest.raises(RuntimeError):
            fw.is_nonzero(fw.tensor([]))
        with pytest.raises(RuntimeError):
            fw.gcd(fw.tensor([1.0]), fw.tensor([2.0]))
        with pytest.raises(RuntimeError):
            fw.frexp(fw.tensor([1, 2]))
        with pytest.raises(RuntimeError):
            fw.zeros(3).scatter_reduce(0, fw.tensor([0]), fw.ones(1), "bogus")
        with pytest.raises(RuntimeError):
            fw.zeros(3, dtype=fw.float32).float_power_(2)
        with pytest.raises(RuntimeError):
            fw.ones(2, requires_grad=True).resize_(4)
        with pytest.raises(RuntimeError):
            fw.zeros(2, 2).masked_scatter(fw.ones(2, 2, dtype=fw.bool), fw.ones(3))
        with pytest.raises(RuntimeError):
            F.rrelu(lamina.ones(2), 0.5, 0.1, True) if fw is lamina else TF.rrelu(torch.ones(2), 0.5, 0.1, True)
        with pytest.raises(ValueError):
            (F if fw is lamina else TF).alpha_dropout(fw.ones(2), 1.5, True)


# ------------------------------------------------------------------ scatter_reduce: every reduce, grads
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_matches_torch(reduce, include_self, dtype):
    index = np.array([[0, 1, 2, 0], [2, 1, 1, 0], [0, 0, 0, 3]])
    src = np.random.default_rng(5).uniform(-2, 2, (3, 5)).astype(dtype)
    src[1, 1] = 0.0                                 # a zero: prod's gradient takes the other path
    x = np.random.default_rng(6).uniform(-2, 2, (4, 4)).astype(dtype)
    x[2, 3] = src[2, 3] = 1.25                      # a tie with self: amax / amin split the gradient
    # (torch's backward needs src of index's shape; the forward takes a larger src, as lamina's)
    helper_test_op([], lambda a, s: a.scatter_reduce(0, lamina.tensor(index), s, reduce, include_self=include_self),
                   lambda a, s: a.scatter_reduce(0, torch.tensor(index), s, reduce, include_self=include_self),
                   dtype=dtype, inputs=[x, src[:, :4].copy()])
    helper_test_op([], lambda a, s: a.scatter_reduce(0, lamina.tensor(index), s, reduce, include_self=include_self),
                   lambda a, s: a.scatter_reduce(0, torch.tensor(index), s, reduce, include_self=include_self),
                   dtype=dtype, inputs=[x, src], grad=False)
    helper_test_op([], lambda a, s: lamina.scatter_reduce(a, 1, lamina.tensor(index[:, :3]), s, reduce,
                                                          include_self=include_self),
                   lambda a, s: torch.scatter_reduce(a, 1, torch.tensor(index[:, :3]), s, reduce,
                                                     include_self=include_self),
                   dtype=dtype, inputs=[x, src[:, :3].copy()])


# ------------------------------------------------------------------ in-place methods
INPLACE = [("clamp_", (-0.5, 0.5)), ("exp_", ()), ("round_", ()), ("trunc_", ()), ("sign_", ()), ("rsqrt_", ()),
           ("log1p_", ()), ("log2_", ()), ("log10_", ()), ("expm1_", ()), ("tan_", ()), ("cumsum_", (1,)),
           ("eq_", (0.5,)), ("ne_", (0.5,)), ("lt_", (0.5,)), ("le_", (0.5,)), ("gt_", (0.5,)), ("ge_", (0.5,)),
           ("subtract_", (0.25,)), ("multiply_", (3.0,)), ("divide_", (4.0,)), ("true_divide_", (4.0,)),
           ("floor_divide_", (0.3,)), ("remainder_", (0.3,)), ("negative_", ()), ("lgamma_", ()), ("fix_", ()),
           ("digamma_", ()), ("sinc_", ()), ("i0_", ()), ("exp2_", ()), ("absolute_", ()), ("greater_", (0.5,)),
           ("less_equal_", (0.5,)), ("not_equal_", (0.5,)), ("renorm_", (2, 0, 1.0)), ("ldexp_", None)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,args", INPLACE, ids=[n for n, _ in INPLACE])
def test_inplace_methods_match_torch(name, args, dtype):
    a = np.random.default_rng(7).uniform(0.1, 2.0, (3, 4)).astype(dtype)
    lx, tx = _pair(a)
    largs, targs = (args, args) if args is not None else ((lamina.tensor([[1.0, 2.0, -1.0, 0.0]], dtype=dtype),),
                                                          (torch.tensor([[1.0, 2.0, -1.0, 0.0]],
                                                                        dtype=getattr(torch, dtype.__name__)),))
    r1, r2 = getattr(lx, name)(*largs), getattr(tx, name)(*targs)
    assert r1 is lx and r1.dtype == a.dtype
    np.testing.assert_allclose(lx.numpy(), tx.numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)
    # through autograd: the in-place form's gradient is its out-of-place op's
    if name in ("exp_", "tan_", "lgamma_", "sinc_", "multiply_", "clamp_", "renorm_"):
        l0, t0 = _pair(a, grad=True)
        l1, t1 = l0 * 1, t0 * 1
        getattr(l1, name)(*largs).sum().backward()
        getattr(t1, name)(*targs).sum().backward()
        np.testing.assert_allclose(l0.grad.numpy(), t0.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_float_power_and_resize_and_multinomial_methods():
    a, b = lamina.tensor([1.0, 2.0], dtype=lamina.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert a.float_power_(3).tolist() == b.float_power_(3).tolist() == [1.0, 8.0]
    x = lamina.arange(6.0)
    assert x.resize_(2, 3).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert x.resize_(4).tolist() == [0, 1, 2, 3]
    assert x.resize_(2, 3).shape == (2, 3) and x.view(-1)[:4].tolist() == [0, 1, 2, 3]
    assert lamina.zeros(2).resize_as_(lamina.ones(3, 1)).shape == (3, 1)
    lamina.manual_seed(1)
    torch.manual_seed(1)
    p = np.array([0.1, 0.5, 0.2, 0.2])
    assert lamina.tensor(p).multinomial(3).tolist() == torch.tensor(p).multinomial(3).tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_fills_use_torch_draws(dtype):
    tdt = getattr(torch, dtype.__name__)
    for name, args in (("log_normal_", (0.5, 0.75)), ("geometric_", (0.3,)), ("cauchy_", (1.0, 2.0))):
        lamina.manual_seed(11)
        torch.manual_seed(11)
        got = getattr(lamina.zeros(5, 7, dtype=dtype), name)(*args).numpy()
        want = getattr(torch.zeros(5, 7, dtype=tdt), name)(*args).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-13, err_msg=name)
    lamina.manual_seed(0)
    x = lamina.zeros(20000, dtype=dtype).log_normal_(0.0, 0.5).numpy()
    assert abs(np.log(x).mean()) < 0.02 and abs(np.log(x).std() - 0.5) < 0.02
    g = lamina.zeros(20000, dtype=dtype).geometric_(0.25).numpy()
    assert g.min() >= 1 and abs(g.mean() - 4.0) < 0.15


# ------------------------------------------------------------------ torch.* forms of nn functional ops
@pytest.mark.parametrize("dtype", DTYPES)
def test_top_level_nn_aliases_match_torch(dtype):
    r = np.random.default_rng(8)
    x4 = r.standard_normal((2, 4, 6, 6)).astype(dtype)
    x3 = r.standard_normal((2, 4, 9)).astype(dtype)
    w2 = r.standard_normal((3, 4, 3, 3)).astype(dtype)
    w1 = r.standard_normal((3, 4, 3)).astype(dtype)
    helper_test_op([], lambda x, w: lamina.conv2d(x, w, None, 1, 1), lambda x, w: torch.conv2d(x, w, None, 1, 1),
                   dtype=dtype, inputs=[x4, w2])
    helper_test_op([], lambda x, w: lamina.conv1d(x, w, stride=2), lambda x, w: torch.conv1d(x, w, stride=2),
                   dtype=dtype, inputs=[x3, w1])
    helper_test_op([], lambda x, w: lamina.conv_transpose1d(x, w, stride=2),
                   lambda x, w: torch.conv_transpose1d(x, w, stride=2), dtype=dtype,
                   inputs=[x3, r.standard_normal((4, 2, 3)).astype(dtype)])
    helper_test_op([], lambda x, w: lamina.conv_transpose2d(x, w), lambda x, w: torch.conv_transpose2d(x, w),
                   dtype=dtype, inputs=[x4, r.standard_normal((4, 2, 3, 3)).astype(dtype)])
    helper_test_op([], lambda x, w: lamina.conv3d(x, w), lambda x, w: torch.conv3d(x, w), dtype=dtype,
                   inputs=[r.standard_normal((1, 2, 4, 5, 5)).astype(dtype), r.standard_normal((3, 2, 2, 2, 2)).astype(dtype)])
    g, b = r.uniform(0.5, 1.5, 4).astype(dtype), r.standard_normal(4).astype(dtype)
    helper_test_op([], lambda x, g, b: lamina.batch_norm(x, g, b, None, None, True, 0.1, 1e-5, False),
                   lambda x, g, b: torch.batch_norm(x, g, b, None, None, True, 0.1, 1e-5, False),
                   dtype=dtype, inputs=[x4, g, b])
    helper_test_op([], lambda x, g, b: lamina.instance_norm(x, g, b, None, None, True, 0.1, 1e-5, False),
                   lambda x, g, b: torch.instance_norm(x, g, b, None, None, True, 0.1, 1e-5, False),
                   dtype=dtype, inputs=[x4, g, b])
    helper_test_op([], lambda x, g, b: lamina.group_norm(x, 2, g, b), lambda x, g, b: torch.group_norm(x, 2, g, b),
                   dtype=dtype, inputs=[x4, g, b])
    helper_test_op([], lambda x: lamina.layer_norm(x, (6, 6)), lambda x: torch.layer_norm(x, (6, 6)),
                   dtype=dtype, inputs=[x4])
    rm, rv = lamina.zeros(4, dtype=dtype), lamina.ones(4, dtype=dtype)
    trm, trv = torch.zeros(4, dtype=getattr(torch, dtype.__name__)), torch.ones(4, dtype=getattr(torch, dtype.__name__))
    lamina.batch_norm(lamina.tensor(x4), None, None, rm, rv, True, 0.3, 1e-5, True)
    torch.batch_norm(torch.tensor(x4), None, None, trm, trv, True, 0.3, 1e-5, True)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-5, atol=1e-6)
    emb = r.standard_normal((5, 3)).astype(dtype)
    idx = np.array([[0, 4, 2], [2, 2, 1]])
    helper_test_op([], lambda w: lamina.embedding(w, lamina.tensor(idx)),
                   lambda w: torch.embedding(w, torch.tensor(idx)), dtype=dtype, inputs=[emb])
    helper_test_op([], lambda w: lamina.embedding(w, lamina.tensor(idx), 2),
                   lambda w: torch.embedding(w, torch.tensor(idx), 2), dtype=dtype, inputs=[emb])
    a, c = r.standard_normal((4, 3)).astype(dtype), r.standard_normal((4, 2)).astype(dtype)
    helper_test_op([], lambda a, c, w: lamina.bilinear(a, c, w), lambda a, c, w: torch.bilinear(a, c, w),
                   dtype=dtype, inputs=[a, c, r.standard_normal((5, 3, 2)).astype(dtype)])
    helper_test_op([], lambda a, c: lamina.cosine_similarity(a, c[:, :1].expand(4, 3)),
                   lambda a, c: torch.cosine_similarity(a, c[:, :1].expand(4, 3)), dtype=dtype, inputs=[a, c])
    helper_test_op([], lambda x: lamina.avg_pool1d(x, 3, 2, 1), lambda x: torch.avg_pool1d(x, 3, 2, 1),
                   dtype=dtype, inputs=[x3])
    helper_test_op([], lambda x: lamina.adaptive_avg_pool1d(x, 4), lambda x: torch.adaptive_avg_pool1d(x, 4),
                   dtype=dtype, inputs=[x3])
    helper_test_op([], lambda x: lamina.adaptive_max_pool1d(x, 4)[0], lambda x: torch.adaptive_max_pool1d(x, 4)[0],
                   dtype=dtype, inputs=[x3])
    assert lamina.adaptive_max_pool1d(lamina.tensor(x3), 4)[1].tolist() == \
        torch.adaptive_max_pool1d(torch.tensor(x3), 4)[1].tolist()
    helper_test_op([], lambda x: lamina.max_pool2d(x, 2), lambda x: torch.max_pool2d(x, 2), dtype=dtype, inputs=[x4])
    helper_test_op([], lambda x: lamina.channel_shuffle(x, 2), lambda x: torch.channel_shuffle(x, 2),
                   dtype=dtype, inputs=[x4])
    helper_test_op([], lambda x: lamina.celu(x, 0.7), lambda x: torch.celu(x, 0.7), dtype=dtype, inputs=[x3])
    helper_test_op([], lambda x: lamina.hardshrink(x, 0.3), lambda x: torch.hardshrink(x, 0.3), dtype=dtype,
                   inputs=[x3])
    helper_test_op([], lambda x: lamina.dropout(x, 0.5, False), lambda x: torch.dropout(x, 0.5, False),
                   dtype=dtype, inputs=[x3])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_top_level_losses_take_atens_reduction_enum(reduction, dtype):
    r = np.random.default_rng(9)
    x, y = r.standard_normal((4, 5)).astype(dtype), r.standard_normal((4, 5)).astype(dtype)
    sign = np.where(r.random((4, 5)) > 0.5, 1.0, -1.0).astype(dtype)
    helper_test_op([], lambda a: lamina.kl_div(a, lamina.tensor(np.abs(y)), reduction),
                   lambda a: torch.kl_div(a, torch.tensor(np.abs(y)), reduction), dtype=dtype, inputs=[x])
    helper_test_op([], lambda a: lamina.kl_div(a, lamina.tensor(y), reduction, log_target=True),
                   lambda a: torch.kl_div(a, torch.tensor(y), reduction, log_target=True), dtype=dtype, inputs=[x])
    helper_test_op([], lambda a: lamina.hinge_embedding_loss(a, lamina.tensor(sign), 0.5, reduction),
                   lambda a: torch.hinge_embedding_loss(a, torch.tensor(sign), 0.5, reduction), dtype=dtype, inputs=[x])
    helper_test_op([], lambda a, b: lamina.cosine_embedding_loss(a, b, lamina.tensor(sign[:, 0]), 0.1, reduction),
                   lambda a, b: torch.cosine_embedding_loss(a, b, torch.tensor(sign[:, 0]), 0.1, reduction),
                   dtype=dtype, inputs=[x, y])
    t = (r.random((4, 5)) > 0.5).astype(dtype)
    pw = r.uniform(0.5, 2, 5).astype(dtype)
    helper_test_op([], lambda a: lamina.binary_cross_entropy_with_logits(a, lamina.tensor(t), None, lamina.tensor(pw),
                                                                         reduction),
                   lambda a: torch.binary_cross_entropy_with_logits(a, torch.tensor(t), None, torch.tensor(pw),
                                                                    reduction), dtype=dtype, inputs=[x])
    with pytest.raises(RuntimeError):
        lamina.kl_div(lamina.tensor(x), lamina.tensor(y), 3)
    a, b = lamina.tensor([1.0, 7, 2]), torch.tensor([1.0, 7, 2])
    for red in ("max", "min"):      # PyTorch's undocumented aliases of amax / amin
        assert a.scatter_reduce(0, lamina.tensor([0, 1]), lamina.tensor([5.0, 3]), red).tolist() == \
            b.scatter_reduce(0, torch.tensor([0, 1]), torch.tensor([5.0, 3]), red).tolist()


# ------------------------------------------------------------------ RReLU and alpha dropout
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(40,), (6, 50), (2, 3, 4, 5)])
def test_rrelu_train_draws_torchs_slopes_within_bounds(shape, dtype):
    a = np.random.default_rng(10).standard_normal(shape).astype(dtype)
    lower, upper = 0.1, 0.3
    lamina.manual_seed(4)
    torch.manual_seed(4)
    lx, tx = _pair(a, grad=True)
    ly, ty = F.rrelu(lx, lower, upper, training=True), TF.rrelu(tx, lower, upper, training=True)
    np.testing.assert_array_equal(ly.detach().numpy(), ty.detach().numpy())
    ly.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(lx.grad.numpy(), tx.grad.numpy())
    slopes = lx.grad.numpy()[a <= 0]
    assert slopes.min() >= np.float32(lower) - 1e-7 and slopes.max() <= np.float32(upper) + 1e-7
    assert len(np.unique(slopes)) > len(slopes) // 2          # one draw per element
    np.testing.assert_array_equal(lx.grad.numpy()[a > 0], 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rrelu_eval_and_module_match_torch(dtype):
    a = np.random.default_rng(12).standard_normal((4, 6)).astype(dtype)
    helper_test_op([], lambda x: F.rrelu(x, 0.2, 0.4), lambda x: TF.rrelu(x, 0.2, 0.4), dtype=dtype, inputs=[a])
    m, tm = lamina.nn.RReLU(0.2, 0.4).eval(), torch.nn.RReLU(0.2, 0.4).eval()
    np.testing.assert_allclose(m(lamina.tensor(a)).numpy(), tm(torch.tensor(a)).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(m(lamina.tensor(a)).numpy(), m(lamina.tensor(a)).numpy())
    m.train()
    tm.train()
    lamina.manual_seed(2)
    torch.manual_seed(2)
    np.testing.assert_array_equal(m(lamina.tensor(a)).numpy(), tm(torch.tensor(a)).numpy())
    x = lamina.tensor(a.copy())
    lamina.manual_seed(2)
    torch.manual_seed(2)
    tx = torch.tensor(a.copy())
    F.rrelu(x, 0.2, 0.4, True, inplace=True)
    lamina.rrelu_(lamina.tensor(a.copy()))
    TF.rrelu(tx, 0.2, 0.4, True, inplace=True)
    np.testing.assert_array_equal(x.numpy(), tx.numpy())
    assert repr(m) == "RReLU(lower=0.2, upper=0.4)"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("feature", [False, True])
@pytest.mark.parametrize("p", [0.1, 0.5, 1.0])
def test_alpha_dropout_matches_torch_draws_and_gradients(p, feature, dtype):
    a = np.random.default_rng(13).standard_normal((4, 3, 5)).astype(dtype)
    fn, tfn = (F.feature_alpha_dropout, TF.feature_alpha_dropout) if feature else (F.alpha_dropout, TF.alpha_dropout)
    lamina.manual_seed(6)
    torch.manual_seed(6)
    helper_test_op([], lambda x: fn(x, p, True), lambda x: tfn(x, p, True), dtype=dtype, inputs=[a])
    helper_test_op([], lambda x: fn(x, p, False), lambda x: tfn(x, p, False), dtype=dtype, inputs=[a])
    cls = lamina.nn.FeatureAlphaDropout if feature else lamina.nn.AlphaDropout
    tcls = torch.nn.FeatureAlphaDropout if feature else torch.nn.AlphaDropout
    lamina.manual_seed(7)
    torch.manual_seed(7)
    np.testing.assert_allclose(cls(p)(lamina.tensor(a)).numpy(), tcls(p)(torch.tensor(a)).numpy(), rtol=1e-6)
    assert cls(p).eval()(lamina.tensor(a)).numpy().tolist() == a.tolist()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("feature", [False, True])
def test_alpha_dropout_keeps_selu_normal_statistics(feature, dtype):
    lamina.manual_seed(0)
    x = lamina.nn.functional.selu(lamina.randn(400, 50, 10, dtype=dtype) * 1.0)
    fn = F.feature_alpha_dropout if feature else F.alpha_dropout
    y = fn(x, 0.3, True).numpy().astype(np.float64)
    xm, xs = x.numpy().mean(), x.numpy().std()
    assert abs(xm) < 0.05 and abs(xs - 1) < 0.05
    assert abs(y.mean() - xm) < 0.05 and abs(y.std() - xs) < 0.05
    dropped = np.isclose(y, -1.7580993408473766 * (1 / np.sqrt((1.7580993408473766 ** 2 * 0.3 + 1) * 0.7))
                         + 1.7580993408473766 * (1 / np.sqrt((1.7580993408473766 ** 2 * 0.3 + 1) * 0.7)) * 0.3,
                         rtol=1e-5)
    assert abs(dropped.mean() - 0.3) < 0.02
    if feature:   # whole channels go together
        d = dropped.reshape(400, 50, 10)
        assert (d.all(-1) == d.any(-1)).all()


def test_top_level_dropout_family():
    a = np.random.default_rng(14).standard_normal((3, 4, 5))
    for name in ("dropout", "alpha_dropout", "feature_alpha_dropout", "feature_dropout"):
        lamina.manual_seed(3)
        torch.manual_seed(3)
        got = getattr(lamina, name)(lamina.tensor(a), 0.4, True).numpy()
        want = getattr(torch, name)(torch.tensor(a), 0.4, True).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name)
        x, tx = lamina.tensor(a.copy()), torch.tensor(a.copy())
        lamina.manual_seed(3)
        torch.manual_seed(3)
        getattr(lamina, name + "_")(x, 0.4, True)
        getattr(torch, name + "_")(tx, 0.4, True)
        np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-12, err_msg=name + "_")


# ------------------------------------------------------------------ pooling with indices, 3-D, unpool
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), dilation=(2, 1, 1), ceil_mode=True)])
def test_max_pool3d_with_indices_matches_torch(kw, dtype):
    a = np.random.default_rng(15).standard_normal((2, 3, 5, 6, 7)).astype(dtype)
    helper_test_op([], lambda x: F.max_pool3d_with_indices(x, **kw)[0],
                   lambda x: TF.max_pool3d_with_indices(x, **kw)[0], dtype=dtype, inputs=[a])
    assert (F.max_pool3d(lamina.tensor(a), return_indices=True, **kw)[1].numpy() ==
            TF.max_pool3d(torch.tensor(a), return_indices=True, **kw)[1].numpy()).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_with_indices_functions_match_torch(dtype):
    r = np.random.default_rng(16)
    a1, a2 = r.standard_normal((2, 3, 11)).astype(dtype), r.standard_normal((2, 3, 7, 9)).astype(dtype)
    for name, x, args in (("max_pool1d_with_indices", a1, (3, 2)), ("max_pool2d_with_indices", a2, (3, 2, 1)),
                          ("adaptive_max_pool1d_with_indices", a1, (4,)), ("adaptive_max_pool2d_with_indices", a2, ((3, 4),))):
        helper_test_op([], lambda x: getattr(F, name)(x, *args)[0], lambda x: getattr(TF, name)(x, *args)[0],
                       dtype=dtype, inputs=[x])
        assert getattr(F, name)(lamina.tensor(x), *args)[1].tolist() == getattr(TF, name)(torch.tensor(x), *args)[1].tolist()
    v, i = lamina.max_pool1d_with_indices(lamina.tensor(a1), 3)
    tv, ti = torch.max_pool1d_with_indices(torch.tensor(a1), 3)
    assert i.tolist() == ti.tolist()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [2, (3, 4, 5), (None, 2, 3), (4, 6, 7)])
def test_adaptive_max_pool3d_matches_torch(size, dtype):
    a = np.random.default_rng(17).standard_normal((2, 3, 5, 6, 7)).astype(dtype)
    helper_test_op([], lambda x: F.adaptive_max_pool3d(x, size), lambda x: TF.adaptive_max_pool3d(x, size),
                   dtype=dtype, inputs=[a])
    helper_test_op([], lambda x: lamina.nn.AdaptiveMaxPool3d(size)(x), lambda x: torch.nn.AdaptiveMaxPool3d(size)(x),
                   dtype=dtype, inputs=[a[0]])
    got = F.adaptive_max_pool3d_with_indices(lamina.tensor(a), size)[1]
    assert got.tolist() == TF.adaptive_max_pool3d_with_indices(torch.tensor(a), size)[1].tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_lp_pool3d_and_max_unpool3d_match_torch(dtype):
    a = np.random.default_rng(18).uniform(0.1, 2, (2, 3, 4, 6, 8)).astype(dtype)
    for p, k, s in ((2, 2, None), (3, (2, 3, 2), (1, 2, 2)), (1.5, 3, 1)):
        helper_test_op([], lambda x: F.lp_pool3d(x, p, k, s), lambda x: TF.lp_pool3d(x, p, k, s), dtype=dtype,
                       inputs=[a])
        helper_test_op([], lambda x: lamina.nn.LPPool3d(p, k, s)(x), lambda x: torch.nn.LPPool3d(p, k, s)(x),
                       dtype=dtype, inputs=[a])
    b = np.random.default_rng(19).standard_normal((2, 3, 4, 6, 8)).astype(dtype)
    lv, li = F.max_pool3d(lamina.tensor(b), 2, return_indices=True)
    tv, ti = TF.max_pool3d(torch.tensor(b), 2, return_indices=True)
    helper_test_op([], lambda v: lamina.nn.MaxUnpool3d(2)(v, li), lambda v: torch.nn.MaxUnpool3d(2)(v, ti),
                   dtype=dtype, inputs=[lv.numpy()])
    helper_test_op([], lambda v: F.max_unpool3d(v, li, 2, output_size=(5, 7, 9)),
                   lambda v: TF.max_unpool3d(v, ti, 2, output_size=(5, 7, 9)), dtype=dtype, inputs=[lv.numpy()])


# ------------------------------------------------------------------ Lazy layers
LAZY = [("LazyConv1d", (4, 3), (2, 3, 9)), ("LazyConv1d", (4, 3), (3, 9)), ("LazyConv2d", (4, 3), (2, 3, 6, 7)),
        ("LazyConv2d", (4, 3), (3, 6, 7)), ("LazyConv3d", (2, 2), (2, 3, 4, 5, 6)),
        ("LazyConvTranspose1d", (3, 2), (2, 3, 9)), ("LazyConvTranspose2d", (3, 2), (2, 3, 6, 7)),
        ("LazyBatchNorm1d", (), (4, 3)), ("LazyBatchNorm1d", (), (4, 3, 5)), ("LazyBatchNorm2d", (), (2, 3, 6, 7)),
        ("LazyBatchNorm3d", (), (2, 3, 4, 5, 6)), ("LazyInstanceNorm1d", (), (2, 3, 9)),
        ("LazyInstanceNorm2d", (), (2, 3, 6, 7)), ("LazyInstanceNorm3d", (), (2, 3, 4, 5, 6))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,args,shape", LAZY, ids=[f"{n}-{len(s)}d" for n, _, s in LAZY])
def test_lazy_layers_become_their_layer_with_torchs_init(name, args, shape, dtype):
    lamina.manual_seed(0)
    torch.manual_seed(0)
    tdt = getattr(torch, dtype.__name__)
    m, tm = getattr(lamina.nn, name)(*args, dtype=dtype), getattr(torch.nn, name)(*args, dtype=tdt)
    a = np.random.default_rng(20).standard_normal(shape).astype(dtype)
    lx, tx = _pair(a, grad=True)
    ly, ty = m(lx), tm(tx)
    assert type(m).__name__ == name.replace("Lazy", "") == type(tm).__name__
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(ly.detach().numpy(), ty.detach().numpy(), **tol)
    ly.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), **tol)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}


def test_uninitialized_parameter_materializes():
    from lamina.nn.parameter import Parameter, UninitializedParameter, is_lazy
    p = UninitializedParameter()
    assert is_lazy(p)
    with pytest.raises(RuntimeError):
        p.shape
    p.materialize((2, 3))
    assert type(p) is Parameter and tuple(p.shape) == (2, 3) and p.requires_grad and not is_lazy(p)
    assert lamina.nn.parameter.Parameter is lamina.nn.Parameter


# ------------------------------------------------------------------ losses
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_margin_loss_matches_torch(reduction, dtype):
    r = np.random.default_rng(21)
    x = r.standard_normal((4, 5)).astype(dtype)
    y = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [-1, 2, 3, 1, 0], [4, 4, -1, 0, 0]])
    helper_test_op([], lambda a: F.multilabel_margin_loss(a, lamina.tensor(y), reduction=reduction),
                   lambda a: TF.multilabel_margin_loss(a, torch.tensor(y), reduction=reduction), dtype=dtype, inputs=[x])
    helper_test_op([], lambda a: lamina.nn.MultiLabelMarginLoss(reduction=reduction)(a, lamina.tensor(y[0])),
                   lambda a: torch.nn.MultiLabelMarginLoss(reduction=reduction)(a, torch.tensor(y[0])),
                   dtype=dtype, inputs=[x[0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_triplet_margin_with_distance_loss_module_matches_torch(dtype):
    r = np.random.default_rng(22)
    a, p, n = (r.standard_normal((5, 4)).astype(dtype) for _ in range(3))
    for kw in ({}, {"margin": 0.5, "swap": True}, {"reduction": "sum"}):
        helper_test_op([], lambda a, p, n: lamina.nn.TripletMarginWithDistanceLoss(**kw)(a, p, n),
                       lambda a, p, n: torch.nn.TripletMarginWithDistanceLoss(**kw)(a, p, n),
                       dtype=dtype, inputs=[a, p, n])
    helper_test_op([], lambda a, p, n: lamina.nn.TripletMarginWithDistanceLoss(
                       distance_function=lambda u, v: 1 - F.cosine_similarity(u, v))(a, p, n),
                   lambda a, p, n: torch.nn.TripletMarginWithDistanceLoss(
                       distance_function=lambda u, v: 1 - TF.cosine_similarity(u, v))(a, p, n),
                   dtype=dtype, inputs=[a, p, n])
    with pytest.raises(ValueError):
        lamina.nn.TripletMarginWithDistanceLoss(margin=0)


def test_names_the_brief_listed_now_exist():
    import torch.nn as tn
    for mod, tmod, names in (
            (lamina, torch, ["conv1d", "conv_transpose2d", "batch_norm", "instance_norm", "embedding", "kl_div",
                             "histogram", "frombuffer", "empty_strided", "i0", "angle", "diagflat", "e", "inf"]),
            (lamina.nn, tn, ["RReLU", "AlphaDropout", "FeatureAlphaDropout", "AdaptiveMaxPool3d", "LPPool3d",
                             "MaxUnpool3d", "LazyConv2d", "LazyBatchNorm2d", "LazyInstanceNorm3d",
                             "TripletMarginWithDistanceLoss", "MultiLabelMarginLoss", "parameter"]),
            (F, TF, ["rrelu", "rrelu_", "alpha_dropout", "feature_alpha_dropout", "adaptive_max_pool3d",
                     "max_pool3d_with_indices", "adaptive_max_pool2d_with_indices", "lp_pool3d", "max_unpool3d",
                     "multilabel_margin_loss"])):
        for n in names:
            assert hasattr(mod, n) and hasattr(tmod, n), n
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lamina.ones(2).layout is lamina.strided
