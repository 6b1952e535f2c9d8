// SwiGLU activation of the Llama MLP: out = silu(gate) * up, as a separate elementwise pass
// (the standard path; the fused path applies it in the GEMM epilogue).
#include <cmath>

#include "kernels/common.h"
#include "kernels/ops.h"

namespace ls {
namespace LS_ISA {

template <class T>
void swiglu_forward(T* out, const T* gate, const T* up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    out[i] = g / (T(1) + std::exp(-g)) * up[i];
  }
}

// d silu(g)/dg = s + g s (1 - s), s = sigmoid(g)
template <class T>
void swiglu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    const T s = T(1) / (T(1) + std::exp(-g));
    const T d = dout[i];
    dup[i] = d * g * s;
    dgate[i] = d * up[i] * (s + g * s * (T(1) - s));
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(swiglu_forward)
LS_INSTANTIATE(swiglu_backward)
