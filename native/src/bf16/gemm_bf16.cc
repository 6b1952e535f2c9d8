// bf16 GEMMs on the matrix units: C(M,N) = alpha * op(A) op(B) + beta * C with fp32 A, B, C,
// the operands rounded to bf16 while they are packed, fp32 accumulation (units.h).
//
// The structure of the fp32 GEMM (kernels/gemm.cc), with the layouts the units want:
//
//   for jc over N by NC:
//     for pc over K by KC:
//       pack B block -> VNNI panels of 32 columns:   shared by the team, one barrier per block
//       for ic over this thread's rows by MC:
//         pack A block -> bf16 tiles
//         for jr over this thread's B panels:      a B panel: KCP x 32 bf16 (32 KiB on AMX, 64 on VDPBF16PS: kKC*)
//           for ir over 32-row A panels:           A streams from L2
//             AMX: C 32x32 = 4 fp32 tiles (0-3), A 2 tiles (4-5: rows 0-15, 16-31), B 2 tiles
//             (6-7: columns 0-15, 16-31), 4 TDPBF16PS per 32 k.
//             AVX-512 BF16: 8 rows x 32 columns in 16 zmm, A pairs broadcast, VDPBF16PS.
//
// On VDPBF16PS a bf16 A that needs no padding is read in place instead (a_in_place below).
//
// Packed layouts are tile-major, so every tile load reads 1 KiB of consecutive bytes (stride 64)
// and the A and B streams are sequential for the hardware prefetchers (row-major panels, one
// tile row every 128 bytes or every KCP elements, ran ~1.4x slower). K is padded to KCP (a
// multiple of 32) with zeros, rows of A and columns of B to the panel size.
//   A: 16-row panels; panel p, k block t (32 k): 16 rows x 32 bf16 at (p * KCP/32 + t) * 512.
//   B: 32-column panels of KCP x 32; in panel q, k block t holds two 1 KiB tiles (columns 0-15,
//      16-31), each 16 k pairs x 16 columns x 2 bf16 (VNNI: the pair (k, k+1) of a column adjacent).
// vdpbf16ps reads a zmm of 16 column pairs from a B tile row and broadcasts one (k, k+1) pair
// of an A row: the same layouts serve both units.
//
// C is read and written by the tiles themselves (tile loads/stores with stride ldc) when
// alpha == 1 and beta is 0 or 1 and the 32x32 tile is whole: the first K block starts from zero
// (beta 0, C never read) or from C, later blocks from C. Edge tiles, and any other alpha/beta,
// go through a 32x32 local buffer merged with masked AVX-512 loads and stores.
//
// Rounding: the integer recipe of convert.h in AVX-512 (ties to even, NaN kept and made quiet,
// subnormals rounded, not flushed; the units then treat bf16 subnormal inputs as zero).
//
// Scratch: workspace slot 0 of each thread, like the fp32 GEMM (a caller must not hold it).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "bf16/tiles.h"
#include "bf16/units.h"
#include "kernels/common.h"
#include "memory.h"

namespace ls {
namespace bf16 {
namespace {

// K block per unit. AMX: 512, a B panel of KC x 32 bf16 = 32 KiB stays in Sapphire Rapids' 48 KiB
// L1 (larger blocks measured no gain there). VDPBF16PS: 1024 (a 64 KiB panel streamed from L2,
// each 8-row group of the micro-kernel reading it once): on a Zen 4 (32 KiB L1), interleaved in
// one process, the S and L training steps 1.02-1.025x and the head + loss 1.04-1.05x over 512,
// from fewer passes of C through memory on long-K GEMMs; 2048 no better, 4096 slower.
constexpr int64_t kKCAmx = 512;
constexpr int64_t kKCDp = 1024;
constexpr int64_t kNC = 1024;  // columns per B block: 1 MiB of bf16, shared, in L2
constexpr int64_t kMC = 128;   // rows per A block: 128 KiB per thread, leaving L2 to the B block
                               // (measured: 1.0-1.2x over 256 rows on the S and head shapes; 64 the same)
constexpr int kNR = 32;        // columns per B panel

// A read in place instead of packed (VDPBF16PS only): a block of bf16 A, not transposed, with no
// k padding (kc a multiple of 32) and whole 32-row panels is read by the micro-kernel straight
// from its rows, as oneDNN's brgemm reads A; anything else is packed. On Zen 4 (2 threads,
// interleaved in one process): 1.04-1.06x on the long-K shapes of S (the down projection, dh from
// dgu, the head's dx), 1.02x at K 1024, the same at K 512. AMX keeps packing A: its micro-panel
// is reused from L1 across the B panels, and rows at a power-of-two stride (1024 or 2048 bf16)
// would share too few of L1's sets to stay there; not yet measured on an AMX machine.
inline bool a_in_place(bool amx, const Operand& A) { return !amx && A.bf16 && !A.trans; }

// ---- rounding and packing -------------------------------------------------------------------

// Operands are fp32 (rounded here) or bf16 bits already (copied). Two access patterns serve
// every pack:
//   pair_rows: element j of rows k and k+1 (16 consecutive j) -> dword j = (row k, row k+1) pair.
//   pair_run:  32 consecutive k of one row -> 16 dwords of consecutive pairs.
template <bool kBf16>
inline __m512i pair_rows(const void* lo, const void* hi, __mmask16 m, bool has_hi) {
  __m512i a, b = _mm512_setzero_si512();
  if constexpr (kBf16) {
    a = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, lo));
    if (has_hi) b = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, hi));
  } else {
    a = rne_lo(_mm512_maskz_loadu_ps(m, lo));
    if (has_hi) b = rne_lo(_mm512_maskz_loadu_ps(m, hi));
  }
  return _mm512_or_si512(a, _mm512_slli_epi32(b, 16));
}

