// Standard causal attention, what a typical framework does: per (batch, head), scores = Q K^T
// materialized as a (T, T) matrix, a separate softmax pass with the causal mask, then P V.
// The probabilities are saved for backward: memory O(B H T^2). The fused flash-style kernel
// (issue 3) replaces all of this with O(B H T) memory.
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/common.h"
#include "kernels/ops.h"
#include "memory.h"

namespace ls {
namespace LS_ISA {

// Row-wise causal softmax of S: (T, T) in place; row i keeps columns 0..i, the rest become 0.
template <class T>
static void causal_softmax(T* S, int64_t Tn) {
  for (int64_t i = 0; i < Tn; ++i) {
    T* row = S + i * Tn;
    T mx = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j <= i; ++j) mx = row[j] > mx ? row[j] : mx;
    T sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
      row[j] = std::exp(row[j] - mx);
      sum += row[j];
    }
    const T inv = T(1) / sum;
#pragma omp simd
    for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
    for (int64_t j = i + 1; j < Tn; ++j) row[j] = 0;
  }
}

// out: (B, T, H, D), probs: (B, H, T, T), q: (B, T, H, D), k, v: (B, T, KVH, D)
template <class T>
void attention_standard_forward(T* out, T* probs, const T* q, const T* k, const T* v, int64_t B, int64_t Tn,
                                int64_t H, int64_t KVH, int64_t D) {
  const int64_t group = H / KVH;
  const T scale = T(1) / std::sqrt(T(D));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t b = bh / H, h = bh % H, kvh = h / group;
    const T* qb = q + (b * Tn * H + h) * D;       // rows stride H*D
    const T* kb = k + (b * Tn * KVH + kvh) * D;   // rows stride KVH*D
    const T* vb = v + (b * Tn * KVH + kvh) * D;
    T* S = probs + bh * Tn * Tn;
    T* ob = out + (b * Tn * H + h) * D;
    gemm<T>(false, true, Tn, Tn, D, scale, qb, H * D, kb, KVH * D, T(0), S, Tn);  // S = scale Q K^T
    causal_softmax(S, Tn);
    gemm<T>(false, false, Tn, D, Tn, T(1), S, Tn, vb, KVH * D, T(0), ob, H * D);  // O = P V
  }
}

// dq: (B, T, H, D); dk, dv: (B, T, KVH, D), all overwritten. One task per (batch, kv head) so
// the query heads of a GQA group accumulate into dk/dv without races, in a fixed order.
template <class T>
void attention_standard_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                                 const T* probs, int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D) {
  const int64_t group = H / KVH;
  const T scale = T(1) / std::sqrt(T(D));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t bk = 0; bk < B * KVH; ++bk) {
    const int64_t b = bk / KVH, kvh = bk % KVH;
    T* dP = static_cast<T*>(thread_workspace(sizeof(T) * Tn * Tn, 1));  // dP, then dS: (T, T)
    const T* kb = k + (b * Tn * KVH + kvh) * D;
    const T* vb = v + (b * Tn * KVH + kvh) * D;
    T* dkb = dk + (b * Tn * KVH + kvh) * D;
    T* dvb = dv + (b * Tn * KVH + kvh) * D;
    for (int64_t t = 0; t < Tn; ++t) {
      std::memset(dkb + t * KVH * D, 0, sizeof(T) * D);
      std::memset(dvb + t * KVH * D, 0, sizeof(T) * D);
    }
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      const T* P = probs + (b * H + h) * Tn * Tn;
      const T* qb = q + (b * Tn * H + h) * D;
      const T* gb = dout + (b * Tn * H + h) * D;
      T* dqb = dq + (b * Tn * H + h) * D;
      gemm<T>(false, true, Tn, Tn, D, T(1), gb, H * D, vb, KVH * D, T(0), dP, Tn);  // dP = dO V^T
      gemm<T>(true, false, Tn, D, Tn, T(1), P, Tn, gb, H * D, T(1), dvb, KVH * D);  // dV += P^T dO
      for (int64_t i = 0; i < Tn; ++i) {                                              // dS = P (dP - rowdot)
        const T* pr = P + i * Tn;
        T* dr = dP + i * Tn;
        T dot = 0;
        for (int64_t j = 0; j <= i; ++j) dot += pr[j] * dr[j];
#pragma omp simd
        for (int64_t j = 0; j <= i; ++j) dr[j] = pr[j] * (dr[j] - dot);
        for (int64_t j = i + 1; j < Tn; ++j) dr[j] = 0;
      }
      gemm<T>(false, false, Tn, D, Tn, scale, dP, Tn, kb, KVH * D, T(0), dqb, H * D);  // dQ = s dS K
      gemm<T>(true, false, Tn, D, Tn, scale, dP, Tn, qb, H * D, T(1), dkb, KVH * D);   // dK += s dS^T Q
    }
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(attention_standard_forward)
LS_INSTANTIATE(attention_standard_backward)
