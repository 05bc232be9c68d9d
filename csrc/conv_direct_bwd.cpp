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
#include <cstdlib>
#include <cstring>
#include <vector>

#include "conv_direct.h"
#include "conv_direct_bwd_kernel.h"
#include "conv_direct_lane.h"
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

// DwKernels::lane_sums for the portable kernels (L lanes): chunks in order, then the lanes.
template <class T>
void portable_lane_sums(const T* a, int64_t n, int64_t nchunks, int64_t stride, T* out) {
  constexpr int64_t L = 8;
  for (int64_t t = 0; t < n; ++t) {
    T v[L];
    for (int64_t l = 0; l < L; ++l) v[l] = a[t * L + l];
    for (int64_t c = 1; c < nchunks; ++c)
      for (int64_t l = 0; l < L; ++l) v[l] += a[c * stride + t * L + l];
    T s = T(0);
    for (int64_t l = 0; l < L; ++l) s += v[l];
    out[t] = s;
  }
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
  k.lane_sums = portable_lane_sums<T>;
  return k;
}

// The calling thread's padded images and widened dy, tagged with their geometry: a call with
// the same geometry finds the zeros (borders, discarded columns, slack) still in place.
// Tag: layout, C, H, W, K, KH, KW, pad_h, pad_w, lanes, length, sizeof(T) -- everything that
// places a zero (a wide row's discarded columns depend on KW, not only on the buffer length).
constexpr int kTagLen = 12;
struct WideBuffers {
  AlignedBuffer buf;
  int64_t tag[kTagLen] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
};
thread_local WideBuffers tl_dw_buf, tl_dx_buf;
thread_local AlignedBuffer tl_dw_acc;   // the calling thread's per-chunk dw accumulators
thread_local AlignedBuffer tl_dw_wino;  // row Winograd dw: the transformed images and dy

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

// Batch in the lanes once the batch fills most of one group's lanes (comparing the products
// each layout computes: N rounded up to L images of OW columns, against N images of Wp-wide rows).
static bool use_batch_lanes(const ConvParams& p, int64_t L, bool has_transpose) {
  const int64_t Wp = p.W + 2 * p.pad_w;
  return has_transpose && L <= 64 && ceil_div(p.N, L) * L * p.OW() <= p.N * Wp;
}

// Measured on an AVX-512 Xeon (thread CPU time, 1 thread, N = 64, dw alone, im2col + GEMM ->
// direct, f32; f64 alike): C1 1 -> 6 28x28 5x5 p2 0.98 -> 0.18 ms; C3 6 -> 16 14x14 5x5 0.55 ->
// 0.33; 3 -> 16 32x32 3x3 p1 1.51 -> 0.90; 16 -> 16 14x14 5x5 1.55 -> 0.90; 16 -> 32 8x8 3x3
// 0.62 -> 0.40; 16 -> 32 16x16 1.97 -> 1.64; but 32 -> 32 16x16 only 1.13x, 16 -> 64 12x12
// 1.04x, 3 -> 64 32x32 5x5 0.78x. With the batch in the lanes. The wide rows alone (small
// batches, no SIMD transpose) win only up to 8 input channels: 8 -> 32 16x16 1.25 -> 1.04,
// 16 -> 16 14x14 5x5 1.31 -> 1.59.
bool conv_direct_dw_preferred(const ConvParams& p) {
  const ConvAlgo a = conv_get_algo();
  if (!conv_direct_applicable(p)) return false;
  if (a == ConvAlgo::direct) return true;
  if (a != ConvAlgo::automatic || active_isa() < Isa::avx2) return false;
  if (p.K > 32 || p.KH * p.KW < 9) return false;
  const DwKernels<float> kk = select_kernels<float>();
  if (use_batch_lanes(p, kk.lanes, kk.to_lanes != nullptr)) return p.C <= 16;
  const int64_t Wp = p.W + 2 * p.pad_w;
  return p.C <= 8 && 2 * p.OW() >= Wp;  // and at least half of each wide row useful
}

