// AVX2 direct-convolution micro-kernels (contract in conv_direct.h): 16 ymm registers hold
// 12 accumulators (KB channels x V vectors) plus the tap's V input vectors and a broadcast.
#include "conv_direct.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include "conv_direct_kernel.h"
#include "simd_transpose_avx2.h"

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

// lane_gather / lane_scatter by in-register transposes: each image's row moves as whole
// vectors (avx2::block_start), where vgatherdps costs a load per lane and AVX2 has no scatter
// instruction (a scalar store per lane). Zen 4 with AVX-512 hidden, C3 row Winograd
// forward, 1 thread, thread CPU time: N=64 334 -> 298 us, N=256 1296 -> 1159 us.
template <class T> struct LaneTranspose;
template <> struct LaneTranspose<float> {
  using R = __m256;
  static constexpr int W = 8;
  static __m256i mask(int64_t m) { return avx2::first_lanes_f32(m); }
  static R maskload(const float* p, __m256i k) { return _mm256_maskload_ps(p, k); }
  static void maskstore(float* p, __m256i k, R x) { _mm256_maskstore_ps(p, k, x); }
  static void transpose(R* r) { avx2::transpose8(r); }
};
template <> struct LaneTranspose<double> {
  using R = __m256d;
  static constexpr int W = 4;
  static __m256i mask(int64_t m) { return avx2::first_lanes_f64(m); }
  static R maskload(const double* p, __m256i k) { return _mm256_maskload_pd(p, k); }
  static void maskstore(double* p, __m256i k, R x) { _mm256_maskstore_pd(p, k, x); }
  static void transpose(R* r) { avx2::transpose4(r); }
};

// dst[j*W + l] = src[l*stride + j] for j < n, l < nl; lanes past nl zero (dst aligned).
template <class T>
void gather_transpose(const T* src, int64_t stride, int64_t n, int64_t nl, T* dst) {
  using X = LaneTranspose<T>;
  constexpr int W = X::W;
  for (int64_t i = 0; i < n; i += W) {
    const int64_t j0 = avx2::block_start(i, n, W), m = n - j0 < W ? n - j0 : W;
    typename X::R r[W];
    if (m == W) {
      for (int64_t l = 0; l < W; ++l) r[l] = l < nl ? Y<T>::loadu(src + l * stride + j0) : Y<T>::zero();
    } else {
      const __m256i k = X::mask(m);
      for (int64_t l = 0; l < W; ++l) r[l] = l < nl ? X::maskload(src + l * stride + j0, k) : Y<T>::zero();
    }
    X::transpose(r);
    for (int64_t j = 0; j < m; ++j) Y<T>::store(dst + (j0 + j) * W, r[j]);
  }
}

// dst[l*stride + j] = src[j*W + l] for j < n, l < nl (src aligned).
template <class T>
void scatter_transpose(const T* src, int64_t n, int64_t nl, T* dst, int64_t stride) {
  using X = LaneTranspose<T>;
  constexpr int W = X::W;
  for (int64_t i = 0; i < n; i += W) {
    const int64_t j0 = avx2::block_start(i, n, W), m = n - j0 < W ? n - j0 : W;
    typename X::R r[W];
    for (int64_t j = 0; j < W; ++j) r[j] = j < m ? Y<T>::load(src + (j0 + j) * W) : Y<T>::zero();
    X::transpose(r);
    if (m == W) {
      for (int64_t l = 0; l < nl; ++l) Y<T>::storeu(dst + l * stride + j0, r[l]);
    } else {
      const __m256i k = X::mask(m);
      for (int64_t l = 0; l < nl; ++l) X::maskstore(dst + l * stride + j0, k, r[l]);
    }
  }
}
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
  if (K % 6 == 0 && K % 4 != 0) fill_lane_kernels<Y, T, 6, 2>(lk);
  else fill_lane_kernels<Y, T, 4, 3>(lk);
  lk->gather = gather_transpose<T>;   // the same values as lane_gather / lane_scatter
  lk->scatter = scatter_transpose<T>;
}
template void lane_kernels_avx2<float>(int64_t, LaneKernels<float>*);
template void lane_kernels_avx2<double>(int64_t, LaneKernels<double>*);
}  // namespace conv_direct_detail
}  // namespace lamina
#endif
