// One GCC vector type for the kernels that write their loops on vector extensions: `Bytes` bytes
// of T (the register width of the ISA path they are compiled for, or a chosen block width).
#pragma once

namespace ls {

template <class T, int Bytes>
struct SimdOf {
  typedef T type __attribute__((vector_size(Bytes)));
};

template <class T, int Bytes>
using Simd = typename SimdOf<T, Bytes>::type;

}  // namespace ls