namespace {

// Sizes both layouts share.
struct DwGeometry {
  int64_t N, C, H, W, K, KH, KW, OH, OW, Hp, Wp, ntaps, nkb;
};

// The micro-kernel over every channel block x tap block of one group; off[t] is tap t's offset
// in the group's x buffer, and the kernel's (nimg, nvec, xs, ds, ldd) walk its q range.
template <class T>
void dw_group(const DwKernels<T>& kk, const DwGeometry& g, const T* xb, int64_t xs, const T* dyb,
              int64_t ds, int64_t ldd, int64_t nimg, int64_t nvec, const int64_t* off, T* acc) {
  for (int64_t b = 0; b < g.nkb; ++b) {
    const int64_t k0 = g.K * b / g.nkb, kb = g.K * (b + 1) / g.nkb - k0;
    const int64_t tb_max = kk.tb_for(int(kb));
    for (int64_t t0 = 0; t0 < g.ntaps; t0 += tb_max) {
      const int64_t tb = std::min(tb_max, g.ntaps - t0);
      kk.get(int(kb), int(tb))(xb, xs, dyb + k0 * ldd, ds, ldd, nimg, nvec, off + t0,
                               acc + (k0 * g.ntaps + t0) * kk.lanes, g.ntaps * kk.lanes);
    }
  }
}

// The thread's buffer, zeroed when the geometry (tag) differs from its last use.
template <class T>
T* tagged_buffer(WideBuffers& wb, const int64_t (&tag)[kTagLen], int64_t len) {
  T* buf = wb.buf.elems<T>(len);
  if (!std::equal(tag, tag + kTagLen, wb.tag)) {  // a new geometry: zero everything once
    std::memset(buf, 0, sizeof(T) * size_t(len));
    std::copy(tag, tag + kTagLen, wb.tag);
  }
  return buf;
}

// Batch in the lanes: a group of L images is stored (C, Hp, Wp, L) and dy (K, OH, OW, L), so
// each vector holds one position of L images. No wide-row waste and aligned loads; the kernel
// walks output rows as its "images" (xs = one padded row, ds = one output row) and the OW
// positions of a row as its vectors. Chunks take whole groups; a short last group is zero-filled.
// One image's db term from its dy plane, as conv2d_backward's db loop sums it: 8 running sums
// over positions i = l (mod 8) up to the last whole 8, a running tail, then
// ((s0+s1)+(s2+s3)) + ((s4+s5)+(s6+s7)) + tail in double. Here for L images at once, the plane
// in lanes (P, L): each lane adds in the same order, so the value is bitwise the same.
template <class T, int LN>
void bias_grad_lanes_n(const T* plane, int64_t P, int64_t nl, double* out, int64_t out_stride) {
  T s[8][LN], tail[LN];
  const int64_t P8 = P / 8 * 8;
  for (int j = 0; j < 8; ++j) {   // one residue at a time: its LN running sums stay in registers
    T a[LN] = {};
    for (int64_t i = j; i < P8; i += 8)
      for (int l = 0; l < LN; ++l) a[l] += plane[i * LN + l];
    for (int l = 0; l < LN; ++l) s[j][l] = a[l];
  }
  for (int l = 0; l < LN; ++l) tail[l] = T(0);
  for (int64_t i = P8; i < P; ++i)
    for (int l = 0; l < LN; ++l) tail[l] += plane[i * LN + l];
  for (int64_t l = 0; l < nl; ++l)
    out[l * out_stride] = double((s[0][l] + s[1][l]) + (s[2][l] + s[3][l])) +
                          double((s[4][l] + s[5][l]) + (s[6][l] + s[7][l])) + double(tail[l]);
}
template <class T>
void bias_grad_lanes(const T* plane, int64_t P, int64_t L, int64_t nl, double* out, int64_t out_stride) {
  if (L == 16) return bias_grad_lanes_n<T, 16>(plane, P, nl, out, out_stride);
  if (L == 8) return bias_grad_lanes_n<T, 8>(plane, P, nl, out, out_stride);
  bias_grad_lanes_n<T, 4>(plane, P, nl, out, out_stride);   // the lane counts there are: 4, 8, 16
}
constexpr bool bias_grad_lanes_has(int64_t L) { return L == 4 || L == 8 || L == 16; }

// db_terms (N, K) or null: each image's db term per channel (bias_grad_lanes).
template <class T>
int64_t dw_batch_lanes(const DwKernels<T>& kk, const DwGeometry& g, const ConvParams& p, const T* x,
                       const T* dy, AlignedBuffer& acc_buf, double* db_terms) {
  const int64_t L = kk.lanes, C = g.C, H = g.H, W = g.W, K = g.K, OH = g.OH, OW = g.OW, Hp = g.Hp, Wp = g.Wp;
  const int64_t ngroups = ceil_div(g.N, L);
  const int64_t xlen = C * Hp * Wp * L, dlen = K * OH * OW * L;
  std::vector<int64_t> off(static_cast<size_t>(g.ntaps));
  for (int64_t c = 0, t = 0; c < C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw, ++t) off[size_t(t)] = ((c * Hp + kh) * Wp + kw) * L;
  const double flops = 2.0 * double(K) * double(g.ntaps) * double(OH * OW) * double(ngroups * L);
  const int nt = static_cast<int>(std::min<int64_t>(team_size(flops, 2e5), ngroups));
  // A fixed number of chunks of whole groups, summed in chunk order: the same dw at 1..4 threads.
  const int64_t nchunks = std::min<int64_t>(ngroups, std::max(4, nt));
  const int64_t acc_len = K * g.ntaps * L;
  // Each chunk's accumulators zeroed by the thread that fills them (not all by the caller).
  T* acc = acc_buf.elems<T>(nchunks * acc_len);
  // Output rows per block: one channel block's dy rows in 32 KiB (C1, C3 at 1 thread: ~10%
  // faster than whole maps, which stream dy from L2 once per tap block).
  const int64_t rb = std::max<int64_t>(
      1, std::min<int64_t>(OH, (int64_t(32) << 10) / (int64_t(sizeof(T)) * ceil_div(K, g.nkb) * OW * L)));
  parallel_tasks(nchunks, nt, [&](int64_t ch) {
    std::fill(acc + ch * acc_len, acc + (ch + 1) * acc_len, T(0));
    const int64_t tag[kTagLen] = {1, C, H, W, K, g.KH, g.KW, p.pad_h, p.pad_w, L, xlen + dlen, int64_t(sizeof(T))};
    T* xb = tagged_buffer<T>(tl_dw_buf, tag, xlen + dlen);
    T* dyb = xb + xlen;
    const int64_t g0 = ngroups * ch / nchunks, g1 = ngroups * (ch + 1) / nchunks;
    for (int64_t gr = g0; gr < g1; ++gr) {
      const int64_t n0 = gr * L, ng = std::min(L, g.N - n0);
      // Interiors only: the padding stays zero from the first fill. Lanes past ng are zeroed
      // in x and dy both (a stale inf in one would make 0 * inf = NaN).
      const T* rows[64];
      for (int64_t i = 0; i < L; ++i) rows[i] = i < ng ? x + (n0 + i) * C * H * W : nullptr;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h) {
          const T* r[64];
          for (int64_t i = 0; i < L; ++i) r[i] = rows[i] ? rows[i] + (c * H + h) * W : nullptr;
          kk.to_lanes(r, W, xb + ((c * Hp + h + p.pad_h) * Wp + p.pad_w) * L);
        }
      for (int64_t i = 0; i < L; ++i) rows[i] = i < ng ? dy + (n0 + i) * K * OH * OW : nullptr;
      kk.to_lanes(rows, K * OH * OW, dyb);
      if (db_terms)
        for (int64_t k = 0; k < K; ++k) bias_grad_lanes(dyb + k * OH * OW * L, OH * OW, L, ng, db_terms + n0 * K + k, K);
      // Blocks of rb output rows: one channel block's dy rows stay in L1 across the tap blocks.
      for (int64_t r0 = 0; r0 < OH; r0 += rb)
        dw_group(kk, g, xb + r0 * Wp * L, Wp * L, dyb + r0 * OW * L, OW * L, OH * OW * L,
                 std::min(rb, OH - r0), OW, off.data(), acc + ch * acc_len);
    }
  });
  return nchunks;
}

