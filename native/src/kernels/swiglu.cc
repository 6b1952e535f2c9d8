// SwiGLU activation of the Llama MLP: out = silu(gate) * up, as separate elementwise passes (the
// standard path), as the fp32 gate/up GEMM's epilogue (swiglu_tile, kernels/gemm.cc), and the
// fused path's backward pass over the kept gate/up (swiglu_packed_backward, which also makes the
// activation again with the epilogue's arithmetic). Under bf16 on a matrix unit both live in
// bf16/gemm_bf16.cc.
//
// float runs whole vectors through the vectorized exp of vexp.h (~1 ulp): with std::exp the
// compiler emits one scalar call per element, which made these memory-bound passes compute-bound
// (S shape, 2 threads: 3.8 ms for one (2048, 1536) forward). double, the reference path, keeps
// std::exp. Row tails use a partial vector through a small buffer.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/common.h"
#include "kernels/epilogue.h"
#include "kernels/ops.h"
#include "kernels/vexp.h"

namespace ls {
namespace LS_ISA {
namespace {

constexpr int kW = LS_VEC_BYTES / sizeof(float);

inline vfloat vload(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void vstore(float* p, vfloat v) { std::memcpy(p, &v, sizeof(v)); }

// sigmoid(g) for a vector: 1 / (1 + exp(-g)).
inline vfloat vsigmoid(vfloat g) { return 1.0f / (1.0f + vexp(-g)); }

// Calls f(i, w) for [0, n) in pieces of w = kW elements, the last one possibly shorter.
template <class F>
inline void rows_vec(int64_t n, F f) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) f(i, kW);
  if (i < n) f(i, static_cast<int>(n - i));
}

// out[0, n) = silu(g) * u.
void swiglu_row(float* out, const float* g, const float* u, int64_t n) {
  rows_vec(n, [&](int64_t i, int w) {
    if (w == kW) {
      const vfloat gv = vload(g + i);
      vstore(out + i, gv * vsigmoid(gv) * vload(u + i));
      return;
    }
    alignas(64) float gb[kW] = {}, ub[kW] = {}, ob[kW];
    std::memcpy(gb, g + i, sizeof(float) * w);
    std::memcpy(ub, u + i, sizeof(float) * w);
    const vfloat gv = vload(gb);
    vstore(ob, gv * vsigmoid(gv) * vload(ub));
    std::memcpy(out + i, ob, sizeof(float) * w);
  });
}

// dg = d * u * (s + g s (1 - s)), du = d * g * s, and (act not null) act = g s u, the bits of
// swiglu_row's; dg / du may alias g / u (read first).
void swiglu_row_backward(float* dg, float* du, float* act, const float* d, const float* g, const float* u, int64_t n) {
  auto body = [](vfloat dv, vfloat gv, vfloat uv, vfloat& dgv, vfloat& duv, vfloat& av) {
    const vfloat s = vsigmoid(gv);
    av = gv * s * uv;
    duv = dv * gv * s;
    dgv = dv * uv * (s + gv * s * (1.0f - s));
  };
  rows_vec(n, [&](int64_t i, int w) {
    vfloat dgv, duv, av;
    if (w == kW) {
      body(vload(d + i), vload(g + i), vload(u + i), dgv, duv, av);
      vstore(dg + i, dgv);
      vstore(du + i, duv);
      if (act) vstore(act + i, av);
      return;
    }
    alignas(64) float db[kW] = {}, gb[kW] = {}, ub[kW] = {}, o1[kW], o2[kW], o3[kW];
    std::memcpy(db, d + i, sizeof(float) * w);
    std::memcpy(gb, g + i, sizeof(float) * w);
    std::memcpy(ub, u + i, sizeof(float) * w);
    body(vload(db), vload(gb), vload(ub), dgv, duv, av);
    vstore(o1, dgv);
    vstore(o2, duv);
    vstore(o3, av);
    std::memcpy(dg + i, o1, sizeof(float) * w);
    std::memcpy(du + i, o2, sizeof(float) * w);
    if (act) std::memcpy(act + i, o3, sizeof(float) * w);
  });
}

// One run of n elements in either dtype: float through the vectorized rows above, double (the
// reference path) with std::exp.
template <class T>
void swiglu_run(T* out, const T* g, const T* u, int64_t n) {
  if constexpr (std::is_same<T, float>::value) {
    swiglu_row(out, g, u, n);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = g[i] / (T(1) + std::exp(-g[i])) * u[i];
  }
}

template <class T>
void swiglu_run_backward(T* dg, T* du, T* act, const T* d, const T* g, const T* u, int64_t n) {
  if constexpr (std::is_same<T, float>::value) {
    swiglu_row_backward(dg, du, act, d, g, u, n);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const T gi = g[i], ui = u[i], di = d[i];
      if (act) act[i] = gi / (T(1) + std::exp(-gi)) * ui;  // swiglu_run's expression
      const T s = T(1) / (T(1) + std::exp(-gi));
      du[i] = di * gi * s;
      dg[i] = di * ui * (s + gi * s * (T(1) - s));
    }
  }
}

constexpr int64_t kChunk = 1 << 14;  // elements per task of the flat (unpacked) kernels

}  // namespace

