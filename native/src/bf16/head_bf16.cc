// The output head + cross-entropy on a bf16 matrix unit (kernels/linear_cross_entropy.cc is the
// fp32 kernel; this is its mixed-precision counterpart, units.h):
//
//   Wt = pack(W^T), Wn = pack(W)         the weight packed once per call (not once per chunk)
//   for each chunk of R rows:            x_c: (R, C), W: (V, C), each fp32 or bf16
//     logits (R, V) bf16 = x_c W^T       GEMM with a bf16 C, as torch.autocast's bf16 matmul
//     lse, loss per row in fp32; in training the logits become, in place,
//     dlogits bf16 = (softmax - onehot(target)) * dloss   (zero rows where target < 0)
//     dx_c (R, C)  = dlogits Wn          bf16 A read as is: no rounding, no conversion
//     dW (V, C)   += dlogits^T x_c
//
// Why bf16 logits: at AMX speed the head is bound by memory, not arithmetic; the fp32 logits of
// a chunk (R x V x 4 bytes) were written by one GEMM, read and rewritten by the softmax and read
// by two more GEMMs. In bf16 every one of those passes moves half the bytes, and the GEMMs
// would round the dlogits to bf16 anyway. The loss then sees logits rounded to bf16 (|error| <=
// 2^-9 |logit|), as in PyTorch's bf16 autocast; the softmax statistics are fp32.
//
// Memory: R x V bf16 in workspace slot 2 and the two packed weights in slot 3 of the calling
// thread (the GEMMs use slot 0; slot 3 is otherwise only sum_squares', never during this call);
// in training one row of V fp32 exponentials (rounded up to 32) in slot 1 of each thread.
// Determinism: as the fp32 kernel (fixed R, one thread per row, deterministic GEMMs).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "bf16/convert.h"
#include "bf16/tiles.h"
#include "bf16/units.h"
#include "kernels/common.h"
#include "memory.h"

namespace ls {
namespace bf16 {
namespace {

// 1024 rows: 1024 x 32000 x 2 B = 66 MB of bf16 logits. Fewer chunks mean fewer passes of the dW
// GEMM's output over (V, C) and fewer weight streams. Measured (S shape, N = 2048, AMX, 2
// threads, whole head fwd+bwd): R 768: 175 ms, 1024: 166 ms, 2048: 171 ms.
constexpr int64_t kChunkRows = 1024;

// The softmax cross-entropy of one row of bf16 logits; in training the row becomes dlogits. ex
// (V floats rounded up to 32, training only) keeps exp(logit - max) from the sum's pass for the
// dlogits pass: one exponential per logit instead of two, the same values (the
// kernels/linear_cross_entropy.cc kernel keeps them in its fp32 row; here the row is bf16, so they
// go beside it). The exponentials are tiles.h's vexp2 of (logit - max) log2 e, run under
// FlushDenormals (the caller's): below e^-87 they are 0, as kernels/vexp.h's are. dlogits are
// rounded 32 at a time by VCVTNE2PS2BF16 (nearest even; a subnormal becomes 0, as the units read a
// bf16 subnormal input anyway).
double softmax_row(uint16_t* row, int64_t V, int32_t t, float dloss, bool train, float* lse, float* ex) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < V; j += 16) {
    const __mmask16 k = head_mask(V - j);
    m = _mm512_mask_max_ps(m, k, m, load_bf16x16(row + j, k));
  }
  const float mx = _mm512_reduce_max_ps(m);
  const __m512 log2e = _mm512_set1_ps(static_cast<float>(kLog2e)), vmx = _mm512_set1_ps(mx * static_cast<float>(kLog2e));
  __m512 s = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= V; j += 16) {
    const __m512 e = vexp2(_mm512_fmsub_ps(load_bf16x16(row + j, 0xFFFF), log2e, vmx));
    if (train) _mm512_store_ps(ex + j, e);
    s = _mm512_add_ps(s, e);
  }
  if (j < V) {  // the tail: lanes past V are 0 (loading 0 would give exp(-max))
    const __mmask16 k = head_mask(V - j);
    const __m512 e = _mm512_maskz_mov_ps(k, vexp2(_mm512_fmsub_ps(load_bf16x16(row + j, k), log2e, vmx)));
    if (train) _mm512_store_ps(ex + j, e);
    s = _mm512_add_ps(s, e);
  }
  const float sum = _mm512_reduce_add_ps(s);
  const float l = mx + std::log(sum);
  *lse = l;
  const float x_t = t >= 0 ? f32_from_bf16(row[t]) : 0.0f;
  if (!train) return t >= 0 ? double(l) - double(x_t) : 0.0;
  if (t < 0) {
    std::memset(row, 0, sizeof(uint16_t) * V);
    return 0.0;
  }
  const __m512 scale = _mm512_set1_ps(dloss / sum);
  for (int64_t j = 0; j < V; j += 32) {  // ex holds whole vectors up to V rounded to 32
    const __m512 lo = _mm512_mul_ps(_mm512_load_ps(ex + j), scale), hi = _mm512_mul_ps(_mm512_load_ps(ex + j + 16), scale);
    _mm512_mask_storeu_epi16(row + j, head_mask32(V - j), cvt2(hi, lo));
  }
  row[t] = bf16_from_f32(std::exp(x_t - mx) * (dloss / sum) - dloss);
  return double(l) - double(x_t);
}

}  // namespace

