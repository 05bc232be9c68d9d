// The Winograd tile transforms compiled with AVX2 + FMA (float; call only when
// active_isa() == avx2). Same source as the portable copy: conv_winograd_tf.h.
#if defined(LAMINA_X86)
#include <immintrin.h>

#include <algorithm>

#define LAMINA_WINO_NS wino_avx2
#include "conv_winograd_tf.h"
#include "conv_winograd_f4_tf.h"

namespace lamina {
namespace {
// 8 floats of row from column i, zeros outside [0, len) (masked lanes are never read).
inline __m256 load8_masked(const float* row, int64_t i, int64_t len) {
  if (i >= 0 && i + 8 <= len) return _mm256_loadu_ps(row + i);
  const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i in = _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(-1)),
                                      _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(len)), idx));
  return _mm256_maskload_ps(row + i, in);
}
// even / odd columns of the 16 from column i: lane t = row[i + 2t] / row[i + 2t + 1].
inline void even_odd8(const float* row, int64_t i, int64_t len, __m256* even, __m256* odd) {
  const __m256 a = load8_masked(row, i, len), b = load8_masked(row, i + 8, len);
  // shuffle_ps works per 128-bit lane: tiles (0 1 4 5 | 2 3 6 7); one 64-bit permute restores the order
  *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
  *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}
}  // namespace