// Row Winograd F(4, 5) for dw (5-wide filters, batch in the lanes): the transpose of the
// forward's (conv_direct_lane.h). The forward's 4 outputs of a tile are A^T [(G g) .* (B^T d)],
// so their gradient with respect to the filter row g is G^T [(B^T d) .* (A dy)]: per tile, 8
// products instead of 20, and the sums over images, rows and tiles run in the transform domain,
// with G^T applied once at the end (conv2d_direct_dw). Per group of L images:
//   xb (C, Hp, Wx, L)          the padded images, Wx = 4*ntiles + 4 columns (zeros past Wp)
//   V  (8, C*Hp, ntiles, L)    B^T of every tile of every input row (the forward's wino_in)
//   M  (8, K, OH*ntiles, L)    A of every 4-wide tile of every dy row (wino_dy)
//   accw[e] (K, C*KH, L)      += M[e] . V[e] over positions (oh, tile): the direct micro-kernel
//                                with the (c, kh) pairs as taps, position p reading V[e] at
//                                (c*Hp + kh)*ntiles + p, since rows follow each other
// A group whose x or dy holds an inf or NaN takes the taps into accd (K, C*KH*KW, L): the
// transforms would spread it to every tap of its rows.
struct DwWinoChunks {
  int64_t nchunks, accw_len, accd_len;
  bool any_taps;   // some group took the taps (accd then holds every chunk's sums, zeros included)
};
template <class T>
DwWinoChunks dw_batch_lanes_winograd(const DwKernels<T>& kk, const conv_direct_detail::LaneKernels<T>& lk,
                                     const DwGeometry& g, const ConvParams& p, const T* x, const T* dy,
                                     AlignedBuffer& acc_buf, double* db_terms) {
  const int64_t L = kk.lanes, C = g.C, H = g.H, W = g.W, K = g.K, OH = g.OH, OW = g.OW, Hp = g.Hp;
  const int64_t ntiles = ceil_div(OW, 4), Wx = 4 * ntiles + 4, npos = OH * ntiles, CK = C * g.KH;
  const int64_t ngroups = ceil_div(g.N, L);
  const int64_t xlen = C * Hp * Wx * L, dlen = K * OH * OW * L, ldv = C * Hp * ntiles * L, ldm = K * npos * L;
  std::vector<int64_t> offw(static_cast<size_t>(CK)), offd(static_cast<size_t>(g.ntaps));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      offw[size_t(c * g.KH + kh)] = (c * Hp + kh) * ntiles * L;
      for (int64_t kw = 0; kw < g.KW; ++kw) offd[size_t((c * g.KH + kh) * g.KW + kw)] = ((c * Hp + kh) * Wx + kw) * L;
    }
  DwGeometry gw = g;   // the transform domain's taps: the (c, kh) pairs
  gw.ntaps = CK;
  const double flops = 2.0 * double(K) * double(CK * 8) * double(npos) * double(ngroups * L);
  const int nt = static_cast<int>(std::min<int64_t>(team_size(flops, 2e5), ngroups));
  const int64_t nchunks = std::min<int64_t>(ngroups, std::max(4, nt));   // fixed: same dw at 1..4 threads
  const int64_t accw_len = 8 * K * CK * L, accd_len = K * g.ntaps * L, acc_len = accw_len + accd_len;
  T* acc = acc_buf.elems<T>(nchunks * acc_len);
  std::vector<char> took_taps(static_cast<size_t>(nchunks), 0);   // accd zeroed (and used) only then
  parallel_tasks(nchunks, nt, [&](int64_t ch) {
    T* accw = acc + ch * acc_len;
    T* accd = accw + accw_len;
    std::fill(accw, accw + accw_len, T(0));
    const int64_t tag[kTagLen] = {3, C, H, W, K, g.KH, g.KW, p.pad_h, p.pad_w, L, xlen + dlen, int64_t(sizeof(T))};
    T* xb = tagged_buffer<T>(tl_dw_buf, tag, xlen + dlen);
    T* dyb = xb + xlen;
    T* V = tl_dw_wino.elems<T>(8 * (ldv + ldm));
    T* M = V + 8 * ldv;
    const int64_t g0 = ngroups * ch / nchunks, g1 = ngroups * (ch + 1) / nchunks;
    for (int64_t gr = g0; gr < g1; ++gr) {
      const int64_t n0 = gr * L, ng = std::min(L, g.N - n0);
      const T* r[64];
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h) {
          for (int64_t i = 0; i < L; ++i) r[i] = i < ng ? x + ((n0 + i) * C + c) * H * W + h * W : nullptr;
          kk.to_lanes(r, W, xb + ((c * Hp + h + p.pad_h) * Wx + p.pad_w) * L);
        }
      for (int64_t i = 0; i < L; ++i) r[i] = i < ng ? dy + (n0 + i) * K * OH * OW : nullptr;
      kk.to_lanes(r, K * OH * OW, dyb);
      if (db_terms)
        for (int64_t k = 0; k < K; ++k) bias_grad_lanes(dyb + k * OH * OW * L, OH * OW, L, ng, db_terms + n0 * K + k, K);
      if (!lk.all_finite(xb, xlen) || !lk.all_finite(dyb, dlen)) {
        if (!took_taps[size_t(ch)]) std::fill(accd, accd + accd_len, T(0));
        took_taps[size_t(ch)] = 1;
        dw_group(kk, g, xb, Wx * L, dyb, OW * L, OH * OW * L, OH, OW, offd.data(), accd);
        continue;
      }
      for (int64_t row = 0; row < C * Hp; ++row) lk.wino_in(xb + row * Wx * L, ntiles, V + row * ntiles * L, ldv);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t j = 0; j < ntiles; ++j)
            kk.wino_dy(dyb + ((k * OH + oh) * OW + 4 * j) * L, std::min<int64_t>(4, OW - 4 * j),
                       M + ((k * OH + oh) * ntiles + j) * L, ldm);
      for (int e = 0; e < 8; ++e)
        dw_group(kk, gw, V + e * ldv, 0, M + e * ldm, 0, npos * L, 1, npos, offw.data(), accw + e * K * CK * L);
    }
  });
  const bool any_taps = std::find(took_taps.begin(), took_taps.end(), 1) != took_taps.end();
  if (any_taps)
    for (int64_t ch = 0; ch < nchunks; ++ch)
      if (!took_taps[size_t(ch)]) std::fill(acc + ch * acc_len + accw_len, acc + (ch + 1) * acc_len, T(0));
  return {nchunks, accw_len, accd_len, any_taps};
}

