// Python bindings for the GEMM family: _C.gemm, _C.gemm_batched, _C.gemm_reference.
// Every argument is checked here (dtype, ndim, shapes that must agree, row-contiguity,
// writeability, overlap) so the kernel only ever sees valid pointers and leading dimensions.
#include <algorithm>
#include <string>

#include "common.h"
#include "cpu.h"
#include "gemm.h"
#include "thread_team.h"

namespace py = pybind11;
using namespace lamina_py;

namespace {

// A 2-D operand whose rows may be strided (leading dimension = strides[0] / itemsize) but
// whose elements within a row are contiguous.
struct Mat2 {
  const char* lo;   // first byte the matrix touches
  const char* hi;   // one past the last byte it touches
  int64_t rows, cols, ld;
};

Mat2 view_2d(const py::array& x, const char* name, bool is_output) {
  check_ndim(x, name, 2);
  const int64_t rows = x.shape(0), cols = x.shape(1), item = x.itemsize();
  const int64_t s0 = x.strides(0), s1 = x.strides(1);
  if (rows == 0 || cols == 0) {  // empty: numpy may report any strides; nothing is touched
    const char* p = static_cast<const char*>(x.data());
    return {p, p, rows, cols, std::max<int64_t>(cols, 1)};
  }
  if (cols > 1 && s1 != item)
    value_error(name, ": expected the last stride to equal the itemsize (", item, " bytes), got ", s1,
                "; rows may be strided but each row must be contiguous (use numpy.ascontiguousarray)");
  int64_t ld = cols;
  if (rows > 1) {
    if (s0 < 0 || s0 % item != 0)
      value_error(name, ": expected a non-negative row stride that is a multiple of the itemsize (",
                  item, " bytes), got ", s0);
    ld = s0 / item;
    if (is_output && ld < cols)
      value_error(name, ": expected rows that do not overlap (row stride >= ", cols * item,
                  " bytes), got ", s0);
  }
  const char* lo = static_cast<const char*>(x.data());
  const int64_t span = (rows && cols) ? ((rows - 1) * ld + cols) * item : 0;
  return {lo, lo + span, rows, cols, ld};
}

void check_disjoint(const Mat2& out, const char* on, const Mat2& in, const char* in_name) {
  if (out.hi > out.lo && in.hi > in.lo && out.lo < in.hi && in.lo < out.hi)
    value_error(on, ": output must not overlap input ", in_name);
}

lamina::Act parse_act(const std::string& s) {
  if (s == "identity") return lamina::Act::identity;
  if (s == "relu") return lamina::Act::relu;
  if (s == "sigmoid") return lamina::Act::sigmoid;
  if (s == "tanh") return lamina::Act::tanh;
  value_error("act: expected one of 'identity', 'relu', 'sigmoid', 'tanh', got '", s, "'");
}

// Shared by gemm and gemm_reference: validates, then calls fn(...) with the GIL released.
template <bool kReference>
void gemm_py(const py::array& a, const py::array& b, const py::array& c, bool trans_a,
             bool trans_b, double alpha, double beta, const py::object& bias,
             const std::string& bias_axis, const std::string& act_name) {
  const lamina::Act act = parse_act(act_name);
  if (bias_axis != "col" && bias_axis != "row")
    value_error("bias_axis: expected 'col' (bias of length N) or 'row' (length M), got '", bias_axis, "'");
  dispatch_float(a, "a", [&](auto tag) {
    using T = decltype(tag);
    check_same_dtype(a, "a", b, "b");
    check_same_dtype(a, "a", c, "c");
    const Mat2 A = view_2d(a, "a", false), B = view_2d(b, "b", false), C = view_2d(c, "c", true);
    const int64_t M = trans_a ? A.cols : A.rows, K = trans_a ? A.rows : A.cols;
    const int64_t Kb = trans_b ? B.cols : B.rows, N = trans_b ? B.rows : B.cols;
    if (Kb != K) {
      if (trans_b)
        value_error("b: expected shape (*, ", K, ") (trans_b=True) to match a's K=", K, ", got ", shape_str(b));
      value_error("b: expected shape (", K, ", *) to match a's K=", K, ", got ", shape_str(b));
    }
    if (C.rows != M || C.cols != N)
      value_error("c: expected shape (", M, ", ", N, ") for op(a) ", M, "x", K, " @ op(b) ", K, "x", N,
                  ", got ", shape_str(c));
    if (!c.writeable()) value_error("c: expected a writeable array");
    check_disjoint(C, "c", A, "a");
    check_disjoint(C, "c", B, "b");
    lamina::Epilogue<T> ep;
    ep.act = act;
    py::array bias_arr;
    if (!bias.is_none()) {
      if (!py::isinstance<py::array>(bias))
        type_error("bias: expected a numpy array or None, got ", py::str(py::type::handle_of(bias).attr("__name__")).cast<std::string>());
      bias_arr = bias.cast<py::array>();
      check_ndim(bias_arr, "bias", 1);
      ep.bias = data_of<T>(bias_arr, "bias");
      const bool per_row = bias_axis == "row";
      ep.bias_axis = per_row ? lamina::BiasAxis::per_row : lamina::BiasAxis::per_col;
      check_shape(bias_arr, "bias", {per_row ? M : N});
      const Mat2 bv{static_cast<const char*>(bias_arr.data()),
                    static_cast<const char*>(bias_arr.data()) + bias_arr.nbytes(), 1, 0, 0};
      check_disjoint(C, "c", bv, "bias");
    }
    const lamina::Epilogue<T>* e =
        (ep.bias_axis != lamina::BiasAxis::none || act != lamina::Act::identity) ? &ep : nullptr;
    const T* pa = reinterpret_cast<const T*>(A.lo);
    const T* pb = reinterpret_cast<const T*>(B.lo);
    T* pc = reinterpret_cast<T*>(const_cast<char*>(C.lo));
    py::gil_scoped_release nogil;
    if (kReference)
      lamina::gemm_reference<T>(trans_a, trans_b, M, N, K, T(alpha), pa, A.ld, pb, B.ld, T(beta), pc, C.ld, e);
    else
      lamina::gemm<T>(trans_a, trans_b, M, N, K, T(alpha), pa, A.ld, pb, B.ld, T(beta), pc, C.ld, e);
  });
}

void gemm_batched_py(const py::array& a, const py::array& b, const py::array& c, bool trans_a,
                     bool trans_b, double alpha, double beta) {
  dispatch_float(a, "a", [&](auto tag) {
    using T = decltype(tag);
    check_same_dtype(a, "a", b, "b");
    check_same_dtype(a, "a", c, "c");
    check_ndim(a, "a", 3);
    check_ndim(b, "b", 3);
    check_ndim(c, "c", 3);
    const int64_t batch = a.shape(0);
    const int64_t M = trans_a ? a.shape(2) : a.shape(1), K = trans_a ? a.shape(1) : a.shape(2);
    const int64_t N = trans_b ? b.shape(1) : b.shape(2);
    if (trans_b) check_shape(b, "b", {batch, N, K});
    else check_shape(b, "b", {batch, K, N});
    check_shape(c, "c", {batch, M, N});
    const T* pa = data_of<T>(a, "a");
    const T* pb = data_of<T>(b, "b");
    T* pc = data_of<T>(c, "c", true);
    check_no_alias(c, "c", a, "a");
    check_no_alias(c, "c", b, "b");
    const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
    py::gil_scoped_release nogil;
    lamina::gemm_strided_batched<T>(trans_a, trans_b, M, N, K, T(alpha), pa, lda, M * K, pb, ldb,
                                    K * N, T(beta), pc, N, M * N, batch);
  });
}

const char* kGemmDoc = R"(gemm(a, b, c, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, bias=None, bias_axis="col", act="identity") -> None

c = act(alpha * op(a) @ op(b) + beta * c + bias), written into c in place.
a: (M, K), or (K, M) if trans_a; b: (K, N), or (N, K) if trans_b; c: (M, N); all float32 or all
float64. Rows may be strided but each row must be contiguous. beta=0 ignores c's old contents.
bias: 1-D of length N (bias_axis="col") or M ("row"). act: identity, relu, sigmoid, tanh.

>>> import numpy as np; from lamina import _C
>>> a = np.ones((2, 3), np.float32); b = np.ones((3, 4), np.float32); c = np.empty((2, 4), np.float32)
>>> _C.gemm(a, b, c); float(c[0, 0])
3.0
)";

