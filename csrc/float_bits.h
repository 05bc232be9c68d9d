// A float's bits as an int32 and back (memcpy: no aliasing rules broken, compiles to a move).
// Shared by the scalar code that works on exponent and sign bits (activation.cpp's portable
// exp, random_kernel.h's Cephes log and sincos).
#pragma once
#include <cstdint>
#include <cstring>

namespace lamina {

inline float bits_to_float(int32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

inline int32_t float_bits(float f) {
  int32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

}  // namespace lamina
