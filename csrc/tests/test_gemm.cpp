// gemm vs gemm_reference at the tile edges (MR, NR, KC +- 1), primes, odd leading dims, every
// transpose combination, alpha/beta variants, beta = 0 over NaN, epilogues, every ISA path the
// CPU has, both A paths (packed / read in place), every micro-kernel of each ISA, 1 vs 2 threads.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "gemm.h"

using namespace lamina;

struct Shape { int64_t M, N, K; };

template <class T>
struct Runner {
  std::mt19937 rng{1234};
  int cases = 0;

  void fill(std::vector<T>& v) {
    std::uniform_real_distribution<double> d(-1.0, 1.0);
    for (auto& x : v) x = T(d(rng));
  }

  // One comparison. pad > 0 gives non-default leading dims; C's pad columns hold a sentinel
  // that must survive (no writes outside the M x N window).
  void run(bool tA, bool tB, Shape s, T alpha, T beta, int pad, int ep_kind, const char* tag) {
    const int64_t M = s.M, N = s.N, K = s.K;
    const int64_t lda = (tA ? M : K) + pad, ldb = (tB ? K : N) + pad, ldc = N + pad;
    std::vector<T> A(size_t((tA ? K : M) * lda) + 1), B(size_t((tB ? N : K) * ldb) + 1);
    std::vector<T> C(size_t(M * ldc) + 1), R;
    fill(A); fill(B); fill(C);
    const T sentinel = T(12345.0);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = N; j < ldc; ++j) C[i * ldc + j] = sentinel;
    if (beta == T(0))
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = NAN;  // must not propagate
    R = C;
    std::vector<T> bias(size_t(std::max<int64_t>(M, N)) + 1);
    fill(bias);
    Epilogue<T> ep;
    ep.bias = bias.data();
    switch (ep_kind) {
      case 1: ep.bias_axis = BiasAxis::per_row; ep.act = Act::relu; break;
      case 2: ep.bias_axis = BiasAxis::per_col; ep.act = Act::sigmoid; break;
      case 3: ep.bias_axis = BiasAxis::per_col; ep.act = Act::tanh; break;
      case 4: ep.bias_axis = BiasAxis::none; ep.act = Act::relu; break;
      case 5: ep.bias_axis = BiasAxis::per_row; ep.act = Act::identity; break;
      default: break;
    }
    const Epilogue<T>* e = ep_kind ? &ep : nullptr;
    gemm<T>(tA, tB, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, e);
    gemm_reference<T>(tA, tB, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, R.data(), ldc, e);
    const double tol = (sizeof(T) == 4 ? 2e-6 : 1e-14) * double(K + 8);
    int bad = 0;
    for (int64_t i = 0; i < M && bad < 3; ++i)
      for (int64_t j = 0; j < ldc && bad < 3; ++j) {
        const T c = C[i * ldc + j], r = R[i * ldc + j];
        const bool ok = j < N ? (std::isfinite(double(c)) && std::fabs(double(c) - double(r)) <= tol)
                              : c == sentinel;
        if (!ok) ++bad;
        CHECK_MSG(ok, "%s %s tA=%d tB=%d M=%lld N=%lld K=%lld alpha=%g beta=%g pad=%d ep=%d isa=%s thr=%d: "
                  "C[%lld,%lld]=%.9g ref=%.9g", tag, sizeof(T) == 4 ? "f32" : "f64", tA, tB,
                  (long long)M, (long long)N, (long long)K, double(alpha), double(beta), pad, ep_kind,
                  isa_name(active_isa()), get_num_threads(), (long long)i, (long long)j, double(c), double(r));
      }
    ++cases;
  }

  void batched() {
    const int64_t M = 13, N = 21, K = 17, batch = 5;
    std::vector<T> A(size_t(batch * M * K)), B(size_t(batch * K * N)), C(size_t(batch * M * N)),
        bias(size_t(batch * N));
    fill(A); fill(B); fill(bias);
    for (auto& x : C) x = NAN;
    std::vector<T> R = C;
    Epilogue<T> ep{bias.data(), BiasAxis::per_col, Act::tanh};
    gemm_strided_batched<T>(false, false, M, N, K, T(1), A.data(), K, M * K, B.data(), N, K * N,
                            T(0), C.data(), N, M * N, batch, &ep, N);
    for (int64_t b = 0; b < batch; ++b) {
      Epilogue<T> eb{bias.data() + b * N, BiasAxis::per_col, Act::tanh};
      gemm_reference<T>(false, false, M, N, K, T(1), A.data() + b * M * K, K, B.data() + b * K * N,
                        N, T(0), R.data() + b * M * N, N, &eb);
    }
    for (size_t i = 0; i < C.size(); ++i)
      CHECK_MSG(std::fabs(double(C[i]) - double(R[i])) <= 1e-5, "batched %zu: %g vs %g", i,
                double(C[i]), double(R[i]));
  }

  // The skinny (matrix-vector) path: M == 1 and N == 1 with every transpose, K and the long
  // side over vector-width edges, alpha/beta specials (beta = 0 over NaN in C), padded
  // leading dims (strided x, strided C column), every epilogue; and the same cases with the
  // skinny path disabled so the blocked path stays covered for them too.
  void skinny() {
    const int64_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 300, 784};
    const T ab[][2] = {{1, 0}, {-1, 1}, {T(0.5), -1}, {1, T(0.5)}, {0, T(0.5)}, {T(2), 0}};
    int idx = 0;
    for (int64_t K : sizes)
      for (int64_t L : sizes)
        for (int tA = 0; tA < 2; ++tA)
          for (int tB = 0; tB < 2; ++tB)
            for (int m1 = 0; m1 < 2; ++m1) {
              const T* c = ab[idx % 6];
              const Shape s = m1 ? Shape{1, L, K} : Shape{L, 1, K};
              run(tA, tB, s, c[0], c[1], (idx % 3 == 1) ? 3 : (idx % 3 == 2 ? 1 : 0), idx % 6,
                  "skinny");
              ++idx;
            }
    // 2..4 rows (columns) of C: one matrix-vector pass each, bias offset per row (column).
    for (int64_t m : {2, 3, 4})
      for (int64_t K : {1, 7, 9, 17, 33, 300})
        for (int64_t L : {1, 3, 8, 17, 31, 300})
          for (int tA = 0; tA < 2; ++tA)
            for (int tB = 0; tB < 2; ++tB)
              for (int m1 = 0; m1 < 2; ++m1) {
                const T* c = ab[idx % 6];
                run(tA, tB, m1 ? Shape{m, L, K} : Shape{L, m, K}, c[0], c[1], idx % 2 ? 3 : 0,
                    idx % 6, "small-m");
                ++idx;
              }
    GemmPathOverride o;
    o.skinny = 0;
    gemm_set_path_override(o);
    for (int64_t m : {1, 3})
    for (int64_t K : {1, 9, 33, 300})
      for (int64_t L : {1, 17, 300})
        for (int tA = 0; tA < 2; ++tA)
          for (int tB = 0; tB < 2; ++tB)
            for (int m1 = 0; m1 < 2; ++m1) {
              const T* c = ab[idx % 6];
              run(tA, tB, m1 ? Shape{m, L, K} : Shape{L, m, K}, c[0], c[1], idx % 2 ? 2 : 0,
                  idx % 6, "blocked-small");
              ++idx;
            }
    gemm_set_path_override({});
    // Large enough for the 2-thread split of the output (chunks of 64, ragged last chunk).
    for (int tA = 0; tA < 2; ++tA)
      for (int tB = 0; tB < 2; ++tB) {
        run(tA, tB, {1, 3001, 700}, T(1), T(0), 1, 1, "skinny-mt");
        run(tA, tB, {2999, 1, 701}, T(0.5), T(-1), 2, 5, "skinny-mt");
        run(tA, tB, {3, 2001, 500}, T(1), T(0.5), 0, 2, "skinny-mt");
      }
  }

  void all() {
    skinny();
    // Edge shapes: 0..3, MR+-1 (6, 12), NR+-1 (4, 8, 16), KC+-1 (256), multiples, primes.
    const std::vector<Shape> shapes = {
        {0, 5, 3},    {5, 0, 3},     {4, 5, 0},     {1, 1, 1},     {2, 3, 1},    {3, 2, 3},
        {5, 7, 9},    {6, 16, 8},    {7, 17, 15},   {11, 15, 4},   {12, 8, 5},   {13, 9, 33},
        {25, 6, 50},  {100, 6, 25},  {40, 16, 150}, {18, 33, 255}, {6, 16, 256}, {7, 31, 257},
        {37, 5, 513}, {48, 64, 64},  {97, 131, 67}, {61, 300, 33}, {130, 47, 97}, {211, 293, 19},
        {50, 4, 3},   {1, 300, 20},  {300, 1, 20},  {64, 100, 300},
        // big enough for 2 threads and several tasks (tile and task edges, K > KC)
        {150, 200, 300}, {257, 67, 129}, {1000, 6, 25}, {64, 500, 70},
        // the AVX-512 tiles: MR 8/12/24 +- 1, NR 16/32 +- 1, KC 128 +- 1
        {23, 65, 127}, {25, 32, 128}, {11, 15, 129}, {13, 17, 64}, {9, 33, 31}};
    const T ab[][2] = {{1, 0}, {-1, 1}, {T(0.5), -1}, {1, T(0.5)}, {0, T(0.5)}, {-1, 0}};
    int idx = 0;
    for (const Shape& s : shapes)
      for (int tA = 0; tA < 2; ++tA)
        for (int tB = 0; tB < 2; ++tB) {
          const T* c = ab[idx % 6];
          run(tA, tB, s, c[0], c[1], (idx % 3 == 1) ? 3 : 0, idx % 6, "auto");
          ++idx;
        }
    // Every path forced on a few shapes that cross tile edges, including K > KC.
    const std::vector<Shape> few = {{13, 9, 33}, {17, 37, 300}, {7, 20, 5}, {64, 70, 130}};
    for (int pa = 0; pa < 2; ++pa)
      for (int kern = 0; kern < gemm_kernel_count<T>(); ++kern)
        for (int pb = 0; pb < 2; ++pb) {
        gemm_set_path_override({pa, kern, pb});
        for (const Shape& s : few)
          for (int tA = 0; tA < 2; ++tA)
            for (int tB = 0; tB < 2; ++tB) {
              const T* c = ab[idx % 6];
              run(tA, tB, s, c[0], c[1], (idx % 2) ? 5 : 0, idx % 6, "forced");
              ++idx;
            }
      }
    gemm_set_path_override({});
    // K-split (small C, K >= 8192): chunk edges, every transpose, epilogues, beta over NaN;
    // and the same products on the tiled path (ksplit off) must agree with the reference too.
    for (int ks = 1; ks >= 0; --ks) {
      GemmPathOverride o;
      o.ksplit = ks;
      gemm_set_path_override(o);
      for (const Shape& s : {Shape{25, 6, 9000}, Shape{7, 13, 8192}, Shape{16, 40, 12289}})
        for (int tA = 0; tA < 2; ++tA)
          for (int tB = 0; tB < 2; ++tB) {
            const T* c = ab[idx % 6];
            run(tA, tB, s, c[0], c[1], (idx % 3 == 1) ? 2 : 0, idx % 6, ks ? "ksplit" : "no-ksplit");
            ++idx;
          }
    }
    gemm_set_path_override({});
    loop_orders(ab, idx);
    batched();
  }

  // The BLIS loop order (K blocks outside the tasks, one KC x NC block of B at a time) against
  // the reference, forced on shapes that cross K blocks, tiles and tasks, and bit-identical to
  // the full-K tasks (the same K blocks, summed in the same order).
  void loop_orders(const T (*ab)[2], int& idx) {
    const std::vector<Shape> shapes = {{13, 9, 33}, {17, 37, 300}, {64, 70, 513}, {130, 47, 97},
                                       {97, 131, 600}, {1, 40, 700}, {300, 1, 257}};
    for (int order = 0; order < 2; ++order) {
      GemmPathOverride o;
      o.k_blocks_outside = order;
      o.skinny = 0;
      gemm_set_path_override(o);
      for (const Shape& s : shapes)
        for (int tA = 0; tA < 2; ++tA)
          for (int tB = 0; tB < 2; ++tB) {
            const T* c = ab[idx % 6];
            run(tA, tB, s, c[0], c[1], (idx % 3 == 1) ? 3 : 0, idx % 6, order ? "k-outside" : "k-inside");
            ++idx;
          }
    }
    for (const Shape& s : {Shape{97, 131, 600}, Shape{200, 70, 1030}, Shape{300, 700, 300}})
      for (int tA = 0; tA < 2; ++tA)
        for (int tB = 0; tB < 2; ++tB) {
          const int64_t M = s.M, N = s.N, K = s.K;
          std::vector<T> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * N)),
              bias(static_cast<size_t>(N)), C0(static_cast<size_t>(M * N));
          fill(A); fill(B); fill(bias); fill(C0);
          std::vector<T> C1 = C0, C2 = C0;
          const Epilogue<T> ep{bias.data(), BiasAxis::per_col, Act::relu};
          // 0: full-K tasks; 1: BLIS order; 2: BLIS order with A packed (a packed A block
          // reused by a thread's next task of the same rows at 2 threads).
          for (int order = 0; order < 3; ++order) {
            GemmPathOverride o;
            o.k_blocks_outside = order > 0;
            if (order == 2) o.pack_a = 1;
            o.load_backoff = 0;
            gemm_set_path_override(o);
            gemm<T>(tA, tB, M, N, K, T(0.5), A.data(), tA ? M : K, B.data(), tB ? K : N, T(-1),
                    (order == 0 ? C0 : order == 1 ? C1 : C2).data(), N, &ep);
          }
          bool same = true;
          for (size_t i = 0; i < C0.size(); ++i) same = same && C0[i] == C1[i] && C0[i] == C2[i];
          CHECK_MSG(same, "loop orders differ: tA=%d tB=%d M=%lld N=%lld K=%lld", tA, tB,
                    (long long)M, (long long)N, (long long)K);
        }
    gemm_set_path_override({});
  }
};

int main() {
  std::vector<Isa> isas = {Isa::portable};
  if (cpu_supports_avx2_fma()) isas.push_back(Isa::avx2);
  if (cpu_supports_avx512()) isas.push_back(Isa::avx512);
  int cases = 0;
  for (Isa isa : isas)
    for (int thr : {1, 2}) {
      CHECK(set_isa(isa));
      set_num_threads(thr);
      Runner<float> rf;
      rf.all();
      Runner<double> rd;
      rd.all();
      cases += rf.cases + rd.cases;
      std::printf("isa=%s threads=%d: kernel f32 N=300 '%s', N=6 '%s'; f64 N=300 '%s'\n",
                  isa_name(isa), thr, gemm_kernel_name<float>(256, 300), gemm_kernel_name<float>(256, 6),
                  gemm_kernel_name<double>(256, 300));
    }
  set_num_threads(0);
  std::printf("%d gemm cases\n", cases);
  TEST_MAIN_END();
}
