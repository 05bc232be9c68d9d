// The direct weight-gradient micro-kernel body shared by the ISA translation units
// (conv_direct_bwd_avx2.cpp, conv_direct_bwd_avx512.cpp; contract in conv_direct_bwd.h). Each
// TU includes it after <immintrin.h> with its own vector traits X<T> (R, W, zero, loadu,
// storeu, add, fma, pin). Anonymous namespace: each TU keeps its own copy with its own ISA flags.
#pragma once
#include <array>
#include <cstdint>
#include <utility>

#include "conv_direct_bwd.h"

namespace lamina {
namespace {

// KB x TB accumulators live in registers across all images and vectors of the call; per
// vector step the TB tap inputs are loaded once and each dy vector feeds TB FMAs.
template <template <class> class X, class T, int KB, int TB>
void dw_block(const T* xp, int64_t xs, const T* dyw, int64_t ds, int64_t ldd, int64_t nimg,
              int64_t nvec, const int64_t* off, T* acc, int64_t lda) {
  using R = typename X<T>::R;
  constexpr int W = X<T>::W;
  R a[KB][TB];
#pragma GCC unroll 8
  for (int i = 0; i < KB; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < TB; ++j) a[i][j] = X<T>::zero();
#pragma GCC unroll 1
  for (int64_t n = 0; n < nimg; ++n) {
    const T* src[TB];
#pragma GCC unroll 8
    for (int j = 0; j < TB; ++j) src[j] = xp + n * xs + off[j];
    const T* d = dyw + n * ds;
#pragma GCC unroll 1
    for (int64_t v = 0; v < nvec; ++v) {
      R xv[TB];
#pragma GCC unroll 8
      for (int j = 0; j < TB; ++j) xv[j] = X<T>::loadu(src[j] + v * W);
#pragma GCC unroll 8
      for (int i = 0; i < KB; ++i) {
        R dv = X<T>::loadu(d + i * ldd + v * W);
        X<T>::pin(dv);  // one load feeding TB FMAs, not folded into each of them
#pragma GCC unroll 8
        for (int j = 0; j < TB; ++j) a[i][j] = X<T>::fma(dv, xv[j], a[i][j]);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < KB; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < TB; ++j) {
      T* p = acc + i * lda + j * W;
      X<T>::storeu(p, X<T>::add(X<T>::loadu(p), a[i][j]));
    }
}

// Every (kb, tb) instance, kb in [1, KBMAX], tb in [1, TBMAX], as a flat table.
template <template <class> class X, class T, int TBMAX, size_t... I>
constexpr std::array<conv_direct_bwd_detail::DwKernel<T>, sizeof...(I)> dw_table(std::index_sequence<I...>) {
  return {{&dw_block<X, T, int(I / TBMAX) + 1, int(I % TBMAX) + 1>...}};
}

}  // namespace
}  // namespace lamina
