// Flash attention for bf16 mixed precision on the matrix units (units.h): the contract of
// kernels/flash_attention.cc (causal, GQA with K/V read once per group, only the per-row lse
// saved, memory linear in T, deterministic for any thread count, no atomics) with every tile
// product on bf16 operands and fp32 accumulation: AMX TDPBF16PS, or VDPBF16PS on the same
// layouts for the AVX-512 BF16 unit. As in PyTorch's bf16 autocast SDPA, the softmax
// statistics (max, sum, lse, Di = rowdot(dout, out)) are fp32 and P and dS are rounded to bf16
// only as GEMM operands:
//
//   forward   S = bf16(Q) bf16(K)^T;  m, l, lse from fp32 scale*S;  O = sum bf16(P) bf16(V) / l
//   backward  S, P as forward (P = exp(scale S - lse), fp32);  dP = bf16(dO) bf16(V)^T;
//             dS = P (dP - Di) fp32;  dV = bf16(P)^T bf16(dO);  dK = scale bf16(dS)^T bf16(Q);
//             dQ = scale bf16(dS) bf16(K)
// (bf16() is round to nearest even; the units treat bf16 subnormal inputs as zero.) Any D works:
// the head dimension is zero-padded to Dp, a multiple of 32 (one tile's k depth).
//
// Shapes: q, out, dq, dout: (B, T, H, D); k, v, dk, dv: (B, T, KVH, D); lse: (B, H, T).
// As in the fp32 kernel, the G = H/KVH query heads of a group are stacked as rows r = t*G + g,
// a query tile holds Br positions (R = G*Br rows, a multiple of 32) and a key tile Bc = 64 keys.
//
// Every tile product is one routine, mm32: a 32x32 fp32 block C (+)= sum over k steps of
// A (32 x 32 bf16: two 16-row tiles) B (32 x 32: two 16-column VNNI tiles). AMX holds C in
// tiles 0-3, A in 4-5, B in 6-7 (the blocking of gemm_bf16.cc); VDPBF16PS emulates it on the same
// layouts. Every tile is 1 KiB of consecutive bytes (row stride 64): C buffers are tile-major,
// and the operands are in one of four packed layouts (X: rows of q, k, v or dout with the head
// dim d; "A"/"B" the operand of TDPBF16PS it feeds):
//   a_rows    A: rows as M, d as K        [rows/16][Dp/32][16 rows][32 d]        bf16
//   b_rowsT   B: d pairs as K, rows as N  [rows/16][Dp/2 d pairs][16 rows]       (d, d+1) pairs
//   b_rows    B: row pairs as K, d as N   [rows/32][Dp/16][16 row pairs][16 d]   (r, r+1) pairs
//   a_rowsT   A: d as M, rows as K        [rows/32][Dp/16][16 d][32 rows]        bf16
// P and dS are written by the softmax straight into the layouts of the products that read them.
//
//   forward   task (group, query tile); keys are rows, queries columns (so the online softmax's
//             max and sum are plain vector ops down the columns, as in the fp32 kernel); K, V
//             packed once per call, Q per task; per key tile, 32 query columns at a time:
//               S^T (Bc, 32) = K Q^T                A: K a_rows, B: Q b_rowsT
//               m (lazy), l, alpha; P^T -> bf16 B tiles
//               O^T (Dp, 32) = O^T diag(alpha) + V^T P^T    A: V a_rowsT
//             diag(alpha) only when a column's max moved by more than 2^8 (rare after tile 0).
//   backward  per group (one pass) or per group, tile (two passes): q, dout, k, v packed in every
//             layout they feed, with each query row's lse and Di = rowdot(bf16(dout), out); then
//             per sweep of kSweep key tiles, query tiles from the diagonal on, 32 rows at a time:
//               S = Q K^T, dP = dO V^T (32, Bc)     A: a_rows, B: b_rowsT
//               P, dS fp32 rowwise -> bf16 P, dS (row pairs: B tiles), dS rows (A tiles)
//               dQ += dS K (32, Dp)                  A: dS, B: K b_rows
//             and per (query tile, key tile): dV^T += dO^T P, dK^T += Q^T dS (Dp, Bc), A: a_rowsT.
//             The one-pass and two-pass schedules are those of the fp32 kernel (same arithmetic
//             in the same order, so the same bits; see backward below).
//
// Measured on a 2-vCPU Sapphire Rapids, 2 threads, against the fp32 kernel (AVX-512) in the same
// process, interleaved, best of 15, ms (fwd / bwd):
//   bench-s (B 4, T 512, H 8, KVH 4, D 64):   fp32 4.4-4.8 / 9.7-10.2   AMX 1.6 / 3.6-3.7   (~2.8x)
//   bench-l (B 1, T 2048, H 8, KVH 4, D 64):  fp32 15.1-15.9 / 33.6-34.9   AMX 4.0-4.1 / 8.8-9.2   (~3.8x)
//   the AVX-512 BF16 unit (VDPBF16PS at half the FMA rate on this CPU): 0.7-0.77x of fp32.
// What is left on AMX is mostly not the products: the softmax's exponentials (vector work that
// the AMX unit does not overlap: interleaving the products into the softmax loops measured
// slower) and reading q, k, v, dout, out and writing the gradients at ~10 GB/s per core.
//
// Every output element is written by one task summing its terms in a fixed order: results do
// not depend on the thread count. AMX: each thread of a parallel region loads the tile
// configuration and releases the tiles at its end.
//
// Scratch: workspace slot 1 of every thread; the forward's packed K, V and the two-pass backward's
// packed groups in slot 2 of the calling thread: linear in T. gemm's slot 0 and the head's slot 3
// are not used.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "bf16/tiles.h"
#include "bf16/units.h"
#include "kernels/common.h"
#include "memory.h"

