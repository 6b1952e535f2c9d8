// GEMM throughput on the transformer's own shapes (S config of BENCH.md), per ISA path.
//
//   npx tsc -p . && node dist/bench/gemm.js [--isa avx512,avx2] [--threads 2] [--runs 10]
//                                           [--only fwd,dX,dW] [--layers up,down,head,proj]
//
// For each linear layer W: (out, in) and activations x: (tokens, in), dy: (tokens, out):
//   fwd  y  = x · W^T    M=tokens N=out K=in      transB
//   dX   dx = dy · W     M=tokens N=in  K=out
//   dW   dW += dy^T · x  M=out    N=in  K=tokens  transA, beta=1
// Prints GFLOP/s (median of --runs after 3 warm-ups; min/max time) and the ratio to the
// measured FMA peak of the same ISA and thread count when native.peakFma reports one.
import { readFileSync } from 'node:fs';
import { native } from '../src/kernels/native.js';

const TOKENS = 2048, C = 512, F = 1536, V = 32000; // S config: batch 4 x seq 512, dim, ffn, vocab
const LAYERS: Record<string, [number, number]> = {
  // name: [out, in]
  proj: [C, C],
  up: [F, C],
  down: [C, F],
  head: [V, C],
};

interface Shape {
  name: string;
  ta: boolean;
  tb: boolean;
  M: number;
  N: number;
  K: number;
  beta: number;
}

function shapesFor(layer: string, out: number, inp: number): Shape[] {
  return [
    { name: `${layer} fwd`, ta: false, tb: true, M: TOKENS, N: out, K: inp, beta: 0 },
    { name: `${layer} dX`, ta: false, tb: false, M: TOKENS, N: inp, K: out, beta: 0 },
    { name: `${layer} dW`, ta: true, tb: false, M: out, N: inp, K: TOKENS, beta: 1 },
  ];
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function buffer(n: number, seed: number): Float32Array {
  const a = new Float32Array(native.alloc(4 * n)); // 64-byte aligned native storage
  native.randn(a, n, seed, 0, 0.02);
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function main(): void {
  const threads = Number(arg('threads') ?? native.getThreads());
  const runs = Math.max(10, Number(arg('runs') ?? 10));
  const warmup = 3;
  const isas = arg('isa')?.split(',') ?? native.availableIsas();
  const only = arg('only')?.split(',');
  const layers = arg('layers')?.split(',') ?? Object.keys(LAYERS);
  native.setThreads(threads);

  const shapes = layers.flatMap((l) => {
    const dims = LAYERS[l];
    if (!dims) throw new Error(`--layers: unknown layer '${l}' (known: ${Object.keys(LAYERS).join(', ')})`);
    return shapesFor(l, dims[0], dims[1]).filter((s) => !only || only.some((o) => s.name.endsWith(` ${o}`)));
  });

  console.log(`CPU: ${cpuModel()}`);
  console.log(`threads: ${threads}   dtype: fp32   runs: median of ${runs} after ${warmup} warm-ups`);
  console.log(`available ISAs: ${native.availableIsas().join(', ')}`);

  const original = native.isa();
  try {
    for (const isa of isas) {
      native.setIsa(isa);
      const peak = native.peakFma(threads, 0.3);
      console.log(`\nISA ${isa}: FMA peak ${peak > 0 ? `${peak.toFixed(1)} GFLOP/s` : 'n/a'} (${threads} threads)`);
      console.log(
        `${'shape'.padEnd(10)} ${'M'.padStart(6)} ${'N'.padStart(6)} ${'K'.padStart(6)}  tA tB ` +
          `${'GFLOP/s'.padStart(8)} ${'ms med'.padStart(8)} ${'ms min'.padStart(8)} ${'ms max'.padStart(8)} ${'% peak'.padStart(7)}`,
      );
      for (const s of shapes) {
        const [ar, ac] = s.ta ? [s.K, s.M] : [s.M, s.K];
        const [br, bc] = s.tb ? [s.N, s.K] : [s.K, s.N];
        const A = buffer(ar * ac, 1), B = buffer(br * bc, 2), Cm = buffer(s.M * s.N, 3);
        const times: number[] = [];
        for (let r = 0; r < warmup + runs; r++) {
          const t0 = process.hrtime.bigint();
          native.gemm(s.ta, s.tb, s.M, s.N, s.K, 1, A, ac, B, bc, s.beta, Cm, s.N);
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          if (r >= warmup) times.push(ms);
        }
        const med = median(times);
        const gflops = (2 * s.M * s.N * s.K) / (med * 1e6);
        const pct = peak > 0 ? `${((100 * gflops) / peak).toFixed(1)}%` : 'n/a';
        console.log(
          `${s.name.padEnd(10)} ${String(s.M).padStart(6)} ${String(s.N).padStart(6)} ${String(s.K).padStart(6)}  ` +
            `${s.ta ? 'T' : 'N'}  ${s.tb ? 'T' : 'N'}  ${gflops.toFixed(1).padStart(8)} ${med.toFixed(2).padStart(8)} ` +
            `${Math.min(...times).toFixed(2).padStart(8)} ${Math.max(...times).toFixed(2).padStart(8)} ${pct.padStart(7)}`,
        );
      }
    }
  } finally {
    native.setIsa(original);
  }
}

main();
