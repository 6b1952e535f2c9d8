// Small helpers shared by the kernel sources (compiled per ISA like them).
#pragma once
#include <omp.h>

#include <cstdint>

namespace ls {

// Elementwise loops below this size run on one thread: a parallel region costs more.
constexpr int64_t kParallelMin = 1 << 15;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace ls