template <class T>
void swiglu_forward(T* out, const T* gate, const T* up, int64_t n) {
  if constexpr (std::is_same<T, float>::value) {
    const int64_t chunks = ceil_div(n, kChunk);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i = c * kChunk, m = std::min(kChunk, n - i);
      swiglu_row(out + i, gate + i, up + i, m);
    }
    return;
  }
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    out[i] = g / (T(1) + std::exp(-g)) * up[i];
  }
}

// d silu(g)/dg = s + g s (1 - s), s = sigmoid(g)
template <class T>
void swiglu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  if constexpr (std::is_same<T, float>::value) {
    const int64_t chunks = ceil_div(n, kChunk);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i = c * kChunk, m = std::min(kChunk, n - i);
      swiglu_row_backward(dgate + i, dup + i, nullptr, dout + i, gate + i, up + i, m);
    }
    return;
  }
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
  for (int64_t n = 0; n < N; ++n) swiglu_run(out + n * F, gu + n * 2 * F, gu + n * 2 * F + F, F);
}

// dgu (N, 2F) overwritten, may alias gu: each element is read before it is written. act (N, F),
// when not null, receives silu(gate) * up (the fused MLP's backward without recomputation: the
// down projection's weight gradient reads it).
template <class T>
void swiglu_packed_backward(T* dgu, T* act, const T* dout, const T* gu, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static) if (N * F > kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const T* g = gu + n * 2 * F;
    T* dg = dgu + n * 2 * F;
    swiglu_run_backward(dg, dg + F, act ? act + n * F : nullptr, dout + n * F, g, g + F, F);
  }
}

// The gate/up GEMM's epilogue (epilogue.h): tile rows of [gate (half) | up (half)] for features
// [p half, p half + half) -> rows row0.. of act and / or of gu.
template <class T>
void swiglu_tile(const Epilogue<T>& e, const T* tile, int64_t ldt, int64_t row0, int mr, int64_t p) {
  const int64_t f0 = p * e.half, nf = std::min<int64_t>(e.half, e.F - f0);
  for (int r = 0; r < mr; ++r) {
    const T* g = tile + r * ldt;
    if (e.act) swiglu_run(e.act + (row0 + r) * e.F + f0, g, g + e.half, nf);
    if (e.gu) {
      T* o = e.gu + (row0 + r) * 2 * e.F + f0;
      std::memcpy(o, g, sizeof(T) * nf);
      std::memcpy(o + e.F, g + e.half, sizeof(T) * nf);
    }
  }
}

template void swiglu_tile<float>(const Epilogue<float>&, const float*, int64_t, int64_t, int, int64_t);
template void swiglu_tile<double>(const Epilogue<double>&, const double*, int64_t, int64_t, int, int64_t);

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(swiglu_forward)
LS_INSTANTIATE(swiglu_backward)
LS_INSTANTIATE(swiglu_packed_forward)
LS_INSTANTIATE(swiglu_packed_backward)
