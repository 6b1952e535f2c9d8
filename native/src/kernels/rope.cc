// Rotary position embeddings, Hugging Face Llama convention ("rotate_half"): element i of the
// first half of a head is paired with element i + D/2.
#include <algorithm>
#include <cmath>

#include "kernels/common.h"
#include "kernels/epilogue.h"
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

// Rotates one head of D values from src into dst (they may not alias), sign +1 or -1; dst of type
// O (T, or bf16 bits: out_as).
template <class T, class O>
static inline void rotate_head(O* dst, const T* src, const T* c, const T* s, int64_t half, T sgn) {
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const T a = src[i], b = src[i + half], si = sgn * s[i];
    dst[i] = out_as<O>(a * c[i] - b * si);
    dst[i + half] = out_as<O>(b * c[i] + a * si);
  }
}

// qkv: (B*T, (H + 2 KVH) D) -> q (B,T,H,D) and k (B,T,KVH,D) rotated, v (B,T,KVH,D) copied;
// q, k, v of type O (T, or bf16 bits: flash attention's operands in bf16 training).
template <class T, class O>
static void rope_qkv_split_as(O* q, O* k, O* v, const T* qkv, const T* cos, const T* sin, int64_t B, int64_t Tn,
                              int64_t H, int64_t KVH, int64_t D) {
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
    O* vo = v + bt * KVH * D;
#pragma omp simd
    for (int64_t i = 0; i < KVH * D; ++i) vo[i] = out_as<O>(vr[i]);
  }
}

template <class T>
void rope_qkv_split(T* q, T* k, T* v, const T* qkv, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t H,
                    int64_t KVH, int64_t D) {
  rope_qkv_split_as(q, k, v, qkv, cos, sin, B, Tn, H, KVH, D);
}

template <class T>
void rope_qkv_split_bf16(uint16_t* q, uint16_t* k, uint16_t* v, const T* qkv, const T* cos, const T* sin, int64_t B,
                         int64_t Tn, int64_t H, int64_t KVH, int64_t D) {
  rope_qkv_split_as(q, k, v, qkv, cos, sin, B, Tn, H, KVH, D);
}

// The backward of rope_qkv_split: dqkv rows = [rope^-1(dq) | rope^-1(dk) | dv], of type O (T,
// or bf16 bits: the A operand of the two backward GEMMs in bf16 training).
template <class T, class O>
static void rope_qkv_merge_as(O* dqkv, const T* dq, const T* dk, const T* dv, const T* cos, const T* sin, int64_t B,
                              int64_t Tn, int64_t H, int64_t KVH, int64_t D) {
  const int64_t half = D / 2, W = (H + 2 * KVH) * D;
#pragma omp parallel for schedule(static) if (B * Tn * W > kParallelMin)
  for (int64_t bt = 0; bt < B * Tn; ++bt) {
    const int64_t t = bt % Tn;
    O* row = dqkv + bt * W;
    const T* c = cos + t * half;
    const T* s = sin + t * half;
    for (int64_t h = 0; h < H; ++h) rotate_head(row + h * D, dq + (bt * H + h) * D, c, s, half, T(-1));
    for (int64_t h = 0; h < KVH; ++h) rotate_head(row + (H + h) * D, dk + (bt * KVH + h) * D, c, s, half, T(-1));
    O* vr = row + (H + KVH) * D;
    const T* vi = dv + bt * KVH * D;
#pragma omp simd
    for (int64_t i = 0; i < KVH * D; ++i) vr[i] = out_as<O>(vi[i]);
  }
}

template <class T>
void rope_qkv_merge(T* dqkv, const T* dq, const T* dk, const T* dv, const T* cos, const T* sin, int64_t B,
                    int64_t Tn, int64_t H, int64_t KVH, int64_t D) {
  rope_qkv_merge_as(dqkv, dq, dk, dv, cos, sin, B, Tn, H, KVH, D);
}

template <class T>
void rope_qkv_merge_bf16(uint16_t* dqkv, const T* dq, const T* dk, const T* dv, const T* cos, const T* sin,
                         int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D) {
  rope_qkv_merge_as(dqkv, dq, dk, dv, cos, sin, B, Tn, H, KVH, D);
}

// The QKV GEMM's epilogue (epilogue.h): rotation panels write rotate_head's values for their
// pairs into q or k; v panels copy their columns into v.
template <class T>
void rope_qkv_tile(const Epilogue<T>& e, const T* tile, int64_t ldt, int64_t row0, int mr, int64_t p) {
  const int64_t hd = e.D / 2, half = e.half, rot = e.rot_panels();
  if (p >= rot) {
    const int64_t c0 = (p - rot) * 2 * half, nv = std::min<int64_t>(2 * half, e.KVH * e.D - c0);
    for (int r = 0; r < mr; ++r) {
      const T* x = tile + r * ldt;
      T* o = e.v + (row0 + r) * e.KVH * e.D + c0;
#pragma omp simd
      for (int64_t j = 0; j < nv; ++j) o[j] = x[j];
    }
    return;
  }
  const int64_t pair0 = p * half, npairs = std::min<int64_t>(half, e.pairs() - pair0);
  // Where pair `pair` of row n goes: its head's first element in q or k, and its index i.
  auto head_of = [&](int64_t n, int64_t pair, int64_t& i) -> T* {
    const int64_t head = pair / hd;
    i = pair % hd;
    return head < e.H ? e.q + (n * e.H + head) * e.D : e.k + (n * e.KVH + head - e.H) * e.D;
  };
  const bool one_head = npairs == half && pair0 % hd + half <= hd;
  for (int r = 0; r < mr; ++r) {
    const int64_t n = row0 + r, t = n % e.Tn;
    const T* c = e.cos + t * hd;
    const T* s = e.sin + t * hd;
    const T* x = tile + r * ldt;  // x[j]: element i of pair j's head, x[half + j]: element i + D/2
    if (one_head) {  // the pairs are consecutive elements of one head
      int64_t i0;
      T* o = head_of(n, pair0, i0);
#pragma omp simd
      for (int64_t j = 0; j < half; ++j) {
        const T a = x[j], b = x[half + j], si = s[i0 + j];
        o[i0 + j] = a * c[i0 + j] - b * si;
        o[i0 + j + hd] = b * c[i0 + j] + a * si;
      }
      continue;
    }
    for (int64_t j = 0; j < npairs; ++j) {
      int64_t i;
      T* o = head_of(n, pair0 + j, i);
      const T a = x[j], b = x[half + j], si = s[i];
      o[i] = a * c[i] - b * si;
      o[i + hd] = b * c[i] + a * si;
    }
  }
}

template void rope_qkv_tile<float>(const Epilogue<float>&, const float*, int64_t, int64_t, int, int64_t);
template void rope_qkv_tile<double>(const Epilogue<double>&, const double*, int64_t, int64_t, int, int64_t);

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(rope_table)
LS_INSTANTIATE(rope_apply)
LS_INSTANTIATE(rope_qkv_split)
LS_INSTANTIATE(rope_qkv_split_bf16)
LS_INSTANTIATE(rope_qkv_merge)
LS_INSTANTIATE(rope_qkv_merge_bf16)
