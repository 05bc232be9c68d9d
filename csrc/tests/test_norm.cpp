// Norm family kernels vs straightforward double-precision references, NaN-aware (a NaN anywhere
// fails), the AVX2 path against the portable one bit for bit, and results independent of the
// thread count.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "norm.h"

using namespace lamina;

// Fails on a NaN in either value (a plain |a - b| <= tol is false for NaN too, but say so).
#define CHECK_CLOSE(a, b, tol)                                                                        \
  CHECK_MSG(!std::isnan((double)(a)) && !std::isnan((double)(b)) &&                                   \
                std::fabs((double)(a) - (double)(b)) <= (tol) * (1.0 + std::fabs((double)(b))),       \
            "%.10g vs %.10g (tol %g)", (double)(a), (double)(b), (double)(tol))

template <class T>
static std::vector<T> randn(size_t n, std::mt19937& rng, double shift = 0.0) {
  std::normal_distribution<double> d(shift, 1.5);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(d(rng));
  return v;
}

template <class T>
static bool bits_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Reference BatchNorm (training) in double: y, dx, dw, db for the cotangent dy.
template <class T>
static void check_batch_norm(int64_t N, int64_t C, int64_t S, bool relu, double tol, std::mt19937& rng) {
  const size_t n = static_cast<size_t>(N * C * S);
  auto x = randn<T>(n, rng, 0.7), dy = randn<T>(n, rng), w = randn<T>(C, rng), b = randn<T>(C, rng);
  std::vector<T> y(n), dx(n), dw(C), db(C), sm(C), si(C), rm(C, T(0.5)), rv(C, T(2));
  const double mom = 0.1, eps = 1e-5;
  batch_norm_forward<T>(N, C, S, x.data(), w.data(), b.data(), true, rm.data(), rv.data(), mom, eps, relu, y.data(),
                        sm.data(), si.data());
  batch_norm_backward<T>(N, C, S, x.data(), dy.data(), relu ? y.data() : nullptr, w.data(), sm.data(), si.data(),
                         true, dx.data(), dw.data(), db.data());
  const int64_t M = N * S;
  for (int64_t c = 0; c < C; ++c) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t s = 0; s < S; ++s) mean += x[(i * C + c) * S + s];
    mean /= M;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t s = 0; s < S; ++s) var += std::pow(x[(i * C + c) * S + s] - mean, 2);
    const double invstd = 1 / std::sqrt(var / M + eps);
    CHECK_CLOSE(rm[c], 0.9 * 0.5 + 0.1 * mean, tol);
    CHECK_CLOSE(rv[c], 0.9 * 2 + 0.1 * var / (M - 1), tol);
    double sg = 0, sgx = 0;
    std::vector<double> g(M);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t o = (i * C + c) * S + s;
        double yr = (x[o] - mean) * invstd * w[c] + b[c];
        if (relu) yr = std::max(0.0, yr);
        CHECK_CLOSE(y[o], yr, tol);
        const double gi = (!relu || yr > 0) ? dy[o] : 0.0;
        g[i * S + s] = gi;
        sg += gi;
        sgx += gi * (x[o] - mean) * invstd;
      }
    CHECK_CLOSE(db[c], sg, tol * M);
    CHECK_CLOSE(dw[c], sgx, tol * M);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t o = (i * C + c) * S + s;
        const double xh = (x[o] - mean) * invstd;
        const double ref = w[c] * invstd * (g[i * S + s] - sg / M - xh * sgx / M);
        if (relu && y[o] <= 0 && std::fabs(ref) < 1e-30) continue;
        CHECK_CLOSE(dx[o], ref, tol * 10);
      }
  }
  // Eval mode with the updated running statistics: y = (x - rm) / sqrt(rv + eps) * w + b.
  batch_norm_forward<T>(N, C, S, x.data(), w.data(), b.data(), false, rm.data(), rv.data(), mom, eps, false,
                        y.data(), sm.data(), si.data());
  batch_norm_backward<T>(N, C, S, x.data(), dy.data(), nullptr, w.data(), sm.data(), si.data(), false, dx.data(),
                         nullptr, nullptr);
  for (int64_t c = 0; c < C; ++c) {
    const double is = 1 / std::sqrt(double(rv[c]) + eps);
    for (int64_t i = 0; i < N; ++i) {
      const int64_t o = (i * C + c) * S;
      CHECK_CLOSE(y[o], (x[o] - double(rm[c])) * is * w[c] + b[c], tol);
      CHECK_CLOSE(dx[o], dy[o] * w[c] * is, tol);
    }
  }
}