// wino_input_transform (F(2x2), conv_winograd_tf.h) with the column pass in registers, 8
// tiles per step: the portable copy's deinterleaving scalar stores stalled the vector loads
// after them (store forwarding). rows: wino_scratch(tw) floats.
void winograd_input_transform_avx2(const float* x, int64_t C, int64_t H, int64_t W, int64_t pad_h,
                                   int64_t pad_w, int64_t ty0, int64_t ty1, int64_t tw, float* V,
                                   float* rows) {
  const int64_t Tc = (ty1 - ty0) * tw, es = C * Tc, tw8 = (tw + 7) / 8 * 8;
  float* h[4][4];  // h[i][j]: input row i after B along columns (tile column j), tw8 long
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) h[i][j] = rows + (4 * i + j) * tw8;
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * H * W;
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      for (int i = 0; i < 4; ++i) {
        const int64_t ih = 2 * ty - pad_h + i;
        for (int64_t tx = 0; tx < tw; tx += 8) {
          __m256 d[4];
          if (ih < 0 || ih >= H) {
            for (int j = 0; j < 4; ++j) d[j] = _mm256_setzero_ps();
          } else {
            __m256 c0, c1, c2, c3;  // tile t's columns 2t .. 2t + 3
            even_odd8(xc + ih * W, 2 * tx - pad_w, W, &c0, &c1);
            even_odd8(xc + ih * W, 2 * tx - pad_w + 2, W, &c2, &c3);
            d[0] = _mm256_sub_ps(c0, c2);  // B^T along columns: (a0 - a2, a1 + a2, a2 - a1, a1 - a3)
            d[1] = _mm256_add_ps(c1, c2);
            d[2] = _mm256_sub_ps(c2, c1);
            d[3] = _mm256_sub_ps(c1, c3);
          }
          for (int j = 0; j < 4; ++j) _mm256_storeu_ps(h[i][j] + tx, d[j]);
        }
      }
      float* v = V + c * Tc + (ty - ty0) * tw;
      for (int j = 0; j < 4; ++j) {  // B^T along rows: V[4r + j] = (h0 - h2, h1 + h2, h2 - h1, h1 - h3)[r]
        wino_avx2::v_sub(v + j * es, h[0][j], h[2][j], tw);
        wino_avx2::v_add(v + (4 + j) * es, h[1][j], h[2][j], tw);
        wino_avx2::v_sub(v + (8 + j) * es, h[2][j], h[1][j], tw);
        wino_avx2::v_sub(v + (12 + j) * es, h[1][j], h[3][j], tw);
      }
    }
  }
}
void winograd_output_transform_avx2(const float* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                    int64_t ty1, int64_t tw, const float* bias, float* y, float* rows) {
  wino_avx2::wino_output_transform<float>(M, K, OH, OW, ty0, ty1, tw, bias, y, rows);
}
// wino_dy_transform (conv_winograd_tf.h) in registers, 16 tiles per step, straight into Mdy
// (masked stores for the last tiles of a row): the portable copy's 8-float copies became
// memmove calls and its deinterleaving scalar stores stalled the loads after them. Each of
// the 16 streams gets 16 floats (a whole cache line) per step: the streams are K*Tc apart,
// often a multiple of 4 KiB, so they share L1 sets, and half-written lines were evicted
// before their second half came.
void winograd_dy_transform_avx2(const float* dy, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                int64_t ty1, int64_t tw, float* Mdy, float* rows) {
  const int64_t Tc = (ty1 - ty0) * tw, es = K * Tc;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      const float* d0 = dy + (k * OH + 2 * ty) * OW;
      const bool has_row1 = 2 * ty + 1 < OH;
      float* m = Mdy + k * Tc + (ty - ty0) * tw;
      for (int64_t tx = 0; tx < tw; tx += 16) {
        __m256 out[2][16];  // 8 tiles each: Mdy[e] for e = 0..15
        const int groups = tw - tx > 8 ? 2 : 1;
        for (int g = 0; g < groups; ++g) {
          __m256 e0, o0, e1 = zero, o1 = zero;  // dy rows 2ty / 2ty + 1, even / odd columns
          even_odd8(d0, 2 * (tx + 8 * g), OW, &e0, &o0);
          if (has_row1) even_odd8(d0 + OW, 2 * (tx + 8 * g), OW, &e1, &o1);
          // A d along rows: (d0, d0 + d1, d0 - d1, -d1); then each row's (a, b) -> (a, a + b, a - b, -b)
          const __m256 re[4] = {e0, _mm256_add_ps(e0, e1), _mm256_sub_ps(e0, e1), _mm256_sub_ps(zero, e1)};
          const __m256 ro[4] = {o0, _mm256_add_ps(o0, o1), _mm256_sub_ps(o0, o1), _mm256_sub_ps(zero, o1)};
          for (int i = 0; i < 4; ++i) {
            out[g][4 * i] = re[i];
            out[g][4 * i + 1] = _mm256_add_ps(re[i], ro[i]);
            out[g][4 * i + 2] = _mm256_sub_ps(re[i], ro[i]);
            out[g][4 * i + 3] = _mm256_sub_ps(zero, ro[i]);
          }
        }
        for (int e = 0; e < 16; ++e)
          for (int g = 0; g < groups; ++g) {
            float* dst = m + e * es + tx + 8 * g;
            const int64_t n = tw - tx - 8 * g;
            if (n >= 8) {
              _mm256_storeu_ps(dst, out[g][e]);
            } else {
              const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
              _mm256_maskstore_ps(dst, lanes, out[g][e]);
            }
          }
      }
    }
}
namespace {
// 4 floats of row from column i (zeros where a column is outside [0, len)); masked lanes are
// never read, so row + i may point outside the row.
inline __m128 load4_masked(const float* row, int64_t i, int64_t len) {
  if (i >= 0 && i + 4 <= len) return _mm_loadu_ps(row + i);
  const __m128i idx = _mm_add_epi32(_mm_set1_epi32(static_cast<int>(i)), _mm_setr_epi32(0, 1, 2, 3));
  const __m128i in = _mm_and_si128(_mm_cmpgt_epi32(idx, _mm_set1_epi32(-1)),
                                   _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(len)), idx));
  return _mm_maskload_ps(row + i, in);
}

