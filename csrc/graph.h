// Graph executor: runs a planned training (or inference) step -- a flat list of kernel calls
// over buffer slots -- in one call, with no Python in the loop.
//
// A program is a vector of Instr. Every buffer an instruction touches is a slot index into a
// pointer table the caller fills (arena base + planned offset, or an external array such as a
// parameter); slot -1 means "none" (e.g. no bias). Each op's named attributes are one struct
// (the `attrs` variant holds the op's own kind, checked by validate); hyperparameters that may
// change between steps (learning rate, Adam's step count) are indices into the runtime scalar
// table. Slots per op (T = the instruction's dtype; "n" = element count):
//   gemm            A, B, C, bias                  GemmAttrs (contiguous operands: lda = trans_a ? M : K,
//                                                  ldb = trans_b ? K : N, ldc = N; act: identity, relu,
//                                                  sigmoid or tanh, the GEMM epilogue's list; batch != 1:
//                                                  that many GEMMs, each operand's matrices back to
//                                                  back, no bias, act identity)
//   act_forward     x, y                           ActAttrs
//   act_backward    x_or_y, dy, dx                 ActAttrs
//   bias_grad_rows  dy, db                         BiasGradAttrs
//   ce_forward      logits, target(i64), loss(T scalar), probs, scale(f64 scalar)   CrossEntropyAttrs
//   ce_backward     probs, target, dloss(T scalar), scale(f64 scalar), dlogits       CrossEntropyAttrs
//   fill            y                              FillAttrs
//   add, sub, mul, div  a, b, y                    ElementwiseAttrs (y = a op b)
//   copy            x, y                           ElementwiseAttrs
//   accumulate      x, y                           ElementwiseAttrs (y += x: gradient accumulation)
//   unary           x, y                           UnaryAttrs
//   scale           x, y                           ScaleAttrs (y = alpha x)
//   sgd             param, grad, momentum_buf      SgdAttrs
//   adam            param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq   AdamAttrs
//   callback        (none)                         CallbackAttrs (the caller runs it, e.g. under the GIL)
// Convolution and pooling (NCHW; 1-D ops are the 2-D ones with H = KH = 1):
//   conv2d_forward  x, w, b, y                     ConvAttrs (act on y: relu in the conv's GEMM
//                                                  epilogue, others in place after it)
//   conv2d_backward x, w, dy, dx, dw, db           ConvAttrs (dx, dw, db optional; each overwritten)
//   conv_block_forward  x, w, b, y, code(u8)       ConvAttrs (conv + bias + relu + 2x2/2 max pool:
//                                                  y, code (N, K, OH/2, OW/2); csrc/conv_block.h)
//   conv_block_backward dy, code(u8), dz           ConvAttrs (dz (N, K, OH, OW): the conv's dy)
//   max_pool2d_forward  x, y, indices(i64)         PoolAttrs
//   max_pool2d_backward dy, indices, dx            PoolAttrs
//   avg_pool2d_forward  x, y                       PoolAttrs (dil = 1)
//   avg_pool2d_backward dy, dx                     PoolAttrs (dil = 1)
//   adaptive_avg_pool2d_forward  x, y              AdaptivePoolAttrs
//   adaptive_avg_pool2d_backward dy, dx            AdaptivePoolAttrs
// Pointwise losses (MSE: sum (x - t)^2; BCE with logits), summed in double:
//   loss_forward    x, t, loss(T scalar)           PointwiseLossAttrs  loss = scale * sum
//   loss_backward   x, t, dloss(T scalar), dx      PointwiseLossAttrs
//                   dx = T(2 dloss scale) (x - t) (MSE) or T(dloss scale) (sigmoid(x) - t) (BCE)
// Broadcasting elementwise ops: the full operand x and y are (outer, mid, inner), the small one
// s is (mid) and repeats over outer and inner (a bias (F) on (N, F), (C, 1, 1) on (N, C, H, W),
// a scalar with mid = 1).
//   broadcast         x, s, y                      BroadcastAttrs (y = x + s, x - s, s - x, x * s, x / s)
//   reduce_broadcast  dy, x, ds                    ReduceBroadcastAttrs
//                                       ds[m] = alpha * sum_{o,i} dy[o,m,i] (* x[o,m,i] if x given)
// Batch norm over x (N, C, S) (csrc/norm.h; weight, bias, running stats and
// num_batches_tracked(i64 scalar) optional; relu: the fused BN+ReLU kernel):
//   batch_norm_forward  x, weight, bias, running_mean, running_var, num_batches_tracked,
//                       y, save_mean, save_invstd                        BatchNormAttrs
//   batch_norm_backward x, dy, y (relu only), weight, save_mean, save_invstd, dx, dw, db
//                                                                        BatchNormAttrs
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "activation.h"
#include "conv.h"
#include "gemm.h"
#include "pool.h"

