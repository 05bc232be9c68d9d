// GEMM paths for shapes the five-loop driver serves badly:
// - skinny (M == 1 or N == 1): a matrix-vector pass reading the big operand once, in place;
// - K-split (a small C over a long K, e.g. a conv weight gradient): K cut into fixed chunks
//   computed on the team, their partial products summed in chunk order (same bits for any
//   thread count).
#include <algorithm>

#include "cpu.h"
#include "gemm_internal.h"
#include "thread_team.h"
#include "workspace.h"

namespace lamina {
namespace gemm_detail {

using namespace tuning;

namespace {
thread_local AlignedBuffer tl_ksplit;  // the calling thread's partial products, chunk after chunk
thread_local AlignedBuffer tl_skinny;  // raw sums (n) and, for a strided x in dot form, x (K)
}  // namespace

template <class T>
void gemm_ksplit(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                 int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                 const Epilogue<T>* ep, int max_threads) {
  const int64_t nchunks = ceil_div(K, kKSplitChunk), mn = M * N;
  T* part = tl_ksplit.elems<T>(nchunks * mn);
  auto chunk = [&](int64_t c) {  // part[c] = alpha * op(A)[:, k0:k1] @ op(B)[k0:k1, :]
    const int64_t k0 = c * kKSplitChunk, kl = std::min(kKSplitChunk, K - k0);
    gemm_impl(transA, transB, M, N, kl, alpha, transA ? A + k0 * lda : A + k0, lda,
              transB ? B + k0 : B + k0 * ldb, ldb, T(0), part + c * mn, N,
              static_cast<const Epilogue<T>*>(nullptr), 1);
  };
  parallel_tasks(nchunks, team_size(2.0 * double(mn) * double(K), kMinFlopsPerThread, max_threads),
                 chunk);
  // Chunks summed in order 0, 1, 2, ...: the same bits whichever thread computed which chunk.
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    const T* p0 = part + i * N;
    for (int64_t j = 0; j < N; ++j) {
      T acc = p0[j];
      for (int64_t ch = 1; ch < nchunks; ++ch) acc += p0[ch * mn + j];
      c[j] = beta == T(0) ? acc : acc + beta * c[j];  // beta == 0: C is not read
    }
  }
  if (ep) epilogue_tile(*ep, C, ldc, 0, 0, M, N);
}

// ---- skinny path: M == 1 or N == 1 (matrix-vector) --------------------------------------
// The blocked path would pack the whole big operand to use each element once; here it is
// read once, in place. Canonical form: out[o] (o < n, at C + o*incy) = alpha * sum_k
// x[k*incx] * mat(o, k) + beta * out[o], then the epilogue, where mat(o, k) is
// Mat[o*ldm + k] (dot: contiguous dot products) or Mat[k*ldm + o] (axpy: a sweep over rows).
namespace {

template <class T>
void portable_gemv_dot(int64_t n, int64_t K, const T* x, const T* Mat, int64_t ldm, T* y) {
  for (int64_t j = 0; j < n; ++j) {
    const T* r = Mat + j * ldm;
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four chains: the adds are not latency-bound
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      s0 += x[k] * r[k]; s1 += x[k + 1] * r[k + 1];
      s2 += x[k + 2] * r[k + 2]; s3 += x[k + 3] * r[k + 3];
    }
    for (; k < K; ++k) s0 += x[k] * r[k];
    y[j] = (s0 + s1) + (s2 + s3);
  }
}

template <class T>
void portable_gemv_axpy(int64_t n, int64_t K, const T* x, int64_t incx, const T* Mat,
                        int64_t ldm, T* y) {
  for (int64_t j = 0; j < n; ++j) y[j] = T(0);
  for (int64_t k = 0; k < K; ++k) {
    const T xk = x[k * incx];
    const T* r = Mat + k * ldm;
    for (int64_t j = 0; j < n; ++j) y[j] += xk * r[j];  // vectorized by the compiler
  }
}
}  // namespace

