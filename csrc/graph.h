// Graph executor: runs a planned training (or inference) step -- a flat list of kernel calls
// over buffer slots -- in one call, with no Python in the loop.
//
// A program is a vector of Instr. Every buffer an instruction touches is a slot index into a
// pointer table the caller fills (arena base + planned offset, or an external array such as a
// parameter); slot -1 means "none" (e.g. no bias). Integer attributes (sizes, flags) live in
// i[], constant floats in f[], and hyperparameters that may change between steps (learning
// rate, Adam's step count) are read from the runtime scalar table through sc[].
// Slot layout per op (T = the instruction's dtype; "n" = element count):
//   gemm            slot A, B, C, bias | i: transA, transB, M, N, K, Act, BiasAxis | f: alpha, beta
//                   (contiguous operands: lda = transA ? M : K, ldb = transB ? K : N, ldc = N)
//   act_forward     x, y              | i: n, Activation | f: negative_slope
//   act_backward    x_or_y, dy, dx    | i: n, Activation | f: negative_slope
//   bias_grad_rows  dy, db            | i: N, F
//   ce_forward      logits, target(i64), loss(T scalar), probs, scale(f64 scalar)
//                                     | i: N, C, ignore_index, mean
//   ce_backward     probs, target, dloss(T scalar), scale(f64 scalar), dlogits | i: N, C, ignore_index
//   fill            y                 | i: n | f: value
//   add, sub, mul, div  a, b, y       | i: n            (y = a op b, elementwise)
//   unary           x, y              | i: n, kind (0 neg, 1 exp, 2 log, 3 sin, 4 cos, 5 abs, 6 sign)
//   scale           x, y              | i: n | f: alpha (y = alpha x)
//   copy            x, y              | i: n
//   accumulate      x, y              | i: n            (y += x: in-place gradient accumulation)
//   sgd             param, grad, momentum_buf | i: n | sc: lr, momentum, dampening, weight_decay,
//                                                          nesterov, first_step
//   adam            param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq | i: n, decoupled, amsgrad
//                                     | sc: lr, beta1, beta2, eps, weight_decay, step
//   callback        (none)            | i: callback id (the caller runs it, e.g. under the GIL)
// Convolution and pooling (NCHW; 1-D ops are the 2-D ones with H = KH = 1). "conv" ints are
// i[0..13] = N, C, H, W, K, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
// "pool" ints are i[0..14] = N, C, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
// ceil_mode, count_include_pad, divisor_override (the last two: average pooling only).
//   conv2d_forward  x, w, b, y        | i: conv, [14] Activation on y (0: none; relu in the conv's
//                                       GEMM epilogue, others in place after it)
//                                     | f: negative_slope
//   conv2d_backward x, w, dy, dx, dw, db | i: conv  (dx, dw, db optional; each is overwritten)
//   max_pool2d_forward  x, y, indices(i64)  | i: pool
//   max_pool2d_backward dy, indices, dx     | i: pool
//   avg_pool2d_forward  x, y          | i: pool (dil = 1)
//   avg_pool2d_backward dy, dx        | i: pool (dil = 1)
//   adaptive_avg_pool2d_forward  x, y | i: N, C, H, W, OH, OW
//   adaptive_avg_pool2d_backward dy, dx | i: N, C, H, W, OH, OW
// Pointwise losses (kind 0: MSE, sum (x - t)^2; 1: BCE with logits), summed in double:
//   loss_forward    x, t, loss(T scalar)          | i: n, kind | f: scale   loss = scale * sum
//   loss_backward   x, t, dloss(T scalar), dx     | i: n, kind | f: scale
//                   dx = T(2 dloss scale) (x - t) (MSE) or T(dloss scale) (sigmoid(x) - t) (BCE)
// Broadcasting elementwise ops: the full operand x and y are (outer, mid, inner), the small one
// s is (mid) and repeats over outer and inner (a bias (F) on (N, F), (C, 1, 1) on (N, C, H, W),
// a scalar with mid = 1).
//   broadcast         x, s, y         | i: outer, mid, inner, kind (0: x + s, 1: x - s, 2: s - x,
//                                                                     3: x * s, 4: x / s)
//   reduce_broadcast  dy, x, ds       | i: outer, mid, inner | f: alpha
//                                       ds[m] = alpha * sum_{o,i} dy[o,m,i] (* x[o,m,i] if x given)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lamina {
namespace graph {

enum class Op : int32_t {
  gemm = 0, act_forward = 1, act_backward = 2, bias_grad_rows = 3, ce_forward = 4,
  ce_backward = 5, fill = 6, add = 7, sub = 8, mul = 9, scale = 10, copy = 11,
  accumulate = 12, sgd = 13, adam = 14, callback = 15, conv2d_forward = 16, conv2d_backward = 17,
  max_pool2d_forward = 18, max_pool2d_backward = 19, avg_pool2d_forward = 20, avg_pool2d_backward = 21,
  adaptive_avg_pool2d_forward = 22, adaptive_avg_pool2d_backward = 23, broadcast = 24,
  reduce_broadcast = 25, div = 26, unary = 27, loss_forward = 28, loss_backward = 29
};
constexpr int32_t kLastOp = 29;
enum class DType : int32_t { f32 = 0, f64 = 1, i64 = 2 };

constexpr int kSlots = 6, kInts = 16, kFloats = 2, kScalars = 6;

struct Instr {
  Op op = Op::fill;
  DType dtype = DType::f32;
  int32_t slot[kSlots] = {-1, -1, -1, -1, -1, -1};
  int64_t i[kInts] = {};
  double f[kFloats] = {0, 0};
  int32_t sc[kScalars] = {-1, -1, -1, -1, -1, -1};
};

const char* op_name(Op op);

// Checks every instruction against the slot table before anything runs: slot indices in
// range, each buffer large enough for what the op touches (slot_bytes[k]), scalar indices in
// range, attribute values valid. Returns "" or a message naming the instruction and field.
std::string validate(const std::vector<Instr>& program, const std::vector<int64_t>& slot_bytes,
                     int64_t n_scalars);

// Called for Op::callback; returns false to abort the run (the caller keeps its own error).
using Callback = bool (*)(void* user, int64_t callback_id);

// Runs the program. slots[k] = base pointer of slot k. Returns -1 on success, else the index
// of the failing instruction, with a message in *error.
int64_t run(const std::vector<Instr>& program, void* const* slots, const double* scalars,
            Callback callback, void* user, std::string* error);

}  // namespace graph
}  // namespace lamina
