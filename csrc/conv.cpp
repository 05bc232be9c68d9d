// Convolution through im2col + GEMM (see conv.h for the math and the memory bound).
// Threading: one level. With enough images we run images (or chunks of images) on threads
// and each GEMM runs inside that thread; with a single image the loop is serial and the
// GEMM parallelizes itself.
#include "conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "gemm.h"

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

// Each thread keeps one growable im2col buffer across calls: no allocation per image.
template <class T>
static T* thread_workspace(int64_t n) {
  static thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n) {
    buf.clear();
    buf.shrink_to_fit();
    buf.resize(static_cast<size_t>(n));
  }
  return buf.data();
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

template <class T>
void im2col(const ConvParams& p, const T* x, T* col) {
  const int64_t OH = p.OH(), OW = p.OW(), H = p.H, W = p.W;
  for (int64_t c = 0; c < p.C; ++c) {
    const T* xc = x + c * H * W;
    for (int64_t kh = 0; kh < p.KH; ++kh) {
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        T* row = col + ((c * p.KH + kh) * p.KW + kw) * OH * OW;  // row (c, kh, kw): (OH, OW)
        int64_t lo, hi;
        valid_range(W, p.pad_w, kw, p.dil_w, p.stride_w, OW, &lo, &hi);
        const int64_t iw0 = lo * p.stride_w - p.pad_w + kw * p.dil_w;
        for (int64_t oh = 0; oh < OH; ++oh) {
          T* r = row + oh * OW;
          const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
          if (ih < 0 || ih >= H) {
            std::fill(r, r + OW, T(0));
            continue;
          }
          std::fill(r, r + lo, T(0));
          const T* xr = xc + ih * W + iw0;
          if (p.stride_w == 1) {
            std::memcpy(r + lo, xr, sizeof(T) * (hi - lo));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] = xr[(ow - lo) * p.stride_w];
          }
          std::fill(r + hi, r + OW, T(0));
        }
      }
    }
  }
}

template <class T>
void col2im(const ConvParams& p, const T* col, T* dx) {
  const int64_t OH = p.OH(), OW = p.OW(), H = p.H, W = p.W;
  for (int64_t c = 0; c < p.C; ++c) {
    T* dxc = dx + c * H * W;
    for (int64_t kh = 0; kh < p.KH; ++kh) {
      for (int64_t kw = 0; kw < p.KW; ++kw) {
        const T* row = col + ((c * p.KH + kh) * p.KW + kw) * OH * OW;
        int64_t lo, hi;
        valid_range(W, p.pad_w, kw, p.dil_w, p.stride_w, OW, &lo, &hi);
        const int64_t iw0 = lo * p.stride_w - p.pad_w + kw * p.dil_w;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dil_h;
          if (ih < 0 || ih >= H) continue;
          const T* r = row + oh * OW;
          T* d = dxc + ih * W + iw0;
          if (p.stride_w == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) d[ow - lo] += r[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) d[(ow - lo) * p.stride_w] += r[ow];
          }
        }
      }
    }
  }
}

template <class T>
void conv2d_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y) {
  const int64_t OH = p.OH(), OW = p.OW(), P = OH * OW;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, CKKg = Cg * p.KH * p.KW;
  const int64_t CKK = p.C * p.KH * p.KW;
  if (p.N == 0 || P == 0) return;
  const bool pointwise = is_pointwise(p);
  Epilogue<T> ep;
  ep.bias = b;
  ep.bias_axis = b ? BiasAxis::per_row : BiasAxis::none;

  auto one_image = [&](int64_t n) {
    const T* xn = x + n * p.C * p.H * p.W;
    const T* col = xn;  // pointwise: x_n (C, H*W) already is the column matrix
    if (!pointwise) {
      T* ws = thread_workspace<T>(CKK * P);
      im2col(p, xn, ws);
      col = ws;
    }
    // per group g: y_n[g] (Kg, P) = W[g] (Kg, CKKg) @ col[g] (CKKg, P) + b[g]
    gemm_strided_batched<T>(false, false, Kg, P, CKKg, T(1), w, CKKg, Kg * CKKg, col, P, CKKg * P,
                            T(0), y + n * p.K * P, P, Kg * P, G, b ? &ep : nullptr, Kg);
  };

  const double flops_per_image = 2.0 * p.K * CKKg * P;
  const int nt = std::min<int64_t>(threads_for(flops_per_image * p.N, 2e5), p.N);
  if (nt <= 1) {
    for (int64_t n = 0; n < p.N; ++n) one_image(n);
  } else {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) one_image(n);
  }
}

