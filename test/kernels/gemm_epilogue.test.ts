// The fp32 GEMM's epilogues (native/src/kernels/epilogue.h): gemmSwiglu (gate/up projection with
// SwiGLU, writing the activation and / or gate and up, which swigluPackedBackward turns into dgu
// and the same activation) and gemmQkvRope
// (QKV projection with RoPE and the split into heads) against the plain float64 reference (GEMM,
// then the pass), on every ISA path, f32 and f64, 1 and 2 threads, on shapes whose rows,
// features, heads and pairs do not fill the register tiles.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { assertClose, randArray, tol } from '../helpers.js';
import type { AttentionShape } from '../../src/model/attention.js';
import { gemmRef, roundBf16Ref, ropeQkvSplitRef, ropeTableRef, swigluBackwardRef, swigluForwardRef } from '../reference/ops.js';
import { forEachIsa, withThreads } from './harness.js';

const DTYPES = [[Float32Array, 'f32'], [Float64Array, 'f64']] as const;

/** gate, up (N, F) of x Wgu^T in float64; bf16: operands rounded first. */
function gateUpRef(x: Float64Array, Wgu: Float64Array, N: number, C: number, F: number, bf16: boolean) {
  const r = (a: Float64Array) => (bf16 ? a.map(roundBf16Ref) : a);
  const gu = new Float64Array(N * 2 * F);
  gemmRef(false, true, N, 2 * F, C, 1, r(x), C, r(Wgu), C, 0, gu, 2 * F);
  const gate = new Float64Array(N * F), up = new Float64Array(N * F);
  for (let n = 0; n < N; n++) {
    gate.set(gu.subarray(n * 2 * F, n * 2 * F + F), n * F);
    up.set(gu.subarray(n * 2 * F + F, (n + 1) * 2 * F), n * F);
  }
  return { gate, up };
}

/** [gate | up] rows (N, 2F) from gate and up (N, F). */
function packRows(a: Float64Array, b: Float64Array, N: number, F: number): Float64Array {
  const out = new Float64Array(N * 2 * F);
  for (let n = 0; n < N; n++) {
    out.set(a.subarray(n * F, (n + 1) * F), n * 2 * F);
    out.set(b.subarray(n * F, (n + 1) * F), n * 2 * F + F);
  }
  return out;
}

/** act (N, F) = silu(x Wg^T) * (x Wu^T) and gu (N, 2F) = [gate | up] in float64; bf16: operands rounded first. */
function swigluRef(x: Float64Array, Wgu: Float64Array, N: number, C: number, F: number, bf16 = false): { act: Float64Array; gu: Float64Array } {
  const { gate, up } = gateUpRef(x, Wgu, N, C, F, bf16);
  const act = new Float64Array(N * F);
  swigluForwardRef(act, gate, up, N * F);
  return { act, gu: packRows(gate, up, N, F) };
}

/** dgu (N, 2F) = [dgate | dup] of silu(gate) * up for dact (N, F), in float64. */
function swigluBackwardGemmRef(dact: Float64Array, x: Float64Array, Wgu: Float64Array, N: number, C: number, F: number): Float64Array {
  const { gate, up } = gateUpRef(x, Wgu, N, C, F, false);
  const dg = new Float64Array(N * F), du = new Float64Array(N * F);
  swigluBackwardRef(dg, du, dact, gate, up, N * F);
  return packRows(dg, du, N, F);
}

/** q, k rotated and v, from x (B*T, C) and Wqkv ((H + 2 KVH) D, C), in float64. */
function qkvRopeRef(x: Float64Array, Wqkv: Float64Array, cos: Float64Array, sin: Float64Array, s: AttentionShape, bf16 = false) {
  const { B, T, C, H, KVH, D } = s;
  const N = B * T, W = (H + 2 * KVH) * D;
  const r = (a: Float64Array) => (bf16 ? a.map(roundBf16Ref) : a);
  const qkv = new Float64Array(N * W);
  gemmRef(false, true, N, W, C, 1, r(x), C, r(Wqkv), C, 0, qkv, W);
  return ropeQkvSplitRef(qkv, cos, sin, B, T, H, KVH, D);
}

