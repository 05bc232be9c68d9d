// Float32 GEMM on Intel AMX tiles (Sapphire Rapids and later), at float32 accuracy.
//
// Why: on these cores the AVX-512 FMA path tops out near 75% of the FMA peak (every f32
// micro-kernel is limited by its broadcast loads; see tools/gemm_probes), while one AMX unit
// multiplies bfloat16 tiles at ~13x the f32 FMA rate. Each float32 operand value x is split
// exactly into three bfloat16 pieces, x = x0 + x1 + x2: x0 keeps the top 8 significant bits
// (truncation), x1 the next 8 of the remainder, and x2 what is left, which has at most 8
// significant bits and so is a bfloat16 too. All nine piece products a_i * b_j are summed:
// each is exact in float32 (8 x 8 significant bits), and TDPBF16PS adds them into float32
// accumulators with one rounding each, so the result carries float32 rounding like the FMA
// path's (tests bound it against float64; the "bf16x9" scheme cuBLAS also uses to emulate
// FP32). Nine tile products per k cost 9/13 of the AMX rate: still ~1.4x the FMA peak.
//
// What the split cannot carry goes to the FMA path instead: infinities (inf times a zero piece
// of the other operand would make NaN), NaN, and nonzero magnitudes below 2^-100 (their low
// pieces would be bfloat16 denormals, which AMX reads as zero). Every value is checked as it is
// packed, and a block of C whose operands hold one is handed to the FMA path before any of it
// is written (with beta = 1 and several K passes, its operands are scanned first), so C is
// never summed twice. Results that round to a float32 denormal come out as zero (AMX flushes
// them), an absolute error below 2^-126.
//
// Layout: A is packed as 32-row panels, B as 32-column blocks, over 32-deep k blocks, piece by
// piece, each piece the two 16 x 64-byte tiles the kernel loads (A: rows x 16 k pairs; B: 16 k
// pairs x columns, each column's pair in one 32-bit word; a pair is k and k + 16 of its
// block). The kernel keeps a 32 x 32 block of C in four tiles over a pass of k blocks. A task
// is a group of column blocks whose packed B stays in L2 while the row panels of A are packed
// and streamed past it; with few rows, all of A stays packed and B streams instead.
#include "gemm_internal.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "thread_team.h"
#include "workspace.h"

#if defined(LAMINA_X86) && defined(LAMINA_HAVE_AMX) && defined(__linux__)
#define LAMINA_AMX_PATH 1
// GCC 12's AVX-512 headers start some intrinsics from a self-initialised "undefined" vector,
// which -Wmaybe-uninitialized reports once these flags inline them here (false positives).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "simd_transpose_avx512.h"
#endif

namespace lamina {
namespace gemm_detail {

#if defined(LAMINA_AMX_PATH)
namespace {

constexpr int64_t kBlk = 32;                 // C block rows / columns, k block depth
constexpr int64_t kTileWords = 16 * 16;      // one 16 x 64-byte tile in 32-bit words
constexpr int64_t kPieceWords = 2 * kTileWords;   // one piece of a 32 x 32 block: two tiles
constexpr int64_t kBlockWords = 3 * kPieceWords;  // the three pieces of one k block

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

inline void load_tile_config() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
}

// ---- the exact three-way split --------------------------------------------------------------
// Tracks whether any value met holds what the split cannot carry: inf / NaN (magnitude bits
// >= 0x7F800000) or a nonzero magnitude below 2^-100 (bits below 27 << 23). Two lane-wise
// max / min updates per vector; the verdict once per block.
struct RangeCheck {
  __m512i top = _mm512_setzero_si512();     // largest magnitude bits
  __m512i low = _mm512_set1_epi32(-1);      // smallest (magnitude bits - 1): zero wraps to the top
  void add(__m512 v) {
    const __m512i mag = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF));
    top = _mm512_max_epu32(top, mag);
    low = _mm512_min_epu32(low, _mm512_sub_epi32(mag, _mm512_set1_epi32(1)));
  }
  bool bad() const {
    return _mm512_reduce_max_epu32(top) >= 0x7F800000u || _mm512_reduce_min_epu32(low) < (27u << 23) - 1;
  }
};
inline __mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? 0 : __mmask16((1u << n) - 1); }

