// bf16 mixed precision against the references in test/reference/ops.ts (bf16BitsRef rounds the
// exact value to the nearest bf16, written independently of native/src/bf16/convert.h):
//   casts     castToBf16 / castFromBf16 (vector.cc) on every ISA path, Float32Array and
//             Float64Array, bit for bit: hand-picked values, 100k random bit patterns, every bf16.
//   gemmBf16  on every bf16 unit of this machine (amx, avx512bf16: native/src/bf16/gemm_bf16.cc;
//             fp32: gemm.cc with rounded panels, on every ISA path), 1-3 threads, all transposes,
//             shapes around the 32x32 tiles and across the K (512 / 384), N (1024) and M (256)
//             blocks, padded leading dimensions, alpha / beta; and the float64 reference
//             (Float64Array) on every ISA path.
//   linearCrossEntropy(..., bf16 = true) on every unit and the float64 path against the same
//             composition in float64 (bf16 logits on the matrix units, fp32 logits otherwise).
//
// The gemm tolerance. Operands are rounded to bf16 (8 significant bits), so each product of two
// of them has at most 16 significant bits and is exact in fp32 (and float64): the only error
// is the summation. Recursive summation of K terms in precision u (2^-24 fp32, 2^-53 float64)
// errs by sum_k d_k S_k with |d_k| <= u and |S_k| <= sum_k |a_k b_k| = absS: at most (K-1) u absS,
// and for independent rounding errors a few u sqrt(K) absS; we allow 4 u sqrt(K) absS (or the
// worst case, if smaller). The epilogue (alpha * acc, + beta * C, and one more fp32 add of the
// partial C per K block when the K loop is blocked) adds one rounding of the partial result
// each: (nb + 2) u (|alpha| absS + |beta C|) with nb the number of K blocks (<= ceil(K / 256)).
// How tight that is: rounding an operand by truncation instead of to nearest moves a product by
// ~2^-9 of itself, so the sum moves by ~2^-9 sqrt(K) E|ab| against a tolerance of
// 4 * 2^-24 sqrt(K) * K E|ab|: at least 2^13 / K = 7x the tolerance at K = 1100, the largest K
// here; a skipped or doubled product moves it by ~E|ab|. The units' actual errors stay below
// 0.3x the tolerance (K = 1, the epilogue) and 0.01x for K >= 500; the test 'gemmBf16 rounds its
// operands' checks that truncated operands (350x), unrounded ones (the fp32 gemm, 135x) and a
// skipped product (2900x) fail at K = 300.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { native, type Bf16Unit, type FloatArray } from '../../src/kernels/native.js';
import { randInts, rng } from '../helpers.js';
import {
  bf16BitsRef, bf16ValueRef, crossEntropyBackwardRef, crossEntropyForwardRef, exponentOf, gemmRef, isBf16NaN, roundBf16Ref,
} from '../reference/ops.js';
import { forEachIsa, withThreads } from './harness.js';

const U32 = 2 ** -24; // unit roundoff of fp32
const U64 = 2 ** -53; // unit roundoff of float64
const hex = (v: number, w = 4) => '0x' + (v >>> 0).toString(16).padStart(w, '0');

/** Runs fn on every bf16 unit of this machine (the fp32 unit once per ISA path), then restores both. */
function forEachBf16Unit(fn: (label: string, unit: Bf16Unit) => void): void {
  const original = native.bf16Unit();
  try {
    for (const unit of native.bf16Units()) {
      native.setBf16Unit(unit);
      if (unit === 'fp32') forEachIsa((isa) => fn(`fp32 unit on ${isa}`, unit));
      else fn(unit, unit);
    }
  } finally {
    native.setBf16Unit(original);
  }
  assert.equal(native.bf16Unit(), original, 'the bf16 unit was not restored');
}

// ---- casts -----------------------------------------------------------------------------------

/** fp32 bit patterns as a Float32Array (NaN payloads and signs intact: never read as numbers). */
function f32FromBits(bits: ArrayLike<number>): Float32Array {
  const u = Uint32Array.from(bits);
  return new Float32Array(u.buffer);
}

/** The same values as float64: fp32 NaNs become float64 NaNs with the same sign and payload. */
function f64FromF32Bits(bits: ArrayLike<number>): Float64Array {
  const out = new Float64Array(bits.length);
  const w = new Uint32Array(out.buffer); // little-endian: w[2i] low word, w[2i+1] high word
  const f = f32FromBits(bits);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]! >>> 0;
    if ((b & 0x7fffffff) > 0x7f800000) {
      const m = b & 0x7fffff; // 23 payload bits -> the top of the 52-bit mantissa
      w[2 * i + 1] = ((b & 0x80000000) | 0x7ff00000 | (m >>> 3)) >>> 0;
      w[2 * i] = ((m & 7) << 29) >>> 0;
    } else {
      out[i] = f[i]!;
    }
  }
  return out;
}

/** Expected bf16 bits of the fp32 pattern b: the reference, except NaN (checked by class). */
const wantBits = (b: number, f: number) => ((b & 0x7fffffff) > 0x7f800000 ? -1 : bf16BitsRef(f));

/**
 * Checks y[0..n) against the fp32 patterns `bits`: bit-exact for numbers; for a NaN input, a NaN
 * of the same sign with the quiet bit set. y[n..] must still hold the sentinel.
 */
function checkBits(y: Uint16Array, bits: ArrayLike<number>, want: ArrayLike<number>, n: number, what: string): void {
  for (let i = 0; i < n; i++) {
    const got = y[i]!, w = want[i]!;
    if (w >= 0) {
      if (got !== w) assert.fail(`${what}: x[${i}] = ${hex(bits[i]!, 8)} gave ${hex(got)}, expected ${hex(w)}`);
    } else {
      const sign = (bits[i]! >>> 16) & 0x8000;
      if (!isBf16NaN(got) || (got & 0x8000) !== sign || !(got & 0x40))
        assert.fail(`${what}: NaN x[${i}] = ${hex(bits[i]!, 8)} gave ${hex(got)}: not a quiet NaN of the same sign`);
    }
  }
  for (let i = n; i < y.length; i++) if (y[i] !== 0xabcd) assert.fail(`${what}: y[${i}] written past n = ${n}`);
}

