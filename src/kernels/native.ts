// Loads the native addon (built by node-gyp during `npm ci`) and types its functions.
// Float buffers are Float32Array (training) or Float64Array (float64 reference path); every
// float buffer of one call shares a dtype. See native/src/kernels/kernels.h for semantics.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type FloatArray = Float32Array | Float64Array;
/** A matrix a bf16 matrix unit reads or writes: fp32 values, or bf16 bit patterns (Uint16Array). */
export type UnitArray = Float32Array | Uint16Array;

/** Units that run bf16 GEMMs: AMX tiles, AVX-512 BF16 dot products, or fp32 FMA on rounded operands. */
export type Bf16Unit = 'amx' | 'avx512bf16' | 'fp32';

export interface CpuFeatures {
  avx2: boolean;
  fma: boolean;
  avx512f: boolean;
  avx512bw: boolean;
  avx512vl: boolean;
  avx512dq: boolean;
  avx512_bf16: boolean;
  amx_tile: boolean;
  amx_bf16: boolean;
  /** Vendor AuthenticAMD: picks the default bf16 unit where there is no AMX. */
  amd: boolean;
}

export interface NativeMemoryStats {
  /** Live storage handed to JavaScript. */
  storageBytes: number;
  /** High-water mark of storage since the last resetPeak(). */
  storagePeakBytes: number;
  /** Live per-thread kernel workspaces. */
  workspaceBytes: number;
}

