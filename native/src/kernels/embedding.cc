// Token embedding lookup and its backward (scatter-add into the table's gradient).
#include <cstring>

#include "kernels/common.h"
#include "kernels/ops.h"

namespace ls {
namespace LS_ISA {

// out: (N, C), ids: (N), table: (V, C)
template <class T>
void embedding_forward(T* out, const int32_t* ids, const T* table, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; ++n) std::memcpy(out + n * C, table + int64_t(ids[n]) * C, sizeof(T) * C);
}

// dtable: (V, C) += scatter of dout: (N, C). Threads own disjoint column ranges, so the result
// is deterministic and independent of the thread count.
template <class T>
void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t C, int64_t V) {
  constexpr int64_t kCols = 64;
  const int64_t chunks = ceil_div(C, kCols);
#pragma omp parallel for schedule(static) if (N * C > kParallelMin)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t c0 = ch * kCols, c1 = c0 + kCols < C ? c0 + kCols : C;
    for (int64_t n = 0; n < N; ++n) {
      T* dst = dtable + int64_t(ids[n]) * C;
      const T* src = dout + n * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(embedding_forward)
LS_INSTANTIATE(embedding_backward)
