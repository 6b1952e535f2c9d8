// The standard GEMM: C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C, row-major.
//
// GotoBLAS/BLIS structure, written with GCC vector extensions so one source serves every ISA:
//
//   for jc over N by NC:
//     for pc over K by KC:
//       pack B block (KC, NC) -> NR-wide panels   shared by the team (one barrier per block),
//                                                  sized to stay in L2
//       for ic over this thread's rows by MC:
//         pack A block (MC, KC) -> MR-high panels  per thread
//         for ir over MR panels:                   A micro-panel (KC, MR) stays in L1
//           for jr over this thread's NR panels:   B micro-panels (KC, NR) stream from L2
//             micro_kernel                         MR x NR accumulators stay in registers
//
// Packing handles the four transA/transB cases (and zero-pads partial panels), so there is one
// micro-kernel. Edge tiles are computed into a small local buffer and merged. alpha and beta
// are applied when a tile is stored: the first K block uses beta (beta == 0 never reads C, so
// NaN in the old C is harmless), later K blocks accumulate.
//
// fp32 on AVX-512 (the training path) has its own code, in intrinsics: a 12x32 micro-kernel
// (24 zmm accumulators, vbroadcastss of A, 2 aligned zmm loads of B per k, the C tile prefetched
// during the last k steps) that stores edge tiles with masked loads/stores instead of the local
// buffer, and packs the transposing cases (A not transposed, B transposed: x W^T) with 4x8
// in-register transposes. Measured against the vector-extension kernel in one process,
// interleaved, AVX-512 Xeon, 1 thread: +3..6% on the S-config shapes, +10..60% on small and
// skinny ones (64x512x512: 1.2-1.6x), where edges and packing weigh more. The
// micro-kernel alone (A panel in L1, B panels in L2) runs at ~86% of the measured FMA peak;
// 8x48, 6x64 and 14x32 tiles measured the same within noise.
//
// Threads: one parallel region per call. The team is a tm x tn grid over (rows of C, NR panels
// of the current B block), chosen per call to minimize per-thread work (see choose_grid), so
// tall (M large), skinny (M small) and wide shapes all keep every thread busy. Inside an
// OpenMP parallel region (attention calls gemm per head) it runs on the calling thread alone.
//
// Scratch: workspace slot 0 of each thread (memory.h), grown only when a larger block is
// needed. A caller must not hold slot 0 across a gemm call (attention uses slot 1).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "bf16/convert.h"
#include "kernels/common.h"
#include "kernels/ops.h"
#include "kernels/simd.h"
#include "memory.h"

// Register tile per ISA: NR = 2 vectors (contiguous in C), MR rows, MR*2 accumulators.
#if defined(__AVX512F__)
#define LS_GEMM_VB 64  // 32 zmm: 24 accumulators + 2 B vectors + A broadcasts
#define LS_GEMM_MR 12
#elif defined(__AVX2__)
#define LS_GEMM_VB 32  // 16 ymm: 12 accumulators + 2 B vectors + 1 broadcast
#define LS_GEMM_MR 6
#else
#define LS_GEMM_VB 16  // 16 xmm (SSE2, no FMA): 12 accumulators + 2 B + 1 broadcast
#define LS_GEMM_MR 6
#endif

