// Fused conv + bias + ReLU + 2x2 max pool (see conv_block.h).
#include "conv_block.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "conv_direct.h"
#include "cpu.h"
#include "conv_direct_lane.h"
#include "thread_team.h"
#include "workspace.h"

namespace lamina {

namespace {
thread_local AlignedBuffer tl_pooled, tl_code;

// The scalar ReLU + pool of one (2 row) window, for the path without lane kernels.
template <class T>
void relu_pool_plane(const T* z, int64_t OW, int64_t PH, int64_t PW, T* y, uint8_t* code) {
  for (int64_t ph = 0; ph < PH; ++ph)
    for (int64_t pw = 0; pw < PW; ++pw) {
      const T* r0 = z + 2 * ph * OW + 2 * pw;
      const T* r1 = r0 + OW;
      const T v[4] = {r0[0], r0[1], r1[0], r1[1]};   // already ReLU'd by conv2d_forward
      T m = v[0];
      uint8_t at = 0;
      for (uint8_t i = 1; i < 4; ++i)
        if ((v[i] > m) | (v[i] != v[i])) { m = v[i]; at = i; }
      y[ph * PW + pw] = m;
      code[ph * PW + pw] = m <= T(0) ? uint8_t(4) : at;
    }
}
}  // namespace

std::string conv_block_error(const ConvParams& p) {
  const char* e = conv_params_error(p);
  if (e[0]) return std::string("conv params: ") + e;
  if (p.OH() < 2 || p.OW() < 2) return "conv output: expected at least 2x2 for the 2x2 pool";
  return "";
}

template <class T>
void conv2d_relu_max_pool2d_forward(const ConvParams& p, const T* x, const T* w, const T* b, T* y, uint8_t* code) {
  using conv_direct_detail::LaneKernels;
  using conv_direct_detail::LaneTile;
  const int64_t K = p.K, OH = p.OH(), OW = p.OW(), PH = OH / 2, PW = OW / 2;
  if (p.N == 0) return;
  if (conv2d_forward_is_direct(p)) {
    const bool done = conv_direct_detail::lane_forward<T>(
        p, x, w, b, 2, [&](const LaneTile& t, const T* yr, const LaneKernels<T>& lk) {
          if (t.nrows < 2) return;   // the odd last row: floor mode drops it
          const int64_t L = lk.lanes, ph = t.oh0 / 2;   // pooled (PW, L) in lanes, then scattered
          T* pooled = tl_pooled.elems<T>(PW * L);
          uint8_t* pc = static_cast<uint8_t*>(tl_code.get(size_t(PW * L)));
          for (int64_t kb = 0; kb < t.kn; ++kb) {
            const T* r0 = yr + kb * 2 * OW * L;
            lk.relu_pool2(r0, r0 + OW * L, PW, pooled, pc);
            const int64_t at = (t.n0 * K + t.k0 + kb) * PH * PW + ph * PW;
            lk.scatter(pooled, PW, t.nl, y + at, K * PH * PW);
            lk.scatter_code(pc, PW, t.nl, code + at, K * PH * PW);
          }
        });
    if (done) return;
  }
  // Elsewhere the unfused kernels themselves, plane by plane through one conv output buffer.
  std::vector<T> z(static_cast<size_t>(p.N * K * OH * OW));
  conv2d_forward<T>(p, x, w, b, z.data(), Act::relu);
  parallel_tasks(p.N * K, team_size(double(p.N * K * OH * OW), 2e4), [&](int64_t pl) {
    relu_pool_plane(z.data() + pl * OH * OW, OW, PH, PW, y + pl * PH * PW, code + pl * PH * PW);
  });
}

// The unsigned integer as wide as T: selects on the bits, so no branch on the (random) codes.
template <class T> struct Bits;
template <> struct Bits<float> { using U = uint32_t; };
template <> struct Bits<double> { using U = uint64_t; };

namespace conv_block_detail {
UnpoolRowsF32 unpool_rows_f32() {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx512) return unpool_rows_f32_avx512;
#endif
  return nullptr;
}
UnpoolPlaneF32 unpool_plane_f32() {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx512) return unpool_plane_f32_avx512;
#endif
  return nullptr;
}
}  // namespace conv_block_detail