namespace ls {
namespace bf16 {
namespace {

constexpr int64_t kBc = 64;  // keys per tile, as the fp32 kernel
constexpr float kLazy = 8.0f;  // the forward's lazy max: p = 2^(s - m) stays <= 2^8
// Backward: key tiles per sweep over the query tiles. Measured (2 threads, ms, bench-l / bench-s
// backward): 1: 9.6 / 3.6, 4: 8.7 / 3.5 (8 about the same as 4, 2 in between).
constexpr int64_t kSweep = 4;

// Query positions per tile: G*Br rows near 128 like the fp32 kernel (clamp(128/G, 16, 64)),
// rounded to whole 16-position blocks, with G*Br a multiple of 32 (two 16-row tiles).
inline int64_t tile_br(int64_t G) {
  int64_t br = std::clamp<int64_t>(128 / G, 16, 64) / 16 * 16;
  while ((br * G) % 32) br += 16;
  return br;
}

inline int64_t round_up(int64_t x, int64_t m) { return ceil_div(x, m) * m; }

// ---- conversions and packing --------------------------------------------------------------

alignas(64) constexpr uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                  8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

// 16 dwords (a[i], b[i]) in bf16: the (k, k+1) pairs of a VNNI tile row.
inline __m512i pair16(__m512 a, __m512 b) {
  return _mm512_permutexvar_epi16(_mm512_load_si512(kInterleave), cvt2(b, a));
}


// Rows of one group in q, k, v or dout: row r at base + (r / G) * tstride + (r % G) * D (the
// stacked heads of a query tile, or G = 1 for keys); rows from n on, and d from D on, read zero.
// Elements are fp32, or bf16 bits (q, k, v kept in bf16 by bf16 training on a matrix unit):
// read as their fp32 values, which the packing rounds to the same bits.
struct Rows {
  const void* base;
  int64_t n, G, tstride, D;
  bool bf16;
  const void* at(int64_t off) const {
    return bf16 ? static_cast<const void*>(static_cast<const uint16_t*>(base) + off)
                : static_cast<const void*>(static_cast<const float*>(base) + off);
  }
  // ptr[i] = row r0 + i for i < count (nullptr past n): one division per block, not per row.
  void rows(const void** ptr, int64_t r0, int64_t count) const {
    int64_t t = r0 / G, g = r0 % G;
    for (int64_t i = 0; i < count; ++i) {
      ptr[i] = r0 + i < n ? at(t * tstride + g * D) : nullptr;
      if (++g == G) g = 0, ++t;
    }
  }
};

// 16 elements e0.. of a row (fp32, or bf16 bits widened exactly), zero past D or for no row.
inline __m512 load_row(const void* row, bool bf16, int64_t D, int64_t e0) {
  if (!row || e0 >= D) return _mm512_setzero_ps();
  const __mmask16 m = head_mask(D - e0);
  if (bf16) return load_bf16x16(static_cast<const uint16_t*>(row) + e0, m);
  return _mm512_maskz_loadu_ps(m, static_cast<const float*>(row) + e0);
}

// Rows [r0, r0 + 16 nb) -> a_rows (see the top).
void pack_a_rows(uint16_t* dst, const Rows& s, int64_t r0, int64_t nb, int64_t Dp) {
  for (int64_t rb = 0; rb < nb; ++rb) {
    const void* rows[16];
    s.rows(rows, r0 + rb * 16, 16);
    for (int i = 0; i < 16; ++i)
      for (int64_t kd = 0; kd < Dp / 32; ++kd)
        _mm512_store_si512(dst + ((rb * (Dp / 32) + kd) * 16 + i) * 32,
                           cvt2(load_row(rows[i], s.bf16, s.D, kd * 32 + 16), load_row(rows[i], s.bf16, s.D, kd * 32)));
  }
}

// Rows [r0, r0 + 16 nb) -> b_rowsT: a row's bf16 d pairs are dwords; 16 rows transposed.
void pack_b_rowsT(uint16_t* dst, const Rows& s, int64_t r0, int64_t nb, int64_t Dp) {
  for (int64_t rb = 0; rb < nb; ++rb) {
    const void* rows[16];
    s.rows(rows, r0 + rb * 16, 16);
    for (int64_t kd = 0; kd < Dp / 32; ++kd) {
      __m512i t[16];
      for (int i = 0; i < 16; ++i)
        t[i] = cvt2(load_row(rows[i], s.bf16, s.D, kd * 32 + 16), load_row(rows[i], s.bf16, s.D, kd * 32));
      transpose16(t);
      for (int p = 0; p < 16; ++p) _mm512_store_si512(dst + (rb * (Dp / 2) + kd * 16 + p) * 32, t[p]);
    }
  }
}

// Rows [r0, r0 + 32 nb) -> b_rows, or a_rowsT (transposed): tile row p of b_rows holds the
// pairs (x[2p][e], x[2p+1][e]) for 16 e; transposed as dwords, row e holds x[0..31][e].
void pack_rows_pairs(uint16_t* dst, const Rows& s, int64_t r0, int64_t nb, int64_t Dp, bool transpose) {
  for (int64_t rb = 0; rb < nb; ++rb) {
    const void* rows[32];
    s.rows(rows, r0 + rb * 32, 32);
    for (int64_t d16 = 0; d16 < Dp / 16; ++d16) {
      __m512i t[16];
      for (int p = 0; p < 16; ++p)
        t[p] = pair16(load_row(rows[2 * p], s.bf16, s.D, d16 * 16), load_row(rows[2 * p + 1], s.bf16, s.D, d16 * 16));
      if (transpose) transpose16(t);
      for (int i = 0; i < 16; ++i) _mm512_store_si512(dst + ((rb * (Dp / 16) + d16) * 16 + i) * 32, t[i]);
    }
  }
}

// ---- the tile product ---------------------------------------------------------------------

// C (32 x 32 fp32) = (acc ? C : 0) + sum over s < nk of A_s B_s, with A_s = [a0 + s*as ;
// a1 + s*as] (rows 0-15, 16-31) and B_s = [b0 + s*bs | b1 + s*bs] (columns 0-15, 16-31): tiles
// of 1 KiB, A 16 rows x 32 bf16, B 16 VNNI pair rows x 16 columns. C's four 16 x 16 tiles are
// at c (rows 0-15, columns 0-15), c + tj (columns 16-31), c + ti (rows 16-31), c + ti + tj, each
// 16 rows of 16 floats at stride ld.
struct Mm {
  const uint16_t *a0, *a1;
  int64_t as;
  const uint16_t *b0, *b1;
  int64_t bs;
  int64_t nk;
};


// Every C buffer of this file is tile-major (ld = 16: a tile is 1 KiB of consecutive bytes):
// measured on the Sapphire Rapids Xeon, a 32 x 32 block of K depth 64 (8 TDPBF16PS, 4 tile
// stores) takes 84 ns stored as whole tiles, 106-112 ns with rows 512 bytes apart (L1 set
// conflicts); the tile stores, not the products, dominate at this depth.
template <bool kAmx>
inline void mm32(float* c, int64_t ti, int64_t tj, bool acc, const Mm& m) {
  if constexpr (kAmx) {
    if (acc) {
      _tile_loadd(0, c, 64);
      _tile_loadd(1, c + tj, 64);
      _tile_loadd(2, c + ti, 64);
      _tile_loadd(3, c + ti + tj, 64);
    } else {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
    }
    for (int64_t s = 0; s < m.nk; ++s) {
      _tile_loadd(4, m.a0 + s * m.as, 64);
      _tile_loadd(6, m.b0 + s * m.bs, 64);
      _tile_loadd(5, m.a1 + s * m.as, 64);
      _tile_loadd(7, m.b1 + s * m.bs, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, 64);
    _tile_stored(1, c + tj, 64);
    _tile_stored(2, c + ti, 64);
    _tile_stored(3, c + ti + tj, 64);
  } else {
    // VDPBF16PS: 8 rows x 32 columns of C in 16 zmm; an A row's (k, k+1) pair broadcast.
    for (int r0 = 0; r0 < 32; r0 += 8) {
      float* cr = c + (r0 / 16) * ti + (r0 % 16) * 16;
      __m512 v[8][2];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) {
        v[i][0] = acc ? _mm512_load_ps(cr + i * 16) : _mm512_setzero_ps();
        v[i][1] = acc ? _mm512_load_ps(cr + tj + i * 16) : _mm512_setzero_ps();
      }
      Acc8x32 x;
      acc_load(x, v);
      const uint16_t* a = (r0 < 16 ? m.a0 : m.a1) + (r0 % 16) * 32;
      for (int64_t s = 0; s < m.nk; ++s) {
        const uint16_t* as = a + s * m.as;
        const uint16_t* b0 = m.b0 + s * m.bs;
        const uint16_t* b1 = m.b1 + s * m.bs;
        for (int p = 0; p < 16; ++p)
          dp8x32(x, reinterpret_cast<const char*>(as + 2 * p), 64, _mm512_load_ps(b0 + p * 32), _mm512_load_ps(b1 + p * 32));
      }
      acc_store(x, v);
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) {
        _mm512_store_ps(cr + i * 16, v[i][0]);
        _mm512_store_ps(cr + tj + i * 16, v[i][1]);
      }
    }
  }
}

constexpr double kLn2 = 0.6931471805599453;

// The sizes of one call.
struct Dims {
  int64_t B, Tn, H, KVH, D;
  int64_t G, Br, R, Bc, Dp, nI, nJ, Tp, Rq, groups;
  float scale;
};

Dims dims(int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D) {
  Dims d{};
  d.B = B, d.Tn = Tn, d.H = H, d.KVH = KVH, d.D = D;
  d.G = H / KVH;
  d.Br = tile_br(d.G);
  d.R = d.G * d.Br;
  d.Bc = kBc;
  d.Dp = round_up(D, 32);
  d.nI = ceil_div(Tn, d.Br);
  d.nJ = ceil_div(Tn, d.Bc);
  d.Tp = d.nJ * d.Bc;  // keys padded to whole tiles
  d.Rq = d.nI * d.R;   // stacked query rows padded to whole tiles
  d.groups = B * KVH;
  d.scale = 1.0f / std::sqrt(static_cast<float>(D));
  return d;
}

// Stacked query rows of group (b, kvh) in x (q, out, dout: (B, T, H, D)); key rows in (B, T, KVH, D).
inline Rows query_rows(const void* x, bool bf16, const Dims& d, int64_t b, int64_t kvh) {
  Rows r{x, d.Tn * d.G, d.G, d.H * d.D, d.D, bf16};
  r.base = r.at((b * d.Tn * d.H + kvh * d.G) * d.D);
  return r;
}
inline Rows key_rows(const void* x, bool bf16, const Dims& d, int64_t b, int64_t kvh) {
  Rows r{x, d.Tn, 1, d.KVH * d.D, d.D, bf16};
  r.base = r.at((b * d.Tn * d.KVH + kvh) * d.D);
  return r;
}

// ---- forward ------------------------------------------------------------------------------

template <bool kAmx>
void forward(void* out, bool out_bf16, float* lse, const void* q, const void* k, const void* v, bool qkv_bf16,
             const Dims& d) {
  const int64_t R = d.R, Bc = d.Bc, Dp = d.Dp, Tn = d.Tn, G = d.G;
  // K (a_rows) and V^T (a_rowsT) of every group, packed once: Tp x Dp bf16 each per group.
  const int64_t kv_elems = d.Tp * Dp;
  uint16_t* packed = static_cast<uint16_t*>(thread_workspace(sizeof(uint16_t) * 2 * d.groups * kv_elems, 2));
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < d.groups * d.nJ; ++task) {
    const int64_t grp = task / d.nJ, jt = task % d.nJ;
    const Rows kr = key_rows(k, qkv_bf16, d, grp / d.KVH, grp % d.KVH), vr = key_rows(v, qkv_bf16, d, grp / d.KVH, grp % d.KVH);
    uint16_t* Ka = packed + 2 * grp * kv_elems;
    uint16_t* VTa = Ka + kv_elems;
    pack_a_rows(Ka + jt * Bc * Dp, kr, jt * Bc, Bc / 16, Dp);
    pack_rows_pairs(VTa + jt * Bc * Dp, vr, jt * Bc, Bc / 32, Dp, true);
  }

