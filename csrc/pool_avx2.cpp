// AVX2 path of the 2x2 stride-2 max pool (no padding / dilation): branch-free compares over
// 8 (float) or 4 (double) output columns at once, values and int64 indices together.
// Even/odd input columns are split with in-lane shuffles plus one cross-lane permute; the
// window is scanned in row-major order with "take v if v > m or v is NaN", so the first max
// wins ties and a NaN (the last one, as in the scalar rule) always wins.
#if defined(LAMINA_X86)
#include <immintrin.h>

#include <cstdint>

#include "pool.h"

namespace lamina {
namespace detail {

// Vector step of the same rule: where v > m or v is NaN, take v and its offset code.
static inline void take(__m256 v, __m256 code, __m256& m, __m256& off) {
  const __m256 t = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  m = _mm256_blendv_ps(m, v, t);
  off = _mm256_blendv_ps(off, code, t);
}
static inline void take(__m256d v, __m256d code, __m256d& m, __m256d& off) {
  const __m256d t = _mm256_or_pd(_mm256_cmp_pd(v, m, _CMP_GT_OQ), _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
  m = _mm256_blendv_pd(m, v, t);
  off = _mm256_blendv_pd(off, code, t);
}

// Every output row of a plane: block(oh, r0, r1, yr, ir, ow) writes the L outputs from ow on;
// a ragged end is one more block overlapping the last (same values rewritten), and a row
// narrower than L goes through the scalar window (pool.h).
template <int L, class T, class Block>
static void for_each_row(const T* xp, int64_t W, int64_t OH, int64_t OW, T* yp, int64_t* ip,
                         Block block) {
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* r0 = xp + 2 * oh * W;
    const T* r1 = r0 + W;
    T* yr = yp + oh * OW;
    int64_t* ir = ip + oh * OW;
    int64_t ow = 0;
    for (; ow + L <= OW; ow += L) block(oh, r0, r1, yr, ir, ow);
    if (ow < OW && OW >= L) {
      block(oh, r0, r1, yr, ir, OW - L);
      ow = OW;
    }
    max_pool2x2_cols(r0, r1, W, oh, ow, OW, yr, ir);
  }
}

void max_pool2x2_plane_avx2(const float* xp, int64_t W, int64_t OH, int64_t OW, float* yp, int64_t* ip) {
  const __m256 c1 = _mm256_castsi256_ps(_mm256_set1_epi32(1));
  const __m256 cW = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(W)));
  const __m256 cW1 = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(W + 1)));
  const __m256i lane_lo = _mm256_setr_epi64x(0, 2, 4, 6), lane_hi = _mm256_setr_epi64x(8, 10, 12, 14);
  // 8 outputs (ow .. ow+7) from input columns 2*ow .. 2*ow+15 of both rows.
  for_each_row<8>(xp, W, OH, OW, yp, ip, [&](int64_t oh, const float* r0, const float* r1,
                                          float* yr, int64_t* ir, int64_t ow) {
    const __m256 a0 = _mm256_loadu_ps(r0 + 2 * ow), b0 = _mm256_loadu_ps(r0 + 2 * ow + 8);
    const __m256 a1 = _mm256_loadu_ps(r1 + 2 * ow), b1 = _mm256_loadu_ps(r1 + 2 * ow + 8);
    // shuffle gives [a0 a2 b0 b2 | a4 a6 b4 b6]; permute 0,2,1,3 puts the columns in order.
    const __m256 e0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, b0, 0x88)), 0xD8));
    const __m256 o0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, b0, 0xDD)), 0xD8));
    const __m256 e1 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a1, b1, 0x88)), 0xD8));
    const __m256 o1 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a1, b1, 0xDD)), 0xD8));
    __m256 m = e0, off = _mm256_setzero_ps();  // off: 0, 1, W, W+1 as int32 bits
    take(o0, c1, m, off);
    take(e1, cW, m, off);
    take(o1, cW1, m, off);
    _mm256_storeu_ps(yr + ow, m);
    const __m256i base = _mm256_set1_epi64x(2 * oh * W + 2 * ow);
    const __m256i offi = _mm256_castps_si256(off);
    const __m256i lo = _mm256_add_epi64(_mm256_add_epi64(base, lane_lo), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(offi)));
    const __m256i hi = _mm256_add_epi64(_mm256_add_epi64(base, lane_hi), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(offi, 1)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ir + ow), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ir + ow + 4), hi);
  });
}

void max_pool2x2_plane_avx2(const double* xp, int64_t W, int64_t OH, int64_t OW, double* yp, int64_t* ip) {
  const __m256d c1 = _mm256_castsi256_pd(_mm256_set1_epi64x(1));
  const __m256d cW = _mm256_castsi256_pd(_mm256_set1_epi64x(W));
  const __m256d cW1 = _mm256_castsi256_pd(_mm256_set1_epi64x(W + 1));
  const __m256i lane = _mm256_setr_epi64x(0, 2, 4, 6);
  // 4 outputs from input columns 2*ow .. 2*ow+7.
  for_each_row<4>(xp, W, OH, OW, yp, ip, [&](int64_t oh, const double* r0, const double* r1,
                                          double* yr, int64_t* ir, int64_t ow) {
    const __m256d a0 = _mm256_loadu_pd(r0 + 2 * ow), b0 = _mm256_loadu_pd(r0 + 2 * ow + 4);
    const __m256d a1 = _mm256_loadu_pd(r1 + 2 * ow), b1 = _mm256_loadu_pd(r1 + 2 * ow + 4);
    // unpacklo gives [a0 b0 | a2 b2]; permute 0,2,1,3 -> [a0 a2 b0 b2].
    const __m256d e0 = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a0, b0), 0xD8);
    const __m256d o0 = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a0, b0), 0xD8);
    const __m256d e1 = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a1, b1), 0xD8);
    const __m256d o1 = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a1, b1), 0xD8);
    __m256d m = e0, off = _mm256_setzero_pd();  // off: 0, 1, W, W+1 as int64 bits
    take(o0, c1, m, off);
    take(e1, cW, m, off);
    take(o1, cW1, m, off);
    _mm256_storeu_pd(yr + ow, m);
    const __m256i base = _mm256_set1_epi64x(2 * oh * W + 2 * ow);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ir + ow),
                        _mm256_add_epi64(_mm256_add_epi64(base, lane), _mm256_castpd_si256(off)));
  });
}

}  // namespace detail
}  // namespace lamina
#endif
