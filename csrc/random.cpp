// Random family (random.h): dispatch to the AVX2 + FMA build of random_kernel.h when the CPU
// has it, else the portable one. Both compute the same bits.
#include "random.h"

#include "cpu.h"
#include "random_kernel.h"

namespace lamina {

void normal_blocks(int64_t blocks, float* data, float mean, float std) {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx2) return detail::normal_blocks_avx2(blocks, data, mean, std);
#endif
  random_kernel::normal_blocks(blocks, data, mean, std);
}

void normal_blocks(int64_t blocks, double* data, double mean, double std) {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx2) return detail::normal_blocks_avx2(blocks, data, mean, std);
#endif
  random_kernel::normal_blocks(blocks, data, mean, std);
}

void fused_scale_shift(int64_t n, const float* x, float* y, float scale, float shift) {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx2) return detail::fused_scale_shift_avx2(n, x, y, scale, shift);
#endif
  random_kernel::fused_scale_shift(n, x, y, scale, shift);
}

void fused_scale_shift(int64_t n, const double* x, double* y, double scale, double shift) {
#if defined(LAMINA_X86)
  if (active_isa() >= Isa::avx2) return detail::fused_scale_shift_avx2(n, x, y, scale, shift);
#endif
  random_kernel::fused_scale_shift(n, x, y, scale, shift);
}

}  // namespace lamina
