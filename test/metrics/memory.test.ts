// The memory model (src/metrics/memory.ts) against what the trainer allocates: parameters,
// gradients and AdamW moments (ParamStore / AdamW) and a step's activations and workspace
// (StepBuffers), for several presets, both kernel paths, every recompute mode, both dtypes, and
// in bf16 on every bf16 unit of this CPU (a matrix unit keeps the GEMM operands in bf16).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/load.js';
import { native } from '../../src/kernels/native.js';
import { headScratchBytes, memoryModel, type MemoryRecompute } from '../../src/metrics/memory.js';
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
          // the kernels' native scratch is held to what they allocate by the test below
          const withScratch = { ...allocated, scratch: headScratchBytes(mc, { B, T, kernels, storage }, bf16Operands) };
          assert.deepEqual(m, { ...withScratch, total: Object.values(withScratch).reduce((a, b) => a + b, 0) }, what);
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

// The native workspace is grow-only and shared by every kernel of a process, so each case runs
// one training step in a fresh process and reports what the workspace then holds.
const module = (rel: string) => JSON.stringify(new URL(rel, import.meta.url).href); // the compiled sources beside this test
const STEP_SCRIPT = `
import { native } from ${module('../../src/kernels/native.js')};
import { LlamaModel } from ${module('../../src/model/llama.js')};
import { AdamW } from ${module('../../src/train/optimizer.js')};
const [cfg, B, T, kernels, dtype, unit] = JSON.parse(process.argv[1]);
native.setThreads(2);
native.setBf16Unit(unit);
const model = new LlamaModel(cfg, 'f32', kernels, dtype);
model.params.init(1);
const opt = new AdamW(cfg, model.params, model.grads, { lr: 1e-3, beta1: 0.9, beta2: 0.95, adam_eps: 1e-8, weight_decay: 0.1, grad_clip: 1 }, model.bf16Weights);
const buf = model.buffers(B, T);
for (let i = 0; i < B * T; i++) { buf.ids[i] = (i * 7) % cfg.vocab_size; buf.targets[i] = (i * 13) % cfg.vocab_size; }
model.grads.zero();
model.forward(buf, 1 / (B * T));
model.backward(buf, 1 / (B * T));
opt.update(1e-3);
console.log(JSON.stringify({ workspace: native.memoryStats().workspaceBytes, bf16Operands: buf.bf16Operands }));
`;

test("the head's scratch in the memory model is what the native workspace holds after a training step, less only the kernels' small blocks", () => {
  // a vocabulary large enough that a missing term (a chunk of logits, a packed weight) is tens of MiB
  const mc = resolveConfig({ preset: 'micro', overrides: { 'model.vocab_size': 24000, 'model.hidden_size': 256, 'model.num_attention_heads': 4 } }).model;
  const [B, T] = [3, 100];
  const SMALL = 12 * 2 ** 20; // the GEMMs' and attention's per-thread blocks at these sizes: a few MiB
  const cases: Array<[KernelPath, 'fp32' | 'bf16', string]> = [
    ['litespark', 'fp32', native.bf16Unit()], ['standard', 'fp32', native.bf16Unit()],
    ...native.bf16Units().map((u) => ['litespark', 'bf16', u] as [KernelPath, 'bf16', string]),
  ];
  for (const [kernels, dtype, unit] of cases) {
    const what = `${kernels} ${dtype} on ${unit}`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', STEP_SCRIPT, JSON.stringify([mc, B, T, kernels, dtype, unit])],
      { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `${what}: ${r.stderr}`);
    const got = JSON.parse(r.stdout) as { workspace: number; bf16Operands: boolean };
    const scratch = headScratchBytes(mc, { B, T, kernels }, got.bf16Operands);
    assert.equal(memoryModel(mc, { B, T, kernels, dtype, recompute: 'none', bf16Operands: got.bf16Operands }).scratch, scratch, what);
    assert.ok(got.workspace >= scratch, `${what}: the workspace holds ${got.workspace} bytes, less than the modelled ${scratch}`);
    assert.ok(got.workspace <= scratch + SMALL, `${what}: the workspace holds ${got.workspace} bytes, ${got.workspace - scratch} past the modelled ${scratch}`);
  }
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
  assert.equal(m.total, m.parameters + m.gradients + m.optimizer + m.activations + m.workspace + m.scratch);
});
