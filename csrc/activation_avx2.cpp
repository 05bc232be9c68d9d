// AVX2+FMA paths of the activation family plus the vector exp / expm1 / log1p they need.
// Our own polynomials: exp(x) = 2^n * (1 + expm1(r)), r = x - n*ln2, |r| <= ln2/2, with a
// Taylor polynomial long enough for ~1 ulp (degree 7 for float, 13 for double); float tanh is
// a rational minimax fit instead (see vtanh<F32>).
// Tails run through the same vector code with masked loads/stores, so every element of an
// array sees the same arithmetic whatever its position.
#if defined(LAMINA_X86)
#include <immintrin.h>

#include <cstdint>

#include "activation.h"
#include "simd_avx2.h"

namespace lamina {
namespace {

// ---- one set of overloads per vector type (simd_avx2.h's, plus the math below) -------------
struct F32 : avx2::F32 {  // + the comparisons, selects and exp/log pieces below
  static V gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static V ge(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static V lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static V le(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static V isnan(V a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static V unord(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }  // a or b is NaN
  static bool any(V m) { return _mm256_movemask_ps(m) != 0; }
  // acc_lo/acc_hi (4 doubles each, held as __m256 bits) += v's 8 floats
  static void add_to_double(V v, V& acc_lo, V& acc_hi) {
    acc_lo = _mm256_castpd_ps(_mm256_add_pd(_mm256_castps_pd(acc_lo), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    acc_hi = _mm256_castpd_ps(_mm256_add_pd(_mm256_castps_pd(acc_hi), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
  }
  // acc += a * b per lane, widened to double (a float product is exact in double)
  static void fma_to_double(V a, V b, V& acc_lo, V& acc_hi) {
    acc_lo = _mm256_castpd_ps(_mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                                              _mm256_cvtps_pd(_mm256_castps256_ps128(b)), _mm256_castps_pd(acc_lo)));
    acc_hi = _mm256_castpd_ps(_mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)),
                                              _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)), _mm256_castps_pd(acc_hi)));
  }
  static double double_sum(V acc_lo, V acc_hi) {
    __m256d a = _mm256_add_pd(_mm256_castps_pd(acc_lo), _mm256_castps_pd(acc_hi));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static V select(V m, V a, V b) { return _mm256_blendv_ps(b, a, m); }  // m ? a : b
  static V select_by_sign(V m, V a, V b) { return _mm256_blendv_ps(b, a, m); }  // sign bit of m ? a : b
  static V andv(V a, V b) { return _mm256_and_ps(a, b); }
  static V orv(V a, V b) { return _mm256_or_ps(a, b); }
  static V signmask() { return _mm256_set1_ps(-0.0f); }
  static V abs(V a) { return _mm256_andnot_ps(signmask(), a); }
  static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-126, 127] (n held as a float).
  static V pow2(V n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  // 2^n as two factors 2^(n>>1) * 2^(n - n>>1), so n down to -150 still gives denormals.
  static void pow2_split(V n, V& s1, V& s2) {
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  }
  static constexpr float ln2_hi = 0.6931471824645996f;         // float(ln2)
  static constexpr float ln2_lo = -1.9046542121259336e-09f;    // ln2 - ln2_hi
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float exp_hi = 88.7228317f;                 // above: exp overflows to inf
  static constexpr float exp_lo = -103.972076f;                // below: exp rounds to 0
  static constexpr float expm1_lo = -20.0f;                    // below: expm1 rounds to -1
  // exp for x <= 0: x clamped at -104 (exp rounds to 0 below ~-103.97); n = round(x log2e)
  // comes from adding 1.5*2^23 + 127 + 64, whose low mantissa bits then hold n + 127 + 64,
  // the biased exponent of 2^(n+64) (normal for n >= -150); a final * 2^-64 rounds once into
  // the denormals.
  static constexpr float exp_nonpos_lo = -104.0f;
  static constexpr float round_magic = 12582912.0f + 127 + 64;
  static constexpr float scale_down = 5.42101086242752217e-20f;  // 2^-64
  static V exponent_bits(V t) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23)); }
  static constexpr float softplus_threshold = 20.0f;
  // expm1(r) ~ r + r^2 * q(r); q's Taylor coefficients 1/2!, 1/3!, ... (degree 7 total)
  static V expm1_poly(V r) {
    V q = set(1.0f / 5040);
    q = fma(q, r, set(1.0f / 720));
    q = fma(q, r, set(1.0f / 120));
    q = fma(q, r, set(1.0f / 24));
    q = fma(q, r, set(1.0f / 6));
    q = fma(q, r, set(0.5f));
    return fma(mul(r, r), q, r);
  }
  // atanh series: log((1+s)/(1-s)) = 2s (1 + s^2/3 + s^4/5 + ...), |s| <= 0.1716
  static V atanh_tail(V s2) {
    V q = set(1.0f / 9);
    q = fma(q, s2, set(1.0f / 7));
    q = fma(q, s2, set(1.0f / 5));
    q = fma(q, s2, set(1.0f / 3));
    return q;
  }
  static double hsum_to_double(V v) {
    __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    __m256d b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a = _mm256_add_pd(a, b);
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};

struct F64 : avx2::F64 {
  static V gt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static V ge(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
  static V lt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  static V le(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LE_OQ); }
  static V isnan(V a) { return _mm256_cmp_pd(a, a, _CMP_UNORD_Q); }
  static V unord(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_UNORD_Q); }
  static bool any(V m) { return _mm256_movemask_pd(m) != 0; }
  static void add_to_double(V v, V& acc_lo, V&) { acc_lo = _mm256_add_pd(acc_lo, v); }
  static void fma_to_double(V a, V b, V& acc_lo, V&) { acc_lo = _mm256_fmadd_pd(a, b, acc_lo); }
  static double double_sum(V acc_lo, V acc_hi) { return hsum_to_double(_mm256_add_pd(acc_lo, acc_hi)); }
  static V select(V m, V a, V b) { return _mm256_blendv_pd(b, a, m); }
  static V select_by_sign(V m, V a, V b) { return _mm256_blendv_pd(b, a, m); }
  static V andv(V a, V b) { return _mm256_and_pd(a, b); }
  static V orv(V a, V b) { return _mm256_or_pd(a, b); }
  static V signmask() { return _mm256_set1_pd(-0.0); }
  static V abs(V a) { return _mm256_andnot_pd(signmask(), a); }
  static V round(V a) { return _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static __m256i biased_exponent(__m128i n) {
    return _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(n), _mm256_set1_epi64x(1023)), 52);
  }
  static V pow2(V n) { return _mm256_castsi256_pd(biased_exponent(_mm256_cvtpd_epi32(n))); }
  static void pow2_split(V n, V& s1, V& s2) {
    __m128i ni = _mm256_cvtpd_epi32(n);
    __m128i n1 = _mm_srai_epi32(ni, 1);
    __m128i n2 = _mm_sub_epi32(ni, n1);
    s1 = _mm256_castsi256_pd(biased_exponent(n1));
    s2 = _mm256_castsi256_pd(biased_exponent(n2));
  }
  static constexpr double ln2_hi = 0.6931471805599453;          // double(ln2)
  static constexpr double ln2_lo = 2.3190468138462996e-17;      // ln2 - ln2_hi
  static constexpr double log2e = 1.4426950408889634;
  static constexpr double exp_hi = 709.782712893384;
  static constexpr double exp_lo = -745.1332191019412;
  static constexpr double expm1_lo = -40.0;
  static constexpr double exp_nonpos_lo = -746.0;                      // n >= -1077
  static constexpr double round_magic = 6755399441055744.0 + 1023 + 512;  // 1.5*2^52 + bias + 512
  static constexpr double scale_down = 7.4583407312002067e-155;         // 2^-512
  static V exponent_bits(V t) { return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t), 52)); }
  static constexpr double softplus_threshold = 20.0;
  static V expm1_poly(V r) {  // Taylor to degree 13
    V q = set(1.0 / 87178291200.0);            // 1/14!
    q = fma(q, r, set(1.0 / 6227020800.0));    // 1/13!
    q = fma(q, r, set(1.0 / 479001600.0));
    q = fma(q, r, set(1.0 / 39916800.0));
    q = fma(q, r, set(1.0 / 3628800.0));
    q = fma(q, r, set(1.0 / 362880.0));
    q = fma(q, r, set(1.0 / 40320.0));
    q = fma(q, r, set(1.0 / 5040.0));
    q = fma(q, r, set(1.0 / 720.0));
    q = fma(q, r, set(1.0 / 120.0));
    q = fma(q, r, set(1.0 / 24.0));
    q = fma(q, r, set(1.0 / 6.0));
    q = fma(q, r, set(0.5));
    return fma(mul(r, r), q, r);
  }
  static V atanh_tail(V s2) {  // terms to s^20 / 21
    V q = set(1.0 / 21);
    q = fma(q, s2, set(1.0 / 19));
    q = fma(q, s2, set(1.0 / 17));
    q = fma(q, s2, set(1.0 / 15));
    q = fma(q, s2, set(1.0 / 13));
    q = fma(q, s2, set(1.0 / 11));
    q = fma(q, s2, set(1.0 / 9));
    q = fma(q, s2, set(1.0 / 7));
    q = fma(q, s2, set(1.0 / 5));
    q = fma(q, s2, set(1.0 / 3));
    return q;
  }
  static double hsum_to_double(V a) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};

