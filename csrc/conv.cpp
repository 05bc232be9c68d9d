// Convolution through im2col + GEMM (see conv.h for the math and the memory bound).
// Threading: one level. With enough images we run images (or chunks of images) on threads
// and each GEMM runs inside that thread; with a single image the loop is serial and the
// GEMM parallelizes itself.
#include "conv.h"

#include <algorithm>
#include <atomic>
#include <initializer_list>
#include <utility>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "conv_direct.h"
#include "conv_direct_bwd.h"
#include "gemm.h"
#include "thread_team.h"
#include "workspace.h"

namespace lamina {

const char* conv_params_error(const ConvParams& p) {
  if (p.N < 0) return "N: expected >= 0";
  if (p.C <= 0) return "C: expected > 0 input channels";
  if (p.K <= 0) return "K: expected > 0 output channels";
  if (p.H <= 0 || p.W <= 0) return "input: spatial size must be > 0";
  if (p.KH <= 0 || p.KW <= 0) return "kernel_size: expected > 0";
  if (p.stride_h <= 0 || p.stride_w <= 0) return "stride: expected > 0";
  if (p.pad_h < 0 || p.pad_w < 0) return "padding: expected >= 0";
  if (p.dil_h <= 0 || p.dil_w <= 0) return "dilation: expected > 0";
  if (p.groups <= 0) return "groups: expected > 0";
  if (p.C % p.groups) return "groups: input channels must be divisible by groups";
  if (p.K % p.groups) return "groups: output channels must be divisible by groups";
  if (p.H + 2 * p.pad_h < p.dil_h * (p.KH - 1) + 1 || p.W + 2 * p.pad_w < p.dil_w * (p.KW - 1) + 1)
    return "kernel_size: (dilated) kernel is larger than the padded input";
  return "";
}

// Each thread keeps one growable workspace across calls: no allocation per image.
template <class T>
static T* thread_workspace(int64_t n) {
  static thread_local AlignedBuffer buf;
  return buf.elems<T>(n);
}

// Smallest o >= 0 with o*s >= a (a may be negative).
static inline int64_t first_at_least(int64_t a, int64_t s) { return a <= 0 ? 0 : (a + s - 1) / s; }

// Output columns [lo, hi) whose tap (kw) lands inside [0, W).
static inline void valid_range(int64_t W, int64_t pad, int64_t k, int64_t dil, int64_t s,
                               int64_t OW, int64_t* lo, int64_t* hi) {
  int64_t a = first_at_least(pad - k * dil, s);
  int64_t b = first_at_least(W + pad - k * dil, s);
  *lo = std::min(a, OW);
  *hi = std::max(*lo, std::min(b, OW));
}

static inline bool is_pointwise(const ConvParams& p) {
  return p.KH == 1 && p.KW == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
}

#if defined(LAMINA_X86)
// conv_im2col_avx2.cpp: runs of n contiguous floats, `rows` times (row strides in elements).
void copy_rows_f32_avx2(float* dst, int64_t dst_rs, const float* src, int64_t src_rs, int64_t n, int64_t rows);
void add_rows_f32_avx2(float* dst, int64_t dst_rs, const float* src, int64_t src_rs, int64_t n, int64_t rows);
#endif

// dst rows (dst_rs apart) = src rows (src_rs apart), n elements each.
template <class T>
static inline void copy_rows(T* __restrict dst, int64_t dst_rs, const T* __restrict src, int64_t src_rs,
                             int64_t n, int64_t rows) {
#if defined(LAMINA_X86)
  if constexpr (sizeof(T) == 4)
    if (active_isa() >= Isa::avx2) return copy_rows_f32_avx2(dst, dst_rs, src, src_rs, n, rows);
#endif
  for (int64_t i = 0; i < rows; ++i, dst += dst_rs, src += src_rs)
    for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
}

// dst rows += src rows, n elements each.
template <class T>
static inline void add_rows(T* __restrict dst, int64_t dst_rs, const T* __restrict src, int64_t src_rs,
                            int64_t n, int64_t rows) {
#if defined(LAMINA_X86)
  if constexpr (sizeof(T) == 4)
    if (active_isa() >= Isa::avx2) return add_rows_f32_avx2(dst, dst_rs, src, src_rs, n, rows);
#endif
  for (int64_t i = 0; i < rows; ++i, dst += dst_rs, src += src_rs)
    for (int64_t j = 0; j < n; ++j) dst[j] += src[j];
}

// im2col into rows that are `ld` apart (ld >= OH*OW): several images side by side share one
// column matrix, so one GEMM covers them all. Plain loops (no memcpy calls): rows are short.
// Only output rows [oh0, oh1) are written (a row chunk of a big map stays cache-resident).
// The in-image row range and column range of each tap are computed once, so the inner loop
// is a plain copy (rows are short: per-row branches would cost more than the copy).
template <class T>
static void im2col_ld(const ConvParams& p, const T* x, T* col, int64_t ld, int64_t oh0, int64_t oh1) {
  const int64_t OH = p.OH(), OW = p.OW(), H = p.H, W = p.W, sh = p.stride_h, sw = p.stride_w;
  for (int64_t c = 0; c < p.C; ++c) {
    const T* xc = x + c * H * W;
    for (int64_t kh = 0; kh < p.KH; ++kh) {
      int64_t hlo, hhi;  // output rows whose tap kh lands inside [0, H)
      valid_range(H, p.pad_h, kh, p.dil_h, sh, OH, &hlo, &hhi);
      hlo = std::min(std::max(hlo, oh0), oh1);
      hhi = std::max(std::min(hhi, oh1), hlo);
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        T* row = col + ((c * p.KH + kh) * p.KW + kw) * ld;  // row (c, kh, kw): (oh1-oh0, OW)
        int64_t lo, hi;
        valid_range(W, p.pad_w, kw, p.dil_w, sw, OW, &lo, &hi);
        std::fill(row, row + (hlo - oh0) * OW, T(0));                   // rows above the image
        std::fill(row + (hhi - oh0) * OW, row + (oh1 - oh0) * OW, T(0));  // rows below
        if (hlo == hhi) continue;
        // src[(ow - lo) * sw] is the tap of output (hlo, ow)
        const T* __restrict src = xc + (hlo * sh - p.pad_h + kh * p.dil_h) * W + lo * sw - p.pad_w + kw * p.dil_w;
        T* __restrict r = row + (hlo - oh0) * OW;
        if (sw == 1) {
          if (lo > 0 || hi < OW)  // columns whose tap falls in the left / right padding
            for (int64_t oh = hlo; oh < hhi; ++oh) {
              T* ro = r + (oh - hlo) * OW;
              for (int64_t ow = 0; ow < lo; ++ow) ro[ow] = T(0);
              for (int64_t ow = hi; ow < OW; ++ow) ro[ow] = T(0);
            }
          copy_rows(r + lo, OW, src, sh * W, hi - lo, hhi - hlo);
        } else {
          for (int64_t oh = hlo; oh < hhi; ++oh, r += OW, src += sh * W) {
            for (int64_t ow = 0; ow < lo; ++ow) r[ow] = T(0);
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] = src[(ow - lo) * sw];
            for (int64_t ow = hi; ow < OW; ++ow) r[ow] = T(0);
          }
        }
      }
    }
  }
}

