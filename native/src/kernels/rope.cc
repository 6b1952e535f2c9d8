// Rotary position embeddings, Hugging Face Llama convention ("rotate_half"): element i of the
// first half of a head is paired with element i + D/2.
#include <cmath>

#include "kernels/common.h"
#include "kernels/ops.h"

namespace ls {
namespace LS_ISA {

// cos, sin: (T, D/2); angle(t, i) = t * theta^(-2i/D), computed in double.
template <class T>
void rope_table(T* cos, T* sin, int64_t Tn, int64_t D, double theta) {
  const int64_t half = D / 2;
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(theta, -2.0 * double(i) / double(D));
      const double a = double(t) * inv_freq;
      cos[t * half + i] = T(std::cos(a));
      sin[t * half + i] = T(std::sin(a));
    }
}

// x: (B, T, H, D) rotated in place. inverse rotates by -angle (the backward of forward).
template <class T>
void rope_apply(T* x, const T* cos, const T* sin, int64_t B, int64_t Tn, int64_t H, int64_t D, bool inverse) {
  const int64_t half = D / 2;
  const T sgn = inverse ? T(-1) : T(1);
#pragma omp parallel for schedule(static) if (B * Tn * H * D > kParallelMin)
  for (int64_t bt = 0; bt < B * Tn; ++bt) {
    const int64_t t = bt % Tn;
    const T* c = cos + t * half;
    const T* s = sin + t * half;
    for (int64_t h = 0; h < H; ++h) {
      T* v = x + (bt * H + h) * D;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const T a = v[i], b = v[i + half], si = sgn * s[i];
        v[i] = a * c[i] - b * si;
        v[i + half] = b * c[i] + a * si;
      }
    }
  }
}

}  // namespace LS_ISA
}  // namespace ls

LS_INSTANTIATE(rope_table)
LS_INSTANTIATE(rope_apply)