// ---- vector math ---------------------------------------------------------------------------
template <class K>
typename K::V vexp(typename K::V x) {
  using V = typename K::V;
  V xc = K::min(K::max(x, K::set(K::exp_lo)), K::set(K::exp_hi));
  V n = K::round(K::mul(xc, K::set(K::log2e)));
  V r = K::fnma(n, K::set(K::ln2_hi), xc);  // fma: one rounding, |r| small
  r = K::fnma(n, K::set(K::ln2_lo), r);
  V p = K::expm1_poly(r);
  V s1, s2;
  K::pow2_split(n, s1, s2);
  V y = K::mul(K::fma(p, s1, s1), s2);
  y = K::select(K::gt(x, K::set(K::exp_hi)), K::set(__builtin_inf()), y);
  y = K::select(K::lt(x, K::set(K::exp_lo)), K::zero(), y);
  return K::select(K::isnan(x), x, y);
}

// expm1 for x <= 0 (what tanh needs); NaN is not propagated here (the caller blends it).
template <class K>
typename K::V vexpm1_nonpos(typename K::V x) {
  using V = typename K::V;
  V xc = K::max(x, K::set(K::expm1_lo));
  V n = K::round(K::mul(xc, K::set(K::log2e)));
  V r = K::fnma(n, K::set(K::ln2_hi), xc);
  r = K::fnma(n, K::set(K::ln2_lo), r);
  V p = K::expm1_poly(r);
  V s = K::pow2(n);
  // e^x - 1 = s*(1 + p) - 1 = s*p + (s - 1); for n = 0 this is p itself (no cancellation)
  return K::fma(s, p, K::sub(s, K::set(1)));
}

