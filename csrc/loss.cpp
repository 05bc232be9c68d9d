// Loss family kernels (see loss.h). With the AVX2 path active, the row max, the per-row exp
// and scaling and the BCE terms go through the vector code in activation_avx2.cpp
// (detail::max_avx2, exp_shift_sum_avx2, scale_avx2, bce_with_logits_*_avx2), else std::exp.
#include "loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "activation.h"
#include "cpu.h"
#include "thread_team.h"

namespace lamina {
namespace {

constexpr int64_t kSumChunk = 8192;        // fixed reduction chunk: result independent of threads

// Runs f(row) for every row, rows split over threads when the matrix is big enough.
template <class F>
void for_rows(int64_t N, int64_t C, F&& f) {
  const int nt = team_size(static_cast<double>(N) * std::max<int64_t>(C, 1), kElemsPerThread);
  if (nt <= 1) {
    for (int64_t i = 0; i < N; ++i) f(i);
    return;
  }
  const int64_t rows_per_chunk = std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1));
  const int64_t nchunks = (N + rows_per_chunk - 1) / rows_per_chunk;
  parallel_tasks(nchunks, nt, [&](int64_t c) {
    for (int64_t i = c * rows_per_chunk, e = std::min(N, (c + 1) * rows_per_chunk); i < e; ++i) f(i);
  });
}

// sum over [0, n) of term(i0, i1) (a partial sum in double), chunked deterministically.
template <class F>
double chunked_sum(int64_t n, F&& partial) {
  if (n <= 0) return 0.0;
  const int64_t nchunks = (n + kSumChunk - 1) / kSumChunk;
  if (nchunks == 1) return partial(int64_t{0}, n);
  std::vector<double> parts(nchunks);
  parallel_tasks(nchunks, team_size(static_cast<double>(n), kElemsPerThread), [&](int64_t c) {
    parts[c] = partial(c * kSumChunk, std::min(n, (c + 1) * kSumChunk));
  });
  double s = 0.0;
  for (double p : parts) s += p;
  return s;
}

template <class T>
T row_max(int64_t C, const T* x, bool avx2) {
#if defined(LAMINA_X86)
  if (avx2) return detail::max_avx2(C, x);
#endif
  T m = -std::numeric_limits<T>::infinity();
  bool nan = false;
  for (int64_t j = 0; j < C; ++j) {
    m = x[j] > m ? x[j] : m;
    nan |= x[j] != x[j];  // a NaN never wins the compare; remember it (one pass, vectorizable)
  }
  if (nan)
    for (int64_t j = 0; j < C; ++j)
      if (x[j] != x[j]) return x[j];
  return m;
}

// y *= s
template <class T>
void scale_row(int64_t C, T* y, T s, bool avx2) {
#if defined(LAMINA_X86)
  if (avx2) return detail::scale_avx2(C, y, s, y);
#endif
  for (int64_t j = 0; j < C; ++j) y[j] *= s;
}

// y = exp(x - shift); returns the sum in double.
template <class T>
double exp_shift_sum(int64_t C, const T* x, T shift, T* y, bool avx2) {
#if defined(LAMINA_X86)
  if (avx2) return detail::exp_shift_sum_avx2(C, x, shift, y);
#endif
  double s = 0.0;
  for (int64_t j = 0; j < C; ++j) {
    y[j] = std::exp(x[j] - shift);
    s += y[j];
  }
  return s;
}

