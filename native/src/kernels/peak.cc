// Peak FLOP/s calibration: a tight loop of independent fused multiply-adds on the widest vector
// unit this file is compiled for, on exactly `threads` OpenMP threads, for about `seconds`.
// MFU divides achieved model FLOP/s by this number (BENCH.md: measured, never a spec sheet).
//
//   avx512: zmm FMA, 16 floats per lane-op, 2 flops per lane  -> 32 flops per instruction
//   avx2:   ymm FMA,  8 floats                                 -> 16 flops per instruction
//   scalar: baseline x86-64 has no FMA: SSE2 mulps + addps on xmm, 4 floats, the pair counted
//           as 2 flops per lane (what the scalar GEMM path can at best reach).
//
// Each accumulator runs acc = acc * a + b with a just below 1, which converges to b / (1 - a):
// values stay normal (no denormal slow path, no overflow) however long the loop runs.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>

#include "kernels/ops.h"
#include "kernels/peak_harness.h"

namespace ls {
namespace LS_ISA {
namespace {

// Independent dependency chains per thread. FMA latency is 4 cycles on two ports, so at least
// 8 chains are needed to keep both busy; 12 leaves room and still fits 16 vector registers
// (AVX2 / SSE2) with the two constants. AVX-512 has 32 registers: 16 chains.
#if defined(__AVX512F__)
constexpr int kChains = 16;
constexpr int kLanes = 16;
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kChains = 12;
constexpr int kLanes = 8;
#else
constexpr int kChains = 12;
constexpr int kLanes = 4;
#endif

// Iterations between clock reads: 2^18 iterations x kChains vector ops is a few million
// lane-FMAs, about 1-3 ms on one core, so the clock costs nothing and the run ends within ms
// of the deadline.
constexpr int64_t kChunk = int64_t{1} << 18;

// Flops counted per lane-op (one FMA, or one mul + one add on the scalar path).
constexpr double kFlopsPerIter = 2.0 * kChains * kLanes;

// Read through volatile so the constants cannot be folded into the loop at compile time.
volatile float g_a = 0.999999f;
volatile float g_b = 1e-7f;

// Runs `chunks` * kChunk iterations unless `deadline` (seconds on peak_now_s()) passes first, checking
// the clock between chunks. Returns the number of iterations done; writes a sum of the chains.
int64_t fma_loop(double deadline, int64_t max_chunks, float* result) {
  const float a0 = g_a, b0 = g_b;
  int64_t iters = 0;
#if defined(__AVX512F__)
  const __m512 a = _mm512_set1_ps(a0), b = _mm512_set1_ps(b0);
  __m512 acc[kChains];
  for (int c = 0; c < kChains; c++) acc[c] = _mm512_set1_ps(0.01f * static_cast<float>(c + 1));
  for (int64_t chunk = 0; chunk < max_chunks; chunk++) {
    for (int64_t i = 0; i < kChunk; i++) {
#pragma GCC unroll 16
      for (int c = 0; c < kChains; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    }
    iters += kChunk;
    if (peak_now_s() >= deadline) break;
  }
  __m512 s = acc[0];
  for (int c = 1; c < kChains; c++) s = _mm512_add_ps(s, acc[c]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float t = 0;
  for (float v : lanes) t += v;
  *result = t;
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 a = _mm256_set1_ps(a0), b = _mm256_set1_ps(b0);
  __m256 acc[kChains];
  for (int c = 0; c < kChains; c++) acc[c] = _mm256_set1_ps(0.01f * static_cast<float>(c + 1));
  for (int64_t chunk = 0; chunk < max_chunks; chunk++) {
    for (int64_t i = 0; i < kChunk; i++) {
#pragma GCC unroll 12
      for (int c = 0; c < kChains; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    }
    iters += kChunk;
    if (peak_now_s() >= deadline) break;
  }
  __m256 s = acc[0];
  for (int c = 1; c < kChains; c++) s = _mm256_add_ps(s, acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float t = 0;
  for (float v : lanes) t += v;
  *result = t;
#else
  const __m128 a = _mm_set1_ps(a0), b = _mm_set1_ps(b0);
  __m128 acc[kChains];
  for (int c = 0; c < kChains; c++) acc[c] = _mm_set1_ps(0.01f * static_cast<float>(c + 1));
  for (int64_t chunk = 0; chunk < max_chunks; chunk++) {
    for (int64_t i = 0; i < kChunk; i++) {
#pragma GCC unroll 12
      for (int c = 0; c < kChains; c++) acc[c] = _mm_add_ps(_mm_mul_ps(acc[c], a), b);
    }
    iters += kChunk;
    if (peak_now_s() >= deadline) break;
  }
  __m128 s = acc[0];
  for (int c = 1; c < kChains; c++) s = _mm_add_ps(s, acc[c]);
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, s);
  *result = lanes[0] + lanes[1] + lanes[2] + lanes[3];
#endif
  return iters;
}

}  // namespace

double peak_fma_gflops(int threads, double seconds) {
  return measure_peak_gflops(threads, seconds, kFlopsPerIter, fma_loop);
}

}  // namespace LS_ISA
}  // namespace ls
