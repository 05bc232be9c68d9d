// The random family's arithmetic (random_kernel.h) compiled with -mavx2 -mfma: std::fma is one
// instruction here. Called only when active_isa() >= Isa::avx2.
#include "random.h"

#if defined(LAMINA_X86)
#include <immintrin.h>

#include <initializer_list>

#include "random_kernel.h"

namespace lamina {
namespace detail {
namespace {

using random_kernel::f;

inline __m256 set(float v) { return _mm256_set1_ps(v); }

// random_kernel::log_f32 on 8 lanes, the same operations in the same order.
inline __m256 log8(__m256 x) {
  x = _mm256_max_ps(x, set(f(1.17549435e-38)));
  const __m256i bits = _mm256_castps_si256(x);
  __m256 e = _mm256_add_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0x7f))),
                           set(1.0f));
  const __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(~0x7f800000)), _mm256_set1_epi32(0x3f000000)));
  const __m256 small = _mm256_cmp_ps(m, set(f(0.707106781186547524)), _CMP_LT_OQ);
  const __m256 t = _mm256_add_ps(_mm256_sub_ps(m, set(1.0f)), _mm256_and_ps(small, m));
  e = _mm256_sub_ps(e, _mm256_and_ps(small, set(1.0f)));
  const __m256 z = _mm256_mul_ps(t, t);
  __m256 y = set(f(7.0376836292E-2));
  for (double p : {-1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                   2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1})
    y = _mm256_fmadd_ps(y, t, set(f(p)));
  y = _mm256_mul_ps(y, t);
  y = _mm256_fmadd_ps(y, z, _mm256_mul_ps(e, set(f(-2.12194440e-4))));
  y = _mm256_fmadd_ps(z, set(-0.5f), y);
  return _mm256_fmadd_ps(e, set(f(0.693359375)), _mm256_add_ps(t, y));
}

// random_kernel::sincos_f32 on 8 lanes (x >= 0).
inline void sincos8(__m256 x, __m256* s, __m256* c) {
  __m256i j = _mm256_cvttps_epi32(_mm256_mul_ps(x, set(f(1.27323954473516))));
  j = _mm256_and_si256(_mm256_add_epi32(j, _mm256_set1_epi32(1)), _mm256_set1_epi32(~1));
  const __m256 y = _mm256_cvtepi32_ps(j);
  const __m256i four = _mm256_set1_epi32(4);
  const __m256 sign_sin = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(j, four), 29));
  const __m256 sign_cos = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_andnot_si256(_mm256_sub_epi32(j, _mm256_set1_epi32(2)), four), 29));
  const __m256 sine_poly = _mm256_castsi256_ps(
      _mm256_cmpeq_epi32(_mm256_and_si256(j, _mm256_set1_epi32(2)), _mm256_setzero_si256()));
  x = _mm256_fmadd_ps(y, set(f(-0.78515625)), x);
  x = _mm256_fmadd_ps(y, set(f(-2.4187564849853515625e-4)), x);
  x = _mm256_fmadd_ps(y, set(f(-3.77489497744594108e-8)), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 cp = set(f(2.443315711809948E-005));
  cp = _mm256_fmadd_ps(cp, z, set(f(-1.388731625493765E-003)));
  cp = _mm256_fmadd_ps(cp, z, set(f(4.166664568298827E-002)));
  cp = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(cp, z), z, _mm256_sub_ps(_mm256_setzero_ps(),
                                                                             _mm256_mul_ps(z, set(0.5f)))),
                     set(1.0f));
  __m256 sp = set(f(-1.9515295891E-4));
  sp = _mm256_fmadd_ps(sp, z, set(f(8.3321608736E-3)));
  sp = _mm256_fmadd_ps(sp, z, set(f(-1.6666654611E-1)));
  sp = _mm256_fmadd_ps(_mm256_mul_ps(sp, z), x, x);
  *s = _mm256_xor_ps(_mm256_blendv_ps(cp, sp, sine_poly), sign_sin);
  *c = _mm256_xor_ps(_mm256_blendv_ps(sp, cp, sine_poly), sign_cos);
}

}  // namespace

// One block of 16 is one pass over 8 lanes, as PyTorch's AVX2 normal_fill does it.
void normal_blocks_avx2(int64_t blocks, float* data, float mean, float std) {
  const __m256 two_pi = set(f(2.0 * 3.14159265358979323846)), vmean = set(mean), vstd = set(std);
  for (int64_t b = 0; b < blocks; ++b) {
    float* d = data + 16 * b;
    const __m256 u1 = _mm256_sub_ps(set(1.0f), _mm256_loadu_ps(d));
    const __m256 radius = _mm256_sqrt_ps(_mm256_mul_ps(set(-2.0f), log8(u1)));
    __m256 s, c;
    sincos8(_mm256_mul_ps(two_pi, _mm256_loadu_ps(d + 8)), &s, &c);
    _mm256_storeu_ps(d, _mm256_fmadd_ps(_mm256_mul_ps(radius, c), vstd, vmean));
    _mm256_storeu_ps(d + 8, _mm256_fmadd_ps(_mm256_mul_ps(radius, s), vstd, vmean));
  }
}
void normal_blocks_avx2(int64_t blocks, double* data, double mean, double std) {
  random_kernel::normal_blocks(blocks, data, mean, std);
}
void fused_scale_shift_avx2(int64_t n, const float* x, float* y, float scale, float shift) {
  random_kernel::fused_scale_shift(n, x, y, scale, shift);
}
void fused_scale_shift_avx2(int64_t n, const double* x, double* y, double scale, double shift) {
  random_kernel::fused_scale_shift(n, x, y, scale, shift);
}

}  // namespace detail
}  // namespace lamina
#endif  // LAMINA_X86
