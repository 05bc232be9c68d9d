// AVX2 direct weight-gradient micro-kernels (contract in conv_direct_bwd.h): 16 ymm registers
// hold kb x tb accumulators, the tb tap inputs of a step and one dy vector.
#include "conv_direct_bwd.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include <algorithm>

#include "conv_direct_bwd_kernel.h"

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
}  // namespace

namespace conv_direct_bwd_detail {
template <class T>
DwKernels<T> dw_kernels_avx2() {
  DwKernels<T> k;
  k.lanes = Y<T>::W;
  k.kb_max = kKbMax;
  k.tb_for = tb_for;
  k.get = get<T>;
  return k;
}
template DwKernels<float> dw_kernels_avx2<float>();
template DwKernels<double> dw_kernels_avx2<double>();
}  // namespace conv_direct_bwd_detail
}  // namespace lamina
#endif
