// BLIS-style GEMM: five loops (jc, pc, ic, jr, ir) around a register-blocked micro-kernel
// (contract in gemm_kernel.h), packed operands with zero-padded edges, a fused bias +
// activation epilogue on each C tile once its full K is accumulated, and OpenMP over many
// small (ic, jr) tasks: each thread owns a contiguous share and takes the others' unclaimed
// tasks when done, so a descheduled thread does not stall the other (TaskShares).
//
// Loop structure (per call):
//   jc: N in steps of NC       -> pack_b: K x NC panel of op(B), shared by all threads (L3)
//     task (parallel, shares + stealing): an (mc x nc) block of C (the ic step), over the full K
//       pc: K in steps of KC     -> beta for the first block, 1 after; epilogue on the last
//         pack_a: mc x KC block of op(A) into the thread's buffer (L2)
//           jr: NR-wide columns  -> B micro-panel KC x NR stays in L1 across the ir loop
//             ir: MR-tall rows   -> micro-kernel on one MR x NR tile in registers
// Measured on the 2-core Zen 3 box, packing is skipped where it costs more than it saves: a
// row-major A is read in place by the micro-kernel (strided broadcasts), and so is a
// row-major B for M <= 512; only their ragged last micro-panels are packed (zero-padded),
// and row strides that alias L1 sets force packing (see gemm_impl).
#include "gemm.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "activation.h"
#include "cpu.h"
#include "gemm_kernel.h"
#include "workspace.h"

namespace lamina {

template <class T>
static inline T apply_act(T v, Act act) {
  switch (act) {
    case Act::relu: return v < T(0) ? T(0) : v;  // NaN passes through, as in act_forward / PyTorch
    case Act::sigmoid: return T(1) / (T(1) + std::exp(-v));
    case Act::tanh: return std::tanh(v);
    default: return v;
  }
}

// ---- the reference: definition of the semantics, used by the tests ---------------------
template <class T>
void gemm_reference(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                    const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                    const Epilogue<T>* ep) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        T a = transA ? A[k * lda + i] : A[i * lda + k];
        T b = transB ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      T c = alpha * acc;
      if (beta != T(0)) c += beta * C[i * ldc + j];
      if (ep) {
        if (ep->bias_axis == BiasAxis::per_row) c += ep->bias[i];
        else if (ep->bias_axis == BiasAxis::per_col) c += ep->bias[j];
        c = apply_act(c, ep->act);
      }
      C[i * ldc + j] = c;
    }
}

namespace {

// ---- blocking constants (Zen 3: 32 KiB L1d, 512 KiB L2 per core, 32 MiB L3; this box's
// Zen 4: the same L1d and L3, 1 MiB L2) --------------------------------------------------
// MR x NR come from the micro-kernel (GemmKernel::mr/nr): 6 x 16 f32 / 6 x 8 f64 on AVX2,
// i.e. 12 ymm accumulators + 2 B vectors + 1 A broadcast = 15 of the 16 ymm registers; on
// AVX-512 8 x 32 / 12 x 32 / 24 x 16 f32 (half that width for f64) of the 32 zmm registers.
// MC, the rows of the A block a task keeps in L2, comes with the tile too (GemmKernel::mc).
template <class T> struct Blocking;
template <> struct Blocking<float> {
  static constexpr int64_t KC = 256;   // B micro-panel KC x NR x 4 B = 16 KiB: half of L1d, A's micro-panel beside it
  static constexpr int64_t NC = 4080;  // packed B panel K x NC, further capped at kBPanelBytes: stays in L3
};
template <> struct Blocking<double> {
  static constexpr int64_t KC = 256;   // B micro-panel KC x NR x 8 B = 16 KiB: half of L1d
  static constexpr int64_t NC = 2040;  // packed B panel K x NC, capped at kBPanelBytes: stays in L3
};
constexpr int64_t kBPanelBytes = int64_t(4) << 20;  // 4 MiB of the 32 MiB L3 for packed B (shared with other work)
constexpr double kMinFlopsPerThread = 0.6e6;  // per thread: a fork/join costs ~1-2 us (measured f32 2 threads vs 1: 96x64x100 TN 1.2 MFLOP 87 -> 129 GF/s, 64x150x100 NN 82 -> 118)
constexpr double kMinFlopsPerTask = 1e6;           // tasks of >= ~10 us keep claiming overhead < 1%
constexpr int64_t kMinTaskCols = 128;              // an (mc x KC) A block repacked per task is amortized over >= 8 tiles
constexpr int64_t kSmallBBytes = 24 << 10;  // a task's K x nc slice of B this small: C is walked row strip by row strip
constexpr int64_t kShortK = 128;  // K up to this: the task grid splits rows first (see partition)
constexpr int64_t kRowsFirstMaxB = 112 << 10;  // ... when the task's K x ncols slice of B is at most this
constexpr int64_t kMaxSkinny = 4;  // M or N up to this goes through the matrix-vector path
constexpr int64_t kMaxMInPlaceB = 512;  // up to this M, row-major B is read in place (packing would not pay off)
// K-split: a small C over a long K (a conv weight gradient: Cout x Cin*kh*kw summed over
// batch x pixels) has too few C tiles for two threads; such K is cut into fixed chunks whose
// partial products are summed in a fixed order, so the result is the same for any thread count.
constexpr int64_t kKSplitMinK = 8192;
constexpr int64_t kKSplitChunk = 4096;   // < kKSplitMinK: a chunk never splits again
constexpr double kKSplitMaxMN = 128 * 128;  // C elements: the partials stay in L1/L2

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

thread_local AlignedBuffer tl_pack_a;  // each thread's mc x KC block of A
thread_local AlignedBuffer tl_pack_b;  // the calling thread's K x NC panel of B, shared with its team

// ---- portable micro-kernels: plain loops the compiler vectorizes (SSE2 on x86-64) -------
template <class T, int MR, int NR, bool kPacked>
void portable_ukernel(int64_t kc, const T* A, int64_t a_rs, int64_t a_cs, const T* Bp,
                      int64_t b_rs, T* C, int64_t ldc, T alpha, T beta, int64_t mv, int64_t nv) {
  const int64_t rs = kPacked ? 1 : a_rs;
  const int64_t cs = kPacked ? MR : a_cs;
  T acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = T(0);
  for (int64_t k = 0; k < kc; ++k, A += cs, Bp += b_rs) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const T a = A[i * rs];
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j) acc[i][j] += a * Bp[j];
    }
  }
  for (int64_t i = 0; i < mv; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      for (int64_t j = 0; j < nv; ++j) c[j] = alpha * acc[i][j];
    else
      for (int64_t j = 0; j < nv; ++j) c[j] = alpha * acc[i][j] + beta * c[j];
  }
}