  const int64_t ws_bytes = carve_bytes({2 * R * Dp, 4 * Dp * R, 4 * Bc * 32, 2 * Bc * 32, 4 * R, 4 * R, 4 * R});
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512 vscale = _mm512_set1_ps(static_cast<float>(d.scale * kLog2e));
#pragma omp parallel
  {
    FlushDenormals ftz;
    if (kAmx) amx_configure();
    Carve ws{static_cast<char*>(thread_workspace(ws_bytes, 1))};
    uint16_t* QTv = ws.take<uint16_t>(R * Dp);   // Q^T in b_rowsT
    float* OT = ws.take<float>(Dp * R);          // unnormalized O^T: tiles [Dp/16][R/16]
    float* ST = ws.take<float>(Bc * 32);         // scores of 32 queries: tiles [2][Bc/16] (keys down)
    uint16_t* PTv = ws.take<uint16_t>(Bc * 32);  // their P^T as B tiles: [2][Bc/2 key pairs][16]
    float* m = ws.take<float>(R);                // running (lazy) max of the scores, log2 units
    float* l = ws.take<float>(R);                // running sum of 2^(score - m)
    float* qpos = ws.take<float>(R);             // query position of each column
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < d.nI * d.groups; ++task) {
      // group by group (its K, V stay in cache), the longest (last) query tiles first
      const int64_t grp = task / d.nI, it = d.nI - 1 - task % d.nI, b = grp / d.KVH, kvh = grp % d.KVH;
      const int64_t i0 = it * d.Br, nr = std::min(d.Br, Tn - i0), rows = nr * G;
      const uint16_t* Ka = packed + 2 * grp * kv_elems;
      const uint16_t* VTa = Ka + kv_elems;
      Rows qr = query_rows(q, qkv_bf16, d, b, kvh);
      qr.base = qr.at(i0 * d.H * d.D);
      qr.n = rows;
      pack_b_rowsT(QTv, qr, 0, R / 16, Dp);
      std::fill(m, m + R, -std::numeric_limits<float>::infinity());
      std::fill(l, l + R, 0.0f);
      for (int64_t r = 0, t = i0; r < R; ++t)  // padding sees all keys
        for (int64_t g = 0; g < G; ++g, ++r) qpos[r] = r < rows ? float(t) : float(Tn);
      const int64_t nJ = (i0 + nr - 1) / Bc + 1;  // key tiles up to the diagonal
      for (int64_t jt = 0; jt < nJ; ++jt) {
        // keys up to the tile's last query (those after it are masked for every column; with
        // G >= 4 a query tile is shorter than a key tile), rounded up to 32 (zeros past T)
        const int64_t j0 = jt * Bc, kc = round_up(std::min(Bc, i0 + nr - j0), 32);
        const bool diagonal = j0 + kc - 1 > i0;  // some key after some query (or past T): mask
        // 32 query columns at a time: S^T, the softmax, O^T, all on tiles in L1.
        for (int64_t c = 0; c < R / 32; ++c) {
          // S^T = K Q^T: (kc, 32)
          for (int64_t a = 0; a < kc / 32; ++a) {
            const uint16_t* ka = Ka + (j0 / 16 + 2 * a) * (Dp / 32) * 512;
            const uint16_t* qb = QTv + 2 * c * (Dp / 2) * 32;
            mm32<kAmx>(ST + 2 * a * 256, 256, Bc * 16, false,
                       Mm{ka, ka + (Dp / 32) * 512, 512, qb, qb + (Dp / 2) * 32, 512, Dp / 32});
          }
          // The online softmax down the two column vectors, in log2 units (s = scale log2(e) S);
          // P^T rounded into its B tiles. The max is taken of the raw scores (rounding is
          // monotonic: max(fl(c S)) = fl(c max S)) and is lazy: a column takes a new max only
          // when the old one is more than kLazy below it (so p <= 2^kLazy), and only then are
          // O^T's columns rescaled (rarely after the first key tile).
          const int64_t r0 = 32 * c;
          const __m512 qp0 = _mm512_load_ps(qpos + r0), qp1 = _mm512_load_ps(qpos + r0 + 16);
          const __m512 m0 = _mm512_load_ps(m + r0), m1 = _mm512_load_ps(m + r0 + 16);
          const float* s0 = ST;
          const float* s1 = ST + Bc * 16;
          __m512 t0 = ninf, t1 = ninf;
          if (diagonal)
            for (int64_t j = 0; j < kc; ++j) {
              const __m512 kp = _mm512_set1_ps(float(j0 + j));
              t0 = _mm512_mask_max_ps(t0, _mm512_cmp_ps_mask(kp, qp0, _CMP_LE_OQ), t0, _mm512_load_ps(s0 + j * 16));
              t1 = _mm512_mask_max_ps(t1, _mm512_cmp_ps_mask(kp, qp1, _CMP_LE_OQ), t1, _mm512_load_ps(s1 + j * 16));
            }
          else
            for (int64_t j = 0; j < kc; ++j) {
              t0 = _mm512_max_ps(t0, _mm512_load_ps(s0 + j * 16));
              t1 = _mm512_max_ps(t1, _mm512_load_ps(s1 + j * 16));
            }
          t0 = _mm512_mul_ps(t0, vscale);
          t1 = _mm512_mul_ps(t1, vscale);
          const __mmask16 mv0 = _mm512_cmp_ps_mask(t0, _mm512_add_ps(m0, _mm512_set1_ps(kLazy)), _CMP_GT_OQ);
          const __mmask16 mv1 = _mm512_cmp_ps_mask(t1, _mm512_add_ps(m1, _mm512_set1_ps(kLazy)), _CMP_GT_OQ);
          const __m512 n0 = _mm512_mask_mov_ps(m0, mv0, t0), n1 = _mm512_mask_mov_ps(m1, mv1, t1);
          __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
          uint16_t* p0 = PTv;
          uint16_t* p1 = PTv + (Bc / 2) * 32;
          for (int64_t j = 0; j < kc; j += 2) {
            __m512 a0 = vexp2(_mm512_fmsub_ps(_mm512_load_ps(s0 + j * 16), vscale, n0));
            __m512 b0 = vexp2(_mm512_fmsub_ps(_mm512_load_ps(s0 + j * 16 + 16), vscale, n0));
            __m512 a1 = vexp2(_mm512_fmsub_ps(_mm512_load_ps(s1 + j * 16), vscale, n1));
            __m512 b1 = vexp2(_mm512_fmsub_ps(_mm512_load_ps(s1 + j * 16 + 16), vscale, n1));
            if (diagonal) {
              const __m512 ka = _mm512_set1_ps(float(j0 + j)), kb = _mm512_set1_ps(float(j0 + j + 1));
              a0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(ka, qp0, _CMP_LE_OQ), a0);
              b0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(kb, qp0, _CMP_LE_OQ), b0);
              a1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(ka, qp1, _CMP_LE_OQ), a1);
              b1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(kb, qp1, _CMP_LE_OQ), b1);
            }
            sum0 = _mm512_add_ps(_mm512_add_ps(sum0, a0), b0);
            sum1 = _mm512_add_ps(_mm512_add_ps(sum1, a1), b1);
            _mm512_store_si512(p0 + (j / 2) * 32, pair16(a0, b0));
            _mm512_store_si512(p1 + (j / 2) * 32, pair16(a1, b1));
          }
          // alpha = 2^(m_old - m_new): 1 where m stays, 0 on the first tile (m_old = -inf)
          const __m512 lo = _mm512_set1_ps(-150.0f);
          const __m512 al0 = vexp2(_mm512_max_ps(_mm512_sub_ps(m0, n0), lo));
          const __m512 al1 = vexp2(_mm512_max_ps(_mm512_sub_ps(m1, n1), lo));
          _mm512_store_ps(l + r0, _mm512_fmadd_ps(_mm512_load_ps(l + r0), al0, sum0));
          _mm512_store_ps(l + r0 + 16, _mm512_fmadd_ps(_mm512_load_ps(l + r0 + 16), al1, sum1));
          _mm512_store_ps(m + r0, n0);
          _mm512_store_ps(m + r0 + 16, n1);
          if (jt > 0 && (mv0 | mv1))  // O^T's 32 columns rescaled (tile 0 starts O^T)
            for (int64_t e = 0; e < Dp; ++e) {
              float* o = OT + ((e / 16) * (R / 16) + 2 * c) * 256 + (e % 16) * 16;
              _mm512_store_ps(o, _mm512_mul_ps(_mm512_load_ps(o), al0));
              _mm512_store_ps(o + 256, _mm512_mul_ps(_mm512_load_ps(o + 256), al1));
            }
          // O^T += V^T P^T: (Dp, 32)
          for (int64_t dd = 0; dd < Dp / 32; ++dd) {
            const uint16_t* va = VTa + ((j0 / 32) * (Dp / 16) + 2 * dd) * 512;
            mm32<kAmx>(OT + (2 * dd * (R / 16) + 2 * c) * 256, R * 16, 256, jt > 0,
                       Mm{va, va + 512, (Dp / 16) * 512, p0, p1, 512, kc / 32});
          }
        }
      }
      // out = O / l: O^T's 16 x 16 tiles transposed in registers, stored fp32 or rounded once to
      // bf16 (nearest even, as the GEMMs round an fp32 operand); lse = m ln 2 + log l.
      for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        const int64_t nrow = std::min<int64_t>(16, rows - r0);
        int64_t dst[16];  // element offset of each row in out
        float inv[16];
        for (int64_t i = 0, t = i0 + r0 / G, g = r0 % G; i < nrow; ++i) {
          const int64_t r = r0 + i;
          dst[i] = ((b * Tn + t) * d.H + kvh * G + g) * d.D;
          inv[i] = 1.0f / l[r];
          lse[(b * d.H + kvh * G + g) * Tn + t] = static_cast<float>(double(m[r]) * kLn2 + std::log(double(l[r])));
          if (++g == G) g = 0, ++t;
        }
        for (int64_t e0 = 0; e0 < d.D; e0 += 16) {
          __m512i t[16];
          const float* tile = OT + ((e0 / 16) * (R / 16) + r0 / 16) * 256;
          for (int i = 0; i < 16; ++i) t[i] = _mm512_load_si512(tile + i * 16);
          transpose16(t);
          const __mmask16 mask = head_mask(d.D - e0);
          for (int64_t i = 0; i < nrow; ++i) {
            const __m512 o = _mm512_mul_ps(_mm512_castsi512_ps(t[i]), _mm512_set1_ps(inv[i]));
            if (out_bf16)
              _mm256_mask_storeu_epi16(static_cast<uint16_t*>(out) + dst[i] + e0, mask, _mm512_cvtepi32_epi16(rne_lo(o)));
            else
              _mm512_mask_storeu_ps(static_cast<float*>(out) + dst[i] + e0, mask, o);
          }
        }
      }
    }
    if (kAmx) _tile_release();
  }
}

