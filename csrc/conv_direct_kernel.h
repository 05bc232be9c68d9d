// The direct-convolution micro-kernel body shared by the ISA translation units
// (conv_direct_avx2.cpp, conv_direct_avx512.cpp; contract in conv_direct.h). Each TU includes
// it after <immintrin.h> with its own vector traits X<T> (R, W, zero, bcast, loadu, storeu,
// fma). Anonymous namespace: each TU keeps its own copy compiled with its own ISA flags.
#pragma once
#include <cstdint>

namespace lamina {
namespace {

// KB channels x V vectors of accumulators stay in registers over all taps; the x vectors of a
// tap are loaded once and feed KB FMAs each. Called repeatedly to cover nvec vectors.
template <template <class> class X, class T, int KB, int V>
void direct_block(const T* xp, const int64_t* off, int64_t ntaps, const T* wt, T* yw, int64_t ldy,
                  int64_t nvec) {
  using R = typename X<T>::R;
  constexpr int W = X<T>::W;
  for (int64_t v0 = 0; v0 < nvec; v0 += V) {
    R acc[KB][V];
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[k][v] = X<T>::zero();
    const T* base = xp + v0 * W;
    const T* wk = wt;
#pragma GCC unroll 1
    for (int64_t t = 0; t < ntaps; ++t, wk += KB) {
      const T* src = base + off[t];
      R xv[V];
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) xv[v] = X<T>::loadu(src + v * W);
#pragma GCC unroll 8
      for (int k = 0; k < KB; ++k) {
        const R wv = X<T>::bcast(wk + k);
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) acc[k][v] = X<T>::fma(wv, xv[v], acc[k][v]);
      }
    }
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) X<T>::storeu(yw + k * ldy + (v0 + v) * W, acc[k][v]);
  }
}

}  // namespace
}  // namespace lamina
