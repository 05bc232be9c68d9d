// The parts of the split GEMM on their own: cache facts from CPUID against the OS's view,
// blocking derived from cache sizes (pure function, several CPUs' sizes), the blocking the
// driver reports for this CPU, and pack_a / pack_b layouts with zero-padded edges.
#include <algorithm>
#include <cstring>
#include <vector>

#include <unistd.h>

#include "check.h"
#include "cpu.h"
#include "gemm.h"
#include "gemm_internal.h"
#include "workspace.h"

using namespace lamina;
using namespace lamina::gemm_detail;

template <class T>
void check_packing() {
  // op(A) is 7 x 5 (M x K); pack rows [0, mv) of an MR = 8 micro-panel: dst[k*8 + i].
  const int64_t M = 7, K = 5;
  std::vector<T> a(size_t(M * K)), at(size_t(K * M));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) {
      a[size_t(i * K + k)] = T(1 + i * 10 + k);
      at[size_t(k * M + i)] = T(1 + i * 10 + k);
    }
  for (bool trans : {false, true}) {
    for (int64_t mv : {int64_t(1), int64_t(3), M}) {
      std::vector<T> dst(size_t(8 * K), T(-7));
      pack_a(trans, K, mv, 8, trans ? at.data() : a.data(), trans ? M : K, dst.data());
      for (int64_t k = 0; k < K; ++k)
        for (int i = 0; i < 8; ++i) {
          const T want = i < mv ? T(1 + i * 10 + k) : T(0);
          CHECK_MSG(dst[size_t(k * 8 + i)] == want, "pack_a trans %d mv %ld (%d, %ld)", int(trans), long(mv), i, long(k));
        }
    }
  }
  // op(B) is 5 x 13 (K x N); pack columns [0, nv) of an NR = 16 panel: dst[k*16 + j].
  const int64_t N = 13;
  std::vector<T> b(size_t(K * N)), bt(size_t(N * K));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < N; ++j) {
      b[size_t(k * N + j)] = T(1 + k * 100 + j);
      bt[size_t(j * K + k)] = T(1 + k * 100 + j);
    }
  for (bool trans : {false, true}) {
    for (int64_t nv : {int64_t(1), int64_t(8), N}) {
      std::vector<T> dst(size_t(16 * K), T(-7));
      pack_b(trans, K, nv, 16, trans ? bt.data() : b.data(), trans ? K : N, dst.data());
      for (int64_t k = 0; k < K; ++k)
        for (int j = 0; j < 16; ++j) {
          const T want = j < nv ? T(1 + k * 100 + j) : T(0);
          CHECK_MSG(dst[size_t(k * 16 + j)] == want, "pack_b trans %d nv %ld (%ld, %d)", int(trans), long(nv), long(k), j);
        }
    }
  }
}

// A transposed B's NR columns packed at the full 32-wide (16 for double) AVX-512 tile width
// into a 64-byte-aligned panel, the way the driver packs them (the zmm-transpose path on
// AVX-512): K across and around the 16 (8) values of one transpose, ragged panels (nv < NR,
// lines past nv zero), and nothing written past the K x NR panel.
template <class T>
void check_trans_b_packing_wide() {
  constexpr int NR = 128 / int(sizeof(T));
  for (int64_t K : {1, 7, 15, 16, 17, 33, 300}) {
    for (int64_t nv : {int64_t(1), int64_t(NR / 2 - 1), int64_t(NR / 2), int64_t(NR / 2 + 1), int64_t(NR)}) {
      const int64_t ld = K + 3;
      std::vector<T> bt(size_t((nv - 1) * ld + K));  // exactly up to the last value read
      for (int64_t j = 0; j < nv; ++j)
        for (int64_t k = 0; k < K; ++k) bt[size_t(j * ld + k)] = T(1 + k * 100 + j);
      AlignedBuffer buf;
      T* dst = buf.elems<T>(K * NR + 16);
      std::fill(dst, dst + K * NR + 16, T(-7));
      pack_b(true, K, nv, NR, bt.data(), ld, dst);
      for (int64_t k = 0; k < K; ++k)
        for (int j = 0; j < NR; ++j) {
          const T want = j < nv ? T(1 + k * 100 + j) : T(0);
          CHECK_MSG(dst[size_t(k * NR + j)] == want, "wide pack_b K %ld nv %ld (%ld, %d)", long(K), long(nv), long(k), j);
        }
      for (int64_t e = K * NR; e < K * NR + 16; ++e) CHECK_MSG(dst[e] == T(-7), "wide pack_b wrote past the panel, K %ld", long(K));
    }
  }
}

