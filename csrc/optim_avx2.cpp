// AVX2 SGD and Adam / AdamW updates (see optim.h for the rules). The same operations in the same
// order as the portable loops in optim.cpp, one rounding each: FMA contraction is switched off here,
// so both ISAs give bit-identical parameters (test_optim_avx2 checks it). Tails use masked
// loads/stores, so every element goes through the same vector arithmetic.
#if defined(LAMINA_X86)
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif
#include <immintrin.h>

#include <cstdint>

#include "simd_avx2.h"

namespace lamina {
namespace {

using F32 = avx2::F32;
using F64 = avx2::F64;

// SGD: the portable loop is SSE2 (optim.cpp builds for baseline x86-64), 4 floats an
// instruction and bound by its instruction count on a 48k-parameter layer that sits in L2.
template <class K, bool kDecay, int kMomentum /*0 none, 1 first step, 2 later*/, bool kNesterov>
void sgd_range(int64_t i0, int64_t i1, typename K::S* p, const typename K::S* grad, typename K::S* buf,
               typename K::S lr, typename K::S momentum, typename K::S one_minus_dampening, typename K::S wd) {
  using V = typename K::V;
  using S = typename K::S;
  const V lrv = K::set(lr), mom = K::set(momentum), omd = K::set(one_minus_dampening), wdv = K::set(wd);
  auto step = [&](int64_t i, int64_t k) {
    auto ld = [&](const S* a) { return k == K::W ? K::load(a + i) : K::load(a + i, k); };
    auto st = [&](S* a, V x) { k == K::W ? K::store(a + i, x) : K::store(a + i, x, k); };
    V g = ld(grad);
    const V pi = ld(p);
    if (kDecay) g = K::add(g, K::mul(wdv, pi));
    if (kMomentum != 0) {
      const V b = kMomentum == 1 ? g : K::add(K::mul(mom, ld(buf)), K::mul(omd, g));
      st(buf, b);
      g = kNesterov ? K::add(g, K::mul(mom, b)) : b;
    }
    st(p, K::sub(pi, K::mul(lrv, g)));
  };
  int64_t i = i0;
  for (; i + K::W <= i1; i += K::W) step(i, K::W);
  if (i < i1) step(i, i1 - i);
}

template <class K, bool kDecay>
void sgd_dispatch(int64_t i0, int64_t i1, typename K::S* p, const typename K::S* g, typename K::S* buf,
                  typename K::S lr, typename K::S mom, typename K::S omd, typename K::S wd, bool has_momentum,
                  bool first, bool nesterov) {
  if (!has_momentum) return sgd_range<K, kDecay, 0, false>(i0, i1, p, g, buf, lr, mom, omd, wd);
  if (first) {
    if (nesterov) return sgd_range<K, kDecay, 1, true>(i0, i1, p, g, buf, lr, mom, omd, wd);
    return sgd_range<K, kDecay, 1, false>(i0, i1, p, g, buf, lr, mom, omd, wd);
  }
  if (nesterov) return sgd_range<K, kDecay, 2, true>(i0, i1, p, g, buf, lr, mom, omd, wd);
  sgd_range<K, kDecay, 2, false>(i0, i1, p, g, buf, lr, mom, omd, wd);
}

template <class K, int kDecay /*0 none, 1 L2 into grad, 2 decoupled*/, bool kAmsgrad>
void adam_range(int64_t i0, int64_t i1, typename K::S* p, const typename K::S* grad, typename K::S* m,
                typename K::S* v, typename K::S* vmax, typename K::S lr_wd, typename K::S wd,
                typename K::S one_minus_beta1, typename K::S beta2, typename K::S one_minus_beta2,
                typename K::S inv_bc2_sqrt, typename K::S eps, typename K::S step_size) {
  using V = typename K::V;
  using S = typename K::S;
  const V keep = K::set(S(1) - lr_wd), wdv = K::set(wd), omb1 = K::set(one_minus_beta1), b2 = K::set(beta2),
          omb2 = K::set(one_minus_beta2), ibc2 = K::set(inv_bc2_sqrt), epsv = K::set(eps), ss = K::set(step_size);
  // k = lanes in this step (K::W, or the tail's count through masked loads/stores)
  auto step = [&](int64_t i, int64_t k) {
    auto ld = [&](const S* a) { return k == K::W ? K::load(a + i) : K::load(a + i, k); };
    auto st = [&](S* a, V x) { k == K::W ? K::store(a + i, x) : K::store(a + i, x, k); };
    V g = ld(grad), pi = ld(p), mo = ld(m), vo = ld(v);
    if (kDecay == 2) pi = K::mul(pi, keep);
    if (kDecay == 1) g = K::add(g, K::mul(wdv, pi));
    const V mi = K::add(mo, K::mul(omb1, K::sub(g, mo)));
    const V vi = K::add(K::mul(vo, b2), K::mul(omb2, K::mul(g, g)));
    st(m, mi);
    st(v, vi);
    V vh = vi;
    if (kAmsgrad) {
      vh = K::max(vi, ld(vmax));  // = std::max(vmax, vi), NaN included
      st(vmax, vh);
    }
    const V denom = K::add(K::mul(K::sqrt(vh), ibc2), epsv);
    st(p, K::sub(pi, K::mul(ss, K::div(mi, denom))));
  };
  int64_t i = i0;
  for (; i + K::W <= i1; i += K::W) step(i, K::W);
  if (i < i1) step(i, i1 - i);
}

template <class K>
void adam_dispatch(int64_t i0, int64_t i1, typename K::S* p, const typename K::S* g, typename K::S* m,
                   typename K::S* v, typename K::S* vmax, int decay, bool amsgrad, typename K::S lr_wd,
                   typename K::S wd, typename K::S omb1, typename K::S b2, typename K::S omb2,
                   typename K::S inv_bc2_sqrt, typename K::S eps, typename K::S step_size) {
#define LAMINA_ADAM(D, A) \
  adam_range<K, D, A>(i0, i1, p, g, m, v, vmax, lr_wd, wd, omb1, b2, omb2, inv_bc2_sqrt, eps, step_size)
  if (amsgrad) {
    if (decay == 0) LAMINA_ADAM(0, true); else if (decay == 1) LAMINA_ADAM(1, true); else LAMINA_ADAM(2, true);
  } else {
    if (decay == 0) LAMINA_ADAM(0, false); else if (decay == 1) LAMINA_ADAM(1, false); else LAMINA_ADAM(2, false);
  }
#undef LAMINA_ADAM
}

}  // namespace

namespace detail {
// Declared in optim.cpp (its only caller).
void sgd_range_avx2(int64_t i0, int64_t i1, float* p, const float* g, float* buf, float lr, float mom, float omd,
                    float wd, bool decay, bool has_momentum, bool first, bool nesterov) {
  if (decay) return sgd_dispatch<F32, true>(i0, i1, p, g, buf, lr, mom, omd, wd, has_momentum, first, nesterov);
  sgd_dispatch<F32, false>(i0, i1, p, g, buf, lr, mom, omd, wd, has_momentum, first, nesterov);
}
void sgd_range_avx2(int64_t i0, int64_t i1, double* p, const double* g, double* buf, double lr, double mom,
                    double omd, double wd, bool decay, bool has_momentum, bool first, bool nesterov) {
  if (decay) return sgd_dispatch<F64, true>(i0, i1, p, g, buf, lr, mom, omd, wd, has_momentum, first, nesterov);
  sgd_dispatch<F64, false>(i0, i1, p, g, buf, lr, mom, omd, wd, has_momentum, first, nesterov);
}
void adam_range_avx2(int64_t i0, int64_t i1, float* p, const float* g, float* m, float* v, float* vmax, int decay,
                     bool amsgrad, float lr_wd, float wd, float omb1, float b2, float omb2, float inv_bc2_sqrt,
                     float eps, float step_size) {
  adam_dispatch<F32>(i0, i1, p, g, m, v, vmax, decay, amsgrad, lr_wd, wd, omb1, b2, omb2, inv_bc2_sqrt, eps,
                     step_size);
}
void adam_range_avx2(int64_t i0, int64_t i1, double* p, const double* g, double* m, double* v, double* vmax,
                     int decay, bool amsgrad, double lr_wd, double wd, double omb1, double b2, double omb2,
                     double inv_bc2_sqrt, double eps, double step_size) {
  adam_dispatch<F64>(i0, i1, p, g, m, v, vmax, decay, amsgrad, lr_wd, wd, omb1, b2, omb2, inv_bc2_sqrt, eps,
                     step_size);
}
}  // namespace detail

}  // namespace lamina
#endif  // LAMINA_X86
