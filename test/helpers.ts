// Shared test helpers: seeded random data, tolerances written once per dtype, and closeness
// assertions that name the first element that is off.
import assert from 'node:assert/strict';

/** Mulberry32: a small seeded PRNG so every test input is reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [-scale, scale). */
export function randArray<A extends Float32Array | Float64Array>(
  ctor: { new (n: number): A },
  n: number,
  seed: number,
  scale = 1,
): A {
  const r = rng(seed);
  const out = new ctor(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

export function randInts(n: number, hi: number, seed: number): Int32Array {
  const r = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * hi);
  return out;
}

/** Machine epsilon of the dtype a kernel computes in. */
export const EPS = { f32: 2 ** -23, f64: 2 ** -52 } as const;

/**
 * The tolerance of STYLE.md: |a - r| <= atol + |r| * eps * sqrt(K) * slack, where K is the
 * reduction length that produced the value. `slack` absorbs the constant of the error bound.
 */
export function tol(dtype: keyof typeof EPS, K: number, slack = 8): { atol: number; rtol: number } {
  const e = EPS[dtype] * Math.sqrt(Math.max(1, K)) * slack;
  return { atol: e, rtol: e };
}

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  t: { atol: number; rtol: number },
  what = 'value',
): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const r = expected[i]!;
    const bound = t.atol + Math.abs(r) * t.rtol;
    const err = Math.abs(a - r);
    if (!(err <= bound)) {
      const excess = Number.isNaN(err) ? Infinity : err / bound;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (worst >= 0) {
    const a = actual[worst]!;
    const r = expected[worst]!;
    assert.fail(
      `${what}[${worst}] = ${a}, expected ${r} (|diff| ${Math.abs(a - r).toExponential(3)} > ` +
        `${(t.atol + Math.abs(r) * t.rtol).toExponential(3)}; worst of ${expected.length})`,
    );
  }
}

/** Largest absolute value, for scale-aware tolerances. */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}
