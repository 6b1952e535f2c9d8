// RMSNorm (Llama): out = x / sqrt(mean(x^2) + eps) * w. The standard path: separate passes.
#include <algorithm>
#include <cmath>

#include "kernels/common.h"
#include "kernels/ops.h"
#include "memory.h"

namespace ls {
namespace LS_ISA {

// out: (N, C), rstd: (N), x: (N, C), w: (C); out of type O (T, or bf16 bits: out_as).
template <class T, class O>
static void rmsnorm_forward_as(O* out, T* rstd, const T* x, const T* w, int64_t N, int64_t C, T eps) {
#pragma omp parallel for schedule(static) if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * C;
    O* o = out + n * C;
    T ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
    const T r = T(1) / std::sqrt(ss / T(C) + eps);
    rstd[n] = r;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = out_as<O>(xr[c] * r * w[c]);
  }
}

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int64_t N, int64_t C, T eps) {
  rmsnorm_forward_as(out, rstd, x, w, N, C, eps);
}

template <class T>
void rmsnorm_forward_bf16(uint16_t* out, T* rstd, const T* x, const T* w, int64_t N, int64_t C, T eps) {
  rmsnorm_forward_as(out, rstd, x, w, N, C, eps);
}

// The fused path's residual add + norm in one pass: resid (N, C) = x + y (resid may alias x),
// out = resid * rstd * w, of type O (T, or bf16 bits: the GEMM operand of bf16 training).
template <class T, class O>
static void add_rmsnorm_forward_as(T* resid, O* out, T* rstd, const T* x, const T* y, const T* w, int64_t N,
                                   int64_t C, T eps) {
#pragma omp parallel for schedule(static) if (N * C > kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * C;
    const T* yr = y + n * C;
    T* r = resid + n * C;
    O* o = out + n * C;
    T ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) {
      const T v = xr[c] + yr[c];
      r[c] = v;
      ss += v * v;
    }
    const T rs = T(1) / std::sqrt(ss / T(C) + eps);
    rstd[n] = rs;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = out_as<O>(r[c] * rs * w[c]);
  }
}

template <class T>
void add_rmsnorm_forward(T* resid, T* out, T* rstd, const T* x, const T* y, const T* w, int64_t N, int64_t C,
                         T eps) {
  add_rmsnorm_forward_as(resid, out, rstd, x, y, w, N, C, eps);
}

template <class T>
void add_rmsnorm_forward_bf16(T* resid, uint16_t* out, T* rstd, const T* x, const T* y, const T* w, int64_t N,
                              int64_t C, T eps) {
  add_rmsnorm_forward_as(resid, out, rstd, x, y, w, N, C, eps);
}

// dx: (N, C) += dL/dx; dw: (C) += dL/dw. With y_c = x_c r w_c and r = (mean(x^2)+eps)^-1/2:
//   dx_c = r w_c g_c - x_c r^3 / C * sum_j(g_j w_j x_j)
// dx16 (nullable): the updated dx also rounded to bf16 bits, in the same pass (the residual
// gradient as the next backward GEMMs' operand in bf16 training).
template <class T>
static void rmsnorm_backward_as(T* dx, uint16_t* dx16, T* dw, const T* dout, const T* x, const T* w, const T* rstd,
                                int64_t N, int64_t C) {
  // dw from partial sums over fixed blocks of kDwRows rows, formed while each row is in cache
  // for dx (a second pass over dout and x cost a fifth of the kernel's traffic), then added in
  // block order per column: the same bits for any thread count. The partials live in slot 3 of
  // the calling thread ((N / kDwRows) x C values).
  constexpr int64_t kDwRows = 32;
  const int64_t blocks = ceil_div(N, kDwRows);
  T* part = static_cast<T*>(thread_workspace(sizeof(T) * (blocks > 0 ? blocks : 1) * C, 3));
#pragma omp parallel for schedule(static) if (N * C > kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    T* pw = part + b * C;
    for (int64_t c = 0; c < C; ++c) pw[c] = T(0);
    const int64_t n1 = std::min(N, (b + 1) * kDwRows);
    for (int64_t n = b * kDwRows; n < n1; ++n) {
      const T* g = dout + n * C;
      const T* xr = x + n * C;
      T* d = dx + n * C;
      const T r = rstd[n];
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; ++c) dot += g[c] * w[c] * xr[c];
      const T k = dot * r * r * r / T(C);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        d[c] += r * w[c] * g[c] - xr[c] * k;
        pw[c] += g[c] * xr[c] * r;
      }
      if (dx16) {
        uint16_t* h = dx16 + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) h[c] = bf16_from(d[c]);
      }
    }
  }
  constexpr int64_t kCols = 64;
  const int64_t chunks = ceil_div(C, kCols);
#pragma omp parallel for schedule(static) if (blocks * C > kParallelMin)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t c0 = ch * kCols, c1 = c0 + kCols < C ? c0 + kCols : C;
    T acc[kCols] = {};
    for (int64_t b = 0; b < blocks; ++b) {
      const T* pw = part + b * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += pw[c];
    }
    for (int64_t c = c0; c < c1; ++c) dw[c] += acc[c - c0];
  }
}

template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd, int64_t N, int64_t C) {
  rmsnorm_backward_as<T>(dx, nullptr, dw, dout, x, w, rstd, N, C);
}

template <class T>
void rmsnorm_backward_bf16(T* dx, uint16_t* dx16, T* dw, const T* dout, const T* x, const T* w, const T* rstd,
                           int64_t N, int64_t C) {
  rmsnorm_backward_as<T>(dx, dx16, dw, dout, x, w, rstd, N, C);
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(rmsnorm_forward)
LS_INSTANTIATE(rmsnorm_backward)
LS_INSTANTIATE(rmsnorm_backward_bf16)
LS_INSTANTIATE(add_rmsnorm_forward)
LS_INSTANTIATE(rmsnorm_forward_bf16)
LS_INSTANTIATE(add_rmsnorm_forward_bf16)
