// Direct weight gradient for few input channels (see conv_direct_bwd.h for the layout).
//
// Per chunk of images (a task on the thread team), per group of nb images whose buffers fit L1:
//   xp  (nb, xs)       <- the images zero-padded to (C, Hp, Wp), plus zero slack
//   dyw (nb, K, Qpad)  <- dy widened to rows of Wp columns, zeros in the discarded columns and
//                         past Q = OH*Wp
//   per channel block x tap block: the micro-kernel adds the group's products into the chunk's
//   vector accumulators acc (K, ntaps, lanes)
// then dw[k][t] = sum over chunks, in chunk order, of the lane sum of acc_c[k][t].
#include "conv_direct_bwd.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "conv_direct.h"
#include "conv_direct_bwd_kernel.h"
#include "cpu.h"
#include "thread_team.h"
#include "workspace.h"

namespace lamina {

using conv_direct_bwd_detail::DwKernel;
using conv_direct_bwd_detail::DwKernels;

namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Portable "vectors" of 8 lanes as plain arrays: the same kernel body, which the compiler
// vectorizes for the baseline ISA.
template <class T>
struct Lanes8 {
  struct R {
    T v[8];
  };
  static constexpr int W = 8;
  static R zero() { return R{}; }
  static R loadu(const T* p) {
    R r;
    for (int l = 0; l < 8; ++l) r.v[l] = p[l];
    return r;
  }
  static void storeu(T* p, R x) {
    for (int l = 0; l < 8; ++l) p[l] = x.v[l];
  }
  static R add(R a, R b) {
    for (int l = 0; l < 8; ++l) a.v[l] += b.v[l];
    return a;
  }
  static R fma(R a, R b, R c) {
    for (int l = 0; l < 8; ++l) c.v[l] += a.v[l] * b.v[l];
    return c;
  }
  static void pin(R&) {}
};
constexpr int kPortableKb = 2, kPortableTb = 2;
int portable_tb_for(int) { return kPortableTb; }
template <class T>
DwKernel<T> portable_get(int kb, int tb) {
  static constexpr auto table =
      dw_table<Lanes8, T, kPortableTb>(std::make_index_sequence<kPortableKb * kPortableTb>());
  return table[size_t((kb - 1) * kPortableTb + (tb - 1))];
}

template <class T>
DwKernels<T> select_kernels() {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx512) return conv_direct_bwd_detail::dw_kernels_avx512<T>();
  if (active_isa() >= Isa::avx2) return conv_direct_bwd_detail::dw_kernels_avx2<T>();
#endif
  DwKernels<T> k;
  k.lanes = 8;
  k.kb_max = kPortableKb;
  k.tb_for = portable_tb_for;
  k.get = portable_get<T>;
  return k;
}

// The calling thread's padded images and widened dy, tagged with their geometry: a call with
// the same geometry finds the zeros (borders, discarded columns, slack) still in place.
struct WideBuffers {
  AlignedBuffer buf;
  int64_t tag[9] = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
};
thread_local WideBuffers tl_dw_buf;

// dst[0:n] = src[0:n] for the short rows of small maps: fixed 8-element blocks the compiler
// inlines, instead of one memcpy call per 10- or 28-element row.
template <class T>
inline void copy_row(T* dst, const T* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) std::memcpy(dst + i, src + i, 8 * sizeof(T));
  if (i + 4 <= n) {
    std::memcpy(dst + i, src + i, 4 * sizeof(T));
    i += 4;
  }
  for (; i < n; ++i) dst[i] = src[i];
}

}  // namespace

// Measured on an AVX-512 Xeon (thread CPU time, 1 thread, N = 64, dw alone, im2col + GEMM ->
// direct, f32): C1 1 -> 6 28x28 5x5 p2 0.98 -> 0.19 ms; C3 6 -> 16 14x14 5x5 0.55 -> 0.42;
// 3 -> 16 32x32 3x3 p1 1.30 -> 0.74; 4 -> 8 28x28 3x3 0.55 -> 0.32; 1 -> 32 28x28 3x3 p1
// 1.08 -> 0.67; 8 -> 32 16x16 3x3 p1 1.25 -> 1.04; but 16 -> 16 14x14 5x5 1.31 -> 1.59,
// 16 -> 32 16x16 3x3 2.16 -> 2.29, 16 -> 64 12x12 2.11 -> 3.13 (f64 alike): the GEMM's
// deeper reduction wins from 16 input channels or 64 output channels on.
bool conv_direct_dw_preferred(const ConvParams& p) {
  const ConvAlgo a = conv_get_algo();
  if (!conv_direct_applicable(p)) return false;
  if (a == ConvAlgo::direct) return true;
  if (a != ConvAlgo::automatic || active_isa() < Isa::avx2) return false;
  const int64_t Wp = p.W + 2 * p.pad_w;
  // Few channels, a kernel with several taps, and at least half of each wide row useful.
  return p.C <= 8 && p.K <= 32 && p.KH * p.KW >= 9 && 2 * p.OW() >= Wp;
}

