// Winograd F(2x2, 3x3) convolution (Lavin & Gray's minimal filtering): each 2x2 output tile
//   Y = A^T [ U .* V ] A,   U = G g G^T (4x4, per (out, in) channel pair),  V = B^T d B (4x4 input patch)
// and the sum over input channels runs as 16 GEMMs, one per element e of the 4x4 transform
// domain:  M[e] (K, tiles) = U[e] (K, C) @ V[e] (C, tiles).  2.25x fewer multiplies than im2col.
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
// Used for the forward pass and (with flipped, transposed weights) the data gradient.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "activation.h"
#include "conv.h"
#include "cpu.h"
#include "gemm.h"
#include "thread_team.h"
#include "workspace.h"
#define LAMINA_WINO_NS wino_portable
#include "conv_winograd_tf.h"
#include "conv_winograd_f4_tf.h"

namespace lamina {

namespace {
std::atomic<int> g_algo{0};

template <class T>
T* winograd_workspace(int64_t n) {  // its own buffer: the im2col path's may be live around it
  static thread_local AlignedBuffer buf;
  return buf.elems<T>(n);
}

constexpr int64_t kWinoChunkBytes = int64_t(2) << 20;  // V (16, C, tiles) per chunk; 0.25-2 MiB measured alike
// The weight gradient's V and Mdy (as big for C = K) then fit L2 together -- but with at least
// 2 max(C, K) tiles, so each job's GEMMs (reduction length = tiles) amortize reading and
// writing dU (16 K C floats). Measured 1 thread: mid 64x32x32 dw 15.4-15.7 ms against 18.4-19.4
// at 2 MiB (17.0 at 256 KiB); wide 128x56x56 dw 42-43 ms without the floor of 256 tiles, 38 with.
constexpr int64_t kWinoDwChunkBytes = int64_t(1) << 19;
// V (36, C, tiles) per F(4x4) job: V and M (as big) then fit a 2 MiB L2 together; measured
// 1 thread against 2 and 4 MiB: mid 64x32x32 11.3 vs 12.3 / 15.4 ms, 128x28x28 10.4 vs 14.5 /
// 10.9 ms (tuning hook: conv_winograd4_set_chunk_bytes).
constexpr int64_t kWino4ChunkBytes = int64_t(1) << 20;
int64_t g_wino4_chunk_bytes = kWino4ChunkBytes;
constexpr int64_t kWino4MinTiles = 64;
// The F(4x4) weight gradient's job: V (36, C, Tc) within this budget (Mdy as big beside it),
// at least kWino4MinTiles tiles. Each GEMM sums Tc tiles in float (then jobs add into dU), so
// shorter jobs are more accurate: 45x38 maps, 20 -> 24 channels, max error relative to
// 1 + |dw| 2.7e-4 at 1 MiB (240 tiles a job), 1.1e-4 at 256 KiB (70), F(2x2) 6.2e-5. Time
// alike on 64-channel maps (1 thread, ms 1 MiB vs 256 KiB: 32x32 N=32 11.7 / 11.7, 56x56 N=8
// 9.7 / 9.8, 16x16 N=64 8.2 / 7.9).
constexpr int64_t kWino4DwChunkBytes = int64_t(1) << 18;
int64_t g_wino4_dw_chunk_bytes = kWino4DwChunkBytes;  // but GEMMs of at least this many columns: 256x14x14 at 16 was 24 vs 20 ms
}  // namespace

void conv_winograd4_set_chunk_bytes(int64_t bytes) { g_wino4_chunk_bytes = bytes > 0 ? bytes : kWino4ChunkBytes; }
void conv_winograd4_set_dw_chunk_bytes(int64_t bytes) {
  g_wino4_dw_chunk_bytes = bytes > 0 ? bytes : kWino4DwChunkBytes;
}

void conv_set_algo(ConvAlgo a) { g_algo.store(static_cast<int>(a)); }
ConvAlgo conv_get_algo() { return static_cast<ConvAlgo>(g_algo.load()); }

bool conv_winograd_applicable(const ConvParams& p) {
  return p.KH == 3 && p.KW == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 &&
         p.groups == 1 && p.pad_h <= 2 && p.pad_w <= 2;
}

template <class T>
void winograd_weights(const T* w, int64_t K, int64_t C, bool flip_transpose, T* U) {
  // U[e] is (Kout, Cin): (K, C) as is, or (C, K) for the data gradient, whose filter for
  // (out c, in k) is w[k][c] rotated by 180 degrees.
  const int64_t Kout = flip_transpose ? C : K, Cin = flip_transpose ? K : C;
  for (int64_t o = 0; o < Kout; ++o)
    for (int64_t i = 0; i < Cin; ++i) {
      T g[3][3];
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b)
          g[a][b] = flip_transpose ? w[(i * C + o) * 9 + (2 - a) * 3 + (2 - b)] : w[(o * C + i) * 9 + a * 3 + b];
      T t[4][3];  // G g
      for (int b = 0; b < 3; ++b) {
        t[0][b] = g[0][b];
        t[1][b] = T(0.5) * (g[0][b] + g[1][b] + g[2][b]);
        t[2][b] = T(0.5) * (g[0][b] - g[1][b] + g[2][b]);
        t[3][b] = g[2][b];
      }
      for (int a = 0; a < 4; ++a) {  // (G g) G^T
        T* u = U + o * Cin + i;
        const int64_t es = Kout * Cin;  // stride between the 16 matrices
        u[(a * 4 + 0) * es] = t[a][0];
        u[(a * 4 + 1) * es] = T(0.5) * (t[a][0] + t[a][1] + t[a][2]);
        u[(a * 4 + 2) * es] = T(0.5) * (t[a][0] - t[a][1] + t[a][2]);
        u[(a * 4 + 3) * es] = t[a][2];
      }
    }
}

