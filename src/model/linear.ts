// A bias-free linear layer in the Hugging Face layout: W is (out, in), y = x W^T.
// `mm` is the GEMM that runs it: native.gemm (fp32), or native.gemmBf16 under bf16 mixed
// precision (operands rounded to bf16, fp32 accumulation, on the best unit of the CPU).
import { native, type FloatArray, type NativeAddon } from '../kernels/native.js';

export type Matmul = NativeAddon['gemm'];

/** Precision of the model's matrix products. */
export type Precision = 'fp32' | 'bf16';

export function matmulFor(p: Precision): Matmul {
  return p === 'bf16' ? native.gemmBf16 : native.gemm;
}

/** True when the matrix products run in bf16 on a matrix unit (AMX / AVX-512 BF16) rather than an fp32 GEMM. */
export function onMatrixUnit(mm: Matmul | undefined, x: FloatArray): x is Float32Array {
  return mm === native.gemmBf16 && x instanceof Float32Array && native.bf16Unit() !== 'fp32';
}

// y: (N, out) = x: (N, in) · W^T
export function linearForward(y: FloatArray, x: FloatArray, W: FloatArray, N: number, nin: number, nout: number, mm: Matmul = native.gemm): void {
  mm(false, true, N, nout, nin, 1, x, nin, W, nin, 0, y, nout);
}

// dW: (out, in) += dy^T · x; dx: (N, in) = dy · W (+= when accumulateDx). dW is formed first:
// the recompute modes rely on that order (llama.ts rebuilds the SwiGLU activation into the
// buffer that then receives dx), and their bitwise-equality tests would catch a change.
export function linearBackward(
  dx: FloatArray | null,
  dW: FloatArray,
  dy: FloatArray,
  x: FloatArray,
  W: FloatArray,
  N: number,
  nin: number,
  nout: number,
  accumulateDx = false,
  mm: Matmul = native.gemm,
): void {
  mm(true, false, nout, nin, N, 1, dy, nout, x, nin, 1, dW, nin);
  if (dx) mm(false, false, N, nin, nout, 1, dy, nout, W, nin, accumulateDx ? 1 : 0, dx, nin);
}
