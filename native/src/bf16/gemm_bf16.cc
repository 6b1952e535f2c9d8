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
//         for jr over this thread's B panels:      the B panel (KCP x 32 bf16, <= 32 KiB) stays in L1
//           for ir over 32-row A panels:           A streams from L2
//             AMX: C 32x32 = 4 fp32 tiles (0-3), A 2 tiles (4-5: rows 0-15, 16-31), B 2 tiles
//             (6-7: columns 0-15, 16-31), 4 TDPBF16PS per 32 k.
//             AVX-512 BF16: 8 rows x 32 columns in 16 zmm, A pairs broadcast, VDPBF16PS.
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

#include "bf16/units.h"
#include "kernels/common.h"
#include "memory.h"

namespace ls {
namespace bf16 {
namespace {

constexpr int64_t kKC = 512;   // K block: a B panel is KC x 32 bf16 = 32 KiB (L1 is 48 KiB)
constexpr int64_t kNC = 1024;  // columns per B block: 1 MiB of bf16, shared, in L2
constexpr int64_t kMC = 256;   // rows per A block: 256 KiB, per thread, in L2
constexpr int kNR = 32;        // columns per B panel

// ---- rounding and packing -------------------------------------------------------------------

// 16 floats -> 16 dwords whose low halves are the bf16 bits (high halves zero).
inline __m512i rne_lo(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
  return _mm512_srli_epi32(r, 16);
}

inline __mmask16 head_mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

// dword j = bf16(lo[j]) | bf16(hi[j]) << 16: two rows k, k+1 interleaved into VNNI pairs.
inline __m512i pair_rows(const float* lo, const float* hi, __mmask16 m, bool has_hi) {
  const __m512i a = rne_lo(_mm512_maskz_loadu_ps(m, lo));
  if (!has_hi) return a;
  const __m512i b = rne_lo(_mm512_maskz_loadu_ps(m, hi));
  return _mm512_or_si512(a, _mm512_slli_epi32(b, 16));
}

// 32 consecutive floats (n valid) -> 16 dwords of consecutive bf16 pairs.
inline __m512i pair_run(const float* s, int64_t n) {
  const __m256i lo = _mm512_cvtepi32_epi16(rne_lo(_mm512_maskz_loadu_ps(head_mask(n), s)));
  const __m256i hi = _mm512_cvtepi32_epi16(rne_lo(_mm512_maskz_loadu_ps(head_mask(n - 16), s + 16)));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
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

// Offset of the 16 x 32 tile of packed A holding rows [16p, 16p+16) and k [32t, 32t+32).
inline int64_t a_tile(int64_t p, int64_t t, int64_t kcp) { return (p * (kcp / 32) + t) * 512; }

// op(A)(i0:i0+mc, pc:pc+kc) -> dst as tiles (see the top), rows [mc, mcp) and k [kc, kcp) zero.
// op(A)(i, k) = transA ? A[k*lda + i] : A[i*lda + k].
void pack_a(uint16_t* dst, const float* A, int64_t lda, bool transA, int64_t i0, int64_t mc,
            int64_t mcp, int64_t pc, int64_t kc, int64_t kcp) {
  if (!transA) {
    for (int64_t i = 0; i < mc; ++i) {
      const float* s = A + (i0 + i) * lda + pc;
      uint16_t* d = dst + a_tile(i / 16, 0, kcp) + (i % 16) * 32;
      for (int64_t k = 0; k < kcp; k += 32, d += 512) _mm512_store_si512(d, pair_run(s + k, kc - k));
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
          if (k >= kc) {
            r[p] = _mm512_setzero_si512();
            continue;
          }
          const float* s = A + (pc + k) * lda + i0 + ib;
          r[p] = pair_rows(s, s + lda, m, k + 1 < kc);
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

// op(B)(pc:pc+kc, j0:j0+nc) panels [q0, q1) -> dst: panel q at dst + q * kcp * 32, tiles as at
// the top; columns past nc and k past kc zero. op(B)(k, j) = transB ? B[j*ldb + k] : B[k*ldb + j].
void pack_b(uint16_t* dst, const float* B, int64_t ldb, bool transB, int64_t pc, int64_t kc, int64_t kcp,
            int64_t j0, int64_t nc, int64_t q0, int64_t q1) {
  for (int64_t q = q0; q < q1; ++q) {
    uint16_t* panel = dst + q * kcp * kNR;
    for (int half = 0; half < 2; ++half) {
      const int64_t jb = q * kNR + half * 16;  // first column of these 16, within the block
      const int64_t ncols = nc - jb;             // valid columns from jb (may be <= 0)
      for (int64_t kb = 0; kb < kcp; kb += 32) {
        uint16_t* tile = panel + kb * kNR + half * 512;  // k block kb/32: 1024 bf16 per block
        if (!transB) {
          const __mmask16 m = head_mask(ncols);
          for (int p = 0; p < 16; ++p) {
            const int64_t k = kb + 2 * p;
            __m512i d = _mm512_setzero_si512();
            if (k < kc && ncols > 0) {
              const float* s = B + (pc + k) * ldb + j0 + jb;
              d = pair_rows(s, s + ldb, m, k + 1 < kc);
            }
            _mm512_store_si512(tile + p * 32, d);
          }
        } else {
          __m512i r[16];
          for (int j = 0; j < 16; ++j)
            r[j] = j < ncols ? pair_run(B + (j0 + jb + j) * ldb + pc + kb, kc - kb) : _mm512_setzero_si512();
          transpose16(r);  // r[p]: k pair kb/2 + p, columns jb..jb+15
          for (int p = 0; p < 16; ++p) _mm512_store_si512(tile + p * 32, r[p]);
        }
      }
    }
  }
}

// ---- C tiles through a local buffer --------------------------------------------------------

// local(32x32) <- c (mr x nr valid, zeros elsewhere) when `load`, else zeros.
inline void local_load(float* local, const float* c, int64_t ldc, int mr, int nr, bool load) {
  const __mmask16 m0 = head_mask(nr), m1 = head_mask(nr - 16);
  for (int i = 0; i < 32; ++i) {
    const bool row = load && i < mr;
    _mm512_store_ps(local + i * 32, row ? _mm512_maskz_loadu_ps(m0, c + i * ldc) : _mm512_setzero_ps());
    _mm512_store_ps(local + i * 32 + 16, row ? _mm512_maskz_loadu_ps(m1, c + i * ldc + 16) : _mm512_setzero_ps());
  }
}

// c = alpha * local + beta * c over the valid mr x nr (beta == 0: c not read).
inline void local_merge(float* c, int64_t ldc, const float* local, int mr, int nr, float alpha, float beta) {
  const __mmask16 m[2] = {head_mask(nr), head_mask(nr - 16)};
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < mr; ++i)
    for (int h = 0; h < 2; ++h) {
      float* p = c + i * ldc + 16 * h;
      __m512 r = _mm512_mul_ps(va, _mm512_load_ps(local + i * 32 + 16 * h));
      if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m[h], p), r);
      _mm512_mask_storeu_ps(p, m[h], r);
    }
}

// ---- AMX ------------------------------------------------------------------------------------

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

void amx_configure() {
  TileConfig cfg{};
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  _tile_loadconfig(&cfg);
}

// Tiles 0-3 (C) += A micro-panel (32 rows: two 16-row panels) . B panel (kcp x 32).
inline void amx_tile_loop(const uint16_t* a, const uint16_t* b, int64_t kcp) {
  const uint16_t* a1 = a + kcp * 16;
  for (int64_t t = 0; t < kcp / 32; ++t) {
    _tile_loadd(4, a + t * 512, 64);
    _tile_loadd(6, b + t * 1024, 64);
    _tile_loadd(5, a1 + t * 512, 64);
    _tile_loadd(7, b + t * 1024 + 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
}

struct Micro {
  // C(mr x nr at c) from packed panels; `first`: the first K block (beta applies).
  static void amx(const uint16_t* a, const uint16_t* b, int64_t kcp, float* c, int64_t ldc, int mr,
                  int nr, float alpha, float beta, bool first, float* local) {
    const bool direct = alpha == 1.0f && (beta == 0.0f || beta == 1.0f || !first);
    const bool zero_start = first && beta == 0.0f;
    if (direct && mr == 32 && nr == 32) {
      const int64_t sc = ldc * 4;
      if (zero_start) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
      } else {
        _tile_loadd(0, c, sc);
        _tile_loadd(1, c + 16, sc);
        _tile_loadd(2, c + 16 * ldc, sc);
        _tile_loadd(3, c + 16 * ldc + 16, sc);
      }
      amx_tile_loop(a, b, kcp);
      _tile_stored(0, c, sc);
      _tile_stored(1, c + 16, sc);
      _tile_stored(2, c + 16 * ldc, sc);
      _tile_stored(3, c + 16 * ldc + 16, sc);
      return;
    }
    // Local buffer: accumulate from C when direct and not starting from zero; else from zero and
    // merge with alpha / beta afterwards.
    const bool from_c = direct && !zero_start;
    local_load(local, c, ldc, mr, nr, from_c);
    _tile_loadd(0, local, 128);
    _tile_loadd(1, local + 16, 128);
    _tile_loadd(2, local + 16 * 32, 128);
    _tile_loadd(3, local + 16 * 32 + 16, 128);
    amx_tile_loop(a, b, kcp);
    _tile_stored(0, local, 128);
    _tile_stored(1, local + 16, 128);
    _tile_stored(2, local + 16 * 32, 128);
    _tile_stored(3, local + 16 * 32 + 16, 128);
    if (direct)
      local_merge(c, ldc, local, mr, nr, 1.0f, 0.0f);
    else
      local_merge(c, ldc, local, mr, nr, alpha, first ? beta : 1.0f);
  }

  // AVX-512 BF16: rows of the 32-row panel in groups of 8; 8 x 32 accumulators.
  static void dp(const uint16_t* a, const uint16_t* b, int64_t kcp, float* c, int64_t ldc, int mr,
                 int nr, float alpha, float beta, bool first, float* local) {
    const float use_beta = first ? beta : 1.0f;
    const __mmask16 m[2] = {head_mask(nr), head_mask(nr - 16)};
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(use_beta);
    for (int r0 = 0; r0 < mr; r0 += 8) {
      __m512 acc[8][2];
      for (int i = 0; i < 8; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
      // Rows r0..r0+7 lie in one 16-row panel: row i of it at panel + t * 512 + i * 32.
      const uint16_t* ar = a + (r0 / 16) * kcp * 16 + (r0 % 16) * 32;
      for (int64_t k = 0; k < kcp; k += 2) {
        const int64_t t = k >> 5, kk = k & 31;
        const uint16_t* bt = b + t * 1024 + (kk >> 1) * 32;
        const __m512bh b0 = (__m512bh)_mm512_load_si512(bt);
        const __m512bh b1 = (__m512bh)_mm512_load_si512(bt + 512);
        const uint16_t* at = ar + t * 512 + kk;
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) {
          int32_t pair;
          std::memcpy(&pair, at + i * 32, 4);
          const __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);
          acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
          acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
      }
      const int rows = std::min(8, mr - r0);
      for (int i = 0; i < rows; ++i)
        for (int h = 0; h < 2; ++h) {
          float* p = c + (r0 + i) * ldc + 16 * h;
          __m512 r = _mm512_mul_ps(va, acc[i][h]);
          if (use_beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m[h], p), r);
          _mm512_mask_storeu_ps(p, m[h], r);
        }
    }
  }
};

using MicroFn = void (*)(const uint16_t*, const uint16_t*, int64_t, float*, int64_t, int, int, float,
                         float, bool, float*);

struct Problem {
  bool transA, transB;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
  int64_t kc_max, kcp_max, nc_max;
  uint16_t* Bbuf[2];  // shared packed-B blocks, double-buffered
  bool amx;
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

void run_thread(const Problem& p, int tid, int nthreads) {
  const MicroFn micro = p.amx ? Micro::amx : Micro::dp;
  if (p.amx) amx_configure();
  int tm = nthreads, tn = 1;
  choose_grid(nthreads, p.M, std::min(p.N, p.nc_max), tm, tn);
  const int ti = tid / tn, tj = tid % tn;
  int64_t r0, r1;
  split(ceil_div(p.M, 32), tm, ti, r0, r1);
  r0 *= 32;
  r1 = std::min(p.M, r1 * 32);
  // Slot 0: the calling thread's also holds the B blocks (placed first by gemm()); others own
  // theirs. [A block (kMC x kcp_max) | local C tile (32 x 32 fp32)].
  const size_t a_bytes = sizeof(uint16_t) * kMC * p.kcp_max, b_bytes = sizeof(uint16_t) * p.kcp_max * p.nc_max;
  const size_t lead = tid == 0 ? (nthreads > 1 ? 2 : 1) * b_bytes : 0;
  char* ws = static_cast<char*>(thread_workspace(lead + a_bytes + 32 * 32 * sizeof(float), 0));
  uint16_t* Ap = reinterpret_cast<uint16_t*>(ws + lead);
  float* local = reinterpret_cast<float*>(ws + lead + a_bytes);
  int iter = 0;
  for (int64_t jc = 0; jc < p.N; jc += p.nc_max) {
    const int64_t nc = std::min(p.nc_max, p.N - jc), npanels = ceil_div(nc, kNR);
    for (int64_t pc = 0; pc < p.K; pc += p.kc_max, ++iter) {
      const int64_t kc = std::min(p.kc_max, p.K - pc), kcp = ceil_div(kc, 32) * 32;
      uint16_t* Bp = p.Bbuf[iter & 1];
      int64_t q0, q1;
      split(npanels, nthreads, tid, q0, q1);
      pack_b(Bp, p.B, p.ldb, p.transB, pc, kc, kcp, jc, nc, q0, q1);
      if (nthreads > 1) {
#pragma omp barrier
      }
      split(npanels, tn, tj, q0, q1);
      if (q0 == q1) continue;
      const bool first = pc == 0;
      for (int64_t ic = r0; ic < r1; ic += kMC) {
        const int64_t mc = std::min(kMC, r1 - ic), mcp = ceil_div(mc, 32) * 32;
        pack_a(Ap, p.A, p.lda, p.transA, ic, mc, mcp, pc, kc, kcp);
        for (int64_t q = q0; q < q1; ++q) {
          const int nr = static_cast<int>(std::min<int64_t>(kNR, nc - q * kNR));
          const uint16_t* b = Bp + q * kcp * kNR;
          for (int64_t i = 0; i < mc; i += 32) {
            const int mr = static_cast<int>(std::min<int64_t>(32, mc - i));
            micro(Ap + a_tile(i / 16, 0, kcp), b, kcp, p.C + (ic + i) * p.ldc + jc + q * kNR, p.ldc, mr, nr, p.alpha, p.beta,
                  first, local);
          }
        }
      }
    }
  }
  if (p.amx) _tile_release();
}

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f)
      std::fill(c, c + N, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

void gemm_unit(bool amx, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) return scale_c(M, N, beta, C, ldc);
  Problem p{transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, 0, 0, {}, amx};
  p.kc_max = ceil_div(K, ceil_div(K, kKC));  // balanced K blocks
  p.kcp_max = ceil_div(p.kc_max, 32) * 32;
  p.nc_max = ceil_div(ceil_div(N, ceil_div(N, kNC)), kNR) * kNR;
  // Fork only when each thread gets real work (~4M multiply-adds: ~10 us on AMX).
  int nthreads = omp_in_parallel() ? 1 : omp_get_max_threads();
  nthreads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nthreads, (M * N * K) >> 22)));
  const size_t b_bytes = sizeof(uint16_t) * p.kcp_max * p.nc_max;
  const size_t a_bytes = sizeof(uint16_t) * kMC * p.kcp_max;
  char* ws = static_cast<char*>(
      thread_workspace((nthreads > 1 ? 2 : 1) * b_bytes + a_bytes + 32 * 32 * sizeof(float), 0));
  p.Bbuf[0] = reinterpret_cast<uint16_t*>(ws);
  p.Bbuf[1] = reinterpret_cast<uint16_t*>(ws + (nthreads > 1 ? b_bytes : 0));
  if (nthreads == 1) return run_thread(p, 0, 1);
#pragma omp parallel num_threads(nthreads)
  run_thread(p, omp_get_thread_num(), omp_get_num_threads());
}

}  // namespace

void gemm_amx(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_unit(true, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_dpbf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc) {
  gemm_unit(false, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace bf16
}  // namespace ls
