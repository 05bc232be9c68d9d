// The direct weight gradient (conv_direct_bwd.*) against the naive reference: odd shapes, every
// padding up to 3, channel counts that leave partial channel and tap blocks, small batches
// (wide rows) and batches that fill the lanes (batch in lanes, whole and partial groups; the
// data gradient too), each ISA path, float and double, 1..4 threads (bit-identical), and the
// automatic rule's choices.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "check.h"
#include "conv.h"
#include "conv_direct.h"
#include "conv_direct_bwd.h"
#include "cpu.h"

using namespace lamina;
using lamina_test::max_rel_err;
using lamina_test::randv;

static int g_dx_lanes_cases = 0;

struct Case {
  int64_t N, C, H, W, K, KH, KW, pad_h, pad_w;
};

static ConvParams params(const Case& c) {
  ConvParams p;
  p.N = c.N; p.C = c.C; p.H = c.H; p.W = c.W; p.K = c.K; p.KH = c.KH; p.KW = c.KW;
  p.pad_h = c.pad_h; p.pad_w = c.pad_w;
  return p;
}

// dw (direct, and through conv2d_backward with the path forced) against the reference; dx and
// db through conv2d_backward too, so the mixed call stays right.
template <class T>
static void check_dw(const Case& c, std::mt19937& g, const char* isa) {
  const double tol = sizeof(T) == 4 ? 3e-5 : 1e-12;
  const ConvParams p = params(c);
  const size_t nx = size_t(p.N * p.C * p.H * p.W), nw = size_t(p.K * p.C * p.KH * p.KW);
  const size_t ny = size_t(p.N * p.K * p.OH() * p.OW());
  auto x = randv<T>(nx, g), w = randv<T>(nw, g), dy = randv<T>(ny, g);
  std::vector<T> dw(nw, T(7)), dx(nx, T(7)), db(size_t(p.K), T(7));
  std::vector<T> dw_r(nw), dx_r(nx), db_r(size_t(p.K));
  conv2d_backward_reference(p, x.data(), w.data(), dy.data(), dx_r.data(), dw_r.data(), db_r.data());
  conv2d_direct_dw(p, x.data(), dy.data(), dw.data());
  const double e1 = max_rel_err(dw, dw_r);
  std::fill(dw.begin(), dw.end(), T(7));
  conv2d_backward(p, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  double e2 = max_rel_err(dw, dw_r), ex = max_rel_err(dx, dx_r), eb = max_rel_err(db, db_r);
  if (conv_direct_dx_lanes_applicable<T>(p)) {  // the data gradient with the batch in the lanes
    std::fill(dx.begin(), dx.end(), T(7));
    conv2d_direct_dx_lanes(p, w.data(), dy.data(), dx.data());
    ex = std::max(ex, max_rel_err(dx, dx_r));
    ++g_dx_lanes_cases;
  }
  CHECK(lamina_test::all_finite(dw));
  CHECK_MSG(e1 <= tol && e2 <= tol && ex <= tol && eb <= tol,
            "%s %s N=%lld C=%lld %lldx%lld K=%lld k=%lldx%lld pad %lld,%lld: dw %g / %g dx %g db %g",
            isa, sizeof(T) == 4 ? "f32" : "f64", (long long)p.N, (long long)p.C, (long long)p.H,
            (long long)p.W, (long long)p.K, (long long)p.KH, (long long)p.KW, (long long)p.pad_h,
            (long long)p.pad_w, e1, e2, ex, eb);
}

static Isa best_isa() {
  return cpu_supports_avx512() ? Isa::avx512 : cpu_supports_avx2_fma() ? Isa::avx2 : Isa::portable;
}

int main() {
  std::mt19937 g(4321);
  conv_set_algo(ConvAlgo::direct);
  // Every ISA path: channel counts 1..20 cover every channel block size (and partial ones),
  // kernel sizes 1..5 with 1..8 input channels every tap-block tail.
  int cases = 0;
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::portable}) {
    if (!set_isa(isa)) continue;
    const char* name = isa_name(isa);
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int64_t K : {1, 2, 3, 5, 6, 7, 8, 9, 13, 16, 20})
        for (int64_t C : {1, 2, 6})
          for (int64_t k : {1, 3, 5}) {
            const int64_t pad = (K + C + k) % 4;  // 0..3
            const Case c{1 + (K + k) % 3, C, 7 + 2 * (K % 3), 9 + 2 * (C % 2), K, k, k, pad, (pad + 1) % 4};
            if (params(c).OH() <= 0 || params(c).OW() <= 0) continue;
            check_dw<float>(c, g, name);
            check_dw<double>(c, g, name);
            ++cases;
          }
      // Non-square kernels, a row wider than the vectors, more images than a group holds.
      check_dw<float>({5, 8, 13, 37, 4, 2, 4, 3, 0}, g, name);
      check_dw<double>({5, 3, 31, 6, 10, 4, 3, 0, 2}, g, name);
      check_dw<float>({70, 1, 12, 12, 6, 5, 5, 2, 2}, g, name);
      check_dw<float>({3, 1, 28, 28, 6, 5, 5, 2, 2}, g, name);   // C1
      check_dw<double>({3, 6, 14, 14, 16, 5, 5, 0, 0}, g, name); // C3
      // Batches that fill the lanes (AVX-512: the batch-in-lanes layout), whole and partial
      // last groups, every padding.
      check_dw<float>({32, 3, 9, 11, 7, 3, 3, 1, 2}, g, name);
      check_dw<double>({16, 2, 7, 9, 13, 5, 3, 2, 1}, g, name);
      check_dw<float>({35, 1, 12, 13, 6, 5, 5, 3, 0}, g, name);
      check_dw<double>({19, 5, 6, 8, 9, 2, 4, 0, 3}, g, name);
      check_dw<float>({64, 6, 14, 14, 16, 5, 5, 0, 0}, g, name);
    }
  }
  CHECK(cases > 100);
  CHECK(g_dx_lanes_cases > 0 || !cpu_supports_avx2_fma());
  set_isa(best_isa());

  // The chunk-ordered sums: bit-identical dw at 1, 2, 3 and 4 threads (C3, f32).
  {
    const ConvParams p = params({37, 6, 14, 14, 16, 5, 5, 0, 0});
    const size_t nx = size_t(p.N * p.C * p.H * p.W), nw = size_t(p.K * p.C * 25);
    auto x = randv<float>(nx, g), dy = randv<float>(size_t(p.N * p.K * p.OH() * p.OW()), g);
    std::vector<float> dw1(nw);
    set_num_threads(1);
    conv2d_direct_dw(p, x.data(), dy.data(), dw1.data());
    for (int threads : {2, 3, 4}) {
      set_num_threads(threads);
      std::vector<float> dwt(nw, 7.f);
      conv2d_direct_dw(p, x.data(), dy.data(), dwt.data());
      CHECK_MSG(dwt == dw1, "direct dw: %d threads differ from 1", threads);
    }
  }
  set_num_threads(0);

  // Back-to-back calls whose buffers have the same size but zeros in other places (KW 3 -> 5:
  // a wide row keeps 2 -> 4 discarded columns, which must not hold the previous call's dy).
  set_num_threads(1);
  for (int64_t N : {1, 32}) {
    for (int64_t kw : {3, 5, 3}) check_dw<float>({N, 1, 9, 9, 2, 3, kw, 0, 0}, g, "regeometry");
    for (int64_t kw : {3, 5, 3}) check_dw<double>({N, 2, 9, 11, 3, 3, kw, 1, 1}, g, "regeometry");
  }
  set_num_threads(0);

  // An empty batch gives a zero gradient.
  {
    ConvParams p = params({0, 2, 5, 5, 3, 3, 3, 1, 1});
    std::vector<float> dw(size_t(3 * 2 * 9), 7.f);
    conv2d_direct_dw<float>(p, nullptr, nullptr, dw.data());
    CHECK(std::all_of(dw.begin(), dw.end(), [](float v) { return v == 0.f; }));
  }

  // The automatic rule: LeNet's C1 and C3 go direct (on SIMD paths); deep or wide layers, and
  // shapes the wide layout does not cover, do not; forcing im2col turns it off.
  conv_set_algo(ConvAlgo::automatic);
  const bool simd = active_isa() >= Isa::avx2;
  CHECK(conv_direct_dw_preferred(params({64, 1, 28, 28, 6, 5, 5, 2, 2})) == simd);
  CHECK(conv_direct_dw_preferred(params({64, 6, 14, 14, 16, 5, 5, 0, 0})) == simd);
  CHECK(!conv_direct_dw_preferred(params({32, 64, 32, 32, 64, 3, 3, 1, 1})));
  // 16 input channels: direct with the batch in the lanes (N = 64), not with wide rows (N = 1).
  CHECK(conv_direct_dw_preferred(params({64, 16, 14, 14, 16, 5, 5, 0, 0})) == simd);
  CHECK(!conv_direct_dw_preferred(params({1, 16, 14, 14, 16, 5, 5, 0, 0})));
  // The data gradient of C3 at N = 64 fills the lanes; at N = 1 and for padding > kernel - 1
  // it does not.
  CHECK(conv_direct_dx_lanes_applicable<float>(params({64, 6, 14, 14, 16, 5, 5, 0, 0})) == simd);
  CHECK(!conv_direct_dx_lanes_applicable<float>(params({1, 6, 14, 14, 16, 5, 5, 0, 0})));
  CHECK(!conv_direct_dx_lanes_applicable<double>(params({64, 6, 14, 14, 16, 3, 3, 3, 3})));
  CHECK(!conv_direct_dw_preferred(params({64, 6, 14, 14, 16, 1, 1, 0, 0})));
  ConvParams strided = params({4, 1, 28, 28, 6, 5, 5, 2, 2});
  strided.stride_h = 2;
  CHECK(!conv_direct_dw_preferred(strided));
  conv_set_algo(ConvAlgo::direct);
  CHECK(!conv_direct_dw_preferred(strided));  // not applicable: even forced
  check_dw<float>({3, 2, 9, 9, 4, 3, 3, 1, 1}, g, "forced");
  conv_set_algo(ConvAlgo::im2col);
  CHECK(!conv_direct_dw_preferred(params({64, 1, 28, 28, 6, 5, 5, 2, 2})));
  conv_set_algo(ConvAlgo::automatic);
  TEST_MAIN_END();
}