template <class T>
static void check_layer_and_group_norm(double tol, std::mt19937& rng) {
  // GroupNorm with G = 1 and S folded is LayerNorm over (C, S) with a per-channel affine; check
  // both against one reference row normalizer.
  const int64_t N = 3, C = 6, S = 13, G = 3, CG = C / G, K = CG * S;
  const size_t n = static_cast<size_t>(N * C * S);
  auto x = randn<T>(n, rng, -0.4), dy = randn<T>(n, rng), w = randn<T>(C, rng), b = randn<T>(C, rng);
  std::vector<T> y(n), dx(n), dw(C), db(C), mean(N * G), rstd(N * G);
  const double eps = 1e-5;
  group_norm_forward<T>(N, C, S, G, x.data(), w.data(), b.data(), eps, y.data(), mean.data(), rstd.data());
  group_norm_backward<T>(N, C, S, G, x.data(), dy.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(),
                         db.data());
  std::vector<double> dwr(C, 0), dbr(C, 0);
  for (int64_t r = 0; r < N * G; ++r) {
    const T* xr = x.data() + r * K;
    double m = 0, v = 0;
    for (int64_t i = 0; i < K; ++i) m += xr[i];
    m /= K;
    for (int64_t i = 0; i < K; ++i) v += std::pow(xr[i] - m, 2);
    const double s = 1 / std::sqrt(v / K + eps);
    CHECK_CLOSE(mean[r], m, tol);
    CHECK_CLOSE(rstd[r], s, tol);
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < K; ++i) {
      const int64_t c = (r % G) * CG + i / S;
      const double xh = (xr[i] - m) * s, g = dy[r * K + i] * double(w[c]);
      CHECK_CLOSE(y[r * K + i], xh * w[c] + b[c], tol);
      sg += g;
      sgx += g * xh;
      dwr[c] += dy[r * K + i] * xh;
      dbr[c] += dy[r * K + i];
    }
    for (int64_t i = 0; i < K; ++i) {
      const int64_t c = (r % G) * CG + i / S;
      const double xh = (xr[i] - m) * s, g = dy[r * K + i] * double(w[c]);
      CHECK_CLOSE(dx[r * K + i], s * (g - sg / K - xh * sgx / K), tol * 10);
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    CHECK_CLOSE(dw[c], dwr[c], tol * 10);
    CHECK_CLOSE(db[c], dbr[c], tol * 10);
  }
  // LayerNorm over rows of K = 37 with an elementwise affine.
  const int64_t R = 5, L = 37;
  auto lx = randn<T>(R * L, rng, 1.0), ldy = randn<T>(R * L, rng), lw = randn<T>(L, rng), lb = randn<T>(L, rng);
  std::vector<T> ly(R * L), ldx(R * L), ldw(L), ldb(L), lm(R), lr(R);
  layer_norm_forward<T>(R, L, lx.data(), lw.data(), lb.data(), eps, ly.data(), lm.data(), lr.data());
  layer_norm_backward<T>(R, L, lx.data(), ldy.data(), lw.data(), lm.data(), lr.data(), ldx.data(), ldw.data(),
                         ldb.data());
  std::vector<double> ldwr(L, 0), ldbr(L, 0);
  for (int64_t r = 0; r < R; ++r) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < L; ++i) m += lx[r * L + i];
    m /= L;
    for (int64_t i = 0; i < L; ++i) v += std::pow(lx[r * L + i] - m, 2);
    const double s = 1 / std::sqrt(v / L + eps);
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < L; ++i) {
      const double xh = (lx[r * L + i] - m) * s, g = ldy[r * L + i] * double(lw[i]);
      CHECK_CLOSE(ly[r * L + i], xh * lw[i] + lb[i], tol);
      sg += g;
      sgx += g * xh;
      ldwr[i] += ldy[r * L + i] * xh;
      ldbr[i] += ldy[r * L + i];
    }
    for (int64_t i = 0; i < L; ++i) {
      const double xh = (lx[r * L + i] - m) * s, g = ldy[r * L + i] * double(lw[i]);
      CHECK_CLOSE(ldx[r * L + i], s * (g - sg / L - xh * sgx / L), tol * 10);
    }
  }
  for (int64_t i = 0; i < L; ++i) {
    CHECK_CLOSE(ldw[i], ldwr[i], tol * 10);
    CHECK_CLOSE(ldb[i], ldbr[i], tol * 10);
  }
}

