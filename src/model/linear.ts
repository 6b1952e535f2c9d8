// A bias-free linear layer in the Hugging Face layout: W is (out, in), y = x W^T.
import { native, type FloatArray } from '../kernels/native.js';

// y: (N, out) = x: (N, in) · W^T
export function linearForward(y: FloatArray, x: FloatArray, W: FloatArray, N: number, nin: number, nout: number): void {
  native.gemm(false, true, N, nout, nin, 1, x, nin, W, nin, 0, y, nout);
}

// dW: (out, in) += dy^T · x; dx: (N, in) = dy · W (+= when accumulateDx).
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
): void {
  native.gemm(true, false, nout, nin, N, 1, dy, nout, x, nin, 1, dW, nin);
  if (dx) native.gemm(false, false, N, nin, nout, 1, dy, nout, W, nin, accumulateDx ? 1 : 0, dx, nin);
}
