// Flash attention (the fused path): causal, GQA, tiled over queries and keys with an online
// softmax. Nothing of size T x T exists; the only softmax state kept for backward is the
// per-row log-sum-exp. Shapes: q, out, dq, dout: (B, T, H, D); k, v, dk, dv: (B, T, KVH, D);
// lse, Di: (B, H, T). scale = 1/sqrt(D); the G = H/KVH query heads of a group share one K/V head.
//
// A task owns one group (b, kvh) and one tile. The G query heads of the group are stacked as the
// rows of one block (row r = i * G + g for query position i0 + i), so each K/V tile serves all
// G heads while it is in cache and K/V are never replicated.
//
//   forward    task (group, query tile), key tiles 0..diagonal in order:
//                S^T = K Q^T                   (Bc, rows)  queries are columns: max and sum
//                m, l, alpha = online softmax               of the online softmax are plain
//                O^T = O^T diag(alpha) + V^T P  (D, rows)   vector ops down the columns
//              out = O / l, lse = m + log l
//   backward   Di = rowdot(dout, out) first; then per (group, key tile), query tiles from the
//              diagonal on:  S = Q K^T, dP = dO V^T (rows, Bc); P = exp(scale S - lse);
//                dS = P (dP - Di); dV^T += dO^T P; dK^T += Q^T dS   (D, Bc)
//              and dQ += dS K, in one of two schedules (see attention_flash_backward).
//
// Every output element is written by exactly one task that sums its terms in a fixed order:
// results do not depend on the thread count, and no atomics are needed.
// Key tiles past the diagonal are skipped; diagonal tiles are masked elementwise.
//
// The tile products run on one register-blocked micro-kernel (GCC vector extensions, one
// source per ISA, as in gemm.cc): C(MR rows, NV vectors) (+)= op(A) B, A read by broadcast
// through row pointers (so rows of q, k, v, dout are read where they lie), B a packed tile
// whose width is a multiple of the vector width (zero-padded). float uses a vectorized exp
// (Cephes polynomial, ~1 ulp); double, the reference path, uses std::exp.
//
// Scratch: workspace slot 1 of each thread, and slot 2 of the calling thread for Di (memory.h);
// both grow once. gemm's slot 0 is not used.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "kernels/common.h"
#include "kernels/ops.h"
#include "kernels/simd.h"
#include "kernels/vexp.h"
#include "memory.h"

// Register tile per ISA: MR rows x up to NV vectors of accumulators.
#if defined(__AVX512F__)
#define LS_FA_VB 64  // 32 zmm: 6 x 4 = 24 accumulators + 4 B vectors + broadcasts
#define LS_FA_MR 6
#define LS_FA_NV 4
#elif defined(__AVX2__)
#define LS_FA_VB 32  // 16 ymm: 3 x 4 = 12 accumulators + 4 B vectors
#define LS_FA_MR 3
#define LS_FA_NV 4
#else
#define LS_FA_VB 16  // 16 xmm (SSE2): 3 x 4 = 12 accumulators + 4 B vectors
#define LS_FA_MR 3
#define LS_FA_NV 4
#endif

