// Winograd F(2x2, 3x3) tile transforms (see conv_winograd.cpp for the math), written as plain
// unit-stride loops the compiler vectorizes. Included by conv_winograd.cpp (portable flags) and
// conv_winograd_avx2.cpp (-mavx2 -mfma) inside different namespaces (LAMINA_WINO_NS), so the two
// compiled copies never merge; no std:: templates here for the same reason.
#include <cstdint>
#include <cstring>

namespace lamina {
namespace LAMINA_WINO_NS {

// V[e] (C, Tc) for tile rows [ty0, ty1) of one image x (C, H, W); tw tiles per row.
// rows: scratch of 16 * (tw + 1) elements.
template <class T>
void wino_input_transform(const T* x, int64_t C, int64_t H, int64_t W, int64_t pad_h, int64_t pad_w,
                          int64_t ty0, int64_t ty1, int64_t tw, T* V, T* rows) {
  const int64_t Tc = (ty1 - ty0) * tw, n = tw + 1;
  // e[i] / o[i]: even / odd columns of padded input row 2ty + i (so tile tx reads e[tx], o[tx],
  // e[tx+1], o[tx+1]: unit stride); te / to: the same after B^T along rows.
  T* e[4];
  T* o[4];
  T* te[4];
  T* to[4];
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
        T* __restrict ei = e[i];
        T* __restrict oi = o[i];
        if (ih < 0 || ih >= H) {
          for (int64_t q = 0; q < n; ++q) ei[q] = oi[q] = T(0);
          continue;
        }
        const T* xr = xc + ih * W - pad_w;  // xr[col] for padded column col, valid in [pad_w, pad_w + W)
        for (int64_t q = 0; q < n; ++q) {
          const int64_t c0 = 2 * q, c1 = 2 * q + 1;
          ei[q] = (c0 >= pad_w && c0 < pad_w + W) ? xr[c0] : T(0);
          oi[q] = (c1 >= pad_w && c1 < pad_w + W) ? xr[c1] : T(0);
        }
      }
      {
        const T *__restrict e0 = e[0], *__restrict e1 = e[1], *__restrict e2 = e[2], *__restrict e3 = e[3];
        const T *__restrict o0 = o[0], *__restrict o1 = o[1], *__restrict o2 = o[2], *__restrict o3 = o[3];
        T *__restrict te0 = te[0], *__restrict te1 = te[1], *__restrict te2 = te[2], *__restrict te3 = te[3];
        T *__restrict to0 = to[0], *__restrict to1 = to[1], *__restrict to2 = to[2], *__restrict to3 = to[3];
        for (int64_t q = 0; q < n; ++q) {  // B^T d: along rows
          te0[q] = e0[q] - e2[q]; to0[q] = o0[q] - o2[q];
          te1[q] = e1[q] + e2[q]; to1[q] = o1[q] + o2[q];
          te2[q] = e2[q] - e1[q]; to2[q] = o2[q] - o1[q];
          te3[q] = e1[q] - e3[q]; to3[q] = o1[q] - o3[q];
        }
      }
      const int64_t t0 = (ty - ty0) * tw;
      for (int i = 0; i < 4; ++i) {  // (B^T d) B: tile tx covers columns 2tx .. 2tx+3
        const T* __restrict a = te[i];
        const T* __restrict b = to[i];
        T* __restrict v0 = V + ((i * 4 + 0) * C + c) * Tc + t0;
        T* __restrict v1 = V + ((i * 4 + 1) * C + c) * Tc + t0;
        T* __restrict v2 = V + ((i * 4 + 2) * C + c) * Tc + t0;
        T* __restrict v3 = V + ((i * 4 + 3) * C + c) * Tc + t0;
        for (int64_t tx = 0; tx < tw; ++tx) {
          v0[tx] = a[tx] - a[tx + 1];
          v1[tx] = b[tx] + a[tx + 1];
          v2[tx] = a[tx + 1] - b[tx];
          v3[tx] = b[tx] - b[tx + 1];
        }
      }
    }
  }
}

// y (K, OH, OW) tile rows [ty0, ty1) = A^T M[e] A (+ bias) from M[e] (K, Tc).
// rows: scratch of 4 * tw elements.
template <class T>
void wino_output_transform(const T* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0, int64_t ty1,
                           int64_t tw, const T* bias, T* y, T* rows) {
  const int64_t Tc = (ty1 - ty0) * tw, es = K * Tc;  // es: stride between the 16 matrices
  T* __restrict ye0 = rows;  // output row 2ty, even / odd columns; then row 2ty + 1
  T* __restrict yo0 = rows + tw;
  T* __restrict ye1 = rows + 2 * tw;
  T* __restrict yo1 = rows + 3 * tw;
  for (int64_t k = 0; k < K; ++k) {
    const T bk = bias ? bias[k] : T(0);
    for (int64_t ty = ty0; ty < ty1; ++ty) {
      const T* __restrict m = M + k * Tc + (ty - ty0) * tw;
      for (int64_t tx = 0; tx < tw; ++tx) {
        T a[4], b[4];  // A^T m: along rows
        for (int j = 0; j < 4; ++j) {
          const T m0 = m[(0 + j) * es + tx], m1 = m[(4 + j) * es + tx], m2 = m[(8 + j) * es + tx],
                  m3 = m[(12 + j) * es + tx];
          a[j] = m0 + m1 + m2;
          b[j] = m1 - m2 - m3;
        }
        ye0[tx] = a[0] + a[1] + a[2] + bk;  // (A^T m) A: along columns
        yo0[tx] = a[1] - a[2] - a[3] + bk;
        ye1[tx] = b[0] + b[1] + b[2] + bk;
        yo1[tx] = b[1] - b[2] - b[3] + bk;
      }
      T* __restrict y0 = y + (k * OH + 2 * ty) * OW;
      const int64_t half = OW / 2;
      for (int64_t q = 0; q < half; ++q) {
        y0[2 * q] = ye0[q];
        y0[2 * q + 1] = yo0[q];
      }
      if (OW & 1) y0[OW - 1] = ye0[half];
      if (2 * ty + 1 < OH) {
        T* __restrict y1 = y0 + OW;
        for (int64_t q = 0; q < half; ++q) {
          y1[2 * q] = ye1[q];
          y1[2 * q + 1] = yo1[q];
        }
        if (OW & 1) y1[OW - 1] = ye1[half];
      }
    }
  }
}

}  // namespace LAMINA_WINO_NS
}  // namespace lamina
