// Fused convolution blocks: conv + bias + ReLU + 2x2 stride-2 max pool (LeNet's C1/S2 and
// C3/S4) in one pass, and the matching backward up to the conv's own gradient.
//
// Forward: per block of images in the vector lanes (conv_direct_lane.h), two conv output rows
// at a time stay in L1 while ReLU and the pool run over them; only the pooled output and a
// one-byte code per pooled element reach memory (not the conv output, not int64 indices).
//   code = window position of the max (0..3, row-major: (0,0) (0,1) (1,0) (1,1)), or 4 where
//          ReLU's derivative is 0 there (the max is <= 0; ReLU'(0) = 0, NaN passes as relu' does)
// Values and ties round exactly as conv2d_forward(Act::relu) then max_pool2d_forward: the same
// conv sums in the same order (the fused path runs only where conv2d_forward takes the direct
// path, else it calls conv2d_forward itself), the same select rules.
// Backward: dz (N, K, OH, OW), the conv's dy = zero except dz[window max] = 0 + dy where code < 4
// (max_pool2d_backward then relu' exactly); then conv2d_backward(x, w, dz) gives dx, dw, db.
#pragma once
#include <cstdint>
#include <string>

#include "conv.h"

namespace lamina {

// The shapes the fused block takes: pooled (N, K, OH/2, OW/2) (floor), at least one output.
std::string conv_block_error(const ConvParams& p);

// x (N, C, H, W), w (K, C/groups, KH, KW), b (K) or nullptr -> y (N, K, OH/2, OW/2), code (same).
template <class T>
void conv2d_relu_max_pool2d_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y, uint8_t* code);

// dy, code (N, K, OH/2, OW/2) -> dz (N, K, OH, OW), overwritten.
template <class T>
void relu_max_pool2d_backward(const ConvParams& p, const T* dy, const uint8_t* code, T* dz);

namespace conv_block_detail {
// The two dz rows under one pooled row (PW windows): r0[2pw + j] = 0 + g[pw] where code[pw]
// == j, r1[2pw + j] = 0 + g[pw] where code[pw] == 2 + j, +0 elsewhere (the first 2*PW cells
// of each row). conv_direct_avx512.cpp; null without AVX-512.
using UnpoolRowsF32 = void (*)(const float* g, const uint8_t* code, int64_t PW, float* r0, float* r1);
UnpoolRowsF32 unpool_rows_f32();
// Small planes (PH*PW <= 32 windows, C3's 5x5): a whole dz plane (OH*OW cells, contiguous)
// from the plane's windows g, code, by per-cell tables built once per shape: src[o] = the
// window of cell o, want[o] = the code that puts the gradient there (255: no window, +0).
// codes32: the plane's codes, readable for 32 bytes.
using UnpoolPlaneF32 = void (*)(const float* g, const uint8_t* codes32, int64_t P, const int32_t* src,
                                const int32_t* want, int64_t cells, float* dz);
UnpoolPlaneF32 unpool_plane_f32();
#if defined(LAMINA_X86)
void unpool_rows_f32_avx512(const float* g, const uint8_t* code, int64_t PW, float* r0, float* r1);
void unpool_plane_f32_avx512(const float* g, const uint8_t* codes32, int64_t P, const int32_t* src,
                             const int32_t* want, int64_t cells, float* dz);
#endif
}  // namespace conv_block_detail

}  // namespace lamina
