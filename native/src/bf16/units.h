// The bf16 matrix units beyond plain fp32 FMA. These sources are compiled once, with the
// AVX-512 BF16 and AMX instruction sets enabled (binding.gyp: ls_bf16), and must only be called
// after dispatch.cc has checked the CPU (and, for AMX, obtained tile permission from Linux).
//
// Both GEMMs have the semantics of KernelTable<float>::gemm_bf16: A and B rounded to bf16
// (ties to even, convert.h) while they are packed, products accumulated in fp32. The units
// flush bf16 subnormal inputs to zero (the hardware does; values below 1e-38 in magnitude), so
// results agree with the fp32 fallback up to fp32 summation order.
#pragma once
#include <cstdint>

namespace ls {
namespace bf16 {

enum class Unit { amx, dpbf16 };

// One GEMM operand: row-major fp32 (rounded to bf16 while packed) or bf16 bits (copied), with
// leading dimension ld; op(X) = X^T when trans. For B, `packed` may instead point at the whole
// of op(B) already packed by pack_b() (then data, ld, trans and bf16 are not read): a weight
// packed once per step rather than once per GEMM call.
struct Operand {
  const void* data = nullptr;
  int64_t ld = 0;
  bool trans = false;
  bool bf16 = false;
  const uint16_t* packed = nullptr;
};

// C(M,N) = alpha * op(A) op(B) + beta * C. C is fp32 (c_bf16 false) or bf16 bits rounded to
// nearest even (c_bf16 true; then beta must be 0 and the K loop runs in one block, so C is
// rounded once; on AMX a result below the smallest normal bf16 flushes to zero). Multi-threaded unless called inside an OpenMP parallel region.
void gemm(Unit unit, int64_t M, int64_t N, int64_t K, float alpha, const Operand& A, const Operand& B,
          float beta, void* C, int64_t ldc, bool c_bf16);

// bf16 elements of op(B) (K x N) packed whole for gemm's B.packed, and the packing itself
// (multi-threaded). The layout is the units' tile layout, the same for AMX and AVX-512 BF16.
int64_t packed_b_size(int64_t K, int64_t N);
void pack_b(uint16_t* dst, const Operand& B, int64_t K, int64_t N);

// AMX: TDPBF16PS on 16x32 bf16 tiles into 16x16 fp32 tiles (Sapphire Rapids and later).
void gemm_amx(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// AVX-512 BF16: VDPBF16PS on zmm registers (Cooper Lake, Sapphire Rapids, AMD Zen 4).
void gemm_dpbf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc);

// The fused MLP's gate/up projection with SwiGLU in the GEMM epilogue: [gate | up] = h Wgu^T,
// Wgu (2F, C) = [gate_proj; up_proj] row-major fp32 or bf16 (Wgu.data and Wgu.bf16 are read;
// packed here, gate and up columns interleaved per tile). Gate and up are rounded to bf16 (the
// units' SwiGLU reads bf16 gate and up, as bf16 autocast does); act (N, F) = silu(gate) * up of
// those, fp32 or (act_bf16) rounded once to bf16; gu (N, 2F) = [gate | up], fp32 (the bf16
// values) or bf16. Either output may be null: forward without recomputation writes both (gu is
// kept for backward), with recomputation act only, and backward's recomputation gu only.
void gate_up_swiglu(Unit unit, int64_t N, int64_t C, int64_t F, const Operand& h, const Operand& Wgu, void* act,
                    bool act_bf16, void* gu, bool gu_bf16);

// Its backward pass: from gu (N, 2F) as gate_up_swiglu writes it (fp32 values are rounded to bf16
// first, a no-op on its output) and dact (N, F), dgu (N, 2F) = [dgate | dup] in gu's dtype (bf16:
// rounded once), which may be gu itself; act (N, F), unless null, receives gate_up_swiglu's act
// bit for bit (the down projection's weight gradient reads it). AVX-512 only (any matrix unit).
void swiglu_backward(void* dgu, const void* gu, bool gu_bf16, void* act, bool act_bf16, const float* dact, int64_t N,
                     int64_t F);

// kernels/linear_cross_entropy.cc's contract on a matrix unit, with the logits of each chunk
// held (and the dlogits written) in bf16 (head_bf16.cc). x (N, C) and W (V, C) are row-major
// fp32 or bf16 (their data and bf16 fields are read).
double linear_cross_entropy(Unit unit, float* dx, float* dW, float* lse, const Operand& x, const Operand& W,
                            const int32_t* targets, int64_t N, int64_t C, int64_t V, float dloss);

// Flash attention (kernels.h's attention_flash_forward / attention_flash_backward contract:
// fp32 buffers, causal, GQA, lse (B, H, T), deterministic) with the tile products on the unit:
// Q, K, V, dO and the probabilities P and dS rounded to bf16 as GEMM operands only, fp32
// accumulation and fp32 softmax statistics (flash_attention_bf16.cc). Any head dim D. q, k and
// v are fp32, or (qkv_bf16) bf16 bits, read as their fp32 values: the same results. out is fp32
// or (out_bf16) bf16 bits, the fp32 output rounded once; backward reads it as bf16 either way
// (Di = rowdot(bf16(dout), bf16(out))), so both forms give the same gradients.
void attention_flash_forward(Unit unit, void* out, bool out_bf16, float* lse, const void* q, const void* k,
                             const void* v, bool qkv_bf16, int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D);
void attention_flash_backward(Unit unit, float* dq, float* dk, float* dv, const float* dout, const void* q,
                              const void* k, const void* v, bool qkv_bf16, const void* out, bool out_bf16,
                              const float* lse, int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D);

// Peak calibration loops (GFLOP/s with `threads` OpenMP threads for about `seconds`), two flops
// per bf16 multiply-add, like the fp32 FMA peak.
double peak_amx_gflops(int threads, double seconds);
double peak_dpbf16_gflops(int threads, double seconds);

}  // namespace bf16
}  // namespace ls
