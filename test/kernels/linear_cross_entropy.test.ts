// Fused output head + cross-entropy (native/src/kernels/linear_cross_entropy.cc) against the
// unfused composition: the float64 reference (logits = x W^T, cross-entropy forward/backward,
// dx = dlogits W, dW += dlogits^T x) and the native standard kernels (gemm + crossEntropy*).
// Shapes are not multiples of the kernel's 384-row chunk; some targets are -1.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native, type FloatArray } from '../../src/kernels/native.js';
import { assertClose, randArray, randInts, tol } from '../helpers.js';
import { crossEntropyBackwardRef, crossEntropyForwardRef, gemmRef } from '../reference/ops.js';
import { fdCheck, forEachIsa, withThreads } from './harness.js';

const DTYPES = [[Float32Array, 'f32'], [Float64Array, 'f64']] as const;
type Ctor = (typeof DTYPES)[number][0];

interface Case {
  N: number;
  C: number;
  V: number;
  x: Float64Array; // (N, C)
  W: Float64Array; // (V, C)
  targets: Int32Array; // (N), some -1
  dW0: Float64Array; // (V, C), the gradient dW accumulates into
}

const DLOSS = 0.75;

function makeCase(N: number, C: number, V: number, seed: number): Case {
  const targets = randInts(N, V, seed + 2);
  for (let n = 1; n < N; n += 5) targets[n] = -1;
  return {
    N, C, V, targets,
    x: randArray(Float64Array, N * C, seed, 1),
    W: randArray(Float64Array, V * C, seed + 1, 2 / Math.sqrt(C)),
    dW0: randArray(Float64Array, V * C, seed + 3, 0.5),
  };
}

interface Result {
  loss: number;
  lse: FloatArray;
  dx: FloatArray;
  dW: FloatArray;
}

/** The unfused composition in float64 (plain TypeScript references). */
function reference(c: Case): Result {
  const { N, C, V } = c;
  const logits = new Float64Array(N * V); // (N, V)
  gemmRef(false, true, N, V, C, 1, c.x, C, c.W, C, 0, logits, V);
  const lse = new Float64Array(N);
  const loss = crossEntropyForwardRef(lse, logits, c.targets, N, V);
  const dlogits = new Float64Array(N * V);
  crossEntropyBackwardRef(dlogits, logits, lse, c.targets, N, V, DLOSS);
  const dx = new Float64Array(N * C);
  gemmRef(false, false, N, C, V, 1, dlogits, V, c.W, C, 0, dx, C);
  const dW = Float64Array.from(c.dW0);
  gemmRef(true, false, V, C, N, 1, dlogits, V, c.x, C, 1, dW, C);
  return { loss, lse, dx, dW };
}

/** The unfused composition on the native standard kernels, in the dtype of `ctor`. */
function standard(c: Case, ctor: Ctor): Result {
  const { N, C, V } = c;
  const x = new ctor(c.x), W = new ctor(c.W);
  const logits = new ctor(N * V);
  native.gemm(false, true, N, V, C, 1, x, C, W, C, 0, logits, V);
  const lse = new ctor(N);
  const loss = native.crossEntropyForward(lse, logits, c.targets, N, V);
  native.crossEntropyBackward(logits, logits, lse, c.targets, N, V, DLOSS);
  const dx = new ctor(N * C);
  native.gemm(false, false, N, C, V, 1, logits, V, W, C, 0, dx, C);
  const dW = new ctor(c.dW0);
  native.gemm(true, false, V, C, N, 1, logits, V, x, C, 1, dW, C);
  return { loss, lse, dx, dW };
}

/** The fused kernel in training mode; dx pre-filled with NaN to prove it is overwritten. */
function fused(c: Case, ctor: Ctor): Result {
  const { N, C, V } = c;
  const x = new ctor(c.x), W = new ctor(c.W);
  const dx = new ctor(N * C).fill(NaN), dW = new ctor(c.dW0), lse = new ctor(N);
  const loss = native.linearCrossEntropy(dx, dW, lse, x, W, c.targets, N, C, V, DLOSS);
  assert.deepEqual(x, new ctor(c.x), 'x must not be written');
  assert.deepEqual(W, new ctor(c.W), 'W must not be written');
  return { loss, lse, dx, dW };
}

function compare(got: Result, want: Result, c: Case, dt: 'f32' | 'f64', what: string): void {
  const { N, C, V } = c;
  assertClose([got.loss], [want.loss], tol(dt, N * (V + C)), `${what} loss`);
  assertClose(got.lse, want.lse, tol(dt, V + C), `${what} lse`);
  assertClose(got.dx, want.dx, tol(dt, V + C), `${what} dx`);
  assertClose(got.dW, want.dW, tol(dt, N + C), `${what} dW`);
}

