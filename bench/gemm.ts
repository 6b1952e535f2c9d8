// GEMM throughput on the transformer's own shapes (S config of BENCH.md), per ISA path, side
// by side with OpenBLAS sgemm on the same shapes and thread count.
//
//   npx tsc -p . && node dist/bench/gemm.js [--isa avx512,avx2] [--threads 2] [--runs 10]
//                                           [--only fwd,dX,dW] [--layers up,down,head,proj]
//                                           [--no-openblas]
//
// For each linear layer W: (out, in) and activations x: (tokens, in), dy: (tokens, out):
//   fwd  y  = x · W^T    M=tokens N=out K=in      transB
//   dX   dx = dy · W     M=tokens N=in  K=out
//   dW   dW += dy^T · x  M=out    N=in  K=tokens  transA, beta=1
// Prints GFLOP/s (median of --runs after 3 warm-ups; min/max time) and the ratio to the
// measured FMA peak of the same ISA and thread count (native.peakFma, measured in this run).
//
// OpenBLAS (the peer of BENCH.md) is a bench-time tool only, never a project dependency:
// bench/gemm_openblas.c is compiled here with `cc -O2 ... -lopenblas` into a temporary
// directory and run once per shape with OPENBLAS_NUM_THREADS=<threads>. When libopenblas-dev is
// missing the script installs it with `apt-get install -y libopenblas-dev` if it runs as root;
// otherwise (or if the compile fails) it prints the litespark rows and says why OpenBLAS is
// absent. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the OpenBLAS runs' environment
// (some machines set them, and they can slow OpenBLAS); the core it picked is printed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../src/kernels/native.js';
import { arg, buffer, cpuModel, median } from './common.js';

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

interface Peer {
  run(s: Shape): { gflops: number; core: string } | undefined;
  note: string; // what was used, or why OpenBLAS is missing
  cleanup(): void;
}

