// Convolution (cross-correlation, as deep-learning frameworks define it) for NCHW / NCL tensors,
// lowered to GEMM through im2col:
//   forward       y_n[g]  = W[g] @ col(x_n)[g]            (+ bias, fused in the GEMM epilogue)
//   backward-data dx_n    = col2im( W[g]^T @ dy_n[g] )
//   backward-wt   dW[g]^T += col(x_n)[g] @ dy_n[g]^T        (summed over images, transposed once at the end)
//   bias          db[k]   = sum_{n, p} dy[n, k, p]
// 1-D convolution is the 2-D one with H = KH = 1.
// 3x3 / stride 1 / dilation 1 / groups 1 layers with enough channels run instead as Winograd
// (conv_winograd.cpp; declarations at the end of this file): forward from C, K >= 16 on maps
// >= 8x8, the backward pair from C, K >= 64 on maps >= 14x14 (measured). The forward and the
// data gradient use F(4x4, 3x3) up to 64 channels, F(2x2, 3x3) above; the weight gradient
// too on Intel (measured there; its float32 error ~3x F(2x2)'s), else F(2x2).
// Small-map forwards with K <= 16 compute y^T = col^T W^T so K fills the GEMM's 16-wide tile.
//
// Batching: images are processed in blocks of nb; nb = 1 when OH*OW >= 512, else enough images
// that one GEMM sees >= 512 columns (col block capped at 1 MiB). Threads take whole blocks.
//
// Peak extra memory per conv call (thread_local workspace, grown on demand and reused across
// calls, kept while the thread lives), with nt = worker threads, CKK = C*KH*KW, P = OH*OW:
//   forward:  nt * CKK * nb*P * sizeof(T)            (+ nt * K * nb*P * sizeof(T) when nb > 1;
//             0 for a 1x1 / stride 1 / pad 0 conv with nb = 1: x itself is the column matrix)
//   backward: the same workspace (reused for the im2col of x, then W^T dy),
//             + chunks * K * (C/groups)*KH*KW * sizeof(T) for transposed weight-gradient partials
//             (chunks = min(blocks, max(4, nt)): the same sums at 1..4 threads; freed on return).
// E.g. LeNet C1 (1x28x28, 6@5x5 pad 2), float: 25*784*4 B = 78 KiB per thread.
// The im2col row chunking caps a big map's column matrix at ~2 MiB per thread. Winograd:
// see its blocks below (F(2x2): ~4 MiB per thread for a 128x56x56 layer, + 1 MiB for U,
// + chunks * 16*K*C*sizeof(T) (F(4x4): 36*K*C) for the weight gradient's partial sums; U and the partials live in
// buffers of the calling thread, kept across calls).
#pragma once
#include <cstdint>

#include "gemm.h"  // Act: the activations a GEMM epilogue can fuse

namespace lamina {

struct ConvParams {
  int64_t N = 1, C = 1, H = 1, W = 1;    // input (N, C, H, W)
  int64_t K = 1;                         // output channels
  int64_t KH = 1, KW = 1;                // kernel extent
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;          // zero padding on each side
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  // Output extent: floor((H + 2p - d*(k-1) - 1) / s) + 1.
  int64_t OH() const { return (H + 2 * pad_h - dil_h * (KH - 1) - 1) / stride_h + 1; }
  int64_t OW() const { return (W + 2 * pad_w - dil_w * (KW - 1) - 1) / stride_w + 1; }
};

// Empty string if p is a valid convolution, else a message naming the bad field.
const char* conv_params_error(const ConvParams& p);

// One image x (C, H, W) -> col (C*KH*KW, OH*OW); rows ordered (c, kh, kw) like W's last three
// dims, so W (K, C*KH*KW) @ col is the convolution. Out-of-image taps are zeros.
template <class T>
void im2col(const ConvParams& p, const T* x, T* col);

// The adjoint of im2col: dx (C, H, W) += scatter of col (C*KH*KW, OH*OW). Serial by design
// (several col entries add into one dx element).
template <class T>
void col2im(const ConvParams& p, const T* col, T* dx);

// x (N, C, H, W), w (K, C/groups, KH, KW), b (K) or nullptr, y (N, K, OH, OW).
template <class T>
void conv2d_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y);
// The same followed by y = act(y), fused into the GEMM epilogue / Winograd output rows while
// they are in cache (act = identity is the overload above). E.g. a Conv2d + ReLU layer:
//   conv2d_forward<float>(p, x, w, b, y, Act::relu);
template <class T>
void conv2d_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y, Act act);

