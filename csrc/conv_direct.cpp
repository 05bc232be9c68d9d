// Direct convolution for few input channels (see conv_direct.h for the wide-output trick).
//
// Per image (a task on the thread team):
//   xp (C, Hp, Wp) + zero slack  <- x_n zero-padded; only the interior is rewritten per image,
//                                   the borders stay zero from the first fill (same geometry)
//   per block of KB output channels:
//     yw (KB, Qpad)  = the micro-kernel over all taps, Q = OH * Wp wide outputs
//     y_n[k] rows    = yw[k][oh*Wp : oh*Wp + OW] + b[k], then the activation
#include "conv_direct.h"
#include "conv_direct_lane.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "activation.h"
#include "cpu.h"
#include "thread_team.h"
#include "workspace.h"

namespace lamina {

using conv_direct_detail::DirectKernel;
using conv_direct_detail::DirectShape;

namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Portable kernel: the same contract with plain loops the compiler vectorizes over q, one
// output channel at a time (KB = 1).
template <class T>
void direct_portable(const T* xp, const int64_t* off, int64_t ntaps, const T* wt, T* yw, int64_t ldy,
                     int64_t nvec) {
  (void)ldy;
  const int64_t n = nvec * 8;  // lanes = 8 in the portable shape
  for (int64_t q = 0; q < n; ++q) yw[q] = T(0);
  for (int64_t t = 0; t < ntaps; ++t) {
    const T wv = wt[t];
    const T* src = xp + off[t];
    for (int64_t q = 0; q < n; ++q) yw[q] += wv * src[q];
  }
}

template <class T>
DirectKernel<T> select_kernel(int64_t K, DirectShape* s) {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx512) return conv_direct_detail::direct_kernel_avx512<T>(K, s);
  if (active_isa() >= Isa::avx2) return conv_direct_detail::direct_kernel_avx2<T>(K, s);
#endif
  *s = {1, 1, 8};
  return direct_portable<T>;
}

// The padded input of the calling thread, tagged with its geometry: a call with the same
// geometry finds the zero borders and slack still in place and rewrites only the interior.
struct PaddedInput {
  AlignedBuffer buf;
  int64_t tag[7] = {-1, -1, -1, -1, -1, -1, -1};
};
thread_local PaddedInput tl_xp;
thread_local AlignedBuffer tl_yw;

}  // namespace

bool conv_direct_applicable(const ConvParams& p) {
  return p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 && p.groups == 1 &&
         p.OH() > 0 && p.OW() > 0;
}

// Measured on an AVX-512 Xeon, 1 thread, thread CPU time, against im2col + GEMM on the same
// build (f32, N = 64): C1 1 -> 6 28x28 5x5 pad 2 0.449 -> 0.156 ms; C3 6 -> 16 14x14 5x5
// 0.568 -> 0.307; 3 -> 16 32x32 3x3 pad 1 1.19 -> 0.63; 8 -> 32 16x16 3x3 1.15 -> 0.69;
// 16 -> 16 14x14 5x5 1.44 -> 0.83 (f64 alike). Deeper layers are the GEMM's (and Winograd's,
// which conv2d_forward tries first).
bool conv_direct_preferred(const ConvParams& p) {
  const ConvAlgo a = conv_get_algo();
  if (!conv_direct_applicable(p)) return false;
  if (a == ConvAlgo::direct) return true;
  if (a != ConvAlgo::automatic || active_isa() < Isa::avx2) return false;
  const int64_t Wp = p.W + 2 * p.pad_w;
  // Few input and output channels, and at least half of each wide row useful.
  return p.C <= 16 && p.K <= 32 && p.KH * p.KW >= 9 && 2 * p.OW() >= Wp;
}

namespace {
std::atomic<int> g_row_winograd{0};
}
void conv_direct_set_row_winograd(int mode) { g_row_winograd.store(mode); }
int conv_direct_row_winograd_mode() { return g_row_winograd.load(); }
namespace {
std::atomic<int> g_lane_gather{0};
}
// The C1 data gradient (dy 6 -> 1 channel, 28x28, 5x5 pad 2), f32, 1 thread, thread CPU time,
// min of 12-15 interleaved calls, on an AVX-512 Xeon: im2col + GEMM 2003 us (N=256), 488 (N=64);
// lane taps (4 x 6, one channel of 4 used) 1877; lane row Winograd 1782; wide rows with a
// 1 x 14 kernel 1178, 290 (1 x 28 1147, 265; 1 x 24 1379, 331: 24 leaves 16 of 72 vectors
// idle). Zen 4 unmeasured: it keeps the lanes and im2col. The row Winograd hook's 'on' keeps
// the lanes too, so that row Winograd runs wherever it applies.
bool conv_direct_one_channel_wide() {
  return active_isa() >= Isa::avx512 && std::strcmp(cpu_info().vendor, "GenuineIntel") == 0 &&
         g_row_winograd.load() != 1;
}

