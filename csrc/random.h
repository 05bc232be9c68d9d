// Random family: the transforms that turn PyTorch-compatible uniform draws into other
// distributions. The draws themselves (a Mersenne Twister, seeded as PyTorch's CPU generator is)
// are made by lamina.random in Python; these kernels do the per-value arithmetic, with exactly
// PyTorch's operations and roundings, so that the values agree bit for bit with PyTorch's.
#pragma once
#include <cstdint>

namespace lamina {

// Box-Muller over `blocks` blocks of 16 uniforms in [0, 1), in place: in each block value j
// (j < 8) and value j + 8 become radius * cos(theta) and radius * sin(theta), radius =
// sqrt(-2 log(1 - u_j)), theta = 2 pi u_{j+8}, then * std + mean in one rounding.
// float: PyTorch's AVX2 single-precision path (Cephes log and sincos, fused where its compiler
// fuses them). double: C's log, cos and sin.
void normal_blocks(int64_t blocks, float* data, float mean, float std);
void normal_blocks(int64_t blocks, double* data, double mean, double std);

// y[i] = x[i] * scale + shift in one rounding (PyTorch's uniform_(from, to): u * (to - from) +
// from; normal_'s * std + mean). y may be x.
void fused_scale_shift(int64_t n, const float* x, float* y, float scale, float shift);
void fused_scale_shift(int64_t n, const double* x, double* y, double scale, double shift);

namespace detail {
// The same, compiled for AVX2 + FMA (random_avx2.cpp): std::fma as one instruction.
void normal_blocks_avx2(int64_t blocks, float* data, float mean, float std);
void normal_blocks_avx2(int64_t blocks, double* data, double mean, double std);
void fused_scale_shift_avx2(int64_t n, const float* x, float* y, float scale, float shift);
void fused_scale_shift_avx2(int64_t n, const double* x, double* y, double scale, double shift);
}  // namespace detail

}  // namespace lamina
