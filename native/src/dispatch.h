// Run-time choice of the kernel table by CPUID: avx512 > avx2 > scalar. LITESPARK_ISA or
// set_isa() may pick a lower path (tests run every path the machine has).
#pragma once
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace ls {

struct CpuFeatures {
  bool avx2, fma, avx512f, avx512bw, avx512vl, avx512dq, avx512_bf16, amx_tile, amx_bf16;
  bool amd;  // vendor AuthenticAMD (chooses the default bf16 unit)
};

CpuFeatures cpu_features();
std::vector<std::string> available_isas();  // best first
const IsaInfo& current_isa();
void set_isa(const std::string& name);  // throws std::invalid_argument if unknown/unsupported

}  // namespace ls

namespace ls {

// Mixed precision: the unit that runs bf16 GEMMs: "amx" (tiles; needs the CPU's AMX-BF16 and
// Linux's permission, asked once with arch_prctl), "fp32" (bf16-rounded operands on the current
// ISA's fp32 GEMM: correct everywhere), "avx512bf16" (vdpbf16ps; the default on AMD
// CPUs without AMX, listed last elsewhere: see dispatch.cc). The first available one is the default; LITESPARK_BF16_UNIT or
// set_bf16_unit() picks another.
std::vector<std::string> available_bf16_units();
const std::string& current_bf16_unit();
void set_bf16_unit(const std::string& name);  // throws std::invalid_argument if unavailable
GemmFn<float> bf16_gemm();                    // the current unit's GEMM
// The current unit as a matrix unit of bf16/units.h; false for "fp32" (the ISA's FMA GEMM).
bool bf16_matrix_unit(int* unit);
// Why AMX is not in available_bf16_units() on a CPU that has it ("" when it is, or absent).
const std::string& amx_unavailable_reason();

}  // namespace ls
