// bf16 <-> fp32 conversion, scalar and exact: the one definition every path agrees with.
//
// bf16 is the top half of an IEEE fp32 (1 sign, 8 exponent, 7 mantissa bits). fp32 -> bf16
// rounds to nearest, ties to even, on the bit pattern: add 0x7FFF plus the lowest kept bit,
// then drop the low 16 bits. A carry out of the mantissa correctly bumps the exponent (and turns
// the largest finite values into infinity, as RNE must). Subnormals round like any other value
// (no flush to zero); infinities stay infinities; a NaN stays a NaN of the same sign, made quiet
// (the rounding add could otherwise carry a NaN payload into an infinity or flip its sign).
// Plain code on purpose: the compiler vectorizes these loops on every ISA, and the AMX and
// AVX-512 BF16 packing routines use the same integer recipe in intrinsics.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace ls {

inline uint32_t f32_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

inline float f32_from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// The bf16 bit pattern nearest to x (ties to even).
inline uint16_t bf16_from_f32(float x) {
  const uint32_t u = f32_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

inline float f32_from_bf16(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

// x rounded to the nearest bf16 value, kept as fp32.
inline float round_bf16(float x) { return f32_from_bf16(bf16_from_f32(x)); }

// float64 -> bf16 without double rounding: first to fp32 rounding to odd (toward zero, then the
// lowest mantissa bit set when anything was dropped), then RNE to bf16. fp32 keeps 16 more bits
// than bf16, so the odd bit only breaks what would otherwise look like an exact tie (the
// classic round-to-odd argument); NaN, infinities and values past FLT_MAX come out as RNE says.
inline float f32_round_to_odd(double x) {
  float f = static_cast<float>(x);
  if (std::fabs(static_cast<double>(f)) > std::fabs(x)) f = std::nextafter(f, 0.0f);
  if (static_cast<double>(f) != x && x == x) f = f32_from_bits(f32_bits(f) | 1u);
  return f;
}

inline uint16_t bf16_from_f64(double x) { return bf16_from_f32(f32_round_to_odd(x)); }

// The bf16 value nearest to x, for the float64 reference path.
inline double round_bf16(double x) { return static_cast<double>(f32_from_bf16(bf16_from_f64(x))); }

inline uint16_t bf16_from(float x) { return bf16_from_f32(x); }
inline uint16_t bf16_from(double x) { return bf16_from_f64(x); }

}  // namespace ls
