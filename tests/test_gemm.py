"""lamina._C.gemm / gemm_batched vs numpy: transposes, strided views, alpha/beta, epilogues,
threads, every ISA path the CPU has, and the error messages for bad input."""
import contextlib
import itertools
import math

import numpy as np
import pytest

from lamina import _C

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-4, np.float64: 1e-11}


@contextlib.contextmanager
def gemm_setup(threads=None, **override):
    """The body runs with this thread count and these _gemm_set_path_override settings; the
    previous thread count and the automatic paths come back afterwards, even on failure."""
    n0 = _C.get_num_threads()
    try:
        if threads is not None:
            _C.set_num_threads(threads)
        _C._gemm_set_path_override(**override)
        yield
    finally:
        _C._gemm_set_path_override()
        _C.set_num_threads(n0)


def rand(rng, shape, dtype):
    return rng.uniform(-1, 1, shape).astype(dtype)


def ref(a, b, ta, tb, alpha=1.0, beta=0.0, c0=None, bias=None, axis="col", act="identity"):
    x = alpha * ((a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64))
    if beta != 0:
        x = x + beta * c0
    if bias is not None:
        x = x + (bias[None, :] if axis == "col" else bias[:, None])
    if act == "relu":
        x = np.maximum(x, 0)
    elif act == "sigmoid":
        x = 1 / (1 + np.exp(-x))
    elif act == "tanh":
        x = np.tanh(x)
    return x


def check(c, r, dtype, K):
    np.testing.assert_allclose(c, r, rtol=TOL[dtype], atol=TOL[dtype] * max(1, K) ** 0.5)


ISA_NAMES = {"portable": "portable", "avx2+fma": "avx2", "avx512": "avx512"}


@pytest.fixture(params=["avx512", "avx2", "portable"])
def isa(request):
    if request.param == "avx2" and not _C.cpu_supports_avx2_fma():
        pytest.skip("no AVX2 on this CPU")
    if request.param == "avx512" and not _C.cpu_supports_avx512():
        pytest.skip("no AVX-512 on this CPU")
    before = ISA_NAMES[_C.isa()]
    assert _C.set_isa(request.param)
    yield request.param
    _C.set_isa(before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (7, 5, 17), (64, 784, 30), (97, 257, 131), (300, 25, 6),
                                   (6400 // 16, 150, 16), (0, 3, 4), (3, 0, 4)])
def test_gemm_matches_numpy(isa, dtype, ta, tb, M, K, N):
    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    a = rand(rng, (K, M) if ta else (M, K), dtype)
    b = rand(rng, (N, K) if tb else (K, N), dtype)
    c = np.full((M, N), np.nan, dtype)  # beta=0 must ignore old contents, NaN included
    _C.gemm(a, b, c, trans_a=ta, trans_b=tb)
    check(c, ref(a, b, ta, tb), dtype, K)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (-1.0, 0.5), (0.5, -1.0), (0.0, 0.5), (0.5, 1.0),
                                        (2.0, 0.0), (1.0, 0.0), (1.0, -1.0)])
def test_alpha_beta(dtype, alpha, beta):
    # Full tiles take a shortcut for alpha == 1 or beta in {0, 1} (gemm_ukernel.h): each
    # combination, on 37 x 75 (full 8 x 32 tiles and ragged edges) over K = 300 (two K blocks).
    rng = np.random.default_rng(1)
    a, b, c0 = rand(rng, (37, 300), dtype), rand(rng, (300, 75), dtype), rand(rng, (37, 75), dtype)
    c = c0.copy()
    _C.gemm(a, b, c, alpha=alpha, beta=beta)
    check(c, ref(a, b, False, False, alpha, beta, c0), dtype, 300)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", ["col", "row"])
@pytest.mark.parametrize("act", ["identity", "relu", "sigmoid", "tanh"])
def test_epilogue(dtype, axis, act):
    rng = np.random.default_rng(2)
    M, K, N = 45, 70, 33
    a, b = rand(rng, (M, K), dtype), rand(rng, (K, N), dtype)
    bias = rand(rng, (N if axis == "col" else M,), dtype)
    c = np.empty((M, N), dtype)
    _C.gemm(a, b, c, bias=bias, bias_axis=axis, act=act)
    check(c, ref(a, b, False, False, bias=bias, axis=axis, act=act), dtype, K)
    r = np.empty_like(c)
    _C.gemm_reference(a, b, r, bias=bias, bias_axis=axis, act=act)
    check(c, r, dtype, K)


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_views(dtype):
    """Row-strided views for a, b and c: leading dims differ from the widths; c's gaps untouched."""
    rng = np.random.default_rng(3)
    big_a, big_b = rand(rng, (90, 90), dtype), rand(rng, (160, 70), dtype)
    a = big_a[3:40, 5:80]           # (37, 75), lda = 90
    b = big_b[::2, 2:45][:75]       # (75, 43), ldb = 140
    big_c = np.full((37, 60), 7.0, dtype)
    c = big_c[:, 10:53]             # (37, 43), ldc = 60
    _C.gemm(a, b, c, beta=0.0)
    check(c, ref(a, b, False, False), dtype, 75)
    assert (big_c[:, :10] == 7).all() and (big_c[:, 53:] == 7).all()
    # transposed operands given as views of the transposed storage
    at = big_a[5:80, 3:40]          # (75, 37) stored, op(a) = at.T
    c2 = np.empty((37, 43), dtype)
    _C.gemm(at, b, c2, trans_a=True)
    check(c2, ref(at, b, True, False), dtype, 75)


