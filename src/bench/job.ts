// The message a bench worker process receives (as one JSON argument) and the lines it prints.
import type { EnergyMeterSpec } from '../metrics/energy.js';
import type { BenchDtype, BenchRow, KernelPath, RecomputeMode } from './spec.js';

/** What every worker job carries. */
interface JobBase {
  /** Name shown in the row (XS, S, L or a preset name). */
  config: string;
  preset: string;
  dtype: BenchDtype;
  threads: number;
  steps: number;
  warmup: number;
  seed: number;
  /** The parent's measured peak (GFLOP/s) so every row of a run shares one denominator. */
  peakGflops: number | null;
  commit: string | null;
  /** The parent's energy meter, opened again in the worker: every row of a run uses the same one (absent: no J/token). */
  energy?: EnergyMeterSpec;
}

export interface StepJob extends JobBase {
  mode: 'step';
  kernels: KernelPath;
  /** Activation checkpointing; absent = 'none' with no `recompute` field in the row. */
  recompute?: RecomputeMode;
}

export interface KernelsJob extends JobBase {
  mode: 'kernels';
  /** Kernel paths to compare; GEMM rows are shared by both. */
  kernels: KernelPath[];
}

export type BenchJob = StepJob | KernelsJob;

/** Worker stdout, one JSON object per line. */
export type WorkerEvent =
  | { event: 'progress'; done: number; total: number; what: string }
  | { event: 'rows'; rows: BenchRow[] };
