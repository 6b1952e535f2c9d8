// `litespark bench --kernels-only`: the pieces of one training step timed on their own, on the
// shapes of a config (N = B·T tokens, C width, F ffn, V vocab, H/KVH heads of width D):
//   gemm       every linear layer's fwd (x·W^T), dX (dy·W) and dW (dy^T·x) GEMM, as GFLOP/s and
//              the fraction of the measured peak
//   qkv        the q/k/v projections with RoPE: standard (three GEMMs + RoPE passes) vs one GEMM
//              with RoPE and the split into heads in its epilogue
//   attention  forward and backward: standard (materialized (B,H,T,T) probabilities) vs flash
//   mlp        forward and backward, the model's own functions: standard (gate GEMM + up GEMM +
//              swiglu + down GEMM) vs fused (one GEMM over the packed (2F, C) gate/up weights with
//              SwiGLU in its epilogue, which also keeps gate/up for backward, + down)
//   loss       forward + backward: standard (head GEMM + cross-entropy + dX/dW GEMMs) vs
//              linearCrossEntropy in training mode
// Each op: `warmup` unmeasured runs, then the median (min, max) of `steps` runs. A kernel that
// throws (e.g. not built yet) becomes a failed row; the others still run. bf16 fused rows on a
// matrix unit take the operands the trainer keeps in bf16 there (weights, h, q/k/v, the attention
// output, the SwiGLU activation, dout, dgu: llama.ts keepsBf16Operands); the gemm rows, shared by
// both paths, and the standard rows take fp32 operands, as the standard path does.
import os from 'node:os';
import { resolveConfig } from '../config/load.js';
import { native } from '../kernels/native.js';
import { cpuModel } from '../metrics/machine.js';
import { getPeak } from '../metrics/peak.js';
import { fusedQkvForward, qkvForward } from '../model/attention.js';
import { matmulFor, type Matmul, type Precision } from '../model/linear.js';
import { keepsBf16Operands } from '../model/llama.js';
import { FusedMlpScratch, MlpActs, MlpGrads, fusedMlpBackward, fusedMlpForward, mlpBackward, mlpForward } from '../model/mlp.js';
import type { KernelsJob } from './job.js';
import type { KernelPath, KernelRow } from './spec.js';
import { errorText, median, randomTokens } from './util.js';

type F32 = Float32Array;

interface Timing {
  median: number;
  min: number;
  max: number;
}

interface Op {
  group: string;
  op: string;
  shape: string;
  kernels: KernelPath | 'shared';
  /** Model FLOPs of one run (for GFLOP/s); 0 when not meaningful. */
  flops: number;
  savedBytes: number | null;
  /** Once before timing: inputs the timed function needs (e.g. a forward before a backward). */
  prepare?: () => void;
  run: () => void;
}

/** 64-byte aligned native storage, filled with N(0, std^2). */
function buffer(n: number, seed: number, std = 1): F32 {
  const a = new Float32Array(native.alloc(4 * n));
  native.randn(a, n, seed, 0, std);
  return a;
}

/** x as the fused path keeps it with bf16 operands: its bf16 bits (ops16), else x itself. */
function operand(x: F32, ops16: boolean): F32 | Uint16Array {
  if (!ops16) return x;
  const u = new Uint16Array(native.alloc(2 * x.length));
  native.castToBf16(u, x, x.length);
  return u;
}

/** An output the fused path keeps in bf16 with bf16 operands: zeroed bf16 storage (ops16), else fp32. */
function output(n: number, ops16: boolean): F32 | Uint16Array {
  return ops16 ? new Uint16Array(native.alloc(2 * n)) : buffer(n, 0);
}

function time(fn: () => void, warmup: number, runs: number): Timing {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return { median: median(t), min: Math.min(...t), max: Math.max(...t) };
}

