#include "memory.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace ls {
namespace {

std::atomic<int64_t> g_storage{0};
std::atomic<int64_t> g_storage_peak{0};
std::atomic<int64_t> g_workspace{0};

void note_peak(int64_t now) {
  int64_t peak = g_storage_peak.load();
  while (now > peak && !g_storage_peak.compare_exchange_weak(peak, now)) {
  }
}

size_t round_up(size_t bytes) { return (bytes + 63) / 64 * 64; }

struct Workspace {
  void* ptr[kWorkspaceSlots] = {};
  size_t size[kWorkspaceSlots] = {};
  ~Workspace() {
    for (int i = 0; i < kWorkspaceSlots; ++i) {
      std::free(ptr[i]);
      g_workspace -= static_cast<int64_t>(size[i]);
    }
  }
};

thread_local Workspace t_workspace;

}  // namespace

void* storage_alloc(size_t bytes) {
  size_t n = round_up(bytes == 0 ? 64 : bytes);
  void* p = std::aligned_alloc(64, n);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, n);
  note_peak(g_storage += static_cast<int64_t>(n));
  return p;
}

void storage_free(void* p, size_t bytes) {
  std::free(p);
  g_storage -= static_cast<int64_t>(round_up(bytes == 0 ? 64 : bytes));
}

MemoryStats memory_stats() { return {g_storage.load(), g_storage_peak.load(), g_workspace.load()}; }

void memory_reset_peak() { g_storage_peak = g_storage.load(); }

void* thread_workspace(size_t bytes, int slot) {
  Workspace& w = t_workspace;
  if (w.size[slot] < bytes) {
    size_t n = round_up(bytes + bytes / 4);
    void* p = std::aligned_alloc(64, n);
    if (!p) throw std::bad_alloc();
    std::free(w.ptr[slot]);
    g_workspace += static_cast<int64_t>(n) - static_cast<int64_t>(w.size[slot]);
    w.ptr[slot] = p;
    w.size[slot] = n;
  }
  return w.ptr[slot];
}

}  // namespace ls
