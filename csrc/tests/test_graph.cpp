// Graph executor: conv + ReLU + pooling programs (forward and backward) must match the conv/pool
// kernels called directly, bit for bit; window attributes are validated before anything runs.
// Also: a small Linear + ReLU + cross-entropy + SGD program must give exactly what
// the same kernels called directly give; validate() must refuse bad slot sizes and indices.
// Independent neighbours (a Linear's dX, dW and bias gradient) run side by side as one team
// region at 2 threads, with the bits of 1 thread; neighbours that share written memory do not.
#include <cmath>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "activation.h"
#include "check.h"
#include "conv.h"
#include "gemm.h"
#include "graph.h"
#include "loss.h"
#include "optim.h"
#include "pool.h"
#include "thread_team.h"

using namespace lamina;
using graph::Instr;
using graph::Op;

static Instr make(Op op, std::vector<int32_t> slots, graph::Attrs attrs) {
  Instr in;
  in.op = op;
  in.dtype = graph::DType::f32;
  for (size_t k = 0; k < slots.size(); ++k) in.slot[k] = slots[k];
  in.attrs = attrs;
  return in;
}

static graph::ConvAttrs conv_attrs(const ConvParams& p, Activation act = Activation::identity) {
  graph::ConvAttrs a;
  a.params = p;
  a.act = act;
  return a;
}

static graph::PoolAttrs pool_attrs(const PoolParams& p) {
  graph::PoolAttrs a;
  a.params = p;
  return a;
}

