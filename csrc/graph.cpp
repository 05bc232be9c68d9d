// Graph executor (see graph.h). Each op family is one Family<Attrs> specialization with three
// parts side by side: check (attribute values), needs (bytes per slot, scalar indices) and
// run<T> (the kernel call). The dispatch table is generated from LAMINA_GRAPH_OPS, one row per
// op code, so run() is a table lookup and never a switch over codes.
#include "graph.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <sstream>
#include <type_traits>
#include <utility>

#include "conv_block.h"
#include "cpu.h"
#include "loss.h"
#include "norm.h"
#include "optim.h"
#include "thread_team.h"

namespace lamina {
namespace graph {

namespace {

constexpr const char* kOpNames[] = {
#define LAMINA_GRAPH_OP_NAME(name, attrs) #name,
    LAMINA_GRAPH_OPS(LAMINA_GRAPH_OP_NAME)
#undef LAMINA_GRAPH_OP_NAME
};
static_assert(std::size(kOpNames) == kOpCount, "one name per graph op");

#define LAMINA_KIND_NAME(name) #name,
constexpr const char* kUnaryKindNames[] = {LAMINA_UNARY_KINDS(LAMINA_KIND_NAME)};
constexpr const char* kBroadcastKindNames[] = {LAMINA_BROADCAST_KINDS(LAMINA_KIND_NAME)};
constexpr const char* kLossKindNames[] = {LAMINA_LOSS_KINDS(LAMINA_KIND_NAME)};
#undef LAMINA_KIND_NAME
static_assert(std::size(kUnaryKindNames) == kUnaryKindCount, "one name per unary kind");
static_assert(std::size(kBroadcastKindNames) == kBroadcastKindCount, "one name per broadcast kind");
static_assert(std::size(kLossKindNames) == kLossKindCount, "one name per loss kind");

constexpr const char* kDTypeNames[] = {
#define LAMINA_DTYPE_NAME(name, numpy, bytes) #numpy,
    LAMINA_DTYPES(LAMINA_DTYPE_NAME)
#undef LAMINA_DTYPE_NAME
};
constexpr int64_t kDTypeBytes[] = {
#define LAMINA_DTYPE_BYTES(name, numpy, bytes) bytes,
    LAMINA_DTYPES(LAMINA_DTYPE_BYTES)
#undef LAMINA_DTYPE_BYTES
};
static_assert(std::size(kDTypeNames) == kDTypeCount && std::size(kDTypeBytes) == kDTypeCount,
              "one name and size per dtype");

template <class E, size_t N>
const char* name_in(const char* const (&table)[N], E e) {
  const auto k = static_cast<int64_t>(e);
  return k >= 0 && k < static_cast<int64_t>(N) ? table[k] : "?";
}

template <class E>
bool in_range(E e, int32_t count) {
  const auto k = static_cast<int64_t>(e);
  return k >= 0 && k < count;
}

}  // namespace

const char* op_name(Op op) { return name_in(kOpNames, op); }
const char* dtype_name(DType d) { return name_in(kDTypeNames, d); }
const char* unary_kind_name(UnaryKind k) { return name_in(kUnaryKindNames, k); }
const char* broadcast_kind_name(BroadcastKind k) { return name_in(kBroadcastKindNames, k); }
const char* loss_kind_name(LossKind k) { return name_in(kLossKindNames, k); }

namespace {

// Bytes each slot must hold (0: slot unused or optional), and the scalar-table indices read.
struct Need {
  int64_t bytes[kSlots] = {};
  bool required[kSlots] = {};
  int n_scalars = 0;
  int32_t scalars[6] = {-1, -1, -1, -1, -1, -1};
  void req(int k, int64_t bytes_) { bytes[k] = bytes_; required[k] = true; }
  void opt(int k, int64_t bytes_) { bytes[k] = bytes_; }
};

// a * b for non-negative sizes, saturating at INT64_MAX: an overflowed product (M*K = 2^64 -> 0)
// would let a tiny buffer pass the size check.
int64_t mul_sat(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}

int64_t mul_sat(int64_t a, int64_t b, int64_t c, int64_t d = 1) { return mul_sat(mul_sat(a, b), mul_sat(c, d)); }

// Window and size attributes are bounded like the _C conv/pool bindings bound them: H + 2*pad,
// dil*(K-1) and products of sizes stay far from int64 overflow.
constexpr int64_t kMaxAttr = (int64_t(1) << 31) - 1;

using Field = std::pair<const char*, int64_t>;

std::string sizes_error(std::initializer_list<Field> fields) {
  for (const auto& [name, v] : fields)
    if (v < 0) return std::string(name) + ": expected a non-negative size, got " + std::to_string(v);
  return "";
}

std::string window_error(std::initializer_list<Field> fields) {
  for (const auto& [name, v] : fields)
    if (v < 0 || v > kMaxAttr) return std::string(name) + ": expected a value in [0, 2^31), got " + std::to_string(v);
  return "";
}

std::string activation_error(const char* field, Activation a) {
  if (valid_activation(static_cast<int64_t>(a))) return "";
  return std::string(field) + ": activation kind out of range, got " + std::to_string(static_cast<int64_t>(a));
}

template <class T> T* P(void* const* s, int32_t k) { return k < 0 ? nullptr : static_cast<T*>(s[k]); }
template <class T> T* P(void* const* s, const Instr& in, int k) { return P<T>(s, in.slot[k]); }

int64_t itemsize(DType d) { return kDTypeBytes[static_cast<int>(d)]; }

// Primary template: every attrs type in LAMINA_GRAPH_OPS has a specialization below.
template <class A> struct Family;

// ---------------------------------------------------------------- gemm
Act gemm_act(Activation a) {
  switch (a) {
    case Activation::relu: return Act::relu;
    case Activation::sigmoid: return Act::sigmoid;
    case Activation::tanh: return Act::tanh;
    default: return Act::identity;
  }
}

template <> struct Family<GemmAttrs> {
  static std::string check(const Instr& in, const GemmAttrs& a) {
    std::string e = sizes_error({{"M", a.M}, {"N", a.N}, {"K", a.K}, {"batch", a.batch}});
    if (!e.empty()) return e;
    const Activation x = a.act;
    if (x != Activation::identity && x != Activation::relu && x != Activation::sigmoid && x != Activation::tanh)
      return "act: the GEMM epilogue takes identity, relu, sigmoid or tanh, got " +
             std::to_string(static_cast<int64_t>(x));
    if (!in_range(a.bias_axis, 3)) return "bias_axis: out of range";
    if (a.batch != 1 && (x != Activation::identity || in.slot[3] >= 0))
      return "batch: a batched GEMM takes no bias and act identity";
    return "";
  }
  static Need needs(const Instr& in, const GemmAttrs& a) {
    Need nd;
    const int64_t t = itemsize(in.dtype);
    nd.req(0, mul_sat(a.M, a.K, t, a.batch)); nd.req(1, mul_sat(a.K, a.N, t, a.batch));
    nd.req(2, mul_sat(a.M, a.N, t, a.batch));
    nd.opt(3, mul_sat(a.bias_axis == BiasAxis::per_row ? a.M : a.N, t));
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const GemmAttrs& a, void* const* s, const double*, std::string*) {
    if (a.batch != 1) {   // the kernel eager's MatMulBatched calls (_C.gemm_batched), so bit for bit
      gemm_strided_batched<T>(a.trans_a, a.trans_b, a.M, a.N, a.K, T(a.alpha), P<const T>(s, in, 0),
                              a.trans_a ? a.M : a.K, a.M * a.K, P<const T>(s, in, 1), a.trans_b ? a.K : a.N,
                              a.K * a.N, T(a.beta), P<T>(s, in, 2), a.N, a.M * a.N, a.batch);
      return -1;
    }
    Epilogue<T> ep;
    ep.act = gemm_act(a.act);
    ep.bias_axis = in.slot[3] >= 0 ? a.bias_axis : BiasAxis::none;
    ep.bias = P<const T>(s, in, 3);
    const bool use_ep = ep.bias_axis != BiasAxis::none || ep.act != Act::identity;
    gemm<T>(a.trans_a, a.trans_b, a.M, a.N, a.K, T(a.alpha), P<const T>(s, in, 0), a.trans_a ? a.M : a.K,
            P<const T>(s, in, 1), a.trans_b ? a.K : a.N, T(a.beta), P<T>(s, in, 2), a.N, use_ep ? &ep : nullptr);
    return -1;
  }
};

// ---------------------------------------------------------------- activations, bias gradient
template <> struct Family<ActAttrs> {
  static std::string check(const Instr&, const ActAttrs& a) {
    std::string e = sizes_error({{"n", a.n}});
    return e.empty() ? activation_error("kind", a.kind) : e;
  }
  static Need needs(const Instr& in, const ActAttrs& a) {
    Need nd;
    const int64_t b = mul_sat(a.n, itemsize(in.dtype));
    const int count = in.op == Op::act_forward ? 2 : 3;
    for (int k = 0; k < count; ++k) nd.req(k, b);
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const ActAttrs& a, void* const* s, const double*, std::string*) {
    if (in.op == Op::act_forward)
      act_forward<T>(a.kind, a.n, P<const T>(s, in, 0), P<T>(s, in, 1), T(a.negative_slope));
    else
      act_backward<T>(a.kind, a.n, P<const T>(s, in, 0), P<const T>(s, in, 1), P<T>(s, in, 2), T(a.negative_slope));
    return -1;
  }
};

template <> struct Family<BiasGradAttrs> {
  static std::string check(const Instr&, const BiasGradAttrs& a) { return sizes_error({{"N", a.N}, {"F", a.F}}); }
  static Need needs(const Instr& in, const BiasGradAttrs& a) {
    Need nd;
    const int64_t t = itemsize(in.dtype);
    nd.req(0, mul_sat(a.N, a.F, t)); nd.req(1, mul_sat(a.F, t));
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const BiasGradAttrs& a, void* const* s, const double*, std::string*) {
    bias_grad_rows<T>(a.N, a.F, P<const T>(s, in, 0), P<T>(s, in, 1));
    return -1;
  }
};

// ---------------------------------------------------------------- cross-entropy
template <> struct Family<CrossEntropyAttrs> {
  static std::string check(const Instr&, const CrossEntropyAttrs& a) { return sizes_error({{"N", a.N}, {"C", a.C}}); }
  static Need needs(const Instr& in, const CrossEntropyAttrs& a) {
    Need nd;
    const int64_t t = itemsize(in.dtype), logits = mul_sat(a.N, a.C, t);
    nd.req(0, logits); nd.req(1, mul_sat(a.N, 8));
    if (in.op == Op::ce_forward) { nd.req(2, t); nd.req(3, logits); nd.req(4, 8); }
    else { nd.req(2, t); nd.req(3, 8); nd.req(4, logits); }
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const CrossEntropyAttrs& a, void* const* s, const double*, std::string* err) {
    return in.op == Op::ce_forward ? forward<T>(in, a, s, err) : backward<T>(in, a, s, err);
  }
  template <class T>
  static int64_t forward(const Instr& in, const CrossEntropyAttrs& a, void* const* s, std::string* err) {
    double sum = 0;
    int64_t count = 0;
    const int64_t* target = P<const int64_t>(s, in, 1);
    const int64_t bad = cross_entropy_forward<T>(a.N, a.C, P<const T>(s, in, 0), target, P<T>(s, in, 3),
                                                 a.ignore_index, nullptr, &sum, &count);
    if (bad >= 0) {
      std::ostringstream m;
      m << "target: class index " << target[bad] << " at row " << bad << " is out of range [0, " << a.C << ")";
      *err = m.str();
      return bad;
    }
    *P<T>(s, in, 2) = static_cast<T>(reduced_loss(sum, a.mean, count));
    *P<double>(s, in, 4) = loss_scale(a.mean, count);
    return -1;
  }
  template <class T>
  static int64_t backward(const Instr& in, const CrossEntropyAttrs& a, void* const* s, std::string* err) {
    // Same scalar as eager: float(dy) * scale, cast to T once.
    const double scale = static_cast<double>(*P<const T>(s, in, 2)) * *P<const double>(s, in, 3);
    const int64_t bad = cross_entropy_backward<T>(a.N, a.C, P<const T>(s, in, 0), P<const int64_t>(s, in, 1),
                                                  static_cast<T>(scale), a.ignore_index, P<T>(s, in, 4));
    if (bad >= 0) *err = "target: class index out of range at row " + std::to_string(bad);
    return bad;
  }
};

// ---------------------------------------------------------------- pointwise losses
template <> struct Family<PointwiseLossAttrs> {
  static std::string check(const Instr&, const PointwiseLossAttrs& a) {
    std::string e = sizes_error({{"n", a.n}});
    if (e.empty() && !in_range(a.kind, kLossKindCount))
      e = "kind: loss kind out of range, got " + std::to_string(static_cast<int64_t>(a.kind));
    return e;
  }
  static Need needs(const Instr& in, const PointwiseLossAttrs& a) {
    Need nd;
    const int64_t t = itemsize(in.dtype), b = mul_sat(a.n, t);
    nd.req(0, b); nd.req(1, b); nd.req(2, t);
    if (in.op == Op::loss_backward) nd.req(3, b);
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const PointwiseLossAttrs& a, void* const* s, const double*, std::string*) {
    const T* x = P<const T>(s, in, 0);
    const T* tg = P<const T>(s, in, 1);
    const bool mse = a.kind == LossKind::mse;
    if (in.op == Op::loss_forward) {
      const double sum = mse ? mse_forward<T>(a.n, x, tg) : bce_with_logits_forward<T>(a.n, x, tg);
      *P<T>(s, in, 2) = static_cast<T>(sum * a.scale);   // as eager: double sum * scale, cast once
      return -1;
    }
    const double dl = static_cast<double>(*P<const T>(s, in, 2));
    if (mse) mse_backward<T>(a.n, x, tg, static_cast<T>(2.0 * dl * a.scale), P<T>(s, in, 3));
    else bce_with_logits_backward<T>(a.n, x, tg, static_cast<T>(dl * a.scale), P<T>(s, in, 3));
    return -1;
  }
};

// ---------------------------------------------------------------- elementwise
template <> struct Family<FillAttrs> {
  static std::string check(const Instr&, const FillAttrs& a) { return sizes_error({{"n", a.n}}); }
  static Need needs(const Instr& in, const FillAttrs& a) {
    Need nd;
    nd.req(0, mul_sat(a.n, itemsize(in.dtype)));
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const FillAttrs& a, void* const* s, const double*, std::string*) {
    T* y = P<T>(s, in, 0);
    const T v = T(a.value);
    for (int64_t k = 0; k < a.n; ++k) y[k] = v;
    return -1;
  }
};

// add, sub, mul, div (a, b -> y); copy, accumulate (x -> y).
template <> struct Family<ElementwiseAttrs> {
  static bool binary(Op op) { return op == Op::add || op == Op::sub || op == Op::mul || op == Op::div; }
  static std::string check(const Instr&, const ElementwiseAttrs& a) { return sizes_error({{"n", a.n}}); }
  static Need needs(const Instr& in, const ElementwiseAttrs& a) {
    Need nd;
    const int64_t b = mul_sat(a.n, itemsize(in.dtype));
    for (int k = 0; k < (binary(in.op) ? 3 : 2); ++k) nd.req(k, b);
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const ElementwiseAttrs& a, void* const* s, const double*, std::string*) {
    const T* x0 = P<const T>(s, in, 0);
    const int64_t n = a.n;
    if (in.op == Op::copy) {
      std::memmove(P<T>(s, in, 1), x0, static_cast<size_t>(n) * sizeof(T));
      return -1;
    }
    if (in.op == Op::accumulate) {
      T* y = P<T>(s, in, 1);
      for (int64_t k = 0; k < n; ++k) y[k] += x0[k];
      return -1;
    }
    const T* x1 = P<const T>(s, in, 1);
    T* y = P<T>(s, in, 2);
    if (in.op == Op::add) for (int64_t k = 0; k < n; ++k) y[k] = x0[k] + x1[k];
    else if (in.op == Op::sub) for (int64_t k = 0; k < n; ++k) y[k] = x0[k] - x1[k];
    else if (in.op == Op::mul) for (int64_t k = 0; k < n; ++k) y[k] = x0[k] * x1[k];
    else for (int64_t k = 0; k < n; ++k) y[k] = x0[k] / x1[k];
    return -1;
  }
};

template <> struct Family<ScaleAttrs> {
  static std::string check(const Instr&, const ScaleAttrs& a) { return sizes_error({{"n", a.n}}); }
  static Need needs(const Instr& in, const ScaleAttrs& a) {
    Need nd;
    const int64_t b = mul_sat(a.n, itemsize(in.dtype));
    nd.req(0, b); nd.req(1, b);
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const ScaleAttrs& a, void* const* s, const double*, std::string*) {
    const T* x = P<const T>(s, in, 0);
    T* y = P<T>(s, in, 1);
    const T al = T(a.alpha);
    for (int64_t k = 0; k < a.n; ++k) y[k] = al * x[k];
    return -1;
  }
};

template <> struct Family<UnaryAttrs> {
  static std::string check(const Instr&, const UnaryAttrs& a) {
    std::string e = sizes_error({{"n", a.n}});
    if (e.empty() && !in_range(a.kind, kUnaryKindCount))
      e = "kind: unary kind out of range, got " + std::to_string(static_cast<int64_t>(a.kind));
    return e;
  }
  static Need needs(const Instr& in, const UnaryAttrs& a) {
    Need nd;
    const int64_t b = mul_sat(a.n, itemsize(in.dtype));
    nd.req(0, b); nd.req(1, b);
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const UnaryAttrs& a, void* const* s, const double*, std::string*) {
    const T* x = P<const T>(s, in, 0);
    T* y = P<T>(s, in, 1);
    const int64_t n = a.n;
    switch (a.kind) {
      case UnaryKind::neg: for (int64_t k = 0; k < n; ++k) y[k] = -x[k]; break;
      case UnaryKind::exp: for (int64_t k = 0; k < n; ++k) y[k] = std::exp(x[k]); break;
      case UnaryKind::log: for (int64_t k = 0; k < n; ++k) y[k] = std::log(x[k]); break;
      case UnaryKind::sin: for (int64_t k = 0; k < n; ++k) y[k] = std::sin(x[k]); break;
      case UnaryKind::cos: for (int64_t k = 0; k < n; ++k) y[k] = std::cos(x[k]); break;
      case UnaryKind::abs: for (int64_t k = 0; k < n; ++k) y[k] = std::fabs(x[k]); break;
      // sign, as numpy: +-1, 0 for +-0, NaN for NaN
      case UnaryKind::sign:
        for (int64_t k = 0; k < n; ++k) y[k] = x[k] > T(0) ? T(1) : x[k] < T(0) ? T(-1) : x[k];
        break;
    }
    return -1;
  }
};

// ---------------------------------------------------------------- broadcasting
// y[o,m,i] = x[o,m,i] (op) s[m]; rows (o, m) are independent, so threads take whole rows.
template <class T>
void broadcast_rows(int64_t outer, int64_t mid, int64_t inner, BroadcastKind kind, const T* x, const T* s, T* y) {
  const int64_t rows = outer * mid;
  const int nt = threads_for(static_cast<double>(rows) * inner, 1 << 15);
#pragma omp parallel for num_threads(nt) schedule(static, 16)
  for (int64_t r = 0; r < rows; ++r) {
    const T sv = s[r % mid];
    const T* xr = x + r * inner;
    T* yr = y + r * inner;
    switch (kind) {
      case BroadcastKind::add: for (int64_t k = 0; k < inner; ++k) yr[k] = xr[k] + sv; break;
      case BroadcastKind::sub: for (int64_t k = 0; k < inner; ++k) yr[k] = xr[k] - sv; break;
      case BroadcastKind::rsub: for (int64_t k = 0; k < inner; ++k) yr[k] = sv - xr[k]; break;
      case BroadcastKind::mul: for (int64_t k = 0; k < inner; ++k) yr[k] = xr[k] * sv; break;
      case BroadcastKind::div: for (int64_t k = 0; k < inner; ++k) yr[k] = xr[k] / sv; break;
    }
  }
}

std::string split_error(int64_t outer, int64_t mid, int64_t inner) {
  std::string e = sizes_error({{"outer", outer}, {"mid", mid}, {"inner", inner}});
  if (e.empty() && mul_sat(outer, mid) == std::numeric_limits<int64_t>::max())   // rows must not wrap
    e = "outer, mid: outer * mid overflows";
  return e;
}

template <> struct Family<BroadcastAttrs> {
  static std::string check(const Instr&, const BroadcastAttrs& a) {
    std::string e = split_error(a.outer, a.mid, a.inner);
    if (e.empty() && !in_range(a.kind, kBroadcastKindCount))
      e = "kind: broadcast kind out of range, got " + std::to_string(static_cast<int64_t>(a.kind));
    return e;
  }
  static Need needs(const Instr& in, const BroadcastAttrs& a) {
    Need nd;
    const int64_t t = itemsize(in.dtype), b = mul_sat(a.outer, a.mid, a.inner, t);
    nd.req(0, b); nd.req(1, mul_sat(a.mid, t)); nd.req(2, b);
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const BroadcastAttrs& a, void* const* s, const double*, std::string*) {
    broadcast_rows<T>(a.outer, a.mid, a.inner, a.kind, P<const T>(s, in, 0), P<const T>(s, in, 1), P<T>(s, in, 2));
    return -1;
  }
};

template <> struct Family<ReduceBroadcastAttrs> {
  static std::string check(const Instr&, const ReduceBroadcastAttrs& a) { return split_error(a.outer, a.mid, a.inner); }
  static Need needs(const Instr& in, const ReduceBroadcastAttrs& a) {
    Need nd;
    const int64_t t = itemsize(in.dtype), b = mul_sat(a.outer, a.mid, a.inner, t);
    nd.req(0, b); nd.opt(1, b); nd.req(2, mul_sat(a.mid, t));
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const ReduceBroadcastAttrs& a, void* const* s, const double*, std::string*) {
    bias_grad_split<T>(a.outer, a.mid, a.inner, a.alpha, P<const T>(s, in, 0), P<const T>(s, in, 1), P<T>(s, in, 2));
    return -1;
  }
};

// ---------------------------------------------------------------- optimizers
template <> struct Family<SgdAttrs> {
  static std::string check(const Instr&, const SgdAttrs& a) { return sizes_error({{"n", a.n}}); }
  static Need needs(const Instr& in, const SgdAttrs& a) {
    Need nd;
    const int64_t b = mul_sat(a.n, itemsize(in.dtype));
    nd.req(0, b); nd.req(1, b); nd.opt(2, b);
    const int32_t sc[] = {a.lr, a.momentum, a.dampening, a.weight_decay, a.nesterov, a.first_step};
    nd.n_scalars = 6;
    std::copy(std::begin(sc), std::end(sc), nd.scalars);
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const SgdAttrs& a, void* const* s, const double* sc, std::string*) {
    sgd_step<T>(a.n, P<T>(s, in, 0), P<const T>(s, in, 1), P<T>(s, in, 2), sc[a.lr], sc[a.momentum],
                sc[a.dampening], sc[a.weight_decay], sc[a.nesterov] != 0.0, sc[a.first_step] != 0.0);
    return -1;
  }
};

template <> struct Family<AdamAttrs> {
  static std::string check(const Instr&, const AdamAttrs& a) { return sizes_error({{"n", a.n}}); }
  static Need needs(const Instr& in, const AdamAttrs& a) {
    Need nd;
    const int64_t b = mul_sat(a.n, itemsize(in.dtype));
    nd.req(0, b); nd.req(1, b); nd.req(2, b); nd.req(3, b); nd.opt(4, b);
    const int32_t sc[] = {a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.step};
    nd.n_scalars = 6;
    std::copy(std::begin(sc), std::end(sc), nd.scalars);
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const AdamAttrs& a, void* const* s, const double* sc, std::string*) {
    adam_step<T>(a.n, P<T>(s, in, 0), P<const T>(s, in, 1), P<T>(s, in, 2), P<T>(s, in, 3), P<T>(s, in, 4),
                 static_cast<int64_t>(sc[a.step]), sc[a.lr], sc[a.beta1], sc[a.beta2], sc[a.eps],
                 sc[a.weight_decay], a.decoupled, a.amsgrad);
    return -1;
  }
};

// run() hands callbacks to the caller before the table is consulted.
template <> struct Family<CallbackAttrs> {
  static std::string check(const Instr&, const CallbackAttrs&) { return ""; }
  static Need needs(const Instr&, const CallbackAttrs&) { return Need{}; }
  template <class T>
  static int64_t run(const Instr&, const CallbackAttrs&, void* const*, const double*, std::string*) { return -1; }
};

// ---------------------------------------------------------------- convolution and pooling
template <> struct Family<ConvAttrs> {
  // Checked before needs(): OH() divides by the stride.
  static std::string check(const Instr& in, const ConvAttrs& a) {
    const ConvParams& p = a.params;
    std::string e = window_error({{"n", p.N}, {"c", p.C}, {"h", p.H}, {"w", p.W}, {"k", p.K}, {"kh", p.KH},
                                  {"kw", p.KW}, {"stride_h", p.stride_h}, {"stride_w", p.stride_w},
                                  {"pad_h", p.pad_h}, {"pad_w", p.pad_w}, {"dil_h", p.dil_h}, {"dil_w", p.dil_w},
                                  {"groups", p.groups}});
    if (!e.empty()) return e;
    const char* pe = conv_params_error(p);
    if (pe[0]) return std::string("conv params: ") + pe;
    if (in.op == Op::conv_block_forward || in.op == Op::conv_block_backward) return conv_block_error(p);
    return in.op == Op::conv2d_forward ? activation_error("act", a.act) : "";
  }
  static Need needs(const Instr& in, const ConvAttrs& a) {
    Need nd;
    const ConvParams& p = a.params;
    const int64_t t = itemsize(in.dtype);
    const int64_t xs = mul_sat(p.N, p.C, p.H, p.W), ws = mul_sat(p.K, p.C / p.groups, p.KH, p.KW);
    const int64_t ys = mul_sat(p.N, p.K, p.OH(), p.OW());
    const int64_t pooled = mul_sat(p.N, p.K, p.OH() / 2, p.OW() / 2);
    if (in.op == Op::conv_block_backward) {
      nd.req(0, mul_sat(pooled, t)); nd.req(1, pooled); nd.req(2, mul_sat(ys, t));
      return nd;
    }
    nd.req(0, mul_sat(xs, t)); nd.req(1, mul_sat(ws, t));
    if (in.op == Op::conv_block_forward) { nd.opt(2, mul_sat(p.K, t)); nd.req(3, mul_sat(pooled, t)); nd.req(4, pooled); }
    else if (in.op == Op::conv2d_forward) { nd.opt(2, mul_sat(p.K, t)); nd.req(3, mul_sat(ys, t)); }
    else { nd.req(2, mul_sat(ys, t)); nd.opt(3, mul_sat(xs, t)); nd.opt(4, mul_sat(ws, t)); nd.opt(5, mul_sat(p.K, t)); }
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const ConvAttrs& a, void* const* s, const double*, std::string*) {
    const ConvParams& p = a.params;
    if (in.op == Op::conv_block_forward) {
      conv2d_relu_max_pool2d_forward<T>(p, P<const T>(s, in, 0), P<const T>(s, in, 1), P<const T>(s, in, 2),
                                        P<T>(s, in, 3), P<uint8_t>(s, in, 4));
      return -1;
    }
    if (in.op == Op::conv_block_backward) {
      relu_max_pool2d_backward<T>(p, P<const T>(s, in, 0), P<const uint8_t>(s, in, 1), P<T>(s, in, 2));
      return -1;
    }
    if (in.op == Op::conv2d_backward) {
      conv2d_backward<T>(p, P<const T>(s, in, 0), P<const T>(s, in, 1), P<const T>(s, in, 2), P<T>(s, in, 3),
                         P<T>(s, in, 4), P<T>(s, in, 5));
      return -1;
    }
    const T* x = P<const T>(s, in, 0);
    const T* w = P<const T>(s, in, 1);
    const T* b = P<const T>(s, in, 2);
    T* y = P<T>(s, in, 3);
    // ReLU goes into the conv's GEMM epilogue (exact, so eager's conv-then-relu values);
    // other activations run in place on y with the activation kernel eager uses. Either
    // way there is no separate pre-activation buffer.
    if (a.act == Activation::relu) {
      conv2d_forward<T>(p, x, w, b, y, Act::relu);
    } else {
      conv2d_forward<T>(p, x, w, b, y);
      if (a.act != Activation::identity) act_forward<T>(a.act, p.N * p.K * p.OH() * p.OW(), y, y, T(a.negative_slope));
    }
    return -1;
  }
};

template <> struct Family<PoolAttrs> {
  static bool is_avg(Op op) { return op == Op::avg_pool2d_forward || op == Op::avg_pool2d_backward; }
  static std::string check(const Instr& in, const PoolAttrs& a) {
    const PoolParams& p = a.params;
    std::string e = window_error({{"n", p.N}, {"c", p.C}, {"h", p.H}, {"w", p.W}, {"kh", p.KH}, {"kw", p.KW},
                                  {"stride_h", p.stride_h}, {"stride_w", p.stride_w}, {"pad_h", p.pad_h},
                                  {"pad_w", p.pad_w}, {"dil_h", p.dil_h}, {"dil_w", p.dil_w},
                                  {"divisor_override", a.divisor_override}});
    if (!e.empty()) return e;
    const char* pe = pool_params_error(p);
    if (pe[0]) return std::string("pool params: ") + pe;
    if (is_avg(in.op) && (p.dil_h != 1 || p.dil_w != 1)) return "dil_h, dil_w: average pooling takes dilation 1";
    return "";
  }
  static Need needs(const Instr& in, const PoolAttrs& a) {
    Need nd;
    const PoolParams& p = a.params;
    const int64_t t = itemsize(in.dtype);
    const int64_t xs = mul_sat(p.N, p.C, p.H, p.W), ys = mul_sat(p.N, p.C, p.OH(), p.OW());
    switch (in.op) {
      case Op::max_pool2d_forward: nd.req(0, mul_sat(xs, t)); nd.req(1, mul_sat(ys, t)); nd.req(2, mul_sat(ys, 8)); break;
      case Op::max_pool2d_backward: nd.req(0, mul_sat(ys, t)); nd.req(1, mul_sat(ys, 8)); nd.req(2, mul_sat(xs, t)); break;
      case Op::avg_pool2d_forward: nd.req(0, mul_sat(xs, t)); nd.req(1, mul_sat(ys, t)); break;
      default: nd.req(0, mul_sat(ys, t)); nd.req(1, mul_sat(xs, t)); break;
    }
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const PoolAttrs& a, void* const* s, const double*, std::string*) {
    const PoolParams& p = a.params;
    switch (in.op) {
      case Op::max_pool2d_forward:
        max_pool2d_forward<T>(p, P<const T>(s, in, 0), P<T>(s, in, 1), P<int64_t>(s, in, 2));
        break;
      case Op::max_pool2d_backward:
        max_pool2d_backward<T>(p, P<const T>(s, in, 0), P<const int64_t>(s, in, 1), P<T>(s, in, 2));
        break;
      case Op::avg_pool2d_forward:
        avg_pool2d_forward<T>(p, P<const T>(s, in, 0), P<T>(s, in, 1), a.count_include_pad, a.divisor_override);
        break;
      default:
        avg_pool2d_backward<T>(p, P<const T>(s, in, 0), P<T>(s, in, 1), a.count_include_pad, a.divisor_override);
        break;
    }
    return -1;
  }
};

template <> struct Family<AdaptivePoolAttrs> {
  static std::string check(const Instr&, const AdaptivePoolAttrs& a) {
    std::string e = window_error({{"N", a.N}, {"C", a.C}, {"H", a.H}, {"W", a.W}, {"OH", a.OH}, {"OW", a.OW}});
    if (e.empty() && (a.C == 0 || a.H == 0 || a.W == 0 || a.OH == 0 || a.OW == 0))
      e = "C, H, W, OH, OW: expected sizes > 0";
    return e;
  }
  static Need needs(const Instr& in, const AdaptivePoolAttrs& a) {
    Need nd;
    const int64_t t = itemsize(in.dtype);
    const int64_t xs = mul_sat(a.N, a.C, a.H, a.W), ys = mul_sat(a.N, a.C, a.OH, a.OW);
    const bool fwd = in.op == Op::adaptive_avg_pool2d_forward;
    nd.req(0, mul_sat(fwd ? xs : ys, t)); nd.req(1, mul_sat(fwd ? ys : xs, t));
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const AdaptivePoolAttrs& a, void* const* s, const double*, std::string*) {
    if (in.op == Op::adaptive_avg_pool2d_forward)
      adaptive_avg_pool2d_forward<T>(a.N, a.C, a.H, a.W, a.OH, a.OW, P<const T>(s, in, 0), P<T>(s, in, 1));
    else
      adaptive_avg_pool2d_backward<T>(a.N, a.C, a.H, a.W, a.OH, a.OW, P<const T>(s, in, 0), P<T>(s, in, 1));
    return -1;
  }
};

// ---------------------------------------------------------------- batch norm
template <> struct Family<BatchNormAttrs> {
  static std::string check(const Instr& in, const BatchNormAttrs& a) {
    std::string e = sizes_error({{"N", a.N}, {"C", a.C}, {"S", a.S}});
    if (!e.empty()) return e;
    if (in.op == Op::batch_norm_forward && !a.training && (in.slot[3] < 0 || in.slot[4] < 0))
      return "slot[3], slot[4]: eval batch norm reads running_mean and running_var";
    if (!(a.momentum >= 0 && a.momentum <= 1)) return "momentum: expected a factor in [0, 1]";
    if (!(a.eps >= 0)) return "eps: expected a non-negative value";
    return "";
  }
  static Need needs(const Instr& in, const BatchNormAttrs& a) {
    Need nd;
    const int64_t t = itemsize(in.dtype), xb = mul_sat(a.N, a.C, a.S, t), cb = mul_sat(a.C, t);
    if (in.op == Op::batch_norm_forward) {
      nd.req(0, xb); nd.opt(1, cb); nd.opt(2, cb); nd.opt(3, cb); nd.opt(4, cb); nd.opt(5, 8);
      nd.req(6, xb); nd.req(7, cb); nd.req(8, cb);
    } else {
      nd.req(0, xb); nd.req(1, xb); nd.opt(2, xb); nd.opt(3, cb); nd.req(4, cb); nd.req(5, cb);
      nd.opt(6, xb); nd.opt(7, cb); nd.opt(8, cb);
      if (a.relu) nd.required[2] = true;   // the fused ReLU's mask is y > 0
    }
    return nd;
  }
  template <class T>
  static int64_t run(const Instr& in, const BatchNormAttrs& a, void* const* s, const double*, std::string*) {
    if (in.op == Op::batch_norm_backward) {
      batch_norm_backward<T>(a.N, a.C, a.S, P<const T>(s, in, 0), P<const T>(s, in, 1), P<const T>(s, in, 2),
                             P<const T>(s, in, 3), P<const T>(s, in, 4), P<const T>(s, in, 5), a.training,
                             P<T>(s, in, 6), P<T>(s, in, 7), P<T>(s, in, 8));
      return -1;
    }
    T* running_mean = P<T>(s, in, 3);
    int64_t* tracked = P<int64_t>(s, in, 5);
    // As eager (ops/norm.py batch_norm_factor): count the batch, then the averaging factor.
    double factor = 0;
    if (a.training && running_mean) {
      if (tracked) *tracked += 1;
      factor = !a.cumulative_average ? a.momentum : tracked ? 1.0 / static_cast<double>(*tracked) : 0.0;
    }
    batch_norm_forward<T>(a.N, a.C, a.S, P<const T>(s, in, 0), P<const T>(s, in, 1), P<const T>(s, in, 2),
                          a.training, running_mean, P<T>(s, in, 4), factor, a.eps, a.relu, P<T>(s, in, 6),
                          P<T>(s, in, 7), P<T>(s, in, 8));
    return -1;
  }
};

// ---------------------------------------------------------------- the dispatch table
template <class A, class... Ts>
constexpr size_t index_in(const std::variant<Ts...>*) {
  size_t i = 0;
  for (bool same : {std::is_same_v<A, Ts>...}) {
    if (same) return i;
    ++i;
  }
  return i;
}
template <class A> constexpr size_t attrs_index() { return index_in<A>(static_cast<const Attrs*>(nullptr)); }

// validate() has checked that in.attrs holds A before any of these run.
template <class A> std::string check_row(const Instr& in) { return Family<A>::check(in, *std::get_if<A>(&in.attrs)); }
template <class A> Need needs_row(const Instr& in) { return Family<A>::needs(in, *std::get_if<A>(&in.attrs)); }
template <class A, class T>
int64_t run_row(const Instr& in, void* const* s, const double* sc, std::string* err) {
  return Family<A>::template run<T>(in, *std::get_if<A>(&in.attrs), s, sc, err);
}

using RunFn = int64_t (*)(const Instr&, void* const*, const double*, std::string*);
struct Row {
  size_t attrs_index;    // which alternative of Attrs the op's instructions carry
  const char* attrs_name;
  std::string (*check)(const Instr&);
  Need (*needs)(const Instr&);
  RunFn run_f32, run_f64;
};

constexpr Row kTable[] = {
#define LAMINA_GRAPH_ROW(name, A) \
  {attrs_index<A>(), #A, &check_row<A>, &needs_row<A>, &run_row<A, float>, &run_row<A, double>},
    LAMINA_GRAPH_OPS(LAMINA_GRAPH_ROW)
#undef LAMINA_GRAPH_ROW
};
static_assert(std::size(kTable) == kOpCount, "one dispatch row per graph op");
static_assert(std::variant_size_v<Attrs> == 18, "an attrs struct was added: give it a Family and a binding");

const char* attrs_name_at(size_t index) {
  for (const Row& r : kTable)
    if (r.attrs_index == index) return r.attrs_name;
  return "?";
}

// Slots and scalars of one instruction against the tables; "" or the first problem.
std::string operands_error(const Instr& in, const Need& nd, const std::vector<int64_t>& slot_bytes,
                           int64_t n_scalars) {
  const int64_t nslots = static_cast<int64_t>(slot_bytes.size());
  for (int k = 0; k < kSlots; ++k) {
    const int32_t sl = in.slot[k];
    const std::string field = "slot[" + std::to_string(k) + "]: ";
    if (sl < -1 || sl >= nslots) return field + "index " + std::to_string(sl) + " out of range";
    if (sl < 0) {
      if (nd.required[k]) return field + "required buffer missing";
      continue;
    }
    if (slot_bytes[sl] < nd.bytes[k])
      return field + "buffer holds " + std::to_string(slot_bytes[sl]) + " bytes, the op touches " +
             std::to_string(nd.bytes[k]);
  }
  for (int k = 0; k < nd.n_scalars; ++k)
    if (nd.scalars[k] < 0 || nd.scalars[k] >= n_scalars)
      return "scalar " + std::to_string(k) + ": index " + std::to_string(nd.scalars[k]) + " out of range";
  return "";
}

// ---- independent instructions side by side ---------------------------------------------------
// A run of consecutive instructions that touch disjoint memory (reads may share a buffer) runs
// as one team region, each instruction on one thread, instead of one after another with a
// team of its own: a Linear's dX and dW GEMMs (and its bias gradient) come out of the backward
// back to back and read the same dY. At LeNet-5's batch 64 two threads barely speed up each of
// these small GEMMs (F6 84x120x64: ~14 us at 1 thread, 11-12 at 2), while side by side the pair
// takes about as long as one of them. Each kernel then runs single-threaded (team_size is 1 inside
// a team region) and the GEMM, activation, bias-gradient and SGD kernels give the same bits at
// any thread count, so grouping changes no result. Only these families take part: their
// written slots are known here, and none calls back into Python.
struct Footprint {
  const char* lo[kSlots];
  const char* hi[kSlots];
  bool written[kSlots];
  int n = 0;
  double work = 0;  // flops, or ~flop-equivalents for elementwise work
};

constexpr int kMaxGroup = 8;
constexpr double kElemWork = 16;  // an elementwise element costs about as much as 16 GEMM flops

bool footprint(const Instr& in, void* const* slots, Footprint* f) {
  if (!in_range(in.op, kOpCount) || in.attrs.index() != kTable[static_cast<int>(in.op)].attrs_index) return false;
  int written_mask = 0;
  switch (in.op) {
    case Op::gemm: {
      const GemmAttrs& a = *std::get_if<GemmAttrs>(&in.attrs);
      written_mask = 1 << 2;
      f->work = 2.0 * double(a.M) * double(a.N) * double(a.K) * double(a.batch);
      break;
    }
    case Op::act_forward: written_mask = 1 << 1; f->work = kElemWork * double(std::get_if<ActAttrs>(&in.attrs)->n); break;
    case Op::act_backward: written_mask = 1 << 2; f->work = kElemWork * double(std::get_if<ActAttrs>(&in.attrs)->n); break;
    case Op::bias_grad_rows: {
      const BiasGradAttrs& a = *std::get_if<BiasGradAttrs>(&in.attrs);
      written_mask = 1 << 1;
      f->work = kElemWork * double(a.N) * double(a.F);
      break;
    }
    case Op::sgd: written_mask = (1 << 0) | (1 << 2); f->work = kElemWork * double(std::get_if<SgdAttrs>(&in.attrs)->n); break;
    default: return false;
  }
  const Need nd = kTable[static_cast<int>(in.op)].needs(in);
  f->n = 0;
  for (int k = 0; k < kSlots; ++k) {
    if (in.slot[k] < 0 || nd.bytes[k] <= 0) continue;
    const char* base = static_cast<const char*>(slots[in.slot[k]]);
    f->lo[f->n] = base;
    f->hi[f->n] = base + nd.bytes[k];
    f->written[f->n] = (written_mask >> k) & 1;
    ++f->n;
  }
  return true;
}

bool conflict(const Footprint& a, const Footprint& b) {
  for (int i = 0; i < a.n; ++i)
    for (int j = 0; j < b.n; ++j)
      if ((a.written[i] || b.written[j]) && a.lo[i] < b.hi[j] && b.lo[j] < a.hi[i]) return true;
  return false;
}

// The end of the group starting at idx ([idx, end)), and its team size; end == idx + 1: none.
size_t group_end(const std::vector<Instr>& program, size_t idx, void* const* slots, int* team) {
  Footprint fp[kMaxGroup];
  if (!footprint(program[idx], slots, &fp[0])) return idx + 1;
  size_t end = idx + 1;
  while (end < program.size() && end - idx < kMaxGroup) {
    Footprint& f = fp[end - idx];
    if (!footprint(program[end], slots, &f)) break;
    bool ok = true;
    for (size_t j = idx; j < end && ok; ++j) ok = !conflict(fp[j - idx], f);
    if (!ok) break;
    ++end;
  }
  const size_t n = end - idx;
  if (n < 2) return idx + 1;
  double total = 0, largest = 0;
  for (size_t j = 0; j < n; ++j) {
    total += fp[j].work;
    largest = std::max(largest, fp[j].work);
  }
  // Worth it when each thread gets GEMM-sized work (the GEMM's own rule) and no instruction
  // dominates: side by side the group takes about its largest member's 1-thread time, in turn
  // about total / (nt x ~0.85 parallel efficiency). (An SGD run whose one big layer dominates,
  // like LeNet-5's, stays as it was: that layer alone splits across the threads.)
  constexpr double kMinWorkPerThread = 0.6e6;
  const int want = threads_for(total, kMinWorkPerThread);
  if (want < 2 || largest * std::min<double>(want, double(n)) * 0.85 > total) return idx + 1;
  *team = team_size(total, kMinWorkPerThread, static_cast<int64_t>(n));
  return *team >= 2 ? end : idx + 1;
}

}  // namespace

std::string validate(const std::vector<Instr>& program, const std::vector<int64_t>& slot_bytes,
                     int64_t n_scalars) {
  for (size_t idx = 0; idx < program.size(); ++idx) {
    const Instr& in = program[idx];
    std::ostringstream where;
    where << "instruction " << idx << " (" << op_name(in.op) << "): ";
    if (!in_range(in.op, kOpCount))
      return where.str() + "unknown op code " + std::to_string(static_cast<int32_t>(in.op));
    if (in.dtype != DType::f32 && in.dtype != DType::f64) return where.str() + "dtype: expected f32 or f64";
    const Row& row = kTable[static_cast<int>(in.op)];
    if (in.attrs.index() != row.attrs_index)
      return where.str() + "attrs: expected " + row.attrs_name + ", got " + attrs_name_at(in.attrs.index());
    std::string e = row.check(in);
    if (e.empty()) e = operands_error(in, row.needs(in), slot_bytes, n_scalars);
    if (!e.empty()) return where.str() + e;
  }
  return "";
}

int64_t run(const std::vector<Instr>& program, void* const* slots, const double* scalars,
            Callback callback, void* user, std::string* error, double* seconds) {
  std::string local;
  std::string* err = error ? error : &local;
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0;
  const bool grouping = get_num_threads() > 1;
  for (size_t idx = 0; idx < program.size(); ++idx) {
    const Instr& in = program[idx];
    int team = 1;
    const size_t end = grouping ? group_end(program, idx, slots, &team) : idx + 1;
    if (end > idx + 1) {
      const int64_t n = static_cast<int64_t>(end - idx);
      std::string errs[kMaxGroup];
      int64_t bads[kMaxGroup];
      parallel_tasks(n, team, [&](int64_t t) {
        const Instr& gi = program[idx + size_t(t)];
        const Clock::time_point g0 = seconds ? Clock::now() : Clock::time_point{};
        const Row& row = kTable[static_cast<int>(gi.op)];
        try {
          bads[t] = (gi.dtype == DType::f64 ? row.run_f64 : row.run_f32)(gi, slots, scalars, &errs[t]);
        } catch (const std::exception& e) {  // never let an exception cross the team region
          errs[t] = e.what();
          bads[t] = 0;
        }
        if (seconds) seconds[idx + size_t(t)] += std::chrono::duration<double>(Clock::now() - g0).count();
      });
      for (int64_t t = 0; t < n; ++t)
        if (bads[t] >= 0) {
          *err = errs[t];
          return static_cast<int64_t>(idx) + t;
        }
      idx = end - 1;
      continue;
    }
    if (seconds) t0 = Clock::now();
    if (in.op == Op::callback) {
      const int64_t id = std::get_if<CallbackAttrs>(&in.attrs)->id;
      if (!callback || !callback(user, id)) {
        if (err->empty()) *err = "callback " + std::to_string(id) + " failed";
        return static_cast<int64_t>(idx);
      }
    } else {
      const Row& row = kTable[static_cast<int>(in.op)];
      const int64_t bad = (in.dtype == DType::f64 ? row.run_f64 : row.run_f32)(in, slots, scalars, err);
      if (bad >= 0) return static_cast<int64_t>(idx);
    }
    if (seconds) seconds[idx] += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return -1;
}

}  // namespace graph
}  // namespace lamina
