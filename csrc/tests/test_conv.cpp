// Convolution: the im2col+GEMM path against the naive direct loops, over a grid of shapes,
// strides, paddings, dilations and groups, in float and double; im2col/col2im adjointness.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "check.h"
#include "conv.h"
#include "conv_direct.h"
#include "cpu.h"

using namespace lamina;
using lamina_test::max_rel_err;
using lamina_test::randv;

template <class T>
static void check_case(const ConvParams& p, bool with_bias, std::mt19937& g) {
  const double tol = sizeof(T) == 4 ? 2e-5 : 1e-12;
  const int64_t OH = p.OH(), OW = p.OW(), Cg = p.C / p.groups;
  const size_t nx = p.N * p.C * p.H * p.W, nw = p.K * Cg * p.KH * p.KW, ny = p.N * p.K * OH * OW;
  auto x = randv<T>(nx, g), w = randv<T>(nw, g), b = randv<T>(p.K, g), dy = randv<T>(ny, g);
  const T* bp = with_bias ? b.data() : nullptr;
  std::vector<T> y(ny, T(7)), y_ref(ny);
  conv2d_forward(p, x.data(), w.data(), bp, y.data());
  conv2d_forward_reference(p, x.data(), w.data(), bp, y_ref.data());
  std::vector<T> dx(nx, T(7)), dw(nw, T(7)), db(p.K, T(7)), dx_r(nx), dw_r(nw), db_r(p.K);
  conv2d_backward(p, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
  conv2d_backward_reference(p, x.data(), w.data(), dy.data(), dx_r.data(), dw_r.data(), db_r.data());
  // Finite inputs give finite outputs (a NaN-producing kernel fails here as well as below).
  CHECK(lamina_test::all_finite(y) && lamina_test::all_finite(dx) && lamina_test::all_finite(dw) &&
        lamina_test::all_finite(db));
  const double ey = max_rel_err(y, y_ref), ex = max_rel_err(dx, dx_r), ew = max_rel_err(dw, dw_r),
               eb = max_rel_err(db, db_r);
  CHECK_MSG(ey <= tol && ex <= tol && ew <= tol && eb <= tol,
            "%s N=%lld C=%lld H=%lld W=%lld K=%lld k=%lldx%lld s=%lld,%lld p=%lld,%lld d=%lld,%lld g=%lld: "
            "y %g dx %g dw %g db %g",
            sizeof(T) == 4 ? "f32" : "f64", (long long)p.N, (long long)p.C, (long long)p.H,
            (long long)p.W, (long long)p.K, (long long)p.KH, (long long)p.KW, (long long)p.stride_h,
            (long long)p.stride_w, (long long)p.pad_h, (long long)p.pad_w, (long long)p.dil_h,
            (long long)p.dil_w, (long long)p.groups, ey, ex, ew, eb);
  // Only dw wanted, only dx wanted: the same values.
  std::vector<T> dw2(nw, T(3)), dx2(nx, T(3));
  conv2d_backward<T>(p, x.data(), w.data(), dy.data(), nullptr, dw2.data(), nullptr);
  conv2d_backward<T>(p, x.data(), w.data(), dy.data(), dx2.data(), nullptr, nullptr);
  CHECK(max_rel_err(dw2, dw_r) <= tol);
  CHECK(max_rel_err(dx2, dx_r) <= tol);
}

template <class T>
static void grid(std::mt19937& g) {
  int cases = 0;
  for (int64_t N : {1, 3})
    for (int64_t groups : {1, 2, 3})
      for (int64_t k : {1, 3, 5})
        for (int64_t s : {1, 2, 3})
          for (int64_t pad : {0, 1, 2})
            for (int64_t d : {1, 2}) {
              ConvParams p;
              p.N = N;
              p.C = groups == 2 ? 4 : 3;
              p.K = groups == 3 ? 3 : (groups == 2 ? 6 : 5);  // groups == 3: depthwise
              p.H = 9;
              p.W = 11;  // non-square, odd
              p.KH = k;
              p.KW = k == 5 ? 3 : k;  // non-square kernel too
              p.stride_h = s;
              p.stride_w = s == 3 ? 2 : s;
              p.pad_h = pad;
              p.pad_w = pad == 2 ? 1 : pad;
              p.dil_h = d;
              p.dil_w = d;
              p.groups = groups;
              if (conv_params_error(p)[0] != '\0') continue;
              check_case<T>(p, (cases & 1) == 0, g);
              ++cases;
            }
  CHECK(cases > 200);
}

template <class T>
static void adjoint(std::mt19937& g) {
  // <im2col(x), c> == <x, col2im(c)>: col2im is the exact transpose of im2col.
  ConvParams p;
  p.C = 2; p.H = 7; p.W = 10; p.KH = 3; p.KW = 4; p.stride_h = 2; p.stride_w = 3;
  p.pad_h = 1; p.pad_w = 2; p.dil_h = 2; p.dil_w = 1;
  const size_t ncol = p.C * p.KH * p.KW * p.OH() * p.OW(), nx = p.C * p.H * p.W;
  auto x = randv<T>(nx, g), c = randv<T>(ncol, g);
  std::vector<T> col(ncol), dx(nx, T(0));
  im2col(p, x.data(), col.data());
  col2im(p, c.data(), dx.data());
  double a = 0, b = 0;
  for (size_t i = 0; i < ncol; ++i) a += double(col[i]) * double(c[i]);
  for (size_t i = 0; i < nx; ++i) b += double(x[i]) * double(dx[i]);
  CHECK_NEAR(a, b, 1e-4 * (1 + std::fabs(a)));
}

// im2col / col2im on the AVX2 path equal the portable loops exactly, for every run length
// 1 .. 19 (full vectors, ragged ends shorter and longer than half a vector) and padded edges.
static void isa_paths_agree(std::mt19937& g) {
  if (!cpu_supports_avx2_fma()) return;
  for (int64_t W = 1; W < 20; ++W)
    for (int64_t pad : {0, 1, 2}) {
      ConvParams p;
      p.C = 2; p.H = 5; p.W = W; p.KH = 3; p.KW = std::min<int64_t>(3, W + 2 * pad);
      p.pad_h = 1; p.pad_w = pad;
      if (conv_params_error(p)[0] != '\0') continue;
      const size_t ncol = p.C * p.KH * p.KW * p.OH() * p.OW(), nx = p.C * p.H * p.W;
      auto x = randv<float>(nx, g), c = randv<float>(ncol, g), d0 = randv<float>(nx, g);
      std::vector<float> col_a(ncol), col_p(ncol), dx_a(d0), dx_p(d0);
      set_isa(Isa::avx2);
      im2col(p, x.data(), col_a.data());
      col2im(p, c.data(), dx_a.data());
      set_isa(Isa::portable);
      im2col(p, x.data(), col_p.data());
      col2im(p, c.data(), dx_p.data());
      CHECK_MSG(col_a == col_p && dx_a == dx_p, "W=%lld pad=%lld", (long long)W, (long long)pad);
    }
  set_isa(Isa::avx2);
}

// conv2d_forward with a fused activation == reference conv, then the activation, on every
// forward path: row-chunked im2col, several small images, y^T (K <= 16), pointwise, Winograd.
static void fused_activation(std::mt19937& g) {
  struct Shape { int64_t N, C, H, W, K, k, pad; ConvAlgo algo; };
  const Shape shapes[] = {{2, 3, 30, 29, 7, 3, 1, ConvAlgo::im2col}, {5, 6, 9, 8, 16, 5, 2, ConvAlgo::im2col},
                          {4, 4, 7, 7, 24, 3, 0, ConvAlgo::im2col}, {3, 5, 6, 7, 9, 1, 0, ConvAlgo::im2col}, {2, 5, 24, 24, 9, 1, 0, ConvAlgo::im2col},
                          {2, 6, 11, 10, 8, 3, 1, ConvAlgo::winograd}};
  for (const Shape& sh : shapes)
    for (Act act : {Act::relu, Act::sigmoid, Act::tanh})
      for (bool bias : {true, false}) {
        ConvParams p;
        p.N = sh.N; p.C = sh.C; p.H = sh.H; p.W = sh.W; p.K = sh.K; p.KH = p.KW = sh.k;
        p.pad_h = p.pad_w = sh.pad;
        conv_set_algo(sh.algo);
        const size_t nx = p.N * p.C * p.H * p.W, nw = p.K * p.C * p.KH * p.KW, ny = p.N * p.K * p.OH() * p.OW();
        auto x = randv<float>(nx, g), w = randv<float>(nw, g), b = randv<float>(p.K, g);
        std::vector<float> y(ny, 7.f), ref(ny);
        conv2d_forward<float>(p, x.data(), w.data(), bias ? b.data() : nullptr, y.data(), act);
        conv2d_forward_reference<float>(p, x.data(), w.data(), bias ? b.data() : nullptr, ref.data());
        double err = 0;
        for (size_t i = 0; i < ny; ++i) {
          const double r = ref[i];
          const double f = act == Act::relu ? (r < 0 ? 0 : r) : act == Act::sigmoid ? 1 / (1 + std::exp(-r)) : std::tanh(r);
          err = lamina_test::max_err(err, std::fabs(double(y[i]) - f) / std::max(1.0, std::fabs(f)));
        }
        CHECK_MSG(err <= 2e-5, "act %d K=%lld k=%lld algo %d: err %g", int(act), (long long)p.K,
                  (long long)p.KH, int(sh.algo), err);
      }
  conv_set_algo(ConvAlgo::automatic);
}

// The direct path (conv_direct.h), forced, against the reference: wide rows that end inside a
// vector and on its edge, channel counts that fill a register block exactly, leave part of it,
// or need several; every padding; fused activations; every ISA; float and double.
template <class T>
static void direct_path(std::mt19937& g) {
  struct Shape { int64_t N, C, H, W, K, k, pad; };
  const Shape shapes[] = {{3, 1, 28, 28, 6, 5, 2}, {2, 6, 14, 14, 16, 5, 0}, {2, 1, 5, 5, 1, 3, 0},
                          {2, 2, 7, 9, 5, 3, 1}, {1, 3, 11, 6, 7, 3, 2}, {2, 1, 13, 13, 8, 5, 1},
                          {1, 4, 9, 16, 9, 3, 1}, {2, 3, 10, 10, 17, 5, 2}, {1, 2, 6, 30, 33, 1, 0},
                          {2, 16, 8, 8, 12, 3, 1}, {1, 1, 3, 3, 4, 3, 1}};
  const T tol = sizeof(T) == 4 ? T(3e-5) : T(1e-12);
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::portable}) {
    if (!set_isa(isa)) continue;
    conv_set_algo(ConvAlgo::direct);
    for (const Shape& sh : shapes)
      for (Act act : {Act::identity, Act::relu, Act::tanh})
        for (bool bias : {true, false}) {
          ConvParams p;
          p.N = sh.N; p.C = sh.C; p.H = sh.H; p.W = sh.W; p.K = sh.K; p.KH = p.KW = sh.k;
          p.pad_h = p.pad_w = sh.pad;
          CHECK(conv_direct_applicable(p) && conv_direct_preferred(p));
          const size_t nx = p.N * p.C * p.H * p.W, nw = p.K * p.C * p.KH * p.KW, ny = p.N * p.K * p.OH() * p.OW();
          auto x = randv<T>(nx, g), w = randv<T>(nw, g), b = randv<T>(p.K, g);
          std::vector<T> y(ny, T(7)), ref(ny);
          conv2d_forward<T>(p, x.data(), w.data(), bias ? b.data() : nullptr, y.data(), act);
          conv2d_forward_reference<T>(p, x.data(), w.data(), bias ? b.data() : nullptr, ref.data());
          double err = 0;
          for (size_t i = 0; i < ny; ++i) {
            const double r = ref[i];
            const double f = act == Act::relu ? (r < 0 ? 0 : r) : act == Act::tanh ? std::tanh(r) : r;
            err = std::max(err, std::fabs(double(y[i]) - f) / std::max(1.0, std::fabs(f)));
          }
          CHECK_MSG(err <= tol, "direct isa %d C=%lld K=%lld k=%lld %lldx%lld pad %lld act %d: err %g",
                    int(isa), (long long)p.C, (long long)p.K, (long long)p.KH, (long long)p.H,
                    (long long)p.W, (long long)p.pad_h, int(act), err);
        }
    // Forward and backward (dx on the direct path as the transposed convolution) vs reference.
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      ConvParams c3;
      c3.N = 3; c3.C = 6; c3.H = 14; c3.W = 13; c3.K = 16; c3.KH = c3.KW = 5; c3.pad_h = 1;
      check_case<T>(c3, true, g);
      c3.C = 1; c3.K = 6; c3.pad_h = c3.pad_w = 2;
      check_case<T>(c3, false, g);
    }
    set_num_threads(0);
    // Not applicable (stride 2, groups 2): forcing direct falls back to im2col, still correct.
    ConvParams q;
    q.N = 2; q.C = 2; q.H = 9; q.W = 9; q.K = 4; q.KH = q.KW = 3; q.stride_h = 2;
    CHECK(!conv_direct_applicable(q));
    check_case<T>(q, true, g);
  }
  conv_set_algo(ConvAlgo::automatic);
  set_isa(cpu_supports_avx512() ? Isa::avx512 : cpu_supports_avx2_fma() ? Isa::avx2 : Isa::portable);
}

