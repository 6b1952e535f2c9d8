// bf16 training on a matrix unit keeps the fused path's GEMM-only operands in bf16: the weights'
// working copy (Bf16Weights, rewritten by AdamW in its pass), the norm outputs, the SwiGLU
// activation, dgu and dqkv. Each is rounded exactly as the unit rounds its fp32 value while
// packing, so a step must be bit for bit the step of the same model with every operand in fp32
// (opts.bf16Operands false), in every recompute mode, over optimizer steps, and after the fp32
// weights change by any other way (init, a checkpoint load, touch()).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { LlamaModel, type Recompute } from '../../src/model/llama.js';
import type { LlamaConfig } from '../../src/model/params.js';
import { AdamW } from '../../src/train/optimizer.js';
import { randInts } from '../helpers.js';
import { MATRIX_UNITS, withUnit } from '../kernels/harness.js';

// Awkward sizes: F = 100 (not a multiple of 16 or 256), V = 300, C = 64, GQA 2, N = 2 x 37.
const CFG: LlamaConfig = {
  vocab_size: 300, hidden_size: 64, intermediate_size: 100, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, initializer_range: 0.1,
};
const HP = { beta1: 0.9, beta2: 0.95, adam_eps: 1e-8, weight_decay: 0.1, grad_clip: 1 };
const B = 2, T = 37;

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: [${i}] ${a[i]} vs ${b[i]}`);
}

/** Three optimizer steps of `model` on fixed batches; the losses, then the final gradients and weights. */
function run(model: LlamaModel, recompute: Recompute): { losses: number[]; grads: Float32Array; params: Float32Array } {
  model.params.init(3);
  const opt = new AdamW(model.config, model.params, model.grads, HP, model.bf16Weights);
  const buf = model.buffers(B, T, false, recompute);
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    buf.ids.set(randInts(B * T, CFG.vocab_size, 10 + step));
    const tg = randInts(B * T, CFG.vocab_size, 20 + step);
    tg[3] = -1;
    buf.targets.set(tg);
    const dloss = 1 / (B * T);
    model.grads.zero();
    losses.push(model.forward(buf, dloss));
    model.backward(buf, dloss);
    if (step < 2) opt.update(1e-2);
  }
  return { losses, grads: Float32Array.from(model.grads.flat.data), params: Float32Array.from(model.params.flat.data) };
}

test('bf16 operands on a matrix unit: steps bit for bit those with fp32 operands, every recompute mode, tied and untied', { skip: MATRIX_UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  for (const unit of MATRIX_UNITS)
    withUnit(unit, () => {
      for (const tie of [false, true])
        for (const recompute of ['none', 'selective', 'full'] as const) {
          const cfg = { ...CFG, tie_word_embeddings: tie };
          const kept = new LlamaModel(cfg, 'f32', 'litespark', 'bf16');
          const plain = new LlamaModel(cfg, 'f32', 'litespark', 'bf16', { bf16Operands: false });
          assert.ok(kept.bf16Weights !== null && plain.bf16Weights === null);
          const a = run(kept, recompute), b = run(plain, recompute);
          const what = `${unit} ${recompute}${tie ? ' tied' : ''}`;
          assert.deepEqual(a.losses, b.losses, `${what}: losses`);
          sameBits(a.grads, b.grads, `${what}: gradients after 2 updates`);
          sameBits(a.params, b.params, `${what}: weights after 2 updates`);
          // the copy AdamW wrote is the rounding of the updated weights
          const copy = kept.bf16Weights!;
          const want = new Uint16Array(copy.hi - copy.lo);
          native.castToBf16(want, kept.params.flat.data.subarray(copy.lo, copy.hi), want.length);
          // it holds every matrix the GEMMs read: the embedding only when it is the head
          assert.equal(copy.lo === 0, tie, `${unit} ${recompute}: the copy starts at the embedding exactly when tied`);
          sameBits(kept.bf16Weights!.flat.data, want, `${what}: the bf16 copy`);
        }
    });
});

test('the bf16 weight copy follows every change of the fp32 weights (init, direct writes + touch, AdamW)', { skip: MATRIX_UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  const model = new LlamaModel(CFG, 'f32', 'litespark', 'bf16');
  const ref = new LlamaModel(CFG, 'f32', 'litespark', 'bf16', { bf16Operands: false });
  const buf = model.buffers(B, T), rbuf = ref.buffers(B, T);
  const ids = randInts(B * T, CFG.vocab_size, 1), tg = randInts(B * T, CFG.vocab_size, 2);
  buf.ids.set(ids), buf.targets.set(tg), rbuf.ids.set(ids), rbuf.targets.set(tg);
  const same = (what: string) => assert.equal(model.forward(buf), ref.forward(rbuf), what);
  model.params.init(1), ref.params.init(1);
  same('after init');
  model.params.init(2), ref.params.init(2);
  same('after a second init');
  // a direct write, declared with touch(): the next forward re-casts
  model.params.get('model.layers.1.mlp.down_proj.weight').data[5] = 0.75;
  ref.params.get('model.layers.1.mlp.down_proj.weight').data[5] = 0.75;
  model.params.touch();
  same('after a direct write + touch');
  // without touch the copy is stale, and that is visible (this documents the contract)
  model.params.get('model.layers.0.mlp.gate_proj.weight').data.fill(0);
  ref.params.get('model.layers.0.mlp.gate_proj.weight').data.fill(0);
  assert.notEqual(model.forward(buf), ref.forward(rbuf), 'a write without touch() is not seen');
  model.params.touch();
  same('after the touch');
  // AdamW keeps the copy current without a cast: a forward right after must not need one
  const opt = new AdamW(CFG, model.params, model.grads, HP, model.bf16Weights);
  const ropt = new AdamW(CFG, ref.params, ref.grads, HP);
  for (const [m, b, o] of [[model, buf, opt], [ref, rbuf, ropt]] as const) {
    m.grads.zero();
    m.forward(b, 1 / (B * T));
    m.backward(b, 1 / (B * T));
    o.update(1e-2);
  }
  assert.equal(model.bf16Weights!.version, model.params.version, 'AdamW wrote a current copy');
  same('after an AdamW step');
});

test('AdamW refuses a bf16 copy of other parameters', { skip: MATRIX_UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  const a = new LlamaModel(CFG, 'f32', 'litespark', 'bf16'), b = new LlamaModel(CFG, 'f32', 'litespark', 'bf16');
  assert.throws(() => new AdamW(CFG, a.params, a.grads, HP, b.bf16Weights), /not of these parameters/);
});

test('no bf16 copy and no bf16 buffers on the fp32 unit, on the standard path, in fp32 or float64', () => {
  withUnit('fp32', () => {
    const m = new LlamaModel(CFG, 'f32', 'litespark', 'bf16');
    assert.equal(m.bf16Weights, null);
    assert.equal(m.buffers(1, 8).bf16Operands, false);
  });
  for (const [dtype, kernels, precision] of [['f32', 'standard', 'bf16'], ['f32', 'litespark', 'fp32'], ['f64', 'litespark', 'bf16']] as const) {
    const m = new LlamaModel(CFG, dtype, kernels, precision);
    assert.equal(m.bf16Weights, null, `${dtype} ${kernels} ${precision}`);
  }
});

test('buffers made on another unit than the model are refused with a clear error', { skip: MATRIX_UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  const m = withUnitValue('fp32', () => new LlamaModel(CFG, 'f32', 'litespark', 'bf16'));
  const buf = m.buffers(1, 8);
  const kept = new LlamaModel(CFG, 'f32', 'litespark', 'bf16');
  kept.params.init(1);
  assert.throws(() => kept.forward(buf), /bf16 unit changed between making the model and its buffers/);
});

function withUnitValue<R>(unit: string, fn: () => R): R {
  let r!: R;
  withUnit(unit, () => {
    r = fn();
  });
  return r;
}