// ---- backward -----------------------------------------------------------------------------

// What backward prepares of one group: its stacked query rows of q and dout in a_rows and
// a_rowsT (Rq x Dp bf16 each) with each row's lse log2(e), Di and position (Rq each), its keys
// of k in b_rowsT and b_rows, of v in b_rowsT (Tp x Dp bf16 each).
struct Packed {
  uint16_t *Qa, *dOa, *QTa, *dOTa, *KTv, *VTv, *Kv;
  float *lr, *di;  // lse log2(e), Di = rowdot(bf16(dout), bf16(out)); 0 for padding rows
  int32_t* qpos;   // query position; -1 for padding rows (every key masked)
};

inline int64_t packed_group_bytes(const Dims& d) {
  return carve_bytes({2 * 4 * d.Rq * d.Dp, 2 * 3 * d.Tp * d.Dp, 4 * d.Rq, 4 * d.Rq, 4 * d.Rq});
}

inline Packed packed_group(char* p, const Dims& d) {
  Carve ws{p};
  const int64_t nq = d.Rq * d.Dp, nk = d.Tp * d.Dp;
  uint16_t* a = ws.take<uint16_t>(4 * nq);
  uint16_t* k = ws.take<uint16_t>(3 * nk);
  Packed pk{a, a + nq, a + 2 * nq, a + 3 * nq, k, k + nk, k + 2 * nk, nullptr, nullptr, nullptr};
  pk.lr = ws.take<float>(d.Rq);
  pk.di = ws.take<float>(d.Rq);
  pk.qpos = ws.take<int32_t>(d.Rq);
  return pk;
}

