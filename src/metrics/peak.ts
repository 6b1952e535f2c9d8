// The machine's peak FLOP/s, measured (BENCH.md: never a CPU spec sheet), per dtype and thread
// count, cached in <cacheDir>/peak.json, so MFU costs one ~0.5 s calibration per machine, unit
// and thread count:
//   fp32  a tight loop of independent FMAs on the widest vector unit of the current ISA path
//         (native/src/kernels/peak.cc); key: CPU model + ISA + 'fp32' + threads.
//   bf16  the calibration loop of a bf16 unit (native/src/bf16/peak_bf16.cc): 'amx' (TDPBF16PS
//         tiles), 'avx512bf16' (VDPBF16PS); key: CPU model + unit + 'bf16' + threads. The 'fp32'
//         unit runs bf16 GEMMs as fp32 FMAs on rounded operands, so its bf16 peak is the fp32
//         FMA peak: the same measurement under the same cache entry.
// The unit defaults to the one bf16 GEMMs run on now (native.bf16Unit()).
// Memory bandwidth, cached beside them: the STREAM triad (native/src/kernels/bandwidth.cc) over
// three float64 arrays of 4x the last-level cache each (64 MiB to 512 MiB), per thread count;
// key: CPU model + 'bandwidth triad' + threads.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { native, type Bf16Unit } from '../kernels/native.js';
import { cpuModel } from './machine.js';

/** Dtypes with a calibration loop. */
export type PeakDtype = 'fp32' | 'bf16';

/** Default calibration length: long enough for a steady clock, short enough to be unnoticed. */
export const DEFAULT_PEAK_SECONDS = 0.5;