#if defined(LAMINA_X86)
void winograd_input_transform_avx2(const float* x, int64_t C, int64_t H, int64_t W, int64_t pad_h,
                                   int64_t pad_w, int64_t ty0, int64_t ty1, int64_t tw, float* V,
                                   float* rows);
void winograd_output_transform_avx2(const float* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                    int64_t ty1, int64_t tw, const float* bias, float* y, float* rows);
void winograd_dy_transform_avx2(const float* dy, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                int64_t ty1, int64_t tw, float* Mdy, float* rows);
#endif

template <class T>
static void dy_transform(const T* dy, int64_t K, int64_t OH, int64_t OW, int64_t ty0, int64_t ty1,
                         int64_t tw, T* Mdy, T* rows) {
#if defined(LAMINA_X86)
  if constexpr (sizeof(T) == 4)
    if (active_isa() >= Isa::avx2) return winograd_dy_transform_avx2(dy, K, OH, OW, ty0, ty1, tw, Mdy, rows);
#endif
  wino_portable::wino_dy_transform<T>(dy, K, OH, OW, ty0, ty1, tw, Mdy, rows);
}

template <class T>
static void input_transform(const T* x, int64_t C, int64_t H, int64_t W, int64_t pad_h, int64_t pad_w,
                            int64_t ty0, int64_t ty1, int64_t tw, T* V, T* rows) {
#if defined(LAMINA_X86)
  if constexpr (sizeof(T) == 4)
    if (active_isa() >= Isa::avx2)
      return winograd_input_transform_avx2(x, C, H, W, pad_h, pad_w, ty0, ty1, tw, V, rows);
#endif
  wino_portable::wino_input_transform<T>(x, C, H, W, pad_h, pad_w, ty0, ty1, tw, V, rows);
}

template <class T>
static void output_transform(const T* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0, int64_t ty1,
                             int64_t tw, const T* bias, T* y, T* rows) {
#if defined(LAMINA_X86)
  if constexpr (sizeof(T) == 4)
    if (active_isa() >= Isa::avx2)
      return winograd_output_transform_avx2(M, K, OH, OW, ty0, ty1, tw, bias, y, rows);
#endif
  wino_portable::wino_output_transform<T>(M, K, OH, OW, ty0, ty1, tw, bias, y, rows);
}

