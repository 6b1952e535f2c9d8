// Small helpers shared by the kernel sources (compiled per ISA like them).
#pragma once
#include <omp.h>

#include <cstdint>
#include <type_traits>

#include "bf16/convert.h"

namespace ls {

// Elementwise loops below this size run on one thread: a parallel region costs more.
constexpr int64_t kParallelMin = 1 << 15;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A kernel's output element of type O from a value v: v itself, or (O = uint16_t) the bf16 bits
// of v rounded to nearest even (bf16/convert.h), for outputs kept in bf16 under mixed precision.
template <class O, class T>
inline O out_as(T v) {
  if constexpr (std::is_same<O, uint16_t>::value)
    return bf16_from(v);
  else
    return v;
}

}  // namespace ls
