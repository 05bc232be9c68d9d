// Pooling against naive loops written independently here (padding as explicit -inf / 0 cells),
// plus exact tie / NaN rules for max pooling and the adaptive-window formula.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "check.h"
#include "cpu.h"
#include "pool.h"

using namespace lamina;

template <class T>
static void check_grid(std::mt19937& g) {
  std::uniform_int_distribution<int> small(-3, 3);  // small ints: many exact ties
  int cases = 0;
  for (int64_t k : {1, 2, 3})
    for (int64_t s : {1, 2, 3})
      for (int64_t pad : {0, 1})
        for (int64_t d : {1, 2})
          for (bool ceil_mode : {false, true})
          for (bool square : {false, true}) {  // square k == s: the tiled fast paths
            PoolParams p;
            p.N = 2; p.C = 3; p.H = 7; p.W = 10;
            p.KH = k; p.KW = square ? k : k + 1; p.stride_h = s; p.stride_w = s;
            p.pad_h = pad; p.pad_w = pad; p.dil_h = d; p.dil_w = d; p.ceil_mode = ceil_mode;
            if (pool_params_error(p)[0] != '\0') continue;
            ++cases;
            const int64_t OH = p.OH(), OW = p.OW(), HW = p.H * p.W;
            std::vector<T> x(p.N * p.C * HW);
            for (auto& v : x) v = T(small(g));
            std::vector<T> y(p.N * p.C * OH * OW);
            std::vector<int64_t> idx(y.size());
            max_pool2d_forward(p, x.data(), y.data(), idx.data());
            std::vector<T> dy(y.size()), dx(x.size(), T(9)), dx_ref(x.size(), T(0));
            for (auto& v : dy) v = T(small(g));
            max_pool2d_backward(p, dy.data(), idx.data(), dx.data());
            CHECK(lamina_test::all_finite(y) && lamina_test::all_finite(dx));
            bool ok = true;
            for (int64_t pl = 0; pl < p.N * p.C; ++pl)
              for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow) {
                  T m = -std::numeric_limits<T>::infinity();
                  int64_t mi = -1;
                  for (int64_t a = 0; a < p.KH; ++a)
                    for (int64_t b = 0; b < p.KW; ++b) {
                      int64_t ih = oh * s - pad + a * d, iw = ow * s - pad + b * d;
                      if (ih < 0 || iw < 0 || ih >= p.H || iw >= p.W) continue;
                      T v = x[pl * HW + ih * p.W + iw];
                      if (mi < 0 || v > m) { m = v; mi = ih * p.W + iw; }  // first max wins
                    }
                  const int64_t o = (pl * OH + oh) * OW + ow;
                  ok = ok && y[o] == m && idx[o] == mi;
                  dx_ref[pl * HW + mi] += dy[o];
                }
            CHECK_MSG(ok, "max k=%lld s=%lld p=%lld d=%lld ceil=%d", (long long)k, (long long)s,
                      (long long)pad, (long long)d, int(ceil_mode));
            CHECK(dx == dx_ref);
            if (d != 1) continue;
            for (bool inc : {true, false}) {
              std::vector<T> ya(y.size()), dxa(x.size(), T(9)), dxa_ref(x.size(), T(0));
              avg_pool2d_forward(p, x.data(), ya.data(), inc);
              avg_pool2d_backward(p, dy.data(), dxa.data(), inc);
              double err = 0;
              for (int64_t pl = 0; pl < p.N * p.C; ++pl)
                for (int64_t oh = 0; oh < OH; ++oh)
                  for (int64_t ow = 0; ow < OW; ++ow) {
                    double sum = 0;
                    int64_t inside = 0, padded = 0;
                    for (int64_t a = 0; a < p.KH; ++a)
                      for (int64_t b = 0; b < p.KW; ++b) {
                        int64_t ih = oh * s - pad + a, iw = ow * s - pad + b;
                        if (ih >= p.H + pad || iw >= p.W + pad) continue;  // past the padding
                        ++padded;
                        if (ih < 0 || iw < 0 || ih >= p.H || iw >= p.W) continue;
                        ++inside;
                        sum += x[pl * HW + ih * p.W + iw];
                      }
                    const int64_t div = inc ? padded : inside;
                    const int64_t o = (pl * OH + oh) * OW + ow;
                    err = lamina_test::max_err(err, std::fabs(double(ya[o]) - (inside ? sum / div : 0.0)));
                    if (!inside) continue;
                    for (int64_t a = 0; a < p.KH; ++a)
                      for (int64_t b = 0; b < p.KW; ++b) {
                        int64_t ih = oh * s - pad + a, iw = ow * s - pad + b;
                        if (ih < 0 || iw < 0 || ih >= p.H || iw >= p.W) continue;
                        dxa_ref[pl * HW + ih * p.W + iw] += dy[o] / T(div);
                      }
                  }
              for (size_t i = 0; i < dxa.size(); ++i) err = lamina_test::max_err(err, std::fabs(double(dxa[i]) - dxa_ref[i]));
              CHECK_MSG(err < 1e-5, "avg k=%lld s=%lld p=%lld ceil=%d inc=%d err=%g", (long long)k,
                        (long long)s, (long long)pad, int(ceil_mode), int(inc), err);
            }
          }
  CHECK(cases > 80);
}