@pytest.mark.parametrize("M,K,N,ta", [(300, 200, 250, False), (25, 20000, 6, True)])
def test_threads_agree(M, K, N, ta):
    rng = np.random.default_rng(4)
    a = rand(rng, (K, M) if ta else (M, K), np.float32)
    b = rand(rng, (K, N), np.float32)
    outs = []
    for n in (1, 2):
        with gemm_setup(threads=n):
            c = np.empty((M, N), np.float32)
            _C.gemm(a, b, c, trans_a=ta)
            outs.append(c)
    # Each C tile's K loop runs on one thread, and a long K (the second shape, a conv weight
    # gradient) is cut into fixed chunks summed in a fixed order: bitwise identical results.
    assert np.array_equal(outs[0], outs[1])
    check(outs[0], ref(a, b, ta, False), np.float32, K)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,N,ta,tb", [(784, 64, 300, True, False), (301, 64, 100, False, False),
                                         (300, 37, 129, False, True), (1024, 64, 512, False, False)])
def test_task_grid_orders_agree(dtype, M, K, N, ta, tb):
    # Short K picks row-first tasks (whole C rows) or column-first ones by B's size; each C
    # tile's K loop is on one thread either way, so both orders, at 2 threads, give the same bits.
    rng = np.random.default_rng(8)
    a = rand(rng, (K, M) if ta else (M, K), dtype)
    b = rand(rng, (N, K) if tb else (K, N), dtype)
    outs = []
    for rows_first in (1, 0, -1):
        with gemm_setup(threads=2, rows_first=rows_first):
            c = np.full((M, N), np.nan, dtype)
            _C.gemm(a, b, c, trans_a=ta, trans_b=tb)
            outs.append(c)
    check(outs[0], ref(a, b, ta, tb), dtype, K)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,N,ta,tb", [(200, 600, 130, False, False), (97, 1030, 70, True, True),
                                         (64, 513, 40, False, True), (130, 257, 33, True, False),
                                         (300, 300, 700, False, False), (250, 200, 1000, True, False)])
def test_loop_orders_agree(dtype, M, K, N, ta, tb):
    # K blocks inside the tasks (C block cached over the full K) or outside them (BLIS order,
    # one KC x NC block of B per K block), A packed or read in place: the same K blocks summed
    # in the same order, so the same bits, at 1 and 2 threads, with beta and a fused epilogue
    # applied once.
    rng = np.random.default_rng(9)
    a = rand(rng, (K, M) if ta else (M, K), dtype)
    b = rand(rng, (N, K) if tb else (K, N), dtype)
    c0 = rand(rng, (M, N), dtype)
    bias = rand(rng, (N,), dtype)
    outs = []
    # pack_a=1 at 2 threads: a thread's packed A block is reused by its next task of the same
    # rows and K block (the column blocks of one row block), never across steps or rows.
    for threads, order, pack_a in itertools.product((1, 2), (0, 1), (-1, 0, 1)):
        with gemm_setup(threads=threads, k_blocks_outside=order, pack_a=pack_a, load_backoff=False):
            c = c0.copy()
            _C.gemm(a, b, c, trans_a=ta, trans_b=tb, alpha=0.5, beta=-1.0, bias=bias, act="relu")
            outs.append(c)
    check(outs[0], ref(a, b, ta, tb, 0.5, -1.0, c0, bias, "col", "relu"), dtype, K)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,N,ta,tb", [(64, 300, 784, False, True), (64, 784, 300, False, True),
                                         (61, 517, 101, True, True), (64, 16, 150, False, True),
                                         (33, 257, 47, False, False), (256, 300, 130, False, True),
                                         (1, 40, 300, False, True), (9, 1, 33, True, True),
                                         (40, 130, 777, False, True), (96, 257, 1000, True, True)])