/** y(M,N) = op(A)·op(B) with row-major leading dimensions implied by the transposes, on `mm`. */
function gemm(mm: Matmul, ta: boolean, tb: boolean, M: number, N: number, K: number, A: F32, B: F32, beta: number, Cm: F32): void {
  mm(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, beta, Cm, N);
}

function gemmOps(N: number, layers: Array<{ names: string; out: number; inp: number }>, seed: number, mm: Matmul): Op[] {
  const ops: Op[] = [];
  for (const { names, out, inp } of layers) {
    const x = buffer(N * inp, seed + 1, 0.5), W = buffer(out * inp, seed + 2, 0.02), dy = buffer(N * out, seed + 3, 0.01);
    const y = buffer(N * out, 0), dx = buffer(N * inp, 0), dW = buffer(out * inp, 0);
    const flops = 2 * N * out * inp;
    ops.push(
      { group: 'gemm', op: `${names} fwd`, shape: `M=${N} N=${out} K=${inp} NT`, kernels: 'shared', flops, savedBytes: null,
        run: () => gemm(mm, false, true, N, out, inp, x, W, 0, y) },
      { group: 'gemm', op: `${names} dX`, shape: `M=${N} N=${inp} K=${out} NN`, kernels: 'shared', flops, savedBytes: null,
        run: () => gemm(mm, false, false, N, inp, out, dy, W, 0, dx) },
      { group: 'gemm', op: `${names} dW`, shape: `M=${out} N=${inp} K=${N} TN`, kernels: 'shared', flops, savedBytes: null,
        run: () => gemm(mm, true, false, out, inp, N, dy, x, 1, dW) },
    );
  }
  return ops;
}

/** Linear layers of one block and the head; layers of identical shape are timed once. */
function linearLayers(C: number, H: number, KVH: number, D: number, F: number, V: number) {
  const list: Array<[string, number, number]> = [
    ['q_proj', H * D, C], ['k_proj', KVH * D, C], ['v_proj', KVH * D, C], ['o_proj', C, H * D],
    ['gate_proj', F, C], ['up_proj', F, C], ['gate_up (fused)', 2 * F, C], ['down_proj', C, F], ['lm_head', V, C],
  ];
  const byShape = new Map<string, { names: string; out: number; inp: number }>();
  for (const [name, out, inp] of list) {
    const key = `${out}x${inp}`;
    const seen = byShape.get(key);
    if (seen) seen.names += `/${name}`;
    else byShape.set(key, { names: name, out, inp });
  }
  return [...byShape.values()];
}

// bf16: the fused kernel runs on the bf16 matrix unit when there is one (the standard kernel has
// no bf16 form: a typical framework's materialized attention stays as it is).
function attentionOps(B: number, T: number, H: number, KVH: number, D: number, paths: KernelPath[], seed: number, bf16: boolean, ops16: boolean): Op[] {
  const N = B * T;
  const q = buffer(N * H * D, seed + 11), k = buffer(N * KVH * D, seed + 12), v = buffer(N * KVH * D, seed + 13);
  const dout = buffer(N * H * D, seed + 14, 0.1);
  const out = buffer(N * H * D, 0), dq = buffer(N * H * D, 0), dk = buffer(N * KVH * D, 0), dv = buffer(N * KVH * D, 0);
  const shape = `B=${B} T=${T} H=${H} KVH=${KVH} D=${D} causal`;
  // Causal attention model FLOPs: QK^T and PV over the lower triangle, 2 GEMM-like products of
  // B·H·T²/2·D multiply-adds each -> 2·B·H·T²·D forward, twice that backward.
  const fwdFlops = 2 * B * H * T * T * D;
  const ops: Op[] = [];
  for (const path of paths) {
    if (path === 'standard') {
      const probs = buffer(B * H * T * T, 0);
      const fwd = () => native.attentionStandardForward(out, probs, q, k, v, B, T, H, KVH, D);
      ops.push(
        { group: 'attention', op: 'attention fwd', shape, kernels: path, flops: fwdFlops, savedBytes: probs.byteLength, run: fwd },
        { group: 'attention', op: 'attention bwd', shape, kernels: path, flops: 2 * fwdFlops, savedBytes: probs.byteLength, prepare: fwd,
          run: () => native.attentionStandardBackward(dq, dk, dv, dout, q, k, v, probs, B, T, H, KVH, D) },
      );
    } else {
      const lse = buffer(B * H * T, 0);
      const [q2, k2, v2] = [operand(q, ops16), operand(k, ops16), operand(v, ops16)];
      const out2 = ops16 ? new Uint16Array(out.length) : out; // the output too, as the trainer keeps it
      const fwd = () => native.attentionFlashForward(out2, lse, q2, k2, v2, B, T, H, KVH, D, bf16);
      ops.push(
        { group: 'attention', op: 'attention fwd', shape, kernels: path, flops: fwdFlops, savedBytes: lse.byteLength, run: fwd },
        { group: 'attention', op: 'attention bwd', shape, kernels: path, flops: 2 * fwdFlops, savedBytes: lse.byteLength, prepare: fwd,
          run: () => native.attentionFlashBackward(dq, dk, dv, dout, q2, k2, v2, out2, lse, B, T, H, KVH, D, bf16) },
      );
    }
  }
  return ops;
}

