"""Fuzz the C++ kernels behind conv2d, the fused conv block, matmul/linear/gemm and sigmoid/tanh
against PyTorch: seeded random shapes and layouts, each seed in its own subprocess.

Each seed picks one family (seed % 6) and checks:
  conv    F.conv2d, forward and backward (dx, dw, db), 5-wide filters mostly, C 1..8, K 1..20,
          N in {0,1,2,3,15,16,17,33}, H, W 5..40, padding 0..3, stride 1/2, dilation 1/2,
          groups, bias on/off; the input a transposed / sliced / negative-stride / channels-last
          view, or against a guard page; unit values, scaled by 1e-3 / 1e3, or with 1% spikes
          of 1e2 / 1e4; row Winograd forced 'on' / 'off' / 'auto', conv algo auto / direct /
          im2col, 1 or 2 threads, ISA avx512 / avx2 / portable (_C.set_isa, where the CPU has it);
  block   F.conv2d_relu_max_pool2d: bitwise equal to conv2d -> relu -> max_pool2d (values and
          gradients), values vs PyTorch, gradients vs PyTorch's routed through lamina's own
          window choices (near-ties make "which max" a rounding question, not a bug);
  gemm    lamina.matmul and F.linear on transposed / sliced / negative-stride / guard-page views
          (through autograd), and _C.gemm directly: M, N, K in 0..1100 with 1, 7, 31, 33, 255,
          257, 1023, 1025 and K = 1024 / 2048 (4 KiB row strides), padded row strides, offset
          (unaligned) starts, trans_a / trans_b, alpha, beta, bias, activation epilogue, and
          (30%) a forced GEMM path (_gemm_set_path_override: loop order, packing, kernel, KC, MC);
  act     sigmoid and tanh (lamina ops and _C.act_forward / act_backward in place and out of
          place, unaligned, against guard pages) on +-0, subnormals, +-inf, NaN, +-88, +-104,
          huge values, lengths 0..100;
  threads set_num_threads changed between calls, and two Python threads running conv, the
          block and matmul at once, every result checked;
  bad     (seed -1, run first) bad input (wrong dtype, shape mismatch, negative padding, zero
          stride, bad hook modes, ...) raises ValueError / TypeError naming the argument.
A "guard page" array ends (or starts) against a PROT_NONE page: a kernel reading or writing
past it faults, and the subprocess's death is reported.

Tolerances. The reference is PyTorch in float64 on the same (rounded) inputs. An output that is
a sum of L products may be off by rtol * min(L, 4 sqrt(L)) * (the same sum of |products|):
torch.testing's float32 default rtol 1.3e-6 scaled by the sum length (linearly up to 16 terms,
then as the square root that rounding errors of a long sum grow by); float64 the same 22 ulps
(rtol 4.9e-15). Where row Winograd may run, the |sum| also takes the tile's inputs (see
WINO_FACTOR). sigmoid / tanh: within max(4 ulp, PyTorch's own error) of the long double
(x87 80-bit) result rounded to the dtype; their gradients within 8 eps.

    python tools/fuzz_kernels.py --seeds 0:600        # each seed in its own subprocess
    python tools/fuzz_kernels.py --minutes 10 --start 1000 --family conv
    python tools/fuzz_kernels.py --one 17             # one seed in this process (raises)

A seed whose subprocess dies (segfault), hangs past --timeout, or fails a check is printed with
its seed and case; the exit status is 1 if any seed failed.
"""
import argparse
import ctypes
import mmap
import os
import sys
import threading

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fuzz_campaign import add_campaign_args, campaign, spawn  # noqa: E402

FAMILIES = ("conv", "conv", "block", "gemm", "act", "threads")
RTOL = {np.float32: 1.3e-6, np.float64: 4.9e-15}
N_CHOICES = (0, 1, 2, 3, 15, 16, 17, 33)
GEMM_SIZES = (0, 1, 7, 31, 33, 255, 257, 1023, 1025)


def _lamina():
    import lamina
    import lamina.nn.functional as F
    from lamina import _C
    return lamina, F, _C


def _torch():
    import torch
    torch.set_num_threads(1)
    return torch


# ------------------------------------------------------------------ guard pages
PAGE = mmap.PAGESIZE
_guard_keep, _guarded_arrays = [], []


