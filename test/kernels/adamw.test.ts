import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import { adamwRef } from '../reference/ops.js';
import { forEachIsa } from './harness.js';

test('adamw matches a hand-computed first step', () => {
  // step 1, m = v = 0: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2 -> update = lr * g / (|g| + eps)
  const p = Float64Array.from([1, -2, 0.5]);
  const g = Float64Array.from([0.5, -0.25, 0]);
  const m = new Float64Array(3), v = new Float64Array(3);
  native.adamw(p, g, m, v, 3, 0.1, 0.9, 0.999, 1e-8, 0.01, 1, 1);
  const expect = [1 * (1 - 0.001) - 0.1 * (0.5 / (0.5 + 1e-8)), -2 * (1 - 0.001) + 0.1 * (0.25 / (0.25 + 1e-8)), 0.5 * (1 - 0.001)];
  assertClose(p, expect, tol('f64', 4), 'p');
  assertClose(m, [0.05, -0.025, 0], tol('f64', 4), 'm');
  assertClose(v, [0.001 * 0.25, 0.001 * 0.0625, 0], tol('f64', 4), 'v');
});

test('adamw matches torch semantics over several steps on every ISA, with gradient scaling', () => {
  forEachIsa((isa) => {
    for (const n of [1, 17, 100_001]) {
      const p = randArray(Float64Array, n, 1), m = new Float64Array(n), v = new Float64Array(n);
      const p32 = new Float32Array(p), m32 = new Float32Array(n), v32 = new Float32Array(n);
      const p64 = p.slice(), m64 = new Float64Array(n), v64 = new Float64Array(n);
      for (let step = 1; step <= 4; step++) {
        const g = randArray(Float64Array, n, 10 + step);
        adamwRef(p, g, m, v, n, 3e-3, 0.9, 0.95, 1e-8, 0.1, step, 0.5);
        native.adamw(p32, new Float32Array(g), m32, v32, n, 3e-3, 0.9, 0.95, 1e-8, 0.1, step, 0.5);
        native.adamw(p64, g, m64, v64, n, 3e-3, 0.9, 0.95, 1e-8, 0.1, step, 0.5);
      }
      assertClose(p32, p, tol('f32', 64), `${isa} f32 p n=${n}`);
      assertClose(p64, p, tol('f64', 64), `${isa} f64 p n=${n}`);
      assertClose(m64, m, tol('f64', 64), `${isa} f64 m`);
      assertClose(v64, v, tol('f64', 64), `${isa} f64 v`);
    }
  });
});

test('adamw rejects step 0 (bias correction would divide by zero)', () => {
  const a = new Float32Array(2);
  assert.throws(() => native.adamw(a, a, a, a, 2, 1e-3, 0.9, 0.95, 1e-8, 0, 0, 1), /step: must be >= 1/);
});
