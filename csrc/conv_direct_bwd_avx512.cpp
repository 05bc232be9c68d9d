// AVX-512F direct weight-gradient micro-kernels (contract in conv_direct_bwd.h): 32 zmm registers
// hold kb x tb accumulators, the tb tap inputs of a step and one dy vector.
#include "conv_direct_bwd.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include <algorithm>

#include "conv_direct_bwd_kernel.h"
#include "simd_transpose_avx512.h"

// GCC 12's shuffle and unpack intrinsics start from _mm512_undefined_ps(), which
// -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace lamina {
namespace {
template <class T> struct Z;
template <> struct Z<float> {
  using R = __m512;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, R x) { _mm512_storeu_ps(p, x); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R set1(float v) { return _mm512_set1_ps(v); }
  static float hsum(R x) { return _mm512_reduce_add_ps(x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static void pin(R& x) { __asm__("" : "+v"(x)); }
};
template <> struct Z<double> {
  using R = __m512d;
  static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void storeu(double* p, R x) { _mm512_storeu_pd(p, x); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
  static R sub(R a, R b) { return _mm512_sub_pd(a, b); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  static R set1(double v) { return _mm512_set1_pd(v); }
  static double hsum(R x) { return _mm512_reduce_add_pd(x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static void pin(R& x) { __asm__("" : "+v"(x)); }
};

constexpr int kKbMax = 8, kTbMax = 8;
// kb*tb accumulators + tb inputs + 1 dy vector <= 31 of the 32 registers (6 x 4, 8 x 3, 1 x 8).
int tb_for(int kb) { return std::min(kTbMax, 30 / (kb + 1)); }
template <class T>
conv_direct_bwd_detail::DwKernel<T> get(int kb, int tb) {
  static constexpr auto table = dw_table<Z, T, kTbMax>(std::make_index_sequence<kKbMax * kTbMax>());
  return table[size_t((kb - 1) * kTbMax + (tb - 1))];
}
using avx512::transpose16;
using avx512::transpose8;

void to_lanes_f32(const float* const* rows, int64_t n, float* dst) {
  for (int64_t w0 = 0; w0 < n; w0 += 16) {
    const int64_t m = std::min<int64_t>(16, n - w0);
    const __mmask16 mask = __mmask16((1u << m) - 1);
    __m512 r[16];
    for (int i = 0; i < 16; ++i) r[i] = rows[i] ? _mm512_maskz_loadu_ps(mask, rows[i] + w0) : _mm512_setzero_ps();
    transpose16(r);
    for (int64_t j = 0; j < m; ++j) _mm512_storeu_ps(dst + (w0 + j) * 16, r[j]);
  }
}
void to_lanes_f64(const double* const* rows, int64_t n, double* dst) {
  for (int64_t w0 = 0; w0 < n; w0 += 8) {
    const int64_t m = std::min<int64_t>(8, n - w0);
    const __mmask8 mask = __mmask8((1u << m) - 1);
    __m512d r[8];
    for (int i = 0; i < 8; ++i) r[i] = rows[i] ? _mm512_maskz_loadu_pd(mask, rows[i] + w0) : _mm512_setzero_pd();
    transpose8(r);
    for (int64_t j = 0; j < m; ++j) _mm512_storeu_pd(dst + (w0 + j) * 8, r[j]);
  }
}
// The inverse: rows[i][w] = src[w*16 + i] for w < n (rows[i] null: skipped).
void from_lanes_f32(const float* src, int64_t n, float* const* rows) {
  for (int64_t w0 = 0; w0 < n; w0 += 16) {
    const int64_t m = std::min<int64_t>(16, n - w0);
    const __mmask16 mask = __mmask16((1u << m) - 1);
    __m512 r[16];
    for (int64_t j = 0; j < 16; ++j) r[j] = j < m ? _mm512_loadu_ps(src + (w0 + j) * 16) : _mm512_setzero_ps();
    transpose16(r);
    for (int i = 0; i < 16; ++i)
      if (rows[i]) _mm512_mask_storeu_ps(rows[i] + w0, mask, r[i]);
  }
}
void from_lanes_f64(const double* src, int64_t n, double* const* rows) {
  for (int64_t w0 = 0; w0 < n; w0 += 8) {
    const int64_t m = std::min<int64_t>(8, n - w0);
    const __mmask8 mask = __mmask8((1u << m) - 1);
    __m512d r[8];
    for (int64_t j = 0; j < 8; ++j) r[j] = j < m ? _mm512_loadu_pd(src + (w0 + j) * 8) : _mm512_setzero_pd();
    transpose8(r);
    for (int i = 0; i < 8; ++i)
      if (rows[i]) _mm512_mask_storeu_pd(rows[i] + w0, mask, r[i]);
  }
}
template <class T> struct ToLanes;
template <> struct ToLanes<float> { static constexpr auto fn = to_lanes_f32; static constexpr auto back = from_lanes_f32; };
template <> struct ToLanes<double> { static constexpr auto fn = to_lanes_f64; static constexpr auto back = from_lanes_f64; };
}  // namespace

namespace conv_direct_bwd_detail {
template <class T>
DwKernels<T> dw_kernels_avx512() {
  DwKernels<T> k;
  k.lanes = Z<T>::W;
  k.kb_max = kKbMax;
  k.tb_for = tb_for;
  k.get = get<T>;
  k.to_lanes = ToLanes<T>::fn;
  k.from_lanes = ToLanes<T>::back;
  k.wino_dy = dw_wino_dy<Z, T>;
  k.lane_sums = dw_lane_sums<Z, T>;
  return k;
}
template DwKernels<float> dw_kernels_avx512<float>();
template DwKernels<double> dw_kernels_avx512<double>();
}  // namespace conv_direct_bwd_detail
}  // namespace lamina
#endif
