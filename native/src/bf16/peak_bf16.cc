// Peak calibration of the bf16 units (units.h), with the harness of the fp32 FMA peak.
//
//   amx:        TDPBF16PS, a 16x16 fp32 tile += 16x32 bf16 tile . 32x16 bf16 tile:
//               16*16*32 multiply-adds = 16384 flops per instruction. Four accumulator tiles
//               (0-3) from two A tiles (4, 5) and two B tiles (6, 7): the register blocking of
//               the GEMM, so the loop measures what that kernel can reach with operands in tiles.
//   avx512bf16: VDPBF16PS zmm, 16 fp32 lanes += 2 bf16 products each: 64 flops per instruction;
//               16 independent chains (latency x ports of every known core).
//
// Operands are small normal bf16 values and the accumulators are reset every chunk, so no value
// overflows or goes subnormal however long the loop runs.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "bf16/tiles.h"
#include "bf16/units.h"
#include "kernels/peak_harness.h"

namespace ls {
namespace bf16 {
namespace {

constexpr int64_t kAmxChunk = 1 << 14;  // x 4 TDPBF16PS (~16 cycles each): ~1 M cycles per chunk
constexpr int64_t kDpChunk = 1 << 16;   // x 16 VDPBF16PS

int64_t amx_loop(double deadline, int64_t max_chunks, float* result) {
  amx_configure();
  alignas(64) uint16_t ops[16 * 32];
  for (int i = 0; i < 16 * 32; ++i) ops[i] = 0x3C00 + (i & 7);  // ~2^-7: tiny, normal
  alignas(64) float out[16 * 16];
  _tile_loadd(4, ops, 64);
  _tile_loadd(5, ops, 64);
  _tile_loadd(6, ops, 64);
  _tile_loadd(7, ops, 64);
  int64_t iters = 0;
  float r = 0;
  for (int64_t chunk = 0; chunk < max_chunks; ++chunk) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t i = 0; i < kAmxChunk; ++i) {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    iters += kAmxChunk;
    _tile_stored(0, out, 64);
    r += out[0];
    if (peak_now_s() >= deadline) break;
  }
  _tile_release();
  *result = r;
  return iters;
}

int64_t dp_loop(double deadline, int64_t max_chunks, float* result) {
  constexpr int kChains = 16;
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3C00), b = (__m512bh)_mm512_set1_epi16(0x3C01);
  int64_t iters = 0;
  float r = 0;
  for (int64_t chunk = 0; chunk < max_chunks; ++chunk) {
    // Distinct starting values: chains that start equal compute equal values, and GCC merges
    // them into one dependent chain (seen: 16 zeroed chains compiled to a single VDPBF16PS per
    // iteration, a latency-bound loop that counted 16x the flops it did).
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.01f * static_cast<float>(c + 1));
    for (int64_t i = 0; i < kDpChunk; ++i) {
#pragma GCC unroll 16
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
    }
    __m512 s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
    r += _mm512_reduce_add_ps(s);
    iters += kDpChunk;
    if (peak_now_s() >= deadline) break;
  }
  *result = r;
  return iters;
}

}  // namespace

double peak_amx_gflops(int threads, double seconds) {
  return measure_peak_gflops(threads, seconds, 4.0 * 16 * 16 * 32 * 2, amx_loop);
}

double peak_dpbf16_gflops(int threads, double seconds) {
  return measure_peak_gflops(threads, seconds, 16.0 * 16 * 2 * 2, dp_loop);
}

}  // namespace bf16
}  // namespace ls
