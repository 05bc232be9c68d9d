// In-register square transposes of AVX-512 vectors, shared by the direct-convolution forward
// (conv_direct_avx512.cpp: lane scatter) and backward (conv_direct_bwd_avx512.cpp: batch-in-lanes
// layout). Include only from *_avx512.cpp translation units (compiled with -mavx512f).
#pragma once
#if defined(LAMINA_X86)
#include <immintrin.h>

namespace lamina {
namespace avx512 {

// 16 x 16 floats: afterwards r[w] lane i = (before) r[i] lane w. Three rounds of shuffles: pairs
// of rows interleaved, 4-row columns gathered per 128-bit lane, then 128-bit lanes moved across
// the four 4-row groups.
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 4; ++k) {  // u[4k+m], 128-bit lane j = column 4j+m of rows 4k..4k+3
    u[4 * k + 0] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512 s0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), s1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
    const __m512 s2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88), s3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
    r[m] = _mm512_shuffle_f32x4(s0, s2, 0x88);       // column m
    r[8 + m] = _mm512_shuffle_f32x4(s0, s2, 0xDD);   // column 8+m
    r[4 + m] = _mm512_shuffle_f32x4(s1, s3, 0x88);   // column 4+m
    r[12 + m] = _mm512_shuffle_f32x4(s1, s3, 0xDD);  // column 12+m
  }
}

// 8 x 8 doubles, the same scheme with 2-row groups.
inline void transpose8(__m512d r[8]) {
  __m512d t[8];
  for (int k = 0; k < 4; ++k) {  // t[2k+m], 128-bit lane j = column 2j+m of rows 2k, 2k+1
    t[2 * k] = _mm512_unpacklo_pd(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_pd(r[2 * k], r[2 * k + 1]);
  }
  for (int m = 0; m < 2; ++m) {
    const __m512d s0 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0x88), s1 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0xDD);
    const __m512d s2 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0x88), s3 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0xDD);
    r[m] = _mm512_shuffle_f64x2(s0, s2, 0x88);      // column m
    r[4 + m] = _mm512_shuffle_f64x2(s0, s2, 0xDD);  // column 4+m
    r[2 + m] = _mm512_shuffle_f64x2(s1, s3, 0x88);  // column 2+m
    r[6 + m] = _mm512_shuffle_f64x2(s1, s3, 0xDD);  // column 6+m
  }
}

}  // namespace avx512
}  // namespace lamina
#endif
