// Max / average / adaptive-average pooling, forward and backward side by side (see pool.h).
#include "pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu.h"
#include "thread_team.h"

namespace lamina {

static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t dil, bool ceil_mode) {
  // PyTorch's rule: floor division (a negative span still leaves one window in ceil mode,
  // e.g. a dilated window wider than the padded input that covers some of it).
  const int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (out <= 0) return 0;
  // In ceil mode the last window must start inside the input or its left padding.
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

int64_t PoolParams::OH() const { return pool_out(H, KH, stride_h, pad_h, dil_h, ceil_mode); }
int64_t PoolParams::OW() const { return pool_out(W, KW, stride_w, pad_w, dil_w, ceil_mode); }

const char* pool_params_error(const PoolParams& p) {
  if (p.N < 0 || p.C <= 0) return "input: expected N >= 0 and C > 0";
  if (p.H <= 0 || p.W <= 0) return "input: spatial size must be > 0";
  if (p.KH <= 0 || p.KW <= 0) return "kernel_size: expected > 0";
  if (p.stride_h <= 0 || p.stride_w <= 0) return "stride: expected > 0";
  if (p.dil_h <= 0 || p.dil_w <= 0) return "dilation: expected > 0";
  if (p.pad_h < 0 || p.pad_w < 0) return "padding: expected >= 0";
  if (2 * p.pad_h > p.KH || 2 * p.pad_w > p.KW) return "padding: expected at most half the kernel size";
  if (p.OH() <= 0 || p.OW() <= 0) return "kernel_size: (dilated) kernel is larger than the padded input";
  return "";
}

// Planes are independent: threads take whole planes, 16 to a task (a 14x14 plane is ~1 us).
template <class F>
static void for_each_plane(int64_t planes, double work_per_plane, F&& f) {
  constexpr int64_t kPlanesPerTask = 16;
  const int64_t ntasks = (planes + kPlanesPerTask - 1) / kPlanesPerTask;
  parallel_tasks(ntasks, team_size(work_per_plane * planes, 2e4), [&](int64_t t) {
    for (int64_t i = t * kPlanesPerTask, e = std::min(planes, i + kPlanesPerTask); i < e; ++i) f(i);
  });
}

using detail::max_take;

template <class T>
void max_pool2d_forward(const PoolParams& p, const T* x, T* y, int64_t* indices) {
  const int64_t OH = p.OH(), OW = p.OW(), H = p.H, W = p.W;
  const bool k2s2 = p.KH == 2 && p.KW == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_h == 0 &&
                    p.pad_w == 0 && p.dil_h == 1 && p.dil_w == 1 && 2 * OH <= H && 2 * OW <= W;
  const bool avx2 = active_isa() >= Isa::avx2 && W < (int64_t(1) << 30);  // int32 window offsets
  (void)avx2;
  for_each_plane(p.N * p.C, double(OH * OW * p.KH * p.KW), [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    T* yp = y + pl * OH * OW;
    int64_t* ip = indices + pl * OH * OW;
    if (k2s2) {
#if defined(LAMINA_X86)
      if (avx2) return detail::max_pool2x2_plane_avx2(xp, W, OH, OW, yp, ip);
#endif
      // The common 2x2/2 window, always inside: selects instead of branches.
      for (int64_t oh = 0; oh < OH; ++oh)
        detail::max_pool2x2_cols(xp + 2 * oh * W, xp + (2 * oh + 1) * W, W, oh, 0, OW,
                                 yp + oh * OW, ip + oh * OW);
      return;
    }
    for (int64_t oh = 0; oh < OH; ++oh) {
      int64_t h0 = oh * p.stride_h - p.pad_h, h1 = std::min(h0 + (p.KH - 1) * p.dil_h + 1, H);
      // First tap inside the input, in O(1): a loop stepping through the padding hung on huge pads.
      if (h0 < 0) h0 += (-h0 + p.dil_h - 1) / p.dil_h * p.dil_h;
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t w0 = ow * p.stride_w - p.pad_w, w1 = std::min(w0 + (p.KW - 1) * p.dil_w + 1, W);
        if (w0 < 0) w0 += (-w0 + p.dil_w - 1) / p.dil_w * p.dil_w;
        T m = -std::numeric_limits<T>::infinity();
        int64_t mi = h0 * W + w0;  // an all -inf window points at its first tap, like PyTorch
        for (int64_t ih = h0; ih < h1; ih += p.dil_h)
          for (int64_t iw = w0; iw < w1; iw += p.dil_w) {
            max_take(xp[ih * W + iw], ih * W + iw, m, mi);
          }
        yp[oh * OW + ow] = m;
        ip[oh * OW + ow] = mi;
      }
    }
  });
}

