// Activation family: every kind vs a long-double scalar reference, each ISA path (portable,
// AVX2, AVX-512 where the CPU has them) against another, float tanh / sigmoid in ulp, edge
// sizes around the 8/4-lane vector width, NaN/Inf, the documented kinks, bias ops.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "activation.h"
#include "check.h"
#include "cpu.h"

using namespace lamina;
using LD = long double;

static const Activation kAll[] = {Activation::identity, Activation::relu, Activation::leaky_relu, Activation::softplus,
                                  Activation::sigmoid, Activation::tanh, Activation::step};

static LD ref_f(Activation k, LD x, LD s) {
  switch (k) {
    case Activation::identity: return x;
    case Activation::relu: return x > 0 ? x : 0;
    case Activation::leaky_relu: return x > 0 ? x : s * x;
    case Activation::softplus: return x > 20 ? x : std::log1p(std::exp(x));
    case Activation::sigmoid: return 1 / (1 + std::exp(-x));
    case Activation::tanh: return std::tanh(x);
    case Activation::step: return x > 0 ? 1 : 0;
  }
  return 0;
}
static LD ref_df(Activation k, LD x, LD s) {
  switch (k) {
    case Activation::identity: return 1;
    case Activation::relu: return x > 0 ? 1 : 0;
    case Activation::leaky_relu: return x > 0 ? 1 : s;
    case Activation::softplus: return x > 20 ? 1 : 1 / (1 + std::exp(-x));
    case Activation::sigmoid: { LD y = 1 / (1 + std::exp(-x)); return y * (1 - y); }
    case Activation::tanh: { LD y = std::tanh(x); return 1 - y * y; }
    case Activation::step: return 0;
  }
  return 0;
}

template <class T>
void check_kind(Activation k, int64_t n, double rtol, std::mt19937& rng) {
  std::normal_distribution<double> dist(0.0, 4.0);
  std::vector<T> x(n), y(n), yp(n), dy(n), dx(n), dxp(n);
  for (int64_t i = 0; i < n; ++i) { x[i] = static_cast<T>(dist(rng)); dy[i] = static_cast<T>(dist(rng)); }
  const T s = T(0.05);
  act_forward<T>(k, n, x.data(), y.data(), s);
  const std::vector<T>& v = act_backward_reads_y(k) ? y : x;
  act_backward<T>(k, n, v.data(), dy.data(), dx.data(), s);
  const double tiny = std::numeric_limits<T>::min();
  for (int64_t i = 0; i < n; ++i) {
    const LD r = ref_f(k, x[i], s);
    CHECK_MSG(std::fabs((double)(y[i] - r)) <= rtol * std::fabs((double)r) + tiny, "%s n=%lld x=%g y=%g ref=%g",
              activation_name(k), (long long)n, (double)x[i], (double)y[i], (double)r);
    const LD g = dy[i] * ref_df(k, x[i], s);
    // sigmoid/tanh backward use the rounded y: allow a few ulp of y in the derivative
    const double gtol = rtol * 8 * std::fabs((double)dy[i]) + tiny;
    CHECK_MSG(std::fabs((double)(dx[i] - g)) <= gtol, "%s' n=%lld x=%g dx=%g ref=%g", activation_name(k),
              (long long)n, (double)x[i], (double)dx[i], (double)g);
  }
  // The other ISA path must agree to a few ulp (bit-equal for the select-only kinds).
  const Isa isa = active_isa();
  if (cpu_supports_avx2_fma()) {
    set_isa(isa == Isa::avx2 ? Isa::portable : Isa::avx2);
    act_forward<T>(k, n, x.data(), yp.data(), s);
    act_backward<T>(k, n, v.data(), dy.data(), dxp.data(), s);
    set_isa(isa);
    for (int64_t i = 0; i < n; ++i) {
      CHECK_MSG(std::fabs((double)(y[i] - yp[i])) <= 4 * rtol * std::fabs((double)y[i]) + tiny, "%s isa x=%g %g vs %g",
                activation_name(k), (double)x[i], (double)y[i], (double)yp[i]);
      CHECK_MSG(std::fabs((double)(dx[i] - dxp[i])) <= 4 * rtol * std::fabs((double)dy[i]) + tiny, "%s' isa x=%g",
                activation_name(k), (double)x[i]);
    }
  }
  // In place (y written over x) gives the same values.
  std::vector<T> xi = x;
  act_forward<T>(k, n, xi.data(), xi.data(), s);
  for (int64_t i = 0; i < n; ++i) CHECK(xi[i] == y[i] || (xi[i] != xi[i] && y[i] != y[i]));
}

