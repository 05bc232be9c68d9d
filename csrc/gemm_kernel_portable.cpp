// The portable GEMM micro-kernel (contract in gemm_kernel.h): plain loops the compiler
// vectorizes for the baseline ISA (SSE2 on x86-64, NEON on aarch64), the fallback on any CPU.
#include "gemm_config.h"

namespace lamina {
namespace gemm_detail {

namespace {

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

}  // namespace

template <class T> GemmKernel<T> portable_kernel();
template <> GemmKernel<float> portable_kernel<float>() {
  return {6, 8, portable_ukernel<float, 6, 8, true>, portable_ukernel<float, 6, 8, false>,
          "portable 6x8 f32", 144, false};
}
template <> GemmKernel<double> portable_kernel<double>() {
  return {6, 4, portable_ukernel<double, 6, 4, true>, portable_ukernel<double, 6, 4, false>,
          "portable 6x4 f64", 72, false};
}

}  // namespace gemm_detail
}  // namespace lamina
