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
// Loops unrolled in full up to 32 (the 1 x 14 kernel): unrolled by 8, GCC kept its
// accumulators in memory (3x slower).
template <template <class> class X, class T, int KB, int V>
void direct_block(const T* xp, const int64_t* off, int64_t ntaps, const T* wt, T* yw, int64_t ldy,
                  int64_t nvec) {
  using R = typename X<T>::R;
  constexpr int W = X<T>::W;
  for (int64_t v0 = 0; v0 < nvec; v0 += V) {
    R acc[KB][V];
#pragma GCC unroll 32
    for (int k = 0; k < KB; ++k)
#pragma GCC unroll 32
      for (int v = 0; v < V; ++v) acc[k][v] = X<T>::zero();
    const T* base = xp + v0 * W;
    const T* wk = wt;
#pragma GCC unroll 1
    for (int64_t t = 0; t < ntaps; ++t, wk += KB) {
      const T* src = base + off[t];
      R xv[V];
#pragma GCC unroll 32
      for (int v = 0; v < V; ++v) xv[v] = X<T>::loadu(src + v * W);
#pragma GCC unroll 32
      for (int k = 0; k < KB; ++k) {
        const R wv = X<T>::bcast(wk + k);
#pragma GCC unroll 32
        for (int v = 0; v < V; ++v) acc[k][v] = X<T>::fma(wv, xv[v], acc[k][v]);
      }
    }
#pragma GCC unroll 32
    for (int k = 0; k < KB; ++k)
#pragma GCC unroll 32
      for (int v = 0; v < V; ++v) X<T>::storeu(yw + k * ldy + (v0 + v) * W, acc[k][v]);
  }
}

// Batch-lane block (contract in conv_direct.h, LaneKernel): KB channels x V adjacent output
// pixels of one row, each accumulator a vector over the block's images; every tap loads V
// aligned vectors and broadcasts KB weights. Taps are summed in order from zero and the bias
// added last, as direct_block and its row copy do, so both paths round alike.
template <template <class> class X, class T, int KB, int V>
void lane_block(const T* xt, const int64_t* off, int64_t ntaps, const T* wt, const T* bias, T* yt,
                int64_t ldk) {
  using R = typename X<T>::R;
  constexpr int W = X<T>::W;
  R acc[KB][V];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[k][v] = X<T>::zero();
  const T* wk = wt;
#pragma GCC unroll 1
  for (int64_t t = 0; t < ntaps; ++t, wk += KB) {
    const T* src = xt + off[t];
    R xv[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) xv[v] = X<T>::load(src + v * W);
#pragma GCC unroll 8
    for (int k = 0; k < KB; ++k) {
      const R wv = X<T>::bcast(wk + k);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[k][v] = X<T>::fma(wv, xv[v], acc[k][v]);
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k) {
    const R bv = X<T>::bcast(bias + k);
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) X<T>::store(yt + k * ldk + v * W, X<T>::add(acc[k][v], bv));
  }
}

// Transposes into and out of the lane layout: dst[j*lanes + l] = src[l*stride + j] for j < n,
// l < nl (lanes past nl zero), and back (only lanes < nl written).
template <template <class> class X, class T>
void lane_gather(const T* src, int64_t stride, int64_t n, int64_t nl, T* dst) {
  for (int64_t j = 0; j < n; ++j) X<T>::store(dst + j * X<T>::W, X<T>::gather(src + j, stride, int(nl)));
}
template <template <class> class X, class T>
void lane_scatter(const T* src, int64_t n, int64_t nl, T* dst, int64_t stride) {
  for (int64_t j = 0; j < n; ++j) X<T>::scatter(dst + j, stride, int(nl), X<T>::load(src + j * X<T>::W));
}

