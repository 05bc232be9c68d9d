// The pieces of the GEMM family that its translation units share (gemm.cpp: the five-loop
// driver and the epilogue; gemm_pack.cpp: packing; gemm_skinny.cpp: the matrix-vector and
// K-split paths; gemm_config.cpp: blocking and kernel choice). Not part of the public API.
#pragma once
#include <cstdint>

#include "gemm.h"
#include "gemm_config.h"

namespace lamina {
namespace gemm_detail {

// ---- packing (gemm_pack.cpp) ---------------------------------------------------------------
// NR columns [j0, j0+nv) of op(B) over the full K into a K x NR micro-panel (dst[k*NR + j]),
// columns j >= nv zero; B points at op(B)(0, j0).
template <class T>
void pack_b(bool transB, int64_t K, int64_t nv, int NR, const T* B, int64_t ldb, T* dst);
// Whole NR-column panels [0, ncols / NR) of a row-major B (ncols a multiple of NR) over the
// full K, panel p to dst + p*K*NR: the same layout as pack_b per panel, but each row of B is
// read once as one contiguous stretch of ncols values, k outermost, instead of each panel
// walking K rows ldb apart.
template <class T>
void pack_b_panels(int64_t K, int64_t ncols, int NR, const T* B, int64_t ldb, T* dst);
// Rows [0, mv) of an MR-row micro-panel of op(A), k in [0, kc), into dst[k*MR + i], rows
// i >= mv zero; A points at op(A)(i0, pc).
template <class T>
void pack_a(bool transA, int64_t kc, int64_t mv, int MR, const T* A, int64_t lda, T* dst);

// ---- epilogue (gemm.cpp) -------------------------------------------------------------------
// C tile (mv x nv at C, rows i0.., columns j0.. of the whole matrix) += bias, then act.
template <class T>
void epilogue_tile(const Epilogue<T>& ep, T* C, int64_t ldc, int64_t i0, int64_t j0, int64_t mv,
                   int64_t nv);

// ---- the paths (gemm.cpp routes; max_threads caps the team) ---------------------------------
template <class T>
void gemm_impl(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
               const Epilogue<T>* ep, int max_threads);
// gemm_skinny.cpp: M == 1 or N == 1, the big operand read once in place.
template <class T>
void gemm_skinny(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                 int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                 const Epilogue<T>* ep, int max_threads);
// gemm_skinny.cpp: small C over a long K, K cut into fixed chunks summed in a fixed order.
template <class T>
void gemm_ksplit(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                 int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                 const Epilogue<T>* ep, int max_threads);

// gemm_amx.cpp: float32 through AMX bfloat16 tiles, each value split exactly into three
// pieces (all nine products summed: float32 accuracy). amx_usable(): the CPU has AMX-BF16, the
// OS granted the tile state, the active ISA is AVX-512, and LAMINA_GEMM_AMX is not "0".
// gemm_amx_f32 computes C = op(A) op(B) (+ C when accumulate), then the epilogue; blocks of C
// whose operands hold a value the split cannot carry (inf, NaN, a nonzero magnitude below
// 2^-100) it computes on the FMA path. Returns false (writing nothing) only in a build
// without the AMX path.
bool amx_usable();
extern thread_local bool tl_amx_fallback;  // set while gemm_amx_f32 hands a block to the FMA path
bool gemm_amx_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A,
                  int64_t lda, const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc,
                  const Epilogue<float>* ep, int max_threads);

}  // namespace gemm_detail
}  // namespace lamina
