// Winograd F(2x2, 3x3) tile transforms (see conv_winograd.cpp for the math). Every step is a
// helper over whole rows of tiles with __restrict arguments, so the compiler vectorizes it
// (written as one loop over 16 output streams it could not prove they do not overlap).
// Included by conv_winograd.cpp (portable flags) and conv_winograd_avx2.cpp (-mavx2 -mfma)
// inside different namespaces (LAMINA_WINO_NS), so the two compiled copies never merge; no
// std:: templates here for the same reason.
#include <cstdint>
#include <cstring>

namespace lamina {
namespace LAMINA_WINO_NS {

template <class T>
inline void v_add(T* __restrict d, const T* __restrict a, const T* __restrict b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = a[i] + b[i];
}
template <class T>
inline void v_sub(T* __restrict d, const T* __restrict a, const T* __restrict b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = a[i] - b[i];
}
template <class T>
inline void v_neg(T* __restrict d, const T* __restrict a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = -a[i];
}
template <class T>
inline void v_copy(T* __restrict d, const T* __restrict a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = a[i];
}
// d = a + b + c + s
template <class T>
inline void v_add3(T* __restrict d, const T* __restrict a, const T* __restrict b, const T* __restrict c,
                   T s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = a[i] + b[i] + c[i] + s;
}
// d = a - b - c + s
template <class T>
inline void v_sub2(T* __restrict d, const T* __restrict a, const T* __restrict b, const T* __restrict c,
                   T s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = a[i] - b[i] - c[i] + s;
}
// e[q] = src[2q] (q < ceil(len/2)), o[q] = src[2q+1] (q < len/2); both zero-filled up to n.
template <class T>
inline void deinterleave(T* __restrict e, T* __restrict o, const T* __restrict src, int64_t len, int64_t n) {
  const int64_t half = len / 2;
  for (int64_t q = 0; q < half; ++q) {
    e[q] = src[2 * q];
    o[q] = src[2 * q + 1];
  }
  int64_t q = half;
  if (len & 1) {
    e[q] = src[len - 1];
    o[q] = T(0);
    ++q;
  }
  for (; q < n; ++q) e[q] = o[q] = T(0);
}
// e[q] = row[2q - pad], o[q] = row[2q + 1 - pad] for q < n, zero where the index is outside
// [0, len): the even / odd columns of a row padded by `pad` on the left, read in place (a
// padded copy first made the loads wait on partly overlapping stores).
template <class T>
inline void deinterleave_padded(T* __restrict e, T* __restrict o, const T* __restrict row, int64_t len,
                                int64_t pad, int64_t n) {
  int64_t q_lo = (pad + 1) / 2, q_hi = (pad + len) / 2;  // both taps of q inside: q_lo <= q < q_hi
  if (q_lo > n) q_lo = n;
  if (q_hi < q_lo) q_hi = q_lo;
  if (q_hi > n) q_hi = n;
  for (int64_t q = 0; q < q_lo; ++q) {
    const int64_t i0 = 2 * q - pad, i1 = i0 + 1;
    e[q] = (i0 >= 0 && i0 < len) ? row[i0] : T(0);
    o[q] = (i1 >= 0 && i1 < len) ? row[i1] : T(0);
  }
  const T* __restrict base = row + (2 * q_lo - pad);
  for (int64_t q = q_lo; q < q_hi; ++q) {
    e[q] = base[2 * (q - q_lo)];
    o[q] = base[2 * (q - q_lo) + 1];
  }
  for (int64_t q = q_hi; q < n; ++q) {
    const int64_t i0 = 2 * q - pad, i1 = i0 + 1;
    e[q] = (i0 >= 0 && i0 < len) ? row[i0] : T(0);
    o[q] = (i1 >= 0 && i1 < len) ? row[i1] : T(0);
  }
}
// d[2q] = e[q], d[2q+1] = o[q], len elements of d.
template <class T>
inline void interleave(T* __restrict d, const T* __restrict e, const T* __restrict o, int64_t len) {
  const int64_t half = len / 2;
  for (int64_t q = 0; q < half; ++q) {
    d[2 * q] = e[q];
    d[2 * q + 1] = o[q];
  }
  if (len & 1) d[len - 1] = e[half];
}

// Scratch (rows) every transform below needs, in elements.
inline int64_t wino_scratch(int64_t tw) { return 24 * (tw + 8); }  // + 8: the AVX2 input transform's

// V[e] (C, Tc) = B^T d B for tile rows [ty0, ty1) of one image x (C, H, W); tw tiles per row.
template <class T>
void wino_input_transform(const T* x, int64_t C, int64_t H, int64_t W, int64_t pad_h, int64_t pad_w,
                          int64_t ty0, int64_t ty1, int64_t tw, T* V, T* rows) {
  const int64_t Tc = (ty1 - ty0) * tw, n = tw + 1;
  // e[i] / o[i]: even / odd columns of padded input row 2ty + i (tile tx reads e[tx], o[tx],
  // e[tx+1], o[tx+1]); te / to: the same after B^T along rows.
  T *e[4], *o[4], *te[4], *to[4];
  for (int i = 0; i < 4; ++i) {
    e[i] = rows + (2 * i) * n;
    o[i] = rows + (2 * i + 1) * n;
    te[i] = rows + (8 + 2 * i) * n;
    to[i] = rows + (9 + 2 * i) * n;
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * H * W;
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      for (int i = 0; i < 4; ++i) {
        const int64_t ih = 2 * ty - pad_h + i;
        if (ih < 0 || ih >= H) {
          for (int64_t q = 0; q < n; ++q) e[i][q] = o[i][q] = T(0);
          continue;
        }
        deinterleave_padded(e[i], o[i], xc + ih * W, W, pad_w, n);
      }
      // B^T d along rows: (r0 - r2, r1 + r2, r2 - r1, r1 - r3)
      v_sub(te[0], e[0], e[2], n); v_sub(to[0], o[0], o[2], n);
      v_add(te[1], e[1], e[2], n); v_add(to[1], o[1], o[2], n);
      v_sub(te[2], e[2], e[1], n); v_sub(to[2], o[2], o[1], n);
      v_sub(te[3], e[1], e[3], n); v_sub(to[3], o[1], o[3], n);
      // (B^T d) B along columns: tile tx has (a0, a1, a2, a3) = (te[tx], to[tx], te[tx+1], to[tx+1])
      const int64_t t0 = (ty - ty0) * tw;
      for (int i = 0; i < 4; ++i) {
        T* v = V + (i * 4 * C + c) * Tc + t0;
        const int64_t es = C * Tc;
        v_sub(v, te[i], te[i] + 1, tw);           // a0 - a2
        v_add(v + es, to[i], te[i] + 1, tw);      // a1 + a2
        v_sub(v + 2 * es, te[i] + 1, to[i], tw);  // a2 - a1
        v_sub(v + 3 * es, to[i], to[i] + 1, tw);  // a1 - a3
      }
    }
  }
}

// y (K, OH, OW) tile rows [ty0, ty1) = A^T M[e] A (+ bias) from M[e] (K, Tc).
template <class T>
void wino_output_transform(const T* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0, int64_t ty1,
                           int64_t tw, const T* bias, T* y, T* rows) {
  const int64_t Tc = (ty1 - ty0) * tw, es = K * Tc;  // es: stride between the 16 matrices
  T *a[4], *b[4];
  for (int j = 0; j < 4; ++j) {
    a[j] = rows + j * tw;
    b[j] = rows + (4 + j) * tw;
  }
  T* ye0 = rows + 8 * tw;  // output row 2ty, even / odd columns; then row 2ty + 1
  T* yo0 = rows + 9 * tw;
  T* ye1 = rows + 10 * tw;
  T* yo1 = rows + 11 * tw;
  for (int64_t k = 0; k < K; ++k) {
    const T bk = bias ? bias[k] : T(0);
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      const T* m = M + k * Tc + (ty - ty0) * tw;
      for (int j = 0; j < 4; ++j) {  // A^T m along rows: (m0 + m1 + m2, m1 - m2 - m3)
        v_add3(a[j], m + j * es, m + (4 + j) * es, m + (8 + j) * es, T(0), tw);
        v_sub2(b[j], m + (4 + j) * es, m + (8 + j) * es, m + (12 + j) * es, T(0), tw);
      }
      v_add3(ye0, a[0], a[1], a[2], bk, tw);  // (A^T m) A along columns, + bias
      v_sub2(yo0, a[1], a[2], a[3], bk, tw);
      v_add3(ye1, b[0], b[1], b[2], bk, tw);
      v_sub2(yo1, b[1], b[2], b[3], bk, tw);
      T* y0 = y + (k * OH + 2 * ty) * OW;
      interleave(y0, ye0, yo0, OW);
      if (2 * ty + 1 < OH) interleave(y0 + OW, ye1, yo1, OW);
    }
  }
}

