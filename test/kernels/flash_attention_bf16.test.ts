// Flash attention for bf16 mixed precision (native/src/bf16/flash_attention_bf16.cc) on every
// bf16 matrix unit this CPU has (AMX, AVX-512 BF16): out, lse, dq, dk, dv against the float64
// reference of attention (test/reference/ops.ts) on bf16-rounded q, k, v and dout, each element
// within a bound derived from where the kernel rounds (below); one-hot attention, where every
// probability is exact and so the outputs are exact up to fp32 sums, pins down which operands are
// rounded; bit-identical results on 1, 2 and 3 threads (both backward schedules); and the flag
// leaves the fp32 kernel alone where it does not apply. Machines without a matrix unit skip these.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { randArray, rng } from '../helpers.js';
import { attentionBackwardRef, attentionForwardRef, roundBf16Ref } from '../reference/ops.js';
import { MATRIX_UNITS as UNITS, withThreads, withUnit } from './harness.js';

const SKIP = UNITS.length === 0 && 'no bf16 matrix unit on this CPU';
const U = 2 ** -24; // fp32 unit roundoff
const UB = 2 ** -8; // bf16 unit roundoff (8 significant bits, nearest even)
// The bounds below are first-order worst cases; SLACK covers their second-order terms and the
// vectorized exp being "about 1 ulp". Errors seen: at most 0.45 of a bound (dv).
const SLACK = 2;

type Shape = [number, number, number, number, number]; // [B, T, H, KVH, D]
const rounded = (x: Float32Array) => Float64Array.from(x, roundBf16Ref);

interface Reference {
  out: Float64Array; lse: Float64Array; dq: Float64Array; dk: Float64Array; dv: Float64Array;
  bound: { out: Float64Array; lse: Float64Array; dq: Float64Array; dk: Float64Array; dv: Float64Array };
}

/**
 * The float64 attention of bf16-rounded q, k, v, dout (ops.ts), and per element a bound on what
 * the kernel may differ by. With s = scale q.k, P = softmax(s), sAbs_i = scale max_j sum |q_i||k_j|:
 *   S = q k^T in fp32:           |ds| <= (D+1) u sAbs          (bf16 products are exact in fp32)
 *   lse = m + log sum exp(s - m): + 2u sAbs (s - m) + 2u (exp) + (i+1) u (sum) + u |log l| + u |lse|
 *   out = sum bf16(p_j) v_j / l:  UB + 2 eta + (2i + 4) u, relative to sum_j P_j |v_j|, where eta
 *                                 (D+3) u sAbs + 2u bounds the relative error of each p_j
 *   backward p = exp(scale S - lse): eta' = eta + u |lse| + (the lse bound)
 *   Di = bf16(dout) . bf16(out): |dDi| <= sum |dout| ((1 + UB) out's bound + (UB + D u) |out|)
 *   dP = dout v^T in fp32:        |ddP| <= D u max_j sum |dout_i||v_j|
 *   dS = p (dP - Di) rounded:     UB + eta' + 2u relative to |dS|, plus P (|ddP| + |dDi|)
 *   dq = scale sum_j bf16(dS) k:  + (i + 4) u in the sum; dk, dv likewise over the T G rows.
 * A mask off by one, a lost tile edge or an unrounded q or k moves some element by far more;
 * the one-hot test below catches unrounded v or dout (whose effect this bound would absorb).
 */
