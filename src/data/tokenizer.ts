// Byte-level BPE tokenizer (GPT-2 / Llama 3 style): training, encoding, decoding, and the
// Hugging Face `tokenizer.json` format.
//
// Id layout of a tokenizer trained here (stable: it does not depend on the training text):
//   0 .. 255              one token per byte value (id = byte value)
//   256 .. 256+S-1        the special tokens, in the order given (default: BOS, EOS, PAD, so
//                         <|begin_of_text|> = 256, <|end_of_text|> = 257, <|pad|> = 258)
//   256+S .. vocabSize-1  merges in rank order: merge r creates id 256+S+r
// Roles: the first three specials are BOS, EOS and PAD, in that order; more are allowed.
//
// Pre-tokenization is the GPT-2 regex. In JavaScript `\s` means something slightly different
// from Oniguruma's `\s` (which the Hugging Face library uses for a Split pattern): JS adds
// U+FEFF and lacks U+0085. We run the pattern with `\p{White_Space}`, which is exactly
// Oniguruma's `\s`, and write the usual `\s` spelling into tokenizer.json.
//
// Training: count pre-token ("word") frequencies, then merge the most frequent adjacent pair
// until the vocabulary is full, updating pair counts only around the merged positions (an index
// pair -> words that contain it, and a lazy max-heap of pair counts). Ties in count go to the
// pair with the smaller (left id, right id). If the text runs out of pairs first, training
// stops early and `vocabSize` is smaller than asked (only on tiny texts).
//
// Encoding replays the merges by rank, lowest rank first, leftmost first among equal ranks,
// exactly as the Hugging Face BPE model does (model.ignore_merges = false). Text is encoded as
// plain text: the literal string "<|end_of_text|>" in the input is encoded as ordinary bytes,
// never as the special token (Hugging Face's default would match it); add special ids yourself.
import { createHash } from 'node:crypto';

/** Bump when training or encoding changes the ids it produces (it keys the data caches). */
export const TOKENIZER_VERSION = 1;

/** The GPT-2 pre-tokenizer pattern, as written into tokenizer.json. */
export const GPT2_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** The same pattern for JavaScript: `\s` spelled as Unicode White_Space (see the header). */
const JS_PATTERN = GPT2_PATTERN.replaceAll('\\s', '\\p{White_Space}').replaceAll(
  '\\S',
  '\\P{White_Space}',
);

export const DEFAULT_SPECIALS: readonly string[] = [
  '<|begin_of_text|>',
  '<|end_of_text|>',
  '<|pad|>',
];

const NO_RANK = 0x7fffffff;
/**
 * Words at least this many bytes long are merged with a heap instead of a linear scan. Both give
 * identical ids (tested); the scan is O(n^2) but faster for the usual word of under 20 bytes.
 */
const LONG_WORD = 64;
/** The per-word encoding cache is cleared when it reaches this many entries. */
const CACHE_LIMIT = 1 << 20;

/** Splits text into GPT-2 pre-tokens (the units BPE never merges across). */
export function preTokenize(text: string): string[] {
  const re = new RegExp(JS_PATTERN, 'gu');
  const out: string[] = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push(m[0]);
  return out;
}

let byteCharsMemo: string[] | undefined;

/** GPT-2's bytes_to_unicode: byte value -> the printable character that stands for it. */
export function byteToUnicode(): readonly string[] {
  if (byteCharsMemo) return byteCharsMemo;
  const chars = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    chars[b] = String.fromCharCode(printable ? b : 256 + extra++);
  }
  byteCharsMemo = chars;
  return chars;
}

interface Special {
  id: number;
  content: string;
}

interface TokenizerParts {
  /** Bytes of every id, 0 .. vocabSize-1. */
  tokenBytes: Uint8Array[];
  /** Id of each single byte. */
  byteIds: Int32Array;
  /** merges[r] = [left id, right id, merged id] for rank r. */
  merges: Array<[number, number, number]>;
  specials: Special[];
}