// The split: x0 = x with its low 16 bits cleared (truncation), r = x - x0 (exact: the low 16
// significant bits), x1 = r truncated likewise, x2 = r - x1 (exact, at most 8 significant bits).
// Pair words: word w of piece p holds the bfloat16 pieces of lo[w] (low half) and hi[w] (high
// half), stored to dst + p * kPieceWords. The two k of a pair are k and k + 16 of a 32-deep k
// block, not neighbours: A and B both pair them so, the sum over k does not care about the
// order, and the pairing is then a shift and an or on whole vectors (the pieces' low 16 bits
// are zero) for either layout. Written out without arrays so every value stays in a register.
inline void store_pair_words(__m512 lo, __m512 hi, RangeCheck& chk, uint32_t* dst) {
  chk.add(lo);
  chk.add(hi);
  const __m512i top16 = _mm512_set1_epi32(int(0xFFFF0000u));
  const __m512i l0 = _mm512_and_si512(_mm512_castps_si512(lo), top16);
  const __m512i h0 = _mm512_and_si512(_mm512_castps_si512(hi), top16);
  const __m512 lr = _mm512_sub_ps(lo, _mm512_castsi512_ps(l0));  // exact
  const __m512 hr = _mm512_sub_ps(hi, _mm512_castsi512_ps(h0));
  const __m512i l1 = _mm512_and_si512(_mm512_castps_si512(lr), top16);
  const __m512i h1 = _mm512_and_si512(_mm512_castps_si512(hr), top16);
  const __m512i l2 = _mm512_castps_si512(_mm512_sub_ps(lr, _mm512_castsi512_ps(l1)));  // exact, 8 bits
  const __m512i h2 = _mm512_castps_si512(_mm512_sub_ps(hr, _mm512_castsi512_ps(h1)));
  _mm512_store_si512(dst, _mm512_or_si512(h0, _mm512_srli_epi32(l0, 16)));
  _mm512_store_si512(dst + kPieceWords, _mm512_or_si512(h1, _mm512_srli_epi32(l1, 16)));
  _mm512_store_si512(dst + 2 * kPieceWords, _mm512_or_si512(h2, _mm512_srli_epi32(l2, 16)));
}

struct Operand {
  const float* X;
  int64_t ld;
  bool k_inner;  // X's k index is contiguous (row-major A, transposed B)
};

// The block of 32 "outer" indices (A rows or B columns) [o0, o0 + ov) over k blocks
// [kb0, kb0 + nkb) into dst; returns whether it held a value the split cannot carry.
// tiles_by_outer: the tile rows are the outer index (A); else they are k pairs (B). Where the
// operand's layout already gives the tile's rows the words go straight to dst; otherwise two
// 16 x 16 float transposes per 16 x 32 block put the values there first.
bool pack_block(const Operand& op, int64_t o0, int64_t ov, int64_t K, int64_t kb0, int64_t nkb,
                bool tiles_by_outer, uint32_t* dst) {
  RangeCheck chk;
  const bool transpose = op.k_inner != tiles_by_outer;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t kb = 0; kb < nkb; ++kb) {
    const int64_t k0 = (kb0 + kb) * kBlk, kv = std::min<int64_t>(kBlk, K - k0);
    const __mmask16 k_lo = lanes(kv), k_hi = lanes(kv - 16);
    uint32_t* blk = dst + kb * kBlockWords;
    for (int64_t t = 0; t < 2; ++t) {
      const int64_t ot = o0 + 16 * t, nv = std::min<int64_t>(16, ov - 16 * t);
      const __mmask16 o_mask = lanes(nv);
      uint32_t* tile = blk + t * kTileWords;
      // Vector x of lo / hi: an outer index's k0 .. k0 + 15 / k0 + 16 .. k0 + 31 (k_inner),
      // or rows k0 + x / k0 + 16 + x across 16 outer indices.
      if (!transpose) {  // the loaded vectors are the tile rows already
        for (int x = 0; x < 16; ++x) {
          __m512 lo = zero, hi = zero;
          if (op.k_inner) {
            if (x < nv) {
              const float* src = op.X + (ot + x) * op.ld + k0;
              lo = _mm512_maskz_loadu_ps(k_lo, src);
              hi = _mm512_maskz_loadu_ps(k_hi, src + 16);
            }
          } else {
            if (x < kv) lo = _mm512_maskz_loadu_ps(o_mask, op.X + (k0 + x) * op.ld + ot);
            if (x + 16 < kv) hi = _mm512_maskz_loadu_ps(o_mask, op.X + (k0 + x + 16) * op.ld + ot);
          }
          store_pair_words(lo, hi, chk, tile + 16 * x);
        }
      } else {  // two 16 x 16 float transposes make them so (before the split: 2, not 3)
        __m512 lo[16], hi[16];
        for (int x = 0; x < 16; ++x) {
          lo[x] = hi[x] = zero;
          if (op.k_inner) {
            if (x < nv) {
              const float* src = op.X + (ot + x) * op.ld + k0;
              lo[x] = _mm512_maskz_loadu_ps(k_lo, src);
              hi[x] = _mm512_maskz_loadu_ps(k_hi, src + 16);
            }
          } else {
            if (x < kv) lo[x] = _mm512_maskz_loadu_ps(o_mask, op.X + (k0 + x) * op.ld + ot);
            if (x + 16 < kv) hi[x] = _mm512_maskz_loadu_ps(o_mask, op.X + (k0 + x + 16) * op.ld + ot);
          }
        }
        avx512::transpose16(lo);
        avx512::transpose16(hi);
        for (int x = 0; x < 16; ++x) store_pair_words(lo[x], hi[x], chk, tile + 16 * x);
      }
    }
  }
  return chk.bad();
}