// log1p(u) for u in [0, 1] (softplus' log(1 + e^-|x|)).
template <class K>
typename K::V vlog1p_unit(typename K::V u) {
  using V = typename K::V;
  V one = K::set(1), half = K::set(0.5);
  // 1 + u in (sqrt2, 2]: use (1+u)/2 and add ln2, so the series argument stays small
  V big = K::gt(u, K::set(0.41421356237309503));
  V f = K::select(big, K::mul(K::sub(u, one), half), u);  // (1+u)/2 - 1 = (u-1)/2, exact
  V s = K::div(f, K::add(K::set(2), f));                  // log(1+f) = 2 atanh(f/(2+f))
  V s2 = K::mul(s, s);
  V two_s = K::add(s, s);
  V lg = K::fma(K::mul(two_s, s2), K::atanh_tail(s2), two_s);
  return K::add(lg, K::andv(big, K::set(0.69314718055994530942)));
}

// exp(z) for z <= 0 (or NaN, which passes through): no overflow side, no selects. The round
// to nearest of z log2e and the exponent of 2^n both come from one add of K::round_magic.
template <class K>
typename K::V vexp_nonpos(typename K::V z) {
  using V = typename K::V;
  V zc = K::max(K::set(K::exp_nonpos_lo), z);  // max returns its 2nd operand for NaN
  V t = K::fma(zc, K::set(K::log2e), K::set(K::round_magic));
  V n = K::sub(t, K::set(K::round_magic));
  V r = K::fnma(n, K::set(K::ln2_hi), zc);
  r = K::fnma(n, K::set(K::ln2_lo), r);
  V p = K::expm1_poly(r);
  V s = K::exponent_bits(t);  // 2^(n + scale-up), always normal
  return K::mul(K::fma(p, s, s), K::set(K::scale_down));
}