def guarded(shape, dt, before=False):
    """A C-contiguous array whose last byte (its first, if before) touches a PROT_NONE page, so
    a kernel that reads or writes past the array faults instead of reading a neighbour's bytes."""
    dt = np.dtype(dt)
    count = int(np.prod(shape))
    nbytes = count * dt.itemsize
    pages = max(1, (nbytes + PAGE - 1) // PAGE)
    mm = mmap.mmap(-1, (pages + 2) * PAGE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    libc = ctypes.CDLL(None, use_errno=True)
    for at in (addr, addr + (pages + 1) * PAGE):
        if libc.mprotect(ctypes.c_void_p(at), PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")
    start = PAGE if before else PAGE + pages * PAGE - nbytes
    a = np.frombuffer(mm, dtype=dt, count=count, offset=start).reshape(shape)
    _guard_keep.append(mm)
    _guarded_arrays.append(a)
    return a


# ------------------------------------------------------------------ case generation
def family_of(seed):
    return FAMILIES[seed % len(FAMILIES)]


def _supported_isa(want):
    _, _, _C = _lamina()
    names = {"avx2": "avx2+fma"}
    return names.get(want, want) in _C.cpu_info()["isa_supported"]


def conv_case(seed, block=False):
    rng = np.random.default_rng(seed)
    c = {"seed": seed, "family": "block" if block else "conv"}
    c["dtype"] = "float32" if rng.random() < 0.6 else "float64"
    c["N"] = int(rng.choice(N_CHOICES))
    if block and c["N"] == 0 and rng.random() < 0.5:
        c["N"] = 16
    c["groups"] = 1
    C, K = int(rng.integers(1, 9)), int(rng.integers(1, 21))
    if rng.random() < 0.2:
        g = [d for d in range(2, 9) if C % d == 0 and K % d == 0]
        if not g:
            C, K = 2 * max(1, C // 2), 2 * max(1, K // 2)
            g = [2]
        c["groups"] = int(rng.choice(g))
    c["C"], c["K"] = C, K
    c["KW"] = 5 if rng.random() < 0.8 else int(rng.choice([1, 2, 3, 4, 6, 7]))
    c["KH"] = 5 if rng.random() < 0.7 else int(rng.choice([1, 2, 3, 4, 6]))
    c["stride"] = (1, 1) if rng.random() < 0.65 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    c["dilation"] = (1, 1) if rng.random() < 0.8 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    c["padding"] = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
    while True:
        H, W = int(rng.integers(5, 41)), int(rng.integers(5, 41))
        ext_h = c["dilation"][0] * (c["KH"] - 1) + 1
        ext_w = c["dilation"][1] * (c["KW"] - 1) + 1
        oh = (H + 2 * c["padding"][0] - ext_h) // c["stride"][0] + 1
        ow = (W + 2 * c["padding"][1] - ext_w) // c["stride"][1] + 1
        if oh >= (2 if block else 1) and ow >= (2 if block else 1):
            break
    c["H"], c["W"] = H, W
    c["bias"] = bool(rng.random() < 0.7)
    c["layout"] = str(rng.choice(["contiguous", "guarded", "transposed", "sliced", "negative", "channels_last"]))
    c["row_winograd"] = str(rng.choice(["auto", "on", "off"]))
    c["algo"] = str(rng.choice(["auto", "auto", "direct", "im2col"]))
    c["threads"] = int(rng.choice([1, 2]))
    c["isa"] = str(rng.choice(["avx512"] * 15 + ["avx2"] * 4 + ["portable"]))
    c["scale"] = float(rng.choice([1.0, 1.0, 1.0, 1e-3, 1e3]))
    c["spikes"] = float(rng.choice([0.0, 0.0, 0.0, 1e2, 1e4]))
    c["nonfinite"] = [str(v) for v in rng.choice(["inf", "-inf", "nan"], size=int(rng.integers(1, 4)))] \
        if rng.random() < 0.12 else []
    return c


def gemm_case(seed):
    rng = np.random.default_rng(seed)
    c = {"seed": seed, "family": "gemm", "dtype": "float32" if rng.random() < 0.6 else "float64"}

    def size():
        return int(rng.choice(GEMM_SIZES)) if rng.random() < 0.6 else int(rng.integers(0, 1101))

    M, N, K = size(), size(), size()
    if rng.random() < 0.3:
        K = int(rng.choice([1024, 2048]))           # row strides that are multiples of 4 KiB
    if rng.random() < 0.25:
        N = int(rng.choice([1024, 2048]))           # C's (and B's) rows 4 KiB apart
    # keep a case under ~0.3 GFLOP so a seed stays a second or two
    while M * N * K > 3e8:
        if M >= N and M > 1:
            M //= 2
        elif N > 1:
            N //= 2
        else:
            K //= 2
    c["M"], c["N"], c["K"] = M, N, K
    c["api"] = str(rng.choice(["matmul", "linear", "gemm", "gemm"]))
    c["a_layout"] = str(rng.choice(["contiguous", "transposed", "sliced", "negative", "padded", "guarded"]))
    c["b_layout"] = str(rng.choice(["contiguous", "transposed", "sliced", "negative", "padded", "guarded"]))
    page_row = 4096 // (4 if c["dtype"] == "float32" else 8)     # pad rows by a whole 4 KiB
    c["ld_pad"] = int(rng.choice([0, 1, 3, 16, 1024 - 1 if K < 1024 else 0, page_row]))
    c["offset"] = int(rng.integers(0, 16))
    c["alpha"] = float(rng.choice([1.0, 1.0, -0.5, 2.0]))
    c["beta"] = float(rng.choice([0.0, 0.0, 1.0, -1.5]))
    c["bias"] = str(rng.choice(["none", "col", "row"]))
    c["act"] = str(rng.choice(["identity", "identity", "relu", "sigmoid", "tanh"]))
    c["threads"] = int(rng.choice([1, 2]))
    c["isa"] = str(rng.choice(["avx512"] * 15 + ["avx2"] * 4 + ["portable"]))
    # some seeds force the GEMM's path (_gemm_set_path_override): the loop orders, packings and
    # micro-kernels that other CPUs' rules pick, on this one
    c["override"] = None
    if rng.random() < 0.3:
        c["override"] = {"pack_a": int(rng.integers(-1, 2)), "pack_b": int(rng.integers(-1, 2)),
                         "kernel": int(rng.integers(-1, 5)), "rows_first": int(rng.integers(-1, 2)),
                         "k_blocks_outside": int(rng.integers(-1, 2)), "pack_b_near": int(rng.integers(-1, 2)),
                         "ksplit": bool(rng.random() < 0.7), "kc": int(rng.choice([0, 0, 8, 64, 100, 256])),
                         "mc": int(rng.choice([0, 0, 8, 24, 96])), "c_scratch": int(rng.integers(-1, 2))}
    return c


SPECIAL32 = [0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, 1.17e-38, -1.17e-38, np.inf, -np.inf, np.nan,
             88.0, -88.0, 88.7, -88.7, 104.0, -104.0, 3e38, -3e38, 1e10, -1e10, 9.0, -9.0, 15.0, -15.0,
             1e-8, -1e-8, 0.5, -0.5, 20.0, -20.0, 17.5, -17.5]
SPECIAL64 = SPECIAL32 + [5e-324, -5e-324, 1e-310, 710.0, -710.0, 745.2, -745.2, 1e308, -1e308, 36.7, -36.7]


def act_case(seed):
    rng = np.random.default_rng(seed)
    return {"seed": seed, "family": "act", "dtype": "float32" if rng.random() < 0.6 else "float64",
            "kind": str(rng.choice(["sigmoid", "tanh"])),
            "n": int(rng.choice([0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100]) if rng.random() < 0.3
                     else rng.integers(0, 101)),
            "offset": int(rng.integers(0, 16)), "special": float(rng.choice([0.0, 0.2, 0.6])),
            "spread": float(rng.choice([1.0, 10.0, 100.0])), "threads": int(rng.choice([1, 2])),
            "isa": str(rng.choice(["avx512"] * 15 + ["avx2"] * 4 + ["portable"]))}


def threads_case(seed):
    rng = np.random.default_rng(seed)
    return {"seed": seed, "family": "threads", "dtype": "float32" if rng.random() < 0.7 else "float64",
            "sequence": [int(t) for t in rng.choice([1, 2, 3, 1, 2], size=5)],
            "row_winograd": str(rng.choice(["auto", "on"])), "N": int(rng.choice([16, 17, 33, 64])),
            "M": int(rng.choice([33, 255, 257, 300])), "K": int(rng.choice([31, 256, 1024])),
            "rounds": 4}


def make_case(seed):
    fam = family_of(seed)
    if fam == "conv":
        return conv_case(seed)
    if fam == "block":
        return conv_case(seed, block=True)
    if fam == "gemm":
        return gemm_case(seed)
    if fam == "act":
        return act_case(seed)
    return threads_case(seed)


# ------------------------------------------------------------------ checks
def _setup(case):
    lamina, F, _C = _lamina()
    _INITIAL.setdefault("isa", {"avx2+fma": "avx2"}.get(_C.isa(), _C.isa()))
    _INITIAL.setdefault("threads", _C.get_num_threads())
    isa = case.get("isa", "avx512")
    if not _supported_isa(isa):
        isa = _C.isa()
    assert _C.set_isa(isa), isa
    _C.set_num_threads(case.get("threads", 1))
    _C._conv_set_row_winograd(case.get("row_winograd", "auto"))
    _C._conv_set_algo(case.get("algo", "auto"))
    ov = case.get("override")
    if ov:
        ov = dict(ov)
        n_kern = _C._gemm_kernel_count(case["dtype"])
        ov["kernel"] = -1 if ov["kernel"] < 0 else ov["kernel"] % n_kern
        _C._gemm_set_path_override(**ov)


_INITIAL = {}


def _begin(case, setup=None):
    """Every family's first steps: apply `setup`'s settings (default: the case's own), and give
    the case's dtype and its random stream."""
    _setup(case if setup is None else setup)
    return np.dtype(case["dtype"]).type, np.random.default_rng(case["seed"] + 7)


def _reset():
    """Back to the settings this process started with (ISA, threads, conv algo and rule)."""
    _, _, _C = _lamina()
    _C._conv_set_row_winograd("auto")
    _C._conv_set_algo("auto")
    _C._gemm_set_path_override()
    _C.set_isa(_INITIAL["isa"])
    _C.set_num_threads(_INITIAL["threads"])


def length_factor(L):
    """The rtol multiplier of a sum of L terms: L (the worst-case bound) up to 16 terms, then
    4 sqrt(L) (rounding errors of a long sum grow as its square root; L itself would let a
    dropped block of a 50k-term weight-gradient sum pass)."""
    L = max(int(L), 1)
    return float(min(L, 4 * np.sqrt(L)))


def check_bound(what, got, ref, absref, L, dtype, case):
    """|got - ref| <= rtol * L * absref (+ the dtype's smallest normal), and NaN where ref is NaN."""
    got, ref, absref = (np.asarray(a, np.float64) for a in (got, ref, absref))
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}\ncase {case}"
    nan_ref, nan_got = np.isnan(ref), np.isnan(got)
    assert np.array_equal(nan_ref, nan_got), \
        f"{what}: NaN at {np.argwhere(nan_ref != nan_got)[:5].tolist()}\ncase {case}"
    inf_ref = np.isinf(ref)
    odd = (inf_ref & (got != ref)) | (np.isinf(got) & ~inf_ref)
    assert not odd.any(), f"{what}: infinities differ at {np.argwhere(odd)[:5].tolist()}\ncase {case}"
    fin = ~nan_ref & ~inf_ref
    tol = RTOL[dtype] * length_factor(L) * absref + np.finfo(dtype).tiny
    err = np.abs(got - ref)
    bad = fin & ~(err <= tol)
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {got.size} outside the bound; at {i} got {got[i]!r} "
                             f"want {ref[i]!r} (err {err[i]:.3g}, bound {tol[i]:.3g}, |sum| {absref[i]:.3g}, "
                             f"L {L}); max err/bound {np.max(err[fin] / tol[fin]):.3g}\ncase {case}")


def _conv_input(case, rng, dt):
    """(base array, lamina view maker, torch view maker): the conv input x (N, C, H, W) as a view
    of a differently shaped base, so that lamina sees a non-contiguous tensor. Values: unit
    normals times the case's scale; 'spikes' multiplies 1% of them by that factor."""
    N, C, H, W = case["N"], case["C"], case["H"], case["W"]
    lay = case["layout"]

    def draw(shape):
        a = rng.standard_normal(shape) * case["scale"]
        if case.get("spikes"):
            a[rng.random(shape) < 0.01] *= case["spikes"]
        for v in case.get("nonfinite", []):     # (in the viewed part or not: either is a case)
            if a.size:
                a.flat[int(rng.integers(0, a.size))] = float(v)
        return a

    if lay == "transposed":           # base (N, C, W, H), x = base.transpose(2, 3)
        return draw((N, C, W, H)).astype(dt), (lambda t: t.transpose(2, 3)), (lambda t: t.transpose(2, 3))
    if lay == "sliced":               # base (N, C+1, H+2, 2W), x = base[:, 1:, 1:H+1, ::2]
        return (draw((N, C + 1, H + 2, 2 * W)).astype(dt), (lambda t: t[:, 1:, 1:H + 1, ::2]),
                (lambda t: t[:, 1:, 1:H + 1, ::2]))
    if lay == "negative":             # x = base[:, :, ::-1] (torch: flip)
        return draw((N, C, H, W)).astype(dt), (lambda t: t[:, :, ::-1]), (lambda t: t.flip(2))
    if lay == "channels_last":        # base (N, H, W, C), x = base.permute(0, 3, 1, 2)
        return draw((N, H, W, C)).astype(dt), (lambda t: t.permute(0, 3, 1, 2)), (lambda t: t.permute(0, 3, 1, 2))
    base = draw((N, C, H, W))
    if lay == "guarded":              # x itself, its last (odd seeds: first) byte against a guard page
        g = guarded(base.shape, dt, before=bool(case["seed"] % 2))
        g[...] = base
        return g, (lambda t: t), (lambda t: t)
    return base.astype(dt), (lambda t: t), (lambda t: t)


def row_winograd_may_run(case):
    """Row Winograd F(4, 5) takes 5-wide filters at stride 1, dilation 1, groups 1 (when forced
    on, or by the rule on AMD AVX-512)."""
    return (case["KW"] == 5 and tuple(case["stride"]) == (1, 1) and tuple(case["dilation"]) == (1, 1)
            and case["groups"] == 1 and case["row_winograd"] != "off")


# Row Winograd's error bound: each output of a 4-wide tile is A^T [(G g) .* (B^T d)] over the
# tile's 8 input columns, so its rounding scales with the largest input in the tile, not in its
# own 5-column window: the |sum| of the bound takes, per input column, the max of |x| over the
# 15 columns around it (every tile column of every output that reads it), and a factor for
# the transforms' coefficients (B^T rows sum to 12.5 in magnitude, A^T's last row to 18).
WINO_FACTOR = 16.0


def _torch_conv_refs(case, base, view_t, w, b, gy):
    """float64 PyTorch: y, and the gradients of sum(y * gy) for base, w, b; plus the same sums of
    |products| (the error bound's scale)."""
    torch = _torch()
    tf = torch.nn.functional
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=case["groups"])
    xb = torch.tensor(base.astype(np.float64), requires_grad=True)
    wt = torch.tensor(w.astype(np.float64), requires_grad=True)
    bt = torch.tensor(b.astype(np.float64), requires_grad=True) if b is not None else None
    y = tf.conv2d(view_t(xb), wt, bt, **kw)
    (y * torch.tensor(gy)).sum().backward()
    # |x| with NaN as inf: the bound of an output that a NaN reaches is inf (its own value is
    # compared as NaN / inf, not by the bound)
    abs_base = np.nan_to_num(np.abs(base.astype(np.float64)), nan=np.inf)
    xa = torch.tensor(abs_base, requires_grad=True)
    wa = torch.tensor(np.abs(w.astype(np.float64)), requires_grad=True)
    ya = tf.conv2d(view_t(xa), wa, None, **kw)
    if b is not None:
        ya = ya + torch.tensor(np.abs(b.astype(np.float64))).reshape(1, -1, 1, 1)
    (ya * torch.tensor(np.abs(gy))).sum().backward()
    out = {"y": y.detach().numpy(), "dx": xb.grad.numpy(), "dw": wt.grad.numpy(),
           "y_abs": ya.detach().numpy(), "dx_abs": xa.grad.numpy(), "dw_abs": wa.grad.numpy()}
    if b is not None:
        out["db"], out["db_abs"] = bt.grad.numpy(), np.abs(gy).sum(axis=(0, 2, 3))
    if row_winograd_may_run(case) and base.size:
        with torch.no_grad():
            spread = tf.max_pool2d(view_t(torch.tensor(abs_base)), (1, 15), stride=1,
                                   padding=(0, 7))
            yw = tf.conv2d(spread, wa.detach(), None, **kw) * WINO_FACTOR
        out["y_abs"] = np.maximum(out["y_abs"], yw.numpy())
        # dx is the convolution of dy with the rotated filters, on the same path (row Winograd
        # where the batch does not fill the lanes): the same spread, over dy's columns
        if gy.size:
            xs = torch.zeros(base.shape, dtype=torch.float64, requires_grad=True)
            gy_spread = tf.max_pool2d(torch.tensor(np.abs(gy.astype(np.float64))), (1, 15), stride=1, padding=(0, 7))
            (tf.conv2d(view_t(xs), wa.detach(), None, **kw) * gy_spread).sum().backward()
            out["dx_abs"] = np.maximum(out["dx_abs"], xs.grad.numpy() * WINO_FACTOR)
    return out


def _leaf(lamina, a):
    """A leaf tensor on a's own memory when a is a guarded array (lamina.tensor would copy it)."""
    if any(a is g for g in _guarded_arrays):
        t = lamina.from_numpy(a)
        t.requires_grad_(True)
        return t
    return lamina.tensor(a, requires_grad=True)


def _maybe_guarded(a, case):
    if case.get("layout") != "guarded":
        return a
    g = guarded(a.shape, a.dtype, before=not case["seed"] % 2)
    g[...] = a
    return g


def run_conv(case):
    lamina, F, _C = _lamina()
    dt, rng = _begin(case)
    base, view_l, view_t = _conv_input(case, rng, dt)
    Cg = case["C"] // case["groups"]
    L_fwd = Cg * case["KH"] * case["KW"] + 1
    w = (rng.standard_normal((case["K"], Cg, case["KH"], case["KW"])) / np.sqrt(L_fwd)).astype(dt)
    b = rng.standard_normal(case["K"]).astype(dt) if case["bias"] else None
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=case["groups"])
    w = _maybe_guarded(w, case)
    xb = _leaf(lamina, base)
    wl = _leaf(lamina, w)
    bl = lamina.tensor(b, requires_grad=True) if b is not None else None
    y = F.conv2d(view_l(xb), wl, bl, **kw)
    assert y.dtype == getattr(lamina, case["dtype"]), (y.dtype, case)
    gy = rng.standard_normal(tuple(y.shape))
    (y * lamina.tensor(gy.astype(dt))).sum().backward()
    ref = _torch_conv_refs(case, base, view_t, w, b, gy.astype(dt))
    OHW = int(np.prod(y.shape[2:])) if y.ndim == 4 else 0
    check_bound("conv y", y.detach().numpy(), ref["y"], ref["y_abs"], L_fwd, dt, case)
    if case["N"] == 0:
        assert xb.grad is None or xb.grad.numpy().size == 0
    L_dx = (case["K"] // case["groups"]) * case["KH"] * case["KW"]
    check_bound("conv dx", xb.grad.numpy(), ref["dx"], ref["dx_abs"], L_dx, dt, case)
    check_bound("conv dw", wl.grad.numpy(), ref["dw"], ref["dw_abs"], case["N"] * OHW, dt, case)
    if b is not None:
        check_bound("conv db", bl.grad.numpy(), ref["db"], ref["db_abs"], case["N"] * OHW, dt, case)
    # the same call again (cached padded planes / thread-local buffers reused) gives the same bits
    y2 = F.conv2d(view_l(xb), wl, bl, **kw)
    assert np.array_equal(y.detach().numpy(), y2.detach().numpy(), equal_nan=True), f"conv rerun differs\ncase {case}"


def run_block(case):
    lamina, F, _C = _lamina()
    torch = _torch()
    dt, rng = _begin(case)
    base, view_l, view_t = _conv_input(case, rng, dt)
    Cg = case["C"] // case["groups"]
    L_fwd = Cg * case["KH"] * case["KW"] + 1
    w = (rng.standard_normal((case["K"], Cg, case["KH"], case["KW"])) / np.sqrt(L_fwd)).astype(dt)
    b = (rng.standard_normal(case["K"]) * 0.3).astype(dt) if case["bias"] else None
    w = _maybe_guarded(w, case)
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=case["groups"])
    outs, grads = [], []
    for fused in (True, False):
        xb = _leaf(lamina, base)
        wl = _leaf(lamina, w)
        bl = lamina.tensor(b, requires_grad=True) if b is not None else None
        if fused:
            y = F.conv2d_relu_max_pool2d(view_l(xb), wl, bl, **kw)
            gy = rng.standard_normal(tuple(y.shape)).astype(dt)
        else:
            z = F.conv2d(view_l(xb), wl, bl, **kw)
            y = F.max_pool2d(F.relu(z), 2)
            z_val = z.detach().numpy()
        (y * lamina.tensor(gy)).sum().backward()
        outs.append(y.detach().numpy())
        grads.append([t.grad.numpy() if t is not None and t.grad is not None else None for t in (xb, wl, bl)])
    assert np.array_equal(outs[0], outs[1], equal_nan=True), f"block: fused values != conv->relu->pool\ncase {case}"
    for name, g0, g1 in zip(("dx", "dw", "db"), *grads):
        if g0 is None or g1 is None:
            assert (g0 is None) == (g1 is None) or case["N"] == 0, (name, case)
            continue
        assert np.array_equal(g0, g1, equal_nan=True), \
            f"block: fused {name} != conv->relu->pool's " \
            f"(max diff {np.nanmax(np.abs(g0 - g1)) if g0.size else 0})\ncase {case}"
    # values vs PyTorch float64: relu and max are 1-Lipschitz, so the conv's bound, maxed per window
    zt = torch.tensor(z_val.astype(np.float64), requires_grad=True)
    ref = _torch_conv_refs(case, base, view_t, w, b, np.zeros(z_val.shape, dt))
    tf = torch.nn.functional
    y_ref = tf.max_pool2d(tf.relu(torch.tensor(ref["y"])), 2).numpy()
    bound = tf.max_pool2d(torch.tensor(ref["y_abs"]), 2).numpy()
    check_bound("block y", outs[0], y_ref, bound, L_fwd, dt, case)
    # gradients: PyTorch's routing on lamina's own conv values, then PyTorch's conv backward
    yt = tf.max_pool2d(tf.relu(zt), 2)
    (yt * torch.tensor(gy.astype(np.float64))).sum().backward()
    dz = zt.grad.numpy()
    ref = _torch_conv_refs(case, base, view_t, w, b, dz)
    OHW = int(np.prod(z_val.shape[2:]))
    L_dx = (case["K"] // case["groups"]) * case["KH"] * case["KW"]
    if grads[0][0] is not None:
        check_bound("block dx", grads[0][0], ref["dx"], ref["dx_abs"], L_dx, dt, case)
        check_bound("block dw", grads[0][1], ref["dw"], ref["dw_abs"], case["N"] * OHW, dt, case)
        if b is not None:
            check_bound("block db", grads[0][2], ref["db"], ref["db_abs"], case["N"] * OHW, dt, case)


def _operand(rng, rows, cols, layout, dt, ld_pad, offset):
    """(base, view): a (rows, cols) matrix view(base) as the layout asks; view works on NumPy
    arrays and lamina tensors alike. 'transposed': the transpose of a (cols, rows) array (not
    row-contiguous); 'sliced': every other column of a wider array; 'negative': rows reversed;
    'padded': rows ld_pad apart in a bigger buffer starting `offset` elements in (unaligned)."""
    val = rng.standard_normal((rows, cols)).astype(dt)
    if layout == "transposed":
        return np.ascontiguousarray(val.T), (lambda t: t.T)
    if layout == "sliced":
        big = np.zeros((rows, 2 * cols + 1), dt)
        big[:, 1::2] = val
        return big, (lambda t: t[:, 1::2])
    if layout == "negative":
        return np.ascontiguousarray(val[::-1]), (lambda t: t[::-1])
    if layout == "guarded":
        g = guarded((rows, cols), dt, before=bool(offset % 2))
        g[...] = val
        return g, (lambda t: t)
    if layout == "padded":
        ld = cols + ld_pad
        buf = np.zeros(offset + rows * ld + 1, dt)
        big = buf[offset:offset + rows * ld].reshape(rows, ld)
        big[:, :cols] = val
        return big, (lambda t: t[:, :cols])
    return val, (lambda t: t)


def _row_strided(x, name):
    """x for _C.gemm: rows may be strided, elements in a row contiguous: (array, transposed?)."""
    if x.shape[1] <= 1 or x.strides[1] == x.itemsize:
        if x.shape[0] <= 1 or x.strides[0] >= 0:
            return x, False
    if x.shape[0] <= 1 or x.strides[0] == x.itemsize:   # a transposed view: its transpose is row-strided
        if x.shape[1] <= 1 or x.strides[1] >= 0:
            return x.T, True
    return np.ascontiguousarray(x), False


def _act_np(kind, z):
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "relu":
            return np.where(z < 0, 0.0, z)
        if kind == "sigmoid":
            return 1.0 / (1.0 + np.exp(-z))
        if kind == "tanh":
            return np.tanh(z)
    return z


def run_gemm(case):
    lamina, F, _C = _lamina()
    dt, rng = _begin(case)
    M, N, K = case["M"], case["N"], case["K"]
    a_base, a_view = _operand(rng, M, K, case["a_layout"], dt, case["ld_pad"], case["offset"])
    A = a_view(a_base)
    if case["api"] == "linear":      # F.linear(x, w, b): w is (N, K)
        b_base, b_view = _operand(rng, N, K, case["b_layout"], dt, case["ld_pad"], (case["offset"] * 7) % 16)
        B = b_view(b_base).T
    else:
        b_base, b_view = _operand(rng, K, N, case["b_layout"], dt, case["ld_pad"], (case["offset"] * 7) % 16)
        B = b_view(b_base)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    absref = np.abs(A64) @ np.abs(B64)
    ref = A64 @ B64
    if case["api"] in ("matmul", "linear"):
        # the same non-contiguous views, made by lamina's view ops (their backward included)
        al = _leaf(lamina, a_base)
        wl = _leaf(lamina, b_base)
        bl_ = None
        if case["api"] == "linear":
            bias = rng.standard_normal(N).astype(dt) if case["bias"] != "none" else None
            bl_ = lamina.tensor(bias, requires_grad=True) if bias is not None else None
            y = F.linear(a_view(al), b_view(wl), bl_)
            if bias is not None:
                ref = ref + bias
                absref = absref + np.abs(bias)
        else:
            y = lamina.matmul(a_view(al), b_view(wl))
        check_bound(f"{case['api']} y", y.detach().numpy(), ref, absref, K + 1, dt, case)
        gy = rng.standard_normal((M, N)).astype(dt)
        (y * lamina.tensor(gy)).sum().backward()
        gy64 = gy.astype(np.float64)
        dA, dA_abs = gy64 @ B64.T, np.abs(gy64) @ np.abs(B64.T)
        dB, dB_abs = A64.T @ gy64, np.abs(A64.T) @ np.abs(gy64)
        ga = a_view(al.grad.numpy() if al.grad is not None else np.zeros(a_base.shape, dt))
        check_bound(f"{case['api']} dA", ga, dA, dA_abs, N, dt, case)
        gw = b_view(wl.grad.numpy() if wl.grad is not None else np.zeros(b_base.shape, dt))
        if case["api"] == "linear":
            check_bound("linear dW", gw, dB.T, dB_abs.T, M, dt, case)
            if bl_ is not None:
                gb = bl_.grad.numpy() if bl_.grad is not None else np.zeros(N, dt)
                check_bound("linear db", gb, gy64.sum(0), np.abs(gy64).sum(0), M, dt, case)
        else:
            check_bound("matmul dB", gw, dB, dB_abs, M, dt, case)
        # the gradient lands only on the viewed elements of the base
        for base, g, view in ((a_base, al.grad, a_view), (b_base, wl.grad, b_view)):
            if g is not None and g.numpy().size:
                mask = np.ones(base.shape, bool)
                view(mask)[...] = False
                assert not g.numpy()[mask].any(), f"gradient outside the view\ncase {case}"
        return
    # _C.gemm directly: c = act(alpha op(a) op(b) + beta c + bias)
    a_arr, ta = _row_strided(A, "a")
    b_arr, tb = _row_strided(B, "b")
    c_layout = "guarded" if case["ld_pad"] == 3 else "padded" if case["ld_pad"] else "contiguous"
    c_pad = case["ld_pad"]
    if c_layout == "padded" and case["seed"] % 3 == 0:    # C's rows a multiple of 4 KiB apart
        page = 4096 // np.dtype(dt).itemsize
        c_pad = (-N) % page or page
    c_base, c_view = _operand(rng, M, N, c_layout, dt, c_pad, case["offset"])
    c = c_view(c_base)
    c_before = c.astype(np.float64)
    outside = np.ones(c_base.shape, bool)
    c_view(outside)[...] = False
    c_base_before = c_base.copy()
    bias = None
    z = case["alpha"] * ref
    zabs = abs(case["alpha"]) * absref
    if case["beta"] != 0.0:
        z = z + case["beta"] * c_before
        zabs = zabs + abs(case["beta"]) * np.abs(c_before)
    if case["bias"] != "none":
        bias = rng.standard_normal(N if case["bias"] == "col" else M).astype(dt)
        bb = bias.astype(np.float64)
        z = z + (bb if case["bias"] == "col" else bb[:, None])
        zabs = zabs + np.abs(bb if case["bias"] == "col" else bb[:, None])
    _C.gemm(a_arr, b_arr, c, ta, tb, case["alpha"], case["beta"], bias, case["bias"] if bias is not None else "col",
            case["act"])
    assert np.array_equal(c_base[outside], c_base_before[outside]), f"gemm wrote outside c\ncase {case}"
    want = _act_np(case["act"], z)
    # activations are 1-Lipschitz (sigmoid 1/4): the bound carries, plus their own few ulps
    bound = zabs + (4 * np.abs(want) if case["act"] in ("sigmoid", "tanh") else 0)
    check_bound(f"gemm {case['act']}", c, want, bound, K + 3, dt, case)


def _ulps(got, want, dt):
    """|got - want| in units of the last place of want (in dt), NaN-aware (0 where both NaN)."""
    got, want = np.asarray(got, dt), np.asarray(want, dt)
    ity = np.int32 if dt == np.float32 else np.int64

    def ordered(a):
        i = a.view(ity).astype(np.int64)
        return np.where(i < 0, np.iinfo(ity).min - i, i)

    d = np.abs(ordered(got) - ordered(want)).astype(np.float64)
    both_nan = np.isnan(got) & np.isnan(want)
    one_nan = np.isnan(got) ^ np.isnan(want)
    return np.where(both_nan, 0.0, np.where(one_nan, np.inf, d))


def _act_reference(kind, x):
    """sigmoid / tanh in NumPy's long double (80-bit on x86: 64-bit mantissa, exponent to
    1e-4951), so float64's subnormal results (sigmoid(-710) = 4.5e-309) are right; PyTorch's
    float64 sigmoid returns 0 there."""
    xl = x.astype(np.longdouble)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if kind == "sigmoid":
            return np.longdouble(1) / (np.longdouble(1) + np.exp(-xl))
        return np.tanh(xl)


def run_act(case):
    lamina, F, _C = _lamina()
    torch = _torch()
    dt, rng = _begin(case)
    n, off, kind = case["n"], case["offset"], case["kind"]
    vals = rng.standard_normal(n) * case["spread"]
    special = SPECIAL32 if dt == np.float32 else SPECIAL64
    pick = rng.random(n) < case["special"]
    vals[pick] = rng.choice(special, size=int(pick.sum()))
    buf = np.zeros(n + off + 1, dt)
    with np.errstate(over="ignore"):
        x = buf[off:off + n]
        x[...] = vals.astype(dt)
    tfn = getattr(torch, kind)
    want = _act_reference(kind, x).astype(dt)   # in x87 extended precision, rounded once
    torch_err = _ulps(tfn(torch.tensor(x)).numpy(), want, dt)
    allowed = np.maximum(4.0, torch_err)
    # signed zeros: tanh(-0) = -0 (PyTorch and C), sigmoid(+-0) = 0.5
    outs = {}
    outs["op"] = getattr(lamina, kind)(lamina.tensor(x)).detach().numpy()
    y = np.zeros(n + off + 1, dt)[off:off + n]
    _C.act_forward(kind, x, y)
    outs["_C out of place, unaligned"] = y
    xi = x.copy() if off == 0 else buf.copy()[off:off + n]
    _C.act_forward(kind, xi, xi)
    outs["_C in place"] = xi
    for before in (False, True):      # x and y against guard pages: a tail read or write past them faults
        xg, yg = guarded((n,), dt, before=before), guarded((n,), dt, before=not before)
        xg[...] = x
        _C.act_forward(kind, xg, yg)
        outs[f"_C guarded ({'start' if before else 'end'})"] = yg.copy()
        _C.act_forward(kind, xg, xg)
        outs[f"_C in place guarded ({'start' if before else 'end'})"] = xg.copy()
    for where, got in outs.items():
        e = _ulps(got, want, dt)
        bad = ~(e <= allowed)
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise AssertionError(f"{kind} {where}: x={x[i]!r} got {got[i]!r} want {want[i]!r} ({e[i]:.0f} ulp, "
                                 f"PyTorch {torch_err[i]:.0f} ulp); {int(bad.sum())} bad\ncase {case}")
        sz = (want == 0)
        assert np.array_equal(np.signbit(got[sz]), np.signbit(want[sz])), f"{kind} {where}: sign of zero\ncase {case}"
    # backward, through autograd and _C.act_backward (reads y)
    xt = lamina.tensor(x, requires_grad=True)
    yl = getattr(lamina, kind)(xt)
    gy = rng.standard_normal(n).astype(dt)
    (yl * lamina.tensor(gy)).sum().backward()
    xt64 = torch.tensor(x.astype(np.float64), requires_grad=True)
    (tfn(xt64) * torch.tensor(gy.astype(np.float64))).sum().backward()
    gwant = xt64.grad.numpy()
    g = xt.grad.numpy() if n else np.zeros(0, dt)
    dx = np.zeros(n + off + 1, dt)[off:off + n]
    _C.act_backward(kind, None, y, gy, dx)
    yg, gyg, dxg = guarded((n,), dt), guarded((n,), dt, before=True), guarded((n,), dt)
    yg[...], gyg[...] = y, gy
    _C.act_backward(kind, None, yg, gyg, dxg)
    for where, got in (("autograd", g), ("_C.act_backward", dx), ("_C.act_backward guarded", dxg.copy())):
        got64 = got.astype(np.float64)
        # f'(x) from the float y: y's own rounding (y * (1 - y), 1 - y^2) makes the relative error
        # ~ ulp(y) / f'(x) where f' underflows toward 0; bound it by that, absolutely
        tol = 8 * np.finfo(dt).eps * (np.abs(gwant) + np.abs(gy)) + np.finfo(dt).tiny
        nan = np.isnan(gwant)
        odd = nan != np.isnan(got64)
        assert not odd.any(), f"{kind} grad {where}: NaN mismatch at x={x[odd][:3]}\ncase {case}"
        bad = ~nan & ~(np.abs(got64 - gwant) <= tol)
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise AssertionError(f"{kind} grad {where}: x={x[i]!r} got {got[i]!r} want {gwant[i]!r}\ncase {case}")


def run_threads(case):
    """Thread counts changed between calls, then two Python threads running conv and matmul at
    once: every result within the bound of its float64 reference."""
    lamina, F, _C = _lamina()
    torch = _torch()
    dt, rng = _begin(case, setup={"row_winograd": case["row_winograd"], "threads": 2})
    x = rng.standard_normal((case["N"], 6, 14, 14)).astype(dt)
    w = (rng.standard_normal((16, 6, 5, 5)) / 12).astype(dt)
    b = rng.standard_normal(16).astype(dt)
    A = rng.standard_normal((case["M"], case["K"])).astype(dt)
    B = rng.standard_normal((case["K"], 200)).astype(dt)
    tf = torch.nn.functional
    y_ref = tf.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                      torch.tensor(b, dtype=torch.float64)).numpy()
    y_abs = tf.conv2d(torch.tensor(np.abs(x), dtype=torch.float64), torch.tensor(np.abs(w), dtype=torch.float64),
                      torch.tensor(np.abs(b), dtype=torch.float64)).numpy()
    m_ref = A.astype(np.float64) @ B
    m_abs = np.abs(A.astype(np.float64)) @ np.abs(B)
    lx, lw, lb, lA, lB = (lamina.tensor(a) for a in (x, w, b, A, B))

    def conv():
        return F.conv2d(lx, lw, lb).detach().numpy()

    def mm():
        return lamina.matmul(lA, lB).detach().numpy()

    def block():
        return F.conv2d_relu_max_pool2d(lx, lw, lb).detach().numpy()

    blk_ref = tf.max_pool2d(tf.relu(torch.tensor(y_ref)), 2).numpy()
    blk_abs = tf.max_pool2d(torch.tensor(y_abs), 2).numpy()
    for t in case["sequence"]:
        lamina.set_num_threads(t)
        check_bound(f"conv at {t} threads", conv(), y_ref, y_abs, 151, dt, case)
        check_bound(f"matmul at {t} threads", mm(), m_ref, m_abs, case["K"], dt, case)
        check_bound(f"block at {t} threads", block(), blk_ref, blk_abs, 151, dt, case)
    lamina.set_num_threads(2)
    errors = []

    def worker(fns):
        try:
            for _ in range(case["rounds"]):
                for name, fn, ref, ab, L in fns:
                    check_bound(f"{name} (two Python threads)", fn(), ref, ab, L, dt, case)
        except BaseException as e:   # noqa: BLE001 - reported below
            errors.append(e)

    jobs = [[("conv", conv, y_ref, y_abs, 151), ("block", block, blk_ref, blk_abs, 151)],
            [("matmul", mm, m_ref, m_abs, case["K"]), ("conv", conv, y_ref, y_abs, 151)]]
    ts = [threading.Thread(target=worker, args=(j,)) for j in jobs]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