// Mdy[e] (K, Tc) = A dy A^T for the 2x2 dy tiles of tile rows [ty0, ty1) of one image's
// dy (K, OH, OW) (positions past OH / OW are zeros): the weight gradient's transform.
//   A = [1 0; 1 1; 1 -1; 0 -1].
template <class T>
void wino_dy_transform(const T* dy, int64_t K, int64_t OH, int64_t OW, int64_t ty0, int64_t ty1,
                       int64_t tw, T* Mdy, T* rows) {
  const int64_t Tc = (ty1 - ty0) * tw, es = K * Tc;
  T* e0 = rows;  // dy rows 2ty / 2ty + 1, even / odd columns
  T* o0 = rows + tw;
  T* e1 = rows + 2 * tw;
  T* o1 = rows + 3 * tw;
  T *re[4] = {e0, rows + 4 * tw, rows + 5 * tw, rows + 6 * tw};  // A d along rows
  T *ro[4] = {o0, rows + 7 * tw, rows + 8 * tw, rows + 9 * tw};
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      const T* d0 = dy + (k * OH + 2 * ty) * OW;
      deinterleave(e0, o0, d0, OW, tw);
      if (2 * ty + 1 < OH) {
        deinterleave(e1, o1, d0 + OW, OW, tw);
      } else {
        for (int64_t q = 0; q < tw; ++q) e1[q] = o1[q] = T(0);
      }
      // rows (d0, d0 + d1, d0 - d1, -d1)
      v_add(re[1], e0, e1, tw); v_add(ro[1], o0, o1, tw);
      v_sub(re[2], e0, e1, tw); v_sub(ro[2], o0, o1, tw);
      v_neg(re[3], e1, tw);     v_neg(ro[3], o1, tw);
      T* m = Mdy + k * Tc + (ty - ty0) * tw;
      for (int i = 0; i < 4; ++i) {  // each row's (a, b) -> (a, a + b, a - b, -b)
        v_copy(m + (i * 4) * es, re[i], tw);
        v_add(m + (i * 4 + 1) * es, re[i], ro[i], tw);
        v_sub(m + (i * 4 + 2) * es, re[i], ro[i], tw);
        v_neg(m + (i * 4 + 3) * es, ro[i], tw);
      }
    }
  }
}

}  // namespace LAMINA_WINO_NS
}  // namespace lamina
