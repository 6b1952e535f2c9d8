// `litespark bench`, the orchestration: one child process per (config, kernels, dtype) row —
// per config with --kernels-only — run one after another (never side by side: they would share
// the cores they measure), the litespark/standard speed-up computed from rows of the same run,
// and the rows written as JSON (rows.json, and --json FILE) and Markdown (results.md).
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native, type Bf16Unit } from '../kernels/native.js';
import { machineInfo } from '../metrics/machine.js';
import { getPeak } from '../metrics/peak.js';
import { describeMeter, openEnergyMeter, type EnergyMeterSpec } from '../metrics/energy.js';
import type { BenchJob, KernelsJob, StepJob, WorkerEvent } from './job.js';
import { markdownReport } from './report.js';
import type { BenchConfig, BenchDtype, BenchRow, KernelPath, KernelRow, RecomputeMode, StepRow } from './spec.js';
import { failureReason, gitCommit } from './util.js';

export interface BenchOptions {
  configs: BenchConfig[];
  kernels: KernelPath[];
  dtypes: BenchDtype[];
  /** Activation checkpointing modes, one row each; absent: rows as before, without a `recompute` field. */
  recomputes?: RecomputeMode[];
  /** Measured steps (kernel runs with kernelsOnly). */
  steps: number;
  warmup: number;
  /** Threads per row; 0 = all cores. */
  threads: number;
  kernelsOnly: boolean;
  /** Results directory; default runs/bench-<timestamp>. */
  out?: string;
  /** Extra copy of the rows as a JSON array. */
  json?: string;
  seed?: number;
  /** Power draw for the J/token estimate (W x wall time) when no counter is readable. */
  watts?: number;
}

/** What every figure of the run was measured on (the head of results.md). */
export interface BenchMachine {
  cpu: string;
  cores: number;
  threads: number;
  isa: string;
  available_isas: string[];
  amx: boolean;
  avx512_bf16: boolean;
  peak_gflops: number | null;
  peak_measured_at: string | null;
  peak_cached: boolean;
  /** The unit bf16 rows run their matrix products on, and its measured peak (when bf16 rows run). */
  bf16_unit: string | null;
  bf16_peak_gflops: number | null;
  date: string;
  commit: string | null;
  dirty: boolean | null;
  node: string;
  platform: string;
  /** 1-minute load average before the first row (a shared machine's noise, in one number). */
  loadavg_1m: number;
  /** The energy meter every row of the run uses (opened again in each worker), and the line that says why others were not. */
  energy_meter: EnergyMeterSpec;
  energy: string;
  /** What recheckPeaks did after the rows ran (a peak measured again), for the reports; empty when nothing. */
  peak_notes: string[];
}

export interface BenchResult {
  machine: BenchMachine;
  options: { steps: number; warmup: number; kernelsOnly: boolean };
  rows: BenchRow[];
  outDir: string;
  jsonFiles: string[];
  markdownFile: string;
}

export interface BenchHooks {
  /** A row (job) starts: index from 0, how many, its label. */
  onJobStart?(index: number, total: number, label: string): void;
  /** Progress inside the running job (steps, or kernel ops). */
  onProgress?(done: number, total: number, what: string): void;
  /** A job finished with these rows (failed rows included). */
  onJobEnd?(rows: BenchRow[]): void;
}

/** dist/src/bench/worker.js, next to this file. */
export const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'worker.js');

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** A row that did not run: the error, null figures. */
export function failedStepRow(job: StepJob, error: string): StepRow {
  return {
    kind: 'step', config: job.config, kernels: job.kernels, dtype: job.dtype, ...(job.recompute ? { recompute: job.recompute } : {}),
    threads: job.threads, isa: null, cpu: null,
    commit: job.commit, node: process.version, loadavg_1m: os.loadavg()[0]!, ok: false, error,
    tokens_per_s: null, step_ms_median: null, step_ms_min: null, step_ms_max: null, steps: job.steps, warmup: job.warmup,
    mfu: null, peak_gflops: job.peakGflops, peak_bytes: null, native_peak_bytes: null, model_bytes: null, activation_bytes: null,
    joules_per_token: null, energy_source: 'none', tokens_per_step: 0, flops_per_token: 0, params: 0, speedup: null, loss: null,
  };
}

