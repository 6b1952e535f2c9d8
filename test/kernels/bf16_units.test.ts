// The bf16 matrix units' own kernels (native/src/bf16): the general GEMM (fp32 or bf16 A, B and
// C, B packed whole beforehand or per call), the gate/up GEMM with SwiGLU in its epilogue, and
// the head + cross-entropy with bf16 logits; each on every matrix unit this CPU has (AMX,
// AVX-512 BF16), against float64 references on bf16-rounded operands (test/reference/ops.ts).
// Machines without a matrix unit skip these (the 'fp32' unit runs the fp32 kernels, tested in
// gemm.test.ts and bf16.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { randArray, randInts } from '../helpers.js';
import { gemmRef, roundBf16Ref, swigluBackwardRef, swigluForwardRef } from '../reference/ops.js';
import { MATRIX_UNITS as UNITS, withUnit } from './harness.js';

const U = 2 ** -24; // fp32 unit roundoff

const toBits = (x: Float32Array) => {
  const u = new Uint16Array(x.length);
  native.castToBf16(u, x, x.length);
  return u;
};
const rounded = (x: Float32Array) => Float64Array.from(x, roundBf16Ref);
const bitsValue = (u: Uint16Array) => {
  const f = new Float32Array(u.length);
  native.castFromBf16(f, u, u.length);
  return f;
};

/**
 * C = alpha op(A) op(B) + beta C in float64 on the bf16-rounded operands, and per element the
 * fp32 accumulation bound K u sum_k |a_ik b_kj| |alpha| (the deterministic worst case of any
 * summation order), which a truncating rounding or a lost element exceeds by orders of magnitude.
 */
function reference(ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number, A: Float64Array, lda: number,
  B: Float64Array, ldb: number, beta: number, C: Float64Array, ldc: number): { want: Float64Array; bound: Float64Array } {
  const want = new Float64Array(C);
  gemmRef(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, want, ldc);
  const bound = new Float64Array(C.length);
  gemmRef(ta, tb, M, N, K, Math.abs(alpha) * Math.max(1, K) * U, A.map(Math.abs), lda, B.map(Math.abs), ldb, 0, bound, ldc);
  return { want, bound };
}

interface Shape { M: number; N: number; K: number }
// Tile edges (16, 32), K across 512-blocks (1100), N across 1024-column blocks (1030), M across
// 128-row blocks (300), and 1 x 1 x 1. VDPBF16PS reads a bf16 A in place where a block needs no
// padding (k a multiple of 32: 576, 96 and the first of 1100's two blocks; whole 32-row panels:
// 160 = 128 + 32, not the last 72 rows of 200) and packs the rest; lda = K + 1 is odd.
const SHAPES: Shape[] = [
  { M: 1, N: 1, K: 1 }, { M: 17, N: 33, K: 31 }, { M: 33, N: 47, K: 65 }, { M: 300, N: 40, K: 100 },
  { M: 40, N: 1030, K: 70 }, { M: 64, N: 64, K: 1100 }, { M: 160, N: 17, K: 576 }, { M: 200, N: 40, K: 96 },
];

