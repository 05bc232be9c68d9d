// Normalization and dropout family: BatchNorm, LayerNorm, GroupNorm and Dropout/Dropout2d,
// forward and backward side by side, with PyTorch's semantics (torch.nn.functional.batch_norm,
// layer_norm, group_norm, dropout, dropout2d).
//
// Determinism: every reduction has one fixed order. A channel's (BatchNorm) or a row's
// (LayerNorm, GroupNorm) statistics are summed by the one thread that owns it, in double, in
// 8 interleaved partial sums combined in a fixed tree (NormRows below); the AVX2 path keeps that
// order exactly, so the portable and AVX2 paths give bit-identical results, and a result never
// depends on the thread count. Weight gradients are summed per channel / column by one thread.
// Dropout's mask comes in from the caller, drawn before the kernel runs (PyTorch's sequential
// draws), so the threads only apply it.
#pragma once
#include <cstdint>

namespace lamina {

// ---- BatchNorm over x (N, C, S), S = product of the spatial dims (1 for (N, C) input).
// training: normalize with the batch mean and biased variance; if running_mean/running_var are
//   given, update them in place: r = (1 - momentum) r + momentum * stat, with the unbiased
//   variance (M / (M - 1), M = N * S). momentum is the averaging factor itself (the caller
//   passes 1 / num_batches_tracked for PyTorch's momentum=None cumulative average).
// eval (training = false): normalize with running_mean / running_var (both required).
// y = (x - mean) * invstd * weight + bias, computed as x * a + b with a = weight * invstd,
// b = bias - mean * a per channel (weight/bias may be null: 1 and 0); relu: y = max(0, y).
// save_mean / save_invstd (C) receive the statistics used, for the backward.
template <class T>
void batch_norm_forward(int64_t N, int64_t C, int64_t S, const T* x, const T* weight, const T* bias,
                        bool training, T* running_mean, T* running_var, double momentum, double eps,
                        bool relu, T* y, T* save_mean, T* save_invstd);

// The whole BatchNorm backward in one pass pair per channel (sums, then dx), no chain of
// elementwise ops. y (the forward output) is given when the forward fused a ReLU: dy is then
// masked by y > 0 first. training: the batch statistics depend on x, so
//   dx = w invstd (dy - mean(dy) - xhat mean(dy xhat)),   xhat = (x - mean) invstd;
// eval: dx = w invstd dy. dweight = sum dy xhat, dbias = sum dy. dx, dweight, dbias may be null.
template <class T>
void batch_norm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* dy, const T* y,
                         const T* weight, const T* save_mean, const T* save_invstd, bool training, T* dx,
                         T* dweight, T* dbias);

// ---- LayerNorm over x (R, K): each row normalized over its K elements, then an elementwise
// affine with weight/bias (K) (null: none). mean / rstd (R) receive each row's statistics.
template <class T>
void layer_norm_forward(int64_t R, int64_t K, const T* x, const T* weight, const T* bias, double eps, T* y,
                        T* mean, T* rstd);
template <class T>
void layer_norm_backward(int64_t R, int64_t K, const T* x, const T* dy, const T* weight, const T* mean,
                         const T* rstd, T* dx, T* dweight, T* dbias);

// ---- GroupNorm over x (N, C, S) with G groups of C / G channels: each (n, g) block of
// (C / G) * S contiguous elements is normalized, then a per-channel affine (weight/bias (C)).
// mean / rstd are (N, G).
template <class T>
void group_norm_forward(int64_t N, int64_t C, int64_t S, int64_t G, const T* x, const T* weight,
                        const T* bias, double eps, T* y, T* mean, T* rstd);
template <class T>
void group_norm_backward(int64_t N, int64_t C, int64_t S, int64_t G, const T* x, const T* dy,
                         const T* weight, const T* mean, const T* rstd, T* dx, T* dweight, T* dbias);

// ---- Dropout over x (R, S): y = x * noise[r] for unit r (S elements: 1 for Dropout, H * W for
// Dropout2d's channels), noise[r] = keep[r] ? 1 / (1 - p) : 0 computed in T, as PyTorch's
// x * noise (so a dropped -x is -0 and a dropped inf or NaN is NaN, as there). The caller draws
// the keep mask (lamina.random: PyTorch's draws); the backward is the same call on dy with the
// same mask. y may be x (in place).
template <class T>
void dropout_apply(int64_t R, int64_t S, const T* x, T* y, const uint8_t* keep, double p);

namespace detail {
// The row primitives every kernel above is built from; one table per ISA, chosen at run time.
// Sums are in double: 8 interleaved partial sums over the whole groups of 8, combined
// ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7)), then the tail added in order.
template <class T>
struct NormRows {
  double (*sum)(const T* x, int64_t n);
  double (*centered_sq)(const T* x, int64_t n, double mean);  // sum (x - mean)^2
  // sum dy' and sum dy' (x - mean), where dy' = (y == null || y > 0) ? dy : 0
  void (*grad_sums)(const T* x, const T* dy, const T* y, int64_t n, double mean, double* sum_dy,
                    double* sum_dy_xc);
  // out = x * a + b, then max(0, out) if relu (a NaN stays NaN); out may be x
  void (*affine)(const T* x, T* out, int64_t n, T a, T b, bool relu);
  // dx = dy' * a + (x - m) * b + c, or dy' * a + c when x is null; dx may be dy
  void (*grad_affine)(const T* x, const T* dy, const T* y, T* dx, int64_t n, T m, T a, T b, T c);
};
template <class T>
const NormRows<T>& norm_rows();  // for active_isa()
template <class T>
const NormRows<T>& norm_rows_portable();
#if defined(LAMINA_X86)
const NormRows<float>& norm_rows_avx2_f32();  // norm_avx2.cpp
const NormRows<double>& norm_rows_avx2_f64();
#endif
}  // namespace detail

}  // namespace lamina