namespace lamina {
namespace graph {

// The one list of graph ops, (name, attribute struct), in code order: the Op enum, the name
// table, the executor's handler table and the Python binding (_C.OpCode) are generated from it.
// A new op is one line here plus its family's handler in graph.cpp.
#define LAMINA_GRAPH_OPS(X)                                                                      \
  X(gemm, GemmAttrs) X(act_forward, ActAttrs) X(act_backward, ActAttrs)                          \
  X(bias_grad_rows, BiasGradAttrs) X(ce_forward, CrossEntropyAttrs)                              \
  X(ce_backward, CrossEntropyAttrs) X(fill, FillAttrs) X(add, ElementwiseAttrs)                  \
  X(sub, ElementwiseAttrs) X(mul, ElementwiseAttrs) X(scale, ScaleAttrs) X(copy, ElementwiseAttrs) \
  X(accumulate, ElementwiseAttrs) X(sgd, SgdAttrs) X(adam, AdamAttrs) X(callback, CallbackAttrs) \
  X(conv2d_forward, ConvAttrs) X(conv2d_backward, ConvAttrs) X(max_pool2d_forward, PoolAttrs)    \
  X(max_pool2d_backward, PoolAttrs) X(avg_pool2d_forward, PoolAttrs)                             \
  X(avg_pool2d_backward, PoolAttrs) X(adaptive_avg_pool2d_forward, AdaptivePoolAttrs)            \
  X(adaptive_avg_pool2d_backward, AdaptivePoolAttrs) X(broadcast, BroadcastAttrs)                \
  X(reduce_broadcast, ReduceBroadcastAttrs) X(div, ElementwiseAttrs) X(unary, UnaryAttrs)        \
  X(loss_forward, PointwiseLossAttrs) X(loss_backward, PointwiseLossAttrs)                     \
  X(batch_norm_forward, BatchNormAttrs) X(batch_norm_backward, BatchNormAttrs)                   \
  X(conv_block_forward, ConvAttrs) X(conv_block_backward, ConvAttrs)

enum class Op : int32_t {
#define LAMINA_GRAPH_OP_ENUM(name, attrs) name,
  LAMINA_GRAPH_OPS(LAMINA_GRAPH_OP_ENUM)
#undef LAMINA_GRAPH_OP_ENUM
};
#define LAMINA_GRAPH_ONE(...) +1
constexpr int32_t kOpCount = 0 LAMINA_GRAPH_OPS(LAMINA_GRAPH_ONE);
// Pinned so that adding an op is a deliberate act (ggml's GGML_OP_COUNT check): the tables
// generated from the list follow it, this count and the Python test's expectations do not.
static_assert(kOpCount == 34, "a graph op was added or removed: update this count and graph.h's slot table");

// Kinds of the unary, broadcast and pointwise-loss instructions, listed once like the ops.
#define LAMINA_UNARY_KINDS(X) X(neg) X(exp) X(log) X(sin) X(cos) X(abs) X(sign)
#define LAMINA_BROADCAST_KINDS(X) X(add) X(sub) X(rsub) X(mul) X(div)
#define LAMINA_LOSS_KINDS(X) X(mse) X(bce)
#define LAMINA_GRAPH_KIND_ENUM(name) name,
enum class UnaryKind : int32_t { LAMINA_UNARY_KINDS(LAMINA_GRAPH_KIND_ENUM) };
enum class BroadcastKind : int32_t { LAMINA_BROADCAST_KINDS(LAMINA_GRAPH_KIND_ENUM) };   // rsub: s - x
enum class LossKind : int32_t { LAMINA_LOSS_KINDS(LAMINA_GRAPH_KIND_ENUM) };
#undef LAMINA_GRAPH_KIND_ENUM
constexpr int32_t kUnaryKindCount = 0 LAMINA_UNARY_KINDS(LAMINA_GRAPH_ONE);
constexpr int32_t kBroadcastKindCount = 0 LAMINA_BROADCAST_KINDS(LAMINA_GRAPH_ONE);
constexpr int32_t kLossKindCount = 0 LAMINA_LOSS_KINDS(LAMINA_GRAPH_ONE);

// Element types of instruction operands: (enum name, numpy name, bytes).
#define LAMINA_DTYPES(X) X(f32, float32, 4) X(f64, float64, 8) X(i64, int64, 8)
enum class DType : int32_t {
#define LAMINA_DTYPE_ENUM(name, numpy, bytes) name,
  LAMINA_DTYPES(LAMINA_DTYPE_ENUM)
#undef LAMINA_DTYPE_ENUM
};
constexpr int32_t kDTypeCount = 0 LAMINA_DTYPES(LAMINA_GRAPH_ONE);
#undef LAMINA_GRAPH_ONE

// ---- attribute structs, one per op family (field names are the Python ones)
struct GemmAttrs {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  Activation act = Activation::identity;   // identity, relu, sigmoid or tanh (the epilogue's)
  BiasAxis bias_axis = BiasAxis::none;     // used when the bias slot is set
  double alpha = 1, beta = 0;
  int64_t batch = 1;                       // != 1: a strided batch (batched matmul), no epilogue
};
struct ActAttrs { int64_t n = 0; Activation kind = Activation::identity; double negative_slope = 0.01; };
struct BiasGradAttrs { int64_t N = 0, F = 0; };
// mean: the loss is the sum times 1/(rows not ignored); ce_forward writes that scale for ce_backward.
struct CrossEntropyAttrs { int64_t N = 0, C = 0, ignore_index = -100; bool mean = true; };
struct FillAttrs { int64_t n = 0; double value = 0; };
struct ElementwiseAttrs { int64_t n = 0; };
struct UnaryAttrs { int64_t n = 0; UnaryKind kind = UnaryKind::neg; };
struct ScaleAttrs { int64_t n = 0; double alpha = 1; };
// Optimizer hyperparameters are indices into the runtime scalar table (they change per step).
struct SgdAttrs {
  int64_t n = 0;
  int32_t lr = -1, momentum = -1, dampening = -1, weight_decay = -1, nesterov = -1, first_step = -1;
};
struct AdamAttrs {
  int64_t n = 0;
  bool decoupled = false, amsgrad = false;
  int32_t lr = -1, beta1 = -1, beta2 = -1, eps = -1, weight_decay = -1, step = -1;
};
struct CallbackAttrs { int64_t id = 0; };
struct ConvAttrs { ConvParams params; Activation act = Activation::identity; double negative_slope = 0.01; };
struct PoolAttrs { PoolParams params; bool count_include_pad = false; int64_t divisor_override = 0; };
struct AdaptivePoolAttrs { int64_t N = 1, C = 1, H = 1, W = 1, OH = 1, OW = 1; };
struct BroadcastAttrs { int64_t outer = 1, mid = 1, inner = 1; BroadcastKind kind = BroadcastKind::add; };
struct ReduceBroadcastAttrs { int64_t outer = 1, mid = 1, inner = 1; double alpha = 1; };
struct PointwiseLossAttrs { int64_t n = 0; LossKind kind = LossKind::mse; double scale = 1; };
// Training with running stats updates them with `momentum`, or with PyTorch's cumulative
// average 1 / num_batches_tracked (after its increment) when cumulative_average is set.
struct BatchNormAttrs {
  int64_t N = 0, C = 0, S = 1;
  bool training = true, relu = false, cumulative_average = false;
  double momentum = 0.1, eps = 1e-5;
};

using Attrs = std::variant<GemmAttrs, ActAttrs, BiasGradAttrs, CrossEntropyAttrs, FillAttrs, ElementwiseAttrs,
                           UnaryAttrs, ScaleAttrs, SgdAttrs, AdamAttrs, CallbackAttrs, ConvAttrs, PoolAttrs,
                           AdaptivePoolAttrs, BroadcastAttrs, ReduceBroadcastAttrs, PointwiseLossAttrs,
                           BatchNormAttrs>;

constexpr int kSlots = 9;   // batch norm's forward and backward use all nine

struct Instr {
  Op op = Op::fill;
  DType dtype = DType::f32;
  int32_t slot[kSlots] = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
  Attrs attrs = FillAttrs{};
};

const char* op_name(Op op);
const char* dtype_name(DType d);        // the numpy name: "float32", "float64", "int64"
const char* unary_kind_name(UnaryKind k);
const char* broadcast_kind_name(BroadcastKind k);
const char* loss_kind_name(LossKind k);

// Checks every instruction against the slot table before anything runs: slot indices in
// range, each buffer large enough for what the op touches (slot_bytes[k]), scalar indices in
// range, attribute values valid. Returns "" or a message naming the instruction and field.
std::string validate(const std::vector<Instr>& program, const std::vector<int64_t>& slot_bytes,
                     int64_t n_scalars);

// Called for Op::callback; returns false to abort the run (the caller keeps its own error).
using Callback = bool (*)(void* user, int64_t callback_id);

// Runs the program. slots[k] = base pointer of slot k. Returns -1 on success, else the index
// of the failing instruction, with a message in *error. seconds: null, or one entry per
// instruction to which the instruction's wall time is added (the step profile; null costs one
// untaken branch per instruction). With more than one thread, consecutive GEMM, activation,
// bias-gradient and SGD instructions over disjoint memory may run side by side, one thread
// each (same results: see group_end in graph.cpp); each profile entry is then that
// instruction's own time, so side-by-side entries overlap.
int64_t run(const std::vector<Instr>& program, void* const* slots, const double* scalars,
            Callback callback, void* user, std::string* error, double* seconds = nullptr);

}  // namespace graph
}  // namespace lamina
