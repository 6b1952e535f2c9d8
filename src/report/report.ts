// `litespark report`: one self-contained HTML file (inline SVG, inline CSS, no script, no URL)
// for a run directory or a bench results directory.
//   run directory (metrics.jsonl): header (config essentials, machine, totals over all resumed
//     segments), then loss vs step and vs tokens (train and val), tokens/s, MFU, power and
//     cumulative energy (or "no energy data"), memory (peak RSS), data wait, lr, grad norm; plus
//     the bench charts when bench rows are given (--bench) or a rows.json sits in the directory.
//   bench directory (rows.json, machine.json): the machine and the bench charts alone.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmtCount, fmtDuration, fmtPct } from '../cli/format.js';
import { groupedBars, lineChart, rowBars, type BarRow } from './charts.js';
import { esc, figure, page, table } from './html.js';
import { loadBench, loadRun, ReportError, type BenchData, type RunData } from './load.js';
import { cumulativeEnergy, energySources, points, power, runTotals, tokensPerStep, type Point } from './series.js';

export { ReportError } from './load.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const show = (v: unknown): string =>
  v === undefined || v === null ? 'n/a' : typeof v === 'number' ? String(Number(v.toPrecision(6))) : typeof v === 'object' ? JSON.stringify(v) : String(v);
const fixed = (v: number | null, d: number, unit = '') => (v === null ? 'n/a' : `${v.toFixed(d)}${unit}`);

function fmtJoules(j: number): string {
  if (j >= 3.6e6) return `${(j / 3.6e6).toFixed(3)} kWh`;
  if (j >= 3600) return `${(j / 3600).toFixed(2)} Wh`;
  return `${j.toFixed(1)} J`;
}

function configTable(run: RunData): string {
  const c = obj(run.config), m = obj(c.model), t = obj(c.train), r = obj(c.runtime), mc = obj(c.machine), d = obj(c.data);
  const tps = tokensPerStep(run);
  const rows: [string, string][] = [
    ['model', `${show(m.num_hidden_layers)} layers, hidden ${show(m.hidden_size)}, ${show(m.num_attention_heads)} heads / ${show(m.num_key_value_heads)} KV heads, FFN ${show(m.intermediate_size)}, vocab ${show(m.vocab_size)}${m.tie_word_embeddings ? ', tied head' : ''}`],
    ['sequence, batch', `seq ${show(t.seq_len)}, micro-batch ${show(t.micro_batch_size)} × accum ${show(t.grad_accum_steps ?? 1)} = ${tps === null ? 'n/a' : fmtCount(tps)} tokens/step`],
    ['optimizer', `lr ${show(t.lr)} (min ${show(t.min_lr)}, warm-up ${show(t.warmup_steps)}), weight decay ${show(t.weight_decay)}, clip ${show(t.grad_clip)}, ${show(t.steps)} steps`],
    ['kernels, dtype', `${show(r.kernels)}, ${show(r.dtype)}, recompute ${show(r.recompute ?? 'none')}`],
    ['threads', show(mc.threads ?? r.threads)],
    ['machine', `${show(mc.cpu)}, ${show(mc.isa)} path`],
    ['data', `${show(d.source)}`],
  ];
  return table(rows);
}

function totalsTable(run: RunData): string {
  const s = runTotals(run);
  const energy = s.joules === null
    ? `no energy data${s.energyError ? ` (${s.energyError})` : ''}`
    : `${fmtJoules(s.joules)}${s.co2eGrams !== null ? `, ${s.co2eGrams.toPrecision(3)} g CO2e` : ''} (${s.energyLabel}${s.energyFrom === 'metrics' ? '; summed from the logged steps' : ''})`;
  const rows: [string, string][] = [
    ['steps', show(s.steps)],
    ['tokens', s.tokens === null ? 'n/a' : fmtCount(s.tokens)],
    ['time', s.seconds === null ? 'n/a' : fmtDuration(s.seconds)],
    ['mean tokens/s', fixed(s.tokensPerSecond, 0)],
    ['MFU', fmtPct(s.mfu)],
    ['energy', energy],
    ['J/token', s.joulesPerToken === null ? 'n/a' : `${s.joulesPerToken.toPrecision(3)} (${s.energyLabel})`],
    ['final train loss', fixed(s.finalTrainLoss, 4)],
    ['final val loss', fixed(s.finalValLoss, 4)],
  ];
  if (s.segments > 1) rows.push(['segments', `${s.segments} (resumed ${s.segments - 1}×; time and tokens summed over the processes)`]);
  if (run.badLines.length) rows.push(['unreadable lines', `metrics.jsonl lines ${run.badLines.slice(0, 10).join(', ')}${run.badLines.length > 10 ? ', ...' : ''} (skipped)`]);
  return table(rows);
}

