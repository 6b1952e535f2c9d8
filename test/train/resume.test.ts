// Exact resume: a run stopped (by schedule or by a stop request) and continued from its
// checkpoint reproduces the uninterrupted run's losses, gradient norms and final weights bit for
// bit (same seed, same threads).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { listCheckpoints, readTrainerStateJson, stepDirName } from '../../src/checkpoint/checkpoint.js';
import { resolveConfig } from '../../src/config/load.js';
import { train } from '../../src/train/trainer.js';

const tmp = mkdtempSync(join(os.tmpdir(), 'litespark-resume-'));
process.env.LITESPARK_CACHE_DIR = join(tmp, 'cache');
after(() => rmSync(tmp, { recursive: true, force: true }));

const OVERRIDES = {
  'train.steps': 12, 'train.sample_tokens': 0, 'train.eval_every': 4, 'train.log_every': 1, 'train.keep_checkpoints': 10,
  'data.max_bytes': 200_000, 'runtime.threads': 2,
};

function curve(runDir: string): Array<{ step: number; loss: number; grad_norm: number }> {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((r) => typeof r.loss === 'number').map((r) => ({ step: r.step, loss: r.loss, grad_norm: r.grad_norm }));
}

function weights(runDir: string, step: number): Buffer {
  return readFileSync(join(runDir, 'checkpoints', stepDirName(step), 'model.safetensors'));
}

test('stopped at a scheduled checkpoint or by a stop request, resumed: the same losses and weights bit for bit', async () => {
  const full = join(tmp, 'full');
  const a = await train(resolveConfig({ preset: 'nano', overrides: { ...OVERRIDES, 'train.checkpoint_every': 6, 'runtime.out': full } }));
  assert.equal(a.steps, 12);
  assert.deepEqual(listCheckpoints(join(full, 'checkpoints')).map((c) => c.step), [6, 12]);
  const want = curve(full);
  assert.equal(want.length, 12);

  // Resume from the step-6 checkpoint into another run directory.
  const ckpt = join(full, 'checkpoints', stepDirName(6));
  const state = readTrainerStateJson(ckpt)!;
  const resumed = join(tmp, 'resumed');
  const b = await train(resolveConfig({ base: state.config, overrides: { 'runtime.out': resumed } }), {}, { resume: ckpt });
  assert.equal(b.resumedFrom, 6);
  assert.deepEqual(curve(resumed), want.slice(6));
  assert.ok(weights(resumed, 12).equals(weights(full, 12)), 'final weights differ');

  // A stop request after 4 steps saves step 4; continuing from it gives the same run again.
  let n = 0;
  const stopped = join(tmp, 'stopped');
  const c = await train(resolveConfig({ preset: 'nano', overrides: { ...OVERRIDES, 'runtime.out': stopped } }), {
    onStep: () => void n++,
    shouldStop: () => n >= 4,
  });
  assert.equal(c.interrupted, true);
  assert.equal(c.steps, 4);
  assert.deepEqual(listCheckpoints(join(stopped, 'checkpoints')).map((x) => x.step), [4]);
  const s4 = join(stopped, 'checkpoints', stepDirName(4));
  const d = await train(resolveConfig({ base: readTrainerStateJson(s4)!.config, overrides: {} }), {}, { resume: s4 });
  assert.equal(d.steps, 12);
  assert.deepEqual(curve(stopped), want);
  assert.ok(weights(stopped, 12).equals(weights(full, 12)), 'final weights differ after a stop and resume');
});

test('bf16 (on this CPU\'s bf16 unit): resumed from a checkpoint, the same losses and weights bit for bit (the bf16 weight copy is remade from the loaded weights)', async () => {
  const o = { ...OVERRIDES, 'train.steps': 8, 'train.eval_every': 4, 'runtime.dtype': 'bf16' };
  const full = join(tmp, 'bf16-full');
  await train(resolveConfig({ preset: 'nano', overrides: { ...o, 'train.checkpoint_every': 4, 'runtime.out': full } }));
  const want = curve(full);
  assert.equal(want.length, 8);
  const ckpt = join(full, 'checkpoints', stepDirName(4));
  const resumed = join(tmp, 'bf16-resumed');
  const b = await train(resolveConfig({ base: readTrainerStateJson(ckpt)!.config, overrides: { 'runtime.out': resumed } }), {}, { resume: ckpt });
  assert.equal(b.resumedFrom, 4);
  assert.deepEqual(curve(resumed), want.slice(4));
  assert.ok(weights(resumed, 8).equals(weights(full, 8)), 'final weights differ');
});