template <class T>
void check_special(double rtol) {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T xs[] = {T(0), T(-0.0), inf, -inf, nan, T(1e4), T(-1e4), T(20), T(20.5), T(-100), T(1e-7), T(-1e-7)};
  const int64_t n = sizeof(xs) / sizeof(xs[0]);
  T y[n], dx[n], dy[n];
  for (int64_t i = 0; i < n; ++i) dy[i] = T(1);
  for (Activation k : kAll) {
    act_forward<T>(k, n, xs, y, T(0.01));
    CHECK_MSG(std::isnan(y[4]), "%s(NaN) must be NaN", activation_name(k));
    for (int64_t i = 0; i < n; ++i) {
      if (i == 4) continue;
      const LD r = ref_f(k, xs[i], 0.01L);
      if (std::isinf((double)r)) CHECK_MSG(y[i] == (T)r, "%s(%g) = %g", activation_name(k), (double)xs[i], (double)y[i]);
      else CHECK_MSG(std::fabs((double)(y[i] - r)) <= rtol * std::fabs((double)r) + (double)std::numeric_limits<T>::min(), "%s(%g) = %g ref %g",
                     activation_name(k), (double)xs[i], (double)y[i], (double)r);
    }
  }
  // Documented kinks: step(0) = 0, step' = 0, relu'(0) = 0, leaky_relu'(0) = slope.
  T z[1] = {T(0)}, o[1], g1[1] = {T(1)}, g[1];
  act_forward<T>(Activation::step, 1, z, o);
  CHECK(o[0] == T(0));
  act_backward<T>(Activation::step, 1, z, g1, g);
  CHECK(g[0] == T(0));
  act_backward<T>(Activation::relu, 1, z, g1, g);
  CHECK(g[0] == T(0));
  act_backward<T>(Activation::leaky_relu, 1, z, g1, g, T(0.25));
  CHECK(g[0] == T(0.25));
  act_backward<T>(Activation::step, n, xs, dy, dx);
  for (int64_t i = 0; i < n; ++i) CHECK(dx[i] == T(0));
  // sigmoid saturates cleanly at both ends, tanh too, softplus(-inf) = 0
  act_forward<T>(Activation::sigmoid, n, xs, y);
  CHECK(y[2] == T(1) && y[3] == T(0) && y[0] == T(0.5));
  act_forward<T>(Activation::tanh, n, xs, y);
  CHECK(y[2] == T(1) && y[3] == T(-1) && y[0] == T(0) && std::signbit(y[1]));
  act_forward<T>(Activation::softplus, n, xs, y);
  CHECK(y[3] == T(0) && y[2] == inf);
}

// Float sigmoid/tanh/softplus on a dense sweep of bit patterns (every 997th float in
// [0, 12], both signs, plus denormals): the rational tanh and the exp-based sigmoid hold
// 4e-7 relative everywhere, stay in their ranges, and tanh(x) = x for tiny x (AVX2).
void check_float_sweep() {
  std::vector<float> xs;
  for (uint32_t b = 0; b <= 0x41400000u; b += 997)
    for (uint32_t sign : {0u, 0x80000000u}) {
      uint32_t bits = b | sign;
      float f;
      std::memcpy(&f, &bits, 4);
      xs.push_back(f);
    }
  std::vector<float> y(xs.size());
  const double floor = std::numeric_limits<float>::min();
  for (Activation k : {Activation::sigmoid, Activation::tanh, Activation::softplus}) {
    act_forward<float>(k, static_cast<int64_t>(xs.size()), xs.data(), y.data());
    CHECK(lamina_test::all_finite(y));
    double worst = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const LD r = ref_f(k, xs[i], 0);
      const double err = std::fabs((double)(y[i] - r));
      CHECK_MSG(err <= 4e-7 * std::fabs((double)r) + floor, "%s sweep x=%.9g y=%.9g ref=%.9g", activation_name(k),
                (double)xs[i], (double)y[i], (double)r);
      if (std::fabs((double)r) > floor) worst = lamina_test::max_err(worst, err / std::fabs((double)r));
      if (k == Activation::tanh) CHECK(std::fabs(y[i]) <= 1.0f);
      if (k == Activation::sigmoid) CHECK(y[i] >= 0.0f && y[i] <= 1.0f);
      if (k == Activation::tanh && std::fabs(xs[i]) < 1e-4f) CHECK_MSG(y[i] == xs[i], "tanh(%g) = %g", (double)xs[i], (double)y[i]);
    }
    std::printf("%s float sweep (%s): max relative error %.3g\n", activation_name(k),
                isa_name(active_isa()), worst);
  }
}