template <class T> GemmKernel<T> portable_kernel();
template <> GemmKernel<float> portable_kernel<float>() {
  return {6, 8, portable_ukernel<float, 6, 8, true>, portable_ukernel<float, 6, 8, false>,
          "portable 6x8 f32", 144, false};
}
template <> GemmKernel<double> portable_kernel<double>() {
  return {6, 4, portable_ukernel<double, 6, 4, true>, portable_ukernel<double, 6, 4, false>,
          "portable 6x4 f64", 72, false};
}

GemmPathOverride g_override;

// The micro-kernels the active ISA offers, the general-purpose one first; returns how many.
// _gemm_set_path_override(kernel=i) forces out[i] (tests run every one of them).
template <class T>
int kernel_candidates(GemmKernel<T>* out) {
#if defined(LAMINA_X86)
  const Isa isa = active_isa();
  if (isa == Isa::avx512) {
    out[1] = gemm_kernel_avx2_narrow<T>();
    out[2] = gemm_kernel_avx512<T>(1);
    out[4] = gemm_kernel_avx2_main<T>();
    out[0] = gemm_kernel_avx512<T>(0).with_tail(out[2]);  // 12-row tile: ragged rows on 8-row
    out[3] = gemm_kernel_avx512<T>(2).with_tail(out[4]);  // 24-row tile: ragged rows on 6-row
    return 5;
  }
  if (isa == Isa::avx2) {
    out[0] = gemm_kernel_avx2_main<T>();
    out[1] = gemm_kernel_avx2_narrow<T>();
    return 2;
  }
#endif
  out[0] = portable_kernel<T>();
  return 1;
}

// The kernel for this problem: the one that wastes the fewest lanes and rows at the edges,
// weighted by how close each tile runs to the FMA limit.
template <class T>
GemmKernel<T> choose_kernel(int64_t M, int64_t N, bool transA) {
  GemmKernel<T> k[8];
  const int n = kernel_candidates(k);
  if (g_override.kernel >= 0 && g_override.kernel < n) return k[g_override.kernel];
  if (n == 1) return k[0];
  if (n == 2) {
    // AVX2. Measured: f32 12x8 wins for N = 6 (0.75 vs 0.375 of the lanes) but loses at equal
    // or slightly better lane use (small K: more tiles, more stores); f64 12x4 lost on every
    // shape tried (N = 6, 25; K = 6 .. 50176), so f64 uses it only when forced.
    if (sizeof(T) == 8) return k[0];
    const double eff_main = double(N) / double(round_up(N, k[0].nr));
    const double eff_narrow = double(N) / double(round_up(N, k[1].nr));
    return eff_narrow > eff_main + 0.2 ? k[1] : k[0];
  }
  // AVX-512 (k: 12-row zmm, AVX2 narrow, 8-row zmm, 24 x 1 zmm, AVX2 6 x 16). Per-tile
  // weights from 2-thread runs of the network shapes against OpenBLAS on Zen 4: the 8 x 32
  // tile is the all-rounder (M = 64 batches fill it exactly); 24 x 16 wins for N <= 16 and
  // for a transposed A, whose 24 broadcasts per k come from 1.5 contiguous cache lines; the
  // AVX2 tiles only where a 16-lane vector would be mostly padding (N = 6).
  const double weight[5] = {0.97, 0.85, 1.0, transA ? 1.05 : 0.97, 0.85};
  int best = 2;
  double best_score = -1;
  for (int i = 0; i < n && i < 5; ++i) {
    const double score = weight[i] * double(N) / double(round_up(N, k[i].nr)) *
                         double(M) / double(round_up(M, k[i].mr));
    if (score > best_score) { best_score = score; best = i; }
  }
  return k[best];
}

// ---- packing ------------------------------------------------------------------------------
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

// NR columns [j0, j0+nv) of op(B) over the full K; B points at op(B)(0, j0).
template <class T>
void pack_b(bool transB, int64_t K, int64_t nv, int NR, const T* B, int64_t ldb, T* dst) {
  pack_panel(transB, K, nv, NR, B, ldb, dst);
}

// Rows [0, mv) of an MR-row micro-panel of op(A), k in [0, kc); A points at op(A)(i0, pc).
template <class T>
void pack_a(bool transA, int64_t kc, int64_t mv, int MR, const T* A, int64_t lda, T* dst) {
  pack_panel(!transA, kc, mv, MR, A, lda, dst);
}