// The q/k/v projections with RoPE, the model's own functions (src/model/attention.ts): standard
// (three GEMMs, then RoPE on q and k in place) vs fused (one GEMM over the packed q/k/v weights,
// RoPE and the split in its epilogue; on a bf16 matrix unit the GEMM, then the split pass).
function qkvOps(B: number, T: number, C: number, H: number, KVH: number, D: number, paths: KernelPath[], seed: number, mm: Matmul, ops16: boolean): Op[] {
  const N = B * T, W = (H + 2 * KVH) * D;
  const h = buffer(N * C, seed + 41, 0.5);
  const q = buffer(N * H * D, 0), k = buffer(N * KVH * D, 0), v = buffer(N * KVH * D, 0);
  const cos = buffer((T * D) / 2, 0), sin = buffer((T * D) / 2, 0);
  native.ropeTable(cos, sin, T, D, 10000);
  const s = { B, T, C, H, KVH, D, mm };
  const shape = `N=${N} C=${C} H=${H} KVH=${KVH} D=${D}`;
  const flops = 2 * N * C * W;
  const ops: Op[] = [];
  for (const path of paths) {
    if (path === 'standard') {
      const w = { q: buffer(H * D * C, seed + 42, 0.02), k: buffer(KVH * D * C, seed + 43, 0.02), v: buffer(KVH * D * C, seed + 44, 0.02), o: new Float32Array(0) };
      ops.push({ group: 'qkv', op: 'qkv+rope fwd', shape, kernels: path, flops, savedBytes: null,
        run: () => qkvForward(q, k, v, h, w, { cos, sin }, s) });
    } else {
      const wqkv = operand(buffer(W * C, seed + 45, 0.02), ops16), qkv = buffer(N * W, 0), h2 = operand(h, ops16);
      const [q2, k2, v2] = [output(N * H * D, ops16), output(N * KVH * D, ops16), output(N * KVH * D, ops16)];
      ops.push({ group: 'qkv', op: 'qkv+rope fwd', shape, kernels: path, flops, savedBytes: null,
        run: () => fusedQkvForward(q2, k2, v2, qkv, h2, wqkv, { cos, sin }, s) });
    }
  }
  return ops;
}

