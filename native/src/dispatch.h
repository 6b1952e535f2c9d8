// Run-time choice of the kernel table by CPUID: avx512 > avx2 > scalar. LITESPARK_ISA or
// set_isa() may pick a lower path (tests run every path the machine has).
#pragma once
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace ls {

struct CpuFeatures {
  bool avx2, fma, avx512f, avx512bw, avx512vl, avx512dq, avx512_bf16, amx_tile, amx_bf16;
};

CpuFeatures cpu_features();
std::vector<std::string> available_isas();  // best first
const IsaInfo& current_isa();
void set_isa(const std::string& name);  // throws std::invalid_argument if unknown/unsupported

}  // namespace ls