/** The run's charts, in page order. */
function runCharts(run: RunData): string[] {
  const tps = tokensPerStep(run);
  const rules = run.segments.slice(1).map((s) => ({ x: s.resumedFrom, label: `resumed at ${s.resumedFrom}` }));
  const tokenRules = tps === null ? [] : rules.map((r) => ({ x: r.x * tps, label: r.label }));
  const train = points(run.steps, (l) => l.loss);
  const val: Point[] = run.evals.map((e) => ({ x: e.step, y: e.val_loss }));
  const byTokens = (ps: Point[]) => (tps === null ? [] : ps.map((p) => ({ x: p.x * tps, y: p.y })));
  const line = (id: string, title: string, yLabel: string, ps: Point[], empty: string, extra: { percent?: boolean; yZero?: boolean } = {}) =>
    figure(id, title, ps.length ? lineChart({ xLabel: 'step', yLabel, series: [{ name: title, points: ps }], rules, ...extra }) : null, ps.length ? undefined : empty);
  const charts: string[] = [];
  charts.push(figure('loss-step', 'Loss vs step', train.length || val.length
    ? lineChart({ xLabel: 'step', yLabel: 'loss', series: [{ name: 'train', points: train }, { name: 'val', points: val, dots: true }], rules })
    : null, train.length || val.length ? undefined : 'no loss logged'));
  charts.push(figure('loss-tokens', 'Loss vs tokens', tps !== null && (train.length || val.length)
    ? lineChart({ xLabel: 'tokens', yLabel: 'loss', series: [{ name: 'train', points: byTokens(train) }, { name: 'val', points: byTokens(val), dots: true }], rules: tokenRules })
    : null, tps !== null && (train.length || val.length) ? undefined : 'tokens per step unknown'));
  charts.push(line('tokens-per-s', 'Tokens/s', 'tokens/s', points(run.steps, (l) => l.tokens_per_s), 'no tokens/s logged', { yZero: true }));
  charts.push(line('mfu', 'MFU', 'MFU (%)', points(run.steps, (l) => l.mfu), 'MFU n/a: no measured peak for this run (litespark peak)', { percent: true, yZero: true }));
  const sources = energySources(run);
  const label = sources.length ? sources.join(' + ') : '';
  // titles carry the kind ('measured', 'estimated'); the note under the chart names the meter
  const kinds = [...new Set(sources.map((x) => x.split(':')[0]!.trim()))].join(' + ');
  const noEnergy = 'no energy data (energy_source: none)';
  const w = power(run);
  charts.push(figure('power', `Power${kinds ? ` (${kinds})` : ''}`, w.length
    ? lineChart({ xLabel: 'step', yLabel: 'W', series: [{ name: 'power', points: w }], rules, yZero: true })
    : null, w.length ? `W = J/token × tokens/s; ${label}` : noEnergy));
  const e = cumulativeEnergy(run);
  const wh = e.joules >= 3600;
  charts.push(figure('energy', `Cumulative energy${kinds ? ` (${kinds})` : ''}`, e.points.length
    ? lineChart({ xLabel: 'step', yLabel: wh ? 'Wh' : 'J', series: [{ name: 'energy', points: e.points.map((p) => ({ x: p.x, y: wh ? p.y / 3600 : p.y })) }], rules, yZero: true })
    : null, e.points.length ? `Σ J/token × tokens per logged interval: ${fmtJoules(e.joules)}; ${label}` : noEnergy));
  charts.push(line('memory', 'Memory (peak RSS)', 'MiB', points(run.steps, (l) => (l.rss_bytes === null ? null : l.rss_bytes / 2 ** 20)), 'no memory logged', { yZero: true }));
  charts.push(line('data-wait', 'Data wait per step', 'ms', points(run.steps, (l) => l.data_wait_ms), 'no data wait logged', { yZero: true }));
  charts.push(line('lr', 'Learning rate', 'lr', points(run.steps, (l) => l.lr), 'no lr logged', { yZero: true }));
  charts.push(line('grad-norm', 'Gradient norm', 'grad norm', points(run.steps, (l) => l.grad_norm), 'no gradient norm logged', { yZero: true }));
  return charts;
}