// The model's own MLP functions (src/model/mlp.ts), so the rows time exactly what the trainer
// runs (with --recompute none): standard saves gate, up and the activation; fused saves gate/up
// and makes the activation again in backward's SwiGLU pass.
function mlpOps(N: number, C: number, F: number, paths: KernelPath[], seed: number, mm: Matmul, ops16: boolean): Op[] {
  const h = buffer(N * C, seed + 21, 0.5), dout = buffer(N * C, seed + 22, 0.01);
  const y = buffer(N * C, 0), dh = buffer(N * C, 0);
  const s = { N, C, F, mm };
  const shape = `N=${N} C=${C} F=${F}`;
  const fwdFlops = 2 * N * C * F * 3;
  const ops: Op[] = [];
  for (const path of paths) {
    if (path === 'standard') {
      const w = { gate: buffer(F * C, seed + 23, 0.02), up: buffer(F * C, seed + 24, 0.02), down: buffer(C * F, seed + 25, 0.02) };
      const dw = { gate: buffer(F * C, 0), up: buffer(F * C, 0), down: buffer(C * F, 0) };
      const acts = new MlpActs('f32', s);
      const grads = new MlpGrads('f32', s);
      const saved = acts.gate.bytes + acts.up.bytes + acts.act.bytes;
      const fwd = () => mlpForward(y, acts, h, w, s);
      ops.push(
        { group: 'mlp', op: 'mlp fwd', shape, kernels: path, flops: fwdFlops, savedBytes: saved, run: fwd },
        { group: 'mlp', op: 'mlp bwd', shape, kernels: path, flops: 2 * fwdFlops, savedBytes: saved, prepare: fwd,
          run: () => mlpBackward(dh, dw, dout, acts, grads, h, w, s) },
      );
    } else {
      // gate rows [0, F) and up rows [F, 2F) of one (2F, C) matrix, as the parameter store packs them
      const w = { gu: operand(buffer(2 * F * C, seed + 23, 0.02), ops16), down: operand(buffer(C * F, seed + 25, 0.02), ops16) };
      const dw = { gu: buffer(2 * F * C, 0), down: buffer(C * F, 0) };
      // gate/up kept for backward (the trainer's --recompute none); backward turns them into dgu
      const gu = output(2 * N * F, ops16), h2 = operand(h, ops16), dout2 = operand(dout, ops16);
      const scratch = new FusedMlpScratch('f32', s, ops16);
      const fwd = () => fusedMlpForward(y, gu, scratch.act.data, h2, w, s);
      ops.push(
        { group: 'mlp', op: 'mlp fwd', shape, kernels: path, flops: fwdFlops, savedBytes: gu.byteLength, run: fwd },
        { group: 'mlp', op: 'mlp bwd', shape, kernels: path, flops: 2 * fwdFlops, savedBytes: gu.byteLength, prepare: fwd,
          run: () => fusedMlpBackward(dh, dw, dout2, gu, scratch, h2, w, s) },
      );
    }
  }
  return ops;
}

function lossOps(N: number, C: number, V: number, paths: KernelPath[], seed: number, mm: Matmul, ops16: boolean): Op[] {
  const x = buffer(N * C, seed + 31, 1), W = buffer(V * C, seed + 32, 0.02);
  const targets = randomTokens(N, V, seed + 33);
  const dx = buffer(N * C, 0), dW = buffer(V * C, 0), lse = buffer(N, 0);
  const shape = `N=${N} C=${C} V=${V}`;
  const flops = 6 * N * C * V;
  const ops: Op[] = [];
  for (const path of paths) {
    if (path === 'standard') {
      const logits = buffer(N * V, 0);
      ops.push({ group: 'loss', op: 'loss fwd+bwd', shape, kernels: path, flops, savedBytes: logits.byteLength,
        run: () => {
          gemm(mm, false, true, N, V, C, x, W, 0, logits);
          native.crossEntropyForward(lse, logits, targets, N, V);
          native.crossEntropyBackward(logits, logits, lse, targets, N, V, 1 / N);
          gemm(mm, false, false, N, C, V, logits, W, 0, dx);
          gemm(mm, true, false, V, C, N, logits, x, 1, dW);
        } });
    } else {
      const x2 = operand(x, ops16), W2 = operand(W, ops16);
      ops.push({ group: 'loss', op: 'loss fwd+bwd', shape, kernels: path, flops, savedBytes: lse.byteLength,
        run: () => native.linearCrossEntropy(dx, dW, lse, x2, W2, targets, N, C, V, 1 / N, mm === native.gemmBf16) });
    }
  }
  return ops;
}

