// GEMM micro-kernels: the innermost piece of the BLIS five-loop GEMM in gemm.cpp.
//
// Micro-kernel contract (every ISA's kernel obeys it; gemm.cpp relies on nothing else):
//   C[0:MR, 0:NR] = alpha * sum_{k < kc} a(i, k) * Bp[k*b_rs + j]  +  beta * C[0:MR, 0:NR]
// - Tile shape: MR x NR, fixed per kernel (GemmKernel::mr / nr). The kernel always computes
//   the FULL tile in registers (A and B are readable, zero-padded, for all MR x NR).
// - B: a packed kc x NR micro-panel, row k at Bp + k*NR (b_rs = NR), 64-byte aligned, columns
//   past the matrix edge zero-padded by pack_b; or, for small M where packing B would cost more
//   than it saves, NR full columns of a row-major B read in place (b_rs = ldb, any alignment).
// - A: element a(i, k) is read at A[i*a_rs + k*a_cs]. A packed micro-panel (pack_a, rows past
//   the edge zero-padded) has a_rs = 1, a_cs = MR; the `strided` entry point reads A in place
//   from the caller's matrix (a_rs = lda, a_cs = 1, or a_rs = 1, a_cs = lda when transposed),
//   which skips packing for skinny N where each A panel is used only once.
// - C: row-major tile at C with row stride ldc (column stride 1). Only its top-left mv x nv
//   part (1 <= mv <= MR, 1 <= nv <= NR) is read or written: edge tiles store with masked
//   partial vectors, no scratch tile and no scalar tail.
// - beta == 0: C is written without being read (NaN/garbage in C does not propagate).
// - kc may be 0 (then C = beta * C, computed as 0*alpha + beta*C).
#pragma once
#include <cstdint>

namespace lamina {

template <class T>
using GemmUkernel = void (*)(int64_t kc, const T* A, int64_t a_rs, int64_t a_cs, const T* Bp,
                             int64_t b_rs, T* C, int64_t ldc, T alpha, T beta, int64_t mv,
                             int64_t nv);

template <class T>
struct GemmKernel {
  int mr, nr;                 // tile shape
  GemmUkernel<T> packed;      // A packed (a_rs = 1, a_cs = mr): constant offsets, one pointer
  GemmUkernel<T> strided;     // A read in place with any (a_rs, a_cs)
  const char* name;
  int mc;                     // rows of the A block a task keeps in L2 (a multiple of mr)
  bool trans_a_in_place;      // reads a transposed A in place (else it is packed once K, N are big)
  // A kernel with the same NR and fewer rows (tail_mr), for a ragged last row panel: it reads
  // that panel from its MR-interleaved pack (a_rs = 1, a_cs = MR) in tail_mr-row steps, so
  // 12 leftover rows of a 24-row tile cost two 6-row tiles instead of a 24-row one. nullptr: none.
  GemmUkernel<T> tail = nullptr;
  int tail_mr = 0;
  // The same MR with NR / 2 columns, for a last column panel at most half full (N = 100 on a
  // 32-wide tile: 4 live columns cost 16 lanes, not 32), packed and in-place A. nullptr: none.
  GemmUkernel<T> half_packed = nullptr, half_strided = nullptr;