// dx (C, H, W) += scatter of col rows `ld` apart holding output rows [oh0, oh1)
// (the adjoint of im2col_ld).
template <class T>
static void col2im_ld(const ConvParams& p, const T* col, int64_t ld, T* dx, int64_t oh0, int64_t oh1) {
  const int64_t OH = p.OH(), OW = p.OW(), H = p.H, W = p.W, sh = p.stride_h, sw = p.stride_w;
  for (int64_t c = 0; c < p.C; ++c) {
    T* dxc = dx + c * H * W;
    for (int64_t kh = 0; kh < p.KH; ++kh) {
      int64_t hlo, hhi;
      valid_range(H, p.pad_h, kh, p.dil_h, sh, OH, &hlo, &hhi);
      hlo = std::min(std::max(hlo, oh0), oh1);
      hhi = std::max(std::min(hhi, oh1), hlo);
      if (hlo == hhi) continue;
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        const T* row = col + ((c * p.KH + kh) * p.KW + kw) * ld;
        int64_t lo, hi;
        valid_range(W, p.pad_w, kw, p.dil_w, sw, OW, &lo, &hi);
        T* __restrict d = dxc + (hlo * sh - p.pad_h + kh * p.dil_h) * W + lo * sw - p.pad_w + kw * p.dil_w;
        const T* __restrict r = row + (hlo - oh0) * OW + lo;
        const int64_t n = hi - lo;
        if (sw == 1) {
          add_rows(d, sh * W, r, OW, n, hhi - hlo);
        } else {
          for (int64_t oh = hlo; oh < hhi; ++oh, r += OW, d += sh * W)
            for (int64_t i = 0; i < n; ++i) d[i * sw] += r[i];
        }
      }
    }
  }
}