void conv_direct_set_lane_gather(int mode) { g_lane_gather.store(mode); }
int conv_direct_lane_gather_mode() { return g_lane_gather.load(); }

namespace conv_direct_detail {
// Measured on Zen 4 (AMD EPYC, AVX-512 on 256-bit units), 1 thread, thread CPU time, against
// the lane taps on the same build: C3 6 -> 16 14x14 5x5 f32 N=64 299 -> 195 us, N=256 1237 ->
// 777 us (the lane kernel runs at the FMA peak either way; 115k instead of 240k FMAs per 16
// images). On AVX2 (8 lanes; measured on the same Zen 4 with AVX-512 hidden by the hypervisor,
// 1 thread, thread CPU time, against the wide rows AVX2 ran before, f32): C3 forward N=64
// 558 -> 298 us, N=256 2210 -> 1159 us; dx N=256 2013 -> 1741 us, dw + db 1634 -> 1169 us.
// On an AVX-512 Xeon (Sapphire Rapids class, full-width FMA units), 1 thread, thread CPU
// time, f32, min of 10-30 interleaved calls in one process, taps -> row Winograd: C3 forward
// N=64 206 -> 177 us, N=256 836 -> 724; fused conv+relu+pool 216 -> 186, 849 -> 734; dx 280
// -> 249, 1126 -> 1030; dw + db 247 -> 242, 948 -> 866. C1 (5 (c, kh) taps) loses there as on
// Zen 4: forward N=256 653 -> 854, dw + db 734 -> 1004; the passes' shape rules keep its taps.
// Other vendors' AVX-512 cores are unmeasured and keep the taps.
int row_winograd_gate(const ConvParams& p) {
  if (p.KW != 5 || !conv_direct_applicable(p)) return 0;
  const int mode = g_row_winograd.load();
  if (mode != 0) return mode == 1 ? 1 : 0;
  if (conv_get_algo() != ConvAlgo::automatic) return 0;
  if (active_isa() == Isa::avx2) return -1;   // AVX2's 8 lanes: measured above
  if (active_isa() < Isa::avx512) return 0;
  const char* v = cpu_info().vendor;
  if (std::strcmp(v, "AuthenticAMD") != 0 && std::strcmp(v, "GenuineIntel") != 0) return 0;
  return -1;
}

bool lane_winograd_preferred(const ConvParams& p) {
  if (const int gate = row_winograd_gate(p); gate >= 0) return gate == 1;
  // Enough (c, kh) taps to feed the lane kernel (C1's 5 do not), rows of at least 2 tiles.
  return p.C * p.KH >= 16 && p.OW() >= 8;
}
}  // namespace conv_direct_detail

// The batch-lane path (conv_direct_lane.h) for batches that fill the lanes: y scattered back
// from each group's rows, then the activation per plane.
template <class T>
bool lane_direct_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y, Act act) {
  const int64_t K = p.K, OH = p.OH(), OW = p.OW(), L = conv_direct_detail::lane_width<T>();
  // Measured (AVX-512 Xeon, 1 thread, N = 256, CPU time): C3 (150 taps) 1.41 -> 1.06 ms on
  // lanes, but C1 (25 taps) 0.76 -> 1.5 ms: the transposes in and out cost about as much as
  // 60 taps. AVX2 keeps the wide rows for the taps (unmeasured there); row Winograd
  // (lane_winograd_preferred) is measured on AVX2, Zen 4 and Xeon (row_winograd_gate).
  // Row Winograd (lane_winograd_preferred) runs on the lanes alone.
  if (!conv_direct_detail::lane_winograd_preferred(p) && (p.C * p.KH * p.KW < 64 || active_isa() < Isa::avx512))
    return false;
  if (p.K == 1 && conv_direct_one_channel_wide()) return false;   // the wide rows' 1 x 14 kernel
  const bool has_act = act != Act::identity;
  const Activation kind = act == Act::relu ? Activation::relu
                          : act == Act::sigmoid ? Activation::sigmoid : Activation::tanh;
  using conv_direct_detail::LaneKernels;
  using conv_direct_detail::LaneTile;
  // Whole planes per group where they fit in L2 (one scatter per channel, whole 16-pixel
  // transposes: C3's 10-wide rows left 6 of 16 lanes of each transpose idle).
  const int64_t rows = OH * OW * 8 * 16 * int64_t(sizeof(T)) <= (int64_t(256) << 10) ? OH : 1;
  return conv_direct_detail::lane_forward<T>(p, x, w, b, rows, [&](const LaneTile& t, const T* yr, const LaneKernels<T>& lk) {
    // yr (kn, rows, OW, L) -> y[n0 + l][k0 + kb][oh0 : oh0 + nrows][:]
    for (int64_t kb = 0; kb < t.kn; ++kb)
      lk.scatter(yr + kb * rows * OW * L, t.nrows * OW, t.nl, y + (t.n0 * K + t.k0 + kb) * OH * OW + t.oh0 * OW,
                 K * OH * OW);
    if (has_act && t.oh0 + t.nrows == OH)
      for (int64_t l = 0; l < t.nl; ++l)
        for (int64_t kb = 0; kb < t.kn; ++kb) {
          T* plane = y + ((t.n0 + l) * K + t.k0 + kb) * OH * OW;
          act_forward<T>(kind, OH * OW, plane, plane);
        }
  });
}