// The fused activation on output rows [r0, r1) of every channel of one image (clipped to OH),
// applied right after the output transform wrote them, while they are in cache.
template <class T>
static void activate_rows(Act act, int64_t K, int64_t OH, int64_t OW, int64_t r0, int64_t r1, T* y) {
  if (act == Act::identity) return;
  const Activation kind = act == Act::relu ? Activation::relu
                          : act == Act::sigmoid ? Activation::sigmoid : Activation::tanh;
  r1 = std::min(OH, r1);
  for (int64_t k = 0; k < K; ++k) {
    T* yk = y + k * OH * OW + r0 * OW;
    act_forward<T>(kind, (r1 - r0) * OW, yk, yk);
  }
}

template <class T>
void conv2d_winograd(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad_h, int64_t pad_w,
                     const T* x, const T* U, const T* bias, T* y, Act act) {
  const int64_t OH = H + 2 * pad_h - 2, OW = W + 2 * pad_w - 2;
  if (N == 0 || OH <= 0 || OW <= 0) return;
  const int64_t th = (OH + 1) / 2, tw = (OW + 1) / 2;
  // Tile rows per chunk: V (16, C, Tc) within kWinoChunkBytes, but at least one row of tiles.
  const int64_t max_tiles = std::max<int64_t>(1, kWinoChunkBytes / (16 * std::max(C, K) * int64_t(sizeof(T))));
  const int64_t rpc = std::max<int64_t>(1, std::min(th, max_tiles / tw));
  const int64_t per_image = (th + rpc - 1) / rpc, jobs = N * per_image;
  const int64_t Tmax = rpc * tw, scratch = wino_portable::wino_scratch(tw);

  auto run_job = [&](int64_t job) {
    const int64_t n = job / per_image, ty0 = (job % per_image) * rpc, ty1 = std::min(th, ty0 + rpc);
    const int64_t Tc = (ty1 - ty0) * tw;
    T* V = winograd_workspace<T>(16 * (C + K) * Tmax + scratch);
    T* Mt = V + 16 * C * Tmax;
    T* rows = Mt + 16 * K * Tmax;
    input_transform(x + n * C * H * W, C, H, W, pad_h, pad_w, ty0, ty1, tw, V, rows);
    // per e: M[e] (K, Tc) = U[e] (K, C) @ V[e] (C, Tc)
    gemm_strided_batched<T>(false, false, K, Tc, C, T(1), U, C, K * C, V, Tc, C * Tc, T(0), Mt, Tc,
                            K * Tc, 16);
    output_transform(Mt, K, OH, OW, ty0, ty1, tw, bias, y + n * K * OH * OW, rows);
    activate_rows(act, K, OH, OW, 2 * ty0, 2 * ty1, y + n * K * OH * OW);
  };

  const double flops = 2.0 * 16 * K * C * th * tw * N;
  parallel_tasks(jobs, team_size(flops, 2e5), run_job);
}

