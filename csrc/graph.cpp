// Graph executor (see graph.h): a switch over op codes calling the kernel families directly.
#include "graph.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "activation.h"
#include "conv.h"
#include "cpu.h"
#include "gemm.h"
#include "loss.h"
#include "optim.h"
#include "pool.h"

namespace lamina {
namespace graph {

const char* op_name(Op op) {
  switch (op) {
    case Op::gemm: return "gemm";
    case Op::act_forward: return "act_forward";
    case Op::act_backward: return "act_backward";
    case Op::bias_grad_rows: return "bias_grad_rows";
    case Op::ce_forward: return "ce_forward";
    case Op::ce_backward: return "ce_backward";
    case Op::fill: return "fill";
    case Op::add: return "add";
    case Op::sub: return "sub";
    case Op::mul: return "mul";
    case Op::scale: return "scale";
    case Op::copy: return "copy";
    case Op::accumulate: return "accumulate";
    case Op::sgd: return "sgd";
    case Op::adam: return "adam";
    case Op::callback: return "callback";
    case Op::conv2d_forward: return "conv2d_forward";
    case Op::conv2d_backward: return "conv2d_backward";
    case Op::max_pool2d_forward: return "max_pool2d_forward";
    case Op::max_pool2d_backward: return "max_pool2d_backward";
    case Op::avg_pool2d_forward: return "avg_pool2d_forward";
    case Op::avg_pool2d_backward: return "avg_pool2d_backward";
    case Op::adaptive_avg_pool2d_forward: return "adaptive_avg_pool2d_forward";
    case Op::adaptive_avg_pool2d_backward: return "adaptive_avg_pool2d_backward";
    case Op::broadcast: return "broadcast";
    case Op::reduce_broadcast: return "reduce_broadcast";
    case Op::div: return "div";
    case Op::unary: return "unary";
    case Op::loss_forward: return "loss_forward";
    case Op::loss_backward: return "loss_backward";
  }
  return "?";
}

namespace {

int64_t itemsize(DType d) { return d == DType::f32 ? 4 : 8; }

// Bytes each slot of `in` must hold (0: slot unused or optional), and how many slots it uses.
struct Need {
  int64_t bytes[kSlots] = {0, 0, 0, 0, 0, 0};
  bool required[kSlots] = {false, false, false, false, false, false};
  int scalars = 0;
};

// a * b for non-negative sizes, saturating at INT64_MAX: an overflowed product (M*K = 2^64 -> 0)
// would let a tiny buffer pass the size check.
int64_t mul_sat(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}

int64_t mul_sat(int64_t a, int64_t b, int64_t c, int64_t d) { return mul_sat(mul_sat(a, b), mul_sat(c, d)); }

// Window and size attributes are bounded like the _C conv/pool bindings bound them: H + 2*pad,
// dil*(K-1) and products of sizes stay far from int64 overflow.
constexpr int64_t kMaxAttr = (int64_t(1) << 31) - 1;

ConvParams conv_of(const int64_t* a) {
  ConvParams p;
  p.N = a[0]; p.C = a[1]; p.H = a[2]; p.W = a[3]; p.K = a[4]; p.KH = a[5]; p.KW = a[6];
  p.stride_h = a[7]; p.stride_w = a[8]; p.pad_h = a[9]; p.pad_w = a[10];
  p.dil_h = a[11]; p.dil_w = a[12]; p.groups = a[13];
  return p;
}

PoolParams pool_of(const int64_t* a) {
  PoolParams p;
  p.N = a[0]; p.C = a[1]; p.H = a[2]; p.W = a[3]; p.KH = a[4]; p.KW = a[5];
  p.stride_h = a[6]; p.stride_w = a[7]; p.pad_h = a[8]; p.pad_w = a[9];
  p.dil_h = a[10]; p.dil_w = a[11]; p.ceil_mode = a[12] != 0;
  return p;
}

bool is_conv(Op op) { return op == Op::conv2d_forward || op == Op::conv2d_backward; }
bool is_pool(Op op) {
  return op == Op::max_pool2d_forward || op == Op::max_pool2d_backward || op == Op::avg_pool2d_forward ||
         op == Op::avg_pool2d_backward;
}
bool is_adaptive(Op op) { return op == Op::adaptive_avg_pool2d_forward || op == Op::adaptive_avg_pool2d_backward; }

// Conv / pool attributes must be checked before needs_of: OH() divides by the stride.
std::string window_error(const Instr& in) {
  const int64_t* a = in.i;
  const int count = is_conv(in.op) ? 14 : is_pool(in.op) ? 15 : is_adaptive(in.op) ? 6 : 0;
  for (int k = 0; k < count; ++k)
    if (a[k] < 0 || a[k] > kMaxAttr)
      return "i[" + std::to_string(k) + "]: expected a value in [0, 2^31), got " + std::to_string(a[k]);
  if (is_conv(in.op)) {
    const char* e = conv_params_error(conv_of(a));
    if (e[0]) return std::string("conv params: ") + e;
    if (in.op == Op::conv2d_forward && a[14] > 6)
      return "i[14]: activation kind out of range, got " + std::to_string(a[14]);
  } else if (is_pool(in.op)) {
    const char* e = pool_params_error(pool_of(a));
    if (e[0]) return std::string("pool params: ") + e;
    if (a[12] > 1 || a[13] > 1) return "i[12], i[13]: ceil_mode and count_include_pad must be 0 or 1";
    const bool avg = in.op == Op::avg_pool2d_forward || in.op == Op::avg_pool2d_backward;
    if (avg && (a[10] != 1 || a[11] != 1)) return "i[10], i[11]: average pooling takes dilation 1";
  } else if (is_adaptive(in.op)) {
    for (int k = 1; k < 6; ++k)
      if (a[k] == 0) return "i[" + std::to_string(k) + "]: expected C, H, W, OH, OW > 0";
  } else if (in.op == Op::broadcast || in.op == Op::reduce_broadcast) {
    if (mul_sat(a[0], a[1]) == std::numeric_limits<int64_t>::max())   // outer*mid rows must not wrap
      return "i[0], i[1]: outer * mid overflows";
    if (in.op == Op::broadcast && (a[3] < 0 || a[3] > 4))
      return "i[3]: broadcast kind out of range [0, 4], got " + std::to_string(a[3]);
  } else if ((in.op == Op::loss_forward || in.op == Op::loss_backward) && (a[1] < 0 || a[1] > 1)) {
    return "i[1]: loss kind out of range [0, 1], got " + std::to_string(a[1]);
  } else if (in.op == Op::unary && (a[1] < 0 || a[1] > 6)) {
    return "i[1]: unary kind out of range [0, 6], got " + std::to_string(a[1]);
  }
  return "";
}

Need needs_of(const Instr& in) {
  Need nd;
  const int64_t t = itemsize(in.dtype);
  auto req = [&](int k, int64_t elems, int64_t size) { nd.bytes[k] = mul_sat(elems, size); nd.required[k] = true; };
  auto opt = [&](int k, int64_t elems, int64_t size) { nd.bytes[k] = mul_sat(elems, size); };
  const int64_t* a = in.i;
  switch (in.op) {
    case Op::gemm: {
      const int64_t M = a[2], N = a[3], K = a[4];
      req(0, mul_sat(M, K), t); req(1, mul_sat(K, N), t); req(2, mul_sat(M, N), t);
      opt(3, a[6] == static_cast<int64_t>(BiasAxis::per_row) ? M : N, t);
      break;
    }
    case Op::act_forward: req(0, a[0], t); req(1, a[0], t); break;
    case Op::act_backward: req(0, a[0], t); req(1, a[0], t); req(2, a[0], t); break;
    case Op::bias_grad_rows: req(0, mul_sat(a[0], a[1]), t); req(1, a[1], t); break;
    case Op::ce_forward:
      req(0, mul_sat(a[0], a[1]), t); req(1, a[0], 8); req(2, 1, t); req(3, mul_sat(a[0], a[1]), t); req(4, 1, 8);
      break;
    case Op::ce_backward:
      req(0, mul_sat(a[0], a[1]), t); req(1, a[0], 8); req(2, 1, t); req(3, 1, 8); req(4, mul_sat(a[0], a[1]), t);
      break;
    case Op::fill: req(0, a[0], t); break;
    case Op::add: case Op::sub: case Op::mul: case Op::div: req(0, a[0], t); req(1, a[0], t); req(2, a[0], t); break;
    case Op::unary: req(0, a[0], t); req(1, a[0], t); break;
    case Op::loss_forward: req(0, a[0], t); req(1, a[0], t); req(2, 1, t); break;
    case Op::loss_backward: req(0, a[0], t); req(1, a[0], t); req(2, 1, t); req(3, a[0], t); break;
    case Op::scale: case Op::copy: case Op::accumulate: req(0, a[0], t); req(1, a[0], t); break;
    case Op::sgd: req(0, a[0], t); req(1, a[0], t); opt(2, a[0], t); nd.scalars = 6; break;
    case Op::adam:
      req(0, a[0], t); req(1, a[0], t); req(2, a[0], t); req(3, a[0], t); opt(4, a[0], t);
      nd.scalars = 6;
      break;
    case Op::callback: break;
    case Op::conv2d_forward: case Op::conv2d_backward: {
      const ConvParams p = conv_of(a);
      const int64_t xs = mul_sat(p.N, p.C, p.H, p.W), ws = mul_sat(p.K, p.C / p.groups, p.KH, p.KW);
      const int64_t ys = mul_sat(p.N, p.K, p.OH(), p.OW());
      req(0, xs, t); req(1, ws, t);
      if (in.op == Op::conv2d_forward) { opt(2, p.K, t); req(3, ys, t); }
      else { req(2, ys, t); opt(3, xs, t); opt(4, ws, t); opt(5, p.K, t); }
      break;
    }
    case Op::max_pool2d_forward: case Op::max_pool2d_backward:
    case Op::avg_pool2d_forward: case Op::avg_pool2d_backward: {
      const PoolParams p = pool_of(a);
      const int64_t xs = mul_sat(p.N, p.C, p.H, p.W), ys = mul_sat(p.N, p.C, p.OH(), p.OW());
      if (in.op == Op::max_pool2d_forward) { req(0, xs, t); req(1, ys, t); req(2, ys, 8); }
      else if (in.op == Op::max_pool2d_backward) { req(0, ys, t); req(1, ys, 8); req(2, xs, t); }
      else if (in.op == Op::avg_pool2d_forward) { req(0, xs, t); req(1, ys, t); }
      else { req(0, ys, t); req(1, xs, t); }
      break;
    }
    case Op::broadcast: case Op::reduce_broadcast: {
      const int64_t n = mul_sat(a[0], a[1], a[2], 1);
      req(0, n, t);
      if (in.op == Op::broadcast) { req(1, a[1], t); req(2, n, t); }
      else { opt(1, n, t); req(2, a[1], t); }
      break;
    }
    case Op::adaptive_avg_pool2d_forward: case Op::adaptive_avg_pool2d_backward: {
      const int64_t xs = mul_sat(a[0], a[1], a[2], a[3]), ys = mul_sat(a[0], a[1], a[4], a[5]);
      if (in.op == Op::adaptive_avg_pool2d_forward) { req(0, xs, t); req(1, ys, t); }
      else { req(0, ys, t); req(1, xs, t); }
      break;
    }
  }
  return nd;
}

template <class T> T* P(void* const* s, int32_t k) { return k < 0 ? nullptr : static_cast<T*>(s[k]); }

// y[o,m,i] = x[o,m,i] (op) s[m]; rows (o, m) are independent, so threads take whole rows.
template <class T>
void broadcast_rows(int64_t outer, int64_t mid, int64_t inner, int64_t kind, const T* x, const T* s, T* y) {
  const int64_t rows = outer * mid;
  const int nt = threads_for(static_cast<double>(rows) * inner, 1 << 15);
#pragma omp parallel for num_threads(nt) schedule(static, 16)
  for (int64_t r = 0; r < rows; ++r) {
    const T sv = s[r % mid];
    const T* xr = x + r * inner;
    T* yr = y + r * inner;
    switch (kind) {
      case 0: for (int64_t k = 0; k < inner; ++k) yr[k] = xr[k] + sv; break;
      case 1: for (int64_t k = 0; k < inner; ++k) yr[k] = xr[k] - sv; break;
      case 2: for (int64_t k = 0; k < inner; ++k) yr[k] = sv - xr[k]; break;
      case 3: for (int64_t k = 0; k < inner; ++k) yr[k] = xr[k] * sv; break;
      default: for (int64_t k = 0; k < inner; ++k) yr[k] = xr[k] / sv; break;
    }
  }
}

template <class T>
int64_t run_one(const Instr& in, void* const* s, const double* sc, std::string* err) {
  const int64_t* a = in.i;
  switch (in.op) {
    case Op::gemm: {
      Epilogue<T> ep;
      ep.act = static_cast<Act>(a[5]);
      ep.bias_axis = in.slot[3] >= 0 ? static_cast<BiasAxis>(a[6]) : BiasAxis::none;
      ep.bias = P<const T>(s, in.slot[3]);
      const bool use_ep = ep.bias_axis != BiasAxis::none || ep.act != Act::identity;
      const int64_t M = a[2], N = a[3], K = a[4];
      gemm<T>(a[0] != 0, a[1] != 0, M, N, K, T(in.f[0]), P<const T>(s, in.slot[0]), a[0] ? M : K,
              P<const T>(s, in.slot[1]), a[1] ? K : N, T(in.f[1]), P<T>(s, in.slot[2]), N,
              use_ep ? &ep : nullptr);
      return -1;
    }
    case Op::act_forward:
      act_forward<T>(static_cast<Activation>(a[1]), a[0], P<const T>(s, in.slot[0]), P<T>(s, in.slot[1]), T(in.f[0]));
      return -1;
    case Op::act_backward:
      act_backward<T>(static_cast<Activation>(a[1]), a[0], P<const T>(s, in.slot[0]),
                      P<const T>(s, in.slot[1]), P<T>(s, in.slot[2]), T(in.f[0]));
      return -1;
    case Op::bias_grad_rows:
      bias_grad_rows<T>(a[0], a[1], P<const T>(s, in.slot[0]), P<T>(s, in.slot[1]));
      return -1;
    case Op::ce_forward: {
      double sum = 0;
      int64_t count = 0;
      const int64_t bad = cross_entropy_forward<T>(a[0], a[1], P<const T>(s, in.slot[0]),
                                                   P<const int64_t>(s, in.slot[1]), P<T>(s, in.slot[3]),
                                                   a[2], nullptr, &sum, &count);
      if (bad >= 0) {
        const int64_t tv = P<const int64_t>(s, in.slot[1])[bad];
        std::ostringstream m;
        m << "target: class index " << tv << " at row " << bad << " is out of range [0, " << a[1] << ")";
        *err = m.str();
        return bad;
      }
      const bool mean = a[3] != 0;
      double scale = 1.0, loss = sum;
      if (mean) {
        if (count > 0) { scale = 1.0 / static_cast<double>(count); loss = sum * scale; }
        else loss = std::numeric_limits<double>::quiet_NaN();
      }
      *P<T>(s, in.slot[2]) = static_cast<T>(loss);
      *P<double>(s, in.slot[4]) = scale;
      return -1;
    }
    case Op::ce_backward: {
      // Same scalar as eager: float(dy) * scale, cast to T once.
      const double scale = static_cast<double>(*P<const T>(s, in.slot[2])) * *P<const double>(s, in.slot[3]);
      const int64_t bad = cross_entropy_backward<T>(a[0], a[1], P<const T>(s, in.slot[0]),
                                                    P<const int64_t>(s, in.slot[1]), static_cast<T>(scale),
                                                    a[2], P<T>(s, in.slot[4]));
      if (bad >= 0) {
        *err = "target: class index out of range at row " + std::to_string(bad);
        return bad;
      }
      return -1;
    }
    case Op::fill: {
      T* y = P<T>(s, in.slot[0]);
      const T v = T(in.f[0]);
      for (int64_t k = 0; k < a[0]; ++k) y[k] = v;
      return -1;
    }
    case Op::add: case Op::sub: case Op::mul: case Op::div: {
      const T* x0 = P<const T>(s, in.slot[0]);
      const T* x1 = P<const T>(s, in.slot[1]);
      T* y = P<T>(s, in.slot[2]);
      const int64_t n = a[0];
      if (in.op == Op::add) for (int64_t k = 0; k < n; ++k) y[k] = x0[k] + x1[k];
      else if (in.op == Op::sub) for (int64_t k = 0; k < n; ++k) y[k] = x0[k] - x1[k];
      else if (in.op == Op::mul) for (int64_t k = 0; k < n; ++k) y[k] = x0[k] * x1[k];
      else for (int64_t k = 0; k < n; ++k) y[k] = x0[k] / x1[k];
      return -1;
    }
    case Op::loss_forward: {
      const T* x = P<const T>(s, in.slot[0]);
      const T* tg = P<const T>(s, in.slot[1]);
      const double sum = a[1] == 0 ? mse_forward<T>(a[0], x, tg) : bce_with_logits_forward<T>(a[0], x, tg);
      *P<T>(s, in.slot[2]) = static_cast<T>(sum * in.f[0]);   // as eager: double sum * scale, cast once
      return -1;
    }
    case Op::loss_backward: {
      const T* x = P<const T>(s, in.slot[0]);
      const T* tg = P<const T>(s, in.slot[1]);
      const double dl = static_cast<double>(*P<const T>(s, in.slot[2]));
      if (a[1] == 0) mse_backward<T>(a[0], x, tg, static_cast<T>(2.0 * dl * in.f[0]), P<T>(s, in.slot[3]));
      else bce_with_logits_backward<T>(a[0], x, tg, static_cast<T>(dl * in.f[0]), P<T>(s, in.slot[3]));
      return -1;
    }
    case Op::unary: {
      const T* x = P<const T>(s, in.slot[0]);
      T* y = P<T>(s, in.slot[1]);
      const int64_t n = a[0];
      switch (a[1]) {
        case 0: for (int64_t k = 0; k < n; ++k) y[k] = -x[k]; break;
        case 1: for (int64_t k = 0; k < n; ++k) y[k] = std::exp(x[k]); break;
        case 2: for (int64_t k = 0; k < n; ++k) y[k] = std::log(x[k]); break;
        case 3: for (int64_t k = 0; k < n; ++k) y[k] = std::sin(x[k]); break;
        case 4: for (int64_t k = 0; k < n; ++k) y[k] = std::cos(x[k]); break;
        case 5: for (int64_t k = 0; k < n; ++k) y[k] = std::fabs(x[k]); break;
        // sign, as numpy: +-1, 0 for +-0, NaN for NaN
        default: for (int64_t k = 0; k < n; ++k) y[k] = x[k] > T(0) ? T(1) : x[k] < T(0) ? T(-1) : x[k]; break;
      }
      return -1;
    }
    case Op::scale: {
      const T* x = P<const T>(s, in.slot[0]);
      T* y = P<T>(s, in.slot[1]);
      const T al = T(in.f[0]);
      for (int64_t k = 0; k < a[0]; ++k) y[k] = al * x[k];
      return -1;
    }
    case Op::copy:
      std::memmove(P<T>(s, in.slot[1]), P<const T>(s, in.slot[0]), static_cast<size_t>(a[0]) * sizeof(T));
      return -1;
    case Op::accumulate: {
      const T* x = P<const T>(s, in.slot[0]);
      T* y = P<T>(s, in.slot[1]);
      for (int64_t k = 0; k < a[0]; ++k) y[k] += x[k];
      return -1;
    }
    case Op::sgd:
      sgd_step<T>(a[0], P<T>(s, in.slot[0]), P<const T>(s, in.slot[1]), P<T>(s, in.slot[2]), sc[in.sc[0]],
                  sc[in.sc[1]], sc[in.sc[2]], sc[in.sc[3]], sc[in.sc[4]] != 0.0, sc[in.sc[5]] != 0.0);
      return -1;
    case Op::adam:
      adam_step<T>(a[0], P<T>(s, in.slot[0]), P<const T>(s, in.slot[1]), P<T>(s, in.slot[2]),
                   P<T>(s, in.slot[3]), P<T>(s, in.slot[4]), static_cast<int64_t>(sc[in.sc[5]]),
                   sc[in.sc[0]], sc[in.sc[1]], sc[in.sc[2]], sc[in.sc[3]], sc[in.sc[4]], a[1] != 0,
                   a[2] != 0);
      return -1;
    case Op::callback:
      return -1;
    case Op::conv2d_forward: {
      const ConvParams p = conv_of(a);
      T* y = P<T>(s, in.slot[3]);
      const T* x = P<const T>(s, in.slot[0]);
      const T* w = P<const T>(s, in.slot[1]);
      const T* b = P<const T>(s, in.slot[2]);
      const auto act = static_cast<Activation>(a[14]);
      // ReLU goes into the conv's GEMM epilogue (exact, so eager's conv-then-relu values);
      // other activations run in place on y with the activation kernel eager uses. Either
      // way there is no separate pre-activation buffer.
      if (act == Activation::relu) {
        conv2d_forward<T>(p, x, w, b, y, Act::relu);
      } else {
        conv2d_forward<T>(p, x, w, b, y);
        if (act != Activation::identity) act_forward<T>(act, p.N * p.K * p.OH() * p.OW(), y, y, T(in.f[0]));
      }
      return -1;
    }
    case Op::conv2d_backward:
      conv2d_backward<T>(conv_of(a), P<const T>(s, in.slot[0]), P<const T>(s, in.slot[1]),
                         P<const T>(s, in.slot[2]), P<T>(s, in.slot[3]), P<T>(s, in.slot[4]), P<T>(s, in.slot[5]));
      return -1;
    case Op::max_pool2d_forward:
      max_pool2d_forward<T>(pool_of(a), P<const T>(s, in.slot[0]), P<T>(s, in.slot[1]), P<int64_t>(s, in.slot[2]));
      return -1;
    case Op::max_pool2d_backward:
      max_pool2d_backward<T>(pool_of(a), P<const T>(s, in.slot[0]), P<const int64_t>(s, in.slot[1]), P<T>(s, in.slot[2]));
      return -1;
    case Op::avg_pool2d_forward:
      avg_pool2d_forward<T>(pool_of(a), P<const T>(s, in.slot[0]), P<T>(s, in.slot[1]), a[13] != 0, a[14]);
      return -1;
    case Op::avg_pool2d_backward:
      avg_pool2d_backward<T>(pool_of(a), P<const T>(s, in.slot[0]), P<T>(s, in.slot[1]), a[13] != 0, a[14]);
      return -1;
    case Op::adaptive_avg_pool2d_forward:
      adaptive_avg_pool2d_forward<T>(a[0], a[1], a[2], a[3], a[4], a[5], P<const T>(s, in.slot[0]), P<T>(s, in.slot[1]));
      return -1;
    case Op::adaptive_avg_pool2d_backward:
      adaptive_avg_pool2d_backward<T>(a[0], a[1], a[2], a[3], a[4], a[5], P<const T>(s, in.slot[0]), P<T>(s, in.slot[1]));
      return -1;
    case Op::broadcast:
      broadcast_rows<T>(a[0], a[1], a[2], a[3], P<const T>(s, in.slot[0]), P<const T>(s, in.slot[1]), P<T>(s, in.slot[2]));
      return -1;
    case Op::reduce_broadcast:
      bias_grad_split<T>(a[0], a[1], a[2], in.f[0], P<const T>(s, in.slot[0]), P<const T>(s, in.slot[1]), P<T>(s, in.slot[2]));
      return -1;
  }
  *err = "unknown op";
  return 0;
}

}  // namespace

std::string validate(const std::vector<Instr>& program, const std::vector<int64_t>& slot_bytes,
                     int64_t n_scalars) {
  const int64_t nslots = static_cast<int64_t>(slot_bytes.size());
  for (size_t idx = 0; idx < program.size(); ++idx) {
    const Instr& in = program[idx];
    std::ostringstream where;
    where << "instruction " << idx << " (" << op_name(in.op) << "): ";
    if (static_cast<int32_t>(in.op) < 0 || static_cast<int32_t>(in.op) > kLastOp)
      return where.str() + "unknown op code " + std::to_string(static_cast<int32_t>(in.op));
    if (in.dtype != DType::f32 && in.dtype != DType::f64)
      return where.str() + "dtype: expected f32 or f64";
    const std::string werr = window_error(in);
    if (!werr.empty()) return where.str() + werr;
    for (int k = 0; k < kInts; ++k)
      if ((in.op != Op::ce_forward && in.op != Op::ce_backward) || k != 2)
        if (k < 5 && in.i[k] < 0 && in.op != Op::callback)
          return where.str() + "i[" + std::to_string(k) + "]: expected a non-negative size, got " + std::to_string(in.i[k]);
    const Need nd = needs_of(in);
    for (int k = 0; k < kSlots; ++k) {
      const int32_t sl = in.slot[k];
      if (sl < -1 || sl >= nslots)
        return where.str() + "slot[" + std::to_string(k) + "]: index " + std::to_string(sl) + " out of range";
      if (sl < 0) {
        if (nd.required[k]) return where.str() + "slot[" + std::to_string(k) + "]: required buffer missing";
        continue;
      }
      if (slot_bytes[sl] < nd.bytes[k])
        return where.str() + "slot[" + std::to_string(k) + "]: buffer holds " + std::to_string(slot_bytes[sl]) +
               " bytes, the op touches " + std::to_string(nd.bytes[k]);
    }
    for (int k = 0; k < nd.scalars; ++k)
      if (in.sc[k] < 0 || in.sc[k] >= n_scalars)
        return where.str() + "sc[" + std::to_string(k) + "]: scalar index " + std::to_string(in.sc[k]) + " out of range";
    if (in.op == Op::gemm && (in.i[5] < 0 || in.i[5] > 3 || in.i[6] < 0 || in.i[6] > 2))
      return where.str() + "act/bias_axis out of range";
    if ((in.op == Op::act_forward || in.op == Op::act_backward) && (in.i[1] < 0 || in.i[1] > 6))
      return where.str() + "activation kind out of range";
  }
  return "";
}

int64_t run(const std::vector<Instr>& program, void* const* slots, const double* scalars,
            Callback callback, void* user, std::string* error) {
  std::string local;
  std::string* err = error ? error : &local;
  for (size_t idx = 0; idx < program.size(); ++idx) {
    const Instr& in = program[idx];
    if (in.op == Op::callback) {
      if (!callback || !callback(user, in.i[0])) {
        if (err->empty()) *err = "callback " + std::to_string(in.i[0]) + " failed";
        return static_cast<int64_t>(idx);
      }
      continue;
    }
    const int64_t bad = in.dtype == DType::f64 ? run_one<double>(in, slots, scalars, err)
                                               : run_one<float>(in, slots, scalars, err);
    if (bad >= 0) return static_cast<int64_t>(idx);
  }
  return -1;
}

}  // namespace graph
}  // namespace lamina
