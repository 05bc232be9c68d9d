// AVX2 vector traits shared by the elementwise kernel families (activation, optim): one set of
// overloads per vector type, so each family writes its math once for float and double.
// Include only from *_avx2.cpp translation units (compiled with -mavx2 -mfma). A family adds
// its own operations by deriving: struct F32 : avx2::F32 { ... }.
#pragma once
#if defined(LAMINA_X86)
#include <immintrin.h>

#include <cstdint>

namespace lamina {
namespace avx2 {

struct F32 {
  using V = __m256;
  using S = float;
  static constexpr int W = 8;
  static V set(float a) { return _mm256_set1_ps(a); }
  static V zero() { return _mm256_setzero_ps(); }
  static __m256i mask(int64_t k) {  // lanes [0, k) on
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load(const float* p, int64_t k) { return _mm256_maskload_ps(p, mask(k)); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, V v, int64_t k) { _mm256_maskstore_ps(p, mask(k), v); }
  static void stream(float* p, V v) { _mm256_stream_ps(p, v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V sqrt(V a) { return _mm256_sqrt_ps(a); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a*b
  static V max(V a, V b) { return _mm256_max_ps(a, b); }  // a > b ? a : b (b if either is NaN)
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
};

struct F64 {
  using V = __m256d;
  using S = double;
  static constexpr int W = 4;
  static V set(double a) { return _mm256_set1_pd(a); }
  static V zero() { return _mm256_setzero_pd(); }
  static __m256i mask(int64_t k) {  // lanes [0, k) on
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V load(const double* p, int64_t k) { return _mm256_maskload_pd(p, mask(k)); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static void store(double* p, V v, int64_t k) { _mm256_maskstore_pd(p, mask(k), v); }
  static void stream(double* p, V v) { _mm256_stream_pd(p, v); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V sqrt(V a) { return _mm256_sqrt_pd(a); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm256_fnmadd_pd(a, b, c); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V min(V a, V b) { return _mm256_min_pd(a, b); }
};

}  // namespace avx2
}  // namespace lamina
#endif  // LAMINA_X86
