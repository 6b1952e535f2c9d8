// native.gemm against the float64 reference (test/reference/ops.ts) on every ISA path, 1, 2
// and 3 threads (3: an odd team on a 2-core machine), float32 and float64, all four
// transA/transB cases, shapes that are not multiples of the register tile (MR x NR = 12x32 /
// 6x16 / 6x8 for fp32 on avx512 / avx2 / scalar) or of the cache blocks (KC = 384, MC = 480,
// NC = 1024 fp32 / 512 fp64), leading dimensions wider than the rows, alpha and beta.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native, type FloatArray } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import { gemmRef } from '../reference/ops.js';
import { forEachIsa, withThreads } from './harness.js';

interface Case {
  M: number;
  N: number;
  K: number;
  pad?: number; // extra elements per row of A, B and C (submatrix views)
}

// Odd shapes around the tile edges; K across 2 and 3 KC blocks (600, 800); M across two MC
// blocks (500); N across NC blocks (1030, 3100); and shapes large enough (M*N*K >= 2^21) to
// take the multi-threaded path, split over rows (40x70x800) or over columns (7x1030x500).
const SHAPES: Case[] = [
  { M: 1, N: 1, K: 1 },
  { M: 1, N: 37, K: 1 },
  { M: 37, N: 1, K: 5 },
  { M: 17, N: 33, K: 65 },
  { M: 31, N: 47, K: 129, pad: 3 },
  { M: 100, N: 3, K: 250 },
  { M: 3, N: 100, K: 250, pad: 1 },
  { M: 12, N: 32, K: 384 },
  { M: 13, N: 3100, K: 7, pad: 5 },
  { M: 45, N: 70, K: 600, pad: 2 },
  { M: 40, N: 70, K: 800 },
  { M: 500, N: 37, K: 120 },
  { M: 7, N: 1030, K: 500, pad: 4 },
];

const ALPHA_BETA: [number, number][] = [[1, 0], [0.75, 1], [-1.5, 0.5]];

const TRANS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

const DTYPES = [[Float32Array, 'f32'], [Float64Array, 'f64']] as const;

interface Inputs {
  A: Float64Array;
  lda: number;
  B: Float64Array;
  ldb: number;
  C: Float64Array;
  ldc: number;
}

// Inputs scaled so entries of A*B are O(1) whatever K is: then the error bound of tol() (which
// is relative to |C|, plus an absolute floor) applies to sums that cancel as well.
function makeInputs(ta: boolean, tb: boolean, c: Case, seed: number): Inputs {
  const pad = c.pad ?? 0;
  const s = Math.sqrt(3 / Math.sqrt(Math.max(1, c.K)));
  const [ar, ac] = ta ? [c.K, c.M] : [c.M, c.K];
  const [br, bc] = tb ? [c.N, c.K] : [c.K, c.N];
  const lda = ac + pad, ldb = bc + pad, ldc = c.N + pad;
  return {
    A: randArray(Float64Array, Math.max(1, ar * lda), seed, s),
    lda,
    B: randArray(Float64Array, Math.max(1, br * ldb), seed + 1, s),
    ldb,
    C: randArray(Float64Array, Math.max(1, c.M * ldc), seed + 2),
    ldc,
  };
}

function expected(ta: boolean, tb: boolean, c: Case, x: Inputs, alpha: number, beta: number, dt: 'f32' | 'f64'): Float64Array {
  // The reference sees the inputs rounded to the dtype under test, so only the kernel's
  // arithmetic is compared.
  const round = (a: Float64Array) => (dt === 'f32' ? new Float64Array(new Float32Array(a)) : a);
  const C = new Float64Array(round(x.C));
  gemmRef(ta, tb, c.M, c.N, c.K, alpha, round(x.A), x.lda, round(x.B), x.ldb, beta, C, x.ldc);
  return C;
}

function runNative(ctor: typeof Float32Array | typeof Float64Array, ta: boolean, tb: boolean, c: Case, x: Inputs,
  alpha: number, beta: number, C0: Float64Array = x.C): FloatArray {
  const C = new ctor(C0);
  native.gemm(ta, tb, c.M, c.N, c.K, alpha, new ctor(x.A), x.lda, new ctor(x.B), x.ldb, beta, C, x.ldc);
  return C;
}

test('gemm matches the float64 reference: every ISA, 1-3 threads, f32/f64, all transposes', () => {
  let seed = 1;
  for (const c of SHAPES)
    for (const [ta, tb] of TRANS) {
      const x = makeInputs(ta, tb, c, (seed += 3));
      for (const [alpha, beta] of ALPHA_BETA)
        for (const [ctor, dt] of DTYPES) {
          const want = expected(ta, tb, c, x, alpha, beta, dt);
          forEachIsa((isa) => {
            for (const threads of [1, 2, 3])
              withThreads(threads, () => {
                const got = runNative(ctor, ta, tb, c, x, alpha, beta);
                const what = `${isa} ${threads}T ${dt} tA=${ta} tB=${tb} M=${c.M} N=${c.N} K=${c.K} pad=${c.pad ?? 0} alpha=${alpha} beta=${beta} C`;
                assertClose(got, want, tol(dt, c.K), what);
              });
          });
        }
    }
});