template <class K>
typename K::V vsigmoid(typename K::V x) {
  using V = typename K::V;
  V e = vexp_nonpos<K>(K::orv(x, K::signmask()));  // e^-|x| in [0, 1]: no overflow
  V r = K::div(K::set(1), K::add(K::set(1), e));
  return K::select_by_sign(x, K::mul(e, r), r);  // x < 0: e^x / (1 + e^x)
}

template <class K>
typename K::V vtanh(typename K::V x) {
  using V = typename K::V;
  V ax = K::abs(x);
  V m = vexpm1_nonpos<K>(K::mul(ax, K::set(-2)));
  V t = K::div(K::sub(K::zero(), m), K::add(K::set(2), m));  // tanh|x| = -m / (2 + m)
  V y = K::orv(t, K::andv(x, K::signmask()));
  return K::select(K::isnan(x), x, y);
}

// float tanh(|x|) = a P(a^2) / Q(a^2), a = min(|x|, 9.2) (beyond 9.2 tanh rounds to 1 in float),
// sign copied back: our own minimax fit of the relative error (5e-8; P(0) = Q(0) = 1, so
// tanh(x) = x for tiny x). Checked on every float: relative error <= 3.4e-7 (rounding in the
// evaluation: <= 3 ulp at the bottom of a binade, <= 5.6 ulp just below 1), |y| <= 1, y(inf) = 1.
// 16 instructions against ~35 for the exp route; abs/and/or instead of max/min, because those
// share the two FMA pipes that bound this loop.
template <>
F32::V vtanh<F32>(F32::V x) {
  using K = F32;
  using V = K::V;
  V a = K::min(K::set(9.2f), K::abs(x));  // min returns its 2nd operand for NaN
  V s = K::mul(a, a);
  V p = K::fma(K::set(-9.85790424e-12f), s, K::set(2.70306823e-08f));
  p = K::fma(p, s, K::set(2.63893891e-05f));
  p = K::fma(p, s, K::set(0.00378380286f));
  p = K::fma(p, s, K::set(0.136112808f));
  p = K::fma(p, s, K::set(1.0f));
  V q = K::fma(K::set(1.17885856e-06f), s, K::set(0.000379274639f));
  q = K::fma(q, s, K::set(0.0269326831f));
  q = K::fma(q, s, K::set(0.469445952f));
  q = K::fma(q, s, K::set(1.0f));
  V y = K::min(K::set(1.0f), K::div(K::mul(a, p), q));  // rounding can overshoot 1 by an ulp
  return K::orv(y, K::andv(x, K::signmask()));
}

template <class K>
typename K::V vsoftplus(typename K::V x) {
  using V = typename K::V;
  V e = vexp<K>(K::sub(K::zero(), K::abs(x)));
  V y = K::add(K::max(x, K::zero()), vlog1p_unit<K>(e));  // max(x,0) + log(1 + e^-|x|)
  y = K::select(K::gt(x, K::set(K::softplus_threshold)), x, y);
  return K::select(K::isnan(x), x, y);
}

template <class K>
typename K::V vforward(Activation kind, typename K::V x, typename K::V slope) {
  using V = typename K::V;
  switch (kind) {
    case Activation::identity: return x;
    case Activation::relu: return K::max(K::zero(), x);  // NaN -> x (max returns 2nd operand)
    case Activation::leaky_relu: return K::select(K::gt(x, K::zero()), x, K::mul(x, slope));
    case Activation::softplus: return vsoftplus<K>(x);
    case Activation::sigmoid: return vsigmoid<K>(x);
    case Activation::tanh: return vtanh<K>(x);
    case Activation::step: {
      V y = K::andv(K::gt(x, K::zero()), K::set(1));
      return K::select(K::isnan(x), x, y);
    }
  }
  return x;
}

