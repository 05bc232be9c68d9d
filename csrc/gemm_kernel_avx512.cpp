// AVX-512F GEMM micro-kernels (contract in gemm_kernel.h). Compiled with -mavx512f -mfma;
// gemm.cpp calls these only when active_isa() == Isa::avx512.
//
// Why a third ISA when the FMA peak per cycle is the same as AVX2 on a core that splits zmm
// operations in two (Zen 4): 32 registers hold a 12 x 32 f32 tile (24 accumulators) instead
// of 6 x 16, so each loaded B vector and each broadcast A value feed twice as many FMAs --
// half the loads and half the instructions per flop, which is what keeps both cores at their
// FMA limit when they share the L2/L3 traffic of one GEMM. Edges use mask registers.
#include "gemm_kernel.h"

#if defined(LAMINA_X86)
// Pressure-aware scheduling before register allocation: without it GCC 12 spills one of the
// two B vectors of the 12 x 32 tile to the stack on every k step (24 accumulators + 2 B + 1
// broadcast fit in the 32 zmm registers, but the default schedule hoists the broadcasts).
#pragma GCC optimize("schedule-insns", "sched-pressure")
#pragma GCC target("tune=skylake-avx512")
// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_ps(), which
// -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm_ukernel.h"
#include "simd_transpose_avx512.h"

