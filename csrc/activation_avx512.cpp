// AVX-512F float tanh and sigmoid forward (activation.h: detail::act_forward_avx512). Compiled
// with -mavx512f; activation.cpp calls it only when active_isa() == Isa::avx512.
//
// 16 lanes per instruction, and the AVX-512 pieces that make an accurate exp cheap: vscalefps
// (p * 2^n in one rounding, denormal results included, so no exponent-bit tricks or split
// scales), vrndscaleps, and vrcp14ps refined by one Newton step instead of a division
// (vdivps zmm is several times slower than the FMAs around it).
// Accuracy (checked on every float by csrc/tests/test_activation_allfloats.cpp): tanh and sigmoid
// within 2 ulp of the float64 value; tanh(x) = x for |x| < 2^-12, tanh(+-inf) = +-1, sigmoid's
// denormal outputs for x < -87.3 rounded once, NaN in gives NaN out.
#include "activation.h"

#if defined(LAMINA_X86)
// GCC 12's avx512fintrin.h seeds the unmasked roundscale / scalef / rcp14 with
// _mm512_undefined_ps(), which -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace lamina {
namespace detail {
namespace {

inline __m512 set(float v) { return _mm512_set1_ps(v); }

// e^z for z in [-104, 19] (NaN passes through). z = n ln2 + r, |r| <= ln2/2 (ln2 in two parts:
// n * hi is exact); e^r by a degree-6 polynomial, our own relative minimax fit (fit error 2^-28.9,
// 1 + r + ... with the leading 1 added by the last FMA), then scalef(e^r, n) = e^r * 2^n, rounded
// once even when the result is denormal. Six FMAs where the Taylor series needs eight for the same
// accuracy: on Zen 4 one zmm FMA issues per cycle and the FMAs are what this loop waits on.
inline __m512 exp_reduced(__m512 z) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(z, set(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, set(0.6931471824645996f), z);  // ln2's high part: n * hi exact
  r = _mm512_fnmadd_ps(n, set(-1.9046542121259336e-09f), r);    // ... and the rest of ln2
  __m512 p = set(1.384364325e-03f);
  p = _mm512_fmadd_ps(p, r, set(8.374155499e-03f));
  p = _mm512_fmadd_ps(p, r, set(4.166800156e-02f));
  p = _mm512_fmadd_ps(p, r, set(1.666643173e-01f));
  p = _mm512_fmadd_ps(p, r, set(4.999999404e-01f));
  p = _mm512_fmadd_ps(p, r, set(1.0f));
  p = _mm512_fmadd_ps(p, r, set(1.0f));
  return _mm512_scalef_ps(p, n);
}

// tanh on [0, 9.02] in 16 pieces, so that each coefficient is one vpermps from a single register (a
// two-register vpermt2ps costs more: measured on Zen 4, vpermt2ps + FMA pairs issue at one per
// cycle, vpermps + FMA pairs at 1.5). The pieces are quarter binades of s = a + 0.625, not of a:
// s's float bits >> 21 give the piece, and the shift by 0.625 narrows the pieces where tanh bends
// most (width 1/4 on [0.375, 1.375], 1/2 up to 3.375, 1 up to 7.375) and widens them near 0 (one
// piece for [0, 1/8), where tanh is nearly a) and near 1, which is what lets degree 5 stay within 2
// ulp with 16 pieces (on 16 half binades of a itself degree 5 is 6.7 ulp off, and degree 6 costs a
// permute and an FMA more). The low 4 bits of the piece number are the slot: the 16 pieces, s in
// [0.625, 10), are 16 consecutive numbers. Per piece, t = a - L (L = its left end, exact: L is a
// multiple of a's ulp, and a rounded s only moves a lane to the neighbouring piece, whose fit
// covers that half-ulp overhang), and tanh(a) ~ c0 + t (c1 + t (c2 + t (c3 + t (c4 + t c5)))). Our
// own fits (iteratively reweighted least squares towards relative minimax, then each coefficient
// rounded to float from the top down with the lower ones refitted); the piece at 0 has c0 = 0, c1 =
// 1, so tanh(x) = x for tiny x. Largest error of the float evaluation over every float: see
// activation.h.
alignas(64) const float kTanhL[16] = {
    1.375f, 1.875f, 2.375f, 2.875f, 3.375f, 4.375f, 5.375f, 6.375f, 7.375f, 0.0f, 0.125f, 0.25f,
    0.375f, 0.625f, 0.875f, 1.125f};
alignas(64) const float kTanhC[6][16] = {
  {
    0.879826665f, 0.954045236f, 0.982845008f, 0.993654609f, 0.997660995f, 0.999683142f,
    0.999957085f, 0.999994218f, 0.999999225f, 0.0f, 0.124352999f, 0.244918659f, 0.3583574f,
    0.554599702f, 0.703905582f, 0.809301078f},
  {
    0.225909784f, 0.0897970945f, 0.034014944f, 0.0126501275f, 0.0046697217f, 0.000633247604f,
    8.57240302e-05f, 1.16019128e-05f, 1.5642263e-06f, 1.0f, 0.98453629f, 0.94001478f, 0.871578455f,
    0.692419052f, 0.504517496f, 0.345032305f},
  {
    -0.198877573f, -0.0856592283f, -0.0334154144f, -0.0125620784f, -0.00462663453f,
    -0.00062855822f, -8.51103687e-05f, -1.1519247e-05f, -1.51743234e-06f, 3.13288666e-07f,
    -0.122425161f, -0.230220586f, -0.312261194f, -0.384009778f, -0.355160743f, -0.279259026f},
  {
    0.100686528f, 0.0517119914f, 0.0213751066f, 0.00820231345f, 0.00293355528f, 0.000399696088f,
    5.41422596e-05f, 7.32826129e-06f, 8.90834542e-07f, -0.333355635f, -0.313128531f, -0.257183611f,
    -0.179982156f, -0.0179625526f, 0.0822929442f, 0.111400992f},
  {
    -0.0261884816f, -0.0205929298f, -0.00943448488f, -0.00374396588f, -0.00119159941f,
    -0.000162934317f, -2.20814345e-05f, -2.98895952e-06f, -3.04458212e-07f, 0.000472512067f,
    0.082469143f, 0.143339172f, 0.179535091f, 0.139337242f, 0.0570966415f, -0.000120458222f},
  {
    0.0010887963f, 0.00445078034f, 0.00236014393f, 0.000976306386f, 0.00023710508f,
    3.25313886e-05f, 4.4107851e-06f, 5.97084068e-07f, 4.59345451e-08f, 0.129987463f, 0.0971129313f,
    0.0459346436f, -0.0256542023f, -0.0633771494f, -0.0463101938f, -0.0193785951f}};

// tanh(x) = sign(x) T(min(|x|, 9.02)): from 9.02 up tanh rounds to 1 (1 - tanh < 2^-25), and the
// top piece gives exactly 1 at 9.02, so tanh(+-inf) = +-1 with no compare; min keeps NaN, whose
// slot is garbage but whose t is NaN. (AVX512DQ's vrangeps would do abs and min in one op, but for
// a quiet-NaN operand it returns the other one, 9.02, so tanh(NaN) would come out +-1.) Per
// vector: 7 permutes, 5 FMAs, min, add, shift, sub and two integer logic ops (the old 32-piece
// form: 7 two-register permutes, 5 FMAs and 9 more). Zen 4 runs
// each zmm op double-pumped on its 256-bit pipes, and this loop costs about 0.7 cycles per vector
// op whatever the op (measured), so the count of ops is what matters. Intel's AVX-512 cores run the
// same code: one permute per cycle on port 5 either way, and fewer ops in all. kGroup vectors go
// through each step together: the chain load -> shift -> permute -> five FMAs is ~35 cycles long,
// and interleaving four independent chains keeps the FP scheduler fed (measured on Zen 4: 4 at a
// time ~10% faster than 1, 8 spills registers; a software-pipelined loop, the permutes and sub of
// the next group issued before the FMAs of this one, measured no faster).
struct Tanh16 {
  static constexpr int kGroup = 4;
  __m512 l = _mm512_load_ps(kTanhL), c0 = _mm512_load_ps(kTanhC[0]),
         c1 = _mm512_load_ps(kTanhC[1]), c2 = _mm512_load_ps(kTanhC[2]),
         c3 = _mm512_load_ps(kTanhC[3]), c4 = _mm512_load_ps(kTanhC[4]),
         c5 = _mm512_load_ps(kTanhC[5]);
  template <int U>
  void operator()(__m512 (&v)[U]) const {
    __m512 a[U], t[U], p[U];
    __m512i idx[U];
#define LAMINA_EACH _Pragma("GCC unroll 8") for (int j = 0; j < U; ++j)
    LAMINA_EACH a[j] = _mm512_min_ps(set(9.02f), _mm512_castsi512_ps(_mm512_and_epi32(
                           _mm512_castps_si512(v[j]), _mm512_set1_epi32(0x7fffffff))));
    LAMINA_EACH idx[j] =
        _mm512_srli_epi32(_mm512_castps_si512(_mm512_add_ps(a[j], set(0.625f))), 21);
    LAMINA_EACH t[j] = _mm512_sub_ps(a[j], _mm512_permutexvar_ps(idx[j], l));
    LAMINA_EACH p[j] = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx[j], c5), t[j],
                                       _mm512_permutexvar_ps(idx[j], c4));
    LAMINA_EACH p[j] = _mm512_fmadd_ps(p[j], t[j], _mm512_permutexvar_ps(idx[j], c3));
    LAMINA_EACH p[j] = _mm512_fmadd_ps(p[j], t[j], _mm512_permutexvar_ps(idx[j], c2));
    LAMINA_EACH p[j] = _mm512_fmadd_ps(p[j], t[j], _mm512_permutexvar_ps(idx[j], c1));
    LAMINA_EACH p[j] = _mm512_fmadd_ps(p[j], t[j], _mm512_permutexvar_ps(idx[j], c0));
    // p | (x & sign): vpternlogd truth table A | (B & C) = 0xF8
    LAMINA_EACH v[j] = _mm512_castsi512_ps(
        _mm512_ternarylogic_epi32(_mm512_castps_si512(p[j]), _mm512_castps_si512(v[j]),
                                  _mm512_set1_epi32(int(0x80000000u)), 0xF8));
#undef LAMINA_EACH
  }
};