test('fused linear cross-entropy matches the float64 unfused reference on every ISA (f32, f64)', () => {
  // (N, C, V): N = 300 is one partial chunk, 1000 spans 3 chunks with a partial last one.
  const shapes = [[1, 1, 2], [7, 17, 11], [300, 64, 1000], [1000, 17, 11], [7, 512, 1000], [20, 64, 32000]] as const;
  const cases = shapes.map(([N, C, V], i) => makeCase(N, C, V, 10 * i + 1));
  const refs = cases.map(reference);
  forEachIsa((isa) => {
    cases.forEach((c, i) => {
      for (const [ctor, dt] of DTYPES) compare(fused(c, ctor), refs[i]!, c, dt, `${isa} ${dt} ${c.N}x${c.C}x${c.V}`);
    });
  });
});

test('fused linear cross-entropy matches the native standard path on every ISA (f32, f64)', () => {
  const cases = [makeCase(300, 16, 32000, 7), makeCase(1000, 512, 11, 8), makeCase(1000, 64, 1000, 9)];
  // A whole chunk (rows 0..383) ignored, and the rows after it not.
  const masked = makeCase(1000, 17, 1000, 5);
  masked.targets.fill(-1, 0, 400);
  cases.push(masked);
  forEachIsa((isa) => {
    for (const c of cases)
      for (const [ctor, dt] of DTYPES) compare(fused(c, ctor), standard(c, ctor), c, dt, `${isa} ${dt} ${c.N}x${c.C}x${c.V} vs standard`);
  });
});

test('evaluation mode (dx, dW null) returns the same loss and lse bitwise and writes nothing else', () => {
  const c = makeCase(300, 17, 1000, 21);
  forEachIsa((isa) => {
    for (const [ctor, dt] of DTYPES) {
      const train = fused(c, ctor);
      const x = new ctor(c.x), W = new ctor(c.W), lse = new ctor(c.N).fill(NaN);
      const loss = native.linearCrossEntropy(null, null, lse, x, W, c.targets, c.N, c.C, c.V, DLOSS);
      assert.equal(loss, train.loss, `${isa} ${dt} eval loss`);
      assert.deepEqual(lse, train.lse, `${isa} ${dt} eval lse`);
      assert.deepEqual(x, new ctor(c.x), 'x must not be written');
      assert.deepEqual(W, new ctor(c.W), 'W must not be written');
    }
  });
});

test('fused linear cross-entropy gradients equal finite differences of its loss (native f64)', () => {
  // One chunk, then two (the last partial) so dW accumulates across chunks.
  for (const [N, C, V, maxPerInput] of [[5, 6, 7, undefined], [600, 3, 5, 60]] as const) {
    const c = makeCase(N, C, V, 31);
    const x = Float64Array.from(c.x), W = Float64Array.from(c.W), lse = new Float64Array(N);
    const dx = new Float64Array(N * C), dW = new Float64Array(V * C);
    native.linearCrossEntropy(dx, dW, lse, x, W, c.targets, N, C, V, DLOSS);
    const loss = () => DLOSS * native.linearCrossEntropy(null, null, lse, x, W, c.targets, N, C, V, DLOSS);
    fdCheck([x, W], [dx, dW], loss, { names: ['x', 'W'], maxPerInput });
  }
});

test('fused linear cross-entropy is bitwise identical on 1 and 2 threads (loss, lse, dx, dW)', () => {
  // 1000 rows = 3 chunks; each is big enough for the threaded softmax and GEMMs.
  const c = makeCase(1000, 64, 1000, 41);
  forEachIsa((isa) => {
    for (const [ctor, dt] of DTYPES) {
      let one: Result | undefined, two: Result | undefined;
      withThreads(1, () => (one = fused(c, ctor)));
      withThreads(2, () => (two = fused(c, ctor)));
      assert.equal(two!.loss, one!.loss, `${isa} ${dt} loss`);
      assert.deepEqual(two!.lse, one!.lse, `${isa} ${dt} lse`);
      assert.deepEqual(two!.dx, one!.dx, `${isa} ${dt} dx`);
      assert.deepEqual(two!.dW, one!.dW, `${isa} ${dt} dW`);
    }
  });
});

test('fused linear cross-entropy holds one chunk of logits, not all N x V', () => {
  const N = 4096, C = 1, V = 4096;
  const c = makeCase(N, C, V, 51);
  const before = native.memoryStats().workspaceBytes;
  const r = fused(c, Float32Array);
  const grown = native.memoryStats().workspaceBytes - before;
  assert.ok(Number.isFinite(r.loss));
  assert.ok(grown < (4 * N * V) / 4, `workspace grew by ${grown} bytes; the (N, V) logits are ${4 * N * V}`);
});