// Query tile i of group (b, kvh): its R stacked rows of q and dout packed, and their lse, Di and
// positions. Di = rowdot(bf16(dout), bf16(out)). bf16(dout) is the dout that dP = dO V^T sees, so
// dS = P (dP - Di) has no 2^-9-sized term from dout's rounding (with one key, out = bf16(v) and
// dS is 0 up to fp32 sums, as in exact arithmetic). bf16(out) is the out that bf16 training keeps
// (forward may store it in bf16; the o projection's GEMMs read it rounded in any case): an fp32
// out is rounded here, so both forms give the same bits, as FlashAttention's backward reads its
// bf16 output.
void pack_query_tile(const Packed& pk, const void* q, bool q_bf16, const float* dout, const void* out, bool out_bf16,
                     const float* lse, const Dims& d, int64_t b, int64_t kvh, int64_t i) {
  const Rows qr = query_rows(q, q_bf16, d, b, kvh), gr = query_rows(dout, false, d, b, kvh);
  const int64_t r0 = i * d.R, Dp = d.Dp;
  pack_a_rows(pk.Qa + r0 * Dp, qr, r0, d.R / 16, Dp);
  pack_a_rows(pk.dOa + r0 * Dp, gr, r0, d.R / 16, Dp);
  pack_rows_pairs(pk.QTa + r0 * Dp, qr, r0, d.R / 32, Dp, true);
  pack_rows_pairs(pk.dOTa + r0 * Dp, gr, r0, d.R / 32, Dp, true);
  for (int64_t r = r0, t = i * d.Br; r < r0 + d.R; ++t)  // r0 = i R = i Br G: position i Br, head 0
    for (int64_t g = 0; g < d.G; ++g, ++r) {
      if (t >= d.Tn) {
        pk.lr[r] = 0.0f, pk.di[r] = 0.0f, pk.qpos[r] = -1;
        continue;
      }
      const int64_t h = kvh * d.G + g, off = ((b * d.Tn + t) * d.H + h) * d.D;
      const void* orow = out_bf16 ? static_cast<const void*>(static_cast<const uint16_t*>(out) + off)
                                  : static_cast<const void*>(static_cast<const float*>(out) + off);
      __m512 acc = _mm512_setzero_ps();
      for (int64_t e = 0; e < d.D; e += 16) {
        const __m512 xr = round_bf16x16(load_row(dout + off, false, d.D, e));
        __m512 o = load_row(orow, out_bf16, d.D, e);
        if (!out_bf16) o = _mm512_castsi512_ps(_mm512_slli_epi32(rne_lo(o), 16));
        acc = _mm512_fmadd_ps(xr, o, acc);
      }
      pk.di[r] = _mm512_reduce_add_ps(acc);
      pk.lr[r] = static_cast<float>(lse[(b * d.H + h) * d.Tn + t] * kLog2e);
      pk.qpos[r] = static_cast<int32_t>(t);
    }
}