namespace ls {
namespace LS_ISA {
namespace {

template <class T>
using Vt = Simd<T, LS_FA_VB>;
typedef int32_t VInt __attribute__((vector_size(LS_FA_VB)));

template <class T>
constexpr int lanes() {
  return LS_FA_VB / sizeof(T);
}

// Tile sizes: Bc keys per tile (a multiple of the vector width of both dtypes) by Br query
// positions, so a task holds G*Br rows (the G heads of a group). Measured (fp32, AVX-512 Xeon,
// 1 thread, CPU ms fwd/bwd; shape B,T,H,KVH,D):
//   Br x Bc     S 4,512,8,4,64   L 1,2048,8,4,64   2,512,8,2,128
//   32 x  32    10.7 / 28.2      37.4 / 99.5       11.1 / 25.7
//   32 x  64    11.2 / 25.8      37.5 / 83.3       11.2 / 22.6
//   32 x 128    11.3 / 26.2      36.9 / 80.2       11.8 / 23.7
//   64 x  32    10.4 / 26.8      35.4 / 93.5       12.2 / 24.7
//   64 x  64    10.5 / 23.4      35.1 / 78.9       12.4 / 21.3   <- chosen
//   64 x 128    11.4 / 27.3      35.8 / 76.3       12.7 / 22.8
//  128 x  64    13.5 / 25.4      37.6 / 80.8       13.2 / 23.4
//  128 x 128    13.3 / 25.8      37.0 / 80.1       13.4 / 24.4
// and G*Br near 128 rows is what matters across GQA ratios (fwd/bwd at Br 16 / 32 / 64):
//   G=1 4,512,8,8,64: 16.9/29.8  13.5/30.3  11.5/29.3;   G=4 4,512,8,2,64: 10.2/22.5  10.3/24.3  13.0/23.5
//   G=8 4,512,16,2,64: 20.7/46.1  26.0/47.9  28.2/49.9
// hence Br = clamp(128 / G, 16, 64). Not tuned for the avx2 and scalar paths.
constexpr int64_t kBc = 64;
inline int64_t tile_br(int64_t G) { return std::clamp<int64_t>(128 / G, 16, 64); }

inline int64_t round_up(int64_t x, int64_t m) { return ceil_div(x, m) * m; }

template <class T>
inline Vt<T> load(const T* p) {
  return simd_load<Vt<T>>(p);
}
template <class T>
inline void store(T* p, Vt<T> v) {
  simd_store(p, v);
}

// ---- the tile product -------------------------------------------------------------------
//
// A is given by row pointers, so rows of q, k, v, dout are read where they lie (no copies):
//   normal:     op(A)(i, k) = arow[i][k]   (M pointers)
//   transposed: op(A)(i, k) = arow[k][i]   (K pointers)
// B (K, N) is a packed row-major tile with N a multiple of the vector width.

// c(MR, NV*W) (= or +=) op(A)(MR, K) * b(K, NV*W); col0 offsets the transposed A's columns.
// With ACC and cs, c's columns are first scaled by cs (the online softmax's rescale, for free).
template <class T, int MR, int NV, bool TA, bool ACC>
__attribute__((always_inline)) inline void micro(int64_t K, const T* const* arow, int64_t col0,
                                                 const T* __restrict b, int64_t ldb,
                                                 T* __restrict c, int64_t ldc, const T* cs) {
  constexpr int W = lanes<T>();
  Vt<T> acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = ACC ? load(c + i * ldc + j * W) : Vt<T>{};
  if (ACC && cs)
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] *= load(cs + j * W);
  const T* ap[TA ? 1 : MR];
  if constexpr (!TA)
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) ap[i] = arow[i];
#pragma GCC unroll 2
  for (int64_t k = 0; k < K; ++k) {
    Vt<T> bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = load(b + k * ldb + j * W);
    const T* ak = TA ? arow[k] + col0 : nullptr;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const Vt<T> ai = (TA ? ak[i] : ap[i][k]) - Vt<T>{};  // broadcast
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) store(c + i * ldc + j * W, acc[i][j]);
}

template <class T, int MR, bool TA, bool ACC>
inline void micro_nv(int nv, int64_t K, const T* const* arow, int64_t col0, const T* b,
                     int64_t ldb, T* c, int64_t ldc, const T* cs) {
  static_assert(LS_FA_NV == 4, "micro_nv dispatches 1..4 vectors");
  switch (nv) {
    case 4: return micro<T, MR, 4, TA, ACC>(K, arow, col0, b, ldb, c, ldc, cs);
    case 3: return micro<T, MR, 3, TA, ACC>(K, arow, col0, b, ldb, c, ldc, cs);
    case 2: return micro<T, MR, 2, TA, ACC>(K, arow, col0, b, ldb, c, ldc, cs);
    default: return micro<T, MR, 1, TA, ACC>(K, arow, col0, b, ldb, c, ldc, cs);
  }
}

// The last rows of a tile (fewer than MR): the kernel with exactly `rows` rows.
template <class T, int R, bool TA, bool ACC>
inline void micro_rows(int rows, int nv, int64_t K, const T* const* arow, int64_t col0,
                       const T* b, int64_t ldb, T* c, int64_t ldc, const T* cs) {
  if constexpr (R >= 1) {
    if (rows == R) return micro_nv<T, R, TA, ACC>(nv, K, arow, col0, b, ldb, c, ldc, cs);
    micro_rows<T, R - 1, TA, ACC>(rows, nv, K, arow, col0, b, ldb, c, ldc, cs);
  }
}

// C(M, N) (= or +=) op(A)(M, K) * B(K, N); with cs (N): C = C diag(cs) + op(A) B. Column
// blocks outer: a (K, NV*W) panel of B stays in L1 while all rows pass.
template <class T, bool TA, bool ACC>
void tile_mm(int64_t M, int64_t N, int64_t K, const T* const* arow, const T* b, int64_t ldb,
             T* c, int64_t ldc, const T* cs = nullptr) {
  constexpr int W = lanes<T>(), MR = LS_FA_MR;
  const int64_t nvt = N / W;
  for (int64_t jv = 0; jv < nvt; jv += LS_FA_NV) {
    const int nv = static_cast<int>(std::min<int64_t>(LS_FA_NV, nvt - jv));
    const T* bj = b + jv * W;
    T* cj = c + jv * W;
    const T* csj = cs ? cs + jv * W : nullptr;
    int64_t i = 0;
    for (; i + MR <= M; i += MR)
      micro_nv<T, MR, TA, ACC>(nv, K, TA ? arow : arow + i, TA ? i : 0, bj, ldb, cj + i * ldc, ldc, csj);
    if (i < M)
      micro_rows<T, MR - 1, TA, ACC>(static_cast<int>(M - i), nv, K, TA ? arow : arow + i,
                                     TA ? i : 0, bj, ldb, cj + i * ldc, ldc, csj);
  }
}

// ---- exp --------------------------------------------------------------------------------

// float: the shared vectorized exp (kernels/vexp.h: Cephes, ~1 ulp, -inf and below -87.3 give 0).
using ls::LS_ISA::vexp;  // Vt<float> is the same vector type as vfloat

// double is the float64 reference path (gradient checks): std::exp per lane.
inline Vt<double> vexp(Vt<double> x) {
  for (int l = 0; l < lanes<double>(); ++l) x[l] = std::exp(x[l]);
  return x;
}

// ---- tiles ------------------------------------------------------------------------------

// The query side of a task: the G heads of kv head `kvh` at positions i0..i0+nr-1, stacked as
// rows r = i * G + g (the G heads of one position are adjacent in q, dout and out).
struct QueryTile {
  int64_t b, kvh, i0, nr, rows;
  int64_t G, Tn, H, D;
  int64_t off(int64_t r) const { return ((b * Tn + i0 + r / G) * H + kvh * G + r % G) * D; }
  int64_t pos(int64_t r) const { return i0 + r / G; }
  int64_t bht(int64_t r) const { return (b * H + kvh * G + r % G) * Tn + i0 + r / G; }  // in (B,H,T)
};

inline QueryTile query_tile(int64_t b, int64_t kvh, int64_t i0, int64_t Br, int64_t G, int64_t Tn,
                            int64_t H, int64_t D) {
  const int64_t nr = std::min(Br, Tn - i0);
  return QueryTile{b, kvh, i0, nr, G * nr, G, Tn, H, D};
}

// dst (D, Rp) = the tile's rows of src, transposed; columns rows..Rp zero.
template <class T>
void pack_transposed(T* dst, const T* src, const QueryTile& t, int64_t Rp) {
  constexpr int64_t ahead = 8;  // rows prefetched ahead: src rows are often not in cache yet
  for (int64_t r = 0; r < t.rows; ++r) {
    if (r + ahead < t.rows)
      for (int64_t e = 0; e < t.D; e += 64 / sizeof(T)) __builtin_prefetch(src + t.off(r + ahead) + e);
    const T* s = src + t.off(r);
    for (int64_t e = 0; e < t.D; ++e) dst[e * Rp + r] = s[e];
  }
  for (int64_t e = 0; e < t.D; ++e) std::fill(dst + e * Rp + t.rows, dst + (e + 1) * Rp, T(0));
}

// Key rows j0..j0+nc-1 of kv head kvh: row pointers (read in place), and optionally the tile
// packed as KT (D, Bc) transposed and/or Kp (Bc, Dp) row-major, zero-padded. (Dense copies of
// the rows, against L1 set conflicts of the 1 KiB row stride, measured no faster.)
template <class T>
void key_tile(const T** rows, T* KT, T* Kp, const T* src, int64_t b, int64_t j0, int64_t nc,
              int64_t kvh, int64_t Tn, int64_t KVH, int64_t D, int64_t Bc, int64_t Dp) {
  for (int64_t j = 0; j < nc; ++j) rows[j] = src + ((b * Tn + j0 + j) * KVH + kvh) * D;
  if (KT) {
    for (int64_t e = 0; e < D; ++e) std::fill(KT + e * Bc + nc, KT + (e + 1) * Bc, T(0));
    for (int64_t j = 0; j < nc; ++j)
      for (int64_t e = 0; e < D; ++e) KT[e * Bc + j] = rows[j][e];
  }
  if (Kp) {
    std::fill(Kp, Kp + Bc * Dp, T(0));
    for (int64_t j = 0; j < nc; ++j) std::copy(rows[j], rows[j] + D, Kp + j * Dp);
  }
}

}  // namespace