// Wide rows (conv_direct_bwd.h): one image per "image" of the kernel, for batches too small to
// fill the lanes. Groups of nb images whose buffers fit L1.
template <class T>
int64_t dw_wide(const DwKernels<T>& kk, const DwGeometry& g, const ConvParams& p, const T* x, const T* dy,
                AlignedBuffer& acc_buf) {
  const int64_t L = kk.lanes, N = g.N, C = g.C, H = g.H, W = g.W, K = g.K, OH = g.OH, OW = g.OW, Wp = g.Wp;
  const int64_t plane = g.Hp * Wp;
  const int64_t nvec = ceil_div(OH * Wp, L), Qpad = nvec * L;
  // The last tap of a vector step reads up to (C-1)*plane + (KH-1)*Wp + KW-1 + Qpad - 1.
  const int64_t xs = ceil_div(std::max(C * plane, (C - 1) * plane + (g.KH - 1) * Wp + g.KW - 1 + Qpad), L) * L;
  const int64_t ds = K * Qpad;
  std::vector<int64_t> off(static_cast<size_t>(g.ntaps));
  for (int64_t c = 0, t = 0; c < C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw, ++t) off[size_t(t)] = c * plane + kh * Wp + kw;
  // Images per group: one channel block's dyw and the padded images stay in a 32 KiB L1.
  const int64_t per_img = int64_t(sizeof(T)) * (xs + ceil_div(K, g.nkb) * Qpad);
  const int64_t nb = std::max<int64_t>(1, std::min<int64_t>(N, (int64_t(32) << 10) / per_img));
  const double flops = 2.0 * double(K) * double(g.ntaps) * double(OH * Wp) * double(N);
  const int nt = static_cast<int>(std::min<int64_t>(team_size(flops, 2e5), N));
  // A fixed number of contiguous chunks, summed in chunk order: the same dw at 1..4 threads.
  const int64_t nchunks = std::min<int64_t>(N, std::max(4, nt));
  const int64_t acc_len = K * g.ntaps * L;
  T* acc = acc_buf.elems<T>(nchunks * acc_len);   // zeroed per chunk by its thread
  parallel_tasks(nchunks, nt, [&](int64_t ch) {
    std::fill(acc + ch * acc_len, acc + (ch + 1) * acc_len, T(0));
    const int64_t tag[kTagLen] = {0, C, H, W, K, g.KH, g.KW, p.pad_h, p.pad_w, L, nb * (xs + ds), int64_t(sizeof(T))};
    T* xpb = tagged_buffer<T>(tl_dw_buf, tag, nb * (xs + ds));
    T* dyb = xpb + nb * xs;
    const int64_t n0 = N * ch / nchunks, n1 = N * (ch + 1) / nchunks;
    for (int64_t gi = n0; gi < n1; gi += nb) {
      const int64_t ng = std::min(nb, n1 - gi);
      for (int64_t i = 0; i < ng; ++i) {
        // Only the interiors: borders, wide columns and slack are zeros from the first fill.
        T* xp = xpb + i * xs + p.pad_h * Wp + p.pad_w;
        const T* xn = x + (gi + i) * C * H * W;
        if (Wp == W) {  // no side padding: each channel's rows are one contiguous run
          for (int64_t c = 0; c < C; ++c) std::memcpy(xp + c * plane, xn + c * H * W, sizeof(T) * size_t(H * W));
        } else {
          for (int64_t c = 0; c < C; ++c)
            for (int64_t h = 0; h < H; ++h) copy_row(xp + c * plane + h * Wp, xn + (c * H + h) * W, W);
        }
        T* dyw = dyb + i * ds;
        const T* dyn = dy + (gi + i) * K * OH * OW;
        for (int64_t k = 0; k < K; ++k)
          for (int64_t oh = 0; oh < OH; ++oh) copy_row(dyw + k * Qpad + oh * Wp, dyn + (k * OH + oh) * OW, OW);
      }
      dw_group(kk, g, xpb, xs, dyb, ds, Qpad, ng, nvec, off.data(), acc + ch * acc_len);
    }
  });
  return nchunks;
}

}  // namespace

