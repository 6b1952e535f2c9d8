// GEMM epilogues of the fused path: what the fp32 GEMM (gemm.cc, gemm_swiglu / gemm_qkv_rope)
// does with a finished register tile instead of storing it to C. The products they replace
// never exist as a plain matrix:
//
//   swiglu    x (N,C) . [gate; up]^T -> act (N,F) = silu(gate) * up and/or gu (N,2F) = [gate |
//             up] (what backward reads without recomputation). The packed B panels interleave
//             the two weights: the first NR/2 columns of panel p are the gate rows of features
//             [p NR/2, (p+1) NR/2), the last NR/2 the up rows of the same features, so one tile
//             holds both inputs of its activations.
//   rope_qkv  x (B*T,C) . [q; k; v]^T -> q (B,T,H,D), k, v (B,T,KVH,D), RoPE (rotate_half) on
//             q and k. Panels [0, rot) hold NR/2 rotation pairs each: the first NR/2 columns are
//             element i of a head, the last NR/2 element i + D/2 of the same head, pairs counted
//             over the q heads, then the k heads; panels [rot, ...) hold the v columns in order.
//
// The weights stay in their Hugging Face layout: the permutation lives in the packing
// (src_row below). An epilogue sees a tile's whole sum: K runs in one block up to K = 1024, past
// it the earlier K blocks' sums wait in a buffer for the last one (gemm.cc, gemm_impl).
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace ls {

template <class T>
struct Epilogue {
  enum class Kind { swiglu, rope_qkv };
  Kind kind;
  int half;  // NR / 2 of the GEMM's register tile on this ISA and dtype

  // swiglu: either output may be null
  T* act = nullptr;  // (N, F) = silu(gate) * up
  T* gu = nullptr;   // (N, 2F) = [gate | up]
  int64_t F = 0;

  // rope_qkv
  T* q = nullptr;  // (B, T, H, D)
  T* k = nullptr;  // (B, T, KVH, D)
  T* v = nullptr;  // (B, T, KVH, D)
  const T* cos = nullptr;  // (T, D/2)
  const T* sin = nullptr;
  int64_t Tn = 0, H = 0, KVH = 0, D = 0;

  int64_t pairs() const { return (H + KVH) * (D / 2); }
  int64_t rot_panels() const { return ceil_div(pairs(), half); }
  // Panels of NR = 2 half columns: the GEMM's N is panels() * NR.
  int64_t panels() const {
    return kind == Kind::rope_qkv ? rot_panels() + ceil_div(KVH * D, 2 * half) : ceil_div(F, half);
  }

  // Row of the weight matrix ((2F, C) or ((H + 2 KVH) D, C)) that column j in [0, NR) of
  // panel p reads; -1 for a padding column (packed as zeros).
  int64_t src_row(int64_t p, int j) const {
    const int h = j / half, jj = j % half;
    if (kind != Kind::rope_qkv) {
      const int64_t f = p * half + jj;
      return f < F ? h * F + f : -1;
    }
    const int64_t hd = D / 2;
    if (p < rot_panels()) {
      const int64_t pair = p * half + jj;
      if (pair >= pairs()) return -1;
      return (pair / hd) * D + pair % hd + h * hd;
    }
    const int64_t c = (p - rot_panels()) * 2 * half + j;
    return c < KVH * D ? (H + KVH) * D + c : -1;
  }
};

}  // namespace ls
