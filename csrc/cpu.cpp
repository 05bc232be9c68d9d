#include "cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <omp.h>

#if defined(LAMINA_X86)
#include <cpuid.h>
#endif

#ifndef LAMINA_VERSION
#define LAMINA_VERSION "0.0.0"
#endif

namespace lamina {

bool cpu_supports_avx2_fma() {
#if defined(LAMINA_X86)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
  if (!(fma && osxsave && avx)) return false;
  // XGETBV: the OS must save xmm (bit 1) and ymm (bit 2) state on context switch.
  unsigned xlo, xhi;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  if ((xlo & 6u) != 6u) return false;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  return b & (1u << 5);  // AVX2
#else
  return false;
#endif
}

bool cpu_supports_avx512() {
#if defined(LAMINA_X86)
  if (!cpu_supports_avx2_fma()) return false;
  // XGETBV: opmask (bit 5), upper halves of zmm0-15 (bit 6) and zmm16-31 (bit 7) saved too.
  unsigned xlo, xhi;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  if ((xlo & 0xE6u) != 0xE6u) return false;
  unsigned a, b, c, d;
  __cpuid_count(7, 0, a, b, c, d);
  return b & (1u << 16);  // AVX512F
#else
  return false;
#endif
}

static std::atomic<int> g_isa{-1};
static std::atomic<int> g_threads{0};

static Isa detect_isa() {
  const char* env = std::getenv("LAMINA_ISA");
  if (env && std::strcmp(env, "portable") == 0) return Isa::portable;
  if (cpu_supports_avx512() && !(env && std::strcmp(env, "avx2") == 0)) return Isa::avx512;
  return cpu_supports_avx2_fma() ? Isa::avx2 : Isa::portable;
}

Isa active_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(detect_isa());
    g_isa.store(v, std::memory_order_relaxed);
  }
  return static_cast<Isa>(v);
}

bool set_isa(Isa isa) {
  if (isa == Isa::avx2 && !cpu_supports_avx2_fma()) return false;
  if (isa == Isa::avx512 && !cpu_supports_avx512()) return false;
  g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2+fma";
    default: return "portable";
  }
}

int get_num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n <= 0) {
    n = omp_get_num_procs();
    if (const char* env = std::getenv("LAMINA_NUM_THREADS")) {
      int e = std::atoi(env);
      if (e > 0) n = e;
    }
    if (n < 1) n = 1;
    g_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) {
  if (n <= 0) {
    g_threads.store(0, std::memory_order_relaxed);
    get_num_threads();
  } else {
    g_threads.store(n, std::memory_order_relaxed);
  }
}

int threads_for(double work, double min_work_per_thread) {
  const int cap = get_num_threads();
  if (min_work_per_thread <= 0) return cap;
  double t = work / min_work_per_thread;
  if (t < 1.0) return 1;
  return t >= cap ? cap : static_cast<int>(t);
}

const char* version() { return LAMINA_VERSION; }

}  // namespace lamina