template <class T>
bool conv_direct_dw_exact(const ConvParams& p, const T* x) {
  const DwKernels<T> kk = select_kernels<T>();
  return use_batch_lanes(p, kk.lanes, kk.to_lanes != nullptr) ||
         conv_direct_detail::all_finite(x, p.N * p.C * p.H * p.W);
}
template bool conv_direct_dw_exact<float>(const ConvParams&, const float*);
template bool conv_direct_dw_exact<double>(const ConvParams&, const double*);

namespace {
// db[k] from the images' terms, images in order, as conv2d_backward's db loop.
template <class T>
void sum_db_terms(const DwGeometry& g, const std::vector<double>& terms, T* db) {
  for (int64_t k = 0; k < g.K; ++k) {
    double s = 0;
    for (int64_t n = 0; n < g.N; ++n) s += terms[size_t(n * g.K + k)];
    db[k] = static_cast<T>(s);
  }
}

// Row Winograd for dw where the forward's row Winograd is measured (conv_direct.cpp's
// lane_winograd_preferred: Zen 4 and Xeon AVX-512, AVX2), or where the testing hook forces it: 5-wide filters,
// stride 1, the batch in the lanes (the caller checks). Measured on Zen 4, 1 thread, thread
// CPU time, f32 N=64, dw + db, min of 150 calls, against the taps on the same build: C3 6 -> 16
// 14x14 5x5 330 -> 242 us; C1 1 -> 6 28x28 pad 2 211 -> 210 us (5 (c, kh) taps: not taken).
// AVX2 (8 lanes, the same Zen 4 with AVX-512 hidden): C3 N=256 1634 -> 1169 us. AVX-512 Xeon
// (same method, 10-30 calls): C3 N=64 247 -> 242 us, N=256 948 -> 866; C1 N=256 734 -> 1004.
// The forward's rule holds as it is: enough (c, kh) taps to keep the transforms small beside the
// products (C1's 5 did not pay), rows of at least 2 tiles.
bool dw_winograd_preferred(const ConvParams& p) { return conv_direct_detail::lane_winograd_preferred(p); }
}  // namespace

template <class T>
bool conv2d_direct_dw(const ConvParams& p, const T* x, const T* dy, T* dw, T* db) {
  DwGeometry g;
  g.N = p.N; g.C = p.C; g.H = p.H; g.W = p.W; g.K = p.K; g.KH = p.KH; g.KW = p.KW;
  g.OH = p.OH(); g.OW = p.OW(); g.Hp = p.H + 2 * p.pad_h; g.Wp = p.W + 2 * p.pad_w;
  g.ntaps = g.C * g.KH * g.KW;
  const int64_t K = g.K, ntaps = g.ntaps;
  if (g.N == 0) {
    std::fill(dw, dw + K * ntaps, T(0));
    return false;
  }
  const DwKernels<T> kk = select_kernels<T>();
  const int64_t L = kk.lanes;
  g.nkb = ceil_div(K, kk.kb_max);  // channel blocks of near-equal size <= kb_max (16 -> 8 + 8)
  AlignedBuffer& acc_buf = tl_dw_acc;   // kept between calls: no fresh pages to fault in each step
  const bool lanes = use_batch_lanes(p, L, kk.to_lanes != nullptr);
  if (!lanes || !bias_grad_lanes_has(L)) db = nullptr;   // conv2d_backward sums it
  std::vector<double> db_terms(db ? size_t(g.N * K) : 0);
  conv_direct_detail::LaneKernels<T> lk;
  if (lanes && dw_winograd_preferred(p) && kk.wino_dy && conv_direct_detail::lane_kernels<T>(K, &lk) &&
      lk.lanes == L) {
    const DwWinoChunks wc = dw_batch_lanes_winograd(kk, lk, g, p, x, dy, acc_buf, db ? db_terms.data() : nullptr);
    if (db) sum_db_terms(g, db_terms, db);
    // dw[k][c][kh][kw] = sum_e G[e][kw] (the chunks' lane sums of accw[e][k][(c, kh)], in
    // chunk order), in double, + the taps' sums of any group with an inf or NaN.
    const int64_t CK = g.C * g.KH, acc_len = wc.accw_len + wc.accd_len;
    const T* acc = acc_buf.elems<T>(0);
    parallel_tasks(K, team_size(double(acc_len) * double(wc.nchunks), 1e5), [&](int64_t k) {
      std::vector<T> m(static_cast<size_t>(8 * CK)), d(static_cast<size_t>(5 * CK), T(0));
      for (int e = 0; e < 8; ++e) kk.lane_sums(acc + (e * K + k) * CK * L, CK, wc.nchunks, acc_len, m.data() + e * CK);
      if (wc.any_taps) kk.lane_sums(acc + wc.accw_len + k * CK * 5 * L, CK * 5, wc.nchunks, acc_len, d.data());
      for (int64_t t = 0; t < CK; ++t) {
        for (int kw = 0; kw < 5; ++kw) {
          double s = double(d[size_t(t * 5 + kw)]);
          for (int e = 0; e < 8; ++e) s += conv_direct_detail::kWinoG[e][kw] * double(m[size_t(e * CK + t)]);
          dw[(k * CK + t) * 5 + kw] = static_cast<T>(s);
        }
      }
    });
    return db != nullptr;
  }
  const int64_t nchunks = lanes ? dw_batch_lanes(kk, g, p, x, dy, acc_buf, db ? db_terms.data() : nullptr)
                                : dw_wide(kk, g, p, x, dy, acc_buf);
  if (db) sum_db_terms(g, db_terms, db);
  const int64_t acc_len = K * ntaps * L;
  // dw[k][t] = the lane sum of the chunks' accumulators.
  parallel_tasks(K, team_size(double(acc_len) * double(nchunks), 1e5), [&](int64_t k) {
    kk.lane_sums(acc_buf.elems<T>(0) + k * ntaps * L, ntaps, nchunks, acc_len, dw + k * ntaps);
  });
  return db != nullptr;
}

