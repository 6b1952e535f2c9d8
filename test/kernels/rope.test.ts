import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import { ropeApplyRef, ropeQkvSplitRef, ropeTableRef } from '../reference/ops.js';
import { fdCheck, forEachIsa, weightedSum } from './harness.js';

test('rope table and rotation match the reference on every ISA (f32 and f64)', () => {
  forEachIsa((isa) => {
    for (const [B, T, H, D, theta] of [[1, 1, 1, 2, 10000], [2, 13, 3, 6, 10000], [3, 37, 4, 64, 500000], [1, 5, 2, 128, 10000]] as const) {
      const cos = new Float64Array((T * D) / 2), sin = new Float64Array((T * D) / 2);
      ropeTableRef(cos, sin, T, D, theta);
      const x = randArray(Float64Array, B * T * H * D, 1);
      for (const inverse of [false, true]) {
        const ref = x.slice();
        ropeApplyRef(ref, cos, sin, B, T, H, D, inverse);
        for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
          const c = new ctor((T * D) / 2), s = new ctor((T * D) / 2);
          native.ropeTable(c, s, T, D, theta);
          assertClose(c, cos, tol(dt, T, 4), `${isa} ${dt} cos`);
          assertClose(s, sin, tol(dt, T, 4), `${isa} ${dt} sin`);
          const y = new ctor(x);
          native.ropeApply(y, c, s, B, T, H, D, inverse);
          assertClose(y, ref, tol(dt, T, 8), `${isa} ${dt} rope inverse=${inverse}`);
        }
      }
    }
  });
});

test('inverse rope undoes rope, and is its backward (finite differences, f64)', () => {
  const B = 2, T = 5, H = 3, D = 6;
  const cos = new Float64Array((T * D) / 2), sin = new Float64Array((T * D) / 2);
  native.ropeTable(cos, sin, T, D, 10000);
  const x = randArray(Float64Array, B * T * H * D, 9);
  const y = x.slice();
  native.ropeApply(y, cos, sin, B, T, H, D, false);
  native.ropeApply(y, cos, sin, B, T, H, D, true);
  assertClose(y, x, tol('f64', 4), 'rope then inverse');
  const w = randArray(Float64Array, x.length, 10);
  const loss = () => {
    const t = x.slice();
    native.ropeApply(t, cos, sin, B, T, H, D, false);
    return weightedSum(t, w);
  };
  const g = w.slice();
  native.ropeApply(g, cos, sin, B, T, H, D, true);
  fdCheck([x], [g], loss, { names: ['x'] });
});

test('rope rejects an odd head dimension', () => {
  assert.throws(() => native.ropeTable(new Float32Array(10), new Float32Array(10), 2, 5, 10000), /head dim must be even/);
});

test('rope QKV split/merge (fused path) equal slicing + rope, and merge is the backward of split', () => {
  forEachIsa((isa) => {
    for (const [B, T, H, KVH, D] of [[1, 1, 1, 1, 2], [2, 9, 4, 2, 6], [1, 17, 8, 2, 64]] as const) {
      const W = (H + 2 * KVH) * D, N = B * T;
      const cos = new Float64Array((T * D) / 2), sin = new Float64Array((T * D) / 2);
      ropeTableRef(cos, sin, T, D, 10000);
      const qkv = randArray(Float64Array, N * W, 41);
      const { q, k, v } = ropeQkvSplitRef(qkv, cos, sin, B, T, H, KVH, D);
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const gq = new ctor(q.length), gk = new ctor(k.length), gv = new ctor(v.length);
        native.ropeQkvSplit(gq, gk, gv, new ctor(qkv), new ctor(cos), new ctor(sin), B, T, H, KVH, D);
        assertClose(gq, q, tol(dt, 4), `${isa} ${dt} q`);
        assertClose(gk, k, tol(dt, 4), `${isa} ${dt} k`);
        assertClose(gv, v, tol(dt, 1), `${isa} ${dt} v`);
        const back = new ctor(N * W).fill(9);
        native.ropeQkvMerge(back, gq, gk, gv, new ctor(cos), new ctor(sin), B, T, H, KVH, D);
        assertClose(back, qkv, tol(dt, 8), `${isa} ${dt} merge(split(x)) = x`);
      }
    }
  });
  // merge is split's transpose: <split(x), w> = <x, merge(w)>
  const [B, T, H, KVH, D] = [2, 5, 4, 2, 4];
  const W = (H + 2 * KVH) * D, N = B * T;
  const cos = new Float64Array((T * D) / 2), sin = new Float64Array((T * D) / 2);
  native.ropeTable(cos, sin, T, D, 10000);
  const x = randArray(Float64Array, N * W, 51);
  const wq = randArray(Float64Array, N * H * D, 52), wk = randArray(Float64Array, N * KVH * D, 53), wv = randArray(Float64Array, N * KVH * D, 54);
  const q = new Float64Array(wq.length), k = new Float64Array(wk.length), v = new Float64Array(wv.length);
  const loss = () => (native.ropeQkvSplit(q, k, v, x, cos, sin, B, T, H, KVH, D), weightedSum(q, wq) + weightedSum(k, wk) + weightedSum(v, wv));
  const g = new Float64Array(N * W);
  native.ropeQkvMerge(g, wq, wk, wv, cos, sin, B, T, H, KVH, D);
  fdCheck([x], [g], loss, { names: ['qkv'] });
});
