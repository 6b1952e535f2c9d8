// IEEE binary16 (fp16) -> fp32, exact: the scalar recipe every path agrees with, and the
// per-ISA entry points of the cast (defined in vector.cc, compiled once per ISA).
//
// fp16 is 1 sign, 5 exponent (bias 15), 10 mantissa bits; every fp16 value is exactly an fp32
// value. Normals rebias the exponent (+112) and shift the mantissa up 13 bits; subnormals
// (exponent 0) are m * 2^-24, normal in fp32; infinities stay infinities; a NaN keeps its sign
// and payload and comes out quiet (the quiet bit set), as VCVTPH2PS converts a signaling NaN.
// Not in the kernel table (KernelTable): the cast exists for fp32 only, and the binding picks
// the entry point of the current ISA (ls::current_isa()), falling back to the scalar one when
// the CPU lacks F16C (the avx2 path's instruction).
#pragma once
#include <cstdint>
#include <cstring>

namespace ls {

inline float f32_from_f16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  uint32_t u;
  if (exp == 0x1Fu) {
    u = sign | 0x7F800000u | (man << 13) | (man ? 0x00400000u : 0u);  // inf, or quiet NaN
  } else if (exp != 0) {
    u = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    u = sign;  // +-0
  } else {
    // Subnormal: shift the leading 1 up to the implicit bit, lowering the exponent each step.
    uint32_t m = man, e = 113u;  // 2^-14 = 2^(113 - 127) with an implicit bit at 2^10
    while (!(m & 0x400u)) {
      m <<= 1;
      --e;
    }
    u = sign | (e << 23) | ((m & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// y(n) = x(n) fp16 bits widened to fp32 (f32_from_f16 on every element).
#define LS_DECLARE_F16(ns) \
  namespace ns {           \
  void cast_from_f16(float* y, const uint16_t* x, int64_t n); \
  }
LS_DECLARE_F16(avx512)
LS_DECLARE_F16(avx2)
LS_DECLARE_F16(scalar)
#undef LS_DECLARE_F16

}  // namespace ls