/** castToBf16 of the fp32 patterns `bits` from a Float32Array and from a Float64Array, checked. */
function castBoth(bits: ArrayLike<number>, want: ArrayLike<number>, what: string, n = bits.length): void {
  for (const [x, dt] of [[f32FromBits(bits), 'f32'], [f64FromF32Bits(bits), 'f64']] as const) {
    const y = new Uint16Array(n + 3).fill(0xabcd);
    native.castToBf16(y, x, n);
    checkBits(y, bits, want, n, `${what} ${dt}`);
  }
}

// [fp32 bit pattern, expected bf16 bits, why], worked out by hand.
const HAND: [number, number, string][] = [
  [0x3f800000, 0x3f80, '1'],
  [0x3f808000, 0x3f80, '1 + 2^-8: a tie, down to the even 1'],
  [0x3f818000, 0x3f82, '1 + 3*2^-8: a tie, up to the even 1 + 2^-6'],
  [0x3f80c000, 0x3f81, '1 + 3*2^-9: above the tie'],
  [0x3f804000, 0x3f80, '1 + 2^-9: below the tie'],
  [0x3f808001, 0x3f81, 'just above a tie'],
  [0x3f817fff, 0x3f81, 'just below a tie'],
  [0xbf808000, 0xbf80, '-(1 + 2^-8): a tie, to even'],
  [0xbf818000, 0xbf82, '-(1 + 3*2^-8): a tie, to even'],
  [0x3fff8000, 0x4000, '2 - 2^-8: a tie, up into the next binade (2)'],
  [0x3fffc000, 0x4000, '2 - 2^-9: up into the next binade'],
  [0x3fffffff, 0x4000, 'the largest fp32 below 2'],
  [0x7f7f0000, 0x7f7f, 'the largest finite bf16'],
  [0x7f7f7fff, 0x7f7f, 'just below the midpoint to 2^128'],
  [0x7f7f8000, 0x7f80, 'the midpoint to 2^128: a tie, to even = infinity'],
  [0x7f7fffff, 0x7f80, 'the largest finite fp32 overflows to infinity'],
  [0xff7fffff, 0xff80, 'the most negative finite fp32 overflows to -infinity'],
  [0x00800000, 0x0080, 'the smallest normal, 2^-126'],
  [0x00000001, 0x0000, 'the smallest fp32 subnormal rounds to +0'],
  [0x80000001, 0x8000, '-2^-149 rounds to -0'],
  [0x00010000, 0x0001, 'the smallest bf16 subnormal, 2^-133'],
  [0x00008000, 0x0000, '2^-134: a tie, down to the even 0'],
  [0x00018000, 0x0002, '3*2^-134: a tie, up to the even 2^-132'],
  [0x00008001, 0x0001, 'just above half the smallest subnormal'],
  [0x007f0000, 0x007f, 'the largest bf16 subnormal'],
  [0x007fffff, 0x0080, 'the largest fp32 subnormal rounds up to the smallest normal'],
  [0x807f8000, 0x8080, '-(2^-126 - 2^-134): a tie, up to -2^-126'],
  [0x80010000, 0x8001, '-2^-133'],
  [0x00000000, 0x0000, '+0'],
  [0x80000000, 0x8000, '-0'],
  [0x7f800000, 0x7f80, '+infinity'],
  [0xff800000, 0xff80, '-infinity'],
];

// NaNs: the result must be a quiet NaN of the same sign. The bit recipe without its NaN case would
// turn 0x7F800001 into infinity (truncation) and 0x7FFFFFFF into -0 (the carry reaches the sign).
const NANS = [
  0x7fc00000, 0xffc00000, // quiet
  0x7f800001, 0xff800001, // signalling, payload only in the dropped bits
  0x7fbfffff, 0xffbfffff, // signalling, all payload bits
  0x7fffffff, 0xffffffff, // quiet, all payload bits
  0x7f808000, 0x7fa00000, 0xff810000,
];

test('bf16BitsRef agrees with the hand-worked table (the reference itself)', () => {
  for (const [b, want, why] of HAND) {
    const x = f32FromBits([b])[0]!;
    assert.equal(hex(bf16BitsRef(x)), hex(want), why);
    // Rounding is idempotent and the value round-trips.
    assert.equal(hex(bf16BitsRef(bf16ValueRef(want))), hex(want), `${why}: round trip`);
  }
  assert.equal(bf16BitsRef(NaN), 0x7fc0);
  assert.equal(roundBf16Ref(1 + 2 ** -8 + 2 ** -40), 1 + 2 ** -7, 'a float64 just above a tie rounds up');
});

test('castToBf16: hand-picked values, NaNs, -0, infinities, subnormals, on every ISA (f32, f64)', () => {
  const bits = [...HAND.map((h) => h[0]), ...NANS];
  const want = [...HAND.map((h) => h[1]), ...NANS.map(() => -1)];
  forEachIsa((isa) => castBoth(bits, want, `${isa} hand-picked`));
});

// 100k fp32 patterns: uniform over all 2^32 (every exponent, NaNs, subnormals), and a quarter
// with the 16 dropped bits forced to a tie or next to one (uniform bits hit a tie 1 in 65536).
const N_RANDOM = 100_003;
const RANDOM_BITS = (() => {
  const r = rng(2024);
  const out = new Uint32Array(N_RANDOM);
  const near = [0x8000, 0x7fff, 0x8001, 0x0000, 0xffff];
  for (let i = 0; i < N_RANDOM; i++) {
    let b = Math.floor(r() * 2 ** 32) >>> 0;
    if (i % 4 === 1) b = ((b & 0xffff0000) | near[Math.floor(r() * near.length)]!) >>> 0;
    out[i] = b;
  }
  return out;
})();

