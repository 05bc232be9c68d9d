// A small assertion helper for the C++ unit tests: no framework download. Each failed CHECK
// prints file:line and the expression, and the test binary exits non-zero at the end.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace lamina_test {
inline int& failures() { static int n = 0; return n; }
inline int& checks() { static int n = 0; return n; }
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
