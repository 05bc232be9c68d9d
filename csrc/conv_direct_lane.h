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
inline thread_local AlignedBuffer tl_lane_v;
inline thread_local AlignedBuffer tl_lane_m;

// The lane taps of one convolution: offsets, weights tap-major per channel block, bias padded
// to whole blocks, and each row's tiles of at most vmax pixels.
template <class T>
struct LaneTapsPlan {
  std::vector<int64_t> off, tile_at;
  std::vector<T> wt, bias;
  int64_t ntaps = 0, nblk = 0, ntiles = 0;
};

template <class T>
LaneTapsPlan<T> lane_taps_plan(const ConvParams& p, const T* w, const T* b, const LaneKernels<T>& lk) {
  const int64_t C = p.C, K = p.K, KH = p.KH, KW = p.KW, L = lk.lanes, KB = lk.kb;
  const int64_t OW = p.OW(), Hp = p.H + 2 * p.pad_h, Wp = p.W + 2 * p.pad_w;
  LaneTapsPlan<T> q;
  q.ntaps = C * KH * KW;
  q.nblk = (K + KB - 1) / KB;
  q.off.resize(static_cast<size_t>(q.ntaps));
  for (int64_t c = 0, t = 0; c < C; ++c)
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw, ++t) q.off[size_t(t)] = ((c * Hp + kh) * Wp + kw) * L;
  // wt[blk][t][kb] = w[blk*KB + kb][t]; bias padded with zeros to whole blocks.
  q.wt.assign(static_cast<size_t>(q.nblk * q.ntaps * KB), T(0));
  q.bias.assign(static_cast<size_t>(q.nblk * KB), T(0));
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t t = 0; t < q.ntaps; ++t) q.wt[size_t(((k / KB) * q.ntaps + t) * KB + k % KB)] = w[k * q.ntaps + t];
    if (b) q.bias[size_t(k)] = b[k];
  }
  // Row tiles of at most vmax pixels, as equal as they come (10 = 3+3+2+2, not 3+3+3+1).
  q.ntiles = (OW + lk.vmax - 1) / lk.vmax;
  q.tile_at.assign(static_cast<size_t>(q.ntiles + 1), 0);
  for (int64_t i = 0; i < q.ntiles; ++i)
    q.tile_at[size_t(i + 1)] = q.tile_at[size_t(i)] + OW / q.ntiles + (i < OW % q.ntiles);
  return q;
}

// One block of lanes images (images bb*lanes ...) through the lane taps, done() per group of rows.
template <class T, class Done>
void lane_taps_block(const ConvParams& p, const T* x, int64_t bb, int64_t rows, const LaneKernels<T>& lk,
                     const LaneTapsPlan<T>& q, Done&& done) {
  const int64_t C = p.C, H = p.H, W = p.W, K = p.K, L = lk.lanes, KB = lk.kb;
  const int64_t OH = p.OH(), OW = p.OW(), Hp = H + 2 * p.pad_h, Wp = W + 2 * p.pad_w;
  const int64_t n0 = bb * L, nl = std::min(L, p.N - n0);
  T* xt = tl_lane_xt.elems<T>(C * Hp * Wp * L);
  if (p.pad_h > 0 || p.pad_w > 0) std::memset(xt, 0, sizeof(T) * size_t(C * Hp * Wp * L));
  const T* xn0 = x + n0 * C * H * W;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t h = 0; h < H; ++h)
      lk.gather(xn0 + (c * H + h) * W, C * H * W, W, nl, xt + ((c * Hp + h + p.pad_h) * Wp + p.pad_w) * L);
  T* yr = tl_lane_yr.elems<T>(KB * rows * OW * L);
  for (int64_t blk = 0; blk < q.nblk; ++blk) {
    const T* wb = q.wt.data() + blk * q.ntaps * KB;
    const T* bias_blk = q.bias.data() + blk * KB;
    for (int64_t oh0 = 0; oh0 < OH; oh0 += rows) {
      const int64_t nrows = std::min(rows, OH - oh0);
      for (int64_t r = 0; r < nrows; ++r)
        for (int64_t i = 0; i < q.ntiles; ++i) {
          const int64_t ow = q.tile_at[size_t(i)], v = q.tile_at[size_t(i + 1)] - ow;
          lk.by_v[v](xt + ((oh0 + r) * Wp + ow) * L, q.off.data(), q.ntaps, wb, bias_blk, yr + (r * OW + ow) * L,
                     rows * OW * L);
        }
      done(LaneTile{n0, nl, blk * KB, std::min<int64_t>(KB, K - blk * KB), oh0, nrows}, yr, lk);
    }
  }
}

