
#include <immintrin.h>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <algorithm>
static double tnow() { timespec ts; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
// C[8x48] (ldc) += A(packed 8/k) * B(packed 48/k), kc even
__attribute__((noinline)) void k8x48(long kc, const float* a, const float* b, float* c, long ldc) {
  long n = kc / 2;
  asm volatile(
    "vpxorq %%zmm8,%%zmm8,%%zmm8\n\t"
    "vpxorq %%zmm9,%%zmm9,%%zmm9\n\t"
    "vpxorq %%zmm10,%%zmm10,%%zmm10\n\t"
    "vpxorq %%zmm11,%%zmm11,%%zmm11\n\t"
    "vpxorq %%zmm12,%%zmm12,%%zmm12\n\t"
    "vpxorq %%zmm13,%%zmm13,%%zmm13\n\t"
    "vpxorq %%zmm14,%%zmm14,%%zmm14\n\t"
    "vpxorq %%zmm15,%%zmm15,%%zmm15\n\t"
    "vpxorq %%zmm16,%%zmm16,%%zmm16\n\t"
    "vpxorq %%zmm17,%%zmm17,%%zmm17\n\t"
    "vpxorq %%zmm18,%%zmm18,%%zmm18\n\t"
    "vpxorq %%zmm19,%%zmm19,%%zmm19\n\t"
    "vpxorq %%zmm20,%%zmm20,%%zmm20\n\t"
    "vpxorq %%zmm21,%%zmm21,%%zmm21\n\t"
    "vpxorq %%zmm22,%%zmm22,%%zmm22\n\t"
    "vpxorq %%zmm23,%%zmm23,%%zmm23\n\t"
    "vpxorq %%zmm24,%%zmm24,%%zmm24\n\t"
    "vpxorq %%zmm25,%%zmm25,%%zmm25\n\t"
    "vpxorq %%zmm26,%%zmm26,%%zmm26\n\t"
    "vpxorq %%zmm27,%%zmm27,%%zmm27\n\t"
    "vpxorq %%zmm28,%%zmm28,%%zmm28\n\t"
    "vpxorq %%zmm29,%%zmm29,%%zmm29\n\t"
    "vpxorq %%zmm30,%%zmm30,%%zmm30\n\t"
    "vpxorq %%zmm31,%%zmm31,%%zmm31\n\t"

    "vmovups (%[b]), %%zmm0\n\t vmovups 64(%[b]), %%zmm1\n\t vmovups 128(%[b]), %%zmm2\n\t"
    "vmovups 192(%[b]), %%zmm3\n\t vmovups 256(%[b]), %%zmm4\n\t vmovups 320(%[b]), %%zmm5\n\t"
    "vbroadcastss (%[a]), %%zmm6\n\t vbroadcastss 4(%[a]), %%zmm7\n\t"
    "1:\n\t"
    "vfmadd231ps %%zmm0, %%zmm6, %%zmm8\n\tvfmadd231ps %%zmm1, %%zmm6, %%zmm16\n\tvfmadd231ps %%zmm2, %%zmm6, %%zmm24\n\tvbroadcastss 8(%[a]), %%zmm6\n\tvfmadd231ps %%zmm0, %%zmm7, %%zmm9\n\tvfmadd231ps %%zmm1, %%zmm7, %%zmm17\n\tvfmadd231ps %%zmm2, %%zmm7, %%zmm25\n\tvbroadcastss 12(%[a]), %%zmm7\n\tvfmadd231ps %%zmm0, %%zmm6, %%zmm10\n\tvfmadd231ps %%zmm1, %%zmm6, %%zmm18\n\tvfmadd231ps %%zmm2, %%zmm6, %%zmm26\n\tvbroadcastss 16(%[a]), %%zmm6\n\tprefetcht0 512(%[a])\n\tvfmadd231ps %%zmm0, %%zmm7, %%zmm11\n\tvfmadd231ps %%zmm1, %%zmm7, %%zmm19\n\tvfmadd231ps %%zmm2, %%zmm7, %%zmm27\n\tvbroadcastss 20(%[a]), %%zmm7\n\tvfmadd231ps %%zmm0, %%zmm6, %%zmm12\n\tvfmadd231ps %%zmm1, %%zmm6, %%zmm20\n\tvfmadd231ps %%zmm2, %%zmm6, %%zmm28\n\tvbroadcastss 24(%[a]), %%zmm6\n\tvfmadd231ps %%zmm0, %%zmm7, %%zmm13\n\tvfmadd231ps %%zmm1, %%zmm7, %%zmm21\n\tvfmadd231ps %%zmm2, %%zmm7, %%zmm29\n\tvbroadcastss 28(%[a]), %%zmm7\n\tvfmadd231ps %%zmm0, %%zmm6, %%zmm14\n\tvfmadd231ps %%zmm1, %%zmm6, %%zmm22\n\tvfmadd231ps %%zmm2, %%zmm6, %%zmm30\n\tvbroadcastss 32(%[a]), %%zmm6\n\tvfmadd231ps %%zmm0, %%zmm7, %%zmm15\n\tvfmadd231ps %%zmm1, %%zmm7, %%zmm23\n\tvfmadd231ps %%zmm2, %%zmm7, %%zmm31\n\tvbroadcastss 36(%[a]), %%zmm7\n\tvmovups 384(%[b]), %%zmm0\n\tvmovups 448(%[b]), %%zmm1\n\tvmovups 512(%[b]), %%zmm2\n\tvfmadd231ps %%zmm3, %%zmm6, %%zmm8\n\tvfmadd231ps %%zmm4, %%zmm6, %%zmm16\n\tvfmadd231ps %%zmm5, %%zmm6, %%zmm24\n\tvbroadcastss 40(%[a]), %%zmm6\n\tvfmadd231ps %%zmm3, %%zmm7, %%zmm9\n\tvfmadd231ps %%zmm4, %%zmm7, %%zmm17\n\tvfmadd231ps %%zmm5, %%zmm7, %%zmm25\n\tvbroadcastss 44(%[a]), %%zmm7\n\tvfmadd231ps %%zmm3, %%zmm6, %%zmm10\n\tvfmadd231ps %%zmm4, %%zmm6, %%zmm18\n\tvfmadd231ps %%zmm5, %%zmm6, %%zmm26\n\tvbroadcastss 48(%[a]), %%zmm6\n\tprefetcht0 544(%[a])\n\tvfmadd231ps %%zmm3, %%zmm7, %%zmm11\n\tvfmadd231ps %%zmm4, %%zmm7, %%zmm19\n\tvfmadd231ps %%zmm5, %%zmm7, %%zmm27\n\tvbroadcastss 52(%[a]), %%zmm7\n\tvfmadd231ps %%zmm3, %%zmm6, %%zmm12\n\tvfmadd231ps %%zmm4, %%zmm6, %%zmm20\n\tvfmadd231ps %%zmm5, %%zmm6, %%zmm28\n\tvbroadcastss 56(%[a]), %%zmm6\n\tvfmadd231ps %%zmm3, %%zmm7, %%zmm13\n\tvfmadd231ps %%zmm4, %%zmm7, %%zmm21\n\tvfmadd231ps %%zmm5, %%zmm7, %%zmm29\n\tvbroadcastss 60(%[a]), %%zmm7\n\tvfmadd231ps %%zmm3, %%zmm6, %%zmm14\n\tvfmadd231ps %%zmm4, %%zmm6, %%zmm22\n\tvfmadd231ps %%zmm5, %%zmm6, %%zmm30\n\tvbroadcastss 64(%[a]), %%zmm6\n\tvfmadd231ps %%zmm3, %%zmm7, %%zmm15\n\tvfmadd231ps %%zmm4, %%zmm7, %%zmm23\n\tvfmadd231ps %%zmm5, %%zmm7, %%zmm31\n\tvbroadcastss 68(%[a]), %%zmm7\n\tvmovups 576(%[b]), %%zmm3\n\tvmovups 640(%[b]), %%zmm4\n\tvmovups 704(%[b]), %%zmm5\n\t"
    "addq $64, %[a]\n\t addq $384, %[b]\n\t decq %[n]\n\t jnz 1b\n\t"

    : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n)
    :
    : "memory", "xmm0","xmm1","xmm2","xmm3","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15","xmm16","xmm17","xmm18","xmm19","xmm20","xmm21","xmm22","xmm23","xmm24","xmm25","xmm26","xmm27","xmm28","xmm29","xmm30","xmm31");
  // store accumulators: need them in C; use a second asm to move zmm8..31 out
  float* cp = c;
  asm volatile("vaddps 0(%0), %%zmm8, %%zmm8\n\tvmovups %%zmm8, 0(%0)" :: "r"(cp + 0*ldc) : "memory");
  asm volatile("vaddps 64(%0), %%zmm16, %%zmm16\n\tvmovups %%zmm16, 64(%0)" :: "r"(cp + 0*ldc) : "memory");
  asm volatile("vaddps 128(%0), %%zmm24, %%zmm24\n\tvmovups %%zmm24, 128(%0)" :: "r"(cp + 0*ldc) : "memory");
  asm volatile("vaddps 0(%0), %%zmm9, %%zmm9\n\tvmovups %%zmm9, 0(%0)" :: "r"(cp + 1*ldc) : "memory");
  asm volatile("vaddps 64(%0), %%zmm17, %%zmm17\n\tvmovups %%zmm17, 64(%0)" :: "r"(cp + 1*ldc) : "memory");
  asm volatile("vaddps 128(%0), %%zmm25, %%zmm25\n\tvmovups %%zmm25, 128(%0)" :: "r"(cp + 1*ldc) : "memory");
  asm volatile("vaddps 0(%0), %%zmm10, %%zmm10\n\tvmovups %%zmm10, 0(%0)" :: "r"(cp + 2*ldc) : "memory");
  asm volatile("vaddps 64(%0), %%zmm18, %%zmm18\n\tvmovups %%zmm18, 64(%0)" :: "r"(cp + 2*ldc) : "memory");
  asm volatile("vaddps 128(%0), %%zmm26, %%zmm26\n\tvmovups %%zmm26, 128(%0)" :: "r"(cp + 2*ldc) : "memory");
  asm volatile("vaddps 0(%0), %%zmm11, %%zmm11\n\tvmovups %%zmm11, 0(%0)" :: "r"(cp + 3*ldc) : "memory");
  asm volatile("vaddps 64(%0), %%zmm19, %%zmm19\n\tvmovups %%zmm19, 64(%0)" :: "r"(cp + 3*ldc) : "memory");
  asm volatile("vaddps 128(%0), %%zmm27, %%zmm27\n\tvmovups %%zmm27, 128(%0)" :: "r"(cp + 3*ldc) : "memory");
  asm volatile("vaddps 0(%0), %%zmm12, %%zmm12\n\tvmovups %%zmm12, 0(%0)" :: "r"(cp + 4*ldc) : "memory");
  asm volatile("vaddps 64(%0), %%zmm20, %%zmm20\n\tvmovups %%zmm20, 64(%0)" :: "r"(cp + 4*ldc) : "memory");
  asm volatile("vaddps 128(%0), %%zmm28, %%zmm28\n\tvmovups %%zmm28, 128(%0)" :: "r"(cp + 4*ldc) : "memory");
  asm volatile("vaddps 0(%0), %%zmm13, %%zmm13\n\tvmovups %%zmm13, 0(%0)" :: "r"(cp + 5*ldc) : "memory");
  asm volatile("vaddps 64(%0), %%zmm21, %%zmm21\n\tvmovups %%zmm21, 64(%0)" :: "r"(cp + 5*ldc) : "memory");
  asm volatile("vaddps 128(%0), %%zmm29, %%zmm29\n\tvmovups %%zmm29, 128(%0)" :: "r"(cp + 5*ldc) : "memory");
  asm volatile("vaddps 0(%0), %%zmm14, %%zmm14\n\tvmovups %%zmm14, 0(%0)" :: "r"(cp + 6*ldc) : "memory");
  asm volatile("vaddps 64(%0), %%zmm22, %%zmm22\n\tvmovups %%zmm22, 64(%0)" :: "r"(cp + 6*ldc) : "memory");
  asm volatile("vaddps 128(%0), %%zmm30, %%zmm30\n\tvmovups %%zmm30, 128(%0)" :: "r"(cp + 6*ldc) : "memory");
  asm volatile("vaddps 0(%0), %%zmm15, %%zmm15\n\tvmovups %%zmm15, 0(%0)" :: "r"(cp + 7*ldc) : "memory");
  asm volatile("vaddps 64(%0), %%zmm23, %%zmm23\n\tvmovups %%zmm23, 64(%0)" :: "r"(cp + 7*ldc) : "memory");
  asm volatile("vaddps 128(%0), %%zmm31, %%zmm31\n\tvmovups %%zmm31, 128(%0)" :: "r"(cp + 7*ldc) : "memory");

}
int main(int argc, char** argv) {
  int kc = argc > 1 ? atoi(argv[1]) : 256;
  float* A = (float*)aligned_alloc(64, 4 * 8 * (kc + 8));
  float* B = (float*)aligned_alloc(64, 4 * 48 * (kc + 4));
  float* C = (float*)aligned_alloc(64, 4 * 8 * 48);
  for (int i = 0; i < 8 * (kc + 8); ++i) A[i] = 1e-3f * (i % 7);
  for (int i = 0; i < 48 * (kc + 4); ++i) B[i] = 1e-3f * (i % 5);
  for (int i = 0; i < 8 * 48; ++i) C[i] = 0;
  long reps = 400000000L / (8 * 48 * kc);
  double best = 1e9;
  for (int r = 0; r < 7; ++r) {
    double t0 = tnow();
    for (long it = 0; it < reps; ++it) k8x48(kc, A, B, C, 48);
    best = std::min(best, tnow() - t0);
  }
  // check one value
  double ref = 0; for (int k = 0; k < kc; ++k) ref += double(A[k * 8 + 3]) * B[k * 48 + 17];
  printf("asm 8x48 kc %d: %.1f GFLOP/s  (C[3][17]/reps %.6g vs %.6g)\n", kc, 2.0 * 8 * 48 * kc * reps / best * 1e-9, C[3*48+17] / (7.0 * reps), ref);
}