// ---- epilogue -------------------------------------------------------------------------------
// C tile (mv x nv at C, rows i0.., columns j0.. of the whole matrix) += bias, then act.
template <class T>
void epilogue_tile(const Epilogue<T>& ep, T* C, int64_t ldc, int64_t i0, int64_t j0, int64_t mv,
                   int64_t nv) {
  const bool vector_act = active_isa() >= Isa::avx2;
  (void)vector_act;
  for (int64_t i = 0; i < mv; ++i) {
    T* c = C + i * ldc;
    if (ep.bias_axis == BiasAxis::per_row) {
      const T b = ep.bias[i0 + i];
      for (int64_t j = 0; j < nv; ++j) c[j] += b;
    } else if (ep.bias_axis == BiasAxis::per_col) {
      const T* b = ep.bias + j0;
      for (int64_t j = 0; j < nv; ++j) c[j] += b[j];
    }
    switch (ep.act) {
      case Act::relu:
        for (int64_t j = 0; j < nv; ++j) c[j] = c[j] < T(0) ? T(0) : c[j];  // NaN stays NaN
        break;
      case Act::sigmoid:
      case Act::tanh:
#if defined(LAMINA_X86)
        // The activation family's AVX2 exp (in place) instead of a scalar libm call per element,
        // which would cost as much as the GEMM itself for K of a few hundred.
        if (vector_act) {
          detail::act_forward_avx2(ep.act == Act::sigmoid ? Activation::sigmoid : Activation::tanh,
                                   0, nv, c, c, T(0), false);
          break;
        }
#endif
        if (ep.act == Act::sigmoid)
          for (int64_t j = 0; j < nv; ++j) c[j] = T(1) / (T(1) + std::exp(-c[j]));
        else
          for (int64_t j = 0; j < nv; ++j) c[j] = std::tanh(c[j]);
        break;
      default: break;
    }
  }
}

// ---- the driver ----------------------------------------------------------------------------
template <class T>
struct Problem {
  bool transA, transB;
  int64_t M, N, K;
  T alpha, beta;
  const T* A; int64_t lda;
  const T* B; int64_t ldb;
  T* C; int64_t ldc;
  const Epilogue<T>* ep;
  GemmKernel<T> kern;
  int64_t kc;     // K block (KC balanced so the last block is not a sliver)
  bool packA;     // pack A, or let the kernel read it in place
  bool packB;     // pack B, or let the kernel read full NR-wide columns in place (small M)

  const T* a_at(int64_t i, int64_t k) const { return transA ? A + k * lda + i : A + i * lda + k; }
  const T* b_at(int64_t k, int64_t j) const { return transB ? B + j * ldb + k : B + k * ldb + j; }
};

// Spin (politely) until another thread has finished packing this B panel.
inline void wait_ready(const std::atomic<int>& r) {
  for (int spins = 0; r.load(std::memory_order_acquire) == 0; ++spins)
    if (spins > 64) std::this_thread::yield();
}

// One task: C rows [i0, i0+mlen), columns [jc+j0, jc+j0+nlen), over the full K.
// Bp: packed panel of columns [jc, jc+ncols), NR-column panels each K x NR.
template <class T>
void run_task(const Problem<T>& p, const T* Bp, const std::atomic<int>* ready, int64_t jc,
              int64_t ncols, int64_t i0,
              int64_t mlen, int64_t j0, int64_t nlen) {
  const int MR = p.kern.mr, NR = p.kern.nr;
  const int64_t npan_a = ceil_div(mlen, MR);
  T* Ap = tl_pack_a.elems<T>(npan_a * MR * p.kc);
  const int64_t a_rs = p.transA ? 1 : p.lda, a_cs = p.transA ? p.lda : 1;

  for (int64_t pc = 0; pc < p.K; pc += p.kc) {
    const int64_t kcur = std::min(p.kc, p.K - pc);
    const T beta = pc == 0 ? p.beta : T(1);
    const bool last = pc + kcur == p.K;
    if (p.packA) {
      for (int64_t ir = 0; ir < mlen; ir += MR)
        pack_a(p.transA, kcur, std::min<int64_t>(MR, mlen - ir), MR, p.a_at(i0 + ir, pc), p.lda,
               Ap + (ir / MR) * kcur * MR);
    } else if (mlen % MR) {
      // Strided A: only the ragged last micro-panel is packed (zero rows keep the tile exact).
      const int64_t ir = mlen - mlen % MR;
      pack_a(p.transA, kcur, mlen - ir, MR, p.a_at(i0 + ir, pc), p.lda, Ap + (ir / MR) * kcur * MR);
    }
    auto tile = [&](int64_t jr, int64_t ir) {
      const int64_t nv = std::min<int64_t>(NR, ncols - jr);
      const bool b_in_place = !p.packB && nv == NR;
      const T* b = b_in_place ? p.b_at(pc, jc + jr) : Bp + (jr / NR) * p.K * NR + pc * NR;
      const int64_t b_rs = b_in_place ? p.ldb : NR;
      const int64_t mv = std::min<int64_t>(MR, mlen - ir);
      T* c = p.C + (i0 + ir) * p.ldc + jc + jr;
      const bool packed = p.packA || mv < MR;
      const T* a = packed ? Ap + (ir / MR) * kcur * MR : p.a_at(i0 + ir, pc);
      const int TMR = p.kern.tail_mr;
      if (mv < MR && p.kern.tail && round_up(mv, TMR) < MR) {
        // Ragged last panel: the smaller tile in TMR-row steps over the zero-padded pack.
        for (int64_t r = 0; r < mv; r += TMR)
          p.kern.tail(kcur, a + r, 1, MR, b, b_rs, c + r * p.ldc, p.ldc, p.alpha, beta,
                      std::min<int64_t>(TMR, mv - r), nv);
      } else {
        const bool half = p.kern.half_packed && nv <= NR / 2;  // ragged last column panel
        GemmUkernel<T> uk = packed ? (half ? p.kern.half_packed : p.kern.packed)
                                   : (half ? p.kern.half_strided : p.kern.strided);
        uk(kcur, a, a_rs, a_cs, b, b_rs, c, p.ldc, p.alpha, beta, mv, nv);
      }
      if (last && p.ep) epilogue_tile(*p.ep, c, p.ldc, i0 + ir, jc + jr, mv, nv);
    };
    if (pc == 0)
      for (int64_t jr = j0; jr < j0 + nlen; jr += NR) wait_ready(ready[jr / NR]);
    if (kcur * nlen * int64_t(sizeof(T)) <= kSmallBBytes) {
      // Short K: the task's whole B slice sits in L1 anyway, and the cost is writing C, so
      // each MR-row strip of C is written left to right in one pass instead of in NR-wide
      // column stripes (measured 6400x16x150 NT, a conv's dX, 2 threads, vs OpenBLAS: f32
      // 0.83 -> 1.10x, f64 0.73 -> 1.18x).
      for (int64_t ir = 0; ir < mlen; ir += MR)
        for (int64_t jr = j0; jr < j0 + nlen; jr += NR) tile(jr, ir);
    } else {
      // BLIS order: one KC x NR micro-panel of B stays in L1 while the A micro-panels stream.
      for (int64_t jr = j0; jr < j0 + nlen; jr += NR)
        for (int64_t ir = 0; ir < mlen; ir += MR) tile(jr, ir);
    }
  }
}