namespace lamina {
namespace {

// One zmm register's worth of T, so one template serves float and double.
template <class T> struct Z;
template <> struct Z<float> {
  using R = __m512;
  using M = __mmask16;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R bcast(const float* p) { return _mm512_set1_ps(*p); }  // vbroadcastss zmm, m32
  static R loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, R x) { _mm512_storeu_ps(p, x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static M mask(int64_t lanes) { return M((1u << lanes) - 1u); }  // 0 < lanes < 16
  static R maskload(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static void maskstore(float* p, M m, R x) { _mm512_mask_storeu_ps(p, m, x); }
  static void store_first(float* p, int64_t, M m, R x) { maskstore(p, m, x); }
};
template <> struct Z<double> {
  using R = __m512d;
  using M = __mmask8;
  static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R set1(double x) { return _mm512_set1_pd(x); }
  static R bcast(const double* p) { return _mm512_set1_pd(*p); }
  static R loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void storeu(double* p, R x) { _mm512_storeu_pd(p, x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  static M mask(int64_t lanes) { return M((1u << lanes) - 1u); }  // 0 < lanes < 8
  static R maskload(const double* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static void maskstore(double* p, M m, R x) { _mm512_mask_storeu_pd(p, m, x); }
  static void store_first(double* p, int64_t, M m, R x) { maskstore(p, m, x); }
};

LAMINA_UKERNEL(Z, f32_12x32, float, 12, 2)
LAMINA_UKERNEL(Z, f32_8x32, float, 8, 2)
LAMINA_UKERNEL(Z, f32_24x16, float, 24, 1)
LAMINA_UKERNEL(Z, f64_12x16, double, 12, 2)
LAMINA_UKERNEL(Z, f64_8x16, double, 8, 2)
LAMINA_UKERNEL(Z, f64_24x8, double, 24, 1)
// half-width siblings for a ragged last column panel (GemmKernel::half_*)
LAMINA_UKERNEL(Z, f32_12x16, float, 12, 1)
LAMINA_UKERNEL(Z, f32_8x16, float, 8, 1)
LAMINA_UKERNEL(Z, f64_12x8, double, 12, 1)
LAMINA_UKERNEL(Z, f64_8x8, double, 8, 1)
#undef LAMINA_UKERNEL

}  // namespace

// mc: the 32-wide (16 for double) tiles run best with a 96 KiB A block (measured 1024^3, 2
// threads: 0.92 -> 0.96x OpenBLAS; f64 2048^3 0.80 -> 0.88x), the 24-row ones with 144 KiB.
// All of them read a transposed A in place: the MR values of one k lie on 1-2 whole lines
// (measured f32 400x256x120 TN 0.87 -> 1.04x, f64 784x256x300 1.03 -> 1.08x OpenBLAS).
template <> GemmKernel<float> gemm_kernel_avx512<float>(int variant) {
  using K = GemmKernel<float>;
  switch (variant) {
    case 1: return K{8, 32, f32_8x32_packed, f32_8x32_strided, "avx512 8x32 f32", 96, true}
                .with_half(f32_8x16_packed, f32_8x16_strided);
    case 2: return K{24, 16, f32_24x16_packed, f32_24x16_strided, "avx512 24x16 f32", 144, true};
    default: return K{12, 32, f32_12x32_packed, f32_12x32_strided, "avx512 12x32 f32", 96, true}
                .with_half(f32_12x16_packed, f32_12x16_strided);
  }
}
template <> GemmKernel<double> gemm_kernel_avx512<double>(int variant) {
  using K = GemmKernel<double>;
  switch (variant) {
    case 1: return K{8, 16, f64_8x16_packed, f64_8x16_strided, "avx512 8x16 f64", 48, true}
                .with_half(f64_8x8_packed, f64_8x8_strided);
    case 2: return K{24, 8, f64_24x8_packed, f64_24x8_strided, "avx512 24x8 f64", 72, true};
    default: return K{12, 16, f64_12x16_packed, f64_12x16_strided, "avx512 12x16 f64", 48, true}
                .with_half(f64_12x8_packed, f64_12x8_strided);
  }
}

// W lines of K contiguous values (a transposed B's NR columns, lines nv.. zero) into a
// k-major panel, one L x L register transpose per L-value chunk of k (L = lanes), each
// transposed row stored as one whole 64-byte line of the 64-byte-aligned panel. The ragged
// end of K is read with masked loads, so nothing past the matrix is touched.
template <class T, class R, class Mask, class Load, class Transpose>
static void pack_trans_lines(int W, int64_t K, int64_t nv, const T* src, int64_t ld, T* dst,
                             Load maskload, Transpose transpose) {
  constexpr int L = 64 / sizeof(T);
  for (int64_t k0 = 0; k0 < K; k0 += L) {
    const int kn = int(std::min<int64_t>(L, K - k0));
    const Mask m = Mask(kn == L ? ~0u : (1u << kn) - 1u);
    for (int h = 0; h < W; h += L) {
      R r[L];
      for (int i = 0; i < L; ++i)
        r[i] = h + i < nv ? maskload(m, src + (h + i) * ld + k0) : R{};
      transpose(r);
      for (int i = 0; i < kn; ++i) std::memcpy(dst + (k0 + i) * W + h, &r[i], sizeof(R));
    }
  }
}

void pack_rows_trans_avx512(int W, int64_t K, int64_t nv, const float* src, int64_t ld, float* dst) {
  pack_trans_lines<float, __m512, __mmask16>(
      W, K, nv, src, ld, dst, [](__mmask16 m, const float* p) { return _mm512_maskz_loadu_ps(m, p); },
      [](__m512* r) { avx512::transpose16(r); });
}
void pack_rows_trans_avx512(int W, int64_t K, int64_t nv, const double* src, int64_t ld, double* dst) {
  pack_trans_lines<double, __m512d, __mmask8>(
      W, K, nv, src, ld, dst, [](__mmask8 m, const double* p) { return _mm512_maskz_loadu_pd(m, p); },
      [](__m512d* r) { avx512::transpose8(r); });
}

// 24 independent zmm FMA chains for `iters` rounds (no memory traffic): the AVX-512 yardstick.
double fma_peak_probe_avx512(int64_t iters, float* sink) {
  __m512 acc[24];
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(float(i));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_cvtss_f32(s);
  return double(iters) * 24 * 16 * 2;
}

}  // namespace lamina
#endif  // LAMINA_X86
