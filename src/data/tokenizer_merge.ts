// The BPE merge step shared by the trained tokenizer (tokenizer.ts) and the loaded ones
// (tokenizer_hf.ts): given a word's initial symbols, apply the merges by rank, lowest rank
// first and leftmost first among equal ranks, exactly as the Hugging Face BPE model does
// (its merge_all: a queue of (rank, position), stale entries skipped).

const NO_RANK = 0x7fffffff;
/** The per-word encoding caches are cleared when they reach this many entries. */
export const CACHE_LIMIT = 1 << 20;
/**
 * Words at least this many symbols long are merged with a heap instead of a linear scan. Both
 * give identical ids (tested); the scan is O(n^2) but faster for the usual word of under 20.
 */
export const LONG_WORD = 64;

export class MergeTable {
  /** Number of ids. */
  readonly idSpace: number;
  // (left, right) -> rank: open addressing with linear probing (a Map keyed by
  // left * idSpace + right, a double for large vocabularies, measured 3x slower here).
  private readonly keyLeft: Int32Array;
  private readonly keyRight: Int32Array;
  private readonly rank: Int32Array;
  private readonly mask: number;
  private readonly mergeResult: Int32Array;
  private readonly scratchRanks = new Int32Array(LONG_WORD);

  /**
   * merges[r] = [left id, right id, merged id] for rank r. A pair listed twice keeps its
   * first rank (`duplicates: 'first'`) or, as the Hugging Face library does (a map built in
   * rank order), its last (`'last'`).
   */
  constructor(merges: ReadonlyArray<readonly [number, number, number]>, idSpace: number, duplicates: 'first' | 'last') {
    this.idSpace = idSpace;
    this.mergeResult = new Int32Array(merges.length);
    let size = 16;
    while (size < merges.length * 2) size *= 2;
    this.mask = size - 1;
    this.keyLeft = new Int32Array(size).fill(-1);
    this.keyRight = new Int32Array(size);
    this.rank = new Int32Array(size);
    merges.forEach(([l, r, m], rank) => {
      this.mergeResult[rank] = m;
      let h = slot(l, r) & this.mask;
      while (this.keyLeft[h] !== -1 && !(this.keyLeft[h] === l && this.keyRight[h] === r)) h = (h + 1) & this.mask;
      if (this.keyLeft[h] === -1 || duplicates === 'last') {
        this.keyLeft[h] = l;
        this.keyRight[h] = r;
        this.rank[h] = rank;
      }
    });
  }

  /** Rank of merging (left, right), or NO_RANK. */
  rankOf(left: number, right: number): number {
    const keyLeft = this.keyLeft;
    const mask = this.mask;
    for (let h = slot(left, right) & mask; ; h = (h + 1) & mask) {
      const k = keyLeft[h];
      if (k === left && this.keyRight[h] === right) return this.rank[h];
      if (k === -1) return NO_RANK;
    }
  }

  /** The merged symbols of `ids` (which it may overwrite). */
  merge(ids: Int32Array): Int32Array {
    const n = ids.length;
    if (n < 2) return ids;
    if (n >= LONG_WORD) return this.mergeLong(ids);

    // Short word: keep the rank of every adjacent pair, take the smallest, splice.
    const ranks = this.scratchRanks;
    let len = n;
    for (let i = 0; i + 1 < len; i++) ranks[i] = this.rankOf(ids[i], ids[i + 1]);
    for (;;) {
      let best = NO_RANK;
      let at = -1;
      for (let i = 0; i + 1 < len; i++) {
        if (ranks[i] < best) {
          best = ranks[i];
          at = i;
        }
      }
      if (at < 0) break;
      ids[at] = this.mergeResult[best];
      ids.copyWithin(at + 1, at + 2, len);
      ranks.copyWithin(at + 1, at + 2, len - 1);
      len--;
      if (at > 0) ranks[at - 1] = this.rankOf(ids[at - 1], ids[at]);
      if (at + 1 < len) ranks[at] = this.rankOf(ids[at], ids[at + 1]);
    }
    return len === n ? ids : ids.slice(0, len);
  }

