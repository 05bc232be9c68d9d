#include "cpu.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <omp.h>
#include <unistd.h>

#include <cstdio>

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

bool cpu_supports_amx_bf16() {
#if defined(LAMINA_X86)
  if (!cpu_supports_avx512()) return false;
  unsigned a, b, c, d;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx512bw = b & (1u << 30), amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24);
  if (!(avx512bw && amx_bf16 && amx_tile)) return false;
  __cpuid_count(7, 1, a, b, c, d);
  if (!(a & (1u << 5))) return false;  // AVX512_BF16
  // XGETBV: XTILECFG (bit 17) and XTILEDATA (bit 18) are OS-managed state.
  unsigned xlo, xhi;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  return (xlo & (3u << 17)) == (3u << 17);
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

CpuCaches cpu_caches_from_cpuid() {
  CpuCaches c;
#if defined(LAMINA_X86)
  unsigned a, b, cx, d;
  __cpuid(0, a, b, cx, d);
  const unsigned max_leaf = a;
  const bool amd_like = b == 0x68747541u || b == 0x6f677948u;  // "Auth"(enticAMD), "Hygo"(nGenuine)
  unsigned leaf = 0;
  if (amd_like) {
    // 0x8000001D has leaf 4's layout on AMD, present when the topology extensions bit is set.
    __cpuid(0x80000000u, a, b, cx, d);
    if (a >= 0x8000001Du) {
      __cpuid(0x80000001u, a, b, cx, d);
      if (cx & (1u << 22)) leaf = 0x8000001Du;
    }
  } else if (max_leaf >= 4) {
    leaf = 4;
  }
  if (leaf == 0) return c;
  for (unsigned sub = 0; sub < 16; ++sub) {
    __cpuid_count(leaf, sub, a, b, cx, d);
    const unsigned type = a & 0x1f, level = (a >> 5) & 0x7;  // type 1 data, 2 instruction, 3 unified
    if (type == 0) break;
    if (type == 2) continue;
    const int64_t ways = ((b >> 22) & 0x3ff) + 1, parts = ((b >> 12) & 0x3ff) + 1;
    const int64_t line = (b & 0xfff) + 1, sets = int64_t(cx) + 1;
    const int64_t bytes = ways * parts * line * sets;
    if (level == 1) c.l1d = bytes;
    else if (level == 2) c.l2 = bytes;
    else if (level == 3) c.l3 = bytes;
    if (level == 1) c.line = line;
  }
  c.source = leaf == 4 ? "cpuid leaf 4" : "cpuid leaf 0x8000001d";
#endif
  return c;
}

namespace {

// sysconf (glibc reads CPUID or sysfs itself), then sysfs: for CPUs or VMs whose CPUID has no
// cache leaf, and for aarch64.
int64_t sysfs_cache_bytes(int index) {
  char path[96];
  std::snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  long v = 0;
  char unit = 0;
  const int got = std::fscanf(f, "%ld%c", &v, &unit);
  std::fclose(f);
  if (got < 1) return 0;
  return unit == 'M' ? int64_t(v) << 20 : unit == 'K' ? int64_t(v) << 10 : int64_t(v);
}

CpuCaches fill_missing_caches(CpuCaches c) {
#if defined(_SC_LEVEL1_DCACHE_SIZE)
  if (c.l1d <= 0 && (c.l1d = sysconf(_SC_LEVEL1_DCACHE_SIZE)) > 0) c.source = "sysconf";
  if (c.l2 <= 0) c.l2 = std::max<long>(0, sysconf(_SC_LEVEL2_CACHE_SIZE));
  if (c.l3 <= 0) c.l3 = std::max<long>(0, sysconf(_SC_LEVEL3_CACHE_SIZE));
  if (c.line <= 0) c.line = std::max<long>(0, sysconf(_SC_LEVEL1_DCACHE_LINESIZE));
#endif
  if (c.l1d <= 0) {  // sysfs index0 = L1d, 1 = L1i, 2 = L2, 3 = L3 on Linux x86 and arm64
    if ((c.l1d = sysfs_cache_bytes(0)) > 0) c.source = "sysfs";
    if (c.l2 <= 0) c.l2 = sysfs_cache_bytes(2);
    if (c.l3 <= 0) c.l3 = sysfs_cache_bytes(3);
  }
  if (c.l1d < 0) c.l1d = 0;
  if (c.line <= 0) c.line = 64;
  return c;
}

CpuInfo read_cpu_info() {
  CpuInfo info;
#if defined(LAMINA_X86)
  unsigned a, b, c, d;
  __cpuid(0, a, b, c, d);
  std::memcpy(info.vendor, &b, 4);
  std::memcpy(info.vendor + 4, &d, 4);
  std::memcpy(info.vendor + 8, &c, 4);
  __cpuid(0x80000000u, a, b, c, d);
  if (a >= 0x80000004u) {
    unsigned brand[12];
    for (unsigned i = 0; i < 3; ++i)
      __cpuid(0x80000002u + i, brand[4 * i], brand[4 * i + 1], brand[4 * i + 2], brand[4 * i + 3]);
    char raw[49] = {0};
    std::memcpy(raw, brand, 48);
    const char* s = raw;
    while (*s == ' ') ++s;  // Intel pads the brand string on the left
    std::snprintf(info.model, sizeof(info.model), "%s", s);
  }
  __cpuid(1, a, b, c, d);
  {
    const int base_family = int((a >> 8) & 0xF), base_model = int((a >> 4) & 0xF);
    info.family = base_family == 0xF ? base_family + int((a >> 20) & 0xFF) : base_family;
    info.model_number = base_family == 0xF || base_family == 0x6 ? (int((a >> 16) & 0xF) << 4) | base_model
                                                                 : base_model;
  }
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    info.amx_tile = d & (1u << 24);
    __cpuid_count(7, 1, a, b, c, d);
    info.avx512_bf16 = a & (1u << 5);
  }
#else
  if (FILE* f = std::fopen("/proc/cpuinfo", "r")) {  // aarch64 has no brand string: best effort
    char line[256];
    while (std::fgets(line, sizeof(line), f)) {
      const char* colon = std::strchr(line, ':');
      if (colon && (std::strncmp(line, "model name", 10) == 0 || std::strncmp(line, "CPU part", 8) == 0)) {
        std::snprintf(info.model, sizeof(info.model), "%s", colon + 2);
        info.model[std::strcspn(info.model, "\n")] = 0;
        break;
      }
    }
    std::fclose(f);
  }
#endif
  if (!info.model[0]) std::snprintf(info.model, sizeof(info.model), "unknown");
  info.caches = fill_missing_caches(cpu_caches_from_cpuid());
  return info;
}

}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = read_cpu_info();  // thread-safe one-time init (C++11 statics)
  return info;
}

bool cpu_is_zen4() {
  const CpuInfo& i = cpu_info();
  return std::strcmp(i.vendor, "AuthenticAMD") == 0 && i.family == 0x19 && cpu_supports_avx512();
}

int fma_f32_flops_per_cycle(Isa isa) {
  const CpuInfo& i = cpu_info();
  const bool amd = std::strcmp(i.vendor, "AuthenticAMD") == 0;
  switch (isa) {
    case Isa::avx2: return amd && i.family == 0x17 && i.model_number < 0x30 ? 16 : 32;
    case Isa::avx512: return amd && i.family == 0x19 ? 32 : 64;
    default: return 0;
  }
}

}  // namespace lamina
