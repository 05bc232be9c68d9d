// Loss family: row softmax / log-softmax, fused softmax-cross-entropy, MSE and BCE-with-logits,
// forward and backward side by side. Matrices are N x C row-major (one row per sample, the
// class axis last and contiguous). Every exp is shifted by the row max, so logits of 1e4 are
// fine; rows containing +inf or NaN give NaN rows (as PyTorch). Rows are spread over OpenMP
// threads; scalar sums are accumulated in double over fixed chunks and added in chunk order,
// so a loss does not depend on the thread count.
#pragma once
#include <cstdint>
#include <limits>

namespace lamina {

// y = softmax(x) along each row. In place (y == x) is allowed.
template <class T> void softmax_forward(int64_t N, int64_t C, const T* x, T* y);
// dx = y * (dy - sum_j dy_j y_j) per row; dx may equal dy or y.
template <class T> void softmax_backward(int64_t N, int64_t C, const T* y, const T* dy, T* dx);
// y = x - max - log(sum exp(x - max)) per row. y must not overlap x.
template <class T> void log_softmax_forward(int64_t N, int64_t C, const T* x, T* y);
// dx = dy - exp(y) * sum_j dy_j per row; dx may equal dy.
template <class T> void log_softmax_backward(int64_t N, int64_t C, const T* y, const T* dy, T* dx);

// Cross-entropy of logits (N x C) against int64 class indices target (N).
// Writes probs = softmax(logits) (N x C, saved for backward; may equal logits), per-sample
// losses (N, optional: nullptr skips; 0 for ignored rows), and returns through loss_sum
// (sum over rows whose target != ignore_index) and count (number of such rows).
// Return value: -1 on success, else the first row whose target is outside [0, C) and is not
// ignore_index (nothing is written then).
template <class T>
int64_t cross_entropy_forward(int64_t N, int64_t C, const T* logits, const int64_t* target, T* probs,
                              int64_t ignore_index, T* losses, double* loss_sum, int64_t* count);
// dlogits = scale * (probs - onehot(target)); rows with target == ignore_index get 0.
// dlogits may equal probs. Returns -1, or the first bad row as above (nothing written).
template <class T>
int64_t cross_entropy_backward(int64_t N, int64_t C, const T* probs, const int64_t* target, T scale,
                               int64_t ignore_index, T* dlogits);

// The one definition of a reduced loss's scale, used by eager (through _C.loss_scale), the
// graph lowering and the graph executor: 1/count for reduction="mean" (count = the rows not
// ignored, or the elements), 1 for "sum" and for a mean over nothing.
inline double loss_scale(bool mean, int64_t count) { return mean && count > 0 ? 1.0 / static_cast<double>(count) : 1.0; }
// The loss value from its sum: sum * loss_scale; a mean over nothing is NaN, as in PyTorch.
inline double reduced_loss(double sum, bool mean, int64_t count) {
  return mean && count == 0 ? std::numeric_limits<double>::quiet_NaN() : sum * loss_scale(mean, count);
}

// sum_i (x_i - t_i)^2, in double.
template <class T> double mse_forward(int64_t n, const T* x, const T* t);
// dx = scale * (x - t) (scale = 2 * dy / n for a mean). dx may equal x or t.
template <class T> void mse_backward(int64_t n, const T* x, const T* t, T scale, T* dx);

// sum_i [max(x,0) - x t + log(1 + e^-|x|)]  (= -t log s(x) - (1-t) log(1 - s(x)), stable)
template <class T> double bce_with_logits_forward(int64_t n, const T* x, const T* t);
// dx = scale * (sigmoid(x) - t). dx may equal x or t.
template <class T> void bce_with_logits_backward(int64_t n, const T* x, const T* t, T scale, T* dx);

}  // namespace lamina