// Load awareness. OpenMP's join waits for every thread to arrive, so when another process
// holds a core, a worker that is only scheduled milliseconds later stalls the whole call even
// though the master already did all the work. A slow join: the master waited at the join
// longer than it worked, and > 200 us (a scheduling delay, not a futex wake-up). After a
// second slow join within kSlowJoinWindow of the previous one, GEMMs run single-threaded for
// a while, the window doubling on each repeat (20 ms .. 80 ms: longer windows kept a noisy
// but unloaded VM on one thread for most of a benchmark) and resetting once a parallel call
// goes well. One slow join alone is not load: this VM's host stalls a vCPU now
// and then, and backing off on each of those measured a 2-thread 64x784x300 GEMM at 1-thread
// speed for whole benchmark runs. A busy neighbour on one core makes slow joins come every
// few milliseconds (not necessarily back to back: the worker runs in time slices).
// A call that starts cold -- more than kWarmGap after the previous parallel region, so the
// workers have stopped spinning (GOMP_SPINCOUNT ~ 1 ms here) and sleep -- pays the wake-up of
// a halted vCPU, measured 0.2-2 ms on this VM when quiet; it counts as slow only past kColdWakeWait.
constexpr double kWarmGap = 2e-3;
constexpr double kColdWakeWait = 5e-3;
constexpr double kSlowJoinWindow = 0.1;
std::atomic<double> g_single_until{0.0};
std::atomic<int> g_backoff_level{0};
std::atomic<double> g_last_slow_join{-1e9};
std::atomic<double> g_last_join{0.0};  // when the last parallel GEMM region ended
std::atomic<int64_t> g_stat_regions{0}, g_stat_slow{0}, g_stat_backoffs{0}, g_stat_single{0};
std::atomic<int64_t> g_stat_work_ns{0}, g_stat_wait_ns{0};
std::atomic<int64_t> g_stat_worker_starts{0}, g_stat_worker_late_ns{0}, g_stat_worker_late20{0};
void note_join_wait(double start_s, double work_s, double wait_s) {
  const double end_s = start_s + work_s + wait_s;
  const bool cold = start_s - g_last_join.exchange(end_s, std::memory_order_relaxed) > kWarmGap;
  g_stat_regions.fetch_add(1, std::memory_order_relaxed);
  g_stat_work_ns.fetch_add(int64_t(work_s * 1e9), std::memory_order_relaxed);
  g_stat_wait_ns.fetch_add(int64_t(wait_s * 1e9), std::memory_order_relaxed);
  if (wait_s > (cold ? kColdWakeWait : 200e-6) && wait_s > work_s) {
    g_stat_slow.fetch_add(1, std::memory_order_relaxed);
    if (end_s - g_last_slow_join.exchange(end_s, std::memory_order_relaxed) > kSlowJoinWindow)
      return;  // the first in a while: a stall, not (yet) load
    const int level = std::min(g_backoff_level.load(std::memory_order_relaxed) + 1, 3);
    g_backoff_level.store(level, std::memory_order_relaxed);
    g_stat_backoffs.fetch_add(1, std::memory_order_relaxed);
    g_single_until.store(end_s + 0.01 * double(1 << level), std::memory_order_relaxed);
  } else if (wait_s < 0.25 * work_s) {
    g_backoff_level.store(0, std::memory_order_relaxed);
  }
}

// Threads for `flops` of work: at most max_threads, and 1 inside another kernel's parallel
// loop or while the load backoff holds.
int gemm_threads(double flops, int max_threads) {
  int nt = std::min(threads_for(flops, kMinFlopsPerThread), max_threads);
  if (omp_in_parallel()) nt = 1;
  if (nt > 1 && g_override.load_backoff &&
      omp_get_wtime() < g_single_until.load(std::memory_order_relaxed)) {
    nt = 1;
    g_stat_single.fetch_add(1, std::memory_order_relaxed);
  }
  return nt;
}

