// The per-ISA kernel table: this file is compiled once per ISA like every kernel source.
#include "kernels/ops.h"
#include "kernels/decode.h"

#define LS_STR2(x) #x
#define LS_STR(x) LS_STR2(x)

namespace ls {
namespace LS_ISA {

template <class T>
static KernelTable<T> make_table() {
  KernelTable<T> t{};
  t.gemm = gemm<T>;
  t.gemm_bf16 = gemm_bf16<T>;
  t.cast_to_bf16 = cast_to_bf16<T>;
  t.cast_from_bf16 = cast_from_bf16<T>;
  t.embedding_forward = embedding_forward<T>;
  t.embedding_backward = embedding_backward<T>;
  t.rmsnorm_forward = rmsnorm_forward<T>;
  t.rmsnorm_forward_bf16 = rmsnorm_forward_bf16<T>;
  t.rmsnorm_backward = rmsnorm_backward<T>;
  t.rmsnorm_backward_bf16 = rmsnorm_backward_bf16<T>;
  t.rope_table = rope_table<T>;
  t.rope_apply = rope_apply<T>;
  t.attention_standard_forward = attention_standard_forward<T>;
  t.attention_standard_backward = attention_standard_backward<T>;
  t.attention_flash_forward = attention_flash_forward<T>;
  t.attention_flash_backward = attention_flash_backward<T>;
  t.linear_cross_entropy = linear_cross_entropy<T>;
  t.add_rmsnorm_forward = add_rmsnorm_forward<T>;
  t.add_rmsnorm_forward_bf16 = add_rmsnorm_forward_bf16<T>;
  t.gemm_swiglu = gemm_swiglu<T>;
  t.gemm_qkv_rope = gemm_qkv_rope<T>;
  t.rope_qkv_split = rope_qkv_split<T>;
  t.rope_qkv_split_bf16 = rope_qkv_split_bf16<T>;
  t.rope_qkv_merge = rope_qkv_merge<T>;
  t.rope_qkv_merge_bf16 = rope_qkv_merge_bf16<T>;
  t.swiglu_packed_forward = swiglu_packed_forward<T>;
  t.swiglu_packed_backward = swiglu_packed_backward<T>;
  t.swiglu_forward = swiglu_forward<T>;
  t.swiglu_backward = swiglu_backward<T>;
  t.cross_entropy_forward = cross_entropy_forward<T>;
  t.cross_entropy_backward = cross_entropy_backward<T>;
  t.adamw = adamw<T>;
  t.sum_squares = sum_squares<T>;
  t.add_inplace = add_inplace<T>;
  t.scale_inplace = scale_inplace<T>;
  t.fill = fill<T>;
  t.randn = randn<T>;
  t.gemv = gemv<T>;
  t.rope_qkv_decode = rope_qkv_decode<T>;
  t.attention_decode = attention_decode<T>;
  return t;
}

const IsaInfo* isa_info() {
  static const KernelTable<float> f32 = make_table<float>();
  static const KernelTable<double> f64 = make_table<double>();
  static const IsaInfo info{LS_STR(LS_ISA), &f32, &f64, peak_fma_gflops};
  return &info;
}

}  // namespace LS_ISA
}  // namespace ls
