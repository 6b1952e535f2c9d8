// Tensors are views (dtype, shape, strides, offset) on storage allocated by the native addon
// (64-byte aligned, zero-filled) and seen from JavaScript as an external ArrayBuffer: nothing is
// copied between the two sides. The storage handle names its device so that a GPU backend can
// later hand out device memory behind the same interface.
import { native, type FloatArray } from './native.js';

export type DType = 'f32' | 'f64';
export type Device = 'cpu';

export const BYTES: Record<DType, number> = { f32: 4, f64: 8 };

export interface Storage {
  readonly device: Device;
  readonly bytes: number;
  /** Host-visible memory (CPU device). */
  readonly buffer: ArrayBuffer;
}

export function allocStorage(bytes: number): Storage {
  return { device: 'cpu', bytes, buffer: native.alloc(bytes) };
}

function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export class Tensor {
  /** The typed-array view over this tensor's elements, made once (kernels take it directly). */
  readonly data: FloatArray;
  readonly strides: readonly number[];
  readonly numel: number;

  constructor(
    readonly storage: Storage,
    readonly dtype: DType,
    readonly shape: readonly number[],
    /** Offset in elements from the start of the storage. */
    readonly offset = 0,
  ) {
    this.numel = numel(shape);
    this.strides = contiguousStrides(shape);
    const end = (offset + this.numel) * BYTES[dtype];
    if (end > storage.bytes) throw new RangeError(`tensor of shape [${shape}] at offset ${offset} overruns its storage`);
    this.data =
      dtype === 'f32'
        ? new Float32Array(storage.buffer, offset * 4, this.numel)
        : new Float64Array(storage.buffer, offset * 8, this.numel);
  }

  static empty(dtype: DType, shape: readonly number[]): Tensor {
    return new Tensor(allocStorage(numel(shape) * BYTES[dtype]), dtype, shape);
  }

  /** A contiguous view of `shape` starting `offset` elements into this tensor. */
  view(offset: number, shape: readonly number[]): Tensor {
    return new Tensor(this.storage, this.dtype, shape, this.offset + offset);
  }

  get bytes(): number {
    return this.numel * BYTES[this.dtype];
  }
}

/**
 * A contiguous tensor of bf16 bit patterns (a Uint16Array view on its storage): the GEMM operands
 * that bf16 training on a matrix unit keeps in bf16 (the weights' working copy, norm outputs, the
 * SwiGLU activation, dgu, dqkv). Only the kernels that read or write bf16 take its data.
 */
export class Bf16Tensor {
  readonly data: Uint16Array;
  readonly numel: number;

  constructor(
    readonly storage: Storage,
    readonly shape: readonly number[],
    /** Offset in elements (2 bytes each) from the start of the storage. */
    readonly offset = 0,
  ) {
    this.numel = numel(shape);
    if ((offset + this.numel) * 2 > storage.bytes) throw new RangeError(`bf16 tensor of shape [${shape}] at offset ${offset} overruns its storage`);
    this.data = new Uint16Array(storage.buffer, offset * 2, this.numel);
  }

  static empty(shape: readonly number[]): Bf16Tensor {
    return new Bf16Tensor(allocStorage(numel(shape) * 2), shape);
  }

  get bytes(): number {
    return this.numel * 2;
  }
}

/** Either kind of tensor, where only its bytes and storage matter (memory accounting). */
export type AnyTensor = Tensor | Bf16Tensor;

/**
 * Many named tensors in one storage, so a whole-buffer pass (optimizer, gradient norm,
 * all-reduce, checkpoint) is one call. Entries are laid out in the given order, each aligned to
 * 16 elements (64 bytes in fp32) unless packed with the next one.
 */
export class FlatBuffer {
  readonly flat: Tensor;
  readonly tensors = new Map<string, Tensor>();
  readonly offsets = new Map<string, number>();

  constructor(
    readonly dtype: DType,
    /** packNext: no alignment padding after this entry, so it and the next form one matrix. */
    entries: ReadonlyArray<{ name: string; shape: readonly number[]; packNext?: boolean }>,
  ) {
    let total = 0;
    const at: number[] = [];
    for (const e of entries) {
      at.push(total);
      total += numel(e.shape);
      if (!e.packNext) total = Math.ceil(total / 16) * 16;
    }
    this.flat = Tensor.empty(dtype, [total]);
    entries.forEach((e, i) => {
      this.tensors.set(e.name, this.flat.view(at[i]!, e.shape));
      this.offsets.set(e.name, at[i]!);
    });
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no tensor named '${name}'`);
    return t;
  }
}