// worker(thread index) on each of nt threads (inline, as thread 0, for nt <= 1); the workers
// claim their own work, and the join is timed for the load backoff.
template <class F>
void run_team(int nt, F&& worker) {
  if (nt <= 1) {
    worker(0);
    return;
  }
  const double t0 = omp_get_wtime();
  double t_master_done = t0;
#pragma omp parallel num_threads(nt)
  {
    if (omp_get_thread_num() != 0) {  // how late the workers join the region (diagnostics)
      const int64_t late_ns = int64_t((omp_get_wtime() - t0) * 1e9);
      g_stat_worker_late_ns.fetch_add(late_ns, std::memory_order_relaxed);
      g_stat_worker_starts.fetch_add(1, std::memory_order_relaxed);
      if (late_ns > 20000) g_stat_worker_late20.fetch_add(1, std::memory_order_relaxed);
    }
    worker(omp_get_thread_num());
    if (omp_get_thread_num() == 0) t_master_done = omp_get_wtime();
  }
  note_join_wait(t0, t_master_done - t0, omp_get_wtime() - t_master_done);
}

// Tasks [0, n) dealt out in contiguous shares, one per thread: thread t gets the same rows of
// C (and the same B panels to pack) call after call, as OpenBLAS's static split does, so a
// loop that repeats a product with the same buffers finds its share of A and C in that core's
// cache, instead of in the other core's as one shared counter's claim order would often have
// it. A thread that has finished its share claims what the others have not started yet, so
// a descheduled thread's share is still done by the rest (the dynamic scheduling's point).
class TaskShares {
 public:
  TaskShares(int64_t n, int nt) : nt_(std::max(nt, 1)), share_(new Share[size_t(nt_)]) {
    for (int t = 0; t < nt_; ++t) {
      share_[t].next.store(n * t / nt_, std::memory_order_relaxed);
      share_[t].end = n * (t + 1) / nt_;
    }
  }
  // The next task for thread `me` (its own share first), or -1 when every task is claimed.
  int64_t claim(int me) {
    for (int d = 0; d < nt_; ++d) {
      Share& sh = share_[(me + d) % nt_];
      if (sh.next.load(std::memory_order_relaxed) >= sh.end) continue;
      const int64_t t = sh.next.fetch_add(1, std::memory_order_relaxed);
      if (t < sh.end) return t;
    }
    return -1;
  }

 private:
  struct alignas(64) Share {  // one cache line each: the owners do not contend
    std::atomic<int64_t> next;
    int64_t end;
  };
  int nt_;
  std::unique_ptr<Share[]> share_;
};

// Task tile (mc x nc): at least `target` tasks when the work allows, A-repacking amortized.
struct TaskGrid {
  int64_t mc, nc, tm, tn;
};
TaskGrid partition(int64_t M, int64_t ncols, int64_t K, int MR, int NR, int64_t MC, int nt,
                   bool packA, bool transA, int64_t elem_bytes) {
  int64_t mc = std::min(MC, round_up(M, MR));
  int64_t nc = round_up(ncols, NR);
  if (nt > 1) {
    const double flops = 2.0 * double(M) * double(ncols) * double(K);
    const int64_t target = std::clamp<int64_t>(int64_t(flops / kMinFlopsPerTask), 4 * nt, 16 * nt);
    // Packed A is repacked by every task of a row block, so columns are split only down to
    // kMinTaskCols; A read in place costs nothing to share, so columns go first, down to 32
    // (each task then streams its own slice of B once, every B micro-panel meets all of the
    // block's rows while in L1, and the whole A block stays in L2).
    const int64_t min_cols = packA ? kMinTaskCols : std::max<int64_t>(32, NR);
    // Short K (C's writes cost as much as the math): tasks that span every column, rows
    // split first, when the task's B slice stays in L2 beside everything else or A is
    // transposed. Whole C rows are then written as long streams, and the packed B is read by
    // every task of a thread from its L2. Measured, 2 threads vs columns first: f32 784x64x300
    // NN +16%, TN +12%, NT +14%; 400x64x120 TN +44%; f64 1024x64x512 TN +19%; but f32
    // 1024x64x512 NN -7% and f64 784x64x300 NN -14% (B 128 / 150 KiB), hence the byte limit.
    const bool rows_first = g_override.rows_first >= 0
                                ? g_override.rows_first != 0
                                : K <= kShortK && (transA || K * ncols * elem_bytes <= kRowsFirstMaxB);
    while (ceil_div(M, mc) * ceil_div(ncols, nc) < target) {
      if (rows_first && mc >= 2 * MR) mc = round_up(ceil_div(mc, 2), MR);
      else if (nc >= 2 * min_cols) nc = round_up(ceil_div(nc, 2), NR);
      else if (mc >= 2 * MR) mc = round_up(ceil_div(mc, 2), MR);
      else if (nc >= 2 * NR) nc = round_up(ceil_div(nc, 2), NR);
      else break;
    }
    // Skinny N with A read in place (im2col shapes like 50176 x 25 x 6): MC-row tasks would be
    // ~1 us each and the shared task counter would bounce between cores; use ~8 per thread.
    const int64_t want = std::max<int64_t>(target, 8 * nt);
    if (!packA && ceil_div(ncols, nc) == 1 && ceil_div(M, mc) > want)
      mc = round_up(ceil_div(M, want), MR);
  }
  return {mc, nc, ceil_div(M, mc), ceil_div(ncols, nc)};
}

template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc, const Epilogue<T>* ep) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      for (int64_t j = 0; j < N; ++j) c[j] = T(0);
    else if (beta != T(1))
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
  if (ep) epilogue_tile(*ep, C, ldc, 0, 0, M, N);
}

template <class T>
void gemm_impl(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
               const Epilogue<T>* ep, int max_threads);

// ---- K-split path: small C, long K ---------------------------------------------------------
thread_local AlignedBuffer tl_ksplit;  // the calling thread's partial products, chunk after chunk

