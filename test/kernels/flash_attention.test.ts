// Flash attention (fused path) against the plain reference and the standard native kernel:
// output, lse, dq, dk, dv on every ISA in f32 and f64, awkward shapes (T no multiple of the
// tiles: 64 keys x 128/G query positions; head dims 2..128; GQA 1/2/3/4; batch > 1), finite
// differences in f64, and bit-identical results on 1 and 2 threads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import { attentionBackwardRef, attentionForwardRef } from '../reference/ops.js';
import { fdCheck, forEachIsa, weightedSum, withThreads } from './harness.js';

type Shape = [number, number, number, number, number]; // [B, T, H, KVH, D]
const SHAPES: Shape[] = [
  [1, 1, 1, 1, 2],
  [2, 7, 2, 2, 4],
  [1, 13, 4, 2, 8],
  [2, 33, 4, 1, 32],
  [1, 65, 8, 2, 64],
  [1, 130, 2, 1, 128],
  [2, 200, 4, 4, 16],
  [1, 100, 3, 1, 8], // G = 3: query tiles of 42 rows straddle the 64-key tiles
];

/** lse (B, H, T) from its definition: log sum_{j <= i} exp(scale q_i . k_j). */
function lseRef(q: Float64Array, k: Float64Array, B: number, T: number, H: number, KVH: number, D: number): Float64Array {
  const lse = new Float64Array(B * H * T);
  const scale = 1 / Math.sqrt(D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < T; i++) {
        const s: number[] = [];
        for (let j = 0; j <= i; j++) {
          let d = 0;
          for (let e = 0; e < D; e++) d += q[((b * T + i) * H + h) * D + e]! * k[((b * T + j) * KVH + kvh) * D + e]!;
          s.push(d * scale);
        }
        const mx = Math.max(...s);
        lse[(b * H + h) * T + i] = mx + Math.log(s.reduce((a, x) => a + Math.exp(x - mx), 0));
      }
    }
  return lse;
}

interface Case {
  shape: Shape;
  q: Float64Array; k: Float64Array; v: Float64Array; dout: Float64Array;
  out: Float64Array; lse: Float64Array; dq: Float64Array; dk: Float64Array; dv: Float64Array;
}

// The f64 reference of one shape, computed once (the plain TS reference is O(B H T^2 D)).
const CASES: Case[] = SHAPES.map((shape, n) => {
  const [B, T, H, KVH, D] = shape;
  const nq = B * T * H * D, nkv = B * T * KVH * D;
  const q = randArray(Float64Array, nq, 100 + n, 2), k = randArray(Float64Array, nkv, 200 + n, 2);
  const v = randArray(Float64Array, nkv, 300 + n), dout = randArray(Float64Array, nq, 400 + n);
  const out = new Float64Array(nq), probs = new Float64Array(B * H * T * T);
  attentionForwardRef(out, probs, q, k, v, B, T, H, KVH, D);
  const dq = new Float64Array(nq), dk = new Float64Array(nkv), dv = new Float64Array(nkv);
  attentionBackwardRef(dq, dk, dv, dout, q, k, v, probs, B, T, H, KVH, D);
  return { shape, q, k, v, dout, out, lse: lseRef(q, k, B, T, H, KVH, D), dq, dk, dv };
});

test('flash attention forward/backward match the reference and the standard kernel on every ISA (f32, f64)', () => {
  // On 2 threads the backward takes its two-pass schedule for the shapes with one B*KVH group
  // and its one-pass schedule for the others: both are checked.
  withThreads(2, () => forEachIsa((isa) => {
    for (const c of CASES) {
      const [B, T, H, KVH, D] = c.shape;
      const nq = B * T * H * D, nkv = B * T * KVH * D;
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const at = `${isa} ${dt} [${c.shape}]`;
        const q = new ctor(c.q), k = new ctor(c.k), v = new ctor(c.v), dout = new ctor(c.dout);
        // garbage in every output: the kernels overwrite, never accumulate
        const o = new ctor(nq).fill(7), lse = new ctor(B * H * T).fill(7);
        native.attentionFlashForward(o, lse, q, k, v, B, T, H, KVH, D);
        const K = Math.max(T, D);
        assertClose(o, c.out, tol(dt, K, 16), `${at} out`);
        assertClose(lse, c.lse, tol(dt, K, 16), `${at} lse`);
        const dq = new ctor(nq).fill(NaN), dk = new ctor(nkv).fill(NaN), dv = new ctor(nkv).fill(NaN);
        native.attentionFlashBackward(dq, dk, dv, dout, q, k, v, o, lse, B, T, H, KVH, D);
        const Kb = T * (H / KVH) + D;
        assertClose(dq, c.dq, tol(dt, Kb, 16), `${at} dq`);
        assertClose(dk, c.dk, tol(dt, Kb, 16), `${at} dk`);
        assertClose(dv, c.dv, tol(dt, Kb, 16), `${at} dv`);

        // the standard native kernel on the same inputs, same dtype: the two paths agree
        const so = new ctor(nq), probs = new ctor(B * H * T * T);
        native.attentionStandardForward(so, probs, q, k, v, B, T, H, KVH, D);
        const sq = new ctor(nq), sk = new ctor(nkv), sv = new ctor(nkv);
        native.attentionStandardBackward(sq, sk, sv, dout, q, k, v, probs, B, T, H, KVH, D);
        assertClose(o, so, tol(dt, K, 32), `${at} out vs standard`);
        assertClose(dq, sq, tol(dt, Kb, 32), `${at} dq vs standard`);
        assertClose(dk, sk, tol(dt, Kb, 32), `${at} dk vs standard`);
        assertClose(dv, sv, tol(dt, Kb, 32), `${at} dv vs standard`);
      }
    }
  }));
});