test('castToBf16: 100k random fp32 bit patterns bit-exact, every ISA, 1 and 3 threads (f32, f64)', () => {
  const x = f32FromBits(RANDOM_BITS);
  const want = Int32Array.from(RANDOM_BITS, (b, i) => wantBits(b, x[i]!));
  forEachIsa((isa) => {
    for (const threads of [1, 3]) withThreads(threads, () => castBoth(RANDOM_BITS, want, `${isa} ${threads}T random`));
  });
});

test('castToBf16: lengths around the vector widths and unaligned starts write exactly n', () => {
  const x32 = f32FromBits(RANDOM_BITS), x64 = f64FromF32Bits(RANDOM_BITS);
  const want = Int32Array.from(RANDOM_BITS, (b, i) => wantBits(b, x32[i]!));
  forEachIsa((isa) => {
    for (const n of [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 1000, 32771])
      for (const off of [0, 1, 3])
        for (const [x, dt] of [[x32, 'f32'], [x64, 'f64']] as const) {
          const y = new Uint16Array(off + n + 3).fill(0xabcd);
          native.castToBf16(y.subarray(off), x.subarray(off), n);
          for (let i = 0; i < off; i++) assert.equal(y[i], 0xabcd, `${isa} ${dt} n=${n} off=${off}: y[${i}] before the view written`);
          checkBits(y.subarray(off), RANDOM_BITS.subarray(off), want.subarray(off), n, `${isa} ${dt} n=${n} off=${off}`);
        }
  });
});

test('castFromBf16 is exact for all 65536 bf16 patterns, and castToBf16 takes each back (every ISA, f32, f64)', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  forEachIsa((isa) => {
    for (const threads of [1, 2])
      withThreads(threads, () => {
        for (const [ctor, dt] of [[Float32Array, 'f32'], [Float64Array, 'f64']] as const) {
          const n = 65536 - 5; // not a multiple of any vector width
          const y = new ctor(n + 2).fill(7);
          native.castFromBf16(y, all, n);
          const words = new Uint32Array(y.buffer);
          for (let h = 0; h < n; h++) {
            const v = y[h]!;
            if (isBf16NaN(h)) {
              const hi = dt === 'f32' ? words[h]! : words[2 * h + 1]!;
              assert.ok(Number.isNaN(v) && (hi >>> 31) === h >>> 15, `${isa} ${dt}: ${hex(h)} -> ${v} (${hex(hi, 8)})`);
              // fp32 widening keeps the pattern whole: the bf16 bits are its top half.
              if (dt === 'f32') assert.equal(hex(words[h]!, 8), hex(h * 65536, 8), `${isa} f32: NaN ${hex(h)} payload`);
            } else if (!Object.is(v, bf16ValueRef(h))) {
              assert.fail(`${isa} ${dt} ${threads}T: ${hex(h)} -> ${v}, expected ${bf16ValueRef(h)}`);
            }
          }
          assert.equal(y[n], 7, `${isa} ${dt}: y[n] written`);
          const back = new Uint16Array(n);
          native.castToBf16(back, y, n);
          for (let h = 0; h < n; h++) {
            const ok = isBf16NaN(h) ? isBf16NaN(back[h]!) && (back[h]! & 0x8040) === ((h & 0x8000) | 0x40) : back[h] === h;
            if (!ok) assert.fail(`${isa} ${dt} ${threads}T: round trip of ${hex(h)} gave ${hex(back[h]!)}`);
          }
        }
      });
  });
});

test('castToBf16 from Float64Array rounds the float64 value itself, not its fp32 rounding', () => {
  // 1 + 2^-8 + 2^-30 is above the tie between 1 and 1 + 2^-7, so it rounds up; through fp32 it
  // first becomes the tie 1 + 2^-8 and then rounds down to 1.
  const xs = [1 + 2 ** -8 + 2 ** -30, -(1 + 2 ** -8 + 2 ** -30), 1 + 3 * 2 ** -8 - 2 ** -30, 2 ** -134 + 2 ** -160];
  const want = xs.map(bf16BitsRef);
  assert.deepEqual(want.map((w) => hex(w)), ['0x3f81', '0xbf81', '0x3f81', '0x0001']);
  // and 20k float64 values at and around bf16 ties (+- a few float64 ulps, and +- 2^-30
  // relative), over normal and subnormal binades and past the largest finite value
  const r = rng(77);
  for (let i = 0; i < 20000; i++) {
    const e = Math.floor(r() * 270) - 140;
    const tie = (256 + 2 * Math.floor(r() * 128) + 1) * 2 ** (e - 9); // an odd multiple of half a bf16 ulp
    const off = [0, 2 ** -52, -(2 ** -52), 2 ** -30, -(2 ** -30), 3 * 2 ** -50][i % 6]!;
    xs.push((r() < 0.5 ? -1 : 1) * tie * (1 + off));
  }
  const all = xs.map(bf16BitsRef);
  forEachIsa((isa) => {
    const y = new Uint16Array(xs.length);
    native.castToBf16(y, Float64Array.from(xs), xs.length);
    for (let i = 0; i < xs.length; i++)
      if (y[i] !== all[i]) assert.fail(`${isa}: castToBf16(${xs[i]}) = ${hex(y[i]!)}, expected ${hex(all[i]!)}`);
  });
});

