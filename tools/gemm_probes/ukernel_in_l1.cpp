#include "gemm_kernel.h"
#include <chrono>
#include <cstdio>
#include <vector>
#include <cstdlib>
using namespace lamina;
int main(int argc, char** argv) {
  int variant = argc > 1 ? atoi(argv[1]) : 1;
  int kc = argc > 2 ? atoi(argv[2]) : 256;
  int ntile = argc > 3 ? atoi(argv[3]) : 1;   // how many A micro-panels per B panel (L2 traffic)
  auto k = gemm_kernel_avx512<float>(variant);
  int MR = k.mr, NR = k.nr;
  float* A = (float*)aligned_alloc(64, sizeof(float) * MR * kc * ntile);
  float* B = (float*)aligned_alloc(64, sizeof(float) * NR * kc);
  float* C = (float*)aligned_alloc(64, sizeof(float) * MR * NR * ntile * 2);
  for (int i = 0; i < MR * kc * ntile; ++i) A[i] = 1e-3f * (i % 7);
  for (int i = 0; i < NR * kc; ++i) B[i] = 1e-3f * (i % 5);
  const int reps = 200000 / ntile;
  double best = 1e9;
  for (int r = 0; r < 5; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int it = 0; it < reps; ++it)
      for (int t = 0; t < ntile; ++t)
        k.packed(kc, A + t * MR * kc, 1, MR, B, NR, C + t * MR * NR, NR, 1.f, 0.f, MR, NR);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
  }
  printf("%s kc %d ntile %d: %.1f GFLOP/s\n", k.name, kc, ntile, 2.0 * MR * NR * kc * reps * ntile / best * 1e-9);
}