const utf8 = new TextEncoder();

export class BpeTokenizer {
  readonly vocabSize: number;
  /** Id of the first special (begin of text), -1 if the tokenizer has none. */
  readonly bosId: number;
  /** Id of the second special (end of text / document separator), -1 if none. */
  readonly eosId: number;
  /** Id of the third special (padding), -1 if none. */
  readonly padId: number;

  private readonly tokenBytesById: Uint8Array[];
  private readonly byteIds: Int32Array;
  private readonly mergeTriples: Array<[number, number, number]>;
  private readonly specialTokens: Special[];
  private readonly mergeResult: Int32Array;
  /** (left * vocabSize + right) -> rank. */
  private readonly pairRank = new Map<number, number>();
  private readonly re = new RegExp(JS_PATTERN, 'gu');
  private readonly cache = new Map<string, Int32Array>();
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private scratchBytes = new Uint8Array(256);
  private scratchRanks = new Int32Array(LONG_WORD);

  private constructor(parts: TokenizerParts) {
    this.tokenBytesById = parts.tokenBytes;
    this.vocabSize = parts.tokenBytes.length;
    this.byteIds = parts.byteIds;
    this.mergeTriples = parts.merges;
    this.specialTokens = parts.specials;
    this.mergeResult = new Int32Array(parts.merges.length);
    const V = this.vocabSize;
    parts.merges.forEach(([l, r, m], rank) => {
      this.mergeResult[rank] = m;
      const key = l * V + r;
      if (!this.pairRank.has(key)) this.pairRank.set(key, rank);
    });
    this.bosId = parts.specials[0]?.id ?? -1;
    this.eosId = parts.specials[1]?.id ?? -1;
    this.padId = parts.specials[2]?.id ?? -1;
  }

  /** Number of merges (ranks). */
  get numMerges(): number {
    return this.mergeTriples.length;
  }

  /** The merges in rank order as [left id, right id]; merge r creates `mergedId(r)`. */
  merges(): Array<[number, number]> {
    return this.mergeTriples.map(([l, r]) => [l, r]);
  }

  mergedId(rank: number): number {
    return this.mergeTriples[rank][2];
  }

  /** The special tokens as { id, content }, in id order. */
  specials(): Array<{ id: number; content: string }> {
    return this.specialTokens.map((s) => ({ ...s }));
  }

