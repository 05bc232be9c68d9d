// In-register square transposes of AVX2 vectors, shared by the direct-convolution forward
// (conv_direct_avx2.cpp: lane gather and scatter) and backward (conv_direct_bwd_avx2.cpp:
// batch-in-lanes layout). Include only from *_avx2.cpp translation units (compiled with -mavx2).
#pragma once
#if defined(LAMINA_X86)
#include <immintrin.h>

#include <cstdint>

namespace lamina {
namespace avx2 {

// 8 x 8 floats: afterwards r[w] lane i = (before) r[i] lane w (pairs of rows interleaved, 4-row
// columns gathered per 128-bit lane, then the halves of the two 4-row groups swapped).
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 2; ++k) {  // u[4k+m], 128-bit lane j = column 4j+m of rows 4k..4k+3
    u[4 * k + 0] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    u[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    u[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    u[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    r[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);      // column m
    r[4 + m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);  // column 4+m
  }
}

// 4 x 4 doubles, the same.
inline void transpose4(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

// Lanes l < m of a mask vector set (m <= 8 floats / 4 doubles): the masked loads and stores of
// a row's last, partial block.
inline __m256i first_lanes_f32(int64_t m) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(m)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline __m256i first_lanes_f64(int64_t m) {
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(m), _mm256_setr_epi64x(0, 1, 2, 3));
}

// Where the block of V columns covering column w of an n-column row starts when a row moves
// through the transposes V columns at a time: a row of n >= V is whole vectors only, its last
// block starting at n - V and overlapping the one before (it rewrites the same values there);
// masked loads and stores (vmaskmovps) cost more than the overlap on Zen 4. Shorter rows take
// one masked block.
inline int64_t block_start(int64_t w, int64_t n, int64_t V) { return w + V <= n || n < V ? w : n - V; }

}  // namespace avx2
}  // namespace lamina
#endif
