// Elementwise activations and bias broadcasts, forward and backward side by side.
//
// act_forward(kind, n, x, y):           y[i] = f(x[i])
// act_backward(kind, n, x, y, dy, dx):  dx[i] = dy[i] * f'(.)
// Which saved tensor a backward reads (the other pointer may be null):
//   identity, relu, leaky_relu, softplus, step -> x (the input)
//   sigmoid, tanh                            -> y (the output: f' = y(1-y), 1-y^2)
// Kinks: relu'(0) = 0, leaky_relu'(0) = negative_slope, step'(z) = 0 everywhere.
// step(z) = 1 if z > 0 else 0, so step(0) = 0.
// softplus(z) = log(1 + e^z), with PyTorch's beta = 1, threshold = 20 (z > 20 returns z).
// NaN inputs give NaN outputs for every kind (as NumPy: relu(NaN) = NaN, step(NaN) = NaN).
// Accuracy (AVX2 path, float): sigmoid, softplus within ~2e-7 relative, tanh within 3.4e-7
// (a rational approximation, checked on every float; <= 5.6 ulp just below 1); double within
// a few ulp. AVX-512 path (float tanh, sigmoid): within 2 ulp of the float64 value, checked on
// every float (csrc/tests/test_activation_allfloats.cpp: tanh 1.52, sigmoid 1.49 ulp at most). The portable path: float tanh / sigmoid by the same math as AVX-512 in plain
// loops the compiler vectorizes (within 2 ulp); the rest, and double, use the C library.
// NOTE: relu backward passes dy where x is NaN (x <= 0 is false), as PyTorch does.
// In place: y may equal x, and dx may equal dy (or x/y); partial overlap is not allowed.
// Sizes may be 0. Arrays above ~32K elements per thread are split over OpenMP threads.
#pragma once
#include <cstdint>