// ---- data gradient with the batch in the lanes ----

namespace {
thread_local AlignedBuffer tl_dx_out;
thread_local AlignedBuffer tl_dx_wino;   // row Winograd dx: transformed dy, sums, one dx row

// Row Winograd for dx where the forward's is measured, as dw_winograd_preferred (same hook):
// Zen 4, Xeon AVX-512 and AVX2, enough (k, kh) taps and rows of at least two tiles. Measured on Zen 4, 1 thread,
// thread CPU time, f32 N=64, min of 200 calls, against the lane taps on the same build: C3
// 6 -> 16 14x14 5x5 374 -> 265 us (154k instead of 288k FMAs per 16 images). AVX-512 Xeon
// (same method): C3 N=64 280 -> 249 us, N=256 1126 -> 1030. AVX2 (8 lanes, the same Zen 4 with
// AVX-512 hidden): C3 N=256 2013 -> 1741 us.
bool dx_winograd_preferred(const ConvParams& p) {
  if (const int gate = conv_direct_detail::row_winograd_gate(p); gate >= 0) return gate == 1;
  return p.K * p.KH >= 16 && p.W >= 8;
}
}  // namespace

template <class T>
bool conv_direct_dx_lanes_applicable(const ConvParams& p) {
  if (!conv_direct_applicable(p) || p.pad_h > p.KH - 1 || p.pad_w > p.KW - 1) return false;
  if (p.C == 1 && conv_direct_one_channel_wide()) return false;   // the wide rows' 1 x 14 kernel
  const DwKernels<T> kk = select_kernels<T>();
  conv_direct_detail::LaneKernels<T> lk;
  if (!kk.from_lanes || !conv_direct_detail::lane_kernels<T>(p.C, &lk) || lk.lanes != kk.lanes) return false;
  // The transposed convolution's rows: W outputs from OW + 2 (KW-1-pad) padded columns.
  const int64_t Wq = p.OW() + 2 * (p.KW - 1 - p.pad_w);
  return ceil_div(p.N, kk.lanes) * kk.lanes * p.W <= p.N * Wq;
}