  /**
   * Same result as the short-word loop, in O(n log n): a tournament tree over the pairs keeps
   * the smallest (rank, position) at its root. Each merge changes three leaves (the merged
   * pair, the pair after it, the pair before it); an update climbs only while the minimum
   * changes; nothing goes stale. Measured 150 ns per merge at 1 K symbols, 330 ns at 1 M (the
   * 1.9 MB lib.dom.d.ts as one word: merges land all over it, in rank order), the same as a
   * heap of pending merges; which is why long SentencePiece-style words are cut where that is
   * exact (tokenizer_hf.ts) before they get here.
   */
  private mergeLong(sym: Int32Array): Int32Array {
    const n = sym.length;
    let L = 1;
    while (L < n) L *= 2;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // Leaf L + i: rank * L + i for the pair starting at symbol i, Infinity if none.
    const tree = new Float64Array(2 * L).fill(Infinity);
    for (let i = 0; i + 1 < n; i++) {
      const r = this.rankOf(sym[i], sym[i + 1]);
      if (r !== NO_RANK) tree[L + i] = r * L + i;
    }
    for (let i = L - 1; i >= 1; i--) tree[i] = Math.min(tree[2 * i], tree[2 * i + 1]);
    const set = (i: number, v: number): void => {
      let k = L + i;
      tree[k] = v;
      for (k >>= 1; k >= 1; k >>= 1) {
        const m = Math.min(tree[2 * k], tree[2 * k + 1]);
        if (tree[k] === m) break;
        tree[k] = m;
      }
    };
    const keyOf = (i: number, j: number): number => {
      const r = this.rankOf(sym[i], sym[j]);
      return r === NO_RANK ? Infinity : r * L + i;
    };
    let len = n;
    while (tree[1] !== Infinity) {
      const e = tree[1];
      const rank = Math.floor(e / L);
      const p = e - rank * L;
      const q = next[p];
      sym[p] = this.mergeResult[rank];
      len--;
      const qn = next[q];
      next[p] = qn;
      if (qn >= 0) prev[qn] = p;
      set(q, Infinity);
      set(p, qn >= 0 ? keyOf(p, qn) : Infinity);
      const pp = prev[p];
      if (pp >= 0) set(pp, keyOf(pp, p));
    }
    const out = new Int32Array(len);
    for (let i = 0, j = 0; i >= 0; i = next[i]) out[j++] = sym[i];
    return out;
  }
}

/** Hash of a pair (any bits; the caller masks). */
function slot(l: number, r: number): number {
  const h = Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x7f4a7c15, 0x85ebca77);
  return h ^ (h >>> 15);
}

/** A set of (int, int) pairs: open addressing, linear probing. */
export class PairSet {
  private readonly a: Int32Array;
  private readonly b: Int32Array;
  private readonly mask: number;

  constructor(capacity: number) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.mask = size - 1;
    this.a = new Int32Array(size).fill(-1);
    this.b = new Int32Array(size);
  }

  private slot(x: number, y: number): number {
    const h = Math.imul(x, 0x9e3779b1) ^ Math.imul(y + 0x7f4a7c15, 0x85ebca77);
    return (h ^ (h >>> 15)) & this.mask;
  }

  add(x: number, y: number): void {
    let h = this.slot(x, y);
    while (this.a[h] !== -1) {
      if (this.a[h] === x && this.b[h] === y) return;
      h = (h + 1) & this.mask;
    }
    this.a[h] = x;
    this.b[h] = y;
  }

  has(x: number, y: number): boolean {
    for (let h = this.slot(x, y); ; h = (h + 1) & this.mask) {
      const k = this.a[h];
      if (k === x && this.b[h] === y) return true;
      if (k === -1) return false;
    }
  }
}