test('cast arguments are checked: y must be a Uint16Array of n elements', () => {
  assert.throws(() => native.castToBf16(new Int16Array(4) as unknown as Uint16Array, new Float32Array(4), 4), /\by\b.*Uint16Array/);
  assert.throws(() => native.castToBf16(new Uint16Array(3), new Float32Array(4), 4), /\by\b.*3.*4/);
  assert.throws(() => native.castFromBf16(new Float32Array(4), new Uint16Array(3), 4), /\bx\b.*3.*4/);
});

// ---- gemmBf16 --------------------------------------------------------------------------------

interface Case {
  M: number;
  N: number;
  K: number;
  pad?: number; // extra elements per row of A, B and C
}

// Around the 32x32 tiles (16x16 AMX tiles, 8-row vdpbf16ps groups; 12x32 / 6x16 / 6x8 fp32
// tiles); K across 3 K blocks (1100: 3 x 367 on the units, 3 x 367 in the fp32 GEMM) with whole
// 32x32 tiles (64x64: the AMX path that loads and stores C with tiles) and with edges; N across
// 2 and 3 column blocks of 1024 (1030, 2100); M across two 256-row blocks (300). The last three
// have M*N*K >= 3 * 2^22, so the units run them on 2 and 3 threads (rows split: 130x96, 300x70;
// columns split: 40x2100); the fp32 GEMM splits from 2^21.
const SHAPES: Case[] = [
  { M: 1, N: 1, K: 1 },
  { M: 1, N: 37, K: 1 },
  { M: 37, N: 1, K: 5 },
  { M: 16, N: 16, K: 16 },
  { M: 32, N: 32, K: 32 },
  { M: 33, N: 31, K: 64, pad: 1 },
  { M: 31, N: 33, K: 31, pad: 2 },
  { M: 17, N: 47, K: 65, pad: 3 },
  { M: 3, N: 100, K: 250, pad: 1 },
  { M: 100, N: 3, K: 250 },
  { M: 64, N: 64, K: 1100 },
  { M: 7, N: 1030, K: 500, pad: 4 },
  { M: 130, N: 96, K: 1100, pad: 3 },
  { M: 40, N: 2100, K: 160, pad: 1 },
  { M: 300, N: 70, K: 620, pad: 2 },
];

const ALPHA_BETA: [number, number][] = [[1, 0], [1, 1], [0.75, -0.5]];
const TRANS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];
const PAD_A = NaN; // in A's and B's row padding: a kernel that reads it poisons C
const PAD_C = 7.25; // in C's row padding: must stay

/** fp32 values (so Float32Array and Float64Array hold the same numbers) that are not bf16-exact. */
function randF32(n: number, seed: number, scale: number): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround((r() * 2 - 1) * scale);
  return out;
}

interface Problem {
  c: Case;
  opA: Float64Array; // (M, K) row-major, the logical op(A)
  opB: Float64Array; // (K, N)
  C0: Float64Array; // (M, N)
  S: Float64Array; // (M, N) = bf16(opA) bf16(opB) in float64, by the reference
  absS: Float64Array; // (M, N) = |bf16(opA)| |bf16(opB)|
}

function makeProblem(c: Case, seed: number): Problem {
  const s = Math.sqrt(3 / Math.sqrt(Math.max(1, c.K))); // entries of the product O(1)
  const opA = randF32(c.M * c.K, seed, s), opB = randF32(c.K * c.N, seed + 1, s), C0 = randF32(c.M * c.N, seed + 2, 1);
  const Ar = opA.map(roundBf16Ref), Br = opB.map(roundBf16Ref);
  const S = new Float64Array(c.M * c.N), absS = new Float64Array(c.M * c.N);
  gemmRef(false, false, c.M, c.N, c.K, 1, Ar, c.K, Br, c.N, 0, S, c.N);
  gemmRef(false, false, c.M, c.N, c.K, 1, Ar.map(Math.abs), c.K, Br.map(Math.abs), c.N, 0, absS, c.N);
  return { c, opA, opB, C0, S, absS };
}

/** X (rows, cols) stored as ta ? X^T : X with leading dimension (stored cols + pad), padding = fill. */
function store(X: Float64Array, rows: number, cols: number, trans: boolean, pad: number, fill: number): { data: Float64Array; ld: number } {
  const [sr, sc] = trans ? [cols, rows] : [rows, cols];
  const ld = sc + pad;
  const data = new Float64Array(Math.max(1, (sr - 1) * ld + sc)).fill(fill);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) data[trans ? j * ld + i : i * ld + j] = X[i * cols + j]!;
  return { data, ld };
}

interface Layout {
  A: Float64Array;
  lda: number;
  B: Float64Array;
  ldb: number;
  C: Float64Array; // C0 with padding PAD_C
  ldc: number;
}

function layout(p: Problem, ta: boolean, tb: boolean): Layout {
  const { M, N, K } = p.c;
  const pad = p.c.pad ?? 0;
  const a = store(p.opA, M, K, ta, pad, PAD_A), b = store(p.opB, K, N, tb, pad, PAD_A), c = store(p.C0, M, N, false, pad, PAD_C);
  return { A: a.data, lda: a.ld, B: b.data, ldb: b.ld, C: c.data, ldc: c.ld };
}

/**
 * got (M, N at ldc) against alpha S + beta C0 within the bound in the header (u: the unit
 * roundoff of the accumulation); C's padding must hold PAD_C.
 */