test('bf16GemmEx: fp32 / bf16 A, B and C, B packed whole or per call, all transposes, every matrix unit', { skip: UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  let seed = 100;
  for (const unit of UNITS)
    for (const { M, N, K } of SHAPES)
      for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const)
        for (const aBf16 of [false, true])
          for (const bBf16 of [false, true])
            for (const cBf16 of [false, true]) {
              const prepack = (seed & 1) === 0; // alternate: every other combination packs B first
              const lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
              const A32 = randArray(Float32Array, (ta ? K : M) * lda, seed++), B32 = randArray(Float32Array, (tb ? N : K) * ldb, seed++);
              const C0 = randArray(Float32Array, M * ldc, seed++);
              const [alpha, beta] = cBf16 ? [0.75, 0] : [0.75, -0.5];
              const A = aBf16 ? toBits(A32) : A32, B = bBf16 ? toBits(B32) : B32;
              const C = cBf16 ? new Uint16Array(M * ldc).fill(0x7fc0) : Float32Array.from(C0);
              native.bf16GemmEx(unit, ta, tb, M, N, K, alpha, A, lda, B, ldb, prepack, beta, C, ldc);
              const { want, bound } = reference(ta, tb, M, N, K, alpha, rounded(A32), lda, rounded(B32), ldb, beta, Float64Array.from(C0), ldc);
              const got = cBf16 ? bitsValue(C as Uint16Array) : (C as Float32Array);
              const what = `${unit} tA=${ta} tB=${tb} ${M}x${N}x${K} A ${aBf16 ? 'bf16' : 'fp32'} B ${bBf16 ? 'bf16' : 'fp32'} C ${cBf16 ? 'bf16' : 'fp32'}${prepack ? ' prepacked' : ''}`;
              for (let i = 0; i < M; i++)
                for (let j = 0; j < N; j++) {
                  const k = i * ldc + j;
                  // + the fp32 roundings of alpha * sum and of the beta * C term; a bf16 C is the fp32
                  // result rounded once: half a bf16 ulp (2^-9 relative) more
                  const tolerance = bound[k]! * 1.01 + 4 * U * (Math.abs(want[k]!) + Math.abs(beta * C0[k]!)) +
                    (cBf16 ? 2 ** -8 * Math.abs(want[k]!) : 0) + 1e-30;
                  if (!(Math.abs(got[k]! - want[k]!) <= tolerance))
                    assert.fail(`${what}: C[${i},${j}] = ${got[k]}, expected ${want[k]} +- ${tolerance}`);
                }
              // padding between rows of C is not C's to write
              if (!cBf16) for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) assert.equal(got[i * ldc + j], C0[i * ldc + j], `${what}: padding`);
            }
});

test('bf16GemmEx: a bf16 C with beta != 0 is refused', { skip: UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  const A = new Float32Array(4), C = new Uint16Array(4);
  assert.throws(() => native.bf16GemmEx(UNITS[0]!, false, false, 2, 2, 2, 1, A, 2, A, 2, false, 1, C, 2), /beta == 0/);
});