// dx = the stride-1 convolution of dy, zero-padded by KH-1-pad_h, KW-1-pad_w, with the filters
// rotated 180 degrees and transposed (K <-> C), computed by the forward lane kernels
// (conv_direct_lane.h) on L images at a time: dy stored (K, Hq, Wq, L), so each vector is one
// position of L images, and a dx row is W vectors cut into tiles of at most vmax. Only the taps
// that read real dy, not its zero padding, run (the skipped products are 0): taps ordered
// (kh, k, kw) with the tile's live kw, so dx row h's live kh are one run (C3: 50 of 70 row
// taps, 60 of 70 column taps).
// Groups of L images are independent tasks.
template <class T>
void conv2d_direct_dx_lanes(const ConvParams& p, const T* w, const T* dy, T* dx) {
  const int64_t N = p.N, C = p.C, H = p.H, W = p.W, K = p.K, KH = p.KH, KW = p.KW;
  const int64_t OH = p.OH(), OW = p.OW(), qph = KH - 1 - p.pad_h, qpw = KW - 1 - p.pad_w;
  const int64_t Hq = OH + 2 * qph, Wq = OW + 2 * qpw;
  if (N == 0) return;
  const DwKernels<T> kk = select_kernels<T>();
  conv_direct_detail::LaneKernels<T> lk;
  conv_direct_detail::lane_kernels<T>(C, &lk);
  const int64_t L = lk.lanes, KB = lk.kb, nblk = ceil_div(C, KB);
  // Row tiles of at most vmax pixels, as equal as they come (14 = 4+4+3+3).
  const int64_t ntiles = ceil_div(W, lk.vmax);
  std::vector<int64_t> tile_at(static_cast<size_t>(ntiles + 1), 0);
  for (int64_t i = 0; i < ntiles; ++i) tile_at[size_t(i + 1)] = tile_at[size_t(i)] + W / ntiles + (i < W % ntiles);
  // A tile of v pixels from column ow reads padded columns ow+kw .. ow+kw+v-1, of which
  // qpw .. qpw+OW-1 hold dy: its live kw are one range (C3's first tile 1..4, last 0..2). One
  // tap set per distinct range: off and wt for taps (kh, k, kw in range), so a row's live kh
  // stay one contiguous run within it.
  struct TapSet {
    int64_t kw0, nkw;
    std::vector<int64_t> off;
    std::vector<T> wt;   // wt[blk][t][kb] = rot180(w[k][c]) at tap t, c = blk*KB + kb (0 past C)
  };
  std::vector<TapSet> sets;
  std::vector<size_t> set_of(static_cast<size_t>(ntiles));
  int64_t tile_work = 0;   // pixels x live kw, for the thread count
  for (int64_t i = 0; i < ntiles; ++i) {
    const int64_t ow = tile_at[size_t(i)], v = tile_at[size_t(i + 1)] - ow;
    const int64_t kw0 = std::max<int64_t>(0, qpw - ow - v + 1), kw1 = std::min<int64_t>(KW - 1, qpw + OW - 1 - ow);
    const int64_t nkw = std::max<int64_t>(0, kw1 - kw0 + 1);
    tile_work += v * nkw;
    size_t at = 0;
    while (at < sets.size() && (sets[at].kw0 != kw0 || sets[at].nkw != nkw)) ++at;
    set_of[size_t(i)] = at;
    if (at < sets.size()) continue;
    TapSet ts{kw0, nkw, std::vector<int64_t>(size_t(KH * K * nkw)), std::vector<T>(size_t(nblk * KH * K * nkw * KB), T(0))};
    const int64_t nset = KH * K * nkw;
    for (int64_t kh = 0, t = 0; kh < KH; ++kh)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t kw = kw0; kw < kw0 + nkw; ++kw, ++t) {
          ts.off[size_t(t)] = ((k * Hq + kh) * Wq + kw) * L;
          for (int64_t c = 0; c < C; ++c)
            ts.wt[size_t(((c / KB) * nset + t) * KB + c % KB)] = w[((k * C + c) * KH + KH - 1 - kh) * KW + KW - 1 - kw];
        }
    sets.push_back(std::move(ts));
  }
  const std::vector<T> zero_bias(static_cast<size_t>(KB), T(0));
  // dx row h reads padded dy rows h .. h+KH-1, of which qph .. qph+OH-1 hold dy.
  std::vector<int64_t> kh_lo(static_cast<size_t>(H)), kh_n(static_cast<size_t>(H));
  int64_t row_work = 0;
  for (int64_t h = 0; h < H; ++h) {
    const int64_t lo = std::max<int64_t>(0, qph - h), hi = std::min<int64_t>(KH - 1, qph + OH - 1 - h);
    kh_lo[size_t(h)] = lo;
    kh_n[size_t(h)] = std::max<int64_t>(0, hi - lo + 1);
    row_work += kh_n[size_t(h)];
  }
  const int64_t dlen = K * Hq * Wq * L;
  const int64_t ngroups = ceil_div(N, L);
  const double flops = 2.0 * double(C) * double(K * row_work) * double(tile_work) * double(ngroups * L);
  parallel_tasks(ngroups, team_size(flops, 2e5), [&](int64_t gr) {
    const int64_t tag[kTagLen] = {2, C, H, W, K, KH, KW, p.pad_h, p.pad_w, L, dlen, int64_t(sizeof(T))};
    T* dyb = tagged_buffer<T>(tl_dx_buf, tag, dlen);
    T* yw = tl_dx_out.elems<T>(KB * W * L);
    const int64_t n0 = gr * L, ng = std::min(L, N - n0);
    // Interiors only (the padding stays zero); lanes past ng are zeroed.
    const T* r[64];
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh) {
        for (int64_t i = 0; i < L; ++i) r[i] = i < ng ? dy + ((n0 + i) * K + k) * OH * OW + oh * OW : nullptr;
        kk.to_lanes(r, OW, dyb + ((k * Hq + oh + qph) * Wq + qpw) * L);
      }
    T* out[64];
    for (int64_t blk = 0; blk < nblk; ++blk)
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t i = 0; i < ntiles; ++i) {
          const int64_t ow = tile_at[size_t(i)], v = tile_at[size_t(i + 1)] - ow;
          const TapSet& ts = sets[set_of[size_t(i)]];
          const int64_t row_taps = K * ts.nkw, nset = KH * row_taps;
          const int64_t t0 = kh_lo[size_t(h)] * row_taps, nt = kh_n[size_t(h)] * row_taps;
          lk.by_v[v](dyb + (h * Wq + ow) * L, ts.off.data() + t0, nt, ts.wt.data() + (blk * nset + t0) * KB,
                     zero_bias.data(), yw + ow * L, W * L);
        }
        for (int64_t kb = 0; kb < KB && blk * KB + kb < C; ++kb) {
          const int64_t c = blk * KB + kb;
          for (int64_t i = 0; i < L; ++i) out[i] = i < ng ? dx + ((n0 + i) * C + c) * H * W + h * W : nullptr;
          kk.from_lanes(yw + kb * W * L, W, out);
        }
      }
  });
}