test('gemmSwiglu equals GEMM + SwiGLU (act and gu = [gate | up]) on every ISA, f32 and f64, 1 and 2 threads, awkward shapes', () => {
  // F not a multiple of any tile's half width; N not a multiple of the row tile; C odd and long.
  // C > 1024: K in several blocks, the earlier ones' sums kept for the last block's epilogue.
  const shapes = [[1, 1, 1], [7, 5, 13], [13, 33, 17], [29, 64, 40], [37, 200, 100], [50, 512, 96], [13, 1500, 20], [25, 2100, 7], [64, 1100, 40]] as const;
  forEachIsa((isa) => {
    for (const threads of [1, 2])
      withThreads(threads, () => {
        for (const [N, C, F] of shapes) {
          const x = randArray(Float64Array, N * C, 11 + N, 1), Wgu = randArray(Float64Array, 2 * F * C, 12 + F, 2 / Math.sqrt(C));
          const ref = swigluRef(x, Wgu, N, C, F);
          for (const [ctor, dt] of DTYPES) {
            const what = `${isa} ${threads}T ${dt} ${N}x${C}x${F}`;
            const act = new ctor(N * F).fill(Number.NaN), gu = new ctor(N * 2 * F).fill(Number.NaN);
            native.gemmSwiglu(act, gu, new ctor(x), new ctor(Wgu), N, C, F);
            assertClose(act, ref.act, tol(dt, C, 16), `${what} act`);
            assertClose(gu, ref.gu, tol(dt, C, 16), `${what} gu`);
            // one output alone: the same bits
            const act1 = new ctor(N * F).fill(Number.NaN), gu1 = new ctor(N * 2 * F).fill(Number.NaN);
            native.gemmSwiglu(act1, null, new ctor(x), new ctor(Wgu), N, C, F);
            native.gemmSwiglu(null, gu1, new ctor(x), new ctor(Wgu), N, C, F);
            assert.deepEqual(act1, act, `${what}: act alone`);
            assert.deepEqual(gu1, gu, `${what}: gu alone`);
          }
        }
      });
  });
});

test('gemmSwiglu with bf16 operands equals the float64 product of the rounded operands, on every ISA', () => {
  forEachIsa((isa) => {
    for (const [N, C, F] of [[5, 7, 3], [31, 130, 45]] as const) {
      const x = randArray(Float64Array, N * C, 21, 1), Wgu = randArray(Float64Array, 2 * F * C, 22, 0.3);
      const ref = swigluRef(x, Wgu, N, C, F, true);
      const act = new Float32Array(N * F), gu = new Float32Array(N * 2 * F);
      native.gemmSwiglu(act, gu, new Float32Array(x), new Float32Array(Wgu), N, C, F, true);
      assertClose(act, ref.act, tol('f32', C, 16), `${isa} bf16 act ${N}x${C}x${F}`);
      assertClose(gu, ref.gu, tol('f32', C, 16), `${isa} bf16 gu ${N}x${C}x${F}`);
      // Not the unrounded product: the rounding is really applied.
      assert.throws(() => assertClose(act, swigluRef(x, Wgu, N, C, F).act, tol('f32', C, 16)), /expected/, `${isa}: bf16 act within fp32 tolerance of the unrounded product`);
    }
  });
});

test('gemmSwiglu\'s gu through swigluPackedBackward: dgu = [dgate | dup] of the reference, in place, and gemmSwiglu\'s act bit for bit, every ISA, f32 and f64, 1 and 2 threads', () => {
  forEachIsa((isa) => {
    for (const threads of [1, 2])
      withThreads(threads, () => {
        for (const [N, C, F] of [[1, 1, 1], [7, 5, 13], [29, 64, 40], [50, 512, 96], [14, 1100, 9]] as const) {
          const x = randArray(Float64Array, N * C, 51 + N, 1), Wgu = randArray(Float64Array, 2 * F * C, 52 + F, 2 / Math.sqrt(C));
          const dact = randArray(Float64Array, N * F, 53, 1);
          const ref = swigluBackwardGemmRef(dact, x, Wgu, N, C, F);
          for (const [ctor, dt] of DTYPES) {
            const what = `${isa} ${threads}T ${dt} ${N}x${C}x${F}`;
            const act = new ctor(N * F), gu = new ctor(N * 2 * F);
            native.gemmSwiglu(act, gu, new ctor(x), new ctor(Wgu), N, C, F);
            const again = new ctor(N * F).fill(Number.NaN);
            native.swigluPackedBackward(gu, again, new ctor(dact), gu, N, F); // in place: gu becomes dgu
            assertClose(gu, ref, tol(dt, C, 16), `${what} dgu`);
            assert.deepEqual(again, act, `${what}: the pass's activation is not the epilogue's`);
          }
        }
      });
  });
});