void pack_key_tile(const Packed& pk, const void* k, const void* v, bool kv_bf16, const Dims& d, int64_t b, int64_t kvh,
                   int64_t j) {
  const Rows kr = key_rows(k, kv_bf16, d, b, kvh), vr = key_rows(v, kv_bf16, d, b, kvh);
  const int64_t j0 = j * d.Bc, Dp = d.Dp;
  pack_b_rowsT(pk.KTv + j0 * Dp, kr, j0, d.Bc / 16, Dp);
  pack_b_rowsT(pk.VTv + j0 * Dp, vr, j0, d.Bc / 16, Dp);
  pack_rows_pairs(pk.Kv + j0 * Dp, kr, j0, d.Bc / 32, Dp, false);
}

// The per-thread scratch of a (query tile, key tile) pair.
struct Tiles {
  float *S, *dP;            // scores, dP of 32 rows: tiles [2][Bc/16]
  uint16_t *Pv, *dSv;       // P, dS of the R rows as B tiles, row pairs as K: [Bc/16][R/2][16]
  uint16_t* dSa;            // dS as A tiles: [R/16][Bc/32][16][32]
};

int64_t tiles_bytes(const Dims& d) {
  const int64_t RB = d.R * d.Bc;
  return carve_bytes({4 * 32 * d.Bc, 4 * 32 * d.Bc, 2 * RB, 2 * RB, 2 * RB});
}

Tiles carve_tiles(Carve& ws, const Dims& d) {
  const int64_t RB = d.R * d.Bc;
  Tiles t;
  t.S = ws.take<float>(32 * d.Bc);
  t.dP = ws.take<float>(32 * d.Bc);
  t.Pv = ws.take<uint16_t>(RB);
  t.dSv = ws.take<uint16_t>(RB);
  t.dSa = ws.take<uint16_t>(RB);
  return t;
}

// One (query tile it, key tile j0) pair, 32 rows at a time: S, dP; P and dS in fp32, rounded
// into dSa and (when `pairs`) into Pv, dSv; then dQ (tiles [rows/16][Dp/16] from the tile's first
// row) (+)= dS K: from zero on key tile 0 (the first term of every row's dQ), else accumulated.
template <bool kAmx>
void tile_pair(Tiles& t, const Packed& pk, const Dims& d, int64_t it, int64_t j0, bool pairs, float* dQ) {
  const float* lr = pk.lr + it * d.R;
  const float* di = pk.di + it * d.R;
  const int32_t* qpos = pk.qpos + it * d.R;
  const int64_t R = d.R, Bc = d.Bc, Dp = d.Dp;
  const int64_t rb = it * R, kc = round_up(std::min(Bc, d.Tn - j0), 32), i0 = it * d.Br;
  const bool diagonal = j0 + kc - 1 > i0;  // some key after some query (or past T): mask
  const __m512 vscale = _mm512_set1_ps(static_cast<float>(d.scale * kLog2e));
  const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  for (int64_t c = 0; c < R / 32; ++c) {
    // S = Q K^T, dP = dO V^T: (32, kc)
    const int64_t qo = (rb / 16 + 2 * c) * (Dp / 32) * 512, qs = (Dp / 32) * 512, ks = (Dp / 2) * 32;
    for (int64_t a = 0; a < kc / 32; ++a) {
      const int64_t ko = (j0 / 16 + 2 * a) * (Dp / 2) * 32;
      mm32<kAmx>(t.S + 2 * a * 256, Bc * 16, 256, false,
                 Mm{pk.Qa + qo, pk.Qa + qo + qs, 512, pk.KTv + ko, pk.KTv + ko + ks, 512, Dp / 32});
      mm32<kAmx>(t.dP + 2 * a * 256, Bc * 16, 256, false,
                 Mm{pk.dOa + qo, pk.dOa + qo + qs, 512, pk.VTv + ko, pk.VTv + ko + ks, 512, Dp / 32});
    }
    // P = 2^(scale log2(e) S - lse log2(e)), dS = P (dP - Di), rowwise, two rows at a time.
    for (int64_t rr = 0; rr < 32; rr += 2) {
      const int64_t r0 = 32 * c + rr;
      const __m512 l0 = _mm512_set1_ps(lr[r0]), l1 = _mm512_set1_ps(lr[r0 + 1]);
      const __m512 g0 = _mm512_set1_ps(di[r0]), g1 = _mm512_set1_ps(di[r0 + 1]);
      const __m512i q0 = _mm512_set1_epi32(qpos[r0]), q1 = _mm512_set1_epi32(qpos[r0 + 1]);
      const float* s = t.S + (rr / 16) * Bc * 16 + (rr % 16) * 16;  // row rr, keys 0-15; key tile kb at + kb * 256
      const float* dp = t.dP + (rr / 16) * Bc * 16 + (rr % 16) * 16;
      for (int64_t a = 0; a < kc / 32; ++a) {
        __m512 ds0[2], ds1[2];
        for (int h = 0; h < 2; ++h) {
          const int64_t j = a * 32 + h * 16, o = (j / 16) * 256;
          __m512 p0 = vexp2(_mm512_fmsub_ps(_mm512_load_ps(s + o), vscale, l0));
          __m512 p1 = vexp2(_mm512_fmsub_ps(_mm512_load_ps(s + o + 16), vscale, l1));
          if (diagonal) {
            const __m512i kp = _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int32_t>(j0 + j)));
            p0 = _mm512_maskz_mov_ps(_mm512_cmple_epi32_mask(kp, q0), p0);
            p1 = _mm512_maskz_mov_ps(_mm512_cmple_epi32_mask(kp, q1), p1);
          }
          ds0[h] = _mm512_mul_ps(p0, _mm512_sub_ps(_mm512_load_ps(dp + o), g0));
          ds1[h] = _mm512_mul_ps(p1, _mm512_sub_ps(_mm512_load_ps(dp + o + 16), g1));
          if (pairs) {
            const int64_t po = ((j / 16) * (R / 2) + r0 / 2) * 32;
            _mm512_store_si512(t.Pv + po, pair16(p0, p1));
            _mm512_store_si512(t.dSv + po, pair16(ds0[h], ds1[h]));
          }
        }
        const int64_t ao = ((r0 / 16) * (Bc / 32) + a) * 512 + (r0 % 16) * 32;
        _mm512_store_si512(t.dSa + ao, cvt2(ds0[1], ds0[0]));
        _mm512_store_si512(t.dSa + ao + 32, cvt2(ds1[1], ds1[0]));
      }
    }
    // dQ += dS K: (32, Dp)
    if (dQ)
      for (int64_t dd = 0; dd < Dp / 32; ++dd) {
        const uint16_t* sa = t.dSa + 2 * c * (Bc / 32) * 512;
        const uint16_t* kb = pk.Kv + ((j0 / 32) * (Dp / 16) + 2 * dd) * 512;
        mm32<kAmx>(dQ + (2 * c * (Dp / 16) + 2 * dd) * 256, Dp * 16, 256, j0 > 0,
                   Mm{sa, sa + (Bc / 32) * 512, 512, kb, kb + 512, (Dp / 16) * 512, kc / 32});
      }
  }
}

