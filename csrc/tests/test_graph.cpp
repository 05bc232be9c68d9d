// Graph executor: a small Linear + ReLU + cross-entropy + SGD program must give exactly what
// the same kernels called directly give; validate() must refuse bad slot sizes and indices.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "activation.h"
#include "check.h"
#include "gemm.h"
#include "graph.h"
#include "loss.h"
#include "optim.h"

using namespace lamina;
using graph::Instr;
using graph::Op;

static Instr make(Op op, std::vector<int32_t> slots, std::vector<int64_t> ints, std::vector<double> fl = {},
                  std::vector<int32_t> sc = {}) {
  Instr in;
  in.op = op;
  in.dtype = graph::DType::f32;
  for (size_t k = 0; k < slots.size(); ++k) in.slot[k] = slots[k];
  for (size_t k = 0; k < ints.size(); ++k) in.i[k] = ints[k];
  for (size_t k = 0; k < fl.size(); ++k) in.f[k] = fl[k];
  for (size_t k = 0; k < sc.size(); ++k) in.sc[k] = sc[k];
  return in;
}

int main() {
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
  std::vector<Instr> prog = {
      make(Op::gemm, {0, 1, 4, 2}, {0, 1, N, F, K, static_cast<int64_t>(Act::relu), static_cast<int64_t>(BiasAxis::per_col)}, {1.0, 0.0}),
      make(Op::ce_forward, {4, 3, 5, 6, 7}, {N, F, -100, 1}),
      make(Op::fill, {8}, {1}, {1.0}),
      make(Op::ce_backward, {6, 3, 8, 7, 9}, {N, F, -100}),
      make(Op::act_backward, {4, 9, 10}, {N * F, static_cast<int64_t>(Activation::relu)}, {0.01}),
      make(Op::gemm, {10, 0, 11}, {1, 0, F, K, N, 0, 0}, {1.0, 0.0}),
      make(Op::bias_grad_rows, {10, 12}, {N, F}),
      make(Op::sgd, {1, 11, -1}, {F * K}, {}, {0, 1, 2, 3, 4, 5}),
      make(Op::sgd, {2, 12, -1}, {F}, {}, {0, 1, 2, 3, 4, 5}),
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
  std::vector<Instr> bad = {make(Op::copy, {0, 99}, {1})};
  CHECK(graph::validate(bad, bytes, 0).find("out of range") != std::string::npos);
  CHECK(graph::validate(prog, bytes, 3).find("sc[3]") != std::string::npos);

  // ---- a bad class index stops the run at that instruction with a message
  target[2] = 9;
  CHECK(graph::run(prog, slots.data(), scalars, nullptr, nullptr, &err) == 1);
  CHECK_MSG(err.find("class index 9 at row 2") != std::string::npos, err.c_str());

  // ---- callbacks: called with their id; returning false aborts at that instruction
  std::vector<Instr> cb = {make(Op::callback, {}, {7}), make(Op::fill, {8}, {1}, {3.0})};
  int64_t seen = -1;
  auto ok = [](void* u, int64_t id) { *static_cast<int64_t*>(u) = id; return true; };
  CHECK(graph::run(cb, slots.data(), scalars, ok, &seen, &err) == -1);
  CHECK(seen == 7 && dloss == 3.0f);
  auto fail = [](void*, int64_t) { return false; };
  CHECK(graph::run(cb, slots.data(), scalars, fail, nullptr, &err) == 0);
  TEST_MAIN_END();
}