namespace ls {
namespace LS_ISA {
namespace {


template <class T>
struct Blocking {
  static constexpr int W = LS_GEMM_VB / sizeof(T);  // lanes per vector
  static constexpr int NV = 2;                      // vectors per tile row
  static constexpr int NR = NV * W;
  static constexpr int MR = LS_GEMM_MR;
  // KC=384, NC=1024 (a 1.5 MiB B block), MC=480 for fp32: best of a sweep KC 256..512,
  // NC 512..3072, MC 240..1920 (and of the loop orders jr-outer/ir-outer) on the AVX-512 Xeon
  // (48 KiB L1d, 2 MiB L2 per core), 1 thread, S-config shapes halved: 160-180 GFLOP/s vs
  // 125-170 for the first guess (KC=256, NC=3072, MC=240, jr outer). fp64 keeps the B block's
  // bytes (NC=512). Not tuned for the avx2 and scalar paths. Re-swept with the intrinsics
  // kernel (KC 256/384/512 x MC 240/480/960 x B block 0.75/1.5/2 MiB, 1 thread, all S shapes,
  // interleaved with the old kernel): every point within +-2% of this one, so it stays; nor
  // did letting NC grow when K blocks are short (K=512: 2 x 256, NC 1536, A packed once for
  // N=1536): -1..-4% on up fwd / down dX.
  static constexpr int64_t KC = 384;
  static constexpr int64_t MC = (480 / MR) * MR;
  static constexpr int64_t NC = ((1536 * 1024 / (KC * sizeof(T))) / NR) * NR;
};

template <class T>
using V = Simd<T, LS_GEMM_VB>;

template <class T>
inline V<T> loadu(const T* p) {
  V<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <class T>
inline void storeu(T* p, V<T> v) {
  std::memcpy(p, &v, sizeof(v));
}

// c(MR, NR) (leading dim ldc) = alpha * a_panel * b_panel + beta * c. a: (KC, MR) packed,
// b: (KC, NR) packed (64-byte aligned). beta == 0 never reads c.
template <class T>
__attribute__((always_inline)) inline void micro_kernel(int64_t kc, const T* __restrict a,
                                                        const T* __restrict b, T* c, int64_t ldc,
                                                        T alpha, T beta) {
  constexpr int MR = Blocking<T>::MR, NV = Blocking<T>::NV, W = Blocking<T>::W, NR = Blocking<T>::NR;
  V<T> acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = V<T>{};
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    V<T> bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = *reinterpret_cast<const V<T>*>(b + j * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V<T> ai = a[i] - V<T>{};  // broadcast (x - 0 == x exactly)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] += ai * bv[j];
    }
    a += MR;
    b += NR;
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      T* p = c + i * ldc + j * W;
      const V<T> r = alpha * acc[i][j];
      if (beta == T(0))
        storeu(p, r);
      else if (beta == T(1))
        storeu(p, loadu(p) + r);
      else
        storeu(p, beta * loadu(p) + r);
    }
}

#if defined(__AVX512F__)
// ---- AVX-512 fp32 path: explicit intrinsics (the vector-extension code above serves double
// and the other ISAs). Register tile 12 x 32: 24 zmm accumulators, 2 zmm of B per k, A
// elements broadcast from memory (vbroadcastss), 6 zmm left for the compiler.

// Prefetch: only the C tile, into L1 during the last kCTail k steps (one line per step), so
// that its load (beta != 0, and every K block after the first) or its read-for-ownership does
// not stall the stores, and the B stream has no time to evict it again. Software prefetch of
// the A and B panels (64..2048 bytes ahead) measured no gain on the AVX-512 Xeon, 1 thread,
// S shapes (within +-2% noise): the hardware prefetchers follow both streams; nor did
// prefetching the source rows in the packing routines.
constexpr int64_t kCTail = 24;

// c(mr, nr) = alpha * a_panel(kc, 12) * b_panel(kc, 32) + beta * c; rows >= mr and columns >=
// nr are neither read nor written (masked); beta == 0 never reads c.
template <bool kFull>
__attribute__((always_inline)) inline void micro_kernel_f32(int64_t kc, const float* __restrict a,
                                                            const float* __restrict b, float* c,
                                                            int64_t ldc, float alpha, float beta,
                                                            int mr, int nr) {
  constexpr int MR = 12, NR = 32;
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();

  auto step = [&](const float* ak, const float* bk) __attribute__((always_inline)) {
    const __m512 b0 = _mm512_load_ps(bk), b1 = _mm512_load_ps(bk + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(ak[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  };
  const int64_t kmain = kc > kCTail ? kc - kCTail : 0;
  int64_t k = 0;
#pragma GCC unroll 4
  for (; k < kmain; ++k) {
    step(a, b);
    a += MR;
    b += NR;
  }
  // Tail: one C line prefetched per k step, the first and the last line of each row (a row is
  // 128 bytes: two lines when aligned, else a third one in between that is left to the stores).
  for (int64_t t = 0; k < kc; ++k, ++t) {
    const int row = static_cast<int>(t >> 1);
    if (t < 2 * MR && (kFull || row < mr)) {
      _mm_prefetch(reinterpret_cast<const char*>(c + row * ldc + (t & 1) * (NR - 1)),
                   _MM_HINT_T0);
    }
    step(a, b);
    a += MR;
    b += NR;
  }

  const __mmask16 m0 = kFull || nr >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nr) - 1);
  const __mmask16 m1 = kFull || nr >= 32 ? 0xFFFF
                       : nr > 16          ? static_cast<__mmask16>((1u << (nr - 16)) - 1)
                                          : 0;
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (!kFull && i >= mr) break;
    float* p = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, acc[i][0]), r1 = _mm512_mul_ps(va, acc[i][1]);
    if (kFull) {
      if (beta == 1.0f) {
        r0 = _mm512_add_ps(r0, _mm512_loadu_ps(p));
        r1 = _mm512_add_ps(r1, _mm512_loadu_ps(p + 16));
      } else if (beta != 0.0f) {
        r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(p), r0);
        r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(p + 16), r1);
      }
      _mm512_storeu_ps(p, r0);
      _mm512_storeu_ps(p + 16, r1);
    } else {
      if (beta == 1.0f) {
        r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, p));
        r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, p + 16));
      } else if (beta != 0.0f) {
        r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, p), r0);
        r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, p + 16), r1);
      }
      _mm512_mask_storeu_ps(p, m0, r0);
      _mm512_mask_storeu_ps(p + 16, m1, r1);
    }
  }
}

