import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import { forEachIsa, withThreads } from './harness.js';

test('sumSquares, addInplace, scaleInplace, fill match plain loops on every ISA', () => {
  forEachIsa((isa) => {
    for (const n of [0, 1, 15, 65_537, 300_001]) {
      const x = randArray(Float64Array, n, 1), y = randArray(Float64Array, n, 2);
      let ss = 0;
      for (let i = 0; i < n; i++) ss += x[i]! * x[i]!;
      for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
        const xs = new ctor(x);
        const ssRef = Array.from(xs).reduce((a, b) => a + b * b, 0);
        assertClose([native.sumSquares(xs, n)], [ssRef], tol('f64', n), `${isa} ${dt} sumSquares n=${n}`);
        const a = new ctor(y);
        native.addInplace(a, xs, n);
        assertClose(a, Array.from(y, (v, i) => new ctor([v])[0]! + xs[i]!), tol(dt, 1), `${isa} ${dt} add`);
        native.scaleInplace(a, 0.5, n);
        native.fill(xs, 3.25, n);
        assert.ok(xs.every((v) => v === 3.25), `${isa} ${dt} fill`);
      }
      assertClose([native.sumSquares(x, n)], [ss], tol('f64', n), `${isa} sumSquares f64`);
    }
  });
});

test('fill past 32 MiB (streaming stores): every element, unaligned starts, odd tails, both dtypes, every ISA', () => {
  forEachIsa((isa) => {
    for (const [ctor, bytes] of [[Float32Array, 4], [Float64Array, 8]] as const) {
      const n = (32 << 20) / bytes + 7;
      const buf = new ctor(n + 3);
      for (const off of [0, 1, 3]) {
        buf.fill(-1);
        const view = buf.subarray(off, off + n - off); // starts off elements in: 4 or 8 bytes off a 16-byte boundary
        native.fill(view, 0.75, view.length);
        const bad = view.findIndex((v) => v !== 0.75);
        assert.equal(bad, -1, `${isa} ${ctor.name} offset ${off}: element ${bad}`);
        for (let i = 0; i < off; i++) assert.equal(buf[i], -1, `${isa} ${ctor.name} offset ${off}: wrote before the view`);
        for (let i = off + view.length; i < buf.length; i++) assert.equal(buf[i], -1, `${isa} ${ctor.name} offset ${off}: wrote past the view`);
      }
    }
  });
});

test('sumSquares and randn do not depend on the thread count', () => {
  const x = randArray(Float32Array, 1_000_003, 3);
  let a = 0, b = 0;
  const r1 = new Float32Array(100_001), r2 = new Float32Array(100_001);
  withThreads(1, () => {
    a = native.sumSquares(x, x.length);
    native.randn(r1, r1.length, 42, 0, 1);
  });
  withThreads(2, () => {
    b = native.sumSquares(x, x.length);
    native.randn(r2, r2.length, 42, 0, 1);
  });
  assert.equal(a, b);
  assert.deepEqual(r1, r2);
});

test('randn draws N(mean, std^2): moments within sampling error, seeds differ', () => {
  const n = 200_000;
  const y = new Float64Array(n);
  native.randn(y, n, 7, 0.5, 2);
  let s = 0, s2 = 0;
  for (const v of y) (s += v), (s2 += v * v);
  const mean = s / n, variance = s2 / n - mean * mean;
  // standard errors: mean 2/sqrt(n) = 0.0045, variance ~ 4*sqrt(2/n) = 0.0126; allow 5 sigma
  assert.ok(Math.abs(mean - 0.5) < 0.023, `mean ${mean}`);
  assert.ok(Math.abs(variance - 4) < 0.064, `variance ${variance}`);
  const z = new Float64Array(n);
  native.randn(z, n, 8, 0.5, 2);
  assert.notDeepEqual(Array.from(y.subarray(0, 10)), Array.from(z.subarray(0, 10)));
});
