// The machine's peak FLOP/s, measured (BENCH.md: never a CPU spec sheet): a tight loop of
// independent FMAs on the widest vector unit of the current ISA path (native/src/kernels/peak.cc),
// per dtype and thread count, cached in <cacheDir>/peak.json keyed by CPU model + ISA + dtype +
// threads, so MFU costs one ~0.5 s calibration per machine and thread count.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { native } from '../kernels/native.js';
import { cpuModel } from './machine.js';

/** Dtypes with a calibration loop. bf16 arrives with the bf16 kernels. */
export type PeakDtype = 'fp32';

/** Default calibration length: long enough for a steady clock, short enough to be unnoticed. */
export const DEFAULT_PEAK_SECONDS = 0.5;

export interface PeakInfo {
  /** Peak in GFLOP/s (1e9 FLOP/s), 2 flops per FMA lane. */
  gflops: number;
  isa: string;
  dtype: PeakDtype;
  threads: number;
  cpu: string;
  /** ISO time of the measurement. */
  measuredAt: string;
  /** True when read from the cache rather than measured by this call. */
  cached: boolean;
}

/**
 * Trials per measurement; the best one counts. On a shared machine another process can take a
 * core for part of a run, and the peak is what the unit can do, not what was left over.
 */
export const PEAK_TRIALS = 5;

/**
 * GFLOP/s of the FMA loop on the current ISA with `threads` threads (0 = all cores): the best
 * of `trials` runs sharing `seconds` between them.
 */
export function measurePeak(threads: number, opts: { seconds?: number; trials?: number } = {}): number {
  const n = threads > 0 ? threads : os.availableParallelism();
  const trials = Math.max(1, opts.trials ?? PEAK_TRIALS);
  const each = (opts.seconds ?? DEFAULT_PEAK_SECONDS) / trials;
  let gflops = 0;
  for (let i = 0; i < trials; i++) gflops = Math.max(gflops, native.peakFma(n, each));
  if (!Number.isFinite(gflops) || gflops <= 0) {
    throw new Error(`peak: the FMA calibration returned ${gflops} GFLOP/s on ${native.isa()} with ${n} threads`);
  }
  return gflops;
}

/** $LITESPARK_CACHE_DIR, else $XDG_CACHE_HOME/litespark, else ~/.cache/litespark. */
export function defaultCacheDir(): string {
  const env = process.env;
  if (env.LITESPARK_CACHE_DIR) return env.LITESPARK_CACHE_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'litespark');
  return join(os.homedir(), '.cache', 'litespark');
}

interface CacheEntry {
  gflops: number;
  measuredAt: string;
  seconds: number;
  /** 1-minute load average when measured: a busy machine explains a low figure. */
  loadavg: number;
}

interface CacheFile {
  version: 1;
  entries: Record<string, CacheEntry>;
}

const cacheKey = (cpu: string, isa: string, dtype: string, threads: number) => `${cpu} | ${isa} | ${dtype} | ${threads}T`;

function readCache(file: string): CacheFile {
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
    if (data && data.version === 1 && data.entries && typeof data.entries === 'object') return data;
  } catch {
    // missing or unreadable: start afresh (it is only a cache)
  }
  return { version: 1, entries: {} };
}

/** Writes via a temp file + rename, so a reader never sees half a file. */
function writeCache(dir: string, file: string, data: CacheFile): void {
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  renameSync(tmp, file);
}

export interface GetPeakOptions {
  /** Thread count (0 = all cores). */
  threads: number;
  dtype?: PeakDtype;
  /** Measure even when cached (and update the cache). */
  remeasure?: boolean;
  /** Default: defaultCacheDir(). */
  cacheDir?: string;
  /** Calibration length when measuring; default DEFAULT_PEAK_SECONDS. */
  seconds?: number;
}

/** The peak for this CPU, the current ISA, dtype and thread count: cached, else measured. */
export function getPeak(opts: GetPeakOptions): PeakInfo {
  const dtype = opts.dtype ?? 'fp32';
  if (dtype !== 'fp32') throw new Error(`peak: dtype '${dtype}' has no calibration yet (bf16 arrives later)`);
  const threads = opts.threads > 0 ? opts.threads : os.availableParallelism();
  const dir = opts.cacheDir ?? defaultCacheDir();
  const file = join(dir, 'peak.json');
  const cpu = cpuModel(), isa = native.isa();
  const key = cacheKey(cpu, isa, dtype, threads);
  const cache = readCache(file);
  const hit = cache.entries[key];
  if (!opts.remeasure && hit && Number.isFinite(hit.gflops) && hit.gflops > 0) {
    return { gflops: hit.gflops, isa, dtype, threads, cpu, measuredAt: hit.measuredAt, cached: true };
  }
  const seconds = opts.seconds ?? DEFAULT_PEAK_SECONDS;
  const gflops = measurePeak(threads, { seconds });
  const measuredAt = new Date().toISOString();
  // Re-read just before writing, so entries another process added meanwhile survive.
  const fresh = readCache(file);
  fresh.entries[key] = { gflops, measuredAt, seconds, loadavg: os.loadavg()[0]! };
  try {
    writeCache(dir, file, fresh);
  } catch {
    // An unwritable cache costs a re-measurement next time, nothing else.
  }
  return { gflops, isa, dtype, threads, cpu, measuredAt, cached: false };
}
