// AVX-512F direct-convolution micro-kernels (contract in conv_direct.h): 32 zmm registers hold
// 24 accumulators (KB channels x V vectors) plus the tap's V input vectors and a broadcast.
#include "conv_direct.h"
#include "conv_block.h"
#include "cpu.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "conv_direct_kernel.h"
#include "simd_transpose_avx512.h"

// GCC 12's shuffle, unpack and narrowing intrinsics start from _mm512_undefined_*(), which
// -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"   // the same, where the value is a constant load

namespace lamina {
namespace {
template <class T> struct Z;
template <> struct Z<float> {
  using R = __m512;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R bcast(const float* p) { return _mm512_set1_ps(*p); }
  static R loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, R x) { _mm512_storeu_ps(p, x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R set1(float v) { return _mm512_set1_ps(v); }
  static R load(const float* p) { return _mm512_load_ps(p); }
  static void store(float* p, R x) { _mm512_store_ps(p, x); }
  // Lanes l < nl: p[l * stride] (zero past nl); stride * 15 fits int32 (the caller checks).
  static __m512i index(int64_t stride) {
    return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                              _mm512_set1_epi32(static_cast<int32_t>(stride)));
  }
  static R gather(const float* p, int64_t stride, int nl) {
    return _mm512_mask_i32gather_ps(zero(), static_cast<__mmask16>((1u << nl) - 1), index(stride), p, 4);
  }
  static void scatter(float* p, int64_t stride, int nl, R x) {
    _mm512_mask_i32scatter_ps(p, static_cast<__mmask16>((1u << nl) - 1), index(stride), x, 4);
  }
  // relu and the pool's take rule (lane_relu_pool2): x < 0 ? 0 : x; v replaces m if v > m or NaN.
  using I = __m512i;
  static R relu(R x) { return _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, zero(), _CMP_LT_OQ), zero()); }
  static I position(int k) { return _mm512_set1_epi32(k); }
  static void take(R v, int k, R& m, I& at) {
    const __mmask16 t = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    m = _mm512_mask_mov_ps(m, t, v);
    at = _mm512_mask_mov_epi32(at, t, position(k));
  }
  static void store_code(uint8_t* c, R m, I at) {   // 4 where m <= 0
    at = _mm512_mask_mov_epi32(at, _mm512_cmp_ps_mask(m, zero(), _CMP_LE_OQ), position(4));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(c), _mm512_cvtepi32_epi8(at));
  }
};
template <> struct Z<double> {
  using R = __m512d;
  static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R bcast(const double* p) { return _mm512_set1_pd(*p); }
  static R loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void storeu(double* p, R x) { _mm512_storeu_pd(p, x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
  static R sub(R a, R b) { return _mm512_sub_pd(a, b); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  static R set1(double v) { return _mm512_set1_pd(v); }
  static R load(const double* p) { return _mm512_load_pd(p); }
  static void store(double* p, R x) { _mm512_store_pd(p, x); }
  static __m256i index(int64_t stride) {
    return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int32_t>(stride)));
  }
  static R gather(const double* p, int64_t stride, int nl) {
    return _mm512_mask_i32gather_pd(zero(), static_cast<__mmask8>((1u << nl) - 1), index(stride), p, 8);
  }
  static void scatter(double* p, int64_t stride, int nl, R x) {
    _mm512_mask_i32scatter_pd(p, static_cast<__mmask8>((1u << nl) - 1), index(stride), x, 8);
  }
  using I = __m512i;
  static R relu(R x) { return _mm512_mask_mov_pd(x, _mm512_cmp_pd_mask(x, zero(), _CMP_LT_OQ), zero()); }
  static I position(int k) { return _mm512_set1_epi64(k); }
  static void take(R v, int k, R& m, I& at) {
    const __mmask8 t = _mm512_cmp_pd_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
    m = _mm512_mask_mov_pd(m, t, v);
    at = _mm512_mask_mov_epi64(at, t, position(k));
  }
  static void store_code(uint8_t* c, R m, I at) {
    at = _mm512_mask_mov_epi64(at, _mm512_cmp_pd_mask(m, zero(), _CMP_LE_OQ), position(4));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(c), _mm512_cvtepi64_epi8(at));
  }
};
}  // namespace

using avx512::transpose16;

