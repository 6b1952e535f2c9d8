// `litespark plan`: the published Litespark throughput reproduced from MFU × datasheet peak,
// plan memory against what the trainer allocates, hand-checked communication and energy
// arithmetic, MFU from bench rows, and bad input named by its flag (exit 2).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/schema.js';
import { flopsPerToken } from '../../src/metrics/flops.js';
import { headScratchBytes, paramStoreElements, type MemoryRecompute } from '../../src/metrics/memory.js';
import { LlamaModel, type KernelPath } from '../../src/model/llama.js';
import { gpuDevice, type Device } from '../../src/plan/accelerators.js';
import { mfuFromBench } from '../../src/plan/bench_mfu.js';
import { largestMicroBatch, planMemory } from '../../src/plan/memory.js';
import { makePlan, ringAllReduceBytes, zero1Bytes, type PlanInput } from '../../src/plan/plan.js';
import { AdamW } from '../../src/train/optimizer.js';

const BIN = fileURLToPath(new URL('../../../bin/litespark.js', import.meta.url));
const tmp = mkdtempSync(join(os.tmpdir(), 'litespark-plan-'));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'plan', ...args], {
    encoding: 'utf8',
    env: { ...process.env, LITESPARK_CACHE_DIR: join(tmp, 'cache') },
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function input(preset: string, o: Partial<PlanInput> = {}): PlanInput {
  const c = resolveConfig({ preset });
  return {
    name: preset, model: c.model, seqLen: c.train.seq_len, globalBatch: 8, microBatch: 1, nodes: 1, devicesPerNode: 8,
    device: gpuDevice('h200', 'bf16'), dtype: 'bf16', kernels: 'litespark', recompute: 'none', zero: 0, layout: 'mixed',
    mfus: [{ label: 'given', mfu: 0.4, source: 'test' }], tokens: null, linkGbps: 400, ...o,
  };
}

// ---- the published Litespark runs --------------------------------------------------------------
// FLOPs per token: the documented 6·P + 12·L·d·T with P = non-embedding weights incl. the output
// head (3B: P = 2,223,622,144, 16.160 GFLOP/token; 30B: P = 32,315,951,616, 213.525 GFLOP/token)
// and T = 4096, the runs' sequence length. It gives 437,453 and 468,839 tokens/s: 0.50% and 0.56%
// below the published 439,645 and 471,486, inside the 1% the issue asks. No other common
// convention fits both runs better: 6·P without the head gives +1.98% (3B) and +0.04% (30B);
// 6·(all parameters) + 12·L·d·T gives -2.86% and -1.15%; 6·P alone (no attention term) +20.5%
// and +9.5%. The publications' own count is not stated; the residual is ~0.5% on both runs.
const PUBLISHED = [
  { preset: 'litespark-3b', nodes: 1, mfu: 0.8935, published: 439_645, documented: 437_453 },
  { preset: 'litespark-30b', nodes: 32, mfu: 0.3954, published: 471_486, documented: 468_839 },
];

test('the presets of the published runs have the published shapes', () => {
  const shape = (preset: string) => {
    const m = resolveConfig({ preset }).model;
    const t = resolveConfig({ preset }).train;
    return [m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.num_key_value_heads, m.intermediate_size, m.vocab_size, t.seq_len];
  };
  assert.deepEqual(shape('litespark-3b'), [28, 2048, 16, 2, 11008, 32000, 4096]);
  assert.deepEqual(shape('litespark-30b'), [60, 6656, 64, 64, 17920, 32000, 4096]);
});

for (const r of PUBLISHED) {
  test(`${r.preset} on ${r.nodes * 8} H200 at ${(r.mfu * 100).toFixed(2)}% MFU: ${r.published.toLocaleString('en-US')} tokens/s within 1%`, () => {
    const devices = r.nodes * 8;
    const p = makePlan(input(r.preset, { nodes: r.nodes, globalBatch: devices, mfus: [{ label: 'published', mfu: r.mfu, source: 'test' }] }));
    assert.equal(p.device.peakFlops, 989e12); // the H200's dense bf16 figure the runs use
    assert.equal(p.model.flopsPerToken, flopsPerToken(resolveConfig({ preset: r.preset }).model, 4096));
    const tps = p.scenarios[0]!.tokensPerSecond;
    assert.ok(Math.abs(tps / r.published - 1) < 0.01, `${tps} vs ${r.published}`);
    assert.equal(Math.round(tps), r.documented); // pins the residual stated above
  });
}

test('the CLI prints the same throughput, and --json carries it', () => {
  const r = cli(['--preset', 'litespark-3b', '--accelerator', 'h200', '--nodes', '1', '--mfu', '0.8935', '--json']);
  assert.equal(r.code, 0, r.err);
  const p = JSON.parse(r.out);
  assert.equal(Math.round(p.scenarios[0].tokensPerSecond), 437_453);
  assert.equal(p.job.devices, 8);
  const t = cli(['--preset', 'litespark-30b', '--accelerator', 'h200', '--nodes', '32', '--mfu', '0.3954,0.3', '--tokens', '627B', '--zero', '1']);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /468,839 +355,72\d/); // one column per MFU: 468,839 x 0.3 / 0.3954
  assert.match(t.out, /energy \(estimated\)/);
});