// dx as row Winograd F(4, 5) on the lanes: the transposed convolution of dy (padded by
// qph = KH-1-pad_h rows, qpw = KW-1-pad_w columns) with rot180(w) transposed, run as the
// forward's row Winograd (conv_direct_lane.h) but with the taps ordered (kh, k), so that dx row
// h sums only its live kh (the dy rows, not the zero padding: C3's 50 of 70), one lane-kernel
// call per row and transform point e over the row's ntiles tiles. Per group of L images:
//   dyt (K, Hq, Wx, L)       dy padded and transposed, Wx = 4*ntiles + 4 (zeros past the padding)
//   V   (8, K, Hq, ntiles, L) B^T of every tile of the dy rows (padding rows never read)
//   M   (8, KB, ntiles, L)   the lane kernel over the row's live taps
//   yw  (KB, W, L)           A^T M, then back to dx rows (from_lanes)
// Channel blocks of KB dx channels (C3's 6: one block).
template <class T>
bool conv2d_direct_dx_winograd(const ConvParams& p, const T* w, const T* dy, T* dx) {
  if (p.KW != 5 || !conv_direct_dx_lanes_applicable<T>(p) || !dx_winograd_preferred(p)) return false;
  const DwKernels<T> kk = select_kernels<T>();
  conv_direct_detail::LaneKernels<T> lk;
  if (!conv_direct_detail::lane_kernels<T>(p.C, &lk) || lk.lanes != kk.lanes || lk.vmax < 1) return false;
  const int64_t N = p.N, C = p.C, H = p.H, W = p.W, K = p.K, KH = p.KH;
  const int64_t OH = p.OH(), OW = p.OW(), qph = KH - 1 - p.pad_h, qpw = 4 - p.pad_w;
  const int64_t Hq = OH + 2 * qph, ntiles = ceil_div(W, 4), Wx = 4 * ntiles + 4;
  if (Wx < OW + 2 * qpw) return false;   // (never: W = OW + 4 - 2*pad_w)
  const int64_t L = lk.lanes, KB = lk.kb, nblk = ceil_div(C, KB), taps = KH * K, vmax = lk.vmax;
  // A transform spreads an inf or NaN of dy over its whole tile: the lane taps keep it to the
  // windows that read it (the caller runs them on false).
  if (!lk.all_finite(dy, N * K * OH * OW)) return false;
  std::vector<int64_t> off(static_cast<size_t>(taps));
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t k = 0; k < K; ++k) off[size_t(kh * K + k)] = (k * Hq + kh) * ntiles * L;
  // U[blk][e][t = (kh, k)][kb] = (G g)[e], g = rot180(w[k][c]) row kh = w[k][c][KH-1-kh][4 - i].
  std::vector<T> U(static_cast<size_t>(nblk * 8 * taps * KB), T(0));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t k = 0; k < K; ++k) {
        const T* row = w + ((k * C + c) * KH + KH - 1 - kh) * 5;
        for (int e = 0; e < 8; ++e) {
          double u = 0;
          for (int i = 0; i < 5; ++i) u += conv_direct_detail::kWinoG[e][i] * double(row[4 - i]);
          U[size_t((((c / KB) * 8 + e) * taps + kh * K + k) * KB + c % KB)] = T(u);
        }
      }
  const std::vector<T> zeros(static_cast<size_t>(KB), T(0));
  std::vector<int64_t> kh_lo(static_cast<size_t>(H)), kh_n(static_cast<size_t>(H));
  int64_t row_work = 0;
  for (int64_t h = 0; h < H; ++h) {   // dx row h reads padded dy rows h .. h+KH-1; qph .. qph+OH-1 hold dy
    const int64_t lo = std::max<int64_t>(0, qph - h), hi = std::min<int64_t>(KH - 1, qph + OH - 1 - h);
    kh_lo[size_t(h)] = lo;
    kh_n[size_t(h)] = std::max<int64_t>(0, hi - lo + 1);
    row_work += kh_n[size_t(h)];
  }
  const int64_t dlen = K * Hq * Wx * L, ldv = K * Hq * ntiles * L, ngroups = ceil_div(N, L);
  const double flops = 2.0 * 8 * double(K * row_work) * double(ntiles * C) * double(ngroups * L);
  parallel_tasks(ngroups, team_size(flops, 2e5), [&](int64_t gr) {
    const int64_t tag[kTagLen] = {4, C, H, W, K, KH, 5, p.pad_h, p.pad_w, L, dlen, int64_t(sizeof(T))};
    T* dyt = tagged_buffer<T>(tl_dx_buf, tag, dlen);
    T* V = tl_dx_wino.elems<T>(8 * ldv + 8 * KB * vmax * L + KB * W * L);
    T* M = V + 8 * ldv;
    T* yw = M + 8 * KB * vmax * L;
    const int64_t n0 = gr * L, ng = std::min(L, N - n0);
    const T* r[64];
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh) {
        for (int64_t i = 0; i < L; ++i) r[i] = i < ng ? dy + ((n0 + i) * K + k) * OH * OW + oh * OW : nullptr;
        T* row = dyt + ((k * Hq + oh + qph) * Wx + qpw) * L;
        kk.to_lanes(r, OW, row);
        lk.wino_in(row - qpw * L, ntiles, V + (k * Hq + oh + qph) * ntiles * L, ldv);
      }
    T* out[64];
    for (int64_t blk = 0; blk < nblk; ++blk)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t t0 = kh_lo[size_t(h)] * K, nt = kh_n[size_t(h)] * K;
        for (int64_t j0 = 0; j0 < ntiles; j0 += vmax) {
          const int64_t v = std::min(vmax, ntiles - j0);
          for (int e = 0; e < 8; ++e)
            lk.by_v[v](V + e * ldv + (h * ntiles + j0) * L, off.data() + t0, nt, U.data() + ((blk * 8 + e) * taps + t0) * KB,
                       zeros.data(), M + e * KB * vmax * L, vmax * L);
          for (int64_t j = 0; j < v; ++j)
            for (int64_t kb = 0; kb < KB; ++kb)
              lk.wino_out(M + (kb * vmax + j) * L, KB * vmax * L, T(0), std::min<int64_t>(4, W - 4 * (j0 + j)),
                          yw + (kb * W + 4 * (j0 + j)) * L);
        }
        for (int64_t kb = 0; kb < KB && blk * KB + kb < C; ++kb) {
          const int64_t c = blk * KB + kb;
          for (int64_t i = 0; i < L; ++i) out[i] = i < ng ? dx + ((n0 + i) * C + c) * H * W + h * W : nullptr;
          kk.from_lanes(yw + kb * W * L, W, out);
        }
      }
  });
  return true;
}

template bool conv2d_direct_dx_winograd<float>(const ConvParams&, const float*, const float*, float*);
template bool conv2d_direct_dx_winograd<double>(const ConvParams&, const double*, const double*, double*);
template bool conv_direct_dx_lanes_applicable<float>(const ConvParams&);
template bool conv_direct_dx_lanes_applicable<double>(const ConvParams&);
template void conv2d_direct_dx_lanes<float>(const ConvParams&, const float*, const float*, float*);
template void conv2d_direct_dx_lanes<double>(const ConvParams&, const double*, const double*, double*);
template bool conv2d_direct_dw<float>(const ConvParams&, const float*, const float*, float*, float*);
template bool conv2d_direct_dw<double>(const ConvParams&, const double*, const double*, double*, double*);

}  // namespace lamina
