// The key/value cache of generation: per layer, the keys (after RoPE) and values of every
// position seen so far, allocated once at the maximum context length.
import { Tensor, type DType } from '../kernels/tensor.js';

export class KvCache {
  /** Per layer: (Tmax, KVH, D) keys after RoPE, and values; rows 0..length-1 valid. */
  readonly k: Tensor[];
  readonly v: Tensor[];
  /** Positions held (the next token's position). */
  length = 0;

  constructor(dtype: DType, readonly layers: number, readonly Tmax: number, readonly KVH: number, readonly D: number) {
    this.k = Array.from({ length: layers }, () => Tensor.empty(dtype, [Tmax, KVH, D]));
    this.v = Array.from({ length: layers }, () => Tensor.empty(dtype, [Tmax, KVH, D]));
  }

  /** Forget every position (the buffers are kept). */
  reset(): void {
    this.length = 0;
  }

  get bytes(): number {
    return this.k.reduce((a, t) => a + t.bytes, 0) * 2;
  }
}
