import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, randInts, tol } from '../helpers.js';
import { embeddingBackwardRef, embeddingForwardRef } from '../reference/ops.js';
import { forEachIsa, withThreads } from './harness.js';

test('embedding forward/backward match the reference on every ISA, repeated ids accumulate', () => {
  forEachIsa((isa) => {
    for (const [N, C, V] of [[1, 1, 1], [9, 7, 3], [300, 130, 50], [2048, 256, 512]] as const) {
      const table = randArray(Float64Array, V * C, 1);
      const ids = randInts(N, V, 2);
      const dout = randArray(Float64Array, N * C, 3);
      const out = new Float64Array(N * C);
      embeddingForwardRef(out, ids, table, N, C);
      const dt0 = randArray(Float64Array, V * C, 4);
      const dtab = dt0.slice();
      embeddingBackwardRef(dtab, dout, ids, N, C);
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const o = new ctor(N * C);
        native.embeddingForward(o, ids, new ctor(table), N, C, V);
        assertClose(o, new ctor(out), { atol: 0, rtol: 0 }, `${isa} ${dt} out`);
        const g = new ctor(dt0);
        native.embeddingBackward(g, new ctor(dout), ids, N, C, V);
        assertClose(g, dtab, tol(dt, N), `${isa} ${dt} dtable`);
      }
    }
  });
});

test('embedding backward is bit-identical on 1 and 2 threads', () => {
  const N = 4096, C = 96, V = 100;
  const ids = randInts(N, V, 5);
  const dout = randArray(Float32Array, N * C, 6);
  const a = new Float32Array(V * C), b = new Float32Array(V * C);
  withThreads(1, () => native.embeddingBackward(a, dout, ids, N, C, V));
  withThreads(2, () => native.embeddingBackward(b, dout, ids, N, C, V));
  assert.deepEqual(a, b);
});

test('embedding rejects an id outside the table', () => {
  assert.throws(() => native.embeddingForward(new Float32Array(4), Int32Array.from([0, 3]), new Float32Array(6), 2, 2, 3), /ids\[1\] = 3 is outside \[0, 3\)/);
});