def test_near_packed_b_agrees(dtype, M, K, N, ta, tb):
    # B packed by each task one micro-panel at a time right before use (pack_b_near=1), up front
    # as whole panels or read in place (0), or as chosen (-1): the same tiles summing the same K
    # blocks in the same order, so the same bits at 1 and 2 threads, in either loop order, on
    # every ISA's tiles; K and N off the KC / NR multiples, a K short enough for the row-strip
    # order (K = 16, 1), beta and an epilogue.
    rng = np.random.default_rng(10)
    a = rand(rng, (K, M) if ta else (M, K), dtype)
    b = rand(rng, (N, K) if tb else (K, N), dtype)
    c0 = rand(rng, (M, N), dtype)
    bias = rand(rng, (N,), dtype)
    want = ref(a, b, ta, tb, 1.0, 0.5, c0, bias, "col", "tanh")
    before = ISA_NAMES[_C.isa()]
    try:
        for isa in ("avx512", "avx2", "portable"):
            if not _C.set_isa(isa):
                continue
            outs = []
            for threads, near, order in itertools.product((1, 2), (-1, 0, 1), (-1, 1)):
                with gemm_setup(threads=threads, pack_b_near=near, k_blocks_outside=order, load_backoff=False):
                    c = c0.copy()
                    _C.gemm(a, b, c, trans_a=ta, trans_b=tb, beta=0.5, bias=bias, act="tanh")
                    outs.append(c)
            check(outs[0], want, dtype, K)
            assert all(np.array_equal(outs[0], o) for o in outs[1:]), isa
    finally:
        _C.set_isa(before)


def is_zen4_avx512():
    info = _C.cpu_info()
    return info["vendor"] == "AuthenticAMD" and info["family"] == 0x19 and info["isa"] == "avx512"