/** Bench charts: tokens/s, MFU and J/token (when measured or estimated) of the whole-step rows per config × dtype, one bar per kernel path; per-kernel rows as GFLOP/s. */
function benchCharts(bench: BenchData): string[] {
  const rows = bench.rows;
  const steps = rows.filter((r) => r.kind === 'step' && r.ok === true);
  const kernels = rows.filter((r) => r.kind === 'kernel' && r.ok === true && typeof r.gflops === 'number');
  const group = (r: Obj) => `${show(r.config)} ${show(r.dtype)}${r.recompute ? ` ${show(r.recompute)}` : ''}`;
  const charts: string[] = [];
  const tokRows: BarRow[] = steps.filter((r) => typeof r.tokens_per_s === 'number')
    .map((r) => ({ group: group(r), bar: show(r.kernels), value: r.tokens_per_s as number, label: (r.tokens_per_s as number).toFixed(0) }));
  const speedups = steps.filter((r) => r.kernels === 'litespark' && typeof r.speedup === 'number')
    .map((r) => `${group(r)}: ${(r.speedup as number).toFixed(2)}x`);
  if (tokRows.length) charts.push(figure('bench-tokens', 'Bench: tokens/s, standard vs litespark', groupedBars(tokRows, 'tokens/s'),
    speedups.length ? `litespark speed-up over standard: ${speedups.join(', ')}` : undefined));
  const mfuRows: BarRow[] = steps.filter((r) => typeof r.mfu === 'number')
    .map((r) => ({ group: group(r), bar: show(r.kernels), value: r.mfu as number, label: fmtPct(r.mfu as number) }));
  if (mfuRows.length) charts.push(figure('bench-mfu', 'Bench: MFU, standard vs litespark', groupedBars(mfuRows, 'MFU (%)', true)));
  if (tokRows.length && !mfuRows.length) charts.push(figure('bench-mfu', 'Bench: MFU', null, 'MFU n/a in these rows (no measured peak)'));
  const jRows: BarRow[] = steps.filter((r) => typeof r.joules_per_token === 'number')
    .map((r) => ({ group: group(r), bar: show(r.kernels), value: r.joules_per_token as number, label: (r.joules_per_token as number).toPrecision(3) }));
  if (jRows.length) {
    const src = [...new Set(steps.filter((r) => typeof r.joules_per_token === 'number').map((r) => show(r.energy_source)))];
    charts.push(figure('bench-energy', 'Bench: J/token, standard vs litespark', groupedBars(jRows, 'J/token'), `energy: ${src.join('; ')}`));
  }
  if (kernels.length) {
    const kr: BarRow[] = kernels.map((r) => ({ group: `${show(r.config)} ${show(r.dtype)}`, bar: show(r.kernels), value: r.gflops as number, label: `${show(r.op)} (${show(r.kernels)})` }));
    charts.push(figure('bench-kernels', 'Bench: kernels, GFLOP/s', rowBars(kr, 'GFLOP/s')));
  }
  const failed = rows.filter((r) => r.ok === false).length;
  if (!charts.length) charts.push(figure('bench-empty', 'Bench', null, `no successful rows in ${bench.file}${failed ? ` (${failed} failed)` : ''}`));
  return charts;
}