py::dict blocking_dict(const lamina::GemmBlocking& b) {
  py::dict d;
  d["kernel"] = std::string(b.kernel);
  d["MR"] = b.mr;
  d["NR"] = b.nr;
  d["KC"] = b.kc;
  d["KC_max"] = b.kc_max;
  d["MC"] = b.mc;
  d["NC"] = b.nc;
  d["b_panel_bytes"] = b.b_panel_bytes;
  d["a_block_bytes"] = b.a_block_bytes;
  d["b_block_bytes"] = b.b_block_bytes;
  d["k_blocks_outside"] = b.k_blocks_outside;
  return d;
}

py::dict cpu_info_dict() {
  const lamina::CpuInfo& info = lamina::cpu_info();
  py::dict caches;
  caches["l1d"] = info.caches.l1d;
  caches["l2"] = info.caches.l2;
  caches["l3"] = info.caches.l3;
  caches["line"] = info.caches.line;
  caches["source"] = std::string(info.caches.source);
  py::dict d;
  d["vendor"] = std::string(info.vendor);
  d["model"] = std::string(info.model);
  d["isa"] = std::string(lamina::isa_name(lamina::active_isa()));
  py::list supported;
  supported.append(lamina::isa_name(lamina::Isa::portable));
  if (lamina::cpu_supports_avx2_fma()) supported.append(lamina::isa_name(lamina::Isa::avx2));
  if (lamina::cpu_supports_avx512()) supported.append(lamina::isa_name(lamina::Isa::avx512));
  d["isa_supported"] = supported;
  d["amx_tile"] = info.amx_tile;
  d["avx512_bf16"] = info.avx512_bf16;
  d["gemm_amx"] = lamina::gemm_amx_available();  // float32 GEMM may run on AMX tiles
  d["family"] = info.family;
  d["model_number"] = info.model_number;
  // derived from vendor / family for the active ISA's vectors (see cpu.h), not measured
  d["fma_f32_flops_per_cycle"] = lamina::fma_f32_flops_per_cycle(lamina::active_isa());
  d["caches"] = caches;
  d["num_threads"] = lamina::get_num_threads();
  py::dict gemm;  // the large-square blocking, the one quoted beside peak figures
  gemm["float32"] = blocking_dict(lamina::gemm_blocking<float>(1024, 1024, 1024));
  gemm["float64"] = blocking_dict(lamina::gemm_blocking<double>(1024, 1024, 1024));
  d["gemm_blocking"] = gemm;
  return d;
}

