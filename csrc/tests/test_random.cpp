// The random family's transforms: the Cephes log and sincos stay within 2 ulp of the C library's
// over their whole input range, the AVX2 + FMA build and the portable one give the same bits, and
// normal_blocks pairs value j with j + 8 as Box-Muller does. (That the values are PyTorch's, bit
// for bit, is checked against PyTorch itself in tests/test_random_torch.py.)
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "random.h"
#include "random_kernel.h"

using namespace lamina;

template <class T>
static bool bits_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

static int64_t ulp_distance(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if ((ia < 0) != (ib < 0)) return int64_t(ia & 0x7fffffff) + int64_t(ib & 0x7fffffff);
  return std::llabs(int64_t(ia) - int64_t(ib));
}

static void check_log_and_sincos() {
  int64_t worst_log = 0, worst_sin = 0, worst_cos = 0;
  for (int64_t k = 1; k <= (1 << 24); ++k) {  // every float32 uniform's 1 - u: k / 2^24
    const float x = static_cast<float>(k) * 0x1.0p-24f;
    const float l = random_kernel::log_f32(x);
    if (x < 0.999f || x > 1.001f)  // near 1 log is tiny and the absolute error is what counts
      worst_log = std::max(worst_log, ulp_distance(l, static_cast<float>(std::log(double(x)))));
    else
      CHECK_MSG(std::fabs(double(l) - std::log(double(x))) < 1e-7, "log(%a) = %a", x, l);
  }
  const float two_pi = static_cast<float>(2.0 * 3.14159265358979323846);
  for (int64_t k = 0; k < (1 << 24); k += 7) {  // every angle 2 pi u takes, sampled
    const float t = two_pi * (static_cast<float>(k) * 0x1.0p-24f);
    float s, c;
    random_kernel::sincos_f32(t, &s, &c);
    const double sd = std::sin(double(t)), cd = std::cos(double(t));
    if (std::fabs(sd) > 1e-3) worst_sin = std::max(worst_sin, ulp_distance(s, static_cast<float>(sd)));
    else CHECK_MSG(std::fabs(s - sd) < 1e-7, "sin(%a) = %a", t, s);
    if (std::fabs(cd) > 1e-3) worst_cos = std::max(worst_cos, ulp_distance(c, static_cast<float>(cd)));
    else CHECK_MSG(std::fabs(c - cd) < 1e-7, "cos(%a) = %a", t, c);
  }
  CHECK_MSG(worst_log <= 2 && worst_sin <= 2 && worst_cos <= 2, "ulp: log %lld sin %lld cos %lld",
            (long long)worst_log, (long long)worst_sin, (long long)worst_cos);
}

template <class T>
static std::vector<T> uniforms(int64_t n) {
  std::vector<T> u(n);
  uint64_t s = 12345;
  for (auto& v : u) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<T>(s >> 40) * static_cast<T>(0x1.0p-24);
  }
  return u;
}

template <class T>
static void check_normal_blocks() {
  const int64_t blocks = 4096;
  const std::vector<T> u = uniforms<T>(16 * blocks);
  std::vector<T> a = u, b = u;
  set_isa(Isa::portable);
  normal_blocks(blocks, a.data(), T(0), T(1));
  set_isa(cpu_supports_avx512() ? Isa::avx512 : cpu_supports_avx2_fma() ? Isa::avx2 : Isa::portable);
  normal_blocks(blocks, b.data(), T(0), T(1));
  CHECK(bits_equal(a, b));  // std::fma is exact either way
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int j = 0; j < 8; ++j) {
      const double x = a[16 * blk + j], y = a[16 * blk + j + 8];
      const double r2 = -2.0 * std::log(1.0 - double(u[16 * blk + j]));  // radius^2 of the pair
      CHECK_MSG(std::fabs(x * x + y * y - r2) <= 1e-5 * (1.0 + r2), "block %lld pair %d", (long long)blk, j);
    }
  std::vector<T> c = u;
  normal_blocks(blocks, c.data(), T(0.5), T(2));
  for (size_t i = 0; i < c.size(); ++i) CHECK(c[i] == std::fma(a[i], T(2), T(0.5)));
}

int main() {
  check_log_and_sincos();
  check_normal_blocks<float>();
  check_normal_blocks<double>();
  std::vector<float> x = {0.5f, 1.0f, -3.0f}, y(3);
  fused_scale_shift(3, x.data(), y.data(), 4.0f, 1.0f);
  CHECK(y[0] == 3.0f && y[1] == 5.0f && y[2] == -11.0f);
  TEST_MAIN_END();
}
