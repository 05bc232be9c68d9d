// Optimizer kernels vs a straightforward scalar transcription of PyTorch's update rules.
#include <cmath>
#include <random>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "optim.h"

using namespace lamina;

static void ref_sgd(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& buf, double lr,
                    double mom, double damp, double wd, bool nesterov, bool first) {
  for (size_t i = 0; i < p.size(); ++i) {
    double d = g[i] + wd * p[i];
    if (mom != 0) {
      buf[i] = first ? d : mom * buf[i] + (1 - damp) * d;
      d = nesterov ? d + mom * buf[i] : buf[i];
    }
    p[i] -= lr * d;
  }
}

static void ref_adam(std::vector<double>& p, const std::vector<double>& g0, std::vector<double>& m,
                     std::vector<double>& v, std::vector<double>& vmax, int step, double lr, double b1, double b2,
                     double eps, double wd, bool decoupled, bool ams) {
  for (size_t i = 0; i < p.size(); ++i) {
    double g = g0[i];
    if (decoupled) p[i] *= 1 - lr * wd; else g += wd * p[i];
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    double vh = v[i];
    if (ams) { vmax[i] = std::max(vmax[i], v[i]); vh = vmax[i]; }
    const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
    p[i] -= lr / bc1 * m[i] / (std::sqrt(vh) / std::sqrt(bc2) + eps);
  }
}

int main() {
  std::mt19937 rng(3);
  std::normal_distribution<double> d(0, 1);
  for (int64_t n : {0, 1, 7, 9, 33, 100000}) {
    struct S { double mom, damp, wd; bool nest; };
    for (S s : {S{0, 0, 0, false}, S{0.9, 0, 0, false}, S{0.9, 0, 1e-2, true}, S{0.8, 0.3, 1e-3, false}}) {
      std::vector<double> p(n), g(n), buf(n), rp, rbuf(n);
      for (auto& v : p) v = d(rng);
      rp = p;
      for (int step = 0; step < 5; ++step) {
        for (auto& v : g) v = d(rng);
        sgd_step<double>(n, p.data(), g.data(), s.mom ? buf.data() : nullptr, 0.1, s.mom, s.damp, s.wd, s.nest, step == 0);
        ref_sgd(rp, g, rbuf, 0.1, s.mom, s.damp, s.wd, s.nest, step == 0);
      }
      for (int64_t i = 0; i < n; ++i) CHECK_NEAR(p[i], rp[i], 1e-12);
    }
    struct A { double wd; bool dec, ams; };
    for (A a : {A{0, false, false}, A{0.1, false, false}, A{0.1, true, false}, A{0.01, true, true}, A{0.0, false, true}}) {
      std::vector<double> p(n), g(n), m(n), v(n), vm(n), rp, rm(n), rv(n), rvm(n);
      std::vector<float> pf(n), gf(n), mf(n), vf(n), vmf(n);
      for (int64_t i = 0; i < n; ++i) { p[i] = d(rng); pf[i] = static_cast<float>(p[i]); }
      rp = p;
      for (int step = 1; step <= 6; ++step) {
        for (int64_t i = 0; i < n; ++i) { g[i] = static_cast<float>(d(rng)); gf[i] = static_cast<float>(g[i]); }
        adam_step<double>(n, p.data(), g.data(), m.data(), v.data(), a.ams ? vm.data() : nullptr, step, 1e-2, 0.9,
                          0.999, 1e-8, a.wd, a.dec, a.ams);
        adam_step<float>(n, pf.data(), gf.data(), mf.data(), vf.data(), a.ams ? vmf.data() : nullptr, step, 1e-2,
                         0.9, 0.999, 1e-8, a.wd, a.dec, a.ams);
        ref_adam(rp, g, rm, rv, rvm, step, 1e-2, 0.9, 0.999, 1e-8, a.wd, a.dec, a.ams);
      }
      for (int64_t i = 0; i < n; ++i) {
        CHECK_NEAR(p[i], rp[i], 1e-12);
        CHECK_NEAR(pf[i], rp[i], 2e-5);
      }
    }
  }
  // Thread count does not change the result (each element is independent).
  std::vector<float> p1(70000, 1.f), p2(70000, 1.f), g(70000), m1(70000), v1(70000), m2(70000), v2(70000);
  for (auto& v : g) v = static_cast<float>(d(rng));
  adam_step<float>(70000, p1.data(), g.data(), m1.data(), v1.data(), nullptr, 1, 1e-3, 0.9, 0.999, 1e-8, 0, false, false);
  set_num_threads(1);
  adam_step<float>(70000, p2.data(), g.data(), m2.data(), v2.data(), nullptr, 1, 1e-3, 0.9, 0.999, 1e-8, 0, false, false);
  set_num_threads(0);
  CHECK(lamina_test::all_finite(p1));
  for (int i = 0; i < 70000; ++i) CHECK(p1[i] == p2[i]);
  TEST_MAIN_END();
}
