// AdamW in one multi-threaded pass over a flat parameter buffer (PyTorch semantics).
#include <cmath>

#include "kernels/common.h"
#include "kernels/ops.h"

namespace ls {
namespace LS_ISA {

// kBf16: the updated parameters are also written, rounded to bf16 (nearest even), into pb: the
// working copy of bf16 training, made in the same pass.
template <class T, bool kBf16>
static void adamw_pass(T* p, const T* g, T* m, T* v, uint16_t* pb, int64_t n, double lr, double beta1, double beta2,
                       double eps, double wd, int64_t step, double gscale) {
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
    const T pi = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + e);
    p[i] = pi;
    if constexpr (kBf16) pb[i] = bf16_from(pi);
  }
}

template <class T>
void adamw(T* p, const T* g, T* m, T* v, uint16_t* pb, int64_t n, double lr, double beta1, double beta2, double eps,
           double wd, int64_t step, double gscale) {
  if (pb)
    adamw_pass<T, true>(p, g, m, v, pb, n, lr, beta1, beta2, eps, wd, step, gscale);
  else
    adamw_pass<T, false>(p, g, m, v, pb, n, lr, beta1, beta2, eps, wd, step, gscale);
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(adamw)