// The six columns B^T needs for 8 tiles (tile t reads padded columns 4t .. 4t + 5 from
// column i0 of the row): col[j] lane t = row[i0 + 4t + j]. Built in registers (a 4x4
// transpose per 128-bit lane: tiles 0-3 low, 4-7 high), never through scalar stores,
// which stalled the vector loads that followed them (store forwarding).
inline void tile_columns8(const float* row, int64_t i0, int64_t len, __m256 col[6]) {
  __m256 a[5];  // a[k]: tile k's four columns (low lane), tile k + 4's (high lane); a[4]: tiles 4, 8
  for (int k = 0; k < 5; ++k)
    a[k] = _mm256_set_m128(load4_masked(row, i0 + 16 + 4 * k, len), load4_masked(row, i0 + 4 * k, len));
  const __m256 l01 = _mm256_unpacklo_ps(a[0], a[1]), h01 = _mm256_unpackhi_ps(a[0], a[1]);
  const __m256 l23 = _mm256_unpacklo_ps(a[2], a[3]), h23 = _mm256_unpackhi_ps(a[2], a[3]);
  const __m256 l12 = _mm256_unpacklo_ps(a[1], a[2]), l34 = _mm256_unpacklo_ps(a[3], a[4]);
  col[0] = _mm256_shuffle_ps(l01, l23, 0x44);
  col[1] = _mm256_shuffle_ps(l01, l23, 0xEE);
  col[2] = _mm256_shuffle_ps(h01, h23, 0x44);
  col[3] = _mm256_shuffle_ps(h01, h23, 0xEE);
  col[4] = _mm256_shuffle_ps(l12, l34, 0x44);  // column 4 of tile t = column 0 of tile t + 1
  col[5] = _mm256_shuffle_ps(l12, l34, 0xEE);
}

// d[s] = B^T (a0 .. a5), the rows of conv_winograd_f4_tf.h's bt6.
inline void bt6_regs(const __m256 a[6], __m256 d[6]) {
  const __m256 h = _mm256_set1_ps(0.5f), one5 = _mm256_set1_ps(1.5f), two = _mm256_set1_ps(2.f),
               two5 = _mm256_set1_ps(2.5f);
  d[0] = _mm256_add_ps(_mm256_fmadd_ps(one5, _mm256_sub_ps(a[1], a[3]), a[0]), _mm256_fnmadd_ps(two, a[2], a[4]));
  d[1] = _mm256_sub_ps(_mm256_fnmadd_ps(two5, a[2], a[4]), _mm256_fmadd_ps(h, a[3], a[1]));
  d[2] = _mm256_add_ps(_mm256_fnmadd_ps(two5, a[3], a[4]), _mm256_fmadd_ps(h, a[2], a[1]));
  d[3] = _mm256_add_ps(_mm256_fmadd_ps(h, _mm256_sub_ps(a[3], a[1]), a[4]), _mm256_sub_ps(_mm256_setzero_ps(), a[2]));
  d[4] = _mm256_sub_ps(_mm256_fmadd_ps(two, _mm256_sub_ps(a[1], a[3]), a[4]), a[2]);
  d[5] = _mm256_add_ps(_mm256_fmadd_ps(one5, _mm256_sub_ps(a[2], a[4]), a[1]), _mm256_fnmadd_ps(two, a[3], a[5]));
}
}  // namespace

// wino4_input_transform (conv_winograd_f4_tf.h) with the column pass in registers, 8 tiles
// per step. rows: wino4_scratch(tw) floats.
void winograd4_input_transform_avx2(const float* x, int64_t C, int64_t H, int64_t W, int64_t pad_h,
                                    int64_t pad_w, int64_t ty0, int64_t ty1, int64_t tw, float* V,
                                    int64_t ldv, int64_t es, int64_t t0, float* rows) {
  const int64_t tw8 = (tw + 7) / 8 * 8;
  float* h[6][6];  // h[i][j]: input row i after B along columns (tile column j), tw8 long
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) h[i][j] = rows + (6 * i + j) * tw8;
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * H * W;
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      for (int i = 0; i < 6; ++i) {
        const int64_t ih = 4 * ty - pad_h + i;
        for (int64_t tx = 0; tx < tw; tx += 8) {
          __m256 col[6], d[6];
          if (ih < 0 || ih >= H) {
            for (int j = 0; j < 6; ++j) d[j] = _mm256_setzero_ps();
          } else {
            tile_columns8(xc + ih * W, 4 * tx - pad_w, W, col);
            bt6_regs(col, d);
          }
          for (int j = 0; j < 6; ++j) _mm256_storeu_ps(h[i][j] + tx, d[j]);
        }
      }
      float* v = V + c * ldv + t0 + (ty - ty0) * tw;
      for (int j = 0; j < 6; ++j)  // B^T along rows: V[6r + j] = sum_i B^T[r][i] h[i][j]
        wino_avx2::bt6(v + j * es, v + (6 + j) * es, v + (12 + j) * es, v + (18 + j) * es, v + (24 + j) * es,
                       v + (30 + j) * es, h[0][j], h[1][j], h[2][j], h[3][j], h[4][j], h[5][j], tw);
    }
  }
}
namespace {
// d[p] = A^T (a0 .. a5) + bias, the rows of conv_winograd_f4_tf.h's at4.
inline void at4_regs(const __m256 a[6], __m256 bias, __m256 d[4]) {
  const __m256 p = _mm256_add_ps(a[1], a[2]), m = _mm256_sub_ps(a[1], a[2]);
  d[0] = _mm256_add_ps(_mm256_add_ps(a[0], p), _mm256_add_ps(_mm256_add_ps(a[3], a[4]), bias));
  d[1] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(2.f), a[3], m), _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), a[4], bias));
  d[2] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(4.f), a[3], p), _mm256_fmadd_ps(_mm256_set1_ps(0.25f), a[4], bias));
  d[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.f), a[3], m),
                       _mm256_add_ps(_mm256_fnmadd_ps(_mm256_set1_ps(0.125f), a[4], a[5]), bias));
}

