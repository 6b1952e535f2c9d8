// Building blocks shared by the bf16 unit kernels (gemm_bf16.cc, flash_attention_bf16.cc,
// peak_bf16.cc, head_bf16.cc): the AMX tile configuration, edge masks, RNE rounding (convert.h's
// recipe, and VCVTNE2PS2BF16 for values the units read), 2^x on a zmm with the denormal flush
// of the softmaxes, the 16x16 dword transpose that turns row pairs into VNNI tiles, and the
// VDPBF16PS register block. Compiled only into the ls_bf16 library (AVX-512 BF16 + AMX enabled).
#pragma once
#include <immintrin.h>

#include <cstdint>

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

// The first min(n, 32) lanes (none when n <= 0).
inline __mmask32 head_mask32(int64_t n) {
  return n >= 32 ? static_cast<__mmask32>(0xFFFFFFFFu) : n <= 0 ? 0 : static_cast<__mmask32>((1u << n) - 1);
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

// 2^t for finite t <= 128, the exponential of the kernels' softmaxes (flash attention keeps its
// scores in log2 units, scale * log2(e) folded into the score scaling; the head's softmax
// multiplies by log2(e) in the FMA that subtracts the max, the SwiGLU's sigmoid before clamping):
// t = n + f with n an integer and |f| <= 1/2, 2^f by a degree-6 polynomial (fitted for relative
// error: 1.6 ulp at most in fp32 over [-1/2, 1/2], like the Cephes exp of kernels/vexp.h) and 2^n
// applied by VSCALEFPS: 9 instructions against that exp's ~20. Below 2^-126 the result is
// subnormal: a caller either runs under FlushDenormals (below), which flushes it to 0 instead of
// costing a microcode assist, or keeps t >= -125. Never pass -inf.
constexpr double kLog2e = 1.4426950408889634;

inline __m512 vexp2(__m512 t) {
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.535360497655347e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887036010623e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.61843691766262e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5503323674201965e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022647738456726e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471824645996e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Subnormal fp32 results (the exponentials of very negative scores, products of them) flushed
// to zero and subnormal inputs read as zero (the units and VCVTNE2PS2BF16 do so already) while a
// thread runs a softmax: a subnormal result otherwise costs a microcode assist of ~100 cycles on
// Intel (measured: the masked scores of flash attention's diagonal tiles made its whole forward
// 1.5x slower). Scoped: the thread's MXCSR is restored when it ends.
struct FlushDenormals {
  unsigned saved;
  FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }  // FTZ | DAZ
  ~FlushDenormals() { _mm_setcsr(saved); }
};

// 32 bf16 (round to nearest even): lo's 16 values, then hi's. VCVTNE2PS2BF16 treats fp32
// subnormal inputs as zero; they would be bf16 subnormals, which the units read as zero anyway,
// so the products are those of convert.h's rounding.
inline __m512i cvt2(__m512 hi, __m512 lo) { return (__m512i)_mm512_cvtne2ps_pbh(hi, lo); }

// x rounded to the nearest bf16 value, as fp32: VCVTNEPS2BF16 (an fp32 subnormal becomes 0, as
// the units read a bf16 subnormal input), widened back.
inline __m512 round_bf16x16(__m512 x) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x)), 16));
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
