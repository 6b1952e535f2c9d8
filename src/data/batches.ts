// Batches of fixed-length token windows for training and evaluation.
// Shapes: inputs, targets: (B, T) row-major as flat Int32Array of B*T; targets[b, t] is the
// token after inputs[b, t] (inputs shifted by one), so a window needs T + 1 tokens.
import { DataError } from './errors.js';

/** Splits off the last `valFraction` of the tokens (floor) as validation; views, no copy. */
export function splitTokens(
  tokens: Int32Array,
  valFraction: number,
): { train: Int32Array; val: Int32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new RangeError(`valFraction must be in [0, 1), got ${valFraction}`);
  }
  const nVal = Math.floor(tokens.length * valFraction);
  const cut = tokens.length - nVal;
  return { train: tokens.subarray(0, cut), val: tokens.subarray(cut) };
}

/** Saved position of a BatchSampler (plain JSON). */
export interface BatchSamplerState {
  kind: 'random-windows-v1';
  seed: number;
  /** Batches drawn so far. */
  step: number;
  /** xoshiro128** state, four uint32. */
  rng: [number, number, number, number];
  tokens: number;
  batch: number;
  seqLen: number;
}

/**
 * Random windows: each row starts at a uniform position in [0, n - T - 1], drawn from a seeded
 * xoshiro128** stream, so the sequence of batches is a function of (tokens, B, T, seed) alone.
 */
export class BatchSampler {
  private readonly s = new Uint32Array(4);
  private step = 0;
  private readonly span: number;

  constructor(
    private readonly tokens: Int32Array,
    readonly batch: number,
    readonly seqLen: number,
    readonly seed: number,
  ) {
    checkShape(tokens, batch, seqLen);
    if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    this.span = tokens.length - seqLen; // number of valid start positions
    // splitmix32 expands the seed into a nonzero xoshiro state.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** Fills inputs and targets, each (batch * seqLen), with the next batch. */
  next(inputs: Int32Array, targets: Int32Array): void {
    const B = this.batch;
    const T = this.seqLen;
    if (inputs.length !== B * T || targets.length !== B * T) {
      throw new RangeError(
        `inputs and targets must hold batch*seqLen = ${B * T} tokens, got ${inputs.length} and ${targets.length}`,
      );
    }
    const tok = this.tokens;
    for (let b = 0; b < B; b++) {
      const start = this.uniform(this.span);
      const o = b * T;
      for (let t = 0; t < T; t++) {
        inputs[o + t] = tok[start + t];
        targets[o + t] = tok[start + t + 1];
      }
    }
    this.step++;
  }

  state(): BatchSamplerState {
    return {
      kind: 'random-windows-v1',
      seed: this.seed,
      step: this.step,
      rng: [this.s[0], this.s[1], this.s[2], this.s[3]],
      tokens: this.tokens.length,
      batch: this.batch,
      seqLen: this.seqLen,
    };
  }

  /** Continues from a saved state; the data and shape must be those it was saved with. */
  restore(state: BatchSamplerState): void {
    if (
      state?.kind !== 'random-windows-v1' ||
      !Array.isArray(state.rng) ||
      state.rng.length !== 4 ||
      !Number.isInteger(state.step)
    ) {
      throw new Error('not a BatchSampler state (kind random-windows-v1, a step and four rng words)');
    }
    const mismatch = (['tokens', 'batch', 'seqLen'] as const).filter((k) =>
      k === 'tokens' ? state.tokens !== this.tokens.length : state[k] !== this[k],
    );
    if (mismatch.length > 0) {
      throw new Error(
        `BatchSampler state was saved for tokens=${state.tokens} batch=${state.batch} seqLen=${state.seqLen}, ` +
          `this sampler has tokens=${this.tokens.length} batch=${this.batch} seqLen=${this.seqLen}`,
      );
    }
    for (let i = 0; i < 4; i++) this.s[i] = state.rng[i] >>> 0;
    this.step = state.step;
  }

  /** xoshiro128**: next uint32. */
  private nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Integer in [0, n), from 53 random bits (bias < n / 2^53). */
  private uniform(n: number): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return Math.floor(((hi * 67108864 + lo) / 9007199254740992) * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * `count` batches of windows spread evenly over the whole array (first window at 0, last one
 * ending at the last token), the same every call: for evaluation.
 */
export function fixedBatches(
  tokens: Int32Array,
  batch: number,
  seqLen: number,
  count: number,
): Array<{ inputs: Int32Array; targets: Int32Array }> {
  checkShape(tokens, batch, seqLen);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
  const windows = batch * count;
  const lastStart = tokens.length - seqLen - 1;
  const out: Array<{ inputs: Int32Array; targets: Int32Array }> = [];
  for (let c = 0; c < count; c++) {
    const inputs = new Int32Array(batch * seqLen);
    const targets = new Int32Array(batch * seqLen);
    for (let b = 0; b < batch; b++) {
      const w = c * batch + b;
      const start = windows === 1 ? 0 : Math.floor((w * lastStart) / (windows - 1));
      inputs.set(tokens.subarray(start, start + seqLen), b * seqLen);
      targets.set(tokens.subarray(start + 1, start + seqLen + 1), b * seqLen);
    }
    out.push({ inputs, targets });
  }
  return out;
}

function checkShape(tokens: Int32Array, batch: number, seqLen: number): void {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new RangeError(`seqLen must be a positive integer, got ${seqLen}`);
  if (tokens.length < seqLen + 1) {
    throw new DataError(
      `too few tokens for one window of seqLen ${seqLen}: need at least ${seqLen + 1} tokens, have ${tokens.length}`,
    );
  }
}
