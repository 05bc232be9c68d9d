// lamina._C: one pybind11 module; each kernel family registers its functions from its own
// bind_<family>.cpp so the families stay independent.
#include <pybind11/pybind11.h>

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cpu.h"

namespace py = pybind11;

void bind_gemm(py::module_& m);
void bind_conv(py::module_& m);
void bind_pool(py::module_& m);
void bind_activation(py::module_& m);
void bind_loss(py::module_& m);
void bind_optim(py::module_& m);
void bind_graph(py::module_& m);
void bind_norm(py::module_& m);
void bind_dlpack(py::module_& m);
void bind_random(py::module_& m);

#ifndef LAMINA_COMPILER
#define LAMINA_COMPILER "unknown"
#endif

// Eager training allocates and frees the same few-MB activation buffers every step. glibc
// serves those with fresh mmaps (or trims the heap after each free), so every step pays
// thousands of page faults (measured: LeNet-5 batch 256, 4.8k faults and 36 ms -> 0 and 22 ms
// per step). Keep freed memory for reuse instead; LAMINA_MALLOC_TUNING=0 leaves glibc alone.
static bool tune_malloc() {
#if defined(__GLIBC__)
  const char* env = std::getenv("LAMINA_MALLOC_TUNING");
  if (env && env[0] == '0') return false;
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 64 << 20) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 512 << 20) == 1;
  return mmap_ok && trim_ok;
#else
  return false;
#endif
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "lamina's compiled kernels";
  m.attr("__version__") = LAMINA_VERSION;
  m.attr("compiler") = LAMINA_COMPILER;
  m.attr("malloc_tuned") = tune_malloc();
  m.def("get_num_threads", &lamina::get_num_threads, "Threads lamina's kernels may use.");
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("num_threads: expected a positive integer, got " + std::to_string(n));
    lamina::set_num_threads(n);
  }, py::arg("n"));
  m.def("isa", []() { return std::string(lamina::isa_name(lamina::active_isa())); },
        "The instruction-set path the kernels dispatch to at run time.");
  m.def("cpu_supports_avx2_fma", &lamina::cpu_supports_avx2_fma);
  m.def("cpu_supports_avx512", &lamina::cpu_supports_avx512);
  m.def("set_isa", [](const std::string& name) {
    if (name == "portable") return lamina::set_isa(lamina::Isa::portable);
    if (name == "avx2" || name == "avx2+fma") return lamina::set_isa(lamina::Isa::avx2);
    if (name == "avx512") return lamina::set_isa(lamina::Isa::avx512);
    throw py::value_error("isa: expected 'portable', 'avx2' or 'avx512', got '" + name + "'");
  }, py::arg("name"), "Force a kernel path (for testing); returns False if the CPU lacks it.");
  bind_gemm(m);
  bind_conv(m);
  bind_pool(m);
  bind_activation(m);
  bind_loss(m);
  bind_optim(m);
  bind_graph(m);
  bind_norm(m);
  bind_random(m);
  bind_dlpack(m);
}
