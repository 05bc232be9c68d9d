// Activation family: dispatch (AVX2 or portable), the portable loops, bias broadcasts and
// their gradient reductions. See activation.h for the conventions.
#include "activation.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu.h"
#include "float_bits.h"
#include "thread_team.h"

namespace lamina {
namespace {

// Non-temporal stores pay once the output is well past the last-level cache, and only when
// the output is a separate buffer (in place, the line is already in cache from the load).
template <class T>
bool stream_stores(int64_t n, const T* in, const T* out) {
  return in != out && static_cast<double>(n) * sizeof(T) >= 16.0 * 1024 * 1024;
}

template <class T> T sigmoid_ref(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);  // x < 0: e^x / (1 + e^x) never overflows
  return e / (T(1) + e);
}

template <class T> constexpr T softplus_threshold() { return T(20); }

// ---- float tanh / sigmoid without SIMD intrinsics ---------------------------------------------
// The math of activation_avx512.cpp written as plain branch-free scalar code, so that the
// compiler vectorizes the loops over it for whatever vector unit the target has (SSE2 on
// x86-64, NEON on arm64) instead of calling libm per element (~20x slower). NaN propagates
// through the arithmetic (a final `x != x ? x : y` would be kept as a branch, which stops the
// vectorizer). Within 2 ulp of the float64 value (csrc/tests/test_activation.cpp).
// c ? a : b by bit masks. A plain `?:` between two computed values gets its arms sunk into
// branches (under -ftrapping-math GCC may not evaluate both), and branches stop the vectorizer.
inline float select_f32(bool c, float a, float b) {
  const int32_t m = -int32_t(c);
  return bits_to_float((float_bits(a) & m) | (float_bits(b) & ~m));
}

// e^z for z in [-104, 19]: z = n ln2 + r (ln2 split so n * kLn2Hi is exact without an FMA),
// e^r by Taylor to r^8, and 2^n as two normal factors so that n down to -150 rounds once into
// the denormals.
inline float exp_f32(float z) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  const float n = (z * 1.44269504088896341f + kRound) - kRound;
  float r = z - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float q = 1.0f / 40320;
  q = q * r + 1.0f / 5040;
  q = q * r + 1.0f / 720;
  q = q * r + 1.0f / 120;
  q = q * r + 1.0f / 24;
  q = q * r + 1.0f / 6;
  q = q * r + 0.5f;
  const float er = 1.0f + (r + (r * r) * q);
  const int32_t ni = static_cast<int32_t>(select_f32(n > -200.0f, n, -200.0f));  // NaN: any n (er is NaN)
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  return er * bits_to_float((n1 + 127) << 23) * bits_to_float((n2 + 127) << 23);
}

// tanh(x) = sign(x) t(min(|x|, 9.2)): a + a s R(s) below 0.625 (R: our polynomial fit of
// (tanh(a) - a) / a^3 in s = a^2; the subtraction 1 - 2 / (1 + e^(2a)) would cancel there), else
// 1 - 2 / (1 + e^(2a)). Branch-free and table-free, so the compiler can vectorize it without
// gathers; not the AVX-512 kernel's piecewise table form.
inline float tanh_f32(float x) {
  const float ax = std::fabs(x);
  const float a = select_f32(ax > 9.2f, 9.2f, ax);  // NaN stays NaN, and so does every step after
  const float s = a * a;
  float p = -0.005704974755644798f;
  p = p * s + 0.020639074966311455f;
  p = p * s + -0.05373971164226532f;
  p = p * s + 0.13331441581249237f;
  p = p * s + -0.3333328068256378f;
  const float small = a + (a * s) * p;
  const float big = 1.0f - 2.0f / (exp_f32(a + a) + 1.0f);
  return std::copysign(select_f32(a < 0.625f, small, big), x);
}

// sigmoid(x) = u / (1 + e), e = e^-|x|, u = 1 or e by the sign of x (no overflow; denormal
// results for x < -87.3), with 1 + e carried as d + d_lo (why: sigmoid16 in activation_avx512.cpp).
inline float sigmoid_f32(float x) {
  const float z = -std::fabs(x);
  const float e = exp_f32(select_f32(z < -104.0f, -104.0f, z));  // NaN stays NaN, and so does y
  const float d = 1.0f + e;
  const float d_lo = (1.0f - d) + e;  // 1 + e - d exactly (1 >= e)
  const float q = select_f32(x < 0.0f, e, 1.0f) / d;
  return q - (q * d_lo) / d;
}