export interface PeakInfo {
  /** Peak in GFLOP/s (1e9 FLOP/s), 2 flops per FMA lane. */
  gflops: number;
  isa: string;
  dtype: PeakDtype;
  /**
   * The unit that ran the calibration loop: for bf16 the bf16 unit ('amx', 'avx512bf16', or
   * 'fp32': the fp32 FMA loop of `isa`); for fp32 always 'fp32'.
   */
  unit: Bf16Unit;
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

export interface MeasurePeakOptions {
  seconds?: number;
  trials?: number;
  /** Default 'fp32' (the FMA loop of the current ISA). */
  dtype?: PeakDtype;
  /** bf16 only: the unit to calibrate (default: native.bf16Unit(), the one bf16 GEMMs use). */
  unit?: Bf16Unit;
}

/** The unit a peak of `dtype` is measured on: bf16 -> `unit` or the current bf16 unit; fp32 -> 'fp32'. */
export function peakUnit(dtype: PeakDtype, unit?: Bf16Unit): Bf16Unit {
  if (dtype === 'fp32') return 'fp32';
  const u = unit ?? native.bf16Unit();
  if (!native.bf16Units().includes(u)) {
    const why = u === 'amx' && native.amxUnavailableReason() ? `: ${native.amxUnavailableReason()}` : '';
    throw new Error(`peak: bf16 unit '${u}' is not available on this machine${why} (available: ${native.bf16Units().join(', ')})`);
  }
  return u;
}

/**
 * GFLOP/s of the calibration loop with `threads` threads (0 = all cores): the FMA loop on the
 * current ISA for fp32 (and for the 'fp32' bf16 unit), the unit's loop for bf16; the best of
 * `trials` runs sharing `seconds` between them.
 */
export function measurePeak(threads: number, opts: MeasurePeakOptions = {}): number {
  const n = threads > 0 ? threads : os.availableParallelism();
  const trials = Math.max(1, opts.trials ?? PEAK_TRIALS);
  const each = (opts.seconds ?? DEFAULT_PEAK_SECONDS) / trials;
  const unit = peakUnit(opts.dtype ?? 'fp32', opts.unit);
  const run = unit === 'fp32' ? () => native.peakFma(n, each) : () => native.peakBf16(unit, n, each);
  let gflops = 0;
  for (let i = 0; i < trials; i++) gflops = Math.max(gflops, run());
  if (!Number.isFinite(gflops) || gflops <= 0) {
    const loop = unit === 'fp32' ? `FMA calibration on ${native.isa()}` : `bf16 calibration on the ${unit} unit`;
    throw new Error(`peak: the ${loop} returned ${gflops} GFLOP/s with ${n} threads`);
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
  /** Peak FLOP entries. */
  gflops?: number;
  /** Bandwidth entries: GB/s (1e9 bytes/s), and the bytes of each array. */
  gbps?: number;
  bytesPerArray?: number;
  measuredAt: string;
  seconds: number;
  /** 1-minute load average when measured: a busy machine explains a low figure. */
  loadavg: number;
}

interface CacheFile {
  version: 1;
  entries: Record<string, CacheEntry>;
}

// fp32 (and the 'fp32' bf16 unit): '<cpu> | <isa> | fp32 | <n>T', as before bf16 existed;
// amx / avx512bf16: '<cpu> | <unit> | bf16 | <n>T' (their loops do not depend on the ISA path).
const cacheKey = (cpu: string, isa: string, unit: Bf16Unit, threads: number) =>
  unit === 'fp32' ? `${cpu} | ${isa} | fp32 | ${threads}T` : `${cpu} | ${unit} | bf16 | ${threads}T`;

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
  /** Default 'fp32'. */
  dtype?: PeakDtype;
  /** bf16 only: the unit (default: native.bf16Unit(), the one bf16 GEMMs and training use). */
  unit?: Bf16Unit;
  /** Measure even when cached (and update the cache). */
  remeasure?: boolean;
  /** Default: defaultCacheDir(). */
  cacheDir?: string;
  /** Calibration length when measuring; default DEFAULT_PEAK_SECONDS. */
  seconds?: number;
}

/**
 * The peak for this CPU, dtype and thread count, on the current ISA (fp32) or bf16 unit (bf16,
 * or opts.unit): cached, else measured.
 */
export function getPeak(opts: GetPeakOptions): PeakInfo {
  const dtype = opts.dtype ?? 'fp32';
  if (dtype !== 'fp32' && dtype !== 'bf16') throw new Error(`peak: dtype '${String(dtype)}' has no calibration (fp32, bf16)`);
  const unit = peakUnit(dtype, opts.unit);
  const threads = opts.threads > 0 ? opts.threads : os.availableParallelism();
  const dir = opts.cacheDir ?? defaultCacheDir();
  const file = join(dir, 'peak.json');
  const cpu = cpuModel(), isa = native.isa();
  const key = cacheKey(cpu, isa, unit, threads);
  const cache = readCache(file);
  const hit = cache.entries[key];
  if (!opts.remeasure && hit && Number.isFinite(hit.gflops) && hit.gflops! > 0) {
    return { gflops: hit.gflops!, isa, dtype, unit, threads, cpu, measuredAt: hit.measuredAt, cached: true };
  }
  const seconds = opts.seconds ?? DEFAULT_PEAK_SECONDS;
  const gflops = measurePeak(threads, { seconds, dtype, unit });
  const measuredAt = new Date().toISOString();
  // Re-read just before writing, so entries another process added meanwhile survive.
  const fresh = readCache(file);
  fresh.entries[key] = { gflops, measuredAt, seconds, loadavg: os.loadavg()[0]! };
  try {
    writeCache(dir, file, fresh);
  } catch {
    // An unwritable cache costs a re-measurement next time, nothing else.
  }
  return { gflops, isa, dtype, unit, threads, cpu, measuredAt, cached: false };
}

// ---- memory bandwidth ---------------------------------------------------------------------

export interface BandwidthInfo {
  /** Best GB/s (1e9 bytes/s) of the STREAM triad, bytes counted as STREAM does (3 x 8 per element). */
  gbps: number;
  threads: number;
  cpu: string;
  bytesPerArray: number;
  measuredAt: string;
  cached: boolean;
}

/**
 * Bytes per triad array: 4x the last-level cache (STREAM's rule, so the arrays stream from DRAM),
 * at least 64 MiB, at most 512 MiB (3 arrays: 1.5 GiB at most; a cloud VM reports its host's
 * whole L3, of which it has a share).
 */
export function bandwidthArrayBytes(llcBytes: number = native.lastLevelCacheBytes()): number {
  return Math.min(512 * 2 ** 20, Math.max(64 * 2 ** 20, 4 * llcBytes));
}

export interface GetBandwidthOptions {
  /** Thread count (0 = all cores). */
  threads: number;
  remeasure?: boolean;
  cacheDir?: string;
  /** Seconds of timed passes (at least one warm-up and three timed passes run regardless). */
  seconds?: number;
  /** Default: bandwidthArrayBytes(). */
  bytesPerArray?: number;
}

/** Memory bandwidth of this machine at `threads` threads: cached with the FLOP peaks, else measured. */
export function getBandwidth(opts: GetBandwidthOptions): BandwidthInfo {
  const threads = opts.threads > 0 ? opts.threads : os.availableParallelism();
  const dir = opts.cacheDir ?? defaultCacheDir();
  const file = join(dir, 'peak.json');
  const cpu = cpuModel();
  const key = `${cpu} | bandwidth triad | ${threads}T`;
  const hit = readCache(file).entries[key];
  if (!opts.remeasure && opts.bytesPerArray === undefined && hit && Number.isFinite(hit.gbps) && hit.gbps! > 0) {
    return { gbps: hit.gbps!, threads, cpu, bytesPerArray: hit.bytesPerArray ?? 0, measuredAt: hit.measuredAt, cached: true };
  }
  const seconds = opts.seconds ?? DEFAULT_PEAK_SECONDS;
  const bytesPerArray = opts.bytesPerArray ?? bandwidthArrayBytes();
  const gbps = native.memoryBandwidth(threads, seconds, bytesPerArray);
  if (!Number.isFinite(gbps) || gbps <= 0) throw new Error(`peak: the bandwidth triad returned ${gbps} GB/s with ${threads} threads`);
  const measuredAt = new Date().toISOString();
  if (opts.bytesPerArray === undefined) {
    const fresh = readCache(file);
    fresh.entries[key] = { gbps, bytesPerArray, measuredAt, seconds, loadavg: os.loadavg()[0]! };
    try {
      writeCache(dir, file, fresh);
    } catch {
      // only a cache
    }
  }
  return { gbps, threads, cpu, bytesPerArray, measuredAt, cached: false };
}