// ---- memory ------------------------------------------------------------------------------------

const MODES: MemoryRecompute[] = ['none', 'selective', 'full'];
const KERNELS: KernelPath[] = ['standard', 'litespark'];

function checkAgainstAllocation(preset: string, B: number, T: number): void {
  const mc = resolveConfig({ preset }).model;
  const config = resolveConfig({ preset });
  for (const kernels of KERNELS) {
    for (const dtype of ['fp32', 'bf16'] as const) {
      const model = new LlamaModel(mc, 'f32', kernels, dtype);
      const opt = new AdamW(mc, model.params, model.grads, config.train, model.bf16Weights);
      // bf16 on this CPU's default unit: a matrix unit keeps the GEMM operands (and a weight copy) in bf16
      const bf16Operands = model.bf16Weights !== null;
      for (const recompute of MODES) {
        const buf = model.buffers(B, T, false, recompute);
        // + the head's native scratch (held to the native workspace by test/metrics/memory.test.ts)
        const allocated = model.params.flat.bytes + (model.bf16Weights?.bytes ?? 0) + model.grads.flat.bytes + opt.bytes() +
          buf.activationBytes() + buf.workspaceBytes() + headScratchBytes(mc, { B, T, kernels }, bf16Operands);
        for (const zero of [0, 1] as const) {
          // one rank: ZeRO-1 shards nothing, so the plan must still be the allocation
          const m = planMemory(mc, { B, T, kernels, dtype, recompute, layout: 'trainer', zero, ranks: 1, bf16Operands });
          const what = `${preset} B=${B} T=${T} ${kernels} ${dtype} ${recompute} zero ${zero}: plan ${m.total} vs allocated ${allocated}`;
          assert.ok(Math.abs(m.total / allocated - 1) <= 0.1, what);
          assert.equal(m.total, allocated, what); // in fact exact: both are the trainer's buffers
        }
      }
    }
  }
}

test("plan memory (cpu / trainer layout) is within 10% of the trainer's allocation: nano, micro, demo", () => {
  checkAgainstAllocation('nano', 8, 64);
  checkAgainstAllocation('micro', 2, 37);
  checkAgainstAllocation('demo', 3, 21);
});

test('bf16 mixed precision holds 16 bytes per parameter in weights + gradients + optimizer; ZeRO-1 shards the 12', () => {
  const mc = resolveConfig({ preset: 'litespark-3b' }).model;
  const E = paramStoreElements(mc);
  assert.equal(E, 2_289_158_144); // 28·77,074,432 per layer + 2048 final norm + 2·32000·2048 embedding and head
  const base = { B: 1, T: 4096, kernels: 'litespark', dtype: 'bf16', recompute: 'full', layout: 'mixed', ranks: 8 } as const;
  const m0 = planMemory(mc, { ...base, zero: 0 });
  assert.equal(m0.parameters, 2 * E);
  assert.equal(m0.gradients, 2 * E);
  assert.equal(m0.optimizer, 12 * E);
  const m1 = planMemory(mc, { ...base, zero: 1 });
  assert.equal(m1.optimizer, 12 * (E / 8)); // E is a multiple of 8
  assert.equal(m1.total, m0.total - 12 * E + 1.5 * E);
  // the trainer layout of fp32 ZeRO-1: the 8 bytes of moments sharded, the fp32 weights and grads not
  const t1 = planMemory(mc, { ...base, dtype: 'fp32', layout: 'trainer', zero: 1 });
  assert.equal(t1.parameters + t1.gradients + t1.optimizer, 4 * E + 4 * E + 8 * (E / 8));
});

