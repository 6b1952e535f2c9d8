// Activation checkpointing (--recompute): recomputation runs forward's own kernels on
// bit-identical inputs, so the loss and every gradient are IDENTICAL (bitwise, same thread
// count) to keeping the activations; the float64 finite-difference check holds in every mode;
// and each mode keeps less: full < selective < none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import type { Precision } from '../../src/model/linear.js';
import { LlamaModel, type KernelPath, type Recompute, type StepBuffers } from '../../src/model/llama.js';
import type { LlamaConfig } from '../../src/model/params.js';
import type { DType } from '../../src/kernels/tensor.js';
import { randInts } from '../helpers.js';
import { wholeModelFdCheck } from './gradcheck.js';

function tiny(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    vocab_size: 97, hidden_size: 36, intermediate_size: 50, num_hidden_layers: 3, num_attention_heads: 6,
    num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, initializer_range: 0.3,
    ...over,
  };
}

const MODES: Recompute[] = ['none', 'selective', 'full'];

/** Loss and gradients of two accumulated micro-batches (the second reuses every buffer). */
function lossAndGrads(model: LlamaModel, buf: StepBuffers, seed: number): { loss: number[]; grads: Uint8Array } {
  const N = buf.B * buf.T;
  model.grads.zero();
  const loss: number[] = [];
  for (let micro = 0; micro < 2; micro++) {
    buf.ids.set(randInts(N, model.config.vocab_size, seed + 10 * micro));
    buf.targets.set(randInts(N, model.config.vocab_size, seed + 10 * micro + 1));
    buf.targets[micro + 2] = -1;
    loss.push(model.forward(buf, 1 / (2 * N)));
    model.backward(buf, 1 / (2 * N));
  }
  const g = model.grads.flat.data;
  return { loss, grads: new Uint8Array(g.buffer, g.byteOffset, g.byteLength).slice() };
}

/** Index of the first element whose bytes differ, or -1. */
function firstDiff(a: Uint8Array, b: Uint8Array, bytesPer: number): number {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return Math.floor(i / bytesPer);
  return -1;
}

const CASES: Array<{ kernels: KernelPath; dtype: DType; precision?: Precision; unit?: string; cfg: Partial<LlamaConfig>; B: number; T: number }> = [
  { kernels: 'litespark', dtype: 'f32', cfg: {}, B: 3, T: 37 },
  { kernels: 'litespark', dtype: 'f64', cfg: { num_key_value_heads: 3, tie_word_embeddings: true }, B: 2, T: 19 },
  { kernels: 'litespark', dtype: 'f32', cfg: { num_attention_heads: 4, num_key_value_heads: 1, hidden_size: 32 }, B: 2, T: 70 },
  // one layer: layer 0's input is made again in resid[1] = resid[L], which the final norm's backward read first
  { kernels: 'litespark', dtype: 'f64', cfg: { num_hidden_layers: 1 }, B: 2, T: 23 },
  // bf16 mixed precision on every bf16 unit of this CPU (the matrix units fuse SwiGLU into the
  // gate/up GEMM's epilogue, the fp32 unit does not)
  ...native.bf16Units().map((unit) => ({ kernels: 'litespark' as const, dtype: 'f32' as const, precision: 'bf16' as const, unit, cfg: {}, B: 2, T: 29 })),
  { kernels: 'standard', dtype: 'f32', precision: 'bf16', cfg: {}, B: 2, T: 29 },
  // widths past the kernels' vector loops: C = 136 (D = 34), F = 200
  { kernels: 'litespark', dtype: 'f32', cfg: { hidden_size: 136, num_attention_heads: 4, intermediate_size: 200, num_hidden_layers: 2 }, B: 2, T: 45 },
  { kernels: 'standard', dtype: 'f32', cfg: {}, B: 3, T: 37 },
  { kernels: 'standard', dtype: 'f64', cfg: { num_key_value_heads: 3, tie_word_embeddings: true }, B: 2, T: 19 },
  { kernels: 'standard', dtype: 'f32', cfg: { num_attention_heads: 4, num_key_value_heads: 1, hidden_size: 32 }, B: 2, T: 70 },
];

for (const k of CASES) {
  const cfg = tiny(k.cfg);
  const what = `${k.kernels}, ${k.dtype}${k.precision ? ` ${k.precision}` : ''}${k.unit ? ` on ${k.unit}` : ''}, B=${k.B}, T=${k.T}, ` +
    `H=${cfg.num_attention_heads}, KVH=${cfg.num_key_value_heads}${cfg.tie_word_embeddings ? ', tied' : ''}`;
  test(`selective and full recomputation give bitwise the loss and gradients of none (${what})`, (t) => {
    native.setThreads(2);
    const unitBefore = native.bf16Unit();
    if (k.unit) native.setBf16Unit(k.unit);
    t.after(() => native.setBf16Unit(unitBefore));
    const model = new LlamaModel(cfg, k.dtype, k.kernels, k.precision ?? 'fp32');
    model.params.init(5);
    for (const s of model.params.specs) if (s.init === 'ones') native.randn(model.params.get(s.name).data, s.shape[0], 9, 1, 0.2);
    const ref = lossAndGrads(model, model.buffers(k.B, k.T), 40);
    const bytesPer = k.dtype === 'f64' ? 8 : 4;
    for (const mode of ['selective', 'full'] as const) {
      const got = lossAndGrads(model, model.buffers(k.B, k.T, false, mode), 40);
      assert.deepEqual(got.loss, ref.loss, `${mode}: loss`);
      const i = firstDiff(got.grads, ref.grads, bytesPer);
      if (i >= 0) {
        const name = [...model.grads.offsets].filter(([, o]) => o <= i).sort((a, b) => b[1] - a[1])[0]![0];
        assert.fail(`${mode}: gradient element ${i} (${name}) differs: ${model.grads.flat.data[i]} after the run`);
      }
    }
  });
}