template <class T>
void im2col(const ConvParams& p, const T* x, T* col) { im2col_ld(p, x, col, p.OH() * p.OW(), 0, p.OH()); }

template <class T>
void col2im(const ConvParams& p, const T* col, T* dx) { col2im_ld(p, col, p.OH() * p.OW(), dx, 0, p.OH()); }

namespace {
// How the batch is cut: blocks of `nb` images share one column matrix (CKK, nb*P) so small
// feature maps still give the GEMM >= ~512 columns; the block's column matrix stays <= 1 MiB.
// A single big image is cut instead into chunks of `rows` output rows (column matrix
// <= kColBytes, >= ~256 columns) so im2col's output is still in cache when the GEMM reads it.
constexpr size_t kColBytes = size_t(2) << 20;
struct Blocking {
  int64_t P, CKK, CKKg, Kg, nb, nblocks, rows;
};
template <class T>
Blocking block_images(const ConvParams& p) {
  Blocking b;
  b.P = p.OH() * p.OW();
  b.CKK = p.C * p.KH * p.KW;
  b.CKKg = b.CKK / p.groups;
  b.Kg = p.K / p.groups;
  int64_t nb = b.P >= 512 ? 1 : (512 + b.P - 1) / b.P;
  const int64_t cap = std::max<int64_t>(1, (int64_t(1) << 20) / (sizeof(T) * b.CKK * std::max<int64_t>(b.P, 1)));
  b.nb = std::max<int64_t>(1, std::min({nb, cap, p.N}));
  b.nblocks = p.N == 0 ? 0 : (p.N + b.nb - 1) / b.nb;
  const int64_t OH = p.OH(), OW = std::max<int64_t>(p.OW(), 1);
  b.rows = OH;
  if (b.nb == 1) {
    const int64_t cols = static_cast<int64_t>(kColBytes / (sizeof(T) * b.CKK));
    b.rows = std::min(OH, std::max({cols / OW, (256 + OW - 1) / OW, int64_t(1)}));
  }
  return b;
}
}  // namespace

// The data gradient of a stride-1, dilation-1, groups-1 convolution as a forward convolution:
// input dy (N, K, OH, OW), K -> C channels, padding KH-1-pad (negative: not expressible).
static ConvParams transposed_conv_params(const ConvParams& p) {
  ConvParams q = p;
  q.C = p.K; q.K = p.C; q.H = p.OH(); q.W = p.OW();
  q.pad_h = p.KH - 1 - p.pad_h; q.pad_w = p.KW - 1 - p.pad_w;
  return q;
}

// Winograd where it applies and the GEMMs are deep enough to pay for the tile transforms.
// Measured (1 thread, 3x3 pad 1): forward wins from C = K = 16 on maps >= 8x8 (loses on 4x4
// maps and for C = 3); the backward pair only from C = K = 64 on maps >= 14x14 (at C = K = 16
// .. 32 or 8x8 maps it ties or loses to im2col).
// The Winograd output tile for p: 0 (not Winograd), 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3)).
// The weight gradient runs on the same tile as the data gradient (backward = true).
static int winograd_tile(const ConvParams& p, bool backward) {
  const ConvAlgo a = conv_get_algo();
  if (a == ConvAlgo::im2col || a == ConvAlgo::direct || !conv_winograd_applicable(p)) return 0;
  if (a == ConvAlgo::winograd) return 2;
  if (a == ConvAlgo::winograd4) return 4;
  const bool wino = backward ? p.C >= 64 && p.K >= 64 && p.OH() * p.OW() >= 196
                             : p.C >= 16 && p.K >= 16 && p.OH() >= 8 && p.OW() >= 8;
  if (!wino) return 0;
  // F(4x4) measured faster (1 thread, Xeon, ms fwd F2 -> F4) up to 128 channels: 64x32x32
  // N=32 15.8 -> 11.1, 64x8x8 N=64 4.6 -> 3.9, 32x32x32 3.0 -> 2.3, 128x56x56 N=8 39.4 -> 31.0;
  // not on 256x14x14 N=8 (17.0 -> 18.3). NOTE: but its float32 error grows with the channels
  // summed: nn.Conv2d's default init, N(0, 1) input, max |y - y64| 6e-6 at 64 channels and
  // 1.5e-5 at 128 (F(2x2) and im2col ~1.5e-6), over torch.testing's float32 atol of 1e-5 --
  // so F(4x4) only up to 64 channels.
  return std::max(p.C, p.K) <= 64 ? 4 : 2;
}
static bool use_winograd(const ConvParams& p, bool backward) { return winograd_tile(p, backward) != 0; }
// The weight gradient's tile: the data gradient's, but F(4x4) by the automatic rule only on
// Intel, where it was measured (Xeon, mid 64x32x32 N=32, 1 thread: 14.9 -> 11.6 ms); other
// CPUs keep F(2x2)'s results until measured there.
static int winograd_dw_tile(const ConvParams& p) {
  const int m = winograd_tile(p, true);
  if (m == 4 && conv_get_algo() == ConvAlgo::automatic && std::strcmp(cpu_info().vendor, "GenuineIntel") != 0)
    return 2;
  return m;
}

