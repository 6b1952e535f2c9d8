// Generation with a KV cache against the model's own full forward: the logits of prefill +
// decode steps equal the full forward's at every position (both kernel paths, GQA 1 and 3,
// head dims 32 and 64, tied and untied head, prompts of 1 and 17 tokens); greedy generation
// is the argmax of the full forward step by step; the context limit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ContextLengthError, KvDecoder } from '../../src/infer/decoder.js';
import { generate } from '../../src/infer/generate.js';
import { argmax } from '../../src/infer/sampling.js';
import { LlamaModel, type KernelPath } from '../../src/model/llama.js';
import type { LlamaConfig } from '../../src/model/params.js';
import { sample } from '../../src/train/sample.js';
import { assertClose, maxAbs, randInts, tol } from '../helpers.js';

function config(H: number, KVH: number, D: number, tied: boolean): LlamaConfig {
  return {
    vocab_size: 97,
    hidden_size: H * D,
    intermediate_size: 3 * D + 5,
    num_hidden_layers: 2,
    num_attention_heads: H,
    num_key_value_heads: KVH,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: tied,
    initializer_range: 0.2, // logits of order 1: every layer carries signal
  };
}

function model(cfg: LlamaConfig, kernels: KernelPath, seed = 3): LlamaModel {
  const m = new LlamaModel(cfg, 'f32', kernels);
  m.params.init(seed);
  return m;
}

/** (T, V) logits of the model's full forward over ids. */
function fullLogits(m: LlamaModel, ids: ArrayLike<number>): Float32Array {
  const s = m.buffers(1, ids.length, true);
  s.ids.set(Array.from(ids));
  return Float32Array.from(m.forwardLogits(s));
}

// [H, KVH, D, tied]: GQA ratio 1 and 3, head dims 32 and 64, tied and untied embeddings
const SHAPES = [
  [4, 4, 32, false],
  [6, 2, 32, true],
  [3, 1, 64, false],
  [2, 2, 64, true],
] as const;

for (const kernels of ['standard', 'litespark'] as const) {
  for (const [H, KVH, D, tied] of SHAPES) {
    test(`prefill + decode logits equal the full forward's at every position (${kernels}, H ${H}, KVH ${KVH}, D ${D}, tied ${tied})`, () => {
      const cfg = config(H, KVH, D, tied);
      const m = model(cfg, kernels);
      const T = 40, V = cfg.vocab_size;
      const ids = randInts(T, V, 11);
      const full = fullLogits(m, ids);
      // reduction lengths on the way to a logit: the widest GEMM and the context
      const t = tol('f32', Math.max(cfg.hidden_size, cfg.intermediate_size, T), 16);
      const scaled = { atol: t.atol * Math.max(1, maxAbs(full)), rtol: t.rtol };
      const dec = new KvDecoder(m, 64);
      for (const P of [1, 17]) {
        const last = dec.prefill(ids.subarray(0, P));
        assert.equal(dec.length, P);
        assertClose(dec.prefillLogits(), full.subarray(0, P * V), scaled, `prompt ${P}: prefill logits`);
        assertClose(last, full.subarray((P - 1) * V, P * V), scaled, `prompt ${P}: last prefill row`);
        for (let pos = P; pos < T; pos++) {
          const logits = dec.step(ids[pos]!);
          assertClose(logits, full.subarray(pos * V, (pos + 1) * V), scaled, `prompt ${P}: decode at position ${pos}`);
        }
        assert.equal(dec.length, T);
      }
    });
  }
}

test('greedy generation is the argmax of the full forward step by step (both paths)', () => {
  for (const kernels of ['standard', 'litespark'] as const) {
    const cfg = config(6, 2, 32, false);
    const m = model(cfg, kernels, 5);
    const prompt = Array.from(randInts(5, cfg.vocab_size, 4));
    const dec = new KvDecoder(m, 48);
    const r = generate(dec, prompt, { maxTokens: 30, temperature: 0, topK: 0, topP: 1, seed: 0 });
    assert.equal(r.ids.length, 30);
    assert.equal(r.stopReason, 'max-tokens');
    for (let i = 0; i < r.ids.length; i++) {
      const ctx = [...prompt, ...r.ids.slice(0, i)];
      const V = cfg.vocab_size;
      const row = fullLogits(m, ctx).subarray((ctx.length - 1) * V);
      const best = argmax(row, V);
      if (best !== r.ids[i]) {
        // only a near-tie may flip (float summation order differs): then the rest diverges
        assert.ok(row[best]! - row[r.ids[i]!]! < 1e-4, `${kernels}: step ${i} took ${r.ids[i]}, the full forward's argmax is ${best}`);
        break;
      }
    }
    // and the trainer's full-forward sampler, greedy, writes the same tokens
    const buf = m.buffers(1, 48, true);
    assert.deepEqual(sample(m, buf, prompt, { maxTokens: 30, temperature: 0, topK: 0, seed: 0 }), r.ids, kernels);
  }
});

test('sampled generation with a cache draws the same tokens as the full-forward sampler (same seed)', () => {
  const cfg = config(4, 2, 32, true);
  const m = model(cfg, 'litespark', 9);
  const prompt = Array.from(randInts(3, cfg.vocab_size, 2));
  const opts = { temperature: 0.9, topK: 20, topP: 0.9, seed: 42 };
  const r = generate(new KvDecoder(m, 32), prompt, { ...opts, maxTokens: 20 });
  assert.deepEqual(sample(m, m.buffers(1, 32, true), prompt, { ...opts, maxTokens: 20 }), r.ids);
});

test('a stop id ends generation without emitting it', () => {
  const cfg = config(4, 2, 32, false);
  const m = model(cfg, 'standard');
  const prompt = [1, 2, 3];
  const dec = new KvDecoder(m, 32);
  const free = generate(dec, prompt, { maxTokens: 10, temperature: 0, topK: 0, topP: 1, seed: 0 });
  const stopAt = free.ids[4]!;
  const first = free.ids.indexOf(stopAt);
  const r = generate(dec, prompt, { maxTokens: 10, temperature: 0, topK: 0, topP: 1, seed: 0, stopIds: [stopAt] });
  assert.equal(r.stopReason, 'stop');
  assert.deepEqual(r.ids, free.ids.slice(0, first));
});

test('the context limit: a longer prompt is refused naming both lengths; generation stops when the context is full', () => {
  const cfg = config(4, 2, 32, false);
  const m = model(cfg, 'litespark');
  const dec = new KvDecoder(m, 8);
  assert.throws(() => dec.prefill(randInts(9, cfg.vocab_size, 1)), (e: unknown) =>
    e instanceof ContextLengthError && /9 tokens/.test(e.message) && /8 positions/.test(e.message));
  const r = generate(dec, [1, 2, 3], { maxTokens: 100, temperature: 0, topK: 0, topP: 1, seed: 0 });
  // positions 0..7: the prompt's 3, then 5 stepped tokens, and one more drawn from the last logits
  assert.equal(r.stopReason, 'context');
  assert.equal(r.ids.length, 6);
  assert.equal(dec.length, 8);
  assert.throws(() => dec.step(1), ContextLengthError);
});