test('the largest micro-batch is the largest B whose total fits', () => {
  const mc = resolveConfig({ preset: 'litespark-3b' }).model;
  const o = { T: 4096, kernels: 'litespark', dtype: 'bf16', recompute: 'none', layout: 'mixed', zero: 0, ranks: 8 } as const;
  const cap = 141e9;
  const b = largestMicroBatch(mc, o, cap);
  assert.ok(b >= 1);
  assert.ok(planMemory(mc, { ...o, B: b }).total <= cap);
  assert.ok(planMemory(mc, { ...o, B: b + 1 }).total > cap);
  assert.equal(largestMicroBatch(mc, o, 1e9), 0); // 16 bytes x 2.3B parameters alone are 36.6 GB
  const p = makePlan(input('litespark-30b', { nodes: 1, zero: 0 }));
  assert.equal(p.memory.fits, false); // 30B without sharding: 16 x 32.5B bytes on one H200
});

// ---- communication and energy, by hand --------------------------------------------------------

test('communication per step: ring all-reduce and ZeRO-1 volumes and time, by hand', () => {
  assert.equal(ringAllReduceBytes(1, 1000), 0);
  assert.equal(ringAllReduceBytes(4, 1000), 1500); // 2·3/4·1000
  assert.equal(zero1Bytes(4, 1000, 1000), 1500); // 3/4·1000 reduce-scatter + 3/4·1000 all-gather
  // litespark-3b on one node of 8: 2,289,158,144 bf16 gradients = 4,578,316,288 bytes;
  // 2·7/8 of it = 8,012,053,504 bytes per rank; at 3600 Gb/s: 8,012,053,504·8 / 3.6e12 = 17.8 ms.
  const p = makePlan(input('litespark-3b', { linkGbps: 3600 }));
  assert.equal(p.comm.kind, 'ring all-reduce');
  assert.equal(p.comm.gradientBytes, 4_578_316_288);
  assert.equal(p.comm.bytesPerStep, 8_012_053_504);
  assert.ok(Math.abs(p.comm.seconds - 0.017804563342) < 1e-9);
  // litespark-30b, ZeRO-1 on 256: E = 32,528,943,616; (255/256)·(2E + 2E) = 129,607,509,720 bytes
  const q = makePlan(input('litespark-30b', { nodes: 32, globalBatch: 256, zero: 1 }));
  assert.equal(q.comm.kind, 'reduce-scatter + all-gather');
  assert.equal(q.comm.bytesPerStep, 129_607_509_720);
  assert.ok(Math.abs(q.comm.seconds - 129_607_509_720 * 8 / 400e9) < 1e-9); // 2.59 s
  // hidden when the last micro-batch's backward (2/3 of its compute) is longer than the reduction
  const s = q.scenarios[0]!;
  assert.ok(Math.abs(s.overlapSeconds - (2 / 3) * s.stepSeconds) < 1e-12); // one micro-batch per step
  assert.equal(s.commHidden, q.comm.seconds <= s.overlapSeconds);
});

