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

// The fused path's MLP computes gate and up with one GEMM over the concatenated weights:
// gu (N, 2F) holds gate in columns [0, F) and up in [F, 2F) of each row.
template <class T>
void swiglu_packed_forward(T* out, const T* gu, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static) if (N * F > kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const T* g = gu + n * 2 * F;
    const T* u = g + F;
    T* o = out + n * F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) o[i] = g[i] / (T(1) + std::exp(-g[i])) * u[i];
  }
}

// dgu (N, 2F) overwritten, may alias gu: each element is read before it is written.
template <class T>
void swiglu_packed_backward(T* dgu, const T* dout, const T* gu, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static) if (N * F > kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const T* g = gu + n * 2 * F;
    const T* u = g + F;
    const T* d = dout + n * F;
    T* dg = dgu + n * 2 * F;
    T* du = dg + F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) {
      const T gi = g[i], ui = u[i], di = d[i];
      const T s = T(1) / (T(1) + std::exp(-gi));
      du[i] = di * gi * s;
      dg[i] = di * ui * (s + gi * s * (T(1) - s));
    }
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(swiglu_forward)
LS_INSTANTIATE(swiglu_backward)
LS_INSTANTIATE(swiglu_packed_forward)
LS_INSTANTIATE(swiglu_packed_backward)