// The 2x2 stride-2 fast paths (AVX2 and portable) against a naive loop with the exact rule
// (first max on ties, NaN wins, the last NaN of the window), on values from a tiny set so ties
// and NaNs are frequent; widths 1..19 exercise vector blocks, overlapping tails and scalar tails.
template <class T>
static void check_2x2_fast(std::mt19937& g) {
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  const T pool_vals[] = {T(-1), T(0), T(0), T(1), T(1), T(2), -inf, inf, nan, T(-0.0)};
  std::uniform_int_distribution<int> pick(0, 9);
  std::vector<Isa> isas = {Isa::portable};
  if (cpu_supports_avx2_fma()) isas.push_back(Isa::avx2);
  const Isa saved = active_isa();
  for (int64_t H : {2, 3, 5, 7, 8})
    for (int64_t W = 1; W <= 19; ++W) {
      PoolParams p;
      p.N = 2; p.C = 3; p.H = H; p.W = W; p.KH = p.KW = 2; p.stride_h = p.stride_w = 2;
      if (pool_params_error(p)[0] != '\0') continue;  // W = 1: kernel wider than the input
      const int64_t OH = p.OH(), OW = p.OW(), HW = H * W, planes = p.N * p.C;
      std::vector<T> x(planes * HW);
      for (auto& v : x) v = pool_vals[pick(g)];
      std::vector<T> y_ref(planes * OH * OW);
      std::vector<int64_t> i_ref(y_ref.size());
      for (int64_t pl = 0; pl < planes; ++pl)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            T m = T(0);
            int64_t mi = -1;
            for (int64_t a = 0; a < 2; ++a)
              for (int64_t b = 0; b < 2; ++b) {
                const int64_t k = (2 * oh + a) * W + 2 * ow + b;
                const T v = x[pl * HW + k];
                if (mi < 0 || v > m || std::isnan(v)) { m = v; mi = k; }
              }
            y_ref[(pl * OH + oh) * OW + ow] = m;
            i_ref[(pl * OH + oh) * OW + ow] = mi;
          }
      for (Isa isa : isas) {
        set_isa(isa);
        std::vector<T> y(y_ref.size(), T(7));
        std::vector<int64_t> idx(y.size(), -5);
        max_pool2d_forward(p, x.data(), y.data(), idx.data());
        bool ok = true;
        for (size_t o = 0; o < y.size(); ++o) {
          const bool same = std::isnan(y_ref[o]) ? std::isnan(y[o])
                                                 : (y[o] == y_ref[o] && std::signbit(y[o]) == std::signbit(y_ref[o]));
          ok = ok && same && idx[o] == i_ref[o];
        }
        CHECK_MSG(ok, "2x2 fast path %s H=%lld W=%lld dtype=%d", isa_name(isa), (long long)H, (long long)W,
                  int(sizeof(T)));
      }
    }
  set_isa(saved);
}

int main() {
  std::mt19937 g(7);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    check_grid<float>(g);
    check_grid<double>(g);
    check_2x2_fast<float>(g);
    check_2x2_fast<double>(g);
  }
  // Exact rules: ties to the first max; NaN beats numbers, and the last NaN wins (PyTorch).
  PoolParams p;
  p.H = 2; p.W = 2; p.KH = 2; p.KW = 2; p.stride_h = 2; p.stride_w = 2;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double y;
  int64_t i;
  double tie[4] = {1, 5, 5, 5};
  max_pool2d_forward(p, tie, &y, &i);
  CHECK(y == 5 && i == 1);
  double withnan[4] = {1, nan, 7, nan};
  max_pool2d_forward(p, withnan, &y, &i);
  CHECK(std::isnan(y) && i == 3);
  p.W = 3; p.KW = 3; p.stride_w = 3;  // generic (non 2x2) path, same rule
  double tie3[6] = {2, 9, 1, 9, 9, 0};
  max_pool2d_forward(p, tie3, &y, &i);
  CHECK(y == 9 && i == 1);
  double nan3[6] = {2, nan, 1, 9, 3, 0};
  max_pool2d_forward(p, nan3, &y, &i);
  CHECK(std::isnan(y) && i == 1);
  // Adaptive windows: H=5 -> 3 gives rows [0,2), [1,4), [3,5).
  float xa[5] = {1, 2, 3, 4, 5}, ya[3];
  adaptive_avg_pool2d_forward<float>(1, 1, 5, 1, 3, 1, xa, ya);
  CHECK_NEAR(ya[0], 1.5, 1e-6);
  CHECK_NEAR(ya[1], 3.0, 1e-6);
  CHECK_NEAR(ya[2], 4.5, 1e-6);
  float dya[3] = {1, 1, 1}, dxa[5];
  adaptive_avg_pool2d_backward<float>(1, 1, 5, 1, 3, 1, dya, dxa);
  CHECK_NEAR(dxa[0], 0.5, 1e-6);
  CHECK_NEAR(dxa[1], 0.5 + 1.0 / 3, 1e-6);
  CHECK_NEAR(dxa[3], 1.0 / 3 + 0.5, 1e-6);
  // Padding over half the kernel is rejected.
  PoolParams bad;
  bad.H = bad.W = 5; bad.KH = bad.KW = 2; bad.pad_h = bad.pad_w = 2;
  CHECK(pool_params_error(bad)[0] != '\0');
  TEST_MAIN_END();
}
