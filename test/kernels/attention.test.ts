import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import { attentionBackwardRef, attentionForwardRef } from '../reference/ops.js';
import { fdCheck, forEachIsa, weightedSum, withThreads } from './harness.js';

// [B, T, H, KVH, D]: GQA ratios 1, 2, 4; sequence lengths that are no multiple of anything.
const SHAPES: Array<[number, number, number, number, number]> = [
  [1, 1, 1, 1, 2],
  [2, 7, 2, 2, 4],
  [1, 13, 4, 2, 8],
  [2, 33, 4, 1, 32],
  [1, 65, 8, 2, 64],
];

test('standard attention forward/backward match the reference on every ISA (f32 and f64)', () => {
  forEachIsa((isa) => {
    for (const [B, T, H, KVH, D] of SHAPES) {
      const nq = B * T * H * D, nkv = B * T * KVH * D;
      const q = randArray(Float64Array, nq, 1, 2), k = randArray(Float64Array, nkv, 2, 2), v = randArray(Float64Array, nkv, 3);
      const dout = randArray(Float64Array, nq, 4);
      const out = new Float64Array(nq), probs = new Float64Array(B * H * T * T);
      attentionForwardRef(out, probs, q, k, v, B, T, H, KVH, D);
      const dq = new Float64Array(nq), dk = new Float64Array(nkv), dv = new Float64Array(nkv);
      attentionBackwardRef(dq, dk, dv, dout, q, k, v, probs, B, T, H, KVH, D);
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const o = new ctor(nq), p = new ctor(B * H * T * T);
        native.attentionStandardForward(o, p, new ctor(q), new ctor(k), new ctor(v), B, T, H, KVH, D);
        const K = Math.max(T, D);
        assertClose(p, probs, tol(dt, K, 16), `${isa} ${dt} probs ${[B, T, H, KVH, D]}`);
        assertClose(o, out, tol(dt, K, 16), `${isa} ${dt} out ${[B, T, H, KVH, D]}`);
        // garbage in the outputs must not leak: backward overwrites dq, dk, dv
        const gq = new ctor(nq).fill(7), gk = new ctor(nkv).fill(7), gv = new ctor(nkv).fill(7);
        native.attentionStandardBackward(gq, gk, gv, new ctor(dout), new ctor(q), new ctor(k), new ctor(v), p, B, T, H, KVH, D);
        const Kb = T * (H / KVH) + D;
        assertClose(gq, dq, tol(dt, Kb, 16), `${isa} ${dt} dq ${[B, T, H, KVH, D]}`);
        assertClose(gk, dk, tol(dt, Kb, 16), `${isa} ${dt} dk ${[B, T, H, KVH, D]}`);
        assertClose(gv, dv, tol(dt, Kb, 16), `${isa} ${dt} dv ${[B, T, H, KVH, D]}`);
      }
    }
  });
});

test('standard attention gives identical results on 1 and 2 threads', () => {
  const [B, T, H, KVH, D] = [2, 33, 4, 2, 16];
  const q = randArray(Float32Array, B * T * H * D, 5), k = randArray(Float32Array, B * T * KVH * D, 6), v = randArray(Float32Array, B * T * KVH * D, 7);
  const run = () => {
    const o = new Float32Array(q.length), p = new Float32Array(B * H * T * T);
    native.attentionStandardForward(o, p, q, k, v, B, T, H, KVH, D);
    const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
    native.attentionStandardBackward(dq, dk, dv, o, q, k, v, p, B, T, H, KVH, D);
    return [o, dq, dk, dv];
  };
  let one: Float32Array[] = [];
  let two: Float32Array[] = [];
  withThreads(1, () => (one = run()));
  withThreads(2, () => (two = run()));
  one.forEach((a, i) => assert.deepEqual(a, two[i]));
});

test('standard attention backward equals finite differences of forward (native f64, GQA 1/2/4)', () => {
  for (const [H, KVH] of [[2, 2], [4, 2], [4, 1]]) {
    const B = 2, T = 4, D = 4;
    const q = randArray(Float64Array, B * T * H * D, 21), k = randArray(Float64Array, B * T * KVH * D, 22), v = randArray(Float64Array, B * T * KVH * D, 23);
    const w = randArray(Float64Array, q.length, 24);
    const out = new Float64Array(q.length), probs = new Float64Array(B * H * T * T);
    const loss = () => {
      native.attentionStandardForward(out, probs, q, k, v, B, T, H, KVH, D);
      return weightedSum(out, w);
    };
    loss();
    const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
    native.attentionStandardBackward(dq, dk, dv, w, q, k, v, probs, B, T, H, KVH, D);
    fdCheck([q, k, v], [dq, dk, dv], loss, { names: [`q (H=${H},KVH=${KVH})`, 'k', 'v'] });
  }
});

test('attention rejects heads that are not a multiple of kv heads', () => {
  const a = new Float32Array(64);
  assert.throws(() => native.attentionStandardForward(a, a, a, a, a, 1, 2, 3, 2, 2), /multiple of KVH/);
});
