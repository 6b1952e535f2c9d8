// litespark report: a fake run directory (a resumed run with measured energy, evals, a summary;
// a second one without energy) and fake bench rows -> one HTML file with one chart per series,
// every config value escaped, no URL; then the same file in a real headless Chromium: it loads,
// logs no error, and each chart is laid out with drawn marks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadRun, parseMetrics } from '../../src/report/load.js';
import { writeReport } from '../../src/report/report.js';
import { cumulativeEnergy, runTotals, thin } from '../../src/report/series.js';
import { findChromium, loadInChromium } from './chromium.js';

const BIN = fileURLToPath(new URL('../../../bin/litespark.js', import.meta.url));
const tmp = mkdtempSync(join(os.tmpdir(), 'litespark-report-'));
const EVIL = '</td><script>alert("pwned")</script>';
const TOKENS_PER_STEP = 256; // micro-batch 2 × seq 128

const RUN_CHARTS = ['loss-step', 'loss-tokens', 'tokens-per-s', 'mfu', 'power', 'energy', 'memory', 'data-wait', 'lr', 'grad-norm'];
const BENCH_CHARTS = ['bench-tokens', 'bench-mfu', 'bench-energy'];

function stepLine(step: number, from: number, loss: number, energy: boolean) {
  return {
    step, steps: 40, loss, lr: 1e-3 * Math.min(1, step / 5), grad_norm: 1 / step, tokens: step * TOKENS_PER_STEP,
    step_ms: 256, tokens_per_s: 1000, mfu: 0.25 + step / 1000, elapsed_s: (step - from) * 0.256, eta_s: 0,
    rss_bytes: (100 + step) * 2 ** 20, joules_per_token: energy ? 0.5 : null, energy_source: energy ? 'measured' : 'none',
    data_wait_ms: step % 7 === 0 ? 3 : 0,
  };
}

/**
 * A run resumed once: the first process logged steps 1..30 and died (no summary), the second
 * resumed from the checkpoint at step 20, logged 21..40 with lower losses, evals and a summary.
 */
function makeRun(dir: string, energy: boolean): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    model: { vocab_size: 512, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 },
    train: { steps: 40, micro_batch_size: 2, grad_accum_steps: 1, seq_len: 128, lr: 1e-3, min_lr: 1e-4, warmup_steps: 5 },
    data: { source: EVIL },
    runtime: { threads: 0, kernels: 'litespark', dtype: 'fp32', recompute: 'none' },
    machine: { cpu: 'Test CPU <b>bold</b> & "quoted"', isa: 'avx2', threads: 2 },
  }));
  const lines: object[] = [{ step: 0, val_loss: 6 }];
  for (let s = 1; s <= 30; s++) lines.push(stepLine(s, 0, 5 - s * 0.05, energy));
  lines.push({ step: 20, val_loss: 4.5 });
  for (let s = 21; s <= 40; s++) lines.push(stepLine(s, 20, 4 - s * 0.05, energy));
  lines.push({ step: 40, val_loss: 3.5 });
  const summary = { steps: 40, tokens: 20 * TOKENS_PER_STEP, seconds: 5.12, tokensPerSecond: 1000, mfu: 0.28, finalValLoss: 3.5, finalTrainLoss: 2 };
  lines.push({ summary });
  writeFileSync(join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary));
}

function benchRow(config: string, kernels: string, dtype: string, tps: number, mfu: number | null) {
  return {
    kind: 'step', config, kernels, dtype, threads: 2, isa: 'avx2', cpu: 'Test CPU', commit: null, node: 'v20', loadavg_1m: 0,
    ok: true, error: null, tokens_per_s: tps, step_ms_median: 1, step_ms_min: 1, step_ms_max: 1, steps: 10, warmup: 3, mfu,
    peak_gflops: 100, peak_bytes: 1, native_peak_bytes: 1, activation_bytes: 1, joules_per_token: null, energy_source: 'none',
    tokens_per_step: 256, flops_per_token: 1, speedup: kernels === 'litespark' ? 2 : null,
  };
}

const ROWS = [
  { ...benchRow('S', 'standard', 'fp32', 1000, 0.1), joules_per_token: 0.02, energy_source: 'estimated: 2 cores x 10 W' },
  { ...benchRow('S', 'litespark', 'fp32', 2000, 0.2), joules_per_token: 0.01, energy_source: 'estimated: 2 cores x 10 W' },
  benchRow('XS', 'standard', 'bf16', 3000, 0.05), benchRow('XS', 'litespark', 'bf16', 6000, 0.1),
  benchRow('<script>x</script>', 'litespark', 'fp32', 10, null),
  { ...benchRow('L', 'litespark', 'fp32', 0, null), ok: false, error: 'out of memory', tokens_per_s: null },
];

