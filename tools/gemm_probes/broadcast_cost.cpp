#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <ctime>
static double tnow() { timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
// 24 chains; every L-th FMA uses a loaded operand. MODE 0: vbroadcastss distinct addrs; 1: vmovups zmm; 2: embedded bcast; 3: bcast same addr
template <int L, int MODE>
__attribute__((noinline)) float probe(long iters, const float* p) {
  __m512 acc[24];
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(float(i));
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) {
      if (L > 0 && i % L == 0) {
        __m512 t;
        if (MODE == 0) asm volatile("vbroadcastss %c1(%2), %0" : "=v"(t) : "i"(4 * i), "r"(p));
        if (MODE == 1) asm volatile("vmovups %c1(%2), %0" : "=v"(t) : "i"(64 * (i % 4)), "r"(p));
        if (MODE == 3) asm volatile("vbroadcastss (%1), %0" : "=v"(t) : "r"(p));
        if (MODE == 2) { asm volatile("vfmadd213ps %c2(%1)%{1to16%}, %3, %0" : "+v"(acc[i]) : "r"(p), "i"(4 * i), "v"(x)); continue; }
        acc[i] = _mm512_fmadd_ps(acc[i], t, y);
      } else acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_cvtss_f32(s);
}
template <int L, int MODE> void bench() {
  alignas(64) float buf[256]; for (auto& v : buf) v = 0.999999f;
  long iters = 10000000; double best = 1e9; float sink = 0;
  for (int r = 0; r < 5; ++r) {
    double t0 = tnow();
    sink += probe<L, MODE>(iters, buf);
    best = std::min(best, tnow() - t0);
  }
  printf("mode %d load every %d FMAs: %.1f GFLOP/s (%g)\n", MODE, L, iters * 24.0 * 32 / best * 1e-9, sink);
}
int main() { bench<0,0>(); bench<3,0>(); bench<2,0>(); bench<2,1>(); bench<2,3>(); bench<2,2>(); bench<1,0>(); bench<1,1>(); bench<3,1>(); bench<0,0>(); }
