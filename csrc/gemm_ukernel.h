// The register-blocked GEMM micro-kernel body shared by the ISA translation units
// (gemm_kernel_avx2.cpp, gemm_kernel_avx512.cpp; contract in gemm_kernel.h). Each TU includes
// it after <immintrin.h> and instantiates it with its own vector traits VT<T>, which give:
//   R (register type), W (lanes), zero, set1, bcast, loadu, storeu, fma, mul,
//   mask(lanes) for 0 < lanes < W, maskload(p, m), maskstore(p, m, x), and
//   store_first(p, lanes, m, x): the first `lanes` lanes (m = mask(lanes)).
// The anonymous namespace is deliberate: every TU gets its own copy, compiled with its own
// ISA flags, so the linker can never hand one TU's instructions to a CPU that lacks them.
#pragma once
#include <cstdint>
#include <type_traits>

namespace lamina {
namespace {

// MR rows x NV vectors: MR*NV accumulators stay in registers for the whole k loop (all loops
// over i and v are unrolled). kPacked: a_rs = 1, a_cs = MR known at compile time.
template <template <class> class VT, class T, int MR, int NV, bool kPacked>
__attribute__((always_inline)) inline void ukernel(int64_t kc, const T* A, int64_t a_rs,
                                                   int64_t a_cs, const T* Bp, int64_t b_rs,
                                                   T* C, int64_t ldc, T alpha, T beta,
                                                   int64_t mv, int64_t nv) {
  using X = VT<T>;
  constexpr int W = X::W;
  const int64_t rs = kPacked ? 1 : a_rs;
  const int64_t cs = kPacked ? MR : a_cs;
  typename X::R acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = X::zero();

  // The C tile: for a short k loop, fetch it into L1 with write intent now (for short K, a
  // conv's dX with K = 16, the C traffic is the cost); for a long one, into L2 now and into L1
  // only kPrefetchC steps before the end -- C rows a multiple of 4 KiB apart share one L1 set,
  // and lines fetched into L1 at the start are evicted by the A and B streams before the
  // stores (measured 1024^3 f32, 1 thread: see gemm.cpp).
  constexpr int kRowBytes = NV * W * int(sizeof(T));
  constexpr int64_t kPrefetchC = 24;
  const bool late_c = kc > 2 * kPrefetchC;
  auto prefetch_c = [&](auto to_l1) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int off = 0; off < kRowBytes; off += 64) {
        const char* line = reinterpret_cast<const char*>(C + i * ldc) + off;
        if constexpr (decltype(to_l1)::value) __builtin_prefetch(line, 1, 3);
        else __builtin_prefetch(line, 0, 2);
      }
  };
  if (late_c) prefetch_c(std::false_type{});
  else prefetch_c(std::true_type{});

  // A rows in groups of 3 (base + {0, 1, 2} * rs): few integer registers for a strided A.
  constexpr int G = (MR + 2) / 3;
  const T* ag[G];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) ag[g] = A + 3 * g * rs;

  auto k_steps = [&](int64_t n) {
#pragma GCC unroll 1
    for (int64_t k = 0; k < n; ++k) {
      typename X::R bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = X::loadu(Bp + v * W);
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) {
        const typename X::R ai = X::bcast(ag[i / 3] + (i % 3) * rs);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = X::fma(ai, bv[v], acc[i][v]);
      }
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) ag[g] += cs;
      Bp += b_rs;
    }
  };
  if (late_c) {
    k_steps(kc - kPrefetchC);
    prefetch_c(std::true_type{});
    k_steps(kPrefetchC);
  } else {
    k_steps(kc);
  }

  const typename X::R va = X::set1(alpha);
  const typename X::R vb = X::set1(beta);
  if (mv == MR && nv == NV * W) {
    // alpha == 1 skips the scaling multiply and beta == 1 the multiply of C: x * 1 is exact,
    // so the bits are those of the general form, with 16-32 fewer FMA-port operations per tile
    // (GEMM calls from the layers, and every K block after the first, have alpha = beta = 1).
    if (beta == T(0) && alpha == T(1)) {
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) X::storeu(C + i * ldc + v * W, acc[i][v]);
    } else if (beta == T(0)) {
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) X::storeu(C + i * ldc + v * W, X::mul(acc[i][v], va));
    } else if (beta == T(1)) {
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          T* c = C + i * ldc + v * W;
          X::storeu(c, X::fma(acc[i][v], va, X::loadu(c)));
        }
    } else {
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          T* c = C + i * ldc + v * W;
          X::storeu(c, X::fma(acc[i][v], va, X::mul(vb, X::loadu(c))));
        }
    }
    return;
  }
  // Edge tile: only rows < mv and columns < nv are read or written (partial vectors). The
  // accumulators go through a stack tile first: kept in registers beside the masks and the
  // alpha / beta vectors here, they were spilled by the register allocator at every k step
  // of the loop above instead (measured f32 1 thread, Zen 4 AVX2: 50176x6x25 NT 22.5 -> 25.1
  // GFLOP/s, 6400x16x150 NT 40 -> 55).
  alignas(64) T tile[MR * NV * W];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) X::storeu(tile + (i * NV + v) * W, acc[i][v]);
  asm volatile("" : : "r"(tile) : "memory");  // the tile stays in memory
  for (int64_t i = 0; i < mv; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int64_t lanes = nv - v * W;
      T* c = C + i * ldc + v * W;
      const typename X::R t = X::loadu(tile + (i * NV + v) * W);
      if (lanes >= W) {
        typename X::R r = X::mul(t, va);
        if (beta != T(0)) r = X::fma(vb, X::loadu(c), r);
        X::storeu(c, r);
      } else if (lanes > 0) {
        const auto m = X::mask(lanes);
        typename X::R r = X::mul(t, va);
        if (beta != T(0)) r = X::fma(vb, X::maskload(c, m), r);
        X::store_first(c, lanes, m, r);
      }
    }
  }
}

#define LAMINA_UKERNEL(VT, NAME, T, MR, NV)                                                     \
  void NAME##_packed(int64_t kc, const T* A, int64_t a_rs, int64_t a_cs, const T* Bp,        \
                     int64_t b_rs, T* C, int64_t ldc, T alpha, T beta, int64_t mv,            \
                     int64_t nv) {                                                            \
    ukernel<VT, T, MR, NV, true>(kc, A, a_rs, a_cs, Bp, b_rs, C, ldc, alpha, beta, mv, nv);   \
  }                                                                                           \
  void NAME##_strided(int64_t kc, const T* A, int64_t a_rs, int64_t a_cs, const T* Bp,       \
                      int64_t b_rs, T* C, int64_t ldc, T alpha, T beta, int64_t mv,           \
                      int64_t nv) {                                                           \
    ukernel<VT, T, MR, NV, false>(kc, A, a_rs, a_cs, Bp, b_rs, C, ldc, alpha, beta, mv, nv);  \
  }

}  // namespace
}  // namespace lamina
