// Operands kept in bf16 (Uint16Array of bf16 bits) by bf16 training on a matrix unit: the
// weights' working copy (written by AdamW), the norm outputs, the attention output, gate/up, the
// SwiGLU activation, dgu and dqkv. Every GEMM-side entry point must give bit for bit what it gives for the fp32 values of
// the same bits (the units round fp32 operands to those very bits while packing), and every
// producer must write exactly castToBf16 of what its fp32 form writes. Awkward sizes throughout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native, type FloatArray } from '../../src/kernels/native.js';
import { randArray, randInts } from '../helpers.js';
import { MATRIX_UNITS as UNITS, withThreads, withUnit } from './harness.js';

const noUnit = UNITS.length === 0 && 'no bf16 matrix unit on this CPU';

const bits = (x: FloatArray): Uint16Array => {
  const u = new Uint16Array(x.length);
  native.castToBf16(u, x, x.length);
  return u;
};
/** fp32 values of x's bf16 rounding: the same operand as bits(x), as a Float32Array. */
const roundedF32 = (x: Float32Array): Float32Array => {
  const f = new Float32Array(x.length);
  native.castFromBf16(f, bits(x), x.length);
  return f;
};

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;
const rand = (ctor: Ctor, n: number, seed: number, scale = 1): FloatArray => randArray<FloatArray>(ctor, n, seed, scale);

function assertSameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++)
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: [${i}] = ${got[i]}, expected ${want[i]} (bit for bit)`);
}

test('gemmBf16 reads bf16 A and B (and writes a bf16 C) on a matrix unit, bit for bit the fp32-operand product', { skip: noUnit }, () => {
  let seed = 7;
  for (const unit of UNITS)
    withUnit(unit, () => {
      for (const [M, N, K] of [[1, 1, 1], [33, 47, 65], [130, 70, 1100], [70, 1030, 40]] as const)
        for (const [ta, tb] of [[false, true], [false, false], [true, false]] as const) {
          const lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
          const A = randArray(Float32Array, (ta ? K : M) * lda, seed++), B = randArray(Float32Array, (tb ? N : K) * ldb, seed++);
          const C0 = randArray(Float32Array, M * ldc, seed++);
          const want = Float32Array.from(C0);
          native.gemmBf16(ta, tb, M, N, K, 0.5, A, lda, B, ldb, 1, want, ldc);
          for (const [a, b] of [[bits(A), B], [A, bits(B)], [bits(A), bits(B)]] as const) {
            const got = Float32Array.from(C0);
            native.gemmBf16(ta, tb, M, N, K, 0.5, a, lda, b, ldb, 1, got, ldc);
            assertSameBits(got, want, `${unit} ${M}x${N}x${K} tA=${ta} tB=${tb} A ${a instanceof Uint16Array ? 'bf16' : 'fp32'} B ${b instanceof Uint16Array ? 'bf16' : 'fp32'}`);
          }
          // a bf16 C: the fp32 product (beta 0) rounded once; K in one block for both (a bf16 C
          // always runs K in one block, an fp32 C only up to 512)
          if (K > 512) continue;
          const c32 = new Float32Array(M * ldc), c16 = new Uint16Array(M * ldc);
          native.gemmBf16(ta, tb, M, N, K, 1, A, lda, B, ldb, 0, c32, ldc);
          native.gemmBf16(ta, tb, M, N, K, 1, bits(A), lda, bits(B), ldb, 0, c16, ldc);
          const expect = bits(c32);
          for (let i = 0; i < M; i++)
            for (let j = 0; j < N; j++)
              if (c16[i * ldc + j] !== expect[i * ldc + j]) assert.fail(`${unit} bf16 C [${i},${j}]: ${c16[i * ldc + j]} vs ${expect[i * ldc + j]}`);
        }
    });
});

test('gemmBf16 with bf16 operands on the fp32 unit is refused, naming the unit', () => {
  withUnit('fp32', () => {
    const a = new Uint16Array(4), c = new Float32Array(4);
    assert.throws(() => native.gemmBf16(false, false, 2, 2, 2, 1, a, 2, a, 2, 0, c, 2), /matrix unit.*'fp32'/);
  });
});

test('gateUpSwiglu: bf16 h and Wgu read as their fp32 values; a bf16 act or gu is the fp32 one rounded once; one output alone gives the same bits', { skip: noUnit }, () => {
  for (const [N, C, F] of [[1, 7, 5], [37, 64, 40], [300, 130, 100]] as const) {
    const h = randArray(Float32Array, N * C, N + C), W = randArray(Float32Array, 2 * F * C, F, 1 / Math.sqrt(C));
    for (const unit of UNITS)
      withUnit(unit, () => {
        const what = `${unit} N=${N} C=${C} F=${F}`;
        const want = new Float32Array(N * F), wantGu = new Float32Array(2 * N * F);
        native.gateUpSwiglu(want, wantGu, h, W, N, C, F);
        const got = new Float32Array(N * F), gotGu = new Float32Array(2 * N * F);
        native.gateUpSwiglu(got, gotGu, bits(h), bits(W), N, C, F);
        assertSameBits(got, want, `${what} act from bf16 operands`);
        assertSameBits(gotGu, wantGu, `${what} gu from bf16 operands`);
        const act16 = new Uint16Array(N * F).fill(0x7fc0), gu16 = new Uint16Array(2 * N * F).fill(0x7fc0);
        native.gateUpSwiglu(act16, gu16, bits(h), W, N, C, F);
        assertSameBits(act16, bits(want), `${what} bf16 act`);
        assertSameBits(gu16, bits(wantGu), `${what} bf16 gu`);
        assertSameBits(roundedF32(wantGu), wantGu, `${what} fp32 gu holds bf16 values`);
        const actOnly = new Uint16Array(N * F), guOnly = new Uint16Array(2 * N * F);
        native.gateUpSwiglu(actOnly, null, h, W, N, C, F);
        native.gateUpSwiglu(null, guOnly, h, W, N, C, F);
        assertSameBits(actOnly, act16, `${what} act alone`);
        assertSameBits(guOnly, gu16, `${what} gu alone`);
      });
  }
});

test('swigluUnitBackward: forward\'s activation bit for bit; bf16 dgu and act the fp32 ones rounded once; in place or apart; fp32 gu rounded first', { skip: noUnit }, () => {
  for (const [N, C, F] of [[1, 7, 5], [37, 64, 40], [300, 130, 100]] as const) {
    const h = randArray(Float32Array, N * C, N + C + 1), W = randArray(Float32Array, 2 * F * C, F + 1, 2 / Math.sqrt(C));
    const dact = randArray(Float32Array, N * F, N * F);
    for (const unit of UNITS)
      for (const threads of [1, 2, 3])
        withUnit(unit, () => withThreads(threads, () => {
          const what = `${unit} ${threads}T N=${N} C=${C} F=${F}`;
          const act = new Float32Array(N * F), gu = new Float32Array(2 * N * F);
          native.gateUpSwiglu(act, gu, h, W, N, C, F);
          const dgu = new Float32Array(2 * N * F).fill(NaN), again = new Float32Array(N * F).fill(NaN);
          native.swigluUnitBackward(dgu, again, dact, gu, N, F);
          assertSameBits(again, act, `${what}: the pass's activation is not the epilogue's`);
          const gu16 = bits(gu), act16 = new Uint16Array(N * F).fill(0x7fc0);
          native.swigluUnitBackward(gu16, act16, dact, gu16, N, F); // in place
          assertSameBits(gu16, bits(dgu), `${what}: bf16 dgu in place`);
          assertSameBits(act16, bits(act), `${what}: bf16 act`);
          // fp32 gate/up off the bf16 grid are rounded first: the same as their rounded values
          const off = Float32Array.from(gu, (v, i) => (i % 3 === 0 ? v * (1 + 2 ** -12) : v));
          const dguOff = new Float32Array(2 * N * F);
          native.swigluUnitBackward(dguOff, null, dact, off, N, F);
          assertSameBits(dguOff, dgu, `${what}: fp32 gu not rounded first`);
        }));
  }
  withUnit(UNITS[0]!, () => {
    const [N, F] = [3, 5];
    assert.throws(() => native.swigluUnitBackward(new Uint16Array(2 * N * F), null, new Float32Array(N * F), new Float32Array(2 * N * F), N, F), /share a dtype/);
    assert.throws(() => native.swigluUnitBackward(new Float32Array(2 * N * F), null, new Float32Array(N * F - 1), new Float32Array(2 * N * F), N, F), /dact/);
    assert.throws(() => native.gateUpSwiglu(null, null, new Float32Array(N * 4), new Float32Array(2 * F * 4), N, 4, F), /both null/);
  });
});

test('linearCrossEntropy on a matrix unit: bf16 x and W give the fp32-operand loss, lse and gradients bit for bit', { skip: noUnit }, () => {
  const N = 1100, C = 48, V = 1001;
  const x = randArray(Float32Array, N * C, 3), W = randArray(Float32Array, V * C, 4, 0.5);
  const targets = randInts(N, V, 5);
  for (let i = 0; i < N; i += 9) targets[i] = -1;
  for (const unit of UNITS)
    withUnit(unit, () => {
      const run = (xs: Float32Array | Uint16Array, Ws: Float32Array | Uint16Array) => {
        const dx = new Float32Array(N * C), dW = new Float32Array(V * C), lse = new Float32Array(N);
        const loss = native.linearCrossEntropy(dx, dW, lse, xs, Ws, targets, N, C, V, 1 / N, true);
        return { loss, dx, dW, lse };
      };
      const want = run(x, W);
      const got = run(bits(x), bits(W));
      assert.equal(got.loss, want.loss, `${unit}: loss`);
      assertSameBits(got.lse, want.lse, `${unit}: lse`);
      assertSameBits(got.dx, want.dx, `${unit}: dx`);
      assertSameBits(got.dW, want.dW, `${unit}: dW`);
    });
  withUnit('fp32', () => {
    const lse = new Float32Array(2);
    assert.throws(() => native.linearCrossEntropy(null, null, lse, new Uint16Array(4), new Float32Array(6), new Int32Array(2), 2, 2, 3, 0, true), /matrix unit.*'fp32'/);
  });
});

test('adamw writes the bf16 working copy of the updated parameters in the same pass', () => {
  for (const threads of [1, 2])
    withThreads(threads, () => {
      for (const n of [1, 17, 100_003]) {
        const p = randArray(Float32Array, n, n), g = randArray(Float32Array, n, n + 1);
        const m = randArray(Float32Array, n, n + 2, 0.1), v = Float32Array.from(randArray(Float32Array, n, n + 3), (x) => x * x);
        const [p2, m2, v2] = [Float32Array.from(p), Float32Array.from(m), Float32Array.from(v)];
        native.adamw(p, g, m, v, n, 1e-3, 0.9, 0.95, 1e-8, 0.1, 3, 0.5);
        const pb = new Uint16Array(n).fill(0x7fc0);
        native.adamw(p2, g, m2, v2, n, 1e-3, 0.9, 0.95, 1e-8, 0.1, 3, 0.5, pb);
        assertSameBits(p2, p, `n=${n}: p`);
        assertSameBits(m2, m, `n=${n}: m`);
        assertSameBits(v2, v, `n=${n}: v`);
        assertSameBits(pb, bits(p), `n=${n}, ${threads} threads: bf16 copy`);
      }
    });
  const short = new Float32Array(8);
  assert.throws(() => native.adamw(short, short, short, short, 8, 1e-3, 0.9, 0.95, 1e-8, 0, 1, 1, new Uint16Array(7)), /pBf16: has 7 elements, needs 8/);
});

test('rmsnormForward / addRmsnormForward with a bf16 out: the fp32 (and float64) out rounded once, the rest unchanged', () => {
  for (const ctor of [Float32Array, Float64Array] as const)
    for (const [N, C] of [[1, 1], [3, 13], [64, 515]] as const) {
      const x = rand(ctor, N * C, N * C), y = rand(ctor, N * C, N * C + 1), w = rand(ctor, C, C);
      const out = new ctor(N * C), rstd = new ctor(N);
      native.rmsnormForward(out, rstd, x, w, N, C, 1e-5);
      const out16 = new Uint16Array(N * C), rstd16 = new ctor(N);
      native.rmsnormForward(out16, rstd16, x, w, N, C, 1e-5);
      assertSameBits(out16, bits(out), `${ctor.name} ${N}x${C} rmsnorm out`);
      assertSameBits(rstd16, rstd, `${ctor.name} ${N}x${C} rmsnorm rstd`);
      const resid = new ctor(N * C), out2 = new ctor(N * C), r2 = new ctor(N);
      native.addRmsnormForward(resid, out2, r2, x, y, w, N, C, 1e-5);
      const residB = new ctor(N * C), out2B = new Uint16Array(N * C), r2B = new ctor(N);
      native.addRmsnormForward(residB, out2B, r2B, x, y, w, N, C, 1e-5);
      assertSameBits(out2B, bits(out2), `${ctor.name} ${N}x${C} add+norm out`);
      assertSameBits(residB, resid, `${ctor.name} ${N}x${C} add+norm resid`);
      assertSameBits(r2B, r2, `${ctor.name} ${N}x${C} add+norm rstd`);
    }
});

test('rmsnormBackward with a bf16 copy of dx: dx and dw unchanged, the copy the accumulated dx rounded once', () => {
  for (const ctor of [Float32Array, Float64Array] as const)
    for (const [N, C] of [[1, 1], [3, 13], [64, 515]] as const) {
      const dout = rand(ctor, N * C, 1), x = rand(ctor, N * C, 2), w = rand(ctor, C, 3), rstd = rand(ctor, N, 4);
      const dx0 = rand(ctor, N * C, 5); // dx accumulates: the copy must be of the sum
      const [dx, dw] = [ctor.from(dx0), new ctor(C)];
      native.rmsnormBackward(dx, dw, dout, x, w, rstd, N, C);
      const [dxB, dwB, dx16] = [ctor.from(dx0), new ctor(C), new Uint16Array(N * C).fill(0x7fc0)];
      native.rmsnormBackward(dxB, dwB, dout, x, w, rstd, N, C, dx16);
      const what = `${ctor.name} ${N}x${C}`;
      assertSameBits(dxB, dx, `${what}: dx`);
      assertSameBits(dwB, dw, `${what}: dw`);
      assertSameBits(dx16, bits(dx), `${what}: bf16 copy`);
    }
});

test('ropeQkvMerge with a bf16 dqkv: the fp32 rows rounded once (GQA, odd head counts)', () => {
  for (const ctor of [Float32Array, Float64Array] as const)
    for (const [B, T, H, KVH, D] of [[1, 1, 1, 1, 2], [2, 5, 4, 2, 6], [1, 9, 3, 3, 10], [2, 17, 8, 2, 64]] as const) {
      const cos = new ctor(T * D / 2), sin = new ctor(T * D / 2);
      native.ropeTable(cos, sin, T, D, 10000);
      const nq = B * T * H * D, nkv = B * T * KVH * D;
      const dq = rand(ctor, nq, nq), dk = rand(ctor, nkv, nkv + 1), dv = rand(ctor, nkv, nkv + 2);
      const want = new ctor(nq + 2 * nkv);
      native.ropeQkvMerge(want, dq, dk, dv, cos, sin, B, T, H, KVH, D);
      const got = new Uint16Array(nq + 2 * nkv).fill(0x7fc0);
      native.ropeQkvMerge(got, dq, dk, dv, cos, sin, B, T, H, KVH, D);
      assertSameBits(got, bits(want), `${ctor.name} B=${B} T=${T} H=${H} KVH=${KVH} D=${D}`);
    }
});

test('ropeQkvSplit with bf16 q, k, v: the fp32 outputs rounded once (GQA, odd head dims)', () => {
  for (const ctor of [Float32Array, Float64Array] as const)
    for (const [B, T, H, KVH, D] of [[1, 1, 1, 1, 2], [2, 5, 4, 2, 6], [1, 9, 3, 3, 10]] as const) {
      const cos = new ctor(T * D / 2), sin = new ctor(T * D / 2);
      native.ropeTable(cos, sin, T, D, 10000);
      const nq = B * T * H * D, nkv = B * T * KVH * D;
      const qkv = rand(ctor, nq + 2 * nkv, nq);
      const [q, k, v] = [new ctor(nq), new ctor(nkv), new ctor(nkv)];
      native.ropeQkvSplit(q, k, v, qkv, cos, sin, B, T, H, KVH, D);
      const [q16, k16, v16] = [new Uint16Array(nq), new Uint16Array(nkv), new Uint16Array(nkv)];
      native.ropeQkvSplit(q16, k16, v16, qkv, cos, sin, B, T, H, KVH, D);
      const what = `${ctor.name} B=${B} T=${T} H=${H} KVH=${KVH} D=${D}`;
      assertSameBits(q16, bits(q), `${what}: q`);
      assertSameBits(k16, bits(k), `${what}: k`);
      assertSameBits(v16, bits(v), `${what}: v`);
    }
});

test('flash attention on a matrix unit: bf16 q, k, v give the fp32-input results bit for bit (forward and backward)', { skip: noUnit }, () => {
  // T across key tiles (64) and query tiles; GQA 1, 2, 4; D not a multiple of 32
  for (const [B, T, H, KVH, D] of [[1, 7, 2, 2, 8], [2, 70, 4, 2, 24], [1, 133, 8, 2, 64]] as const) {
    const nq = B * T * H * D, nkv = B * T * KVH * D;
    const q = randArray(Float32Array, nq, nq), k = randArray(Float32Array, nkv, nkv + 1), v = randArray(Float32Array, nkv, nkv + 2);
    const dout = randArray(Float32Array, nq, nq + 3);
    for (const unit of UNITS)
      withUnit(unit, () => {
        const run = (qs: Float32Array | Uint16Array, ks: Float32Array | Uint16Array, vs: Float32Array | Uint16Array) => {
          const out = new Float32Array(nq), lse = new Float32Array(B * H * T);
          native.attentionFlashForward(out, lse, qs, ks, vs, B, T, H, KVH, D, true);
          const [dq, dk, dv] = [new Float32Array(nq), new Float32Array(nkv), new Float32Array(nkv)];
          native.attentionFlashBackward(dq, dk, dv, dout, qs, ks, vs, out, lse, B, T, H, KVH, D, true);
          return { out, lse, dq, dk, dv };
        };
        const want = run(q, k, v), got = run(bits(q), bits(k), bits(v));
        const what = `${unit} B=${B} T=${T} H=${H} KVH=${KVH} D=${D}`;
        for (const key of ['out', 'lse', 'dq', 'dk', 'dv'] as const) assertSameBits(got[key], want[key], `${what}: ${key}`);
      });
  }
});

test('flash attention on a matrix unit: a bf16 out is the fp32 out rounded once, and backward gives the same bits from either', { skip: noUnit }, () => {
  for (const [B, T, H, KVH, D] of [[1, 7, 2, 2, 8], [2, 70, 4, 2, 24], [1, 133, 8, 2, 64], [1, 66, 3, 1, 40]] as const) {
    const nq = B * T * H * D, nkv = B * T * KVH * D;
    const q = bits(randArray(Float32Array, nq, nq + 5)), k = bits(randArray(Float32Array, nkv, nkv + 6)), v = bits(randArray(Float32Array, nkv, nkv + 7));
    const dout = randArray(Float32Array, nq, nq + 8);
    for (const unit of UNITS)
      withUnit(unit, () => {
        const what = `${unit} B=${B} T=${T} H=${H} KVH=${KVH} D=${D}`;
        const lse = new Float32Array(B * H * T), lse16 = new Float32Array(B * H * T);
        const out = new Float32Array(nq), out16 = new Uint16Array(nq);
        native.attentionFlashForward(out, lse, q, k, v, B, T, H, KVH, D, true);
        native.attentionFlashForward(out16, lse16, q, k, v, B, T, H, KVH, D, true);
        assertSameBits(out16, bits(out), `${what}: out`);
        assertSameBits(lse16, lse, `${what}: lse`);
        const grads = (o: Float32Array | Uint16Array) => {
          const g = [new Float32Array(nq), new Float32Array(nkv), new Float32Array(nkv)] as const;
          native.attentionFlashBackward(g[0], g[1], g[2], dout, q, k, v, o, lse, B, T, H, KVH, D, true);
          return g;
        };
        const [a, b] = [grads(out), grads(out16)];
        for (let i = 0; i < 3; i++) assertSameBits(b[i]!, a[i]!, `${what}: ${['dq', 'dk', 'dv'][i]}`);
        // backward reads an fp32 out as its bf16 rounding: another fp32 out with the same
        // rounding (halfway to it) gives the same bits
        const rounded = roundedF32(out), nudged = out.map((x, i) => (x + rounded[i]!) / 2);
        assertSameBits(bits(nudged), out16, `${what}: the nudged out rounds as out`);
        assert.ok(nudged.some((x, i) => x !== out[i]), `${what}: the nudge changed out`);
        const c = grads(nudged);
        for (let i = 0; i < 3; i++) assertSameBits(c[i]!, a[i]!, `${what}: ${['dq', 'dk', 'dv'][i]} from the nudged out`);
      });
  }
});

test('flash attention refuses mixed fp32 / bf16 q, k, v, and bf16 ones off a matrix unit', () => {
  const f = new Float32Array(64), h = new Uint16Array(64), lse = new Float32Array(8);
  if (UNITS.length > 0)
    withUnit(UNITS[0]!, () => {
      assert.throws(() => native.attentionFlashForward(f, lse, h, f, f, 1, 4, 2, 2, 8, true), /must all be Float32Arrays or all Uint16Arrays/);
    });
  withUnit('fp32', () => {
    assert.throws(() => native.attentionFlashForward(f, lse, h, h, h, 1, 4, 2, 2, 8, true), /matrix unit.*'fp32'/);
    assert.throws(() => native.attentionFlashForward(h, lse, f, f, f, 1, 4, 2, 2, 8, true), /out: a bf16 .*matrix unit.*'fp32'/);
    assert.throws(() => native.attentionFlashBackward(f, f, f, f, f, f, f, h, lse, 1, 4, 2, 2, 8, true), /out: a bf16 .*matrix unit.*'fp32'/);
  });
});

test('the bf16 GEMM operands are the rounded fp32 values: a gemmBf16 on roundedF32 inputs matches the bf16 bits', { skip: noUnit }, () => {
  // guards the premise of the tests above: the unit rounds fp32 operands to exactly castToBf16's bits
  const [M, N, K] = [20, 30, 40];
  const A = randArray(Float32Array, M * K, 1), B = randArray(Float32Array, K * N, 2);
  for (const unit of UNITS)
    withUnit(unit, () => {
      const c1 = new Float32Array(M * N), c2 = new Float32Array(M * N);
      native.gemmBf16(false, false, M, N, K, 1, A, K, B, N, 0, c1, N);
      native.gemmBf16(false, false, M, N, K, 1, roundedF32(A), K, roundedF32(B), N, 0, c2, N);
      assertSameBits(c1, c2, `${unit}`);
    });
});
