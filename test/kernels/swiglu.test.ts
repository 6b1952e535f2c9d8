import assert from 'node:assert/strict';
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

test('packed swiglu (gate and up in one (N, 2F) matrix) equals the separate kernel, backward in place, on every ISA', () => {
  forEachIsa((isa) => {
    for (const [N, F] of [[1, 1], [7, 13], [33, 1536]] as const) {
      const gu = randArray(Float64Array, N * 2 * F, 31, 5), d = randArray(Float64Array, N * F, 32);
      const gate = new Float64Array(N * F), up = new Float64Array(N * F);
      for (let n = 0; n < N; n++) {
        gate.set(gu.subarray(n * 2 * F, n * 2 * F + F), n * F);
        up.set(gu.subarray(n * 2 * F + F, (n + 1) * 2 * F), n * F);
      }
      const out = new Float64Array(N * F), dg = new Float64Array(N * F), du = new Float64Array(N * F);
      swigluForwardRef(out, gate, up, N * F);
      swigluBackwardRef(dg, du, d, gate, up, N * F);
      const dgu = new Float64Array(N * 2 * F);
      for (let n = 0; n < N; n++) {
        dgu.set(dg.subarray(n * F, (n + 1) * F), n * 2 * F);
        dgu.set(du.subarray(n * F, (n + 1) * F), n * 2 * F + F);
      }
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const o = new ctor(N * F);
        native.swigluPackedForward(o, new ctor(gu), N, F);
        assertClose(o, out, tol(dt, 4), `${isa} ${dt} out ${N}x${F}`);
        const g = new ctor(gu), act = new ctor(N * F).fill(Number.NaN);
        native.swigluPackedBackward(g, act, new ctor(d), g, N, F);
        assertClose(g, dgu, tol(dt, 4), `${isa} ${dt} dgu in place ${N}x${F}`);
        assert.deepEqual(act, o, `${isa} ${dt}: the backward's activation is not the forward's bits ${N}x${F}`);
        const apart = new ctor(N * 2 * F);
        native.swigluPackedBackward(apart, null, new ctor(d), new ctor(gu), N, F);
        assert.deepEqual(apart, g, `${isa} ${dt}: a separate dgu (no act) differs from the in-place one ${N}x${F}`);
      }
    }
  });
});
