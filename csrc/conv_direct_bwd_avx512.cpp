// AVX-512F direct weight-gradient micro-kernels (contract in conv_direct_bwd.h): 32 zmm registers
// hold kb x tb accumulators, the tb tap inputs of a step and one dy vector.
#include "conv_direct_bwd.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include <algorithm>

#include "conv_direct_bwd_kernel.h"

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
// 16 x 16 float transpose in registers: out[w] lane i = r[i] lane w. Four rounds of shuffles:
// pairs of rows interleaved, 4-row columns gathered per 128-bit lane, then 128-bit lanes moved
// across the four 4-row groups.
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  // u[4k+m], 128-bit lane j = column 4j+m of rows 4k..4k+3
  for (int k = 0; k < 4; ++k) {
    u[4 * k + 0] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512 s0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), s1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
    const __m512 s2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88), s3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
    r[m] = _mm512_shuffle_f32x4(s0, s2, 0x88);       // column m
    r[8 + m] = _mm512_shuffle_f32x4(s0, s2, 0xDD);   // column 8+m
    r[4 + m] = _mm512_shuffle_f32x4(s1, s3, 0x88);   // column 4+m
    r[12 + m] = _mm512_shuffle_f32x4(s1, s3, 0xDD);  // column 12+m
  }
}
// 8 x 8 double transpose, the same scheme with 2-row groups.
inline void transpose8(__m512d r[8]) {
  __m512d t[8];
  for (int k = 0; k < 4; ++k) {  // t[2k+m], 128-bit lane j = column 2j+m of rows 2k, 2k+1
    t[2 * k] = _mm512_unpacklo_pd(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_pd(r[2 * k], r[2 * k + 1]);
  }
  for (int m = 0; m < 2; ++m) {
    const __m512d s0 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0x88), s1 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0xDD);
    const __m512d s2 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0x88), s3 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0xDD);
    r[m] = _mm512_shuffle_f64x2(s0, s2, 0x88);      // column m
    r[4 + m] = _mm512_shuffle_f64x2(s0, s2, 0xDD);  // column 4+m
    r[2 + m] = _mm512_shuffle_f64x2(s1, s3, 0x88);  // column 2+m
    r[6 + m] = _mm512_shuffle_f64x2(s1, s3, 0xDD);  // column 6+m
  }
}

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
  return k;
}
template DwKernels<float> dw_kernels_avx512<float>();
template DwKernels<double> dw_kernels_avx512<double>();
}  // namespace conv_direct_bwd_detail
}  // namespace lamina
#endif