// Reads 4 rows (stride ld) of 8 floats at s and writes them transposed: 8 rows of 4 floats at
// d, d + ldd, ... (d[k*ldd + r] = s[r*ld + k]). 8 in-lane shuffles and 8 16-byte stores for 32
// floats: the building block of both transposing packs.
__attribute__((always_inline)) inline void transpose_4x8(const float* s, int64_t ld, float* d,
                                                         int64_t ldd) {
  const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld);
  const __m256 r2 = _mm256_loadu_ps(s + 2 * ld), r3 = _mm256_loadu_ps(s + 3 * ld);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  _mm_storeu_ps(d, _mm256_castps256_ps128(u0));
  _mm_storeu_ps(d + ldd, _mm256_castps256_ps128(u1));
  _mm_storeu_ps(d + 2 * ldd, _mm256_castps256_ps128(u2));
  _mm_storeu_ps(d + 3 * ldd, _mm256_castps256_ps128(u3));
  _mm_storeu_ps(d + 4 * ldd, _mm256_extractf128_ps(u0, 1));
  _mm_storeu_ps(d + 5 * ldd, _mm256_extractf128_ps(u1, 1));
  _mm_storeu_ps(d + 6 * ldd, _mm256_extractf128_ps(u2, 1));
  _mm_storeu_ps(d + 7 * ldd, _mm256_extractf128_ps(u3, 1));
}

// rows x kc (stride ld) -> kc x rows panel with row length ldd, rows a multiple of 4:
// d[k*ldd + r] = s[r*ld + k]. The x W^T pack of B and the (non-transposed) pack of A.
inline void pack_transpose_f32(float* d, int64_t ldd, const float* s, int64_t ld, int rows,
                               int64_t kc) {
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8)
    for (int r = 0; r < rows; r += 4) transpose_4x8(s + r * ld + k, ld, d + k * ldd + r, ldd);
  for (; k < kc; ++k)
    for (int r = 0; r < rows; ++r) d[k * ldd + r] = s[r * ld + k];
}
#endif  // __AVX512F__

// Packs op(B)(pc:pc+kc, j0:j0+nc) panels [q0, q1) into dst: panel q is (kc, NR), row-major,
// columns past nc zero-filled. op(B)(k, j) = transB ? B[j*ldb + k] : B[k*ldb + j].
template <class T>
void pack_b(T* dst, const T* B, int64_t ldb, bool transB, int64_t pc, int64_t kc, int64_t j0,
            int64_t nc, int64_t q0, int64_t q1) {
  constexpr int NR = Blocking<T>::NR;
  for (int64_t q = q0; q < q1; ++q) {
    T* d = dst + q * kc * NR;
    const int64_t jq = j0 + q * NR, nr = std::min<int64_t>(NR, nc - q * NR);
    if (!transB) {
      const T* s = B + pc * ldb + jq;
      for (int64_t k = 0; k < kc; ++k, s += ldb, d += NR) {
        if (nr == NR) {
          std::memcpy(d, s, sizeof(T) * NR);
        } else {
          for (int64_t j = 0; j < nr; ++j) d[j] = s[j];
          for (int64_t j = nr; j < NR; ++j) d[j] = T(0);
        }
      }
    } else {
      const T* s = B + jq * ldb + pc;
#if defined(__AVX512F__)
      if constexpr (std::is_same<T, float>::value) {
        if (nr == NR) {
          pack_transpose_f32(d, NR, s, ldb, NR, kc);
          continue;
        }
      }
#endif
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t j = 0; j < nr; ++j) d[k * NR + j] = s[j * ldb + k];
        for (int64_t j = nr; j < NR; ++j) d[k * NR + j] = T(0);
      }
    }
  }
}

