// Run-time facts every kernel family needs: which ISA path is active and how many threads
// the work is worth. Kept free of Python so the kernels stay a plain C++ library.
#pragma once
#include <cstdint>

namespace lamina {

// Ordered: each level includes the one below it. Kernel families test `active_isa() >=
// Isa::avx2`. GEMM, direct convolution (forward and backward) and tanh/sigmoid have AVX-512
// kernels (*_avx512.cpp); the other families run their AVX2 code at the avx512 level.
enum class Isa { portable = 0, avx2 = 1, avx512 = 2 };

// CPUID says AVX2 + FMA are present and the OS saves ymm state.
bool cpu_supports_avx2_fma();
// ... and AVX-512F too, with the OS saving opmask and zmm state.
bool cpu_supports_avx512();
// ... and AMX-TILE + AMX-BF16 (with AVX512-BF16 and AVX512-BW), the OS managing the tile state
// (XCR0 bits 17-18). Linux still hands each process the 8 KiB tile data only on request
// (arch_prctl), which the AMX GEMM path (gemm_amx.cpp) makes.
bool cpu_supports_amx_bf16();
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

// What the CPU reports about itself, read once at run time (never a build-time guess): the
// facts GEMM blocking and the benchmark reports need. A size the CPU does not report is 0.
struct CpuCaches {
  int64_t l1d = 0;   // bytes of L1 data cache per core
  int64_t l2 = 0;    // bytes of L2 per core (or per its sharing group)
  int64_t l3 = 0;    // bytes of the last-level cache instance (shared by several cores)
  int64_t line = 0;  // cache line bytes
  const char* source = "none";  // "cpuid leaf 4", "cpuid leaf 0x8000001d", "sysconf", "sysfs"
};
struct CpuInfo {
  char vendor[13] = {0};  // "GenuineIntel", "AuthenticAMD", ... ("" off x86)
  char model[64] = {0};   // the brand string, e.g. "AMD EPYC 7B13 64-Core Processor"
  CpuCaches caches;
  bool amx_tile = false, avx512_bf16 = false;  // reported (kernels ask cpu_supports_amx_bf16)
  int family = 0, model_number = 0;  // CPUID leaf 1 display family / model (0 off x86)
};
const CpuInfo& cpu_info();
// AMD Zen 4 (AuthenticAMD, family 0x19, with AVX-512): its zmm instructions run double-pumped
// on 256-bit units, so blocking and kernel choices that differ from Intel's AVX-512 are gated
// on this.
bool cpu_is_zen4();
// Float32 flops per cycle of one core's FMA units at the vector width of `isa`, derived from
// CPUID vendor / family (not measured): ymm 2 pipes x 8 lanes x 2 = 32 (Zen 1, family 0x17
// below model 0x30, splits ymm in two: 16); zmm 64 with two 512-bit FMA pipes (Intel server
// cores, Zen 5), 32 on Zen 4 (double-pumped 256-bit). Intel parts with one 512-bit FMA port
// exist and CPUID does not say so: the benchmarks print the measured zmm / ymm ratio beside it.
// 0 for the portable path.
int fma_f32_flops_per_cycle(Isa isa);
// The cache walk itself, exposed so tests can check it against the sysconf / sysfs view.
CpuCaches cpu_caches_from_cpuid();

}  // namespace lamina