// Winograd's transforms add and subtract across a whole tile, so one inf or NaN in an operand
// would make outputs that never read it NaN (and turn inf into NaN). Operands holding one take
// the im2col path, which sums each output's own window only, as PyTorch does. The check is one
// pass over each operand (in chunks, on the thread team): a few percent of the convolution.
template <class T>
static bool winograd_operands_finite(std::initializer_list<std::pair<const T*, int64_t>> operands) {
  constexpr int64_t kChunk = int64_t(1) << 16;
  for (const auto& [a, n] : operands) {
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::atomic<bool> bad{false};
    parallel_tasks(chunks, team_size(double(n), 1e6), [&](int64_t c) {
      if (bad.load(std::memory_order_relaxed)) return;
      const int64_t i0 = c * kChunk;
      if (!conv_direct_detail::all_finite(a + i0, std::min(kChunk, n - i0)))
        bad.store(true, std::memory_order_relaxed);
    });
    if (bad.load()) return false;
  }
  return true;
}

// y = the 3x3 conv of x (N, C, H, W) with w (K, C, 3, 3) on the Winograd path of tile m;
// flip_transpose: w's rotated, transposed filters (K <-> C), for the data gradient.
// F(2x2) needs finite operands (the caller checks them first); F(4x4) checks its output rows
// instead, while they are in cache, and returns false when one holds an inf or NaN: an inf or
// NaN operand always leaves one there (each input the exact conv reads reaches that output
// through the transforms: inf * u is inf or NaN, sums of them never finite), so y is then
// recomputed on the exact path. That saves a pass over x / dy (8 MB on the mid layer: ~0.5 ms).
template <class T>
static bool winograd_conv(int m, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad_h,
                          int64_t pad_w, const T* x, const T* w, bool flip_transpose, const T* b, T* y, Act act) {
  const int64_t Kw = flip_transpose ? C : K, Cw = flip_transpose ? K : C;  // w's (K, C)
  // U in a buffer kept across calls: a fresh one (0.6 MiB for 64 x 64 channels) cost page
  // faults every call. Its own buffer: the Winograd jobs use the thread's other workspaces.
  static thread_local AlignedBuffer U_buf;
  T* U = U_buf.elems<T>((m == 4 ? 36 : 16) * K * C);
  if (m == 4) {
    winograd4_weights(w, Kw, Cw, flip_transpose, U);
    return conv2d_winograd4(N, C, H, W, K, pad_h, pad_w, x, U, b, y, act);
  }
  winograd_weights(w, Kw, Cw, flip_transpose, U);
  conv2d_winograd(N, C, H, W, K, pad_h, pad_w, x, U, b, y, act);
  return true;
}

template <class T>
void conv2d_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y) {
  conv2d_forward(p, x, w, b, y, Act::identity);
}

bool conv2d_forward_is_direct(const ConvParams& p) { return !use_winograd(p, false) && conv_direct_preferred(p); }