template <bool kBf16>
inline __m512i pair_run(const void* s, int64_t n) {
  if constexpr (kBf16) {
    return _mm512_maskz_loadu_epi16(head_mask32(n), s);
  } else {
    const float* f = static_cast<const float*>(s);
    const __m256i lo = _mm512_cvtepi32_epi16(rne_lo(_mm512_maskz_loadu_ps(head_mask(n), f)));
    const __m256i hi = _mm512_cvtepi32_epi16(rne_lo(_mm512_maskz_loadu_ps(head_mask(n - 16), f + 16)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
}

// Address of element (row, col) of a row-major fp32 or bf16 matrix.
template <bool kBf16>
inline const void* at(const void* base, int64_t ld, int64_t row, int64_t col) {
  using E = typename std::conditional<kBf16, uint16_t, float>::type;
  return static_cast<const E*>(base) + row * ld + col;
}

// Offset of the 16 x 32 tile of packed A holding rows [16p, 16p+16) and k [32t, 32t+32).
inline int64_t a_tile(int64_t p, int64_t t, int64_t kcp) { return (p * (kcp / 32) + t) * 512; }

// op(A)(i0:i0+mc, pc:pc+kc) -> dst as tiles (see the top), rows [mc, mcp) and k [kc, kcp) zero.
// op(A)(i, k) = a.trans ? A[k*lda + i] : A[i*lda + k].
template <bool kBf16>
void pack_a_t(uint16_t* dst, const Operand& a, int64_t i0, int64_t mc, int64_t mcp, int64_t pc, int64_t kc,
              int64_t kcp) {
  if (!a.trans) {
    for (int64_t i = 0; i < mc; ++i) {
      const void* s = at<kBf16>(a.data, a.ld, i0 + i, pc);
      uint16_t* d = dst + a_tile(i / 16, 0, kcp) + (i % 16) * 32;
      for (int64_t k = 0; k < kcp; k += 32, d += 512)
        _mm512_store_si512(d, pair_run<kBf16>(at<kBf16>(s, 0, 0, k), kc - k));
    }
  } else {
    // 16 rows i x 16 k pairs: pairs of source rows k, k+1 give dwords along i; transposed, the
    // 16 rows are one tile.
    for (int64_t ib = 0; ib < mc; ib += 16) {
      const __mmask16 m = head_mask(mc - ib);
      for (int64_t kb = 0; kb < kcp; kb += 32) {
        __m512i r[16];
        for (int p = 0; p < 16; ++p) {
          const int64_t k = kb + 2 * p;
          r[p] = k < kc ? pair_rows<kBf16>(at<kBf16>(a.data, a.ld, pc + k, i0 + ib), at<kBf16>(a.data, a.ld, pc + k + 1, i0 + ib),
                                           m, k + 1 < kc)
                        : _mm512_setzero_si512();
        }
        transpose16(r);
        uint16_t* d = dst + a_tile(ib / 16, kb / 32, kcp);
        for (int i = 0; i < 16; ++i) _mm512_store_si512(d + i * 32, r[i]);
      }
    }
  }
  // Padding rows: the rest of the last partial 16-row panel (transA wrote it as zeros already,
  // harmlessly again here), then whole panels.
  for (int64_t i = mc; i < mcp; ++i) {
    uint16_t* d = dst + a_tile(i / 16, 0, kcp) + (i % 16) * 32;
    for (int64_t k = 0; k < kcp; k += 32, d += 512) _mm512_store_si512(d, _mm512_setzero_si512());
  }
}

void pack_a(uint16_t* dst, const Operand& a, int64_t i0, int64_t mc, int64_t mcp, int64_t pc, int64_t kc,
            int64_t kcp) {
  if (a.bf16)
    pack_a_t<true>(dst, a, i0, mc, mcp, pc, kc, kcp);
  else
    pack_a_t<false>(dst, a, i0, mc, mcp, pc, kc, kcp);
}

// op(B)(pc:pc+kc, j0:j0+nc) panels [q0, q1) -> dst: panel q at dst + q * pstride, tiles as at the
// top; columns past nc and k past kc zero. op(B)(k, j) = b.trans ? B[j*ldb + k] : B[k*ldb + j].
// gu_F > 0 packs the gate/up weights of the SwiGLU epilogue instead (j0 = 0, nc ignored): op(B)
// is (K, 2 gu_F) = [gate | up], and panel q interleaves gate columns [16q, 16q+16) (its first 16
// columns) with the up columns of the same features (its last 16), so one 32 x 32 tile of C holds
// both inputs of silu(gate) * up for 16 features.
template <bool kBf16>
void pack_b_t(uint16_t* dst, int64_t pstride, const Operand& b, int64_t pc, int64_t kc, int64_t kcp, int64_t j0,
              int64_t nc, int64_t q0, int64_t q1, int64_t gu_F) {
  for (int64_t q = q0; q < q1; ++q) {
    uint16_t* panel = dst + q * pstride;
    if (kBf16 && !b.trans && gu_F == 0) {
      // bf16 rows k, k+1, the panel's 32 columns at once: interleaved by VPUNPCK[LH]WD (per
      // 128-bit lane L, columns 8L..8L+3 in the low and 8L+4..8L+7 in the high dwords), put back
      // in column order by VPERMT2D, one tile row of each half.
      alignas(64) static constexpr int32_t kLo[16] = {0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23};
      alignas(64) static constexpr int32_t kHi[16] = {8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31};
      const __m512i ilo = _mm512_load_si512(kLo), ihi = _mm512_load_si512(kHi);
      const int64_t col0 = j0 + q * kNR;
      const __mmask32 m = head_mask32(nc - q * kNR);
      for (int64_t kb = 0; kb < kcp; kb += 32) {
        uint16_t* tile = panel + kb * kNR;
        for (int p = 0; p < 16; ++p) {
          const int64_t k = kb + 2 * p;
          const __m512i x = k < kc ? _mm512_maskz_loadu_epi16(m, at<true>(b.data, b.ld, pc + k, col0)) : _mm512_setzero_si512();
          const __m512i y = k + 1 < kc ? _mm512_maskz_loadu_epi16(m, at<true>(b.data, b.ld, pc + k + 1, col0)) : _mm512_setzero_si512();
          const __m512i l = _mm512_unpacklo_epi16(x, y), h = _mm512_unpackhi_epi16(x, y);
          _mm512_store_si512(tile + p * 32, _mm512_permutex2var_epi32(l, ilo, h));
          _mm512_store_si512(tile + 512 + p * 32, _mm512_permutex2var_epi32(l, ihi, h));
        }
      }
      continue;
    }
    for (int half = 0; half < 2; ++half) {
      // First column of op(B) in this half, and how many are valid (may be <= 0).
      const int64_t col0 = gu_F > 0 ? half * gu_F + 16 * q : j0 + q * kNR + half * 16;
      const int64_t ncols = gu_F > 0 ? gu_F - 16 * q : nc - (q * kNR + half * 16);
      for (int64_t kb = 0; kb < kcp; kb += 32) {
        uint16_t* tile = panel + kb * kNR + half * 512;  // k block kb/32: 1024 bf16 per block
        __m512i r[16];
        if (!b.trans) {
          const __mmask16 m = head_mask(ncols);
          for (int p = 0; p < 16; ++p) {
            const int64_t k = kb + 2 * p;
            r[p] = k < kc && ncols > 0 ? pair_rows<kBf16>(at<kBf16>(b.data, b.ld, pc + k, col0),
                                                          at<kBf16>(b.data, b.ld, pc + k + 1, col0), m, k + 1 < kc)
                                       : _mm512_setzero_si512();
          }
        } else {
          for (int j = 0; j < 16; ++j)
            r[j] = j < ncols ? pair_run<kBf16>(at<kBf16>(b.data, b.ld, col0 + j, pc + kb), kc - kb)
                             : _mm512_setzero_si512();
          transpose16(r);  // r[p]: k pair kb/2 + p, columns col0..col0+15
        }
        for (int p = 0; p < 16; ++p) _mm512_store_si512(tile + p * 32, r[p]);
      }
    }
  }
}

void pack_b_panels(uint16_t* dst, int64_t pstride, const Operand& b, int64_t pc, int64_t kc, int64_t kcp, int64_t j0,
                   int64_t nc, int64_t q0, int64_t q1, int64_t gu_F = 0) {
  if (b.bf16)
    pack_b_t<true>(dst, pstride, b, pc, kc, kcp, j0, nc, q0, q1, gu_F);
  else
    pack_b_t<false>(dst, pstride, b, pc, kc, kcp, j0, nc, q0, q1, gu_F);
}

// ---- C tiles through a local buffer --------------------------------------------------------

// What a tile's epilogue does with alpha * A B: store it (+ beta C), or the SwiGLU of the
// gate/up GEMM (gate_up_swiglu): gate and up rounded to bf16, act = silu(gate) * up from those,
// and / or gate and up themselves. (A backward epilogue writing dgu from dact measured slower
// than the recompute GEMM followed by the vectorized SwiGLU-backward pass, S shape on AMX: 5.9
// vs 5.1 ms; backward now reads gate and up kept or recomputed by this epilogue.)
enum class Epi : uint8_t { store, swiglu };

// Where one output tile goes: fp32 C (c = alpha * acc + beta * c; beta == 0 never reads c) or
// bf16 C (c = bf16(alpha * acc); beta is 0 there); for the SwiGLU epilogue c is the tile's first
// row of act (N, F) or null, gu its first row of gu (N, 2F) or null, and f0 its first feature.
struct Out {
  void* c;
  int64_t ldc;
  bool bf16;
  float alpha, beta;
  int mr, nr;
  Epi epi;
  int64_t F, f0;
  void* gu;
  bool gu_bf16;
};

// Stores row i, half h (16 columns) of a tile from the vector acc into an fp32 C.
inline void store_row(const Out& o, int i, int h, __m512 acc) {
  const __mmask16 m = head_mask(o.nr - 16 * h);
  __m512 r = _mm512_mul_ps(_mm512_set1_ps(o.alpha), acc);
  float* p = static_cast<float*>(o.c) + i * o.ldc + 16 * h;
  if (o.beta != 0.0f) r = _mm512_fmadd_ps(_mm512_set1_ps(o.beta), _mm512_maskz_loadu_ps(m, p), r);
  _mm512_mask_storeu_ps(p, m, r);
}

// Stores row i (32 columns: lo's 16, then hi's) of a tile into a bf16 C, alpha applied: one
// VCVTNE2PS2BF16 (nearest even; an fp32 subnormal result becomes 0, as the units read a bf16
// subnormal input) and one 64-byte store.
inline void store_row_bf16(const Out& o, int i, __m512 lo, __m512 hi) {
  const __m512 va = _mm512_set1_ps(o.alpha);
  _mm512_mask_storeu_epi16(static_cast<uint16_t*>(o.c) + i * o.ldc, head_mask32(o.nr),
                           cvt2(_mm512_mul_ps(va, hi), _mm512_mul_ps(va, lo)));
}

// Row `rows` of an fp32 or bf16 matrix with leading dimension ld (null stays null).
inline void* row_of(void* c, int64_t rows, int64_t ld, bool bf16) {
  if (!c) return nullptr;
  return bf16 ? static_cast<void*>(static_cast<uint16_t*>(c) + rows * ld) : static_cast<void*>(static_cast<float*>(c) + rows * ld);
}

// ---- SwiGLU on the units' bf16 gate and up ----------------------------------------------------
// The epilogue below (forward, and backward's recomputation) and swiglu_backward (its backward
// pass) share these (and tiles.h's round_bf16x16), so the activation that backward rebuilds from
// the kept gate and up is forward's bit for bit.

// sigmoid(g) = 1 / (1 + 2^(-g log2 e)) by vexp2 and RCP14 with one Newton step (~1 ulp; VDIVPS
// would take a third of the tile's TDPBF16PS time on its own). The exponent is clamped to
// [-125, 126], so nothing is subnormal (a microcode assist on Intel) or infinite (RCP14 and the
// Newton step would make NaN): for g past +-87 the sigmoid is 1 or 2^-126 instead of the true
// value, silu is then g or ~0 all the same (tested); NaN stays NaN.
inline __m512 sigmoid16(__m512 g) {
  const __m512 t = _mm512_mul_ps(g, _mm512_set1_ps(-1.4426950408889634f));
  const __m512 tc = _mm512_max_ps(_mm512_set1_ps(-125.0f), _mm512_min_ps(_mm512_set1_ps(126.0f), t));
  const __m512 den = _mm512_add_ps(_mm512_set1_ps(1.0f), vexp2(tc));
  const __m512 r0 = _mm512_rcp14_ps(den);
  return _mm512_mul_ps(r0, _mm512_fnmadd_ps(den, r0, _mm512_set1_ps(2.0f)));
}

// silu(g) * up = g * sigmoid(g) * u, given s = sigmoid(g).
inline __m512 swiglu16(__m512 g, __m512 s, __m512 u) { return _mm512_mul_ps(_mm512_mul_ps(g, s), u); }

// The first lanes of m of 16 values at element `at` of an fp32 or bf16 (bits) array.
inline __m512 load16(const void* base, bool bf16, int64_t at, __mmask16 m) {
  if (bf16) return load_bf16x16(static_cast<const uint16_t*>(base) + at, m);
  return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + at);
}

// Stores the first lanes of m of v at element `at`: fp32, or rounded once to bf16 (nearest even,
// VCVTNEPS2BF16: an fp32 subnormal becomes 0).
inline void store16(void* base, bool bf16, int64_t at, __mmask16 m, __m512 v) {
  if (bf16)
    _mm256_mask_storeu_epi16(static_cast<uint16_t*>(base) + at, m, (__m256i)_mm512_cvtneps_pbh(v));
  else
    _mm512_mask_storeu_ps(static_cast<float*>(base) + at, m, v);
}

// The SwiGLU epilogue on a finished 32 x 32 tile in `local` (row stride 32): gate in columns
// 0-15, up in 16-31, for features f0..f0+15, each rounded to bf16; act = silu(gate) * up from the
// rounded values, stored as fp32 or rounded once to bf16; gate and up stored into gu's halves.
void swiglu_tile(const Out& o, const float* local) {
  const __mmask16 m = head_mask(o.F - o.f0);
  for (int i = 0; i < o.mr; ++i) {
    const __m512 g = round_bf16x16(_mm512_load_ps(local + i * 32)), u = round_bf16x16(_mm512_load_ps(local + i * 32 + 16));
    if (o.gu) {
      store16(o.gu, o.gu_bf16, i * 2 * o.F + o.f0, m, g);
      store16(o.gu, o.gu_bf16, i * 2 * o.F + o.F + o.f0, m, u);
    }
    if (o.c) store16(o.c, o.bf16, i * o.ldc + o.f0, m, swiglu16(g, sigmoid16(g), u));
  }
}

// ---- AMX ------------------------------------------------------------------------------------

// A 32-row micro-panel of op(A) for kcp k: packed (ld 0; tiles as at the top, its second 16-row
// panel kcp * 16 elements on) or read in place (ld > 0: row-major bf16 rows at stride ld, the
// k block starting at p; whole rows and k, no padding needed: see run_thread).
struct APanel {
  const uint16_t* p;
  int64_t ld;
};

// Tiles 0-3 (C) += A micro-panel (32 rows: two 16-row panels) . B panel (kcp x 32).
inline void amx_tile_loop(const APanel& a, const uint16_t* b, int64_t kcp) {
  // a 16 x 32 tile of A: 16 rows of 64 bytes, at stride 64 (packed) or ld (in place)
  const int64_t stride = a.ld ? a.ld * 2 : 64, step = a.ld ? 32 : 512;
  const uint16_t* a0 = a.p;
  const uint16_t* a1 = a.p + (a.ld ? 16 * a.ld : kcp * 16);
  for (int64_t t = 0; t < kcp / 32; ++t) {
    _tile_loadd(4, a0 + t * step, stride);
    _tile_loadd(6, b + t * 1024, 64);
    _tile_loadd(5, a1 + t * step, stride);
    _tile_loadd(7, b + t * 1024 + 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
}

// One 32 x 32 tile of C from an A micro-panel and a B panel. `first`: the first K block (beta
// applies; later blocks accumulate into C).
void micro_amx(const APanel& a, const uint16_t* b, int64_t kcp, const Out& o, bool first, float* local) {
  const bool accumulate = !first || o.beta != 0.0f;
  if (o.epi == Epi::store && !o.bf16 && o.alpha == 1.0f && (!accumulate || !first || o.beta == 1.0f) && o.mr == 32 &&
      o.nr == 32) {
    // The tiles read and write C themselves.
    float* c = static_cast<float*>(o.c);
    const int64_t sc = o.ldc * 4;
    if (!accumulate) {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
    } else {
      _tile_loadd(0, c, sc);
      _tile_loadd(1, c + 16, sc);
      _tile_loadd(2, c + 16 * o.ldc, sc);
      _tile_loadd(3, c + 16 * o.ldc + 16, sc);
    }
    amx_tile_loop(a, b, kcp);
    _tile_stored(0, c, sc);
    _tile_stored(1, c + 16, sc);
    _tile_stored(2, c + 16 * o.ldc, sc);
    _tile_stored(3, c + 16 * o.ldc + 16, sc);
    return;
  }
  // Through the local buffer: from zero, then stored with alpha and beta (later K blocks add
  // to C: beta 1).
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  amx_tile_loop(a, b, kcp);
  _tile_stored(0, local, 128);
  _tile_stored(1, local + 16, 128);
  _tile_stored(2, local + 16 * 32, 128);
  _tile_stored(3, local + 16 * 32 + 16, 128);
  if (o.epi != Epi::store) return swiglu_tile(o, local);
  if (o.bf16) {
    for (int i = 0; i < o.mr; ++i) store_row_bf16(o, i, _mm512_load_ps(local + i * 32), _mm512_load_ps(local + i * 32 + 16));
    return;
  }
  Out out = o;
  if (!first) out.beta = 1.0f;
  for (int i = 0; i < o.mr; ++i)
    for (int h = 0; h < 2; ++h) store_row(out, i, h, _mm512_load_ps(local + i * 32 + 16 * h));
}

// The 8 x 32 block of rows ar, ar + rs, ... (rs in elements) times the B panel: packed A tiles
// (kInPlace false: rs 32, the next 32 k 512 elements on) or rows in place (the next 32 k 32
// elements on).
template <bool kInPlace>
inline void dp_block(Acc8x32& x, const uint16_t* ar, int64_t rs, const uint16_t* b, int64_t kcp) {
  const int64_t rsb = kInPlace ? rs * 2 : 64, step = kInPlace ? 32 : 512;
  for (int64_t k = 0; k < kcp; k += 2) {
    const int64_t t = k >> 5, kk = k & 31;
    const uint16_t* bt = b + t * 1024 + (kk >> 1) * 32;
    dp8x32(x, reinterpret_cast<const char*>(ar + t * step + kk), rsb, _mm512_load_ps(bt), _mm512_load_ps(bt + 512));
  }
}

// AVX-512 BF16: rows of the 32-row micro-panel in groups of 8; 8 x 32 accumulators in zmm.
void micro_dp(const APanel& a, const uint16_t* b, int64_t kcp, const Out& o, bool first, float* local) {
  Out out = o;
  if (!first) out.beta = 1.0f;
  for (int r0 = 0; r0 < o.mr; r0 += 8) {
    Acc8x32 x{};  // from zero
    __m512 acc[8][2];
    if (a.ld)
      dp_block<true>(x, a.p + r0 * a.ld, a.ld, b, kcp);
    else  // rows r0..r0+7 lie in one 16-row panel: row i of it at panel + t * 512 + i * 32
      dp_block<false>(x, a.p + (r0 / 16) * kcp * 16 + (r0 % 16) * 32, 32, b, kcp);
    acc_store(x, acc);
    const int rows = std::min(8, o.mr - r0);
    if (o.epi != Epi::store) {
      for (int i = 0; i < 8; ++i)
        for (int h = 0; h < 2; ++h) _mm512_store_ps(local + i * 32 + 16 * h, acc[i][h]);
      Out rowsout = o;
      rowsout.mr = rows;
      rowsout.c = row_of(o.c, r0, o.ldc, o.bf16);
      rowsout.gu = row_of(o.gu, r0, 2 * o.F, o.gu_bf16);
      swiglu_tile(rowsout, local);
      continue;
    }
    Out rowsout = out;
    rowsout.c = row_of(o.c, r0, o.ldc, o.bf16);
    if (o.bf16) {
      for (int i = 0; i < rows; ++i) store_row_bf16(rowsout, i, acc[i][0], acc[i][1]);
      continue;
    }
    for (int i = 0; i < rows; ++i)
      for (int h = 0; h < 2; ++h) store_row(rowsout, i, h, acc[i][h]);
  }
}

using MicroFn = void (*)(const APanel&, const uint16_t*, int64_t, const Out&, bool, float*);

struct Problem {
  int64_t M, N, K;
  float alpha, beta;
  Operand A, B;
  void* C;
  int64_t ldc;
  bool c_bf16;
  int64_t kc_max, kcp_max, nc_max;
  uint16_t* Bbuf[2];  // shared packed-B blocks, double-buffered (unused when B.packed)
  int64_t Kp;         // K rounded up to 32: the panel length of a pre-packed B
  bool amx;
  Epi epi;            // swiglu: C is act (ldc F, fp32 or bf16) or null; B.packed holds the interleaved gate/up weights
  int64_t F;
  void* gu;           // swiglu: (N, 2F) gate and up, fp32 or bf16, or null
  bool gu_bf16;
};

inline void split(int64_t n, int parts, int i, int64_t& lo, int64_t& hi) {
  lo = n * i / parts;
  hi = n * (i + 1) / parts;
}

// Threads as tm x tn over (32-row panels of C, B panels): the grid with the least work per
// thread, counting the A packing each thread of a row range repeats (as in gemm.cc).
void choose_grid(int nthreads, int64_t M, int64_t N, int& tm, int& tn) {
  int64_t best = -1;
  for (int a = nthreads; a >= 1; --a) {
    if (nthreads % a) continue;
    const int b = nthreads / a;
    const int64_t rows = ceil_div(ceil_div(M, 32), a) * 32, cols = ceil_div(ceil_div(N, kNR), b) * kNR;
    const int64_t cost = rows * (cols + 64);
    if (best < 0 || cost < best) best = cost, tm = a, tn = b;
  }
}

size_t a_block_bytes(int64_t kcp_max) { return sizeof(uint16_t) * kMC * kcp_max; }

void run_thread(const Problem& p, int tid, int nthreads) {
  const MicroFn micro = p.amx ? micro_amx : micro_dp;
  if (p.amx) amx_configure();
  int tm = nthreads, tn = 1;
  choose_grid(nthreads, p.M, std::min(p.N, p.nc_max), tm, tn);
  const int ti = tid / tn, tj = tid % tn;
  int64_t r0, r1;
  split(ceil_div(p.M, 32), tm, ti, r0, r1);
  r0 *= 32;
  r1 = std::min(p.M, r1 * 32);
  // Slot 0 of the calling thread begins with the shared B blocks (placed by gemm()); every
  // thread's then holds [A block (kMC x kcp_max) | local C tile (32 x 32 fp32)].
  const bool prepacked = p.B.packed != nullptr;
  const size_t b_bytes = prepacked ? 0 : sizeof(uint16_t) * p.kcp_max * p.nc_max;
  const size_t lead = tid == 0 ? (nthreads > 1 ? 2 : 1) * b_bytes : 0;
  const size_t a_bytes = a_block_bytes(p.kcp_max);
  char* ws = static_cast<char*>(thread_workspace(lead + a_bytes + 32 * 32 * sizeof(float), 0));
  uint16_t* Ap = reinterpret_cast<uint16_t*>(ws + lead);
  float* local = reinterpret_cast<float*>(ws + lead + a_bytes);
  const size_t esize = p.c_bf16 ? 2 : 4;
  const bool in_place_ok = a_in_place(p.amx, p.A);
  int iter = 0;
  for (int64_t jc = 0; jc < p.N; jc += p.nc_max) {
    const int64_t nc = std::min(p.nc_max, p.N - jc), npanels = ceil_div(nc, kNR);
    for (int64_t pc = 0; pc < p.K; pc += p.kc_max, ++iter) {
      const int64_t kc = std::min(p.kc_max, p.K - pc), kcp = ceil_div(kc, 32) * 32;
      const uint16_t* Bp;
      int64_t pstride;  // elements between consecutive B panels
      int64_t q0, q1;
      if (prepacked) {
        pstride = p.Kp * kNR;
        Bp = p.B.packed + (jc / kNR) * pstride + pc * kNR;
      } else {
        pstride = kcp * kNR;
        uint16_t* buf = p.Bbuf[iter & 1];
        split(npanels, nthreads, tid, q0, q1);
        pack_b_panels(buf, pstride, p.B, pc, kc, kcp, jc, nc, q0, q1);
        // One barrier per block: with two B buffers, a thread packing block i+1 knows every
        // thread has finished computing block i-1 (it passed barrier i).
        if (nthreads > 1) {
#pragma omp barrier
        }
        Bp = buf;
      }
      split(npanels, tn, tj, q0, q1);
      if (q0 == q1) continue;
      const bool first = pc == 0;
      for (int64_t ic = r0; ic < r1; ic += kMC) {
        const int64_t mc = std::min(kMC, r1 - ic), mcp = ceil_div(mc, 32) * 32;
        // A read in place: bf16 rows, no k padding in this block, whole 32-row panels
        const bool in_place = in_place_ok && kc == kcp && mc == mcp;
        if (!in_place) pack_a(Ap, p.A, ic, mc, mcp, pc, kc, kcp);
        // Row panels outer, B panels inner: the A micro-panel stays in L1 while the B block
        // streams from L2, and C is written along its rows. Measured against B panels outer
        // (2 threads, AMX, S shapes and the head's): 1.05-1.15x on the projections, 1.35x on
        // a 768 x 32000 x 512 head chunk, 1.1x on the head's dW.
        for (int64_t i = 0; i < mc; i += 32) {
          for (int64_t q = q0; q < q1; ++q) {
            const uint16_t* b = Bp + q * pstride;
            // (the SwiGLU epilogue's C, act, may be null: set below)
            Out o{p.epi == Epi::store ? static_cast<char*>(p.C) + ((ic + i) * p.ldc + jc + q * kNR) * esize : nullptr,
                  p.ldc, p.c_bf16, p.alpha, p.beta,
                  static_cast<int>(std::min<int64_t>(32, mc - i)), static_cast<int>(std::min<int64_t>(kNR, nc - q * kNR)),
                  p.epi, p.F, 0, nullptr, false};
            if (p.epi != Epi::store) {  // rows of act and gu; features of global panel jc/32 + q
              o.c = row_of(p.C, ic + i, p.ldc, p.c_bf16);
              o.gu = row_of(p.gu, ic + i, 2 * p.F, p.gu_bf16);
              o.gu_bf16 = p.gu_bf16;
              o.f0 = 16 * (jc / kNR + q);
            }
            const APanel ap = in_place ? APanel{static_cast<const uint16_t*>(p.A.data) + (ic + i) * p.A.ld + pc, p.A.ld}
                                       : APanel{Ap + a_tile(i / 16, 0, kcp), 0};
            micro(ap, b, kcp, o, first, local);
          }
        }
      }
    }
  }
  if (p.amx) _tile_release();
}

void scale_c(int64_t M, int64_t N, float beta, void* C, int64_t ldc, bool c_bf16) {
  for (int64_t i = 0; i < M; ++i) {
    if (c_bf16) {  // beta is 0 for bf16 C
      uint16_t* c = static_cast<uint16_t*>(C) + i * ldc;
      std::fill(c, c + N, uint16_t{0});
      continue;
    }
    float* c = static_cast<float*>(C) + i * ldc;
    if (beta == 0.0f)
      std::fill(c, c + N, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

}  // namespace

namespace {

void gemm_run(Unit unit, int64_t M, int64_t N, int64_t K, float alpha, const Operand& A, const Operand& B, float beta,
              void* C, int64_t ldc, bool c_bf16, Epi epi = Epi::store, int64_t F = 0, void* gu = nullptr, bool gu_bf16 = false) {
  Problem p{M, N, K, alpha, beta, A, B, C, ldc, c_bf16, 0, 0, 0, {}, ceil_div(K, 32) * 32, unit == Unit::amx,
            epi, F, gu, gu_bf16};
  // Balanced K blocks of a multiple of 32 (a pre-packed B is addressed by K offset); a bf16 C
  // is rounded once and an epilogue sees the whole sum, so those run K in one block.
  const int64_t kc = unit == Unit::amx ? kKCAmx : kKCDp;
  p.kc_max = c_bf16 || epi != Epi::store ? K : ceil_div(ceil_div(K, ceil_div(K, kc)), 32) * 32;
  p.kcp_max = ceil_div(p.kc_max, 32) * 32;
  p.nc_max = ceil_div(ceil_div(N, ceil_div(N, kNC)), kNR) * kNR;
  // Fork only when each thread gets real work (~4M multiply-adds: ~10 us on AMX).
  int nthreads = omp_in_parallel() ? 1 : omp_get_max_threads();
  nthreads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nthreads, (M * N * K) >> 22)));
  const size_t b_bytes = B.packed ? 0 : sizeof(uint16_t) * p.kcp_max * p.nc_max;
  char* ws = static_cast<char*>(
      thread_workspace((nthreads > 1 ? 2 : 1) * b_bytes + a_block_bytes(p.kcp_max) + 32 * 32 * sizeof(float), 0));
  p.Bbuf[0] = reinterpret_cast<uint16_t*>(ws);
  p.Bbuf[1] = reinterpret_cast<uint16_t*>(ws + (nthreads > 1 ? b_bytes : 0));
  if (nthreads == 1) return run_thread(p, 0, 1);
#pragma omp parallel num_threads(nthreads)
  run_thread(p, omp_get_thread_num(), omp_get_num_threads());
}

}  // namespace

void gemm(Unit unit, int64_t M, int64_t N, int64_t K, float alpha, const Operand& A, const Operand& B,
          float beta, void* C, int64_t ldc, bool c_bf16) {
  if (c_bf16 && beta != 0.0f) throw std::invalid_argument("bf16 gemm: a bf16 C needs beta == 0");
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) return scale_c(M, N, beta, C, ldc, c_bf16);
  gemm_run(unit, M, N, K, alpha, A, B, beta, C, ldc, c_bf16);
}

void gate_up_swiglu(Unit unit, int64_t N, int64_t C, int64_t F, const Operand& h, const Operand& Wgu, void* act,
                    bool act_bf16, void* gu, bool gu_bf16) {
  if (N <= 0 || F <= 0 || (!act && !gu)) return;
  const int64_t panels = ceil_div(F, 16), Kp = ceil_div(C, 32) * 32;
  uint16_t* wp = static_cast<uint16_t*>(thread_workspace(sizeof(uint16_t) * panels * kNR * Kp, 3));
  const Operand w{Wgu.data, C, true, Wgu.bf16};
#pragma omp parallel for schedule(static) if (panels * C > (1 << 14) && !omp_in_parallel())
  for (int64_t q = 0; q < panels; ++q) pack_b_panels(wp, Kp * kNR, w, 0, C, Kp, 0, 0, q, q + 1, F);
  Operand b;
  b.packed = wp;
  gemm_run(unit, N, panels * kNR, C, 1.0f, h, b, 0.0f, act, F, act_bf16, Epi::swiglu, F, gu, gu_bf16);
}

void swiglu_backward(void* dgu, const void* gu, bool gu_bf16, void* act, bool act_bf16, const float* dact, int64_t N,
                     int64_t F) {
  const __m512 one = _mm512_set1_ps(1.0f);
#pragma omp parallel for schedule(static) if (N * F > (1 << 15) && !omp_in_parallel())
  for (int64_t n = 0; n < N; ++n) {
    const int64_t row = n * 2 * F;
    for (int64_t f = 0; f < F; f += 16) {
      const __mmask16 m = head_mask(F - f);
      // gate and up as the epilogue rounded them (a no-op on its output), read before dgu is written
      const __m512 g = round_bf16x16(load16(gu, gu_bf16, row + f, m)), u = round_bf16x16(load16(gu, gu_bf16, row + F + f, m));
      const __m512 d = _mm512_maskz_loadu_ps(m, dact + n * F + f);
      const __m512 sg = sigmoid16(g);
      if (act) store16(act, act_bf16, n * F + f, m, swiglu16(g, sg, u));
      const __m512 gs = _mm512_mul_ps(g, sg);
      // dgate = d u (s + g s (1 - s)), dup = d g s
      const __m512 dsilu = _mm512_fmadd_ps(gs, _mm512_sub_ps(one, sg), sg);
      store16(dgu, gu_bf16, row + f, m, _mm512_mul_ps(_mm512_mul_ps(d, u), dsilu));
      store16(dgu, gu_bf16, row + F + f, m, _mm512_mul_ps(d, gs));
    }
  }
}

int64_t packed_b_size(int64_t K, int64_t N) { return ceil_div(N, kNR) * kNR * (ceil_div(K, 32) * 32); }

void pack_b(uint16_t* dst, const Operand& B, int64_t K, int64_t N) {
  const int64_t Kp = ceil_div(K, 32) * 32, npanels = ceil_div(N, kNR);
#pragma omp parallel for schedule(static) if (K * N > (1 << 16) && !omp_in_parallel())
  for (int64_t q = 0; q < npanels; ++q) pack_b_panels(dst, Kp * kNR, B, 0, K, Kp, 0, N, q, q + 1);
}

void gemm_amx(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm(Unit::amx, M, N, K, alpha, Operand{A, lda, transA}, Operand{B, ldb, transB}, beta, C, ldc, false);
}

void gemm_dpbf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc) {
  gemm(Unit::dpbf16, M, N, K, alpha, Operand{A, lda, transA}, Operand{B, ldb, transB}, beta, C, ldc, false);
}

}  // namespace bf16
}  // namespace ls