// The weight gradient through the same transforms: y = A^T (U .* V) A per tile makes
// dL/dU[e] = sum over tiles of (A dy A^T)[e] * V[e], i.e. dU[e] (K, C) = Mdy[e] (K, T) @ V[e]^T,
// and dw = G^T dU G. Tiles are summed in a fixed chunk order (deterministic for any thread count).
template <class T>
void conv2d_winograd_dw(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad_h,
                        int64_t pad_w, const T* x, const T* dy, T* dw) {
  const int64_t OH = H + 2 * pad_h - 2, OW = W + 2 * pad_w - 2, USZ = 16 * K * C;
  const int64_t th = (OH + 1) / 2, tw = (OW + 1) / 2;
  const int64_t max_tiles =
      std::max<int64_t>(2 * std::max(C, K), kWinoDwChunkBytes / (16 * std::max(C, K) * int64_t(sizeof(T))));
  const int64_t rpc = std::max<int64_t>(1, std::min(th, max_tiles / tw));
  const int64_t per_image = (th + rpc - 1) / rpc, jobs = N * per_image;
  const int64_t Tmax = rpc * tw, scratch = wino_portable::wino_scratch(tw);
  if (jobs == 0) {
    std::fill(dw, dw + K * C * 9, T(0));
    return;
  }
  const double flops = 2.0 * 16 * K * C * th * tw * N;
  const int nt = static_cast<int>(std::min<int64_t>(team_size(flops, 2e5), jobs));
  const int64_t nchunks = std::min<int64_t>(jobs, std::max(4, nt));  // fixed: same sums at 1..4 threads
  // dU_c[e] (K, C) per chunk, in a buffer kept across calls (1 MiB for C = K = 64: a fresh
  // one cost page faults every call); each chunk's first GEMM overwrites its part (beta = 0).
  static thread_local AlignedBuffer dU_buf;
  T* dU = dU_buf.elems<T>(nchunks * USZ);

  auto run_chunk = [&](int64_t c) {
    const int64_t j0 = jobs * c / nchunks, j1 = jobs * (c + 1) / nchunks;
    T* V = winograd_workspace<T>(16 * (C + K) * Tmax + scratch);
    T* Mdy = V + 16 * C * Tmax;
    T* rows = Mdy + 16 * K * Tmax;
    for (int64_t job = j0; job < j1; ++job) {
      const int64_t n = job / per_image, ty0 = (job % per_image) * rpc, ty1 = std::min(th, ty0 + rpc);
      const int64_t Tc = (ty1 - ty0) * tw;
      input_transform(x + n * C * H * W, C, H, W, pad_h, pad_w, ty0, ty1, tw, V, rows);
      dy_transform(dy + n * K * OH * OW, K, OH, OW, ty0, ty1, tw, Mdy, rows);
      // per e: dU[e] (K, C) (+)= Mdy[e] (K, Tc) @ V[e]^T (Tc, C)
      gemm_strided_batched<T>(false, true, K, C, Tc, T(1), Mdy, Tc, K * Tc, V, Tc, C * Tc,
                              job == j0 ? T(0) : T(1), dU + c * USZ, C, K * C, 16);
    }
  };
  parallel_tasks(nchunks, nt, run_chunk);
  for (int64_t c = 1; c < nchunks; ++c)  // chunk order: deterministic
    for (int64_t i = 0; i < USZ; ++i) dU[i] += dU[c * USZ + i];
  // dw[k][c] (3x3) = G^T dU[k][c] (4x4) G,  G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1]
  const T Gt[3][4] = {{1, 0.5, 0.5, 0}, {0, 0.5, -0.5, 0}, {0, 0.5, 0.5, 1}};
  for (int64_t kc = 0; kc < K * C; ++kc) {
    T u[4][4], t[3][4];
    for (int e = 0; e < 16; ++e) u[e / 4][e % 4] = dU[e * K * C + kc];
    for (int a = 0; a < 3; ++a)
      for (int j = 0; j < 4; ++j) t[a][j] = Gt[a][0] * u[0][j] + Gt[a][1] * u[1][j] + Gt[a][2] * u[2][j] + Gt[a][3] * u[3][j];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b)
        dw[kc * 9 + a * 3 + b] = t[a][0] * Gt[b][0] + t[a][1] * Gt[b][1] + t[a][2] * Gt[b][2] + t[a][3] * Gt[b][3];
  }
}


// ---- Winograd F(4x4, 3x3) ----
// Each 4x4 output tile Y = A^T [ U .* V ] A with U = G g G^T and V = B^T d B over 6x6 input
// patches: 36 GEMMs  M[e] (K, tiles) = U[e] (K, C) @ V[e] (C, tiles),  4x fewer multiplies
// than im2col (F(2x2): 2.25x), and 2.25 transformed values per output instead of 4, so the
// transformed buffers (the memory traffic) shrink too. B^T, A^T: conv_winograd_f4_tf.h;
//   G = [1 0 0; -1/3 -1/3 -1/3; 1/3 -1/3 1/3; 1/15 2/15 4/15; -16/15 8/15 -4/15; 0 0 1].

