// AVX2 direct weight-gradient micro-kernels (contract in conv_direct_bwd.h): 16 ymm registers
// hold kb x tb accumulators, the tb tap inputs of a step and one dy vector.
#include "conv_direct_bwd.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include <algorithm>

#include "conv_direct_bwd_kernel.h"
#include "simd_transpose_avx2.h"

namespace lamina {
namespace {
template <class T> struct Y;
template <> struct Y<float> {
  using R = __m256;
  static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, R x) { _mm256_storeu_ps(p, x); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R set1(float v) { return _mm256_set1_ps(v); }
  static float hsum(R x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
  }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static void pin(R& x) { __asm__("" : "+v"(x)); }
};
template <> struct Y<double> {
  using R = __m256d;
  static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void storeu(double* p, R x) { _mm256_storeu_pd(p, x); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
  static R sub(R a, R b) { return _mm256_sub_pd(a, b); }
  static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  static R set1(double v) { return _mm256_set1_pd(v); }
  static double hsum(R x) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(x), _mm256_extractf128_pd(x, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static void pin(R& x) { __asm__("" : "+v"(x)); }
};

constexpr int kKbMax = 4, kTbMax = 7;
// kb*tb accumulators + tb inputs + 1 dy vector <= 16 registers (4 x 3, 2 x 5, 1 x 7).
int tb_for(int kb) { return std::min(kTbMax, 15 / (kb + 1)); }
template <class T>
conv_direct_bwd_detail::DwKernel<T> get(int kb, int tb) {
  static constexpr auto table = dw_table<Y, T, kTbMax>(std::make_index_sequence<kKbMax * kTbMax>());
  return table[size_t((kb - 1) * kTbMax + (tb - 1))];
}
using avx2::first_lanes_f32;
using avx2::first_lanes_f64;
using avx2::transpose4;
using avx2::transpose8;

using avx2::block_start;

void to_lanes_f32(const float* const* rows, int64_t n, float* dst) {
  for (int64_t w = 0; w < n; w += 8) {
    const int64_t w0 = block_start(w, n, 8), m = std::min<int64_t>(8, n - w0);
    __m256 r[8];
    if (m == 8) {
      for (int i = 0; i < 8; ++i) r[i] = rows[i] ? _mm256_loadu_ps(rows[i] + w0) : _mm256_setzero_ps();
    } else {
      const __m256i mask = first_lanes_f32(m);
      for (int i = 0; i < 8; ++i) r[i] = rows[i] ? _mm256_maskload_ps(rows[i] + w0, mask) : _mm256_setzero_ps();
    }
    transpose8(r);
    for (int64_t j = 0; j < m; ++j) _mm256_storeu_ps(dst + (w0 + j) * 8, r[j]);
  }
}
void to_lanes_f64(const double* const* rows, int64_t n, double* dst) {
  for (int64_t w = 0; w < n; w += 4) {
    const int64_t w0 = block_start(w, n, 4), m = std::min<int64_t>(4, n - w0);
    __m256d r[4];
    if (m == 4) {
      for (int i = 0; i < 4; ++i) r[i] = rows[i] ? _mm256_loadu_pd(rows[i] + w0) : _mm256_setzero_pd();
    } else {
      const __m256i mask = first_lanes_f64(m);
      for (int i = 0; i < 4; ++i) r[i] = rows[i] ? _mm256_maskload_pd(rows[i] + w0, mask) : _mm256_setzero_pd();
    }
    transpose4(r);
    for (int64_t j = 0; j < m; ++j) _mm256_storeu_pd(dst + (w0 + j) * 4, r[j]);
  }
}
// The inverse: rows[i][w] = src[w*8 + i] for w < n (rows[i] null: skipped).
void from_lanes_f32(const float* src, int64_t n, float* const* rows) {
  for (int64_t w = 0; w < n; w += 8) {
    const int64_t w0 = block_start(w, n, 8), m = std::min<int64_t>(8, n - w0);
    __m256 r[8];
    for (int64_t j = 0; j < 8; ++j) r[j] = j < m ? _mm256_loadu_ps(src + (w0 + j) * 8) : _mm256_setzero_ps();
    transpose8(r);
    if (m == 8) {
      for (int i = 0; i < 8; ++i)
        if (rows[i]) _mm256_storeu_ps(rows[i] + w0, r[i]);
    } else {
      const __m256i mask = first_lanes_f32(m);
      for (int i = 0; i < 8; ++i)
        if (rows[i]) _mm256_maskstore_ps(rows[i] + w0, mask, r[i]);
    }
  }
}
void from_lanes_f64(const double* src, int64_t n, double* const* rows) {
  for (int64_t w = 0; w < n; w += 4) {
    const int64_t w0 = block_start(w, n, 4), m = std::min<int64_t>(4, n - w0);
    __m256d r[4];
    for (int64_t j = 0; j < 4; ++j) r[j] = j < m ? _mm256_loadu_pd(src + (w0 + j) * 4) : _mm256_setzero_pd();
    transpose4(r);
    if (m == 4) {
      for (int i = 0; i < 4; ++i)
        if (rows[i]) _mm256_storeu_pd(rows[i] + w0, r[i]);
    } else {
      const __m256i mask = first_lanes_f64(m);
      for (int i = 0; i < 4; ++i)
        if (rows[i]) _mm256_maskstore_pd(rows[i] + w0, mask, r[i]);
    }
  }
}
template <class T> struct ToLanes;
template <> struct ToLanes<float> { static constexpr auto fn = to_lanes_f32; static constexpr auto back = from_lanes_f32; };
template <> struct ToLanes<double> { static constexpr auto fn = to_lanes_f64; static constexpr auto back = from_lanes_f64; };
}  // namespace

namespace conv_direct_bwd_detail {
template <class T>
DwKernels<T> dw_kernels_avx2() {
  DwKernels<T> k;
  k.lanes = Y<T>::W;
  k.kb_max = kKbMax;
  k.tb_for = tb_for;
  k.get = get<T>;
  k.to_lanes = ToLanes<T>::fn;
  k.from_lanes = ToLanes<T>::back;
  k.wino_dy = dw_wino_dy<Y, T>;
  k.lane_sums = dw_lane_sums<Y, T>;
  return k;
}
template DwKernels<float> dw_kernels_avx2<float>();
template DwKernels<double> dw_kernels_avx2<double>();
}  // namespace conv_direct_bwd_detail
}  // namespace lamina
#endif
