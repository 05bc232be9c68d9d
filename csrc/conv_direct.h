// Direct convolution for layers with few input channels (LeNet's C1 1 -> 6 and C3 6 -> 16),
// vectorized over output pixels instead of over the handful of output channels.
//
// The "wide output" trick: with the input plane zero-padded to Hp x Wp and the output computed
// on OH rows of Wp columns (the last Wp - OW of each row are discarded), output position
// q = oh*Wp + ow reads input xp[c][q + kh*Wp + kw] for tap (c, kh, kw): for a fixed tap,
// consecutive q read consecutive inputs. So a block of output pixels is a few whole vectors,
// each tap is one shifted unaligned load per vector, and each weight is one broadcast feeding
// those vectors -- an implicit GEMM whose A panel is the padded image itself (no im2col copy):
//   ywide[k][q] = sum over taps t of w[k][t] * xp[off[t] + q]
// Stride 1, dilation 1, groups 1 only. Forward only: the backward stays on im2col + GEMM.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "conv.h"

namespace lamina {

// True when conv2d_forward takes the direct path for p (the measured rule, or the forced
// ConvAlgo::direct where the shape allows it).
bool conv_direct_applicable(const ConvParams& p);
bool conv_direct_preferred(const ConvParams& p);

template <class T>
void conv2d_direct_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y, Act act);

namespace conv_direct_detail {
// True when no value of x[0 .. n) is inf or NaN (exponent bits all ones): an integer OR
// reduction, which the compiler vectorizes (a float compare with an early exit it does not).
// Internal linkage (static): each ISA's translation unit keeps its own copy at its own
// width (LaneKernels::all_finite), never one the linker picked from an AVX-512 unit.
template <class T>
static inline bool all_finite(const T* x, int64_t n) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr U kExp = sizeof(T) == 4 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  U bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    U u;
    std::memcpy(&u, x + i, sizeof(T));
    bad |= U((u & kExp) == kExp);
  }
  return bad == 0;
}

// Micro-kernel: for the KB output channels of one block and nvec vectors of wide output
// starting at xp (the image's padded planes, shifted to the block's first q):
//   yw[kb*ldy + j] = sum_t wt[t*KB + kb] * xp[off[t] + j]   for j < nvec * lanes
// wt holds the block's weights tap-major (one broadcast per tap and channel). The kernel
// computes whole vectors; xp must be readable (zero slack) past the last q.
template <class T>
using DirectKernel = void (*)(const T* xp, const int64_t* off, int64_t ntaps, const T* wt, T* yw,
                              int64_t ldy, int64_t nvec);
struct DirectShape {
  int kb;     // output channels per block (weights padded with zero channels to a multiple)
  int vecs;   // vectors of output pixels per kernel call (the register block)
  int lanes;  // elements per vector
};
// Batch-lane micro-kernel, for batches of at least one vector of images: the block's images
// sit in the lanes (xt (C, Hp, Wp, lanes), the padded input transposed), so no lane is wasted
// on the wide rows' discarded columns. For the KB channels of one block and V adjacent output
// pixels of one row, starting at xt (the tile's first pixel):
//   yt[kb*ldk + v*lanes + l] = sum_t wt[t*KB + kb] * xt[off[t] + v*lanes + l] + bias[kb]
// off[t] = ((c*Hp + kh)*Wp + kw) * lanes; xt and yt aligned to a vector.
template <class T>
using LaneKernel = void (*)(const T* xt, const int64_t* off, int64_t ntaps, const T* wt, const T* bias,
                            T* yt, int64_t ldk);
template <class T>
struct LaneKernels {
  int kb = 0, vmax = 0, lanes = 0;
  LaneKernel<T> by_v[7] = {};   // by_v[v]: tiles of v pixels, 1 <= v <= vmax
  // dst[j*lanes + l] = src[l*stride + j] (j < n, l < nl; zero lanes past nl), and back;
  // stride * (lanes - 1) must fit an int32.
  void (*gather)(const T* src, int64_t stride, int64_t n, int64_t nl, T* dst) = nullptr;
  void (*scatter)(const T* src, int64_t n, int64_t nl, T* dst, int64_t stride) = nullptr;
  // ReLU + 2x2/2 max pool of lane rows r0, r1 -> pooled, code (PW, lanes) (conv_block.h's code).
  void (*relu_pool2)(const T* r0, const T* r1, int64_t PW, T* pooled, uint8_t* code) = nullptr;
  void (*scatter_code)(const uint8_t* src, int64_t n, int64_t nl, uint8_t* dst, int64_t stride) = nullptr;
  // Row Winograd F(4, 5) (conv_direct_lane.h): the ntiles 8-column tiles of one lane row
  // (tile j reads columns 4j .. 4j+7) to the transform domain, v[e*ldv + j*lanes + l]; and one
  // tile's 8 transformed sums m[e*lde + l] back to nout <= 4 outputs y[i*lanes + l], plus bias.
  void (*wino_in)(const T* x, int64_t ntiles, T* v, int64_t ldv) = nullptr;
  void (*wino_out)(const T* m, int64_t lde, T bias, int64_t nout, T* y) = nullptr;
  // all_finite (above) compiled for this ISA: the row Winograd driver checks each block's input.
  bool (*all_finite)(const T* x, int64_t n) = nullptr;
};
// Where row Winograd F(4, 5) may run at all, shared by the forward, dw and dx: 1 when the
// testing hook below forces it on, 0 when it is off (hook, another ConvAlgo, portable, AVX-512
// of a vendor other than AMD or Intel, not 5-wide), -1 when each pass's own measured shape rule
// decides (AVX2, AMD and Intel AVX-512).
int row_winograd_gate(const ConvParams& p);
// True when the lane driver runs p as row Winograd F(4, 5) (conv_direct_lane.h): the measured
// rule, or the testing hook below.
bool lane_winograd_preferred(const ConvParams& p);
#if defined(LAMINA_X86)
template <class T> void lane_kernels_avx512(int64_t K, LaneKernels<T>* lk);
template <class T> void lane_kernels_avx2(int64_t K, LaneKernels<T>* lk);
#endif
#if defined(LAMINA_X86)
// conv_direct_avx512.cpp / conv_direct_avx2.cpp: the best register block for K output channels.
template <class T> DirectKernel<T> direct_kernel_avx512(int64_t K, DirectShape* shape);
template <class T> DirectKernel<T> direct_kernel_avx2(int64_t K, DirectShape* shape);
#endif
}  // namespace conv_direct_detail

// Testing hook for the row Winograd lane path: 0 = the measured rule, 1 = wherever it applies
// (5-wide filters on the lane path), 2 = never.
void conv_direct_set_row_winograd(int mode);
int conv_direct_row_winograd_mode();
// Where direct convolutions with one output channel (C1's dx) run the wide rows with a 1 x 14
// kernel instead of the lane kernels or im2col + GEMM: AVX-512 on Intel (measured there), unless
// the row Winograd hook forces that path on.
bool conv_direct_one_channel_wide();
// Testing hook for the AVX-512 f32 lane gather: 0 = the measured rule, 1 = in-register
// transposes, 2 = vgatherdps (the same bits either way).
void conv_direct_set_lane_gather(int mode);
int conv_direct_lane_gather_mode();

}  // namespace lamina