test('time and energy for N tokens, by hand: 2 devices x 300 W at 1000 tokens/s each', () => {
  const mc = resolveConfig({ preset: 'nano' }).model;
  const fpt = flopsPerToken(mc, 64);
  // a device whose peak x 0.5 MFU is exactly 1000 tokens/s of nano at T=64
  const device: Device = { accelerator: 'h100', name: 'test', peakFlops: (fpt * 1000) / 0.5, memoryBytes: 1e12, watts: 300, source: 'test' };
  const p = makePlan(input('nano', {
    seqLen: 64, devicesPerNode: 2, globalBatch: 4, microBatch: 2, device, mfus: [{ label: 't', mfu: 0.5, source: 'test' }], tokens: 7.2e9,
  }));
  const s = p.scenarios[0]!;
  assert.ok(Math.abs(s.tokensPerSecond - 2000) < 1e-6);
  assert.ok(Math.abs(s.tokensPerDay - 172.8e6) < 1e-3);
  assert.ok(Math.abs(s.stepSeconds - 0.128) < 1e-12); // 4 x 64 tokens / 2000 tokens/s
  assert.ok(Math.abs(s.train!.seconds - 3.6e6) < 1e-6); // 7.2e9 / 2000
  assert.ok(Math.abs(s.train!.days - 41.666666667) < 1e-6);
  assert.ok(Math.abs(s.train!.joules! - 2.16e9) < 1e-3); // 600 W x 3.6e6 s
  assert.ok(Math.abs(s.train!.kWh! - 600) < 1e-9); // / 3.6e6 J/kWh
  assert.ok(Math.abs(s.joulesPerToken! - 0.3) < 1e-12);
  assert.ok(Math.abs(s.kWhPerDay! - 14.4) < 1e-9); // 600 W x 24 h
  const none = makePlan(input('nano', { seqLen: 64, devicesPerNode: 2, globalBatch: 4, device: { ...device, watts: null }, tokens: 1e9 }));
  assert.equal(none.scenarios[0]!.train!.kWh, null); // no power figure: no invented energy
});

// ---- MFU from bench rows ---------------------------------------------------------------------

test('--mfu-from: litespark and standard MFU from the bench rows of the dtype; preset, then S, then the first config', () => {
  const row = (config: string, kernels: string, dtype: string, mfu: number | null, ok = true) =>
    ({ kind: 'step', config, kernels, dtype, mfu, ok, cpu: 'Test CPU', threads: 4 });
  const rows = [row('XS', 'standard', 'fp32', 0.1), row('XS', 'litespark', 'fp32', 0.2), row('S', 'standard', 'fp32', 0.15),
    row('S', 'litespark', 'fp32', 0.45), row('S', 'litespark', 'bf16', 0.3), row('L', 'litespark', 'fp32', null, false)];
  const m = mfuFromBench(rows, 'b.json', 'fp32', 'none', 'litespark-3b');
  assert.deepEqual(m.map((x) => [x.label, x.mfu]), [['litespark (bench)', 0.45], ['standard (bench)', 0.15]]);
  assert.match(m[0]!.source, /S litespark fp32 on Test CPU, 4 threads/);
  assert.deepEqual(mfuFromBench(rows, 'b.json', 'fp32', 'none', 'XS').map((x) => x.mfu), [0.2, 0.1]);
  assert.deepEqual(mfuFromBench(rows, 'b.json', 'bf16', 'none', 'XS').map((x) => x.mfu), [0.3]);
  assert.throws(() => mfuFromBench(rows, 'b.json', 'fp32', 'full', ''), /no bench row/);
  assert.throws(() => mfuFromBench({}, 'b.json', 'fp32', 'none', ''), /JSON array/);
  const f = join(tmp, 'bench.json');
  writeFileSync(f, JSON.stringify(rows));
  const r = cli(['--preset', 'litespark-3b', '--accelerator', 'h200', '--dtype', 'fp32', '--mfu-from', f, '--json']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out).scenarios.map((s: { mfu: number }) => s.mfu), [0.45, 0.15]);
});

// ---- bad input ------------------------------------------------------------------------------

test('bad numbers throw a ConfigError naming the flag', () => {
  assert.throws(() => makePlan(input('nano', { nodes: 0 })), (e) => e instanceof ConfigError && /--nodes/.test(e.message));
  assert.throws(() => makePlan(input('nano', { linkGbps: -1 })), /--link-gbps/);
  assert.throws(() => makePlan(input('nano', { tokens: 0 })), /--tokens/);
  assert.throws(() => makePlan(input('nano', { globalBatch: 12 })), /--global-batch 12 sequences is not a multiple/);
});