export function runKernelRows(job: KernelsJob, onProgress: (done: number, total: number, what: string) => void): KernelRow[] {
  const { model: mc, train: tc } = resolveConfig({ preset: job.preset });
  native.setThreads(job.threads);
  const peak = job.peakGflops ?? getPeak({ threads: job.threads, dtype: job.dtype }).gflops;
  // bf16 rows run what the trainer runs under --dtype bf16: every GEMM on the bf16 unit.
  const precision: Precision = job.dtype === 'bf16' ? 'bf16' : 'fp32';
  const mm = matmulFor(precision);
  const ops16 = keepsBf16Operands('f32', 'litespark', precision); // the fused rows' operands in bf16
  const B = tc.micro_batch_size, T = tc.seq_len, N = B * T;
  const C = mc.hidden_size, F = mc.intermediate_size, V = mc.vocab_size;
  const H = mc.num_attention_heads, KVH = mc.num_key_value_heads, D = C / H;
  const paths = job.kernels;
  const base = {
    kind: 'kernel' as const, config: job.config, dtype: job.dtype, threads: job.threads, isa: native.isa(), cpu: cpuModel(),
    commit: job.commit, node: process.version, loadavg_1m: null as number | null,
  };

  // Build the op list lazily per group, so a group's buffers exist only while it runs.
  const groups: Array<() => Op[]> = [
    () => gemmOps(N, layers, job.seed, mm),
    () => qkvOps(B, T, C, H, KVH, D, paths, job.seed, mm, ops16),
    () => attentionOps(B, T, H, KVH, D, paths, job.seed, precision === 'bf16', ops16),
    () => mlpOps(N, C, F, paths, job.seed, mm, ops16),
    () => lossOps(N, C, V, paths, job.seed, mm, ops16),
  ];
  const layers = linearLayers(C, H, KVH, D, F, V);
  const total = layers.length * 3 + paths.length * 6; // + qkv, attention fwd/bwd, mlp fwd/bwd, loss per path
  const rows: KernelRow[] = [];
  let done = 0;
  for (const make of groups) {
    let ops: Op[];
    try {
      ops = make();
    } catch (e) {
      rows.push({ ...base, kernels: 'shared', ok: false, error: errorText(e), group: '?', op: 'setup', shape: '',
        ms_median: null, ms_min: null, ms_max: null, gflops: null, peak_fraction: null, speedup: null, saved_bytes: null });
      continue;
    }
    for (const op of ops) {
      onProgress(done++, total, `${op.op} (${op.kernels})`);
      try {
        op.prepare?.();
        const t = time(op.run, job.warmup, job.steps);
        const gflops = op.flops > 0 ? op.flops / (t.median * 1e6) : null;
        rows.push({ ...base, loadavg_1m: os.loadavg()[0]!, kernels: op.kernels, ok: true, error: null, group: op.group, op: op.op, shape: op.shape,
          ms_median: t.median, ms_min: t.min, ms_max: t.max, gflops,
          peak_fraction: op.group === 'gemm' && gflops !== null && peak > 0 ? gflops / peak : null,
          speedup: null, saved_bytes: op.savedBytes });
      } catch (e) {
        rows.push({ ...base, kernels: op.kernels, ok: false, error: errorText(e), group: op.group, op: op.op, shape: op.shape,
          ms_median: null, ms_min: null, ms_max: null, gflops: null, peak_fraction: null, speedup: null, saved_bytes: op.savedBytes });
      }
    }
  }
  // Fused over standard, op by op.
  for (const r of rows) {
    if (r.kernels !== 'litespark' || !r.ok) continue;
    const std = rows.find((s) => s.kernels === 'standard' && s.op === r.op && s.ok);
    if (std && std.ms_median !== null && r.ms_median !== null) r.speedup = std.ms_median / r.ms_median;
  }
  return rows;
}