test('gateUpSwiglu: gate and up rounded to bf16, SwiGLU of those in the gate/up GEMM epilogue, every matrix unit', { skip: UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  // F not a multiple of 16 (the features per tile), N across 32-row tiles and 256-row blocks.
  for (const [N, C, F] of [[1, 7, 5], [37, 64, 40], [300, 130, 100], [70, 96, 48]] as const) {
    const h = randArray(Float32Array, N * C, N + C), W = randArray(Float32Array, 2 * F * C, F, 1 / Math.sqrt(C));
    // reference: gate and up from bf16-rounded operands in float64, then the SwiGLU reference
    const gu = new Float64Array(N * 2 * F), absGu = new Float64Array(N * 2 * F);
    gemmRef(false, true, N, 2 * F, C, 1, rounded(h), C, rounded(W), C, 0, gu, 2 * F);
    gemmRef(false, true, N, 2 * F, C, C * U, rounded(h).map(Math.abs), C, rounded(W).map(Math.abs), C, 0, absGu, 2 * F);
    // each kernel gate / up: the fp32 sum (within absGu of the exact one) rounded to bf16 (at most
    // half a bf16 ulp, 2^-8 of the value, from that sum)
    const guErr = (i: number) => absGu[i]! + 2 ** -8 * (Math.abs(gu[i]!) + absGu[i]!);
    const gate = new Float64Array(N * F), up = new Float64Array(N * F), err = new Float64Array(N * F);
    for (let n = 0; n < N; n++)
      for (let f = 0; f < F; f++) {
        gate[n * F + f] = gu[n * 2 * F + f]!;
        up[n * F + f] = gu[n * 2 * F + F + f]!;
        err[n * F + f] = Math.max(guErr(n * 2 * F + f), guErr(n * 2 * F + F + f));
      }
    const act = new Float64Array(N * F);
    swigluForwardRef(act, gate, up, N * F);
    for (const unit of UNITS)
      withUnit(unit, () => {
        const got = new Float32Array(N * F).fill(NaN), gotGu = new Float32Array(N * 2 * F).fill(NaN);
        native.gateUpSwiglu(got, gotGu, h, W, N, C, F);
        // |d act| <= (|up| |silu'(gate)| + |silu(gate)|) err <= (|gate| + |up| + 1.2) err with
        // silu' in [-0.1, 1.1]; plus a few fp32 ulps of the epilogue's own arithmetic.
        for (let i = 0; i < N * F; i++) {
          const tolerance = (Math.abs(gate[i]!) + Math.abs(up[i]!) + 1.2) * err[i]! * 1.2 + 16 * 2 ** -24 * Math.abs(act[i]!) + 1e-30;
          if (!(Math.abs(got[i]! - act[i]!) <= tolerance))
            assert.fail(`${unit} N=${N} C=${C} F=${F} act[${Math.floor(i / F)},${i % F}] = ${got[i]}, expected ${act[i]} +- ${tolerance}`);
        }
        for (let i = 0; i < N * 2 * F; i++) {
          if (!(Math.abs(gotGu[i]! - gu[i]!) <= guErr(i) + 1e-30))
            assert.fail(`${unit} N=${N} C=${C} F=${F} gu[${Math.floor(i / (2 * F))},${i % (2 * F)}] = ${gotGu[i]}, expected ${gu[i]} +- ${guErr(i)}`);
          if (roundBf16Ref(gotGu[i]!) !== gotGu[i]) assert.fail(`${unit}: gu[${i}] = ${gotGu[i]} is not a bf16 value`);
        }
      });
  }
});

test('swigluUnitBackward: dgu of the kept bf16 gate/up against the float64 SwiGLU backward, every matrix unit', { skip: UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  for (const [N, F] of [[1, 5], [37, 40], [300, 100], [3, 1536]] as const) {
    // gate and up bf16 values (as gateUpSwiglu keeps them), large enough to reach both tails of the sigmoid
    const gu32 = Float32Array.from(randArray(Float32Array, 2 * N * F, N + F, 6), roundBf16Ref);
    const dact = randArray(Float32Array, N * F, 3 * N + F);
    const gate = new Float64Array(N * F), up = new Float64Array(N * F);
    for (let n = 0; n < N; n++)
      for (let f = 0; f < F; f++) {
        gate[n * F + f] = gu32[n * 2 * F + f]!;
        up[n * F + f] = gu32[n * 2 * F + F + f]!;
      }
    const dg = new Float64Array(N * F), du = new Float64Array(N * F), act = new Float64Array(N * F);
    swigluBackwardRef(dg, du, dact, gate, up, N * F);
    swigluForwardRef(act, gate, up, N * F);
    for (const unit of UNITS)
      withUnit(unit, () => {
        const dgu = new Float32Array(2 * N * F).fill(NaN), a = new Float32Array(N * F).fill(NaN);
        native.swigluUnitBackward(dgu, a, dact, gu32, N, F);
        // the epilogue's sigmoid (RCP14 and one Newton step, a few ulps) and products: 32 fp32 ulps
        // of the terms' magnitudes
        for (let n = 0; n < N; n++)
          for (let f = 0; f < F; f++) {
            const i = n * F + f, g = gate[i]!, u = up[i]!, d = Math.abs(dact[i]!);
            const checks: Array<[string, number, number, number]> = [
              ['dgate', dgu[n * 2 * F + f]!, dg[i]!, d * Math.abs(u) * (1.2 + Math.abs(g))],
              ['dup', dgu[n * 2 * F + F + f]!, du[i]!, d * Math.abs(g)],
              ['act', a[i]!, act[i]!, Math.abs(g * u)],
            ];
            for (const [what, got, want, scale] of checks)
              if (!(Math.abs(got - want) <= 32 * U * scale + 1e-30))
                assert.fail(`${unit} N=${N} F=${F} ${what}[${n},${f}] = ${got}, expected ${want} +- ${32 * U * scale}`);
          }
      });
  }
});

