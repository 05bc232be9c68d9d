// Scratch memory for kernels: a 64-byte aligned buffer that only grows, so a thread_local one
// serves every call, image and tile without allocating. Contents are neither kept nor zeroed
// between uses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace lamina {

struct AlignedBuffer {
  void* ptr = nullptr;
  size_t cap = 0;
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(ptr); }
  void* get(size_t bytes) {
    if (bytes > cap) {
      std::free(ptr);
      ptr = nullptr;
      cap = (bytes + 4095) / 4096 * 4096;  // whole pages: fewer regrowths
      ptr = std::aligned_alloc(64, cap);
      if (!ptr) { cap = 0; throw std::bad_alloc(); }
    }
    return ptr;
  }
  template <class T>
  T* elems(int64_t n) { return static_cast<T*>(get(sizeof(T) * static_cast<size_t>(n))); }
};

}  // namespace lamina
