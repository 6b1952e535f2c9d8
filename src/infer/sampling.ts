// Choosing the next token from a row of logits: greedy, or a draw at a temperature from the
// top-k and then top-p (nucleus) filtered distribution, with a seeded RNG. One Sampler per
// vocabulary size holds every scratch buffer, so drawing a token allocates nothing.
//
// Order of the filters (as Hugging Face `generate` applies them): logits / temperature ->
// keep the k largest -> softmax over those -> keep the smallest prefix, highest probability
// first, whose mass is >= p -> renormalize -> draw. Ties in probability go to the lower id.

export interface SamplingOptions {
  /** 0 = greedy (argmax; ties to the lower id). */
  temperature: number;
  /** Keep the k most likely tokens; 0 (or >= vocabulary) keeps all. */
  topK: number;
  /** Nucleus: keep the smallest set of most likely tokens with mass >= p; 1 keeps all. */
  topP: number;
  seed: number;
}

/** Mulberry32: a small seeded generator of uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Index of the largest of logits[0..V) (the first one on ties). */
export function argmax(logits: ArrayLike<number>, V: number): number {
  let best = 0;
  for (let j = 1; j < V; j++) if (logits[j]! > logits[best]!) best = j;
  return best;
}

const NONE: ArrayLike<number> = [];

export class Sampler {
  /** After filter(): the kept ids, most likely first, and their renormalized probabilities. */
  readonly ids: Int32Array;
  readonly probs: Float64Array;
  private readonly rand: () => number;
  private readonly byLogit: (a: number, b: number) => number;
  private logits: ArrayLike<number> = NONE;

  constructor(readonly V: number, readonly opts: SamplingOptions) {
    if (!(opts.temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${opts.temperature}`);
    if (!(Number.isInteger(opts.topK) && opts.topK >= 0)) throw new RangeError(`top-k must be an integer >= 0, got ${opts.topK}`);
    if (!(opts.topP > 0 && opts.topP <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${opts.topP}`);
    this.ids = new Int32Array(V);
    this.probs = new Float64Array(V);
    this.rand = mulberry32(opts.seed);
    this.byLogit = (a, b) => this.logits[b]! - this.logits[a]! || a - b;
  }

  /** The next id from logits[0..V): argmax at temperature 0, else a seeded draw from filter()'s set. */
  next(logits: ArrayLike<number>): number {
    if (this.opts.temperature <= 0) return argmax(logits, this.V);
    const n = this.filter(logits);
    let r = this.rand();
    for (let i = 0; i < n; i++) {
      r -= this.probs[i]!;
      if (r < 0) return this.ids[i]!;
    }
    return this.ids[n - 1]!; // r left over by rounding
  }

  /**
   * Applies temperature, top-k and top-p to logits[0..V): the kept ids go to this.ids[0..n)
   * (most likely first) with their renormalized probabilities in this.probs[0..n). Returns n.
   * Temperature 0 counts as 1 here (it only changes how next() picks).
   */
  filter(logits: ArrayLike<number>): number {
    const V = this.V;
    const k = this.opts.topK > 0 ? Math.min(this.opts.topK, V) : V;
    const ids = this.ids;
    this.logits = logits;
    if (k < V) {
      // the k largest by insertion into a sorted prefix (k is small in practice)
      let n = 0;
      for (let j = 0; j < V; j++) {
        const x = logits[j]!;
        if (n === k && !(x > logits[ids[k - 1]!]!)) continue;
        let i = n < k ? n++ : k - 1;
        while (i > 0 && logits[ids[i - 1]!]! < x) {
          ids[i] = ids[i - 1]!;
          i--;
        }
        ids[i] = j;
      }
    } else {
      for (let j = 0; j < V; j++) ids[j] = j;
      ids.sort(this.byLogit);
    }
    const t = this.opts.temperature > 0 ? this.opts.temperature : 1;
    const mx = logits[ids[0]!]!;
    let sum = 0;
    for (let i = 0; i < k; i++) sum += this.probs[i] = Math.exp((logits[ids[i]!]! - mx) / t);
    let n = k;
    if (this.opts.topP < 1) {
      let mass = 0;
      for (n = 0; n < k; ) {
        mass += this.probs[n++]! / sum;
        if (mass >= this.opts.topP) break;
      }
      sum = 0;
      for (let i = 0; i < n; i++) sum += this.probs[i]!;
    }
    for (let i = 0; i < n; i++) this.probs[i] = this.probs[i]! / sum;
    this.logits = NONE;
    return n;
  }
}
