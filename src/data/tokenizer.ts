// Tokenizers. `Tokenizer` is what the data pipeline and the trainer use; two classes have it:
//   BpeTokenizer  (here) the byte-level BPE trained by this project (GPT-2 / Llama 3 style):
//                 training, encoding, decoding, tokenizer.json in and out.
//   HfTokenizer   (tokenizer_hf.ts) any BPE tokenizer.json of the GPT-2 / Llama 3 (byte-level)
//                 and Llama 2 (SentencePiece-style) families, read by `loadTokenizer(path)`,
//                 encoding and decoding exactly as the Hugging Face `tokenizers` library does.
// encode never adds BOS / EOS (the data pipeline puts EOS between documents itself), and treats
// a special token's spelling in the text ("<|end_of_text|>", "<s>") as plain text unless called
// with { allowSpecial: true }.
//
// Measured encode speed, one core (Xeon, Node 20), on the embedded corpus (the TypeScript
// lib*.d.ts files, 3.14 MB of English doc comments and declarations in 100 documents), a vocab
// of 8192 trained on it; MB/s of UTF-8 input, first pass from an empty word cache / second
// pass (`node dist/bench/tokenizer.js`):
//   trained (BpeTokenizer)                                   20 / 29
//   GPT-2 form of it (ByteLevel pre-tokenizer), loaded       21 / 29
//   Llama 3 form (Llama 3 regex, ignore_merges), loaded      16 / 28
//   Llama 2 form (▁ normalizer, byte fallback), loaded       11 / 30   cuts before each ▁ run
//     the same with merges joining characters to ▁          11 / 28   cuts between characters
//     no exact cut possible (ignore_merges): whole documents  3 / 3   one merge per document,
//                                                                      1.9 MB the largest
// (The Python `tokenizers` library, one thread, encode per document on the same text: 1.8 to
// 2.4 MB/s.)
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
// exactly as the Hugging Face BPE model does (model.ignore_merges = false; tokenizer_merge.ts).
// By default the literal string "<|end_of_text|>" in the input is encoded as ordinary bytes;
// with { allowSpecial: true } it is the special token, as Hugging Face's default encode does.
import { createHash } from 'node:crypto';
import { CACHE_LIMIT, MergeTable } from './tokenizer_merge.js';
import { byteToUnicode, GPT2_PATTERN } from './tokenizer_parts.js';

export { byteToUnicode, GPT2_PATTERN } from './tokenizer_parts.js';
export { HfTokenizer, loadTokenizer } from './tokenizer_hf.js';

/** Bump when training or encoding changes the ids it produces (it keys the data caches). */
export const TOKENIZER_VERSION = 1;

export interface EncodeOptions {
  /**
   * Match special tokens written in the text ("<|end_of_text|>", "<s>") and emit their ids.
   * Default false: the text is plain text and a special token's spelling is encoded like any
   * other characters.
   */
  allowSpecial?: boolean;
}

/**
 * What the data pipeline and the trainer need of a tokenizer: `BpeTokenizer` (trained here)
 * and `HfTokenizer` (any byte-level or SentencePiece-style BPE tokenizer.json) implement it.
 */
export interface Tokenizer {
  /** 'byte-level-bpe' (GPT-2, Llama 3, ours) or 'sentencepiece-bpe' (Llama 2). */
  readonly kind: string;
  /** One more than the largest id. */
  readonly vocabSize: number;
  /** Begin-of-text, end-of-text (document separator) and padding ids; -1 when there is none. */
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** Token ids of `text`. Never adds BOS or EOS. */
  encode(text: string, opts?: EncodeOptions): Int32Array;
  /** Text of `ids`; bytes that do not form valid UTF-8 become U+FFFD. */
  decode(ids: ArrayLike<number>): string;
  /** A Hugging Face tokenizer.json object that loads back to the same ids. */
  toJSON(): TokenizerJson;
  /** sha256 (hex) of JSON.stringify(toJSON()). */
  hash(): string;
}

/** A BPE tokenizer.json object (the top-level keys the Hugging Face library writes). */
export interface TokenizerJson {
  version: string;
  truncation: unknown;
  padding: unknown;
  added_tokens: HfAddedToken[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: {
    type: 'BPE';
    dropout: unknown;
    unk_token: string | null;
    continuing_subword_prefix: string | null;
    end_of_word_suffix: string | null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: Array<string | [string, string]>;
  };
}

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


/** Splits text into GPT-2 pre-tokens (the units BPE never merges across). */
export function preTokenize(text: string): string[] {
  const re = new RegExp(JS_PATTERN, 'gu');
  const out: string[] = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push(m[0]);
  return out;
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

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'byte-level-bpe';
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
  private readonly table: MergeTable;
  private readonly re = new RegExp(JS_PATTERN, 'gu');
  private readonly cache = new Map<string, Int32Array>();
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private scratchBytes = new Uint8Array(256);
  private specialRe: RegExp | undefined;

  private constructor(parts: TokenizerParts) {
    this.tokenBytesById = parts.tokenBytes;
    this.vocabSize = parts.tokenBytes.length;
    this.byteIds = parts.byteIds;
    this.mergeTriples = parts.merges;
    this.specialTokens = parts.specials;
    this.table = new MergeTable(parts.merges, this.vocabSize, 'first');
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

  /**
   * Token ids of `text`. No special tokens are added; with `allowSpecial` the specials'
   * spellings in the text become their ids (longest first), otherwise they are plain text.
   */
  encode(text: string, opts: EncodeOptions = {}): Int32Array {
    if (opts.allowSpecial && this.specialTokens.length > 0) return this.encodeWithSpecials(text);
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

  private encodeWithSpecials(text: string): Int32Array {
    if (!this.specialRe) {
      const alts = this.specialTokens
        .map((s) => s.content)
        .sort((a, b) => b.length - a.length)
        .map((c) => c.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'));
      this.specialRe = new RegExp(alts.join('|'), 'g');
    }
    const idOf = new Map(this.specialTokens.map((s) => [s.content, s.id]));
    const parts: Int32Array[] = [];
    let prev = 0;
    const re = this.specialRe;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m.index > prev) parts.push(this.encode(text.slice(prev, m.index)));
      parts.push(Int32Array.of(idOf.get(m[0])!));
      prev = m.index + m[0].length;
    }
    if (prev < text.length) parts.push(this.encode(text.slice(prev)));
    const out = new Int32Array(parts.reduce((k, p) => k + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
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

  /** BPE of one pre-token: merges by rank, lowest first, leftmost among equals. */
  private encodeWord(word: string): Int32Array {
    if (this.scratchBytes.length < word.length * 3) {
      this.scratchBytes = new Uint8Array(word.length * 3);
    }
    const n = utf8.encodeInto(word, this.scratchBytes).written;
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) ids[i] = this.byteIds[this.scratchBytes[i]];
    return this.table.merge(ids);
  }

  // ---------------------------------------------------------------------------------------
  // Hugging Face tokenizer.json

  /** A Hugging Face `tokenizer.json` object (byte-level BPE, GPT-2 pre-tokenizer). */
  toJSON(): HfTokenizerJson {
    const vocab: Record<string, number> = Object.create(null); // "__proto__" is a token too
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
