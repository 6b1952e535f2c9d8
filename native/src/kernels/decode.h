// Declarations of the decode kernels (decode.cc) inside the ISA namespace, for table.cc.
// Included only by kernel sources (compiled once per ISA with -DLS_ISA=<name>).
#pragma once
#include "kernels/ops.h"

namespace ls {
namespace LS_ISA {

template <class T>
void gemv(T* y, const T* W, const T* x, int64_t N, int64_t K, T beta);
template <class T>
void rope_qkv_decode(T* q, T* kcache, T* vcache, const T* qkv, const T* cos, const T* sin, int64_t pos,
                     int64_t H, int64_t KVH, int64_t D);
template <class T>
void attention_decode(T* out, const T* q, const T* kcache, const T* vcache, int64_t Tk, int64_t H,
                      int64_t KVH, int64_t D);

}  // namespace LS_ISA
}  // namespace ls