void tanh_f32_loop(int64_t i0, int64_t i1, const float* x, float* y) {
  for (int64_t i = i0; i < i1; ++i) y[i] = tanh_f32(x[i]);
}
void sigmoid_f32_loop(int64_t i0, int64_t i1, const float* x, float* y) {
  for (int64_t i = i0; i < i1; ++i) y[i] = sigmoid_f32(x[i]);
}

template <class T>
void forward_portable(Activation kind, int64_t i0, int64_t i1, const T* x, T* y, T slope) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  switch (kind) {
    case Activation::identity:
      if (x != y) std::copy(x + i0, x + i1, y + i0);
      break;
    case Activation::relu:  // x < 0 is false for NaN, so NaN passes through
      for (int64_t i = i0; i < i1; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
      break;
    case Activation::leaky_relu:
      for (int64_t i = i0; i < i1; ++i) {
        const T v = x[i];
        y[i] = v > T(0) ? v : v * slope;
      }
      break;
    case Activation::softplus:
      for (int64_t i = i0; i < i1; ++i) {
        const T v = x[i];
        y[i] = v > softplus_threshold<T>() ? v : std::max(v, T(0)) + std::log1p(std::exp(-std::fabs(v)));
        if (v != v) y[i] = v;
      }
      break;
    case Activation::sigmoid:
      if constexpr (std::is_same_v<T, float>)
        sigmoid_f32_loop(i0, i1, x, y);
      else
        for (int64_t i = i0; i < i1; ++i) y[i] = sigmoid_ref(x[i]);
      break;
    case Activation::tanh:
      if constexpr (std::is_same_v<T, float>)
        tanh_f32_loop(i0, i1, x, y);
      else
        for (int64_t i = i0; i < i1; ++i) y[i] = std::tanh(x[i]);
      break;
    case Activation::step:
      for (int64_t i = i0; i < i1; ++i) y[i] = x[i] > T(0) ? T(1) : (x[i] <= T(0) ? T(0) : nan);
      break;
  }
}

template <class T>
void backward_portable(Activation kind, int64_t i0, int64_t i1, const T* v, const T* dy, T* dx, T slope) {
  switch (kind) {
    case Activation::identity:
      if (dy != dx) std::copy(dy + i0, dy + i1, dx + i0);
      break;
    case Activation::relu:  // NOTE: relu'(0) = 0
      for (int64_t i = i0; i < i1; ++i) {
        const T g = dy[i];  // unconditional load: lets the compiler vectorize the select
        dx[i] = v[i] <= T(0) ? T(0) : g;
      }
      break;
    case Activation::leaky_relu:  // leaky_relu'(0) = slope
      for (int64_t i = i0; i < i1; ++i) {
        const T g = dy[i];
        dx[i] = v[i] > T(0) ? g : g * slope;
      }
      break;
    case Activation::softplus:
      for (int64_t i = i0; i < i1; ++i)
        dx[i] = v[i] > softplus_threshold<T>() ? dy[i] : dy[i] * sigmoid_ref(v[i]);
      break;
    case Activation::sigmoid:  // v is y
      for (int64_t i = i0; i < i1; ++i) dx[i] = dy[i] * (v[i] * (T(1) - v[i]));
      break;
    case Activation::tanh:  // v is y
      for (int64_t i = i0; i < i1; ++i) dx[i] = dy[i] * (T(1) - v[i] * v[i]);
      break;
    case Activation::step:  // NOTE: zero gradient everywhere, step'(0) included
      std::fill(dx + i0, dx + i1, T(0));
      break;
  }
}

}  // namespace

bool act_backward_reads_y(Activation kind) {
  return kind == Activation::sigmoid || kind == Activation::tanh;
}

const char* activation_name(Activation kind) {
  const int k = static_cast<int>(kind);
  return valid_activation(k) ? kActivationNames[k] : "?";
}

namespace {

#if defined(LAMINA_X86)
// The AVX-512 kernels cover float tanh and sigmoid; false sends the rest to the AVX2 path.
inline bool forward_avx512(Activation kind, int64_t i0, int64_t i1, const float* x, float* y, bool stream) {
  return detail::act_forward_avx512(kind, i0, i1, x, y, stream);
}
inline bool forward_avx512(Activation, int64_t, int64_t, const double*, double*, bool) { return false; }
#endif

}  // namespace

template <class T>
void act_forward(Activation kind, int64_t n, const T* x, T* y, T negative_slope) {
  if (n <= 0) return;
  const bool avx2 = active_isa() >= Isa::avx2;
  const bool avx512 = active_isa() >= Isa::avx512;
  parallel_ranges(n, [&](int64_t i0, int64_t i1) {
#if defined(LAMINA_X86)
    if (avx512 && forward_avx512(kind, i0, i1, x, y, stream_stores<T>(n, x, y))) return;
    if (avx2) return detail::act_forward_avx2(kind, i0, i1, x, y, negative_slope, stream_stores<T>(n, x, y));
#endif
    forward_portable(kind, i0, i1, x, y, negative_slope);
  });
  (void)avx2;
  (void)avx512;
}

