// AVX2 + FMA GEMM micro-kernels (contract in gemm_kernel.h). Compiled with -mavx2 -mfma;
// gemm.cpp calls these only when active_isa() >= Isa::avx2.
#include "gemm_kernel.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include <algorithm>

#include "gemm_ukernel.h"

namespace lamina {
namespace {

// One ymm register's worth of T, so one template serves float and double.
template <class T> struct V;
template <> struct V<float> {
  using R = __m256;
  static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static R load(const float* p) { return _mm256_load_ps(p); }
  static R loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, R x) { _mm256_storeu_ps(p, x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  // First `lanes` lanes set (0 <= lanes <= 8).
  static __m256i mask(int64_t lanes) {
    alignas(32) static const int32_t t[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 8 - lanes));
  }
  static R maskload(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static void maskstore(float* p, __m256i m, R x) { _mm256_maskstore_ps(p, m, x); }
  // The first `lanes` lanes (0 < lanes < 8) by 16-, 8- and 4-byte stores: a masked store
  // costs far more on AMD (measured Zen 4, f32 1 thread, 50176x6x25 NT, where each 6 x 16
  // tile's last row ends in 1 live lane: 19.4 -> 26.2 GFLOP/s).
  static void store_first(float* p, int64_t lanes, __m256i, R x) {
    __m128 h = _mm256_castps256_ps128(x);
    if (lanes >= 4) {
      _mm_storeu_ps(p, h);
      h = _mm256_extractf128_ps(x, 1);
      p += 4;
      lanes -= 4;
    }
    if (lanes >= 2) {
      _mm_storel_pi(reinterpret_cast<__m64*>(p), h);
      h = _mm_movehl_ps(h, h);
      p += 2;
      lanes -= 2;
    }
    if (lanes) _mm_store_ss(p, h);
  }
};
template <> struct V<double> {
  using R = __m256d;
  static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R set1(double x) { return _mm256_set1_pd(x); }
  static R bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static R load(const double* p) { return _mm256_load_pd(p); }
  static R loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void storeu(double* p, R x) { _mm256_storeu_pd(p, x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  static __m256i mask(int64_t lanes) {  // first `lanes` lanes set (0 <= lanes <= 4)
    alignas(32) static const int64_t t[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 4 - lanes));
  }
  static R maskload(const double* p, __m256i m) { return _mm256_maskload_pd(p, m); }
  static void maskstore(double* p, __m256i m, R x) { _mm256_maskstore_pd(p, m, x); }
  static void store_first(double* p, int64_t lanes, __m256i, R x) {  // 0 < lanes < 4
    __m128d h = _mm256_castpd256_pd128(x);
    if (lanes >= 2) {
      _mm_storeu_pd(p, h);
      h = _mm256_extractf128_pd(x, 1);
      p += 2;
      lanes -= 2;
    }
    if (lanes) _mm_store_sd(p, h);
  }
};

LAMINA_UKERNEL(V, f32_6x16, float, 6, 2)
LAMINA_UKERNEL(V, f32_12x8, float, 12, 1)
LAMINA_UKERNEL(V, f64_6x8, double, 6, 2)
LAMINA_UKERNEL(V, f64_12x4, double, 12, 1)
LAMINA_UKERNEL(V, f32_6x8, float, 6, 1)   // half-width siblings of 6x16 / 6x8 (GemmKernel::half_*)
LAMINA_UKERNEL(V, f64_6x4, double, 6, 1)
#undef LAMINA_UKERNEL

}  // namespace

template <> GemmKernel<float> gemm_kernel_avx2_main<float>() {
  // A block 144 x KC x 4 B = 144 KiB (72 x KC x 8 B for double): resident in L2.
  return GemmKernel<float>{6, 16, f32_6x16_packed, f32_6x16_strided, "avx2 6x16 f32", 144, false}
      .with_half(f32_6x8_packed, f32_6x8_strided);
}
template <> GemmKernel<float> gemm_kernel_avx2_narrow<float>() {
  return {12, 8, f32_12x8_packed, f32_12x8_strided, "avx2 12x8 f32", 144, false};
}
template <> GemmKernel<double> gemm_kernel_avx2_main<double>() {
  return GemmKernel<double>{6, 8, f64_6x8_packed, f64_6x8_strided, "avx2 6x8 f64", 72, false}
      .with_half(f64_6x4_packed, f64_6x4_strided);
}
template <> GemmKernel<double> gemm_kernel_avx2_narrow<double>() {
  return {12, 4, f64_12x4_packed, f64_12x4_strided, "avx2 12x4 f64", 72, false};
}

// ---- skinny (matrix-vector) kernels for M == 1 / N == 1, see gemm_kernel.h ----------------
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
inline double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
inline __m256 vadd(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
inline __m256d vadd(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }

// y[j] = sum_k x[k] * Mat[j*ldm + k]: R rows at once, two chains per row (2R accumulators,
// x loaded once per k step for all rows), the k tail by masked loads (no scalar loop).
template <class T, int R>
__attribute__((always_inline)) inline void dot_rows(int64_t K, const T* x, const T* Mat,
                                                    int64_t ldm, T* y, __m256i m, int64_t rem) {
  using X = V<T>;
  constexpr int W = X::W;
  typename X::R a[R], b[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) a[r] = b[r] = X::zero();
  int64_t k = 0;
  for (; k + 2 * W <= K; k += 2 * W) {
    const typename X::R x0 = X::loadu(x + k), x1 = X::loadu(x + k + W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      a[r] = X::fma(X::loadu(Mat + r * ldm + k), x0, a[r]);
      b[r] = X::fma(X::loadu(Mat + r * ldm + k + W), x1, b[r]);
    }
  }
  if (k + W <= K) {
    const typename X::R x0 = X::loadu(x + k);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) a[r] = X::fma(X::loadu(Mat + r * ldm + k), x0, a[r]);
    k += W;
  }
  if (rem) {
    const typename X::R x0 = X::maskload(x + k, m);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) b[r] = X::fma(X::maskload(Mat + r * ldm + k, m), x0, b[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) y[r] = hsum(vadd(a[r], b[r]));
}

template <class T>
void gemv_dot(int64_t n, int64_t K, const T* x, const T* Mat, int64_t ldm, T* y) {
  using X = V<T>;
  const int64_t rem = K % X::W;
  const __m256i m = rem ? X::mask(rem) : _mm256_setzero_si256();
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) dot_rows<T, 4>(K, x, Mat + j * ldm, ldm, y + j, m, rem);
  for (; j < n; ++j) dot_rows<T, 1>(K, x, Mat + j * ldm, ldm, y + j, m, rem);
}

// y[j] = sum_k x[k*incx] * Mat[k*ldm + j]: NV vectors of columns stay in registers over the
// whole k sweep (each row of Mat read once, contiguously); narrow blocks split k in two chains.
template <class T, int NV>
__attribute__((always_inline)) inline void axpy_cols(int64_t K, const T* x, int64_t incx,
                                                     const T* Mat, int64_t ldm, T* y) {
  using X = V<T>;
  constexpr int W = X::W;
  typename X::R c[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) c[v] = X::zero();
  for (int64_t k = 0; k < K; ++k) {
    const typename X::R xk = X::set1(x[k * incx]);
    const T* row = Mat + k * ldm;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) c[v] = X::fma(X::loadu(row + v * W), xk, c[v]);
  }
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) X::storeu(y + v * W, c[v]);
}

template <class T>
void gemv_axpy(int64_t n, int64_t K, const T* x, int64_t incx, const T* Mat, int64_t ldm, T* y) {
  using X = V<T>;
  constexpr int W = X::W;
  int64_t j = 0;
  for (; j + 8 * W <= n; j += 8 * W) axpy_cols<T, 8>(K, x, incx, Mat + j, ldm, y + j);
  for (; j + 2 * W <= n; j += 2 * W) axpy_cols<T, 2>(K, x, incx, Mat + j, ldm, y + j);
  if (j < n) {  // last < 2W columns: one vector and a masked one (or just a masked one)
    const int64_t left = n - j;
    const int64_t full = left >= W ? W : 0, rem = left - full;
    const __m256i m = rem ? X::mask(rem) : _mm256_setzero_si256();
    typename X::R c0 = X::zero(), c1 = X::zero();
    for (int64_t k = 0; k < K; ++k) {
      const typename X::R xk = X::set1(x[k * incx]);
      const T* row = Mat + k * ldm + j;
      if (full) c0 = X::fma(X::loadu(row), xk, c0);
      if (rem) c1 = X::fma(X::maskload(row + full, m), xk, c1);
    }
    if (full) X::storeu(y + j, c0);
    if (rem) X::maskstore(y + j + full, m, c1);
  }
}

}  // namespace