// Any of dx (N, C, H, W), dw (K, C/groups, KH, KW), db (K) may be nullptr (not wanted).
// Outputs are overwritten, not accumulated.
template <class T>
void conv2d_backward(const ConvParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

// Naive direct loops: the definition the tests check the fast path against.
template <class T>
void conv2d_forward_reference(const ConvParams& p, const T* x, const T* w, const T* b, T* y);
template <class T>
void conv2d_backward_reference(const ConvParams& p, const T* x, const T* w, const T* dy, T* dx,
                               T* dw, T* db);

// ---- Winograd F(2x2, 3x3) path (conv_winograd.cpp) ----
// For 3x3 kernels, stride 1, dilation 1, groups 1, padding <= 2, the forward pass and the data
// and weight gradients run as 16 GEMMs over 4x4-transformed tiles: 2.25x fewer multiplies
// than im2col.
// Extra memory per thread: 16 * (C + K) * tiles * sizeof(T), tiles chosen so 16*max(C,K)*tiles
// *sizeof(T) <= 2 MiB (at least one row of 2x2 tiles); plus 16*K*C*sizeof(T) for U (kept).
// direct: conv_direct.h (few input channels; stride 1, dilation 1, groups 1): the forward, the
// data gradient as the forward of the flipped filters, and the weight gradient (conv_direct_bwd.h).
// winograd: F(2x2, 3x3); winograd4: F(4x4, 3x3) (below), both only where applicable.
enum class ConvAlgo : int { automatic = 0, im2col = 1, winograd = 2, direct = 3, winograd4 = 4 };
// Testing hook: force a path (winograd / direct only where applicable; automatic picks by shape).
void conv_set_algo(ConvAlgo a);
ConvAlgo conv_get_algo();
bool conv_winograd_applicable(const ConvParams& p);
// True when conv2d_forward runs p on the direct path (conv_direct.h): the fused conv blocks
// take the same path, so their sums round as the unfused conv's.
bool conv2d_forward_is_direct(const ConvParams& p);
// U (16, Kout, Cin) = G g G^T for w (K, C, 3, 3); flip_transpose: Kout = C, Cin = K with each
// filter rotated 180 degrees (the data gradient is that convolution of dy, padding 2 - pad).
template <class T>
void winograd_weights(const T* w, int64_t K, int64_t C, bool flip_transpose, T* U);
// y (N, K, H+2ph-2, W+2pw-2) = 3x3 conv of x (N, C, H, W) given U (16, K, C), + bias or nullptr.
template <class T>
void conv2d_winograd(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad_h, int64_t pad_w,
                     const T* x, const T* U, const T* bias, T* y, Act act = Act::identity);
// dw (K, C, 3, 3) (overwritten) = the weight gradient of that convolution for dy (N, K, OH, OW).
template <class T>
void conv2d_winograd_dw(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad_h,
                        int64_t pad_w, const T* x, const T* dy, T* dw);


// ---- Winograd F(4x4, 3x3) (conv_winograd.cpp; transforms in conv_winograd_f4_tf.h) ----
// Same applicability as F(2x2); 36 GEMMs over 6x6-transformed tiles: 4x fewer multiplies than
// im2col. Float32 error about 8x F(2x2)'s: ~1e-5 of 1 + |y| measured at C = 64 (F(2x2)
// ~1.3e-6, im2col ~3e-7); tests/test_conv_winograd.py holds it to 3e-5.
// Extra memory per thread: 36 * (C + K) * tiles * sizeof(T) (+ up to 4 KiB per matrix: their
// stride is staggered against L1 set conflicts), tiles chosen so that
// 36*max(C,K)*tiles*sizeof(T) <= 1 MiB but tiles >= 64 (whole images per job when they fit,
// else tile rows);
// plus 36*K*C*sizeof(T) for U (kept across calls).
// U (36, Kout, Cin) = G g G^T, flip_transpose as in winograd_weights.
template <class T>
void winograd4_weights(const T* w, int64_t K, int64_t C, bool flip_transpose, T* U);
// Returns false when some y (before act) is inf or NaN: the caller recomputes y exactly.
template <class T>
bool conv2d_winograd4(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad_h, int64_t pad_w,
                      const T* x, const T* U, const T* bias, T* y, Act act = Act::identity);
// Tuning hook: the F(4x4) job's V budget in bytes (<= 0: the default, 2 MiB).
void conv_winograd4_set_chunk_bytes(int64_t bytes);
// The weight gradient dw (K, C, 3, 3) on the F(4x4) transforms: sum over tiles of
// (A dy A^T) .* (B^T x B) per transform element (36 GEMMs (K, tiles) @ (tiles, C)), then
// dw = G^T dU G. Deterministic: the same bits for any thread count.
template <class T>
void conv2d_winograd4_dw(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad_h,
                         int64_t pad_w, const T* x, const T* dy, T* dw);
// Tuning hook: the F(4x4) weight gradient job's V budget in bytes (<= 0: the default).
void conv_winograd4_set_dw_chunk_bytes(int64_t bytes);

}  // namespace lamina
