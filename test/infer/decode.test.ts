// The decode kernels (native/src/kernels/decode.cc) against plain references on every ISA, f32
// and f64: attention_decode over cached keys of awkward lengths (around the 64-key blocks and
// the 256-key chunks) with GQA 1/2/4 and head dims no multiple of the vector width; gemv with
// rows and widths off the 4-row / vector steps; rope_qkv_decode against the training split.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import { gemmRef, ropeTableRef } from '../reference/ops.js';
import { forEachIsa, withThreads } from '../kernels/harness.js';

function onThreads<R>(n: number, fn: () => R): R {
  let r: R | undefined;
  withThreads(n, () => {
    r = fn();
  });
  return r!;
}

/** out (H, D): one query position over Tk cached rows of k, v (Tmax, KVH, D), from the definition. */
function attentionDecodeRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, Tk: number, H: number, KVH: number, D: number): Float64Array {
  const out = new Float64Array(H * D);
  const G = H / KVH;
  for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / G);
    const s = new Float64Array(Tk);
    for (let j = 0; j < Tk; j++) {
      let d = 0;
      for (let e = 0; e < D; e++) d += q[h * D + e]! * k[(j * KVH + kvh) * D + e]!;
      s[j] = d / Math.sqrt(D);
    }
    const mx = Math.max(...s);
    let sum = 0;
    for (let j = 0; j < Tk; j++) sum += s[j] = Math.exp(s[j]! - mx);
    for (let j = 0; j < Tk; j++)
      for (let e = 0; e < D; e++) out[h * D + e] += (s[j]! / sum) * v[(j * KVH + kvh) * D + e]!;
  }
  return out;
}

type Shape = [number, number, number, number]; // [Tk, H, KVH, D]
const SHAPES: Shape[] = [
  [1, 1, 1, 2],
  [7, 4, 4, 10],
  [63, 4, 2, 32],
  [64, 8, 2, 64],
  [65, 4, 1, 64],
  [200, 6, 3, 18],
  [256, 4, 2, 32],
  [257, 8, 4, 16],
  [600, 4, 1, 64],
];

test('attention_decode matches the reference on every ISA (f32, f64; GQA 1/2/4; rows past Tk ignored)', () => {
  forEachIsa((isa) => {
    SHAPES.forEach(([Tk, H, KVH, D], n) => {
      const Tmax = Tk + 5;
      const q64 = randArray(Float64Array, H * D, 10 + n, 2), k64 = randArray(Float64Array, Tmax * KVH * D, 20 + n, 2);
      const v64 = randArray(Float64Array, Tmax * KVH * D, 30 + n);
      k64.fill(NaN, Tk * KVH * D); // rows past Tk are not attended
      v64.fill(NaN, Tk * KVH * D);
      const ref = attentionDecodeRef(q64, k64, v64, Tk, H, KVH, D);
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const out = new ctor(H * D).fill(7);
        native.attentionDecode(out, new ctor(q64), new ctor(k64), new ctor(v64), Tk, H, KVH, D);
        assertClose(out, ref, tol(dt, Math.max(Tk, D), 16), `${isa} ${dt} [Tk ${Tk}, H ${H}, KVH ${KVH}, D ${D}] out`);
      }
    });
  });
});

test('attention_decode gives the flash forward of the last position, and the same bits on 1 and 2 threads', () => {
  const [T, H, KVH, D] = [300, 8, 2, 64];
  const q = randArray(Float32Array, T * H * D, 1, 2), k = randArray(Float32Array, T * KVH * D, 2, 2);
  const v = randArray(Float32Array, T * KVH * D, 3);
  const full = new Float32Array(T * H * D), lse = new Float32Array(H * T);
  native.attentionFlashForward(full, lse, q, k, v, 1, T, H, KVH, D);
  const runs = [1, 2].map((threads) =>
    onThreads(threads, () => {
      const out = new Float32Array(H * D);
      native.attentionDecode(out, q.subarray((T - 1) * H * D), k, v, T, H, KVH, D);
      return out;
    }),
  );
  assertClose(runs[0]!, full.subarray((T - 1) * H * D), tol('f32', T, 16), 'last position');
  assert.deepEqual(runs[1], runs[0]);
});

test('gemv matches the reference on every ISA (f32, f64; beta 0 ignores NaN in y, beta 1 accumulates)', () => {
  forEachIsa((isa) => {
    for (const [N, K] of [[1, 1], [3, 5], [7, 33], [64, 192], [129, 70], [1000, 513]] as const) {
      const W64 = randArray(Float64Array, N * K, N + K), x64 = randArray(Float64Array, K, 7 + K), y0 = randArray(Float64Array, N, 9);
      for (const beta of [0, 1]) {
        const ref = Float64Array.from(y0);
        gemmRef(false, true, 1, N, K, 1, x64, K, W64, K, beta, ref, N);
        for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
          const y = beta === 0 ? new ctor(N).fill(NaN) : new ctor(y0);
          native.gemv(y, new ctor(W64), new ctor(x64), N, K, beta);
          assertClose(y, ref, tol(dt, K), `${isa} ${dt} gemv N ${N} K ${K} beta ${beta}`);
        }
      }
    }
  });
});

test('gemv: the same bits on 1 and 2 threads', () => {
  const N = 3000, K = 512;
  const W = randArray(Float32Array, N * K, 1), x = randArray(Float32Array, K, 2);
  const [a, b] = [1, 2].map((n) => onThreads(n, () => {
    const y = new Float32Array(N);
    native.gemv(y, W, x, N, K, 0);
    return y;
  }));
  assert.deepEqual(a, b);
});

test('rope_qkv_decode writes what rope_qkv_split makes of that position: q, and cache row pos of k and v', () => {
  const [T, H, KVH, D] = [9, 6, 2, 16];
  const Wd = (H + 2 * KVH) * D;
  const cos = new Float32Array(T * D / 2), sin = new Float32Array(T * D / 2);
  ropeTableRef(cos, sin, T, D, 10000);
  const qkv = randArray(Float32Array, T * Wd, 4);
  const q = new Float32Array(T * H * D), k = new Float32Array(T * KVH * D), v = new Float32Array(T * KVH * D);
  native.ropeQkvSplit(q, k, v, qkv, cos, sin, 1, T, H, KVH, D);
  const kc = new Float32Array(T * KVH * D).fill(NaN), vc = new Float32Array(T * KVH * D).fill(NaN);
  for (let pos = 0; pos < T; pos++) {
    const qd = new Float32Array(H * D);
    native.ropeQkvDecode(qd, kc, vc, qkv.subarray(pos * Wd, (pos + 1) * Wd), cos, sin, pos, H, KVH, D);
    assert.deepEqual(qd, q.subarray(pos * H * D, (pos + 1) * H * D), `q at ${pos}`);
  }
  assert.deepEqual(kc, k);
  assert.deepEqual(vc, v);
  assert.throws(() => native.ropeQkvDecode(new Float32Array(H * D), kc, vc, qkv, cos, sin, T, H, KVH, D), /has \d+ elements, needs/);
});
