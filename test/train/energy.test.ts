// Energy in training: every logged step carries J/token and its labelled source, summary.json
// the totals (kWh and CO2e at the configured grid intensity), checkpoints the joules so far, and
// a resumed run adds its own to them.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readTrainerStateJson, stepDirName } from '../../src/checkpoint/checkpoint.js';
import { resolveConfig } from '../../src/config/load.js';
import { openEnergyMeter } from '../../src/metrics/energy.js';
import { train } from '../../src/train/trainer.js';

const tmp = mkdtempSync(join(os.tmpdir(), 'litespark-energy-train-'));
process.env.LITESPARK_CACHE_DIR = join(tmp, 'cache');
after(() => rmSync(tmp, { recursive: true, force: true }));

const OVERRIDES = {
  'train.steps': 6, 'train.sample_tokens': 0, 'train.eval_every': 0, 'train.log_every': 1, 'train.checkpoint_every': 3,
  'train.keep_checkpoints': 10, 'data.max_bytes': 200_000, 'runtime.threads': 2, 'runtime.grid_gco2_per_kwh': 100,
  'runtime.watts': 50,
};

test('J/token per step, totals in the summary, joules in checkpoints, added up across a resume', async () => {
  // With no counter here, runtime.watts is the estimate; with RAPL or NVML the counter wins.
  const expected = openEnergyMeter({ watts: 50 }).meter;
  const label = `${expected.kind}: ${expected.source}`;
  const out = join(tmp, 'run');
  const a = await train(resolveConfig({ preset: 'nano', overrides: { ...OVERRIDES, 'runtime.out': out } }));
  const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => typeof r.loss === 'number');
  assert.equal(steps.length, 6);
  for (const s of steps) {
    assert.equal(s.energy_source, label);
    assert.ok(typeof s.joules_per_token === 'number' && s.joules_per_token >= 0, `step ${s.step}: ${s.joules_per_token}`);
  }
  const e = a.energy!;
  assert.ok(e, `no energy: ${a.energyError}`);
  assert.equal(e.kind, expected.kind);
  assert.equal(e.source, label);
  assert.ok(e.joules > 0);
  assert.equal(e.joulesThisRun, e.joules);
  assert.ok(Math.abs(e.kwh - e.joules / 3.6e6) < 1e-15);
  assert.ok(Math.abs(e.co2eGrams - e.kwh * 100) < 1e-12);
  assert.equal(e.gridGco2PerKwh, 100);
  assert.ok(Math.abs(e.joulesPerToken - e.joules / a.tokens) < 1e-12);
  if (expected.name === 'watts') {
    // 50 W x wall time: at least the steps' own time
    const stepSeconds = steps.reduce((t, s) => t + s.step_ms, 0) / 1000;
    assert.ok(e.joules >= 50 * stepSeconds * 0.999, `${e.joules} J < 50 W x ${stepSeconds} s`);
  }
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.energy.source, label);

  // The step-3 checkpoint carries the joules so far; resuming from it adds this run's.
  const ckpt = join(out, 'checkpoints', stepDirName(3));
  const state = readTrainerStateJson(ckpt)!;
  assert.equal(state.energy.source, label);
  assert.ok(state.energy.joules! > 0 && state.energy.joules! < e.joules);
  const b = await train(resolveConfig({ base: state.config, overrides: { 'runtime.out': join(tmp, 'resumed') } }), {}, { resume: ckpt });
  assert.equal(b.resumedFrom, 3);
  const r = b.energy!;
  assert.ok(r.joulesThisRun > 0);
  assert.ok(Math.abs(r.joules - (state.energy.joules! + r.joulesThisRun)) < 1e-9, `${r.joules} != ${state.energy.joules} + ${r.joulesThisRun}`);
  assert.ok(Math.abs(r.joulesPerToken - r.joules / (6 * (a.tokens / 6))) < 1e-12, 'J/token over all six steps');
  const last = readTrainerStateJson(join(tmp, 'resumed', 'checkpoints', stepDirName(6)))!;
  assert.ok(last.energy.joules! >= r.joules);
});