template <class T>
void gemm_ksplit(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                 int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                 const Epilogue<T>* ep, int max_threads) {
  const int64_t nchunks = ceil_div(K, kKSplitChunk), mn = M * N;
  T* part = tl_ksplit.elems<T>(nchunks * mn);
  auto chunk = [&](int64_t c) {  // part[c] = alpha * op(A)[:, k0:k1] @ op(B)[k0:k1, :]
    const int64_t k0 = c * kKSplitChunk, kl = std::min(kKSplitChunk, K - k0);
    gemm_impl(transA, transB, M, N, kl, alpha, transA ? A + k0 * lda : A + k0, lda,
              transB ? B + k0 : B + k0 * ldb, ldb, T(0), part + c * mn, N,
              static_cast<const Epilogue<T>*>(nullptr), 1);
  };
  const int nt = static_cast<int>(
      std::min<int64_t>(gemm_threads(2.0 * double(mn) * double(K), max_threads), nchunks));
  std::atomic<int64_t> next{0};
  run_team(nt, [&](int) {
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < nchunks;) chunk(c);
  });
  // Chunks summed in order 0, 1, 2, ...: the same bits whichever thread computed which chunk.
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    const T* p0 = part + i * N;
    for (int64_t j = 0; j < N; ++j) {
      T acc = p0[j];
      for (int64_t ch = 1; ch < nchunks; ++ch) acc += p0[ch * mn + j];
      c[j] = beta == T(0) ? acc : acc + beta * c[j];  // beta == 0: C is not read
    }
  }
  if (ep) epilogue_tile(*ep, C, ldc, 0, 0, M, N);
}

// ---- skinny path: M == 1 or N == 1 (matrix-vector) --------------------------------------
// The blocked path would pack the whole big operand to use each element once; here it is
// read once, in place. Canonical form: out[o] (o < n, at C + o*incy) = alpha * sum_k
// x[k*incx] * mat(o, k) + beta * out[o], then the epilogue, where mat(o, k) is
// Mat[o*ldm + k] (dot: contiguous dot products) or Mat[k*ldm + o] (axpy: a sweep over rows).
thread_local AlignedBuffer tl_skinny;  // raw sums (n) and, for a strided x in dot form, x (K)

template <class T>
void portable_gemv_dot(int64_t n, int64_t K, const T* x, const T* Mat, int64_t ldm, T* y) {
  for (int64_t j = 0; j < n; ++j) {
    const T* r = Mat + j * ldm;
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four chains: the adds are not latency-bound
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      s0 += x[k] * r[k]; s1 += x[k + 1] * r[k + 1];
      s2 += x[k + 2] * r[k + 2]; s3 += x[k + 3] * r[k + 3];
    }
    for (; k < K; ++k) s0 += x[k] * r[k];
    y[j] = (s0 + s1) + (s2 + s3);
  }
}

template <class T>
void portable_gemv_axpy(int64_t n, int64_t K, const T* x, int64_t incx, const T* Mat,
                        int64_t ldm, T* y) {
  for (int64_t j = 0; j < n; ++j) y[j] = T(0);
  for (int64_t k = 0; k < K; ++k) {
    const T xk = x[k * incx];
    const T* r = Mat + k * ldm;
    for (int64_t j = 0; j < n; ++j) y[j] += xk * r[j];  // vectorized by the compiler
  }
}

template <class T>
void gemm_skinny(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                 int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                 const Epilogue<T>* ep, int max_threads) {
  int64_t n, incx, incy, ldm;
  const T *x, *Mat;
  bool dot, bias_along_out;
  const BiasAxis axis = ep ? ep->bias_axis : BiasAxis::none;
  if (M == 1) {  // y (1 x N) = x (1 x K) @ op(B)
    n = N; incy = 1; x = A; incx = transA ? lda : 1; Mat = B; ldm = ldb; dot = transB;
    bias_along_out = axis == BiasAxis::per_col;
  } else {       // y (M x 1) = op(A) @ b (K x 1)
    n = M; incy = ldc; x = B; incx = transB ? 1 : ldb; Mat = A; ldm = lda; dot = !transA;
    bias_along_out = axis == BiasAxis::per_row;
  }
  const bool gather_x = dot && incx != 1;  // dot kernels read x as one contiguous vector
  T* t = tl_skinny.elems<T>(n + (gather_x ? K : 0));
  if (gather_x) {
    T* xc = t + n;
    for (int64_t k = 0; k < K; ++k) xc[k] = x[k * incx];
    x = xc; incx = 1;
  }
#if defined(LAMINA_X86)
  const bool avx2 = active_isa() >= Isa::avx2;
#endif
  const Epilogue<T> act_only{nullptr, BiasAxis::none, ep ? ep->act : Act::identity};
  auto body = [&](int64_t o0, int64_t o1) {
    const int64_t len = o1 - o0;
#if defined(LAMINA_X86)
    if (avx2) {
      if (dot) gemv_dot_avx2(len, K, x, Mat + o0 * ldm, ldm, t + o0);
      else gemv_axpy_avx2(len, K, x, incx, Mat + o0, ldm, t + o0);
    } else
#endif
    {
      if (dot) portable_gemv_dot(len, K, x, Mat + o0 * ldm, ldm, t + o0);
      else portable_gemv_axpy(len, K, x, incx, Mat + o0, ldm, t + o0);
    }
    // Same order of operations as the blocked path: alpha*acc + beta*c, + bias, act.
    for (int64_t o = o0; o < o1; ++o) {
      T c = alpha * t[o];
      if (beta != T(0)) c += beta * C[o * incy];  // beta == 0: C is not read
      if (axis != BiasAxis::none) c += bias_along_out ? ep->bias[o] : ep->bias[0];
      t[o] = c;
    }
    if (act_only.act != Act::identity) epilogue_tile(act_only, t + o0, 0, 0, 0, 1, len);
    for (int64_t o = o0; o < o1; ++o) C[o * incy] = t[o];
  };

  const int nt = gemm_threads(2.0 * double(n) * double(K), max_threads);
  // Chunks of >= 64 outputs (whole cache lines of C and, in axpy form, of Mat's rows), about
  // four per thread, claimed dynamically so a descheduled thread does not stall the other.
  const int64_t chunk = std::max<int64_t>(64, round_up(ceil_div(n, 4 * int64_t(nt)), 64));
  const int64_t nchunks = ceil_div(n, chunk);
  if (nt <= 1 || nchunks <= 1) {
    body(0, n);
    return;
  }
  const int nt_use = static_cast<int>(std::min<int64_t>(nt, nchunks));
#pragma omp parallel for num_threads(nt_use) schedule(dynamic, 1)
  for (int64_t c = 0; c < nchunks; ++c) body(c * chunk, std::min(n, (c + 1) * chunk));
}

