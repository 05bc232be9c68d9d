// Winograd F(4x4, 3x3) tile transforms (math in conv_winograd.cpp). Interpolation points
// 0, 1, -1, 2, -1/2 and infinity: every B^T and A^T coefficient is a power of two times a
// small integer (exact in float), and float32 error measured about 2x below the textbook
// 0, +-1, +-2 set (C = 64: 2e-6 against 5e-6 of 1 + |y|).
//   B^T = [1  1.5 -2   -1.5  1  0]      A^T = [1  1  1  1     1     0]
//         [0 -1   -2.5 -0.5  1  0]            [0  1 -1  2    -0.5   0]
//         [0  1    0.5 -2.5  1  0]            [0  1  1  4     0.25  0]
//         [0 -0.5 -1    0.5  1  0]            [0  1 -1  8    -0.125 1]
//         [0  2   -1   -2    1  0]
//         [0  1    1.5 -2   -1.5 1]
// Each step runs over a whole row of tiles (vectors of tw elements, __restrict), so the
// compiler vectorizes across tiles. Included like conv_winograd_tf.h: once per ISA
// translation unit, inside that unit's namespace LAMINA_WINO_NS.
#include <cstdint>

namespace lamina {
namespace LAMINA_WINO_NS {

// d0..d5 = B^T (s0..s5), n elements each (one stream per row of B^T).
template <class T>
inline void bt6(T* __restrict d0, T* __restrict d1, T* __restrict d2, T* __restrict d3, T* __restrict d4,
                T* __restrict d5, const T* __restrict s0, const T* __restrict s1, const T* __restrict s2,
                const T* __restrict s3, const T* __restrict s4, const T* __restrict s5, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T a0 = s0[i], a1 = s1[i], a2 = s2[i], a3 = s3[i], a4 = s4[i], a5 = s5[i];
    d0[i] = a0 + T(1.5) * a1 - T(2) * a2 - T(1.5) * a3 + a4;
    d1[i] = -a1 - T(2.5) * a2 - T(0.5) * a3 + a4;
    d2[i] = a1 + T(0.5) * a2 - T(2.5) * a3 + a4;
    d3[i] = T(-0.5) * a1 - a2 + T(0.5) * a3 + a4;
    d4[i] = T(2) * a1 - a2 - T(2) * a3 + a4;
    d5[i] = a1 + T(1.5) * a2 - T(2) * a3 - T(1.5) * a4 + a5;
  }
}

// d0..d3 = A^T (s0..s5) + bias, n elements each.
template <class T>
inline void at4(T* __restrict d0, T* __restrict d1, T* __restrict d2, T* __restrict d3,
                const T* __restrict s0, const T* __restrict s1, const T* __restrict s2, const T* __restrict s3,
                const T* __restrict s4, const T* __restrict s5, T bias, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T a1 = s1[i], a2 = s2[i], a3 = s3[i], a4 = s4[i];
    const T p = a1 + a2, m = a1 - a2;
    d0[i] = s0[i] + p + a3 + a4 + bias;
    d1[i] = m + T(2) * a3 - T(0.5) * a4 + bias;
    d2[i] = p + T(4) * a3 + T(0.25) * a4 + bias;
    d3[i] = m + T(8) * a3 - T(0.125) * a4 + s5[i] + bias;
  }
}

// d0..d5 = A (s0..s3), n elements each: the adjoint of at4 (A = (A^T)^T, 6x4), for the
// weight gradient's dy transform.
template <class T>
inline void a6(T* __restrict d0, T* __restrict d1, T* __restrict d2, T* __restrict d3, T* __restrict d4,
               T* __restrict d5, const T* __restrict s0, const T* __restrict s1, const T* __restrict s2,
               const T* __restrict s3, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T a0 = s0[i], a1 = s1[i], a2 = s2[i], a3 = s3[i];
    const T p = a0 + a2, m = a1 + a3;
    d0[i] = a0;
    d1[i] = p + m;
    d2[i] = p - m;
    d3[i] = a0 + T(2) * a1 + T(4) * a2 + T(8) * a3;
    d4[i] = a0 - T(0.5) * a1 + T(0.25) * a2 - T(0.125) * a3;
    d5[i] = a3;
  }
}