// row[4t + p] = u[p] lane t for the 8 tiles from column i0 (< len kept): the inverse of
// tile_columns8, a 4x4 transpose per 128-bit lane, then one 4-float store per tile.
inline void store_tiles8(float* row, int64_t i0, int64_t len, const __m256 u[4]) {
  const __m256 l01 = _mm256_unpacklo_ps(u[0], u[1]), h01 = _mm256_unpackhi_ps(u[0], u[1]);
  const __m256 l23 = _mm256_unpacklo_ps(u[2], u[3]), h23 = _mm256_unpackhi_ps(u[2], u[3]);
  const __m256 t[4] = {_mm256_shuffle_ps(l01, l23, 0x44), _mm256_shuffle_ps(l01, l23, 0xEE),
                       _mm256_shuffle_ps(h01, h23, 0x44), _mm256_shuffle_ps(h01, h23, 0xEE)};
  for (int k = 0; k < 8; ++k) {  // tile k: lane k % 4 of t, low half for k < 4
    const int64_t i = i0 + 4 * k;
    if (i >= len) break;
    const __m128 v = k < 4 ? _mm256_castps256_ps128(t[k]) : _mm256_extractf128_ps(t[k - 4], 1);
    if (i + 4 <= len) {
      _mm_storeu_ps(row + i, v);
    } else {
      const __m128i idx = _mm_add_epi32(_mm_set1_epi32(static_cast<int>(i)), _mm_setr_epi32(0, 1, 2, 3));
      _mm_maskstore_ps(row + i, _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(len)), idx), v);
    }
  }
}
}  // namespace

