// GEMM tuning state (see gemm_config.h): cache blocking from the CPU's reported caches, the
// micro-kernel choice per ISA, and the test / tuning override.
#include "gemm_config.h"

#include <algorithm>
#include <cstring>

#include "cpu.h"
#include "thread_team.h"

namespace lamina {
namespace gemm_detail {

namespace {

int64_t pow2_floor(int64_t v) {
  int64_t p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}

GemmPathOverride g_override;

bool intel_cpu() { return std::strcmp(cpu_info().vendor, "GenuineIntel") == 0; }

// Most columns of one packed B panel: with the L3 share it bounds the B panel for small K
// (rounded down to whole NR panels per kernel).
template <class T> constexpr int64_t kMaxNC = 4080;
template <> constexpr int64_t kMaxNC<double> = 2040;

}  // namespace

CacheBlocking cache_blocking_for(int64_t l1d, int64_t l2, int64_t l3) {
  CacheBlocking b{};
  b.l1d = l1d;
  b.l2 = l2;
  b.l3 = l3;
  // KC: a B micro-panel of one 64-byte line per k (AVX2's 16 f32 / 8 f64 columns; AVX-512's
  // 128-byte rows then take KC x 128 B = 2/3 of a 48 KiB L1d, measured still the best) in half
  // of L1d, A's micro-panel beside it. A power of two in [128, 512]: CPUs whose L1d differ by
  // less than 2x (32 KiB Zen, 48 KiB Intel) split K the same way and so give the same bits.
  b.kc = l1d > 0 ? std::clamp<int64_t>(pow2_floor(l1d / 2 / 64), 128, 512) : 256;
  // Packed B: an eighth of the last-level cache (shared with the other cores and with the
  // activations around the GEMM), at most 4 MiB (measured: more only adds TLB misses); a CPU
  // without L3 gives it half of L2.
  const int64_t llc_share = l3 > 0 ? l3 / 8 : l2 > 0 ? l2 / 2 : int64_t(4) << 20;
  b.b_panel_bytes = std::clamp<int64_t>(llc_share, int64_t(512) << 10, int64_t(4) << 20);
  // A block: half of L2 (the other half holds B micro-panels passing through and C lines).
  b.a_block_bytes = l2 > 0 ? l2 / 2 : int64_t(256) << 10;
  // B block of the BLIS-order path (big products): the other half of L2, beside the A block.
  b.b_block_bytes = l2 > 0 ? l2 / 2 : int64_t(256) << 10;
  return b;
}

const CacheBlocking& cache_blocking() {
  static const CacheBlocking b = [] {
    const CpuCaches& c = cpu_info().caches;
    return cache_blocking_for(c.l1d, c.l2, c.l3);
  }();
  return b;
}

template <class T>
int64_t nc_for(int64_t K, int NR) {
  const int64_t budget = cache_blocking().b_panel_bytes / (std::max<int64_t>(K, 1) * int64_t(sizeof(T)));
  return std::max<int64_t>(NR, std::min<int64_t>(kMaxNC<T>, budget) / NR * NR);  // whole NR panels
}

template <class T>
int64_t nc_block_for(int64_t kc, int NR) {
  const int64_t budget = cache_blocking().b_block_bytes / (std::max<int64_t>(kc, 1) * int64_t(sizeof(T)));
  return std::max<int64_t>(NR, std::min<int64_t>(kMaxNC<T>, budget) / NR * NR);
}

template <class T>
bool use_k_blocks_outside(int64_t M, int64_t N, int64_t K, int64_t kc, int NR, int64_t mc,
                          bool packB, int nt) {
  if (path_override().k_blocks_outside >= 0) return path_override().k_blocks_outside != 0;
  if (nt > 1 || zen4_one_thread_a_in_place(nt)) return false;
  if (c_block_stays_in_l2<T>(mc, std::min<int64_t>(N, nc_for<T>(K, NR)), kc)) return false;
  const double full_k_panel = double(K) * double(std::min<int64_t>(N, nc_for<T>(K, NR))) * double(sizeof(T));
  return packB && K > kc && M >= 4 * mc && full_k_panel > 2.0 * double(cache_blocking().b_block_bytes);
}

template <class T>
bool c_block_stays_in_l2(int64_t mc, int64_t nc, int64_t kc) {
  const int64_t l2 = cache_blocking().l2;
  return active_isa() == Isa::avx2 && l2 > 0 && (mc * nc + mc * kc) * int64_t(sizeof(T)) <= l2 / 4 * 3;
}

bool zen4_one_thread_a_in_place(int nt) {
  static const bool zen4 = cpu_is_zen4();
  return nt == 1 && zen4 && active_isa() == Isa::avx512;
}

bool pack_b_by_rows() {
  static const bool zen4 = cpu_is_zen4();
  return zen4 && active_isa() == Isa::avx512;
}

bool near_b_one_row_block() {
  static const bool zen4 = cpu_is_zen4();
  return zen4 && active_isa() == Isa::avx512;
}

template <class T>
bool c_scratch_for_aliased_c(int64_t ldc, int nt) {
  return zen4_one_thread_a_in_place(nt) && (ldc * int64_t(sizeof(T))) % 4096 == 0;
}

template <class T>
int64_t c_align_lead(const T* C, int64_t ldc, int64_t N, int NR) {
  constexpr int64_t kLine = 64 / int64_t(sizeof(T));
  const uintptr_t addr = reinterpret_cast<uintptr_t>(C);
  // (NR whole lines: a narrower tile cannot start every row on a line anyway)
  if (addr % sizeof(T) != 0 || ldc % kLine != 0 || N <= kLine || NR % kLine != 0) return 0;
  const int64_t lead = (kLine - int64_t(addr % 64 / sizeof(T))) % kLine;
  if (path_override().c_align >= 0) return path_override().c_align != 0 ? lead : 0;
  static const bool intel = intel_cpu();
  // (f32 only: measured so; f64 keeps its tiles where they were)
  return intel && sizeof(T) == 4 && active_isa() == Isa::avx512 &&
                 N >= std::max<int64_t>(tuning::kCAlignMinN, 4 * NR)
             ? lead
             : 0;
}

bool use_amx(int64_t M, int64_t N, int64_t K) {
  // Measured f32 on Xeon (AMX), best of interleaved runs, AMX vs the FMA path vs torch
  // (GFLOP/s, 1 thread thread-CPU time / 2 threads wall time): 1024^3 215 / 168 / 177 at 1;
  // 256x300x784 NN 190 / 155 / 163 at 1, 364 / 273 / 258 at 2; 256x784x300 NT 188 / 160 / 179,
  // 341 / 268 / 344; 64x300x784 NN 147 / 148 / 166 at 1, 292 / 242 / 263 at 2; 64x784x300 NT
  // 141 / 140 / 165, 254 / 175 / 303. Short K and narrow C lose (each 32 x 32 block pays its
  // tile stores, and packing three pieces per value is repaid over too few products):
  // 64x300x100 NT 97 / 128 at 1, 154 / 199 at 2; 784x300x64 TN 230 / 269 at 2; 64x100x300 NN
  // 109 / 125; 6400x16x150 51 / 122.
  return M >= 64 && N >= 64 && K >= 128 && M * N >= 128 * 128;
}

template <class T>
int64_t mc_for(const GemmKernel<T>& kern) {
  if (path_override().mc > 0) return path_override().mc;
  const int64_t kc = path_override().kc > 0 ? path_override().kc : cache_blocking().kc;
  const int64_t fit = cache_blocking().a_block_bytes / (kc * int64_t(sizeof(T))) / kern.mr * kern.mr;
  return std::max<int64_t>(kern.mr, std::min<int64_t>(kern.mc, fit));
}

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
    if (intel_cpu())  // a transposed A is packed (see choose_kernel)
      for (int i : {0, 2, 3}) out[i].trans_a_in_place = false;
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

// The kernel that wastes the fewest lanes and rows at the edges, weighted by how close each
// tile runs to the FMA limit.
template <class T>
GemmKernel<T> choose_kernel(int64_t M, int64_t N, bool transA, int64_t K) {
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
  // On Intel (Xeon, AVX-512, 1 MiB+ L2) a transposed A is packed like any other and the 8 x 32
  // tile wins there too (measured f32 TN dW shapes, 1 thread / 2 threads: 784x256x300 1491 ->
  // 901 us / 1432 -> 469 us; 400x64x120 62 -> 51 us at 2 threads; PyTorch 871 us at 1 thread).
  // A last column panel at most half full runs on the half-width sibling, so N <= 16 costs the
  // 32-wide tiles 16 lanes, not 32: with a row-major A the 8 x 32 tile then beats the 24 x 16
  // one (measured f32 1 thread, Xeon, vs PyTorch: 6400x150x16 NN 0.89 -> 1.11x, 64x84x10 0.78
  // -> 1.12x); with a transposed A the 24-row tile stays ahead (150x6400x16 TN 497 vs 594 us).
  // On Intel a transposed A over a short K (a Linear's dW, K = batch), packed, runs best on the
  // 12 x 32 tile (measured f32 TN 1 thread vs PyTorch, 8x32 or 24x16 -> 12x32: 784x256x300
  // 0.88 -> 0.99x, 400x256x120 0.85 -> 1.05x, 300x64x100 0.82 -> 0.92x, 84x256x10 0.77 ->
  // 0.99x); over a long K (a conv's dW, 150x6400x16) the choice below stays ahead.
  if (transA && sizeof(T) == 4 && intel_cpu() && K <= tuning::kShortTransK) return k[0];
  const double weight[5] = {0.97, 0.85, 1.0, transA && !intel_cpu() ? 1.05 : 0.97, 0.85};
  // (Measured so only for float, the zmm tiles 0 and 2 and N within the half tile; the other
  // cases keep whole-NR padding and the choices they had.)
  auto padded_n = [&](int i) {
    const bool half = !transA && sizeof(T) == 4 && (i == 0 || i == 2) && k[i].half_packed &&
                      N <= k[i].nr / 2;
    return half ? int64_t(k[i].nr / 2) : round_up(N, k[i].nr);
  };
  int best = 2;
  double best_score = -1;
  for (int i = 0; i < n && i < 5; ++i) {
    const double score = weight[i] * double(N) / double(padded_n(i)) *
                         double(M) / double(round_up(M, k[i].mr));
    if (score > best_score) { best_score = score; best = i; }
  }
  return k[best];
}

const GemmPathOverride& path_override() { return g_override; }

#define LAMINA_INSTANTIATE_GEMM_CONFIG(T)                                 \
  template int64_t nc_for<T>(int64_t, int);                               \
  template int64_t nc_block_for<T>(int64_t, int);                         \
  template bool use_k_blocks_outside<T>(int64_t, int64_t, int64_t, int64_t, int, int64_t, bool, int); \
  template int64_t mc_for<T>(const GemmKernel<T>&);                       \
  template int64_t c_align_lead<T>(const T*, int64_t, int64_t, int);      \
  template bool c_scratch_for_aliased_c<T>(int64_t, int);                  \
  template bool c_block_stays_in_l2<T>(int64_t, int64_t, int64_t);         \
  template int kernel_candidates<T>(GemmKernel<T>*);                      \
  template GemmKernel<T> choose_kernel<T>(int64_t, int64_t, bool, int64_t);
LAMINA_INSTANTIATE_GEMM_CONFIG(float)
LAMINA_INSTANTIATE_GEMM_CONFIG(double)

}  // namespace gemm_detail

void gemm_set_path_override(GemmPathOverride o) {
  gemm_detail::g_override = o;
  team_set_load_backoff(o.load_backoff != 0);
}
GemmPathOverride gemm_get_path_override() { return gemm_detail::g_override; }

template <class T>
const char* gemm_kernel_name(int64_t M, int64_t N, bool transA) {
  return gemm_detail::choose_kernel<T>(M, N, transA).name;
}

template <class T>
int gemm_kernel_count() {
  GemmKernel<T> k[8];
  return gemm_detail::kernel_candidates(k);
}

template <class T>
GemmBlocking gemm_blocking(int64_t M, int64_t N, int64_t K, bool transA) {
  using namespace gemm_detail;
  const GemmKernel<T> kern = choose_kernel<T>(M, N, transA, K);
  GemmBlocking b;
  b.kernel = kern.name;
  b.mr = kern.mr;
  b.nr = kern.nr;
  const int64_t kc_max = path_override().kc > 0 ? path_override().kc : cache_blocking().kc;
  b.kc_max = kc_max;
  b.kc = K > 0 ? ceil_div(K, ceil_div(K, kc_max)) : kc_max;
  b.mc = mc_for<T>(kern);
  // B packed as gemm_impl packs a contiguous row-major B of this shape.
  const bool packB = M > tuning::kMaxMInPlaceB || (N * int64_t(sizeof(T))) % 256 == 0;
  b.k_blocks_outside = use_k_blocks_outside<T>(M, N, K, b.kc, kern.nr, b.mc, packB, 1);
  b.nc = b.k_blocks_outside ? nc_block_for<T>(b.kc, kern.nr) : nc_for<T>(K, kern.nr);
  b.b_panel_bytes = cache_blocking().b_panel_bytes;
  b.a_block_bytes = cache_blocking().a_block_bytes;
  b.b_block_bytes = cache_blocking().b_block_bytes;
  return b;
}

#define LAMINA_INSTANTIATE_GEMM_QUERIES(T)                                    \
  template const char* gemm_kernel_name<T>(int64_t, int64_t, bool);           \
  template int gemm_kernel_count<T>();                                        \
  template GemmBlocking gemm_blocking<T>(int64_t, int64_t, int64_t, bool);
LAMINA_INSTANTIATE_GEMM_QUERIES(float)
LAMINA_INSTANTIATE_GEMM_QUERIES(double)

}  // namespace lamina
