// One way to split elementwise work across threads, shared by the activation, loss and
// optimizer families: small arrays stay on one thread (fork/join costs microseconds), large
// ones go in dynamic chunks so a thread whose core was taken by another process does not
// stall the rest.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cpu.h"

namespace lamina {

// Below this many elements per thread, stay single-threaded.
constexpr int64_t kElemsPerThread = 32768;
// Dynamic chunk size (a multiple of 8 SIMD lanes).
constexpr int64_t kElemChunk = 16384;

// Calls f(i0, i1) over [0, n) in chunks, possibly from several threads.
template <class F>
void parallel_ranges(int64_t n, F&& f) {
  const int nt = threads_for(static_cast<double>(n), static_cast<double>(kElemsPerThread));
  if (nt <= 1) {
    f(int64_t{0}, n);
    return;
  }
  const int64_t nchunks = (n + kElemChunk - 1) / kElemChunk;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t c = 0; c < nchunks; ++c) f(c * kElemChunk, std::min(n, (c + 1) * kElemChunk));
}

}  // namespace lamina