// Float tanh and sigmoid in ulp of the float64 value, over bit patterns spread across every
// binade (every 4093rd of all 2^32, both signs: normals, denormals, +-inf, NaNs) plus the
// edges of the kernels' ranges. The AVX-512 and portable paths hold 2 ulp; AVX2's rational
// tanh 6 and its sigmoid 3 (activation.h). NaN in gives NaN out, everything else is finite
// and in range, tanh(x) = x for |x| < 2^-12, denormal x gives sigmoid 0.5.
void check_ulp_sweep() {
  std::vector<float> xs;
  for (uint64_t b = 0; b < (uint64_t(1) << 32); b += 4093) {
    const uint32_t bits = uint32_t(b);
    float f;
    std::memcpy(&f, &bits, 4);
    xs.push_back(f);
  }
  const float edges[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1.1754942e-38f, 2.44e-4f, 0.0625f, 0.078125f,
                         0.625f, 0.62499994f, 1.0f, 9.2f, 9.200001f, 20.0f, 87.0f, 87.5f, 88.8f,
                         103.9f, 104.0f, 104.1f, 1e30f, 3.4028235e38f,
                         std::numeric_limits<float>::infinity()};
  for (float e : edges) { xs.push_back(e); xs.push_back(-e); }
  const int64_t n = static_cast<int64_t>(xs.size());
  std::vector<float> y(xs.size());
  const Isa isa = active_isa();
  for (Activation k : {Activation::tanh, Activation::sigmoid}) {
    const double limit = isa == Isa::avx2 ? (k == Activation::tanh ? 6.0 : 3.0) : 2.0;
    act_forward<float>(k, n, xs.data(), y.data());
    double worst = 0;
    float worst_x = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double x = xs[i];
      if (std::isnan(x)) {
        CHECK_MSG(std::isnan(y[i]), "%s(NaN) = %g", activation_name(k), (double)y[i]);
        continue;
      }
      const double ref = k == Activation::tanh ? std::tanh(x) : 1.0 / (1.0 + std::exp(-x));
      const double ulps = std::fabs((double)y[i] - ref) / lamina_test::float_ulp(ref);
      CHECK_MSG(ulps <= limit, "%s %s(%.9g) = %.9g, float64 %.9g: %.2f ulp", isa_name(isa),
                activation_name(k), x, (double)y[i], ref, ulps);
      if (ulps > worst) { worst = ulps; worst_x = xs[i]; }
      if (k == Activation::tanh) CHECK(std::fabs(y[i]) <= 1.0f);
      if (k == Activation::sigmoid) CHECK(y[i] >= 0.0f && y[i] <= 1.0f);
      if (k == Activation::tanh && std::fabs(x) < 0x1p-12) CHECK(y[i] == xs[i]);
      if (k == Activation::sigmoid && std::fabs(x) < 1e-38) CHECK(y[i] == 0.5f);
    }
    std::printf("%s %s: %lld floats, max error %.3f ulp at x = %.9g\n", isa_name(isa),
                activation_name(k), (long long)n, worst, (double)worst_x);
  }
}

template <class T>
void check_bias(std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  for (int64_t N : {1, 3, 70}) for (int64_t C : {1, 7, 9, 300}) for (int64_t S : {1, 5, 64}) {
    std::vector<T> y(N * C * S), y0, b(C), db(C);
    for (auto& v : y) v = static_cast<T>(u(rng));
    for (auto& v : b) v = static_cast<T>(u(rng));
    y0 = y;
    bias_add_channels<T>(N, C, S, y.data(), b.data());
    for (int64_t i = 0; i < N * C * S; ++i) CHECK(y[i] == y0[i] + b[(i / S) % C]);
    bias_grad_channels<T>(N, C, S, y0.data(), db.data());
    for (int64_t c = 0; c < C; ++c) {
      LD s = 0;
      for (int64_t n = 0; n < N; ++n) for (int64_t k = 0; k < S; ++k) s += y0[(n * C + c) * S + k];
      CHECK_NEAR(db[c], s, 1e-5 * (N * S));
    }
    // rows: an (N*S) x C matrix
    const int64_t R = N * S;
    y = y0;
    bias_add_rows<T>(R, C, y.data(), b.data());
    for (int64_t i = 0; i < R * C; ++i) CHECK(y[i] == y0[i] + b[i % C]);
    bias_grad_rows<T>(R, C, y0.data(), db.data());
    for (int64_t j = 0; j < C; ++j) {
      LD s = 0;
      for (int64_t r = 0; r < R; ++r) s += y0[r * C + j];
      CHECK_NEAR(db[j], s, 1e-5 * R);
    }
  }
}

int main() {
  std::mt19937 rng(42);
  const int64_t sizes[] = {0, 1, 7, 8, 9, 31, 33, 1000, 200003};
  for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
    if (!set_isa(isa)) continue;
    for (Activation k : kAll)
      for (int64_t n : sizes) {
        check_kind<float>(k, n, 4e-7, rng);
        check_kind<double>(k, n, 1e-15, rng);
      }
    check_special<float>(4e-7);
    check_special<double>(1e-15);
    check_float_sweep();
    check_ulp_sweep();
    check_bias<float>(rng);  // each ISA: bias_grad_rows has its own AVX2 column sums
    check_bias<double>(rng);
  }
  // bias_grad_rows must overwrite (not accumulate into) db, and N = 0 gives zeros.
  std::vector<double> db(3, 7.0);
  bias_grad_rows<double>(0, 3, nullptr, db.data());
  CHECK(db[0] == 0 && db[2] == 0);
  TEST_MAIN_END();
}