// out: (B, T, H, D), lse: (B, H, T), q: (B, T, H, D), k, v: (B, T, KVH, D)
// Q^T is packed once per task; K and V rows are read in place.
template <class T>
void attention_flash_forward(T* out, T* lse, const T* q, const T* k, const T* v, int64_t B, int64_t Tn,
                             int64_t H, int64_t KVH, int64_t D) {
  if (B <= 0 || Tn <= 0) return;
  constexpr int W = lanes<T>();
  const int64_t G = H / KVH, Br = tile_br(G), Bc = kBc, Rmax = round_up(G * Br, W);
  const T scale = T(1) / std::sqrt(T(D));
  const int64_t nI = ceil_div(Tn, Br), groups = B * KVH;
  const int64_t ws_bytes = carve_bytes({int64_t(sizeof(T)) * (2 * D * Rmax + Bc * Rmax + 4 * Rmax),
                                        int64_t(sizeof(T*)) * 2 * Bc});
  const Vt<T> ninf = Vt<T>{} - std::numeric_limits<T>::infinity();
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < nI * groups; ++task) {
    // group by group (its K, V stay in cache), the longest (last) query tiles first
    const int64_t grp = task / nI, it = nI - 1 - task % nI, b = grp / KVH, kvh = grp % KVH;
    const QueryTile qt = query_tile(b, kvh, it * Br, Br, G, Tn, H, D);
    const int64_t Rp = round_up(qt.rows, W);
    Carve ws{static_cast<char*>(thread_workspace(ws_bytes, 1))};
    T* QT = ws.take<T>(D * Rp);   // (D, Rp) Q^T of the G heads
    T* OT = ws.take<T>(D * Rp);   // (D, Rp) unnormalized O^T
    T* ST = ws.take<T>(Bc * Rp);  // (Bc, Rp) scaled scores, then probabilities
    T* m = ws.take<T>(Rp);        // (Rp) running max of the scaled scores
    T* l = ws.take<T>(Rp);        // (Rp) running sum of exp(score - m)
    T* qpos = ws.take<T>(Rp);     // (Rp) query position of each column
    T* alpha = ws.take<T>(Rp);    // (Rp) exp(m_old - m_new): rescale of O^T's columns
    const T** krow = ws.take<const T*>(Bc);
    const T** vrow = ws.take<const T*>(Bc);
    pack_transposed(QT, q, qt, Rp);
    std::fill(OT, OT + D * Rp, T(0));
    std::fill(m, m + Rp, -std::numeric_limits<T>::infinity());
    std::fill(l, l + Rp, T(0));
    for (int64_t r = 0; r < Rp; ++r) qpos[r] = r < qt.rows ? T(qt.pos(r)) : T(Tn);  // padding sees all
    const int64_t nJ = (qt.i0 + qt.nr - 1) / Bc + 1;  // key tiles up to the diagonal
    for (int64_t jt = 0; jt < nJ; ++jt) {
      const int64_t j0 = jt * Bc, nc = std::min(Bc, Tn - j0);
      key_tile<T>(krow, nullptr, nullptr, k, b, j0, nc, kvh, Tn, KVH, D, Bc, 0);
      key_tile<T>(vrow, nullptr, nullptr, v, b, j0, nc, kvh, Tn, KVH, D, Bc, 0);
      tile_mm<T, false, false>(nc, Rp, D, krow, QT, Rp, ST, Rp);  // S^T = K Q^T
      const bool diagonal = j0 + nc - 1 > qt.i0;  // some key after some query: mask
      for (int64_t r = 0; r < Rp; r += W) {
        const Vt<T> qp = load(qpos + r), m0 = load(m + r);
        Vt<T> mx = m0;
        for (int64_t j = 0; j < nc; ++j) {
          Vt<T> s = load(ST + j * Rp + r) * scale;
          if (diagonal) s = qp < T(j0 + j) ? ninf : s;
          store(ST + j * Rp + r, s);
          mx = s > mx ? s : mx;
        }
        const Vt<T> a = vexp(m0 - mx);  // 0 on the first tile (m = -inf)
        Vt<T> sum = Vt<T>{};
        for (int64_t j = 0; j < nc; ++j) {
          const Vt<T> p = vexp(load(ST + j * Rp + r) - mx);
          store(ST + j * Rp + r, p);
          sum += p;
        }
        store(l + r, load(l + r) * a + sum);
        store(m + r, mx);
        store(alpha + r, a);
      }
      tile_mm<T, true, true>(D, Rp, nc, vrow, ST, Rp, OT, Rp, alpha);  // O^T = O^T diag(alpha) + V^T P
    }
    for (int64_t r = 0; r < qt.rows; ++r) {
      const T inv = T(1) / l[r];
      T* dst = out + qt.off(r);
      for (int64_t e = 0; e < D; ++e) dst[e] = OT[e * Rp + r] * inv;
      lse[qt.bht(r)] = m[r] + std::log(l[r]);
    }
  }
}

