// Direct weight gradient for layers with few input channels (LeNet's C1 1 -> 6, C3 6 -> 16):
//   dw[k][c][kh][kw] = sum_n sum_{oh, ow} dy[n][k][oh][ow] * xpad[n][c][oh + kh][ow + kw]
// as sums of products of whole vectors, with no im2col copy: KB channels x TB taps of vector
// accumulators stay in registers (one micro-kernel, conv_direct_bwd_kernel.h), summed across
// the lanes once at the end. Two layouts feed it (conv_direct_bwd.cpp):
// - batch in the lanes (batches that fill the vectors): L images side by side, x stored
//   (C, Hp, Wp, L) and dy (K, OH, OW, L), transposed in registers; no wasted products and
//   aligned loads;
// - wide rows (small batches), the layout of conv_direct.h: the image zero-padded to Hp x Wp and
//   dy widened to rows of Wp columns with zeros in the Wp - OW discarded ones, so output
//   position q = oh*Wp + ow reads xp[off[t] + q] for tap t = (c, kh, kw).
// With the batch in the lanes and 5-wide filters, dw can also run as row Winograd F(4, 5), the
// transpose of the forward's (conv_direct_lane.h): the same micro-kernel sums the transformed
// dy and images over positions, with the (c, kh) pairs as taps (conv_direct_bwd.cpp).
// Stride 1, dilation 1, groups 1 only.
#pragma once
#include <cstdint>

#include "conv.h"

namespace lamina {

// True when conv2d_backward computes dw on this path: the measured rule, or ConvAlgo::direct
// forced where the shape allows it (conv_direct_applicable).
bool conv_direct_dw_preferred(const ConvParams& p);

// False when dw would take the wide rows and x holds an inf or NaN: a discarded wide column
// pairs a zero of the widened dy with a real input, and 0 * inf = NaN reached taps that PyTorch's
// (and im2col's) sums never multiply by that input. conv2d_backward then takes im2col + GEMM.
template <class T>
bool conv_direct_dw_exact(const ConvParams& p, const T* x);

// dw (K, C, KH, KW), overwritten. The batch is cut into a fixed number of contiguous chunks
// (min(N, max(4, threads))) whose partial sums are added in chunk order, so the result is the
// same at 1..4 threads. db (K) or null: with the batch in the lanes, db is summed from the
// transposed dy while it is in cache, bitwise as conv2d_backward's own db loop (see
// bias_grad_lanes); returns whether it wrote db.
template <class T>
bool conv2d_direct_dw(const ConvParams& p, const T* x, const T* dy, T* dw, T* db = nullptr);

// The data gradient with the batch in the lanes, for the shapes whose data gradient runs on
// the direct path (conv2d_backward decides; see conv.cpp): true where the ISA has the kernels
// and transposes, padding <= kernel - 1, and the batch fills most of the lanes.
template <class T>
bool conv_direct_dx_lanes_applicable(const ConvParams& p);
// dx (N, C, H, W), overwritten. Each group of lanes images is one task (no reduction).
template <class T>
void conv2d_direct_dx_lanes(const ConvParams& p, const T* w, const T* dy, T* dx);
// The same data gradient as row Winograd F(4, 5) (5-wide filters), where its rule (Zen 4) or
// the row-Winograd testing hook picks it and dy is finite: true when it wrote dx, false (nothing
// written) when the caller should run conv2d_direct_dx_lanes.
template <class T>
bool conv2d_direct_dx_winograd(const ConvParams& p, const T* w, const T* dy, T* dx);

namespace conv_direct_bwd_detail {
// Micro-kernel contract, for one block of kb output channels and tb taps, W = lanes:
//   acc[i*lda + j*W + l] += sum_{n < nimg} sum_{v < nvec}
//                           dyw[n*ds + i*ldd + v*W + l] * xp[n*xs + off[j] + v*W + l]
// for i < kb, j < tb, l < W. acc is read and written once per call; the products are summed in
// registers. dyw is 64-byte aligned with ldd, ds multiples of W; xp must be readable (zero
// slack) up to off[j] + nvec*W of every image.
template <class T>
using DwKernel = void (*)(const T* xp, int64_t xs, const T* dyw, int64_t ds, int64_t ldd,
                          int64_t nimg, int64_t nvec, const int64_t* off, T* acc, int64_t lda);
// What an ISA offers: lanes per vector, the channel block it prefers (kb_max), the tap block
// for a channel block (tb_for(kb), keeping kb*tb accumulators + tb inputs in registers), and
// the kernel for any kb <= kb_max, tb <= tb_for(kb).
template <class T>
struct DwKernels {
  int lanes = 8;
  int kb_max = 1;
  int (*tb_for)(int kb) = nullptr;
  DwKernel<T> (*get)(int kb, int tb) = nullptr;
  // Batch into the lanes: dst[w*lanes + i] = rows[i][w] for w < n, i < lanes (rows[i] null:
  // zeros). Null where the ISA has no fast transpose (then only the wide layout is used).
  void (*to_lanes)(const T* const* rows, int64_t n, T* dst) = nullptr;
  // The inverse, rows[i][w] = src[w*lanes + i] (rows[i] null: skipped); null with to_lanes.
  void (*from_lanes)(const T* src, int64_t n, T* const* rows) = nullptr;
  // Row Winograd F(4, 5) of dy (conv_direct_bwd_kernel.h's dw_wino_dy); null with to_lanes.
  void (*wino_dy)(const T* d, int64_t nd, T* m, int64_t lde) = nullptr;
  // out[t] = sum over lanes of sum_{c < nchunks} a[c*stride + t*lanes + l], t < n: the chunks'
  // accumulators to dw (a scalar chain of adds per tap cost as much as the micro-kernel on C3).
  void (*lane_sums)(const T* a, int64_t n, int64_t nchunks, int64_t stride, T* out) = nullptr;
};
#if defined(LAMINA_X86)
// conv_direct_bwd_avx512.cpp / conv_direct_bwd_avx2.cpp.
template <class T> DwKernels<T> dw_kernels_avx512();
template <class T> DwKernels<T> dw_kernels_avx2();
#endif
}  // namespace conv_direct_bwd_detail

}  // namespace lamina
