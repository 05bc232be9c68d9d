// The arithmetic of the random family (random.h), written once and compiled twice: portably
// (random.cpp, where std::fma may be a libm call) and for AVX2 + FMA (random_avx2.cpp, one
// instruction). Both files are built with -ffp-contract=off: every fused multiply-add here is an
// explicit std::fma, exactly where PyTorch's compiled code has one, and no other is formed.
#pragma once
#include <cmath>
#include <cstdint>

#include "float_bits.h"

namespace lamina {
namespace random_kernel {

// Constants as PyTorch's code spells them: a double literal rounded to float.
constexpr float f(double v) { return static_cast<float>(v); }

// Cephes logf, for x in (0, 1]: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) by a degree-9
// polynomial in m - 1, plus e log 2 in two parts.
inline float log_f32(float x) {
  x = std::fmax(x, f(1.17549435e-38));
  const int32_t bits = float_bits(x);
  float e = static_cast<float>((bits >> 23) - 0x7f) + 1.0f;
  const float m = bits_to_float((bits & ~0x7f800000) | 0x3f000000);  // in [0.5, 1)
  const bool small = m < f(0.707106781186547524);                // then 2m - 1, e - 1
  const float t = (m - 1.0f) + (small ? m : 0.0f);
  e = e - (small ? 1.0f : 0.0f);
  const float z = t * t;
  float y = f(7.0376836292E-2);
  y = std::fma(y, t, f(-1.1514610310E-1));
  y = std::fma(y, t, f(1.1676998740E-1));
  y = std::fma(y, t, f(-1.2420140846E-1));
  y = std::fma(y, t, f(1.4249322787E-1));
  y = std::fma(y, t, f(-1.6668057665E-1));
  y = std::fma(y, t, f(2.0000714765E-1));
  y = std::fma(y, t, f(-2.4999993993E-1));
  y = std::fma(y, t, f(3.3333331174E-1));
  y = y * t;
  y = std::fma(y, z, e * f(-2.12194440e-4));
  y = std::fma(z, -0.5f, y);
  return std::fma(e, f(0.693359375), t + y);
}

// Cephes sinf and cosf for x >= 0: j = the even integer nearest x 4/pi (truncated, then rounded
// up to even), x - j pi/4 in three parts, then a sine or a cosine polynomial by j's bit 1.
inline void sincos_f32(float x, float* s, float* c) {
  int32_t j = static_cast<int32_t>(x * f(1.27323954473516));
  j = (j + 1) & ~1;
  const float y = static_cast<float>(j);
  const uint32_t sign_sin = static_cast<uint32_t>(j & 4) << 29;
  const uint32_t sign_cos = static_cast<uint32_t>(~(j - 2) & 4) << 29;
  const bool sine_poly = (j & 2) == 0;
  x = std::fma(y, f(-0.78515625), x);
  x = std::fma(y, f(-2.4187564849853515625e-4), x);
  x = std::fma(y, f(-3.77489497744594108e-8), x);
  const float z = x * x;
  float cp = f(2.443315711809948E-005);
  cp = std::fma(cp, z, f(-1.388731625493765E-003));
  cp = std::fma(cp, z, f(4.166664568298827E-002));
  cp = std::fma(cp * z, z, -(z * 0.5f)) + 1.0f;
  float sp = f(-1.9515295891E-4);
  sp = std::fma(sp, z, f(8.3321608736E-3));
  sp = std::fma(sp, z, f(-1.6666654611E-1));
  sp = std::fma(sp * z, x, x);
  *s = bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(float_bits(sine_poly ? sp : cp)) ^ sign_sin));
  *c = bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(float_bits(sine_poly ? cp : sp)) ^ sign_cos));
}

inline void normal_blocks(int64_t blocks, float* data, float mean, float std) {
  const float two_pi = f(2.0 * 3.14159265358979323846);
  for (int64_t b = 0; b < blocks; ++b) {
    float* d = data + 16 * b;
    for (int j = 0; j < 8; ++j) {
      const float radius = std::sqrt(-2.0f * log_f32(1.0f - d[j]));
      float s, c;
      sincos_f32(two_pi * d[j + 8], &s, &c);
      d[j] = std::fma(radius * c, std, mean);
      d[j + 8] = std::fma(radius * s, std, mean);
    }
  }
}

inline void normal_blocks(int64_t blocks, double* data, double mean, double std) {
  const double two_pi = 2.0 * 3.14159265358979323846;
  for (int64_t b = 0; b < blocks; ++b) {
    double* d = data + 16 * b;
    for (int j = 0; j < 8; ++j) {
      const double radius = std::sqrt(-2.0 * std::log(1.0 - d[j]));
      const double theta = two_pi * d[j + 8];
      d[j] = std::fma(radius * std::cos(theta), std, mean);
      d[j + 8] = std::fma(radius * std::sin(theta), std, mean);
    }
  }
}

template <class T>
inline void fused_scale_shift(int64_t n, const T* x, T* y, T scale, T shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::fma(x[i], scale, shift);
}

}  // namespace random_kernel
}  // namespace lamina