function machineTable(m: Obj): string {
  const rows: [string, string][] = [
    ['CPU', show(m.cpu)],
    ['threads', `${show(m.threads)} of ${show(m.cores)}`],
    ['ISA path', `${show(m.isa)}${m.amx ? ', AMX present' : ''}${m.avx512_bf16 ? ', AVX512-BF16 present' : ''}`],
    ['fp32 peak', m.peak_gflops === null || m.peak_gflops === undefined ? 'n/a' : `${fixed(m.peak_gflops as number, 1)} GFLOP/s (measured)`],
  ];
  if (m.bf16_unit) rows.push(['bf16 peak', `${m.bf16_peak_gflops == null ? 'n/a' : `${fixed(m.bf16_peak_gflops as number, 1)} GFLOP/s`} on ${show(m.bf16_unit)}`]);
  rows.push(['date', show(m.date)], ['commit', `${show(m.commit)}${m.dirty ? ' (with uncommitted changes)' : ''}`]);
  return table(rows);
}

function benchSection(bench: BenchData): string {
  const failed = bench.rows.filter((r) => r.ok === false).length;
  return `<h2>Bench</h2>
<p class="sub">${esc(bench.file)}: ${bench.rows.length} rows${failed ? `, ${failed} failed (not drawn)` : ''}</p>
${bench.machine ? `<div class="cards"><div>${machineTable(bench.machine)}</div></div>` : ''}
<div class="grid">${benchCharts(bench).join('\n')}</div>`;
}

export function runReportHtml(run: RunData, bench: BenchData | null): string {
  const c = obj(run.config), r = obj(c.runtime);
  const title = `litespark run ${run.dir}`;
  const body = `<h1>${esc(title)}</h1>
<p class="sub">${esc(`${show(r.kernels)} kernels, ${show(r.dtype)}`)}</p>
<div class="cards"><div><h2>Config</h2>${configTable(run)}</div><div><h2>Run</h2>${totalsTable(run)}</div></div>
<h2>Training</h2>
<div class="grid">${runCharts(run).join('\n')}</div>
${bench ? benchSection(bench) : ''}
<footer>litespark report: ${esc(new Date().toISOString())}</footer>`;
  return page(title, body);
}

export function benchReportHtml(bench: BenchData): string {
  const title = `litespark bench ${bench.file}`;
  return page(title, `<h1>${esc(title)}</h1>\n${benchSection(bench)}\n<footer>litespark report: ${esc(new Date().toISOString())}</footer>`);
}

export interface ReportOptions {
  out?: string;
  /** Bench results to add to a run's report: a bench directory or a rows.json. */
  bench?: string;
}

/**
 * Writes the report of `dir` and returns its path and what it held. A directory with
 * metrics.jsonl is a run (bench charts from opts.bench, else from a rows.json beside the
 * metrics); one with only rows.json is bench results. Throws ReportError otherwise.
 */
export function writeReport(dir: string, opts: ReportOptions = {}): { file: string; kind: 'run' | 'bench'; bytes: number } {
  if (!existsSync(dir)) throw new ReportError(`${dir}: no such directory`);
  const out = opts.out ?? join(dir, 'report.html');
  let html: string;
  let kind: 'run' | 'bench';
  if (existsSync(join(dir, 'metrics.jsonl'))) {
    const benchPath = opts.bench ?? (existsSync(join(dir, 'rows.json')) ? dir : null);
    html = runReportHtml(loadRun(dir), benchPath === null ? null : loadBench(benchPath));
    kind = 'run';
  } else if (existsSync(join(dir, 'rows.json'))) {
    html = benchReportHtml(loadBench(dir));
    kind = 'bench';
  } else {
    throw new ReportError(`${dir}: neither a run directory (metrics.jsonl) nor bench results (rows.json)`);
  }
  writeFileSync(out, html);
  return { file: out, kind, bytes: Buffer.byteLength(html) };
}
