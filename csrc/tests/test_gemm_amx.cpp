// The AMX float32 GEMM path (gemm_amx.cpp): every one of the three bfloat16 pieces of each
// value reaches the result, the accuracy matches the FMA path's, and values the split cannot
// carry (inf, NaN, tiny) are handed to the FMA path without C being summed twice. Where the
// CPU or OS has no AMX, the forced path is the FMA one and the same checks hold.
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "gemm.h"

using namespace lamina;

namespace {

struct Case {
  bool ta, tb;
  int64_t M, N, K;
};

// float64 reference of op(A) op(B) + beta C0.
std::vector<double> reference(const Case& c, const std::vector<float>& A, const std::vector<float>& B,
                              float beta, const std::vector<float>& C0) {
  std::vector<double> r(size_t(c.M * c.N));
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = c.ta ? A[size_t(k * c.M + i)] : A[size_t(i * c.K + k)];
        const double b = c.tb ? B[size_t(j * c.K + k)] : B[size_t(k * c.N + j)];
        s += a * b;
      }
      r[size_t(i * c.N + j)] = s + double(beta) * C0[size_t(i * c.N + j)];
    }
  return r;
}

std::vector<float> run(const Case& c, const std::vector<float>& A, const std::vector<float>& B, float beta,
                       const std::vector<float>& C0, int amx, const Epilogue<float>* ep = nullptr) {
  GemmPathOverride o;
  o.amx = amx;
  gemm_set_path_override(o);
  std::vector<float> C = C0;
  gemm<float>(c.ta, c.tb, c.M, c.N, c.K, 1.0f, A.data(), c.ta ? c.M : c.K, B.data(), c.tb ? c.K : c.N, beta,
              C.data(), c.N, ep);
  gemm_set_path_override(GemmPathOverride{});
  return C;
}

double max_err(const std::vector<float>& C, const std::vector<double>& r) {
  double e = 0;
  for (size_t i = 0; i < C.size(); ++i) e = std::max(e, std::fabs(double(C[i]) - r[i]));
  return e;
}

void check_accuracy() {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1, 1);
  const Case cases[] = {{false, false, 128, 128, 256}, {false, true, 100, 130, 300}, {true, false, 97, 64, 65},
                        {true, true, 64, 256, 1}, {false, false, 33, 70, 1100}, {false, true, 256, 300, 784}};
  for (const Case& c : cases) {
    std::vector<float> A(size_t(c.M * c.K)), B(size_t(c.K * c.N)), C0(size_t(c.M * c.N));
    for (auto& v : A) v = u(gen);
    for (auto& v : B) v = u(gen);
    for (auto& v : C0) v = u(gen);
    for (float beta : {0.0f, 1.0f}) {
      const auto r = reference(c, A, B, beta, C0);
      const double e_fma = max_err(run(c, A, B, beta, C0, 0), r);
      const double e_amx = max_err(run(c, A, B, beta, C0, 1), r);
      // float32 accuracy: within a small factor of the FMA path's error, and absolutely small.
      const double bound = std::max(3.0 * e_fma, 4e-7 * std::sqrt(double(c.K)));
      CHECK_MSG(e_amx <= bound, "%s%s %ldx%ldx%ld beta %g: AMX error %g vs FMA %g", c.ta ? "T" : "N",
                c.tb ? "T" : "N", long(c.M), long(c.N), long(c.K), double(beta), e_amx, e_fma);
    }
  }
}

// Values with all 24 significant bits set times 1 (and 1 times them) come back exactly: a
// dropped piece (the low 8 or middle 8 bits) would show.
void check_all_pieces_used() {
  const int64_t M = 64, N = 64, K = 64;
  for (int side = 0; side < 2; ++side) {
    std::vector<float> A(size_t(M * K), 0.0f), B(size_t(K * N), 0.0f), C0(size_t(M * N), 0.0f);
    std::vector<float> X(size_t(M * K));
    for (size_t i = 0; i < X.size(); ++i) X[i] = float(16777215 - int(i % 977) * 2) * std::ldexp(1.0f, int(i % 9) - 30);
    // side 0: A = X, B = identity; side 1: A = identity, B = X^T-shaped
    for (int64_t i = 0; i < K; ++i) (side == 0 ? B : A)[size_t(i * K + i)] = 1.0f;
    if (side == 0) A = X; else B = X;
    const Case c{false, false, M, N, K};
    const auto C = run(c, A, B, 0.0f, C0, 1);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const float want = side == 0 ? X[size_t(i * K + j)] : X[size_t(i * N + j)];
        CHECK_MSG(C[size_t(i * N + j)] == want, "side %d (%ld, %ld): %.9g vs %.9g", side, long(i), long(j),
                  double(C[size_t(i * N + j)]), double(want));
      }
  }
}