// Row Winograd F(4, 5) on the lanes: each output row is the sum over (c, kh) of 1-D
// correlations of input row oh + kh with the filter row w[k][c][kh][:], and each 1-D
// correlation of 4 outputs is A^T [(G g) .* (B^T d)] over 8 inputs d: 8 multiplies per 4
// outputs instead of 20. Float32 error in a C3-like sum (numpy model): about twice the taps'
// (F(2, 5) 1.6x; F(5, 5) and F(6, 5) with +-3 as the extra points 17x and 32x, so not those).
// Points 0, +-1, +-2, +-1/2, infinity:
//   B^T (rows scaled by 1, -9/2, 9/2, 180, -180, 45/64, -45/64, 1; G's by the inverses):
//     1 0 -21/4 0 21/4 0 -1 0 | 0 1 1 -17/4 -17/4 1 1 0 | 0 1 -1 -17/4 17/4 1 -1 0 |
//     0 1 1/2 -5 -5/2 4 2 0 | 0 1 -1/2 -5 5/2 4 -2 0 | 0 1 2 -5/4 -5/2 1/4 1/2 0 |
//     0 1 -2 -5/4 5/2 1/4 -1/2 0 | 0 -1 0 21/4 0 -21/4 0 1
//   G (8 x 5) in kWinoG below; A^T in lane_wino_out (conv_direct_kernel.h).
// The sum over (c, kh) runs in the transform domain on the lane kernels themselves, with the
// C*KH (c, kh) pairs as taps and the (output row, tile) positions as pixels:
//   V (8, C, Hp, ntiles, L) = B^T of every tile of every input row
//   M[e] (KB, positions)    = lane kernel over taps t = (c, kh): U[e][t] . V[e][c][oh + kh][j]
//   yr rows                 = A^T M + bias, in the groups of `rows` output rows done() takes.
inline constexpr double kWinoG[8][5] = {
    {1, 0, 0, 0, 0},
    {-2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9},
    {2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9},
    {1.0 / 180, 1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45},
    {-1.0 / 180, 1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45},
    {64.0 / 45, 32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45},
    {-64.0 / 45, 32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45},
    {0, 0, 0, 0, 1}};

