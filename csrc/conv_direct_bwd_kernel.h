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

// Row Winograd F(4, 5) for the weight gradient (conv_direct_bwd.cpp): one 4-wide tile of a lane
// row of dy, d[i*W + l] for i < nd (zeros past nd <= 4), to the 8 points m[e*lde + l] = (A d)[e],
// A the transpose of the forward's output transform (lane_wino_out): rows 1, then
// 1, a, a^2, a^3 at a = 1, -1, 2, -2, 1/2, -1/2, then 0 0 0 1.
template <template <class> class X, class T>
void dw_wino_dy(const T* d, int64_t nd, T* m, int64_t lde) {
  using R = typename X<T>::R;
  constexpr int W = X<T>::W;
  const R d0 = X<T>::loadu(d);
  const R d1 = nd > 1 ? X<T>::loadu(d + W) : X<T>::zero();
  const R d2 = nd > 2 ? X<T>::loadu(d + 2 * W) : X<T>::zero();
  const R d3 = nd > 3 ? X<T>::loadu(d + 3 * W) : X<T>::zero();
  // a = +-s: even part d0 + s^2 d2, odd part s d1 + s^3 d3.
  const R e1 = X<T>::add(d0, d2), o1 = X<T>::add(d1, d3);
  const R e2 = X<T>::fma(X<T>::set1(T(4)), d2, d0), o2 = X<T>::fma(X<T>::set1(T(8)), d3, X<T>::mul(X<T>::set1(T(2)), d1));
  const R e3 = X<T>::fma(X<T>::set1(T(0.25)), d2, d0),
          o3 = X<T>::fma(X<T>::set1(T(0.125)), d3, X<T>::mul(X<T>::set1(T(0.5)), d1));
  X<T>::storeu(m, d0);
  X<T>::storeu(m + lde, X<T>::add(e1, o1));
  X<T>::storeu(m + 2 * lde, X<T>::sub(e1, o1));
  X<T>::storeu(m + 3 * lde, X<T>::add(e2, o2));
  X<T>::storeu(m + 4 * lde, X<T>::sub(e2, o2));
  X<T>::storeu(m + 5 * lde, X<T>::add(e3, o3));
  X<T>::storeu(m + 6 * lde, X<T>::sub(e3, o3));
  X<T>::storeu(m + 7 * lde, d3);
}

// out[t] = the lane sum of sum_{c < nchunks} a[c*stride + t*W + l], chunks in order, for t < n.
template <template <class> class X, class T>
void dw_lane_sums(const T* a, int64_t n, int64_t nchunks, int64_t stride, T* out) {
  constexpr int W = X<T>::W;
  for (int64_t t = 0; t < n; ++t) {
    typename X<T>::R v = X<T>::loadu(a + t * W);
    for (int64_t c = 1; c < nchunks; ++c) v = X<T>::add(v, X<T>::loadu(a + c * stride + t * W));
    out[t] = X<T>::hsum(v);
  }
}

// Every (kb, tb) instance, kb in [1, KBMAX], tb in [1, TBMAX], as a flat table.
template <template <class> class X, class T, int TBMAX, size_t... I>
constexpr std::array<conv_direct_bwd_detail::DwKernel<T>, sizeof...(I)> dw_table(std::index_sequence<I...>) {
  return {{&dw_block<X, T, int(I / TBMAX) + 1, int(I % TBMAX) + 1>...}};
}

}  // namespace
}  // namespace lamina