// inf / NaN / tiny values go to the FMA path; with beta = 1, C0 is added exactly once.
void check_unfit_values(int64_t M) {
  const int64_t N = 96, K = 80;
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(0.5f, 1.0f);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (int kind = 0; kind < 4; ++kind) {
    std::vector<float> A(size_t(M * K)), B(size_t(K * N)), C0(size_t(M * N));
    for (auto& v : A) v = u(gen);
    for (auto& v : B) v = u(gen);
    for (auto& v : C0) v = u(gen);
    const int64_t bad_row = M - 30;  // in a late row block: earlier blocks may be done by AMX first
    if (kind == 0) A[size_t(bad_row * K + 5)] = inf;
    if (kind == 1) A[size_t(bad_row * K + 5)] = nan;
    if (kind == 2) for (int64_t k = 0; k < K; ++k) A[size_t(bad_row * K + k)] = 1e-37f;  // below 2^-100
    if (kind == 3) B[size_t(7 * N + 50)] = -inf;
    const Case c{false, false, M, N, K};
    const auto r = reference(c, A, B, 1.0f, C0);
    const auto C = run(c, A, B, 1.0f, C0, 1);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const double want = r[size_t(i * N + j)], got = C[size_t(i * N + j)];
        const bool ok = std::isnan(want) ? std::isnan(got)
                        : std::isinf(want) ? got == want
                                           : std::fabs(got - want) <= 1e-5 * std::max(1.0, std::fabs(want));
        CHECK_MSG(ok, "M %ld kind %d (%ld, %ld): %g vs %g", long(M), kind, long(i), long(j), got, want);
      }
    if (kind == 2) {  // the tiny row itself keeps its relative accuracy (AMX would lose pieces)
      const std::vector<float> zero(size_t(M * N), 0.0f);
      const auto r0 = reference(c, A, B, 0.0f, zero);
      const auto C1 = run(c, A, B, 0.0f, zero, 1);
      for (int64_t j = 0; j < N; ++j) {
        const double want = r0[size_t(bad_row * N + j)], got = C1[size_t(bad_row * N + j)];
        CHECK_MSG(std::fabs(got - want) <= 1e-5 * std::fabs(want), "tiny row col %ld: %g vs %g", long(j), got, want);
      }
    }
  }
}

// The epilogue (bias + activation) runs once, after the last K pass.
void check_epilogue() {
  const Case c{false, true, 96, 80, 1500};  // two K passes
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> A(size_t(c.M * c.K)), B(size_t(c.K * c.N)), C0(size_t(c.M * c.N), 0.0f), bias(size_t(c.N));
  for (auto& v : A) v = u(gen);
  for (auto& v : B) v = u(gen);
  for (auto& v : bias) v = 10 * u(gen);
  Epilogue<float> ep;
  ep.bias = bias.data();
  ep.bias_axis = BiasAxis::per_col;
  ep.act = Act::relu;
  const auto r = reference(c, A, B, 0.0f, C0);
  const auto C = run(c, A, B, 0.0f, C0, 1, &ep);
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      const double want = std::max(0.0, r[size_t(i * c.N + j)] + bias[size_t(j)]);
      CHECK_MSG(std::fabs(C[size_t(i * c.N + j)] - want) <= 1e-4, "(%ld, %ld): %g vs %g", long(i), long(j),
                double(C[size_t(i * c.N + j)]), want);
    }
}

}  // namespace

int main() {
  std::printf("AMX float32 path available: %s\n", gemm_amx_available() ? "yes" : "no");
  check_accuracy();
  check_all_pieces_used();
  check_unfit_values(160);  // row blocks grouped, B in column groups
  check_unfit_values(100);  // few rows: all of A packed first, B streamed block by block
  check_epilogue();
  TEST_MAIN_END();
}