const runDir = join(tmp, 'run');
makeRun(runDir, true);
writeFileSync(join(runDir, 'rows.json'), JSON.stringify(ROWS)); // a run directory holding bench rows
const plainDir = join(tmp, 'run-no-energy');
makeRun(plainDir, false);
const benchDir = join(tmp, 'bench');
mkdirSync(benchDir);
writeFileSync(join(benchDir, 'rows.json'), JSON.stringify(ROWS));
writeFileSync(join(benchDir, 'machine.json'), JSON.stringify({ machine: { cpu: 'Test CPU', threads: 2, cores: 2, isa: 'avx2', peak_gflops: 100, date: 'today', commit: 'abc' } }));

/** The ids of the figures that hold a chart (an SVG), and of those that hold a note instead. */
function figures(html: string): { charts: string[]; empty: string[] } {
  const charts: string[] = [], empty: string[] = [];
  for (const m of html.matchAll(/<figure class="(chart|chart-empty)" id="([^"]+)">([\s\S]*?)<\/figure>\s*(?=<figure class="chart|<\/div>)/g)) {
    if (m[1] === 'chart') {
      assert.match(m[3]!, /<svg[\s\S]*<(path|rect|line)/, `${m[2]}: no drawn SVG`);
      charts.push(m[2]!);
    } else empty.push(m[2]!);
  }
  return { charts, empty };
}

function assertNoUrl(html: string): void {
  assert.doesNotMatch(html, /\b(https?|ftp|data):/i, 'a URL or data: URI in the page');
  assert.doesNotMatch(html, /\s(src|href|xlink:href)=/i, 'a src/href attribute');
  assert.doesNotMatch(html, /@import|url\(/i, 'a CSS import or url()');
  assert.doesNotMatch(html, /<(script|link|iframe|img)\b/i, 'a script, link, iframe or img element');
}

test('metrics of a resumed run: two segments, the last value per step, the resume point', () => {
  const { segments } = parseMetrics(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8'));
  assert.deepEqual(segments.map((s) => [s.resumedFrom, s.steps.length, s.evals.length, s.summary !== null]), [[0, 30, 1, false], [20, 20, 2, true]]);
  const run = loadRun(runDir);
  assert.deepEqual(run.steps.map((l) => l.step), Array.from({ length: 40 }, (_, i) => i + 1));
  assert.equal(run.steps[24]!.loss, 4 - 25 * 0.05, 'step 25 comes from the resumed process');
  assert.equal(run.steps[9]!.loss, 5 - 10 * 0.05, 'step 10 only the first process logged');
  assert.deepEqual(run.evals.map((e) => e.step), [0, 20, 40]);
  // a metrics.jsonl cut mid-line by a crash: the line is skipped and named
  assert.deepEqual(parseMetrics('{"step":1,"loss":2}\n{"step":2,"lo').badLines, [2]);
});

test('totals over segments and energy by hand', () => {
  const run = loadRun(runDir);
  const t = runTotals(run);
  assert.equal(t.tokens, 40 * TOKENS_PER_STEP);
  assert.ok(Math.abs(t.seconds! - (30 * 0.256 + 5.12)) < 1e-9, `seconds ${t.seconds}`); // died process: its last elapsed_s
  assert.ok(Math.abs(t.tokensPerSecond! - (50 * TOKENS_PER_STEP) / (30 * 0.256 + 5.12)) < 1e-9);
  const e = cumulativeEnergy(run);
  assert.equal(e.joules, 0.5 * 40 * TOKENS_PER_STEP); // J/token × every step's tokens, overlap counted once
  assert.equal(t.joulesPerToken, 0.5);
  assert.equal(t.energyLabel, 'measured');
  assert.equal(t.energyFrom, 'metrics');
  assert.equal(runTotals(loadRun(plainDir)).joules, null);
  // the trainer's summary.energy (every step, across resumes) is preferred to the logged lines
  run.summary = { ...run.summary, energy: { kind: 'measured', source: 'measured: RAPL package-0', joules: 7000, joulesPerToken: 0.68, kwh: 7000 / 3.6e6, co2eGrams: 0.8 } };
  const ts = runTotals(run);
  assert.deepEqual([ts.joules, ts.joulesPerToken, ts.energyLabel, ts.energyFrom, ts.co2eGrams], [7000, 0.68, 'measured: RAPL package-0', 'summary', 0.8]);
  // thinning keeps spikes and the last point
  const ps = Array.from({ length: 10000 }, (_, i) => ({ x: i, y: i === 4321 ? 99 : 1 }));
  const th = thin(ps, 1000);
  assert.ok(th.length <= 1001 && th.some((p) => p.y === 99) && th.at(-1)!.x === 9999);
});

test('run report: one chart per series, bench charts, energy labelled, text escaped, no URL', () => {
  const r = writeReport(runDir);
  assert.equal(r.file, join(runDir, 'report.html'));
  const html = readFileSync(r.file, 'utf8');
  const f = figures(html);
  assert.deepEqual(f.charts, [...RUN_CHARTS, ...BENCH_CHARTS]);
  assert.deepEqual(f.empty, []);
  assert.match(html, /<figcaption>Power \(measured\)<\/figcaption>/);
  assert.match(html, /resumed at 20/);
  assert.match(html, /energy: estimated: 2 cores x 10 W/);
  assert.match(html, /litespark speed-up over standard: S fp32: 2\.00x, XS bf16: 2\.00x/);
  assert.ok(!html.includes(EVIL) && !html.includes('<b>bold'), 'raw config text in the page');
  assert.ok(html.includes('&lt;/td&gt;&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;'), 'escaped config value missing');
  assert.ok(html.includes('&lt;script&gt;x&lt;/script&gt;'), 'bench config name not escaped in the chart');
  // MFU axes in percent, the fractions scaled once: bench MFU up to 20% -> ticks up to 20
  const mfuFig = /id="bench-mfu">([\s\S]*?)<\/figure>/.exec(html)![1]!;
  const ticks = /aria-label="y-axis tick label"[^>]*>([\s\S]*?)<\/g>/.exec(mfuFig)![1]!;
  const top = Math.max(...[...ticks.matchAll(/>([\d.,]+)</g)].map((m) => Number(m[1]!.replace(/,/g, ''))));
  assert.ok(top >= 15 && top <= 25, `bench MFU axis tops at ${top}`);
  assertNoUrl(html);
  assert.ok(r.bytes < 300_000, `report is ${r.bytes} bytes`);
});

test('run without energy: "no energy data" in place of the power and energy charts', () => {
  const out = join(tmp, 'plain.html');
  writeReport(plainDir, { out });
  const html = readFileSync(out, 'utf8');
  const f = figures(html);
  assert.deepEqual(f.charts, RUN_CHARTS.filter((c) => c !== 'power' && c !== 'energy'));
  assert.deepEqual(f.empty, ['power', 'energy']);
  assert.match(html, /no energy data/);
  assertNoUrl(html);
});

test('CLI: litespark report on a run, a bench directory (--out), and bad input', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, [BIN, 'report', ...args], { encoding: 'utf8', timeout: 30_000 });
  const a = cli([plainDir]);
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stdout, /run report/);
  assert.ok(existsSync(join(plainDir, 'report.html')));
  const out = join(tmp, 'bench.html');
  const b = cli([benchDir, '--out', out]);
  assert.equal(b.status, 0, b.stderr);
  const html = readFileSync(out, 'utf8');
  assert.deepEqual(figures(html).charts, BENCH_CHARTS);
  assertNoUrl(html);
  const c = cli([join(tmp, 'no-such-run')]);
  assert.equal(c.status, 2);
  assert.match(c.stderr, /no-such-run: no such directory/);
  const d = cli([tmp]);
  assert.equal(d.status, 2);
  assert.match(d.stderr, /neither a run directory/);
});