// dK, dV of key tiles jt0 .. jt0 + nw - 1 of group (b, kvh) in one sweep over the query tiles
// from the first one's diagonal on, each query tile meeting the key tiles in order; with dQa (the
// group's Rq stacked rows of dQ, tiles [Rq/16][Dp/16]) also dQ: the one-pass schedule.
// dKT, dVT: nw x (Dp, Bc), tiles [Dp/16][Bc/16]. A query tile's packed rows (4 x R x Dp bf16) are
// read once per sweep, not once per key tile: with T = 2048 they are 2 MiB per group, past L2.
template <bool kAmx>
void key_tiles(float* dk, float* dv, float* dQa, const Packed& pk, Tiles& t, float* dKT, float* dVT, const Dims& d,
               int64_t b, int64_t kvh, int64_t jt0, int64_t nw) {
  const int64_t R = d.R, Bc = d.Bc, Dp = d.Dp;
  for (int64_t it = jt0 * Bc / d.Br; it < d.nI; ++it)
    for (int64_t w = 0; w < nw; ++w) {
      const int64_t j0 = (jt0 + w) * Bc, kc = round_up(std::min(Bc, d.Tn - j0), 32), first = j0 / d.Br;
      if (it < first) continue;  // before key tile jt0 + w's diagonal
      tile_pair<kAmx>(t, pk, d, it, j0, true, dQa ? dQa + it * R * Dp : nullptr);
      // dV^T += dO^T P, dK^T += Q^T dS: (Dp, kc), from zero on the first query tile
      float* kt = dKT + w * Dp * Bc;
      float* vt = dVT + w * Dp * Bc;
      const int64_t rb = it * R;
      for (int64_t dd = 0; dd < Dp / 32; ++dd)
        for (int64_t a = 0; a < kc / 32; ++a) {
          const int64_t ao = ((rb / 32) * (Dp / 16) + 2 * dd) * 512, bo = 2 * a * (R / 2) * 32;
          const int64_t as = (Dp / 16) * 512, b1 = (R / 2) * 32, co = (2 * dd * (Bc / 16) + 2 * a) * 256;
          mm32<kAmx>(vt + co, Bc * 16, 256, it > first, Mm{pk.dOTa + ao, pk.dOTa + ao + 512, as, t.Pv + bo, t.Pv + bo + b1, 512, R / 32});
          mm32<kAmx>(kt + co, Bc * 16, 256, it > first, Mm{pk.QTa + ao, pk.QTa + ao + 512, as, t.dSv + bo, t.dSv + bo + b1, 512, R / 32});
        }
    }
  // dk = scale dK, dv: the accumulators' 16 x 16 tiles transposed in registers.
  for (int64_t w = 0; w < nw; ++w) {
    const int64_t j0 = (jt0 + w) * Bc, nc = std::min(Bc, d.Tn - j0);
    for (int64_t k0 = 0; k0 < nc; k0 += 16)
      for (int64_t e0 = 0; e0 < d.D; e0 += 16) {
        const int64_t o = w * Dp * Bc + ((e0 / 16) * (Bc / 16) + k0 / 16) * 256;
        __m512i tk[16], tv[16];
        for (int i = 0; i < 16; ++i) {
          tk[i] = _mm512_load_si512(dKT + o + i * 16);
          tv[i] = _mm512_load_si512(dVT + o + i * 16);
        }
        transpose16(tk);
        transpose16(tv);
        const __mmask16 mask = head_mask(d.D - e0);
        for (int64_t i = 0; i < std::min<int64_t>(16, nc - k0); ++i) {
          const int64_t off = ((b * d.Tn + j0 + k0 + i) * d.KVH + kvh) * d.D + e0;
          _mm512_mask_storeu_ps(dk + off, mask, _mm512_mul_ps(_mm512_castsi512_ps(tk[i]), _mm512_set1_ps(d.scale)));
          _mm512_mask_storeu_ps(dv + off, mask, _mm512_castsi512_ps(tv[i]));
        }
      }
  }
}

// Writes dq of the stacked rows [r0, r0 + n) of group (b, kvh) from dQ (tiles [n/16][Dp/16]).
void store_dq(float* dq, const float* dQ, const Dims& d, int64_t b, int64_t kvh, int64_t r0, int64_t n) {
  const __m512 sc = _mm512_set1_ps(d.scale);
  for (int64_t i = 0, t = r0 / d.G, g = r0 % d.G; i < n; ++i) {
    float* dst = dq + ((b * d.Tn + t) * d.H + kvh * d.G + g) * d.D;
    if (++g == d.G) g = 0, ++t;
    const float* a = dQ + (i / 16) * (d.Dp / 16) * 256 + (i % 16) * 16;
    for (int64_t e0 = 0; e0 < d.D; e0 += 16)
      _mm512_mask_storeu_ps(dst + e0, head_mask(d.D - e0), _mm512_mul_ps(_mm512_load_ps(a + (e0 / 16) * 256), sc));
  }
}