int main() {
  std::mt19937 g(1234);
  direct_path<float>(g);
  direct_path<double>(g);
  fused_activation(g);
  isa_paths_agree(g);
  adjoint<float>(g);
  adjoint<double>(g);
  grid<double>(g);
  grid<float>(g);
  // Larger shapes that exercise the threaded paths (several images, chunked weight grads),
  // a pointwise conv (no im2col) and a batch smaller than the thread count.
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    ConvParams p;
    p.N = 7; p.C = 6; p.H = 14; p.W = 13; p.K = 16; p.KH = 5; p.KW = 5;
    check_case<float>(p, true, g);
    p.KH = p.KW = 1;
    check_case<float>(p, true, g);
    check_case<double>(p, false, g);
    p.N = 1; p.KH = p.KW = 3; p.pad_h = p.pad_w = 1; p.groups = 2;
    check_case<float>(p, true, g);
  }
  // A map big enough to be cut into row chunks (col > 2 MiB), odd stride/padding/dilation.
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    ConvParams p;
    p.N = 2; p.C = 64; p.H = 41; p.W = 38; p.K = 5; p.KH = 3; p.KW = 3;
    p.pad_h = p.pad_w = 1;
    check_case<float>(p, true, g);
    check_case<double>(p, false, g);
    p.stride_h = 2; p.dil_w = 2; p.pad_w = 2; p.groups = 2; p.K = 4;
    check_case<double>(p, true, g);
  }
  // Winograd F(2x2, 3x3), forced on small shapes: odd/even output sizes (partial edge tiles),
  // every padding it takes (the data gradient runs with padding 2 - pad), one tile row and
  // many, both ISAs, 1 and 2 threads; the automatic choice on a deep layer uses it too.
  for (Isa isa : {Isa::avx2, Isa::portable}) {
    if (!set_isa(isa)) continue;
    conv_set_algo(ConvAlgo::winograd);
    int wcases = 0;
    for (int threads : {1, 2})
      for (int64_t pad : {0, 1, 2})
        for (int64_t H : {3, 4, 7, 10})
          for (int64_t W : {3, 5, 8, 13}) {
            set_num_threads(threads);
            ConvParams p;
            p.N = threads == 1 ? 1 : 3; p.C = 5; p.K = 7; p.H = H; p.W = W; p.KH = p.KW = 3;
            p.pad_h = pad; p.pad_w = (pad + W) % 3;
            CHECK(conv_winograd_applicable(p));
            check_case<float>(p, (wcases & 1) == 0, g);
            check_case<double>(p, (wcases & 1) == 1, g);
            ++wcases;
          }
    CHECK(wcases == 96);
    // F(4x4, 3x3) likewise: outputs not multiples of 4, maps wider than one and two 8-tile
    // AVX2 steps (W 37, 70), several images per job, C / K off the GEMM tiles.
    conv_set_algo(ConvAlgo::winograd4);
    int w4cases = 0;
    for (int threads : {1, 2})
      for (int64_t pad : {0, 1, 2})
        for (int64_t H : {3, 6, 9})
          for (int64_t W : {3, 4, 7, 13, 37, 70}) {
            set_num_threads(threads);
            ConvParams p;
            p.N = threads == 1 ? 1 : 3; p.C = 5; p.K = 7; p.H = H; p.W = W; p.KH = p.KW = 3;
            p.pad_h = pad; p.pad_w = (pad + W) % 3;
            check_case<float>(p, (w4cases & 1) == 0, g);
            check_case<double>(p, (w4cases & 1) == 1, g);
            ++w4cases;
          }
    CHECK(w4cases == 108);
    conv_set_algo(ConvAlgo::winograd);
    ConvParams q;  // not applicable: falls back to im2col even when forced
    q.N = 2; q.C = 4; q.K = 4; q.H = 9; q.W = 9; q.KH = q.KW = 3; q.stride_h = 2;
    CHECK(!conv_winograd_applicable(q));
    check_case<float>(q, true, g);
    q.stride_h = 1; q.pad_h = 3;
    CHECK(!conv_winograd_applicable(q));
    check_case<float>(q, true, g);
    conv_set_algo(ConvAlgo::automatic);
    ConvParams deep;  // auto picks Winograd here (C, K >= 64); a map cut into tile-row chunks
    deep.N = 2; deep.C = 64; deep.K = 72; deep.H = 70; deep.W = 37; deep.KH = deep.KW = 3;
    deep.pad_h = deep.pad_w = 1;
    set_num_threads(2);
    check_case<float>(deep, true, g);
    check_case<double>(deep, false, g);
  }
  set_isa(cpu_supports_avx2_fma() ? Isa::avx2 : Isa::portable);
  // Weight gradients are chunk-ordered sums with a fixed chunk count: bit-identical at 1 and
  // 2 threads, on the im2col path (small maps, several blocks) and the Winograd ones.
  for (int algo = 0; algo < 3; ++algo) {
    ConvParams p;
    p.N = 9; p.C = 64; p.K = 64; p.H = 16; p.W = 15; p.KH = p.KW = 3; p.pad_h = p.pad_w = 1;
    conv_set_algo(algo == 0 ? ConvAlgo::im2col : algo == 1 ? ConvAlgo::winograd : ConvAlgo::winograd4);
    const size_t nx = p.N * p.C * p.H * p.W, nw = p.K * p.C * 9, ny = p.N * p.K * p.OH() * p.OW();
    auto x = randv<float>(nx, g), w = randv<float>(nw, g), dy = randv<float>(ny, g);
    std::vector<float> dw1(nw), dw2(nw), dx1(nx), dx2(nx);
    set_num_threads(1);
    conv2d_backward<float>(p, x.data(), w.data(), dy.data(), dx1.data(), dw1.data(), nullptr);
    set_num_threads(2);
    conv2d_backward<float>(p, x.data(), w.data(), dy.data(), dx2.data(), dw2.data(), nullptr);
    CHECK_MSG(dw1 == dw2 && dx1 == dx2, "algo %d: 1 and 2 threads differ", algo);
  }
  conv_set_algo(ConvAlgo::automatic);
  set_num_threads(0);
  // Bad parameters are reported, not run.
  ConvParams bad;
  bad.C = 3; bad.groups = 2;
  CHECK(conv_params_error(bad)[0] != '\0');
  bad.groups = 1; bad.H = 2; bad.KH = 5;
  CHECK(conv_params_error(bad)[0] != '\0');
  TEST_MAIN_END();
}