template <class T>
void gemm_impl(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
               const Epilogue<T>* ep, int max_threads) {
  if (M <= 0 || N <= 0) return;
  if (ep && ep->bias_axis == BiasAxis::none && ep->act == Act::identity) ep = nullptr;
  // As BLAS: with K == 0 or alpha == 0, A and B are not read.
  if (K <= 0 || alpha == T(0)) { scale_c(M, N, beta, C, ldc, ep); return; }
  // M (or N) <= 4: one matrix-vector pass per row (column) of C, reading the big operand M
  // (N) times in place. Measured (K = 784, other side 300): always faster for 1 and 2 and for
  // M <= 4 with transposed B (which the blocked path packs whole: f32 M = 4 222 -> 52 us);
  // for M or N = 3, 4 otherwise the blocked path reads the big operand in place once and wins
  // (f32 M = 4 row-major B: 35 vs 51 us; f64 N = 4: 75 vs 109 us). A transposed B beyond
  // the L3 budget is read from DRAM either way: 3-4 passes vs pack's 3, so the blocked path.
  const int64_t m_small = std::min(M, N);
  const bool b_cached = double(K) * double(N) * double(sizeof(T)) <= 2.0 * double(kBPanelBytes);
  if (g_override.skinny && m_small <= kMaxSkinny &&
      (m_small <= 2 || (M <= N && transB && b_cached))) {
    Epilogue<T> e;
    if (ep) e = *ep;
    if (M <= N) {
      for (int64_t i = 0; i < M; ++i) {
        if (ep && ep->bias_axis == BiasAxis::per_row) e.bias = ep->bias + i;
        gemm_skinny(transA, transB, 1, N, K, alpha, transA ? A + i : A + i * lda, lda, B, ldb,
                    beta, C + i * ldc, ldc, ep ? &e : nullptr, max_threads);
      }
    } else {
      for (int64_t j = 0; j < N; ++j) {
        if (ep && ep->bias_axis == BiasAxis::per_col) e.bias = ep->bias + j;
        gemm_skinny(transA, transB, M, 1, K, alpha, A, lda, transB ? B + j * ldb : B + j, ldb,
                    beta, C + j, ldc, ep ? &e : nullptr, max_threads);
      }
    }
    return;
  }

  if (g_override.ksplit && K >= kKSplitMinK && double(M) * double(N) <= kKSplitMaxMN) {
    gemm_ksplit(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, max_threads);
    return;
  }

  Problem<T> p{transA, transB, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc, ep,
               choose_kernel<T>(M, N, transA), 0, true, true};
  const int MR = p.kern.mr, NR = p.kern.nr;
  const int64_t kc_max = g_override.kc > 0 ? g_override.kc : Blocking<T>::KC;
  p.kc = ceil_div(K, ceil_div(K, kc_max));
  // Row-major A is read in place: its MR rows are MR contiguous streams the kernel broadcasts
  // from, and skipping the (transposing) pack measured faster on every shape here, unless the
  // row stride is a multiple of 2 KiB (the MR rows crowd into one or two L1 sets). Transposed A (a column of
  // op(A) per cache line, kc lines per micro-panel) is packed once K and the B reuse are big
  // for tiles that do not read it in place (GemmKernel::trans_a_in_place); the others pack
  // it, like a row-major A, only when the stride aliases.
  const bool aliased = (lda * int64_t(sizeof(T))) % 2048 == 0;
  p.packA = g_override.pack_a >= 0 ? g_override.pack_a != 0
            : (transA && !p.kern.trans_a_in_place) ? (K >= 128 && N > 2 * NR)
                                                   : (aliased && N > 4 * NR && M > MR);

  // Packing B costs a visible share of the math unless M is large (each B micro-panel then
  // meets many A micro-panels); a row-major B is read in place instead, unless its row
  // stride is a multiple of 4 cache lines (the kc rows then crowd into few L1 sets).
  const bool b_aliased = (ldb * int64_t(sizeof(T))) % 256 == 0;
  p.packB = transB || (g_override.pack_b >= 0 ? g_override.pack_b != 0
                                              : b_aliased || M > kMaxMInPlaceB);
  const int64_t nc_budget = std::max<int64_t>(NR, kBPanelBytes / (K * int64_t(sizeof(T))) / NR * NR);
  const int64_t NC = std::min<int64_t>(Blocking<T>::NC, nc_budget);
  const int64_t ncols_max = std::min<int64_t>(N, NC);
  T* Bp = tl_pack_b.elems<T>(round_up(ncols_max, NR) * K);

  const int nt = gemm_threads(2.0 * double(M) * double(N) * double(K), max_threads);
  const int64_t mc_max = g_override.mc > 0 ? g_override.mc : p.kern.mc;

  // One parallel region per jc step with a single shared task list: first the B-panel packs,
  // then the C blocks. Threads claim tasks with an atomic counter, so there is no barrier
  // between packing and computing (a compute task waits only for the panels it reads); a
  // thread that starts late or is descheduled simply claims fewer tasks.
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t ncols = std::min(NC, N - jc);
    const int64_t npanels = ceil_div(ncols, NR);
    const TaskGrid g = partition(M, ncols, K, MR, NR, mc_max, nt, p.packA, transA, sizeof(T));
    const int64_t ntasks = npanels + g.tm * g.tn;
    std::vector<std::atomic<int>> ready(static_cast<size_t>(npanels));
    for (auto& r : ready) r.store(0, std::memory_order_relaxed);
    const int team = static_cast<int>(std::min<int64_t>(nt, ntasks));
    TaskShares packs(npanels, team), blocks(g.tm * g.tn, team);
    auto worker = [&](int me) {
      // Every B panel is claimed before any C block, so a block waits only on packs in flight.
      for (int64_t t; (t = packs.claim(me)) >= 0;) {
        if (p.packB || ncols - t * NR < NR)  // in-place B still packs its ragged last panel
          pack_b(transB, K, std::min<int64_t>(NR, ncols - t * NR), NR, p.b_at(0, jc + t * NR),
                 ldb, Bp + t * K * NR);
        ready[size_t(t)].store(1, std::memory_order_release);
      }
      for (int64_t u; (u = blocks.claim(me)) >= 0;) {
        const int64_t ti = u / g.tn, tj = u % g.tn;
        const int64_t i0 = ti * g.mc, j0 = tj * g.nc;
        run_task(p, Bp, ready.data(), jc, ncols, i0, std::min(g.mc, M - i0), j0,
                 std::min(g.nc, ncols - j0));
      }
    };
    // (the join ends the step: no thread repacks B for the next jc while another reads it)
    run_team(team, worker);
  }
}

}  // namespace