def test_big_products_use_the_blis_order():
    # 1024^3 f32: the full-K B panel (4 MiB) is far beyond half of any L2 we know, so the K
    # blocks go outside the tasks; a small product keeps the full-K tasks. Zen 4 keeps the
    # full-K tasks at one thread (its L1d cannot hold the B micro-panel the BLIS order keeps).
    # The AVX2 path keeps them too where a task's C block and A block fit in 3/4 of L2 (the C
    # block then stays in L2 across the K blocks).
    info = _C.cpu_info()
    l2 = info["caches"]["l2"]
    big = _C.gemm_blocking(1024, 1024, 1024, "float32")
    nc = min(1024, min(4080, big["b_panel_bytes"] // (1024 * 4)) // big["NR"] * big["NR"])
    c_block_in_l2 = info["isa"] == "avx2+fma" and 0 < (big["MC"] * nc + big["MC"] * big["KC"]) * 4 <= l2 // 4 * 3
    assert big["k_blocks_outside"] == (not is_zen4_avx512() and not c_block_in_l2
                                       and 4 << 20 > 2 * big["b_block_bytes"])
    assert not _C.gemm_blocking(64, 300, 784, "float32")["k_blocks_outside"]
    assert l2 == 0 or big["b_block_bytes"] == l2 // 2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_one_thread_big_aliased_products(dtype, ta, tb):
    # The 1-thread path for big products with 2 KiB-multiple row strides (Zen 4 reads a
    # row-major A in place over full-K tasks; other CPUs pack it, K blocks outside), K over
    # several K blocks and ragged, N and M off the tiles, beta and an epilogue; the same bits
    # as every forced loop order / A packing.
    rng = np.random.default_rng(12)
    M, K, N = 517, 1031, 525
    row = 4096 // np.dtype(dtype).itemsize  # a's rows 4 KiB apart, a view of a wider array
    width = M if ta else K
    a = rand(rng, (K if ta else M, -(-width // row) * row), dtype)[:, :width]
    b = rand(rng, (N, K) if tb else (K, N), dtype)
    c0 = rand(rng, (M, N), dtype)
    bias = rand(rng, (M,), dtype)
    want = ref(a, b, ta, tb, 1.5, 0.5, c0, bias, "row", "relu")
    outs = []
    # (M > 512: a row-major B is packed, on Zen 4 eight panels at a time row by row, 16 whole
    # panels and a ragged one; at 2 threads the pack groups are claimed by both threads.)
    for threads, order, pack_a in itertools.product((1, 2), (-1, 0, 1), (-1, 0, 1)):
        with gemm_setup(threads=threads, k_blocks_outside=order, pack_a=pack_a, load_backoff=False):
            c = c0.copy()
            _C.gemm(a, b, c, trans_a=ta, trans_b=tb, alpha=1.5, beta=0.5, bias=bias, bias_axis="row", act="relu")
            outs.append(c)
    check(outs[0], want, dtype, K)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def aliased_c(rng, M, N, dtype, fill=None):
    """An M x N view whose rows are 4 KiB apart (C's rows in one L1 set), random or `fill`."""
    row = 4096 // np.dtype(dtype).itemsize
    base = rand(rng, (M, -(-N // row) * row), dtype)
    if fill is not None:
        base[...] = fill
    return base[:, :N]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_c_scratch_agrees(dtype, ta, tb):
    # A task summing its C block over several K blocks in a scratch buffer (c_scratch=1: chosen
    # on Zen 4 at 1 thread for C rows a multiple of 4 KiB apart) or in C itself (0): the same
    # operations on the same values, so the same bits, for every micro-kernel (edge rows and
    # columns on each tile), K over several ragged K blocks, at 1 and 2 threads; beta with a
    # row-bias epilogue applied once after the copy; beta = 0 never reads C (NaN stays out).
    rng = np.random.default_rng(13)
    M, K, N = 101, 700, 75
    a = rand(rng, (K, M) if ta else (M, K), dtype)
    b = rand(rng, (N, K) if tb else (K, N), dtype)
    c0 = rand(rng, (M, N), dtype)
    bias = rand(rng, (M,), dtype)
    want = ref(a, b, ta, tb, 1.5, -0.5, c0, bias, "row", "relu")
    want0 = ref(a, b, ta, tb, 1.5)
    for kernel in range(_C._gemm_kernel_count(np.dtype(dtype).name)):
        outs, outs0 = [], []
        for threads, scratch in itertools.product((1, 2), (-1, 0, 1)):
            with gemm_setup(threads=threads, kernel=kernel, c_scratch=scratch, load_backoff=False):
                c = aliased_c(rng, M, N, dtype)
                c[...] = c0
                _C.gemm(a, b, c, trans_a=ta, trans_b=tb, alpha=1.5, beta=-0.5, bias=bias,
                        bias_axis="row", act="relu")
                outs.append(c.copy())
                c = aliased_c(rng, M, N, dtype, fill=np.nan)
                _C.gemm(a, b, c, trans_a=ta, trans_b=tb, alpha=1.5)
                outs0.append(c.copy())
        check(outs[0], want, dtype, K)
        check(outs0[0], want0, dtype, K)
        assert all(np.array_equal(outs[0], o) for o in outs[1:]), kernel
        assert all(np.array_equal(outs0[0], o) for o in outs0[1:]), kernel


def test_c_scratch_choice():
    # The automatic choice (the scratch on Zen 4 with AVX-512 at one thread for C rows a
    # multiple of 4 KiB apart, C itself elsewhere) on the 1024^3 f32 product with a contiguous,
    # NaN-filled C: the bits of both forced paths, and numpy's values.
    rng = np.random.default_rng(14)
    a = rand(rng, (1024, 1024), np.float32)
    b = rand(rng, (1024, 1024), np.float32)
    outs = []
    for scratch in (-1, 0, 1):
        with gemm_setup(threads=1, c_scratch=scratch):
            c = np.full((1024, 1024), np.nan, np.float32)
            _C.gemm(a, b, c)
            outs.append(c)
    check(outs[0], ref(a, b, False, False), np.float32, 1024)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


def offset_c(M, N, ldc, dtype, offset, fill):
    """An M x N view with row stride ldc whose first element lies `offset` elements past a
    64-byte line (NumPy's own arrays are only 16-byte aligned), filled with `fill`."""
    item = np.dtype(dtype).itemsize
    raw = np.empty(M * ldc + 64 // item + offset, dtype)
    start = (-raw.ctypes.data % 64) // item + offset
    c = raw[start:start + M * ldc].reshape(M, ldc)[:, :N]
    assert (c.ctypes.data - offset * item) % 64 == 0
    c[...] = fill
    return c


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_c_align_agrees(dtype, ta, tb):
    # C's columns before its first 64-byte line computed as the first, narrower column panel
    # (c_align=1: chosen on Intel with AVX-512 for wide N when every row starts at the same
    # offset into a line) or not (0): the same K blocks in the same order, so the same bits
    # (alpha = 1, beta 0 or 1: the shift is made only then), for every micro-kernel, every
    # offset, over several ragged K blocks, at 1 and 2 threads; a per-column bias lands on the
    # right columns; beta = 0 never reads C (NaN stays out). Other alpha and beta: the values.
    rng = np.random.default_rng(15)
    M, K, N = 101, 700, 300
    line = 64 // np.dtype(dtype).itemsize
    ldc = -(-N // line) * line + line
    a = rand(rng, (K, M) if ta else (M, K), dtype)
    b = rand(rng, (N, K) if tb else (K, N), dtype)
    c0 = rand(rng, (M, N), dtype)
    bias = rand(rng, (N,), dtype)
    want = ref(a, b, ta, tb, 1.0, 1.0, c0, bias, "col", "relu")
    want0 = ref(a, b, ta, tb)
    want_ab = ref(a, b, ta, tb, 1.5, -0.5, c0)
    for kernel in range(_C._gemm_kernel_count(np.dtype(dtype).name)):
        for offset in (1, line // 2 + 1, line - 1):
            outs, outs0 = [], []
            for threads, align in itertools.product((1, 2), (-1, 0, 1)):
                with gemm_setup(threads=threads, kernel=kernel, c_align=align, load_backoff=False):
                    c = offset_c(M, N, ldc, dtype, offset, c0)
                    _C.gemm(a, b, c, trans_a=ta, trans_b=tb, beta=1.0, bias=bias,
                            bias_axis="col", act="relu")
                    outs.append(c.copy())
                    c = offset_c(M, N, ldc, dtype, offset, np.nan)
                    _C.gemm(a, b, c, trans_a=ta, trans_b=tb)
                    outs0.append(c.copy())
                    c = offset_c(M, N, ldc, dtype, offset, c0)
                    _C.gemm(a, b, c, trans_a=ta, trans_b=tb, alpha=1.5, beta=-0.5)
                    check(c, want_ab, dtype, K)
            check(outs[0], want, dtype, K)
            check(outs0[0], want0, dtype, K)
            assert all(np.array_equal(outs[0], o) for o in outs[1:]), (kernel, offset)
            assert all(np.array_equal(outs0[0], o) for o in outs0[1:]), (kernel, offset)


@pytest.mark.parametrize("N", [1024, 1040, 2100])
def test_c_align_big(N):
    # The big-product paths (K blocks outside the tasks at 1 thread, full-K tasks at 2) with the
    # shifted first step: N = 1024 widens it by one panel, N = 1040 leaves a second step, N =
    # 2100 a third one widened by one panel.
    rng = np.random.default_rng(16)
    a = rand(rng, (1024, 1024), np.float32)
    b = rand(rng, (1024, N), np.float32)
    want = ref(a, b, False, False)
    for threads in (1, 2):
        outs = []
        for align in (-1, 0, 1):
            with gemm_setup(threads=threads, c_align=align, load_backoff=False):
                c = offset_c(1024, N, N, np.float32, 4, np.nan)
                _C.gemm(a, b, c)
                outs.append(c.copy())
        check(outs[0], want, np.float32, 1024)
        assert all(np.array_equal(outs[0], o) for o in outs[1:]), threads


@pytest.mark.parametrize("pack_a", [0, 1])
@pytest.mark.parametrize("kernel", range(_C._gemm_kernel_count("float32")))
def test_forced_paths(pack_a, kernel):
    rng = np.random.default_rng(5)
    a, b = rand(rng, (53, 300), np.float32), rand(rng, (300, 29), np.float32)
    c = np.empty((53, 29), np.float32)
    with gemm_setup(pack_a=pack_a, kernel=kernel):
        _C.gemm(a, b, c)
    check(c, ref(a, b, False, False), np.float32, 300)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forced_kernels_at_ragged_edges(dtype):
    # Every tile at every ragged row / column count: a last row panel goes to the smaller tile
    # (24 -> 6 rows, 12 -> 8), a last column panel at most half full to the half-width one.
    rng = np.random.default_rng(9)
    K = 19
    kernels = range(_C._gemm_kernel_count(np.dtype(dtype).name))
    transposes = ((False, False), (True, False), (False, True))
    for kernel, M, N, (ta, tb) in itertools.product(kernels, (1, 5, 7, 13, 25, 37), range(1, 70, 4), transposes):
        a = rand(rng, (K, M) if ta else (M, K), dtype)
        b = rand(rng, (N, K) if tb else (K, N), dtype)
        c = np.full((M, N), np.nan, dtype)
        with gemm_setup(kernel=kernel):
            _C.gemm(a, b, c, trans_a=ta, trans_b=tb)
        check(c, ref(a, b, ta, tb), dtype, K)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_batched(dtype, ta, tb):
    rng = np.random.default_rng(6)
    B, M, K, N = 4, 13, 21, 9
    a = rand(rng, (B, K, M) if ta else (B, M, K), dtype)
    b = rand(rng, (B, N, K) if tb else (B, K, N), dtype)
    c0 = rand(rng, (B, M, N), dtype)
    c = c0.copy()
    _C.gemm_batched(a, b, c, trans_a=ta, trans_b=tb, alpha=0.5, beta=2.0)
    r = np.stack([ref(a[i], b[i], ta, tb, 0.5, 2.0, c0[i]) for i in range(B)])
    check(c, r, dtype, K)


def test_errors():
    f32 = np.float32
    a, b, c = np.ones((4, 784), f32), np.ones((300, 100), f32), np.empty((4, 100), f32)
    with pytest.raises(ValueError, match=r"b: expected shape \(784, \*\) to match a's K=784, got \(300, 100\)"):
        _C.gemm(a, b, c)
    b = np.ones((784, 100), f32)
    with pytest.raises(ValueError, match=r"c: expected shape \(4, 100\)"):
        _C.gemm(a, b, np.empty((5, 100), f32))
    with pytest.raises(TypeError, match="b: expected dtype float32"):
        _C.gemm(a, b.astype(np.float64), c)
    with pytest.raises(TypeError, match="a: expected dtype float32 or float64"):
        _C.gemm(a.astype(np.int32), b, c)
    with pytest.raises(ValueError, match="a: expected 2-D"):
        _C.gemm(np.ones(4, f32), b, c)
    with pytest.raises(ValueError, match="a: expected the last stride"):
        _C.gemm(np.ones((4, 1568), f32)[:, ::2], b, c)
    ro = np.empty((4, 100), f32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="c: expected a writeable"):
        _C.gemm(a, b, ro)
    sq = np.ones((8, 8), f32)
    with pytest.raises(ValueError, match="c: output must not overlap input a"):
        _C.gemm(sq, np.ones((8, 8), f32), sq)
    with pytest.raises(ValueError, match=r"bias: expected shape \(100,\)"):
        _C.gemm(a, b, c, bias=np.ones(4, f32))
    with pytest.raises(ValueError, match=r"bias: expected shape \(4,\)"):
        _C.gemm(a, b, c, bias=np.ones(100, f32), bias_axis="row")
    with pytest.raises(TypeError, match="bias: expected dtype float32"):
        _C.gemm(a, b, c, bias=np.ones(100))
    with pytest.raises(ValueError, match="act: expected one of"):
        _C.gemm(a, b, c, act="gelu")
    with pytest.raises(ValueError, match="bias_axis: expected"):
        _C.gemm(a, b, c, bias_axis="diag")
    with pytest.raises(ValueError, match="b: expected shape"):
        _C.gemm_batched(np.ones((2, 3, 4), f32), np.ones((3, 4, 5), f32), np.empty((2, 3, 5), f32))
    with pytest.raises(ValueError, match="c: expected a C-contiguous"):
        _C.gemm_batched(np.ones((2, 3, 4), f32), np.ones((2, 4, 5), f32), np.empty((2, 5, 3), f32).transpose(0, 2, 1))


def test_fma_peak_probe():
    # The yardstick bench_gemm.py divides by: this core's FMA limit (chains, no memory traffic).
    peak = _C.fma_peak_gflops(0.02)
    if _C.cpu_supports_avx2_fma():
        # Only that it measured something: a lower bound would be a timed assertion, and this shared
        # machine (or the -O1 sanitizer build, which spills the chains) can make the probe slow.
        assert math.isfinite(peak) and 0.0 < peak < 1000.0, peak
    else:
        assert peak == 0.0
    for bad in (0.0, -1.0, 61.0, float("nan")):
        with pytest.raises(ValueError, match=r"^seconds: expected a number in \(0, 60\]"):
            _C.fma_peak_gflops(bad)


def test_cpu_info_reports_the_cpu():
    """cpu_info: model, ISA paths and cache sizes read at run time, matching the OS's view."""
    import os
    import platform

    info = _C.cpu_info()
    assert isinstance(info["model"], str) and info["model"]
    assert info["isa"] == _C.isa() and info["isa"] in info["isa_supported"]
    assert info["isa_supported"][0] == "portable"
    assert ("avx512" in info["isa_supported"]) == _C.cpu_supports_avx512()
    caches = info["caches"]
    assert caches["line"] >= 16
    if platform.machine() in ("x86_64", "AMD64") and caches["l1d"]:
        assert caches["source"].startswith("cpuid") or caches["source"] in ("sysconf", "sysfs")
        assert 8 << 10 <= caches["l1d"] <= 1 << 20 and caches["l2"] >= caches["l1d"]
        try:
            os_l1d = os.sysconf("SC_LEVEL1_DCACHE_SIZE")
        except (ValueError, OSError):
            os_l1d = 0
        if os_l1d > 0:
            assert caches["l1d"] == os_l1d
    for dtype in ("float32", "float64"):
        blk = info["gemm_blocking"][dtype]
        assert blk == _C.gemm_blocking(1024, 1024, 1024, dtype)


def test_cpu_info_family_and_fma_width():
    """The CPUID family / model match what the OS read, and the FMA flops per cycle the
    benchmarks divide the measured peak by follow from them (Zen 4 runs zmm double-pumped)."""
    import platform

    info = _C.cpu_info()
    per_cycle = info["fma_f32_flops_per_cycle"]
    if info["isa"] == "portable":
        assert per_cycle == 0
    else:
        assert per_cycle in (16, 32, 64)
    if platform.machine() not in ("x86_64", "AMD64"):
        return
    os_view = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("cpu family", "model") and key.strip() not in os_view:
                    os_view[key.strip()] = int(value)
    except (OSError, ValueError):
        os_view = {}
    if len(os_view) == 2:
        assert (info["family"], info["model_number"]) == (os_view["cpu family"], os_view["model"])
    zen4 = info["vendor"] == "AuthenticAMD" and info["family"] == 0x19
    if info["isa"] == "avx512":
        assert per_cycle == (32 if zen4 else 64)
    elif info["isa"] == "avx2":
        assert per_cycle in (16, 32)


def test_fma_peak_probe_by_isa():
    supported = {"avx2": _C.cpu_supports_avx2_fma(), "avx512": _C.cpu_supports_avx512()}
    for isa in ("avx2", "avx512"):
        rate = _C.fma_peak_gflops(0.01, isa)
        if supported[isa]:
            assert math.isfinite(rate) and 0.0 < rate < 1000.0, (isa, rate)
        else:
            assert rate == 0.0
    with pytest.raises(ValueError, match=r"^isa: expected '', 'avx2' or 'avx512', got 'sse'"):
        _C.fma_peak_gflops(0.01, "sse")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", [1, 255, 256, 257, 784, 4097])
def test_gemm_blocking_is_consistent(dtype, k):
    """The reported blocking: whole register tiles, a balanced K block, blocks inside their
    cache budgets, and the kernel gemm really uses for that shape."""
    b = _C.gemm_blocking(300, 500, k, dtype)
    assert b["kernel"] == _C._gemm_kernel_name(500, dtype, 300)
    assert 1 <= b["KC"] <= b["KC_max"] and math.ceil(k / b["KC"]) == math.ceil(k / b["KC_max"])
    assert b["MC"] % b["MR"] == 0 and b["NC"] % b["NR"] == 0
    item = 4 if dtype == "float32" else 8
    if b["k_blocks_outside"]:  # BLIS order: one KC x NC block of B in L2
        assert b["NC"] == b["NR"] or b["NC"] * b["KC"] * item <= b["b_block_bytes"]
    else:
        assert b["NC"] == b["NR"] or b["NC"] * k * item <= b["b_panel_bytes"]
    assert b["MC"] == b["MR"] or b["MC"] * b["KC_max"] * item <= b["a_block_bytes"]
    with gemm_setup(kc=64, mc=2 * b["MR"]):
        forced = _C.gemm_blocking(300, 500, k, dtype)
        assert forced["KC_max"] == 64 and forced["MC"] == 2 * b["MR"]


def test_gemm_blocking_rejects_bad_input():
    with pytest.raises(ValueError, match="dtype"):
        _C.gemm_blocking(4, 4, 4, "float16")
    with pytest.raises(ValueError, match="m, n, k"):
        _C.gemm_blocking(-1, 4, 4)


# ---- the AMX float32 path (where the CPU has it; elsewhere amx=1 is the FMA path) -------------
AMX_SHAPES = [(128, 128, 64, False, False), (256, 300, 784, False, True), (300, 256, 100, True, False),
              (97, 190, 33, True, True), (64, 256, 1500, False, False)]


@pytest.mark.parametrize("m,n,k,ta,tb", AMX_SHAPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_amx_path_matches_reference_and_fma_path(m, n, k, ta, tb, threads):
    rng = np.random.default_rng(m * 7 + n + k)
    a = rand(rng, (k, m) if ta else (m, k), np.float32)
    b = rand(rng, (n, k) if tb else (k, n), np.float32)
    c0 = rand(rng, (m, n), np.float32)
    bias = rand(rng, (n,), np.float32)
    r = ref(a, b, ta, tb, beta=1.0, c0=c0, bias=bias, act="relu")
    errs = {}
    for amx in (0, 1):
        c = c0.copy()
        with gemm_setup(threads=threads, amx=amx):
            _C.gemm(a, b, c, trans_a=ta, trans_b=tb, beta=1.0, bias=bias, act="relu")
        check(c, r, np.float32, k)
        errs[amx] = np.abs(c - r).max()
    # float32 accuracy: the three-piece split keeps the FMA path's error, within a small factor
    assert errs[1] <= max(3 * errs[0], 4e-7 * k ** 0.5), errs


def test_amx_path_same_bits_for_any_thread_count():
    rng = np.random.default_rng(5)
    a, b = rand(rng, (256, 784), np.float32), rand(rng, (300, 784), np.float32)
    out = []
    for threads in (1, 2):
        c = np.empty((256, 300), np.float32)
        with gemm_setup(threads=threads, amx=1):
            _C.gemm(a, b, c, trans_b=True)
        out.append(c)
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, 1e-37])
@pytest.mark.parametrize("where", ["a", "b"])
def test_amx_path_hands_unfit_values_to_fma_path(value, where):
    """inf, NaN and magnitudes below 2^-100 cannot be split into bfloat16 pieces exactly: such
    products take the FMA path, giving what float32 arithmetic gives, with C added once."""
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 1, (200, 96)).astype(np.float32)
    b = rng.uniform(0.5, 1, (96, 160)).astype(np.float32)
    if where == "a":
        a[150, 3] = value
    else:
        b[3, 130] = value
    c0 = rng.uniform(-1, 1, (200, 160)).astype(np.float32)
    c = c0.copy()
    with gemm_setup(amx=1):
        _C.gemm(a, b, c, beta=1.0)
    want = c0.copy()
    with gemm_setup(amx=0):
        _C.gemm(a, b, want, beta=1.0)
    np.testing.assert_allclose(c, want, rtol=1e-6, atol=0)
    assert np.array_equal(np.isnan(c), np.isnan(want)) and np.array_equal(np.isinf(c), np.isinf(want))


def test_cpu_info_reports_amx_path():
    info = _C.cpu_info()
    assert isinstance(info["gemm_amx"], bool)
    if info["gemm_amx"]:
        assert info["amx_tile"] and info["avx512_bf16"] and info["isa"] == "avx512"


@pytest.mark.parametrize("seed", range(3))
def test_amx_path_random_shapes_strides_and_epilogues(seed):
    """Random shapes, transposes, row strides, beta, epilogues and thread counts, some with an
    inf / NaN / tiny value: the AMX path (where present) gives the FMA path's NaN and inf
    pattern and float32-class error against float64."""
    rng = np.random.default_rng(seed)
    for _ in range(12):
        M, N = (int(x) for x in rng.integers(1, 300, 2))
        K = int(rng.integers(1, 1400))
        ta, tb = bool(rng.integers(2)), bool(rng.integers(2))
        pad = int(rng.integers(0, 3)) * 7
        a = rng.standard_normal((K, M + pad) if ta else (M, K + pad)).astype(np.float32)[:, : (M if ta else K)]
        b = rng.standard_normal((N, K + pad) if tb else (K, N + pad)).astype(np.float32)[:, : (K if tb else N)]
        if rng.random() < 0.3:
            t = a if rng.random() < 0.5 else b
            t[tuple(int(rng.integers(0, s)) for s in t.shape)] = rng.choice([np.inf, -np.inf, np.nan, 1e-36])
        beta = float(rng.choice([0.0, 1.0]))
        c0 = rng.standard_normal((M, N)).astype(np.float32)
        bias = rng.standard_normal(N).astype(np.float32) if rng.random() < 0.5 else None
        act = str(rng.choice(["identity", "relu"]))
        outs = []
        for amx in (0, 1):
            c = c0.copy()
            with gemm_setup(threads=int(rng.integers(1, 3)), amx=amx):
                _C.gemm(a, b, c, trans_a=ta, trans_b=tb, beta=beta, bias=bias, act=act)
            outs.append(c)
        fma, amx_out = outs
        assert np.array_equal(np.isnan(fma), np.isnan(amx_out))
        assert np.array_equal(np.where(np.isinf(fma), fma, 0), np.where(np.isinf(amx_out), amx_out, 0))
        with np.errstate(all="ignore"):
            pre = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64) + beta * c0
            if bias is not None:
                pre = pre + bias
        r = np.maximum(pre, 0) if act == "relu" else pre
        ok = np.isfinite(fma) & np.isfinite(r)
        scale = np.abs(pre[ok]).max(initial=0) + 1e-30
        e_fma = np.abs(fma[ok] - r[ok]).max(initial=0) / scale
        e_amx = np.abs(amx_out[ok] - r[ok]).max(initial=0) / scale
        assert e_amx <= max(4 * e_fma, 2e-7 * K ** 0.5), (M, N, K, ta, tb, e_amx, e_fma)
