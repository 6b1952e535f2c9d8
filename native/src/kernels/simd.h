// One GCC vector type for the kernels that write their loops on vector extensions: `Bytes` bytes
// of T (the register width of the ISA path they are compiled for, or a chosen block width).
#pragma once

#include <cstring>

namespace ls {

template <class T, int Bytes>
struct SimdOf {
  typedef T type __attribute__((vector_size(Bytes)));
};

template <class T, int Bytes>
using Simd = typename SimdOf<T, Bytes>::type;

// Unaligned load and store of a whole vector V at p (memcpy: one vector move once inlined).
template <class V, class T>
inline V simd_load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V, class T>
inline void simd_store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

}  // namespace ls