// pack_b_panels: whole panels of a row-major B read row by row give exactly pack_b's panels,
// for every tile's NR (and one no fixed-size copy covers), and write nothing past them.
template <class T>
void check_b_panels_by_rows() {
  for (int NR : {4, 8, 12, 16, 32}) {
    for (int64_t K : {1, 5, 33}) {
      for (int64_t np : {1, 3, 8}) {
        const int64_t ld = np * NR + 5;
        std::vector<T> b(size_t(K * ld));
        for (size_t i = 0; i < b.size(); ++i) b[i] = T(1 + int64_t(i));
        std::vector<T> want(size_t(np * K * NR)), got(size_t(np * K * NR + 16), T(-7));
        for (int64_t p = 0; p < np; ++p) pack_b(false, K, NR, NR, b.data() + p * NR, ld, want.data() + p * K * NR);
        pack_b_panels(K, np * NR, NR, b.data(), ld, got.data());
        for (size_t i = 0; i < want.size(); ++i)
          CHECK_MSG(got[i] == want[i], "pack_b_panels NR %d K %ld panels %ld at %zu", NR, long(K), long(np), i);
        for (size_t i = want.size(); i < got.size(); ++i) CHECK_MSG(got[i] == T(-7), "pack_b_panels wrote past, NR %d", NR);
      }
    }
  }
}

// The loop order from the cache sizes: big products whose full-K B panel is far beyond L2
// take the BLIS order; small ones and a K within one block keep the full-K tasks.
template <class T>
void check_loop_order() {
  const int64_t half_l2 = cache_blocking().b_block_bytes;
  CHECK(half_l2 > 0);
  const GemmBlocking big = gemm_blocking<T>(1024, 1024, 1024);
  const int64_t full_k_panel = 1024 * std::min<int64_t>(1024, nc_for<T>(1024, big.nr)) * int64_t(sizeof(T));
  // (Zen 4 keeps the full-K tasks at one thread: see zen4_one_thread_a_in_place; and the AVX2
  // path where the task's C block stays in L2: see c_block_stays_in_l2.)
  const int64_t nc = std::min<int64_t>(1024, nc_for<T>(1024, big.nr));
  const int64_t l2 = cache_blocking().l2;
  const bool c_in_l2 = active_isa() == Isa::avx2 && l2 > 0 &&
                       (big.mc * nc + big.mc * big.kc) * int64_t(sizeof(T)) <= l2 / 4 * 3;
  CHECK(c_block_stays_in_l2<T>(big.mc, nc, big.kc) == c_in_l2);
  CHECK(big.k_blocks_outside == (!zen4_one_thread_a_in_place(1) && !c_in_l2 && full_k_panel > 2 * half_l2));
  CHECK(!gemm_blocking<T>(64, 300, 784).k_blocks_outside);   // M below 4 row blocks
  CHECK(!gemm_blocking<T>(2048, 2048, 200).k_blocks_outside);  // one K block
  GemmPathOverride o;
  o.k_blocks_outside = 1;
  gemm_set_path_override(o);
  CHECK(gemm_blocking<T>(64, 300, 784).k_blocks_outside);
  gemm_set_path_override({});
}