namespace {

// Backward of one key tile (j0, nc) against query tiles it0..nI-1 of one (b, kvh): keys are
// columns. S (rows, Bc) = Q K^T and dP = dO V^T with Q, dO rows read in place, K^T and V^T
// packed once; P = exp(scale S - lse), dS = P (dP - Di); dV^T += dO^T P, dK^T += Q^T dS (D, Bc).
// With dQa (T*G, Dp; row t*G + g) it also adds dS K to dQ/scale: the one-pass backward.
template <class T>
void backward_key_tile(T* dk, T* dv, T* dQa, const T* q, const T* k, const T* v, const T* dout,
                       const T* lse, const T* Di, int64_t b, int64_t kvh, int64_t j0, int64_t nc,
                       int64_t Br, int64_t Bc, int64_t Tn, int64_t H, int64_t KVH, int64_t D,
                       char* scratch) {
  constexpr int W = lanes<T>();
  const int64_t G = H / KVH, Dp = round_up(D, W), Rmax = G * Br, nI = ceil_div(Tn, Br);
  const T scale = T(1) / std::sqrt(T(D));
  const Vt<T> ninf = Vt<T>{} - std::numeric_limits<T>::infinity();
  Carve ws{scratch};
  T* S = ws.take<T>(Rmax * Bc);   // (rows, Bc) S, then P
  T* dP = ws.take<T>(Rmax * Bc);  // (rows, Bc) dP, then dS
  T* KT = ws.take<T>(D * Bc);     // (D, Bc) K^T
  T* VT = ws.take<T>(D * Bc);     // (D, Bc) V^T
  T* Kp = ws.take<T>(Bc * Dp);    // (Bc, Dp) K, for dQ
  T* dKT = ws.take<T>(D * Bc);    // (D, Bc) dK^T / scale
  T* dVT = ws.take<T>(D * Bc);    // (D, Bc) dV^T
  T* kpos = ws.take<T>(Bc);       // (Bc) key positions
  const T** krow = ws.take<const T*>(Bc);
  const T** qrow = ws.take<const T*>(Rmax);
  const T** grow = ws.take<const T*>(Rmax);
  const T** srow = ws.take<const T*>(Rmax);
  key_tile(krow, KT, dQa ? Kp : nullptr, k, b, j0, nc, kvh, Tn, KVH, D, Bc, Dp);
  key_tile(krow, VT, static_cast<T*>(nullptr), v, b, j0, nc, kvh, Tn, KVH, D, Bc, Dp);
  for (int64_t j = 0; j < Bc; ++j) kpos[j] = T(j0 + j);
  std::fill(dKT, dKT + D * Bc, T(0));
  std::fill(dVT, dVT + D * Bc, T(0));
  for (int64_t it = j0 / Br; it < nI; ++it) {
    const QueryTile qt = query_tile(b, kvh, it * Br, Br, G, Tn, H, D);
    for (int64_t r = 0; r < qt.rows; ++r) {
      qrow[r] = q + qt.off(r);
      grow[r] = dout + qt.off(r);
      srow[r] = dP + r * Bc;
    }
    tile_mm<T, false, false>(qt.rows, Bc, D, qrow, KT, Bc, S, Bc);   // S = Q K^T
    tile_mm<T, false, false>(qt.rows, Bc, D, grow, VT, Bc, dP, Bc);  // dP = dO V^T
    const bool diagonal = j0 + Bc - 1 > qt.i0;  // (also masks the zero columns past T)
    for (int64_t r = 0; r < qt.rows; ++r) {
      T* s = S + r * Bc;
      T* dp = dP + r * Bc;
      const T qi = T(qt.pos(r)), l0 = lse[qt.bht(r)], d0 = Di[qt.bht(r)];
      for (int64_t j = 0; j < Bc; j += W) {
        Vt<T> x = load(s + j) * scale - l0;
        if (diagonal) x = load(kpos + j) > qi ? ninf : x;
        const Vt<T> p = vexp(x);
        store(s + j, p);
        store(dp + j, p * (load(dp + j) - d0));
      }
    }
    tile_mm<T, true, true>(D, Bc, qt.rows, grow, S, Bc, dVT, Bc);   // dV^T += dO^T P
    tile_mm<T, true, true>(D, Bc, qt.rows, qrow, dP, Bc, dKT, Bc);  // dK^T += Q^T dS
    if (dQa)  // dQ += dS K (rows of the tile are rows i0*G.. of dQa)
      tile_mm<T, false, true>(qt.rows, Dp, nc, srow, Kp, Dp, dQa + qt.i0 * G * Dp, Dp);
  }
  for (int64_t j = 0; j < nc; ++j) {
    const int64_t off = ((b * Tn + j0 + j) * KVH + kvh) * D;
    for (int64_t e = 0; e < D; ++e) {
      dk[off + e] = scale * dKT[e * Bc + j];
      dv[off + e] = dVT[e * Bc + j];
    }
  }
}

template <class T>
int64_t backward_key_tile_bytes(int64_t G, int64_t Br, int64_t Bc, int64_t D) {
  const int64_t Dp = round_up(D, lanes<T>()), Rmax = G * Br, t = sizeof(T), pt = sizeof(T*);
  return carve_bytes({t * Rmax * Bc, t * Rmax * Bc, t * D * Bc, t * D * Bc, t * Bc * Dp, t * D * Bc,
                      t * D * Bc, t * Bc, pt * Bc, pt * Rmax, pt * Rmax, pt * Rmax});
}

}  // namespace