// Packs op(A)(i0:i0+mc, pc:pc+kc) into dst as MR x KC panels: panel p holds (kc, MR), rows
// past mc zero-filled. op(A)(i, k) = transA ? A[k*lda + i] : A[i*lda + k].
template <class T>
void pack_a(T* dst, const T* A, int64_t lda, bool transA, int64_t i0, int64_t mc, int64_t pc,
            int64_t kc) {
  constexpr int MR = Blocking<T>::MR;
  if (transA) {
    // Row k of op(A)^T is contiguous: read it once, scatter MR-wide pieces to the panels.
    const int64_t full = mc / MR, mr = mc - full * MR;
    for (int64_t k = 0; k < kc; ++k) {
      const T* s = A + (pc + k) * lda + i0;
      T* d = dst + k * MR;
      for (int64_t p = 0; p < full; ++p, s += MR, d += kc * MR) std::memcpy(d, s, sizeof(T) * MR);
      if (mr) {
        for (int64_t i = 0; i < mr; ++i) d[i] = s[i];
        for (int64_t i = mr; i < MR; ++i) d[i] = T(0);
      }
    }
    return;
  }
  for (int64_t p = 0; p * MR < mc; ++p) {
    T* d = dst + p * kc * MR;
    const int64_t ip = i0 + p * MR, mr = std::min<int64_t>(MR, mc - p * MR);
    const T* s = A + ip * lda + pc;
    if (mr == MR) {
#if defined(__AVX512F__)
      if constexpr (std::is_same<T, float>::value) {
        pack_transpose_f32(d, MR, s, lda, MR, kc);
        continue;
      }
#endif
      for (int64_t k = 0; k < kc; ++k)
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) d[k * MR + i] = s[i * lda + k];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t i = 0; i < mr; ++i) d[k * MR + i] = s[i * lda + k];
        for (int64_t i = mr; i < MR; ++i) d[k * MR + i] = T(0);
      }
    }
  }
}

// C(ic:ic+mc, panels [q0, q1) of the block at column jc) from packed A and B blocks.
template <class T>
void macro_kernel(int64_t mc, int64_t nc, int64_t kc, int64_t q0, int64_t q1, const T* Ap,
                  const T* Bp, T* C, int64_t ldc, T alpha, T beta) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
#if defined(__AVX512F__)
  if constexpr (std::is_same<T, float>::value) {
    for (int64_t i = 0; i < mc; i += MR) {
      const int mr = static_cast<int>(std::min<int64_t>(MR, mc - i));
      const T* a = Ap + i * kc;
      for (int64_t q = q0; q < q1; ++q) {
        const int nr = static_cast<int>(std::min<int64_t>(NR, nc - q * NR));
        const T* b = Bp + q * kc * NR;
        T* c = C + i * ldc + q * NR;
        if (mr == MR && nr == NR)
          micro_kernel_f32<true>(kc, a, b, c, ldc, alpha, beta, MR, NR);
        else
          micro_kernel_f32<false>(kc, a, b, c, ldc, alpha, beta, mr, nr);
      }
    }
    return;
  }
#endif
  alignas(64) T edge[MR * NR];
  for (int64_t i = 0; i < mc; i += MR) {  // A micro-panel (KC, MR) stays in L1
    const int64_t mr = std::min<int64_t>(MR, mc - i);
    const T* a = Ap + i * kc;
    for (int64_t q = q0; q < q1; ++q) {  // B micro-panels (KC, NR) stream from L2
      const int64_t nr = std::min<int64_t>(NR, nc - q * NR);
      const T* b = Bp + q * kc * NR;
      T* c = C + i * ldc + q * NR;
      if (mr == MR && nr == NR) {
        micro_kernel<T>(kc, a, b, c, ldc, alpha, beta);
      } else {
        micro_kernel<T>(kc, a, b, edge, NR, T(1), T(0));
        for (int64_t ii = 0; ii < mr; ++ii)
          for (int64_t jj = 0; jj < nr; ++jj) {
            T& o = c[ii * ldc + jj];
            const T r = alpha * edge[ii * NR + jj];
            o = beta == T(0) ? r : beta == T(1) ? o + r : beta * o + r;
          }
      }
    }
  }
}

