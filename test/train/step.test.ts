import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LlamaModel } from '../../src/model/llama.js';
import type { LlamaConfig } from '../../src/model/params.js';
import { AdamW, clipScale } from '../../src/train/optimizer.js';
import { lrAt } from '../../src/train/schedule.js';
import { trainStep } from '../../src/train/trainer.js';
import { assertClose, randInts } from '../helpers.js';

const cfg: LlamaConfig = {
  vocab_size: 37,
  hidden_size: 24,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 6,
  num_key_value_heads: 3,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  initializer_range: 0.02,
};
const hp = { beta1: 0.9, beta2: 0.95, adam_eps: 1e-8, weight_decay: 0.1, grad_clip: 1.0 };

test('lr schedule: linear warmup, cosine to min_lr at the last step', () => {
  const s = { lr: 1e-3, min_lr: 1e-4, warmup_steps: 10, steps: 110 };
  assertClose([lrAt(1, s), lrAt(5, s), lrAt(10, s)], [1e-4, 5e-4, 1e-3], { atol: 1e-15, rtol: 1e-12 }, 'warmup');
  assertClose([lrAt(60, s)], [1e-4 + 0.5 * 9e-4], { atol: 1e-15, rtol: 1e-12 }, 'cosine midpoint');
  assertClose([lrAt(110, s)], [1e-4], { atol: 1e-15, rtol: 1e-12 }, 'last step');
  assertClose([lrAt(35, s)], [1e-4 + 0.5 * 9e-4 * (1 + Math.cos(Math.PI * 0.25))], { atol: 1e-15, rtol: 1e-12 }, 'quarter');
  assert.equal(lrAt(3, { lr: 2e-3, min_lr: 0, warmup_steps: 0, steps: 5 }) < 2e-3, true);
});

test('clipScale brings the norm down to the limit and leaves small gradients alone', () => {
  assert.equal(clipScale(0.5, 1), 1);
  assert.equal(clipScale(5, 0), 1);
  assertClose([clipScale(4, 1) * 4], [1], { atol: 1e-6, rtol: 0 }, 'clipped norm');
});

// The same 4 sequences as one micro-batch of 4, or 2 accumulated micro-batches of 2, must give
// the same loss and the same parameters after several AdamW steps.
test('gradient accumulation: micro-batch x accumulation does not change the result', () => {
  const T = 7;
  const seqs = Array.from({ length: 3 }, (_, step) => ({ ids: randInts(4 * T, cfg.vocab_size, 10 + step), tg: randInts(4 * T, cfg.vocab_size, 20 + step) }));
  const run = (B: number, accum: number) => {
    const model = new LlamaModel(cfg, 'f64');
    model.params.init(5);
    const opt = new AdamW(cfg, model.params, model.grads, hp);
    const buf = model.buffers(B, T);
    const losses: number[] = [];
    seqs.forEach((s, step) => {
      let micro = 0;
      const next = (ids: Int32Array, targets: Int32Array) => {
        ids.set(s.ids.subarray(micro * B * T, (micro + 1) * B * T));
        targets.set(s.tg.subarray(micro * B * T, (micro + 1) * B * T));
        micro++;
      };
      losses.push(trainStep(model, opt, buf, next, accum, 1e-2 * (step + 1)).loss);
    });
    return { losses, params: Float64Array.from(model.params.flat.data) };
  };
  const a = run(4, 1);
  const b = run(2, 2);
  const c = run(1, 4);
  assertClose(b.losses, a.losses, { atol: 1e-12, rtol: 1e-12 }, 'loss 2x2 vs 4x1');
  assertClose(c.losses, a.losses, { atol: 1e-12, rtol: 1e-12 }, 'loss 1x4 vs 4x1');
  assertClose(b.params, a.params, { atol: 1e-12, rtol: 1e-10 }, 'params 2x2 vs 4x1');
  assertClose(c.params, a.params, { atol: 1e-12, rtol: 1e-10 }, 'params 1x4 vs 4x1');
});

test('training steps are deterministic for a seed and thread count', () => {
  const run = () => {
    const model = new LlamaModel(cfg, 'f32');
    model.params.init(11);
    const opt = new AdamW(cfg, model.params, model.grads, hp);
    const buf = model.buffers(2, 16);
    const ids = randInts(32, cfg.vocab_size, 1);
    const tg = randInts(32, cfg.vocab_size, 2);
    const losses: number[] = [];
    for (let i = 0; i < 5; i++) losses.push(trainStep(model, opt, buf, (a, b) => (a.set(ids), b.set(tg)), 1, 1e-2).loss);
    return { losses, params: Float32Array.from(model.params.flat.data) };
  };
  const a = run();
  const b = run();
  assert.deepEqual(a.losses, b.losses);
  assert.deepEqual(a.params, b.params);
  assert.ok(a.losses[4]! < a.losses[0]!, `memorising one batch must lower its loss: ${a.losses}`);
});