template <class T>
void gemm_skinny(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                 int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                 const Epilogue<T>* ep, int max_threads) {
  int64_t n, incx, incy, ldm;
  const T *x, *Mat;
  bool dot, bias_along_out;
  const BiasAxis axis = ep ? ep->bias_axis : BiasAxis::none;
  if (M == 1) {  // y (1 x N) = x (1 x K) @ op(B)
    n = N; incy = 1; x = A; incx = transA ? lda : 1; Mat = B; ldm = ldb; dot = transB;
    bias_along_out = axis == BiasAxis::per_col;
  } else {       // y (M x 1) = op(A) @ b (K x 1)
    n = M; incy = ldc; x = B; incx = transB ? 1 : ldb; Mat = A; ldm = lda; dot = !transA;
    bias_along_out = axis == BiasAxis::per_row;
  }
  const bool gather_x = dot && incx != 1;  // dot kernels read x as one contiguous vector
  T* t = tl_skinny.elems<T>(n + (gather_x ? K : 0));
  if (gather_x) {
    T* xc = t + n;
    for (int64_t k = 0; k < K; ++k) xc[k] = x[k * incx];
    x = xc; incx = 1;
  }
#if defined(LAMINA_X86)
  const bool avx2 = active_isa() >= Isa::avx2;
#endif
  const Epilogue<T> act_only{nullptr, BiasAxis::none, ep ? ep->act : Act::identity};
  auto body = [&](int64_t o0, int64_t o1) {
    const int64_t len = o1 - o0;
#if defined(LAMINA_X86)
    if (avx2) {
      if (dot) gemv_dot_avx2(len, K, x, Mat + o0 * ldm, ldm, t + o0);
      else gemv_axpy_avx2(len, K, x, incx, Mat + o0, ldm, t + o0);
    } else
#endif
    {
      if (dot) portable_gemv_dot(len, K, x, Mat + o0 * ldm, ldm, t + o0);
      else portable_gemv_axpy(len, K, x, incx, Mat + o0, ldm, t + o0);
    }
    // Same order of operations as the blocked path: alpha*acc + beta*c, + bias, act.
    for (int64_t o = o0; o < o1; ++o) {
      T c = alpha * t[o];
      if (beta != T(0)) c += beta * C[o * incy];  // beta == 0: C is not read
      if (axis != BiasAxis::none) c += bias_along_out ? ep->bias[o] : ep->bias[0];
      t[o] = c;
    }
    if (act_only.act != Act::identity) epilogue_tile(act_only, t + o0, 0, 0, 0, 1, len);
    for (int64_t o = o0; o < o1; ++o) C[o * incy] = t[o];
  };

  const int nt = team_size(2.0 * double(n) * double(K), kMinFlopsPerThread, max_threads);
  // Chunks of >= 64 outputs (whole cache lines of C and, in axpy form, of Mat's rows), about
  // four per thread, shared out by the team so a descheduled thread does not stall the other.
  const int64_t chunk = std::max<int64_t>(64, round_up(ceil_div(n, 4 * int64_t(nt)), 64));
  const int64_t nchunks = ceil_div(n, chunk);
  if (nt <= 1 || nchunks <= 1) {
    body(0, n);
    return;
  }
  parallel_tasks(nchunks, nt, [&](int64_t c) { body(c * chunk, std::min(n, (c + 1) * chunk)); });
}

#define LAMINA_INSTANTIATE_GEMM_PATH(NAME, T)                                                  \
  template void NAME<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t, const Epilogue<T>*, int);
LAMINA_INSTANTIATE_GEMM_PATH(gemm_skinny, float)
LAMINA_INSTANTIATE_GEMM_PATH(gemm_skinny, double)
LAMINA_INSTANTIATE_GEMM_PATH(gemm_ksplit, float)
LAMINA_INSTANTIATE_GEMM_PATH(gemm_ksplit, double)

}  // namespace gemm_detail
}  // namespace lamina
