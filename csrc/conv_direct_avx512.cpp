// AVX-512F direct-convolution micro-kernels (contract in conv_direct.h): 32 zmm registers hold
// 24 accumulators (KB channels x V vectors) plus the tap's V input vectors and a broadcast.
#include "conv_direct.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include "conv_direct_kernel.h"

namespace lamina {
namespace {
template <class T> struct Z;
template <> struct Z<float> {
  using R = __m512;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R bcast(const float* p) { return _mm512_set1_ps(*p); }
  static R loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, R x) { _mm512_storeu_ps(p, x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
};
template <> struct Z<double> {
  using R = __m512d;
  static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R bcast(const double* p) { return _mm512_set1_pd(*p); }
  static R loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void storeu(double* p, R x) { _mm512_storeu_pd(p, x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
};
}  // namespace

namespace conv_direct_detail {
// K = 6 (C1): 6 x 4; K a multiple of 8 (C3's 16): 8 x 3; else 4 x 6 with zero-padded channels.
template <class T>
DirectKernel<T> direct_kernel_avx512(int64_t K, DirectShape* s) {
  if (K % 6 == 0 && K % 8 != 0) { *s = {6, 4, Z<T>::W}; return direct_block<Z, T, 6, 4>; }
  if (K % 8 == 0 || K > 4) { *s = {8, 3, Z<T>::W}; return direct_block<Z, T, 8, 3>; }
  *s = {4, 6, Z<T>::W};
  return direct_block<Z, T, 4, 6>;
}
template DirectKernel<float> direct_kernel_avx512<float>(int64_t, DirectShape*);
template DirectKernel<double> direct_kernel_avx512<double>(int64_t, DirectShape*);
}  // namespace conv_direct_detail
}  // namespace lamina
#endif
