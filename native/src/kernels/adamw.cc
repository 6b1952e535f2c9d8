// AdamW in one multi-threaded pass over a flat parameter buffer (PyTorch semantics).
#include <cmath>

#include "kernels/common.h"
#include "kernels/ops.h"

namespace ls {
namespace LS_ISA {

template <class T>
void adamw(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2, double eps, double wd,
           int64_t step, double gscale) {
  const T decay = T(1.0 - lr * wd);
  const T b1 = T(beta1), b2 = T(beta2), gs = T(gscale);
  const T step_size = T(lr / (1.0 - std::pow(beta1, double(step))));
  const T inv_sqrt_bc2 = T(1.0 / std::sqrt(1.0 - std::pow(beta2, double(step))));
  const T e = T(eps);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] * gs;
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + e);
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(adamw)