# ------------------------------------------------------------------ bad input
def _raises(fn, errtypes, words, what):
    try:
        fn()
    except errtypes as e:
        msg = str(e)
        for wd in words:
            assert wd in msg, f"{what}: message {msg!r} does not name {wd!r}"
        return
    except Exception as e:   # noqa: BLE001
        raise AssertionError(f"{what}: raised {type(e).__name__}: {e}, expected {errtypes}") from e
    raise AssertionError(f"{what}: no error raised")


def bad_input_cases():
    """(what, callable, exception types, words its message must hold)."""
    lamina, F, _C = _lamina()
    f32 = np.float32
    x = lamina.tensor(np.ones((2, 3, 8, 8), f32))
    w = lamina.tensor(np.ones((4, 3, 5, 5), f32))
    VE, TE = ValueError, TypeError
    c = [
        ("conv2d int input", lambda: F.conv2d(lamina.tensor(np.ones((2, 3, 8, 8), np.int64)), w), (TE,), ["input"]),
        ("conv2d weight f64 vs input f32", lambda: F.conv2d(x, lamina.tensor(np.ones((4, 3, 5, 5)))), (TE,),
         ["weight"]),
        ("conv2d bias f64", lambda: F.conv2d(x, w, lamina.tensor(np.ones(4))), (TE,), ["bias"]),
        ("conv2d bias shape", lambda: F.conv2d(x, w, lamina.tensor(np.ones(3, f32))), (VE,), ["bias"]),
        ("conv2d channel mismatch", lambda: F.conv2d(x, lamina.tensor(np.ones((4, 2, 5, 5), f32))), (VE,), ["weight"]),
        ("conv2d negative padding", lambda: F.conv2d(x, w, padding=-1), (VE,), ["padding"]),
        ("conv2d padding (1, -2)", lambda: F.conv2d(x, w, padding=(1, -2)), (VE,), ["padding"]),
        ("conv2d zero stride", lambda: F.conv2d(x, w, stride=0), (VE,), ["stride"]),
        ("conv2d negative stride", lambda: F.conv2d(x, w, stride=(1, -1)), (VE,), ["stride"]),
        ("conv2d zero dilation", lambda: F.conv2d(x, w, dilation=0), (VE,), ["dilation"]),
        ("conv2d groups 2 with C=3", lambda: F.conv2d(x, lamina.tensor(np.ones((4, 1, 5, 5), f32)), groups=2), (VE,),
         ["groups"]),
        ("conv2d groups 0", lambda: F.conv2d(x, w, groups=0), (VE,), ["groups"]),
        ("conv2d kernel larger than input", lambda: F.conv2d(lamina.tensor(np.ones((1, 3, 4, 4), f32)), w), (VE,), []),
        ("conv2d 3-D weight", lambda: F.conv2d(x, lamina.tensor(np.ones((4, 3, 5), f32))), (VE,), ["weight"]),
        ("conv2d 5-D input", lambda: F.conv2d(lamina.tensor(np.ones((1, 2, 3, 8, 8), f32)), w), (VE,), ["input"]),
        ("conv2d empty channel", lambda: F.conv2d(lamina.tensor(np.ones((2, 0, 8, 8), f32)),
                                                   lamina.tensor(np.ones((4, 0, 5, 5), f32))), (VE,), []),
        ("block conv output 1x1", lambda: F.conv2d_relu_max_pool2d(lamina.tensor(np.ones((1, 3, 5, 5), f32)), w), (VE,),
         ["input"]),
        ("block negative padding", lambda: F.conv2d_relu_max_pool2d(x, w, padding=-1), (VE,), ["padding"]),
        ("block int", lambda: F.conv2d_relu_max_pool2d(lamina.tensor(np.ones((2, 3, 8, 8), np.int32)), w), (TE,),
         ["input"]),
        ("matmul shape", lambda: lamina.matmul(lamina.tensor(np.ones((2, 3), f32)),
                                               lamina.tensor(np.ones((4, 2), f32))),
         (VE,), []),
        ("matmul dtype mix", lambda: lamina.matmul(lamina.tensor(np.ones((2, 3), f32)), lamina.tensor(np.ones((3, 2)))),
         (TE,), []),
        ("linear weight shape", lambda: F.linear(lamina.tensor(np.ones((2, 3), f32)),
                                                 lamina.tensor(np.ones((4, 5), f32))),
         (VE,), []),
        ("linear bias shape", lambda: F.linear(lamina.tensor(np.ones((2, 3), f32)), lamina.tensor(np.ones((4, 3), f32)),
                                               lamina.tensor(np.ones(5, f32))), (VE,), ["bias"]),
        ("_C.gemm c shape", lambda: _C.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), np.empty((2, 5), f32)), (VE,),
         ["c"]),
        ("_C.gemm dtype", lambda: _C.gemm(np.ones((2, 3), f32), np.ones((3, 4)), np.empty((2, 4), f32)), (TE, VE),
         ["b"]),
        ("_C.gemm column-strided a", lambda: _C.gemm(np.ones((3, 2), f32).T, np.ones((3, 4), f32),
                                                     np.empty((2, 4), f32)),
         (VE,), ["a"]),
        ("_C.gemm negative row stride a", lambda: _C.gemm(np.ones((3, 3), f32)[::-1], np.ones((3, 4), f32),
                                                          np.empty((3, 4), f32)), (VE,), ["a"]),
        ("_C.gemm c overlaps a", lambda: (lambda a: _C.gemm(a[:, :3], np.ones((3, 3), f32), a[:, 1:4]))(
            np.ones((3, 4), f32)), (VE,), ["c"]),
        ("_C.gemm read-only c", lambda: _C.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32),
                                                np.broadcast_to(np.zeros(4, f32), (2, 4))), (VE,), ["c"]),
        ("_C.gemm bias length", lambda: _C.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), np.empty((2, 4), f32),
                                                bias=np.ones(3, f32)), (VE,), ["bias"]),
        ("_C.gemm bad act", lambda: _C.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), np.empty((2, 4), f32),
                                            act="gelu"), (VE,), ["act"]),
        ("_C.conv2d_forward non-contiguous input", lambda: _C.conv2d_forward(
            np.ones((2, 3, 8, 16), f32)[..., ::2], np.ones((4, 3, 5, 5), f32), None, np.empty((2, 4, 4, 4), f32),
            (1, 1), (0, 0), (1, 1), 1), (VE,), ["input"]),
        ("_C.conv2d_forward out shape", lambda: _C.conv2d_forward(
            np.ones((2, 3, 8, 8), f32), np.ones((4, 3, 5, 5), f32), None, np.empty((2, 4, 4, 5), f32),
            (1, 1), (0, 0), (1, 1), 1), (VE,), ["out"]),
        ("_C.conv2d_forward negative padding", lambda: _C.conv2d_forward(
            np.ones((2, 3, 8, 8), f32), np.ones((4, 3, 5, 5), f32), None, np.empty((2, 4, 2, 2), f32),
            (1, 1), (-1, -1), (1, 1), 1), (VE,), ["padding"]),
        ("_C.conv2d_relu_max_pool2d_forward code dtype", lambda: _C.conv2d_relu_max_pool2d_forward(
            np.ones((2, 3, 8, 8), f32), np.ones((4, 3, 5, 5), f32), None, np.empty((2, 4, 2, 2), f32),
            np.empty((2, 4, 2, 2), np.int32), (1, 1), (0, 0), (1, 1), 1), (VE, TE), ["code"]),
        ("_C.act_forward shape", lambda: _C.act_forward("tanh", np.ones(5, f32), np.empty(4, f32)), (VE,), []),
        ("_C.act_forward dtype", lambda: _C.act_forward("sigmoid", np.ones(5, f32), np.empty(5)), (VE, TE), []),
        ("_C.act_forward kind", lambda: _C.act_forward("tanhh", np.ones(5, f32), np.empty(5, f32)), (VE,), ["kind"]),
        ("_C.act_forward int", lambda: _C.act_forward("tanh", np.ones(5, np.int32), np.empty(5, np.int32)), (VE, TE),
         []),
        ("row winograd 'yes'", lambda: _C._conv_set_row_winograd("yes"), (VE,), ["mode", "yes"]),
        ("row winograd ''", lambda: _C._conv_set_row_winograd(""), (VE,), ["mode"]),
        ("row winograd 'ON'", lambda: _C._conv_set_row_winograd("ON"), (VE,), ["mode"]),
        ("row winograd 1", lambda: _C._conv_set_row_winograd(1), (TE,), []),
        ("row winograd None", lambda: _C._conv_set_row_winograd(None), (TE,), []),
        ("conv algo 'fft'", lambda: _C._conv_set_algo("fft"), (VE,), ["algo", "fft"]),
        ("set_num_threads 0", lambda: lamina.set_num_threads(0), (VE,), []),
        ("set_num_threads -3", lambda: lamina.set_num_threads(-3), (VE,), []),
        ("set_isa 'sse9'", lambda: _bool_or_raise(_C.set_isa("sse9")), (VE,), []),
    ]
    return c


