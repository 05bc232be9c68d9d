// SGD and Adam/AdamW: the AVX2 loops (optim_avx2.cpp) give bit-identical parameters and state to
// the portable ones, for every decay/momentum/nesterov/amsgrad combination, at sizes around the
// 8/4-lane width and across parallel_ranges' chunks.
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "optim.h"

using namespace lamina;

template <class T>
void check_same(int64_t n, double wd, bool decoupled, bool ams, std::mt19937& rng) {
  std::normal_distribution<double> d(0, 1);
  std::vector<T> p[2], m[2], v[2], vm[2], g(n);
  for (int k = 0; k < 2; ++k) { p[k].resize(n); m[k].assign(n, T(0)); v[k].assign(n, T(0)); vm[k].assign(n, T(0)); }
  for (int64_t i = 0; i < n; ++i) p[0][i] = p[1][i] = static_cast<T>(d(rng));
  for (int step = 1; step <= 4; ++step) {
    for (auto& x : g) x = static_cast<T>(d(rng) * (step == 3 ? 1e-20 : 1.0));  // tiny gradients too
    for (int k = 0; k < 2; ++k) {
      set_isa(k == 0 ? Isa::portable : Isa::avx2);
      adam_step<T>(n, p[k].data(), g.data(), m[k].data(), v[k].data(), ams ? vm[k].data() : nullptr, step, 1e-2,
                   0.9, 0.999, 1e-8, wd, decoupled, ams);
    }
  }
  set_isa(Isa::avx2);
  const size_t bytes = n * sizeof(T);
  CHECK_MSG(n == 0 || std::memcmp(p[0].data(), p[1].data(), bytes) == 0, "param differs n=%lld", (long long)n);
  CHECK(n == 0 || std::memcmp(m[0].data(), m[1].data(), bytes) == 0);
  CHECK(n == 0 || std::memcmp(v[0].data(), v[1].data(), bytes) == 0);
  CHECK(n == 0 || std::memcmp(vm[0].data(), vm[1].data(), bytes) == 0);
}

template <class T>
void check_same_sgd(int64_t n, double wd, double momentum, double dampening, bool nesterov, std::mt19937& rng) {
  std::normal_distribution<double> d(0, 1);
  std::vector<T> p[2], buf[2], g(n);
  for (int k = 0; k < 2; ++k) { p[k].resize(n); buf[k].assign(n, T(0)); }
  for (int64_t i = 0; i < n; ++i) p[0][i] = p[1][i] = static_cast<T>(d(rng));
  for (int step = 1; step <= 3; ++step) {
    for (auto& x : g) x = static_cast<T>(d(rng));
    for (int k = 0; k < 2; ++k) {
      set_isa(k == 0 ? Isa::portable : Isa::avx2);
      sgd_step<T>(n, p[k].data(), g.data(), buf[k].data(), 1e-2, momentum, dampening, wd, nesterov, step == 1);
    }
  }
  set_isa(Isa::avx2);
  const size_t bytes = n * sizeof(T);
  CHECK_MSG(n == 0 || std::memcmp(p[0].data(), p[1].data(), bytes) == 0, "sgd param differs n=%lld", (long long)n);
  CHECK_MSG(n == 0 || std::memcmp(buf[0].data(), buf[1].data(), bytes) == 0, "sgd buffer differs n=%lld",
            (long long)n);
}

int main() {
  if (!cpu_supports_avx2_fma()) {
    std::printf("no AVX2+FMA: nothing to compare\n");
    TEST_MAIN_END();
  }
  std::mt19937 rng(11);
  for (int64_t n : {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 1000, 70001})
    for (double wd : {0.0, 0.1})
      for (bool dec : {false, true})
        for (bool ams : {false, true}) {
          check_same<float>(n, wd, dec, ams, rng);
          check_same<double>(n, wd, dec, ams, rng);
        }
  for (int64_t n : {0, 1, 7, 8, 9, 17, 1000, 48000, 70001})
    for (double wd : {0.0, 0.1})
      for (double mom : {0.0, 0.9})
        for (bool nest : {false, true}) {
          if (nest && mom == 0.0) continue;
          check_same_sgd<float>(n, wd, mom, nest ? 0.0 : 0.1, nest, rng);
          check_same_sgd<double>(n, wd, mom, nest ? 0.0 : 0.1, nest, rng);
        }
  TEST_MAIN_END();
}
