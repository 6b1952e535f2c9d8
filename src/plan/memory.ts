// Memory per device for `litespark plan`: the trainer's memory model (src/metrics/memory.ts,
// held equal to the real allocation by test/metrics/memory.test.ts) plus what it does not model
// at this level: the mixed-precision layout of a GPU run and ZeRO-1 sharding.
//
// Two layouts:
//   'trainer'  what litespark's trainer allocates today (memoryModel exactly): fp32 parameters
//              (the master copy), fp32 gradients, two fp32 AdamW moments, fp32 activations; bf16
//              on a CPU with a bf16 matrix unit adds the weights' bf16 working copy and keeps the
//              fused path's GEMM-only operands in bf16 (bf16Operands), on the fp32 unit it changes
//              none of these buffers. Used for `cpu` and for every fp32 plan.
//   'mixed'    the usual bf16 mixed precision of a GPU run (the ZeRO paper's 2 + 2 + 12 bytes per
//              parameter): bf16 working weights and gradients, fp32 master weights and the two
//              fp32 moments in the optimizer state, activations and workspace in bf16 (the same
//              element counts as memoryModel at 2 bytes; its O(N) rstd / lse rows counted at 2
//              too, under 1% of the activations at any real width), and the fused head's chunk of
//              bf16 logits as the CPU's bf16 head holds it (HEAD_ROWS.bf16 rows).
// ZeRO-1 divides the optimizer state (and, in 'mixed', the fp32 master) over the data-parallel
// ranks, rounded up to whole elements per rank.
import type { LlamaConfig } from '../model/params.js';
import { HEAD_ROWS, memoryModel, paramStoreElements, stepElements, type MemoryKernels, type MemoryRecompute, type MemoryReport } from '../metrics/memory.js';

export type PlanLayout = 'trainer' | 'mixed';

export interface PlanMemoryOptions {
  /** Micro-batch (sequences) and sequence length. */
  B: number;
  T: number;
  kernels: MemoryKernels;
  dtype: 'fp32' | 'bf16';
  recompute: MemoryRecompute;
  layout: PlanLayout;
  /** 0 or 1. */
  zero: 0 | 1;
  /** Data-parallel ranks (ZeRO-1 shards over them). */
  ranks: number;
  /** 'trainer' layout in bf16: GEMM operands kept in bf16 (memoryModel's bf16Operands; the CPU has a matrix unit). */
  bf16Operands?: boolean;
}

/**
 * Bytes per device by kind: the trainer's report (parameters = working weights, fp32 or bf16;
 * optimizer = AdamW moments, + fp32 master weights when mixed, after ZeRO-1 sharding).
 */
export type PlanMemory = MemoryReport;

/** Bytes of one gradient element and of one working-weight element in a layout. */
export function elementBytes(layout: PlanLayout): { weight: number; grad: number } {
  return layout === 'mixed' ? { weight: 2, grad: 2 } : { weight: 4, grad: 4 };
}

export function planMemory(c: LlamaConfig, o: PlanMemoryOptions): PlanMemory {
  const shard = (bytesPerElement: number) => {
    const E = paramStoreElements(c);
    return (o.zero === 1 ? Math.ceil(E / o.ranks) : E) * bytesPerElement;
  };
  let r: Omit<PlanMemory, 'total'>;
  if (o.layout === 'trainer') {
    const m = memoryModel(c, { B: o.B, T: o.T, kernels: o.kernels, dtype: o.dtype, recompute: o.recompute, bf16Operands: o.bf16Operands });
    r = { parameters: m.parameters, gradients: m.gradients, optimizer: o.zero === 1 ? shard(8) : m.optimizer, activations: m.activations, workspace: m.workspace, scratch: m.scratch };
  } else {
    const E = paramStoreElements(c);
    const step = stepElements(c, { B: o.B, T: o.T, kernels: o.kernels, recompute: o.recompute });
    // the head's chunk in bf16, as the CPU's bf16 head holds it (no packed weights on a GPU)
    const R = Math.min(o.B * o.T, HEAD_ROWS.bf16);
    r = { parameters: 2 * E, gradients: 2 * E, optimizer: shard(12), activations: 2 * step.activations, workspace: 2 * step.workspace,
      scratch: o.kernels === 'litespark' ? 2 * R * c.vocab_size : 0 };
  }
  return { ...r, total: r.parameters + r.gradients + r.optimizer + r.activations + r.workspace + r.scratch };
}

/**
 * The largest micro-batch whose total fits in `capacity` bytes (0 when even B = 1 does not);
 * memory grows monotonically with B, so a doubling then a bisection finds it. Capped at `cap`.
 */
export function largestMicroBatch(c: LlamaConfig, o: Omit<PlanMemoryOptions, 'B'>, capacity: number, cap = 1 << 20): number {
  const fits = (B: number) => planMemory(c, { ...o, B }).total <= capacity;
  if (!fits(1)) return 0;
  let lo = 1, hi = 2;
  while (hi <= cap && fits(hi)) [lo, hi] = [hi, hi * 2];
  if (hi > cap) return Math.min(lo, cap);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
