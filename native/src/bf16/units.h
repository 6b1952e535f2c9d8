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

// AMX: TDPBF16PS on 16x32 bf16 tiles into 16x16 fp32 tiles (Sapphire Rapids and later).
void gemm_amx(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// AVX-512 BF16: VDPBF16PS on zmm registers (Cooper Lake, Sapphire Rapids, AMD Zen 4).
void gemm_dpbf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc);

// Peak calibration loops (GFLOP/s with `threads` OpenMP threads for about `seconds`), two flops
// per bf16 multiply-add, like the fp32 FMA peak.
double peak_amx_gflops(int threads, double seconds);
double peak_dpbf16_gflops(int threads, double seconds);

}  // namespace bf16
}  // namespace ls
