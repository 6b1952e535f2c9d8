// Generation speed with and without the KV cache, fp32, on the demo model and BENCH.md's S shape
// (random weights: speed does not depend on them).
//
//   npx tsc -p . && node dist/bench/generate.js [--configs demo,S] [--prompt 64] [--tokens 64]
//                                               [--threads N] [--kernels litespark] [--runs 3]
//
// with cache     prefill: one forward over the prompt (prompt tokens/s); decode: one step per
//                new token (src/infer/decoder.ts) with its draw, steps/s (the first new token
//                comes from the prefill's logits).
// without cache  src/train/sample.ts: a full forward over the window (prompt + new tokens, the
//                smallest that holds the whole context) for each new token. "prefill" is its
//                first forward (prompt tokens / its time), decode all new tokens / total time.
// Also the projections at one position: the GEMV the decoder runs vs the GEMM at M = 1.
// Each figure: median of --runs after one warm-up run.
import { parseModelConfig } from '../src/config/schema.js';
import { PRESETS } from '../src/config/presets.js';
import { KvDecoder } from '../src/infer/decoder.js';
import { generate } from '../src/infer/generate.js';
import { native } from '../src/kernels/native.js';
import { LlamaModel, type KernelPath } from '../src/model/llama.js';
import { headDim } from '../src/model/params.js';
import { sample } from '../src/train/sample.js';
import { arg, buffer, cpuModel, median } from './common.js';

const CONFIGS: Record<string, keyof typeof PRESETS> = { demo: 'demo', S: 'bench-s' };

function timeRuns(runs: number, fn: () => void): number {
  fn();
  const ms: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

function gemvVsGemm(name: string, N: number, K: number): string {
  const W = buffer(N * K, 1, 0.02), x = buffer(K, 2, 1), y = buffer(N, 0, 0);
  const reps = Math.max(3, Math.ceil(2e8 / (N * K)));
  const per = (fn: () => void) => timeRuns(3, () => {
    for (let i = 0; i < reps; i++) fn();
  }) / reps;
  const gemv = per(() => native.gemv(y, W, x, N, K, 0));
  const gemm = per(() => native.gemm(false, true, 1, N, K, 1, x, K, W, K, 0, y, N));
  const gbs = (ms: number) => ((4 * N * K) / (ms / 1000) / 1e9).toFixed(1);
  return `  ${name.padEnd(8)} ${`${N}x${K}`.padEnd(11)} gemv ${(gemv * 1000).toFixed(1).padStart(7)} us (${gbs(gemv).padStart(5)} GB/s)   ` +
    `gemm M=1 ${(gemm * 1000).toFixed(1).padStart(7)} us (${gbs(gemm).padStart(5)} GB/s)   ${(gemm / gemv).toFixed(1)}x`;
}

function main(): void {
  const threads = Number(arg('threads') ?? native.getThreads());
  native.setThreads(threads);
  const P = Number(arg('prompt') ?? 64), N = Number(arg('tokens') ?? 64), runs = Number(arg('runs') ?? 3);
  const kernels = (arg('kernels') ?? 'litespark') as KernelPath;
  console.log(`CPU: ${cpuModel()}`);
  console.log(`threads: ${threads}   ISA: ${native.isa()}   fp32   kernels: ${kernels}   prompt ${P} tokens, ${N} new (greedy)   median of ${runs}`);
  for (const name of (arg('configs') ?? 'demo,S').split(',')) {
    const preset = CONFIGS[name];
    if (!preset) throw new Error(`unknown config ${name} (demo, S)`);
    const mc = parseModelConfig(PRESETS[preset].model);
    if (P + N > mc.max_position_embeddings) throw new Error(`${name}: prompt + tokens = ${P + N} > max_position_embeddings ${mc.max_position_embeddings}`);
    const m = new LlamaModel(mc, 'f32', kernels);
    m.params.init(1);
    const prompt = Array.from({ length: P }, (_, i) => (i * 7919) % mc.vocab_size);
    const greedy = { temperature: 0, topK: 0, topP: 1, seed: 0 };

    const dec = new KvDecoder(m, mc.max_position_embeddings);
    const prefillMs: number[] = [], stepMs: number[] = [];
    for (let r = 0; r <= runs; r++) {
      const g = generate(dec, prompt, { ...greedy, maxTokens: N });
      if (g.ids.length !== N) throw new Error(`${name}: generated ${g.ids.length} tokens, not ${N}`);
      if (r > 0) prefillMs.push(g.prefillMs), stepMs.push(g.decodeMs / g.steps);
    }
    const buf = m.buffers(1, P + N, true);
    const first = timeRuns(runs, () => sample(m, buf, prompt, { ...greedy, maxTokens: 1 }));
    const all = timeRuns(runs, () => sample(m, buf, prompt, { ...greedy, maxTokens: N }));
    const c = mc;
    console.log(`\n${name} (${preset}): hidden ${c.hidden_size}, ${c.num_hidden_layers} layers, ${c.num_attention_heads} heads / ${c.num_key_value_heads} kv, ffn ${c.intermediate_size}, vocab ${c.vocab_size}; cache ${(dec.bytes / 2 ** 20).toFixed(1)} MiB at ${c.max_position_embeddings} positions`);
    const row = (what: string, pre: number, decTps: number) =>
      console.log(`  ${what.padEnd(14)} prefill ${pre.toFixed(0).padStart(7)} tokens/s   decode ${decTps.toFixed(1).padStart(7)} tokens/s`);
    row('with cache', (P * 1000) / median(prefillMs), 1000 / median(stepMs));
    row('without cache', (P * 1000) / first, (N * 1000) / all);
    console.log(`  decode speed-up of the cache: ${(all / N / median(stepMs)).toFixed(1)}x`);
    const C = c.hidden_size, D = headDim(c), F = c.intermediate_size;
    console.log('  projections at one position:');
    console.log(gemvVsGemm('qkv', (c.num_attention_heads + 2 * c.num_key_value_heads) * D, C));
    console.log(gemvVsGemm('o', C, c.num_attention_heads * D));
    console.log(gemvVsGemm('gate/up', 2 * F, C));
    console.log(gemvVsGemm('down', C, F));
    console.log(gemvVsGemm('head', c.vocab_size, C));
  }
}

main();