function checkGemm(got: ArrayLike<number>, p: Problem, ldc: number, alpha: number, beta: number, u: number, what: string,
  S: Float64Array = p.S): void {
  const { M, N, K } = p.c;
  const nb = Math.ceil(K / 256);
  const sumSlack = Math.min(K - 1, 4 * Math.sqrt(K)) + nb + 2;
  let worst = 0, wi = -1;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const e = i * N + j;
      const bc = beta === 0 ? 0 : beta * p.C0[e]!;
      const want = alpha * S[e]! + bc;
      const bound = u * (sumSlack * Math.abs(alpha) * p.absS[e]! + (nb + 2) * Math.abs(bc));
      const err = Math.abs(got[i * ldc + j]! - want);
      const r = Number.isNaN(err) ? Infinity : err / bound;
      if (r > worst) (worst = r), (wi = e);
    }
    for (let j = N; j < ldc && i < M - 1; j++)
      if (got[i * ldc + j] !== PAD_C) assert.fail(`${what}: C padding [${i}, ${j}] written: ${got[i * ldc + j]}`);
  }
  if (worst > 1) {
    const i = Math.floor(wi / N), j = wi % N;
    const bc = beta === 0 ? 0 : beta * p.C0[wi]!;
    assert.fail(`${what}: C[${i}, ${j}] = ${got[i * ldc + j]}, expected ${alpha * S[wi]! + bc} ` +
      `(|diff| ${Math.abs(got[i * ldc + j]! - alpha * S[wi]! - bc).toExponential(3)}, ${worst.toFixed(1)}x the bound)`);
  }
}

function runBf16(ctor: typeof Float32Array | typeof Float64Array, x: Layout, c: Case, ta: boolean, tb: boolean,
  alpha: number, beta: number): FloatArray {
  const C = new ctor(x.C);
  native.gemmBf16(ta, tb, c.M, c.N, c.K, alpha, new ctor(x.A), x.lda, new ctor(x.B), x.ldb, beta, C, x.ldc);
  return C;
}

const PROBLEMS = SHAPES.map((c, i) => makeProblem(c, 100 + 7 * i));
const LAYOUTS = PROBLEMS.map((p) => TRANS.map(([ta, tb]) => layout(p, ta, tb)));
const shapeName = (c: Case) => `M=${c.M} N=${c.N} K=${c.K} pad=${c.pad ?? 0}`;

test('gemmBf16 (Float32Array) matches the bf16-rounded reference: every unit, 1-3 threads, all transposes', () => {
  forEachBf16Unit((label) => {
    PROBLEMS.forEach((p, s) =>
      TRANS.forEach(([ta, tb], t) => {
        const x = LAYOUTS[s]![t]!;
        for (const [alpha, beta] of ALPHA_BETA) {
          let one: FloatArray | undefined;
          for (const threads of [1, 2, 3])
            withThreads(threads, () => {
              const got = runBf16(Float32Array, x, p.c, ta, tb, alpha, beta);
              const what = `${label} ${threads}T tA=${ta} tB=${tb} ${shapeName(p.c)} alpha=${alpha} beta=${beta}`;
              checkGemm(got, p, x.ldc, alpha, beta, U32, what);
              // Each C element is reduced by one thread in a fixed order: the same bits on any team.
              if (!one) one = got;
              else assert.ok(got.every((v, i) => Object.is(v, one![i])), `${what}: differs from 1 thread`);
            });
        }
      }),
    );
  });
});

test('gemmBf16 (Float64Array) is the float64 reference of the bf16 product on every ISA', () => {
  forEachIsa((isa) => {
    PROBLEMS.forEach((p, s) =>
      TRANS.forEach(([ta, tb], t) => {
        const x = LAYOUTS[s]![t]!;
        for (const [alpha, beta] of ALPHA_BETA)
          for (const threads of [1, 3])
            withThreads(threads, () => {
              const got = runBf16(Float64Array, x, p.c, ta, tb, alpha, beta);
              checkGemm(got, p, x.ldc, alpha, beta, U64, `${isa} f64 ${threads}T tA=${ta} tB=${tb} ${shapeName(p.c)} alpha=${alpha} beta=${beta}`);
            });
      }),
    );
  });
});

test('gemmBf16 with beta = 0 ignores NaN in C; K = 0 gives beta * C; alpha = 0 reads neither A nor B', () => {
  const p = makeProblem({ M: 29, N: 35, K: 70, pad: 2 }, 11);
  const { M, N } = p.c;
  const check = (label: string, ctor: typeof Float32Array | typeof Float64Array, u: number) => {
    for (const [ta, tb] of TRANS) {
      const x = layout(p, ta, tb);
      const nanC = Float64Array.from(x.C, (v) => (v === PAD_C ? v : NaN));
      for (const threads of [1, 2])
        withThreads(threads, () => {
          const what = `${label} ${threads}T tA=${ta} tB=${tb}`;
          const got = runBf16(ctor, { ...x, C: nanC }, p.c, ta, tb, 1.25, 0);
          checkGemm(got, p, x.ldc, 1.25, 0, u, `${what} beta=0 over NaN`);

          // K = 0 and alpha = 0 (A and B all NaN): C = beta * C exactly (no sum; one product).
          const nanAB = { ...x, A: new Float64Array(x.A.length).fill(NaN), B: new Float64Array(x.B.length).fill(NaN) };
          for (const [K, alpha] of [[0, 2], [p.c.K, 0]] as const)
            for (const beta of [0, 1, -0.5]) {
              const C = new ctor(beta === 0 ? nanC : x.C);
              native.gemmBf16(ta, tb, M, N, K, alpha, new ctor(nanAB.A), x.lda, new ctor(nanAB.B), x.ldb, beta, C, x.ldc);
              for (let i = 0; i < M; i++)
                for (let j = 0; j < N; j++) {
                  const c0 = p.C0[i * N + j]!;
                  const want = beta === 0 ? 0 : ctor === Float32Array ? Math.fround(beta * c0) : beta * c0;
                  assert.equal(C[i * x.ldc + j], want, `${what} K=${K} alpha=${alpha} beta=${beta} C[${i}, ${j}]`);
                }
              for (let i = 0; i < M - 1; i++) assert.equal(C[i * x.ldc + N], PAD_C, `${what}: padding`);
            }
        });
    }
  };
  forEachBf16Unit((label) => check(label, Float32Array, U32));
  forEachIsa((isa) => check(`${isa} f64`, Float64Array, U64));
});