void gemv_dot_avx2(int64_t n, int64_t K, const float* x, const float* Mat, int64_t ldm, float* y) {
  gemv_dot<float>(n, K, x, Mat, ldm, y);
}
void gemv_dot_avx2(int64_t n, int64_t K, const double* x, const double* Mat, int64_t ldm, double* y) {
  gemv_dot<double>(n, K, x, Mat, ldm, y);
}
void gemv_axpy_avx2(int64_t n, int64_t K, const float* x, int64_t incx, const float* Mat,
                    int64_t ldm, float* y) {
  gemv_axpy<float>(n, K, x, incx, Mat, ldm, y);
}
void gemv_axpy_avx2(int64_t n, int64_t K, const double* x, int64_t incx, const double* Mat,
                    int64_t ldm, double* y) {
  gemv_axpy<double>(n, K, x, incx, Mat, ldm, y);
}

// The core's FMA limit: 12 independent ymm FMA chains (2 pipes x 4-cycle latency need >= 8
// in flight), no loads. Returns the flops done; *sink keeps the result alive.
double fma_peak_probe_avx2(int64_t iters, float* sink) {
  __m256 acc[12];
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  *sink = _mm256_cvtss_f32(s);
  return double(iters) * 12 * 8 * 2;
}

// dst[k*dst_ld + r] = src[r*ld + k]: 8 rows (4 for double) at a time through register
// transposes instead of scalar strided stores; the k tail by scalar copies.
void pack_rows_trans_avx2(int64_t rows, int64_t K, const float* src, int64_t ld, float* dst,
                          int64_t dst_ld) {
  for (int64_t h = 0; h < rows; h += 8) {
    const float* s = src + h * ld;
    float* d0 = dst + h;
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      const float* p = s + k;
      const __m256 r0 = _mm256_loadu_ps(p), r1 = _mm256_loadu_ps(p + ld);
      const __m256 r2 = _mm256_loadu_ps(p + 2 * ld), r3 = _mm256_loadu_ps(p + 3 * ld);
      const __m256 r4 = _mm256_loadu_ps(p + 4 * ld), r5 = _mm256_loadu_ps(p + 5 * ld);
      const __m256 r6 = _mm256_loadu_ps(p + 6 * ld), r7 = _mm256_loadu_ps(p + 7 * ld);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
      const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* d = d0 + k * dst_ld;  // u0..u3 hold k+0..3 (low lanes) and k+4..7 (high lanes)
      _mm256_storeu_ps(d + 0 * dst_ld, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d + 1 * dst_ld, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d + 2 * dst_ld, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d + 3 * dst_ld, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d + 4 * dst_ld, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d + 5 * dst_ld, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d + 6 * dst_ld, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d + 7 * dst_ld, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; k < K; ++k)
      for (int64_t r = 0; r < 8; ++r) d0[k * dst_ld + r] = s[r * ld + k];
  }
}

