// Loss family vs long-double references, AVX2 vs portable, huge logits, ignore_index, bad targets.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "activation.h"
#include "loss.h"

using namespace lamina;
using LD = long double;

template <class T>
void check_softmax(int64_t N, int64_t C, double tol, std::mt19937& rng, double scale = 3.0) {
  std::normal_distribution<double> d(0, scale);
  std::vector<T> x(N * C), y(N * C), ly(N * C), dy(N * C), dx(N * C), ldx(N * C), probs(N * C), losses(N), dl(N * C);
  std::vector<int64_t> t(N);
  for (auto& v : x) v = static_cast<T>(d(rng));
  for (auto& v : dy) v = static_cast<T>(d(rng) / scale);
  for (int64_t i = 0; i < N; ++i) t[i] = i % 5 == 4 ? -100 : static_cast<int64_t>(rng() % C);
  softmax_forward<T>(N, C, x.data(), y.data());
  log_softmax_forward<T>(N, C, x.data(), ly.data());
  softmax_backward<T>(N, C, y.data(), dy.data(), dx.data());
  log_softmax_backward<T>(N, C, ly.data(), dy.data(), ldx.data());
  double sum = -1;
  int64_t count = -1;
  CHECK(cross_entropy_forward<T>(N, C, x.data(), t.data(), probs.data(), -100, losses.data(), &sum, &count) == -1);
  CHECK(cross_entropy_backward<T>(N, C, probs.data(), t.data(), T(0.5), -100, dl.data()) == -1);
  LD ref_sum = 0;
  int64_t ref_count = 0;
  for (int64_t i = 0; i < N; ++i) {
    const T* xr = &x[i * C];
    LD m = xr[0];
    for (int64_t j = 0; j < C; ++j) m = std::max<LD>(m, xr[j]);
    LD s = 0;
    for (int64_t j = 0; j < C; ++j) s += std::exp((LD)xr[j] - m);
    const LD lse = m + std::log(s);
    LD dot = 0, gs = 0;
    for (int64_t j = 0; j < C; ++j) { dot += dy[i * C + j] * (std::exp(xr[j] - lse)); gs += dy[i * C + j]; }
    for (int64_t j = 0; j < C; ++j) {
      const LD p = std::exp(xr[j] - lse);
      CHECK_NEAR(y[i * C + j], p, tol * p + tol * 1e-3);
      CHECK_NEAR(ly[i * C + j], xr[j] - lse, tol * (1 + std::fabs((double)(xr[j] - lse))));
      CHECK_NEAR(dx[i * C + j], p * (dy[i * C + j] - dot), 4 * tol);
      CHECK_NEAR(ldx[i * C + j], dy[i * C + j] - p * gs, 4 * tol * (1 + std::fabs((double)gs)));
      CHECK(probs[i * C + j] == y[i * C + j]);
      const LD g = t[i] == -100 ? 0 : 0.5L * (p - (j == t[i] ? 1 : 0));
      CHECK_NEAR(dl[i * C + j], g, tol);
    }
    if (t[i] != -100) {
      CHECK_NEAR(losses[i], lse - xr[t[i]], tol * (1 + std::fabs((double)(lse - xr[t[i]]))));
      ref_sum += lse - xr[t[i]];
      ++ref_count;
    } else {
      CHECK(losses[i] == T(0));
    }
  }
  CHECK(count == ref_count);
  CHECK(lamina_test::all_finite(probs) && lamina_test::all_finite(dl) && std::isfinite(sum));
  CHECK_NEAR(sum, ref_sum, tol * (1 + std::fabs((double)ref_sum)));
  // in place: probs written over the logits gives the same result
  std::vector<T> xi = x;
  double s2;
  int64_t c2;
  cross_entropy_forward<T>(N, C, xi.data(), t.data(), xi.data(), -100, nullptr, &s2, &c2);
  CHECK(s2 == sum && c2 == count);
  for (int64_t k = 0; k < N * C; ++k) CHECK(xi[k] == probs[k]);
  cross_entropy_backward<T>(N, C, xi.data(), t.data(), T(0.5), -100, xi.data());
  for (int64_t k = 0; k < N * C; ++k) CHECK(xi[k] == dl[k]);
}