// Streaming (non-temporal) stores skip the read-for-ownership of y: for arrays far larger
// than the caches they cut memory traffic from 3 to 2 passes. Used once y is 32-byte aligned.
template <class K>
bool aligned32(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 31) == 0; }

// Software prefetch this far ahead of the loads in the compute-heavy loops (exp, tanh): there
// the hardware prefetcher alone leaves them waiting on DRAM (sigmoid fwd 16M: 11.2 -> 8.4 ms);
// the pure bandwidth loops (relu) do better without it.
constexpr int64_t kPrefetchBytes = 2048;

template <class K, bool kPrefetch = false, class F>
void map_unary(int64_t i0, int64_t i1, const typename K::S* x, typename K::S* y, F f, bool stream = false) {
  int64_t i = i0;
  auto prefetch = [&] {
    if (kPrefetch) _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchBytes, _MM_HINT_T0);
  };
  if (stream) {
    for (; i + K::W <= i1 && !aligned32<K>(y + i); i += K::W) K::store(y + i, f(K::load(x + i)));
    for (; i + K::W <= i1; i += K::W) {
      prefetch();
      K::stream(y + i, f(K::load(x + i)));
    }
    _mm_sfence();
  }
  for (; i + K::W <= i1; i += K::W) {
    prefetch();
    K::store(y + i, f(K::load(x + i)));
  }
  if (i < i1) K::store(y + i, f(K::load(x + i, i1 - i)), i1 - i);
}

template <class K, class F>
void map_binary(int64_t i0, int64_t i1, const typename K::S* a, const typename K::S* b,
                typename K::S* y, F f, bool stream = false) {
  int64_t i = i0;
  if (stream) {
    for (; i + K::W <= i1 && !aligned32<K>(y + i); i += K::W) K::store(y + i, f(K::load(a + i), K::load(b + i)));
    for (; i + K::W <= i1; i += K::W) K::stream(y + i, f(K::load(a + i), K::load(b + i)));
    _mm_sfence();
  }
  for (; i + K::W <= i1; i += K::W) K::store(y + i, f(K::load(a + i), K::load(b + i)));
  if (i < i1) K::store(y + i, f(K::load(a + i, i1 - i), K::load(b + i, i1 - i)), i1 - i);
}

template <class K>
void forward_impl(Activation kind, int64_t i0, int64_t i1, const typename K::S* x, typename K::S* y,
                  typename K::S negative_slope, bool st) {
  using V = typename K::V;
  const V slope = K::set(negative_slope);
  // Switch outside the loop so each kind gets its own straight-line loop.
  switch (kind) {
    case Activation::softplus: map_unary<K, true>(i0, i1, x, y, [](V v) { return vsoftplus<K>(v); }, st); break;
    case Activation::sigmoid: map_unary<K, true>(i0, i1, x, y, [](V v) { return vsigmoid<K>(v); }, st); break;
    case Activation::tanh: map_unary<K, true>(i0, i1, x, y, [](V v) { return vtanh<K>(v); }, st); break;
    case Activation::relu: map_unary<K>(i0, i1, x, y, [](V v) { return vforward<K>(Activation::relu, v, v); }, st); break;
    default: map_unary<K>(i0, i1, x, y, [&](V v) { return vforward<K>(kind, v, slope); }, st); break;
  }
}