// ---- epilogue GEMMs (epilogue.h): x (M, K) . W^T with W's rows permuted into the B panels ----

// Panels [q0, q1) of the block whose first panel is global panel p0: B(k, j) = W[src_row(j), pc + k].
// A half panel of consecutive rows packs with the transposing copy, anything else row by row.
template <class T>
void pack_b_epi(T* dst, const Epilogue<T>& e, const T* W, int64_t ldw, int64_t pc, int64_t kc, int64_t p0,
                int64_t q0, int64_t q1) {
  constexpr int NR = Blocking<T>::NR, HALF = NR / 2;
  for (int64_t q = q0; q < q1; ++q) {
    T* d = dst + q * kc * NR;
    for (int h = 0; h < 2; ++h) {
      int64_t rows[HALF];
      bool run = true;
      for (int j = 0; j < HALF; ++j) {
        rows[j] = e.src_row(p0 + q, h * HALF + j);
        run = run && rows[j] >= 0 && rows[j] == rows[0] + j;
      }
#if defined(__AVX512F__)
      if constexpr (std::is_same<T, float>::value && HALF % 4 == 0) {
        if (run) {
          pack_transpose_f32(d + h * HALF, NR, W + rows[0] * ldw + pc, ldw, HALF, kc);
          continue;
        }
      }
#endif
      for (int j = 0; j < HALF; ++j) {
        T* dj = d + h * HALF + j;
        if (rows[j] < 0) {
          for (int64_t k = 0; k < kc; ++k) dj[k * NR] = T(0);
        } else {
          const T* s = W + rows[j] * ldw + pc;
          for (int64_t k = 0; k < kc; ++k) dj[k * NR] = s[k];
        }
      }
    }
  }
}

// The tiles of rows [row0, row0 + mc) x panels [q0, q1) (global panel p0 + q), handed to the
// epilogue when whole. partial == nullptr: K is one block, each tile is computed into a local
// buffer. Otherwise this is the last K block: each tile is added to the earlier blocks' sums in
// partial (its row 0 is row0, its column 0 the column block's first panel, leading dimension
// ldp) and the epilogue reads it there.
template <class T>
void macro_kernel_epi(int64_t mc, int64_t kc, int64_t q0, int64_t q1, const T* Ap, const T* Bp,
                      const Epilogue<T>& e, int64_t row0, int64_t p0, T* partial, int64_t ldp) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  alignas(64) T local[MR * NR];
  for (int64_t i = 0; i < mc; i += MR) {
    const int mr = static_cast<int>(std::min<int64_t>(MR, mc - i));
    const T* a = Ap + i * kc;
    for (int64_t q = q0; q < q1; ++q) {
      const T* b = Bp + q * kc * NR;
      T* tile = local;
      int64_t ldt = NR;
      if (partial) {
        tile = partial + i * ldp + q * NR;
        ldt = ldp;
      }
#if defined(__AVX512F__)
      if constexpr (std::is_same<T, float>::value) {
        if (!partial)
          micro_kernel_f32<true>(kc, a, b, tile, NR, 1.0f, 0.0f, MR, NR);
        else if (mr == MR)
          micro_kernel_f32<true>(kc, a, b, tile, ldt, 1.0f, 1.0f, MR, NR);
        else
          micro_kernel_f32<false>(kc, a, b, tile, ldt, 1.0f, 1.0f, mr, NR);
      } else
#endif
      {
        if (!partial || mr == MR) {
          micro_kernel<T>(kc, a, b, tile, ldt, T(1), partial ? T(1) : T(0));
        } else {  // a partial row tile: the rows past the matrix do not exist in partial
          micro_kernel<T>(kc, a, b, local, NR, T(1), T(0));
          for (int r = 0; r < mr; ++r)
            for (int j = 0; j < NR; ++j) tile[r * ldt + j] += local[r * NR + j];
        }
      }
      switch (e.kind) {
        case Epilogue<T>::Kind::swiglu: swiglu_tile(e, tile, ldt, row0 + i, mr, p0 + q); break;
        case Epilogue<T>::Kind::rope_qkv: rope_qkv_tile(e, tile, ldt, row0 + i, mr, p0 + q); break;
      }
    }
  }
}

