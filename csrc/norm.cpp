// Normalization and dropout kernels (see norm.h). The row primitives here are the portable
// path; norm_avx2.cpp has the same operations in the same order, 8 lanes at a time.
#include "norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu.h"
#include "thread_team.h"

namespace lamina {
namespace detail {
namespace {

// The lane order of norm.h: lane j sums elements j, j + 8, j + 16, ... of the whole groups.
inline double combine8(const double* p) { return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7])); }

template <class T>
double sum_portable(const T* x, int64_t n) {
  double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) p[j] += static_cast<double>(x[i + j]);
  double s = combine8(p);
  for (; i < n; ++i) s += static_cast<double>(x[i]);
  return s;
}

template <class T>
double centered_sq_portable(const T* x, int64_t n, double mean) {
  double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const double d = static_cast<double>(x[i + j]) - mean;
      p[j] += d * d;
    }
  double s = combine8(p);
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - mean;
    s += d * d;
  }
  return s;
}

template <class T>
inline double masked(const T* dy, const T* y, int64_t i) {
  return (y == nullptr || y[i] > T(0)) ? static_cast<double>(dy[i]) : 0.0;
}

template <class T>
void grad_sums_portable(const T* x, const T* dy, const T* y, int64_t n, double mean, double* sum_dy,
                        double* sum_dy_xc) {
  double p[8] = {0, 0, 0, 0, 0, 0, 0, 0}, q[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const double g = masked(dy, y, i + j);
      p[j] += g;
      q[j] += g * (static_cast<double>(x[i + j]) - mean);
    }
  double s = combine8(p), t = combine8(q);
  for (; i < n; ++i) {
    const double g = masked(dy, y, i);
    s += g;
    t += g * (static_cast<double>(x[i]) - mean);
  }
  *sum_dy = s;
  *sum_dy_xc = t;
}

template <class T>
void affine_portable(const T* x, T* out, int64_t n, T a, T b, bool relu) {
  if (relu) {
    for (int64_t i = 0; i < n; ++i) {
      const T v = x[i] * a + b;
      out[i] = T(0) > v ? T(0) : v;   // max(0, v) with a NaN kept, as vmaxps(0, v)
    }
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * a + b;
  }
}

template <class T>
void grad_affine_portable(const T* x, const T* dy, const T* y, T* dx, int64_t n, T m, T a, T b, T c) {
  for (int64_t i = 0; i < n; ++i) {
    const T g = (y == nullptr || y[i] > T(0)) ? dy[i] : T(0);
    dx[i] = x ? (g * a + (x[i] - m) * b) + c : g * a + c;
  }
}

template <class T>
const NormRows<T> kPortable = {sum_portable<T>, centered_sq_portable<T>, grad_sums_portable<T>, affine_portable<T>,
                               grad_affine_portable<T>};

}  // namespace

template <class T>
const NormRows<T>& norm_rows_portable() {
  return kPortable<T>;
}

template <>
const NormRows<float>& norm_rows<float>() {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx2) return norm_rows_avx2_f32();
#endif
  return kPortable<float>;
}
template <>
const NormRows<double>& norm_rows<double>() {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx2) return norm_rows_avx2_f64();
#endif
  return kPortable<double>;
}

template const NormRows<float>& norm_rows_portable<float>();
template const NormRows<double>& norm_rows_portable<double>();

}  // namespace detail

namespace {

// Calls f(i) for i in [0, n), items independent (each owns its outputs), through the one thread
// team: whole items per task, so every reduction stays on one thread.
template <class F>
void for_each_item(int64_t n, double work_per_item, F&& f) {
  parallel_tasks(n, team_size(work_per_item * static_cast<double>(n), 32768.0, n), f);
}

}  // namespace

