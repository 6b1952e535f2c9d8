// Decode kernels: one new token per step of generation with a KV cache (src/infer/).
//
//   gemv               y(N) = W(N,K) x(K) (+ beta y): every projection and the head at one
//                      position. The GEMM packs the whole of W and computes MR rows for the one
//                      real row when M = 1; this reads each weight once, in place.
//   rope_qkv_decode    the packed q/k/v row of one position -> q (H,D) rotated at `pos`, k
//                      rotated and v copied into row `pos` of the caches (rope_qkv_split's own
//                      rotation, so a cached key is bit for bit what training's RoPE makes).
//   attention_decode   the query heads of one position over the Tk cached keys/values, GQA.
//
// Cache layout: kcache, vcache (Tmax, KVH, D) row-major; rows 0..Tk-1 valid.
//
// attention_decode: a task owns one kv head (its G = H/KVH query heads) and one chunk of kChunk
// keys; each K and V row of the chunk is read once for the G heads. Per block of kBk keys:
// scores s(g, j) = q_g . k_j / sqrt(D), an online softmax per head (m, l), o_g += p(g, j) v_j.
// The chunks' partial (o, m, l) are merged in chunk order afterwards (flash-decoding). The chunk
// size is fixed, so the result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/common.h"
#include "kernels/decode.h"
#include "kernels/simd.h"
#include "kernels/vexp.h"
#include "memory.h"

namespace ls {
namespace LS_ISA {
namespace {

template <class T>
using Vt = Simd<T, LS_VEC_BYTES>;

template <class T>
constexpr int lanes() {
  return LS_VEC_BYTES / sizeof(T);
}

template <class T>
inline Vt<T> load(const T* p) {
  return simd_load<Vt<T>>(p);
}
template <class T>
inline void store(T* p, Vt<T> v) {
  simd_store(p, v);
}
template <class T>
inline T hsum(Vt<T> v) {
  T s = 0;
  for (int l = 0; l < lanes<T>(); ++l) s += v[l];
  return s;
}

// float: the shared vectorized exp (vexp.h, ~1 ulp, -inf gives 0); double: std::exp per lane.
inline Vt<float> vexp_t(Vt<float> x) { return vexp(x); }
inline Vt<double> vexp_t(Vt<double> x) {
  for (int l = 0; l < lanes<double>(); ++l) x[l] = std::exp(x[l]);
  return x;
}

// out[r] = W row r . x for R rows of W (leading dim K); two vectors per row in flight.
template <class T, int R>
__attribute__((always_inline)) inline void dot_rows(T* out, const T* W, const T* x, int64_t K) {
  constexpr int L = lanes<T>();
  Vt<T> a0[R], a1[R];
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = Vt<T>{};
  int64_t k = 0;
  for (; k + 2 * L <= K; k += 2 * L) {
    const Vt<T> x0 = load(x + k), x1 = load(x + k + L);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      a0[r] += load(W + r * K + k) * x0;
      a1[r] += load(W + r * K + k + L) * x1;
    }
  }
  if (k + L <= K) {
    const Vt<T> x0 = load(x + k);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) a0[r] += load(W + r * K + k) * x0;
    k += L;
  }
  for (int r = 0; r < R; ++r) {
    T s = hsum<T>(a0[r] + a1[r]);
    for (int64_t e = k; e < K; ++e) s += W[r * K + e] * x[e];
    out[r] = s;
  }
}

template <class T>
inline T dot(const T* a, const T* b, int64_t D) {
  T s;
  dot_rows<T, 1>(&s, a, b, D);
  return s;
}

// o(D) = o * alpha + p * v
template <class T>
inline void scale_axpy(T* o, T alpha, T p, const T* v, int64_t D) {
  constexpr int L = lanes<T>();
  int64_t e = 0;
  for (; e + L <= D; e += L) store(o + e, load(o + e) * alpha + load(v + e) * p);
  for (; e < D; ++e) o[e] = o[e] * alpha + v[e] * p;
}

// GEMV rows per step: 4 rows share each load of x (8 accumulators: enough FMA chains in flight).
constexpr int kGemvRows = 4;
// Keys per attention task, and per block of scores inside it (a multiple of every vector width).
constexpr int64_t kChunk = 256;
constexpr int64_t kBk = 64;

}  // namespace

// y: (N), W: (N, K) row-major, x: (K). beta == 0 never reads y.
template <class T>
void gemv(T* y, const T* W, const T* x, int64_t N, int64_t K, T beta) {
  const int64_t blocks = ceil_div(N, kGemvRows);
#pragma omp parallel for schedule(static) if (N * K > kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t n0 = b * kGemvRows, nr = std::min<int64_t>(kGemvRows, N - n0);
    T d[kGemvRows];
    if (nr == kGemvRows) {
      dot_rows<T, kGemvRows>(d, W + n0 * K, x, K);
    } else {
      for (int64_t r = 0; r < nr; ++r) dot_rows<T, 1>(d + r, W + (n0 + r) * K, x, K);
    }
    for (int64_t r = 0; r < nr; ++r) y[n0 + r] = beta == T(0) ? d[r] : d[r] + beta * y[n0 + r];
  }
}

