// `litespark train --recompute`: the trainer under each activation checkpointing mode follows
// the very same loss curve as without (recomputation is exact), reports the memory model with
// its mode at start, and records it in config.json and summary.json.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/load.js';
import { memoryModel } from '../../src/metrics/memory.js';
import { train, type StartInfo } from '../../src/train/trainer.js';

test('12 steps of nano under recompute none, selective and full: identical losses; the memory report at start and in the run', async () => {
  const tmp = mkdtempSync(join(os.tmpdir(), 'litespark-recompute-'));
  process.env.LITESPARK_CACHE_DIR = join(tmp, 'cache');
  const curves: Record<string, number[]> = {};
  const acts: Record<string, number> = {};
  for (const recompute of ['none', 'selective', 'full'] as const) {
    const out = join(tmp, recompute);
    const config = resolveConfig({
      preset: 'nano',
      overrides: {
        'train.steps': 12, 'train.sample_tokens': 0, 'data.max_bytes': 200_000, 'runtime.recompute': recompute,
        'runtime.out': out, 'runtime.threads': 2,
      },
    });
    let info: StartInfo | undefined;
    const losses: number[] = [];
    const summary = await train(config, { onStart: (i) => (info = i), onStep: (m) => losses.push(m.loss) });
    curves[recompute] = losses;
    assert.equal(info!.recompute, recompute);
    const expected = memoryModel(config.model, { B: 8, T: 64, kernels: 'litespark', dtype: 'fp32', recompute });
    assert.deepEqual(info!.memory, expected);
    acts[recompute] = expected.activations;
    assert.deepEqual(summary.memory, { ...expected, recompute });
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).memory, { ...expected, recompute });
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).memory, { ...expected, recompute });
  }
  assert.deepEqual(curves.selective, curves.none);
  assert.deepEqual(curves.full, curves.none);
  assert.ok(acts.full! < acts.selective! && acts.selective! < acts.none!, JSON.stringify(acts));
});