void pack_rows_trans_avx2(int64_t rows, int64_t K, const double* src, int64_t ld, double* dst,
                          int64_t dst_ld) {
  for (int64_t h = 0; h < rows; h += 4) {
    const double* s = src + h * ld;
    double* d0 = dst + h;
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const double* p = s + k;
      const __m256d r0 = _mm256_loadu_pd(p), r1 = _mm256_loadu_pd(p + ld);
      const __m256d r2 = _mm256_loadu_pd(p + 2 * ld), r3 = _mm256_loadu_pd(p + 3 * ld);
      const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
      const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
      double* d = d0 + k * dst_ld;  // t0: (k, k+2) of rows 0,1; t2: of rows 2,3
      _mm256_storeu_pd(d + 0 * dst_ld, _mm256_permute2f128_pd(t0, t2, 0x20));
      _mm256_storeu_pd(d + 1 * dst_ld, _mm256_permute2f128_pd(t1, t3, 0x20));
      _mm256_storeu_pd(d + 2 * dst_ld, _mm256_permute2f128_pd(t0, t2, 0x31));
      _mm256_storeu_pd(d + 3 * dst_ld, _mm256_permute2f128_pd(t1, t3, 0x31));
    }
    for (; k < K; ++k)
      for (int64_t r = 0; r < 4; ++r) d0[k * dst_ld + r] = s[r * ld + k];
  }
}