template <bool kAmx>
void backward(float* dq, float* dk, float* dv, const float* dout, const void* q, const void* k, const void* v,
              bool qkv_bf16, const void* out, bool out_bf16, const float* lse, const Dims& d) {
  const int64_t R = d.R, Bc = d.Bc, Dp = d.Dp, Tn = d.Tn;
  const int64_t tb = tiles_bytes(d), pk_bytes = packed_group_bytes(d);
  const int64_t acc_bytes = carve_bytes({4 * kSweep * Dp * Bc, 4 * kSweep * Dp * Bc});
  const int threads = omp_get_max_threads();
  const double busy = double(d.groups) / double(ceil_div(d.groups, threads) * threads);
  if (busy >= 0.75) {
    // One pass: a task per group prepares the group (so it is hot in this core's caches), runs
    // its key tiles in order and accumulates dQ in (Rq, Dp).
#pragma omp parallel
    {
      FlushDenormals ftz;
      if (kAmx) amx_configure();
      Carve ws{static_cast<char*>(thread_workspace(tb + acc_bytes + 4 * d.Rq * Dp + pk_bytes, 1))};
      Tiles t = carve_tiles(ws, d);
      float* dKT = ws.take<float>(kSweep * Dp * Bc);
      float* dVT = ws.take<float>(kSweep * Dp * Bc);
      float* dQa = ws.take<float>(d.Rq * Dp);
      const Packed pk = packed_group(ws.take<char>(pk_bytes), d);
#pragma omp for schedule(dynamic, 1)
      for (int64_t grp = 0; grp < d.groups; ++grp) {
        const int64_t b = grp / d.KVH, kvh = grp % d.KVH;
        for (int64_t i = 0; i < d.nI; ++i) pack_query_tile(pk, q, qkv_bf16, dout, out, out_bf16, lse, d, b, kvh, i);
        for (int64_t j = 0; j < d.nJ; ++j) pack_key_tile(pk, k, v, qkv_bf16, d, b, kvh, j);
        for (int64_t jt = 0; jt < d.nJ; jt += kSweep)
          key_tiles<kAmx>(dk, dv, dQa, pk, t, dKT, dVT, d, b, kvh, jt, std::min(kSweep, d.nJ - jt));
        store_dq(dq, dQa, d, b, kvh, 0, Tn * d.G);
      }
      if (kAmx) _tile_release();
    }
    return;
  }
  // Two passes (few groups for the threads): every group prepared first (slot 2 of the calling
  // thread); dK, dV per (group, key tile), the first key tiles (most query tiles after them)
  // first; then dQ per (group, query tile) over the key tiles up to its diagonal, recomputing S,
  // dP, dS: the same tile_pair, so the same bits as one pass.
  char* packed = static_cast<char*>(thread_workspace(d.groups * pk_bytes, 2));
#pragma omp parallel
  {
    FlushDenormals ftz;
    if (kAmx) amx_configure();
    Carve ws{static_cast<char*>(thread_workspace(tb + acc_bytes + 4 * R * Dp, 1))};
    Tiles t = carve_tiles(ws, d);
    float* dKT = ws.take<float>(kSweep * Dp * Bc);
    float* dVT = ws.take<float>(kSweep * Dp * Bc);
    float* dQt = ws.take<float>(R * Dp);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < d.groups * (d.nI + d.nJ); ++task) {
      const int64_t grp = task / (d.nI + d.nJ), i = task % (d.nI + d.nJ), b = grp / d.KVH, kvh = grp % d.KVH;
      const Packed pk = packed_group(packed + grp * pk_bytes, d);
      if (i < d.nI)
        pack_query_tile(pk, q, qkv_bf16, dout, out, out_bf16, lse, d, b, kvh, i);
      else
        pack_key_tile(pk, k, v, qkv_bf16, d, b, kvh, i - d.nI);
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < d.nJ * d.groups; ++task) {
      const int64_t grp = task / d.nJ, jt = task % d.nJ;
      key_tiles<kAmx>(dk, dv, nullptr, packed_group(packed + grp * pk_bytes, d), t, dKT, dVT, d, grp / d.KVH,
                      grp % d.KVH, jt, 1);
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < d.nI * d.groups; ++task) {
      const int64_t grp = task / d.nI, it = d.nI - 1 - task % d.nI, b = grp / d.KVH, kvh = grp % d.KVH;
      const Packed pk = packed_group(packed + grp * pk_bytes, d);
      const int64_t i0 = it * d.Br, nr = std::min(d.Br, Tn - i0);
      for (int64_t jt = 0; jt <= (i0 + nr - 1) / Bc; ++jt) tile_pair<kAmx>(t, pk, d, it, jt * Bc, false, dQt);
      store_dq(dq, dQt, d, b, kvh, it * R, nr * d.G);
    }
    if (kAmx) _tile_release();
  }
}

}  // namespace

void attention_flash_forward(Unit unit, void* out, bool out_bf16, float* lse, const void* q, const void* k,
                             const void* v, bool qkv_bf16, int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D) {
  if (B <= 0 || Tn <= 0 || H <= 0 || D <= 0) return;
  const Dims d = dims(B, Tn, H, KVH, D);
  if (unit == Unit::amx)
    forward<true>(out, out_bf16, lse, q, k, v, qkv_bf16, d);
  else
    forward<false>(out, out_bf16, lse, q, k, v, qkv_bf16, d);
}

void attention_flash_backward(Unit unit, float* dq, float* dk, float* dv, const float* dout, const void* q,
                              const void* k, const void* v, bool qkv_bf16, const void* out, bool out_bf16,
                              const float* lse, int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D) {
  if (B <= 0 || Tn <= 0 || H <= 0 || D <= 0) return;
  const Dims d = dims(B, Tn, H, KVH, D);
  if (unit == Unit::amx)
    backward<true>(dq, dk, dv, dout, q, k, v, qkv_bf16, out, out_bf16, lse, d);
  else
    backward<false>(dq, dk, dv, dout, q, k, v, qkv_bf16, out, out_bf16, lse, d);
}

}  // namespace bf16
}  // namespace ls