test('gemmQkvRope equals GEMM + slicing + RoPE on every ISA, f32 and f64, 1 and 2 threads: head dims 2..128, GQA 1/2/4, batch > 1', () => {
  const shapes: AttentionShape[] = [
    { B: 1, T: 1, C: 1, H: 1, KVH: 1, D: 2 },
    { B: 2, T: 9, C: 7, H: 4, KVH: 2, D: 6 }, // pairs straddle heads inside a tile
    { B: 3, T: 5, C: 33, H: 3, KVH: 3, D: 10 },
    { B: 1, T: 17, C: 40, H: 4, KVH: 1, D: 32 },
    { B: 2, T: 13, C: 64, H: 8, KVH: 4, D: 64 },
    { B: 1, T: 11, C: 96, H: 2, KVH: 1, D: 128 },
    { B: 2, T: 7, C: 1300, H: 4, KVH: 2, D: 10 }, // K in several blocks
    { B: 2, T: 40, C: 1100, H: 2, KVH: 1, D: 16 }, // and threaded
  ];
  forEachIsa((isa) => {
    for (const threads of [1, 2])
      withThreads(threads, () => {
        for (const s of shapes) {
          const { B, T, C, H, KVH, D } = s;
          const N = B * T, W = (H + 2 * KVH) * D;
          const cos = new Float64Array((T * D) / 2), sin = new Float64Array((T * D) / 2);
          ropeTableRef(cos, sin, T, D, 10000);
          const x = randArray(Float64Array, N * C, 31 + C, 1), Wqkv = randArray(Float64Array, W * C, 32 + D, 1 / Math.sqrt(C));
          const ref = qkvRopeRef(x, Wqkv, cos, sin, s);
          for (const [ctor, dt] of DTYPES) {
            const q = new ctor(N * H * D).fill(Number.NaN), k = new ctor(N * KVH * D).fill(Number.NaN), v = new ctor(N * KVH * D).fill(Number.NaN);
            native.gemmQkvRope(q, k, v, new ctor(x), new ctor(Wqkv), new ctor(cos), new ctor(sin), B, T, C, H, KVH, D);
            const what = `${isa} ${threads}T ${dt} B${B} T${T} C${C} H${H}/${KVH} D${D}`;
            assertClose(q, ref.q, tol(dt, C, 16), `${what} q`);
            assertClose(k, ref.k, tol(dt, C, 16), `${what} k`);
            assertClose(v, ref.v, tol(dt, C, 16), `${what} v`);
          }
        }
      });
  });
});

test('gemmQkvRope with bf16 operands equals the float64 product of the rounded operands, then RoPE', () => {
  const s: AttentionShape = { B: 2, T: 7, C: 70, H: 4, KVH: 2, D: 32 };
  const { B, T, C, H, KVH, D } = s;
  const N = B * T, W = (H + 2 * KVH) * D;
  const cos = new Float64Array((T * D) / 2), sin = new Float64Array((T * D) / 2);
  ropeTableRef(cos, sin, T, D, 10000);
  const x = randArray(Float64Array, N * C, 41, 1), Wqkv = randArray(Float64Array, W * C, 42, 0.2);
  const ref = qkvRopeRef(x, Wqkv, cos, sin, s, true);
  forEachIsa((isa) => {
    const q = new Float32Array(N * H * D), k = new Float32Array(N * KVH * D), v = new Float32Array(N * KVH * D);
    native.gemmQkvRope(q, k, v, new Float32Array(x), new Float32Array(Wqkv), new Float32Array(cos), new Float32Array(sin), B, T, C, H, KVH, D, true);
    assertClose(q, ref.q, tol('f32', C, 16), `${isa} bf16 q`);
    assertClose(k, ref.k, tol('f32', C, 16), `${isa} bf16 k`);
    assertClose(v, ref.v, tol('f32', C, 16), `${isa} bf16 v`);
  });
});

test('the epilogue GEMMs with C = 0 write zeros; bad arguments are refused by name', () => {
  const act = new Float32Array(6).fill(Number.NaN), gu = new Float32Array(12).fill(Number.NaN);
  native.gemmSwiglu(act, gu, new Float32Array(0), new Float32Array(0), 2, 0, 3);
  assert.deepEqual([...act], [0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...gu], new Array(12).fill(0));
  const q = new Float32Array(4).fill(Number.NaN), k = new Float32Array(4).fill(Number.NaN), v = new Float32Array(4).fill(Number.NaN);
  native.gemmQkvRope(q, k, v, new Float32Array(0), new Float32Array(0), new Float32Array(2), new Float32Array(2), 1, 2, 0, 1, 1, 2);
  assert.deepEqual([...q, ...k, ...v], new Array(12).fill(0));
  assert.throws(() => native.gemmSwiglu(new Float32Array(5), null, new Float32Array(6), new Float32Array(18), 2, 3, 3), /act/);
  assert.throws(() => native.gemmSwiglu(null, new Float32Array(11), new Float32Array(6), new Float32Array(18), 2, 3, 3), /gu/);
  assert.throws(() => native.gemmSwiglu(null, null, new Float32Array(6), new Float32Array(18), 2, 3, 3), /both null/);
  assert.throws(() => native.gemmQkvRope(q, k, v, new Float32Array(2), new Float32Array(8), new Float32Array(2), new Float32Array(2), 1, 2, 1, 1, 1, 3), /even/);
  assert.throws(() => native.gemmQkvRope(q, k, v, new Float32Array(2), new Float32Array(8), new Float32Array(2), new Float32Array(2), 1, 2, 1, 3, 2, 2), /KVH|heads/);
});