static void conv_pool_programs() {
  ConvParams cp;
  cp.N = 2; cp.C = 3; cp.H = 7; cp.W = 6; cp.K = 4; cp.KH = 3; cp.KW = 3; cp.pad_h = 1; cp.pad_w = 1;
  const int64_t OH = cp.OH(), OW = cp.OW();
  const int64_t xs = cp.N * cp.C * cp.H * cp.W, ws = cp.K * cp.C * cp.KH * cp.KW, ys = cp.N * cp.K * OH * OW;
  PoolParams pp;
  pp.N = cp.N; pp.C = cp.K; pp.H = OH; pp.W = OW; pp.KH = 2; pp.KW = 2; pp.stride_h = 2; pp.stride_w = 2;
  pp.ceil_mode = true;   // 7x6 -> 4x3: the last row window is partial
  const int64_t ps = pp.N * pp.C * pp.OH() * pp.OW();
  std::vector<float> x(xs), w(ws), b(cp.K), dyp(ps);
  for (int64_t i = 0; i < xs; ++i) x[i] = std::sin(0.37f * i);
  for (int64_t i = 0; i < ws; ++i) w[i] = std::cos(0.21f * i) * 0.3f;
  for (int64_t i = 0; i < cp.K; ++i) b[i] = 0.05f * i - 0.1f;
  for (int64_t i = 0; i < ps; ++i) dyp[i] = std::cos(0.5f * i);

  // reference: kernels called one by one (conv, relu, max-pool; back through them)
  std::vector<float> y(ys), r(ys), p(ps), dr(ys), dz(ys), dx(xs), dw(ws), db(cp.K);
  std::vector<int64_t> idx(ps);
  conv2d_forward<float>(cp, x.data(), w.data(), b.data(), y.data());
  act_forward<float>(Activation::relu, ys, y.data(), r.data());
  max_pool2d_forward<float>(pp, r.data(), p.data(), idx.data());
  max_pool2d_backward<float>(pp, dyp.data(), idx.data(), dr.data());
  act_backward<float>(Activation::relu, ys, r.data(), dr.data(), dz.data());
  conv2d_backward<float>(cp, x.data(), w.data(), dz.data(), dx.data(), dw.data(), db.data());

  // the program: conv with ReLU applied in place, pool, back through them (act_bwd in place)
  // slots: 0 x, 1 w, 2 b, 3 y, 4 p, 5 idx, 6 dyp, 7 dr, 8 dx, 9 dw, 10 db
  std::vector<float> gy(ys), gp(ps), gdr(ys), gdx(xs), gdw(ws), gdb(cp.K);
  std::vector<int64_t> gidx(ps);
  std::vector<void*> slots = {x.data(), w.data(), b.data(), gy.data(), gp.data(), gidx.data(), dyp.data(),
                              gdr.data(), gdx.data(), gdw.data(), gdb.data()};
  std::vector<int64_t> bytes = {xs * 4, ws * 4, cp.K * 4, ys * 4, ps * 4, ps * 8, ps * 4, ys * 4, xs * 4, ws * 4, cp.K * 4};
  const graph::PoolAttrs pool = pool_attrs(pp);
  std::vector<Instr> prog = {
      make(Op::conv2d_forward, {0, 1, 2, 3}, conv_attrs(cp, Activation::relu)),
      make(Op::max_pool2d_forward, {3, 4, 5}, pool),
      make(Op::max_pool2d_backward, {6, 5, 7}, pool),
      make(Op::act_backward, {3, 7, 7}, graph::ActAttrs{ys, Activation::relu, 0.01}),
      make(Op::conv2d_backward, {0, 1, 7, 8, 9, 10}, conv_attrs(cp)),
  };
  const std::string v = graph::validate(prog, bytes, 0);
  CHECK_MSG(v.empty(), v.c_str());
  std::string err;
  CHECK(graph::run(prog, slots.data(), nullptr, nullptr, nullptr, &err) == -1);
  bool same = true;
  for (int64_t i = 0; i < ys; ++i) same = same && gy[i] == r[i];
  for (int64_t i = 0; i < ps; ++i) same = same && gp[i] == p[i] && gidx[i] == idx[i];
  for (int64_t i = 0; i < xs; ++i) same = same && gdx[i] == dx[i];
  for (int64_t i = 0; i < ws; ++i) same = same && gdw[i] == dw[i];
  for (int64_t i = 0; i < cp.K; ++i) same = same && gdb[i] == db[i];
  CHECK_MSG(same, "conv/pool program differs from the kernels called directly");

  // average and adaptive average pooling, forward and backward, on the relu output
  std::vector<float> ya(ps), yad(cp.N * cp.K * 2), dxa(ys), dxad(ys), ga(ps), gad(cp.N * cp.K * 2), gdxa(ys), gdxad(ys);
  avg_pool2d_forward<float>(pp, r.data(), ya.data(), false, 0);
  avg_pool2d_backward<float>(pp, dyp.data(), dxa.data(), false, 0);
  adaptive_avg_pool2d_forward<float>(cp.N, cp.K, OH, OW, 2, 1, r.data(), yad.data());
  adaptive_avg_pool2d_backward<float>(cp.N, cp.K, OH, OW, 2, 1, dyp.data(), dxad.data());
  std::vector<void*> s2 = {r.data(), ga.data(), gad.data(), dyp.data(), gdxa.data(), gdxad.data()};
  std::vector<int64_t> b2 = {ys * 4, ps * 4, cp.N * cp.K * 2 * 4, ps * 4, ys * 4, ys * 4};
  const graph::AdaptivePoolAttrs ad{cp.N, cp.K, OH, OW, 2, 1};
  std::vector<Instr> p2 = {make(Op::avg_pool2d_forward, {0, 1}, pool), make(Op::avg_pool2d_backward, {3, 4}, pool),
                           make(Op::adaptive_avg_pool2d_forward, {0, 2}, ad),
                           make(Op::adaptive_avg_pool2d_backward, {3, 5}, ad)};
  CHECK_MSG(graph::validate(p2, b2, 0).empty(), graph::validate(p2, b2, 0).c_str());
  CHECK(graph::run(p2, s2.data(), nullptr, nullptr, nullptr, &err) == -1);
  same = true;
  for (int64_t i = 0; i < ps; ++i) same = same && ga[i] == ya[i];
  for (int64_t i = 0; i < cp.N * cp.K * 2; ++i) same = same && gad[i] == yad[i];
  for (int64_t i = 0; i < ys; ++i) same = same && gdxa[i] == dxa[i] && gdxad[i] == dxad[i];
  CHECK_MSG(same, "avg / adaptive pooling program differs from the kernels");

  // validation: every bad attribute is a message, never a crash (stride 0 would divide by 0)
  auto msg = [&](std::vector<Instr> pr) { return graph::validate(pr, bytes, 0); };
  graph::ConvAttrs c0 = conv_attrs(cp);
  c0.params.stride_h = 0;
  CHECK(msg({make(Op::conv2d_forward, {0, 1, 2, 3}, c0)}).find("stride") != std::string::npos);
  c0 = conv_attrs(cp);
  c0.params.pad_h = int64_t(1) << 40;
  CHECK(msg({make(Op::conv2d_forward, {0, 1, 2, 3}, c0)}).find("pad_h: expected a value in") != std::string::npos);
  c0 = conv_attrs(cp);
  c0.params.N = 3;   // one more image than x holds
  CHECK(msg({make(Op::conv2d_forward, {0, 1, 2, 3}, c0)}).find("slot[0]: buffer holds") != std::string::npos);
  CHECK(msg({make(Op::conv2d_forward, {0, 1, 2, 3}, conv_attrs(cp, static_cast<Activation>(9)))}).find("activation") !=
        std::string::npos);
  CHECK(msg({make(Op::conv2d_forward, {-1, 1, 2, 3}, conv_attrs(cp))}).find("required") != std::string::npos);
  // an op carrying another family's attributes is refused, naming both structs
  CHECK(msg({make(Op::conv2d_forward, {0, 1, 2, 3}, pool)}).find("attrs: expected ConvAttrs, got PoolAttrs") !=
        std::string::npos);
  graph::PoolAttrs q = pool;
  q.params.KH = 1000;   // window larger than the input
  CHECK(msg({make(Op::max_pool2d_forward, {3, 4, 5}, q)}).find("pool params") != std::string::npos);
  // int64 indices need 8 bytes per output: a float-sized buffer (slot 6) is too small.
  CHECK(msg({make(Op::max_pool2d_forward, {3, 4, 6}, pool)}).find("slot[2]: buffer holds") != std::string::npos);
  q = pool;
  q.params.dil_h = 2;
  CHECK(msg({make(Op::avg_pool2d_forward, {3, 4}, q)}).find("dilation 1") != std::string::npos);
  CHECK(msg({make(Op::adaptive_avg_pool2d_forward, {3, 4}, graph::AdaptivePoolAttrs{cp.N, cp.K, OH, OW, 0, 1})})
            .find("OH") != std::string::npos);
}

