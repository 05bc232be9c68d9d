// The batch-lane direct convolution driver (kernels: LaneKernel in conv_direct.h), shared by the
// plain forward (conv_direct.cpp) and the fused conv blocks (conv_block.cpp).
//
// Per block of `lanes` images (a task on the thread team):
//   xt (C, Hp, Wp, lanes)   <- the block's images, zero-padded and transposed (missing images
//                              of the last block are zeros)
//   per channel block of KB, per group of `rows` output rows:
//     yr (KB, rows, OW, lanes) = the lane kernel over all taps, tiles of <= vmax pixels
//     done(block, yr)          the caller's epilogue while yr is in L1 (scatter, or pool)
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "conv_direct.h"
#include "cpu.h"
#include "thread_team.h"
#include "workspace.h"

namespace lamina {
namespace conv_direct_detail {

// Where the epilogue's rows belong: images n0 .. n0+nl-1 (lane l = image n0+l), channels
// k0 .. k0+kn-1 (yr's first kn of KB), output rows oh0 .. oh0+nrows-1.
struct LaneTile {
  int64_t n0, nl, k0, kn, oh0, nrows;
};

template <class T>
bool lane_kernels(int64_t K, LaneKernels<T>* lk) {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx512) { lane_kernels_avx512<T>(K, lk); return true; }
  if (active_isa() >= Isa::avx2) { lane_kernels_avx2<T>(K, lk); return true; }
#endif
  (void)K;
  (void)lk;
  return false;
}

// Images per vector of the lane kernels on this CPU (0: none).
template <class T>
int64_t lane_width() {
  LaneKernels<T> lk;
  return lane_kernels<T>(1, &lk) ? lk.lanes : 0;
}

inline thread_local AlignedBuffer tl_lane_xt;
inline thread_local AlignedBuffer tl_lane_yr;

// Runs the lane convolution of p (stride 1, dilation 1, groups 1) over the batch, calling
// done(tile, yr, lk) for every group of rows; yr[((kb * rows + r) * OW + ow) * lanes + l]
// (lk.scatter moves rows of it back to NCHW).
// Tasks are blocks of images; done runs on the task's thread. Returns false (nothing run) when
// the CPU has no lane kernels.
template <class T, class Done>
bool lane_forward(const ConvParams& p, const T* x, const T* w, const T* b, int64_t rows, Done&& done) {
  LaneKernels<T> lk;
  if (!lane_kernels<T>(p.K, &lk)) return false;
  // int32 gather/scatter offsets: lanes-1 images apart in x and in y.
  const int64_t img = std::max(p.C * p.H * p.W, p.K * p.OH() * p.OW());
  if (img > INT32_MAX / lk.lanes || p.N < lk.lanes || !conv_direct_applicable(p)) return false;
  const int64_t C = p.C, H = p.H, W = p.W, K = p.K, KH = p.KH, KW = p.KW, L = lk.lanes, KB = lk.kb;
  const int64_t OH = p.OH(), OW = p.OW(), Hp = H + 2 * p.pad_h, Wp = W + 2 * p.pad_w;
  const int64_t ntaps = C * KH * KW, nblk = (K + KB - 1) / KB, nbb = (p.N + L - 1) / L;
  const bool padded = p.pad_h > 0 || p.pad_w > 0;
  std::vector<int64_t> off(static_cast<size_t>(ntaps));
  for (int64_t c = 0, t = 0; c < C; ++c)
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw, ++t) off[size_t(t)] = ((c * Hp + kh) * Wp + kw) * L;
  // wt[blk][t][kb] = w[blk*KB + kb][t]; bias padded with zeros to whole blocks.
  std::vector<T> wt(static_cast<size_t>(nblk * ntaps * KB), T(0)), bias(static_cast<size_t>(nblk * KB), T(0));
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t t = 0; t < ntaps; ++t) wt[size_t(((k / KB) * ntaps + t) * KB + k % KB)] = w[k * ntaps + t];
    if (b) bias[size_t(k)] = b[k];
  }
  // Row tiles of at most vmax pixels, as equal as they come (10 = 3+3+2+2, not 3+3+3+1).
  const int64_t ntiles = (OW + lk.vmax - 1) / lk.vmax;
  std::vector<int64_t> tile_at(static_cast<size_t>(ntiles + 1), 0);
  for (int64_t i = 0; i < ntiles; ++i) tile_at[size_t(i + 1)] = tile_at[size_t(i)] + OW / ntiles + (i < OW % ntiles);

  const double flops = 2.0 * double(K) * double(ntaps) * double(OH * OW) * double(p.N);
  parallel_tasks(nbb, team_size(flops, 2e5), [&](int64_t bb) {
    const int64_t n0 = bb * L, nl = std::min(L, p.N - n0);
    T* xt = tl_lane_xt.elems<T>(C * Hp * Wp * L);
    if (padded) std::memset(xt, 0, sizeof(T) * size_t(C * Hp * Wp * L));
    const T* xn0 = x + n0 * C * H * W;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        lk.gather(xn0 + (c * H + h) * W, C * H * W, W, nl, xt + ((c * Hp + h + p.pad_h) * Wp + p.pad_w) * L);
    T* yr = tl_lane_yr.elems<T>(KB * rows * OW * L);
    for (int64_t blk = 0; blk < nblk; ++blk) {
      const T* wb = wt.data() + blk * ntaps * KB;
      const T* bias_blk = bias.data() + blk * KB;
      for (int64_t oh0 = 0; oh0 < OH; oh0 += rows) {
        const int64_t nrows = std::min(rows, OH - oh0);
        for (int64_t r = 0; r < nrows; ++r)
          for (int64_t i = 0; i < ntiles; ++i) {
            const int64_t ow = tile_at[size_t(i)], v = tile_at[size_t(i + 1)] - ow;
            lk.by_v[v](xt + ((oh0 + r) * Wp + ow) * L, off.data(), ntaps, wb, bias_blk,
                       yr + (r * OW + ow) * L, rows * OW * L);
          }
        done(LaneTile{n0, nl, blk * KB, std::min<int64_t>(KB, K - blk * KB), oh0, nrows}, yr, lk);
      }
    }
  });
  return true;
}

}  // namespace conv_direct_detail
}  // namespace lamina