test('gemmBf16 rounds its operands to nearest even: exact products, and the tolerance catches truncation', () => {
  // K = 1: C = bf16(a) bf16(b) exactly (16 significant bits fit fp32); K = 2: the exact sum of two
  // such products rounded once to fp32. A quarter of the operands are exact ties (dropped bits
  // 0x8000), where round-half-away and truncation differ from ties-to-even.
  const M = 37, N = 45;
  const ties = (n: number, seed: number) => {
    const r = rng(seed);
    const bits = Array.from({ length: n }, () => {
      const b = (0x3f000000 + Math.floor(r() * 0x01000000)) | (r() < 0.5 ? 0x80000000 : 0); // |x| in [0.5, 2)
      return (r() < 0.25 ? (b & 0xffff0000) | 0x8000 : b) >>> 0;
    });
    return Float64Array.from(f32FromBits(bits));
  };
  forEachBf16Unit((label) => {
    for (const K of [1, 2]) {
      const a = ties(M * K, 5 + K), b = ties(K * N, 9 + K);
      const C = new Float32Array(M * N);
      native.gemmBf16(false, false, M, N, K, 1, new Float32Array(a), K, new Float32Array(b), N, 0, C, N);
      const plain = new Float32Array(M * N);
      native.gemm(false, false, M, N, K, 1, new Float32Array(a), K, new Float32Array(b), N, 0, plain, N);
      let maxRel = 0;
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let exact = 0, abs = 0;
          for (let k = 0; k < K; k++) {
            exact += roundBf16Ref(a[i * K + k]!) * roundBf16Ref(b[k * N + j]!); // exact in float64
            abs += Math.abs(a[i * K + k]! * b[k * N + j]!);
          }
          assert.equal(C[i * N + j], Math.fround(exact), `${label} K=${K} C[${i}, ${j}]`);
          maxRel = Math.max(maxRel, Math.abs(C[i * N + j]! - plain[i * N + j]!) / abs);
        }
      // The fp32 GEMM does not round its operands: the two differ by up to ~2 * 2^-9 relative.
      assert.ok(maxRel > 2 ** -10 && maxRel < 2 ** -6, `${label} K=${K}: max relative gap to the fp32 gemm ${maxRel}`);
    }

    // K = 300 with the tolerance of the main test: gemmBf16 passes; the fp32 gemm (no rounding) and
    // the reference with truncated operands, and one with a product left out, all fail.
    const p = makeProblem({ M: 23, N: 41, K: 300 }, 77);
    const { M: m, N: n, K } = p.c;
    const x = layout(p, false, false);
    checkGemm(runBf16(Float32Array, x, p.c, false, false, 1, 0), p, x.ldc, 1, 0, U32, `${label} K=300`);
    const plain = new Float32Array(x.C);
    native.gemm(false, false, m, n, K, 1, new Float32Array(x.A), x.lda, new Float32Array(x.B), x.ldb, 0, plain, x.ldc);
    assert.throws(() => checkGemm(plain, p, x.ldc, 1, 0, U32, 'fp32 gemm'), /bound/, `${label}: the fp32 gemm passed`);
  });
  const p = makeProblem({ M: 23, N: 41, K: 300 }, 77);
  const { M: m, N: n, K } = p.c;
  const trunc = (v: number) => { // toward zero, to 8 significant bits
    const f = new Float32Array([v]);
    const w = new Uint32Array(f.buffer);
    w[0] = w[0]! & 0xffff0000;
    return f[0]!;
  };
  const T = new Float64Array(m * n);
  gemmRef(false, false, m, n, K, 1, p.opA.map(trunc), K, p.opB.map(trunc), n, 0, T, n);
  assert.throws(() => checkGemm(T, p, n, 1, 0, U32, 'truncated operands'), /bound/, 'truncation passed');
  const skip = Float64Array.from(p.S, (v, e) => v - roundBf16Ref(p.opA[Math.floor(e / n) * K + 150]!) * roundBf16Ref(p.opB[150 * n + (e % n)]!));
  assert.throws(() => checkGemm(skip, p, n, 1, 0, U32, 'a product left out'), /bound/, 'a skipped product passed');
});

test('bf16 units: AMX first where usable, then AVX-512 BF16 on AMD, fp32 (always), AVX-512 BF16 last elsewhere; unknown ones refused', () => {
  const units = native.bf16Units();
  const f = native.cpuFeatures();
  const dp = f.avx512_bf16 && f.avx512f && f.avx512bw && f.avx512vl;
  const expected = [
    ...(units.includes('amx') ? ['amx'] : []),
    ...(dp && f.amd ? ['avx512bf16'] : []),
    'fp32',
    ...(dp && !f.amd ? ['avx512bf16'] : []),
  ];
  assert.deepEqual(units, expected);
  // Without LITESPARK_BF16_UNIT the first is the one in use.
  if (!process.env.LITESPARK_BF16_UNIT) assert.equal(native.bf16Unit(), units[0]);
  assert.ok(units.includes(native.bf16Unit()));
  assert.equal(native.amxUnavailableReason() === '', units.includes('amx'), `amx ${units.includes('amx')}, reason '${native.amxUnavailableReason()}'`);
  assert.equal(units.includes('avx512bf16'), dp);
  if (!f.amx_tile) assert.ok(!units.includes('amx'));
  const was = native.bf16Unit();
  assert.throws(() => native.setBf16Unit('tpu'), /'tpu'.*not available/);
  assert.equal(native.bf16Unit(), was, 'a refused unit changes nothing');
  assert.throws(() => native.peakBf16('tpu' as Bf16Unit, 1, 0.01), /'tpu'/);
});

