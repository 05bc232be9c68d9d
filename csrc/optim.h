// Optimizer family: in-place parameter updates over flat arrays, with exactly PyTorch's
// torch.optim.SGD / Adam / AdamW arithmetic (same order of operations, hyperparameters cast
// to T as PyTorch casts Python scalars for a T tensor). Bias corrections are computed in
// double. Arrays above ~32K elements per thread are split over OpenMP threads.
#pragma once
#include <cstdint>

namespace lamina {

// torch.optim.SGD for one parameter:
//   g = grad + weight_decay * param
//   if momentum != 0:
//     buf = g                                          (first_step: buffer initialised to g)
//     buf = momentum * buf + (1 - dampening) * g       (later steps)
//     g = nesterov ? g + momentum * buf : buf
//   param -= lr * g
// momentum_buf may be null when momentum == 0.
template <class T>
void sgd_step(int64_t n, T* param, const T* grad, T* momentum_buf, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool first_step);

// torch.optim.Adam (decoupled = false) / AdamW (decoupled = true) for one parameter.
// `step` is the step count AFTER this update (1 on the first call).
//   decoupled: param *= 1 - lr * weight_decay      else: g = grad + weight_decay * param
//   m = m + (1 - beta1) * (g - m)                   (torch's lerp)
//   v = beta2 * v + (1 - beta2) * g * g
//   amsgrad: vmax = max(vmax, v), v_hat = vmax      else v_hat = v
//   denom = sqrt(v_hat) / sqrt(1 - beta2^step) + eps   (eps after the corrected sqrt)
//   param -= lr / (1 - beta1^step) * m / denom
// max_exp_avg_sq may be null unless amsgrad.
template <class T>
void adam_step(int64_t n, T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
               int64_t step, double lr, double beta1, double beta2, double eps, double weight_decay,
               bool decoupled, bool amsgrad);

}  // namespace lamina