function failedKernelsRow(job: KernelsJob, error: string): KernelRow {
  return {
    kind: 'kernel', config: job.config, kernels: job.kernels.join(','), dtype: job.dtype, threads: job.threads, isa: null,
    cpu: null, commit: job.commit, node: process.version, loadavg_1m: os.loadavg()[0]!, ok: false, error, group: '*', op: 'all kernels', shape: '',
    ms_median: null, ms_min: null, ms_max: null, gflops: null, peak_fraction: null, speedup: null, saved_bytes: null,
  };
}

/**
 * Runs one job in its own Node process and returns its rows. Never throws: a crash, a signal or
 * unreadable output becomes the job's failed row with the reason.
 */
export function runJob(job: BenchJob, onProgress?: BenchHooks['onProgress']): Promise<BenchRow[]> {
  const fail = (error: string): BenchRow[] => [job.mode === 'step' ? failedStepRow(job, error) : failedKernelsRow(job, error)];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let rows: BenchRow[] | null = null;
    let pending = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        try {
          const e = JSON.parse(line) as WorkerEvent;
          if (e.event === 'progress') onProgress?.(e.done, e.total, e.what);
          else if (e.event === 'rows') rows = e.rows;
        } catch {
          // not one of ours (a stray log line): ignore
        }
      }
    });
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-8192);
    });
    child.on('error', (e) => resolve(fail(`could not start the worker: ${e.message}`)));
    child.on('close', (code, signal) => {
      const why = failureReason(stderr);
      if (rows && code === 0) return resolve(rows);
      if (signal) {
        const hint = signal === 'SIGKILL' ? ' (out of memory?)' : '';
        return resolve(fail(`worker killed by ${signal}${hint}${why ? `: ${why}` : ''}`));
      }
      resolve(fail(why || `worker exited with code ${code} and no result`));
    });
  });
}

/** Speed-up of each litespark row over the standard row of the same config, dtype and recompute mode. */
export function fillSpeedups(rows: BenchRow[]): void {
  for (const r of rows) {
    if (r.kind !== 'step' || r.kernels !== 'litespark' || !r.ok || r.tokens_per_s === null) continue;
    const std = rows.find((s): s is StepRow =>
      s.kind === 'step' && s.kernels === 'standard' && s.config === r.config && s.dtype === r.dtype && s.recompute === r.recompute && s.ok);
    if (std?.tokens_per_s) r.speedup = r.tokens_per_s / std.tokens_per_s;
  }
}

/** Each recompute row's speed and activation memory relative to the 'none' row of the same config, kernels and dtype. */
export function fillRecomputeRatios(rows: BenchRow[]): void {
  for (const r of rows) {
    if (r.kind !== 'step' || r.recompute === undefined || r.recompute === 'none') continue;
    const base = rows.find((s): s is StepRow =>
      s.kind === 'step' && s.recompute === 'none' && s.config === r.config && s.kernels === r.kernels && s.dtype === r.dtype && s.ok);
    const ratio = (a: number | null, b: number | null | undefined) => (r.ok && a !== null && b ? a / b : null);
    r.recompute_speed = ratio(r.tokens_per_s, base?.tokens_per_s);
    r.recompute_memory = ratio(r.activation_bytes, base?.activation_bytes);
  }
}

/** With fp32 and bf16 rows in one run: each bf16 row's tokens/s over the fp32 row of the same config, kernels and recompute mode. */
export function fillDtypeRatios(rows: BenchRow[]): void {
  const steps = rows.filter((r): r is StepRow => r.kind === 'step');
  if (!steps.some((r) => r.dtype === 'fp32') || !steps.some((r) => r.dtype === 'bf16')) return;
  for (const r of steps) {
    if (r.dtype !== 'bf16') continue;
    const fp32 = steps.find((s) => s.dtype === 'fp32' && s.config === r.config && s.kernels === r.kernels && s.recompute === r.recompute && s.ok);
    r.vs_fp32 = r.ok && r.tokens_per_s !== null && fp32?.tokens_per_s ? r.tokens_per_s / fp32.tokens_per_s : null;
  }
}

