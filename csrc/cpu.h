// Run-time facts every kernel family needs: which ISA path is active and how many threads
// the work is worth. Kept free of Python so the kernels stay a plain C++ library.
#pragma once
#include <cstdint>

namespace lamina {

enum class Isa { portable = 0, avx2 = 1 };

// CPUID says AVX2 + FMA are present and the OS saves ymm state.
bool cpu_supports_avx2_fma();
// The path kernels dispatch to. Starts as the best the CPU supports; LAMINA_ISA=portable
// in the environment, or set_isa(), forces the portable path (tests compare the two).
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