template <class K>
void backward_impl(Activation kind, int64_t i0, int64_t i1, const typename K::S* xy,
                   const typename K::S* dy, typename K::S* dx, typename K::S negative_slope, bool st) {
  using V = typename K::V;
  const V one = K::set(1), zero = K::zero(), slope = K::set(negative_slope);
  switch (kind) {
    case Activation::identity:
      map_binary<K>(i0, i1, xy, dy, dx, [](V, V g) { return g; }, st);
      break;
    case Activation::relu:  // NOTE: relu'(0) = 0; NaN x passes dy (x <= 0 is false), as PyTorch
      map_binary<K>(i0, i1, xy, dy, dx, [&](V x, V g) { return K::select(K::le(x, zero), zero, g); }, st);
      break;
    case Activation::leaky_relu:
      map_binary<K>(i0, i1, xy, dy, dx, [&](V x, V g) { return K::select(K::gt(x, zero), g, K::mul(g, slope)); }, st);
      break;
    case Activation::softplus:  // d/dx log(1+e^x) = sigmoid(x); x > threshold: 1
      map_binary<K>(i0, i1, xy, dy, dx, [&](V x, V g) {
        V d = K::mul(g, vsigmoid<K>(x));
        return K::select(K::gt(x, K::set(K::softplus_threshold)), g, d);
      }, st);
      break;
    case Activation::sigmoid:  // reads y: y (1 - y)
      map_binary<K>(i0, i1, xy, dy, dx, [&](V y, V g) { return K::mul(g, K::mul(y, K::sub(one, y))); }, st);
      break;
    case Activation::tanh:  // reads y: 1 - y^2
      map_binary<K>(i0, i1, xy, dy, dx, [&](V y, V g) { return K::mul(g, K::fnma(y, y, one)); }, st);
      break;
    case Activation::step:  // zero gradient everywhere
      map_binary<K>(i0, i1, xy, dy, dx, [&](V, V) { return zero; }, st);
      break;
  }
}

template <class K>
double exp_shift_sum_impl(int64_t n, const typename K::S* x, typename K::S shift, typename K::S* y) {
  using V = typename K::V;
  const V sh = K::set(shift);
  V acc = K::zero();
  int64_t i = 0;
  for (; i + K::W <= n; i += K::W) {
    V e = vexp_nonpos<K>(K::sub(K::load(x + i), sh));  // x - row max <= 0
    K::store(y + i, e);
    acc = K::add(acc, e);
  }
  double sum = K::hsum_to_double(acc);
  if (i < n) {
    V e = vexp_nonpos<K>(K::sub(K::load(x + i, n - i), sh));
    K::store(y + i, e, n - i);
    // only the first n - i lanes are real (the masked-out ones hold exp(0 - shift))
    for (int64_t j = i; j < n; ++j) sum += y[j];
  }
  return sum;
}

// One pass: four running maxima (independent chains) and a sticky "saw a NaN" mask, since
// vmaxps alone drops a NaN on the next compare.
template <class K>
typename K::S max_impl(int64_t n, const typename K::S* x) {
  using V = typename K::V;
  using S = typename K::S;
  const V ninf = K::set(-__builtin_inf());
  V m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf, bad = K::zero();
  int64_t i = 0;
  for (; i + 4 * K::W <= n; i += 4 * K::W) {
    V a = K::load(x + i), b = K::load(x + i + K::W), c = K::load(x + i + 2 * K::W), d = K::load(x + i + 3 * K::W);
    m0 = K::max(m0, a);
    m1 = K::max(m1, b);
    m2 = K::max(m2, c);
    m3 = K::max(m3, d);
    bad = K::orv(bad, K::orv(K::unord(a, b), K::unord(c, d)));
  }
  for (; i + K::W <= n; i += K::W) {
    V a = K::load(x + i);
    m0 = K::max(m0, a);
    bad = K::orv(bad, K::isnan(a));
  }
  m0 = K::max(K::max(m0, m1), K::max(m2, m3));
  alignas(32) S lanes[K::W];
  K::store(lanes, m0);
  S m = lanes[0];
  for (int k = 1; k < K::W; ++k) m = lanes[k] > m ? lanes[k] : m;
  for (; i < n; ++i) {
    if (x[i] != x[i]) return x[i];
    m = x[i] > m ? x[i] : m;
  }
  if (K::any(bad)) {
    for (int64_t j = 0; j < n; ++j)
      if (x[j] != x[j]) return x[j];
  }
  return m;
}

