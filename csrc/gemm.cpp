// BLIS-style GEMM driver: five loops (jc, pc, ic, jr, ir) around a register-blocked
// micro-kernel (contract in gemm_kernel.h), packed operands with zero-padded edges
// (gemm_pack.cpp), a fused bias + activation epilogue on each C tile once its full K is
// accumulated, and the thread team (thread_team.h) over many small (ic, jr) tasks: each thread
// owns a contiguous share and takes the others' unclaimed tasks when done, so a descheduled
// thread does not stall the other. Blocking and kernel choice: gemm_config.{h,cpp}; the
// matrix-vector and K-split paths: gemm_skinny.cpp.
//
// Loop structure (per call):
//   jc: N in steps of NC       -> pack_b: K x NC panel of op(B), shared by all threads (L3)
//     task (parallel, shares + stealing): an (mc x nc) block of C (the ic step), over the full K
//       pc: K in steps of KC     -> beta for the first block, 1 after; epilogue on the last
//         pack_a: mc x KC block of op(A) into the thread's buffer (L2)
//           jr: NR-wide columns  -> B micro-panel KC x NR stays in L1 across the ir loop
//             ir: MR-tall rows   -> micro-kernel on one MR x NR tile in registers
// Measured on a 2-core Zen 3, packing is skipped where it costs more than it saves: a
// row-major A is read in place by the micro-kernel (strided broadcasts), and so is a
// row-major B for M <= 512; only their ragged last micro-panels are packed (zero-padded),
// and row strides that alias L1 sets force packing (see gemm_impl).
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

#include "activation.h"
#include "cpu.h"
#include "gemm_internal.h"
#include "thread_team.h"
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