function sh(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

// Builds bench/gemm_openblas.c against libopenblas (installing libopenblas-dev when missing and
// running as root). Returns a Peer whose run() times one shape, or a note saying why not.
function openblasPeer(threads: number, runs: number): Peer {
  const none = (note: string): Peer => ({ run: () => undefined, note, cleanup: () => {} });
  // dist/bench/gemm.js -> the repository root holds bench/gemm_openblas.c.
  const here = dirname(fileURLToPath(import.meta.url));
  const src = [join(here, 'gemm_openblas.c'), join(here, '..', '..', 'bench', 'gemm_openblas.c')].find(existsSync);
  if (!src) return none('bench/gemm_openblas.c not found');
  if (!sh('dpkg', ['-s', 'libopenblas-dev']).ok && !existsSync('/usr/include/x86_64-linux-gnu/cblas.h')) {
    if (process.getuid?.() !== 0) return none('libopenblas-dev is not installed (run: sudo apt-get install -y libopenblas-dev)');
    console.log('installing libopenblas-dev with apt-get (bench-time only) ...');
    let r = sh('apt-get', ['install', '-y', 'libopenblas-dev']);
    if (!r.ok) {
      sh('apt-get', ['update']);
      r = sh('apt-get', ['install', '-y', 'libopenblas-dev']);
    }
    if (!r.ok) return none(`apt-get install libopenblas-dev failed: ${lastLines(r.out)}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'ls-gemm-openblas-'));
  const exe = join(dir, 'gemm_openblas');
  const cc = sh('cc', ['-O2', src, '-lopenblas', '-o', exe]);
  if (!cc.ok) {
    rmSync(dir, { recursive: true, force: true });
    return none(`compiling bench/gemm_openblas.c failed: ${lastLines(cc.out)}`);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const unset = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'].filter((k) => k in env);
  for (const k of unset) delete env[k];
  let core = '?';
  const peer: Peer = {
    run(s) {
      try {
        const out = execFileSync(exe, [s.M, s.N, s.K, +s.ta, +s.tb, s.beta, runs].map(String), { env, encoding: 'utf8' });
        const g = /gflops=([\d.]+)/.exec(out), c = /core=(\S+)/.exec(out);
        if (!g) return undefined;
        core = c?.[1] ?? core;
        peer.note = `OpenBLAS core ${core}, OPENBLAS_NUM_THREADS=${threads}` +
          (unset.length ? ` (unset for these runs: ${unset.join(', ')})` : '');
        return { gflops: Number(g[1]), core };
      } catch (e) {
        peer.note = `OpenBLAS run failed: ${lastLines(String((e as Error).message))}`;
        return undefined;
      }
    },
    note: 'OpenBLAS built, not run yet',
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  return peer;
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

  const peer: Peer = process.argv.includes('--no-openblas')
    ? { run: () => undefined, note: 'OpenBLAS skipped (--no-openblas)', cleanup: () => {} }
    : openblasPeer(threads, runs);
  const blas = new Map<string, number | undefined>(); // shape name -> OpenBLAS GFLOP/s, run once

  // OpenBLAS picks its own (widest) kernels whatever --isa says, so its % of peak is taken
  // against the peak of the widest ISA this CPU has (availableIsas() lists it first).
  const widest = native.availableIsas()[0]!;
  let widestPeak: number | undefined;

  const original = native.isa();
  try {
    for (const isa of isas) {
      native.setIsa(isa);
      const peak = native.peakFma(threads, 0.3);
      if (isa === widest) widestPeak = peak;
      if (widestPeak === undefined && !process.argv.includes('--no-openblas')) {
        native.setIsa(widest);
        widestPeak = native.peakFma(threads, 0.3);
        native.setIsa(isa);
      }
      const obPeak = widestPeak ?? 0;
      console.log(`\nISA ${isa}: FMA peak ${peak > 0 ? `${peak.toFixed(1)} GFLOP/s` : 'n/a'} (${threads} threads, measured now)`);
      console.log(
        `${'shape'.padEnd(10)} ${'M'.padStart(6)} ${'N'.padStart(6)} ${'K'.padStart(6)}  tA tB ` +
          `${'GFLOP/s'.padStart(8)} ${'ms med'.padStart(8)} ${'ms min'.padStart(8)} ${'ms max'.padStart(8)} ${'% peak'.padStart(7)}` +
          ` ${'OpenBLAS'.padStart(8)} ${'% peak'.padStart(7)} ${'ls/OB'.padStart(6)}`,
      );
      const pctOf = (g: number | undefined, of = peak) => (g !== undefined && of > 0 ? `${((100 * g) / of).toFixed(1)}%` : 'n/a');
      for (const s of shapes) {
        const [ar, ac] = s.ta ? [s.K, s.M] : [s.M, s.K];
        const [br, bc] = s.tb ? [s.N, s.K] : [s.K, s.N];
        const A = buffer(ar * ac, 1, 0.02), B = buffer(br * bc, 2, 0.02), Cm = buffer(s.M * s.N, 3, 0.02);
        const times: number[] = [];
        for (let r = 0; r < warmup + runs; r++) {
          const t0 = process.hrtime.bigint();
          native.gemm(s.ta, s.tb, s.M, s.N, s.K, 1, A, ac, B, bc, s.beta, Cm, s.N);
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          if (r >= warmup) times.push(ms);
        }
        const med = median(times);
        const gflops = (2 * s.M * s.N * s.K) / (med * 1e6);
        if (!blas.has(s.name)) blas.set(s.name, peer.run(s)?.gflops);
        const ob = blas.get(s.name);
        console.log(
          `${s.name.padEnd(10)} ${String(s.M).padStart(6)} ${String(s.N).padStart(6)} ${String(s.K).padStart(6)}  ` +
            `${s.ta ? 'T' : 'N'}  ${s.tb ? 'T' : 'N'}  ${gflops.toFixed(1).padStart(8)} ${med.toFixed(2).padStart(8)} ` +
            `${Math.min(...times).toFixed(2).padStart(8)} ${Math.max(...times).toFixed(2).padStart(8)} ${pctOf(gflops).padStart(7)}` +
            ` ${(ob !== undefined ? ob.toFixed(1) : 'n/a').padStart(8)} ${pctOf(ob, obPeak).padStart(7)}` +
            ` ${(ob ? (gflops / ob).toFixed(2) : 'n/a').padStart(6)}`,
        );
      }
    }
    const measured = [...blas.values()].some((g) => g !== undefined);
    console.log(`\n${peer.note}${measured && widestPeak ? `; its % peak is of the ${widest} peak (${widestPeak.toFixed(1)} GFLOP/s)` : ''}`);
  } finally {
    native.setIsa(original);
    peer.cleanup();
  }
}

main();