// sigmoid(x) = u / (1 + e), e = e^-|x| in [0, 1] (no overflow), u = 1 for x >= 0 (1 / (1 + e^-x))
// and u = e for x < 0 (e^x / (1 + e^x): relative accuracy down into the denormals). d = 1 + e
// is carried as d + d_lo (Fast2Sum, exact). The quotient: q0 = u * rcp14(d), then one correction
// against both parts of d, q = q0 + r0 (u - q0 (d + d_lo)): its error is the product of the
// estimate's and the reciprocal's (2^-14 each), 2^-28, so the reciprocal itself needs no Newton
// step (two FMAs fewer than refining it first), and the rounding of 1 + e costs nothing.
inline __m512 sigmoid16(__m512 x) {
  const __m512 z = _mm512_castsi512_ps(
      _mm512_or_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(int(0x80000000u))));  // -|x|
  const __m512 e = exp_reduced(_mm512_max_ps(set(-104.0f), z));  // max keeps NaN; e^-104 -> 0
  const __m512 one = set(1.0f);
  const __m512 d = _mm512_add_ps(one, e);
  const __m512 d_lo = _mm512_add_ps(_mm512_sub_ps(one, d), e);  // 1 + e - d exactly (1 >= e)
  const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 u = _mm512_mask_blend_ps(neg, one, e);
  const __m512 r0 = _mm512_rcp14_ps(d);
  const __m512 q0 = _mm512_mul_ps(u, r0);
  const __m512 res = _mm512_fnmadd_ps(q0, d_lo, _mm512_fnmadd_ps(q0, d, u));  // u - q0 (d + d_lo)
  return _mm512_fmadd_ps(r0, res, q0);
}