  GemmKernel with_half(GemmUkernel<T> packed_half, GemmUkernel<T> strided_half) const {
    GemmKernel k = *this;
    k.half_packed = packed_half;
    k.half_strided = strided_half;
    return k;
  }
  GemmKernel with_tail(const GemmKernel& smaller) const {  // smaller: same NR, fewer rows
    GemmKernel k = *this;
    k.tail = smaller.strided;  // reads the MR-interleaved pack with a_rs = 1, a_cs = MR
    k.tail_mr = smaller.mr;
    return k;
  }
};

#if defined(LAMINA_X86)
// gemm_kernel_avx2.cpp (compiled with -mavx2 -mfma; call only when active_isa() == avx2).
// "main": 6 x 16 float / 6 x 8 double -- 12 ymm accumulators + 2 B vectors + 1 broadcast.
// "narrow": 12 x 8 float / 12 x 4 double -- one vector per row, for N <= 8 (4) where a
// 16-wide tile would waste lanes (im2col conv shapes with 6 or 16 output channels).
template <class T> GemmKernel<T> gemm_kernel_avx2_main();
template <class T> GemmKernel<T> gemm_kernel_avx2_narrow();
template <> GemmKernel<float> gemm_kernel_avx2_main<float>();
template <> GemmKernel<double> gemm_kernel_avx2_main<double>();
template <> GemmKernel<float> gemm_kernel_avx2_narrow<float>();
template <> GemmKernel<double> gemm_kernel_avx2_narrow<double>();

// Skinny (matrix-vector) kernels for M == 1 / N == 1, raw sums only (gemm.cpp applies alpha,
// beta and the epilogue). x and y contiguous for dot; Mat rows at stride ldm.
// dot:  y[j] = sum_{k < K} x[k] * Mat[j*ldm + k]         (j < n; rows of Mat, e.g. W of x @ W^T)
// axpy: y[j] = sum_{k < K} x[k*incx] * Mat[k*ldm + j]    (j < n; a sweep over Mat's K rows)
void gemv_dot_avx2(int64_t n, int64_t K, const float* x, const float* Mat, int64_t ldm, float* y);
void gemv_dot_avx2(int64_t n, int64_t K, const double* x, const double* Mat, int64_t ldm, double* y);
void gemv_axpy_avx2(int64_t n, int64_t K, const float* x, int64_t incx, const float* Mat,
                    int64_t ldm, float* y);
void gemv_axpy_avx2(int64_t n, int64_t K, const double* x, int64_t incx, const double* Mat,
                    int64_t ldm, double* y);
// 12 independent ymm FMA chains for `iters` rounds (no memory traffic); returns flops done.
double fma_peak_probe_avx2(int64_t iters, float* sink);
// dst[k*dst_ld + r] = src[r*ld + k] for r < rows, k < K (rows a multiple of 8 for float, 4
// for double): NR columns of a transposed B, or MR rows of a row-major A, into a packed
// micro-panel by 8x8 (4x4) register transposes instead of scalar strided stores.
void pack_rows_trans_avx2(int64_t rows, int64_t K, const float* src, int64_t ld, float* dst,
                          int64_t dst_ld);
void pack_rows_trans_avx2(int64_t rows, int64_t K, const double* src, int64_t ld, double* dst,
                          int64_t dst_ld);
// dst[k*W + j] = src[k*ld + j] for j < nv, else 0 (masked loads: nothing past column nv is read).
void pack_rows_masked_avx2(int W, int64_t K, int64_t nv, const float* src, int64_t ld, float* dst);
void pack_rows_masked_avx2(int W, int64_t K, int64_t nv, const double* src, int64_t ld, double* dst);

// gemm_kernel_avx512.cpp (compiled with -mavx512f; call only when active_isa() == avx512).
// variant 0: 12 x 32 float / 12 x 16 double -- 24 zmm accumulators + 2 B vectors + 1 broadcast.
// variant 1: 8 x 32 / 8 x 16 -- 16 accumulators, for M = 8k batches a 12-row tile would pad.
// variant 2: 24 x 16 / 24 x 8 -- one vector per row, for N <= 16 (8).
template <class T> GemmKernel<T> gemm_kernel_avx512(int variant);
// dst[k*W + j] = j < nv ? src[j*ld + k] : 0 for k < K, j < W (W a multiple of 16 floats / 8
// doubles, dst 64-byte aligned): a transposed B's NR columns by 16x16 (8x8) zmm transposes.
void pack_rows_trans_avx512(int W, int64_t K, int64_t nv, const float* src, int64_t ld, float* dst);
void pack_rows_trans_avx512(int W, int64_t K, int64_t nv, const double* src, int64_t ld, double* dst);
// 24 independent zmm FMA chains for `iters` rounds; returns flops done.
double fma_peak_probe_avx512(int64_t iters, float* sink);
template <> GemmKernel<float> gemm_kernel_avx512<float>(int variant);
template <> GemmKernel<double> gemm_kernel_avx512<double>(int variant);
#endif

}  // namespace lamina
