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

/**
 * k up to this: the k largest by insertion into a sorted list (one compare per logit); larger k,
 * and top-p alone: a binary heap over all ids (built in O(V)), popped until the set is complete.
 */
const INSERTION_MAX_K = 64;

export class Sampler {
  /** After filter(): the kept ids, most likely first, and their renormalized probabilities. */
  readonly ids: Int32Array;
  readonly probs: Float64Array;
  private readonly heap: Int32Array;
  private readonly rand: () => number;
  private logits: ArrayLike<number> = NONE;

  constructor(readonly V: number, readonly opts: SamplingOptions) {
    if (!(opts.temperature >= 0)) throw new RangeError(`temperature must be >= 0, got ${opts.temperature}`);
    if (!(Number.isInteger(opts.topK) && opts.topK >= 0)) throw new RangeError(`top-k must be an integer >= 0, got ${opts.topK}`);
    if (!(opts.topP > 0 && opts.topP <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${opts.topP}`);
    this.ids = new Int32Array(V);
    this.probs = new Float64Array(V);
    this.heap = new Int32Array(V);
    this.rand = mulberry32(opts.seed);
  }

  /**
   * The next id from logits[0..V): argmax at temperature 0, else a seeded draw from filter()'s
   * set (most likely first). With neither top-k nor top-p the draw runs over the ids in order
   * instead (the same distribution, no sort).
   */
  next(logits: ArrayLike<number>): number {
    const V = this.V, t = this.opts.temperature;
    if (t <= 0) return argmax(logits, V);
    if ((this.opts.topK === 0 || this.opts.topK >= V) && this.opts.topP === 1) {
      const mx = logits[argmax(logits, V)]!;
      let sum = 0;
      for (let j = 0; j < V; j++) sum += this.probs[j] = Math.exp((logits[j]! - mx) / t);
      let r = this.rand() * sum;
      for (let j = 0; j < V; j++) {
        r -= this.probs[j]!;
        if (r < 0) return j;
      }
      return argmax(logits, V); // r left over by rounding
    }
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
   * (most likely first, ties to the lower id) with their renormalized probabilities in
   * this.probs[0..n). Returns n. Temperature 0 counts as 1 here (it only changes how next() picks).
   */
  filter(logits: ArrayLike<number>): number {
    const V = this.V;
    const k = this.opts.topK > 0 ? Math.min(this.opts.topK, V) : V;
    const topP = this.opts.topP;
    const t = this.opts.temperature > 0 ? this.opts.temperature : 1;
    const { ids, probs } = this;
    this.logits = logits;
    // probs[i] = exp((logit - max) / t) of ids[i], summed in `sum`
    let n = 0;
    let sum = 0;
    if (k <= INSERTION_MAX_K) {
      this.insertionTopK(k);
      const mx = logits[ids[0]!]!;
      for (n = 0; n < k; n++) sum += probs[n] = Math.exp((logits[ids[n]!]! - mx) / t);
    } else {
      let m = this.heapify();
      const mx = logits[this.heap[0]!]!;
      // the nucleus alone straight from the heap: mass against the sum over every id
      let total = Infinity;
      if (k === V && topP < 1) {
        total = 0;
        for (let j = 0; j < V; j++) total += Math.exp((logits[j]! - mx) / t);
      }
      for (n = 0; n < k; ) {
        const id = this.pop(m--);
        ids[n] = id;
        sum += probs[n++] = Math.exp((logits[id]! - mx) / t);
        if (sum / total >= topP) return this.normalize(n, sum);
      }
    }
    if (topP < 1) {
      let mass = 0;
      let cut = 0;
      while (cut < n) {
        mass += probs[cut++]! / sum;
        if (mass >= topP) break;
      }
      n = cut;
      sum = 0;
      for (let i = 0; i < n; i++) sum += probs[i]!;
    }
    return this.normalize(n, sum);
  }

  private normalize(n: number, sum: number): number {
    for (let i = 0; i < n; i++) this.probs[i] = this.probs[i]! / sum;
    this.logits = NONE;
    return n;
  }

  /** ids[0..k): the k largest logits, sorted (ties to the lower id). */
  private insertionTopK(k: number): void {
    const { ids, logits, V } = this;
    let n = 0;
    let least = -Infinity; // the smallest kept logit once k are kept
    for (let j = 0; j < V; j++) {
      const x = logits[j]!;
      if (n === k && !(x > least)) continue;
      let i = n < k ? n++ : k - 1;
      while (i > 0 && logits[ids[i - 1]!]! < x) {
        ids[i] = ids[i - 1]!;
        i--;
      }
      ids[i] = j;
      if (n === k) least = logits[ids[k - 1]!]!;
    }
  }

  /** a comes before b: a larger logit, or the same and a lower id. */
  private before(a: number, b: number): boolean {
    const la = this.logits[a]!, lb = this.logits[b]!;
    return la > lb || (la === lb && a < b);
  }

  /** heap[0..V): a max-heap of every id under before(); returns its size. */
  private heapify(): number {
    const V = this.V;
    for (let j = 0; j < V; j++) this.heap[j] = j;
    for (let i = (V >> 1) - 1; i >= 0; i--) this.siftDown(i, V);
    return V;
  }

  /** Removes and returns the first id of a heap of m entries. */
  private pop(m: number): number {
    const h = this.heap;
    const top = h[0]!;
    h[0] = h[m - 1]!;
    this.siftDown(0, m - 1);
    return top;
  }

  private siftDown(i: number, m: number): void {
    const h = this.heap;
    const x = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= m) break;
      if (c + 1 < m && this.before(h[c + 1]!, h[c]!)) c++;
      if (!this.before(h[c]!, x)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = x;
  }
}