// ---------------------------------------------------------------------------- BatchNorm
template <class T>
void batch_norm_forward(int64_t N, int64_t C, int64_t S, const T* x, const T* weight, const T* bias,
                        bool training, T* running_mean, T* running_var, double momentum, double eps,
                        bool relu, T* y, T* save_mean, T* save_invstd) {
  const auto& k = detail::norm_rows<T>();
  const int64_t M = N * S;
  for_each_item(C, 3.0 * static_cast<double>(M), [&](int64_t c) {
    double mean, var;
    if (training) {
      double s = 0;
      for (int64_t n = 0; n < N; ++n) s += k.sum(x + (n * C + c) * S, S);
      mean = M > 0 ? s / static_cast<double>(M) : 0.0;
      double q = 0;
      for (int64_t n = 0; n < N; ++n) q += k.centered_sq(x + (n * C + c) * S, S, mean);
      var = M > 0 ? q / static_cast<double>(M) : 0.0;
      if (running_mean) {
        const double unbiased = M > 1 ? q / static_cast<double>(M - 1) : var;
        running_mean[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(running_mean[c]) + momentum * mean);
        running_var[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(running_var[c]) + momentum * unbiased);
      }
    } else {
      mean = static_cast<double>(running_mean[c]);
      var = static_cast<double>(running_var[c]);
    }
    const T invstd = static_cast<T>(1.0 / std::sqrt(var + eps));
    const T m = static_cast<T>(mean);
    save_mean[c] = m;
    save_invstd[c] = invstd;
    const T a = weight ? weight[c] * invstd : invstd;
    const T b = (bias ? bias[c] : T(0)) - m * a;
    for (int64_t n = 0; n < N; ++n) k.affine(x + (n * C + c) * S, y + (n * C + c) * S, S, a, b, relu);
  });
}

template <class T>
void batch_norm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* dy, const T* y,
                         const T* weight, const T* save_mean, const T* save_invstd, bool training, T* dx,
                         T* dweight, T* dbias) {
  const auto& k = detail::norm_rows<T>();
  const int64_t M = N * S;
  for_each_item(C, 2.0 * static_cast<double>(M), [&](int64_t c) {
    const double mean = static_cast<double>(save_mean[c]);
    const double invstd = static_cast<double>(save_invstd[c]);
    double sum_dy = 0, sum_dy_xc = 0;
    for (int64_t n = 0; n < N; ++n) {
      double s, t;
      k.grad_sums(x + (n * C + c) * S, dy + (n * C + c) * S, y ? y + (n * C + c) * S : nullptr, S, mean, &s, &t);
      sum_dy += s;
      sum_dy_xc += t;
    }
    if (dweight) dweight[c] = static_cast<T>(sum_dy_xc * invstd);
    if (dbias) dbias[c] = static_cast<T>(sum_dy);
    if (!dx) return;
    const double w = weight ? static_cast<double>(weight[c]) : 1.0;
    const T a = static_cast<T>(w * invstd);
    T b = T(0), cc = T(0);
    if (training && M > 0) {
      // NOTE: the batch mean and variance depend on x: their terms, folded into b and c.
      b = static_cast<T>(-w * invstd * invstd * invstd * sum_dy_xc / static_cast<double>(M));
      cc = static_cast<T>(-w * invstd * sum_dy / static_cast<double>(M));
    }
    const T m = static_cast<T>(mean);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c) * S;
      k.grad_affine(training ? x + o : nullptr, dy + o, y ? y + o : nullptr, dx + o, S, m, a, b, cc);
    }
  });
}

// ---------------------------------------------------------------------------- LayerNorm / GroupNorm
namespace {

// Mean and 1 / sqrt(var + eps) of one row, two passes in the fixed order.
template <class T>
void row_stats(const detail::NormRows<T>& k, const T* x, int64_t n, double eps, double* mean, double* rstd) {
  const double m = n > 0 ? k.sum(x, n) / static_cast<double>(n) : 0.0;
  const double var = n > 0 ? k.centered_sq(x, n, m) / static_cast<double>(n) : 0.0;
  *mean = m;
  *rstd = 1.0 / std::sqrt(var + eps);
}

}  // namespace

template <class T>
void layer_norm_forward(int64_t R, int64_t K, const T* x, const T* weight, const T* bias, double eps, T* y,
                        T* mean, T* rstd) {
  const auto& k = detail::norm_rows<T>();
  for_each_item(R, 3.0 * static_cast<double>(K), [&](int64_t r) {
    const T* xr = x + r * K;
    T* yr = y + r * K;
    double m, s;
    row_stats(k, xr, K, eps, &m, &s);
    mean[r] = static_cast<T>(m);
    rstd[r] = static_cast<T>(s);
    const T st = static_cast<T>(s);
    k.affine(xr, yr, K, st, static_cast<T>(-m * s), false);   // xhat
    if (weight && bias)
      for (int64_t i = 0; i < K; ++i) yr[i] = yr[i] * weight[i] + bias[i];
    else if (weight)
      for (int64_t i = 0; i < K; ++i) yr[i] = yr[i] * weight[i];
    else if (bias)
      for (int64_t i = 0; i < K; ++i) yr[i] = yr[i] + bias[i];
  });
}