test('gateUpSwiglu and swigluUnitBackward: the sigmoid\'s far tails (|gate| past 87, its exponent clamp) and NaN, every matrix unit', { skip: UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  // C = 1 and h = 1: gate and up are the weights themselves (bf16 values), so each feature f
  // has gate G[f] and up 1.5 on every row.
  const G = [-1e4, -300, -126, -90, -87.5, -86, -40, -1, 0, 1, 40, 86, 87.5, 90, 126, 300, 1e4, NaN].map(roundBf16Ref);
  const F = G.length, N = 35, U1 = 1.5;
  const h = new Float32Array(N).fill(1), W = Float32Array.from([...G, ...G.map(() => U1)]);
  const gate = Float64Array.from({ length: N * F }, (_, i) => G[i % F]!), up = new Float64Array(N * F).fill(U1);
  const dact = randArray(Float32Array, N * F, 17);
  const act = new Float64Array(N * F), dg = new Float64Array(N * F), du = new Float64Array(N * F);
  swigluForwardRef(act, gate, up, N * F);
  swigluBackwardRef(dg, du, dact, gate, up, N * F);
  // Past |gate| 87 the sigmoid is 1 or 2^-126 for e^-|gate|: silu is gate, or within 2^-126 |gate| of 0.
  const near = (got: number, want: number, scale: number) =>
    Number.isNaN(want) ? Number.isNaN(got) : Math.abs(got - want) <= 32 * U * scale + 2 ** -126 * (1 + scale);
  for (const unit of UNITS)
    withUnit(unit, () => {
      const a = new Float32Array(N * F).fill(-7), gu = new Float32Array(N * 2 * F).fill(-7);
      native.gateUpSwiglu(a, gu, h, W, N, 1, F);
      const dgu = new Float32Array(N * 2 * F).fill(-7), a2 = new Float32Array(N * F).fill(-7);
      native.swigluUnitBackward(dgu, a2, dact, gu, N, F);
      for (let i = 0; i < N * F; i++) {
        const n = Math.floor(i / F), f = i % F, g = gate[i]!, d = Math.abs(dact[i]!);
        const what = `${unit} gate ${g}`;
        assert.ok(Object.is(gu[n * 2 * F + f], Math.fround(g)) || (Number.isNaN(g) && Number.isNaN(gu[n * 2 * F + f]!)), `${what}: gu`);
        assert.ok(near(a[i]!, act[i]!, Math.abs(g * U1)), `${what}: act ${a[i]}, expected ${act[i]}`);
        assert.ok(Object.is(a2[i], a[i]), `${what}: backward's act ${a2[i]} is not forward's ${a[i]}`);
        assert.ok(near(dgu[n * 2 * F + f]!, dg[i]!, d * U1 * (1.2 + Math.abs(g))), `${what}: dgate ${dgu[n * 2 * F + f]}, expected ${dg[i]}`);
        assert.ok(near(dgu[n * 2 * F + F + f]!, du[i]!, d * Math.abs(g)), `${what}: dup ${dgu[n * 2 * F + F + f]}, expected ${du[i]}`);
      }
    });
});