template <class T>
void conv2d_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y, Act act) {
  if (conv2d_forward_is_direct(p)) {
    conv2d_direct_forward(p, x, w, b, y, act);
    return;
  }
  if (const int m = winograd_tile(p, false);
      m && (m == 4 || winograd_operands_finite<T>({{x, p.N * p.C * p.H * p.W}, {w, p.K * p.C * 9}})) &&
      winograd_conv(m, p.N, p.C, p.H, p.W, p.K, p.pad_h, p.pad_w, x, w, false, b, y, act))
    return;
  const Blocking bl = block_images<T>(p);
  const int64_t P = bl.P, G = p.groups, Kg = bl.Kg, CKKg = bl.CKKg, CHW = p.C * p.H * p.W;
  if (p.N == 0 || P == 0) return;
  const bool pointwise = is_pointwise(p);
  Epilogue<T> ep;
  ep.bias = b;
  ep.bias_axis = b ? BiasAxis::per_row : BiasAxis::none;
  ep.act = act;
  const Epilogue<T>* epp = (b || act != Act::identity) ? &ep : nullptr;  // bias + activation, fused

  auto run_block = [&](int64_t blk) {
    const int64_t n0 = blk * bl.nb, nb = std::min(bl.nb, p.N - n0);
    if (pointwise && nb == 1) {
      // x_n (C, H*W) is the column matrix: y_n (K, P) = W @ x_n, per group
      gemm_strided_batched<T>(false, false, Kg, P, CKKg, T(1), w, CKKg, Kg * CKKg, x + n0 * CHW, P,
                              CKKg * P, T(0), y + n0 * p.K * P, P, Kg * P, G, epp, Kg);
      return;
    }
    if (nb == 1) {
      // One image in row chunks: col (CKK, rows*OW), the GEMM writes columns of y_n (ldc = P).
      const int64_t OH = p.OH(), OW = p.OW();
      T* ws = thread_workspace<T>(bl.CKK * bl.rows * OW);
      for (int64_t oh0 = 0; oh0 < OH; oh0 += bl.rows) {
        const int64_t oh1 = std::min(OH, oh0 + bl.rows), cols = (oh1 - oh0) * OW;
        im2col_ld(p, x + n0 * CHW, ws, cols, oh0, oh1);
        // per group g: y_n[g][:, chunk] (Kg, cols) = W[g] (Kg, CKKg) @ col[g] (CKKg, cols) + b[g]
        gemm_strided_batched<T>(false, false, Kg, cols, CKKg, T(1), w, CKKg, Kg * CKKg, ws, cols,
                                CKKg * cols, T(0), y + n0 * p.K * P + oh0 * OW, P, Kg * P, G,
                                epp, Kg);
      }
      return;
    }
    // Several small images side by side: col (CKK, nb*P), out (K, nb*P) unpacked to y below.
    const int64_t ld = nb * P;
    T* ws = thread_workspace<T>((bl.CKK + p.K) * ld);
    T* out = ws + bl.CKK * ld;
    for (int64_t j = 0; j < nb; ++j) im2col_ld(p, x + (n0 + j) * CHW, ws + j * P, ld, 0, p.OH());
    if (G == 1 && p.K <= 16 && p.K % 6 != 0) {
      // out^T (nb*P, K) = col^T (nb*P, CKK) @ W^T (CKK, K) + b: K on the GEMM's N axis, so a
      // K of 16 fills one 16-wide tile instead of 3 six-row tiles (18 rows); C3 fwd -6%.
      Epilogue<T> ept;
      ept.bias = b;
      ept.bias_axis = b ? BiasAxis::per_col : BiasAxis::none;
      ept.act = act;
      gemm<T>(true, true, ld, p.K, bl.CKK, T(1), ws, ld, w, bl.CKK, T(0), out, p.K, epp ? &ept : nullptr);
      for (int64_t j = 0; j < nb; ++j)  // (nb, P, K) -> y[n0 + j] (K, P)
        for (int64_t k = 0; k < p.K; ++k) {
          T* yk = y + ((n0 + j) * p.K + k) * P;
          const T* o = out + j * P * p.K + k;
          for (int64_t q = 0; q < P; ++q) yk[q] = o[q * p.K];
        }
      return;
    }
    // per group g: out[g] (Kg, nb*P) = W[g] (Kg, CKKg) @ col[g] (CKKg, nb*P) + b[g]
    gemm_strided_batched<T>(false, false, Kg, ld, CKKg, T(1), w, CKKg, Kg * CKKg, ws, ld, CKKg * ld,
                            T(0), out, ld, Kg * ld, G, epp, Kg);
    for (int64_t j = 0; j < nb; ++j)  // (K, nb, P) -> y[n0 + j] (K, P)
      for (int64_t k = 0; k < p.K; ++k)
        std::memcpy(y + ((n0 + j) * p.K + k) * P, out + k * ld + j * P, sizeof(T) * P);
  };

  const double flops = 2.0 * p.K * CKKg * P * p.N;
  parallel_tasks(bl.nblocks, team_size(flops, 2e5), run_block);
}

