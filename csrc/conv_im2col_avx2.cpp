// AVX2 row copies for im2col / col2im with stride-1 columns (call only when active_isa() ==
// avx2): each tap of a stride-1 conv copies `rows` runs of n contiguous floats. Runs are short
// (10 floats for LeNet's C3): full vectors, the copy's ragged end overlapped, no scalar loop.
#if defined(LAMINA_X86)
#include <immintrin.h>

#include <cstdint>

namespace lamina {

// dst[i*dst_rs + j] = src[i*src_rs + j] for i < rows, j < n. The ragged end is one more
// vector overlapping the previous one (masked stores are slow on AMD cores).
void copy_rows_f32_avx2(float* dst, int64_t dst_rs, const float* src, int64_t src_rs, int64_t n, int64_t rows) {
  if (n >= 8) {
    for (int64_t i = 0; i < rows; ++i, dst += dst_rs, src += src_rs) {
      int64_t j = 0;
      for (; j + 8 <= n; j += 8) _mm256_storeu_ps(dst + j, _mm256_loadu_ps(src + j));
      if (j < n) _mm256_storeu_ps(dst + n - 8, _mm256_loadu_ps(src + n - 8));
    }
  } else if (n >= 4) {
    for (int64_t i = 0; i < rows; ++i, dst += dst_rs, src += src_rs) {
      _mm_storeu_ps(dst, _mm_loadu_ps(src));
      _mm_storeu_ps(dst + n - 4, _mm_loadu_ps(src + n - 4));
    }
  } else {
    for (int64_t i = 0; i < rows; ++i, dst += dst_rs, src += src_rs)
      for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
  }
}

// dst[i*dst_rs + j] += src[i*src_rs + j] for i < rows, j < n. The ragged end re-adds the last
// 8 lanes with src masked to zero on the lanes the last full vector covers (masked loads are
// cheap); both are loaded before either is stored (no partial store-to-load forwarding), and
// the full vector is stored last so the shared lanes keep its sum.
void add_rows_f32_avx2(float* dst, int64_t dst_rs, const float* src, int64_t src_rs, int64_t n, int64_t rows) {
  static const int32_t kHi[16] = {0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1};
  const int64_t n8 = n & ~int64_t(7), r = n - n8;
  if (n < 8 || r == 0) {
    for (int64_t i = 0; i < rows; ++i, dst += dst_rs, src += src_rs) {
      int64_t j = 0;
      for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(dst + j, _mm256_add_ps(_mm256_loadu_ps(dst + j), _mm256_loadu_ps(src + j)));
      if (j + 4 <= n) {
        _mm_storeu_ps(dst + j, _mm_add_ps(_mm_loadu_ps(dst + j), _mm_loadu_ps(src + j)));
        j += 4;
      }
      for (; j < n; ++j) dst[j] += src[j];
    }
    return;
  }
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kHi + r));  // top r lanes
  for (int64_t i = 0; i < rows; ++i, dst += dst_rs, src += src_rs) {
    int64_t j = 0;
    for (; j + 8 < n8; j += 8)
      _mm256_storeu_ps(dst + j, _mm256_add_ps(_mm256_loadu_ps(dst + j), _mm256_loadu_ps(src + j)));
    const __m256 last = _mm256_add_ps(_mm256_loadu_ps(dst + j), _mm256_loadu_ps(src + j));
    const __m256 tail = _mm256_add_ps(_mm256_loadu_ps(dst + n - 8), _mm256_maskload_ps(src + n - 8, hi));
    _mm256_storeu_ps(dst + n - 8, tail);
    _mm256_storeu_ps(dst + j, last);
  }
}

}  // namespace lamina
#endif
