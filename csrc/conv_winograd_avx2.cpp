// The Winograd tile transforms compiled with AVX2 + FMA (float; call only when
// active_isa() == avx2). Same source as the portable copy: conv_winograd_tf.h.
#if defined(LAMINA_X86)
#define LAMINA_WINO_NS wino_avx2
#include "conv_winograd_tf.h"

namespace lamina {
void winograd_input_transform_avx2(const float* x, int64_t C, int64_t H, int64_t W, int64_t pad_h,
                                   int64_t pad_w, int64_t ty0, int64_t ty1, int64_t tw, float* V,
                                   float* rows) {
  wino_avx2::wino_input_transform<float>(x, C, H, W, pad_h, pad_w, ty0, ty1, tw, V, rows);
}
void winograd_output_transform_avx2(const float* M, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                    int64_t ty1, int64_t tw, const float* bias, float* y, float* rows) {
  wino_avx2::wino_output_transform<float>(M, K, OH, OW, ty0, ty1, tw, bias, y, rows);
}
void winograd_dy_transform_avx2(const float* dy, int64_t K, int64_t OH, int64_t OW, int64_t ty0,
                                int64_t ty1, int64_t tw, float* Mdy, float* rows) {
  wino_avx2::wino_dy_transform<float>(dy, K, OH, OW, ty0, ty1, tw, Mdy, rows);
}
}  // namespace lamina
#endif