template <class T>
void conv2d_backward(const ConvParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  const Blocking bl = block_images<T>(p);
  const int64_t P = bl.P, G = p.groups, Kg = bl.Kg, CKKg = bl.CKKg, CHW = p.C * p.H * p.W;
  const int64_t WSZ = p.K * CKKg;
  const bool pointwise = is_pointwise(p);

  if (const int m = dw ? winograd_dw_tile(p) : 0) {
    if (m == 4)
      conv2d_winograd4_dw(p.N, p.C, p.H, p.W, p.K, p.pad_h, p.pad_w, x, dy, dw);
    else
      conv2d_winograd_dw(p.N, p.C, p.H, p.W, p.K, p.pad_h, p.pad_w, x, dy, dw);
    // Checked after, on dw (K*C*9 values), not before on x and dy (the mid layer's 16 MB: 13%
    // of its F(4x4) dw): an inf or NaN in x's channel c (dy's k) reaches dw[k][c] for every k (c)
    // through the transforms (every row of B^T / A / G has a nonzero: inf * u is inf or NaN,
    // sums of them never finite), so a finite dw means finite operands; else the exact path
    // below recomputes dw, as PyTorch's per-window sums would.
    if (conv_direct_detail::all_finite(dw, p.K * p.C * 9)) dw = nullptr;  // done
  }
  if (dw && conv_direct_dw_preferred(p) && conv_direct_dw_exact(p, x)) {
    // Few input channels: dw straight from the padded images and the widened dy (no im2col);
    // with the batch in the lanes it sums db too, from dy while it is in cache (bitwise the
    // loop below).
    if (conv2d_direct_dw(p, x, dy, dw, db)) db = nullptr;
    dw = nullptr;  // done
  }
  if (db) {
    // db[k] = sum over images and positions; threads take channels, images summed in order.
    // bias_grad_lanes (conv_direct_bwd.cpp) repeats this rule lane by lane: change both.
    parallel_tasks(p.K, team_size(double(p.N) * p.K * P, 1e5), [&](int64_t k) {
      double acc = 0;  // NOTE: double across images so float bias grads of big maps stay accurate
      for (int64_t n = 0; n < p.N; ++n) {
        const T* d = dy + (n * p.K + k) * P;
        T s[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // 8 independent sums: vectorizes, no add-latency chain
        int64_t i = 0;
        for (; i + 8 <= P; i += 8)
          for (int l = 0; l < 8; ++l) s[l] += d[i + l];
        T tail = 0;
        for (; i < P; ++i) tail += d[i];
        acc += double((s[0] + s[1]) + (s[2] + s[3])) + double((s[4] + s[5]) + (s[6] + s[7])) + double(tail);
      }
      db[k] = static_cast<T>(acc);
    });
  }
  if (const int m = dx ? winograd_tile(p, true) : 0;
      m && (m == 4 || winograd_operands_finite<T>({{dy, p.N * p.K * P}, {w, p.K * p.C * 9}})) &&
      // dx (N, C, H, W) = 3x3 conv of dy (N, K, OH, OW) with rotated, transposed filters, pad 2 - p
      winograd_conv(m, p.N, p.K, p.OH(), p.OW(), p.C, 2 - p.pad_h, 2 - p.pad_w, dy, w, true,
                    static_cast<const T*>(nullptr), dx, Act::identity))
    dx = nullptr;  // done
  if (dx && p.N > 0 && P > 0) {
    // dx (N, C, H, W) = the stride-1 convolution of dy (N, K, OH, OW), padded KH-1-pad, with
    // the filters rotated 180 degrees and transposed (K <-> C): few channels -> direct path.
    const ConvParams q = transposed_conv_params(p);
    // Fewer than 4 data-gradient channels (C1's 1) leave most of the direct kernel's channel
    // block empty: im2col + GEMM measured faster (C1 N=256, 1 thread: AVX-512 2.1 vs 2.2-2.4
    // ms, AVX2 2.2 vs 3.0 ms), except where one channel has its own kernel (Xeon: 2.0 -> 1.2
    // ms, conv_direct_one_channel_wide). Forcing ConvAlgo::direct still takes the direct path.
    const bool direct = q.pad_h >= 0 && q.pad_w >= 0 && conv_direct_applicable(p) && conv_direct_preferred(q) &&
                        (p.C >= 4 || (p.C == 1 && conv_direct_one_channel_wide()) ||
                         conv_get_algo() == ConvAlgo::direct);
    if (direct && conv_direct_dx_lanes_applicable<T>(p)) {
      // batches that fill the lanes: L images per vector (row Winograd on Zen 4)
      if (!conv2d_direct_dx_winograd(p, w, dy, dx)) conv2d_direct_dx_lanes(p, w, dy, dx);
      dx = nullptr;  // done
    } else if (direct) {
      std::vector<T> wf(static_cast<size_t>(p.K * p.C * p.KH * p.KW));
      for (int64_t k = 0; k < p.K; ++k)
        for (int64_t c = 0; c < p.C; ++c)
          for (int64_t i = 0; i < p.KH * p.KW; ++i)  // wf[c][k] = rot180(w[k][c])
            wf[size_t((c * p.K + k) * p.KH * p.KW + i)] = w[(k * p.C + c) * p.KH * p.KW + p.KH * p.KW - 1 - i];
      conv2d_direct_forward(q, dy, wf.data(), static_cast<const T*>(nullptr), dx, Act::identity);
      dx = nullptr;  // done
    }
  }
  if (!dx && !dw) return;
  if (p.N == 0 || P == 0) {
    if (dw) std::fill(dw, dw + WSZ, T(0));
    if (dx) std::fill(dx, dx + p.N * CHW, T(0));
    return;
  }

  const double flops = 2.0 * p.K * CKKg * P * p.N * ((dx ? 1 : 0) + (dw ? 1 : 0));
  const int nt = static_cast<int>(std::min<int64_t>(team_size(flops, 2e5), bl.nblocks));
  // Blocks are grouped into a fixed number of contiguous chunks; chunk c sums its images'
  // weight gradients into its own partial, and partials are added in chunk order, so the
  // result does not depend on which thread ran which chunk, nor (up to 4 threads) on how
  // many threads there are: one thread runs the same 4 chunks in turn.
  const int64_t nchunks = std::min<int64_t>(bl.nblocks, std::max(4, nt));
  // Chunk c accumulates the transposed weight gradient dW^T[g] (CKKg, Kg) = col[g] @ dy[g]^T:
  // the GEMM then packs only dy^T (Kg x cols), not col^T (CKKg x cols, the big operand).
  std::vector<T> partials(dw ? static_cast<size_t>(nchunks * WSZ) : 0);

  auto run_chunk = [&](int64_t c) {
    const int64_t b0 = bl.nblocks * c / nchunks, b1 = bl.nblocks * (c + 1) / nchunks;
    T* dwc = dw ? partials.data() + c * WSZ : nullptr;
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t n0 = blk * bl.nb, nb = std::min(bl.nb, p.N - n0);
      const bool direct = pointwise && nb == 1;  // x_n and dx_n are the column matrices
      // Row chunks of one image (nb == 1), or the whole maps of nb images side by side.
      const int64_t rows = nb == 1 && !direct ? bl.rows : p.OH(), OW = p.OW();
      const int64_t ld = nb == 1 ? rows * OW : nb * P;
      T* ws = direct ? nullptr : thread_workspace<T>(bl.CKK * ld + (nb > 1 ? p.K * ld : 0));
      const T* dyb = dy + n0 * p.K * P;  // one image: dy_n (K, P) as is, lddy = P
      int64_t lddy = P;
      if (nb > 1) {
        T* packed = ws + bl.CKK * ld;  // dy[n0:n0+nb] (nb, K, P) -> (K, nb*P)
        for (int64_t j = 0; j < nb; ++j)
          for (int64_t k = 0; k < p.K; ++k)
            std::memcpy(packed + k * ld + j * P, dy + ((n0 + j) * p.K + k) * P, sizeof(T) * P);
        dyb = packed;
        lddy = ld;
      }
      if (dx && !direct)
        for (int64_t j = 0; j < nb; ++j) std::fill(dx + (n0 + j) * CHW, dx + (n0 + j + 1) * CHW, T(0));
      for (int64_t oh0 = 0; oh0 < p.OH(); oh0 += rows) {
        const int64_t oh1 = std::min(p.OH(), oh0 + rows);
        const int64_t cols = nb == 1 ? (oh1 - oh0) * OW : ld;  // GEMM columns in this chunk
        const T* dyc = dyb + oh0 * OW;                         // dy columns of this chunk
        if (dwc) {
          const T* col = x + n0 * CHW;
          if (!direct) {
            for (int64_t j = 0; j < nb; ++j) im2col_ld(p, x + (n0 + j) * CHW, ws + j * P, cols, oh0, oh1);
            col = ws;
          }
          // per group: dW^T[g] (CKKg, Kg) (+)= col[g] (CKKg, cols) @ dy[g]^T (cols, Kg)
          gemm_strided_batched<T>(false, true, CKKg, Kg, cols, T(1), col, cols, CKKg * cols, dyc,
                                  lddy, Kg * lddy, (blk == b0 && oh0 == 0) ? T(0) : T(1), dwc, Kg,
                                  Kg * CKKg, G);
        }
        if (dx) {
          // per group: dcol[g] (CKKg, cols) = W[g]^T (CKKg, Kg) @ dy[g] (Kg, cols)
          T* dcol = direct ? dx + n0 * CHW : ws;
          gemm_strided_batched<T>(true, false, CKKg, cols, Kg, T(1), w, CKKg, Kg * CKKg, dyc, lddy,
                                  Kg * lddy, T(0), dcol, cols, CKKg * cols, G);
          if (!direct)
            for (int64_t j = 0; j < nb; ++j) col2im_ld(p, ws + j * P, cols, dx + (n0 + j) * CHW, oh0, oh1);
        }
      }
    }
  };

  parallel_tasks(nchunks, nt, run_chunk);
  if (dw) {
    // dw[g][k][j] = sum over chunks, in chunk order (deterministic), of dW^T_c[g][j][k].
    parallel_tasks(p.K, team_size(double(WSZ) * nchunks, 1e5), [&](int64_t gk) {
      const int64_t g = gk / Kg, k = gk % Kg;
      const T* src = partials.data() + g * Kg * CKKg + k;  // dW^T[g] (CKKg, Kg), column k
      T* d = dw + gk * CKKg;
      for (int64_t j = 0; j < CKKg; ++j) d[j] = src[j * Kg];
      for (int64_t c = 1; c < nchunks; ++c)
        for (int64_t j = 0; j < CKKg; ++j) d[j] += src[c * WSZ + j * Kg];
    });
  }
}