// Every output of a BN + LN + GN + dropout run, for comparing paths and thread counts.
template <class T>
static std::vector<T> run_all(int64_t N, int64_t C, int64_t S) {
  std::mt19937 rng(11);
  const size_t n = static_cast<size_t>(N * C * S);
  auto x = randn<T>(n, rng, 0.3), dy = randn<T>(n, rng), w = randn<T>(C, rng), b = randn<T>(C, rng);
  std::vector<T> y(n), dx(n), dw(C), db(C), sm(C), si(C), rm(C, T(0)), rv(C, T(1)), out;
  batch_norm_forward<T>(N, C, S, x.data(), w.data(), b.data(), true, rm.data(), rv.data(), 0.1, 1e-5, true,
                        y.data(), sm.data(), si.data());
  batch_norm_backward<T>(N, C, S, x.data(), dy.data(), y.data(), w.data(), sm.data(), si.data(), true, dx.data(),
                         dw.data(), db.data());
  for (auto* v : {&y, &dx, &dw, &db, &rm, &rv}) out.insert(out.end(), v->begin(), v->end());
  std::vector<T> gm(N), gr(N);
  group_norm_forward<T>(N, C, S, 1, x.data(), w.data(), b.data(), 1e-5, y.data(), gm.data(), gr.data());
  group_norm_backward<T>(N, C, S, 1, x.data(), dy.data(), w.data(), gm.data(), gr.data(), dx.data(), dw.data(),
                         db.data());
  for (auto* v : {&y, &dx, &dw, &db}) out.insert(out.end(), v->begin(), v->end());
  std::vector<uint8_t> keep(N * C);
  for (int64_t r = 0; r < N * C; ++r) keep[r] = static_cast<uint8_t>((r * 7 + 3) % 10 >= 3);
  dropout_apply<T>(N * C, S, x.data(), y.data(), keep.data(), 0.3);
  out.insert(out.end(), y.begin(), y.end());
  return out;
}

template <class T>
static void check_paths_and_threads() {
  for (int64_t S : {1, 7, 8, 9, 64, 785}) {
    set_num_threads(1);
    set_isa(Isa::portable);
    const auto portable = run_all<T>(6, 5, S);
    set_isa(cpu_supports_avx2_fma() ? Isa::avx2 : Isa::portable);
    const auto simd1 = run_all<T>(6, 5, S);
    set_num_threads(4);
    const auto simd4 = run_all<T>(6, 5, S);
    CHECK_MSG(bits_equal(portable, simd1), "S=%lld: AVX2 path differs from the portable one", (long long)S);
    CHECK_MSG(bits_equal(simd1, simd4), "S=%lld: 4 threads differ from 1", (long long)S);
    bool finite = true;
    for (T v : portable) finite = finite && std::isfinite(v);
    CHECK(finite);
  }
  set_num_threads(0);
  set_isa(  // back to the best the CPU has
      cpu_supports_avx512() ? Isa::avx512 : cpu_supports_avx2_fma() ? Isa::avx2 : Isa::portable);
}

static void check_dropout() {
  const int64_t R = 2000;
  std::vector<double> x(R * 3), y(R * 3);
  std::vector<uint8_t> keep(R);
  for (int64_t r = 0; r < R; ++r) {
    keep[r] = static_cast<uint8_t>(r % 3 != 0);
    for (int s = 0; s < 3; ++s) x[r * 3 + s] = (r % 2 ? -1.5 : 2.0) * (s + 1);
  }
  x[0] = std::numeric_limits<double>::infinity();  // unit 0 is dropped: inf * 0 is NaN, as PyTorch's
  for (double p : {0.0, 0.25, 0.5, 0.9, 1.0}) {
    dropout_apply<double>(R, 3, x.data(), y.data(), keep.data(), p);
    const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
    for (int64_t r = 0; r < R; ++r)
      for (int s = 0; s < 3; ++s) {
        const double want = x[r * 3 + s] * (keep[r] ? scale : 0.0);  // whole units, x * noise
        const double got = y[r * 3 + s];
        CHECK_MSG((std::isnan(want) && std::isnan(got)) || (got == want && std::signbit(got) == std::signbit(want)),
                  "p=%g r=%lld s=%d: %g, want %g", p, (long long)r, s, got, want);
      }
  }
  std::vector<float> xf(5, -3.0f), yf(5);
  const uint8_t keep5[5] = {1, 0, 1, 0, 1};
  dropout_apply<float>(5, 1, xf.data(), yf.data(), keep5, 0.3);
  CHECK(yf[0] == -3.0f * (1.0f / 0.7f) && yf[1] == 0.0f && std::signbit(yf[1]));  // float scale, -0
  dropout_apply<float>(5, 1, xf.data(), xf.data(), keep5, 0.3);  // in place
  CHECK(bits_equal(xf, yf));
}

int main() {
  std::mt19937 rng(5);
  for (bool relu : {false, true}) {
    check_batch_norm<double>(4, 3, 10, relu, 1e-10, rng);
    check_batch_norm<double>(9, 5, 1, relu, 1e-10, rng);
    check_batch_norm<float>(8, 4, 33, relu, 2e-5, rng);
  }
  check_layer_and_group_norm<double>(1e-10, rng);
  check_layer_and_group_norm<float>(3e-5, rng);
  check_paths_and_threads<float>();
  check_paths_and_threads<double>();
  check_dropout();
  TEST_MAIN_END();
}
