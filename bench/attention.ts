// Causal GQA attention, standard (materialized T x T probabilities, full GEMMs) vs flash
// (tiled, online softmax, causal tiles skipped), forward and backward, fp32.
//
//   npx tsc -p . && node dist/bench/attention.js [--isa avx512] [--threads 2] [--runs 10]
//                                                [--shapes S,L]
//
// Prints ms (median of --runs after 3 warm-ups) per kernel, the standard/flash ratio, and
// the softmax state each path keeps for backward: standard probs (B, H, T, T), flash lse (B, H, T).
import { native } from '../src/kernels/native.js';
import { arg, buffer, cpuModel, median } from './common.js';

type Shape = { name: string; B: number; T: number; H: number; KVH: number; D: number };
const SHAPES: Shape[] = [
  { name: 'S', B: 4, T: 512, H: 8, KVH: 4, D: 64 },
  { name: 'L', B: 1, T: 2048, H: 8, KVH: 4, D: 64 },
];

function time(fn: () => void, warmup: number, runs: number): number {
  const times: number[] = [];
  for (let r = 0; r < warmup + runs; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    if (r >= warmup) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times);
}

const mib = (floats: number) => `${((4 * floats) / 2 ** 20).toFixed(2)} MiB`;

function main(): void {
  const threads = Number(arg('threads') ?? native.getThreads());
  const runs = Math.max(10, Number(arg('runs') ?? 10));
  const warmup = 3;
  const only = arg('shapes')?.split(',');
  native.setThreads(threads);
  const original = native.isa();
  if (arg('isa')) native.setIsa(arg('isa')!);

  console.log(`CPU: ${cpuModel()}`);
  console.log(`threads: ${threads}   ISA: ${native.isa()}   dtype: fp32   runs: median of ${runs} after ${warmup} warm-ups`);
  console.log(
    `${'shape'.padEnd(28)} ${'kernel'.padEnd(9)} ${'fwd ms'.padStart(8)} ${'bwd ms'.padStart(8)} ` +
      `${'total'.padStart(8)}  saved for backward`,
  );
  try {
    for (const s of SHAPES.filter((x) => !only || only.includes(x.name))) {
      const { B, T, H, KVH, D } = s;
      const nq = B * T * H * D, nkv = B * T * KVH * D;
      const q = buffer(nq, 1, 1), k = buffer(nkv, 2, 1), v = buffer(nkv, 3, 1), dout = buffer(nq, 4, 0.02);
      const out = buffer(nq, 0, 0), dq = buffer(nq, 0, 0), dk = buffer(nkv, 0, 0), dv = buffer(nkv, 0, 0);
      const label = `${s.name} B${B} T${T} H${H} KVH${KVH} D${D}`;

      const probs = buffer(B * H * T * T, 0, 0);
      const sf = time(() => native.attentionStandardForward(out, probs, q, k, v, B, T, H, KVH, D), warmup, runs);
      const sb = time(() => native.attentionStandardBackward(dq, dk, dv, dout, q, k, v, probs, B, T, H, KVH, D), warmup, runs);
      const lse = buffer(B * H * T, 0, 0);
      const ff = time(() => native.attentionFlashForward(out, lse, q, k, v, B, T, H, KVH, D), warmup, runs);
      const fb = time(() => native.attentionFlashBackward(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KVH, D), warmup, runs);

      const row = (kernel: string, f: string, b: string, t: string, mem: string) =>
        console.log(`${label.padEnd(28)} ${kernel.padEnd(9)} ${f.padStart(8)} ${b.padStart(8)} ${t.padStart(8)}  ${mem}`);
      row('standard', sf.toFixed(2), sb.toFixed(2), (sf + sb).toFixed(2), `probs ${mib(B * H * T * T)}`);
      row('flash', ff.toFixed(2), fb.toFixed(2), (ff + fb).toFixed(2), `lse ${mib(B * H * T)}`);
      row('std/flash', `${(sf / ff).toFixed(2)}x`, `${(sb / fb).toFixed(2)}x`, `${((sf + sb) / (ff + fb)).toFixed(2)}x`,
        `${T}x less`);
    }
  } finally {
    native.setIsa(original);
  }
}

main();