template <class T>
void act_backward(Activation kind, int64_t n, const T* x_or_y, const T* dy, T* dx, T negative_slope) {
  if (n <= 0) return;
  const bool avx2 = active_isa() >= Isa::avx2;
  parallel_ranges(n, [&](int64_t i0, int64_t i1) {
#if defined(LAMINA_X86)
    if (avx2) return detail::act_backward_avx2(kind, i0, i1, x_or_y, dy, dx, negative_slope,
                                               stream_stores<T>(n, x_or_y, dx) && dx != dy);
#endif
    backward_portable(kind, i0, i1, x_or_y, dy, dx, negative_slope);
  });
  (void)avx2;
}

template <class T>
void bias_add_rows(int64_t N, int64_t F, T* y, const T* b) {
  if (N <= 0 || F <= 0) return;
  parallel_tasks(N, team_size(static_cast<double>(N) * F, kElemsPerThread), [&](int64_t n) {
    T* row = y + n * F;
    for (int64_t j = 0; j < F; ++j) row[j] += b[j];
  });
}

template <class T>
void bias_add_channels(int64_t N, int64_t C, int64_t S, T* y, const T* b) {
  if (N <= 0 || C <= 0 || S <= 0) return;
  parallel_tasks(N * C, team_size(static_cast<double>(N) * C * S, kElemsPerThread), [&](int64_t nc) {
    const T bc = b[nc % C];
    T* plane = y + nc * S;
    for (int64_t s = 0; s < S; ++s) plane[s] += bc;
  });
}

template <class T>
void bias_grad_rows(int64_t N, int64_t F, const T* dy, T* db) {
  if (F <= 0) return;
  // Parallel over column blocks: each thread owns db[j0, j1) and walks all rows. Blocks are as
  // wide as the threads allow (up to kMaxCols, whose sums stay in L1), so one thread reads the
  // matrix front to back instead of in 1 KB pieces a row apart (4096x1000: 0.86 -> ~0.4 ms).
  constexpr int64_t kMaxCols = 2048;
  const int nt_want = team_size(static_cast<double>(N) * F, kElemsPerThread);
  const int64_t nblocks = std::max<int64_t>((F + kMaxCols - 1) / kMaxCols, std::min<int64_t>(nt_want, (F + 15) / 16));
  const int64_t cols = ((F + nblocks - 1) / nblocks + 15) / 16 * 16;  // a multiple of 16 lanes
  const int64_t nb = (F + cols - 1) / cols;
  const int nt = static_cast<int>(std::min<int64_t>(nt_want, nb));
  const bool avx2 = active_isa() >= Isa::avx2;
  parallel_tasks(nb, nt, [&](int64_t jb) {
    const int64_t j0 = jb * cols, j1 = std::min(F, j0 + cols);
#if defined(LAMINA_X86)
    if (avx2) {
      detail::col_sum_avx2(N, F, j0, j1, dy, db);
      return;
    }
#endif
    for (int64_t j = j0; j < j1; ++j) db[j] = T(0);
    for (int64_t n = 0; n < N; ++n) {
      const T* row = dy + n * F;
      for (int64_t j = j0; j < j1; ++j) db[j] += row[j];
    }
  });
  (void)avx2;
}

template <class T>
void bias_grad_channels(int64_t N, int64_t C, int64_t S, const T* dy, T* db) {
  if (C <= 0) return;
  parallel_tasks(C, team_size(static_cast<double>(N) * C * S, kElemsPerThread), [&](int64_t c) {
    // Sum in T with 8 independent partial sums (vectorizable, better rounding than one chain).
    T part[8] = {};
    for (int64_t n = 0; n < N; ++n) {
      const T* plane = dy + (n * C + c) * S;
      int64_t s = 0;
      for (; s + 8 <= S; s += 8)
        for (int k = 0; k < 8; ++k) part[k] += plane[s + k];
      for (; s < S; ++s) part[s & 7] += plane[s];
    }
    T total = T(0);
    for (int k = 0; k < 8; ++k) total += part[k];
    db[c] = total;
  });
}