template <class T>
void conv2d_direct_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y, Act act) {
  if (p.N == 0) return;
  if (lane_direct_forward(p, x, w, b, y, act)) return;
  const int64_t C = p.C, H = p.H, W = p.W, K = p.K, KH = p.KH, KW = p.KW;
  const int64_t OH = p.OH(), OW = p.OW(), Hp = H + 2 * p.pad_h, Wp = W + 2 * p.pad_w;
  const int64_t plane = Hp * Wp, ntaps = C * KH * KW;
  if (p.N == 0) return;
  DirectShape s;
  const DirectKernel<T> kern = select_kernel<T>(K, &s);
  const int64_t KB = s.kb, nblk = ceil_div(K, KB);
  const int64_t nvec = ceil_div(ceil_div(OH * Wp, s.lanes), s.vecs) * s.vecs;
  const int64_t Qpad = nvec * s.lanes;
  // The last tap reads up to (C-1)*plane + (KH-1)*Wp + KW-1 + Qpad - 1: zero slack past the planes.
  const int64_t xp_len = std::max(C * plane, (C - 1) * plane + (KH - 1) * Wp + KW - 1 + Qpad);

  std::vector<int64_t> off(static_cast<size_t>(ntaps));
  for (int64_t c = 0, t = 0; c < C; ++c)
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw, ++t) off[size_t(t)] = c * plane + kh * Wp + kw;
  // wt[blk][t][kb] = w[blk*KB + kb][t], zero for the padding channels past K.
  std::vector<T> wt(static_cast<size_t>(nblk * ntaps * KB), T(0));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t t = 0; t < ntaps; ++t)
      wt[size_t(((k / KB) * ntaps + t) * KB + k % KB)] = w[k * ntaps + t];

  const bool has_act = act != Act::identity;
  const Activation kind = act == Act::relu ? Activation::relu
                          : act == Act::sigmoid ? Activation::sigmoid : Activation::tanh;
  const double flops = 2.0 * double(K) * double(ntaps) * double(OH * OW) * double(p.N);
  parallel_tasks(p.N, team_size(flops, 2e5), [&](int64_t n) {
    const int64_t tag[7] = {C, H, W, p.pad_h, p.pad_w, xp_len, int64_t(sizeof(T))};
    T* xp = tl_xp.buf.elems<T>(xp_len);
    if (!std::equal(tag, tag + 7, tl_xp.tag)) {
      std::memset(xp, 0, sizeof(T) * size_t(xp_len));
      std::copy(tag, tag + 7, tl_xp.tag);
    }
    const T* xn = x + n * C * H * W;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        std::memcpy(xp + c * plane + (h + p.pad_h) * Wp + p.pad_w, xn + (c * H + h) * W, sizeof(T) * size_t(W));
    T* yw = tl_yw.elems<T>(KB * Qpad);
    for (int64_t blk = 0; blk < nblk; ++blk) {
      kern(xp, off.data(), ntaps, wt.data() + blk * ntaps * KB, yw, Qpad, nvec);
      for (int64_t kb = 0; kb < KB && blk * KB + kb < K; ++kb) {
        const int64_t k = blk * KB + kb;
        const T bk = b ? b[k] : T(0);
        T* yk = y + (n * K + k) * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const T* src = yw + kb * Qpad + oh * Wp;
          T* dst = yk + oh * OW;
          for (int64_t ow = 0; ow < OW; ++ow) dst[ow] = src[ow] + bk;
        }
        if (has_act) act_forward<T>(kind, OH * OW, yk, yk);
      }
    }
  });
}

template void conv2d_direct_forward<float>(const ConvParams&, const float*, const float*, const float*, float*, Act);
template void conv2d_direct_forward<double>(const ConvParams&, const double*, const double*, const double*, double*, Act);

}  // namespace lamina