  /** The raw bytes a token stands for (a view: do not modify). */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    return this.tokenBytesById[id];
  }

  /**
   * The token's entry in tokenizer.json's vocab: bytes in GPT-2's printable mapping (a leading
   * space shows as "Ġ", a newline as "Ċ"); a special token is its own text. Unique per id.
   */
  tokenToString(id: number): string {
    this.checkId(id);
    const special = this.specialTokens.find((s) => s.id === id);
    if (special) return special.content;
    const chars = byteToUnicode();
    let s = '';
    for (const b of this.tokenBytesById[id]) s += chars[b];
    return s;
  }

  // ---------------------------------------------------------------------------------------
  // Training

  /**
   * Learns `vocabSize - 256 - specials.length` merges from `text` (or from each string of an
   * array separately: no pre-token spans two of them).
   */
  static train(
    text: string | readonly string[],
    vocabSize: number,
    opts: { specials?: readonly string[]; onProgress?: (done: number, total: number) => void } = {},
  ): BpeTokenizer {
    const specials = checkSpecials(opts.specials ?? DEFAULT_SPECIALS);
    const firstMergeId = 256 + specials.length;
    if (!Number.isInteger(vocabSize) || vocabSize < firstMergeId) {
      throw new RangeError(
        `vocabSize must be an integer >= ${firstMergeId} (256 bytes + ${specials.length} specials), got ${vocabSize}`,
      );
    }
    const totalMerges = vocabSize - firstMergeId;
    const K = vocabSize; // pair key = left * K + right

    // 1. Pre-token frequencies.
    const wordCounts = new Map<string, number>();
    const re = new RegExp(JS_PATTERN, 'gu');
    for (const t of typeof text === 'string' ? [text] : text) {
      re.lastIndex = 0;
      for (let m = re.exec(t); m !== null; m = re.exec(t)) {
        const w = m[0];
        wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
      }
    }

    // 2. Words as byte-id sequences (ids of bytes are the byte values). One-byte words have
    //    no pairs and are dropped.
    const words: Int32Array[] = [];
    const freqs: number[] = [];
    let maxLen = 0;
    let scratch = new Uint8Array(256);
    for (const [w, f] of wordCounts) {
      if (scratch.length < w.length * 3) scratch = new Uint8Array(w.length * 3);
      const n = utf8.encodeInto(w, scratch).written;
      if (n < 2) continue;
      words.push(Int32Array.from(scratch.subarray(0, n)));
      freqs.push(f);
      if (n > maxLen) maxLen = n;
    }
    wordCounts.clear();
    const lens = Int32Array.from(words, (w) => w.length);

    // 3. Pair counts and pair -> words index (each word listed once per pair).
    const pairCount = new Map<number, number>();
    const pairWords = new Map<number, number[]>();
    for (let w = 0; w < words.length; w++) {
      const s = words[w];
      const f = freqs[w];
      for (let i = 0; i + 1 < s.length; i++) {
        const key = s[i] * K + s[i + 1];
        const c = pairCount.get(key);
        if (c === undefined) {
          pairCount.set(key, f);
          pairWords.set(key, [w]);
        } else {
          pairCount.set(key, c + f);
          const list = pairWords.get(key)!;
          if (list[list.length - 1] !== w) list.push(w);
        }
      }
    }
    const heap = new PairHeap();
    for (const [key, c] of pairCount) heap.push(c, key);

    // 4. Merge loop.
    const tokenBytes: Uint8Array[] = [];
    for (let b = 0; b < 256; b++) tokenBytes.push(Uint8Array.of(b));
    for (const s of specials) tokenBytes.push(utf8.encode(s));
    const merges: Array<[number, number, number]> = [];
    const mark = new Uint8Array(maxLen + 1); // 1: a match starts here, 2: second half
    const newKeys: number[] = [];

    while (merges.length < totalMerges) {
      // Best pair: highest count, then smallest key. Entries whose count went down are stale.
      let key = -1;
      let count = 0;
      while (heap.size > 0) {
        const c = heap.topCount();
        const k = heap.topKey();
        heap.pop();
        const cur = pairCount.get(k) ?? 0;
        if (cur === c) {
          key = k;
          count = c;
          break;
        }
        if (cur > 0) heap.push(cur, k);
      }
      if (key < 0 || count <= 0) break; // no pairs left

      const a = Math.floor(key / K);
      const b = key - a * K;
      const nid = firstMergeId + merges.length;
      merges.push([a, b, nid]);
      tokenBytes.push(concatBytes(tokenBytes[a], tokenBytes[b]));
      newKeys.length = 0;

      const dec = (k: number, f: number): void => {
        const c = pairCount.get(k)! - f;
        if (c === 0) {
          pairCount.delete(k);
          if (k !== key) pairWords.delete(k);
        } else pairCount.set(k, c);
      };

      for (const w of pairWords.get(key)!) {
        const s = words[w];
        const len = lens[w];
        // Find the matches, left to right, not overlapping.
        let found = false;
        mark.fill(0, 0, len);
        for (let i = 0; i + 1 < len; ) {
          if (s[i] === a && s[i + 1] === b) {
            mark[i] = 1;
            mark[i + 1] = 2;
            found = true;
            i += 2;
          } else i++;
        }
        if (!found) continue;
        const f = freqs[w];
        // Every old pair that touches a match disappears.
        for (let i = 0; i + 1 < len; i++) {
          if (mark[i] !== 0 || mark[i + 1] !== 0) dec(s[i] * K + s[i + 1], f);
        }
        // Merge in place.
        let j = 0;
        for (let i = 0; i < len; ) {
          if (mark[i] === 1) {
            s[j++] = nid;
            i += 2;
          } else s[j++] = s[i++];
        }
        lens[w] = j;
        // Every new pair that touches the new token appears (these keys are all new).
        for (let i = 0; i + 1 < j; i++) {
          if (s[i] !== nid && s[i + 1] !== nid) continue;
          const k = s[i] * K + s[i + 1];
          const c = pairCount.get(k);
          if (c === undefined) {
            pairCount.set(k, f);
            pairWords.set(k, [w]);
            newKeys.push(k);
          } else {
            pairCount.set(k, c + f);
            const list = pairWords.get(k)!;
            if (list[list.length - 1] !== w) list.push(w);
          }
        }
      }
      pairWords.delete(key);
      for (const k of newKeys) heap.push(pairCount.get(k)!, k);
      opts.onProgress?.(merges.length, totalMerges);
    }

    return new BpeTokenizer({
      tokenBytes,
      byteIds: Int32Array.from({ length: 256 }, (_, i) => i),
      merges,
      specials: specials.map((content, i) => ({ id: 256 + i, content })),
    });
  }

  // ---------------------------------------------------------------------------------------
  // Encoding and decoding

  /** Token ids of `text` (no special tokens added; see the header). */
  encode(text: string): Int32Array {
    let out = new Int32Array(Math.max(16, text.length + (text.length >> 3)));
    let n = 0;
    const re = this.re;
    const cache = this.cache;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const w = m[0];
      let ids = cache.get(w);
      if (ids === undefined) {
        ids = this.encodeWord(w);
        if (cache.size >= CACHE_LIMIT) cache.clear();
        cache.set(w, ids);
      }
      if (n + ids.length > out.length) {
        const bigger = new Int32Array(Math.max(out.length * 2, n + ids.length));
        bigger.set(out.subarray(0, n));
        out = bigger;
      }
      if (ids.length === 1) out[n++] = ids[0];
      else {
        out.set(ids, n);
        n += ids.length;
      }
    }
    return out.slice(0, n);
  }

  /** Text of `ids`; bytes that are not valid UTF-8 (a partial character) become U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      this.checkId(id);
      total += this.tokenBytesById[id].length;
    }
    const buf = new Uint8Array(total);
    let off = 0;
    for (let i = 0; i < ids.length; i++) {
      const t = this.tokenBytesById[ids[i]];
      if (t.length === 1) buf[off++] = t[0];
      else {
        buf.set(t, off);
        off += t.length;
      }
    }
    return this.decoder.decode(buf);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is out of range [0, ${this.vocabSize})`);
    }
  }

  private rankOf(left: number, right: number): number {
    return this.pairRank.get(left * this.vocabSize + right) ?? NO_RANK;
  }

  /** BPE of one pre-token: merges by rank, lowest first, leftmost among equals. */
  private encodeWord(word: string): Int32Array {
    if (this.scratchBytes.length < word.length * 3) {
      this.scratchBytes = new Uint8Array(word.length * 3);
    }
    const n = utf8.encodeInto(word, this.scratchBytes).written;
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) ids[i] = this.byteIds[this.scratchBytes[i]];
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
    return ids.slice(0, len);
  }

  /** Same result as the short-word loop, in O(n log n): a heap of (rank, position). */
  private mergeLong(sym: Int32Array): Int32Array {
    const n = sym.length;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // Entry = rank * n + position: pops lowest rank, then leftmost position.
    const heap = new MinHeap();
    for (let i = 0; i + 1 < n; i++) {
      const r = this.rankOf(sym[i], sym[i + 1]);
      if (r !== NO_RANK) heap.push(r * n + i);
    }
    let len = n;
    while (heap.size > 0) {
      const e = heap.pop();
      const rank = Math.floor(e / n);
      const p = e - rank * n;
      const q = next[p];
      if (!alive[p] || q < 0 || this.rankOf(sym[p], sym[q]) !== rank) continue; // stale
      sym[p] = this.mergeResult[rank];
      alive[q] = 0;
      len--;
      const qn = next[q];
      next[p] = qn;
      if (qn >= 0) prev[qn] = p;
      const pp = prev[p];
      if (pp >= 0) {
        const r = this.rankOf(sym[pp], sym[p]);
        if (r !== NO_RANK) heap.push(r * n + pp);
      }
      if (qn >= 0) {
        const r = this.rankOf(sym[p], sym[qn]);
        if (r !== NO_RANK) heap.push(r * n + p);
      }
    }
    const out = new Int32Array(len);
    for (let i = 0, j = 0; i >= 0; i = next[i]) out[j++] = sym[i];
    return out;
  }

  // ---------------------------------------------------------------------------------------
  // Hugging Face tokenizer.json

  /** A Hugging Face `tokenizer.json` object (byte-level BPE, GPT-2 pre-tokenizer). */
  toJSON(): HfTokenizerJson {
    const vocab: Record<string, number> = {};
    for (let id = 0; id < this.vocabSize; id++) vocab[this.tokenToString(id)] = id;
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: this.specialTokens.map((s) => ({
        id: s.id,
        content: s.content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: GPT2_PATTERN }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: this.mergeTriples.map(([l, r]) => `${this.tokenToString(l)} ${this.tokenToString(r)}`),
      },
    };
  }

  /**
   * Reads a byte-level BPE `tokenizer.json` object (ours, or one like GPT-2's). Ids must be
   * contiguous from 0; the special added tokens, in id order, take the BOS, EOS, PAD roles.
   */
  static fromJSON(obj: unknown): BpeTokenizer {
    const fail = (why: string): never => {
      throw new Error(`not a byte-level BPE tokenizer.json: ${why}`);
    };
    const o = obj as Partial<HfTokenizerJson> | null;
    if (!o || typeof o !== 'object') fail('not an object');
    const model = o!.model;
    if (!model || model.type !== 'BPE') fail('model.type is not "BPE"');
    if (!model!.vocab || typeof model!.vocab !== 'object') fail('model.vocab is missing');
    if (!Array.isArray(model!.merges)) fail('model.merges is missing');
    const added = Array.isArray(o!.added_tokens) ? o!.added_tokens : [];

    const entries = Object.entries(model!.vocab);
    const addedById = new Map<number, string>();
    for (const t of added) addedById.set(t.id, t.content);
    const size = Math.max(entries.length, ...added.map((t) => t.id + 1));
    const tokenBytes = new Array<Uint8Array | undefined>(size);
    const unicodeToByte = new Map<string, number>();
    byteToUnicode().forEach((c, b) => unicodeToByte.set(c, b));
    const idOf = new Map<string, number>();
    for (const [str, id] of entries) {
      if (!Number.isInteger(id) || id < 0 || id >= size) fail(`vocab id ${id} of ${JSON.stringify(str)} is out of range`);
      idOf.set(str, id);
      const content = addedById.get(id);
      if (content !== undefined) {
        tokenBytes[id] = utf8.encode(content);
        continue;
      }
      const bytes = new Uint8Array(str.length);
      for (let i = 0; i < str.length; i++) {
        const b = unicodeToByte.get(str[i]);
        if (b === undefined) fail(`vocab entry ${JSON.stringify(str)} is not in the byte-level alphabet`);
        bytes[i] = b!;
      }
      tokenBytes[id] = bytes;
    }
    for (const [id, content] of addedById) if (!tokenBytes[id]) tokenBytes[id] = utf8.encode(content);
    for (let id = 0; id < size; id++) if (!tokenBytes[id]) fail(`id ${id} has no token (ids must be contiguous)`);

    const byteIds = new Int32Array(256);
    const chars = byteToUnicode();
    for (let b = 0; b < 256; b++) {
      const id = idOf.get(chars[b]);
      if (id === undefined || addedById.has(id)) fail(`byte 0x${b.toString(16)} has no token`);
      byteIds[b] = id!;
    }
    const merges: Array<[number, number, number]> = model!.merges.map((m, rank) => {
      const [l, r] = typeof m === 'string' ? splitMerge(m) : m;
      const li = idOf.get(l);
      const ri = idOf.get(r);
      const mi = idOf.get(l + r);
      if (li === undefined || ri === undefined || mi === undefined) {
        return fail(`merge ${rank} (${JSON.stringify(m)}) names a token missing from the vocab`);
      }
      return [li, ri, mi];
    });
    const specials = added
      .filter((t) => t.special)
      .map((t) => ({ id: t.id, content: t.content }))
      .sort((x, y) => x.id - y.id);
    return new BpeTokenizer({ tokenBytes: tokenBytes as Uint8Array[], byteIds, merges, specials });
  }

  /** sha256 (hex) of the canonical tokenizer.json text. */
  hash(): string {
    return createHash('sha256').update(JSON.stringify(this.toJSON())).digest('hex');
  }
}

