// AVX2 direct-convolution micro-kernels (contract in conv_direct.h): 16 ymm registers hold
// 12 accumulators (KB channels x V vectors) plus the tap's V input vectors and a broadcast.
#include "conv_direct.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include "conv_direct_kernel.h"

namespace lamina {
namespace {
template <class T> struct Y;
template <> struct Y<float> {
  using R = __m256;
  static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static R loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, R x) { _mm256_storeu_ps(p, x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R set1(float v) { return _mm256_set1_ps(v); }
  static R load(const float* p) { return _mm256_load_ps(p); }
  static void store(float* p, R x) { _mm256_store_ps(p, x); }
  // Lanes l < nl: p[l * stride] (zero past nl); stride * 7 fits int32 (the caller checks).
  static R gather(const float* p, int64_t stride, int nl) {
    const __m256i l = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i idx = _mm256_mullo_epi32(l, _mm256_set1_epi32(static_cast<int32_t>(stride)));
    const __m256 mask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(nl), l));
    return _mm256_mask_i32gather_ps(zero(), p, idx, mask, 4);
  }
  static void scatter(float* p, int64_t stride, int nl, R x) {   // no scatter instruction in AVX2
    alignas(32) float t[8];
    _mm256_store_ps(t, x);
    for (int l = 0; l < nl; ++l) p[l * stride] = t[l];
  }
  // relu and the pool's take rule (lane_relu_pool2): x < 0 ? 0 : x; v replaces m if v > m or NaN.
  using I = __m256;   // positions as float bit patterns, selected with the same blends
  static R relu(R x) { return _mm256_blendv_ps(x, zero(), _mm256_cmp_ps(x, zero(), _CMP_LT_OQ)); }
  static I position(int k) { return _mm256_castsi256_ps(_mm256_set1_epi32(k)); }
  static void take(R v, int k, R& m, I& at) {
    const R t = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    m = _mm256_blendv_ps(m, v, t);
    at = _mm256_blendv_ps(at, position(k), t);
  }
  static void store_code(uint8_t* c, R m, I at) {
    at = _mm256_blendv_ps(at, position(4), _mm256_cmp_ps(m, zero(), _CMP_LE_OQ));
    alignas(32) int32_t t[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), _mm256_castps_si256(at));
    for (int l = 0; l < 8; ++l) c[l] = static_cast<uint8_t>(t[l]);
  }
};
template <> struct Y<double> {
  using R = __m256d;
  static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static R loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void storeu(double* p, R x) { _mm256_storeu_pd(p, x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
  static R sub(R a, R b) { return _mm256_sub_pd(a, b); }
  static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  static R set1(double v) { return _mm256_set1_pd(v); }
  static R load(const double* p) { return _mm256_load_pd(p); }
  static void store(double* p, R x) { _mm256_store_pd(p, x); }
  static R gather(const double* p, int64_t stride, int nl) {
    const __m128i l = _mm_setr_epi32(0, 1, 2, 3);
    const __m128i idx = _mm_mullo_epi32(l, _mm_set1_epi32(static_cast<int32_t>(stride)));
    const __m256d mask = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_cmpgt_epi32(_mm_set1_epi32(nl), l)));
    return _mm256_mask_i32gather_pd(zero(), p, idx, mask, 8);
  }
  static void scatter(double* p, int64_t stride, int nl, R x) {
    alignas(32) double t[4];
    _mm256_store_pd(t, x);
    for (int l = 0; l < nl; ++l) p[l * stride] = t[l];
  }
  using I = __m256d;
  static R relu(R x) { return _mm256_blendv_pd(x, zero(), _mm256_cmp_pd(x, zero(), _CMP_LT_OQ)); }
  static I position(int k) { return _mm256_castsi256_pd(_mm256_set1_epi64x(k)); }
  static void take(R v, int k, R& m, I& at) {
    const R t = _mm256_or_pd(_mm256_cmp_pd(v, m, _CMP_GT_OQ), _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
    m = _mm256_blendv_pd(m, v, t);
    at = _mm256_blendv_pd(at, position(k), t);
  }
  static void store_code(uint8_t* c, R m, I at) {
    at = _mm256_blendv_pd(at, position(4), _mm256_cmp_pd(m, zero(), _CMP_LE_OQ));
    alignas(32) int64_t t[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), _mm256_castpd_si256(at));
    for (int l = 0; l < 4; ++l) c[l] = static_cast<uint8_t>(t[l]);
  }
};
}  // namespace

namespace conv_direct_detail {
// K = 6 (C1): 6 x 2; else 4 x 3 with zero-padded channels (C3's 16 = 4 blocks).
template <class T>
DirectKernel<T> direct_kernel_avx2(int64_t K, DirectShape* s) {
  if (K % 6 == 0 && K % 4 != 0) { *s = {6, 2, Y<T>::W}; return direct_block<Y, T, 6, 2>; }
  *s = {4, 3, Y<T>::W};
  return direct_block<Y, T, 4, 3>;
}
template DirectKernel<float> direct_kernel_avx2<float>(int64_t, DirectShape*);
template DirectKernel<double> direct_kernel_avx2<double>(int64_t, DirectShape*);
// Lane kernels, at most 12 accumulators: K = 6: 6 x 2; else 4 x 3 with zero-padded channels.
template <class T>
void lane_kernels_avx2(int64_t K, LaneKernels<T>* lk) {
  if (K % 6 == 0 && K % 4 != 0) return fill_lane_kernels<Y, T, 6, 2>(lk);
  fill_lane_kernels<Y, T, 4, 3>(lk);
}
template void lane_kernels_avx2<float>(int64_t, LaneKernels<float>*);
template void lane_kernels_avx2<double>(int64_t, LaneKernels<double>*);
}  // namespace conv_direct_detail
}  // namespace lamina
#endif
