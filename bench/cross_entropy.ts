// Output head + cross-entropy, training step (forward and backward), standard vs fused path.
//
//   npx tsc -p . && node dist/bench/cross_entropy.js [--threads 2] [--runs 10] [--configs S,XS]
//
// standard: logits = x W^T (gemm), crossEntropyForward, crossEntropyBackward (in place),
//           dx = dlogits W (gemm), dW += dlogits^T x (gemm)         -> (N, V) logits held
// fused:    linearCrossEntropy(dx, dW, ...)                         -> one (R, V) chunk held
// Prints the median of --runs after 3 warm-ups (ms), the logits memory of each path, their
// ratio, the CPU model, the ISA path and the thread count. fp32.
import { native } from '../src/kernels/native.js';
import { arg, buffer, cpuModel, median } from './common.js';

// N = tokens (batch x sequence), C = model width, V = vocabulary (BENCH.md configs).
const CONFIGS: Record<string, { N: number; C: number; V: number }> = {
  S: { N: 2048, C: 512, V: 32000 },
  XS: { N: 2048, C: 256, V: 8192 },
};
// Rows per chunk of the fused kernel (kChunkRows in native/src/kernels/linear_cross_entropy.cc).
const CHUNK_ROWS = 384;

function time(runs: number, warmup: number, fn: () => void): number[] {
  const times: number[] = [];
  for (let r = 0; r < warmup + runs; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r >= warmup) times.push(ms);
  }
  return times;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function main(): void {
  const threads = Number(arg('threads') ?? native.getThreads());
  const runs = Math.max(10, Number(arg('runs') ?? 10));
  const warmup = 3;
  const names = arg('configs')?.split(',') ?? Object.keys(CONFIGS);
  native.setThreads(threads);

  console.log(`CPU: ${cpuModel()}`);
  console.log(`ISA: ${native.isa()}   threads: ${threads}   dtype: fp32   runs: median of ${runs} after ${warmup} warm-ups`);
  console.log(
    `${'config'.padEnd(7)} ${'N'.padStart(5)} ${'C'.padStart(5)} ${'V'.padStart(6)}  ` +
      `${'standard ms'.padStart(12)} ${'fused ms'.padStart(9)} ${'speedup'.padStart(8)}  ` +
      `${'standard logits'.padStart(16)} ${'fused logits'.padStart(13)} ${'memory'.padStart(7)}`,
  );
  for (const name of names) {
    const cfg = CONFIGS[name];
    if (!cfg) throw new Error(`--configs: unknown config '${name}' (known: ${Object.keys(CONFIGS).join(', ')})`);
    const { N, C, V } = cfg;
    const x = buffer(N * C, 1, 1), W = buffer(V * C, 2, 0.02);
    const targets = new Int32Array(N);
    for (let n = 0; n < N; n++) targets[n] = (n * 7919) % V;
    const dx = buffer(N * C, 3, 0.02), dW = buffer(V * C, 4, 0.02), lse = buffer(N, 5, 0.02);
    const dloss = 1 / N;

    const logits = buffer(N * V, 6, 0.02); // (N, V): the standard path's materialized logits
    const standard = time(runs, warmup, () => {
      native.gemm(false, true, N, V, C, 1, x, C, W, C, 0, logits, V);
      native.crossEntropyForward(lse, logits, targets, N, V);
      native.crossEntropyBackward(logits, logits, lse, targets, N, V, dloss);
      native.gemm(false, false, N, C, V, 1, logits, V, W, C, 0, dx, C);
      native.gemm(true, false, V, C, N, 1, logits, V, x, C, 1, dW, C);
    });
    const fused = time(runs, warmup, () => {
      native.linearCrossEntropy(dx, dW, lse, x, W, targets, N, C, V, dloss);
    });

    const stdBytes = 4 * N * V, fusedBytes = 4 * Math.min(N, CHUNK_ROWS) * V;
    const s = median(standard), f = median(fused);
    console.log(
      `${name.padEnd(7)} ${String(N).padStart(5)} ${String(C).padStart(5)} ${String(V).padStart(6)}  ` +
        `${s.toFixed(1).padStart(12)} ${f.toFixed(1).padStart(9)} ${`${(s / f).toFixed(2)}x`.padStart(8)}  ` +
        `${mb(stdBytes).padStart(16)} ${mb(fusedBytes).padStart(13)} ${`${((100 * fusedBytes) / stdBytes).toFixed(1)}%`.padStart(7)}`,
    );
  }
}

main();
