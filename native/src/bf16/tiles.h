// Building blocks shared by the bf16 unit kernels (gemm_bf16.cc, flash_attention_bf16.cc,
// peak_bf16.cc, head_bf16.cc): the AMX tile configuration, edge masks, RNE rounding and exp on a zmm, and the
// 16x16 dword transpose that turns row pairs into VNNI tiles. Compiled only into the ls_bf16 library
// (AVX-512 BF16 + AMX enabled).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/vexp.h"

namespace ls {
namespace bf16 {

// Palette 1 with all eight tiles 16 rows x 64 bytes: fp32 C tiles of 16 x 16, bf16 A tiles of
// 16 x 32, VNNI B tiles of 16 pair rows x 16 columns. Loaded per thread (the configuration is
// thread state); release with _tile_release() when the thread's work ends.
struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

inline void amx_configure() {
  TileConfig cfg{};
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  _tile_loadconfig(&cfg);
}

// The first min(n, 16) lanes (none when n <= 0).
inline __mmask16 head_mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

// 16 floats -> 16 dwords whose low halves are the bf16 bits (high halves zero): convert.h's
// recipe (nearest even, NaN kept and quieted, subnormals rounded) in AVX-512.
inline __m512i rne_lo(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
  return _mm512_srli_epi32(r, 16);
}

// The fp32 values of the first lanes of m among 16 bf16 bit patterns at p (exact: bf16 is the top
// half of an fp32); masked-off lanes read nothing and are 0.
inline __m512 load_bf16x16(const uint16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

// exp of 16 floats: kernels/vexp.h's polynomial (~1 ulp) on a zmm.
inline __m512 vexp512(__m512 x) {
  return reinterpret_cast<__m512>(LS_ISA::vexp(reinterpret_cast<LS_ISA::vfloat>(x)));
}

// In-register transpose of a 16x16 dword matrix (r[i] holds row i).
inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {
    u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  // u[4g + c], 128-bit lane L = column 4L + c, rows 4g..4g+3.
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
    const __m512i w0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88), w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_i32x4(v0, w0, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(v1, w1, 0x88);
    r[8 + c] = _mm512_shuffle_i32x4(v0, w0, 0xDD);
    r[12 + c] = _mm512_shuffle_i32x4(v1, w1, 0xDD);
  }
}

// VDPBF16PS's register block (gemm_bf16.cc's micro-kernel, flash attention's mm32): 8 rows x 32
// columns of fp32 C in 16 zmm, x<row><half>.
struct Acc8x32 {
  __m512 x00, x01, x10, x11, x20, x21, x30, x31, x40, x41, x50, x51, x60, x61, x70, x71;
};

// One k pair of the block: row i += A's (k, k+1) bf16 pair of row i (at ap + i * rs bytes) times
// the B columns' pairs b0 (columns 0-15) and b1 (16-31). The pair is read by each VDPBF16PS as an
// embedded broadcast ({1to16}) instead of VPBROADCASTD into a register: the same products (the
// instruction's two dot-product operands commute). On Zen 4: 1.01-1.05x on the S and head GEMM
// shapes (interleaved in one process), 1.00-1.02x on whole bf16 training steps of S and L; flash
// attention about the same. GCC does not fold a broadcast that two instructions share.
inline void dp8x32(Acc8x32& a, const char* ap, int64_t rs, __m512 b0, __m512 b1) {
#define LS_DP(x, row, bv) \
  asm("vdpbf16ps %1%{1to16%}, %2, %0" : "+v"(x) : "m"(*reinterpret_cast<const int32_t*>(ap + (row) * rs)), "v"(bv))
  LS_DP(a.x00, 0, b0); LS_DP(a.x01, 0, b1); LS_DP(a.x10, 1, b0); LS_DP(a.x11, 1, b1);
  LS_DP(a.x20, 2, b0); LS_DP(a.x21, 2, b1); LS_DP(a.x30, 3, b0); LS_DP(a.x31, 3, b1);
  LS_DP(a.x40, 4, b0); LS_DP(a.x41, 4, b1); LS_DP(a.x50, 5, b0); LS_DP(a.x51, 5, b1);
  LS_DP(a.x60, 6, b0); LS_DP(a.x61, 6, b1); LS_DP(a.x70, 7, b0); LS_DP(a.x71, 7, b1);
#undef LS_DP
}

// The block from / to an array of [8][2] vectors: [row i][half h] = x<i><h>.
inline void acc_load(Acc8x32& a, const __m512 (&v)[8][2]) {
  a = Acc8x32{v[0][0], v[0][1], v[1][0], v[1][1], v[2][0], v[2][1], v[3][0], v[3][1],
              v[4][0], v[4][1], v[5][0], v[5][1], v[6][0], v[6][1], v[7][0], v[7][1]};
}
inline void acc_store(const Acc8x32& a, __m512 (&v)[8][2]) {
  const __m512 x[16] = {a.x00, a.x01, a.x10, a.x11, a.x20, a.x21, a.x30, a.x31,
                        a.x40, a.x41, a.x50, a.x51, a.x60, a.x61, a.x70, a.x71};
  for (int i = 0; i < 8; ++i) v[i][0] = x[2 * i], v[i][1] = x[2 * i + 1];
}

}  // namespace bf16
}  // namespace ls