// F(4x4, 3x3)'s filter transform G (above), read by the weight transform and by the weight
// gradient's final G^T . G.
static const double kWinograd4G[6][3] = {{1, 0, 0},
                                         {-1.0 / 3, -1.0 / 3, -1.0 / 3},
                                         {1.0 / 3, -1.0 / 3, 1.0 / 3},
                                         {1.0 / 15, 2.0 / 15, 4.0 / 15},
                                         {-16.0 / 15, 8.0 / 15, -4.0 / 15},
                                         {0, 0, 1}};

template <class T>
void winograd4_weights(const T* w, int64_t K, int64_t C, bool flip_transpose, T* U) {
  const auto& G = kWinograd4G;
  const int64_t Kout = flip_transpose ? C : K, Cin = flip_transpose ? K : C, es = Kout * Cin;
  constexpr int64_t kBlock = 16;  // input channels per step: 36 runs of 16 values, whole lines
  T u[36][kBlock];  // (the 36 streams are es apart, often a multiple of 4 KiB: one store per
                    // stream per pair kept evicting the lines from L1 -- 3% of the mid forward)
  for (int64_t o = 0; o < Kout; ++o)
    for (int64_t i0 = 0; i0 < Cin; i0 += kBlock) {
      const int64_t nb = std::min(kBlock, Cin - i0);
      for (int64_t j = 0; j < nb; ++j) {
        const int64_t i = i0 + j;
        double g[3][3];  // NOTE: in double, so float U carries one rounding, not three
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b)
            g[a][b] = flip_transpose ? w[(i * C + o) * 9 + (2 - a) * 3 + (2 - b)] : w[(o * C + i) * 9 + a * 3 + b];
        double t[6][3];  // G g
        for (int r = 0; r < 6; ++r)
          for (int b = 0; b < 3; ++b) t[r][b] = G[r][0] * g[0][b] + G[r][1] * g[1][b] + G[r][2] * g[2][b];
        for (int r = 0; r < 6; ++r)  // (G g) G^T
          for (int s = 0; s < 6; ++s)
            u[r * 6 + s][j] = static_cast<T>(t[r][0] * G[s][0] + t[r][1] * G[s][1] + t[r][2] * G[s][2]);
      }
      for (int e = 0; e < 36; ++e)
        for (int64_t j = 0; j < nb; ++j) U[e * es + o * Cin + i0 + j] = u[e][j];
    }
}

#if defined(LAMINA_X86)
void winograd4_input_transform_avx2(const float* x, int64_t C, int64_t H, int64_t W, int64_t pad_h,
                                    int64_t pad_w, int64_t ty0, int64_t ty1, int64_t tw, float* V,
                                    int64_t ldv, int64_t es, int64_t t0, float* rows);
bool winograd4_output_transform_avx2(const float* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                     int64_t ty1, int64_t tw, int64_t ldm, int64_t es, int64_t t0, const float* bias,
                                     float* y, float* rows);
void winograd4_dy_transform_avx2(const float* dy, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                 int64_t ty1, int64_t tw, float* Mdy, int64_t ldm, int64_t es, int64_t t0);
#endif

template <class T>
static void input_transform4(const T* x, int64_t C, int64_t H, int64_t W, int64_t pad_h, int64_t pad_w,
                             int64_t ty0, int64_t ty1, int64_t tw, T* V, int64_t ldv, int64_t es, int64_t t0, T* rows) {
#if defined(LAMINA_X86)
  if constexpr (sizeof(T) == 4)
    if (active_isa() >= Isa::avx2)
      return winograd4_input_transform_avx2(x, C, H, W, pad_h, pad_w, ty0, ty1, tw, V, ldv, es, t0, rows);
#endif
  wino_portable::wino4_input_transform<T>(x, C, H, W, pad_h, pad_w, ty0, ty1, tw, V, ldv, es, t0, rows);
}