template <class T>
void max_pool2d_backward(const PoolParams& p, const T* dy, const int64_t* indices, T* dx) {
  const int64_t OHW = p.OH() * p.OW(), HW = p.H * p.W;
  for_each_plane(p.N * p.C, double(OHW + HW), [&](int64_t pl) {
    T* dxp = dx + pl * HW;
    const T* dyp = dy + pl * OHW;
    const int64_t* ip = indices + pl * OHW;
    std::fill(dxp, dxp + HW, T(0));
    // Overlapping windows add up; a window wholly in the padding (index outside the plane)
    // routes no gradient, as in PyTorch.
    for (int64_t i = 0; i < OHW; ++i)
      if (static_cast<uint64_t>(ip[i]) < static_cast<uint64_t>(HW)) dxp[ip[i]] += dyp[i];
  });
}

// One average window: its clipped bounds and the divisor PyTorch uses.
struct AvgWindow {
  int64_t h0, h1, w0, w1, div;
};
static inline AvgWindow avg_window(const PoolParams& p, int64_t oh, int64_t ow, bool include_pad,
                                   int64_t divisor_override) {
  int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
  int64_t h1 = std::min(h0 + p.KH, p.H + p.pad_h), w1 = std::min(w0 + p.KW, p.W + p.pad_w);
  const int64_t padded_size = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, p.H);
  w1 = std::min(w1, p.W);
  int64_t div = divisor_override > 0 ? divisor_override
                : include_pad        ? padded_size
                                     : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, div};
}

// No padding and every window inside the input: one constant divisor, no clipping.
static inline bool avg_inside(const PoolParams& p) {
  return p.pad_h == 0 && p.pad_w == 0 && (p.OH() - 1) * p.stride_h + p.KH <= p.H &&
         (p.OW() - 1) * p.stride_w + p.KW <= p.W;
}

template <class T>
void avg_pool2d_forward(const PoolParams& p, const T* x, T* y, bool include_pad, int64_t divisor_override) {
  const int64_t OH = p.OH(), OW = p.OW(), H = p.H, W = p.W;
  const bool inside = avg_inside(p);
  const T scale = T(1) / static_cast<T>(divisor_override > 0 ? divisor_override : p.KH * p.KW);
  for_each_plane(p.N * p.C, double(OH * OW * p.KH * p.KW), [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    T* yp = y + pl * OH * OW;
    if (inside && p.KH == 2 && p.KW == 2 && p.stride_h == 2 && p.stride_w == 2) {
      for (int64_t oh = 0; oh < OH; ++oh) {
        const T* r0 = xp + 2 * oh * W;
        const T* r1 = r0 + W;
        for (int64_t ow = 0; ow < OW; ++ow)
          yp[oh * OW + ow] = ((r0[2 * ow] + r0[2 * ow + 1]) + (r1[2 * ow] + r1[2 * ow + 1])) * scale;
      }
      return;
    }
    if (inside) {
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T* xw = xp + oh * p.stride_h * W + ow * p.stride_w;
          T s = 0;
          for (int64_t kh = 0; kh < p.KH; ++kh)
            for (int64_t kw = 0; kw < p.KW; ++kw) s += xw[kh * W + kw];
          yp[oh * OW + ow] = s * scale;
        }
      return;
    }
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const AvgWindow a = avg_window(p, oh, ow, include_pad, divisor_override);
        if (a.h0 >= a.h1 || a.w0 >= a.w1) {  // window wholly in the padding
          yp[oh * OW + ow] = T(0);
          continue;
        }
        T s = 0;
        for (int64_t ih = a.h0; ih < a.h1; ++ih)
          for (int64_t iw = a.w0; iw < a.w1; ++iw) s += xp[ih * W + iw];
        yp[oh * OW + ow] = s / static_cast<T>(a.div);
      }
  });
}

