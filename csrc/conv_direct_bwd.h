// Direct weight gradient for layers with few input channels (LeNet's C1 1 -> 6, C3 6 -> 16), in
// the "wide output" layout of conv_direct.h: the input plane zero-padded to Hp x Wp, the output
// gradient widened to rows of Wp columns with zeros in the Wp - OW discarded ones (dyw). Output
// position q = oh*Wp + ow reads xp[off[t] + q] for tap t = (c, kh, kw), so
//   dw[k][t] = sum_n sum_q dyw[n][k][q] * xp[n][off[t] + q]
// is a sum of products of whole vectors along q: no im2col copy, and the batch x pixel
// reduction stays in vector accumulators (KB channels x TB taps in registers, one pass over
// the images of a chunk), reduced across lanes once at the end.
// Stride 1, dilation 1, groups 1 only.
#pragma once
#include <cstdint>

#include "conv.h"

namespace lamina {

// True when conv2d_backward computes dw on this path: the measured rule, or ConvAlgo::direct
// forced where the shape allows it (conv_direct_applicable).
bool conv_direct_dw_preferred(const ConvParams& p);

// dw (K, C, KH, KW), overwritten. The batch is cut into a fixed number of contiguous chunks
// (min(N, max(4, threads))) whose partial sums are added in chunk order, so the result is the
// same at 1..4 threads.
template <class T>
void conv2d_direct_dw(const ConvParams& p, const T* x, const T* dy, T* dw);

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
};
#if defined(LAMINA_X86)
// conv_direct_bwd_avx512.cpp / conv_direct_bwd_avx2.cpp.
template <class T> DwKernels<T> dw_kernels_avx512();
template <class T> DwKernels<T> dw_kernels_avx2();
#endif
}  // namespace conv_direct_bwd_detail

}  // namespace lamina
