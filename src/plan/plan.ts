// `litespark plan`: what a pre-training run costs before the cluster is rented. Pure arithmetic
// over the config, the accelerator's figures and an MFU; nothing is allocated or measured here.
//
//   FLOPs per token  6·P + 12·L·d·T (src/metrics/flops.ts, BENCH.md): P the non-embedding weights
//                    with the output head, L layers, d width, T sequence length.
//   tokens/s         devices × peak × MFU ÷ FLOPs per token (MFU is end to end: whatever
//                    communication the run did not hide is already inside it).
//   step             global batch tokens ÷ tokens/s.
//   energy           device watts × devices × time: an estimate from the datasheet TDP (or
//                    --device-watts), devices only (no host CPUs, network, cooling).
//   communication    data parallel over ranks = nodes × devices per node, once per optimizer
//                    step (accumulation steps reduce nothing). Ring all-reduce: each rank sends
//                    2·(n−1)/n × gradient bytes; ZeRO-1: a reduce-scatter of the gradients
//                    ((n−1)/n × gradient bytes) then an all-gather of the updated weights
//                    ((n−1)/n × weight bytes). Time at --link-gbps per device and direction (the
//                    ring runs at its slowest link: the network between nodes).
//   hiding           assumption: bucketed reduction overlaps the backward pass of the last
//                    micro-batch (DESIGN.md), i.e. 2/3 of that micro-batch's compute time
//                    (backward ≈ 2 × forward); communication longer than that is exposed.
import { ConfigError, type ModelConfig } from '../config/schema.js';
import { flopsPerToken, parameterCounts } from '../metrics/flops.js';
import { paramStoreElements, type MemoryKernels, type MemoryRecompute } from '../metrics/memory.js';
import { native } from '../kernels/native.js';
import type { Device } from './accelerators.js';
import { elementBytes, largestMicroBatch, planMemory, type PlanLayout, type PlanMemory } from './memory.js';

export interface MfuSource {
  /** e.g. 'given', 'litespark (bench)', 'standard (bench)'. */
  label: string;
  mfu: number;
  /** Where the figure came from, in words. */
  source: string;
}

export interface PlanInput {
  /** Preset or config name, for the printout. */
  name: string;
  model: ModelConfig;
  seqLen: number;
  /** Global batch in sequences (per optimizer step, all ranks). */
  globalBatch: number;
  microBatch: number;
  nodes: number;
  devicesPerNode: number;
  device: Device;
  dtype: 'bf16' | 'fp32';
  kernels: MemoryKernels;
  recompute: MemoryRecompute;
  zero: 0 | 1;
  layout: PlanLayout;
  mfus: MfuSource[];
  /** Tokens to train; null: per-day figures only. */
  tokens: number | null;
  linkGbps: number;
  /** What the link is, in words (e.g. 'NVLink, one node'); printed beside its bandwidth. */
  linkNote?: string;
}

export interface PlanScenario extends MfuSource {
  tokensPerSecond: number;
  tokensPerSecondPerDevice: number;
  tokensPerDay: number;
  stepSeconds: number;
  /** The backward of the last micro-batch: the window communication can hide in. */
  overlapSeconds: number;
  commHidden: boolean;
  exposedCommSeconds: number;
  /** Device energy per token (J) and per day (kWh); null without a power figure. */
  joulesPerToken: number | null;
  kWhPerDay: number | null;
  /** Null without --tokens. */
  train: { tokens: number; seconds: number; days: number; joules: number | null; kWh: number | null } | null;
}

export interface Plan {
  name: string;
  model: { parameters: number; nonEmbedding: number; flopsPerToken: number; layers: number; hidden: number };
  job: {
    nodes: number; devicesPerNode: number; devices: number; ranks: number;
    seqLen: number; globalBatch: number; globalBatchTokens: number; microBatch: number; gradAccum: number;
    dtype: 'bf16' | 'fp32'; kernels: MemoryKernels; recompute: MemoryRecompute; zero: 0 | 1; layout: PlanLayout;
    /** The trainer layout in bf16 on a CPU with a bf16 matrix unit: a bf16 weight copy and bf16 matrix-product operands. */
    bf16Operands: boolean;
  };
  device: Device;
  memory: PlanMemory & { capacity: number; fits: boolean; largestMicroBatch: number };
  comm: {
    /** 'none' on one rank. */
    kind: 'none' | 'ring all-reduce' | 'reduce-scatter + all-gather';
    /** Gradient bytes of one rank (all parameters, once per step). */
    gradientBytes: number;
    /** Bytes each rank sends (and receives) per optimizer step. */
    bytesPerStep: number;
    linkGbps: number;
    linkNote: string;
    seconds: number;
  };
  scenarios: PlanScenario[];
}

/** Throws a ConfigError naming `flag` unless `v` is a finite number > 0 (and an integer when asked). */
export function requirePositive(flag: string, v: number, integer = false): number {
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new ConfigError(`plan: ${flag} must be a positive ${integer ? 'integer' : 'number'} (got ${Number.isNaN(v) ? 'not a number' : v})`);
  }
  return v;
}

/** Ring all-reduce: bytes each of `n` ranks sends for `bytes` of gradients. */
export function ringAllReduceBytes(n: number, bytes: number): number {
  return n <= 1 ? 0 : (2 * (n - 1) / n) * bytes;
}

