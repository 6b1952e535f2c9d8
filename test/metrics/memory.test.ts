// The memory model (src/metrics/memory.ts) against what the trainer allocates: parameters,
// gradients and AdamW moments (ParamStore / AdamW) and a step's activations and workspace
// (StepBuffers), for several presets, both kernel paths, every recompute mode, both dtypes, and
// in bf16 on every bf16 unit of this CPU (a matrix unit keeps the GEMM operands in bf16).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/load.js';
import { native } from '../../src/kernels/native.js';
import { memoryModel, type MemoryRecompute } from '../../src/metrics/memory.js';
import { LlamaModel, type KernelPath } from '../../src/model/llama.js';
import { AdamW } from '../../src/train/optimizer.js';

const MODES: MemoryRecompute[] = ['none', 'selective', 'full'];
const KERNELS: KernelPath[] = ['standard', 'litespark'];

function checkAgainstAllocation(preset: string, overrides: Record<string, unknown>, B: number, T: number, storage: 'f32' | 'f64' = 'f32', withLogits = false): void {
  const config = resolveConfig({ preset, overrides });
  const mc = config.model;
  const unitBefore = native.bf16Unit();
  try {
    for (const kernels of KERNELS)
      for (const [dtype, unit] of [['fp32', unitBefore] as const, ...native.bf16Units().map((u) => ['bf16', u] as const)]) {
        native.setBf16Unit(unit);
        const model = new LlamaModel(mc, storage, kernels, dtype);
        const bf16Operands = kernels === 'litespark' && dtype === 'bf16' && storage === 'f32' && unit !== 'fp32';
        assert.equal(model.bf16Weights !== null, bf16Operands, `${kernels} ${dtype} ${storage} on ${unit}: a bf16 weight copy exactly where the operands are kept in bf16`);
        const opt = new AdamW(mc, model.params, model.grads, config.train, model.bf16Weights);
        for (const recompute of MODES) {
          const what = `${preset} ${JSON.stringify(overrides)} B=${B} T=${T} ${kernels} ${dtype} on ${unit} ${storage} ${recompute}${withLogits ? ' with logits' : ''}`;
          const buf = model.buffers(B, T, withLogits, recompute);
          assert.equal(buf.bf16Operands, bf16Operands, what);
          const allocated = {
            parameters: model.params.flat.bytes + (model.bf16Weights?.bytes ?? 0),
            gradients: model.grads.flat.bytes,
            optimizer: opt.bytes(),
            activations: buf.activationBytes(),
            workspace: buf.workspaceBytes(),
          };
          const m = memoryModel(mc, { B, T, kernels, dtype, recompute, storage, withLogits, bf16Operands });
          assert.deepEqual(m, { ...allocated, total: Object.values(allocated).reduce((a, b) => a + b, 0) }, what);
        }
      }
  } finally {
    native.setBf16Unit(unitBefore);
  }
}

test('the memory model equals the allocation: nano at its own batch and sequence', () => {
  checkAgainstAllocation('nano', {}, 8, 64);
});

test('the memory model equals the allocation: micro and demo at small steps, odd T', () => {
  checkAgainstAllocation('micro', {}, 2, 37);
  checkAgainstAllocation('demo', {}, 3, 21);
});

test('the memory model equals the allocation: tied head, GQA ratios 1 and 4, odd widths', () => {
  checkAgainstAllocation('nano', { 'model.tie_word_embeddings': true, 'model.num_key_value_heads': 4 }, 2, 9);
  checkAgainstAllocation('nano', { 'model.num_key_value_heads': 1, 'model.hidden_size': 72, 'model.intermediate_size': 101, 'model.vocab_size': 509, 'data.tokenizer_vocab_size': 300 }, 3, 13);
});

test('the memory model equals the allocation: float64 storage and sampling buffers (logits kept)', () => {
  checkAgainstAllocation('nano', {}, 2, 17, 'f64');
  checkAgainstAllocation('nano', {}, 1, 64, 'f32', true);
});

test('bench-l (BENCH.md row L): full recomputation keeps at most 1/4 of the activations of none on the fused path, fp32 and bf16', () => {
  const mc = resolveConfig({ preset: 'bench-l' }).model;
  // bf16 with the GEMM-only operands in bf16 (a matrix unit): none keeps less, so the ratio is tighter
  for (const [dtype, bf16Operands] of [['fp32', false], ['bf16', false], ['bf16', true]] as const) {
    const act = (recompute: MemoryRecompute) => memoryModel(mc, { B: 1, T: 2048, kernels: 'litespark', dtype, recompute, bf16Operands }).activations;
    assert.ok(act('full') <= act('none') / 4, `${dtype}${bf16Operands ? ' (bf16 operands)' : ''}: full ${act('full')} vs none ${act('none')}`);
    assert.ok(act('full') < act('selective') && act('selective') < act('none'));
  }
  // the standard path keeps (T, T) probabilities per layer: full recomputation keeps one layer's
  const std = (recompute: MemoryRecompute) => memoryModel(mc, { B: 1, T: 2048, kernels: 'standard', dtype: 'fp32', recompute }).activations;
  assert.ok(std('full') < std('selective') && std('selective') < std('none'));
});

test('planning sizes are computed without allocating: llama-70b holds ~70B fp32 parameters', () => {
  const mc = resolveConfig({ preset: 'llama-70b' }).model;
  const m = memoryModel(mc, { B: 1, T: 8192, kernels: 'litespark', dtype: 'bf16', recompute: 'full' });
  assert.ok(m.parameters > 70e9 * 4 && m.parameters < 72e9 * 4, `parameters ${m.parameters}`);
  assert.equal(m.optimizer, 2 * m.parameters);
  assert.equal(m.total, m.parameters + m.gradients + m.optimizer + m.activations + m.workspace);
});