template <class T>
void conv2d_backward(const ConvParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  const int64_t OH = p.OH(), OW = p.OW(), P = OH * OW;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, CKKg = Cg * p.KH * p.KW;
  const int64_t CKK = p.C * p.KH * p.KW, WSZ = p.K * CKKg;
  const bool pointwise = is_pointwise(p);

  if (db) {
    // db[k] = sum over images and positions; one thread per channel range, images in order.
    const int ntb = threads_for(double(p.N) * p.K * P, 1e5);
#pragma omp parallel for num_threads(ntb) schedule(static)
    for (int64_t k = 0; k < p.K; ++k) {
      double acc = 0;  // NOTE: double accumulator so float bias grads of big maps stay accurate
      for (int64_t n = 0; n < p.N; ++n) {
        const T* d = dy + (n * p.K + k) * P;
        T s = 0;
        for (int64_t i = 0; i < P; ++i) s += d[i];
        acc += s;
      }
      db[k] = static_cast<T>(acc);
    }
  }
  if (!dx && !dw) return;
  if (p.N == 0 || P == 0) {
    if (dw) std::fill(dw, dw + WSZ, T(0));
    if (dx) std::fill(dx, dx + p.N * p.C * p.H * p.W, T(0));
    return;
  }

  const double flops_per_image = 2.0 * p.K * CKKg * P * ((dx ? 1 : 0) + (dw ? 1 : 0));
  const int nt = std::min<int64_t>(threads_for(flops_per_image * p.N, 2e5), p.N);
  // Images are split into a fixed number of contiguous chunks; chunk c sums its images'
  // weight gradients into its own partial, and partials are added in chunk order, so the
  // result does not depend on which thread ran which chunk.
  const int64_t nchunks = nt <= 1 ? 1 : std::min<int64_t>(p.N, std::max(4, nt));
  std::vector<T> partials(dw ? static_cast<size_t>((nchunks - 1) * WSZ) : 0);

  auto run_chunk = [&](int64_t c) {
    const int64_t n0 = p.N * c / nchunks, n1 = p.N * (c + 1) / nchunks;
    T* dwc = dw ? (c == 0 ? dw : partials.data() + (c - 1) * WSZ) : nullptr;
    T* ws = pointwise ? nullptr : thread_workspace<T>(CKK * P);
    for (int64_t n = n0; n < n1; ++n) {
      const T* xn = x + n * p.C * p.H * p.W;
      const T* dyn = dy + n * p.K * P;
      if (dwc) {
        const T* col = xn;
        if (!pointwise) {
          im2col(p, xn, ws);
          col = ws;
        }
        // per group: dW[g] (Kg, CKKg) (+)= dy_n[g] (Kg, P) @ col[g]^T (P, CKKg)
        gemm_strided_batched<T>(false, true, Kg, CKKg, P, T(1), dyn, P, Kg * P, col, P, CKKg * P,
                                n == n0 ? T(0) : T(1), dwc, CKKg, Kg * CKKg, G);
      }
      if (dx) {
        T* dxn = dx + n * p.C * p.H * p.W;
        // per group: dcol[g] (CKKg, P) = W[g]^T (CKKg, Kg) @ dy_n[g] (Kg, P)
        T* dcol = pointwise ? dxn : ws;
        gemm_strided_batched<T>(true, false, CKKg, P, Kg, T(1), w, CKKg, Kg * CKKg, dyn, P, Kg * P,
                                T(0), dcol, P, CKKg * P, G);
        if (!pointwise) {
          std::fill(dxn, dxn + p.C * p.H * p.W, T(0));
          col2im(p, ws, dxn);
        }
      }
    }
  };

  if (nchunks <= 1) {
    run_chunk(0);
  } else {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunks; ++c) run_chunk(c);
  }
  if (dw && nchunks > 1) {
    // Deterministic reduction: each weight element adds the partials in chunk order.
    const int ntr = threads_for(double(WSZ) * nchunks, 1e5);
#pragma omp parallel for num_threads(ntr) schedule(static)
    for (int64_t i = 0; i < WSZ; ++i) {
      T s = dw[i];
      for (int64_t c = 1; c < nchunks; ++c) s += partials[(c - 1) * WSZ + i];
      dw[i] = s;
    }
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
  template void conv2d_backward<T>(const ConvParams&, const T*, const T*, const T*, T*, T*, T*);   \
  template void conv2d_forward_reference<T>(const ConvParams&, const T*, const T*, const T*, T*);  \
  template void conv2d_backward_reference<T>(const ConvParams&, const T*, const T*, const T*, T*,  \
                                             T*, T*);
LAMINA_INSTANTIATE_CONV(float)
LAMINA_INSTANTIATE_CONV(double)

}  // namespace lamina
