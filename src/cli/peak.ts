// `litespark peak`: the machine's measured peaks per thread count — the denominators of every
// MFU figure litespark prints: the fp32 FMA peak on the current ISA path, and the bf16 peak of
// every bf16 unit this machine has (the 'fp32' unit's is the fp32 FMA peak), marking the unit
// bf16 training runs on and saying why AMX is missing when it is; and the memory bandwidth (STREAM
// triad) per thread count, cached with them.
import { native, type Bf16Unit } from '../kernels/native.js';
import { describeMachine, machineInfo, type MachineInfo } from '../metrics/machine.js';
import { defaultCacheDir, getBandwidth, getPeak, type BandwidthInfo, type PeakInfo } from '../metrics/peak.js';

export interface PeakCommandOptions {
  /** Measure this thread count only (default: every count from 1 to all cores). */
  threads?: number;
  /** Ignore the cache and measure again (the cache is updated). */
  remeasure?: boolean;
  /** Print one JSON object instead of the tables. */
  json?: boolean;
  /** Cache directory (default: defaultCacheDir()). */
  cacheDir?: string;
  /** Calibration length per measurement (default: DEFAULT_PEAK_SECONDS). */
  seconds?: number;
}

/** One measured (or cached) row, as printed in --json. */
export interface PeakRow {
  threads: number;
  gflops: number;
  cached: boolean;
  measuredAt: string;
}

/** What `litespark peak --json` prints. */
export interface PeakReport {
  machine: MachineInfo;
  /** The fp32 FMA peak ('peaks') on the ISA path 'isa'. */
  dtype: 'fp32';
  isa: string;
  cacheFile: string;
  peaks: PeakRow[];
  bf16: {
    /** The unit bf16 GEMMs and bf16 training run on (LITESPARK_BF16_UNIT may pick a lower one). */
    trainingUnit: Bf16Unit;
    /** Units on this machine, the default first. */
    units: Bf16Unit[];
    /** Why 'amx' is not among the units; null when it is. */
    amxUnavailable: string | null;
    /** Per unit: its bf16 peak per thread count ('fp32': the same rows as the fp32 FMA peak). */
    peaks: Partial<Record<Bf16Unit, PeakRow[]>>;
  };
  /** Memory bandwidth per thread count: the STREAM triad, GB/s. */
  bandwidth: Array<{ threads: number; gbps: number; bytesPerArray: number; cached: boolean; measuredAt: string }>;
}

const row = (p: PeakInfo): PeakRow => ({ threads: p.threads, gflops: p.gflops, cached: p.cached, measuredAt: p.measuredAt });

const UNIT_LOOP: Record<Bf16Unit, string> = {
  amx: 'AMX tiles, TDPBF16PS',
  avx512bf16: 'AVX-512 BF16, VDPBF16PS',
  fp32: 'fp32 FMA on bf16-rounded operands',
};

export async function peakCommand(opts: PeakCommandOptions = {}): Promise<void> {
  const machine = machineInfo();
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const counts = opts.threads && opts.threads > 0
    ? [opts.threads]
    : Array.from({ length: machine.cores }, (_, i) => i + 1);
  const remeasure = opts.remeasure ?? false;
  const base = { remeasure, cacheDir, ...(opts.seconds === undefined ? {} : { seconds: opts.seconds }) };
  const units = native.bf16Units();
  const trainingUnit = native.bf16Unit();
  const amxReason = native.amxUnavailableReason();

  const print = (line: string) => process.stdout.write(line + '\n');
  const header = () => print(`${'threads'.padStart(7)}  ${'GFLOP/s'.padStart(9)}  ${'per thread'.padStart(10)}  source`);
  const line = (p: PeakInfo) => {
    const source = p.cached ? `cached (${p.measuredAt})` : 'measured';
    print(`${String(p.threads).padStart(7)}  ${p.gflops.toFixed(1).padStart(9)}  ${(p.gflops / p.threads).toFixed(1).padStart(10)}  ${source}`);
  };
  const mark = (u: Bf16Unit) => (u === trainingUnit ? ' <- bf16 training uses this unit' : '');

  if (!opts.json) {
    print(`machine: ${describeMachine()}`);
    print(`cache: ${cacheDir}/peak.json${remeasure ? ' (re-measuring)' : ''}`);
    print('');
    print(`fp32 FMA peak on the ${machine.isa} path`);
    header();
  }
  const fp32 = counts.map((threads) => {
    const p = getPeak({ ...base, threads, dtype: 'fp32' });
    if (!opts.json) line(p);
    return p;
  });

  const bf16: Partial<Record<Bf16Unit, PeakRow[]>> = {};
  for (const unit of units) {
    if (unit === 'fp32') {
      // Its calibration is the FMA loop above (the same cache entries): nothing new to measure.
      bf16.fp32 = fp32.map(row);
      if (!opts.json) {
        print('');
        print(`bf16 peak on the fp32 unit (${UNIT_LOOP.fp32}): the fp32 FMA peak above${mark(unit)}`);
      }
      continue;
    }
    if (!opts.json) {
      print('');
      print(`bf16 peak on the ${unit} unit (${UNIT_LOOP[unit]})${mark(unit)}`);
      header();
    }
    bf16[unit] = counts.map((threads) => {
      const p = getPeak({ ...base, threads, dtype: 'bf16', unit });
      if (!opts.json) line(p);
      return row(p);
    });
  }

  if (!opts.json) {
    print('');
    print('memory bandwidth (STREAM triad a = b + s*c, float64, 3 arrays of 4x the last-level cache within 64-512 MiB; 24 bytes per element)');
    print(`${'threads'.padStart(7)}  ${'GB/s'.padStart(9)}  ${'per thread'.padStart(10)}  source`);
  }
  const bandwidth = counts.map((threads) => {
    const b: BandwidthInfo = getBandwidth({ threads, remeasure, cacheDir, ...(opts.seconds === undefined ? {} : { seconds: opts.seconds }) });
    if (!opts.json) {
      const source = b.cached ? `cached (${b.measuredAt})` : `measured, ${(b.bytesPerArray / 2 ** 20).toFixed(0)} MiB per array`;
      print(`${String(b.threads).padStart(7)}  ${b.gbps.toFixed(1).padStart(9)}  ${(b.gbps / b.threads).toFixed(1).padStart(10)}  ${source}`);
    }
    return { threads: b.threads, gbps: b.gbps, bytesPerArray: b.bytesPerArray, cached: b.cached, measuredAt: b.measuredAt };
  });

  if (opts.json) {
    const report: PeakReport = {
      machine,
      dtype: 'fp32',
      isa: machine.isa,
      cacheFile: `${cacheDir}/peak.json`,
      peaks: fp32.map(row),
      bf16: { trainingUnit, units, amxUnavailable: amxReason === '' ? null : amxReason, peaks: bf16 },
      bandwidth,
    };
    print(JSON.stringify(report, null, 2));
    return;
  }
  print('');
  print(`bf16 training runs on the ${trainingUnit} unit (units here, the default first: ${units.join(', ')}; ` +
    'LITESPARK_BF16_UNIT picks another)');
  if (amxReason) print(`AMX: not available: ${amxReason}`);
}