template <class T>
void layer_norm_backward(int64_t R, int64_t K, const T* x, const T* dy, const T* weight, const T* mean,
                         const T* rstd, T* dx, T* dweight, T* dbias) {
  const auto& k = detail::norm_rows<T>();
  if (dx) {
    for_each_item(R, 3.0 * static_cast<double>(K), [&](int64_t r) {
      const T* xr = x + r * K;
      const T* dyr = dy + r * K;
      T* dxr = dx + r * K;
      const T* g = dyr;
      if (weight) {   // g = dy * weight, staged in dx (the dx pass reads and overwrites it)
        for (int64_t i = 0; i < K; ++i) dxr[i] = dyr[i] * weight[i];
        g = dxr;
      }
      const double m = static_cast<double>(mean[r]), s = static_cast<double>(rstd[r]);
      double sum_g, sum_g_xc;
      k.grad_sums(xr, g, nullptr, K, m, &sum_g, &sum_g_xc);
      // dx = rstd (g - mean(g) - xhat mean(g xhat)), xhat = (x - mean) rstd
      const T a = static_cast<T>(s);
      const T b = static_cast<T>(K > 0 ? -s * s * s * sum_g_xc / static_cast<double>(K) : 0.0);
      const T c = static_cast<T>(K > 0 ? -s * sum_g / static_cast<double>(K) : 0.0);
      k.grad_affine(xr, g, nullptr, dxr, K, static_cast<T>(m), a, b, c);
    });
  }
  if (dweight || dbias) {
    // Column sums over all rows: each thread owns a block of columns, rows in order.
    constexpr int64_t kCols = 64;
    const int64_t blocks = (K + kCols - 1) / kCols;
    for_each_item(blocks, 2.0 * static_cast<double>(R * kCols), [&](int64_t blk) {
      const int64_t i0 = blk * kCols, i1 = std::min(K, i0 + kCols);
      double sw[kCols] = {}, sb[kCols] = {};
      for (int64_t r = 0; r < R; ++r) {
        const double m = static_cast<double>(mean[r]), s = static_cast<double>(rstd[r]);
        const T* xr = x + r * K;
        const T* dyr = dy + r * K;
        for (int64_t i = i0; i < i1; ++i) {
          const double g = static_cast<double>(dyr[i]);
          sw[i - i0] += g * ((static_cast<double>(xr[i]) - m) * s);
          sb[i - i0] += g;
        }
      }
      for (int64_t i = i0; i < i1; ++i) {
        if (dweight) dweight[i] = static_cast<T>(sw[i - i0]);
        if (dbias) dbias[i] = static_cast<T>(sb[i - i0]);
      }
    });
  }
}

template <class T>
void group_norm_forward(int64_t N, int64_t C, int64_t S, int64_t G, const T* x, const T* weight,
                        const T* bias, double eps, T* y, T* mean, T* rstd) {
  const auto& k = detail::norm_rows<T>();
  const int64_t CG = C / G, K = CG * S;
  for_each_item(N * G, 3.0 * static_cast<double>(K), [&](int64_t r) {
    const T* xr = x + r * K;
    T* yr = y + r * K;
    double m, s;
    row_stats(k, xr, K, eps, &m, &s);
    mean[r] = static_cast<T>(m);
    rstd[r] = static_cast<T>(s);
    const T st = static_cast<T>(s), mt = static_cast<T>(m);
    const int64_t c0 = (r % G) * CG;
    for (int64_t j = 0; j < CG; ++j) {
      const T a = weight ? weight[c0 + j] * st : st;
      const T b = (bias ? bias[c0 + j] : T(0)) - mt * a;
      k.affine(xr + j * S, yr + j * S, S, a, b, false);
    }
  });
}

