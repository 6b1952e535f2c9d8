import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, randInts, tol } from '../helpers.js';
import { crossEntropyBackwardRef, crossEntropyForwardRef } from '../reference/ops.js';
import { fdCheck, forEachIsa } from './harness.js';

test('cross-entropy forward/backward match the reference on every ISA (f32 and f64), ignoring target -1', () => {
  forEachIsa((isa) => {
    for (const [N, V] of [[1, 2], [7, 11], [33, 1000], [5, 32000]] as const) {
      const logits = randArray(Float64Array, N * V, 1, 8);
      const targets = randInts(N, V, 2);
      if (N > 2) targets[1] = -1;
      const lse = new Float64Array(N);
      const loss = crossEntropyForwardRef(lse, logits, targets, N, V);
      const dl = new Float64Array(N * V);
      crossEntropyBackwardRef(dl, logits, lse, targets, N, V, 0.25);
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const l = new ctor(N), x = new ctor(logits);
        const got = native.crossEntropyForward(l, x, targets, N, V);
        assertClose([got], [loss], tol(dt, N * V), `${isa} ${dt} loss ${N}x${V}`);
        assertClose(l, lse, tol(dt, V), `${isa} ${dt} lse`);
        native.crossEntropyBackward(x, x, l, targets, N, V, 0.25); // in place, as the model uses it
        assertClose(x, dl, tol(dt, V), `${isa} ${dt} dlogits`);
      }
    }
  });
});

test('cross-entropy backward equals finite differences of forward (native f64)', () => {
  const N = 4, V = 9;
  const logits = randArray(Float64Array, N * V, 3, 3);
  const targets = Int32Array.from([2, -1, 8, 0]);
  const lse = new Float64Array(N);
  const loss = () => native.crossEntropyForward(lse, logits, targets, N, V);
  loss();
  const d = new Float64Array(N * V);
  native.crossEntropyBackward(d, logits, lse, targets, N, V, 1);
  fdCheck([logits], [d], loss, { names: ['logits'] });
});

test('cross-entropy rejects a target outside the vocabulary, naming it', () => {
  assert.throws(
    () => native.crossEntropyForward(new Float32Array(2), new Float32Array(8), Int32Array.from([1, 4]), 2, 4),
    /targets\[1\] = 4 is outside \[-1, 4\)/,
  );
});