// q[s][t] = row[4t + s - pad] for t < n, zero where the index is outside [0, len).
template <class T>
inline void deinterleave4_padded(T* __restrict q0, T* __restrict q1, T* __restrict q2, T* __restrict q3,
                                 const T* __restrict row, int64_t len, int64_t pad, int64_t n) {
  int64_t lo = (pad + 3) / 4, hi = (len + pad) / 4;  // all four taps of t inside: lo <= t < hi
  if (lo > n) lo = n;
  if (hi > n) hi = n;
  if (hi < lo) hi = lo;
  T* q[4] = {q0, q1, q2, q3};
  auto edge = [&](int64_t t) {
    for (int s = 0; s < 4; ++s) {
      const int64_t i = 4 * t + s - pad;
      q[s][t] = (i >= 0 && i < len) ? row[i] : T(0);
    }
  };
  for (int64_t t = 0; t < lo; ++t) edge(t);
  const T* __restrict base = row + 4 * lo - pad;
  for (int64_t t = lo; t < hi; ++t) {
    const T* b = base + 4 * (t - lo);
    q0[t] = b[0];
    q1[t] = b[1];
    q2[t] = b[2];
    q3[t] = b[3];
  }
  for (int64_t t = hi; t < n; ++t) edge(t);
}

// row[4t + s] = q[s][t] for 4t + s < len.
template <class T>
inline void interleave4(T* __restrict row, const T* __restrict q0, const T* __restrict q1,
                        const T* __restrict q2, const T* __restrict q3, int64_t len) {
  const int64_t full = len / 4;
  for (int64_t t = 0; t < full; ++t) {
    row[4 * t] = q0[t];
    row[4 * t + 1] = q1[t];
    row[4 * t + 2] = q2[t];
    row[4 * t + 3] = q3[t];
  }
  const T* q[4] = {q0, q1, q2, q3};
  for (int64_t i = 4 * full; i < len; ++i) row[i] = q[i - 4 * full][full];
}

// Scratch every F(4x4) transform below (and the AVX2 input transform) needs, in elements.
inline int64_t wino4_scratch(int64_t tw) { return 48 * (tw + 8); }

// V[e] (C rows, ldv apart per channel; e = 6 r + s, es = C * ldv between the 36 matrices),
// columns t0 + (ty - ty0) * tw + tx: V = B^T d B for the 6x6 input patches of tile rows
// [ty0, ty1) of one image x (C, H, W), patch (ty, tx) starting at (4 ty - pad_h, 4 tx - pad_w).
template <class T>
void wino4_input_transform(const T* x, int64_t C, int64_t H, int64_t W, int64_t pad_h, int64_t pad_w,
                           int64_t ty0, int64_t ty1, int64_t tw, T* V, int64_t ldv, int64_t es, int64_t t0, T* rows) {
  const int64_t n = tw + 1;
  T* q[4];  // one input row's columns by phase: q[s][t] = padded column 4t + s
  for (int s = 0; s < 4; ++s) q[s] = rows + s * n;
  T* h[6][6];  // h[i][j]: input row i after B along columns (tile column j of 6)
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) h[i][j] = rows + (4 + 6 * i + j) * n;
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * H * W;
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      for (int i = 0; i < 6; ++i) {
        const int64_t ih = 4 * ty - pad_h + i;
        if (ih < 0 || ih >= H) {
          for (int j = 0; j < 6; ++j)
            for (int64_t t = 0; t < tw; ++t) h[i][j][t] = T(0);
          continue;
        }
        deinterleave4_padded(q[0], q[1], q[2], q[3], xc + ih * W, W, pad_w, n);
        // tile tx's six columns are q0[tx], q1[tx], q2[tx], q3[tx], q0[tx+1], q1[tx+1]
        bt6(h[i][0], h[i][1], h[i][2], h[i][3], h[i][4], h[i][5], q[0], q[1], q[2], q[3], q[0] + 1, q[1] + 1, tw);
      }
      T* v = V + c * ldv + t0 + (ty - ty0) * tw;
      for (int j = 0; j < 6; ++j)  // B^T along rows: V[6r + j] = sum_i B^T[r][i] h[i][j]
        bt6(v + j * es, v + (6 + j) * es, v + (12 + j) * es, v + (18 + j) * es, v + (24 + j) * es,
            v + (30 + j) * es, h[0][j], h[1][j], h[2][j], h[3][j], h[4][j], h[5][j], tw);
    }
  }
}

