// The output head fused with softmax cross-entropy, chunked over rows (DESIGN.md, "Loss"): the
// (N, V) logits of the standard path (cross_entropy.cc after a head GEMM) never exist, only one
// chunk of R rows at a time, and the backward runs in the same pass.
//
//   for each chunk of R rows:  x_c: (R, C), W: (V, C) (Hugging Face layout)
//     logits (R, V)  = x_c W^T                         gemm
//     lse, loss per row; in training the logits become, in place,
//     dlogits        = (softmax - onehot(target)) * dloss   (zero rows where target < 0)
//     dx_c (R, C)    = dlogits W                        gemm, beta 0 (dx overwritten)
//     dW (V, C)     += dlogits^T x_c                    gemm, beta 1 (accumulated)
//
// Memory: R * V values in workspace slot 2 of the calling thread (the GEMMs use slot 0).
//
// Determinism: R does not depend on the thread count; each row's softmax is computed by one
// thread in a fixed order; every GEMM output element is reduced by one thread in a fixed order
// (gemm.cc); the loss is summed in row order. So loss, lse, dx and dW are bitwise the same for
// any thread count on one ISA path.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/common.h"
#include "kernels/ops.h"
#include "kernels/vexp.h"
#include "memory.h"

namespace ls {
namespace LS_ISA {
namespace {

// R = 384 rows per chunk. S shape (N=2048, C=512, V=32000), fp32 training, AVX-512 Xeon, 2 threads,
// fused ms (median of 7, two or three sweeps; noise ~5% on this shared machine):
//   R  128: 814-837   192: 848-876   256: 762-851   384: 722-758   512: 694-757   768: 688-699
//   standard path (head GEMM + cross_entropy_* + 2 GEMMs): 828-856
// Each chunk re-streams W twice (logits and dx GEMMs) and dW once, so time falls as R grows;
// 384 keeps most of the gain at 384 x 32000 x 4 B = 49 MB of logits (vs 262 MB for (N, V)),
// is one KC block of the dW GEMM (K = R) and a multiple of 2 x MR so two threads split it evenly.
constexpr int64_t kChunkRows = 384;

typedef vfloat VF;  // the ISA's widest float vector (kernels/vexp.h)
constexpr int kW = LS_VEC_BYTES / sizeof(float);  // lanes

inline VF splat(float v) { return VF{} + v; }
inline VF loadu(const float* p) {
  VF v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void storeu(float* p, VF v) { std::memcpy(p, &v, sizeof(v)); }

inline float hsum(VF v) {
  float s = 0;
  for (int i = 0; i < kW; ++i) s += v[i];
  return s;
}
inline float hmax(VF v) {
  float m = v[0];
  for (int i = 1; i < kW; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// max over row[0, V).
float row_max(const float* row, int64_t V) {
  VF m0 = splat(-std::numeric_limits<float>::infinity()), m1 = m0;
  int64_t j = 0;
  for (; j + 2 * kW <= V; j += 2 * kW) {
    const VF a = loadu(row + j), b = loadu(row + j + kW);
    m0 = a > m0 ? a : m0;
    m1 = b > m1 ? b : m1;
  }
  m0 = m1 > m0 ? m1 : m0;
  float m = hmax(m0);
  for (; j < V; ++j) m = row[j] > m ? row[j] : m;
  return m;
}

// sum_j exp(row[j] - mx); when Store, row[j] = exp(row[j] - mx) as well.
template <bool Store>
float exp_sum(float* row, int64_t V, float mx) {
  const VF m = splat(mx);
  VF s = VF{};
  int64_t j = 0;
  for (; j + kW <= V; j += kW) {
    const VF e = vexp(loadu(row + j) - m);
    s += e;
    if (Store) storeu(row + j, e);
  }
  if (j < V) {  // tail: pad with -inf, whose exp is 0
    alignas(64) float buf[kW];
    for (int i = 0; i < kW; ++i) buf[i] = j + i < V ? row[j + i] : -std::numeric_limits<float>::infinity();
    const VF e = vexp(loadu(buf) - m);
    s += e;
    if (Store)
      for (int64_t i = 0; j + i < V; ++i) row[j + i] = e[i];
  }
  return hsum(s);
}

// The float64 path (reference and gradient checks): plain loops, std::exp.
double row_max(const double* row, int64_t V) {
  double m = -std::numeric_limits<double>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < V; ++j) m = row[j] > m ? row[j] : m;
  return m;
}
template <bool Store>
double exp_sum(double* row, int64_t V, double mx) {
  double s = 0;
  for (int64_t j = 0; j < V; ++j) {
    const double e = std::exp(row[j] - mx);
    s += e;
    if (Store) row[j] = e;
  }
  return s;
}

// One chunk's softmax cross-entropy on logits (rows, V), parallel over rows: lse(rows) and
// row_loss(rows) written; when train, logits become dlogits in place.
template <class T>
void softmax_chunk(T* logits, T* lse, double* row_loss, const int32_t* targets, int64_t rows,
                   int64_t V, T dloss, bool train) {
#pragma omp parallel for schedule(static) if (rows * V > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    T* row = logits + r * V;
    const int32_t t = targets[r];
    const T mx = row_max(row, V);
    const T x_t = t >= 0 ? row[t] : T(0);  // read before the row is overwritten
    if (!train) {
      const T l = mx + std::log(exp_sum<false>(row, V, mx));
      lse[r] = l;
      row_loss[r] = t >= 0 ? double(l) - double(x_t) : 0.0;
      continue;
    }
    const T sum = exp_sum<true>(row, V, mx);  // row = exp(logits - mx)
    const T l = mx + std::log(sum);
    lse[r] = l;
    if (t < 0) {
      row_loss[r] = 0.0;
      std::fill(row, row + V, T(0));
      continue;
    }
    row_loss[r] = double(l) - double(x_t);
    const T s = dloss / sum;
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) row[j] *= s;
    row[t] -= dloss;
  }
}

}  // namespace

// dx: (N, C) overwritten or null, dW: (V, C) accumulated or null, lse: (N), x: (N, C),
// W: (V, C), targets: (N) in [-1, V). Returns the summed loss of rows with target >= 0.
template <class T>
double linear_cross_entropy(T* dx, T* dW, T* lse, const T* x, const T* W, const int32_t* targets,
                            int64_t N, int64_t C, int64_t V, T dloss, GemmFn<T> mm) {
  if (!mm) mm = gemm<T>;
  if (N <= 0) return 0.0;
  const bool train = dx != nullptr;
  const int64_t R = std::min(N, kChunkRows);
  // Slot 2: [logits (R, V) | row_loss (R) doubles at a 64-byte boundary].
  const size_t logits_bytes = static_cast<size_t>(ceil_div(int64_t(sizeof(T)) * R * V, 64) * 64);
  char* ws = static_cast<char*>(thread_workspace(logits_bytes + sizeof(double) * R, 2));
  T* logits = reinterpret_cast<T*>(ws);                          // (R, V)
  double* row_loss = reinterpret_cast<double*>(ws + logits_bytes);  // (R)

  double total = 0;
  for (int64_t n0 = 0; n0 < N; n0 += R) {
    const int64_t rows = std::min(R, N - n0);
    const T* xc = x + n0 * C;  // (rows, C)
    mm(false, true, rows, V, C, T(1), xc, C, W, C, T(0), logits, V);
    softmax_chunk(logits, lse + n0, row_loss, targets + n0, rows, V, dloss, train);
    for (int64_t r = 0; r < rows; ++r) total += row_loss[r];
    if (!train) continue;
    mm(false, false, rows, C, V, T(1), logits, V, W, C, T(0), dx + n0 * C, C);
    mm(true, false, V, C, rows, T(1), logits, V, xc, C, T(1), dW, C);
  }
  return total;
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(linear_cross_entropy)