// lane_scatter for f32 by 16x16 transposes: each image's row is one masked contiguous store
// (vscatterdps issues 16 stores per vector and cost as much as the conv in the fused blocks).
void scatter_f32(const float* src, int64_t n, int64_t nl, float* dst, int64_t stride) {
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const int64_t m = n - j0 < 16 ? n - j0 : 16;
    __m512 r[16];
    for (int64_t j = 0; j < 16; ++j) r[j] = j < m ? _mm512_load_ps(src + (j0 + j) * 16) : _mm512_setzero_ps();
    transpose16(r);
    const __mmask16 keep = static_cast<__mmask16>((1u << m) - 1);
    for (int64_t l = 0; l < nl; ++l) _mm512_mask_storeu_ps(dst + l * stride + j0, keep, r[l]);
  }
}

// lane_gather for f32 by the same transposes: each image's row is one masked contiguous load
// (vgatherdps took 30 cycles a vector on Zen 4, 17% of the row-Winograd C3 forward).
void gather_f32(const float* src, int64_t stride, int64_t n, int64_t nl, float* dst) {
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const int64_t m = n - j0 < 16 ? n - j0 : 16;
    const __mmask16 keep = static_cast<__mmask16>((1u << m) - 1);
    __m512 r[16];
    for (int64_t l = 0; l < 16; ++l) r[l] = l < nl ? _mm512_maskz_loadu_ps(keep, src + l * stride + j0) : _mm512_setzero_ps();
    transpose16(r);
    for (int64_t j = 0; j < m; ++j) _mm512_store_ps(dst + (j0 + j) * 16, r[j]);
  }
}

// The same for the fused block's one-byte codes, widened to 32 bits for the transpose.
void scatter_code_f32(const uint8_t* src, int64_t n, int64_t nl, uint8_t* dst, int64_t stride) {
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const int64_t m = n - j0 < 16 ? n - j0 : 16;
    __m512 r[16];
    for (int64_t j = 0; j < 16; ++j)
      r[j] = j < m ? _mm512_castsi512_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (j0 + j) * 16))))
                   : _mm512_setzero_ps();
    transpose16(r);
    const __mmask16 keep = static_cast<__mmask16>((1u << m) - 1);
    for (int64_t l = 0; l < nl; ++l) _mm512_mask_cvtepi32_storeu_epi8(dst + l * stride + j0, keep, _mm512_castps_si512(r[l]));
  }
}

namespace conv_direct_detail {
// K = 6 (C1): 6 x 4; K a multiple of 8 (C3's 16): 8 x 3; else 4 x 6 with zero-padded channels.
template <class T>
DirectKernel<T> direct_kernel_avx512(int64_t K, DirectShape* s) {
  // One channel (C1's dx): 1 x 14, every FMA useful (4 x 6 wasted 3 of 4); 14 vectors tile
  // C1's 28 rows of 32 exactly. Measured on Xeon only (conv_direct_one_channel_wide).
  if (K == 1 && conv_direct_one_channel_wide()) { *s = {1, 14, Z<T>::W}; return direct_block<Z, T, 1, 14>; }
  if (K % 6 == 0 && K % 8 != 0) { *s = {6, 4, Z<T>::W}; return direct_block<Z, T, 6, 4>; }
  if (K % 8 == 0 || K > 4) { *s = {8, 3, Z<T>::W}; return direct_block<Z, T, 8, 3>; }
  *s = {4, 6, Z<T>::W};
  return direct_block<Z, T, 4, 6>;
}
template DirectKernel<float> direct_kernel_avx512<float>(int64_t, DirectShape*);
template DirectKernel<double> direct_kernel_avx512<double>(int64_t, DirectShape*);
// Lane kernels, at most 24 accumulators: K = 6 (C1): 6 x 4; K a multiple of 8 (C3's 16): 8 x 3;
// else 4 x 6 with zero-padded channels.
template <class T>
void lane_kernels_avx512(int64_t K, LaneKernels<T>* lk) {
  if (K % 6 == 0 && K % 8 != 0) fill_lane_kernels<Z, T, 6, 4>(lk);
  else if (K % 8 == 0 || K > 4) fill_lane_kernels<Z, T, 8, 3>(lk);
  else fill_lane_kernels<Z, T, 4, 6>(lk);
  if constexpr (std::is_same_v<T, float>) {
    // Measured on Zen 4 (its vgatherdps is slow). On an AVX-512 Xeon, 1 thread, thread CPU
    // time, C3 forward f32 (row Winograd), vgatherdps vs transposes: N=64 173 vs 172 us, N=256
    // 728 vs 749 (taps: 804 vs 805): a tie, so Xeons keep the instruction. The same bits either way.
    const int mode = conv_direct_lane_gather_mode();
    if (mode == 1 || (mode == 0 && std::strcmp(cpu_info().vendor, "AuthenticAMD") == 0)) lk->gather = gather_f32;
    lk->scatter = scatter_f32;
    lk->scatter_code = scatter_code_f32;
  }
}
template void lane_kernels_avx512<float>(int64_t, LaneKernels<float>*);
template void lane_kernels_avx512<double>(int64_t, LaneKernels<double>*);
}  // namespace conv_direct_detail
}  // namespace lamina

