// `litespark peak`: the machine's measured fp32 FMA peak per thread count on the current ISA
// path — the denominator of every MFU figure litespark prints.
import { describeMachine, machineInfo } from '../metrics/machine.js';
import { defaultCacheDir, getPeak, type PeakInfo } from '../metrics/peak.js';

export interface PeakCommandOptions {
  /** Measure this thread count only (default: every count from 1 to all cores). */
  threads?: number;
  /** Ignore the cache and measure again (the cache is updated). */
  remeasure?: boolean;
  /** Print one JSON object instead of the table. */
  json?: boolean;
  /** Cache directory (default: defaultCacheDir()). */
  cacheDir?: string;
}

export async function peakCommand(opts: PeakCommandOptions = {}): Promise<void> {
  const machine = machineInfo();
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const counts = opts.threads && opts.threads > 0
    ? [opts.threads]
    : Array.from({ length: machine.cores }, (_, i) => i + 1);

  const print = (line: string) => process.stdout.write(line + '\n');
  if (!opts.json) {
    print(`machine: ${describeMachine()}`);
    print(`fp32 FMA peak on the ${machine.isa} path (cache: ${cacheDir}/peak.json${opts.remeasure ? ', re-measuring' : ''})`);
    print(`${'threads'.padStart(7)}  ${'GFLOP/s'.padStart(9)}  ${'per thread'.padStart(10)}  source`);
  }
  const rows: PeakInfo[] = [];
  for (const threads of counts) {
    const p = getPeak({ threads, dtype: 'fp32', remeasure: opts.remeasure ?? false, cacheDir });
    rows.push(p);
    if (!opts.json) {
      const source = p.cached ? `cached (${p.measuredAt})` : 'measured';
      print(`${String(threads).padStart(7)}  ${p.gflops.toFixed(1).padStart(9)}  ${(p.gflops / threads).toFixed(1).padStart(10)}  ${source}`);
    }
  }
  if (opts.json) {
    print(JSON.stringify({
      machine,
      dtype: 'fp32',
      isa: machine.isa,
      cacheFile: `${cacheDir}/peak.json`,
      peaks: rows.map((r) => ({ threads: r.threads, gflops: r.gflops, cached: r.cached, measuredAt: r.measuredAt })),
    }, null, 2));
  }
}
