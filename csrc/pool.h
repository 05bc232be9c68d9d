// Pooling over NCHW planes (1-D pooling is the 2-D one with H = KH = 1): max (with int64 argmax
// indices into each H*W plane, kept for the backward pass), average, and adaptive average.
// Output extent follows PyTorch: floor or ceil of (H + 2p - d*(k-1) - 1)/s, plus 1, and in
// ceil mode the last window must start inside the input or left padding.
// Threads split the N*C planes; every plane is written by one thread, so no reduction is shared.
#pragma once
#include <cstdint>
#include <cstring>

namespace lamina {

struct PoolParams {
  int64_t N = 1, C = 1, H = 1, W = 1;
  int64_t KH = 1, KW = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;  // implicit -inf (max) / 0 (avg) padding on each side
  int64_t dil_h = 1, dil_w = 1;  // max pooling only
  bool ceil_mode = false;
  int64_t OH() const;
  int64_t OW() const;
};

// Empty string if valid, else a message naming the bad field.
const char* pool_params_error(const PoolParams& p);

// y, indices: (N, C, OH, OW). indices[.] = ih*W + iw of the window's max.
// NOTE: ties go to the FIRST max in row-major window order; a NaN always wins over numbers
// (and a later NaN over an earlier one), exactly as PyTorch's CPU kernel.
template <class T>
void max_pool2d_forward(const PoolParams& p, const T* x, T* y, int64_t* indices);
// dx (N, C, H, W) is overwritten: zeros, then dx[plane][indices] += dy.
template <class T>
void max_pool2d_backward(const PoolParams& p, const T* dy, const int64_t* indices, T* dx);

// Divisor: divisor_override if > 0, else the window size clipped to the padded input
// (count_include_pad) or to the input itself (not count_include_pad). Windows lying wholly
// in the padding give 0.
template <class T>
void avg_pool2d_forward(const PoolParams& p, const T* x, T* y, bool count_include_pad,
                        int64_t divisor_override = 0);
template <class T>
void avg_pool2d_backward(const PoolParams& p, const T* dy, T* dx, bool count_include_pad,
                         int64_t divisor_override = 0);

// Output cell (i, j) averages rows [floor(i*H/OH), ceil((i+1)*H/OH)) and likewise columns.
template <class T>
void adaptive_avg_pool2d_forward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const T* x, T* y);
template <class T>
void adaptive_avg_pool2d_backward(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW, const T* dy, T* dx);

namespace detail {
// Same-width unsigned integer, for selects done on bits.
template <class T> struct Bits;
template <> struct Bits<float> { using U = uint32_t; };
template <> struct Bits<double> { using U = uint64_t; };

// "v replaces the running max": strictly greater (the first max keeps ties) or NaN (NaN wins).
// Selected through masks on the bits: compilers turn ?: on floats into a data-dependent
// branch here, which mispredicts about half the time on random data. (static: each
// translation unit, the AVX2 one included, keeps its own copy compiled with its own flags.)
template <class T>
static inline void max_take(T v, int64_t vi, T& m, int64_t& mi) {
  using U = typename Bits<T>::U;
  const bool t = (v > m) | (v != v);
  U vb, mb;
  std::memcpy(&vb, &v, sizeof(T));
  std::memcpy(&mb, &m, sizeof(T));
  const U mask = U(0) - U(t);
  mb ^= (mb ^ vb) & mask;
  std::memcpy(&m, &mb, sizeof(T));
  mi ^= (mi ^ vi) & -int64_t(t);
}

// Outputs [ow0, ow1) of output row oh of the 2x2 stride-2 max pool (window always inside):
// four loads, row-major compare order. r0, r1: the window's two input rows.
template <class T>
static inline void max_pool2x2_cols(const T* r0, const T* r1, int64_t W, int64_t oh, int64_t ow0,
                                    int64_t ow1, T* yr, int64_t* ir) {
  for (int64_t ow = ow0; ow < ow1; ++ow) {
    const int64_t i0 = 2 * oh * W + 2 * ow;
    T m = r0[2 * ow];
    int64_t mi = i0;
    max_take(r0[2 * ow + 1], i0 + 1, m, mi);
    max_take(r1[2 * ow], i0 + W, m, mi);
    max_take(r1[2 * ow + 1], i0 + W + 1, m, mi);
    yr[ow] = m;
    ir[ow] = mi;
  }
}

// AVX2 2x2 stride-2 max pool of one plane (no padding / dilation, 2*OH <= H, 2*OW <= W,
// W + 1 < 2^31); same ties / NaN rule as max_pool2d_forward. Call only when active_isa() is avx2.
void max_pool2x2_plane_avx2(const float* xp, int64_t W, int64_t OH, int64_t OW, float* yp, int64_t* ip);
void max_pool2x2_plane_avx2(const double* xp, int64_t W, int64_t OH, int64_t OW, double* yp, int64_t* ip);
}  // namespace detail

}  // namespace lamina