constexpr int64_t kEpiOneBlockK = 1024;  // see gemm_impl

struct Grid {
  int tm, tn;  // threads over rows of C x threads over NR panels
};

// Per-thread cost of a tm x tn grid ~ rows * (cols + kPackCost): the micro-kernel work on its
// tile plus packing its rows of A (each of the tn threads sharing a row range packs it).
Grid choose_grid(int nthreads, int64_t M, int64_t N, int MR, int NR) {
  constexpr int64_t kPackCost = 16;  // packing one A element ~ 16 FMAs of micro-kernel time
  Grid best{nthreads, 1};
  int64_t best_cost = -1;
  for (int tm = nthreads; tm >= 1; --tm) {
    if (nthreads % tm) continue;
    const int tn = nthreads / tm;
    const int64_t rows = ceil_div(ceil_div(M, MR), tm) * MR;
    const int64_t cols = ceil_div(ceil_div(N, NR), tn) * NR;
    const int64_t cost = rows * (cols + kPackCost);
    if (best_cost < 0 || cost < best_cost) best = {tm, tn}, best_cost = cost;
  }
  return best;
}

// Splits [0, n) into `parts` near-equal ranges; returns range `i` as [lo, hi).
inline void split(int64_t n, int parts, int i, int64_t& lo, int64_t& hi) {
  lo = n * i / parts;
  hi = n * (i + 1) / parts;
}

template <class T>
struct Problem {
  bool transA, transB;
  int64_t M, N, K;
  T alpha;
  const T* A;  // (M, K), or (K, M) when transA
  int64_t lda;
  const T* B;  // (K, N), or (N, K) when transB
  int64_t ldb;
  T beta;
  T* C;  // (M, N)
  int64_t ldc;
  int64_t kc_max, mc_max, nc_max;  // balanced block sizes for this call
  T* Bbuf[2];                      // shared packed-B blocks (KC, NC), double-buffered
  T* Abuf_master;                  // the calling thread's packed-A block (MC, KC)
  bool round_bf16;                 // gemm_bf16: round every packed operand to bf16
  const Epilogue<T>* epi;          // gemm_swiglu / gemm_qkv_rope: B = the weights, permuted
                                   // while packed, tiles to the epilogue (C unused)
  T* partial;                      // epi with K in several blocks: the sums of the earlier K
  int64_t ldp;                     // blocks, (M, nc_max) for the current column block
};

// The packed panels hold op(A) and op(B) exactly as the micro-kernel reads them, so rounding
// them in place (while they are still in cache) makes the product one of bf16 operands.
template <class T>
void round_packed(T* p, int64_t n) {
  if constexpr (std::is_same<T, float>::value) {
    // convert.h's recipe, branch-free on the bits so the loop vectorizes (a select for NaN).
    uint32_t* u = reinterpret_cast<uint32_t*>(p);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t x = u[i];
      const uint32_t rne = (x + 0x7FFFu + ((x >> 16) & 1u)) & 0xFFFF0000u;
      const uint32_t nan = (x | 0x00400000u) & 0xFFFF0000u;
      u[i] = (x & 0x7FFFFFFFu) > 0x7F800000u ? nan : rne;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = round_bf16(p[i]);
  }
}