test('LITESPARK_BF16_UNIT picks a lower unit at load; an unusable one keeps the best', () => {
  const native_js = fileURLToPath(new URL('../../src/kernels/native.js', import.meta.url));
  const probe = (unit: string) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      `const { native } = await import(${JSON.stringify(native_js)}); process.stdout.write(native.bf16Unit());`],
    { encoding: 'utf8', env: { ...process.env, LITESPARK_BF16_UNIT: unit } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const units = native.bf16Units();
  for (const u of units) assert.equal(probe(u), u);
  assert.equal(probe('no-such-unit'), units[0]);
});

// ---- linearCrossEntropy(..., bf16 = true) ----------------------------------------------------
//
// Two contracts. The fp32 unit (and the float64 path) run kernels/linear_cross_entropy.cc with its
// three GEMMs on the bf16 unit: x, W and the dlogits rounded to bf16 as operands, logits in fp32
// (float64). The matrix units run bf16/head_bf16.cc: the same, except that the logits GEMM writes
// its result rounded to bf16 and the softmax reads those (as torch.autocast does).

interface LceData {
  N: number;
  C: number;
  V: number;
  x: Float64Array; // (N, C), fp32 values
  W: Float64Array; // (V, C)
  dW0: Float64Array; // (V, C), what dW accumulates onto
  targets: Int32Array; // (N), some -1
}

const LCE_DLOSS = 0.75;

/**
 * (N, C, V) = (1100, 40, 97): three chunks of the fp32 kernel's 384 rows and two of the bf16
 * head's 1024 (dW accumulates across them). `exact`: x = (i/8)(1 + e), W = (j/16)(1 + e) with small integers
 * i, j and |e| < 2^-10, which round to i/8 and j/16 in bf16, so every logit is a multiple of
 * 2^-7 below 2^5: exact in fp32 whatever the summation order, and its rounding to bf16 (ties
 * included) is known; otherwise plain random fp32 values.
 */
function lceData(seed: number, exact: boolean): LceData {
  const N = 1100, C = 40, V = 97;
  const r = rng(seed);
  const val = (den: number, scale: number) => exact
    ? Math.fround((Math.floor(r() * 17) - 8) / den * (1 + (r() * 2 - 1) * 2 ** -10))
    : Math.fround((r() * 2 - 1) * scale);
  const x = Float64Array.from({ length: N * C }, () => val(8, 1));
  const W = Float64Array.from({ length: V * C }, () => val(16, 2 / Math.sqrt(C)));
  const targets = randInts(N, V, seed + 1);
  for (let n = 3; n < N; n += 7) targets[n] = -1;
  return { N, C, V, x, W, dW0: randF32(V * C, seed + 2, 0.5), targets };
}

interface LceResult {
  loss: number;
  lse: ArrayLike<number>;
  dx: ArrayLike<number>;
  dW: ArrayLike<number>;
}

function runLce(d: LceData, ctor: typeof Float32Array | typeof Float64Array, bf16: boolean): LceResult {
  const { N, C, V } = d;
  const dx = new ctor(N * C).fill(NaN), dW = new ctor(d.dW0), lse = new ctor(N);
  const loss = native.linearCrossEntropy(dx, dW, lse, new ctor(d.x), new ctor(d.W), d.targets, N, C, V, LCE_DLOSS, bf16);
  return { loss, lse, dx, dW };
}

/**
 * The composition in float64 with every GEMM on bf16-rounded operands (and, when roundLogits, the
 * logits rounded to bf16), and a checker of a kernel's result computed in precision u.
 */