// qkv: ((H + 2 KVH) D) one position's packed projection; cos, sin: (>= pos+1, D/2).
template <class T>
void rope_qkv_decode(T* q, T* kcache, T* vcache, const T* qkv, const T* cos, const T* sin, int64_t pos,
                     int64_t H, int64_t KVH, int64_t D) {
  const int64_t row = pos * KVH * D, half = D / 2;
  rope_qkv_split<T>(q, kcache + row, vcache + row, qkv, cos + pos * half, sin + pos * half, 1, 1, H, KVH, D);
}

// out, q: (H, D); kcache, vcache: (>= Tk, KVH, D). Tk >= 1.
template <class T>
void attention_decode(T* out, const T* q, const T* kcache, const T* vcache, int64_t Tk, int64_t H,
                      int64_t KVH, int64_t D) {
  constexpr int L = lanes<T>();
  static_assert(kBk % L == 0, "kBk must be a multiple of the vector width");
  const int64_t G = H / KVH, S = ceil_div(Tk, kChunk), tasks = KVH * S, ld = KVH * D, P = D + 2;
  const T scale = T(1) / std::sqrt(T(D));
  const T ninf = -std::numeric_limits<T>::infinity();
  // (KVH, S, G) partials of P values: unnormalized o (D), running max m, running sum l
  T* part = static_cast<T*>(thread_workspace(sizeof(T) * tasks * G * P, 2));
  const size_t ws_bytes = sizeof(T) * G * kBk;
#pragma omp parallel for schedule(static) if (tasks > 1 && Tk * H * D > kParallelMin / 2)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t kvh = task / S, j0 = (task % S) * kChunk, j1 = std::min(Tk, j0 + kChunk);
    T* sc = static_cast<T*>(thread_workspace(ws_bytes, 1));  // (G, kBk) scores, then probabilities
    T* pt = part + task * G * P;
    for (int64_t g = 0; g < G; ++g) {
      std::fill(pt + g * P, pt + g * P + D, T(0));
      pt[g * P + D] = ninf;
      pt[g * P + D + 1] = T(0);
    }
    const T* qh = q + kvh * G * D;  // the group's G heads are adjacent
    for (int64_t jb = j0; jb < j1; jb += kBk) {
      const int64_t nb = std::min(kBk, j1 - jb);
      for (int64_t j = 0; j < nb; ++j) {
        const T* kr = kcache + (jb + j) * ld + kvh * D;
        for (int64_t g = 0; g < G; ++g) sc[g * kBk + j] = dot(qh + g * D, kr, D) * scale;
      }
      for (int64_t g = 0; g < G; ++g) {
        T* s = sc + g * kBk;
        std::fill(s + nb, s + kBk, ninf);
        T* o = pt + g * P;
        T mx = o[D];
        for (int64_t j = 0; j < nb; ++j) mx = std::max(mx, s[j]);
        const T alpha = std::exp(o[D] - mx);  // 0 on the first block (m = -inf)
        Vt<T> sum{};
        for (int64_t j = 0; j < kBk; j += L) {
          const Vt<T> p = vexp_t(load(s + j) - mx);
          store(s + j, p);
          sum += p;
        }
        o[D] = mx;
        o[D + 1] = o[D + 1] * alpha + hsum<T>(sum);
        if (alpha != T(1))
          for (int64_t e = 0; e < D; ++e) o[e] *= alpha;
      }
      for (int64_t j = 0; j < nb; ++j) {
        const T* vr = vcache + (jb + j) * ld + kvh * D;
        for (int64_t g = 0; g < G; ++g) scale_axpy(pt + g * P, T(1), sc[g * kBk + j], vr, D);
      }
    }
  }
  // merge the chunks of each head in order: out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M)
  for (int64_t kvh = 0; kvh < KVH; ++kvh)
    for (int64_t g = 0; g < G; ++g) {
      T* oh = out + (kvh * G + g) * D;
      const T* p0 = part + (kvh * S * G + g) * P;
      T M = ninf;
      for (int64_t s = 0; s < S; ++s) M = std::max(M, p0[s * G * P + D]);
      T l = 0;
      std::fill(oh, oh + D, T(0));
      for (int64_t s = 0; s < S; ++s) {
        const T* ps = p0 + s * G * P;
        const T w = std::exp(ps[D] - M);
        l += ps[D + 1] * w;
        scale_axpy(oh, T(1), w, ps, D);
      }
      const T inv = T(1) / l;
      for (int64_t e = 0; e < D; ++e) oh[e] *= inv;
    }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(gemv)
LS_INSTANTIATE(rope_qkv_decode)
LS_INSTANTIATE(attention_decode)
