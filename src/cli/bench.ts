// `litespark bench`: BENCH.md's reference rows measured side by side in one run — whole training
// steps (default) or the kernels alone (--kernels-only) — printed as one table and written as
// JSON and Markdown under the results directory.
import cliProgress from 'cli-progress';
import { ConfigError } from '../config/schema.js';
import { runBench } from '../bench/run.js';
import { machineLine, textReport } from '../bench/report.js';
import { parseConfigs, parseDtypes, parseKernels, parseRecompute } from '../bench/spec.js';
import type { BenchRow } from '../bench/spec.js';
import { fmtBytes, fmtPct } from './format.js';

export interface BenchCommandOptions {
  configs?: string;
  kernels?: string;
  dtype?: string;
  recompute?: string;
  steps?: number;
  warmup?: number;
  threads?: number;
  json?: string;
  out?: string;
  kernelsOnly?: boolean;
  /** Power draw for the J/token estimate when no counter is readable. */
  watts?: number;
}

const say = (line = '') => process.stdout.write(line + '\n');

function rowLine(r: BenchRow): string {
  if (!r.ok) return `failed: ${r.error}`;
  if (r.kind === 'step') {
    const act = r.recompute !== undefined && r.activation_bytes !== null ? `, activations ${fmtBytes(r.activation_bytes)}` : '';
    return `${r.tokens_per_s!.toFixed(0)} tokens/s, median step ${r.step_ms_median!.toFixed(1)} ms, MFU ${fmtPct(r.mfu)}` +
      `${r.joules_per_token === null ? '' : `, ${r.joules_per_token.toPrecision(3)} J/token (${r.energy_source.split(':')[0]})`}${act}`;
  }
  return `${r.op} (${r.kernels}) ${r.ms_median!.toFixed(2)} ms`;
}

export async function benchCommand(opts: BenchCommandOptions): Promise<number> {
  // All flags are checked before anything runs: bad usage costs no measurement.
  const configs = parseConfigs(opts.configs ?? 'XS,S,L');
  const kernels = parseKernels(opts.kernels ?? 'standard,litespark');
  const dtypes = parseDtypes(opts.dtype ?? 'fp32');
  const recomputes = opts.recompute === undefined ? undefined : parseRecompute(opts.recompute);
  if (recomputes && opts.kernelsOnly) throw new ConfigError('bench: --recompute applies to whole training steps, not to --kernels-only');
  const steps = opts.steps ?? 10;
  const warmup = opts.warmup ?? 3;
  if (opts.json !== undefined && opts.json.trim() === '') throw new ConfigError('bench: --json needs a file name');

  const tty = process.stdout.isTTY === true;
  const bar = new cliProgress.SingleBar(
    { format: '  {label} |{bar}| {value}/{total} {what}', barsize: 20, hideCursor: true, noTTYOutput: false, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let barOn = false;
  let current = '';
  const stopBar = () => {
    if (barOn) bar.stop();
    barOn = false;
  };

  try {
    const result = await runBench(
      { configs, kernels, dtypes, recomputes, steps, warmup, threads: opts.threads ?? 0, kernelsOnly: opts.kernelsOnly === true, out: opts.out, json: opts.json,
        ...(opts.watts ? { watts: opts.watts } : {}) },
      {
        onJobStart: (i, n, label) => {
          if (i === 0) {
            say(`litespark bench${opts.kernelsOnly ? ' --kernels-only' : ''}: ${n} ${opts.kernelsOnly ? 'config' : 'row'}${n === 1 ? '' : 's'}, ` +
              `${warmup} warm-up + ${steps} measured ${opts.kernelsOnly ? 'runs per kernel' : 'steps'}, one process each`);
          }
          current = `[${i + 1}/${n}] ${label}`;
          if (!tty) say(`${current} ...`);
        },
        onProgress: (done, total, what) => {
          if (!tty || total <= 0) return;
          if (!barOn) {
            bar.start(total, done, { label: current, what });
            barOn = true;
          } else bar.update(done, { what });
        },
        onJobEnd: (rows) => {
          stopBar();
          if (opts.kernelsOnly) {
            const failed = rows.filter((r) => !r.ok).length;
            say(`${current}: ${rows.length - failed} kernel rows${failed ? `, ${failed} failed` : ''}`);
          } else for (const r of rows) say(`${current}: ${rowLine(r)}`);
        },
      },
    );
    say();
    say(`machine: ${machineLine(result.machine)}; commit ${result.machine.commit ?? 'n/a'}${result.machine.dirty ? ' (dirty)' : ''}; load average ${result.machine.loadavg_1m.toFixed(2)}`);
    say();
    process.stdout.write(textReport(result.rows));
    if (!opts.kernelsOnly) say(`J/token (~ = estimated) over the measured steps of each row, one meter for all: ${result.machine.energy}`);
    for (const n of result.machine.peak_notes) say(`peak re-measured: ${n}`);
    say(`rows: ${result.jsonFiles.join(', ')}; report: ${result.markdownFile}`);
    // Failed rows are reported, not fatal: the run itself succeeded if it wrote its results.
    return 0;
  } finally {
    stopBar();
  }
}