namespace lamina {

// The one list of activation kinds: the enum, its name table, the Python binding
// (_C.Activation) and every range check are generated from it. Codes are the positions.
#define LAMINA_ACTIVATIONS(X) X(identity) X(relu) X(leaky_relu) X(softplus) X(sigmoid) X(tanh) X(step)

// Not `Act`: gemm.h's Act is the short list of activations its epilogue can fuse.
enum class Activation : int {
#define LAMINA_ACTIVATION_ENUM(name) name,
  LAMINA_ACTIVATIONS(LAMINA_ACTIVATION_ENUM)
#undef LAMINA_ACTIVATION_ENUM
};
#define LAMINA_ACTIVATION_ONE(name) +1
constexpr int kActivationCount = 0 LAMINA_ACTIVATIONS(LAMINA_ACTIVATION_ONE);
#undef LAMINA_ACTIVATION_ONE
// Names in code order (activation_name(kind) == kActivationNames[int(kind)]).
constexpr const char* kActivationNames[] = {
#define LAMINA_ACTIVATION_NAME(name) #name,
    LAMINA_ACTIVATIONS(LAMINA_ACTIVATION_NAME)
#undef LAMINA_ACTIVATION_NAME
};
static_assert(sizeof(kActivationNames) / sizeof(kActivationNames[0]) == kActivationCount,
              "one name per activation kind");
static_assert(kActivationCount == 7, "an activation kind was added: update act_forward/act_backward's switches");
inline bool valid_activation(int64_t code) { return code >= 0 && code < kActivationCount; }

// True when act_backward reads y (the forward output) instead of x.
bool act_backward_reads_y(Activation kind);
const char* activation_name(Activation kind);

template <class T>
void act_forward(Activation kind, int64_t n, const T* x, T* y, T negative_slope = T(0.01));
// x_or_y: x or y as act_backward_reads_y(kind) says.
template <class T>
void act_backward(Activation kind, int64_t n, const T* x_or_y, const T* dy, T* dx,
                  T negative_slope = T(0.01));

// y[n, j] += b[j] over an N x F row-major matrix.
template <class T> void bias_add_rows(int64_t N, int64_t F, T* y, const T* b);
// y[n, c, s] += b[c] over N x C x S (NCHW with S = H*W).
template <class T> void bias_add_channels(int64_t N, int64_t C, int64_t S, T* y, const T* b);
// db[j] = sum_n dy[n, j] (overwrites db). Parallel over j: each db element has one writer.
template <class T> void bias_grad_rows(int64_t N, int64_t F, const T* dy, T* db);
// db[c] = sum_{n,s} dy[n, c, s] (overwrites db). Parallel over c.
template <class T> void bias_grad_channels(int64_t N, int64_t C, int64_t S, const T* dy, T* db);
// Exact GELU, y = x * Phi(x) with Phi(x) = erfc(-x / sqrt(2)) / 2 (float evaluated in double: a
// few ulp from the true value everywhere, also in the left tail); dx = dy * (Phi(x) + x * phi(x)) with
// phi(x) = exp(-x^2 / 2) / sqrt(2 pi). NaN gives NaN. y may equal x, dx may equal dy.
template <class T> void gelu_forward(int64_t n, const T* x, T* y);
template <class T> void gelu_backward(int64_t n, const T* x, const T* dy, T* dx);
// ds[m] = alpha * sum over (o, i) of dy[o, m, i] (of T(dy * x) when x is not null) for an
// (outer, mid, inner) view: the gradient of an operand broadcast over the other dims. With x the
// products are rounded to T into a buffer first, as eager's dy * x array is. The sum: for a scalar
// (mid 1) in double over fixed chunks; otherwise bias_grad_rows / bias_grad_channels. The order
// depends on the sizes and the ISA alone (never the thread count): eager autodiff
// (tensor.reduce_to_shape) and the graph executor both call this, so their gradients are
// bit-identical.
template <class T>
void bias_grad_split(int64_t outer, int64_t mid, int64_t inner, double alpha, const T* dy, const T* x, T* ds);

namespace detail {
// Vector math used by the activation and loss kernels (AVX2 only; call when active_isa() is avx2).
// Range [i0, i1) lets the callers split work across threads; stream = non-temporal stores
// (for outputs much larger than the caches).
void act_forward_avx2(Activation kind, int64_t i0, int64_t i1, const float* x, float* y, float negative_slope,
                      bool stream);
void act_forward_avx2(Activation kind, int64_t i0, int64_t i1, const double* x, double* y, double negative_slope,
                      bool stream);
void act_backward_avx2(Activation kind, int64_t i0, int64_t i1, const float* x_or_y, const float* dy, float* dx,
                       float negative_slope, bool stream);
void act_backward_avx2(Activation kind, int64_t i0, int64_t i1, const double* x_or_y, const double* dy,
                       double* dx, double negative_slope, bool stream);
// AVX-512F float tanh / sigmoid forward over [i0, i1) (activation_avx512.cpp; call only when
// active_isa() == Isa::avx512). Returns false, doing nothing, for the other kinds.
bool act_forward_avx512(Activation kind, int64_t i0, int64_t i1, const float* x, float* y, bool stream);
// y[i] = exp(x[i] - shift), returns sum_i y[i] (accumulated in double); softmax's inner loop.
// Requires x[i] - shift <= 0 or NaN (shift = the row max): the exp has no overflow side.
double exp_shift_sum_avx2(int64_t n, const float* x, float shift, float* y);
double exp_shift_sum_avx2(int64_t n, const double* x, double shift, double* y);
// max of x[0, n) where any NaN makes the result NaN; -inf for n = 0 (softmax's row max).
float max_avx2(int64_t n, const float* x);
double max_avx2(int64_t n, const double* x);
// sum_i a[i] * b[i] and sum_i a[i], accumulated in double (four chains: not one serial add per
// element); softmax / log-softmax backward.
double dot_avx2(int64_t n, const float* a, const float* b);
double dot_avx2(int64_t n, const double* a, const double* b);
double sum_avx2(int64_t n, const float* a);
double sum_avx2(int64_t n, const double* a);
// db[j] = sum_n dy[n * F + j] for j in [j0, j1) (overwrites db[j0, j1)); bias_grad_rows.
void col_sum_avx2(int64_t N, int64_t F, int64_t j0, int64_t j1, const float* dy, float* db);
void col_sum_avx2(int64_t N, int64_t F, int64_t j0, int64_t j1, const double* dy, double* db);
// y[i] = s * x[i]; y may equal x.
void scale_avx2(int64_t n, const float* x, float s, float* y);
void scale_avx2(int64_t n, const double* x, double s, double* y);
// sum over [i0, i1) of max(x,0) - x t + log(1 + e^-|x|) (BCE on logits), accumulated in double.
double bce_with_logits_sum_avx2(int64_t i0, int64_t i1, const float* x, const float* t);
double bce_with_logits_sum_avx2(int64_t i0, int64_t i1, const double* x, const double* t);
// dx[i] = scale * (sigmoid(x[i]) - t[i]) over [i0, i1); dx may equal x or t.
void bce_with_logits_grad_avx2(int64_t i0, int64_t i1, const float* x, const float* t, float scale, float* dx);
void bce_with_logits_grad_avx2(int64_t i0, int64_t i1, const double* x, const double* t, double scale,
                               double* dx);
// Vector exp over an array (tests compare it with std::exp).
void exp_avx2(int64_t n, const float* x, float* y);
void exp_avx2(int64_t n, const double* x, double* y);
}  // namespace detail

}  // namespace lamina