// Broadcasting ops against plain loops: x (2, 3, 4) with s (3) -- a per-channel term.
static void broadcast_programs() {
  const int64_t O = 2, M = 3, I = 4, n = O * M * I;
  std::vector<double> x(n), dy(n), sv = {0.5, -1.25, 2.0};
  for (int64_t k = 0; k < n; ++k) { x[k] = std::sin(0.9 * k); dy[k] = std::cos(0.4 * k); }
  for (int32_t kind = 0; kind < graph::kBroadcastKindCount; ++kind) {
    std::vector<double> y(n), ds(M);
    std::vector<void*> slots = {x.data(), sv.data(), y.data(), dy.data(), ds.data()};
    std::vector<int64_t> bytes = {n * 8, M * 8, n * 8, n * 8, M * 8};
    Instr b = make(Op::broadcast, {0, 1, 2}, graph::BroadcastAttrs{O, M, I, static_cast<graph::BroadcastKind>(kind)});
    Instr r = make(Op::reduce_broadcast, {3, kind == 3 ? 0 : -1, 4}, graph::ReduceBroadcastAttrs{O, M, I, kind == 1 ? -1.0 : 1.0});
    b.dtype = r.dtype = graph::DType::f64;
    std::vector<Instr> prog = {b, r};
    CHECK_MSG(graph::validate(prog, bytes, 0).empty(), graph::validate(prog, bytes, 0).c_str());
    std::string err;
    CHECK(graph::run(prog, slots.data(), nullptr, nullptr, nullptr, &err) == -1);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t i = 0; i < I; ++i) {
          const int64_t k = (o * M + m) * I + i;
          const double want = kind == 0 ? x[k] + sv[m] : kind == 1 ? x[k] - sv[m] : kind == 2 ? sv[m] - x[k]
                              : kind == 3 ? x[k] * sv[m] : x[k] / sv[m];
          CHECK(y[k] == want);
        }
    for (int64_t m = 0; m < M; ++m) {
      double want = 0;
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < I; ++i) want += dy[(o * M + m) * I + i] * (kind == 3 ? x[(o * M + m) * I + i] : 1.0);
      CHECK_NEAR(ds[m], kind == 1 ? -want : want, 1e-12);
    }
    // a kind past mul, a short small operand, and rows that overflow are refused
    Instr bad = b;
    std::get<graph::BroadcastAttrs>(bad.attrs).kind = static_cast<graph::BroadcastKind>(graph::kBroadcastKindCount);
    CHECK(graph::validate({bad}, bytes, 0).find("kind out of range") != std::string::npos);
    bad = b;
    std::get<graph::BroadcastAttrs>(bad.attrs).mid = 4;
    std::get<graph::BroadcastAttrs>(bad.attrs).outer = 1;
    CHECK(graph::validate({bad}, bytes, 0).find("slot[1]: buffer holds 24 bytes") != std::string::npos);
    bad = r;
    bad.attrs = graph::ReduceBroadcastAttrs{int64_t(1) << 40, int64_t(1) << 40, 0, 1.0};
    CHECK(graph::validate({bad}, bytes, 0).find("overflows") != std::string::npos);
  }
}

