// Native memory: 64-byte aligned storage handed to JavaScript as external ArrayBuffers, and
// per-thread kernel workspaces. Every byte is counted so the trainer can report its memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace ls {

struct MemoryStats {
  int64_t storage_bytes;       // live storage handed to JS
  int64_t storage_peak_bytes;  // high-water mark since the last reset
  int64_t workspace_bytes;     // live kernel workspaces (all threads)
};

void* storage_alloc(size_t bytes);  // zero-filled, 64-byte aligned; throws std::bad_alloc
void storage_free(void* p, size_t bytes);
MemoryStats memory_stats();
void memory_reset_peak();

// A 64-byte aligned scratch buffer owned by the calling thread, at least `bytes` long. `slot`
// (0..kWorkspaceSlots-1) lets one kernel hold several at once. It grows only when a larger
// size is asked for, so a training step of fixed shapes allocates nothing after warm-up.
constexpr int kWorkspaceSlots = 4;
void* thread_workspace(size_t bytes, int slot);

// A workspace carved into 64-byte aligned pieces: carve_bytes() sizes it, Carve hands the pieces
// out in the same order.
struct Carve {
  char* p;
  template <class X>
  X* take(int64_t n) {
    X* r = reinterpret_cast<X*>(p);
    p += (n * static_cast<int64_t>(sizeof(X)) + 63) / 64 * 64;
    return r;
  }
};
inline int64_t carve_bytes(std::initializer_list<int64_t> byte_sizes) {
  int64_t s = 0;
  for (int64_t n : byte_sizes) s += (n + 63) / 64 * 64;
  return s;
}

}  // namespace ls