template <class T>
void avg_pool2d_backward(const PoolParams& p, const T* dy, T* dx, bool include_pad, int64_t divisor_override) {
  const int64_t OH = p.OH(), OW = p.OW(), H = p.H, W = p.W;
  const bool inside = avg_inside(p);
  const bool tiled = inside && p.KH == p.stride_h && p.KW == p.stride_w;  // windows partition a prefix
  const T scale = T(1) / static_cast<T>(divisor_override > 0 ? divisor_override : p.KH * p.KW);
  for_each_plane(p.N * p.C, double(OH * OW * p.KH * p.KW + H * W), [&](int64_t pl) {
    T* dxp = dx + pl * H * W;
    const T* dyp = dy + pl * OH * OW;
    if (tiled) {
      // Each input cell belongs to at most one window: write, no zero-fill + accumulate.
      for (int64_t ih = 0; ih < H; ++ih) {
        T* d = dxp + ih * W;
        const int64_t oh = ih / p.KH;
        if (oh >= OH) {
          std::fill(d, d + W, T(0));
          continue;
        }
        const T* g = dyp + oh * OW;
        const int64_t covered = OW * p.KW;
        if (p.KW == 2) {  // constant inner width: the compiler vectorizes the paired stores
          for (int64_t ow = 0; ow < OW; ++ow) d[2 * ow] = d[2 * ow + 1] = g[ow] * scale;
        } else {
          for (int64_t ow = 0; ow < OW; ++ow) {
            const T v = g[ow] * scale;
            for (int64_t kw = 0; kw < p.KW; ++kw) d[ow * p.KW + kw] = v;
          }
        }
        std::fill(d + covered, d + W, T(0));
      }
      return;
    }
    std::fill(dxp, dxp + H * W, T(0));
    if (inside) {
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          T* dw = dxp + oh * p.stride_h * W + ow * p.stride_w;
          const T g = dyp[oh * OW + ow] * scale;
          for (int64_t kh = 0; kh < p.KH; ++kh)
            for (int64_t kw = 0; kw < p.KW; ++kw) dw[kh * W + kw] += g;
        }
      return;
    }
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const AvgWindow a = avg_window(p, oh, ow, include_pad, divisor_override);
        if (a.h0 >= a.h1 || a.w0 >= a.w1) continue;
        const T g = dyp[oh * OW + ow] / static_cast<T>(a.div);
        for (int64_t ih = a.h0; ih < a.h1; ++ih)
          for (int64_t iw = a.w0; iw < a.w1; ++iw) dxp[ih * W + iw] += g;
      }
  });
}

static inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
static inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

template <class T>
void adaptive_avg_pool2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y) {
  for_each_plane(N * C, double(H * W + OH * OW), [&](int64_t pl) {
    const T* xp = x + pl * H * W;
    T* yp = y + pl * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
        T s = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += xp[ih * W + iw];
        yp[oh * OW + ow] = s / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  const T* dy, T* dx) {
  for_each_plane(N * C, double(H * W + OH * OW), [&](int64_t pl) {
    T* dxp = dx + pl * H * W;
    const T* dyp = dy + pl * OH * OW;
    std::fill(dxp, dxp + H * W, T(0));
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
        const T g = dyp[oh * OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) dxp[ih * W + iw] += g;
      }
    }
  });
}

#define LAMINA_INSTANTIATE_POOL(T)                                                                  \
  template void max_pool2d_forward<T>(const PoolParams&, const T*, T*, int64_t*);                   \
  template void max_pool2d_backward<T>(const PoolParams&, const T*, const int64_t*, T*);            \
  template void avg_pool2d_forward<T>(const PoolParams&, const T*, T*, bool, int64_t);              \
  template void avg_pool2d_backward<T>(const PoolParams&, const T*, T*, bool, int64_t);             \
  template void adaptive_avg_pool2d_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                               const T*, T*);                                       \
  template void adaptive_avg_pool2d_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t,        \
                                                int64_t, const T*, T*);
LAMINA_INSTANTIATE_POOL(float)
LAMINA_INSTANTIATE_POOL(double)

}  // namespace lamina