test('flash attention softmax is accurate to a few ulp (two keys: out = sigmoid, lse = softplus)', () => {
  // B sequences of T=2, D=1 (scale 1): query 1 scores x against key 0 and 0 against key 1, so
  // out = sigmoid(x) for v = (1, 0) and lse = log(1 + e^x): checks the vectorized exp directly,
  // whose errors mostly cancel in the normalization of the random-input tests above.
  const B = 601;
  const xs = Float64Array.from({ length: B }, (_, b) => -30 + (60 * b) / (B - 1));
  forEachIsa((isa) => {
    for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
      const q = new ctor(2 * B), k = new ctor(2 * B), v = new ctor(2 * B);
      xs.forEach((x, b) => ((q[2 * b + 1] = x), (k[2 * b] = 1), (v[2 * b] = 1)));
      const out = new ctor(2 * B), lse = new ctor(2 * B);
      native.attentionFlashForward(out, lse, q, k, v, B, 2, 1, 1, 1);
      const x = xs.map((x) => new ctor([x])[0]!); // the score as the kernel sees it
      const sig = x.map((x) => 1 / (1 + Math.exp(-x)));
      const sp = x.map((x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))));
      const t = tol(dt, 1, 2); // 2 * 2 = 4 ulp
      assertClose(out.filter((_, i) => i % 2 === 1), sig, t, `${isa} ${dt} sigmoid`);
      assertClose(lse.filter((_, i) => i % 2 === 1), sp, t, `${isa} ${dt} softplus`);
    }
  });
});

test('flash attention gives bit-identical results on 1 and 2 threads', () => {
  // [1, 130, 4, 1, 64] has one B*KVH group: its backward runs in one pass on 1 thread and in two
  // passes on 2 threads (see the kernel): the two schedules must give the same bits too.
  for (const [B, T, H, KVH, D] of [[2, 200, 4, 2, 32], [1, 130, 4, 1, 64], [3, 70, 2, 1, 16]] as Shape[]) {
    const q = randArray(Float32Array, B * T * H * D, 5), k = randArray(Float32Array, B * T * KVH * D, 6);
    const v = randArray(Float32Array, B * T * KVH * D, 7), dout = randArray(Float32Array, B * T * H * D, 8);
    const run = () => {
      const o = new Float32Array(q.length), lse = new Float32Array(B * H * T);
      native.attentionFlashForward(o, lse, q, k, v, B, T, H, KVH, D);
      const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
      native.attentionFlashBackward(dq, dk, dv, dout, q, k, v, o, lse, B, T, H, KVH, D);
      return [o, lse, dq, dk, dv];
    };
    let one: Float32Array[] = [];
    let two: Float32Array[] = [];
    withThreads(1, () => (one = run()));
    withThreads(2, () => (two = run()));
    one.forEach((a, i) => assert.deepEqual(a, two[i], `output ${i} of [${[B, T, H, KVH, D]}]`));
  }
});

test('flash attention backward equals finite differences of forward (native f64, GQA 1/2/4)', () => {
  for (const [H, KVH] of [[2, 2], [4, 2], [4, 1]]) {
    const B = 2, T = 5, D = 3;
    const q = randArray(Float64Array, B * T * H * D, 31), k = randArray(Float64Array, B * T * KVH * D, 32);
    const v = randArray(Float64Array, B * T * KVH * D, 33), w = randArray(Float64Array, q.length, 34);
    const out = new Float64Array(q.length), lse = new Float64Array(B * H * T);
    const loss = () => {
      native.attentionFlashForward(out, lse, q, k, v, B, T, H, KVH, D);
      return weightedSum(out, w);
    };
    loss();
    const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
    native.attentionFlashBackward(dq, dk, dv, w, q, k, v, out, lse, B, T, H, KVH, D);
    fdCheck([q, k, v], [dq, dk, dv], loss, { names: [`q (H=${H},KVH=${KVH})`, 'k', 'v'] });
  }
});

test('flash attention rejects heads that are not a multiple of kv heads', () => {
  const a = new Float32Array(64);
  assert.throws(() => native.attentionFlashForward(a, a, a, a, a, 1, 2, 3, 2, 2), /multiple of KVH/);
});