double fma_peak_gflops(double seconds) {
#if defined(LAMINA_X86)
  if (!cpu_supports_avx2_fma()) return 0.0;
  float sink = 0;
  double best = 0;
  const double t_end = omp_get_wtime() + seconds;
  do {  // ~1 ms runs: the fastest is the one no other process interrupted
    const double t0 = omp_get_wtime();
    const double flops = fma_peak_probe_avx2(100000, &sink);
    best = std::max(best, flops / (omp_get_wtime() - t0));
  } while (omp_get_wtime() < t_end);
  return best * 1e-9 + 0.0 * double(sink);
#else
  (void)seconds;
  return 0.0;
#endif
}

void gemm_set_path_override(GemmPathOverride o) { g_override = o; }
GemmPathOverride gemm_get_path_override() { return g_override; }

GemmLoadStats gemm_load_stats(bool reset) {
  auto take = [reset](std::atomic<int64_t>& a) {
    return reset ? a.exchange(0, std::memory_order_relaxed) : a.load(std::memory_order_relaxed);
  };
  GemmLoadStats s;
  s.parallel_regions = take(g_stat_regions);
  s.slow_joins = take(g_stat_slow);
  s.backoffs = take(g_stat_backoffs);
  s.backoff_single_calls = take(g_stat_single);
  s.worker_starts = take(g_stat_worker_starts);
  s.master_work_ns = take(g_stat_work_ns);
  s.join_wait_ns = take(g_stat_wait_ns);
  s.worker_late_ns = take(g_stat_worker_late_ns);
  s.worker_late_over_20us = take(g_stat_worker_late20);
  return s;
}

template <class T>
const char* gemm_kernel_name(int64_t M, int64_t N, bool transA) {
  return choose_kernel<T>(M, N, transA).name;
}

template <class T>
int gemm_kernel_count() {
  GemmKernel<T> k[8];
  return kernel_candidates(k);
}

template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const Epilogue<T>* ep) {
  gemm_impl(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, 1 << 20);
}

template <class T>
void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                          const T* A, int64_t lda, int64_t strideA, const T* B, int64_t ldb,
                          int64_t strideB, T beta, T* C, int64_t ldc, int64_t strideC,
                          int64_t batch, const Epilogue<T>* ep, int64_t bias_stride) {
  if (batch <= 0) return;
  auto one = [&](int64_t b, int max_threads) {
    Epilogue<T> e;
    if (ep) { e = *ep; if (e.bias) e.bias += b * bias_stride; }
    gemm_impl(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
              C + b * strideC, ldc, ep ? &e : nullptr, max_threads);
  };
  const double flops = 2.0 * double(M) * double(N) * double(K);
  // Small GEMMs: one thread each, the batch spread over threads; big ones: threads inside each.
  const int nt_each = threads_for(flops, kMinFlopsPerThread);
  const int nt_batch = std::min<int64_t>(batch, threads_for(flops * double(batch), kMinFlopsPerThread));
  if (nt_each == 1 && nt_batch > 1 && !omp_in_parallel()) {
#pragma omp parallel for num_threads(nt_batch) schedule(dynamic, 1)
    for (int64_t b = 0; b < batch; ++b) one(b, 1);
  } else {
    for (int64_t b = 0; b < batch; ++b) one(b, 1 << 20);
  }
}

#define LAMINA_INSTANTIATE_GEMM(T)                                                            \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t, const Epilogue<T>*);                           \
  template void gemm_reference<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t,  \
                                  const T*, int64_t, T, T*, int64_t, const Epilogue<T>*);       \
  template void gemm_strided_batched<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*,     \
                                        int64_t, int64_t, const T*, int64_t, int64_t, T, T*,    \
                                        int64_t, int64_t, int64_t, const Epilogue<T>*, int64_t); \
  template const char* gemm_kernel_name<T>(int64_t, int64_t, bool);                                  \
  template int gemm_kernel_count<T>();
LAMINA_INSTANTIATE_GEMM(float)
LAMINA_INSTANTIATE_GEMM(double)

}  // namespace lamina