namespace lamina {
namespace conv_block_detail {
// 16 windows per step: the window's value masked by code == j, then the even and odd cells
// interleaved into two rows of 32 by one two-source permute each.
void unpool_rows_f32_avx512(const float* g, const uint8_t* code, int64_t PW, float* r0, float* r1) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t pw = 0; pw < PW; pw += 16) {
    const int64_t n = std::min<int64_t>(16, PW - pw);
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
    // 0 + g: a -0 gradient lands as +0, as max_pool2d_backward's zero-then-add.
    const __m512 v = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, g + pw));
    alignas(16) uint8_t cb[16] = {};   // AVX-512F has no masked byte load: copy the n codes
    for (int64_t i = 0; i < n; ++i) cb[i] = code[pw + i];
    const __m512i c = _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(cb)));
    const __m512 a0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(0)), v);
    const __m512 a1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(1)), v);
    const __m512 b0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(2)), v);
    const __m512 b1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(3)), v);
    // 2n cells: the first min(16, 2n) from the low half, the rest from the high half.
    const __mmask16 mlo = n >= 8 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (2 * n)) - 1);
    const __mmask16 mhi = n > 8 ? static_cast<__mmask16>((1u << (2 * n - 16)) - 1) : __mmask16(0);
    float* d0 = r0 + 2 * pw;
    float* d1 = r1 + 2 * pw;
    _mm512_mask_storeu_ps(d0, mlo, _mm512_permutex2var_ps(a0, lo, a1));
    _mm512_mask_storeu_ps(d1, mlo, _mm512_permutex2var_ps(b0, lo, b1));
    if (mhi) {
      _mm512_mask_storeu_ps(d0 + 16, mhi, _mm512_permutex2var_ps(a0, hi, a1));
      _mm512_mask_storeu_ps(d1 + 16, mhi, _mm512_permutex2var_ps(b0, hi, b1));
    }
  }
}

// The whole plane through two-source permutes of its (at most 32) windows: per 16 cells, the
// window values and codes gathered by src, kept where the code is the cell's want.
void unpool_plane_f32_avx512(const float* g, const uint8_t* codes32, int64_t P, const int32_t* src,
                             const int32_t* want, int64_t cells, float* dz) {
  const __mmask16 m0 = static_cast<__mmask16>(P >= 16 ? 0xFFFF : (1u << P) - 1);
  const __mmask16 m1 = static_cast<__mmask16>(P <= 16 ? 0 : P >= 32 ? 0xFFFF : (1u << (P - 16)) - 1);
  // 0 + g: a -0 gradient lands as +0, as max_pool2d_backward's zero-then-add.
  const __m512 g0 = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m0, g));
  const __m512 g1 = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m1, g + 16));
  const __m512i c0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes32)));
  const __m512i c1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes32 + 16)));
  for (int64_t o = 0; o < cells; o += 16) {
    const __m512i idx = _mm512_loadu_si512(src + o);
    const __mmask16 hit = _mm512_cmpeq_epi32_mask(_mm512_permutex2var_epi32(c0, idx, c1), _mm512_loadu_si512(want + o));
    const __m512 v = _mm512_maskz_mov_ps(hit, _mm512_permutex2var_ps(g0, idx, g1));
    const int64_t n = cells - o;
    if (n >= 16) _mm512_storeu_ps(dz + o, v);
    else _mm512_mask_storeu_ps(dz + o, static_cast<__mmask16>((1u << n) - 1), v);
  }
}
}  // namespace conv_block_detail
}  // namespace lamina
#endif