function lceReference(d: LceData, roundLogits: boolean) {
  const { N, C, V } = d;
  const xr = d.x.map(roundBf16Ref), Wr = d.W.map(roundBf16Ref);
  const absX = xr.map(Math.abs), absW = Wr.map(Math.abs);
  const exactLogits = new Float64Array(N * V), absLogits = new Float64Array(N * V);
  gemmRef(false, true, N, V, C, 1, xr, C, Wr, C, 0, exactLogits, V);
  gemmRef(false, true, N, V, C, 1, absX, C, absW, C, 0, absLogits, V);
  const logits = roundLogits ? exactLogits.map(roundBf16Ref) : exactLogits;
  const lse = new Float64Array(N);
  const loss = crossEntropyForwardRef(lse, logits, d.targets, N, V);
  const dlogits = new Float64Array(N * V);
  crossEntropyBackwardRef(dlogits, logits, lse, d.targets, N, V, LCE_DLOSS);
  const dlr = dlogits.map(roundBf16Ref);
  const back = (dl: Float64Array) => {
    const dx = new Float64Array(N * C), dW = Float64Array.from(d.dW0);
    gemmRef(false, false, N, C, V, 1, dl, V, Wr, C, 0, dx, C);
    gemmRef(true, false, V, C, N, 1, dl, V, xr, C, 1, dW, C);
    return { dx, dW };
  };
  const want = { loss, lse, ...back(dlr) };
  const absDl = dlr.map(Math.abs);
  const absDx = new Float64Array(N * C), absDW = Float64Array.from(d.dW0, Math.abs);
  gemmRef(false, false, N, C, V, 1, absDl, V, absW, C, 0, absDx, C);
  gemmRef(true, false, V, C, N, 1, absDl, V, absX, C, 1, absDW, C);

  // Bound on the logits' error in precision u: 4 u sqrt(C) |x||W| + u |z| (0 when rounded to
  // bf16: then they are exact, see lceData), and the largest per row.
  const dzRow = (u: number) => Float64Array.from({ length: N }, (_, n) => {
    if (roundLogits) return 0;
    let m = 0;
    for (let v = 0; v < V; v++) m = Math.max(m, u * (4 * Math.sqrt(C) + 1) * absLogits[n * V + v]!);
    return m;
  });

  // A dlogit p dloss computed in precision u is off by a relative |dz - dlse| + a few u (exp,
  // scaling): 2 dz + 16 u (1 + |lse|). It can round to the other bf16 neighbour only when it lies
  // that close to a tie (`extra`: more room, for the float64 path's rounding through fp32); such
  // an element may move by one bf16 ulp. flip: that ulp near a tie, else 0; the gradient bounds
  // add flip * |the other operand|.
  const flipBounds = (u: number, extra: number) => {
    const dz = dzRow(u);
    const flip = dlogits.map((v, i) => {
      const a = Math.abs(v);
      if (a === 0) return 0;
      const n = Math.floor(i / V);
      const window = 2 * dz[n]! + 16 * u * (1 + Math.abs(lse[n]!)) + extra;
      const ulp = 2 ** (Math.max(exponentOf(a), -126) - 7);
      const frac = (a / ulp) % 1;
      return Math.abs(frac - 0.5) * ulp <= window * a ? ulp : 0;
    });
    const fx = new Float64Array(N * C), fW = new Float64Array(V * C);
    gemmRef(false, false, N, C, V, 1, flip, V, absW, C, 0, fx, C);
    gemmRef(true, false, V, C, N, 1, flip, V, absX, C, 0, fW, C);
    return { fx, fW };
  };

  /** got against want: lse, loss, dx, dW within the bounds of precision u. */
  const check = (got: LceResult, u: number, extra: number, what: string) => {
    // lse and each loss term inherit the logits' error, plus the exp / sum / log of the softmax
    // in precision u: 16 u (1 + |lse|) covers V = 97 terms.
    const dzs = dzRow(u);
    let lossBound = 0;
    for (let n = 0; n < N; n++) {
      const dz = dzs[n]!;
      const b = dz + 16 * u * (1 + Math.abs(lse[n]!));
      const e = Math.abs(got.lse[n]! - lse[n]!);
      if (!(e <= b)) assert.fail(`${what}: lse[${n}] = ${got.lse[n]}, expected ${lse[n]} (|diff| ${e.toExponential(3)} > ${b.toExponential(3)})`);
      if (d.targets[n]! >= 0) lossBound += b + dz;
    }
    const le = Math.abs(got.loss - loss);
    if (!(le <= lossBound)) assert.fail(`${what}: loss = ${got.loss}, expected ${loss} (|diff| ${le.toExponential(3)} > ${lossBound.toExponential(3)})`);
    // dx: one GEMM over V (beta 0); dW: over N in chunks, accumulated onto dW0 in precision u.
    const { fx, fW } = flipBounds(u, extra);
    const grad = (g: ArrayLike<number>, w: Float64Array, abs: Float64Array, f: Float64Array, K: number, name: string) => {
      for (let i = 0; i < w.length; i++) {
        const b = u * (4 * Math.sqrt(K) + 4) * abs[i]! + f[i]!;
        const e = Math.abs(g[i]! - w[i]!);
        if (!(e <= b)) assert.fail(`${what}: ${name}[${i}] = ${g[i]}, expected ${w[i]} (|diff| ${e.toExponential(3)} > ${b.toExponential(3)})`);
      }
    };
    grad(got.dx, want.dx, absDx, fx, V, 'dx');
    grad(got.dW, want.dW, absDW, fW, N, 'dW');
  };
  return { want, check, unroundedBackward: () => back(dlogits) };
}

// The float64 path rounds a dlogit through fp32 (convert.h): that can round the other way only
// within 2^-24 (relative) of a tie.
const EXTRA_F64 = 2 ** -23;

test('linearCrossEntropy bf16 = true, fp32 unit and float64 path: fp32 logits of bf16 operands, bf16 dlogits', () => {
  for (const exact of [false, true]) {
    const d = lceData(exact ? 71 : 61, exact);
    const ref = lceReference(d, false);
    forEachIsa((isa) => ref.check(runLce(d, Float64Array, true), U64, EXTRA_F64, `${isa} f64 exact=${exact}`));
    const was = native.bf16Unit();
    try {
      native.setBf16Unit('fp32');
      forEachIsa((isa) => {
        for (const threads of [1, 2])
          withThreads(threads, () => ref.check(runLce(d, Float32Array, true), U32, 0, `fp32 unit on ${isa} ${threads}T exact=${exact}`));
      });
    } finally {
      native.setBf16Unit(was);
    }
    if (exact) continue;
    // The bounds can fail: the fp32 kernel (bf16 = false) misses the rounded logits; the same
    // composition with dlogits not rounded (a backward GEMM off the bf16 unit) misses dx and dW.
    assert.throws(() => ref.check(runLce(d, Float32Array, false), U32, 0, 'bf16 = false'), /lse\[/);
    const raw = ref.unroundedBackward();
    assert.throws(() => ref.check({ ...ref.want, dx: raw.dx }, U32, 0, 'dlogits not rounded'), /dx\[/);
    assert.throws(() => ref.check({ ...ref.want, dW: raw.dW }, U32, 0, 'dlogits not rounded'), /dW\[/);
  }
});

test('linearCrossEntropy bf16 = true on the matrix units: logits rounded to bf16, then as the fp32 unit', () => {
  const units = native.bf16Units().filter((u) => u !== 'fp32');
  if (units.length === 0) return;
  const d = lceData(81, true);
  const ref = lceReference(d, true);
  const was = native.bf16Unit();
  try {
    for (const unit of units) {
      native.setBf16Unit(unit);
      for (const threads of [1, 2])
        withThreads(threads, () => ref.check(runLce(d, Float32Array, true), U32, 0, `${unit} ${threads}T`));
    }
    // The bound sees whether the logits were rounded: the fp32 unit's kernel (fp32 logits) fails it.
    native.setBf16Unit('fp32');
    assert.throws(() => ref.check(runLce(d, Float32Array, true), U32, 0, 'fp32 logits'), /lse\[/);
  } finally {
    native.setBf16Unit(was);
  }
});
