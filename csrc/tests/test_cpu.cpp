#include "check.h"
#include "cpu.h"

int main() {
  using namespace lamina;
  CHECK(get_num_threads() >= 1);
  set_num_threads(3);
  CHECK(get_num_threads() == 3);
  CHECK(threads_for(10, 100) == 1);
  CHECK(threads_for(1000, 100) == 3);
  CHECK(threads_for(250, 100) == 2);
  set_num_threads(0);
  CHECK(get_num_threads() >= 1);
  CHECK(set_isa(Isa::portable));
  CHECK(active_isa() == Isa::portable);
  if (cpu_supports_avx2_fma()) CHECK(set_isa(Isa::avx2) && active_isa() == Isa::avx2);
  CHECK(set_isa(Isa::avx512) == cpu_supports_avx512());
  if (cpu_supports_avx512()) CHECK(active_isa() == Isa::avx512 && cpu_supports_avx2_fma());
  else CHECK(active_isa() != Isa::avx512);
  // AMX-BF16 implies AVX-512 and agrees with the AMX / AVX512-BF16 bits cpu_info() reports.
  if (cpu_supports_amx_bf16())
    CHECK(cpu_supports_avx512() && cpu_info().amx_tile && cpu_info().avx512_bf16);
  TEST_MAIN_END();
}
