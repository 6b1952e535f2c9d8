// A bias-free linear layer in the Hugging Face layout: W is (out, in), y = x W^T.
// `mm` is the GEMM that runs it: native.gemm (fp32), or native.gemmBf16 under bf16 mixed
// precision (operands rounded to bf16, fp32 accumulation, on the best unit of the CPU). On a
// bf16 matrix unit the fused path hands it operands it keeps in bf16 (Uint16Array bits: the
// weights' working copy, norm outputs, the SwiGLU activation, dgu, dqkv); outputs stay fp32.
import { native, type FloatArray, type NativeAddon } from '../kernels/native.js';

export type Matmul = NativeAddon['gemmBf16'];

/** A GEMM operand: fp32 / float64 values, or bf16 bits (matrix units only). */
export type Operand = FloatArray | Uint16Array;

/** Precision of the model's matrix products. */
export type Precision = 'fp32' | 'bf16';

export function matmulFor(p: Precision): Matmul {
  return p === 'bf16' ? native.gemmBf16 : native.gemm;
}

/** True when the matrix products run in bf16 on a matrix unit (AMX / AVX-512 BF16) rather than an fp32 GEMM. */
export function onMatrixUnit(mm: Matmul | undefined, x: Operand): x is Float32Array | Uint16Array {
  return mm === native.gemmBf16 && (x instanceof Float32Array || x instanceof Uint16Array) && native.bf16Unit() !== 'fp32';
}

// y: (N, out) = x: (N, in) · W^T
export function linearForward(y: FloatArray, x: Operand, W: Operand, N: number, nin: number, nout: number, mm: Matmul = native.gemm): void {
  mm(false, true, N, nout, nin, 1, x, nin, W, nin, 0, y, nout);
}

// dW: (out, in) += dy^T · x
export function linearBackwardWeight(dW: FloatArray, dy: Operand, x: Operand, N: number, nin: number, nout: number, mm: Matmul = native.gemm): void {
  mm(true, false, nout, nin, N, 1, dy, nout, x, nin, 1, dW, nin);
}

// dx: (N, in) = dy · W (+= when accumulateDx)
export function linearBackwardInput(dx: FloatArray, dy: Operand, W: Operand, N: number, nin: number, nout: number, accumulateDx = false,
  mm: Matmul = native.gemm): void {
  mm(false, false, N, nin, nout, 1, dy, nout, W, nin, accumulateDx ? 1 : 0, dx, nin);
}

// Both: dW first, then dx (when not null).
export function linearBackward(
  dx: FloatArray | null,
  dW: FloatArray,
  dy: Operand,
  x: Operand,
  W: Operand,
  N: number,
  nin: number,
  nout: number,
  accumulateDx = false,
  mm: Matmul = native.gemm,
): void {
  linearBackwardWeight(dW, dy, x, N, nin, nout, mm);
  if (dx) linearBackwardInput(dx, dy, W, N, nin, nout, accumulateDx, mm);
}