// ReLU then the 2x2 stride-2 max pool of two lane rows r0, r1 (each (2*PW.., lanes)), with the
// rules of relu (x < 0 ? 0 : x, NaN kept) and max_pool2d (row-major window order, the first max
// keeps ties, NaN wins): pooled (PW, lanes) and code (PW, lanes) = the max's window position
// (0..3 row-major), or 4 where relu' is 0 there (the max is <= 0; NaN passes, as relu' does).
// Plain selects over a fixed lane count: the compiler vectorizes them with this TU's ISA.
template <template <class> class X, class T>
void lane_relu_pool2(const T* r0, const T* r1, int64_t PW, T* pooled, uint8_t* code) {
  using R = typename X<T>::R;
  using I = typename X<T>::I;   // window positions, one integer lane per float lane
  constexpr int W = X<T>::W;
  for (int64_t pw = 0; pw < PW; ++pw) {
    const T* a = r0 + 2 * pw * W;
    const T* c = r1 + 2 * pw * W;
    R m = X<T>::relu(X<T>::load(a));
    I at = X<T>::position(0);
    X<T>::take(X<T>::relu(X<T>::load(a + W)), 1, m, at);
    X<T>::take(X<T>::relu(X<T>::load(c)), 2, m, at);
    X<T>::take(X<T>::relu(X<T>::load(c + W)), 3, m, at);
    X<T>::store(pooled + pw * W, m);
    X<T>::store_code(code + pw * W, m, at);
  }
}

// lane_scatter for the one-byte codes of lane_relu_pool2 (code[j*lanes + l] -> dst[l*stride + j]).
template <template <class> class X, class T>
void lane_scatter_code(const uint8_t* src, int64_t n, int64_t nl, uint8_t* dst, int64_t stride) {
  for (int64_t l = 0; l < nl; ++l)
    for (int64_t j = 0; j < n; ++j) dst[l * stride + j] = src[j * X<T>::W + l];
}

// Row Winograd F(4, 5) with the points 0, +-1, +-2, +-1/2 and infinity (conv_direct_lane.h
// derives it): per tile of 8 input columns d, v = B^T d with B^T's rows scaled to these small
// coefficients (the weight transform carries the inverse scales); paired rows share terms.
template <template <class> class X, class T>
void lane_wino_in(const T* x, int64_t ntiles, T* v, int64_t ldv) {
  using R = typename X<T>::R;
  constexpr int W = X<T>::W;
  const R c5_25 = X<T>::set1(T(5.25)), c4_25 = X<T>::set1(T(4.25)), c0_5 = X<T>::set1(T(0.5));
  const R c2_5 = X<T>::set1(T(2.5)), c2 = X<T>::set1(T(2)), c5 = X<T>::set1(T(5)), c4 = X<T>::set1(T(4));
  const R c1_25 = X<T>::set1(T(1.25)), c0_25 = X<T>::set1(T(0.25));
  for (int64_t j = 0; j < ntiles; ++j) {
    const T* d = x + 4 * j * W;
    T* o = v + j * W;
    const R d0 = X<T>::load(d), d1 = X<T>::load(d + W), d2 = X<T>::load(d + 2 * W), d3 = X<T>::load(d + 3 * W);
    const R d4 = X<T>::load(d + 4 * W), d5 = X<T>::load(d + 5 * W), d6 = X<T>::load(d + 6 * W), d7 = X<T>::load(d + 7 * W);
    X<T>::store(o, X<T>::fma(c5_25, X<T>::sub(d4, d2), X<T>::sub(d0, d6)));
    X<T>::store(o + 7 * ldv, X<T>::fma(c5_25, X<T>::sub(d3, d5), X<T>::sub(d7, d1)));
    R p = X<T>::sub(X<T>::add(d2, d6), X<T>::mul(c4_25, d4));
    R q = X<T>::sub(X<T>::add(d1, d5), X<T>::mul(c4_25, d3));
    X<T>::store(o + ldv, X<T>::add(q, p));
    X<T>::store(o + 2 * ldv, X<T>::sub(q, p));
    p = X<T>::fma(c2, d6, X<T>::sub(X<T>::mul(c0_5, d2), X<T>::mul(c2_5, d4)));
    q = X<T>::fma(c4, d5, X<T>::sub(d1, X<T>::mul(c5, d3)));
    X<T>::store(o + 3 * ldv, X<T>::add(q, p));
    X<T>::store(o + 4 * ldv, X<T>::sub(q, p));
    p = X<T>::fma(c0_5, d6, X<T>::sub(X<T>::mul(c2, d2), X<T>::mul(c2_5, d4)));
    q = X<T>::fma(c0_25, d5, X<T>::sub(d1, X<T>::mul(c1_25, d3)));
    X<T>::store(o + 5 * ldv, X<T>::add(q, p));
    X<T>::store(o + 6 * ldv, X<T>::sub(q, p));
  }
}
// y = A^T m + bias, A^T's rows (1 1 1 1 1 1 1 0), (0 1 -1 2 -2 1/2 -1/2 0),
// (0 1 1 4 4 1/4 1/4 0), (0 1 -1 8 -8 1/8 -1/8 1); the first nout of the 4 outputs stored.
template <template <class> class X, class T>
void lane_wino_out(const T* m, int64_t lde, T bias, int64_t nout, T* y) {
  using R = typename X<T>::R;
  constexpr int W = X<T>::W;
  const R m1 = X<T>::load(m + lde), m2 = X<T>::load(m + 2 * lde), m3 = X<T>::load(m + 3 * lde);
  const R m4 = X<T>::load(m + 4 * lde), m5 = X<T>::load(m + 5 * lde), m6 = X<T>::load(m + 6 * lde);
  const R s12 = X<T>::add(m1, m2), d12 = X<T>::sub(m1, m2), s34 = X<T>::add(m3, m4), d34 = X<T>::sub(m3, m4);
  const R s56 = X<T>::add(m5, m6), d56 = X<T>::sub(m5, m6), bv = X<T>::set1(bias);
  R out[4];
  out[0] = X<T>::add(X<T>::add(X<T>::add(X<T>::load(m), s12), X<T>::add(s34, s56)), bv);
  out[1] = X<T>::add(X<T>::fma(X<T>::set1(T(0.5)), d56, X<T>::fma(X<T>::set1(T(2)), d34, d12)), bv);
  out[2] = X<T>::add(X<T>::fma(X<T>::set1(T(0.25)), s56, X<T>::fma(X<T>::set1(T(4)), s34, s12)), bv);
  out[3] = X<T>::add(X<T>::add(X<T>::fma(X<T>::set1(T(0.125)), d56, X<T>::fma(X<T>::set1(T(8)), d34, d12)),
                               X<T>::load(m + 7 * lde)), bv);
  for (int64_t i = 0; i < nout; ++i) X<T>::store(y + i * W, out[i]);
}

