// AVX-512F direct weight-gradient micro-kernels (contract in conv_direct_bwd.h): 32 zmm registers
// hold kb x tb accumulators, the tb tap inputs of a step and one dy vector.
#include "conv_direct_bwd.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include <algorithm>

#include "conv_direct_bwd_kernel.h"

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
}  // namespace

namespace conv_direct_bwd_detail {
template <class T>
DwKernels<T> dw_kernels_avx512() {
  DwKernels<T> k;
  k.lanes = Z<T>::W;
  k.kb_max = kKbMax;
  k.tb_for = tb_for;
  k.get = get<T>;
  return k;
}
template DwKernels<float> dw_kernels_avx512<float>();
template DwKernels<double> dw_kernels_avx512<double>();
}  // namespace conv_direct_bwd_detail
}  // namespace lamina
#endif
