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
};
template <> struct Y<double> {
  using R = __m256d;
  static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static R loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void storeu(double* p, R x) { _mm256_storeu_pd(p, x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
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
}  // namespace conv_direct_detail
}  // namespace lamina
#endif