const BAD: Array<[string, string[], RegExp]> = [
  ['an unknown accelerator', ['--accelerator', 'h300'], /--accelerator must be one of h100, h200, a100-80g, b200, mi300x, cpu \(got 'h300'\)/],
  ['zero nodes', ['--nodes', '0'], /--nodes must be a positive integer/],
  ['negative devices per node', ['--devices-per-node', '-8'], /--devices-per-node must be a positive/],
  ['a fractional node count', ['--nodes', '1.5'], /--nodes must be a positive integer/],
  ['an MFU of zero', ['--mfu', '0'], /--mfu must be in \(0, 1\]/],
  ['an MFU above 1', ['--mfu', '40'], /--mfu must be in \(0, 1\]/],
  ['negative tokens', ['--tokens', '-5'], /--tokens must be a positive number/],
  ['a zero link', ['--link-gbps', '0'], /--link-gbps must be a positive number/],
  ['zero watts', ['--device-watts', '0'], /--device-watts must be a positive number/],
  ['a zero sequence length', ['--seq-len', '0'], /--seq-len must be a positive integer/],
  ['a global batch of no sequences', ['--global-batch', '0'], /--global-batch must be a positive integer/],
  ['a global batch that is not a number', ['--global-batch', 'lots'], /--global-batch must be a number/],
  ['an unknown ZeRO stage', ['--zero', '3'], /--zero must be one of 0, 1/],
  ['an unknown dtype', ['--dtype', 'fp8'], /--dtype must be one of bf16, fp32/],
  ['a sequence longer than the model takes', ['--seq-len', '8192'], /--seq-len 8192 is above/],
  ['both --mfu and --mfu-from', ['--mfu', '0.4', '--mfu-from', 'x.json'], /--mfu or --mfu-from, not both/],
];

for (const [what, args, message] of BAD) {
  test(`bad input: ${what} -> exit 2 and a message naming the flag`, () => {
    const r = cli(['--preset', 'litespark-3b', ...args]);
    assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.err}`);
    assert.match(r.err, message);
  });
}

test('no preset or config -> exit 2', () => {
  const r = cli(['--accelerator', 'h100']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--preset NAME or --config FILE/);
});

test('cpu: this machine at its measured peak, energy n/a without --device-watts', () => {
  const r = cli(['--preset', 'nano', '--accelerator', 'cpu', '--json']);
  assert.equal(r.code, 0, r.err);
  const p = JSON.parse(r.out);
  assert.equal(p.device.accelerator, 'cpu');
  assert.ok(p.device.peakFlops > 0);
  assert.equal(p.job.layout, 'trainer');
  assert.equal(p.scenarios[0].joulesPerToken, null);
  assert.equal(p.memory.total, p.memory.parameters + p.memory.gradients + p.memory.optimizer + p.memory.activations + p.memory.workspace + p.memory.scratch);
});

test("cpu, bf16: the plan's memory is the trainer's allocation on this CPU's bf16 unit (a matrix unit: the bf16 copy and operands)", () => {
  const r = cli(['--preset', 'nano', '--accelerator', 'cpu', '--dtype', 'bf16', '--json']);
  assert.equal(r.code, 0, r.err);
  const p = JSON.parse(r.out);
  const config = resolveConfig({ preset: 'nano' });
  const model = new LlamaModel(config.model, 'f32', 'litespark', 'bf16');
  assert.equal(p.job.bf16Operands, model.bf16Weights !== null);
  const opt = new AdamW(config.model, model.params, model.grads, config.train, model.bf16Weights);
  const buf = model.buffers(p.job.microBatch, p.job.seqLen, false, p.job.recompute);
  assert.deepEqual(
    [p.memory.parameters, p.memory.gradients, p.memory.optimizer, p.memory.activations, p.memory.workspace, p.memory.scratch],
    [model.params.flat.bytes + (model.bf16Weights?.bytes ?? 0), model.grads.flat.bytes, opt.bytes(), buf.activationBytes(), buf.workspaceBytes(),
      headScratchBytes(config.model, { B: p.job.microBatch, T: p.job.seqLen, kernels: 'litespark' }, model.bf16Weights !== null)],
  );
});