template <class T>
void check_reported_blocking() {
  for (int64_t K : {1, 100, 256, 257, 784, 5000}) {
    const GemmBlocking b = gemm_blocking<T>(512, 512, K);
    CHECK(b.mr > 0 && b.nr > 0 && b.kernel && b.kernel[0]);
    CHECK(b.kc >= 1 && b.kc <= b.kc_max);
    // The balanced K block: the same number of blocks as kc_max would give, none a sliver.
    CHECK(ceil_div(K, b.kc) == ceil_div(K, b.kc_max));
    CHECK(b.mc >= b.mr && b.mc % b.mr == 0);
    CHECK(b.nc >= b.nr && b.nc % b.nr == 0);
    if (b.k_blocks_outside)  // BLIS order: one KC x NC block of B in its L2 share
      CHECK(b.nc == b.nr || b.nc * b.kc * int64_t(sizeof(T)) <= b.b_block_bytes);
    else  // the K x NC panel of B in its L3 share
      CHECK(b.nc == b.nr || b.nc * K * int64_t(sizeof(T)) <= b.b_panel_bytes);
    CHECK(b.mc == b.mr || b.mc * b.kc_max * int64_t(sizeof(T)) <= b.a_block_bytes);  // A block in L2
  }
}

int main() {
  // CPUID's cache walk agrees with what the OS reports, where both report (x86 Linux).
  const CpuCaches c = cpu_caches_from_cpuid();
  const CpuInfo& info = cpu_info();
  CHECK(info.model[0] != 0);
  CHECK(info.caches.line >= 16);
#if defined(LAMINA_X86) && defined(_SC_LEVEL1_DCACHE_SIZE)
  const long os_l1d = sysconf(_SC_LEVEL1_DCACHE_SIZE), os_l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (c.l1d > 0 && os_l1d > 0) CHECK_MSG(c.l1d == os_l1d, "cpuid L1d %ld, sysconf %ld", long(c.l1d), os_l1d);
  if (c.l2 > 0 && os_l2 > 0) CHECK_MSG(c.l2 == os_l2, "cpuid L2 %ld, sysconf %ld", long(c.l2), os_l2);
  if (c.l1d > 0) CHECK(std::strncmp(c.source, "cpuid", 5) == 0);
#endif
  if (c.l1d > 0) CHECK(c.l1d >= 8 << 10 && c.l1d <= 1 << 20);
  if (c.l2 > 0) CHECK(c.l2 >= c.l1d);

  // Blocking from cache sizes: the CPUs this project has run on, and one that reports nothing.
  {
    const CacheBlocking zen3 = cache_blocking_for(32 << 10, 512 << 10, int64_t(32) << 20);
    CHECK(zen3.kc == 256);
    CHECK(zen3.b_panel_bytes == int64_t(4) << 20);
    CHECK(zen3.a_block_bytes == 256 << 10);
    CHECK(zen3.b_block_bytes == 256 << 10);  // BLIS order: a 256 x 256 f32 block of B in L2
    const CacheBlocking xeon = cache_blocking_for(48 << 10, 2 << 20, int64_t(480) << 20);
    CHECK(xeon.kc == 256);  // 48 KiB: the same K split as 32 KiB, so the same bits
    CHECK(xeon.b_block_bytes == 1 << 20);
    CHECK(xeon.b_panel_bytes == int64_t(4) << 20);
    const CacheBlocking big_l1 = cache_blocking_for(64 << 10, 2 << 20, 0);  // no L3: half of L2
    CHECK(big_l1.kc == 512);
    CHECK(big_l1.b_panel_bytes == 1 << 20);
    const CacheBlocking unknown = cache_blocking_for(0, 0, 0);
    CHECK(unknown.kc == 256 && unknown.b_panel_bytes > 0 && unknown.a_block_bytes > 0 &&
          unknown.b_block_bytes > 0);
    const CacheBlocking tiny = cache_blocking_for(16 << 10, 128 << 10, 0);
    CHECK(tiny.kc == 128 && tiny.b_panel_bytes == 512 << 10);
  }

  for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
    if (!set_isa(isa)) continue;
    check_reported_blocking<float>();
    check_reported_blocking<double>();
    check_loop_order<float>();
    check_loop_order<double>();
    check_packing<float>();
    check_packing<double>();
    check_trans_b_packing_wide<float>();
    check_trans_b_packing_wide<double>();
    check_b_panels_by_rows<float>();
    check_b_panels_by_rows<double>();
  }
  set_isa(cpu_supports_avx512() ? Isa::avx512 : cpu_supports_avx2_fma() ? Isa::avx2 : Isa::portable);
  TEST_MAIN_END();
}