// conv_direct_detail::all_finite, instantiated in this TU (its ISA's vector width).
template <class T>
bool lane_all_finite(const T* x, int64_t n) {
  return conv_direct_detail::all_finite(x, n);
}

// The lane kernels of one channel block KB for V = 1 .. VMAX (a row's last, narrower tiles).
template <template <class> class X, class T, int KB, int VMAX>
void fill_lane_kernels(conv_direct_detail::LaneKernels<T>* lk) {
  lk->kb = KB;
  lk->vmax = VMAX;
  lk->lanes = X<T>::W;
  lk->gather = lane_gather<X, T>;
  lk->scatter = lane_scatter<X, T>;
  lk->relu_pool2 = lane_relu_pool2<X, T>;
  lk->scatter_code = lane_scatter_code<X, T>;
  lk->wino_in = lane_wino_in<X, T>;
  lk->wino_out = lane_wino_out<X, T>;
  lk->all_finite = lane_all_finite<T>;
  lk->by_v[1] = lane_block<X, T, KB, 1>;
  if constexpr (VMAX >= 2) lk->by_v[2] = lane_block<X, T, KB, 2>;
  if constexpr (VMAX >= 3) lk->by_v[3] = lane_block<X, T, KB, 3>;
  if constexpr (VMAX >= 4) lk->by_v[4] = lane_block<X, T, KB, 4>;
  if constexpr (VMAX >= 5) lk->by_v[5] = lane_block<X, T, KB, 5>;
  if constexpr (VMAX >= 6) lk->by_v[6] = lane_block<X, T, KB, 6>;
  static_assert(VMAX <= 6, "lane kernels: at most 6 vectors per row tile");
}

}  // namespace
}  // namespace lamina
