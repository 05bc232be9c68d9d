// GEMM: C = alpha * op(A) @ op(B) + beta * C, row-major with leading dimensions (strides in
// elements between rows), op = identity or transpose per operand, with an optional fused
// epilogue (bias add + activation) applied while the C tile is still in cache.
#pragma once
#include <cstdint>

#include "cpu.h"

namespace lamina {

enum class Act : int { identity = 0, relu = 1, sigmoid = 2, tanh = 3 };
enum class BiasAxis : int { none = 0, per_row = 1, per_col = 2 };

// After C = alpha*op(A)op(B) + beta*C: C[i,j] = act(C[i,j] + bias[i or j]).
template <class T>
struct Epilogue {
  const T* bias = nullptr;            // length M (per_row) or N (per_col)
  BiasAxis bias_axis = BiasAxis::none;
  Act act = Act::identity;
};

// op(A) is M x K, op(B) is K x N, C is M x N.
// transA: A is stored K x M (lda >= M); else M x K (lda >= K). Likewise for B.
// beta == 0 overwrites C without reading it (NaN in C does not propagate), as BLAS defines.
// M, N, K may be 0. K == 0 gives C = beta*C (then the epilogue).
template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
          const Epilogue<T>* epilogue = nullptr);

// Strided batch: for b in [0, batch): C + b*strideC = op(A + b*strideA) @ op(B + b*strideB) ...
// (used by grouped convolution). The epilogue bias pointer is advanced by b*bias_stride.
template <class T>
void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                          const T* A, int64_t lda, int64_t strideA, const T* B, int64_t ldb,
                          int64_t strideB, T beta, T* C, int64_t ldc, int64_t strideC,
                          int64_t batch, const Epilogue<T>* epilogue = nullptr,
                          int64_t bias_stride = 0);

// The reference triple loop, used by tests and as the definition of the semantics.
template <class T>
void gemm_reference(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                    const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                    const Epilogue<T>* epilogue = nullptr);

// This core's sustained float32 FMA rate in GFLOP/s (FMA chains of the active ISA's widest
// vectors -- zmm on the AVX-512 path, ymm on AVX2 -- with no memory traffic; the best of short
// runs over about `seconds`), the yardstick for "% of FMA peak". 0 without AVX2. The second
// form probes the given ISA's vectors instead (at most what the CPU supports, else 0): the ymm
// rate beside the zmm one shows whether zmm FMAs are double-pumped.
double fma_peak_gflops(double seconds);
double fma_peak_gflops(double seconds, Isa isa);

// Whether float32 GEMM runs on AMX tiles on this CPU (AMX-BF16, granted by the OS, AVX-512
// the active ISA, LAMINA_GEMM_AMX not "0"): each value split exactly into three bfloat16
// pieces, all nine products summed in float32 -- float32 accuracy at more than the FMA rate.
// Operands holding inf, NaN or magnitudes below 2^-100 still take the FMA path.
bool gemm_amx_available();

// ---- testing / tuning hooks (not needed for normal use) ----
// Forces a GEMM path so tests cover every code path regardless of shape: pack_a = 1 always
// packs A, 0 lets the micro-kernel read A in place, -1 chooses by shape; kernel = i forces the
// active ISA's i-th micro-kernel (i < gemm_kernel_count(): on AVX2 0 = 6 x 16 / 6 x 8,
// 1 = 12 x 8 / 12 x 4; on AVX-512 0 = 12 x 32, 1 = AVX2 12 x 8, 2 = 8 x 32, 3 = 24 x 16,
// 4 = AVX2 6 x 16, halved widths for double), -1 chooses by shape;
// pack_b likewise (transposed B is always packed).
struct GemmPathOverride {
  int pack_a = -1;
  int kernel = -1;
  int pack_b = -1;  // 1 always packs B, 0 reads a row-major B's full panels in place
  int load_backoff = 1;  // 0 disables the thread team's fall-back to one thread after slow joins
  int skinny = 1;  // 0 sends M == 1 / N == 1 through the blocked path instead of the gemv path
  int kc = 0;      // > 0 overrides the K block (tuning)
  int mc = 0;      // > 0 overrides the M block (tuning)
  int ksplit = 1;  // 0 keeps a small C with a long K on the tiled path instead of splitting K
  int rows_first = -1;  // 1 / 0 forces splitting C into tasks by rows / by columns first (tuning)
  int k_blocks_outside = -1;  // 1 / 0 forces the BLIS loop order (K blocks outside the tasks) / the full-K tasks
  int pack_b_near = -1;  // 1 / 0 forces each task to pack B one micro-panel at a time right before use / not
  int c_scratch = -1;    // 1 / 0 forces a task to accumulate its C block in a scratch buffer over its K blocks / not
  int c_align = -1;      // 1 / 0 forces / forbids computing C's columns before its first 64-byte line boundary apart
  int amx = -1;          // 1 / 0 forces / forbids the AMX float32 path (where the CPU has it); -1 chooses by shape
};
void gemm_set_path_override(GemmPathOverride o);
GemmPathOverride gemm_get_path_override();
// Name of the micro-kernel gemm<T> uses for an M x N result (op(A) transposed or not) under
// the active ISA.
template <class T>
const char* gemm_kernel_name(int64_t M, int64_t N, bool transA = false);
// How many micro-kernels the active ISA offers (GemmPathOverride::kernel indexes them).
template <class T>
int gemm_kernel_count();
// The blocking gemm<T> chooses for an M x N x K product on this CPU (blocked path): the
// micro-kernel's tile and the cache blocks derived from the CPU's reported cache sizes.
struct GemmBlocking {
  const char* kernel = "";
  int mr = 0, nr = 0;        // register tile
  int64_t kc = 0, kc_max = 0;  // K block used for this K (balanced), and its cap from L1d
  int64_t mc = 0;            // rows of A per task block (L2)
  int64_t nc = 0;            // columns of the packed B panel (L3 share) or block (L2)
  int64_t b_panel_bytes = 0, a_block_bytes = 0;  // the L3 and L2 budgets behind NC and MC
  int64_t b_block_bytes = 0;  // the L2 budget behind NC when the K blocks are outside the tasks
  bool k_blocks_outside = false;  // BLIS loop order at 1 thread: a KC x NC block of B per K block (L2)
};
template <class T>
GemmBlocking gemm_blocking(int64_t M, int64_t N, int64_t K, bool transA = false);

}  // namespace lamina
