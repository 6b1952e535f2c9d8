import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import { rmsnormBackwardRef, rmsnormForwardRef } from '../reference/ops.js';
import { fdCheck, forEachIsa, weightedSum, withThreads } from './harness.js';

// N = 70: dw's fixed 32-row blocks, the last one partial
const SHAPES: Array<[number, number]> = [[1, 1], [3, 7], [17, 33], [64, 512], [5, 1000], [70, 130]];

test('rmsnorm forward/backward match the reference on every ISA (f32 and f64)', () => {
  forEachIsa((isa) => {
    for (const [N, C] of SHAPES) {
      const x = randArray(Float64Array, N * C, 1, 2);
      const w = randArray(Float64Array, C, 2, 1.5);
      const dout = randArray(Float64Array, N * C, 3);
      const out = new Float64Array(N * C), rstd = new Float64Array(N);
      rmsnormForwardRef(out, rstd, x, w, N, C, 1e-5);
      const dx = randArray(Float64Array, N * C, 4), dw = randArray(Float64Array, C, 5);
      const dx0 = dx.slice(), dw0 = dw.slice();
      rmsnormBackwardRef(dx, dw, dout, x, w, rstd, N, C);
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const o = new ctor(N * C), r = new ctor(N);
        native.rmsnormForward(o, r, new ctor(x), new ctor(w), N, C, 1e-5);
        assertClose(o, out, tol(dt, C), `${isa} ${dt} out (${N}x${C})`);
        assertClose(r, rstd, tol(dt, C), `${isa} ${dt} rstd`);
        const gx = new ctor(dx0), gw = new ctor(dw0);
        native.rmsnormBackward(gx, gw, new ctor(dout), new ctor(x), new ctor(w), new ctor(rstd), N, C);
        assertClose(gx, dx, tol(dt, C, 16), `${isa} ${dt} dx (accumulated)`);
        assertClose(gw, dw, tol(dt, N * C, 16), `${isa} ${dt} dw (accumulated)`);
      }
    }
  });
});

test('rmsnorm backward gives the same bits on 1, 2 and 3 threads (dw from fixed row blocks), with and without the bf16 copy', () => {
  const [N, C] = [397, 130]; // N C past the kernels' threading threshold (2^15), the last 32-row block partial
  const x = randArray(Float32Array, N * C, 21, 2), w = randArray(Float32Array, C, 22), dout = randArray(Float32Array, N * C, 23);
  const rstd = new Float32Array(N), out = new Float32Array(N * C);
  native.rmsnormForward(out, rstd, x, w, N, C, 1e-5);
  const run = (threads: number, bf16: boolean) => {
    const dx = randArray(Float32Array, N * C, 24), dw = randArray(Float32Array, C, 25), dx16 = new Uint16Array(N * C);
    withThreads(threads, () => {
      if (bf16) native.rmsnormBackward(dx, dw, dout, x, w, rstd, N, C, dx16);
      else native.rmsnormBackward(dx, dw, dout, x, w, rstd, N, C);
    });
    return [dx, dw, dx16] as const;
  };
  for (const bf16 of [false, true]) {
    const one = run(1, bf16);
    for (const t of [2, 3]) {
      const got = run(t, bf16);
      for (let i = 0; i < 3; i++) assert.deepEqual(got[i], one[i], `${t} threads${bf16 ? ' (bf16 copy)' : ''}: ${['dx', 'dw', 'dx16'][i]}`);
    }
  }
});

test('rmsnorm backward equals finite differences of forward (native f64)', () => {
  const N = 3, C = 7;
  const x = randArray(Float64Array, N * C, 11), w = randArray(Float64Array, C, 12), dout = randArray(Float64Array, N * C, 13);
  const out = new Float64Array(N * C), rstd = new Float64Array(N);
  const loss = () => {
    native.rmsnormForward(out, rstd, x, w, N, C, 1e-5);
    return weightedSum(out, dout);
  };
  loss();
  const dx = new Float64Array(N * C), dw = new Float64Array(C);
  native.rmsnormBackward(dx, dw, dout, x, w, rstd, N, C);
  fdCheck([x, w], [dx, dw], loss, { names: ['x', 'w'] });
});

test('add+rmsnorm (fused path) equals an add followed by rmsnorm, also in place, on every ISA', () => {
  forEachIsa((isa) => {
    for (const [N, C] of [[1, 1], [5, 33], [64, 512]] as const) {
      const x = randArray(Float64Array, N * C, 21), y = randArray(Float64Array, N * C, 22), w = randArray(Float64Array, C, 23);
      const sum = x.map((v, i) => v + y[i]!);
      const out = new Float64Array(N * C), rstd = new Float64Array(N);
      rmsnormForwardRef(out, rstd, sum, w, N, C, 1e-6);
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const r = new ctor(N * C), o = new ctor(N * C), rs = new ctor(N);
        native.addRmsnormForward(r, o, rs, new ctor(x), new ctor(y), new ctor(w), N, C, 1e-6);
        assertClose(r, sum, tol(dt, 2), `${isa} ${dt} resid`);
        assertClose(o, out, tol(dt, C), `${isa} ${dt} out`);
        assertClose(rs, rstd, tol(dt, C), `${isa} ${dt} rstd`);
        const inPlace = new ctor(x);
        native.addRmsnormForward(inPlace, o, rs, inPlace, new ctor(y), new ctor(w), N, C, 1e-6);
        assertClose(inPlace, sum, tol(dt, 2), `${isa} ${dt} resid aliasing x`);
      }
    }
  });
});