// NOTE: Phi(x) = erfc(-x / sqrt 2) / 2, not (1 + erf(x / sqrt 2)) / 2: for x << 0 the latter
// cancels (1 + erf -> 0) and loses all relative accuracy. float inputs are evaluated in double:
// in the tail erfc magnifies the rounding of x / sqrt 2 by ~x^2 (100 float ulp at x = -12).
template <class T> using GeluMath = std::conditional_t<sizeof(T) < sizeof(double), double, T>;

template <class T>
void gelu_forward(int64_t n, const T* x, T* y) {
  using A = GeluMath<T>;
  const A inv_sqrt2 = A(0.70710678118654752440);
  parallel_ranges(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const A v = x[i];
      y[i] = static_cast<T>(v * (A(0.5) * std::erfc(-v * inv_sqrt2)));
    }
  });
}

template <class T>
void gelu_backward(int64_t n, const T* x, const T* dy, T* dx) {
  using A = GeluMath<T>;
  const A inv_sqrt2 = A(0.70710678118654752440), inv_sqrt_2pi = A(0.39894228040143267794);
  parallel_ranges(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const A v = x[i];
      const A cdf = A(0.5) * std::erfc(-v * inv_sqrt2);
      const A pdf = std::exp(A(-0.5) * v * v) * inv_sqrt_2pi;
      dx[i] = static_cast<T>(dy[i] * (cdf + v * pdf));
    }
  });
}

namespace {

// sum of a[i] for i in [0, n), in double: AVX2 chains or 8 portable lanes, combined in a fixed order.
template <class T>
double run_sum(int64_t n, const T* a) {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx2) return detail::sum_avx2(n, a);
#endif
  double lane[8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(a[k + j]);
  for (; k < n; ++k) lane[k & 7] += static_cast<double>(a[k]);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

}  // namespace

template <class T>
void bias_grad_split(int64_t outer, int64_t mid, int64_t inner, double alpha, const T* dy, const T* x, T* ds) {
  if (mid <= 0) return;
  if (x) {
    // dy * x rounded to T into a buffer, then the plain sum: exactly what eager autodiff does (the
    // rule's dy * x array, then reduce_to_shape), so the two stay bit-identical.
    const int64_t n = outer * mid * inner;
    std::vector<T> prod(static_cast<size_t>(n));
    parallel_ranges(n, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) prod[i] = dy[i] * x[i];
    });
    bias_grad_split<T>(outer, mid, inner, alpha, prod.data(), nullptr, ds);
    return;
  }
  if (mid == 1) {
    // A scalar: fixed chunks (not one per thread), partial sums added in chunk order, so the
    // result does not depend on the thread count.
    const int64_t n = outer * inner;
    const int64_t nchunks = (n + kElemChunk - 1) / kElemChunk;
    std::vector<double> part(static_cast<size_t>(std::max<int64_t>(nchunks, 1)), 0.0);
    parallel_tasks(nchunks, team_size(static_cast<double>(n), kElemsPerThread), [&](int64_t c) {
      const int64_t i0 = c * kElemChunk, i1 = std::min(n, i0 + kElemChunk);
      part[c] = run_sum<T>(i1 - i0, dy + i0);
    });
    double total = 0;
    for (double v : part) total += v;
    ds[0] = static_cast<T>(alpha * total);
    return;
  }
  // a bias (F) on (N, F) or (C, 1, 1) on (N, C, H, W): the Linear / conv bias gradient kernels
  if (inner == 1) bias_grad_rows<T>(outer, mid, dy, ds);
  else bias_grad_channels<T>(outer, mid, inner, dy, ds);
  if (alpha != 1.0)
    for (int64_t m = 0; m < mid; ++m) ds[m] = static_cast<T>(alpha * ds[m]);
}

#define LAMINA_INSTANTIATE(T)                                                                  \
  template void act_forward<T>(Activation, int64_t, const T*, T*, T);                         \
  template void act_backward<T>(Activation, int64_t, const T*, const T*, T*, T);              \
  template void bias_add_rows<T>(int64_t, int64_t, T*, const T*);                             \
  template void bias_add_channels<T>(int64_t, int64_t, int64_t, T*, const T*);                \
  template void bias_grad_rows<T>(int64_t, int64_t, const T*, T*);                            \
  template void bias_grad_channels<T>(int64_t, int64_t, int64_t, const T*, T*);             \
  template void bias_grad_split<T>(int64_t, int64_t, int64_t, double, const T*, const T*, T*); \
  template void gelu_forward<T>(int64_t, const T*, T*);                                       \
  template void gelu_backward<T>(int64_t, const T*, const T*, T*);
LAMINA_INSTANTIATE(float)
LAMINA_INSTANTIATE(double)
#undef LAMINA_INSTANTIATE

}  // namespace lamina