double linear_cross_entropy(Unit unit, float* dx, float* dW, float* lse, const Operand& x, const Operand& W,
                            const int32_t* targets, int64_t N, int64_t C, int64_t V, float dloss) {
  if (N <= 0) return 0.0;
  const bool train = dx != nullptr;
  const int64_t R = std::min(N, kChunkRows);
  const int64_t wt_size = packed_b_size(C, V), wn_size = train ? packed_b_size(V, C) : 0;
  uint16_t* wpack = static_cast<uint16_t*>(thread_workspace(sizeof(uint16_t) * (wt_size + wn_size), 3));
  uint16_t* Wt = wpack;            // op(B) = W^T: (C, V)
  uint16_t* Wn = wpack + wt_size;  // op(B) = W: (V, C)
  pack_b(Wt, Operand{W.data, C, true, W.bf16}, C, V);
  if (train) pack_b(Wn, Operand{W.data, C, false, W.bf16}, V, C);

  const size_t logits_bytes = static_cast<size_t>(ceil_div(int64_t(sizeof(uint16_t)) * R * V, 64) * 64);
  char* ws = static_cast<char*>(thread_workspace(logits_bytes + sizeof(double) * R, 2));
  uint16_t* logits = reinterpret_cast<uint16_t*>(ws);
  double* row_loss = reinterpret_cast<double*>(ws + logits_bytes);

  double total = 0;
  for (int64_t n0 = 0; n0 < N; n0 += R) {
    const int64_t rows = std::min(R, N - n0);
    const Operand xc{x.bf16 ? static_cast<const void*>(static_cast<const uint16_t*>(x.data) + n0 * C)
                            : static_cast<const void*>(static_cast<const float*>(x.data) + n0 * C),
                     C, false, x.bf16};
    Operand packed_wt;
    packed_wt.packed = Wt;
    gemm(unit, rows, V, C, 1.0f, xc, packed_wt, 0.0f, logits, V, true);
#pragma omp parallel if (rows * V > (1 << 16))
    {
      // each thread's exponentials row: its workspace slot 1 (no other user during this call)
      float* ex = train ? static_cast<float*>(thread_workspace(sizeof(float) * ceil_div(V, 32) * 32, 1)) : nullptr;
      FlushDenormals ftz;  // the exponentials' underflow (softmax_row)
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r)
        row_loss[r] = softmax_row(logits + r * V, V, targets[n0 + r], dloss, train, lse + n0 + r, ex);
    }
    for (int64_t r = 0; r < rows; ++r) total += row_loss[r];
    if (!train) continue;
    Operand packed_wn;
    packed_wn.packed = Wn;
    gemm(unit, rows, C, V, 1.0f, Operand{logits, V, false, true}, packed_wn, 0.0f, dx + n0 * C, C, false);
    gemm(unit, V, C, rows, 1.0f, Operand{logits, V, true, true}, xc, 1.0f, dW, C, false);
  }
  return total;
}

}  // namespace bf16
}  // namespace ls
