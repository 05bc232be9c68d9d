// Placeholder GEMM: correct reference loops. Replaced by the blocked/packed implementation.
#include "gemm.h"

#include <cmath>

namespace lamina {

template <class T>
static inline T apply_act(T v, Act act) {
  switch (act) {
    case Act::relu: return v > T(0) ? v : T(0);
    case Act::sigmoid: return T(1) / (T(1) + std::exp(-v));
    case Act::tanh: return std::tanh(v);
    default: return v;
  }
}

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

template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const Epilogue<T>* ep) {
  gemm_reference(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ep);
}

template <class T>
void gemm_strided_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha,
                          const T* A, int64_t lda, int64_t strideA, const T* B, int64_t ldb,
                          int64_t strideB, T beta, T* C, int64_t ldc, int64_t strideC,
                          int64_t batch, const Epilogue<T>* ep, int64_t bias_stride) {
  for (int64_t b = 0; b < batch; ++b) {
    Epilogue<T> e;
    if (ep) { e = *ep; if (e.bias) e.bias += b * bias_stride; }
    gemm(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
         C + b * strideC, ldc, ep ? &e : nullptr);
  }
}

#define LAMINA_INSTANTIATE_GEMM(T)                                                            \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t, const Epilogue<T>*);                           \
  template void gemm_reference<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t,  \
                                  const T*, int64_t, T, T*, int64_t, const Epilogue<T>*);       \
  template void gemm_strided_batched<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*,     \
                                        int64_t, int64_t, const T*, int64_t, int64_t, T, T*,    \
                                        int64_t, int64_t, int64_t, const Epilogue<T>*, int64_t);
LAMINA_INSTANTIATE_GEMM(float)
LAMINA_INSTANTIATE_GEMM(double)

}  // namespace lamina
