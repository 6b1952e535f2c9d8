// What `litespark bench` measures: the BENCH.md reference configurations by name, the kernel
// paths and dtypes a row can use, and the shape of the rows it writes (the `bench --json`
// contract of DESIGN.md: config, kernels, dtype, threads, tokens_per_s, step_ms_median, mfu,
// peak_bytes, joules_per_token, energy_source, and more).
import { ConfigError, RECOMPUTE } from '../config/schema.js';
import { PRESET_NAMES, isPresetName, type PresetName } from '../config/presets.js';

/** BENCH.md rows -> the presets that hold their shapes (src/config/presets.ts). */
export const BENCH_CONFIGS = { XS: 'bench-xs', S: 'bench-s', L: 'bench-l' } as const satisfies Record<string, PresetName>;
export type BenchConfigName = keyof typeof BENCH_CONFIGS;

/** Kernel paths a row can run: the baseline every speed-up is measured against, and the fused one. */
export const KERNEL_PATHS = ['standard', 'litespark'] as const;
export type KernelPath = (typeof KERNEL_PATHS)[number];

/** fp32, and bf16 mixed precision (matrix products on the best bf16 unit of the CPU). */
export const BENCH_DTYPES = ['fp32', 'bf16'] as const;
export type BenchDtype = (typeof BENCH_DTYPES)[number];

/** Activation checkpointing modes a row can run (`--recompute`, as `litespark train`). */
export const RECOMPUTE_MODES = RECOMPUTE;
export type RecomputeMode = (typeof RECOMPUTE_MODES)[number];

/** A config chosen on the command line: its BENCH.md name (or a preset name) and its preset. */
export interface BenchConfig {
  name: string;
  preset: PresetName;
}

function splitList(flag: string, value: string): string[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new ConfigError(`bench: ${flag} is empty`);
  return [...new Set(items)];
}

/**
 * `--configs XS,S,L`: BENCH.md names (any case) or, for quick experiments, any preset name
 * (`--configs nano`). Throws ConfigError naming the unknown entry.
 */
export function parseConfigs(value: string): BenchConfig[] {
  return splitList('--configs', value).map((item) => {
    const upper = item.toUpperCase();
    if (Object.hasOwn(BENCH_CONFIGS, upper)) return { name: upper, preset: BENCH_CONFIGS[upper as BenchConfigName] };
    if (isPresetName(item)) return { name: item, preset: item };
    throw new ConfigError(
      `bench: unknown config '${item}' in --configs (known: ${Object.keys(BENCH_CONFIGS).join(', ')}, ` +
        `or a preset: ${PRESET_NAMES.join(', ')})`,
    );
  });
}

/** `--kernels standard,litespark`. Throws ConfigError naming the unknown entry. */
export function parseKernels(value: string): KernelPath[] {
  return splitList('--kernels', value).map((item) => {
    if ((KERNEL_PATHS as readonly string[]).includes(item)) return item as KernelPath;
    throw new ConfigError(`bench: unknown kernels '${item}' in --kernels (known: ${KERNEL_PATHS.join(', ')})`);
  });
}

/** `--dtype fp32,bf16`. Throws ConfigError naming the unknown entry. */
export function parseDtypes(value: string): BenchDtype[] {
  return splitList('--dtype', value).map((item) => {
    if ((BENCH_DTYPES as readonly string[]).includes(item)) return item as BenchDtype;
    throw new ConfigError(`bench: unknown dtype '${item}' in --dtype (known: ${BENCH_DTYPES.join(', ')})`);
  });
}

/** `--recompute none,full`. Throws ConfigError naming the unknown entry. */
export function parseRecompute(value: string): RecomputeMode[] {
  return splitList('--recompute', value).map((item) => {
    if ((RECOMPUTE_MODES as readonly string[]).includes(item)) return item as RecomputeMode;
    throw new ConfigError(`bench: unknown recompute mode '${item}' in --recompute (known: ${RECOMPUTE_MODES.join(', ')})`);
  });
}