template <class T>
void conv2d_forward_reference(const ConvParams& p, const T* x, const T* w, const T* b, T* y) {
  const int64_t OH = p.OH(), OW = p.OW(), Cg = p.C / p.groups, Kg = p.K / p.groups;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k) {
      const int64_t g = k / Kg;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b ? b[k] : 0;
          for (int64_t ci = 0; ci < Cg; ++ci)
            for (int64_t kh = 0; kh < p.KH; ++kh)
              for (int64_t kw = 0; kw < p.KW; ++kw) {
                const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dil_w;
                if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
                const int64_t c = g * Cg + ci;
                acc += double(x[((n * p.C + c) * p.H + ih) * p.W + iw]) *
                       double(w[((k * Cg + ci) * p.KH + kh) * p.KW + kw]);
              }
          y[((n * p.K + k) * OH + oh) * OW + ow] = static_cast<T>(acc);
        }
    }
}

template <class T>
void conv2d_backward_reference(const ConvParams& p, const T* x, const T* w, const T* dy, T* dx,
                               T* dw, T* db) {
  const int64_t OH = p.OH(), OW = p.OW(), Cg = p.C / p.groups, Kg = p.K / p.groups;
  std::vector<double> gx(dx ? p.N * p.C * p.H * p.W : 0), gw(dw ? p.K * Cg * p.KH * p.KW : 0),
      gb(db ? p.K : 0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k) {
      const int64_t g = k / Kg;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const double d = dy[((n * p.K + k) * OH + oh) * OW + ow];
          if (db) gb[k] += d;
          for (int64_t ci = 0; ci < Cg; ++ci)
            for (int64_t kh = 0; kh < p.KH; ++kh)
              for (int64_t kw = 0; kw < p.KW; ++kw) {
                const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dil_w;
                if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
                const int64_t xi = ((n * p.C + g * Cg + ci) * p.H + ih) * p.W + iw;
                const int64_t wi = ((k * Cg + ci) * p.KH + kh) * p.KW + kw;
                if (dx) gx[xi] += d * double(w[wi]);
                if (dw) gw[wi] += d * double(x[xi]);
              }
        }
    }
  for (size_t i = 0; i < gx.size(); ++i) dx[i] = static_cast<T>(gx[i]);
  for (size_t i = 0; i < gw.size(); ++i) dw[i] = static_cast<T>(gw[i]);
  for (size_t i = 0; i < gb.size(); ++i) db[i] = static_cast<T>(gb[i]);
}

#define LAMINA_INSTANTIATE_CONV(T)                                                                  \
  template void im2col<T>(const ConvParams&, const T*, T*);                                        \
  template void col2im<T>(const ConvParams&, const T*, T*);                                        \
  template void conv2d_forward<T>(const ConvParams&, const T*, const T*, const T*, T*);            \
  template void conv2d_forward<T>(const ConvParams&, const T*, const T*, const T*, T*, Act);       \
  template void conv2d_backward<T>(const ConvParams&, const T*, const T*, const T*, T*, T*, T*);   \
  template void conv2d_forward_reference<T>(const ConvParams&, const T*, const T*, const T*, T*);  \
  template void conv2d_backward_reference<T>(const ConvParams&, const T*, const T*, const T*, T*,  \
                                             T*, T*);
LAMINA_INSTANTIATE_CONV(float)
LAMINA_INSTANTIATE_CONV(double)

}  // namespace lamina