// sum_j a[j] b[j] and sum_j a[j] in double: four partial sums, so the adds are not one serial
// chain (4 cycles per element); the AVX2 versions widen 8 floats at a time.
template <class T>
double row_dot(int64_t C, const T* a, const T* b, bool avx2) {
#if defined(LAMINA_X86)
  if (avx2) return detail::dot_avx2(C, a, b);
#endif
  double s[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= C; j += 4)
    for (int k = 0; k < 4; ++k) s[k] += static_cast<double>(a[j + k]) * b[j + k];
  for (; j < C; ++j) s[0] += static_cast<double>(a[j]) * b[j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

template <class T>
double row_sum(int64_t C, const T* a, bool avx2) {
#if defined(LAMINA_X86)
  if (avx2) return detail::sum_avx2(C, a);
#endif
  double s[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= C; j += 4)
    for (int k = 0; k < 4; ++k) s[k] += a[j + k];
  for (; j < C; ++j) s[0] += a[j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

bool use_avx2() { return active_isa() >= Isa::avx2; }

template <class T>
int64_t first_bad_target(int64_t N, int64_t C, const int64_t* target, int64_t ignore_index) {
  for (int64_t i = 0; i < N; ++i)
    if (target[i] != ignore_index && (target[i] < 0 || target[i] >= C)) return i;
  return -1;
}

template <class T> T sigmoid(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

}  // namespace

template <class T>
void softmax_forward(int64_t N, int64_t C, const T* x, T* y) {
  const bool avx2 = use_avx2();
  for_rows(N, C, [&](int64_t i) {
    const T* xr = x + i * C;
    T* yr = y + i * C;
    const T m = row_max(C, xr, avx2);
    scale_row(C, yr, static_cast<T>(1.0 / exp_shift_sum(C, xr, m, yr, avx2)), avx2);
  });
}

template <class T>
void softmax_backward(int64_t N, int64_t C, const T* y, const T* dy, T* dx) {
  const bool avx2 = use_avx2();
  for_rows(N, C, [&](int64_t i) {
    const T* yr = y + i * C;
    const T* gr = dy + i * C;
    T* dr = dx + i * C;
    const T st = static_cast<T>(row_dot(C, gr, yr, avx2));
    for (int64_t j = 0; j < C; ++j) dr[j] = yr[j] * (gr[j] - st);
  });
}

template <class T>
void log_softmax_forward(int64_t N, int64_t C, const T* x, T* y) {
  const bool avx2 = use_avx2();
  for_rows(N, C, [&](int64_t i) {
    const T* xr = x + i * C;
    T* yr = y + i * C;
    const T m = row_max(C, xr, avx2);
    const double s = exp_shift_sum(C, xr, m, yr, avx2);  // y used as scratch for the exps
    const T lse = static_cast<T>(std::log(s));
    for (int64_t j = 0; j < C; ++j) yr[j] = (xr[j] - m) - lse;
  });
}

template <class T>
void log_softmax_backward(int64_t N, int64_t C, const T* y, const T* dy, T* dx) {
  const bool avx2 = use_avx2();
  for_rows(N, C, [&](int64_t i) {
    const T* yr = y + i * C;
    const T* gr = dy + i * C;
    T* dr = dx + i * C;
    const T st = static_cast<T>(row_sum(C, gr, avx2));
    if (avx2 && dr != gr && dr != yr) {
#if defined(LAMINA_X86)
      detail::exp_avx2(C, yr, dr);  // dx = exp(y) first, then dy - exp(y) * s
#endif
      for (int64_t j = 0; j < C; ++j) dr[j] = gr[j] - dr[j] * st;
    } else {
      for (int64_t j = 0; j < C; ++j) dr[j] = gr[j] - std::exp(yr[j]) * st;
    }
  });
}

template <class T>
int64_t cross_entropy_forward(int64_t N, int64_t C, const T* logits, const int64_t* target, T* probs,
                              int64_t ignore_index, T* losses, double* loss_sum, int64_t* count) {
  const int64_t bad = first_bad_target<T>(N, C, target, ignore_index);
  if (bad >= 0) return bad;
  const bool avx2 = use_avx2();
  std::vector<double> row_loss(N);
  for_rows(N, C, [&](int64_t i) {
    const T* xr = logits + i * C;
    T* pr = probs + i * C;
    const T m = row_max(C, xr, avx2);
    const int64_t t = target[i];
    // read x[t] before probs (which may alias logits) overwrite it
    const T xt = t == ignore_index ? T(0) : xr[t];
    const double s = exp_shift_sum(C, xr, m, pr, avx2);
    scale_row(C, pr, static_cast<T>(1.0 / s), avx2);
    // -log softmax(x)[t] = log(sum exp(x - m)) + m - x[t]
    row_loss[i] = t == ignore_index ? 0.0 : std::log(s) + static_cast<double>(m - xt);
    if (losses) losses[i] = static_cast<T>(row_loss[i]);
  });
  double sum = 0.0;
  int64_t cnt = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (target[i] == ignore_index) continue;
    sum += row_loss[i];
    ++cnt;
  }
  *loss_sum = sum;
  *count = cnt;
  return -1;
}

template <class T>
int64_t cross_entropy_backward(int64_t N, int64_t C, const T* probs, const int64_t* target, T scale,
                               int64_t ignore_index, T* dlogits) {
  const int64_t bad = first_bad_target<T>(N, C, target, ignore_index);
  if (bad >= 0) return bad;
  for_rows(N, C, [&](int64_t i) {
    const T* pr = probs + i * C;
    T* dr = dlogits + i * C;
    const int64_t t = target[i];
    if (t == ignore_index) {
      std::fill(dr, dr + C, T(0));
      return;
    }
    const T pt = pr[t];  // read before the loop: dlogits may alias probs
    for (int64_t j = 0; j < C; ++j) dr[j] = scale * pr[j];
    dr[t] = scale * (pt - T(1));
  });
  return -1;
}

template <class T>
double mse_forward(int64_t n, const T* x, const T* t) {
  return chunked_sum(n, [&](int64_t i0, int64_t i1) {
    double acc[4] = {0, 0, 0, 0};  // four chains: vectorizable, fewer dependent adds
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4)
      for (int k = 0; k < 4; ++k) {
        const double d = static_cast<double>(x[i + k]) - static_cast<double>(t[i + k]);
        acc[k] += d * d;
      }
    for (; i < i1; ++i) {
      const double d = static_cast<double>(x[i]) - static_cast<double>(t[i]);
      acc[0] += d * d;
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
  });
}

template <class T>
void mse_backward(int64_t n, const T* x, const T* t, T scale, T* dx) {
  parallel_ranges(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) dx[i] = scale * (x[i] - t[i]);
  });
}

template <class T>
double bce_with_logits_forward(int64_t n, const T* x, const T* t) {
  const bool avx2 = use_avx2();
  (void)avx2;  // unused without LAMINA_X86
  return chunked_sum(n, [&](int64_t i0, int64_t i1) {
#if defined(LAMINA_X86)
    if (avx2) return detail::bce_with_logits_sum_avx2(i0, i1, x, t);
#endif
    double acc = 0.0;
    for (int64_t i = i0; i < i1; ++i) {
      const T v = x[i];
      acc += static_cast<double>(std::max(v, T(0)) - v * t[i] + std::log1p(std::exp(-std::fabs(v))));
    }
    return acc;
  });
}

template <class T>
void bce_with_logits_backward(int64_t n, const T* x, const T* t, T scale, T* dx) {
  const bool avx2 = use_avx2();
  parallel_ranges(n, [&](int64_t i0, int64_t i1) {
#if defined(LAMINA_X86)
    if (avx2) return detail::bce_with_logits_grad_avx2(i0, i1, x, t, scale, dx);
#endif
    for (int64_t i = i0; i < i1; ++i) dx[i] = scale * (sigmoid(x[i]) - t[i]);
  });
  (void)avx2;
}

#define LAMINA_INSTANTIATE(T)                                                                          \
  template void softmax_forward<T>(int64_t, int64_t, const T*, T*);                                   \
  template void softmax_backward<T>(int64_t, int64_t, const T*, const T*, T*);                        \
  template void log_softmax_forward<T>(int64_t, int64_t, const T*, T*);                               \
  template void log_softmax_backward<T>(int64_t, int64_t, const T*, const T*, T*);                    \
  template int64_t cross_entropy_forward<T>(int64_t, int64_t, const T*, const int64_t*, T*, int64_t,  \
                                            T*, double*, int64_t*);                                   \
  template int64_t cross_entropy_backward<T>(int64_t, int64_t, const T*, const int64_t*, T, int64_t,  \
                                             T*);                                                     \
  template double mse_forward<T>(int64_t, const T*, const T*);                                        \
  template void mse_backward<T>(int64_t, const T*, const T*, T, T*);                                  \
  template double bce_with_logits_forward<T>(int64_t, const T*, const T*);                            \
  template void bce_with_logits_backward<T>(int64_t, const T*, const T*, T, T*);
LAMINA_INSTANTIATE(float)
LAMINA_INSTANTIATE(double)
#undef LAMINA_INSTANTIATE

}  // namespace lamina