export interface NativeAddon {
  alloc(bytes: number): ArrayBuffer;
  memoryStats(): NativeMemoryStats;
  resetPeak(): void;
  setThreads(threads: number): void;
  getThreads(): number;
  isa(): string;
  availableIsas(): string[];
  setIsa(name: string): void;
  cpuFeatures(): CpuFeatures;
  /** GFLOP/s of a tight FMA loop on the current ISA with `threads` threads. */
  peakFma(threads: number, seconds: number): number;
  /** bf16 GEMM units on this machine, the default first: 'amx' (where present), 'avx512bf16' (AMD CPUs with AVX-512 BF16; elsewhere listed last, opt-in), 'fp32' (always). */
  bf16Units(): Bf16Unit[];
  /** The unit gemmBf16 (and bf16 training) runs on now. */
  bf16Unit(): Bf16Unit;
  setBf16Unit(unit: string): void;
  /** Why 'amx' is missing from bf16Units() ('' when it is there). */
  amxUnavailableReason(): string;
  /** GFLOP/s of the unit's calibration loop ('fp32': the FMA loop of the current ISA). */
  peakBf16(unit: Bf16Unit, threads: number, seconds: number): number;
  /** Best GB/s of the STREAM triad over three float64 arrays of `bytesPerArray` each (native/src/kernels/bandwidth.cc). */
  memoryBandwidth(threads: number, seconds: number, bytesPerArray: number): number;
  /** The last-level cache in bytes (L3, else L2), 0 when the system does not say. */
  lastLevelCacheBytes(): number;
  /** NVML loaded at run time (native/src/nvml.cc): '' when usable, else why not. */
  nvmlOpen(): string;
  /** The GPUs NVML reports ([] when unavailable). */
  nvmlDevices(): string[];
  /** Millijoules summed over the GPUs since their driver loaded. */
  nvmlEnergyMj(): number;

  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: FloatArray, lda: number, B: FloatArray, ldb: number, beta: number, C: FloatArray, ldc: number): void;
  /**
   * gemm with bf16 operands (rounded to nearest even as packed) and fp32 accumulation, on the
   * current bf16 unit; with Float64Array buffers, the float64 reference of the same product. On a
   * matrix unit ('amx', 'avx512bf16') A, B and C may also be bf16 bits (Uint16Array; a bf16 C is
   * rounded once and needs beta 0): the product is the one of their fp32 values.
   */
  gemmBf16(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: FloatArray | Uint16Array, lda: number, B: FloatArray | Uint16Array, ldb: number, beta: number,
    C: FloatArray | Uint16Array, ldc: number): void;
  /**
   * The bf16 matrix units' general GEMM ('amx' | 'avx512bf16'): A, B and C each fp32
   * (Float32Array) or bf16 bits (Uint16Array); a bf16 C is rounded once (beta must be 0);
   * prepackB packs op(B) whole first, as a weight packed once per step is.
   */
  bf16GemmEx(unit: 'amx' | 'avx512bf16', transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array | Uint16Array, lda: number, B: Float32Array | Uint16Array, ldb: number, prepackB: boolean, beta: number,
    C: Float32Array | Uint16Array, ldc: number): void;
  /**
   * The fused MLP's gate/up GEMM with SwiGLU in its epilogue, on the current bf16 unit (a matrix
   * unit: 'amx' or 'avx512bf16'). Wgu (2F, C) = [gate_proj; up_proj]; gate = h Wg^T and up = h Wu^T
   * are rounded to bf16 (the units' SwiGLU reads bf16 gate and up, as bf16 autocast does); act
   * (N, F) = silu(gate) * up of those, gu (N, 2F) = [gate | up]; either output may be null. Each
   * buffer fp32 or bf16 bits (a bf16 act is the fp32 one rounded once; an fp32 gu holds the bf16 values).
   */
  gateUpSwiglu(act: UnitArray | null, gu: UnitArray | null, h: UnitArray, Wgu: UnitArray, N: number, C: number, F: number): void;
  /**
   * Its backward pass on a matrix unit: from gu as gateUpSwiglu writes it (fp32 values rounded to
   * bf16 first) and dact (N, F), dgu (N, 2F) = [dgate | dup] in gu's dtype (bf16: rounded once),
   * which may be gu itself; act (or null) receives gateUpSwiglu's act bit for bit.
   */
  swigluUnitBackward(dgu: UnitArray, act: UnitArray | null, dact: Float32Array, gu: UnitArray, N: number, F: number): void;
  /** y = bf16 bits of x (round to nearest even; NaN stays NaN; subnormals kept). */
  castToBf16(y: Uint16Array, x: FloatArray, n: number): void;
  castFromBf16(y: FloatArray, x: Uint16Array, n: number): void;
  /**
   * y = fp32 values of the IEEE fp16 bits x, exactly (subnormals kept, NaN payloads kept and made
   * quiet): VCVTPH2PS on the avx512 / avx2 paths, the scalar recipe of native/src/kernels/f16.h otherwise.
   */
  castFromF16(y: Float32Array, x: Uint16Array, n: number): void;
  embeddingForward(out: FloatArray, ids: Int32Array, table: FloatArray, N: number, C: number, V: number): void;
  embeddingBackward(dtable: FloatArray, dout: FloatArray, ids: Int32Array, N: number, C: number, V: number): void;
  /** out may be bf16 bits (Uint16Array): the norm rounded once, as a GEMM operand of bf16 training. */
  rmsnormForward(out: FloatArray | Uint16Array, rstd: FloatArray, x: FloatArray, w: FloatArray, N: number, C: number, eps: number): void;
  /** dxBf16: also receives the updated dx rounded to bf16 bits (the next backward GEMMs' operand in bf16 training). */
  rmsnormBackward(dx: FloatArray, dw: FloatArray, dout: FloatArray, x: FloatArray, w: FloatArray, rstd: FloatArray,
    N: number, C: number, dxBf16?: Uint16Array): void;
  ropeTable(cos: FloatArray, sin: FloatArray, T: number, D: number, theta: number): void;
  ropeApply(x: FloatArray, cos: FloatArray, sin: FloatArray, B: number, T: number, H: number, D: number,
    inverse: boolean): void;
  attentionStandardForward(out: FloatArray, probs: FloatArray, q: FloatArray, k: FloatArray, v: FloatArray,
    B: number, T: number, H: number, KVH: number, D: number): void;
  attentionStandardBackward(dq: FloatArray, dk: FloatArray, dv: FloatArray, dout: FloatArray, q: FloatArray,
    k: FloatArray, v: FloatArray, probs: FloatArray, B: number, T: number, H: number, KVH: number, D: number): void;
  /**
   * Flash attention; with bf16 (Float32Array buffers, a matrix unit current: 'amx' or
   * 'avx512bf16') the tile products run on that unit with bf16 operands (q, k, v, dout, P, dS
   * rounded to nearest even) and fp32 accumulation and softmax statistics; otherwise fp32.
   * There q, k and v may be bf16 bits (all three Uint16Arrays): the same results; and out may be
   * bf16 bits, the fp32 output rounded once. Backward reads out as bf16 either way (Di =
   * rowdot(bf16(dout), bf16(out))), so an fp32 and a bf16 out give the same gradients.
   */
  attentionFlashForward(out: FloatArray | Uint16Array, lse: FloatArray, q: FloatArray | Uint16Array, k: FloatArray | Uint16Array,
    v: FloatArray | Uint16Array, B: number, T: number, H: number, KVH: number, D: number, bf16?: boolean): void;
  attentionFlashBackward(dq: FloatArray, dk: FloatArray, dv: FloatArray, dout: FloatArray, q: FloatArray | Uint16Array,
    k: FloatArray | Uint16Array, v: FloatArray | Uint16Array, out: FloatArray | Uint16Array, lse: FloatArray, B: number, T: number,
    H: number, KVH: number, D: number, bf16?: boolean): void;
  /**
   * Fused head + cross-entropy; with dx and dW (both or neither) the backward runs in the same
   * pass. With bf16 on a matrix unit, x and W may be bf16 bits (Uint16Array).
   */
  linearCrossEntropy(dx: FloatArray | null, dW: FloatArray | null, lse: FloatArray, x: FloatArray | Uint16Array, W: FloatArray | Uint16Array,
    targets: Int32Array, N: number, C: number, V: number, dloss: number, bf16?: boolean): number;
  /** out may be bf16 bits (Uint16Array), as in rmsnormForward. */
  addRmsnormForward(resid: FloatArray, out: FloatArray | Uint16Array, rstd: FloatArray, x: FloatArray, y: FloatArray, w: FloatArray,
    N: number, C: number, eps: number): void;
  /** q, k, v may be bf16 bits (all three Uint16Arrays): rounded once, flash attention's operands in bf16 training. */
  ropeQkvSplit(q: FloatArray | Uint16Array, k: FloatArray | Uint16Array, v: FloatArray | Uint16Array, qkv: FloatArray, cos: FloatArray, sin: FloatArray,
    B: number, T: number, H: number, KVH: number, D: number): void;
  /**
   * The fused QKV projection with RoPE and the split in the fp32 GEMM's epilogue: x (B*T, C) times
   * Wqkv ((H + 2 KVH) D, C) = [q_proj; k_proj; v_proj] transposed -> q (B,T,H,D) and k (B,T,KVH,D)
   * rotated as ropeQkvSplit rotates, v copied; the packed rows never stored. bf16: operands
   * rounded to bf16 (as gemmBf16 on the fp32 unit).
   */
  gemmQkvRope(q: FloatArray, k: FloatArray, v: FloatArray, x: FloatArray, Wqkv: FloatArray, cos: FloatArray,
    sin: FloatArray, B: number, T: number, C: number, H: number, KVH: number, D: number, bf16?: boolean): void;
  /**
   * The fused MLP's gate/up projection with SwiGLU in the fp32 GEMM's epilogue: act (N, F) =
   * silu(x Wg^T) * (x Wu^T) and / or gu (N, 2F) = [x Wg^T | x Wu^T] (either null), Wgu (2F, C) =
   * [gate_proj; up_proj]. bf16: operands rounded as gemmBf16 on the fp32 unit (a matrix unit runs
   * gateUpSwiglu).
   */
  gemmSwiglu(act: FloatArray | null, gu: FloatArray | null, x: FloatArray, Wgu: FloatArray, N: number, C: number, F: number,
    bf16?: boolean): void;
  /** dqkv may be bf16 bits (Uint16Array): the backward GEMMs' operand in bf16 training. */
  ropeQkvMerge(dqkv: FloatArray | Uint16Array, dq: FloatArray, dk: FloatArray, dv: FloatArray, cos: FloatArray, sin: FloatArray,
    B: number, T: number, H: number, KVH: number, D: number): void;
  swigluPackedForward(out: FloatArray, gu: FloatArray, N: number, F: number): void;
  /** dgu may be gu itself; act (or null) receives silu(gate) * up, swigluPackedForward's and gemmSwiglu's bits. */
  swigluPackedBackward(dgu: FloatArray, act: FloatArray | null, dout: FloatArray, gu: FloatArray, N: number, F: number): void;
  swigluForward(out: FloatArray, gate: FloatArray, up: FloatArray, n: number): void;
  swigluBackward(dgate: FloatArray, dup: FloatArray, dout: FloatArray, gate: FloatArray, up: FloatArray, n: number): void;
  crossEntropyForward(lse: FloatArray, logits: FloatArray, targets: Int32Array, N: number, V: number): number;
  crossEntropyBackward(dlogits: FloatArray, logits: FloatArray, lse: FloatArray, targets: Int32Array, N: number,
    V: number, dloss: number): void;
  /** pBf16: also receives the updated p rounded to bf16 bits, in the same pass (bf16 training's working copy). */
  adamw(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, lr: number, beta1: number,
    beta2: number, eps: number, wd: number, step: number, gscale: number, pBf16?: Uint16Array): void;
  sumSquares(x: FloatArray, n: number): number;
  addInplace(y: FloatArray, x: FloatArray, n: number): void;
  scaleInplace(y: FloatArray, s: number, n: number): void;
  fill(y: FloatArray, value: number, n: number): void;
  randn(y: FloatArray, n: number, seed: number, mean: number, std: number): void;
  // ---- decoding with a KV cache (native/src/kernels/decode.cc, used by src/infer/) ----
  /** y(N) = W(N,K) x(K) + beta y; W read once in place (a projection at one position). beta 0 never reads y. */
  gemv(y: FloatArray, W: FloatArray, x: FloatArray, N: number, K: number, beta: number): void;
  /**
   * One position's packed q/k/v row ((H + 2 KVH) D) -> q (H, D) rotated at `pos`; k rotated and v
   * copied into row `pos` of kcache, vcache (Tmax, KVH, D). cos, sin: ropeTable rows >= pos + 1.
   */
  ropeQkvDecode(q: FloatArray, kcache: FloatArray, vcache: FloatArray, qkv: FloatArray, cos: FloatArray, sin: FloatArray,
    pos: number, H: number, KVH: number, D: number): void;
  /** out (H, D): attention of one query position q (H, D) over rows 0..Tk-1 of kcache, vcache (Tmax, KVH, D); GQA. */
  attentionDecode(out: FloatArray, q: FloatArray, kcache: FloatArray, vcache: FloatArray, Tk: number, H: number,
    KVH: number, D: number): void;
}

function load(): NativeAddon {
  // dist/src/kernels/native.js -> package root is three levels up.
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const candidates = ['build/Release/litespark.node', 'build/Debug/litespark.node'].map((p) => join(root, p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `litespark: the native addon is not built (looked for ${candidates[0]}). ` +
        'Run `npm ci` (or `npm run build:native`) in the package directory; it needs python3, make, ' +
        'a C++17 compiler with OpenMP (g++) and the Node.js headers.',
    );
  }
  const require = createRequire(import.meta.url);
  return require(found) as NativeAddon;
}

/** The addon, loaded once per process. */
export const native: NativeAddon = load();