// wino4_output_transform (conv_winograd_f4_tf.h) with the column pass and the store in
// registers, 8 tiles per step (scalar interleaving stores cost as much as the transform).
// Returns whether every value written is finite.
bool winograd4_output_transform_avx2(const float* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                     int64_t ty1, int64_t tw, int64_t ldm, int64_t es, int64_t t0, const float* bias,
                                     float* y, float* rows) {
  const int64_t tw8 = (tw + 7) / 8 * 8;
  float* a[4][6];  // a[o][s]: output row o of the tile after A^T along rows, column s; tw8 long
  for (int o = 0; o < 4; ++o)
    for (int s = 0; s < 6; ++s) a[o][s] = rows + (6 * o + s) * tw8;
  __m256 chk = _mm256_setzero_ps();  // + (v - v): 0 while every v is finite, else NaN
  for (int64_t k = 0; k < K; ++k) {
    const __m256 bk = _mm256_set1_ps(bias ? bias[k] : 0.f);
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      const float* m = M + k * ldm + t0 + (ty - ty0) * tw;
      for (int s = 0; s < 6; ++s)
        wino_avx2::at4(a[0][s], a[1][s], a[2][s], a[3][s], m + s * es, m + (6 + s) * es, m + (12 + s) * es,
                       m + (18 + s) * es, m + (24 + s) * es, m + (30 + s) * es, 0.f, tw);
      for (int o = 0; o < 4 && 4 * ty + o < OH; ++o) {
        float* yrow = y + (k * OH + 4 * ty + o) * OW;
        for (int64_t tx = 0; tx < tw; tx += 8) {
          __m256 in[6], u[4];
          for (int s = 0; s < 6; ++s) in[s] = _mm256_loadu_ps(a[o][s] + tx);
          at4_regs(in, bk, u);
          store_tiles8(yrow, 4 * tx, OW, u);
        }
        int64_t i = 0;  // the row just stored, from L1
        for (; i + 8 <= OW; i += 8) {
          const __m256 v = _mm256_loadu_ps(yrow + i);
          chk = _mm256_add_ps(chk, _mm256_sub_ps(v, v));
        }
        if (i < OW) {
          const __m256 v = load8_masked(yrow, i, OW);
          chk = _mm256_add_ps(chk, _mm256_sub_ps(v, v));
        }
      }
    }
  }
  return _mm256_movemask_ps(_mm256_cmp_ps(chk, chk, _CMP_UNORD_Q)) == 0;
}
namespace {
// d[r] = A (a0 .. a3), the rows of conv_winograd_f4_tf.h's a6.
inline void a6_regs(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 d[6]) {
  const __m256 p = _mm256_add_ps(a0, a2), m = _mm256_add_ps(a1, a3);
  d[0] = a0;
  d[1] = _mm256_add_ps(p, m);
  d[2] = _mm256_sub_ps(p, m);
  d[3] = _mm256_fmadd_ps(_mm256_set1_ps(8.f), a3,
                         _mm256_fmadd_ps(_mm256_set1_ps(4.f), a2, _mm256_fmadd_ps(_mm256_set1_ps(2.f), a1, a0)));
  d[4] = _mm256_fnmadd_ps(_mm256_set1_ps(0.125f), a3,
                          _mm256_fmadd_ps(_mm256_set1_ps(0.25f), a2, _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), a1, a0)));
  d[5] = a3;
}
}  // namespace

// wino4_dy_transform (conv_winograd_f4_tf.h) in registers, 8 tiles per step: the four dy rows
// of a tile row are loaded as tile columns (tile_columns8: no scalar deinterleaving stores),
// A runs along the rows, then along the columns, straight into Mdy (masked for the last tiles).
void winograd4_dy_transform_avx2(const float* dy, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                 int64_t ty1, int64_t tw, float* Mdy, int64_t ldm, int64_t es, int64_t t0) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      float* m = Mdy + k * ldm + t0 + (ty - ty0) * tw;
      for (int64_t tx = 0; tx < tw; tx += 8) {
        __m256 c[4][6];  // c[o][p]: dy row o of the tiles, tile column p (p < 4 used)
        for (int o = 0; o < 4; ++o) {
          if (4 * ty + o < OH) {
            tile_columns8(dy + (k * OH + 4 * ty + o) * OW, 4 * tx, OW, c[o]);
          } else {
            for (int p = 0; p < 4; ++p) c[o][p] = _mm256_setzero_ps();
          }
        }
        __m256 r[4][6];  // r[p][i]: A along the rows, row i of 6, tile column p
        for (int p = 0; p < 4; ++p) a6_regs(c[0][p], c[1][p], c[2][p], c[3][p], r[p]);
        const int64_t n = tw - tx;
        const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(n, 8))),
                                                 _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int i = 0; i < 6; ++i) {
          __m256 d[6];  // A along the columns: Mdy[6i + j]
          a6_regs(r[0][i], r[1][i], r[2][i], r[3][i], d);
          for (int j = 0; j < 6; ++j) {
            float* dst = m + (6 * i + j) * es + tx;
            if (n >= 8)
              _mm256_storeu_ps(dst, d[j]);
            else
              _mm256_maskstore_ps(dst, lanes, d[j]);
          }
        }
      }
    }
}
}  // namespace lamina
#endif
