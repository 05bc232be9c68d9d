// GEMM packing (BLIS's pack_a / pack_b): copies a micro-panel of op(A) or op(B) into the
// interleaved layout the micro-kernel reads with constant offsets, zero-padding the lines past
// the matrix edge so the kernel's full tile is exact (contract in gemm_kernel.h).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu.h"
#include "gemm_internal.h"

namespace lamina {
namespace gemm_detail {

namespace {

// pack_panel: a micro-panel of W lines (NR columns of op(B), or MR rows of op(A)) over K,
// interleaved to dst[k*W + j] with lines j >= nv zero so the kernel's full tile is exact.
// Line j, element k is at src[k*ld + j] when the W values of one k are contiguous (a
// row-major B, a transposed A), else at src[j*ld + k] (a transposed B, a row-major A).
template <class T>
void pack_panel(bool lines_contiguous_in_k, int64_t K, int64_t nv, int W, const T* src,
                int64_t ld, T* dst) {
  if (!lines_contiguous_in_k) {
#if defined(LAMINA_X86)
    if (active_isa() >= Isa::avx2) {
      pack_rows_masked_avx2(W, K, nv, src, ld, dst);
      return;
    }
#endif
    for (int64_t k = 0; k < K; ++k) {
      const T* s = src + k * ld;
      T* d = dst + k * W;
      int64_t j = 0;
      for (; j < nv; ++j) d[j] = s[j];
      for (; j < W; ++j) d[j] = T(0);
    }
    return;
  }
#if defined(LAMINA_X86)
  // zmm transposes, one whole 64-byte line stored per k and 16 (8) lines: measured f32 NT,
  // 1 thread, vs the ymm transposes below: 64x784x300 312 -> 285-292 us, 256x300x784 955 ->
  // 925-935 us (the pack is then bound by reading B from L3, ~17% of the call).
  if (W % (64 / sizeof(T)) == 0 && active_isa() >= Isa::avx512 &&
      reinterpret_cast<uintptr_t>(dst) % 64 == 0) {
    pack_rows_trans_avx512(W, K, nv, src, ld, dst);
    return;
  }
#endif
#if defined(LAMINA_X86)
  // Register transposes instead of strided scalar stores. Measured: f32 NT 64 x 300 x 784,
  // 1 thread 82 -> 96 GF/s, 2 threads 132 -> 147; and for A (1024^3, packed because its
  // 4 KiB row stride aliases in L1) the scalar copy cost ~10% of the GEMM at 2 threads.
  if (nv == W && W % (32 / sizeof(T)) == 0 && active_isa() >= Isa::avx2) {
    pack_rows_trans_avx2(W, K, src, ld, dst, W);
    return;
  }
#endif
  // Read each line contiguously, in k chunks that stay in L1.
  constexpr int64_t KB = 64;
  for (int64_t k0 = 0; k0 < K; k0 += KB) {
    const int64_t k1 = std::min(K, k0 + KB);
    for (int64_t j = 0; j < W; ++j) {
      if (j < nv) {
        const T* s = src + j * ld;
        for (int64_t k = k0; k < k1; ++k) dst[k * W + j] = s[k];
      } else {
        for (int64_t k = k0; k < k1; ++k) dst[k * W + j] = T(0);
      }
    }
  }
}

}  // namespace

// NR columns [j0, j0+nv) of op(B) over the full K; B points at op(B)(0, j0).
template <class T>
void pack_b(bool transB, int64_t K, int64_t nv, int NR, const T* B, int64_t ldb, T* dst) {
  pack_panel(transB, K, nv, NR, B, ldb, dst);
}

namespace {
template <class T, int NR>
void pack_b_panels_nr(int64_t K, int64_t npanels, const T* B, int64_t ldb, T* dst) {
  for (int64_t k = 0; k < K; ++k) {
    const T* s = B + k * ldb;
    T* d = dst + k * NR;
    for (int64_t p = 0; p < npanels; ++p) std::memcpy(d + p * K * NR, s + p * NR, NR * sizeof(T));
  }
}
}  // namespace

template <class T>
void pack_b_panels(int64_t K, int64_t ncols, int NR, const T* B, int64_t ldb, T* dst) {
  const int64_t np = ncols / NR;
  switch (NR * int(sizeof(T))) {  // the row bytes of every tile's panel: a fixed-size copy
    case 128: return pack_b_panels_nr<T, 128 / sizeof(T)>(K, np, B, ldb, dst);
    case 64: return pack_b_panels_nr<T, 64 / sizeof(T)>(K, np, B, ldb, dst);
    case 32: return pack_b_panels_nr<T, 32 / sizeof(T)>(K, np, B, ldb, dst);
    default:
      for (int64_t p = 0; p < np; ++p) pack_b(false, K, NR, NR, B + p * NR, ldb, dst + p * K * NR);
  }
}

// Rows [0, mv) of an MR-row micro-panel of op(A), k in [0, kc); A points at op(A)(i0, pc).
template <class T>
void pack_a(bool transA, int64_t kc, int64_t mv, int MR, const T* A, int64_t lda, T* dst) {
  pack_panel(!transA, kc, mv, MR, A, lda, dst);
}

template void pack_b<float>(bool, int64_t, int64_t, int, const float*, int64_t, float*);
template void pack_b<double>(bool, int64_t, int64_t, int, const double*, int64_t, double*);
template void pack_b_panels<float>(int64_t, int64_t, int, const float*, int64_t, float*);
template void pack_b_panels<double>(int64_t, int64_t, int, const double*, int64_t, double*);
template void pack_a<float>(bool, int64_t, int64_t, int, const float*, int64_t, float*);
template void pack_a<double>(bool, int64_t, int64_t, int, const double*, int64_t, double*);

}  // namespace gemm_detail
}  // namespace lamina