test('linearCrossEntropy on a matrix unit (bf16 logits) against the float64 bf16-operand reference', { skip: UNITS.length === 0 && 'no bf16 matrix unit on this CPU' }, () => {
  // N across the 1024-row chunks; V not a multiple of 16 or 32; ignored targets (-1).
  const N = 1100, C = 48, V = 1001;
  const x = randArray(Float32Array, N * C, 3), W = randArray(Float32Array, V * C, 4, 0.5);
  const targets = randInts(N, V, 5);
  for (let i = 0; i < N; i += 9) targets[i] = -1;
  const dloss = 1 / N;
  // float64 reference of the standard path on rounded operands: logits, dlogits, dx, dW
  const x64 = rounded(x), W64 = rounded(W);
  const logits = new Float64Array(N * V);
  gemmRef(false, true, N, V, C, 1, x64, C, W64, C, 0, logits, V);
  const lse = new Float64Array(N);
  const loss = native.crossEntropyForward(lse, logits, targets, N, V);
  const dlogits = new Float64Array(N * V);
  native.crossEntropyBackward(dlogits, logits, lse, targets, N, V, dloss);
  const dx = new Float64Array(N * C), dW = new Float64Array(V * C);
  gemmRef(false, false, N, C, V, 1, dlogits, V, W64, C, 0, dx, C);
  gemmRef(true, false, V, C, N, 1, dlogits, V, x64, C, 0, dW, C);
  // Bounds from bf16 logits and dlogits: each logit off by <= 2^-9 |logit| (+ fp32 sums), which
  // moves lse by at most max_j |logit_j| 2^-8 per row; each dlogit off by <= 2^-8 of
  // (|dlogit| + p |logit| ...): bounded through |dlogits| with the largest logit of the row.
  const rowMax = new Float64Array(N);
  for (let n = 0; n < N; n++) for (let v = 0; v < V; v++) rowMax[n] = Math.max(rowMax[n]!, Math.abs(logits[n * V + v]!));
  const absDl = new Float64Array(N * V);
  for (let n = 0; n < N; n++)
    for (let v = 0; v < V; v++) {
      const p = Math.exp(logits[n * V + v]! - lse[n]!) * (targets[n]! >= 0 ? dloss : 0);
      absDl[n * V + v] = 2 ** -8 * (Math.abs(dlogits[n * V + v]!) + 2 * p * rowMax[n]!) + dloss * 1e-6;
    }
  const bdx = new Float64Array(N * C), bdW = new Float64Array(V * C);
  gemmRef(false, false, N, C, V, 1, absDl, V, W64.map(Math.abs), C, 0, bdx, C);
  gemmRef(true, false, V, C, N, 1, absDl, V, x64.map(Math.abs), C, 0, bdW, C);
  for (const unit of UNITS)
    withUnit(unit, () => {
      const gdx = new Float32Array(N * C).fill(NaN), gdW = new Float32Array(V * C), glse = new Float32Array(N);
      const gloss = native.linearCrossEntropy(gdx, gdW, glse, x, W, targets, N, C, V, dloss, true);
      let lossBound = 0;
      for (let n = 0; n < N; n++) {
        const b = 2 ** -7 * rowMax[n]! + 1e-5;
        if (targets[n]! >= 0) lossBound += b;
        assert.ok(Math.abs(glse[n]! - lse[n]!) <= b, `${unit} lse[${n}] = ${glse[n]}, expected ${lse[n]} +- ${b}`);
      }
      assert.ok(Math.abs(gloss - loss) <= lossBound, `${unit} loss ${gloss}, expected ${loss} +- ${lossBound}`);
      for (let i = 0; i < N * C; i++) assert.ok(Math.abs(gdx[i]! - dx[i]!) <= bdx[i]! * 1.5 + 1e-9, `${unit} dx[${i}] = ${gdx[i]}, expected ${dx[i]} +- ${bdx[i]}`);
      for (let i = 0; i < V * C; i++) assert.ok(Math.abs(gdW[i]! - dW[i]!) <= bdW[i]! * 1.5 + 1e-9, `${unit} dW[${i}] = ${gdW[i]}, expected ${dW[i]} +- ${bdW[i]}`);
      // evaluation (no gradients) gives the same loss and lse
      const evalLse = new Float32Array(N);
      const eloss = native.linearCrossEntropy(null, null, evalLse, x, W, targets, N, C, V, 0, true);
      assert.equal(eloss, gloss);
      assert.deepEqual(evalLse, glse);
    });
});