def _bool_or_raise(ok):
    if ok is False:
        raise ValueError("set_isa returned False")
    return ok


def check_bad_inputs():
    _setup({})
    failures = []
    for what, fn, errs, words in bad_input_cases():
        try:
            _raises(fn, errs, words, what)
        except AssertionError as e:
            failures.append(str(e))
    _reset()
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------ driver
RUNNERS = {"conv": run_conv, "block": run_block, "gemm": run_gemm, "act": run_act, "threads": run_threads}


def run_case(case):
    try:
        with np.errstate(invalid="ignore", over="ignore"):    # the non-finite cases' NaN sums
            RUNNERS[case["family"]](case)
    finally:
        _reset()


def run_one(seed):
    if seed < 0:
        check_bad_inputs()
        return None
    case = make_case(seed)
    run_case(case)
    return case


def _spawn(seed, timeout):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return spawn(__file__, seed, timeout, env,
                 describe=lambda s: f" case {make_case(s) if s >= 0 else 'bad input'}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_campaign_args(ap, default_seeds="0:60", default_timeout=120.0)
    ap.add_argument("--family", choices=sorted(set(FAMILIES)), help="only seeds of this family")
    ap.add_argument("--one", type=int, help="run this seed in this process (raises on a failure); -1: bad input")
    args = ap.parse_args(argv)
    if args.one is not None:
        print(run_one(args.one))
        return 0
    failures = []
    msg = _spawn(-1, args.timeout)
    if msg:
        failures.append(-1)
        print(msg, flush=True)
    ran, failed = campaign(args, lambda seed: _spawn(seed, args.timeout),
                           keep=lambda seed: not args.family or family_of(seed) == args.family)
    per_family = {}
    for seed in ran:
        per_family[family_of(seed)] = per_family.get(family_of(seed), 0) + 1
    failures += failed
    print(f"{len(ran)} cases ({per_family}) + the bad-input set, {len(failures)} failed: {failures}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