// The work of thread `tid` of `nthreads` (every thread runs the same block loops).
template <class T>
void run_thread(const Problem<T>& p, int tid, int nthreads) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  const Grid g = choose_grid(nthreads, p.M, std::min(p.N, p.nc_max), MR, NR);
  const int ti = tid / g.tn, tj = tid % g.tn;
  int64_t r0, r1;  // this thread's rows of C, in MR units, then in rows
  split(ceil_div(p.M, MR), g.tm, ti, r0, r1);
  r0 *= MR;
  r1 = std::min(p.M, r1 * MR);
  T* Ap = tid == 0 ? p.Abuf_master
                   : static_cast<T*>(thread_workspace(sizeof(T) * p.mc_max * p.kc_max, 0));
  int iter = 0;
  for (int64_t jc = 0; jc < p.N; jc += p.nc_max) {
    const int64_t nc = std::min(p.nc_max, p.N - jc), npanels = ceil_div(nc, NR);
    for (int64_t pc = 0; pc < p.K; pc += p.kc_max, ++iter) {
      const int64_t kc = std::min(p.kc_max, p.K - pc);
      T* Bp = p.Bbuf[iter & 1];
      int64_t q0, q1;
      split(npanels, nthreads, tid, q0, q1);
      if (p.epi)
        pack_b_epi(Bp, *p.epi, p.B, p.ldb, pc, kc, jc / NR, q0, q1);
      else
        pack_b(Bp, p.B, p.ldb, p.transB, pc, kc, jc, nc, q0, q1);
      if (p.round_bf16) round_packed(Bp + q0 * kc * NR, (q1 - q0) * kc * NR);
      // One barrier per block: with two B buffers, a thread packing block i+1 knows every
      // thread has finished computing block i-1 (it passed barrier i).
      if (nthreads > 1) {
#pragma omp barrier
      }
      split(npanels, g.tn, tj, q0, q1);
      if (q0 == q1) continue;
      const T beta = pc == 0 ? p.beta : T(1);
      const int64_t rows = r1 - r0, nblocks = ceil_div(rows, p.mc_max);
      const int64_t mc_even = ceil_div(ceil_div(rows, nblocks > 0 ? nblocks : 1), MR) * MR;
      for (int64_t ic = r0; ic < r1; ic += mc_even) {
        const int64_t mc = std::min(mc_even, r1 - ic);
        pack_a(Ap, p.A, p.lda, p.transA, ic, mc, pc, kc);
        if (p.round_bf16) round_packed(Ap, ceil_div(mc, MR) * MR * kc);
        if (p.epi && (!p.partial || pc + kc >= p.K))  // K in one block, or its last block
          macro_kernel_epi(mc, kc, q0, q1, Ap, Bp, *p.epi, ic, jc / NR, p.partial ? p.partial + ic * p.ldp : nullptr,
                           p.ldp);
        else if (p.epi)  // an earlier K block: its sums into partial
          macro_kernel(mc, nc, kc, q0, q1, Ap, Bp, p.partial + ic * p.ldp, p.ldp, T(1), beta);
        else
          macro_kernel(mc, nc, kc, q0, q1, Ap, Bp, p.C + ic * p.ldc + jc, p.ldc, p.alpha, beta);
      }
    }
  }
}

// C = beta * C (beta == 0 writes zeros without reading C).
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      std::fill(c, c + N, T(0));
    else if (beta != T(1))
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// epi: an epilogue GEMM (A = x, B = the weights (N rows of K), transB; C unused). Up to
// kEpiOneBlockK its K runs in one block (the A and B blocks keep the plain GEMM's element budgets,
// MC x KC and KC x NC) and the tiles go from registers to the epilogue; past it, K runs in the
// plain GEMM's blocks, the earlier blocks' sums kept in an (M, NC) buffer that the last block adds
// to. Measured (gemmSwiglu vs GEMM + pass, Zen 4, 2 threads, one block throughout): K = 512, 1024
// 1.04x / 1.02x; 2048 0.99x; 4096 0.95x; 8192 0.80x (the blocks shrink to a few rows and panels).
template <class T>
void gemm_impl(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, bool round,
               const Epilogue<T>* epi = nullptr) {
  using Bl = Blocking<T>;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) return scale_c(M, N, beta, C, ldc);  // BLAS: A, B not read

  Problem<T> p{transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, 0, 0, {}, nullptr, round, epi,
               nullptr, 0};
  if (epi && K <= kEpiOneBlockK) {
    p.kc_max = K;
    const int64_t nc_cap = std::max<int64_t>(1, Bl::KC * Bl::NC / K / Bl::NR) * Bl::NR;
    p.nc_max = ceil_div(ceil_div(N, ceil_div(N, nc_cap)), Bl::NR) * Bl::NR;
    p.mc_max = std::max<int64_t>(1, Bl::KC * Bl::MC / K / Bl::MR) * Bl::MR;
  } else {
    // Balanced blocks: K = 800 runs as 3 x 267, not 384 + 384 + 32.
    p.kc_max = ceil_div(K, ceil_div(K, Bl::KC));
    p.nc_max = ceil_div(ceil_div(N, ceil_div(N, Bl::NC)), Bl::NR) * Bl::NR;
    p.mc_max = Bl::MC;
    if (epi) {  // slot 3 of the calling thread (slot 0 holds the blocks)
      p.ldp = p.nc_max;
      p.partial = static_cast<T*>(thread_workspace(sizeof(T) * M * p.ldp, 3));
    }
  }

  // Below ~1M multiply-adds per thread, forking costs more than it saves.
  int nthreads = omp_in_parallel() ? 1 : omp_get_max_threads();
  nthreads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nthreads, M * N * K >> 20)));

  // The calling thread's slot 0: [B block, second B block if threaded, its A block].
  const int64_t bblock = p.kc_max * p.nc_max, ablock = p.mc_max * p.kc_max;
  const int nbuf = nthreads > 1 ? 2 : 1;
  T* ws = static_cast<T*>(thread_workspace(sizeof(T) * (nbuf * bblock + ablock), 0));
  p.Bbuf[0] = ws;
  p.Bbuf[1] = ws + (nbuf - 1) * bblock;
  p.Abuf_master = ws + nbuf * bblock;

  if (nthreads == 1) return run_thread(p, 0, 1);