function reference(shape: Shape, q: Float64Array, k: Float64Array, v: Float64Array, dout: Float64Array): Reference {
  const [B, T, H, KVH, D] = shape;
  const G = H / KVH, scale = 1 / Math.sqrt(D);
  const nq = B * T * H * D, nkv = B * T * KVH * D;
  const out = new Float64Array(nq), probs = new Float64Array(B * H * T * T);
  attentionForwardRef(out, probs, q, k, v, B, T, H, KVH, D);
  const dq = new Float64Array(nq), dk = new Float64Array(nkv), dv = new Float64Array(nkv);
  attentionBackwardRef(dq, dk, dv, dout, q, k, v, probs, B, T, H, KVH, D);
  const lse = new Float64Array(B * H * T);
  const bound = { out: new Float64Array(nq), lse: new Float64Array(B * H * T), dq: new Float64Array(nq), dk: new Float64Array(nkv), dv: new Float64Array(nkv) };
  const qi = (b: number, i: number, h: number) => ((b * T + i) * H + h) * D;
  const kj = (b: number, j: number, kvh: number) => ((b * T + j) * KVH + kvh) * D;
  const sumAbs = (x: Float64Array, xo: number, y: Float64Array, yo: number) => {
    let s = 0;
    for (let e = 0; e < D; e++) s += Math.abs(x[xo + e]! * y[yo + e]!);
    return s;
  };
  const dot = (x: Float64Array, xo: number, y: Float64Array, yo: number) => {
    let s = 0;
    for (let e = 0; e < D; e++) s += x[xo + e]! * y[yo + e]!;
    return s;
  };
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / G);
      for (let i = 0; i < T; i++) {
        const o = qi(b, i, h), P = (j: number) => probs[((b * H + h) * T + i) * T + j]!;
        let sAbs = 0, mx = -Infinity, dPmax = 0;
        for (let j = 0; j <= i; j++) {
          sAbs = Math.max(sAbs, scale * sumAbs(q, o, k, kj(b, j, kvh)));
          mx = Math.max(mx, scale * dot(q, o, k, kj(b, j, kvh)));
          dPmax = Math.max(dPmax, sumAbs(dout, o, v, kj(b, j, kvh)));
        }
        let l = 0;
        for (let j = 0; j <= i; j++) l += Math.exp(scale * dot(q, o, k, kj(b, j, kvh)) - mx);
        const L = mx + Math.log(l), at = (b * H + h) * T + i;
        lse[at] = L;
        bound.lse[at] = SLACK * U * ((D + 4) * sAbs + i + 3 + 2 * Math.abs(L));
        const eta = (D + 3) * U * sAbs + 2 * U, etaB = eta + U * Math.abs(L) + bound.lse[at]!;
        // out: (UB + 2 eta + (2i + 4) u) sum_j P_j |v_j|; the Di error it causes in backward
        const rel = UB + 2 * eta + (2 * i + 4) * U;
        let dDi = 0;
        for (let e = 0; e < D; e++) {
          let pv = 0;
          for (let j = 0; j <= i; j++) pv += P(j) * Math.abs(v[kj(b, j, kvh) + e]!);
          bound.out[o + e] = SLACK * rel * pv;
          dDi += Math.abs(dout[o + e]!) * ((1 + UB) * bound.out[o + e]! + (UB + D * U) * Math.abs(out[o + e]!));
        }
        const row = D * U * dPmax + dDi; // |ddP| + |dDi|, multiplied by P_ij in dS_ij
        let Di = 0;
        for (let e = 0; e < D; e++) Di += dout[o + e]! * out[o + e]!;
        const relQ = UB + etaB + (i + 6) * U, relK = UB + etaB + (T * G + 6) * U;
        for (let j = 0; j <= i; j++) {
          const ko = kj(b, j, kvh), p = P(j);
          const dS = p * (dot(dout, o, v, ko) - Di);
          for (let e = 0; e < D; e++) {
            bound.dq[o + e] += SLACK * scale * (relQ * Math.abs(dS) + p * row) * Math.abs(k[ko + e]!);
            bound.dk[ko + e] += SLACK * scale * (relK * Math.abs(dS) + p * row) * Math.abs(q[o + e]!);
            bound.dv[ko + e] += SLACK * relK * p * Math.abs(dout[o + e]!);
          }
        }
      }
    }
  return { out, lse, dq, dk, dv, bound };
}

/** The index of the element furthest past its bound, or -1; with the worst ratio err/bound. */
function worst(got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>): { at: number; ratio: number } {
  let at = -1, ratio = 0;
  for (let i = 0; i < want.length; i++) {
    const r = Math.abs(got[i]! - want[i]!) / bound[i]!;
    if (!(r <= ratio)) (ratio = Number.isNaN(r) ? Infinity : r), (at = i);
  }
  return { at, ratio };
}

function assertWithin(got: ArrayLike<number>, want: ArrayLike<number>, bound: ArrayLike<number>, what: string): number {
  const w = worst(got, want, bound);
  if (w.ratio > 1)
    assert.fail(`${what}[${w.at}] = ${got[w.at]}, expected ${want[w.at]} (|diff| ${Math.abs(got[w.at]! - want[w.at]!).toExponential(3)} > bound ${bound[w.at]!.toExponential(3)})`);
  return w.ratio;
}

interface Run { out: Float32Array; lse: Float32Array; dq: Float32Array; dk: Float32Array; dv: Float32Array }

