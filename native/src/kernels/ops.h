// Declarations of the kernel templates inside the ISA namespace this file is compiled for.
// Included only by kernel sources (compiled once per ISA with -DLS_ISA=<name>).
#pragma once
#include "kernels/epilogue.h"
#include "kernels/kernels.h"

#ifndef LS_ISA
#error "LS_ISA must name the instruction set this file is compiled for"
#endif

namespace ls {
namespace LS_ISA {

template <class T>
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
template <class T>
void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
template <class T>
void gemm_swiglu(T* act, T* gu, const T* x, const T* Wgu, int64_t N, int64_t C, int64_t F, bool bf16);
template <class T>
void gemm_qkv_rope(T* q, T* k, T* v, const T* x, const T* Wqkv, const T* cos, const T* sin, int64_t B, int64_t Tn,
                   int64_t C, int64_t H, int64_t KVH, int64_t D, bool bf16);
// The epilogues of gemm_swiglu / gemm_qkv_rope on one finished tile (ldt: its row stride) of
// rows row0 .. row0 + mr - 1 and panel p (epilogue.h).
template <class T>
void swiglu_tile(const Epilogue<T>& e, const T* tile, int64_t ldt, int64_t row0, int mr, int64_t p);
template <class T>
void rope_qkv_tile(const Epilogue<T>& e, const T* tile, int64_t ldt, int64_t row0, int mr, int64_t p);
template <class T>
void cast_to_bf16(uint16_t* y, const T* x, int64_t n);
template <class T>
void cast_from_bf16(T* y, const uint16_t* x, int64_t n);
template <class T>
void embedding_forward(T* out, const int32_t* ids, const T* table, int64_t N, int64_t C);
template <class T>
void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t C,
                        int64_t V);
template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, int64_t N, int64_t C, T eps);
template <class T>
void rmsnorm_forward_bf16(uint16_t* out, T* rstd, const T* x, const T* w, int64_t N, int64_t C, T eps);
template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd,
                      int64_t N, int64_t C);
template <class T>
void rmsnorm_backward_bf16(T* dx, uint16_t* dx16, T* dw, const T* dout, const T* x, const T* w, const T* rstd,
                           int64_t N, int64_t C);
template <class T>
void rope_table(T* cos, T* sin, int64_t Tn, int64_t D, double theta);
template <class T>
void rope_apply(T* x, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t H, int64_t D,
                bool inverse);
template <class T>
void attention_standard_forward(T* out, T* probs, const T* q, const T* k, const T* v, int64_t B,
                                int64_t Tn, int64_t H, int64_t KVH, int64_t D);
template <class T>
void attention_standard_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k,
                                 const T* v, const T* probs, int64_t B, int64_t Tn, int64_t H,
                                 int64_t KVH, int64_t D);
template <class T>
void attention_flash_forward(T* out, T* lse, const T* q, const T* k, const T* v, int64_t B, int64_t Tn,
                             int64_t H, int64_t KVH, int64_t D);
template <class T>
void attention_flash_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                              const T* out, const T* lse, int64_t B, int64_t Tn, int64_t H, int64_t KVH,
                              int64_t D);
template <class T>
double linear_cross_entropy(T* dx, T* dW, T* lse, const T* x, const T* W, const int32_t* targets, int64_t N,
                            int64_t C, int64_t V, T dloss, GemmFn<T> mm);
template <class T>
void add_rmsnorm_forward(T* resid, T* out, T* rstd, const T* x, const T* y, const T* w, int64_t N, int64_t C,
                         T eps);
template <class T>
void add_rmsnorm_forward_bf16(T* resid, uint16_t* out, T* rstd, const T* x, const T* y, const T* w, int64_t N,
                              int64_t C, T eps);
template <class T>
void rope_qkv_split(T* q, T* k, T* v, const T* qkv, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t H,
                    int64_t KVH, int64_t D);
template <class T>
void rope_qkv_split_bf16(uint16_t* q, uint16_t* k, uint16_t* v, const T* qkv, const T* cos, const T* sin, int64_t B,
                         int64_t Tn, int64_t H, int64_t KVH, int64_t D);
template <class T>
void rope_qkv_merge(T* dqkv, const T* dq, const T* dk, const T* dv, const T* cos, const T* sin, int64_t B,
                    int64_t Tn, int64_t H, int64_t KVH, int64_t D);
template <class T>
void rope_qkv_merge_bf16(uint16_t* dqkv, const T* dq, const T* dk, const T* dv, const T* cos, const T* sin,
                         int64_t B, int64_t Tn, int64_t H, int64_t KVH, int64_t D);
template <class T>
void swiglu_packed_forward(T* out, const T* gu, int64_t N, int64_t F);
template <class T>
void swiglu_packed_backward(T* dgu, T* act, const T* dout, const T* gu, int64_t N, int64_t F);
template <class T>
void swiglu_forward(T* out, const T* gate, const T* up, int64_t n);
template <class T>
void swiglu_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n);
template <class T>
double cross_entropy_forward(T* lse, const T* logits, const int32_t* targets, int64_t N,
                             int64_t V);
template <class T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int32_t* targets,
                            int64_t N, int64_t V, T dloss);
template <class T>
void adamw(T* p, const T* g, T* m, T* v, uint16_t* pb, int64_t n, double lr, double beta1, double beta2,
           double eps, double wd, int64_t step, double gscale);
template <class T>
double sum_squares(const T* x, int64_t n);
template <class T>
void add_inplace(T* y, const T* x, int64_t n);
template <class T>
void scale_inplace(T* y, T s, int64_t n);
template <class T>
void fill(T* y, T value, int64_t n);
template <class T>
void randn(T* y, int64_t n, uint64_t seed, T mean, T std);

double peak_fma_gflops(int threads, double seconds);

}  // namespace LS_ISA
}  // namespace ls

// Explicit instantiation of a kernel template for both dtypes.
#define LS_INSTANTIATE(fn)                                            \
  template decltype(ls::LS_ISA::fn<float>) ls::LS_ISA::fn<float>;    \
  template decltype(ls::LS_ISA::fn<double>) ls::LS_ISA::fn<double>;
