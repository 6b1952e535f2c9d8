// exp on a whole vector of floats, for the softmax passes of the fused kernels (flash attention,
// linear + cross-entropy). Compiled per ISA like every kernel source: the vector is the ISA's
// widest (AVX-512 64 bytes, AVX2 32, SSE2 16), as GCC vector extensions.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#define LS_VEC_BYTES 64
#elif defined(__AVX2__)
#define LS_VEC_BYTES 32
#else
#define LS_VEC_BYTES 16
#endif

namespace ls {
namespace LS_ISA {

typedef float vfloat __attribute__((vector_size(LS_VEC_BYTES)));
typedef int32_t vint __attribute__((vector_size(LS_VEC_BYTES)));

// Cephes expf: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a degree-5 polynomial, and 2^n
// through the exponent bits: about 1 ulp on [-87.3, 88.3] (measured against std::exp). Below
// -87.3 (where the true value is subnormal) and at -inf (a masked score) it gives 0; NaN stays NaN.
inline vfloat vexp(vfloat x) {
  const vfloat lo = vfloat{} - 87.33654f, hi = vfloat{} + 88.37626f;
  const vfloat xc0 = x < lo ? lo : x;
  const vfloat xc = xc0 > hi ? hi : xc0;
  const vfloat magic = vfloat{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const vfloat n = (xc * 1.44269504088896341f + magic) - magic;
  const vfloat r = xc - n * 0.693359375f - n * -2.12194440e-4f;
  vfloat p = vfloat{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const vint bits = (__builtin_convertvector(n, vint) + 127) << 23;
  vfloat scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < lo ? vfloat{} : p * scale;
}

}  // namespace LS_ISA
}  // namespace ls