// Unary ops and div against the C library, element by element (sign as numpy: NaN stays NaN).
static void unary_programs() {
  std::vector<float> x = {-2.5f, -0.0f, 0.0f, 0.75f, 3.0f, std::nanf("")}, d = {1.f, 2.f, -4.f, 0.5f, 8.f, 1.f};
  const int64_t n = static_cast<int64_t>(x.size());
  float (*ref[])(float) = {[](float v) { return -v; }, [](float v) { return std::exp(v); },
                           [](float v) { return std::log(v); }, [](float v) { return std::sin(v); },
                           [](float v) { return std::cos(v); }, [](float v) { return std::fabs(v); },
                           [](float v) { return v > 0 ? 1.f : v < 0 ? -1.f : v; }};
  static_assert(sizeof(ref) / sizeof(ref[0]) == graph::kUnaryKindCount, "one reference per unary kind");
  for (int32_t kind = 0; kind < graph::kUnaryKindCount; ++kind) {
    std::vector<float> y(n), q(n);
    std::vector<void*> slots = {x.data(), d.data(), y.data(), q.data()};
    std::vector<int64_t> bytes(4, n * 4);
    std::vector<Instr> prog = {make(Op::unary, {0, 2}, graph::UnaryAttrs{n, static_cast<graph::UnaryKind>(kind)}),
                               make(Op::div, {0, 1, 3}, graph::ElementwiseAttrs{n})};
    CHECK_MSG(graph::validate(prog, bytes, 0).empty(), graph::validate(prog, bytes, 0).c_str());
    std::string err;
    CHECK(graph::run(prog, slots.data(), nullptr, nullptr, nullptr, &err) == -1);
    for (int64_t k = 0; k < n; ++k) {
      const float want = ref[kind](x[k]);
      CHECK((std::isnan(want) && std::isnan(y[k])) || want == y[k]);
      CHECK((std::isnan(x[k]) && std::isnan(q[k])) || q[k] == x[k] / d[k]);
    }
  }
  std::vector<int64_t> bytes(4, n * 4);
  CHECK(graph::validate({make(Op::unary, {0, 2}, graph::UnaryAttrs{n, static_cast<graph::UnaryKind>(graph::kUnaryKindCount)})},
                        bytes, 0).find("unary kind") != std::string::npos);
  CHECK(graph::validate({make(Op::div, {0, 1, 3}, graph::ElementwiseAttrs{n + 1})}, bytes, 0).find("slot[0]: buffer holds") !=
        std::string::npos);
}

// MSE and BCE-with-logits forward/backward against the loss kernels called directly.
static void loss_programs() {
  const int64_t n = 7;
  std::vector<float> x(n), t(n);
  for (int64_t k = 0; k < n; ++k) { x[k] = std::sin(1.3f * k); t[k] = k % 2 ? 1.f : 0.25f; }
  for (int32_t kind = 0; kind < graph::kLossKindCount; ++kind) {
    const auto lk = static_cast<graph::LossKind>(kind);
    float loss = 0, dloss = 0.5f;
    std::vector<float> dx(n), ref(n);
    std::vector<void*> slots = {x.data(), t.data(), &loss, &dloss, dx.data()};
    std::vector<int64_t> bytes = {n * 4, n * 4, 4, 4, n * 4};
    const double scale = 1.0 / n;
    std::vector<Instr> prog = {make(Op::loss_forward, {0, 1, 2}, graph::PointwiseLossAttrs{n, lk, scale}),
                               make(Op::loss_backward, {0, 1, 3, 4}, graph::PointwiseLossAttrs{n, lk, scale})};
    CHECK_MSG(graph::validate(prog, bytes, 0).empty(), graph::validate(prog, bytes, 0).c_str());
    std::string err;
    CHECK(graph::run(prog, slots.data(), nullptr, nullptr, nullptr, &err) == -1);
    const double sum = kind == 0 ? mse_forward<float>(n, x.data(), t.data()) : bce_with_logits_forward<float>(n, x.data(), t.data());
    CHECK(loss == static_cast<float>(sum * scale));
    if (kind == 0) mse_backward<float>(n, x.data(), t.data(), static_cast<float>(2.0 * 0.5 * scale), ref.data());
    else bce_with_logits_backward<float>(n, x.data(), t.data(), static_cast<float>(0.5 * scale), ref.data());
    for (int64_t k = 0; k < n; ++k) CHECK(dx[k] == ref[k]);
    const auto past = static_cast<graph::LossKind>(graph::kLossKindCount);
    CHECK(graph::validate({make(Op::loss_forward, {0, 1, 2}, graph::PointwiseLossAttrs{n, past, 1.0})}, bytes, 0)
              .find("loss kind") != std::string::npos);
    CHECK(graph::validate({make(Op::loss_backward, {0, 1, 2, 4}, graph::PointwiseLossAttrs{n + 1, lk, 1.0})}, bytes, 0)
              .find("buffer holds") != std::string::npos);
  }
}