/** Fields every row carries, whole-step or per-kernel. */
interface RowBase {
  config: string;
  kernels: string;
  dtype: string;
  threads: number;
  isa: string | null;
  cpu: string | null;
  commit: string | null;
  node: string;
  /** 1-minute load average when the row finished: above the thread count, others shared the cores. */
  loadavg_1m: number | null;
  /** False when the row crashed or threw; `error` says why and the figures are null. */
  ok: boolean;
  error: string | null;
}

/** One full training step row (forward + backward + AdamW), BENCH.md protocol. */
export interface StepRow extends RowBase {
  kind: 'step';
  /** Activation checkpointing mode; present only when the run was asked for recompute rows (`--recompute`). */
  recompute?: RecomputeMode;
  tokens_per_s: number | null;
  step_ms_median: number | null;
  step_ms_min: number | null;
  step_ms_max: number | null;
  /** Measured steps (after `warmup` unmeasured ones). */
  steps: number;
  warmup: number;
  /** What ran the matrix products: 'fp32' (FMA), or for bf16 rows the bf16 unit ('amx', 'avx512bf16', 'fp32'). */
  matmul_unit?: string;
  /** Model FLOP/s over the measured peak of that unit (fp32 FMA, or the bf16 unit's) at this thread count; null when unknown. */
  mfu: number | null;
  peak_gflops: number | null;
  /** Peak resident set size of the row's own process. */
  peak_bytes: number | null;
  /** The framework's own count: native storage high-water mark + live kernel workspaces. */
  native_peak_bytes: number | null;
  /**
   * What the trainer's memory report (src/metrics/memory.ts) says this run holds: beside
   * native_peak_bytes it shows how much the report leaves out (the kernels' per-thread blocks).
   */
  model_bytes: number | null;
  /** Saved activations of one step (what grows with batch, sequence and depth). */
  activation_bytes: number | null;
  /** Energy of the measured steps / their tokens, from the run's one meter (src/metrics/energy.ts); null when none could be read. */
  joules_per_token: number | null;
  /** 'measured: <source>' or 'estimated: <source>' (as metrics.jsonl), or 'none' (with why, when a meter failed). */
  energy_source: string;
  tokens_per_step: number;
  flops_per_token: number;
  params: number;
  /** tokens_per_s of this row over the standard row of the same config and dtype (litespark rows). */
  speedup: number | null;
  /** Loss of the last measured step: a sanity check that the step computed something finite. */
  loss: number | null;
  /** Recompute rows other than 'none': tokens_per_s over the 'none' row of the same config, kernels and dtype. */
  recompute_speed?: number | null;
  /** Recompute rows other than 'none': activation_bytes over the 'none' row's. */
  recompute_memory?: number | null;
  /**
   * bf16 rows of a run that has fp32 rows too (`--dtype fp32,bf16`): tokens_per_s over the fp32 row
   * of the same config, kernels and recompute mode (issue targets compare bf16 with fp32 in one run).
   */
  vs_fp32?: number | null;
}

/** One kernel measurement of `--kernels-only`. */
export interface KernelRow extends RowBase {
  kind: 'kernel';
  /** gemm | attention | mlp | loss */
  group: string;
  /** e.g. 'q_proj/o_proj fwd', 'attention bwd', 'mlp fwd', 'loss fwd+bwd'. */
  op: string;
  /** Readable shape, e.g. 'M=2048 N=512 K=512 NT' or 'B=4 T=512 H=8 KVH=4 D=64'. */
  shape: string;
  ms_median: number | null;
  ms_min: number | null;
  ms_max: number | null;
  /** FLOP/s of the op (GEMMs: 2MNK; others: their GEMM/attention FLOPs), in GFLOP/s. */
  gflops: number | null;
  /** GEMM rows: gflops / measured peak. */
  peak_fraction: number | null;
  /** Fused rows: standard ms / fused ms of the same op. */
  speedup: number | null;
  /** Bytes the op keeps for backward (attention: probabilities vs log-sum-exp), when meaningful. */
  saved_bytes: number | null;
}

export type BenchRow = StepRow | KernelRow;