// Whole-model gradient check in float64 under each recompute mode, both kernel paths.
for (const kernels of ['standard', 'litespark'] as const) {
  for (const mode of ['selective', 'full'] as const) {
    test(`whole-model gradients equal finite differences under --recompute ${mode} (${kernels}, f64, GQA 2)`, () => {
      const cfg = tiny({ vocab_size: 11, hidden_size: 16, intermediate_size: 10, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
      wholeModelFdCheck(new LlamaModel(cfg, 'f64', kernels), mode);
    });
  }
}

// One layer on the fused path: its input is made again (the embedding's gather) in the buffer of
// the last residual, which the final norm's backward reads first; full mode's mid lives in datt.
for (const mode of ['none', 'full'] as const) {
  test(`whole-model gradients equal finite differences with one layer (litespark, f64, --recompute ${mode})`, () => {
    const cfg = tiny({ vocab_size: 11, hidden_size: 16, intermediate_size: 10, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2 });
    wholeModelFdCheck(new LlamaModel(cfg, 'f64', 'litespark'), mode);
  });
}

test('each recompute mode keeps less than the one before it, on both kernel paths', () => {
  const cfg = tiny({ vocab_size: 512, hidden_size: 64, intermediate_size: 192, num_hidden_layers: 4, num_attention_heads: 4 });
  for (const kernels of ['standard', 'litespark'] as const) {
    const model = new LlamaModel(cfg, 'f32', kernels);
    const bytes = MODES.map((m) => model.buffers(1, 128, false, m).activationBytes());
    assert.ok(bytes[0]! > bytes[1]! && bytes[1]! > bytes[2]!, `${kernels}: none/selective/full ${bytes.join(' / ')}`);
    // Recomputation needs no more gradient scratch than keeping, but for the fused MLP's one dgu
    // buffer (T x 2F fp32), into which it recomputes gate/up: without recomputation dgu goes in
    // place into the layer's kept gate/up.
    const ws = MODES.map((m) => model.buffers(1, 128, false, m).workspaceBytes());
    const dgu = kernels === 'litespark' ? 128 * 2 * 192 * 4 : 0;
    assert.deepEqual(ws, [ws[0], ws[0]! + dgu, ws[0]! + dgu], `${kernels}: workspace ${ws.join(' / ')}`);
  }
});

test('a forward-only pass (evaluation, sampling logits) is the same in every mode', () => {
  const cfg = tiny();
  const model = new LlamaModel(cfg, 'f32', 'litespark');
  model.params.init(2);
  const ids = randInts(2 * 21, cfg.vocab_size, 3), tg = randInts(2 * 21, cfg.vocab_size, 4);
  const out = MODES.map((m) => {
    const b = model.buffers(2, 21, true, m);
    b.ids.set(ids);
    b.targets.set(tg);
    const loss = model.forward(b);
    return { loss, logits: Array.from(model.forwardLogits(b)) };
  });
  for (const o of out.slice(1)) assert.deepEqual(o, out[0]);
});

test('backward runs once per training forward: not after an evaluation forward or sampling logits, not twice', () => {
  const cfg = tiny();
  for (const kernels of ['standard', 'litespark'] as const) {
    const model = new LlamaModel(cfg, 'f32', kernels);
    model.params.init(2);
    const b = model.buffers(2, 9, true);
    b.ids.set(randInts(18, cfg.vocab_size, 5));
    b.targets.set(randInts(18, cfg.vocab_size, 6));
    const refused = /backward: these buffers hold no training forward/;
    assert.throws(() => model.backward(b, 1 / 18), refused, `${kernels}: before any forward`);
    model.forward(b, 1 / 18);
    model.backward(b, 1 / 18);
    assert.throws(() => model.backward(b, 1 / 18), refused, `${kernels}: a second backward`);
    model.forward(b, 1 / 18);
    model.forwardLogits(b);
    assert.throws(() => model.backward(b, 1 / 18), refused, `${kernels}: after sampling logits`);
    if (kernels === 'litespark') {
      model.forward(b); // evaluation: the fused path computes no head gradient and keeps no gate/up
      assert.throws(() => model.backward(b, 1 / 18), refused, 'litespark: after an evaluation forward');
    }
  }
});