template <class T>
void conv2d_direct_dw(const ConvParams& p, const T* x, const T* dy, T* dw) {
  const int64_t N = p.N, C = p.C, H = p.H, W = p.W, K = p.K, KH = p.KH, KW = p.KW;
  const int64_t OH = p.OH(), OW = p.OW(), Hp = H + 2 * p.pad_h, Wp = W + 2 * p.pad_w;
  const int64_t plane = Hp * Wp, ntaps = C * KH * KW;
  if (N == 0) {
    std::fill(dw, dw + K * ntaps, T(0));
    return;
  }
  const DwKernels<T> kk = select_kernels<T>();
  const int64_t L = kk.lanes;
  const int64_t nvec = ceil_div(OH * Wp, L), Qpad = nvec * L;
  // The last tap of a vector step reads up to (C-1)*plane + (KH-1)*Wp + KW-1 + Qpad - 1.
  const int64_t xs = ceil_div(std::max(C * plane, (C - 1) * plane + (KH - 1) * Wp + KW - 1 + Qpad), L) * L;
  const int64_t ds = K * Qpad;
  std::vector<int64_t> off(static_cast<size_t>(ntaps));
  for (int64_t c = 0, t = 0; c < C; ++c)
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw, ++t) off[size_t(t)] = c * plane + kh * Wp + kw;
  // Channel blocks of near-equal size <= kb_max (16 -> 8 + 8; 6 -> 6).
  const int64_t nkb = ceil_div(K, kk.kb_max);
  // Images per group: one channel block's dyw and the padded images stay in a 32 KiB L1.
  const int64_t per_img = int64_t(sizeof(T)) * (xs + ceil_div(K, nkb) * Qpad);
  const int64_t nb = std::max<int64_t>(1, std::min<int64_t>(N, (int64_t(32) << 10) / per_img));

  const double flops = 2.0 * double(K) * double(ntaps) * double(OH * Wp) * double(N);
  const int nt = static_cast<int>(std::min<int64_t>(team_size(flops, 2e5), N));
  // A fixed number of contiguous chunks, summed in chunk order: the same dw at 1..4 threads.
  const int64_t nchunks = std::min<int64_t>(N, std::max(4, nt));
  const int64_t acc_len = K * ntaps * L;
  std::vector<T> acc(static_cast<size_t>(nchunks * acc_len), T(0));

  parallel_tasks(nchunks, nt, [&](int64_t ch) {
    const int64_t n0 = N * ch / nchunks, n1 = N * (ch + 1) / nchunks;
    T* xpb = tl_dw_buf.buf.elems<T>(nb * (xs + ds));
    T* dyb = xpb + nb * xs;
    const int64_t tag[9] = {C, H, W, p.pad_h, p.pad_w, K, OH * Wp, nb * (xs + ds), int64_t(sizeof(T))};
    if (!std::equal(tag, tag + 9, tl_dw_buf.tag)) {  // a new geometry: zero everything once
      std::memset(xpb, 0, sizeof(T) * size_t(nb * (xs + ds)));
      std::copy(tag, tag + 9, tl_dw_buf.tag);
    }
    T* accc = acc.data() + ch * acc_len;
    for (int64_t g = n0; g < n1; g += nb) {
      const int64_t ng = std::min(nb, n1 - g);
      for (int64_t i = 0; i < ng; ++i) {
        // Only the interiors: borders, wide columns and slack are zeros from the first fill.
        T* xp = xpb + i * xs + p.pad_h * Wp + p.pad_w;
        const T* xn = x + (g + i) * C * H * W;
        if (Wp == W) {  // no side padding: each channel's rows are one contiguous run
          for (int64_t c = 0; c < C; ++c) std::memcpy(xp + c * plane, xn + c * H * W, sizeof(T) * size_t(H * W));
        } else {
          for (int64_t c = 0; c < C; ++c)
            for (int64_t h = 0; h < H; ++h) copy_row(xp + c * plane + h * Wp, xn + (c * H + h) * W, W);
        }
        T* dyw = dyb + i * ds;
        const T* dyn = dy + (g + i) * K * OH * OW;
        for (int64_t k = 0; k < K; ++k)
          for (int64_t oh = 0; oh < OH; ++oh) copy_row(dyw + k * Qpad + oh * Wp, dyn + (k * OH + oh) * OW, OW);
      }
      for (int64_t b = 0; b < nkb; ++b) {
        const int64_t k0 = K * b / nkb, kb = K * (b + 1) / nkb - k0;
        const int64_t tb_max = kk.tb_for(int(kb));
        for (int64_t t0 = 0; t0 < ntaps; t0 += tb_max) {
          const int64_t tb = std::min(tb_max, ntaps - t0);
          kk.get(int(kb), int(tb))(xpb, xs, dyb + k0 * Qpad, ds, Qpad, ng, nvec, off.data() + t0,
                                   accc + (k0 * ntaps + t0) * L, ntaps * L);
        }
      }
    }
  });
  // dw[k][t] = sum over chunks (in order) of the lane sums.
  parallel_tasks(K, team_size(double(acc_len) * double(nchunks), 1e5), [&](int64_t k) {
    for (int64_t t = 0; t < ntaps; ++t) {
      T s = T(0);
      for (int64_t c = 0; c < nchunks; ++c) {
        const T* a = acc.data() + c * acc_len + (k * ntaps + t) * L;
        T part = T(0);
        for (int64_t l = 0; l < L; ++l) part += a[l];
        s += part;
      }
      dw[k * ntaps + t] = s;
    }
  });
}

template void conv2d_direct_dw<float>(const ConvParams&, const float*, const float*, float*);
template void conv2d_direct_dw<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace lamina