export interface HfAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The parts of Hugging Face's tokenizer.json that a byte-level BPE uses. */
export interface HfTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: HfAddedToken[];
  normalizer: null;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: Array<string | [string, string]>;
  };
}

function splitMerge(m: string): [string, string] {
  const i = m.indexOf(' ', 1);
  if (i < 0) throw new Error(`not a byte-level BPE tokenizer.json: merge "${m}" has no space`);
  return [m.slice(0, i), m.slice(i + 1)];
}

function checkSpecials(specials: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const s of specials) {
    if (typeof s !== 'string' || s.length === 0) throw new Error('special tokens must be non-empty strings');
    if (seen.has(s)) throw new Error(`special token ${JSON.stringify(s)} is given twice`);
    // A special spelled like a possible byte-level token would collide in tokenizer.json's vocab.
    if (preTokenize(s).length === 1 && [...s].every((c) => byteToUnicode().includes(c))) {
      throw new Error(
        `special token ${JSON.stringify(s)} could also be a learned token; use a form like <|name|>`,
      );
    }
    seen.add(s);
  }
  return [...specials];
}

function concatBytes(x: Uint8Array, y: Uint8Array): Uint8Array {
  const out = new Uint8Array(x.length + y.length);
  out.set(x);
  out.set(y, x.length);
  return out;
}

/** Max-heap of (count, pair key): larger count first, then smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }
  topCount(): number {
    return this.counts[0];
  }
  topKey(): number {
    return this.keys[0];
  }

  private better(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i];
    this.counts[i] = this.counts[j];
    this.counts[j] = c;
    const k = this.keys[i];
    this.keys[i] = this.keys[j];
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): void {
    const last = this.counts.length - 1;
    this.swap(0, last);
    this.counts.pop();
    this.keys.pop();
    const n = this.counts.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.better(r, l) ? r : l;
      if (!this.better(c, i)) break;
      this.swap(c, i);
      i = c;
    }
  }
}

/** Binary min-heap of numbers. */
class MinHeap {
  private a: number[] = [];

  get size(): number {
    return this.a.length;
  }

  push(v: number): void {
    const a = this.a;
    let i = a.length;
    a.push(v);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= v) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = v;
  }

  pop(): number {
    const a = this.a;
    const top = a[0];
    const v = a.pop()!;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const c = l + 1 < n && a[l + 1] < a[l] ? l + 1 : l;
        if (a[c] >= v) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = v;
    }
    return top;
  }
}
