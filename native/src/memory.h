// Native memory: 64-byte aligned storage handed to JavaScript as external ArrayBuffers, and
// per-thread kernel workspaces. Every byte is counted so the trainer can report its memory.
#pragma once
#include <cstddef>
#include <cstdint>

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

}  // namespace ls
