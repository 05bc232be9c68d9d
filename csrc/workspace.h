// Scratch memory for kernels: a 64-byte aligned buffer that only grows, so a thread_local one
// serves every call, image and tile without allocating. Contents are neither kept nor zeroed
// between uses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lamina {

struct AlignedBuffer {
  void* ptr = nullptr;
  size_t cap = 0;
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(ptr); }
  // > 0: a buffer of at least this many bytes is made of whole 2 MiB pages, asked for as
  // transparent huge pages (GEMM's packed panels: one TLB entry instead of 512 for the panel
  // every micro-kernel call walks; measured 1024^3 f32 1 thread ~58% -> ~63% of FMA peak).
  size_t huge_from = 0;
  void* get(size_t bytes) {
    if (bytes > cap) {
      std::free(ptr);
      ptr = nullptr;
      const bool huge = huge_from > 0 && bytes >= huge_from;
      const size_t page = huge ? size_t(2) << 20 : 4096;
      cap = (bytes + page - 1) / page * page;  // whole pages: fewer regrowths
      ptr = std::aligned_alloc(huge ? page : 64, cap);
      if (!ptr) { cap = 0; throw std::bad_alloc(); }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      if (huge) madvise(ptr, cap, MADV_HUGEPAGE);  // advice only: failure leaves 4 KiB pages
#endif
    }
    return ptr;
  }
  template <class T>
  T* elems(int64_t n) { return static_cast<T*>(get(sizeof(T) * static_cast<size_t>(n))); }
};

}  // namespace lamina