template <class T>
void relu_max_pool2d_backward(const ConvParams& p, const T* dy, const uint8_t* code, T* dz) {
  using U = typename Bits<T>::U;
  static_assert(sizeof(U) == sizeof(T), "Bits<T>: one integer per value");
  const int64_t OH = p.OH(), OW = p.OW(), PH = OH / 2, PW = OW / 2, planes = p.N * p.K;
  constexpr int64_t kPlanesPerTask = 16;
  const int64_t ntasks = (planes + kPlanesPerTask - 1) / kPlanesPerTask;
  conv_block_detail::UnpoolRowsF32 simd_rows = nullptr;
  // Measured per pooled row (AVX-512, 1 thread, N = 256): C1's PW = 14 0.51 -> 0.35 ms; C3's
  // PW = 5 fills a third of the vector and ran slower (0.18 -> 0.30 ms): planes of at most 32
  // windows go whole through per-cell tables instead (unpool_plane_f32).
  conv_block_detail::UnpoolPlaneF32 simd_plane = nullptr;
  const int64_t P = PH * PW, cells = OH * OW;
  std::vector<int32_t> src, want;
  if constexpr (std::is_same_v<T, float>) {
    if (PW >= 8) simd_rows = conv_block_detail::unpool_rows_f32();
    if (P <= 32 && P > 0 && (simd_plane = conv_block_detail::unpool_plane_f32())) {
      src.assign(size_t((cells + 15) / 16 * 16), 0);
      want.assign(src.size(), 255);
      for (int64_t o = 0; o < cells; ++o) {
        const int64_t oh = o / OW, ow = o % OW;
        if (oh >= 2 * PH || ow >= 2 * PW) continue;   // floor mode: no window, +0
        src[size_t(o)] = int32_t((oh / 2) * PW + ow / 2);
        want[size_t(o)] = int32_t((oh & 1) * 2 + (ow & 1));
      }
    }
  }
  parallel_tasks(ntasks, team_size(double(planes * OH * OW), 2e4), [&](int64_t task) {
    for (int64_t pl = task * kPlanesPerTask, e = std::min(planes, pl + kPlanesPerTask); pl < e; ++pl) {
      T* d = dz + pl * OH * OW;
      const T* g = dy + pl * PH * PW;
      const uint8_t* c = code + pl * PH * PW;
      if constexpr (std::is_same_v<T, float>) {
        if (simd_plane) {
          alignas(16) uint8_t tail[32] = {};   // the last planes' codes: 32 readable bytes
          const uint8_t* c32 = c;
          if ((planes - pl) * P < 32) {
            std::memcpy(tail, c, size_t(P));
            c32 = tail;
          }
          simd_plane(g, c32, P, src.data(), want.data(), cells, d);
          continue;
        }
      }
      // Every cell written once: the window's max cell gets 0 + dy (max_pool2d_backward's
      // zero-then-add: a -0 gradient lands as +0), the others +0, chosen by masking the bits.
      // The codes are data: a branch on them mispredicted about half the time (C1 N=256:
      // 0.8 ms at 1 thread for 1.2 M cells, with a memset first).
      for (int64_t ph = 0; ph < PH; ++ph) {
        if constexpr (std::is_same_v<T, float>) {
          if (simd_rows) {
            float* r0 = d + 2 * ph * OW;
            simd_rows(g + ph * PW, c + ph * PW, PW, r0, r0 + OW);
            if (OW & 1) r0[OW - 1] = r0[2 * OW - 1] = 0.0f;
            continue;
          }
        }
        U* r0 = reinterpret_cast<U*>(d + 2 * ph * OW);
        U* r1 = r0 + OW;
        for (int64_t pw = 0; pw < PW; ++pw) {
          const uint8_t at = c[ph * PW + pw];
          const T v = T(0) + g[ph * PW + pw];
          U b;
          std::memcpy(&b, &v, sizeof b);
          r0[2 * pw] = b & (U(0) - U(at == 0));
          r0[2 * pw + 1] = b & (U(0) - U(at == 1));
          r1[2 * pw] = b & (U(0) - U(at == 2));
          r1[2 * pw + 1] = b & (U(0) - U(at == 3));
        }
        if (OW & 1) r0[OW - 1] = r1[OW - 1] = U(0);  // floor mode: the odd last column has no window
      }
      if (OH & 1) std::fill(d + (OH - 1) * OW, d + OH * OW, T(0));  // and the odd last row
    }
  });
}

template void conv2d_relu_max_pool2d_forward<float>(const ConvParams&, const float*, const float*, const float*, float*, uint8_t*);
template void conv2d_relu_max_pool2d_forward<double>(const ConvParams&, const double*, const double*, const double*, double*, uint8_t*);
template void relu_max_pool2d_backward<float>(const ConvParams&, const float*, const uint8_t*, float*);
template void relu_max_pool2d_backward<double>(const ConvParams&, const double*, const uint8_t*, double*);

}  // namespace lamina