/** The machine header: CPU, threads, ISA path, measured peak (cached per machine), date, commit. */
export function describeBenchMachine(threads: number, dtypes: readonly BenchDtype[] = ['fp32'], watts?: number): BenchMachine {
  const m = machineInfo();
  const peak = getPeak({ threads });
  const bf16 = dtypes.includes('bf16') ? getPeak({ threads, dtype: 'bf16' }) : null;
  const git = gitCommit();
  const energy = openEnergyMeter(watts ? { watts } : {});
  return {
    cpu: m.cpuModel, cores: m.cores, threads, isa: native.isa(), available_isas: m.availableIsas,
    amx: m.features.amx_tile, avx512_bf16: m.features.avx512_bf16,
    peak_gflops: peak.gflops > 0 ? peak.gflops : null, peak_measured_at: peak.measuredAt, peak_cached: peak.cached,
    bf16_unit: bf16 ? bf16.unit : null, bf16_peak_gflops: bf16 && bf16.gflops > 0 ? bf16.gflops : null,
    date: new Date().toISOString(), commit: git.commit, dirty: git.dirty, node: process.version,
    platform: `${os.platform()} ${os.release()}`, loadavg_1m: os.loadavg()[0]!,
    energy_meter: energy.spec, energy: describeMeter(energy), peak_notes: [],
  };
}

/**
 * No row runs faster than its unit can: a row at 100% MFU or more, or a GEMM at 100% of the peak
 * or more, most likely means the peak it was divided by (cached, or measured at the start of the
 * run) was measured while other work held the cores of this shared machine. That dtype's peak is then
 * measured again, once (`litespark peak --remeasure`: the cache is rewritten), and where the new
 * peak is higher the dtype's rows and the machine header take it. (BENCH.md's 12·L·d·T counts the
 * whole T x T attention a causal kernel half skips, so at long sequences MFU could pass 100% on a
 * true peak: a higher peak is then not found, and the rows stand as measured.) Returns the notes
 * it added to machine.peak_notes.
 */
export function recheckPeaks(machine: BenchMachine, rows: BenchRow[], cacheDir?: string): string[] {
  const notes: string[] = [];
  for (const dtype of ['fp32', 'bf16'] as const) {
    const old = peakFor(machine, dtype);
    if (old === null) continue;
    const mine = rows.filter((r) => r.dtype === dtype);
    const over = mine.filter((r) => ((r.kind === 'step' ? r.mfu : r.peak_fraction) ?? 0) >= 1);
    if (!over.length) continue;
    const unit = dtype === 'bf16' ? (machine.bf16_unit as Bf16Unit) : undefined;
    const fresh = getPeak({ threads: machine.threads, dtype, unit, remeasure: true, ...(cacheDir ? { cacheDir } : {}) });
    const what = `${dtype} peak ${old.toFixed(1)} GFLOP/s was below what ${over.length} row(s) reached (` +
      over.map((r) => (r.kind === 'step' ? `${r.config} ${r.kernels}: MFU ${(100 * r.mfu!).toFixed(1)}%` : `${r.config} ${r.op}: ${(100 * r.peak_fraction!).toFixed(1)}%`)).slice(0, 3).join(', ') + ')';
    if (!(fresh.gflops > old)) {
      notes.push(`${what}; measured again after the rows: ${fresh.gflops.toFixed(1)}, no higher, so the rows stand as measured`);
      continue;
    }
    for (const r of mine) {
      if (r.kind === 'step') {
        if (r.mfu !== null) r.mfu = (r.mfu * old) / fresh.gflops;
        r.peak_gflops = fresh.gflops;
      } else if (r.peak_fraction !== null && r.gflops !== null) {
        r.peak_fraction = r.gflops / fresh.gflops;
      }
    }
    if (dtype === 'bf16') machine.bf16_peak_gflops = fresh.gflops;
    else {
      machine.peak_gflops = fresh.gflops;
      machine.peak_measured_at = fresh.measuredAt;
      machine.peak_cached = false;
    }
    notes.push(`${what}: most likely measured while other work held the cores; measured again after the rows: ` +
      `${fresh.gflops.toFixed(1)} GFLOP/s, which the ${dtype} rows' MFU and % of peak now use (the cache too)`);
  }
  machine.peak_notes.push(...notes);
  return notes;
}

