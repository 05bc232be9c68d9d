// AVX2 row primitives of the norm family (see norm.h, detail::NormRows). Same operations in the
// same order as the portable ones in norm.cpp, so both paths are bit-identical: the double sums
// keep 8 lanes (two __m256d, lanes 0-3 and 4-7) combined in norm.h's tree, the tail in order,
// and FMA contraction is off. Tails of the elementwise passes use masked loads and stores.
#if defined(LAMINA_X86)
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif
#include <immintrin.h>

#include <cstdint>

#include "norm.h"
#include "simd_avx2.h"

namespace lamina {
namespace {

// Elements [i, i + 8) as doubles: lanes 0-3 in lo, 4-7 in hi.
inline void load8(const float* p, __m256d& lo, __m256d& hi) {
  const __m256 v = _mm256_loadu_ps(p);
  lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
  hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}
inline void load8(const double* p, __m256d& lo, __m256d& hi) {
  lo = _mm256_loadu_pd(p);
  hi = _mm256_loadu_pd(p + 4);
}

// ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7)), as combine8 in norm.cpp.
inline double combine(__m256d lo, __m256d hi) {
  alignas(32) double s[4];
  _mm256_store_pd(s, _mm256_add_pd(lo, hi));
  return (s[0] + s[2]) + (s[1] + s[3]);
}

template <class T>
double sum_avx2(const T* x, int64_t n) {
  __m256d plo = _mm256_setzero_pd(), phi = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256d lo, hi;
    load8(x + i, lo, hi);
    plo = _mm256_add_pd(plo, lo);
    phi = _mm256_add_pd(phi, hi);
  }
  double s = combine(plo, phi);
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

template <class T>
double centered_sq_avx2(const T* x, int64_t n, double mean) {
  const __m256d m = _mm256_set1_pd(mean);
  __m256d plo = _mm256_setzero_pd(), phi = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256d lo, hi;
    load8(x + i, lo, hi);
    lo = _mm256_sub_pd(lo, m);
    hi = _mm256_sub_pd(hi, m);
    plo = _mm256_add_pd(plo, _mm256_mul_pd(lo, lo));
    phi = _mm256_add_pd(phi, _mm256_mul_pd(hi, hi));
  }
  double s = combine(plo, phi);
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - mean;
    s += d * d;
  }
  return s;
}

template <class T>
void grad_sums_avx2(const T* x, const T* dy, const T* y, int64_t n, double mean, double* sum_dy,
                    double* sum_dy_xc) {
  const __m256d m = _mm256_set1_pd(mean), zero = _mm256_setzero_pd();
  __m256d plo = zero, phi = zero, qlo = zero, qhi = zero;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256d glo, ghi, xlo, xhi;
    load8(dy + i, glo, ghi);
    if (y) {   // dy' = y > 0 ? dy : 0 (the fused ReLU's derivative)
      __m256d ylo, yhi;
      load8(y + i, ylo, yhi);
      glo = _mm256_and_pd(_mm256_cmp_pd(ylo, zero, _CMP_GT_OQ), glo);
      ghi = _mm256_and_pd(_mm256_cmp_pd(yhi, zero, _CMP_GT_OQ), ghi);
    }
    load8(x + i, xlo, xhi);
    plo = _mm256_add_pd(plo, glo);
    phi = _mm256_add_pd(phi, ghi);
    qlo = _mm256_add_pd(qlo, _mm256_mul_pd(glo, _mm256_sub_pd(xlo, m)));
    qhi = _mm256_add_pd(qhi, _mm256_mul_pd(ghi, _mm256_sub_pd(xhi, m)));
  }
  double s = combine(plo, phi), t = combine(qlo, qhi);
  for (; i < n; ++i) {
    const double g = (y == nullptr || y[i] > T(0)) ? static_cast<double>(dy[i]) : 0.0;
    s += g;
    t += g * (static_cast<double>(x[i]) - mean);
  }
  *sum_dy = s;
  *sum_dy_xc = t;
}

template <class K>
struct Ops : K {
  using V = typename K::V;
  static V gt_zero_and(V y, V v);
};
template <>
inline __m256 Ops<avx2::F32>::gt_zero_and(__m256 y, __m256 v) {
  return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), v);
}
template <>
inline __m256d Ops<avx2::F64>::gt_zero_and(__m256d y, __m256d v) {
  return _mm256_and_pd(_mm256_cmp_pd(y, _mm256_setzero_pd(), _CMP_GT_OQ), v);
}

template <class K>
void affine_avx2(const typename K::S* x, typename K::S* out, int64_t n, typename K::S a, typename K::S b,
                 bool relu) {
  using V = typename K::V;
  const V av = K::set(a), bv = K::set(b), zero = K::zero();
  auto step = [&](int64_t i, int64_t k) {
    V v = K::add(K::mul(k == K::W ? K::load(x + i) : K::load(x + i, k), av), bv);
    if (relu) v = K::max(zero, v);   // 0 > v ? 0 : v: a NaN stays
    k == K::W ? K::store(out + i, v) : K::store(out + i, v, k);
  };
  int64_t i = 0;
  for (; i + K::W <= n; i += K::W) step(i, K::W);
  if (i < n) step(i, n - i);
}

template <class K>
void grad_affine_avx2(const typename K::S* x, const typename K::S* dy, const typename K::S* y, typename K::S* dx,
                      int64_t n, typename K::S m, typename K::S a, typename K::S b, typename K::S c) {
  using O = Ops<K>;
  using V = typename K::V;
  const V mv = K::set(m), av = K::set(a), bv = K::set(b), cv = K::set(c);
  auto step = [&](int64_t i, int64_t k) {
    auto ld = [&](const typename K::S* p) { return k == K::W ? K::load(p + i) : K::load(p + i, k); };
    V g = ld(dy);
    if (y) g = O::gt_zero_and(ld(y), g);
    const V r = x ? K::add(K::add(K::mul(g, av), K::mul(K::sub(ld(x), mv), bv)), cv) : K::add(K::mul(g, av), cv);
    k == K::W ? K::store(dx + i, r) : K::store(dx + i, r, k);
  };
  int64_t i = 0;
  for (; i + K::W <= n; i += K::W) step(i, K::W);
  if (i < n) step(i, n - i);
}

const detail::NormRows<float> kAvx2F32 = {sum_avx2<float>, centered_sq_avx2<float>, grad_sums_avx2<float>,
                                           affine_avx2<avx2::F32>, grad_affine_avx2<avx2::F32>};
const detail::NormRows<double> kAvx2F64 = {sum_avx2<double>, centered_sq_avx2<double>, grad_sums_avx2<double>,
                                            affine_avx2<avx2::F64>, grad_affine_avx2<avx2::F64>};

}  // namespace

namespace detail {
const NormRows<float>& norm_rows_avx2_f32() { return kAvx2F32; }
const NormRows<double>& norm_rows_avx2_f64() { return kAvx2F64; }
}  // namespace detail

}  // namespace lamina
#endif  // LAMINA_X86
