// Drives a kernel test over every ISA path this CPU has and both thread counts, and checks
// backward kernels against central finite differences in float64.
import assert from 'node:assert/strict';
import { native } from '../../src/kernels/native.js';

/** Runs fn once per available ISA (avx512, avx2, scalar, ...) and restores the original. */
export function forEachIsa(fn: (isa: string) => void): void {
  const original = native.isa();
  try {
    for (const isa of native.availableIsas()) {
      native.setIsa(isa);
      fn(isa);
    }
  } finally {
    native.setIsa(original);
  }
}

/** The bf16 matrix units this CPU has (AMX, AVX-512 BF16): the ones with kernels of their own. */
export const MATRIX_UNITS = native.bf16Units().filter((u): u is 'amx' | 'avx512bf16' => u !== 'fp32');

/** Runs fn with `unit` as the bf16 unit and restores the previous one. */
export function withUnit(unit: string, fn: () => void): void {
  const before = native.bf16Unit();
  native.setBf16Unit(unit);
  try {
    fn();
  } finally {
    native.setBf16Unit(before);
  }
}

export function withThreads(n: number, fn: () => void): void {
  const before = native.getThreads();
  native.setThreads(n);
  try {
    fn();
  } finally {
    native.setThreads(before);
  }
}

/**
 * Central differences of `loss` with respect to every element of each input (or `maxPerInput`
 * evenly spaced ones), compared with the analytic gradients `grads[i]`.
 * |analytic - numeric| <= atol + rtol * |numeric| with float64 defaults.
 */
export function fdCheck(
  inputs: Float64Array[],
  grads: ArrayLike<number>[],
  loss: () => number,
  opts: { h?: number; atol?: number; rtol?: number; maxPerInput?: number; names?: string[] } = {},
): void {
  const h = opts.h ?? 1e-5;
  const atol = opts.atol ?? 1e-8;
  const rtol = opts.rtol ?? 1e-6;
  inputs.forEach((x, k) => {
    const g = grads[k]!;
    const count = Math.min(x.length, opts.maxPerInput ?? x.length);
    for (let s = 0; s < count; s++) {
      const i = count === x.length ? s : Math.floor((s * x.length) / count);
      const x0 = x[i]!;
      x[i] = x0 + h;
      const lp = loss();
      x[i] = x0 - h;
      const lm = loss();
      x[i] = x0;
      const num = (lp - lm) / (2 * h);
      const err = Math.abs(g[i]! - num);
      if (!(err <= atol + rtol * Math.abs(num))) {
        assert.fail(`${opts.names?.[k] ?? `input ${k}`}[${i}]: analytic ${g[i]} vs numeric ${num} (|diff| ${err.toExponential(3)})`);
      }
    }
  });
}

/** sum(w * y): a scalar loss whose gradient w.r.t. y is w, to drive backward kernels. */
export function weightedSum(y: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i]! * w[i]!;
  return s;
}