template <class T>
static bool output_transform4(const T* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0, int64_t ty1,
                              int64_t tw, int64_t ldm, int64_t es, int64_t t0, const T* bias, T* y, T* rows) {
#if defined(LAMINA_X86)
  if constexpr (sizeof(T) == 4)
    if (active_isa() >= Isa::avx2)
      return winograd4_output_transform_avx2(M, K, OH, OW, ty0, ty1, tw, ldm, es, t0, bias, y, rows);
#endif
  return wino_portable::wino4_output_transform<T>(M, K, OH, OW, ty0, ty1, tw, ldm, es, t0, bias, y, rows);
}

// Elements between the 36 transformed matrices of rows x ld: rounded up to 4 KiB plus one
// cache line, so the 36 streams a transform writes (or reads) side by side fall in different
// L1 sets. At rows * ld a multiple of 4 KiB (64 x 64 floats) they all shared one 12-way set
// and lines were evicted half-written (the tile rows of a small map are 32 bytes). Measured
// mid 64x32x32 N=32, 1 thread, ms: fwd 11.0-11.2 -> 10.8, dx 10.9 -> 10.5, dw 10.9-11.6 -> 10.5.
template <class T>
static int64_t wino4_stride(int64_t rows, int64_t ld) {
  constexpr int64_t page = 4096 / sizeof(T), line = 64 / sizeof(T);
  return (rows * ld + page - 1) / page * page + line;
}

template <class T>
bool conv2d_winograd4(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad_h, int64_t pad_w,
                      const T* x, const T* U, const T* bias, T* y, Act act) {
  const int64_t OH = H + 2 * pad_h - 2, OW = W + 2 * pad_w - 2;
  if (N == 0 || OH <= 0 || OW <= 0) return true;
  std::atomic<bool> finite{true};
  const int64_t th = (OH + 3) / 4, tw = (OW + 3) / 4, tiles = th * tw;
  // A job: V (36, C, Tc) within the chunk budget -- several whole images when one image's
  // tiles fit (the GEMMs get >= ~200 columns on small maps), else rows of one image's tiles.
  // The cut depends on the shape only, never on the thread count: results are bit-identical
  // for any number of threads.
  const int64_t max_tiles =
      std::max<int64_t>(kWino4MinTiles, g_wino4_chunk_bytes / (36 * std::max(C, K) * int64_t(sizeof(T))));
  int64_t nimg = 1, rpc = th;
  if (tiles <= max_tiles) {
    const int64_t groups = (N + max_tiles / tiles - 1) / (max_tiles / tiles);
    nimg = (N + groups - 1) / groups;  // balanced: image groups differ by at most one image
  } else {
    rpc = std::max<int64_t>(1, max_tiles / tw);
  }
  const int64_t per_image = (th + rpc - 1) / rpc;
  const int64_t jobs = nimg > 1 ? (N + nimg - 1) / nimg : N * per_image;
  const int64_t Tmax = nimg > 1 ? nimg * tiles : rpc * tw, scratch = wino_portable::wino4_scratch(tw);

  auto run_job = [&](int64_t job) {
    const int64_t n0 = nimg > 1 ? job * nimg : job / per_image, n1 = nimg > 1 ? std::min(N, n0 + nimg) : n0 + 1;
    const int64_t ty0 = nimg > 1 ? 0 : (job % per_image) * rpc, ty1 = std::min(th, ty0 + rpc);
    const int64_t Tc = (n1 - n0) * (ty1 - ty0) * tw;  // GEMM columns: tiles of this job
    const int64_t esv = wino4_stride<T>(C, Tc), esm = wino4_stride<T>(K, Tc);
    T* V = winograd_workspace<T>(36 * (wino4_stride<T>(C, Tmax) + wino4_stride<T>(K, Tmax)) + scratch);
    T* Mt = V + 36 * esv;
    T* rows = Mt + 36 * esm;
    for (int64_t n = n0; n < n1; ++n)
      input_transform4(x + n * C * H * W, C, H, W, pad_h, pad_w, ty0, ty1, tw, V, Tc, esv, (n - n0) * tiles, rows);
    // per e: M[e] (K, Tc) = U[e] (K, C) @ V[e] (C, Tc)
    gemm_strided_batched<T>(false, false, K, Tc, C, T(1), U, C, K * C, V, Tc, esv, T(0), Mt, Tc, esm, 36);
    for (int64_t n = n0; n < n1; ++n) {
      if (!output_transform4(Mt, K, OH, OW, ty0, ty1, tw, Tc, esm, (n - n0) * tiles, bias, y + n * K * OH * OW, rows))
        finite.store(false, std::memory_order_relaxed);
      activate_rows(act, K, OH, OW, 4 * ty0, 4 * ty1, y + n * K * OH * OW);
    }
  };

  const double flops = 2.0 * 36 * K * C * tiles * N;
  parallel_tasks(jobs, team_size(flops, 2e5), run_job);
  return finite.load();
}