// y (K, OH, OW) rows of tile rows [ty0, ty1) = A^T M A (+ bias) from M[e] (K rows, ldm apart;
// es between the 36 matrices), tile columns from t0 as in wino4_input_transform. Returns
// whether every value written is finite (checked per row while it is in cache).
template <class T>
bool wino4_output_transform(const T* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0, int64_t ty1,
                            int64_t tw, int64_t ldm, int64_t es, int64_t t0, const T* bias, T* y, T* rows) {
  T* a[4][6];  // a[o][s]: output row o of the tile after A^T along rows, column s of 6
  for (int o = 0; o < 4; ++o)
    for (int s = 0; s < 6; ++s) a[o][s] = rows + (6 * o + s) * tw;
  T* u[4];  // one output row by phase: u[p][tx] = column 4 tx + p
  for (int p = 0; p < 4; ++p) u[p] = rows + (24 + p) * tw;
  T chk = T(0);  // + (v - v): 0 while every v is finite, else NaN
  for (int64_t k = 0; k < K; ++k) {
    const T bk = bias ? bias[k] : T(0);
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      const T* m = M + k * ldm + t0 + (ty - ty0) * tw;
      for (int s = 0; s < 6; ++s)
        at4(a[0][s], a[1][s], a[2][s], a[3][s], m + s * es, m + (6 + s) * es, m + (12 + s) * es,
            m + (18 + s) * es, m + (24 + s) * es, m + (30 + s) * es, T(0), tw);
      for (int o = 0; o < 4 && 4 * ty + o < OH; ++o) {
        at4(u[0], u[1], u[2], u[3], a[o][0], a[o][1], a[o][2], a[o][3], a[o][4], a[o][5], bk, tw);
        T* yrow = y + (k * OH + 4 * ty + o) * OW;
        interleave4(yrow, u[0], u[1], u[2], u[3], OW);
        for (int64_t i = 0; i < OW; ++i) chk += yrow[i] - yrow[i];
      }
    }
  }
  return chk == T(0);
}

// The weight gradient's dy transform: Mdy[e] (K rows, ldm apart; es = K * ldm between the 36
// matrices) = A dy A^T for the 4x4 dy tiles of tile rows [ty0, ty1) of one image dy (K, OH, OW),
// zero beyond OH / OW; tile columns from t0 as in wino4_input_transform. Since y = A^T M A per
// tile, this is dL/dM, and dL/dU[e] = sum over tiles of Mdy[e] * V[e].
template <class T>
void wino4_dy_transform(const T* dy, int64_t K, int64_t OH, int64_t OW, int64_t ty0, int64_t ty1,
                        int64_t tw, T* Mdy, int64_t ldm, int64_t es, int64_t t0, T* rows) {
  T* q[4];  // one dy row by phase: q[p][t] = column 4t + p (zero beyond OW)
  for (int p = 0; p < 4; ++p) q[p] = rows + p * tw;
  T* h[4][6];  // h[o][s]: dy row o of the tile after A along columns, column s of 6
  for (int o = 0; o < 4; ++o)
    for (int s = 0; s < 6; ++s) h[o][s] = rows + (4 + 6 * o + s) * tw;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      for (int o = 0; o < 4; ++o) {
        if (4 * ty + o >= OH) {
          for (int s = 0; s < 6; ++s)
            for (int64_t t = 0; t < tw; ++t) h[o][s][t] = T(0);
          continue;
        }
        deinterleave4_padded(q[0], q[1], q[2], q[3], dy + (k * OH + 4 * ty + o) * OW, OW, 0, tw);
        a6(h[o][0], h[o][1], h[o][2], h[o][3], h[o][4], h[o][5], q[0], q[1], q[2], q[3], tw);
      }
      T* m = Mdy + k * ldm + t0 + (ty - ty0) * tw;
      for (int s = 0; s < 6; ++s)  // A along rows: Mdy[6r + s] = sum_o A[r][o] h[o][s]
        a6(m + s * es, m + (6 + s) * es, m + (12 + s) * es, m + (18 + s) * es, m + (24 + s) * es,
           m + (30 + s) * es, h[0][s], h[1][s], h[2][s], h[3][s], tw);
    }
}

}  // namespace LAMINA_WINO_NS
}  // namespace lamina
