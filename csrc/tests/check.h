// A small assertion helper for the C++ unit tests: no framework download. Each failed CHECK
// prints file:line and the expression, and the test binary exits non-zero at the end.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

namespace lamina_test {
inline int& failures() { static int n = 0; return n; }
inline int& checks() { static int n = 0; return n; }

// Running maximum of an error that keeps a NaN: std::max(m, NaN) returns m, so an all-NaN output
// would pass a `max <= tol` check. Once a NaN is seen it stays, and every `<= tol` then fails.
inline double max_err(double m, double e) { return (std::isnan(m) || std::isnan(e)) ? NAN : (e > m ? e : m); }

// True when every value is finite; the per-family "finite in, finite out" checks use it.
template <class V>
inline bool all_finite(const V& v) {
  for (const auto& x : v)
    if (!std::isfinite(static_cast<double>(x))) return false;
  return true;
}

// One float ulp at the float64 value r: the spacing of floats in r's binade (2^-149 below the
// normals), the unit the activation tests state their error bounds in.
inline double float_ulp(double r) {
  const double a = std::fabs(r);
  if (a < (double)std::numeric_limits<float>::min()) return std::ldexp(1.0, -149);
  int e;
  std::frexp(a, &e);
  return std::ldexp(1.0, e - 24);
}

// n values uniform in [-1, 1) from g (the kernels' tests draw their operands with it).
template <class T>
std::vector<T> randv(size_t n, std::mt19937& g) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(u(g));
  return v;
}

// max |a - b| / max(1, max |b|), NaN-keeping (max_err).
template <class T>
double max_rel_err(const std::vector<T>& a, const std::vector<T>& b) {
  double m = 0, scale = 1;
  for (size_t i = 0; i < b.size(); ++i) scale = scale > std::fabs(double(b[i])) ? scale : std::fabs(double(b[i]));
  for (size_t i = 0; i < a.size(); ++i) m = max_err(m, std::fabs(double(a[i]) - double(b[i])));
  return m / scale;
}
}  // namespace lamina_test

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    ++lamina_test::checks();                                                            \
    if (!(cond)) {                                                                      \
      ++lamina_test::failures();                                                        \
      if (lamina_test::failures() < 50)                                                 \
        std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
    }                                                                                   \
  } while (0)

#define CHECK_MSG(cond, ...)                                                            \
  do {                                                                                  \
    ++lamina_test::checks();                                                            \
    if (!(cond)) {                                                                      \
      ++lamina_test::failures();                                                        \
      if (lamina_test::failures() < 50) {                                               \
        std::fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
        std::fprintf(stderr, __VA_ARGS__);                                              \
        std::fprintf(stderr, "\n");                                                     \
      }                                                                                 \
    }                                                                                   \
  } while (0)

#define CHECK_NEAR(a, b, tol) CHECK_MSG(std::fabs((double)(a) - (double)(b)) <= (tol), "%g vs %g (tol %g)", (double)(a), (double)(b), (double)(tol))

#define TEST_MAIN_END()                                                                 \
  do {                                                                                  \
    std::printf("%d checks, %d failures\n", lamina_test::checks(), lamina_test::failures()); \
    return lamina_test::failures() == 0 ? 0 : 1;                                        \
  } while (0)
