// (h, w) parameter pairs shared by the conv and pooling bindings: printing, and the bounds that
// keep H + 2*pad, dil*(K-1) and an average-pool divisor far from int64 overflow (an overflowed
// size would pass the range checks as a negative number; an overflowed divisor of 0 gave inf).
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "common.h"

namespace lamina_py {

using Pair = std::array<int64_t, 2>;

inline std::string pair_str(const Pair& v) {
  return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ")";
}

constexpr int64_t kMaxParam = (int64_t(1) << 31) - 1;

inline void check_bounded(const Pair& v, const char* name) {
  if (v[0] > kMaxParam || v[1] > kMaxParam) value_error(name, ": expected values below 2^31, got ", pair_str(v));
}

// A scalar size argument in [lo, hi], named in the error.
inline void check_size_arg(int64_t v, const char* name, int64_t lo, int64_t hi) {
  if (v < lo) value_error(name, ": expected a ", lo ? "positive" : "non-negative", " integer, got ", v);
  if (v > hi) value_error(name, ": expected a value below ", hi == kMaxParam ? "2^31" : "2^62", ", got ", v);
}

// stride >= 1, padding >= 0, dilation >= 1, each below 2^31, named in the error.
inline void check_stride_padding_dilation(const Pair& stride, const Pair& padding, const Pair& dilation) {
  if (stride[0] <= 0 || stride[1] <= 0) value_error("stride: expected positive integers, got ", pair_str(stride));
  if (padding[0] < 0 || padding[1] < 0) value_error("padding: expected non-negative integers, got ", pair_str(padding));
  if (dilation[0] <= 0 || dilation[1] <= 0) value_error("dilation: expected positive integers, got ", pair_str(dilation));
  check_bounded(stride, "stride");
  check_bounded(padding, "padding");
  check_bounded(dilation, "dilation");
}

}  // namespace lamina_py
