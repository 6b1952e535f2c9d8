// Rotary position embeddings, Hugging Face Llama convention ("rotate_half"): element i of the
// first half of a head is paired with element i + D/2.
#include <cmath>

#include "kernels/common.h"
#include "kernels/ops.h"

namespace ls {
namespace LS_ISA {

// cos, sin: (T, D/2); angle(t, i) = t * theta^(-2i/D), computed in double.
template <class T>
void rope_table(T* cos, T* sin, int64_t Tn, int64_t D, double theta) {
  const int64_t half = D / 2;
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(theta, -2.0 * double(i) / double(D));
      const double a = double(t) * inv_freq;
      cos[t * half + i] = T(std::cos(a));
      sin[t * half + i] = T(std::sin(a));
    }
}

// x: (B, T, H, D) rotated in place. inverse rotates by -angle (the backward of forward).
template <class T>
void rope_apply(T* x, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t H, int64_t D, bool inverse) {
  const int64_t half = D / 2;
  const T sgn = inverse ? T(-1) : T(1);
#pragma omp parallel for schedule(static) if (B * Tn * H * D > kParallelMin)
  for (int64_t bt = 0; bt < B * Tn; ++bt) {
    const int64_t t = bt % Tn;
    const T* c = cos + t * half;
    const T* s = sin + t * half;
    for (int64_t h = 0; h < H; ++h) {
      T* v = x + (bt * H + h) * D;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const T a = v[i], b = v[i + half], si = sgn * s[i];
        v[i] = a * c[i] - b * si;
        v[i + half] = b * c[i] + a * si;
      }
    }
  }
}

// Rotates one head of D values from src into dst (they may not alias), sign +1 or -1.
template <class T>
static inline void rotate_head(T* dst, const T* src, const T* c, const T* s, int64_t half, T sgn) {
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const T a = src[i], b = src[i + half], si = sgn * s[i];
    dst[i] = a * c[i] - b * si;
    dst[i + half] = b * c[i] + a * si;
  }
}

// qkv: (B*T, (H + 2 KVH) D) -> q (B,T,H,D) and k (B,T,KVH,D) rotated, v (B,T,KVH,D) copied.
template <class T>
void rope_qkv_split(T* q, T* k, T* v, const T* qkv, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t H,
                    int64_t KVH, int64_t D) {
  const int64_t half = D / 2, W = (H + 2 * KVH) * D;
#pragma omp parallel for schedule(static) if (B * Tn * W > kParallelMin)
  for (int64_t bt = 0; bt < B * Tn; ++bt) {
    const int64_t t = bt % Tn;
    const T* row = qkv + bt * W;
    const T* c = cos + t * half;
    const T* s = sin + t * half;
    for (int64_t h = 0; h < H; ++h) rotate_head(q + (bt * H + h) * D, row + h * D, c, s, half, T(1));
    for (int64_t h = 0; h < KVH; ++h) rotate_head(k + (bt * KVH + h) * D, row + (H + h) * D, c, s, half, T(1));
    const T* vr = row + (H + KVH) * D;
    T* vo = v + bt * KVH * D;
#pragma omp simd
    for (int64_t i = 0; i < KVH * D; ++i) vo[i] = vr[i];
  }
}

// The backward of rope_qkv_split: dqkv rows = [rope^-1(dq) | rope^-1(dk) | dv].
template <class T>
void rope_qkv_merge(T* dqkv, const T* dq, const T* dk, const T* dv, const T* cos, const T* sin, int64_t B,
                    int64_t Tn, int64_t H, int64_t KVH, int64_t D) {
  const int64_t half = D / 2, W = (H + 2 * KVH) * D;
#pragma omp parallel for schedule(static) if (B * Tn * W > kParallelMin)
  for (int64_t bt = 0; bt < B * Tn; ++bt) {
    const int64_t t = bt % Tn;
    T* row = dqkv + bt * W;
    const T* c = cos + t * half;
    const T* s = sin + t * half;
    for (int64_t h = 0; h < H; ++h) rotate_head(row + h * D, dq + (bt * H + h) * D, c, s, half, T(-1));
    for (int64_t h = 0; h < KVH; ++h) rotate_head(row + (H + h) * D, dk + (bt * KVH + h) * D, c, s, half, T(-1));
    T* vr = row + (H + KVH) * D;
    const T* vi = dv + bt * KVH * D;
#pragma omp simd
    for (int64_t i = 0; i < KVH * D; ++i) vr[i] = vi[i];
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(rope_table)
LS_INSTANTIATE(rope_apply)
LS_INSTANTIATE(rope_qkv_split)
LS_INSTANTIATE(rope_qkv_merge)