/** Forward then backward (on the forward's own out and lse, as the model does); outputs start as garbage. */
function run(shape: Shape, q: Float32Array, k: Float32Array, v: Float32Array, dout: Float32Array, bf16?: boolean): Run {
  const [B, T, H, KVH, D] = shape;
  const out = new Float32Array(q.length).fill(7), lse = new Float32Array(B * H * T).fill(7);
  native.attentionFlashForward(out, lse, q, k, v, B, T, H, KVH, D, bf16);
  const dq = new Float32Array(q.length).fill(NaN), dk = new Float32Array(k.length).fill(NaN), dv = new Float32Array(v.length).fill(NaN);
  native.attentionFlashBackward(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KVH, D, bf16);
  return { out, lse, dq, dk, dv };
}

function inputs(shape: Shape, seed: number) {
  const [B, T, H, KVH, D] = shape;
  const nq = B * T * H * D, nkv = B * T * KVH * D;
  return {
    q: randArray(Float32Array, nq, seed, 2), k: randArray(Float32Array, nkv, seed + 1, 2),
    v: randArray(Float32Array, nkv, seed + 2), dout: randArray(Float32Array, nq, seed + 3),
  };
}

// T across the 64-key and 32-key tiles and the query tiles (64 / 64 / 32 / 16 positions for G 1 /
// 2 / 4 / 8, 32 for G = 3), D 32 / 64 / 128 and 16 / 80 (zero-padded to 32 / 96), G 1 / 2 / 3 / 4 / 8,
// B 2, and T = 300 (5 key tiles: the backward's key tiles go in sweeps of 4).
const SHAPES: Shape[] = [
  [1, 1, 1, 1, 32],
  [2, 17, 4, 2, 64],
  [1, 100, 4, 1, 128],
  [2, 130, 2, 2, 32],
  [1, 130, 4, 2, 64],
  [1, 70, 3, 1, 16],
  [1, 40, 8, 1, 80],
  [1, 300, 2, 1, 32],
];

test('bf16 flash attention: out, lse, dq, dk, dv within the derived bounds of the float64 reference on bf16 operands, every matrix unit', { skip: SKIP }, () => {
  let seed = 1000, seen = 0;
  for (const shape of SHAPES) {
    const x = inputs(shape, (seed += 10));
    const ref = reference(shape, rounded(x.q), rounded(x.k), rounded(x.v), rounded(x.dout));
    for (const unit of UNITS)
      withUnit(unit, () => {
        const r = run(shape, x.q, x.k, x.v, x.dout, true);
        const at = `${unit} [${shape}]`;
        for (const name of ['lse', 'out', 'dq', 'dk', 'dv'] as const) {
          seen = Math.max(seen, assertWithin(r[name], ref[name], ref.bound[name], `${at} ${name}`));
        }
      });
    // The bounds have teeth: the fp32 kernel (operands not rounded) is off the bf16 reference's lse.
    const f = run(shape, x.q, x.k, x.v, x.dout);
    if (shape[1] > 1) assert.ok(worst(f.lse, ref.lse, ref.bound.lse).ratio > 4, `[${shape}]: the fp32 kernel passes the bf16 lse bound`);
  }
  process.stdout.write(`worst error / bound: ${seen.toFixed(3)}\n`);
});