// Reductions in double with four independent accumulators (K::add_to_double widens floats).
template <class K>
double dot_impl(int64_t n, const typename K::S* a, const typename K::S* b) {
  using V = typename K::V;
  V lo0 = K::zero(), hi0 = K::zero(), lo1 = K::zero(), hi1 = K::zero();
  int64_t i = 0;
  for (; i + 2 * K::W <= n; i += 2 * K::W) {
    K::fma_to_double(K::load(a + i), K::load(b + i), lo0, hi0);
    K::fma_to_double(K::load(a + i + K::W), K::load(b + i + K::W), lo1, hi1);
  }
  double s = K::double_sum(lo0, hi0) + K::double_sum(lo1, hi1);
  for (; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

template <class K>
double sum_impl(int64_t n, const typename K::S* a) {
  using V = typename K::V;
  V lo0 = K::zero(), hi0 = K::zero(), lo1 = K::zero(), hi1 = K::zero();
  int64_t i = 0;
  for (; i + 2 * K::W <= n; i += 2 * K::W) {
    K::add_to_double(K::load(a + i), lo0, hi0);
    K::add_to_double(K::load(a + i + K::W), lo1, hi1);
  }
  double s = K::double_sum(lo0, hi0) + K::double_sum(lo1, hi1);
  for (; i < n; ++i) s += a[i];
  return s;
}

// Column sums of an N x F row-major block [j0, j1): eight rows added (as a tree) per pass over
// the block, so the running sums (in db itself, L1-resident) are read and written once per
// eight rows.
template <class K>
void col_sum_impl(int64_t N, int64_t F, int64_t j0, int64_t j1, const typename K::S* dy, typename K::S* db) {
  using V = typename K::V;
  using S = typename K::S;
  for (int64_t j = j0; j < j1; ++j) db[j] = S(0);
  int64_t n = 0;
  for (; n + 8 <= N; n += 8) {
    const S* r = dy + n * F;
    int64_t j = j0;
    for (; j + K::W <= j1; j += K::W) {
      if (((j - j0) & (64 / sizeof(S) - 1)) == 0 && n + 16 <= N)
        for (int k = 8; k < 16; ++k) _mm_prefetch(reinterpret_cast<const char*>(r + k * F + j), _MM_HINT_T0);
      V a = K::add(K::add(K::load(r + j), K::load(r + F + j)), K::add(K::load(r + 2 * F + j), K::load(r + 3 * F + j)));
      V b = K::add(K::add(K::load(r + 4 * F + j), K::load(r + 5 * F + j)),
                   K::add(K::load(r + 6 * F + j), K::load(r + 7 * F + j)));
      K::store(db + j, K::add(K::load(db + j), K::add(a, b)));
    }
    for (; j < j1; ++j)
      db[j] += ((r[j] + r[F + j]) + (r[2 * F + j] + r[3 * F + j])) +
               ((r[4 * F + j] + r[5 * F + j]) + (r[6 * F + j] + r[7 * F + j]));
  }
  for (; n < N; ++n) {
    const S* r = dy + n * F;
    int64_t j = j0;
    for (; j + K::W <= j1; j += K::W) K::store(db + j, K::add(K::load(db + j), K::load(r + j)));
    for (; j < j1; ++j) db[j] += r[j];
  }
}

template <class K>
void scale_impl(int64_t n, const typename K::S* x, typename K::S s, typename K::S* y) {
  const typename K::V sv = K::set(s);
  int64_t i = 0;
  for (; i + K::W <= n; i += K::W) K::store(y + i, K::mul(sv, K::load(x + i)));
  if (i < n) K::store(y + i, K::mul(sv, K::load(x + i, n - i)), n - i);
}

// max(x,0) - x t + log(1 + e^-|x|), the stable BCE on logits (NaN x gives NaN).
template <class K>
typename K::V vbce_term(typename K::V x, typename K::V t) {
  typename K::V e = vexp_nonpos<K>(K::orv(x, K::signmask()));  // e^-|x| in [0, 1]
  return K::add(K::fnma(x, t, K::max(x, K::zero())), vlog1p_unit<K>(e));
}

template <class K>
double bce_sum_impl(int64_t i0, int64_t i1, const typename K::S* x, const typename K::S* t) {
  using V = typename K::V;
  V acc_lo = K::zero(), acc_hi = K::zero();  // double partial sums (K::add_to_double)
  int64_t i = i0;
  for (; i + K::W <= i1; i += K::W) K::add_to_double(vbce_term<K>(K::load(x + i), K::load(t + i)), acc_lo, acc_hi);
  double sum = K::double_sum(acc_lo, acc_hi);
  if (i < i1) {
    alignas(32) typename K::S lanes[K::W];
    K::store(lanes, vbce_term<K>(K::load(x + i, i1 - i), K::load(t + i, i1 - i)));
    for (int64_t j = 0; j < i1 - i; ++j) sum += lanes[j];
  }
  return sum;
}

// dx = scale * (sigmoid(x) - t)
template <class K>
void bce_grad_impl(int64_t i0, int64_t i1, const typename K::S* x, const typename K::S* t, typename K::S scale,
                   typename K::S* dx) {
  using V = typename K::V;
  const V sc = K::set(scale);
  map_binary<K>(i0, i1, x, t, dx, [&](V xv, V tv) { return K::mul(sc, K::sub(vsigmoid<K>(xv), tv)); });
}

}  // namespace

namespace detail {
void act_forward_avx2(Activation kind, int64_t i0, int64_t i1, const float* x, float* y, float negative_slope,
                      bool stream) {
  forward_impl<F32>(kind, i0, i1, x, y, negative_slope, stream);
}
void act_forward_avx2(Activation kind, int64_t i0, int64_t i1, const double* x, double* y, double negative_slope,
                      bool stream) {
  forward_impl<F64>(kind, i0, i1, x, y, negative_slope, stream);
}
void act_backward_avx2(Activation kind, int64_t i0, int64_t i1, const float* xy, const float* dy, float* dx,
                       float negative_slope, bool stream) {
  backward_impl<F32>(kind, i0, i1, xy, dy, dx, negative_slope, stream);
}
void act_backward_avx2(Activation kind, int64_t i0, int64_t i1, const double* xy, const double* dy, double* dx,
                       double negative_slope, bool stream) {
  backward_impl<F64>(kind, i0, i1, xy, dy, dx, negative_slope, stream);
}
double exp_shift_sum_avx2(int64_t n, const float* x, float shift, float* y) { return exp_shift_sum_impl<F32>(n, x, shift, y); }
float max_avx2(int64_t n, const float* x) { return max_impl<F32>(n, x); }
double max_avx2(int64_t n, const double* x) { return max_impl<F64>(n, x); }
void scale_avx2(int64_t n, const float* x, float s, float* y) { scale_impl<F32>(n, x, s, y); }
double dot_avx2(int64_t n, const float* a, const float* b) { return dot_impl<F32>(n, a, b); }
double dot_avx2(int64_t n, const double* a, const double* b) { return dot_impl<F64>(n, a, b); }
double sum_avx2(int64_t n, const float* a) { return sum_impl<F32>(n, a); }
double sum_avx2(int64_t n, const double* a) { return sum_impl<F64>(n, a); }
void col_sum_avx2(int64_t N, int64_t F, int64_t j0, int64_t j1, const float* dy, float* db) {
  col_sum_impl<F32>(N, F, j0, j1, dy, db);
}
void col_sum_avx2(int64_t N, int64_t F, int64_t j0, int64_t j1, const double* dy, double* db) {
  col_sum_impl<F64>(N, F, j0, j1, dy, db);
}
void scale_avx2(int64_t n, const double* x, double s, double* y) { scale_impl<F64>(n, x, s, y); }
double bce_with_logits_sum_avx2(int64_t i0, int64_t i1, const float* x, const float* t) {
  return bce_sum_impl<F32>(i0, i1, x, t);
}
double bce_with_logits_sum_avx2(int64_t i0, int64_t i1, const double* x, const double* t) {
  return bce_sum_impl<F64>(i0, i1, x, t);
}
void bce_with_logits_grad_avx2(int64_t i0, int64_t i1, const float* x, const float* t, float scale, float* dx) {
  bce_grad_impl<F32>(i0, i1, x, t, scale, dx);
}
void bce_with_logits_grad_avx2(int64_t i0, int64_t i1, const double* x, const double* t, double scale, double* dx) {
  bce_grad_impl<F64>(i0, i1, x, t, scale, dx);
}
double exp_shift_sum_avx2(int64_t n, const double* x, double shift, double* y) { return exp_shift_sum_impl<F64>(n, x, shift, y); }
void exp_avx2(int64_t n, const float* x, float* y) { map_unary<F32>(0, n, x, y, [](__m256 v) { return vexp<F32>(v); }); }
void exp_avx2(int64_t n, const double* x, double* y) { map_unary<F64>(0, n, x, y, [](__m256d v) { return vexp<F64>(v); }); }
}  // namespace detail

}  // namespace lamina
#endif  // LAMINA_X86