template <class T>
void check_special() {
  // Huge logits: stable (shifted by the row max), exact one-hot-ish answers.
  const T x[6] = {T(1e4), T(0), T(-1e4), T(1e4), T(1e4), T(-1e4)};
  T y[6], ly[6], p[6];
  softmax_forward<T>(2, 3, x, y);
  CHECK(y[0] == T(1) && y[1] == T(0) && y[2] == T(0));
  CHECK_NEAR(y[3], 0.5, 1e-7);
  CHECK_NEAR(y[4], 0.5, 1e-7);
  log_softmax_forward<T>(2, 3, x, ly);
  CHECK(ly[0] == T(0) && ly[1] == T(-1e4));
  CHECK_NEAR(ly[3], -std::log(2.0), 1e-6);
  int64_t t[2] = {1, 0};
  double sum;
  int64_t cnt;
  CHECK(cross_entropy_forward<T>(2, 3, x, t, p, -100, nullptr, &sum, &cnt) == -1);
  CHECK_NEAR(sum, 1e4 + std::log(2.0), 1e-3);
  // Out-of-range target: the bad row is reported and nothing written.
  int64_t bad[2] = {0, 3};
  T untouched[6] = {7, 7, 7, 7, 7, 7};
  CHECK(cross_entropy_forward<T>(2, 3, x, bad, untouched, -100, nullptr, &sum, &cnt) == 1);
  CHECK(untouched[0] == T(7));
  int64_t neg[2] = {-1, 0};
  CHECK(cross_entropy_backward<T>(2, 3, y, neg, T(1), -100, untouched) == 0);
  // all rows ignored: count 0
  int64_t ign[2] = {-100, -100};
  CHECK(cross_entropy_forward<T>(2, 3, x, ign, p, -100, nullptr, &sum, &cnt) == -1);
  CHECK(cnt == 0 && sum == 0);
  // NaN in a row makes that row NaN, the other row stays finite
  const T xn[4] = {std::numeric_limits<T>::quiet_NaN(), T(1), T(1), T(2)};
  T yn[4];
  softmax_forward<T>(2, 2, xn, yn);
  CHECK(std::isnan(yn[0]) && std::isnan(yn[1]) && std::isfinite(yn[2]));
  // empty
  softmax_forward<T>(0, 3, x, y);
  CHECK(mse_forward<T>(0, x, x) == 0.0);
}

template <class T>
void check_pointwise(int64_t n, double tol, std::mt19937& rng) {
  std::normal_distribution<double> d(0, 5);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<T> x(n), t(n), dx(n), db(n);
  for (int64_t i = 0; i < n; ++i) { x[i] = static_cast<T>(d(rng)); t[i] = static_cast<T>(u(rng)); }
  LD mse = 0, bce = 0;
  for (int64_t i = 0; i < n; ++i) {
    mse += ((LD)x[i] - t[i]) * ((LD)x[i] - t[i]);
    bce += std::max<LD>(x[i], 0) - (LD)x[i] * t[i] + std::log1p(std::exp(-std::fabs((LD)x[i])));
  }
  CHECK_NEAR(mse_forward<T>(n, x.data(), t.data()), mse, 1e-12 * (1 + (double)mse) + tol * 1e-3 * std::sqrt(n + 1.0));
  CHECK_NEAR(bce_with_logits_forward<T>(n, x.data(), t.data()), bce, tol * (1 + (double)bce));
  mse_backward<T>(n, x.data(), t.data(), T(0.25), dx.data());
  bce_with_logits_backward<T>(n, x.data(), t.data(), T(0.5), db.data());
  for (int64_t i = 0; i < n; ++i) {
    CHECK_NEAR(dx[i], 0.25L * ((LD)x[i] - t[i]), tol * (1 + std::fabs((double)x[i])));
    CHECK_NEAR(db[i], 0.5L * (1 / (1 + std::exp(-(LD)x[i])) - t[i]), tol);
  }
  // the sum does not depend on the thread count
  const double a = mse_forward<T>(n, x.data(), t.data());
  set_num_threads(1);
  const double b = mse_forward<T>(n, x.data(), t.data());
  set_num_threads(0);
  CHECK(a == b);
}