/** ZeRO-1: reduce-scatter of the gradients, then all-gather of the updated weights. */
export function zero1Bytes(n: number, gradBytes: number, weightBytes: number): number {
  return n <= 1 ? 0 : ((n - 1) / n) * (gradBytes + weightBytes);
}

/** Tokens/s of the whole job at `mfu`: devices × peak × MFU ÷ FLOPs per token. */
export function jobTokensPerSecond(devices: number, peakFlops: number, mfu: number, fpt: number): number {
  return (devices * peakFlops * mfu) / fpt;
}

export function makePlan(p: PlanInput): Plan {
  requirePositive('--nodes', p.nodes, true);
  requirePositive('--devices-per-node', p.devicesPerNode, true);
  requirePositive('--seq-len', p.seqLen, true);
  requirePositive('--global-batch', p.globalBatch, true);
  requirePositive('--micro-batch', p.microBatch, true);
  requirePositive('--link-gbps', p.linkGbps);
  if (p.tokens !== null) requirePositive('--tokens', p.tokens);
  for (const m of p.mfus) {
    if (!Number.isFinite(m.mfu) || m.mfu <= 0 || m.mfu > 1) throw new ConfigError(`plan: --mfu must be in (0, 1] (got ${m.mfu} from ${m.source})`);
  }
  const devices = p.nodes * p.devicesPerNode;
  const ranks = devices;
  const perStep = ranks * p.microBatch;
  if (p.globalBatch % perStep !== 0) {
    throw new ConfigError(`plan: --global-batch ${p.globalBatch} sequences is not a multiple of ranks × micro-batch = ${ranks} × ${p.microBatch} = ${perStep}`);
  }
  const gradAccum = p.globalBatch / perStep;
  const counts = parameterCounts(p.model);
  const fpt = flopsPerToken(p.model, p.seqLen);

  // the trainer layout is this machine's trainer: bf16 keeps its GEMM operands in bf16 where this CPU has a matrix unit
  const bf16Operands = p.layout === 'trainer' && p.dtype === 'bf16' && native.bf16Unit() !== 'fp32';
  const memOpts = { T: p.seqLen, kernels: p.kernels, dtype: p.dtype, recompute: p.recompute, layout: p.layout, zero: p.zero, ranks, bf16Operands };
  const mem = planMemory(p.model, { ...memOpts, B: p.microBatch });
  const capacity = p.device.memoryBytes;

  const E = paramStoreElements(p.model);
  const eb = elementBytes(p.layout);
  const gradientBytes = E * eb.grad;
  const bytesPerStep = p.zero === 1 ? zero1Bytes(ranks, gradientBytes, E * eb.weight) : ringAllReduceBytes(ranks, gradientBytes);
  const commSeconds = (bytesPerStep * 8) / (p.linkGbps * 1e9);
  const globalBatchTokens = p.globalBatch * p.seqLen;

  const scenarios = p.mfus.map((m): PlanScenario => {
    const tps = jobTokensPerSecond(devices, p.device.peakFlops, m.mfu, fpt);
    const stepSeconds = globalBatchTokens / tps;
    const overlapSeconds = (2 / 3) * (stepSeconds / gradAccum);
    const watts = p.device.watts === null ? null : p.device.watts * devices;
    const seconds = p.tokens === null ? 0 : p.tokens / tps;
    return {
      ...m,
      tokensPerSecond: tps,
      tokensPerSecondPerDevice: tps / devices,
      tokensPerDay: tps * 86400,
      stepSeconds,
      overlapSeconds,
      commHidden: commSeconds <= overlapSeconds,
      exposedCommSeconds: Math.max(0, commSeconds - overlapSeconds),
      joulesPerToken: watts === null ? null : watts / tps,
      kWhPerDay: watts === null ? null : (watts * 86400) / 3.6e6,
      train: p.tokens === null ? null : {
        tokens: p.tokens, seconds, days: seconds / 86400,
        joules: watts === null ? null : watts * seconds,
        kWh: watts === null ? null : (watts * seconds) / 3.6e6,
      },
    };
  });

  return {
    name: p.name,
    model: { parameters: counts.total, nonEmbedding: counts.nonEmbedding, flopsPerToken: fpt, layers: p.model.num_hidden_layers, hidden: p.model.hidden_size },
    job: {
      nodes: p.nodes, devicesPerNode: p.devicesPerNode, devices, ranks, seqLen: p.seqLen,
      globalBatch: p.globalBatch, globalBatchTokens, microBatch: p.microBatch, gradAccum,
      dtype: p.dtype, kernels: p.kernels, recompute: p.recompute, zero: p.zero, layout: p.layout,
      bf16Operands: bf16Operands && p.kernels === 'litespark',
    },
    device: p.device,
    memory: { ...mem, capacity, fits: mem.total <= capacity, largestMicroBatch: largestMicroBatch(p.model, memOpts, capacity) },
    comm: {
      kind: ranks <= 1 ? 'none' : p.zero === 1 ? 'reduce-scatter + all-gather' : 'ring all-reduce',
      gradientBytes, bytesPerStep, linkGbps: p.linkGbps, linkNote: p.linkNote ?? '', seconds: commSeconds,
    },
    scenarios,
  };
}