// C block (32 x 32 at C, row stride ldc floats) += the products of k blocks [0, nkb) of the
// packed A rows and B columns. load_c: start from C, else from zero.
void kernel_32x32(const uint32_t* Ap, const uint32_t* Bp, int64_t nkb, float* C, int64_t ldc, bool load_c) {
  const int64_t s = ldc * int64_t(sizeof(float));
  if (load_c) {
    _tile_loadd(0, C, s);
    _tile_loadd(1, C + 16, s);
    _tile_loadd(2, C + 16 * ldc, s);
    _tile_loadd(3, C + 16 * ldc + 16, s);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t kb = 0; kb < nkb; ++kb) {
    const uint32_t* a = Ap + kb * kBlockWords;
    const uint32_t* b = Bp + kb * kBlockWords;
    for (int i = 0; i < 3; ++i) {
      _tile_loadd(4, a + i * kPieceWords, 64);
      _tile_loadd(5, a + i * kPieceWords + kTileWords, 64);
      for (int j = 0; j < 3; ++j) {
        _tile_loadd(6, b + j * kPieceWords, 64);
        _tile_loadd(7, b + j * kPieceWords + kTileWords, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
  }
  _tile_stored(0, C, s);
  _tile_stored(1, C + 16, s);
  _tile_stored(2, C + 16 * ldc, s);
  _tile_stored(3, C + 16 * ldc + 16, s);
}

// Whether rows [o0, o0 + ov) of an operand (its outer index; k over [0, K)) hold a value the
// split cannot carry: read-only, for tasks that must know before their first K pass.
bool any_unfit(const Operand& op, int64_t o0, int64_t ov, int64_t K) {
  RangeCheck chk;
  if (op.k_inner) {
    for (int64_t o = o0; o < o0 + ov; ++o)
      for (int64_t k = 0; k < K; k += 16) chk.add(_mm512_maskz_loadu_ps(lanes(K - k), op.X + o * op.ld + k));
  } else {
    for (int64_t k = 0; k < K; ++k)
      for (int64_t o = o0; o < o0 + ov; o += 16) chk.add(_mm512_maskz_loadu_ps(lanes(o0 + ov - o), op.X + k * op.ld + o));
  }
  return chk.bad();
}

thread_local AlignedBuffer tl_amx_a, tl_amx_b;  // a thread's packed A panel (stream_b: all of A) / B group

// The CPU and OS support it, and Linux grants this process the tile data
// (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA).
bool amx_supported() { return cpu_supports_amx_bf16() && syscall(SYS_arch_prctl, 0x1023, 18) == 0; }

// k blocks per pass over C: one pass (C loaded and stored once) up to K = 1024, where a
// kernel's A slice is 192 KiB; half that for tall A (kTallRowBlocks row blocks or more), whose
// repacking per column group costs more than a second pass over C. Longer K takes more passes.
constexpr int64_t kMaxPassBlocks = 32;
constexpr int64_t kTallRowBlocks = 16;
// A task's packed B slices (its column blocks over one pass) stay in L2 while the A slices
// of all its row blocks stream past them. Measured f32 1 thread, Xeon with 2 MiB L2, thread
// CPU time, best of interleaved runs (GFLOP/s, 768 KiB / 1152 KiB, one pass / passes of 16
// k blocks for tall A): 1024^3 183 / 193 / 205-221; 256x300x784 NT 172 / 168-179;
// 784x300x256 TN 170 / 171-186.
constexpr int64_t kGroupBytes = int64_t(1152) << 10;
// Up to this many row blocks (128 rows), all of A stays packed and B streams (stream_b).
constexpr int64_t kStreamRowBlocks = 4;

}  // namespace

thread_local bool tl_amx_fallback = false;

bool amx_usable() {
  static const bool ok = [] {
    const char* env = std::getenv("LAMINA_GEMM_AMX");
    if (env && env[0] == '0') return false;
    return amx_supported();
  }();
  return ok && active_isa() >= Isa::avx512;
}

bool gemm_amx_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A,
                  int64_t lda, const float* B, int64_t ldb, bool accumulate, float* C, int64_t ldc,
                  const Epilogue<float>* ep, int max_threads) {
  const int64_t nib = ceil_div(M, kBlk), njb = ceil_div(N, kBlk), nkb = ceil_div(K, kBlk);
  const int64_t max_pass = nib >= kTallRowBlocks ? kMaxPassBlocks / 2 : kMaxPassBlocks;
  const int64_t npass = ceil_div(nkb, max_pass), pass_blocks = ceil_div(nkb, npass);
  const int nt = team_size(2.0 * double(M) * double(N) * double(K), tuning::kMinFlopsPerThread, max_threads);
  const Operand opA{A, lda, !transA}, opB{B, ldb, transB};

  // Tasks: groups of column blocks, as many groups as the L2 budget asks, rounded up to a
  // multiple of the team (3 groups on 2 threads would leave one idle for a third of the time),
  // times row chunks when there are fewer groups than threads. Each task runs its C blocks over
  // all of K in order, so how the work is cut and which thread runs it do not change the bits.
  // Few rows (stream_b): every row block's A panel stays packed in L2 for the whole product
  // and each task is one column block, packed and used at once, so B's pieces never leave L2
  // between being written and read (grouped, a short A leaves them to the L3 round trip).
  const bool stream_b = nib <= kStreamRowBlocks && npass == 1;
  const int64_t widest = std::max<int64_t>(1, kGroupBytes / (pass_blocks * kBlockWords * 4));
  const int64_t ngroups0 = stream_b ? njb : std::min(njb, round_up(ceil_div(njb, widest), nt));
  const int64_t group = ceil_div(njb, ngroups0);
  const int64_t ngroups = ceil_div(njb, group);
  const int64_t nchunks = stream_b ? 1 : std::min<int64_t>(nib, ceil_div(nt, ngroups));
  const int64_t chunk_rows = ceil_div(nib, nchunks);  // in row blocks
  const int64_t ntasks = ngroups * ceil_div(nib, chunk_rows);
  const int team = int(std::min<int64_t>(nt, ntasks));

  // The FMA path for C rows [i0, i1) x columns [j0, j1), which AMX has not touched.
  auto fallback = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    Epilogue<float> e;
    if (ep) {
      e = *ep;
      if (e.bias) e.bias += e.bias_axis == BiasAxis::per_row ? i0 : e.bias_axis == BiasAxis::per_col ? j0 : 0;
    }
    struct Flag {  // (reset even if the FMA path throws)
      Flag() { tl_amx_fallback = true; }
      ~Flag() { tl_amx_fallback = false; }
    } flag;
    gemm_impl<float>(transA, transB, i1 - i0, j1 - j0, K, 1.0f, transA ? A + i0 : A + i0 * lda, lda,
                     transB ? B + j0 * ldb : B + j0, ldb, accumulate ? 1.0f : 0.0f, C + i0 * ldc + j0, ldc,
                     ep ? &e : nullptr, 1);
  };

  TaskShares tasks(ntasks, team);
  team_run(team, [&](int me) {
    uint32_t* const Bg = tl_amx_b.elems<uint32_t>(group * pass_blocks * kBlockWords);
    uint32_t* const Aq = tl_amx_a.elems<uint32_t>((stream_b ? nib : 1) * pass_blocks * kBlockWords);
    alignas(64) float edge[kBlk * kBlk];
    bool tiles_ready = false;
    int a_state = 0;  // stream_b: 0 A not packed yet, 1 packed, 2 holds a value the split cannot carry
    // C block (i0, j0) += packed A panel x packed B block over nk k blocks; the epilogue after
    // the last pass.
    auto run_block = [&](const uint32_t* a, const uint32_t* b, int64_t i0, int64_t j0, int64_t nk, bool load_c,
                         bool last) {
      const int64_t mv = std::min(kBlk, M - i0), nv = std::min(kBlk, N - j0);
      float* c = C + i0 * ldc + j0;
      if (mv == kBlk && nv == kBlk) {
        kernel_32x32(a, b, nk, c, ldc, load_c);
      } else {  // a ragged block of C goes through a 32 x 32 copy
        if (load_c) {
          std::memset(edge, 0, sizeof edge);
          for (int64_t i = 0; i < mv; ++i) std::memcpy(edge + i * kBlk, c + i * ldc, size_t(nv) * sizeof(float));
        }
        kernel_32x32(a, b, nk, edge, kBlk, load_c);
        for (int64_t i = 0; i < mv; ++i) std::memcpy(c + i * ldc, edge + i * kBlk, size_t(nv) * sizeof(float));
      }
      if (last && ep) epilogue_tile(*ep, c, ldc, i0, j0, mv, nv);
    };
    for (int64_t u; (u = tasks.claim(me)) >= 0;) {
      if (stream_b) {  // one column block over all rows and all of K (one pass)
        const int64_t j0 = u * kBlk, j1 = std::min(N, j0 + kBlk);
        if (a_state == 0) {
          bool bad = false;
          for (int64_t ib = 0; ib < nib; ++ib)
            bad |= pack_block(opA, ib * kBlk, std::min(kBlk, M - ib * kBlk), K, 0, nkb, true, Aq + ib * nkb * kBlockWords);
          a_state = bad ? 2 : 1;
        }
        if (a_state == 2 || pack_block(opB, j0, j1 - j0, K, 0, nkb, false, Bg)) {
          fallback(0, M, j0, j1);  // (untouched so far)
          continue;
        }
        if (!tiles_ready) {
          load_tile_config();
          tiles_ready = true;
        }
        for (int64_t ib = 0; ib < nib; ++ib)
          run_block(Aq + ib * nkb * kBlockWords, Bg, ib * kBlk, j0, nkb, accumulate, true);
        continue;
      }
      const int64_t g = u % ngroups, rc = u / ngroups;
      const int64_t ib0 = rc * chunk_rows, ib1 = std::min(nib, ib0 + chunk_rows);
      const int64_t jb0 = g * group, jb1 = std::min(njb, jb0 + group);
      const int64_t r0 = ib0 * kBlk, r1 = std::min(M, ib1 * kBlk), c0 = jb0 * kBlk, c1 = std::min(N, jb1 * kBlk);
      // Over several passes a bad value met late would leave C half summed: with beta = 1 (C's
      // old values needed) look first; with beta = 0 the FMA path simply redoes the whole block.
      if (npass > 1 && accumulate && (any_unfit(opA, r0, r1 - r0, K) || any_unfit(opB, c0, c1 - c0, K))) {
        fallback(r0, r1, c0, c1);
        continue;
      }
      if (!tiles_ready) {
        load_tile_config();
        tiles_ready = true;
      }
      for (int64_t pass = 0; pass < npass; ++pass) {
        const int64_t kb0 = pass * pass_blocks, nk = std::min(pass_blocks, nkb - kb0);
        const bool first = pass == 0, last = pass + 1 == npass;
        bool bad = false;
        for (int64_t jb = jb0; jb < jb1; ++jb)
          bad |= pack_block(opB, jb * kBlk, std::min(kBlk, N - jb * kBlk), K, kb0, nk, false,
                            Bg + (jb - jb0) * nk * kBlockWords);
        if (bad) {  // (nothing written yet, or beta = 0 and overwritten)
          fallback(r0, r1, c0, c1);
          break;
        }
        bool redone = false;
        for (int64_t ib = ib0; ib < ib1; ++ib) {
          const int64_t i0 = ib * kBlk, mv = std::min(kBlk, M - i0);
          if (pack_block(opA, i0, mv, K, kb0, nk, true, Aq)) {
            // One pass: the rows from i0 on are untouched. Several (beta = 0): redo the block.
            fallback(npass == 1 ? i0 : r0, r1, c0, c1);
            redone = true;
            break;
          }
          for (int64_t jb = jb0; jb < jb1; ++jb)
            run_block(Aq, Bg + (jb - jb0) * nk * kBlockWords, i0, jb * kBlk, nk, !first || accumulate, last);
        }
        if (redone) break;
      }
    }
    if (tiles_ready) _tile_release();
  });
  return true;
}

#else  // no AMX in this build or on this OS

thread_local bool tl_amx_fallback = false;
bool amx_usable() { return false; }
bool gemm_amx_f32(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t,
                  bool, float*, int64_t, const Epilogue<float>*, int) {
  return false;
}

#endif

}  // namespace gemm_detail

bool gemm_amx_available() { return gemm_detail::amx_usable(); }

}  // namespace lamina