// The row max (AVX2: four vector chains + a sticky NaN mask + a scalar tail) must see a NaN
// wherever it sits, and +inf makes its row NaN, -inf is an ordinary (zero-probability) logit.
template <class T>
void check_row_max_nan() {
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  for (int64_t C : {1, 2, 7, 8, 9, 31, 32, 33, 39, 40, 41, 100}) {
    std::vector<T> x(2 * C), y(2 * C);
    for (int64_t pos = 0; pos < C; ++pos) {
      for (int64_t j = 0; j < 2 * C; ++j) x[j] = static_cast<T>((j * 7) % 11) - T(5);
      x[pos] = nan;
      softmax_forward<T>(2, C, x.data(), y.data());
      bool all_nan = true;
      for (int64_t j = 0; j < C; ++j) all_nan = all_nan && std::isnan(y[j]);
      CHECK_MSG(all_nan, "C=%lld NaN at %lld: row not NaN", (long long)C, (long long)pos);
      LD s = 0;
      for (int64_t j = C; j < 2 * C; ++j) s += y[j];
      CHECK_NEAR(s, 1.0, 1e-5);
#if defined(LAMINA_X86)
      // the vector max itself returns the NaN (the softmax above would be NaN from exp(NaN) alone)
      if (active_isa() >= Isa::avx2) {
        CHECK_MSG(std::isnan(detail::max_avx2(C, x.data())), "max_avx2 C=%lld lost the NaN at %lld", (long long)C,
                  (long long)pos);
        const T m = detail::max_avx2(C, x.data() + C);
        T ref = -inf;
        for (int64_t j = C; j < 2 * C; ++j) ref = std::max(ref, x[j]);
        CHECK(m == ref);
      }
#endif
      x[pos] = inf;  // +inf: inf - inf = NaN in its row, as PyTorch
      softmax_forward<T>(2, C, x.data(), y.data());
      CHECK(std::isnan(y[pos]));
      if (C > 1) {
        x[pos] = -inf;  // -inf: probability exactly 0, the rest still sums to 1
        softmax_forward<T>(2, C, x.data(), y.data());
        CHECK(y[pos] == T(0));
        s = 0;
        for (int64_t j = 0; j < C; ++j) s += y[j];
        CHECK_NEAR(s, 1.0, 1e-5);
      }
    }
  }
}

// BCE with logits at the edges of the stable formula, each element on its own (both ISAs
// run this through main's loop): long-double reference, relative 2e-6 in float.
template <class T>
void check_bce_edges(double tol) {
  const T xs[] = {T(0), T(-0.0), T(1e-30), T(-1e-8), T(0.5), T(-3), T(5), T(17), T(-20), T(20.5), T(-88), T(100),
                  T(-100), T(1e4), T(-1e4)};
  const T ts[] = {T(0), T(0.3), T(1)};
  for (T xv : xs)
    for (T tv : ts) {
      const LD xl = xv;
      const LD ref = std::max<LD>(xl, 0) - xl * tv + std::log1p(std::exp(-std::fabs(xl)));
      const double got = bce_with_logits_forward<T>(1, &xv, &tv);
      CHECK_MSG(std::fabs(got - (double)ref) <= tol * (1 + std::fabs((double)ref)), "bce(%g, %g) = %g ref %g",
                (double)xv, (double)tv, got, (double)ref);
      T g;
      bce_with_logits_backward<T>(1, &xv, &tv, T(1), &g);
      const LD gref = 1 / (1 + std::exp(-xl)) - tv;
      CHECK_MSG(std::fabs((double)(g - gref)) <= tol * (1 + std::fabs((double)gref)), "bce'(%g, %g) = %g ref %g",
                (double)xv, (double)tv, (double)g, (double)gref);
    }
}

int main() {
  std::mt19937 rng(7);
  for (Isa isa : {Isa::portable, Isa::avx2}) {
    if (!set_isa(isa)) continue;
    for (int64_t N : {1, 3, 17, 300})
      for (int64_t C : {1, 2, 7, 8, 9, 10, 31, 33, 1000}) {
        check_softmax<float>(N, C, 3e-6, rng);
        check_softmax<double>(N, C, 1e-13, rng);
      }
    check_softmax<float>(64, 100, 3e-6, rng, 300.0);  // wide logits
    check_special<float>();
    check_special<double>();
    check_row_max_nan<float>();
    check_row_max_nan<double>();
    check_bce_edges<float>(2e-6);
    check_bce_edges<double>(1e-13);
    for (int64_t n : {0, 1, 7, 9, 33, 100000}) {
      check_pointwise<float>(n, 2e-6, rng);
      check_pointwise<double>(n, 1e-13, rng);
    }
  }
  TEST_MAIN_END();
}
