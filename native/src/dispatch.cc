#include "dispatch.h"

#include <cpuid.h>

#include <cstdlib>
#include <stdexcept>

namespace ls {
namespace {

bool os_saves_avx512() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return false;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0xE6) == 0xE6;  // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state
}

bool os_saves_avx() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return false;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0x6) == 0x6;
}

CpuFeatures detect() {
  CpuFeatures f{};
  unsigned eax, ebx, ecx, edx;
  bool avx_os = os_saves_avx();
  bool avx512_os = os_saves_avx512();
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) f.fma = avx_os && (ecx & bit_FMA);
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    f.avx2 = avx_os && (ebx & bit_AVX2);
    f.avx512f = avx512_os && (ebx & bit_AVX512F);
    f.avx512bw = avx512_os && (ebx & bit_AVX512BW);
    f.avx512vl = avx512_os && (ebx & bit_AVX512VL);
    f.avx512dq = avx512_os && (ebx & bit_AVX512DQ);
    f.amx_tile = (edx >> 24) & 1;
    f.amx_bf16 = (edx >> 22) & 1;
  }
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) f.avx512_bf16 = avx512_os && ((eax >> 5) & 1);
  return f;
}

const IsaInfo* by_name(const std::string& name) {
  if (name == "avx512") return avx512::isa_info();
  if (name == "avx2") return avx2::isa_info();
  if (name == "scalar") return scalar::isa_info();
  return nullptr;
}

const IsaInfo* initial() {
  auto isas = available_isas();
  const char* env = std::getenv("LITESPARK_ISA");
  if (env && *env) {
    for (auto& n : isas)
      if (n == env) return by_name(n);
    // An unusable request falls back to the best path; the JS side reports the mismatch.
  }
  return by_name(isas.front());
}

const IsaInfo* g_current = nullptr;

}  // namespace

CpuFeatures cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::vector<std::string> available_isas() {
  CpuFeatures f = cpu_features();
  std::vector<std::string> out;
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx2 && f.fma) out.push_back("avx512");
  if (f.avx2 && f.fma) out.push_back("avx2");
  out.push_back("scalar");
  return out;
}

const IsaInfo& current_isa() {
  if (!g_current) g_current = initial();
  return *g_current;
}

void set_isa(const std::string& name) {
  for (auto& n : available_isas()) {
    if (n == name) {
      g_current = by_name(n);
      return;
    }
  }
  throw std::invalid_argument("ISA '" + name + "' is not available on this CPU");
}

}  // namespace ls