test('bf16 flash attention with one-hot probabilities is exact up to fp32 sums: v and dout are rounded, Di uses the rounded dout', { skip: SKIP }, () => {
  // Key j = 16 e_j and query i = 16 e_{c(i)} for a chosen key c(i) <= i (a different one per
  // head): scale*s = 256/sqrt(32) = 45 for key c(i), 0 for the others, so P is one-hot up to
  // e^-45 and exact in bf16. Then out_i = bf16(v_c(i)), dv_j = sum of bf16(dout_i) over the
  // queries that chose j, and dS = P (dP - Di) = 0 (dP = Di = bf16(dout).bf16(v)): dq = dk = 0.
  // Any of these operands left in fp32 moves the results by ~2^-9, a thousand bounds.
  const B = 2, T = 32, H = 4, KVH = 2, D = 32, G = H / KVH;
  const shape: Shape = [B, T, H, KVH, D];
  const r = rng(77);
  const q = new Float32Array(B * T * H * D), k = new Float32Array(B * T * KVH * D);
  const choice = new Int32Array(B * H * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      for (let kvh = 0; kvh < KVH; kvh++) k[((b * T + t) * KVH + kvh) * D + t] = 16;
      for (let h = 0; h < H; h++) {
        const c = Math.floor(r() * (t + 1));
        choice[(b * H + h) * T + t] = c;
        q[((b * T + t) * H + h) * D + c] = 16;
      }
    }
  const v = randArray(Float32Array, k.length, 78), dout = randArray(Float32Array, q.length, 79);
  const vr = rounded(v), gr = rounded(dout);
  const out = new Float64Array(q.length), dv = new Float64Array(k.length), dvAbs = new Float64Array(k.length);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const c = choice[(b * H + h) * T + t]!, o = ((b * T + t) * H + h) * D, vo = ((b * T + c) * KVH + Math.floor(h / G)) * D;
        for (let e = 0; e < D; e++) {
          out[o + e] = vr[vo + e]!;
          dv[vo + e] += gr[o + e]!;
          dvAbs[vo + e] += Math.abs(gr[o + e]!);
        }
      }
  // |dS| <= 2 D u max |dout||v| (two fp32 dot products of D exact terms; |dout|, |v| <= 1), and
  // dq, dk are scale 16 dS summed over the chosen pairs; the other keys add ~e^-45 terms (atol).
  const dS = 2 * D * U, atol = 1e-15;
  const scale = 1 / Math.sqrt(D);
  for (const unit of UNITS)
    withUnit(unit, () => {
      const got = run(shape, q, k, v, dout, true);
      const at = `${unit} one-hot`;
      assertWithin(got.out, out, Float64Array.from(out, (x) => 4 * T * U * Math.abs(x) + atol), `${at} out`);
      assertWithin(got.dv, dv, Float64Array.from(dvAbs, (x) => 4 * (T * G + 4) * U * x + atol), `${at} dv`);
      assertWithin(got.dq, new Float64Array(q.length), new Float64Array(q.length).fill(4 * scale * 16 * dS), `${at} dq`);
      assertWithin(got.dk, new Float64Array(k.length), new Float64Array(k.length).fill(4 * scale * 16 * dS * T * G), `${at} dk`);
    });
});

test('bf16 flash attention gives bit-identical results on 1, 2 and 3 threads (one-pass and two-pass backward)', { skip: SKIP }, () => {
  // Backward runs one pass (a task per B*KVH group, key tiles in sweeps of 4) while the groups keep
  // >= 3/4 of the threads busy, else two (a task per key tile): [2,330,4,1,64] (2 groups, 6 key
  // tiles) is one-pass on 1 and 2 threads and two-pass on 3; [1,130,4,1,32] (1 group) two-pass
  // on 2 and 3.
  for (const shape of [[2, 330, 4, 1, 64], [1, 130, 4, 1, 32], [3, 70, 6, 3, 16]] as Shape[]) {
    const x = inputs(shape, 500);
    for (const unit of UNITS)
      withUnit(unit, () => {
        const runs = [1, 2, 3].map((n) => {
          let r: Run | undefined;
          withThreads(n, () => (r = run(shape, x.q, x.k, x.v, x.dout, true)));
          return r!;
        });
        for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const)
          for (const n of [1, 2]) assert.deepEqual(runs[n]![name], runs[0]![name], `${unit} [${shape}] ${name}: ${n + 1} threads vs 1`);
      });
  }
});

test('the bf16 flag runs the fp32 kernel, unchanged, for float64 buffers, the fp32 unit, or false', () => {
  const shape: Shape = [2, 50, 4, 2, 32];
  const [B, T, H, KVH, D] = shape;
  const x = inputs(shape, 900);
  const plain = run(shape, x.q, x.k, x.v, x.dout);
  for (const flag of [false, undefined]) assert.deepEqual(run(shape, x.q, x.k, x.v, x.dout, flag), plain, `flag ${flag}`);
  withUnit('fp32', () => assert.deepEqual(run(shape, x.q, x.k, x.v, x.dout, true), plain, 'fp32 unit'));
  const q64 = Float64Array.from(x.q), k64 = Float64Array.from(x.k), v64 = Float64Array.from(x.v);
  const a = new Float64Array(q64.length), la = new Float64Array(B * H * T), b = new Float64Array(q64.length), lb = new Float64Array(B * H * T);
  native.attentionFlashForward(a, la, q64, k64, v64, B, T, H, KVH, D);
  native.attentionFlashForward(b, lb, q64, k64, v64, B, T, H, KVH, D, true);
  assert.deepEqual(b, a, 'float64 out');
  assert.deepEqual(lb, la, 'float64 lse');
});