test('gemm with beta = 0 ignores NaN in C; K = 0 gives beta * C', () => {
  const c: Case = { M: 29, N: 35, K: 70, pad: 2 };
  forEachIsa((isa) => {
    for (const [ctor, dt] of DTYPES)
      for (const [ta, tb] of TRANS)
        for (const threads of [1, 2])
          withThreads(threads, () => {
            const x = makeInputs(ta, tb, c, 11);
            // NaN inside C's (M, N) view; the padding between rows (not C's to write) stays 7.
            const nan = new Float64Array(x.C.length).fill(7);
            for (let i = 0; i < c.M; i++) nan.fill(NaN, i * x.ldc, i * x.ldc + c.N);
            const got = runNative(ctor, ta, tb, c, x, 1.25, 0, nan);
            const want = expected(ta, tb, c, { ...x, C: nan }, 1.25, 0, dt);
            assertClose(got, want, tol(dt, c.K), `${isa} ${threads}T ${dt} tA=${ta} tB=${tb} beta=0 over NaN`);
            for (let i = 0; i < c.M; i++)
              for (let j = 0; j < c.N; j++)
                assert.ok(Number.isFinite(got[i * x.ldc + j]!), `${isa} ${dt} C[${i},${j}] is ${got[i * x.ldc + j]}`);

            for (const beta of [0, 1, -0.5]) {
              const k0: Case = { ...c, K: 0 };
              const got0 = runNative(ctor, ta, tb, k0, x, 2, beta, beta === 0 ? nan : x.C);
              const want0 = expected(ta, tb, k0, { ...x, C: beta === 0 ? nan : x.C }, 2, beta, dt);
              assertClose(got0, want0, tol(dt, 1), `${isa} ${threads}T ${dt} K=0 beta=${beta}`);
            }
          });
  });
});

test('gemm with M or N = 0 leaves C untouched', () => {
  for (const [M, N] of [[0, 5], [5, 0]] as const) {
    const C = new Float32Array([1, 2, 3]);
    native.gemm(false, false, M, N, 4, 1, new Float32Array(20), 4, new Float32Array(20), 5, 0, C, 5);
    assert.deepEqual([...C], [1, 2, 3]);
  }
});

test('gemm accepts subarray views (non-zero byte offsets)', () => {
  const M = 19, N = 41, K = 23;
  const x = makeInputs(false, true, { M, N, K }, 99);
  const want = expected(false, true, { M, N, K }, x, 1, 1, 'f32');
  const off = 5;
  const A = new Float32Array(x.A.length + off), B = new Float32Array(x.B.length + off), C = new Float32Array(x.C.length + off);
  A.set(x.A, off);
  B.set(x.B, off);
  C.set(x.C, off);
  native.gemm(false, true, M, N, K, 1, A.subarray(off), x.lda, B.subarray(off), x.ldb, 1, C.subarray(off), x.ldc);
  assertClose(C.subarray(off), want, tol('f32', K), 'C view');
});

test('gemm rejects mixed dtypes and buffers that are too short, naming the argument', () => {
  const f32 = (n: number) => new Float32Array(n), f64 = (n: number) => new Float64Array(n);
  assert.throws(() => native.gemm(false, false, 2, 2, 2, 1, f32(4), 2, f64(4), 2, 0, f32(4), 2), /\bB\b.*Float32Array/);
  assert.throws(() => native.gemm(false, false, 2, 2, 2, 1, f64(4), 2, f64(4), 2, 0, f32(4), 2), /\bC\b.*Float64Array/);
  // C is (3, 4) with ldc 5: needs 2*5 + 4 = 14 elements.
  assert.throws(() => native.gemm(false, false, 3, 4, 2, 1, f32(6), 2, f32(8), 4, 0, f32(13), 5), /\bC\b.*13.*14/);
  // transA: A is (K, M) = (2, 3) with lda 3: needs 6.
  assert.throws(() => native.gemm(true, false, 3, 4, 2, 1, f32(5), 3, f32(8), 4, 0, f32(12), 4), /\bA\b.*5.*6/);
  // transB: B is (N, K) = (4, 2): needs 8.
  assert.throws(() => native.gemm(false, true, 3, 4, 2, 1, f32(6), 2, f32(7), 2, 0, f32(12), 4), /\bB\b.*7.*8/);
  assert.throws(() => native.gemm(false, false, 3, 4, 2, 1, f32(6), 1, f32(8), 4, 0, f32(12), 4), /lda|\bA\b.*leading/);
});