// A block whose input holds an inf or NaN runs on the lane taps instead (taps_plan): the
// transforms would mix it into every output of its tiles, where PyTorch's and the taps' sums
// keep it to the windows that read it (an inf at one column turned outputs 4-6 columns away
// into NaN, and +-inf into NaN).
template <class T, class Done>
void lane_winograd_forward(const ConvParams& p, const T* x, const T* w, const T* b, int64_t rows,
                           const LaneKernels<T>& lk, const LaneTapsPlan<T>& taps_plan, Done&& done) {
  const int64_t C = p.C, H = p.H, W = p.W, K = p.K, KH = p.KH, L = lk.lanes, KB = lk.kb;
  const int64_t OH = p.OH(), OW = p.OW(), Hp = H + 2 * p.pad_h;
  const int64_t ntiles = (OW + 3) / 4, Wx = 4 * ntiles + 4;   // the last tile reads 8 columns
  const int64_t taps = C * KH, nblk = (K + KB - 1) / KB, nbb = (p.N + L - 1) / L;
  const int64_t npos = OH * ntiles, ngroups = (OH + rows - 1) / rows, ldv = C * Hp * ntiles * L;
  const int64_t vmax = lk.vmax;
  std::vector<int64_t> off(static_cast<size_t>(taps));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t kh = 0; kh < KH; ++kh) off[size_t(c * KH + kh)] = (c * Hp + kh) * ntiles * L;
  // U[blk][e][t][kb] = (G g)[e] for g = w[blk*KB + kb][c][kh][:], zero for padding channels.
  std::vector<T> U(static_cast<size_t>(nblk * 8 * taps * KB), T(0)), bias(static_cast<size_t>(nblk * KB), T(0));
  const std::vector<T> zeros(static_cast<size_t>(KB), T(0));
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t t = 0; t < taps; ++t) {
      const T* g = w + (k * taps + t) * 5;
      for (int e = 0; e < 8; ++e) {
        double u = 0;
        for (int i = 0; i < 5; ++i) u += kWinoG[e][i] * double(g[i]);
        U[size_t((((k / KB) * 8 + e) * taps + t) * KB + k % KB)] = T(u);
      }
    }
    if (b) bias[size_t(k)] = b[k];
  }
  const double flops = 2.0 * double(K) * double(taps * 5) * double(OH * OW) * double(p.N);
  parallel_tasks(nbb, team_size(flops, 2e5), [&](int64_t bb) {
    const int64_t n0 = bb * L, nl = std::min(L, p.N - n0);
    T* xt = tl_lane_xt.elems<T>(C * Hp * Wx * L);   // (C, Hp, Wx, L), zero past the image
    std::memset(xt, 0, sizeof(T) * size_t(C * Hp * Wx * L));
    const T* xn0 = x + n0 * C * H * W;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        lk.gather(xn0 + (c * H + h) * W, C * H * W, W, nl, xt + ((c * Hp + h + p.pad_h) * Wx + p.pad_w) * L);
    // checked here, in cache just after the gather (a pass over x itself cost 2-3% of C3)
    if (!lk.all_finite(xt, C * Hp * Wx * L)) {
      lane_taps_block(p, x, bb, rows, lk, taps_plan, done);
      return;
    }
    T* V = tl_lane_v.elems<T>(8 * ldv);
    for (int64_t r = 0; r < C * Hp; ++r) lk.wino_in(xt + r * Wx * L, ntiles, V + r * ntiles * L, ldv);
    T* yr = tl_lane_yr.elems<T>(ngroups * KB * rows * OW * L);   // (ngroups, KB, rows, OW, L)
    T* M = tl_lane_m.elems<T>(8 * KB * vmax * L);                 // (8, KB, vmax, L)
    for (int64_t blk = 0; blk < nblk; ++blk) {
      const int64_t kn = std::min<int64_t>(KB, K - blk * KB);
      for (int64_t p0 = 0; p0 < npos; p0 += vmax) {
        const int64_t v = std::min(vmax, npos - p0);
        for (int e = 0; e < 8; ++e)
          lk.by_v[v](V + e * ldv + p0 * L, off.data(), taps, U.data() + (blk * 8 + e) * taps * KB, zeros.data(),
                     M + e * KB * vmax * L, vmax * L);
        for (int64_t i = 0; i < v; ++i) {
          const int64_t oh = (p0 + i) / ntiles, ow0 = 4 * ((p0 + i) % ntiles), g = oh / rows, r = oh % rows;
          for (int64_t kb = 0; kb < kn; ++kb)
            lk.wino_out(M + (kb * vmax + i) * L, KB * vmax * L, bias[size_t(blk * KB + kb)], std::min<int64_t>(4, OW - ow0),
                        yr + (((g * KB + kb) * rows + r) * OW + ow0) * L);
        }
      }
      for (int64_t g = 0; g < ngroups; ++g)
        done(LaneTile{n0, nl, blk * KB, kn, g * rows, std::min(rows, OH - g * rows)}, yr + g * KB * rows * OW * L, lk);
    }
  });
}

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
  const LaneTapsPlan<T> plan = lane_taps_plan<T>(p, w, b, lk);
  if (lane_winograd_preferred(p)) {
    lane_winograd_forward<T>(p, x, w, b, rows, lk, plan, done);
    return true;
  }
  const double flops = 2.0 * double(p.K) * double(plan.ntaps) * double(p.OH() * p.OW()) * double(p.N);
  parallel_tasks((p.N + lk.lanes - 1) / lk.lanes, team_size(flops, 2e5),
                 [&](int64_t bb) { lane_taps_block(p, x, bb, rows, lk, plan, done); });
  return true;
}

}  // namespace conv_direct_detail
}  // namespace lamina
