// AVX-512F float tanh and sigmoid forward (activation.h: detail::act_forward_avx512). Compiled
// with -mavx512f; activation.cpp calls it only when active_isa() == Isa::avx512.
//
// 16 lanes per instruction, and the AVX-512 pieces that make an accurate exp cheap: vscalefps
// (p * 2^n in one rounding, denormal results included, so no exponent-bit tricks or split
// scales), vrndscaleps, and vrcp14ps refined by one Newton step instead of a division
// (vdivps zmm is several times slower than the FMAs around it).
// Accuracy (checked on a sweep of floats by csrc/tests/test_activation.cpp): tanh and sigmoid
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

// tanh on [0, 9.2] in 32 pieces, 4 per binade from 1/16 up (piece j >= 1 covers [lo, next lo),
// j = (float bits of a >> 21) - (those of 1/16), 0 below 5/64): t = a - lo, tanh(a) ~ c0 + t (c1
// + t (c2 + ... t c5)). Our own fits (fit relative error weighted least squares on Chebyshev
// nodes, coefficients rounded to float; piece 0 has c0 = 0, c1 = 1 so that tanh(x) = x for
// tiny x). Largest error of the float evaluation, sampled: 1.1 ulp.
alignas(64) const float kTanhLo[32] = {
    0.0f, 0.078125f, 0.09375f, 0.109375f, 0.125f, 0.15625f, 0.1875f, 0.21875f, 0.25f, 0.3125f,
    0.375f, 0.4375f, 0.5f, 0.625f, 0.75f, 0.875f, 1.0f, 1.25f, 1.5f, 1.75f, 2.0f, 2.5f, 3.0f, 3.5f, 4.0f,
    5.0f, 6.0f, 7.0f, 8.0f, 10.0f, 12.0f, 14.0f};
alignas(64) const float kTanhC[6][32] = {
  {
    0.0f, 0.0779664442f, 0.0934763029f, 0.108940929f, 0.124352999f, 0.154990733f, 0.185333207f,
    0.215326339f, 0.244918659f, 0.302709728f, 0.3583574f, 0.411570042f, 0.462117165f,
    0.554599702f, 0.635148942f, 0.703905582f, 0.761594176f, 0.848283648f, 0.905148268f,
    0.941375554f, 0.964027584f, 0.986614287f, 0.995054781f, 0.998177886f, 0.999329329f,
    0.999909222f, 0.999987721f, 0.999998331f, 0.999999762f, 1.0f, 1.0f, 1.0f},
  {
    1.0f, 0.99392122f, 0.991262197f, 0.988131881f, 0.98453635f, 0.975977898f, 0.965651631f,
    0.95363456f, 0.940014839f, 0.908366799f, 0.871579945f, 0.830610096f, 0.786447704f,
    0.692419112f, 0.59658581f, 0.5045169f, 0.419974953f, 0.280415237f, 0.180706784f,
    0.113812119f, 0.0706500709f, 0.0265916102f, 0.00986575801f, 0.00364077464f, 0.00134007609f,
    0.000181463838f, 2.45603696e-05f, 3.3239196e-06f, 4.49514573e-07f, 8.25352675e-09f,
    8.41971992e-10f, 2.02966199e-09f},
  {
    2.90908186e-08f, -0.0774924979f, -0.0926595256f, -0.107648008f, -0.122430034f, -0.151267499f,
    -0.178967282f, -0.205342621f, -0.230226755f, -0.274971038f, -0.312336743f, -0.341853887f,
    -0.363427252f, -0.384014189f, -0.378921449f, -0.355133891f, -0.319879234f, -0.237889543f,
    -0.163573399f, -0.107141197f, -0.068091929f, -0.0262216888f, -0.00981062278f,
    -0.00363163487f, -0.00132945343f, -0.000180119619f, -2.43801624e-05f, -3.29956242e-06f,
    -4.43765799e-07f, -8.11816303e-09f, 2.4989868e-09f, 4.36298997e-09f},
  {
    -0.333336681f, -0.325265467f, -0.321759492f, -0.317650288f, -0.312956691f, -0.301883787f,
    -0.288718522f, -0.273666024f, -0.256980836f, -0.219582364f, -0.178626314f, -0.136197165f,
    -0.0943338424f, -0.017877927f, 0.0418287516f, 0.0818626285f, 0.10410995f, 0.108629227f,
    0.0879418403f, 0.0629450232f, 0.0419642031f, 0.0168943126f, 0.00642206566f, 0.00239106943f,
    0.000844291411f, 0.000114481329f, 1.5497375e-05f, 2.09741529e-06f, 2.75780735e-07f,
    6.14383167e-09f, 3.68090336e-09f, 3.27165872e-09f},
  {
    0.000114459923f, 0.051215373f, 0.060992375f, 0.07052093f, 0.0798785165f, 0.0973899662f,
    0.113365263f, 0.12759234f, 0.140594929f, 0.159053847f, 0.168989807f, 0.17075175f,
    0.166802928f, 0.13867341f, 0.0994857773f, 0.0599506907f, 0.0237635672f, -0.0151349623f,
    -0.0259899162f, -0.0237242188f, -0.0173626598f, -0.00754501484f, -0.00294267409f,
    -0.00110569026f, -0.000343316933f, -4.65982048e-05f, -6.30886234e-06f, -8.53857102e-07f,
    -1.06117135e-07f, -1.28959921e-09f, 1.97945305e-09f, 1.00294661e-09f},
  {
    0.132030115f, 0.125117943f, 0.121939138f, 0.118284039f, 0.111992404f, 0.102181114f,
    0.0910141096f, 0.0787795931f, 0.0591743216f, 0.0320490561f, 0.00599989388f, -0.0171077326f,
    -0.0433712192f, -0.0615437366f, -0.0626801774f, -0.0530806743f, -0.0321005732f,
    -0.00953620952f, 0.0013899341f, 0.00460050534f, 0.00397784589f, 0.00191510445f,
    0.000770538929f, 0.000292653451f, 6.83059625e-05f, 9.27983729e-06f, 1.25654265e-06f,
    1.70066514e-07f, 1.91902281e-08f, 2.51249532e-09f, 4.55704696e-10f, 1.10536941e-10f}};

