// GEMM tuning state, all of it in one place: the blocking derived from the CPU's caches at run
// time, the micro-kernel choice per ISA, the measured thresholds that pick a path, and the
// test / tuning overrides. Nothing here is tuned for one box: sizes come from cpu_info(), and
// the thresholds are ratios measured on several CPUs (see the comment on each).
//
// Internal to the GEMM family (gemm*.cpp); the public face is gemm.h.
#pragma once
#include <cstdint>

#include "gemm.h"
#include "gemm_kernel.h"

namespace lamina {
namespace gemm_detail {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ---- measured thresholds (path choice, task sizes) -----------------------------------------
namespace tuning {
constexpr double kMinFlopsPerThread = 0.6e6;  // per thread: a fork/join costs ~1-2 us (measured f32 2 threads vs 1: 96x64x100 TN 1.2 MFLOP 87 -> 129 GF/s, 64x150x100 NN 82 -> 118)
constexpr double kMinFlopsPerTask = 1e6;      // tasks of >= ~10 us keep claiming overhead < 1%
constexpr int64_t kMinTaskCols = 128;         // an (mc x KC) A block repacked per task is amortized over >= 8 tiles
constexpr int64_t kSmallBBytes = 24 << 10;    // a task's K x nc slice of B this small: C is walked row strip by row strip
constexpr int64_t kShortK = 128;              // K up to this: the task grid splits rows first (see partition)
constexpr int64_t kRowsFirstMaxB = 112 << 10; // ... when the task's K x ncols slice of B is at most this
constexpr int64_t kMaxSkinny = 4;             // M or N up to this goes through the matrix-vector path
constexpr int64_t kMaxMInPlaceB = 512;        // up to this M, row-major B is read in place (packing would not pay off)
constexpr int64_t kShortTransK = 1024;        // a transposed A over K up to this is a Linear's dW (K = batch): see choose_kernel
constexpr int64_t kPackBRowBytes = 1024;    // pack_b_by_rows: columns of B one pack task copies per row
constexpr int64_t kCAlignMinN = 2048;         // c_align_lead: from this N (the shift costs a ragged tile column)
constexpr int64_t kPackAMinK = 512;           // from this K, a row-major A is packed (f32 1 thread: K = 784 +3-5%, K = 120 -4%)
// K-split: a small C over a long K (a conv weight gradient: Cout x Cin*kh*kw summed over
// batch x pixels) has too few C tiles for two threads; such K is cut into fixed chunks whose
// partial products are summed in a fixed order, so the result is the same for any thread
// count. These fix the rounding, so they are constants, never derived from the CPU.
constexpr int64_t kKSplitMinK = 8192;
constexpr int64_t kKSplitChunk = 4096;       // < kKSplitMinK: a chunk never splits again
constexpr double kKSplitMaxMN = 128 * 128;   // C elements: the partials stay in L1/L2
}  // namespace tuning

// ---- blocking from the caches ----------------------------------------------------------------
// MR x NR come from the micro-kernel (GemmKernel::mr / nr); the cache blocks from cpu_info().
struct CacheBlocking {
  int64_t kc;             // KC: K block; one KC x NR micro-panel of B stays in L1 while A streams
  int64_t b_panel_bytes;  // packed K x NC panel of B: a share of L3 (shared with other work)
  int64_t a_block_bytes;  // mc x KC block of A a task keeps in L2: caps MC
  int64_t b_block_bytes;  // KC x NC block of B reread from L2 by every row block (BLIS order)
  int64_t l1d, l2, l3;    // what they were derived from (bytes; 0 = not reported)
};
// Derived once from cpu_info() (the pure function below, given the sizes, is what tests call).
const CacheBlocking& cache_blocking();
CacheBlocking cache_blocking_for(int64_t l1d, int64_t l2, int64_t l3);
// NC: columns of the packed B panel for this K, a multiple of NR, within b_panel_bytes.
template <class T>
int64_t nc_for(int64_t K, int NR);
// NC for the BLIS-order path: columns of a kc x NC block of B within b_block_bytes.
template <class T>
int64_t nc_block_for(int64_t kc, int NR);
// The loop order. By default a task is an (mc x nc) block of C over the full K, with B packed
// as K x NC panels: the C block stays in cache across its K blocks. When that K x NC panel is
// far larger than L2 (b_block_bytes) and at least 4 row blocks reread it, each task would
// stream it from L3; then the K blocks go outside the tasks (BLIS order): per K block a
// KC x NC block of B is packed once and reread from L2 by every row block, and C streams
// instead (measured 1024^3 f32 1 thread, Xeon with 2 MiB L2, page-aligned operands: 64% ->
// 68% of the FMA peak; numpy's unaligned arrays: even, within the noise). packB: B is packed (a B read in place keeps the default order). Only for one
// thread (nt): it takes one parallel region per K block instead of one per call, and under a
// neighbour's load each region's join can wait a time slice for a descheduled worker.
template <class T>
bool use_k_blocks_outside(int64_t M, int64_t N, int64_t K, int64_t kc, int NR, int64_t mc,
                          bool packB, int nt);
// The AVX2 path at one thread keeps the full-K tasks (use_k_blocks_outside is false) when a
// task's mc x nc block of C and its mc x kc block of A fit in 3/4 of L2: the C block then stays
// in L2 across the K blocks, where the BLIS order reads and writes all of C from L3 once per K
// block. Its 16-column B micro-panel (KC x NR = 16 KiB f32) stays in L1 in either order.
// Measured f32 1024^3, 1 thread, Zen 4 with AVX-512 hidden (1 MiB L2: the 144 x 1024 C block
// is 576 KiB), thread CPU time, min of 15-20 alternating rounds: 77.6-78.1 -> 80.1-80.7
// GFLOP/s under load, 81.7 -> 82.9 on a quieter machine. Only measured there; a 512 KiB L2
// (Zen 3) keeps the BLIS order for 1024^3, AVX-512 tiles their measured choices.
template <class T>
bool c_block_stays_in_l2(int64_t mc, int64_t nc, int64_t kc);
// Zen 4 (cpu_is_zen4) at one thread: a row-major A is read in place, never packed, and the K
// blocks stay inside the tasks (use_k_blocks_outside is false). Its 32 KiB L1d cannot hold
// the 32 KiB KC x NR micro-panel of B that the BLIS order keeps there, so both orders stream B
// from L2 anyway, and packing A (a transposing copy, once per column block) is the cost left.
// Measured f32 1 thread, thread CPU time, min of interleaved rounds, vs the old choice (A
// packed, K blocks outside): 1024^3 86-87% -> 87-90% of the FMA peak, 1536^3 83-86 -> 90-92%,
// 2048^3 83-87 -> 86-89%; 512^3 89 -> 93%; 1000^3 88 -> 89%; f64 1024^3 81 -> 85%. Intel
// (2 MiB L2, 48 KiB L1d) keeps the measured choice below; two threads are unchanged (a
// transposed copy per task there was not measured on this CPU).
bool zen4_one_thread_a_in_place(int nt);
// Pack a row-major B several panels at a time, row by row (pack_b_panels), instead of one
// K x NR panel at a time walking rows ldb apart: on Zen 4 only, where it was measured (the
// packs of 1024 x 1024 f32 B, cold: 0.63 -> 0.43 ns a value, ~1% of a 1024^3 product).
bool pack_b_by_rows();
// Zen 4 with AVX-512, 2+ threads: a transposed B that one row block covers keeps C's rows in
// one block when the columns alone give 4 tasks per thread, so B stays packed near (see
// partition in gemm.cpp). Measured on Zen 4 only; other CPUs split rows as before.
bool near_b_one_row_block();
// Zen 4 at one thread, C's row stride a multiple of 4 KiB (1024 or 2048 f32 columns): the rows
// of a C tile fall into one L1 set, 8 lines in an 8-way set, and the tile's reads and writes
// at every K block evict each other and the A and B lines streaming through. Such a task sums
// its C block in a scratch buffer with rows one line longer (Problem::c_scratch in gemm.cpp).
// Measured f32 1 thread, thread CPU time, min of alternating runs vs without: 1024^3 NN
// +1.9%, 2048^3 +1.7%, 1024^3 TN +8.6%. Intel (12-way 48 KiB L1d) and two threads: not
// measured, so unchanged.
template <class T>
bool c_scratch_for_aliased_c(int64_t ldc, int nt);
// Intel with AVX-512: C's rows all start at the same offset into a 64-byte line (the row
// stride a multiple of 64 bytes) but not at its start -- NumPy's 16-byte aligned arrays --
// and N is wide. Returns how many leading columns (up to the first line boundary) gemm_impl
// computes as a narrower first column panel, so every other tile's rows start on a line: an
// unaligned 32-float tile row touches 3 lines instead of 2 at every K block, and its loads and
// stores split. 0: none. The shifted tiles read the same K blocks in the same order, so the bits
// do not change (for alpha = 1, beta 0 or 1: see gemm_impl). Measured on Intel only (see
// gemm.cpp), so gated.
template <class T>
int64_t c_align_lead(const T* C, int64_t ldc, int64_t N, int NR);
// The AMX float32 path (gemm_amx.cpp) for this shape, where amx_usable(). By shape only (never
// the thread count), so the bits do not depend on how many threads run.
bool use_amx(int64_t M, int64_t N, int64_t K);
// MC: the kernel's preferred rows per task (measured per tile), capped so the A block fits.
template <class T>
int64_t mc_for(const GemmKernel<T>& kern);

// ---- micro-kernel choice per ISA ------------------------------------------------------------
// The micro-kernels the active ISA offers, the general-purpose one first; returns how many.
template <class T>
int kernel_candidates(GemmKernel<T>* out);
// The kernel for this problem (or the one the override forces).
template <class T>
GemmKernel<T> choose_kernel(int64_t M, int64_t N, bool transA, int64_t K = 0);
// gemm_kernel_portable.cpp: plain loops the compiler vectorizes (SSE2 on x86-64, NEON on arm).
template <class T>
GemmKernel<T> portable_kernel();

// ---- overrides (tests and tuning) ------------------------------------------------------------
const GemmPathOverride& path_override();

}  // namespace gemm_detail
}  // namespace lamina