// dX = dY W, dW = dY^T X, db = column sums of dY (LeNet-5 F5's shapes), then a product that
// overwrites dY through another slot (aliased memory: never beside the three that read dY),
// then one that reads dX, then dX again from the new dY.
static void grouped_programs() {
  const int64_t B = 64, I = 400, O = 120;
  std::vector<float> dy(B * O), w(O * I), x(B * I), v(I * 8);
  for (int64_t i = 0; i < B * O; ++i) dy[i] = std::sin(0.37f * i);
  for (int64_t i = 0; i < O * I; ++i) w[i] = std::cos(0.11f * i);
  for (int64_t i = 0; i < B * I; ++i) x[i] = std::sin(0.23f * i + 1);
  for (int64_t i = 0; i < I * 8; ++i) v[i] = std::cos(0.7f * i);
  const graph::GemmAttrs dx_a{false, false, B, I, O, Activation::identity, BiasAxis::none, 1.0, 0.0};
  const graph::GemmAttrs dw_a{true, false, O, I, B, Activation::identity, BiasAxis::none, 1.0, 0.0};
  const graph::GemmAttrs dep_a{false, false, B, 8, I, Activation::identity, BiasAxis::none, 1.0, 0.0};
  const graph::GemmAttrs over_a{false, true, B, O, I, Activation::identity, BiasAxis::none, 1.0, 0.0};

  // reference at 1 thread: the kernels one by one
  set_num_threads(1);
  std::vector<float> dx(B * I), dw(O * I), db(O), dep(B * 8), dy_ref = dy;
  gemm<float>(false, false, B, I, O, 1.f, dy_ref.data(), O, w.data(), I, 0.f, dx.data(), I);
  gemm<float>(true, false, O, I, B, 1.f, dy_ref.data(), O, x.data(), I, 0.f, dw.data(), I);
  bias_grad_rows<float>(B, O, dy_ref.data(), db.data());
  gemm<float>(false, false, B, 8, I, 1.f, dx.data(), I, v.data(), 8, 0.f, dep.data(), 8);
  gemm<float>(false, true, B, O, I, 1.f, x.data(), I, w.data(), I, 0.f, dy_ref.data(), O);
  gemm<float>(false, false, B, I, O, 1.f, dy_ref.data(), O, w.data(), I, 0.f, dx.data(), I);

  for (int threads : {1, 2}) {
    set_num_threads(threads);
    GemmPathOverride o;
    o.load_backoff = 0;  // a neighbour's load must not turn the 2-thread run into 1-thread runs
    gemm_set_path_override(o);
    std::vector<float> g_dy = dy, g_dx(B * I), g_dw(O * I), g_db(O), g_dep(B * 8);
    // slots: 0 dy, 1 w, 2 x, 3 dx, 4 dw, 5 db, 6 v, 7 dep, 8 dy again (aliased)
    std::vector<void*> slots = {g_dy.data(), w.data(), x.data(), g_dx.data(), g_dw.data(), g_db.data(),
                                v.data(), g_dep.data(), g_dy.data()};
    std::vector<int64_t> bytes = {B * O * 4, O * I * 4, B * I * 4, B * I * 4, O * I * 4, O * 4, I * 8 * 4, B * 8 * 4,
                                  B * O * 4};
    std::vector<Instr> prog = {
        make(Op::gemm, {0, 1, 3}, dx_a),                         // group: dX, dW, db
        make(Op::gemm, {0, 2, 4}, dw_a),
        make(Op::bias_grad_rows, {0, 5}, graph::BiasGradAttrs{B, O}),
        make(Op::gemm, {2, 1, 8}, over_a),                       // writes dY (slot 8): not beside them
        make(Op::gemm, {3, 6, 7}, dep_a),                        // reads dX
        make(Op::gemm, {0, 1, 3}, dx_a),                         // reads the new dY
    };
    CHECK_MSG(graph::validate(prog, bytes, 0).empty(), graph::validate(prog, bytes, 0).c_str());
    team_load_stats(true);
    std::string err;
    CHECK(graph::run(prog, slots.data(), nullptr, nullptr, nullptr, &err) == -1);
    const int64_t regions = team_load_stats(true).parallel_regions;
    gemm_set_path_override({});
    // 2 threads: one region for the group of three, one for each 6.1 MFLOP product after it;
    // the 0.4 MFLOP one runs on one thread.
    CHECK_MSG(regions == (threads == 1 ? 0 : 3), "threads %d: %lld parallel regions", threads, (long long)regions);
    CHECK(std::memcmp(g_dx.data(), dx.data(), dx.size() * 4) == 0);
    CHECK(std::memcmp(g_dw.data(), dw.data(), dw.size() * 4) == 0);
    CHECK(std::memcmp(g_db.data(), db.data(), db.size() * 4) == 0);
    CHECK(std::memcmp(g_dep.data(), dep.data(), dep.size() * 4) == 0);
    CHECK(std::memcmp(g_dy.data(), dy_ref.data(), dy_ref.size() * 4) == 0);
  }
  set_num_threads(0);
}