// a table of 32 floats in two registers; permutex2var picks element idx & 31 per lane
struct Table32 {
  __m512 lo, hi;
  explicit Table32(const float* t) : lo(_mm512_load_ps(t)), hi(_mm512_load_ps(t + 16)) {}
  __m512 at(__m512i idx) const { return _mm512_permutex2var_ps(lo, idx, hi); }
};

// tanh(x) = sign(x) * T(min(|x|, 9.2)) (tanh rounds to 1 beyond 9.2; min keeps NaN, whose
// piece index is garbage but whose t is NaN): one piece lookup per coefficient (a permute,
// on the shuffle port), five FMAs, no division and no exp. (An exp route, 1 - 2/(1 + e^(2a)),
// is as accurate but ran at 0.65x NumPy: twice the instructions on AVX-512's two vector ports.)
struct Tanh16 {
  Table32 lo{kTanhLo}, c0{kTanhC[0]}, c1{kTanhC[1]}, c2{kTanhC[2]}, c3{kTanhC[3]}, c4{kTanhC[4]},
      c5{kTanhC[5]};
  __m512 operator()(__m512 x) const {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512 a = _mm512_min_ps(
        set(9.2f), _mm512_castsi512_ps(_mm512_and_epi32(bits, _mm512_set1_epi32(0x7fffffff))));
    const __m512i idx = _mm512_max_epi32(
        _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(a), 21), _mm512_set1_epi32(kPiece0)),
        _mm512_setzero_si512());
    const __m512 t = _mm512_sub_ps(a, lo.at(idx));
    __m512 p = _mm512_fmadd_ps(c5.at(idx), t, c4.at(idx));
    p = _mm512_fmadd_ps(p, t, c3.at(idx));
    p = _mm512_fmadd_ps(p, t, c2.at(idx));
    p = _mm512_fmadd_ps(p, t, c1.at(idx));
    p = _mm512_fmadd_ps(p, t, c0.at(idx));
    // from 9.02 up, tanh rounds to 1 (1 - tanh < 2^-25): exactly 1, so tanh(inf) = 1
    p = _mm512_mask_mov_ps(p, _mm512_cmp_ps_mask(a, set(9.02f), _CMP_GE_OQ), set(1.0f));
    // p | (x & sign): vpternlogd truth table A | (B & C) = 0xF8
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
        _mm512_castps_si512(p), bits, _mm512_set1_epi32(int(0x80000000u)), 0xF8));
  }
  static constexpr int kPiece0 = 0x3d800000 >> 21;  // float bits of 1/16, as a piece index
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

}  // namespace

bool act_forward_avx512(Activation kind, int64_t i0, int64_t i1, const float* x, float* y,
                        bool stream) {
  switch (kind) {
    case Activation::tanh: map16(i0, i1, x, y, stream, Tanh16{}); return true;
    case Activation::sigmoid: map16(i0, i1, x, y, stream, sigmoid16); return true;
    default: return false;
  }
}

}  // namespace detail
}  // namespace lamina
#endif  // LAMINA_X86