test('headless chromium: the report loads with no console error and every chart laid out with marks', (t) => {
  const chromium = findChromium();
  if (!chromium) {
    t.skip('chromium not installed: apt-get install chromium');
    return;
  }
  // The checker can fail: a page with a missing image, a console.error and an empty chart.
  const bad = join(tmp, 'bad.html');
  writeFileSync(bad, '<!doctype html><html><head><title>bad</title></head><body><img src="missing.png"><figure class="chart" id="empty"></figure><script>console.error("probe error")</script></body></html>');
  const b = loadInChromium(chromium, bad);
  assert.ok(b.probe, `chromium gave no DOM (status ${b.status}): ${b.stderrTail}`);
  assert.ok(b.probe.errors.some((e) => e.includes('missing.png')) && b.probe.errors.includes('probe error'), JSON.stringify(b.probe.errors));
  assert.ok(b.console.some((l) => l.includes('probe error')), 'console message not seen on stderr');
  assert.deepEqual(b.probe.charts, [{ id: 'empty', kind: 'none', width: 0, height: 0, marks: 0, data: 0 }]);

  const file = writeReport(runDir).file;
  const r = loadInChromium(chromium, file);
  assert.ok(r.probe, `the page did not load (status ${r.status}): ${r.stderrTail}`);
  assert.deepEqual(r.probe.errors, []);
  assert.deepEqual(r.console, []);
  assert.match(r.probe.title, /litespark run/);
  assert.deepEqual(r.probe.charts.map((c) => c.id), [...RUN_CHARTS, ...BENCH_CHARTS]);
  for (const c of r.probe.charts) {
    assert.equal(c.kind, 'svg', c.id);
    assert.ok(c.width > 200 && c.height > 100, `${c.id}: laid out ${c.width}×${c.height}`);
    assert.ok(c.marks >= 5, `${c.id}: ${c.marks} drawn marks`);
    // a line per series (loss: train and val, and val's dots), a bar per bench row (J/token: the S pair)
    const min = c.id.startsWith('loss') ? 5 : c.id === 'bench-energy' ? 2 : c.id.startsWith('bench') ? 4 : 1;
    assert.ok(c.data >= min, `${c.id}: ${c.data} data marks (want >= ${min})`);
  }
});
