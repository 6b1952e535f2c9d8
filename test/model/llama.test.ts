import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LlamaModel } from '../../src/model/llama.js';
import { llamaParamSpecs, type LlamaConfig } from '../../src/model/params.js';
import { assertClose, maxAbs, randInts } from '../helpers.js';
import { wholeModelFdCheck } from './gradcheck.js';

function tiny(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    vocab_size: 11,
    hidden_size: 16,
    intermediate_size: 10,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    initializer_range: 0.3, // large enough that every path carries signal at this size
    ...over,
  };
}

test('parameter names and shapes are those of Hugging Face LlamaForCausalLM', () => {
  const specs = llamaParamSpecs(tiny({ num_hidden_layers: 1 }));
  const byName = Object.fromEntries(specs.map((s) => [s.name, s.shape]));
  assert.deepEqual(byName, {
    'model.embed_tokens.weight': [11, 16],
    'model.layers.0.self_attn.q_proj.weight': [16, 16],
    'model.layers.0.self_attn.k_proj.weight': [8, 16],
    'model.layers.0.self_attn.v_proj.weight': [8, 16],
    'model.layers.0.self_attn.o_proj.weight': [16, 16],
    'model.layers.0.mlp.gate_proj.weight': [10, 16],
    'model.layers.0.mlp.up_proj.weight': [10, 16],
    'model.layers.0.mlp.down_proj.weight': [16, 10],
    'model.layers.0.input_layernorm.weight': [16],
    'model.layers.0.post_attention_layernorm.weight': [16],
    'lm_head.weight': [11, 16],
    'model.norm.weight': [16],
  });
  assert.ok(!llamaParamSpecs(tiny({ tie_word_embeddings: true })).some((s) => s.name === 'lm_head.weight'));
});

// Whole-model gradient check in float64, on both kernel paths: every parameter tensor, GQA
// ratios 1, 2 and 4, tied and untied head, one ignored target.
for (const kernels of ['standard', 'litespark'] as const) {
  for (const [H, KVH, tied] of [[4, 4, false], [4, 2, true], [4, 1, false]] as const) {
    test(`whole-model gradients equal finite differences (${kernels}, f64, H=${H}, KVH=${KVH}, tied=${tied})`, () => {
      const cfg = tiny({ num_attention_heads: H, num_key_value_heads: KVH, tie_word_embeddings: tied });
      wholeModelFdCheck(new LlamaModel(cfg, 'f64', kernels));
    });
  }
}

test("the fused path gives the standard path's loss, logits and gradients (f32, odd sizes, GQA 3)", () => {
  const cfg = tiny({ vocab_size: 301, hidden_size: 48, intermediate_size: 70, num_attention_heads: 6, num_key_value_heads: 2, num_hidden_layers: 3 });
  const std = new LlamaModel(cfg, 'f32', 'standard');
  const fused = new LlamaModel(cfg, 'f32', 'litespark');
  std.params.init(7);
  fused.params.flat.data.set(std.params.flat.data);
  const B = 3, T = 37;
  const bs = std.buffers(B, T), bf = fused.buffers(B, T, true);
  const ids = randInts(B * T, cfg.vocab_size, 8), tg = randInts(B * T, cfg.vocab_size, 9);
  tg[5] = -1;
  for (const b of [bs, bf]) b.ids.set(ids), b.targets.set(tg);
  const tokens = B * T - 1;
  std.grads.zero();
  fused.grads.zero();
  const ls = std.forward(bs, 1 / tokens), lf = fused.forward(bf, 1 / tokens);
  assertClose([lf / tokens], [ls / tokens], { atol: 1e-5, rtol: 1e-5 }, 'mean loss');
  std.backward(bs, 1 / tokens);
  fused.backward(bf, 1 / tokens);
  for (const spec of std.params.specs) {
    const a = std.grads.get(spec.name).data;
    assertClose(fused.grads.get(spec.name).data, a, { atol: 2e-6 + 1e-3 * maxAbs(a), rtol: 1e-3 }, `grad ${spec.name}`);
  }
  // the standard backward turned its logits into dlogits: compute both afresh
  std.forwardLogits(bs);
  fused.forwardLogits(bf);
  assertClose(bf.logits!.data, bs.logits!.data, { atol: 1e-4, rtol: 1e-4 }, 'logits');
});

test('the fused path keeps no probabilities or logits: its activation memory is far below the standard path at T=256', () => {
  const cfg = tiny({ vocab_size: 4096, hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_key_value_heads: 2 });
  const s = new LlamaModel(cfg, 'f32', 'standard').buffers(2, 256);
  const f = new LlamaModel(cfg, 'f32', 'litespark').buffers(2, 256);
  assert.equal(f.logits, null);
  assert.ok(f.activationBytes() * 3 < s.activationBytes(), `fused ${f.activationBytes()} vs standard ${s.activationBytes()}`);
});

test('float32 model forward and gradients track the float64 model', () => {
  const cfg = tiny({ vocab_size: 50, hidden_size: 32, intermediate_size: 40 });
  const m64 = new LlamaModel(cfg, 'f64');
  const m32 = new LlamaModel(cfg, 'f32');
  m64.params.init(1);
  m32.params.flat.data.set(m64.params.flat.data);
  const B = 2, T = 9;
  const b64 = m64.buffers(B, T), b32 = m32.buffers(B, T);
  const ids = randInts(B * T, cfg.vocab_size, 1), tg = randInts(B * T, cfg.vocab_size, 2);
  for (const b of [b64, b32]) b.ids.set(ids), b.targets.set(tg);
  m64.grads.zero();
  m32.grads.zero();
  const l64 = m64.forward(b64, 1 / (B * T)), l32 = m32.forward(b32, 1 / (B * T));
  assertClose([l32], [l64], { atol: 1e-5, rtol: 1e-5 }, 'loss');
  m64.backward(b64, 1 / (B * T));
  m32.backward(b32, 1 / (B * T));
  // gradients of O(1e-2): fp32 round-off through 2 layers stays below 1e-5 absolute
  assertClose(m32.grads.flat.data, m64.grads.flat.data, { atol: 2e-6, rtol: 1e-3 }, 'grads');
});