// Software prefetch this far ahead of the loads: the math is heavy enough that the hardware
// prefetcher alone leaves the loop waiting on DRAM for arrays past the caches (as in the AVX2
// activation loops).
constexpr int64_t kPrefetchBytes = 2048;

template <class F>
void map16(int64_t i0, int64_t i1, const float* x, float* y, bool stream, F f) {
  int64_t i = i0;
  if (stream) {  // non-temporal stores once y is 64-byte aligned (no read for ownership)
    for (; i + 16 <= i1 && (reinterpret_cast<uintptr_t>(y + i) & 63) != 0; i += 16)
      _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
    for (; i + 16 <= i1; i += 16) {
      _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchBytes, _MM_HINT_T0);
      _mm512_stream_ps(y + i, f(_mm512_loadu_ps(x + i)));
    }
    _mm_sfence();
  }
  for (; i + 16 <= i1; i += 16) {
    _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchBytes, _MM_HINT_T0);
    _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  }
  if (i < i1) {  // the tail through the same arithmetic, masked: nothing past i1 is touched
    const __mmask16 m = static_cast<__mmask16>((1u << (i1 - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// map16 for a kernel that takes F::kGroup vectors at a time (Tanh16): whole groups in the main
// loop, then single vectors, then the masked tail. All of a group is loaded before any of it is
// stored, so y == x still works.
template <class F>
void map16_grouped(int64_t i0, int64_t i1, const float* x, float* y, bool stream, const F& f) {
  constexpr int U = F::kGroup;
  const auto one = [&](int64_t i) {
    __m512 v[1] = {_mm512_loadu_ps(x + i)};
    f(v);
    return v[0];
  };
  const auto group = [&](int64_t i, __m512 (&v)[U]) {
    for (int j = 0; j < U; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(x + i + 16 * j) + kPrefetchBytes, _MM_HINT_T0);
      v[j] = _mm512_loadu_ps(x + i + 16 * j);
    }
    f(v);
  };
  int64_t i = i0;
  if (stream) {  // non-temporal stores once y is 64-byte aligned (no read for ownership)
    for (; i + 16 <= i1 && (reinterpret_cast<uintptr_t>(y + i) & 63) != 0; i += 16)
      _mm512_storeu_ps(y + i, one(i));
    for (; i + 16 * U <= i1; i += 16 * U) {
      __m512 v[U];
      group(i, v);
      for (int j = 0; j < U; ++j) _mm512_stream_ps(y + i + 16 * j, v[j]);
    }
    for (; i + 16 <= i1; i += 16) _mm512_stream_ps(y + i, one(i));
    _mm_sfence();
  }
  for (; i + 16 * U <= i1; i += 16 * U) {
    __m512 v[U];
    group(i, v);
    for (int j = 0; j < U; ++j) _mm512_storeu_ps(y + i + 16 * j, v[j]);
  }
  for (; i + 16 <= i1; i += 16) _mm512_storeu_ps(y + i, one(i));
  if (i < i1) {  // the tail through the same arithmetic, masked: nothing past i1 is touched
    const __mmask16 m = static_cast<__mmask16>((1u << (i1 - i)) - 1u);
    __m512 v[1] = {_mm512_maskz_loadu_ps(m, x + i)};
    f(v);
    _mm512_mask_storeu_ps(y + i, m, v[0]);
  }
}

}  // namespace

bool act_forward_avx512(Activation kind, int64_t i0, int64_t i1, const float* x, float* y,
                        bool stream) {
  switch (kind) {
    case Activation::tanh: map16_grouped(i0, i1, x, y, stream, Tanh16{}); return true;
    case Activation::sigmoid: map16(i0, i1, x, y, stream, sigmoid16); return true;
    default: return false;
  }
}

}  // namespace detail
}  // namespace lamina
#endif  // LAMINA_X86
