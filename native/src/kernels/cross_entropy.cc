// Softmax cross-entropy over materialized logits (the standard path): the forward saves the
// per-row log-sum-exp, the backward turns the logits into their gradient (in place allowed).
#include <cmath>
#include <limits>

#include "kernels/common.h"
#include "kernels/ops.h"
#include "memory.h"

namespace ls {
namespace LS_ISA {

// lse: (N), logits: (N, V), targets: (N) in [-1, V). Returns the summed loss of rows with
// target >= 0, summed in row order (deterministic for any thread count).
template <class T>
double cross_entropy_forward(T* lse, const T* logits, const int32_t* targets, int64_t N, int64_t V) {
  double* row_loss = static_cast<double*>(thread_workspace(sizeof(double) * N, 2));
#pragma omp parallel for schedule(static) if (N * V > kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    T mx = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < V; ++j) mx = x[j] > mx ? x[j] : mx;
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < V; ++j) sum += std::exp(x[j] - mx);
    const T l = mx + std::log(sum);
    lse[n] = l;
    row_loss[n] = targets[n] >= 0 ? double(l) - double(x[targets[n]]) : 0.0;
  }
  double total = 0;
  for (int64_t n = 0; n < N; ++n) total += row_loss[n];
  return total;
}

// dlogits: (N, V) = (softmax - onehot(target)) * dloss; rows with target < 0 become 0.
template <class T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int32_t* targets, int64_t N,
                            int64_t V, T dloss) {
#pragma omp parallel for schedule(static) if (N * V > kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    T* d = dlogits + n * V;
    const int32_t t = targets[n];
    if (t < 0) {
      for (int64_t j = 0; j < V; ++j) d[j] = 0;
      continue;
    }
    const T l = lse[n];
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) d[j] = std::exp(x[j] - l) * dloss;
    d[t] -= dloss;
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(cross_entropy_forward)
LS_INSTANTIATE(cross_entropy_backward)
