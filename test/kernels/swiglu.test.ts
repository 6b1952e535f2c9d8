import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import { swigluBackwardRef, swigluForwardRef } from '../reference/ops.js';
import { fdCheck, forEachIsa, weightedSum } from './harness.js';

test('swiglu forward/backward match the reference on every ISA (f32 and f64)', () => {
  forEachIsa((isa) => {
    for (const n of [1, 7, 33, 4097, 100_003]) {
      const g = randArray(Float64Array, n, 1, 6), u = randArray(Float64Array, n, 2, 2), d = randArray(Float64Array, n, 3);
      const out = new Float64Array(n), dg = new Float64Array(n), du = new Float64Array(n);
      swigluForwardRef(out, g, u, n);
      swigluBackwardRef(dg, du, d, g, u, n);
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const o = new ctor(n), a = new ctor(n), b = new ctor(n);
        native.swigluForward(o, new ctor(g), new ctor(u), n);
        native.swigluBackward(a, b, new ctor(d), new ctor(g), new ctor(u), n);
        assertClose(o, out, tol(dt, 4), `${isa} ${dt} out n=${n}`);
        assertClose(a, dg, tol(dt, 4), `${isa} ${dt} dgate n=${n}`);
        assertClose(b, du, tol(dt, 4), `${isa} ${dt} dup n=${n}`);
      }
    }
  });
});

test('swiglu backward equals finite differences of forward (native f64)', () => {
  const n = 13;
  const g = randArray(Float64Array, n, 5, 4), u = randArray(Float64Array, n, 6), d = randArray(Float64Array, n, 7);
  const out = new Float64Array(n);
  const loss = () => {
    native.swigluForward(out, g, u, n);
    return weightedSum(out, d);
  };
  const dg = new Float64Array(n), du = new Float64Array(n);
  native.swigluBackward(dg, du, d, g, u, n);
  fdCheck([g, u], [dg, du], loss, { names: ['gate', 'up'] });
});