namespace gemm_detail {

using namespace tuning;

namespace {
// Packed operands of 512 KiB or more sit on transparent huge pages (see AlignedBuffer).
struct PackBuffer : AlignedBuffer {
  PackBuffer() { huge_from = size_t(512) << 10; }
};
thread_local PackBuffer tl_pack_a;  // each thread's mc x KC block of A
thread_local PackBuffer tl_pack_b;  // the calling thread's B panel (or block), shared with its team
thread_local AlignedBuffer tl_pack_b_near;  // each thread's B micro-panel(s) of one K block (Problem::packB_near)
thread_local AlignedBuffer tl_c_scratch;    // a task's C block while its K blocks are summed (Problem::c_scratch)
// What tl_pack_a holds when it is one K block of one row block: a thread's next task of the
// same step and rows (the tasks of a row block are consecutive in its share) reuses it
// instead of packing A again for each column block.
struct PackedRows {
  uint64_t step = 0;  // 0: nothing reusable
  int64_t i0 = 0, mlen = 0;
};
thread_local PackedRows tl_packed_rows;
std::atomic<uint64_t> g_next_step{1};
}  // namespace

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
        // The activation family's vector kernels (in place) instead of a scalar libm call per
        // element, which would cost as much as the GEMM itself for K of a few hundred; the same
        // kernel act_forward picks, so a fused epilogue gives the bits of a separate activation.
        if (vector_act) {
          const Activation kind = ep.act == Act::sigmoid ? Activation::sigmoid : Activation::tanh;
          if constexpr (std::is_same_v<T, float>)
            if (active_isa() >= Isa::avx512 && detail::act_forward_avx512(kind, 0, nv, c, c, false))
              break;
          detail::act_forward_avx2(kind, 0, nv, c, c, T(0), false);
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

namespace {

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
  uint64_t step = 0;  // unique per parallel step (see PackedRows)
  // B packed by each task right before use, one KC x NR micro-panel at a time into an L1-sized
  // buffer, instead of whole K x NC panels up front (packB) or read in place: see gemm_impl.
  bool packB_near = false;
  // A task over several K blocks sums its C block in a scratch buffer whose rows are one cache
  // line longer than the block, and copies it to C after the last K block (see
  // c_scratch_for_aliased_c in gemm_config.h). The same operations on the same values in the
  // same order: only where the partial sums live changes, so the bits do not.
  bool c_scratch = false;
  // Column panels shifted so that all but the first start on a cache line of C (see
  // c_align_lead): the step's panel 0 holds the NR - shift columns before C's first line
  // boundary (the rest of its tile padding), and panel p >= 1 starts at column p * NR - shift.
  // Step widths (ncols) and panel offsets (jr) count the padding; col() and width() map them.
  int64_t shift = 0;

  int64_t col(int64_t jr) const { return jr == 0 ? 0 : jr - shift; }
  int64_t width(int64_t jr, int64_t ncols) const {
    return jr == 0 && shift ? kern.nr - shift : std::min<int64_t>(kern.nr, ncols - jr);
  }
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
  T* const c_block = p.C + i0 * p.ldc + jc + j0;
  const bool scratch = p.c_scratch && p.K > p.kc;
  const int64_t lds = scratch ? round_up(nlen, NR) + 64 / int64_t(sizeof(T)) : p.ldc;
  T* const Cs = scratch ? tl_c_scratch.elems<T>(mlen * lds) : nullptr;
  if (scratch && p.beta != T(0))  // beta == 0: C is never read (NaN in C does not propagate)
    for (int64_t i = 0; i < mlen; ++i) std::memcpy(Cs + i * lds, c_block + i * p.ldc, nlen * sizeof(T));

  for (int64_t pc = 0; pc < p.K; pc += p.kc) {
    const int64_t kcur = std::min(p.kc, p.K - pc);
    const T beta = pc == 0 ? p.beta : T(1);
    const bool last = pc + kcur == p.K;
    const bool one_block = kcur == p.K;
    const PackedRows held = tl_packed_rows;
    const bool reuse = one_block && held.step == p.step && held.i0 == i0 && held.mlen == mlen;
    if (reuse) {
    } else if (p.packA) {
      for (int64_t ir = 0; ir < mlen; ir += MR)
        pack_a(p.transA, kcur, std::min<int64_t>(MR, mlen - ir), MR, p.a_at(i0 + ir, pc), p.lda,
               Ap + ir * kcur);
    } else if (mlen % MR) {
      // Strided A: only the ragged last micro-panel is packed (zero rows keep the tile exact).
      const int64_t ir = mlen - mlen % MR;
      pack_a(p.transA, kcur, mlen - ir, MR, p.a_at(i0 + ir, pc), p.lda, Ap + ir * kcur);
    }
    tl_packed_rows = one_block ? PackedRows{p.step, i0, mlen} : PackedRows{};
    // Short K (see below): the task's whole B slice of this K block is packed near at once.
    const bool short_k = kcur * nlen * int64_t(sizeof(T)) <= kSmallBBytes;
    T* Bn = p.packB_near ? tl_pack_b_near.elems<T>(kcur * (short_k ? round_up(nlen, NR) : NR)) : nullptr;
    auto pack_near = [&](int64_t jr) {  // columns [jr, jr + NR) of the task's K block
      pack_b(p.transB, kcur, p.width(jr, ncols), NR, p.b_at(pc, jc + p.col(jr)), p.ldb,
             Bn + (short_k ? (jr - j0) * kcur : 0));
    };
    // (ir and jr are multiples of MR and NR: micro-panel offsets are ir * kcur and jr * K, with
    // no division per tile, which the run-time MR and NR would make an idiv.)
    auto tile = [&](int64_t jr, int64_t ir) {
      const int64_t nv = p.width(jr, ncols);
      const bool b_in_place = !p.packB && !p.packB_near && nv == NR;
      const T* b = p.packB_near ? Bn + (short_k ? (jr - j0) * kcur : 0)
                   : b_in_place ? p.b_at(pc, jc + p.col(jr))
                                : Bp + jr * p.K + pc * NR;
      const int64_t b_rs = b_in_place ? p.ldb : NR;
      const int64_t mv = std::min<int64_t>(MR, mlen - ir);
      T* c = scratch ? Cs + ir * lds + (jr - j0) : p.C + (i0 + ir) * p.ldc + jc + p.col(jr);
      const bool packed = p.packA || mv < MR;
      const T* a = packed ? Ap + ir * kcur : p.a_at(i0 + ir, pc);
      const int TMR = p.kern.tail_mr;
      if (mv < MR && p.kern.tail && round_up(mv, TMR) < MR) {
        // Ragged last panel: the smaller tile in TMR-row steps over the zero-padded pack.
        for (int64_t r = 0; r < mv; r += TMR)
          p.kern.tail(kcur, a + r, 1, MR, b, b_rs, c + r * lds, lds, p.alpha, beta,
                      std::min<int64_t>(TMR, mv - r), nv);
      } else {
        const bool half = p.kern.half_packed && nv <= NR / 2;  // ragged last column panel
        GemmUkernel<T> uk = packed ? (half ? p.kern.half_packed : p.kern.packed)
                                   : (half ? p.kern.half_strided : p.kern.strided);
        uk(kcur, a, a_rs, a_cs, b, b_rs, c, lds, p.alpha, beta, mv, nv);
      }
      if (last && p.ep && !scratch) epilogue_tile(*p.ep, c, p.ldc, i0 + ir, jc + p.col(jr), mv, nv);
    };
    if (pc == 0)
      for (int64_t jr = j0; jr < j0 + nlen; jr += NR) wait_ready(ready[jr / NR]);
    if (short_k) {
      // Short K: the task's whole B slice sits in L1 anyway, and the cost is writing C, so
      // each MR-row strip of C is written left to right in one pass instead of in NR-wide
      // column stripes (measured 6400x16x150 NT, a conv's dX, 2 threads, vs OpenBLAS: f32
      // 0.83 -> 1.10x, f64 0.73 -> 1.18x).
      if (p.packB_near)
        for (int64_t jr = j0; jr < j0 + nlen; jr += NR) pack_near(jr);
      for (int64_t ir = 0; ir < mlen; ir += MR)
        for (int64_t jr = j0; jr < j0 + nlen; jr += NR) tile(jr, ir);
    } else {
      // BLIS order: one KC x NR micro-panel of B stays in L1 while the A micro-panels stream.
      for (int64_t jr = j0; jr < j0 + nlen; jr += NR) {
        if (p.packB_near) pack_near(jr);
        for (int64_t ir = 0; ir < mlen; ir += MR) tile(jr, ir);
      }
    }
  }
  if (scratch) {
    for (int64_t i = 0; i < mlen; ++i) std::memcpy(c_block + i * p.ldc, Cs + i * lds, nlen * sizeof(T));
    if (p.ep) epilogue_tile(*p.ep, c_block, p.ldc, i0, jc + j0, mlen, nlen);
  }
}

// Task tile (mc x nc): at least `target` tasks when the work allows, A-repacking amortized.
struct TaskGrid {
  int64_t mc, nc, tm, tn;
};
TaskGrid partition(int64_t M, int64_t ncols, int64_t K, int MR, int NR, int64_t MC, int nt,
                   bool packA, bool transA, bool transB, int64_t elem_bytes) {
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
    const bool rows_first = path_override().rows_first >= 0
                                ? path_override().rows_first != 0
                                : K <= kShortK && (transA || K * ncols * elem_bytes <= kRowsFirstMaxB);
    // A transposed B under one row block is packed near, once per micro-panel, by the task
    // that uses it (see Problem::packB_near); a second row block would make it a whole-panel
    // pack up front, whose writes go out to L2 / L3 and are read back. So once the columns
    // give 2 tasks per thread, rows are not split. Measured f32 64x784x300 NT (a Linear's dX),
    // 2 threads, Zen 4, wall clock, min of 400 calls, alternating runs: 2 row blocks with B
    // packed up front 189-193 us, 1 row block packed near 157-158 us (PyTorch ~186 us).
    // Two column tasks per thread are enough (was 4): f32 64x120x400 NT (LeNet-5's F5 forward
    // at batch 64) 48-50 -> 38-39 us, 64x200x300 67 -> 49 us, 32x160x500 49 -> 41 us (2 threads,
    // wall clock, min of interleaved runs). Zen 4 only (near_b_one_row_block), where it was measured.
    const bool one_row_block = transB && !rows_first && mc >= M && near_b_one_row_block();
    while (ceil_div(M, mc) * ceil_div(ncols, nc) < target) {
      if (rows_first && mc >= 2 * MR) mc = round_up(ceil_div(mc, 2), MR);
      else if (nc >= 2 * min_cols) nc = round_up(ceil_div(nc, 2), NR);
      else if (one_row_block && ceil_div(ncols, nc) >= 2 * nt) break;
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

}  // namespace

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
  const bool b_cached = double(K) * double(N) * double(sizeof(T)) <= 2.0 * double(cache_blocking().b_panel_bytes);
  if (path_override().skinny && m_small <= kMaxSkinny &&
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

  if constexpr (std::is_same_v<T, float>) {
    const int force = path_override().amx;
    if (force != 0 && !tl_amx_fallback && alpha == T(1) && (beta == T(0) || beta == T(1)) && amx_usable() &&
        (force == 1 || use_amx(M, N, K)) &&
        gemm_amx_f32(transA, transB, M, N, K, A, lda, B, ldb, beta != T(0), C, ldc, ep, max_threads))
      return;
  }

  if (path_override().ksplit && K >= kKSplitMinK && double(M) * double(N) <= kKSplitMaxMN) {
    gemm_ksplit(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, max_threads);
    return;
  }

  Problem<T> p{transA, transB, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc, ep,
               choose_kernel<T>(M, N, transA, K), 0, true, true};
  const int MR = p.kern.mr, NR = p.kern.nr;
  const int64_t kc_max = path_override().kc > 0 ? path_override().kc : cache_blocking().kc;
  p.kc = ceil_div(K, ceil_div(K, kc_max));
  // Row-major A is read in place: its MR rows are MR contiguous streams the kernel broadcasts
  // from, and skipping the (transposing) pack measured faster on most shapes, unless the row
  // stride is a multiple of 2 KiB (the MR rows crowd into one or two L1 sets) or K is long and
  // each A micro-panel meets many B micro-panels (f32 1 thread vs PyTorch, Xeon: 64x784x300
  // 0.88 -> 0.91x, 256x784x300 0.93 -> 1.02x; K = 120..400 even or worse; at 2 threads, where
  // each column task would repack its rows, not measured, so not done). Transposed
  // A (a column of op(A) per cache line, kc lines per micro-panel) is packed for tiles that do
  // not read it in place (GemmKernel::trans_a_in_place) once the B reuse is big, whatever K
  // (measured f32 TN, 1 thread, vs PyTorch, K = 64 packed too: 784x64x300 0.71 -> 0.89x,
  // 120x64x400 0.86 -> 0.97x, 300x64x100 0.81 -> 0.88x); the others pack it, like a row-major
  // A, only when the stride aliases.
  const int nt = team_size(2.0 * double(M) * double(N) * double(K), kMinFlopsPerThread, max_threads);
  const bool aliased = (lda * int64_t(sizeof(T))) % 2048 == 0;
  p.packA = path_override().pack_a >= 0 ? path_override().pack_a != 0
            : (transA && !p.kern.trans_a_in_place) ? N > 2 * NR
            : !transA && zen4_one_thread_a_in_place(nt) ? false
                                                   : (aliased || (K >= kPackAMinK && nt == 1)) && N > 4 * NR && M > MR;

  // Packing B costs a visible share of the math unless M is large (each B micro-panel then
  // meets many A micro-panels); a row-major B is read in place instead, unless its row
  // stride is a multiple of 4 cache lines (the kc rows then crowd into few L1 sets).
  const bool b_aliased = (ldb * int64_t(sizeof(T))) % 256 == 0;
  p.packB = transB || (path_override().pack_b >= 0 ? path_override().pack_b != 0
                                              : b_aliased || M > kMaxMInPlaceB);
  const int64_t mc_max = mc_for<T>(p.kern);
  p.c_scratch = path_override().c_scratch >= 0 ? path_override().c_scratch != 0
                                               : c_scratch_for_aliased_c<T>(ldc, nt);

  // One parallel region per (jc, K block) step of problem q with a single shared task list:
  // first the B-panel packs, then the C blocks. Threads claim tasks with an atomic counter, so
  // there is no barrier between packing and computing (a compute task waits only for the
  // panels it reads); a thread that starts late or is descheduled simply claims fewer tasks.
  auto panel_step = [&](Problem<T> q, T* Bp, int64_t jc, int64_t ncols) {
    q.step = g_next_step.fetch_add(1, std::memory_order_relaxed);
    const int64_t npanels = ceil_div(ncols, NR);
    const TaskGrid g = partition(M, ncols, q.K, MR, NR, mc_max, nt, q.packA, transA, transB, sizeof(T));
    // A transposed B packed near, by each task, when one row block covers M (so each
    // micro-panel is still packed once): the pack's writes stay in L1 instead of making a
    // K x NC panel in L2 / L3 that the kernel then reads back (measured f32 NT, 1 thread:
    // 64x300x784 262 -> 237 us, 64x784x300 278 -> 254 us; with 3 row blocks (M = 256), each
    // repacking it, 878 -> 998 us, hence one row block only).
    q.packB_near = path_override().pack_b_near >= 0 ? path_override().pack_b_near != 0
                                                    : transB && g.tm == 1;
    // A row-major B packed whole: on CPUs where it pays (pack_b_by_rows), each pack task
    // copies `group` panels reading B row by row (see pack_b_panels).
    const bool by_rows = !transB && q.packB && !q.packB_near && !q.shift && pack_b_by_rows();
    const int64_t group = by_rows ? std::max<int64_t>(1, kPackBRowBytes / (NR * int64_t(sizeof(T)))) : 1;
    const int64_t npacks = ceil_div(npanels, group);
    const int64_t ntasks = npacks + g.tm * g.tn;
    std::vector<std::atomic<int>> ready(static_cast<size_t>(npanels));
    for (auto& r : ready) r.store(0, std::memory_order_relaxed);
    const int team = static_cast<int>(std::min<int64_t>(nt, ntasks));
    TaskShares packs(npacks, team), blocks(g.tm * g.tn, team);
    auto worker = [&](int me) {
      // Every B panel is claimed before any C block, so a block waits only on packs in flight.
      for (int64_t t; (t = packs.claim(me)) >= 0;) {
        const int64_t p0 = t * group, p1 = std::min(npanels, p0 + group);
        const int64_t whole = by_rows ? std::clamp(ncols / NR, p0, p1) : p0;  // panels [p0, whole) by rows
        if (whole > p0)
          pack_b_panels(q.K, (whole - p0) * NR, NR, q.b_at(0, jc + p0 * NR), ldb, Bp + p0 * q.K * NR);
        for (int64_t p = whole; p < p1; ++p)
          // in-place B still packs its ragged last panel; near-packed B is packed by the tasks
          if (!q.packB_near && (q.packB || q.width(p * NR, ncols) < NR))
            pack_b(transB, q.K, q.width(p * NR, ncols), NR, q.b_at(0, jc + q.col(p * NR)),
                   ldb, Bp + p * q.K * NR);
        for (int64_t p = p0; p < p1; ++p) ready[size_t(p)].store(1, std::memory_order_release);
      }
      for (int64_t u; (u = blocks.claim(me)) >= 0;) {
        const int64_t ti = u / g.tn, tj = u % g.tn;
        const int64_t i0 = ti * g.mc, j0 = tj * g.nc;
        run_task(q, Bp, ready.data(), jc, ncols, i0, std::min(g.mc, M - i0), j0,
                 std::min(g.nc, ncols - j0));
      }
    };
    // (the join ends the step: no thread repacks B for the next step while another reads it)
    team_run(team, worker);
  };

  // C's rows all start at the same offset into a cache line, not at its start (NumPy's
  // 16-byte aligned arrays): the first step's column panels are shifted so that every tile but
  // the first column's starts its rows on a line (Problem::shift, c_align_lead). Measured f32
  // NN, 1 thread, Xeon, C 16 bytes past a line, thread CPU time, min of interleaved runs:
  // 2048^3 124.6 -> 142.6 GF/s, 2048x1024x2048 130.9 -> 143.9 (C on a line: ~144); 1024^3
  // within noise (+-1.5%), 256^3 -7% (one tile column more in eight), hence only wide N. A
  // separate pass over the leading columns instead read A once more and did not pay.
  // Only for alpha = 1 and beta 0 or 1 (every layer's call): otherwise an edge tile rounds
  // alpha * sum and beta * C apart where a full tile fuses them, so moving the edge would move
  // which columns get which bits.
  const bool same_bits_anywhere = alpha == T(1) && (beta == T(0) || beta == T(1));
  const int64_t lead = same_bits_anywhere ? c_align_lead<T>(C, ldc, N, NR) : 0;
  const int64_t shift = lead > 0 ? NR - lead : 0;
  if (shift) p.c_scratch = false;
  // Columns [jc, jc + step width) per step; the first step's width counts the shift. With a
  // shift, a step takes one panel more than NC rather than leave a sliver of a step (a whole
  // pass over A) after it.
  auto step_width = [&](int64_t jc, int64_t NC) {
    const int64_t rest = jc == 0 ? N + shift : N - jc;
    return shift && rest <= NC + NR ? rest : std::min(NC, rest);
  };
  // Which operand stays in L2 while a task runs: see use_k_blocks_outside (gemm_config.h).
  // The K blocks are the same in either loop order, so the results are bit-identical.
  const bool k_blocks_outside = use_k_blocks_outside<T>(M, N, K, p.kc, NR, mc_max, p.packB, nt);
  if (!k_blocks_outside) {
    // One parallel region per jc; each task keeps its C block in cache across its K blocks.
    const int64_t NC = nc_for<T>(K, NR);
    T* Bp = tl_pack_b.elems<T>(round_up(std::min(N + shift, NC + (shift ? NR : 0)), NR) * K);
    for (int64_t jc = 0; jc < N;) {
      Problem<T> q = p;
      q.shift = jc == 0 ? shift : 0;
      const int64_t width = step_width(jc, NC);
      panel_step(q, Bp, jc, width);
      jc += width - q.shift;
    }
    return;
  }
  // BLIS order: per K block, a KC x NC block of B sized to L2 is packed once and reread from
  // L2 by every row block, and C streams instead.
  const int64_t NC = nc_block_for<T>(p.kc, NR);
  T* Bp = tl_pack_b.elems<T>(round_up(std::min(N + shift, NC + (shift ? NR : 0)), NR) * p.kc);
  for (int64_t jc = 0, width = 0; jc < N; jc += width - (jc == 0 ? shift : 0)) {
    width = step_width(jc, NC);
    for (int64_t pc = 0; pc < K; pc += p.kc) {
      // The K block [pc, pc + kc) as a problem of its own: C = alpha op(A) op(B) + beta' C,
      // beta' = beta for the first block and 1 after, the epilogue after the last.
      Problem<T> q = p;
      q.shift = jc == 0 ? shift : 0;
      q.K = std::min(p.kc, K - pc);
      q.A = transA ? A + pc * lda : A + pc;
      q.B = transB ? B + pc : B + pc * ldb;
      q.beta = pc == 0 ? beta : T(1);
      q.ep = pc + q.K == K ? ep : nullptr;
      panel_step(q, Bp, jc, width);
    }
  }
}

}  // namespace gemm_detail

double fma_peak_gflops(double seconds) { return fma_peak_gflops(seconds, active_isa()); }

double fma_peak_gflops(double seconds, Isa isa) {
#if defined(LAMINA_X86)
  if (!cpu_supports_avx2_fma() || isa < Isa::avx2) return 0.0;
  if (isa == Isa::avx512 && !cpu_supports_avx512()) return 0.0;
  float sink = 0;
  double best = 0;
  const double t_end = team_detail::now_s() + seconds;
  do {  // ~1 ms runs: the fastest is the one no other process interrupted
    const double t0 = team_detail::now_s();
    const double flops = isa >= Isa::avx512 ? fma_peak_probe_avx512(50000, &sink)
                                                      : fma_peak_probe_avx2(100000, &sink);
    best = std::max(best, flops / (team_detail::now_s() - t0));
  } while (team_detail::now_s() < t_end);
  return best * 1e-9 + 0.0 * double(sink);
#else
  (void)seconds;
  (void)isa;
  return 0.0;
#endif
}

template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const Epilogue<T>* ep) {
  gemm_detail::gemm_impl(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep, 1 << 20);
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
    gemm_detail::gemm_impl(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
              C + b * strideC, ldc, ep ? &e : nullptr, max_threads);
  };
  const double flops = 2.0 * double(M) * double(N) * double(K);
  // Small GEMMs: one thread each, the batch spread over threads; big ones: threads inside each.
  const double min_flops = gemm_detail::tuning::kMinFlopsPerThread;
  const int nt_each = threads_for(flops, min_flops);
  const int nt_batch = team_size(flops * double(batch), min_flops, batch);
  if (nt_each == 1 && nt_batch > 1) {
    parallel_tasks(batch, nt_batch, [&](int64_t b) { one(b, 1); });
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
  template void gemm_detail::gemm_impl<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*,   \
                                          int64_t, const T*, int64_t, T, T*, int64_t,           \
                                          const Epilogue<T>*, int);                             \
  template void gemm_detail::epilogue_tile<T>(const Epilogue<T>&, T*, int64_t, int64_t, int64_t, \
                                              int64_t, int64_t);
LAMINA_INSTANTIATE_GEMM(float)
LAMINA_INSTANTIATE_GEMM(double)

}  // namespace lamina