template <class T>
static void dy_transform4(const T* dy, int64_t K, int64_t OH, int64_t OW, int64_t ty0, int64_t ty1,
                          int64_t tw, T* Mdy, int64_t ldm, int64_t es, int64_t t0, T* rows) {
#if defined(LAMINA_X86)
  if constexpr (sizeof(T) == 4)
    if (active_isa() >= Isa::avx2) return winograd4_dy_transform_avx2(dy, K, OH, OW, ty0, ty1, tw, Mdy, ldm, es, t0);
#endif
  wino_portable::wino4_dy_transform<T>(dy, K, OH, OW, ty0, ty1, tw, Mdy, ldm, es, t0, rows);
}

// The weight gradient through the F(4x4) transforms (the transpose of conv2d_winograd4):
// y = A^T (U .* V) A per tile makes dU[e] (K, C) = sum over tiles of Mdy[e] (K, T) @ V[e]^T
// (T, C), Mdy = A dy A^T, and dw = G^T dU G (in double, once, at the end). Jobs are cut as in
// the forward (by shape only); a fixed number of contiguous job ranges (chunks) each sum into
// their own dU partial, added in chunk order: the same bits for any thread count.
template <class T>
void conv2d_winograd4_dw(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad_h,
                         int64_t pad_w, const T* x, const T* dy, T* dw) {
  const int64_t OH = H + 2 * pad_h - 2, OW = W + 2 * pad_w - 2, USZ = 36 * K * C;
  const int64_t th = (OH + 3) / 4, tw = (OW + 3) / 4, tiles = th * tw;
  if (N == 0 || OH <= 0 || OW <= 0) {
    std::fill(dw, dw + K * C * 9, T(0));
    return;
  }
  const int64_t max_tiles =
      std::max<int64_t>(kWino4MinTiles, g_wino4_dw_chunk_bytes / (36 * std::max(C, K) * int64_t(sizeof(T))));
  int64_t nimg = 1, rpc = th;
  if (tiles <= max_tiles) {
    const int64_t groups = (N + max_tiles / tiles - 1) / (max_tiles / tiles);
    nimg = (N + groups - 1) / groups;
  } else {
    rpc = std::max<int64_t>(1, max_tiles / tw);
  }
  const int64_t per_image = (th + rpc - 1) / rpc;
  const int64_t jobs = nimg > 1 ? (N + nimg - 1) / nimg : N * per_image;
  const int64_t Tmax = nimg > 1 ? nimg * tiles : rpc * tw, scratch = wino_portable::wino4_scratch(tw);
  const double flops = 2.0 * 36 * K * C * tiles * N;
  const int nt = static_cast<int>(std::min<int64_t>(team_size(flops, 2e5), jobs));
  const int64_t nchunks = std::min<int64_t>(jobs, std::max(4, nt));  // fixed: same sums at 1..4 threads
  static thread_local AlignedBuffer dU_buf;  // kept across calls (page faults otherwise)
  T* dU = dU_buf.elems<T>(nchunks * USZ);

  auto run_chunk = [&](int64_t c) {
    const int64_t j0 = jobs * c / nchunks, j1 = jobs * (c + 1) / nchunks;
    T* V = winograd_workspace<T>(36 * (wino4_stride<T>(C, Tmax) + wino4_stride<T>(K, Tmax)) + scratch);
    for (int64_t job = j0; job < j1; ++job) {
      const int64_t n0 = nimg > 1 ? job * nimg : job / per_image, n1 = nimg > 1 ? std::min(N, n0 + nimg) : n0 + 1;
      const int64_t ty0 = nimg > 1 ? 0 : (job % per_image) * rpc, ty1 = std::min(th, ty0 + rpc);
      const int64_t Tc = (n1 - n0) * (ty1 - ty0) * tw;
      const int64_t esv = wino4_stride<T>(C, Tc), esm = wino4_stride<T>(K, Tc);
      T* Mdy = V + 36 * esv;
      T* rows = Mdy + 36 * esm;
      for (int64_t n = n0; n < n1; ++n) {
        input_transform4(x + n * C * H * W, C, H, W, pad_h, pad_w, ty0, ty1, tw, V, Tc, esv, (n - n0) * tiles, rows);
        dy_transform4(dy + n * K * OH * OW, K, OH, OW, ty0, ty1, tw, Mdy, Tc, esm, (n - n0) * tiles, rows);
      }
      // per e: dU[e] (K, C) (+)= Mdy[e] (K, Tc) @ V[e]^T (Tc, C)
      gemm_strided_batched<T>(false, true, K, C, Tc, T(1), Mdy, Tc, esm, V, Tc, esv,
                              job == j0 ? T(0) : T(1), dU + c * USZ, C, K * C, 36);
    }
  };
  parallel_tasks(nchunks, nt, run_chunk);
  // dw[k][c] = G^T (sum of the chunks' dU[k][c], in chunk order) G; threads take rows k.
  const auto& G = kWinograd4G;
  // Per row k, vectorized along c: the chunks' sums (in double, chunk order), then G^T . G.
  parallel_tasks(K, team_size(double(USZ) * (nchunks + 4), 1e5), [&](int64_t k) {
    static thread_local std::vector<double> buf;
    buf.resize(size_t(54 * C));
    double* u = buf.data();       // u[e][c]
    double* t = u + 36 * C;       // t[a][j][c] = (G^T u)[a][j] for a < 3, j < 6
    for (int e = 0; e < 36; ++e) {
      const T* src = dU + e * K * C + k * C;
      double* ue = u + e * C;
      for (int64_t c = 0; c < C; ++c) ue[c] = double(src[c]);
      for (int64_t ch = 1; ch < nchunks; ++ch)
        for (int64_t c = 0; c < C; ++c) ue[c] += double(src[ch * USZ + c]);
    }
    for (int a = 0; a < 3; ++a)
      for (int j = 0; j < 6; ++j) {
        double* ta = t + (a * 6 + j) * C;
        for (int64_t c = 0; c < C; ++c) ta[c] = 0;
        for (int r = 0; r < 6; ++r) {
          const double g = G[r][a];
          if (g == 0) continue;
          const double* ur = u + (r * 6 + j) * C;
          for (int64_t c = 0; c < C; ++c) ta[c] += g * ur[c];
        }
      }
    for (int64_t c = 0; c < C; ++c)
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          double acc = 0;
          for (int j = 0; j < 6; ++j) acc += t[(a * 6 + j) * C + c] * G[j][b];
          dw[(k * C + c) * 9 + a * 3 + b] = static_cast<T>(acc);
        }
  });
}

#define LAMINA_INSTANTIATE_WINOGRAD(T)                                                             \
  template void winograd_weights<T>(const T*, int64_t, int64_t, bool, T*);                          \
  template void conv2d_winograd<T>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                   const T*, const T*, const T*, T*, Act);             \
  template void conv2d_winograd_dw<T>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                      const T*, const T*, T*);                                      \
  template void winograd4_weights<T>(const T*, int64_t, int64_t, bool, T*);                         \
  template bool conv2d_winograd4<T>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                    const T*, const T*, const T*, T*, Act);                        \
  template void conv2d_winograd4_dw<T>(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                       const T*, const T*, T*);
LAMINA_INSTANTIATE_WINOGRAD(float)
LAMINA_INSTANTIATE_WINOGRAD(double)

}  // namespace lamina
