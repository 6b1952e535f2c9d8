// fillDtypeRatios (src/bench/run.ts): a run of fp32 and bf16 rows gives each bf16 row its tokens/s
// over the fp32 row of the same config, kernels and recompute mode, and the table a column for it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stepTable } from '../../src/bench/report.js';
import { fillDtypeRatios } from '../../src/bench/run.js';
import type { StepRow } from '../../src/bench/spec.js';

const row = (config: string, kernels: string, dtype: string, tokens: number | null, recompute?: string): StepRow =>
  ({ kind: 'step', config, kernels, dtype, tokens_per_s: tokens, ok: tokens !== null, ...(recompute ? { recompute } : {}),
    step_ms_median: 1, step_ms_min: 1, step_ms_max: 1, mfu: 0.5, peak_bytes: 1, speedup: null, joules_per_token: null, energy_source: 'none' }) as unknown as StepRow;

test('fillDtypeRatios: bf16 rows over the fp32 row of the same config, kernels and recompute mode', () => {
  const rows = [
    row('S', 'standard', 'fp32', 100), row('S', 'litespark', 'fp32', 200), row('L', 'litespark', 'fp32', 300),
    row('S', 'standard', 'bf16', 150), row('S', 'litespark', 'bf16', 500), row('L', 'litespark', 'bf16', 900),
    row('XS', 'litespark', 'bf16', 50), // no fp32 row of XS
  ];
  fillDtypeRatios(rows);
  assert.deepEqual(rows.map((r) => r.vs_fp32), [undefined, undefined, undefined, 1.5, 2.5, 3, null]);
  const t = stepTable(rows);
  const col = t.head.indexOf('bf16 vs fp32');
  assert.ok(col > 0, t.head.join(', '));
  assert.deepEqual(t.rows.map((r) => r[col]), ['—', '—', '—', '1.50x', '2.50x', '3.00x', '—']);
});

test('fillDtypeRatios: recompute modes pair with their own mode; a failed fp32 row gives no ratio', () => {
  const rows = [
    row('L', 'litespark', 'fp32', 400, 'none'), row('L', 'litespark', 'fp32', 200, 'full'),
    row('L', 'litespark', 'bf16', 800, 'none'), row('L', 'litespark', 'bf16', 500, 'full'),
    row('S', 'litespark', 'fp32', null), row('S', 'litespark', 'bf16', 700),
  ];
  fillDtypeRatios(rows);
  assert.deepEqual(rows.map((r) => r.vs_fp32), [undefined, undefined, 2, 2.5, undefined, null]);
});

test('fillDtypeRatios: a run of one dtype gets no ratio and no column', () => {
  const rows = [row('S', 'standard', 'bf16', 100), row('S', 'litespark', 'bf16', 200)];
  fillDtypeRatios(rows);
  assert.ok(rows.every((r) => !Object.hasOwn(r, 'vs_fp32')));
  assert.ok(!stepTable(rows).head.includes('bf16 vs fp32'));
});