/** The peak a row of `dtype` is measured against: fp32 FMA, or the bf16 unit's (BENCH.md). */
export function peakFor(machine: BenchMachine, dtype: BenchDtype): number | null {
  return dtype === 'bf16' ? machine.bf16_peak_gflops : machine.peak_gflops;
}

/** The jobs of a run, in order: per config, per dtype, standard before litespark, per recompute mode. */
export function planJobs(opts: BenchOptions, machine: BenchMachine): BenchJob[] {
  const common = {
    threads: machine.threads, steps: opts.steps, warmup: opts.warmup, seed: opts.seed ?? 1337,
    commit: machine.commit, energy: machine.energy_meter,
  };
  const order = (k: KernelPath[]) => [...k].sort((a, b) => (a === 'standard' ? -1 : b === 'standard' ? 1 : 0));
  const jobs: BenchJob[] = [];
  for (const c of opts.configs) {
    for (const dtype of opts.dtypes) {
      if (opts.kernelsOnly) {
        jobs.push({ mode: 'kernels', config: c.name, preset: c.preset, kernels: order(opts.kernels), dtype, peakGflops: peakFor(machine, dtype), ...common });
      } else {
        for (const kernels of order(opts.kernels)) {
          const peakGflops = peakFor(machine, dtype);
          if (!opts.recomputes) jobs.push({ mode: 'step', config: c.name, preset: c.preset, kernels, dtype, peakGflops, ...common });
          else for (const recompute of opts.recomputes) jobs.push({ mode: 'step', config: c.name, preset: c.preset, kernels, dtype, recompute, peakGflops, ...common });
        }
      }
    }
  }
  return jobs;
}

export function jobLabel(job: BenchJob): string {
  return job.mode === 'step'
    ? `${job.config} ${job.kernels} ${job.dtype}${job.recompute ? ` recompute ${job.recompute}` : ''}`
    : `${job.config} kernels (${job.kernels.join(' vs ')}) ${job.dtype}`;
}

export async function runBench(opts: BenchOptions, hooks: BenchHooks = {}): Promise<BenchResult> {
  const threads = opts.threads > 0 ? opts.threads : os.availableParallelism();
  const machine = describeBenchMachine(threads, opts.dtypes, opts.watts);
  const outDir = opts.out ?? join('runs', `bench-${timestamp(new Date())}`);
  mkdirSync(outDir, { recursive: true });

  const jobs = planJobs(opts, machine);
  const rows: BenchRow[] = [];
  for (const [i, job] of jobs.entries()) {
    hooks.onJobStart?.(i, jobs.length, jobLabel(job));
    const got = await runJob(job, hooks.onProgress);
    rows.push(...got);
    hooks.onJobEnd?.(got);
  }
  recheckPeaks(machine, rows);
  fillSpeedups(rows);
  fillRecomputeRatios(rows);
  fillDtypeRatios(rows);

  const options = { steps: opts.steps, warmup: opts.warmup, kernelsOnly: opts.kernelsOnly };
  const jsonText = JSON.stringify(rows, null, 2) + '\n';
  const jsonFiles = [join(outDir, 'rows.json')];
  writeFileSync(jsonFiles[0]!, jsonText);
  if (opts.json) {
    mkdirSync(dirname(opts.json), { recursive: true });
    writeFileSync(opts.json, jsonText);
    jsonFiles.push(opts.json);
  }
  writeFileSync(join(outDir, 'machine.json'), JSON.stringify({ machine, options }, null, 2) + '\n');
  const markdownFile = join(outDir, 'results.md');
  writeFileSync(markdownFile, markdownReport(machine, options, rows));
  return { machine, options, rows, outDir, jsonFiles, markdownFile };
}