// dq: (B, T, H, D); dk, dv: (B, T, KVH, D), all overwritten. dout, out: (B, T, H, D); lse: (B, H, T)
//
// Two schedules, the same arithmetic in the same order (so the same bits):
//   one pass  when the B*KVH groups keep the threads busy: a task per group runs its key tiles
//             in order, adding dS K into the group's dQ (5 tile products per tile pair; dQ
//             accumulates in a (T*G, D) per-thread buffer);
//   two pass  otherwise: pass 1 per (group, key tile) for dK, dV; pass 2 per (group, query
//             tile) recomputes S, P, dP, dS for dQ (7 tile products, but B*KVH*T/64 tasks).
// One pass measured 1.35-1.40x faster (1 thread, CPU ms: S 27.7 vs 37.4, L 88.8 vs 124,
// B4 T512 H8 KVH8 D64 33.6 vs 45.7), so it is used while at least 3/4 of the threads have a
// group in every round (busy >= 0.75, about the break-even 5/7).
template <class T>
void attention_flash_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                              const T* out, const T* lse, int64_t B, int64_t Tn, int64_t H, int64_t KVH,
                              int64_t D) {
  if (B <= 0 || Tn <= 0) return;
  constexpr int W = lanes<T>();
  const int64_t G = H / KVH, Br = tile_br(G), Bc = kBc, Dp = round_up(D, W), Rmax = round_up(G * Br, W);
  const T scale = T(1) / std::sqrt(T(D));
  const int64_t nI = ceil_div(Tn, Br), nJ = ceil_div(Tn, Bc), groups = B * KVH;
  const Vt<T> ninf = Vt<T>{} - std::numeric_limits<T>::infinity();

  // Di: (B, H, T) = rowdot(dout, out), computed once into the calling thread's slot 2 (the
  // other threads only read it).
  T* Di = static_cast<T*>(thread_workspace(sizeof(T) * B * H * Tn, 2));
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * Tn; ++bt)
    for (int64_t h = 0; h < H; ++h) {
      const T* o = out + (bt * H + h) * D;
      const T* go = dout + (bt * H + h) * D;
      T d = 0;
#pragma omp simd reduction(+ : d)
      for (int64_t e = 0; e < D; ++e) d += go[e] * o[e];
      Di[((bt / Tn) * H + h) * Tn + bt % Tn] = d;
    }

  const int64_t key_bytes = backward_key_tile_bytes<T>(G, Br, Bc, D);
  const int threads = omp_get_max_threads();
  const double busy = double(groups) / double(ceil_div(groups, threads) * threads);
  if (busy >= 0.75) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t grp = 0; grp < groups; ++grp) {
      const int64_t b = grp / KVH, kvh = grp % KVH;
      char* scratch = static_cast<char*>(thread_workspace(key_bytes + sizeof(T) * Tn * G * Dp, 1));
      T* dQa = reinterpret_cast<T*>(scratch + key_bytes);  // (T*G, Dp) dQ / scale, row t*G + g
      std::fill(dQa, dQa + Tn * G * Dp, T(0));
      for (int64_t jt = 0; jt < nJ; ++jt)
        backward_key_tile(dk, dv, dQa, q, k, v, dout, lse, Di, b, kvh, jt * Bc, std::min(Bc, Tn - jt * Bc),
                          Br, Bc, Tn, H, KVH, D, scratch);
      for (int64_t t = 0; t < Tn; ++t)
        for (int64_t g = 0; g < G; ++g) {
          const T* a = dQa + (t * G + g) * Dp;
          T* dst = dq + ((b * Tn + t) * H + kvh * G + g) * D;
          for (int64_t e = 0; e < D; ++e) dst[e] = scale * a[e];
        }
    }
    return;
  }

  // Pass 1: dK, dV per (group, key tile); the first key tiles (most query tiles after them) first.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < nJ * groups; ++task) {
    const int64_t grp = task / nJ, jt = task % nJ;
    backward_key_tile(dk, dv, static_cast<T*>(nullptr), q, k, v, dout, lse, Di, grp / KVH, grp % KVH,
                      jt * Bc, std::min(Bc, Tn - jt * Bc), Br, Bc, Tn, H, KVH, D,
                      static_cast<char*>(thread_workspace(key_bytes, 1)));
  }

  // Pass 2: dQ of one query tile (G heads), over the key tiles up to the diagonal. Queries are
  // columns as in forward: S^T, dP^T (keys, rows) = K Q^T, V dO^T; dQ^T (D, rows) += K^T dS^T.
  const int64_t ws2 = carve_bytes({int64_t(sizeof(T)) * (3 * D * Rmax + 2 * Bc * Rmax + 3 * Rmax),
                                   int64_t(sizeof(T*)) * 2 * Bc});
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < nI * groups; ++task) {
    const int64_t grp = task / nI, it = nI - 1 - task % nI, b = grp / KVH, kvh = grp % KVH;
    const QueryTile qt = query_tile(b, kvh, it * Br, Br, G, Tn, H, D);
    const int64_t Rp = round_up(qt.rows, W);
    Carve ws{static_cast<char*>(thread_workspace(ws2, 1))};
    T* QT = ws.take<T>(D * Rp);    // (D, Rp) Q^T
    T* GT = ws.take<T>(D * Rp);    // (D, Rp) dO^T
    T* dQT = ws.take<T>(D * Rp);   // (D, Rp) dQ^T / scale
    T* ST = ws.take<T>(Bc * Rp);   // (Bc, Rp) S^T, then P^T
    T* dPT = ws.take<T>(Bc * Rp);  // (Bc, Rp) dP^T, then dS^T
    T* lr = ws.take<T>(Rp);
    T* di = ws.take<T>(Rp);
    T* qpos = ws.take<T>(Rp);
    const T** krow = ws.take<const T*>(Bc);
    const T** vrow = ws.take<const T*>(Bc);
    pack_transposed(QT, q, qt, Rp);
    pack_transposed(GT, dout, qt, Rp);
    for (int64_t r = 0; r < Rp; ++r) {  // padding columns: lse = Di = 0 keeps them finite
      lr[r] = r < qt.rows ? lse[qt.bht(r)] : T(0);
      di[r] = r < qt.rows ? Di[qt.bht(r)] : T(0);
      qpos[r] = r < qt.rows ? T(qt.pos(r)) : T(Tn);
    }
    std::fill(dQT, dQT + D * Rp, T(0));
    const int64_t nJi = (qt.i0 + qt.nr - 1) / Bc + 1;
    for (int64_t jt = 0; jt < nJi; ++jt) {
      const int64_t j0 = jt * Bc, nc = std::min(Bc, Tn - j0);
      key_tile<T>(krow, nullptr, nullptr, k, b, j0, nc, kvh, Tn, KVH, D, Bc, 0);
      key_tile<T>(vrow, nullptr, nullptr, v, b, j0, nc, kvh, Tn, KVH, D, Bc, 0);
      tile_mm<T, false, false>(nc, Rp, D, krow, QT, Rp, ST, Rp);   // S^T = K Q^T
      tile_mm<T, false, false>(nc, Rp, D, vrow, GT, Rp, dPT, Rp);  // dP^T = V dO^T
      const bool diagonal = j0 + nc - 1 > qt.i0;
      for (int64_t j = 0; j < nc; ++j)
        for (int64_t r = 0; r < Rp; r += W) {
          Vt<T> x = load(ST + j * Rp + r) * scale - load(lr + r);
          if (diagonal) x = load(qpos + r) < T(j0 + j) ? ninf : x;
          const Vt<T> p = vexp(x);
          store(dPT + j * Rp + r, p * (load(dPT + j * Rp + r) - load(di + r)));
        }
      tile_mm<T, true, true>(D, Rp, nc, krow, dPT, Rp, dQT, Rp);  // dQ^T += K^T dS^T
    }
    for (int64_t r = 0; r < qt.rows; ++r) {
      T* dst = dq + qt.off(r);
      for (int64_t e = 0; e < D; ++e) dst[e] = scale * dQT[e * Rp + r];
    }
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(attention_flash_forward)
LS_INSTANTIATE(attention_flash_backward)