// dst[k*W + j] = j < nv ? src[k*ld + j] : 0, by masked loads, which never touch memory past
// column nv, instead of a scalar copy plus a memset call per k (measured: that was half of
// conv1's weight gradient, 25x50176x6 TN, where every 6-column panel of B is ragged). A W
// that is not a multiple of the vector (MR = 12 for float, 6 for double) ends with a chunk
// overlapping the one before: its lanes are written twice with the same values.
template <class T>
void pack_rows_masked(int W, int64_t K, int64_t nv, const T* src, int64_t ld, T* dst) {
  using X = V<T>;
  constexpr int L = X::W;
  if (W < L) {  // the AVX2 6-row float tile: narrower than one vector
    // One masked load per k (nothing past column nv is read), stored whole: its lanes past W
    // land in the next k's slot, written right after; the last k stores only W lanes.
    // Measured f32 TN 1 thread (a Linear's dW, A packed), Zen 4 AVX2, vs a scalar copy per
    // value: 300x64x100 63 -> 70 GFLOP/s, 400x256x120 72 -> 79, 120x64x84 57 -> 63.
    const __m256i live = X::mask(std::min<int64_t>(nv, W));
    int64_t k = 0;
    for (; k + 1 < K; ++k) X::storeu(dst + k * W, X::maskload(src + k * ld, live));
    if (k < K) X::store_first(dst + k * W, W, live, X::maskload(src + k * ld, live));
    return;
  }
  constexpr int kMaxChunks = 8;  // W <= 8 vectors: every tile's MR and NR
  int off[kMaxChunks];
  __m256i live[kMaxChunks];
  int n = 0;
  for (int c = 0;; c = std::min(c + L, W - L)) {
    off[n] = c;
    live[n++] = X::mask(std::clamp<int64_t>(nv - c, 0, L));
    if (c == W - L || n == kMaxChunks) break;
  }
  for (int64_t k = 0; k < K; ++k)  // k outermost: each source row is read from L1 once
    for (int i = 0; i < n; ++i)
      X::storeu(dst + k * W + off[i], X::maskload(src + k * ld + off[i], live[i]));
}

void pack_rows_masked_avx2(int W, int64_t K, int64_t nv, const float* src, int64_t ld, float* dst) {
  pack_rows_masked(W, K, nv, src, ld, dst);
}
void pack_rows_masked_avx2(int W, int64_t K, int64_t nv, const double* src, int64_t ld,
                           double* dst) {
  pack_rows_masked(W, K, nv, src, ld, dst);
}

}  // namespace lamina
#endif  // LAMINA_X86
