// Whole-buffer vector helpers: reductions, fills, scaling, residual adds, seeded normal init.
#include <immintrin.h>

#include <cmath>

#include "bf16/convert.h"
#include "kernels/common.h"
#include "kernels/f16.h"
#include "kernels/ops.h"
#include "kernels/vexp.h"
#include "memory.h"

namespace ls {
namespace LS_ISA {

// Sum of squares of n elements in double: four vector accumulators of doubles (one dependent
// chain of adds was the bound: a chain's latency per vector), added in a fixed order at the end,
// then the tail.
template <class T>
double chunk_sum_squares(const T* x, int64_t n) {
  constexpr int kD = LS_VEC_BYTES / 8;  // doubles per vector
  typedef double vd __attribute__((vector_size(LS_VEC_BYTES)));
  vd acc[4] = {};
  int64_t i = 0;
  for (; i + 4 * kD <= n; i += 4 * kD)
    for (int a = 0; a < 4; ++a) {
      vd v;
      for (int l = 0; l < kD; ++l) v[l] = double(x[i + a * kD + l]);
      acc[a] += v * v;
    }
  const vd t = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  double s = 0;
  for (int l = 0; l < kD; ++l) s += t[l];
  for (; i < n; ++i) s += double(x[i]) * double(x[i]);
  return s;
}

// Fixed 64K-element chunks, partial sums in double, added in chunk order: the same result for
// any thread count.
template <class T>
double sum_squares(const T* x, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = ceil_div(n, kChunk);
  double* part = static_cast<double*>(thread_workspace(sizeof(double) * (chunks > 0 ? chunks : 1), 3));
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i0 = c * kChunk, i1 = i0 + kChunk < n ? i0 + kChunk : n;
    part[c] = chunk_sum_squares(x + i0, i1 - i0);
  }
  double total = 0;
  for (int64_t c = 0; c < chunks; ++c) total += part[c];
  return total;
}

template <class T>
void add_inplace(T* y, const T* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

template <class T>
void scale_inplace(T* y, T s, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

// From this size on a fill streams past the caches (non-temporal stores). Such a buffer (the
// gradients zeroed before each step) is larger than the last-level cache: stores through the
// caches would first read every line in (read for ownership) and evict what the next kernels
// read. Measured on a Zen 4 (2 threads, 232 MB: S's gradients): 8.8 -> 4.2 ms alone; in S's
// bf16 step the gradients' zeroing 7.3-7.9 -> 3.5 ms (interleaved runs).
constexpr int64_t kStreamFillBytes = int64_t(32) << 20;

template <class T>
void fill(T* y, T value, int64_t n) {
#if defined(__SSE2__)
  if (static_cast<int64_t>(sizeof(T)) * n >= kStreamFillBytes) {
    // scalar stores up to a 16-byte boundary (T is 4 or 8 bytes, so one is reached), 16-byte
    // streaming stores over the body, scalar stores over the tail
    int64_t head = 0;
    while (head < n && reinterpret_cast<uintptr_t>(y + head) % 16 != 0) y[head++] = value;
    constexpr int64_t kPer = 16 / sizeof(T);  // elements per 16-byte store
    const int64_t body = (n - head) / kPer;
#pragma omp parallel
    {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < body; ++i) {
        T* p = y + head + i * kPer;
        if constexpr (sizeof(T) == 4)
          _mm_stream_ps(reinterpret_cast<float*>(p), _mm_set1_ps(static_cast<float>(value)));
        else
          _mm_stream_pd(reinterpret_cast<double*>(p), _mm_set1_pd(static_cast<double>(value)));
      }
      _mm_sfence();  // this thread's streaming stores are visible before the region ends
    }
    for (int64_t i = head + body * kPer; i < n; ++i) y[i] = value;
    return;
  }
#endif
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

static inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Box-Muller on a counter-based generator: pair p yields elements 2p and 2p+1 from
// splitmix64(seed, p) alone, so the values do not depend on threads or chunking.
template <class T>
void randn(T* y, int64_t n, uint64_t seed, T mean, T std) {
  const int64_t pairs = ceil_div(n, 2);
  const uint64_t key = splitmix64(seed);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t p = 0; p < pairs; ++p) {
    const uint64_t a = splitmix64(key ^ (2 * uint64_t(p)));
    const uint64_t b = splitmix64(key ^ (2 * uint64_t(p) + 1));
    const double u1 = (double(a >> 11) + 1.0) * (1.0 / 9007199254740992.0);  // (0, 1]
    const double u2 = double(b >> 11) * (1.0 / 9007199254740992.0);          // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double th = 6.283185307179586 * u2;
    y[2 * p] = mean + std * T(r * std::cos(th));
    if (2 * p + 1 < n) y[2 * p + 1] = mean + std * T(r * std::sin(th));
  }
}

// The casts are memory-bound: one streaming pass, vectorized by the compiler from the scalar
// recipe in convert.h (the same bits on every ISA).
template <class T>
void cast_to_bf16(uint16_t* y, const T* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_from(x[i]);
}

template <class T>
void cast_from_bf16(T* y, const uint16_t* x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(f32_from_bf16(x[i]));
}

// fp16 -> fp32 (f16.h): VCVTPH2PS, 16 lanes on the avx512 path (masked tail), 8 on the avx2 path
// (F16C; the binding falls back to the scalar path on a CPU without it), f32_from_f16 on the
// scalar path. Memory-bound like the bf16 casts: one streaming pass, threads over 4K blocks.
void cast_from_f16(float* y, const uint16_t* x, int64_t n) {
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = ceil_div(n, kBlock);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i1 = (b + 1) * kBlock < n ? (b + 1) * kBlock : n;
    int64_t i = b * kBlock;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    // maskz forms: GCC 12 warns on the _mm512_undefined_ps inside plain _mm512_cvtph_ps.
    for (; i + 16 <= i1; i += 16)
      _mm512_storeu_ps(y + i, _mm512_maskz_cvtph_ps(0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
    if (i < i1) {
      const __mmask16 m = static_cast<__mmask16>((1u << (i1 - i)) - 1u);
      _mm512_mask_storeu_ps(y + i, m, _mm512_maskz_cvtph_ps(m, _mm256_maskz_loadu_epi16(m, x + i)));
      i = i1;
    }
#elif defined(__F16C__)
    for (; i + 8 <= i1; i += 8)
      _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
#endif
    for (; i < i1; ++i) y[i] = f32_from_f16(x[i]);
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(sum_squares)
LS_INSTANTIATE(add_inplace)
LS_INSTANTIATE(scale_inplace)
LS_INSTANTIATE(fill)
LS_INSTANTIATE(randn)
LS_INSTANTIATE(cast_to_bf16)
LS_INSTANTIATE(cast_from_bf16)