template <class T>
void group_norm_backward(int64_t N, int64_t C, int64_t S, int64_t G, const T* x, const T* dy,
                         const T* weight, const T* mean, const T* rstd, T* dx, T* dweight, T* dbias) {
  const auto& k = detail::norm_rows<T>();
  const int64_t CG = C / G, K = CG * S;
  if (dx) {
    for_each_item(N * G, 3.0 * static_cast<double>(K), [&](int64_t r) {
      const T* xr = x + r * K;
      const T* dyr = dy + r * K;
      T* dxr = dx + r * K;
      const T* g = dyr;
      const int64_t c0 = (r % G) * CG;
      if (weight) {   // g = dy * weight[c], staged in dx
        for (int64_t j = 0; j < CG; ++j) {
          const T w = weight[c0 + j];
          for (int64_t i = 0; i < S; ++i) dxr[j * S + i] = dyr[j * S + i] * w;
        }
        g = dxr;
      }
      const double m = static_cast<double>(mean[r]), s = static_cast<double>(rstd[r]);
      double sum_g, sum_g_xc;
      k.grad_sums(xr, g, nullptr, K, m, &sum_g, &sum_g_xc);
      const T a = static_cast<T>(s);
      const T b = static_cast<T>(K > 0 ? -s * s * s * sum_g_xc / static_cast<double>(K) : 0.0);
      const T c = static_cast<T>(K > 0 ? -s * sum_g / static_cast<double>(K) : 0.0);
      k.grad_affine(xr, g, nullptr, dxr, K, static_cast<T>(m), a, b, c);
    });
  }
  if (dweight || dbias) {
    for_each_item(C, 2.0 * static_cast<double>(N * S), [&](int64_t c) {
      const int64_t g = c / CG;
      double sw = 0, sb = 0;
      for (int64_t n = 0; n < N; ++n) {
        const double m = static_cast<double>(mean[n * G + g]), s = static_cast<double>(rstd[n * G + g]);
        double sd, sdx;
        k.grad_sums(x + (n * C + c) * S, dy + (n * C + c) * S, nullptr, S, m, &sd, &sdx);
        sw += sdx * s;
        sb += sd;
      }
      if (dweight) dweight[c] = static_cast<T>(sw);
      if (dbias) dbias[c] = static_cast<T>(sb);
    });
  }
}

// ---------------------------------------------------------------------------- Dropout
template <class T>
void dropout_apply(int64_t R, int64_t S, const T* x, T* y, const uint8_t* keep, double p) {
  // PyTorch scales the mask by 1 / (1 - p) in T, then multiplies.
  const T scale = p < 1.0 ? static_cast<T>(1.0) / static_cast<T>(1.0 - p) : T(0);
  const int64_t block = std::max<int64_t>(1, 16384 / std::max<int64_t>(S, 1));
  const int64_t blocks = (R + block - 1) / block;
  for_each_item(blocks, static_cast<double>(block * S), [&](int64_t b) {
    const int64_t r1 = std::min(R, (b + 1) * block);
    for (int64_t r = b * block; r < r1; ++r) {
      const T m = keep[r] ? scale : T(0);
      const T* xr = x + r * S;
      T* yr = y + r * S;
      for (int64_t i = 0; i < S; ++i) yr[i] = xr[i] * m;
    }
  });
}

#define LAMINA_NORM_INSTANTIATE(T)                                                                          \
  template void batch_norm_forward<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, bool, T*, T*, \
                                      double, double, bool, T*, T*, T*);                                    \
  template void batch_norm_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, const T*,    \
                                       const T*, const T*, bool, T*, T*, T*);                               \
  template void layer_norm_forward<T>(int64_t, int64_t, const T*, const T*, const T*, double, T*, T*, T*);  \
  template void layer_norm_backward<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, const T*,  \
                                       T*, T*, T*);                                                         \
  template void group_norm_forward<T>(int64_t, int64_t, int64_t, int64_t, const T*, const T*, const T*,     \
                                      double, T*, T*, T*);                                                  \
  template void group_norm_backward<T>(int64_t, int64_t, int64_t, int64_t, const T*, const T*, const T*,    \
                                       const T*, const T*, T*, T*, T*);                                     \
  template void dropout_apply<T>(int64_t, int64_t, const T*, T*, const uint8_t*, double);
LAMINA_NORM_INSTANTIATE(float)
LAMINA_NORM_INSTANTIATE(double)
#undef LAMINA_NORM_INSTANTIATE

}  // namespace lamina