int main() {
  grouped_programs();
  const int64_t N = 5, K = 7, F = 3;
  std::vector<float> x(N * K), w(F * K), b(F);
  for (int64_t i = 0; i < N * K; ++i) x[i] = std::sin(0.7f * i);
  for (int64_t i = 0; i < F * K; ++i) w[i] = std::cos(0.3f * i) * 0.5f;
  for (int64_t i = 0; i < F; ++i) b[i] = 0.1f * i - 0.05f;
  std::vector<int64_t> target = {0, 2, 1, 1, 0};

  // ---- reference: the kernels called one by one
  std::vector<float> w_ref = w, b_ref = b, y(N * F), probs(N * F), dlogits(N * F), dz(N * F), dw(F * K), db(F);
  Epilogue<float> ep;
  ep.bias = b_ref.data();
  ep.bias_axis = BiasAxis::per_col;
  ep.act = Act::relu;
  gemm<float>(false, true, N, F, K, 1.f, x.data(), K, w_ref.data(), K, 0.f, y.data(), F, &ep);
  double sum = 0;
  int64_t count = 0;
  cross_entropy_forward<float>(N, F, y.data(), target.data(), probs.data(), -100, nullptr, &sum, &count);
  cross_entropy_backward<float>(N, F, probs.data(), target.data(), float(1.0 / count), -100, dlogits.data());
  act_backward<float>(Activation::relu, N * F, y.data(), dlogits.data(), dz.data());
  gemm<float>(true, false, F, K, N, 1.f, dz.data(), F, x.data(), K, 0.f, dw.data(), K);
  bias_grad_rows<float>(N, F, dz.data(), db.data());
  sgd_step<float>(F * K, w_ref.data(), dw.data(), nullptr, 0.1, 0, 0, 0, false, true);
  sgd_step<float>(F, b_ref.data(), db.data(), nullptr, 0.1, 0, 0, 0, false, true);

  // ---- the same step as one program. Slots: 0 x, 1 w, 2 b, 3 target, 4 y, 5 loss, 6 probs,
  // 7 scale(f64), 8 dloss, 9 dlogits, 10 dz, 11 dw, 12 db
  std::vector<float> w_g = w, b_g = b, y_g(N * F), probs_g(N * F), dl_g(N * F), dz_g(N * F), dw_g(F * K), db_g(F);
  float loss = 0, dloss = 0;
  double scale = 0;
  std::vector<void*> slots = {x.data(), w_g.data(), b_g.data(), target.data(), y_g.data(), &loss,
                              probs_g.data(), &scale, &dloss, dl_g.data(), dz_g.data(), dw_g.data(), db_g.data()};
  std::vector<int64_t> bytes = {N * K * 4, F * K * 4, F * 4, N * 8, N * F * 4, 4, N * F * 4, 8, 4,
                                N * F * 4, N * F * 4, F * K * 4, F * 4};
  const graph::SgdAttrs sgd_w{F * K, 0, 1, 2, 3, 4, 5}, sgd_b{F, 0, 1, 2, 3, 4, 5};
  std::vector<Instr> prog = {
      make(Op::gemm, {0, 1, 4, 2}, graph::GemmAttrs{false, true, N, F, K, Activation::relu, BiasAxis::per_col, 1.0, 0.0}),
      make(Op::ce_forward, {4, 3, 5, 6, 7}, graph::CrossEntropyAttrs{N, F, -100, true}),
      make(Op::fill, {8}, graph::FillAttrs{1, 1.0}),
      make(Op::ce_backward, {6, 3, 8, 7, 9}, graph::CrossEntropyAttrs{N, F, -100, true}),
      make(Op::act_backward, {4, 9, 10}, graph::ActAttrs{N * F, Activation::relu, 0.01}),
      make(Op::gemm, {10, 0, 11}, graph::GemmAttrs{true, false, F, K, N, Activation::identity, BiasAxis::none, 1.0, 0.0}),
      make(Op::bias_grad_rows, {10, 12}, graph::BiasGradAttrs{N, F}),
      make(Op::sgd, {1, 11, -1}, sgd_w),
      make(Op::sgd, {2, 12, -1}, sgd_b),
  };
  const double scalars[6] = {0.1, 0, 0, 0, 0, 1};
  CHECK_MSG(graph::validate(prog, bytes, 6).empty(), graph::validate(prog, bytes, 6).c_str());
  std::string err;
  CHECK(graph::run(prog, slots.data(), scalars, nullptr, nullptr, &err) == -1);
  CHECK_NEAR(loss, sum / count, 1e-6);
  for (int64_t i = 0; i < F * K; ++i) CHECK(w_g[i] == w_ref[i]);   // same kernels, same order: exact
  for (int64_t i = 0; i < F; ++i) CHECK(b_g[i] == b_ref[i]);

  // ---- validation: too-small buffer, bad slot index, missing scalar table entries
  std::vector<int64_t> small = bytes;
  small[11] = 8;
  const std::string m1 = graph::validate(prog, small, 6);
  CHECK_MSG(m1.find("instruction 5 (gemm): slot[2]") != std::string::npos, m1.c_str());
  std::vector<Instr> bad = {make(Op::copy, {0, 99}, graph::ElementwiseAttrs{1})};
  CHECK(graph::validate(bad, bytes, 0).find("out of range") != std::string::npos);
  CHECK(graph::validate(prog, bytes, 3).find("scalar 3: index 3 out of range") != std::string::npos);
  // a GEMM epilogue takes only the activations it can fuse
  std::vector<Instr> leaky = {prog[0]};
  std::get<graph::GemmAttrs>(leaky[0].attrs).act = Activation::leaky_relu;
  CHECK(graph::validate(leaky, bytes, 6).find("act: the GEMM epilogue takes") != std::string::npos);

  // ---- a bad class index stops the run at that instruction with a message
  target[2] = 9;
  CHECK(graph::run(prog, slots.data(), scalars, nullptr, nullptr, &err) == 1);
  CHECK_MSG(err.find("class index 9 at row 2") != std::string::npos, err.c_str());

  // ---- callbacks: called with their id; returning false aborts at that instruction
  std::vector<Instr> cb = {make(Op::callback, {}, graph::CallbackAttrs{7}), make(Op::fill, {8}, graph::FillAttrs{1, 3.0})};
  int64_t seen = -1;
  auto ok = [](void* u, int64_t id) { *static_cast<int64_t*>(u) = id; return true; };
  CHECK(graph::run(cb, slots.data(), scalars, ok, &seen, &err) == -1);
  CHECK(seen == 7 && dloss == 3.0f);
  auto fail = [](void*, int64_t) { return false; };
  CHECK(graph::run(cb, slots.data(), scalars, fail, nullptr, &err) == 0);
  conv_pool_programs();
  broadcast_programs();
  unary_programs();
  loss_programs();
  TEST_MAIN_END();
}