const char* kGemmBlockingDoc = R"(gemm_blocking(m=1024, n=1024, k=1024, dtype="float32", trans_a=False) -> dict

The blocking gemm uses for an m x n x k product on this CPU under the active ISA: the
micro-kernel (name, MR x NR register tile) and the cache blocks KC (K block, from L1d), MC (rows
of A per task, from L2) and NC (columns of the packed B panel, from the L3 share), derived at run
time from the cache sizes the CPU reports.

>>> from lamina import _C
>>> b = _C.gemm_blocking(256, 256, 256); b["KC"] <= b["KC_max"] and b["MC"] % b["MR"] == 0
True
)";

const char* kCpuInfoDoc = R"(cpu_info() -> dict

What the CPU reports, read at run time: vendor, model (brand string), the active ISA path and
the ones the CPU supports, cache sizes in bytes (l1d, l2, l3, line, and where they came from:
CPUID leaf 4 / 0x8000001D, sysconf or sysfs), AMX / AVX512-BF16 presence, the thread budget,
and the GEMM blocking chosen for a large square (per dtype).

>>> from lamina import _C
>>> info = _C.cpu_info(); info["isa"] in info["isa_supported"]
True
)";

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm_py<false>, kGemmDoc, py::arg("a"), py::arg("b"), py::arg("c"),
        py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0,
        py::arg("beta") = 0.0, py::arg("bias") = py::none(), py::arg("bias_axis") = "col",
        py::arg("act") = "identity");
  m.def("gemm_reference", &gemm_py<true>,
        "Same as gemm, computed by the naive triple loop (the definition, for tests).", py::arg("a"),
        py::arg("b"), py::arg("c"), py::arg("trans_a") = false, py::arg("trans_b") = false,
        py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("bias") = py::none(),
        py::arg("bias_axis") = "col", py::arg("act") = "identity");
  m.def("gemm_batched", &gemm_batched_py,
        "gemm_batched(a, b, c, trans_a=False, trans_b=False, alpha=1.0, beta=0.0): for each i, "
        "c[i] = alpha * op(a[i]) @ op(b[i]) + beta * c[i]; 3-D C-contiguous arrays, batch first.",
        py::arg("a"), py::arg("b"), py::arg("c"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0);
  m.def("_gemm_set_path_override", [](int pack_a, int kernel, int pack_b, bool load_backoff,
                                       int kc, int mc, bool ksplit, int rows_first,
                                       int k_blocks_outside, int pack_b_near, int c_scratch,
                                       int c_align, int amx) {
    lamina::gemm_set_path_override({pack_a, kernel, pack_b, load_backoff ? 1 : 0, 1, kc, mc,
                                    ksplit ? 1 : 0, rows_first, k_blocks_outside, pack_b_near,
                                    c_scratch, c_align, amx});
  }, py::arg("pack_a") = -1, py::arg("kernel") = -1, py::arg("pack_b") = -1,
        py::arg("load_backoff") = true, py::arg("kc") = 0, py::arg("mc") = 0, py::arg("ksplit") = true,
        py::arg("rows_first") = -1, py::arg("k_blocks_outside") = -1, py::arg("pack_b_near") = -1, py::arg("c_scratch") = -1,
        py::arg("c_align") = -1, py::arg("amx") = -1,
        "Testing/tuning hook: force packing of A / B (1/0), the micro-kernel (index < _gemm_kernel_count()) and the K / M blocks (kc, mc > 0); -1 / 0 = auto; ksplit=False keeps a long-K small-C product on the tiled path; rows_first=1 / 0 splits C into tasks by rows / columns first; k_blocks_outside=1 / 0 forces the BLIS loop order (a KC x NC block of B per K block) / full-K tasks; pack_b_near=1 / 0 forces each task to pack B one micro-panel at a time right before use / not; c_scratch=1 / 0 forces each task to sum its C block over the K blocks in a scratch buffer with a padded row stride (then copied to C) / in C itself; c_align=1 / 0 forces / forbids computing the columns of C before its first 64-byte boundary as a strip of their own, so the other tiles' rows start on a cache line; amx=1 / 0 forces / forbids the AMX float32 path (where the CPU and OS allow it). "
        "load_backoff=False keeps 2 threads even after slow joins.");
  m.def("_gemm_kernel_name", [](int64_t n, const std::string& dtype, int64_t m) {
    if (dtype == "float32") return std::string(lamina::gemm_kernel_name<float>(m, n));
    if (dtype == "float64") return std::string(lamina::gemm_kernel_name<double>(m, n));
    value_error("dtype: expected 'float32' or 'float64', got '", dtype, "'");
  }, py::arg("n"), py::arg("dtype") = "float32", py::arg("m") = 256,
        "The micro-kernel gemm uses for an m x n result.");
  m.def("fma_peak_gflops", [](double seconds, const std::string& isa) {
    if (!(seconds > 0 && seconds <= 60))
      value_error("seconds: expected a number in (0, 60], got ", seconds);
    lamina::Isa which = lamina::active_isa();
    if (isa == "avx2") which = lamina::Isa::avx2;
    else if (isa == "avx512") which = lamina::Isa::avx512;
    else if (!isa.empty())
      value_error("isa: expected '', 'avx2' or 'avx512', got '", isa, "'");
    py::gil_scoped_release nogil;
    return lamina::fma_peak_gflops(seconds, which);
  }, py::arg("seconds") = 0.2, py::arg("isa") = "",
        "This core's measured float32 FMA limit in GFLOP/s (FMA chains of the active ISA's "
        "widest vectors: zmm on the avx512 path, ymm on avx2; no memory traffic; best of ~1 ms "
        "runs): the yardstick for single-thread GEMM efficiency. 0.0 without AVX2. isa='avx2' / "
        "'avx512' probes those vectors instead (0.0 where the CPU lacks them): zmm / ymm ~ 1 "
        "means double-pumped zmm FMAs (Zen 4), ~2 two 512-bit FMA pipes.");
  m.def("_gemm_load_stats", [](bool reset) {
    const lamina::TeamLoadStats s = lamina::team_load_stats(reset);
    py::dict d;
    d["parallel_regions"] = s.parallel_regions;
    d["slow_joins"] = s.slow_joins;
    d["backoffs"] = s.backoffs;
    d["backoff_single_calls"] = s.backoff_single_calls;
    d["worker_starts"] = s.worker_starts;
    d["worker_late_us_mean"] = s.worker_starts ? 1e-3 * double(s.worker_late_ns) / double(s.worker_starts) : 0.0;
    d["worker_late_over_20us"] = s.worker_late_over_20us;
    d["master_work_us"] = 1e-3 * double(s.master_work_ns);
    d["join_wait_us"] = 1e-3 * double(s.join_wait_ns);
    return d;
  }, py::arg("reset") = false,
        "Diagnostics of the thread team's load-aware threading (every kernel family) since the "
        "last reset: parallel regions, joins that waited on a late thread, backoffs to one "
        "thread, and calls a backoff kept on one thread.");
  m.def("_gemm_kernel_count", [](const std::string& dtype) {
    if (dtype == "float32") return lamina::gemm_kernel_count<float>();
    if (dtype == "float64") return lamina::gemm_kernel_count<double>();
    value_error("dtype: expected 'float32' or 'float64', got '", dtype, "'");
  }, py::arg("dtype") = "float32", "How many micro-kernels the active ISA offers.");
  m.def("gemm_blocking", [](int64_t m_, int64_t n, int64_t k, const std::string& dtype, bool trans_a) {
    if (m_ < 0 || n < 0 || k < 0)
      value_error("m, n, k: expected sizes >= 0, got (", m_, ", ", n, ", ", k, ")");
    if (dtype != "float32" && dtype != "float64")
      value_error("dtype: expected 'float32' or 'float64', got '", dtype, "'");
    return blocking_dict(dtype == "float32" ? lamina::gemm_blocking<float>(m_, n, k, trans_a)
                                            : lamina::gemm_blocking<double>(m_, n, k, trans_a));
  }, py::arg("m") = 1024, py::arg("n") = 1024, py::arg("k") = 1024, py::arg("dtype") = "float32",
        py::arg("trans_a") = false, kGemmBlockingDoc);
  m.def("cpu_info", &cpu_info_dict, kCpuInfoDoc);
}
