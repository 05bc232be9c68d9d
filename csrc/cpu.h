// Run-time facts every kernel family needs: which ISA path is active and how many threads
// the work is worth. Kept free of Python so the kernels stay a plain C++ library.
#pragma once
#include <cstdint>

namespace lamina {

// Ordered: each level includes the one below it. Kernel families test `active_isa() >=
// Isa::avx2`; only GEMM has AVX-512 micro-kernels, the other families run their AVX2 code
// at the avx512 level.
enum class Isa { portable = 0, avx2 = 1, avx512 = 2 };

// CPUID says AVX2 + FMA are present and the OS saves ymm state.
bool cpu_supports_avx2_fma();
// ... and AVX-512F too, with the OS saving opmask and zmm state.
bool cpu_supports_avx512();
// The path kernels dispatch to. Starts as the best the CPU supports; LAMINA_ISA=portable
// or LAMINA_ISA=avx2 in the environment, or set_isa(), caps it (tests compare the paths).
Isa active_isa();
// Returns false (and changes nothing) if the CPU cannot run `isa`.
bool set_isa(Isa isa);
const char* isa_name(Isa isa);

// Thread budget for lamina's kernels (separate from NumPy's BLAS threads).
int get_num_threads();
void set_num_threads(int n);  // n <= 0 resets to the number of cores
// How many threads `work` units are worth, given that one thread should get at least
// `min_work_per_thread` units (fork/join costs a few microseconds). Never more than
// get_num_threads(), never less than 1.
int threads_for(double work, double min_work_per_thread);

const char* version();

}  // namespace lamina
