// The kernel table: every hot loop of litespark, as plain C++ functions on raw pointers.
//
// Each kernel source is compiled once per ISA (avx512, avx2, scalar) into namespace ls::<isa>;
// dispatch.cc picks one table by CPUID at load time. Every kernel exists for float (the
// training path) and double (the float64 reference path used by gradient checks).
//
// Shape letters, used in every kernel file:
//   B batch, T sequence length, C model width, H query heads, KVH key/value heads,
//   D head dim, F MLP width, V vocabulary, N rows (= B*T).
// Conventions (llm.c style): outputs first, gradients d-prefixed, row-major contiguous
// buffers unless a leading dimension (ld*) is given. Backward kernels ACCUMULATE (+=) into
// parameter gradients and into input gradients where the doc says so.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ls {

// A GEMM with the signature of KernelTable::gemm (fused kernels take one to run in bf16).
template <class T>
using GemmFn = void (*)(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                        int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

template <class T>
struct KernelTable {
  // C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C. Row-major; op(X) = X or X^T.
  // A is (M,K) with leading dim lda, or (K,M) when transA. B is (K,N), or (N,K) when transB.
  // beta == 0 ignores C's old contents (NaN-safe). Multi-threaded unless called from inside
  // an OpenMP parallel region (then single-threaded, thread-safe).
  void (*gemm)(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
  // gemm with bf16 operands: A and B rounded to bf16 (convert.h, ties to even) as they are
  // packed, products accumulated in T. The fp32 fallback unit of mixed precision (no AMX, no
  // AVX-512 BF16) and, in float64, the reference the bf16 units are tested against.
  void (*gemm_bf16)(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                    int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
  // y(n) = bf16 bits of x rounded to nearest even (convert.h); and back, exactly.
  void (*cast_to_bf16)(uint16_t* y, const T* x, int64_t n);
  void (*cast_from_bf16)(T* y, const uint16_t* x, int64_t n);

  // out(N,C) = table[ids[n]]; ids must be in [0, V) (checked by the binding).
  void (*embedding_forward)(T* out, const int32_t* ids, const T* table, int64_t N, int64_t C);
  // dtable[ids[n]] += dout[n]; deterministic (no atomics).
  void (*embedding_backward)(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t C,
                             int64_t V);

  // out(N,C) = x * rstd * w, rstd(N) = 1/sqrt(mean(x^2) + eps).
  void (*rmsnorm_forward)(T* out, T* rstd, const T* x, const T* w, int64_t N, int64_t C, T eps);
  // The same with out rounded to bf16 bits (nearest even): a GEMM operand of bf16 training.
  void (*rmsnorm_forward_bf16)(uint16_t* out, T* rstd, const T* x, const T* w, int64_t N, int64_t C, T eps);
  // dx(N,C) += d/dx, dw(C) += d/dw, from dout(N,C), x, w, rstd saved by forward.
  void (*rmsnorm_backward)(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd,
                           int64_t N, int64_t C);
  // The same, with the updated dx also rounded to bf16 bits into dx16 (a GEMM operand of bf16 training).
  void (*rmsnorm_backward_bf16)(T* dx, uint16_t* dx16, T* dw, const T* dout, const T* x, const T* w,
                                const T* rstd, int64_t N, int64_t C);

  // cos, sin: (T, D/2) for positions 0..T-1, inv_freq[i] = theta^(-2i/D).
  void (*rope_table)(T* cos, T* sin, int64_t Tn, int64_t D, double theta);
  // In place on x(B,T,H,D), Hugging Face "rotate_half" convention (pairs i and i + D/2).
  // inverse=true rotates by -angle: that is the backward of the forward rotation.
  void (*rope_apply)(T* x, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t H,
                     int64_t D, bool inverse);

  // Standard causal attention with materialized probabilities (what a typical framework does).
  // q, out: (B,T,H,D); k, v: (B,T,KVH,D); probs: (B,H,T,T) saved for backward; scale 1/sqrt(D).
  void (*attention_standard_forward)(T* out, T* probs, const T* q, const T* k, const T* v,
                                     int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D);
  // dq overwritten (B,T,H,D); dk, dv overwritten (B,T,KVH,D).
  void (*attention_standard_backward)(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k,
                                      const T* v, const T* probs, int64_t B, int64_t Tn, int64_t H,
                                      int64_t KVH, int64_t D);

  // ---- the fused (litespark) path ----
  // Flash attention: tiled over queries and keys with an online softmax, causal tiles skipped,
  // K/V read once per GQA group, memory linear in T. q, out: (B,T,H,D); k, v: (B,T,KVH,D);
  // lse: (B,H,T) log-sum-exp of each query row's scaled scores, the only softmax state saved.
  void (*attention_flash_forward)(T* out, T* lse, const T* q, const T* k, const T* v, int64_t B,
                                  int64_t Tn, int64_t H, int64_t KVH, int64_t D);
  // dq (B,T,H,D), dk, dv (B,T,KVH,D) overwritten; probabilities recomputed tile by tile from
  // q, k and lse; out is the forward output (for the rowwise dot(dout, out) term).
  void (*attention_flash_backward)(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k,
                                   const T* v, const T* out, const T* lse, int64_t B, int64_t Tn,
                                   int64_t H, int64_t KVH, int64_t D);
  // Output head + cross-entropy fused and chunked over rows: the (N,V) logits never exist,
  // only one chunk of rows at a time. x: (N,C), W: (V,C), lse: (N) written. Returns the summed
  // loss over targets >= 0. When dx is not null: dx (N,C) overwritten with dL/dx and dW (V,C)
  // accumulated, for L = dloss * summed loss (the backward is done in the same pass).
  // mm runs the three GEMMs (nullptr: this table's gemm; the bf16 unit in mixed precision).
  double (*linear_cross_entropy)(T* dx, T* dW, T* lse, const T* x, const T* W,
                                 const int32_t* targets, int64_t N, int64_t C, int64_t V,
                                 T dloss, GemmFn<T> mm);
  // resid(N,C) = x + y; out = rmsnorm(resid) * w with rstd(N): the residual add folded into
  // the norm's pass. resid may alias x.
  void (*add_rmsnorm_forward)(T* resid, T* out, T* rstd, const T* x, const T* y, const T* w,
                              int64_t N, int64_t C, T eps);
  void (*add_rmsnorm_forward_bf16)(T* resid, uint16_t* out, T* rstd, const T* x, const T* y, const T* w,
                                   int64_t N, int64_t C, T eps);
  // The fused QKV projection writes rows of (H + 2 KVH) * D: q heads, then k heads, then v
  // heads. rope_qkv_split applies RoPE to q and k while splitting into q (B,T,H,D),
  // k, v (B,T,KVH,D); rope_qkv_merge is its backward: dqkv rows from dq, dk (inverse RoPE)
  // and dv.
  void (*rope_qkv_split)(T* q, T* k, T* v, const T* qkv, const T* cos, const T* sin, int64_t B,
                         int64_t Tn, int64_t H, int64_t KVH, int64_t D);
  // q, k, v rounded to bf16 bits (flash attention's operands in bf16 training).
  void (*rope_qkv_split_bf16)(uint16_t* q, uint16_t* k, uint16_t* v, const T* qkv, const T* cos, const T* sin,
                              int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D);
  void (*rope_qkv_merge)(T* dqkv, const T* dq, const T* dk, const T* dv, const T* cos,
                         const T* sin, int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D);
  void (*rope_qkv_merge_bf16)(uint16_t* dqkv, const T* dq, const T* dk, const T* dv, const T* cos,
                              const T* sin, int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D);
  // The same two products with their passes in the GEMM's epilogue (kernels/epilogue.h): the
  // gate/up GEMM writing act (N,F) = silu(x Wg^T) * (x Wu^T) and/or gu (N,2F) = [gate | up] from
  // x (N,C) and Wgu (2F,C) (either may be null: forward keeps gu for backward only without
  // recomputation, and backward's recomputation needs gu only), and the QKV GEMM writing q, k
  // (rotated) and v from x (B*T,C) and Wqkv ((H + 2 KVH) D, C), so qkv is never stored. bf16:
  // operands rounded to bf16 as gemm_bf16 (the fp32 unit of mixed precision).
  void (*gemm_swiglu)(T* act, T* gu, const T* x, const T* Wgu, int64_t N, int64_t C, int64_t F, bool bf16);
  void (*gemm_qkv_rope)(T* q, T* k, T* v, const T* x, const T* Wqkv, const T* cos, const T* sin, int64_t B,
                        int64_t Tn, int64_t C, int64_t H, int64_t KVH, int64_t D, bool bf16);
  // SwiGLU over the output of the concatenated gate/up projection: gu (N, 2F) holds the gate
  // in columns [0,F) and up in [F,2F) of each row. out (N,F) = silu(gate) * up.
  void (*swiglu_packed_forward)(T* out, const T* gu, int64_t N, int64_t F);
  // dgu (N,2F) overwritten (may alias gu) from dout (N,F) and gu; with act (may be null) also
  // act (N,F) = silu(gate) * up, the same bits as swiglu_packed_forward and gemm_swiglu's act.
  void (*swiglu_packed_backward)(T* dgu, T* act, const T* dout, const T* gu, int64_t N, int64_t F);

  // out(n) = silu(gate) * up.
  void (*swiglu_forward)(T* out, const T* gate, const T* up, int64_t n);
  // dgate, dup overwritten.
  void (*swiglu_backward)(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n);

  // lse(N) = logsumexp(logits[n]); returns sum over rows with target >= 0 of
  // (lse - logits[n, target]). Rows with target < 0 are ignored (lse still written).
  double (*cross_entropy_forward)(T* lse, const T* logits, const int32_t* targets, int64_t N,
                                  int64_t V);
  // dlogits(N,V) = (softmax(logits) - onehot(target)) * dloss; zero rows where target < 0.
  // dlogits may alias logits (in-place).
  void (*cross_entropy_backward)(T* dlogits, const T* logits, const T* lse,
                                 const int32_t* targets, int64_t N, int64_t V, T dloss);

  // PyTorch AdamW semantics: p *= 1 - lr*wd; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
  // p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps), where g' = g * gscale. pb (nullable):
  // the updated p also rounded to bf16 bits there, in the same pass (bf16 training's working copy).
  void (*adamw)(T* p, const T* g, T* m, T* v, uint16_t* pb, int64_t n, double lr, double beta1, double beta2,
                double eps, double wd, int64_t step, double gscale);

  // Deterministic for any thread count (fixed-size chunks summed in order).
  double (*sum_squares)(const T* x, int64_t n);
  void (*add_inplace)(T* y, const T* x, int64_t n);   // y += x
  void (*scale_inplace)(T* y, T s, int64_t n);        // y *= s
  void (*fill)(T* y, T value, int64_t n);
  // y = mean + std * N(0,1), counter-based (element i depends only on seed and i).
  void (*randn)(T* y, int64_t n, uint64_t seed, T mean, T std);

  // ---- decoding with a KV cache (decode.cc) ----
  // y(N) = W(N,K) x(K) + beta * y: a projection at one position, W read once in place.
  // beta == 0 never reads y. Each y[n] is summed by one thread: independent of the thread count.
  void (*gemv)(T* y, const T* W, const T* x, int64_t N, int64_t K, T beta);
  // One position's packed q/k/v row ((H + 2 KVH) D) -> q (H,D) rotated at position pos; k
  // rotated and v copied into row pos of kcache, vcache (Tmax, KVH, D). rope_qkv_split's rotation.
  void (*rope_qkv_decode)(T* q, T* kcache, T* vcache, const T* qkv, const T* cos, const T* sin,
                          int64_t pos, int64_t H, int64_t KVH, int64_t D);
  // out (H,D) = softmax(q k^T / sqrt(D)) v of one query position over the Tk >= 1 cached rows
  // of kcache, vcache (>= Tk, KVH, D); the G = H/KVH heads of a group share each K/V row read.
  void (*attention_decode)(T* out, const T* q, const T* kcache, const T* vcache, int64_t Tk,
                           int64_t H, int64_t KVH, int64_t D);
};

struct IsaInfo {
  const char* name;
  const KernelTable<float>* f32;
  const KernelTable<double>* f64;
  // Tight FMA loop at this ISA's widest vector: GFLOP/s with `threads` threads.
  double (*peak_fma_gflops)(int threads, double seconds);
};

#define LS_DECLARE_ISA(ns) \
  namespace ns {           \
  const IsaInfo* isa_info(); \
  }
LS_DECLARE_ISA(avx512)
LS_DECLARE_ISA(avx2)
LS_DECLARE_ISA(scalar)
#undef LS_DECLARE_ISA

}  // namespace ls
