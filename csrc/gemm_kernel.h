// GEMM micro-kernels: the innermost piece of the BLIS five-loop GEMM in gemm.cpp.
//
// Micro-kernel contract (every ISA's kernel obeys it; gemm.cpp relies on nothing else):
//   C[0:MR, 0:NR] = alpha * sum_{k < kc} a(i, k) * Bp[k*b_rs + j]  +  beta * C[0:MR, 0:NR]
// - Tile shape: MR x NR, fixed per kernel (GemmKernel::mr / nr). The kernel always computes
//   the FULL tile; edges are handled by the caller (see below), never inside the kernel.
// - B: a packed kc x NR micro-panel, row k at Bp + k*NR (b_rs = NR), 64-byte aligned, columns
//   past the matrix edge zero-padded by pack_b; or, for small M where packing B would cost more
//   than it saves, NR full columns of a row-major B read in place (b_rs = ldb, any alignment).
// - A: element a(i, k) is read at A[i*a_rs + k*a_cs]. A packed micro-panel (pack_a, rows past
//   the edge zero-padded) has a_rs = 1, a_cs = MR; the `strided` entry point reads A in place
//   from the caller's matrix (a_rs = lda, a_cs = 1, or a_rs = 1, a_cs = lda when transposed),
//   which skips packing for skinny N where each A panel is used only once.
// - C: row-major tile at C with row stride ldc (column stride 1), full MR x NR valid memory.
// - beta == 0: C is written without being read (NaN/garbage in C does not propagate).
// - Edges: for a partial tile (fewer than MR rows or NR columns in the matrix) the caller runs
//   the kernel with beta = 0 into an MR x NR scratch tile and copies the valid part, so the
//   kernel never needs a scalar tail.
// - kc may be 0 (then C = beta * C, computed as 0*alpha + beta*C).
#pragma once
#include <cstdint>

namespace lamina {

template <class T>
using GemmUkernel = void (*)(int64_t kc, const T* A, int64_t a_rs, int64_t a_cs, const T* Bp,
                             int64_t b_rs, T* C, int64_t ldc, T alpha, T beta);

template <class T>
struct GemmKernel {
  int mr, nr;                 // tile shape
  GemmUkernel<T> packed;      // A packed (a_rs = 1, a_cs = mr): constant offsets, one pointer
  GemmUkernel<T> strided;     // A read in place with any (a_rs, a_cs)
  const char* name;
};

#if defined(LAMINA_X86)
// gemm_kernel_avx2.cpp (compiled with -mavx2 -mfma; call only when active_isa() == avx2).
// "main": 6 x 16 float / 6 x 8 double -- 12 ymm accumulators + 2 B vectors + 1 broadcast.
// "narrow": 12 x 8 float / 12 x 4 double -- one vector per row, for N <= 8 (4) where a
// 16-wide tile would waste lanes (im2col conv shapes with 6 or 16 output channels).
GemmKernel<float> gemm_kernel_avx2_f32_main();
GemmKernel<float> gemm_kernel_avx2_f32_narrow();
GemmKernel<double> gemm_kernel_avx2_f64_main();
GemmKernel<double> gemm_kernel_avx2_f64_narrow();
#endif

}  // namespace lamina