#pragma omp parallel num_threads(nthreads)
  run_thread(p, omp_get_thread_num(), omp_get_num_threads());
}

}  // namespace

template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_impl(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, false);
}

template <class T>
void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  gemm_impl(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, true);
}

// act (N, F) = silu(x Wg^T) * (x Wu^T) and/or gu (N, 2F) = [x Wg^T | x Wu^T], Wgu (2F, C) =
// [gate_proj; up_proj]: SwiGLU in the epilogue. bf16: operands rounded as gemm_bf16's.
template <class T>
void gemm_swiglu(T* act, T* gu, const T* x, const T* Wgu, int64_t N, int64_t C, int64_t F, bool bf16) {
  if (N <= 0 || F <= 0 || (!act && !gu)) return;
  Epilogue<T> e{Epilogue<T>::Kind::swiglu, Blocking<T>::NR / 2};
  e.act = act;
  e.gu = gu;
  e.F = F;
  if (C <= 0) {  // x Wg^T = 0: silu(0) * 0
    if (act) fill(act, T(0), N * F);
    if (gu) fill(gu, T(0), N * 2 * F);
    return;
  }
  gemm_impl(false, true, N, e.panels() * Blocking<T>::NR, C, T(1), x, C, Wgu, C, T(0), static_cast<T*>(nullptr), 0,
            bf16, &e);
}

// x (B*T, C) . Wqkv^T, Wqkv ((H + 2 KVH) D, C) = [q_proj; k_proj; v_proj] -> q (B,T,H,D) and k
// (B,T,KVH,D) with RoPE (rope_qkv_split's rotation), v (B,T,KVH,D): the split and the rotation in
// the epilogue, the packed q/k/v rows never stored.
template <class T>
void gemm_qkv_rope(T* q, T* k, T* v, const T* x, const T* Wqkv, const T* cos, const T* sin, int64_t B, int64_t Tn,
                   int64_t C, int64_t H, int64_t KVH, int64_t D, bool bf16) {
  const int64_t N = B * Tn;
  if (N <= 0) return;
  if (C <= 0) {
    fill(q, T(0), N * H * D);
    fill(k, T(0), N * KVH * D);
    fill(v, T(0), N * KVH * D);
    return;
  }
  Epilogue<T> e{Epilogue<T>::Kind::rope_qkv, Blocking<T>::NR / 2};
  e.q = q;
  e.k = k;
  e.v = v;
  e.cos = cos;
  e.sin = sin;
  e.Tn = Tn;
  e.H = H;
  e.KVH = KVH;
  e.D = D;
  gemm_impl(false, true, N, e.panels() * Blocking<T>::NR, C, T(1), x, C, Wqkv, C, T(0), static_cast<T*>(nullptr), 0,
            bf16, &e);
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(gemm)
LS_INSTANTIATE(gemm_swiglu)
LS_INSTANTIATE(gemm_qkv_rope)
LS_INSTANTIATE(gemm_bf16)
