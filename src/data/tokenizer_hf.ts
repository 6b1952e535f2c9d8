// Any BPE tokenizer.json of the GPT-2 / Llama 3 (byte-level) and Llama 2 (SentencePiece-style:
// byte fallback, "▁" for spaces) families, encoding and decoding exactly as the Hugging Face
// `tokenizers` library does. Parts (normalizer, pre-tokenizer, decoder) are in
// tokenizer_parts.ts, added-token matching in tokenizer_added.ts, the merge step in
// tokenizer_merge.ts, the regex translation in tokenizer_regex.ts.
//
// encode(text), in the library's order:
//   1. added tokens with normalized=false are found in the raw text, leftmost then longest
//      first, with their lstrip / rstrip / single_word options;
//   2. each piece between them is normalized, and added tokens with normalized=true are found
//      in the normalized piece (their content normalized the same way);
//   3. each remaining piece is split by the pre-tokenizer into words;
//   4. each word goes through the BPE model: characters (byte-level: the UTF-8 bytes through
//      GPT-2's byte table) looked up in the vocab, unknown ones as <0xNN> byte tokens
//      (byte_fallback) or the unk token (fused with fuse_unk) or dropped when there is no unk
//      token; ignore_merges: a word that is itself in the vocab is that one id; then the merges
//      by rank. Words are cached (CACHE_LIMIT entries, then the cache is cleared).
// Special added tokens (special=true) are matched only with { allowSpecial: true }:
// encode(text) is the library's encode(text, add_special_tokens=False) with
// encode_special_tokens=True (specials are plain text), encode(text, { allowSpecial: true })
// the same with encode_special_tokens=False (its default). Non-special added tokens always
// match, as in the library. The post-processor is never run: encode adds no BOS / EOS.
//
// decode(ids): each id's token (an added token's content, else the vocab entry) through the
// decoder; with no decoder the tokens are joined with spaces, as the library does.
//
// Roles (bosId, eosId, padId; -1 when none): BOS is the special token the post-processor's
// single template puts before $A (Llama 2 "<s>", Llama 3 "<|begin_of_text|>"), EOS the one it
// puts after $A; where the template has none, the first of these names that exists (added
// tokens, then the vocab): BOS <|begin_of_text|> <s> <|startoftext|> <|endoftext|>, EOS
// <|end_of_text|> </s> <|endoftext|> <|eot_id|>. PAD is `padding.pad_id` when padding is set,
// else the first of <pad> <|pad|> <|finetune_right_pad_id|>.
//
// Ids: the vocab's, and for added tokens the ones the library gives them when it loads the
// file (a token in the vocab keeps its vocab id, a new one takes the next id after the vocab's
// entries and the added tokens before it); well-formed files say the same in `id`, and toJSON
// writes these. Ids need not be contiguous; vocabSize is one more than the largest id.
//
// Where this differs from the library: `truncation` and `padding` are not applied (encode
// never cuts or pads); a lone surrogate in the input (which the library cannot take) is
// encoded as U+FFFD, as TextEncoder does; decode throws on an id with no token (the library
// skips it); BPE dropout (random merges) is refused.
//
// SentencePiece-style speed: with no pre-tokenizer a whole text is one word. Where it is
// provably the same, the word is cut into pieces that are merged and cached like words. A
// merge across a cut between characters x and y would need a merge whose left token ends in
// x and whose right token starts with y (the first merge to span the cut joins the symbol
// ending there to the one starting there), so no such merge means no merge ever spans it:
//   - before each run of "▁", when no merge joins a token ending in another character to one
//     starting with "▁" (Llama 2; a regex finds the cuts), or else
//   - between two characters that are tokens by themselves and that no merge joins (words
//     over 256 characters only).
// Both need no ignore_merges, no subword prefix / suffix and one string per id (and the first,
// "▁" in the vocab and an unk token not ending in "▁"). Otherwise the whole word is merged at
// once (tokenizer_merge.ts). Equality with plain whole-word BPE is tested.
//
// Measured speed: see the header of tokenizer.ts.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DataError } from './errors.js';
import type { EncodeOptions, HfAddedToken, Tokenizer, TokenizerJson } from './tokenizer.js';
import { AddedMatcher, lastChar, type AddedInfo } from './tokenizer_added.js';
import { CACHE_LIMIT, MergeTable, PairSet } from './tokenizer_merge.js';
import {
  byteToUnicode,
  parseDecoder,
  parseNormalizer,
  parsePreTokenizer,
  toByteChars,
  tokenByteLevelBytes,
  type Decoder,
  type Emit,
  type Fail,
  type Normalizer,
} from './tokenizer_parts.js';

/** Words longer than this (UTF-16 units) are not cached (the library: 256 bytes). */
const CACHE_WORD_MAX = 256;
/** Ids must be below this (2^24: far above any real vocabulary; id -> token is an array). */
const MAX_ID = 1 << 24;
const SPACE_MARK = '\u2581'; // ▁

const ROLE_NAMES = {
  bos: ['<|begin_of_text|>', '<s>', '<|startoftext|>', '<|endoftext|>'],
  eos: ['<|end_of_text|>', '</s>', '<|endoftext|>', '<|eot_id|>'],
  pad: ['<pad>', '<|pad|>', '<|finetune_right_pad_id|>'],
};

const utf8 = new TextEncoder();
const lossy = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

type Obj = Record<string, unknown>;

/** Reads a tokenizer.json file; every problem is a DataError naming the file. */
export function loadTokenizer(path: string): HfTokenizer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DataError(`${path}: cannot read tokenizer file (${(e as Error).message})`);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return HfTokenizer.fromJSON(obj, path);
}

export class HfTokenizer implements Tokenizer {
  readonly kind: 'byte-level-bpe' | 'sentencepiece-bpe';
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** Id of model.unk_token, -1 if none. */
  readonly unkId: number;

  private readonly json: Obj;
  /** The file name (or 'tokenizer.json') that errors start with. */
  private readonly source: string;
  /** added_tokens as read, with the ids the library gives them. */
  private readonly addedJson: HfAddedToken[];
  private readonly modelJson: Obj;
  private readonly vocab: Map<string, number>;
  private readonly addedByContent: Map<string, AddedInfo>;
  /** id -> token: an added token's content, else the vocab entry. */
  private readonly tokens: Array<string | undefined>;
  private readonly table: MergeTable;
  private readonly normalizer: Normalizer | undefined;
  private readonly decoder: Decoder | undefined;
  private readonly byteDecode: boolean;
  private idBytes: Array<Uint8Array | undefined> = [];
  private readonly pre: Emit;
  private readonly bytesToModel: boolean;
  private readonly rawAdded: AddedMatcher | undefined;
  private readonly normAdded: AddedMatcher | undefined;

  // The BPE model's options.
  private readonly unkToken: string | null;
  private readonly fuseUnk: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;
  private readonly prefix: string | null;
  private readonly suffix: string | null;
  /** Id of each byte's GPT-2 character, -1 if not in the vocab (byte-level only). */
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly allBytesKnown: boolean;
  /** Id of each byte's <0xNN> token, -1 if not in the vocab. */
  private readonly fallbackIds = new Int32Array(256).fill(-1);
  /** Cuts a SentencePiece-style word before each run of "▁" (see the header), when exact. */
  private readonly unitRe: RegExp | undefined;
  /** Otherwise: (last char of left, first char of right) of every merge: no cut between them. */
  private readonly junctions: PairSet | undefined;
  /** Code points that are tokens by themselves. */
  private readonly charTokens = new Set<number>();

  private readonly cache = new Map<string, Int32Array>();
  private buf = new Int32Array(1024);
  private n = 0;
  private scratch = new Uint8Array(256);

  private constructor(json: Obj, source: string) {
    const fail: Fail = (path, why) => {
      throw new DataError(`${source}: ${path}: ${why}`);
    };
    this.json = json;
    this.source = source;
    const model = (json.model ?? fail('model', 'missing')) as Obj;
    if (typeof model !== 'object' || Array.isArray(model)) fail('model', 'expected an object');
    if (model.type !== 'BPE') {
      if (model.type === undefined) fail('model.type', 'missing');
      fail('model.type', `${JSON.stringify(model.type)} is not supported (only "BPE")`);
    }
    this.modelJson = model;
    if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0) {
      fail('model.dropout', 'BPE dropout (random merges) is not supported');
    }
    const optString = (key: string): string | null => {
      const v = model[key];
      if (v === undefined || v === null) return null;
      if (typeof v !== 'string') fail(`model.${key}`, 'expected a string or null');
      return v as string;
    };
    const optBool = (key: string): boolean => {
      const v = model[key];
      if (v === undefined || v === null) return false;
      if (typeof v !== 'boolean') fail(`model.${key}`, 'expected true or false');
      return v as boolean;
    };
    this.unkToken = optString('unk_token');
    // GPT-2's file has "" for both: the same as none.
    this.prefix = optString('continuing_subword_prefix') || null;
    this.suffix = optString('end_of_word_suffix') || null;
    this.fuseUnk = optBool('fuse_unk');
    this.byteFallback = optBool('byte_fallback');
    this.ignoreMerges = optBool('ignore_merges');

    // Vocab.
    const vocabJson = model.vocab;
    if (!vocabJson || typeof vocabJson !== 'object' || Array.isArray(vocabJson)) fail('model.vocab', 'expected an object');
    this.vocab = new Map();
    let maxId = -1;
    for (const [tok, id] of Object.entries(vocabJson as Obj)) {
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= MAX_ID) {
        fail(`model.vocab[${JSON.stringify(tok)}]`, `id ${JSON.stringify(id)} is not an integer in [0, ${MAX_ID})`);
      }
      this.vocab.set(tok, id as number);
      if ((id as number) > maxId) maxId = id as number;
    }

    // Added tokens. Their ids are the library's, not the file's `id`: a token in the vocab
    // has its vocab id, a new one the next id after the vocab (vocab entries, not the largest
    // id) and the added tokens before it. The two agree in well-formed files.
    const addedJson = json.added_tokens ?? [];
    if (!Array.isArray(addedJson)) fail('added_tokens', 'expected an array');
    const addedIds = new Map<string, number>();
    let maxAdded = -1;
    const modelSize = this.vocab.size;
    const added: AddedInfo[] = (addedJson as unknown[]).map((t, i) => {
      const p = `added_tokens[${i}]`;
      if (!t || typeof t !== 'object') fail(p, 'expected an object');
      const o = t as Obj;
      if (!Number.isInteger(o.id) || (o.id as number) < 0) fail(`${p}.id`, 'expected a non-negative integer');
      if (typeof o.content !== 'string' || o.content === '') fail(`${p}.content`, 'expected a non-empty string');
      const flag = (key: string, dflt: boolean): boolean => {
        const v = o[key];
        if (v === undefined || v === null) return dflt;
        if (typeof v !== 'boolean') fail(`${p}.${key}`, 'expected true or false');
        return v as boolean;
      };
      const info: AddedInfo = {
        id: o.id as number,
        content: o.content as string,
        special: flag('special', false),
        lstrip: flag('lstrip', false),
        rstrip: flag('rstrip', false),
        singleWord: flag('single_word', false),
        normalized: flag('normalized', true),
      };
      let id = addedIds.get(info.content) ?? this.vocab.get(info.content);
      if (id === undefined) id = maxAdded < 0 ? modelSize : maxAdded >= modelSize || modelSize === 0 ? maxAdded + 1 : modelSize;
      addedIds.set(info.content, id);
      info.id = id;
      if (id > maxAdded) maxAdded = id;
      if (id > maxId) maxId = id;
      return info;
    });
    this.addedJson = (addedJson as HfAddedToken[]).map((t, i) => (t.id === added[i].id ? t : { ...t, id: added[i].id }));
    this.addedByContent = new Map(added.map((a) => [a.content, a]));
    if (maxId >= MAX_ID) fail('added_tokens', `ids reach ${maxId}, more than ${MAX_ID - 1}`);
    this.vocabSize = maxId + 1;
    this.tokens = new Array<string | undefined>(this.vocabSize);
    for (const [tok, id] of this.vocab) if (this.tokens[id] === undefined) this.tokens[id] = tok;
    for (const a of added) this.tokens[a.id] = a.content;

    // Merges: [left, right] strings; the merged token is left + right without the prefix.
    if (!Array.isArray(model.merges)) fail('model.merges', 'expected an array');
    const prefixLen = this.prefix?.length ?? 0;
    const mergeStrings: Array<[string, string]> = [];
    const triples = (model.merges as unknown[]).map((m, rank): [number, number, number] => {
      const p = `model.merges[${rank}]`;
      let pair: [string, string];
      if (typeof m === 'string') {
        const parts = m.split(' ');
        if (parts.length !== 2) fail(p, `${JSON.stringify(m)} is not two tokens separated by one space`);
        pair = [parts[0], parts[1]];
      } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
        pair = [m[0], m[1]];
      } else return fail(p, 'expected "left right" or ["left", "right"]');
      const merged = pair[0] + pair[1].slice(prefixLen);
      const ids = [pair[0], pair[1], merged].map((tok) => {
        const id = this.vocab.get(tok);
        if (id === undefined) fail(p, `${JSON.stringify(m)} names ${JSON.stringify(tok)}, which is not in model.vocab`);
        return id!;
      });
      mergeStrings.push(pair);
      return [ids[0], ids[1], ids[2]];
    });
    this.table = new MergeTable(triples, this.vocabSize, 'last');

    const unk = this.unkToken === null ? undefined : this.vocab.get(this.unkToken);
    this.unkId = unk ?? -1;
    for (let b = 0; b < 256; b++) {
      const id = this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      if (id !== undefined) this.fallbackIds[b] = id;
    }

    // Parts.
    this.normalizer = parseNormalizer(json.normalizer, 'normalizer', fail);
    const preTok = parsePreTokenizer(json.pre_tokenizer, 'pre_tokenizer', fail);
    this.bytesToModel = preTok.bytesToModel;
    this.decoder = parseDecoder(json.decoder, 'decoder', fail);
    const dec = json.decoder as Obj | null | undefined;
    this.byteDecode = !!dec && dec.type === 'ByteLevel';
    this.kind = preTok.byteLevel ? 'byte-level-bpe' : 'sentencepiece-bpe';

    const chars = byteToUnicode();
    let known = 0;
    for (let b = 0; b < 256; b++) {
      const id = this.vocab.get(chars[b]);
      if (id !== undefined) {
        this.byteIds[b] = id;
        known++;
      }
    }
    this.allBytesKnown = known === 256 && this.prefix === null && this.suffix === null;

    // Exact cuts of long words (see the header).
    const distinctIds = new Set(this.vocab.values()).size === this.vocab.size;
    if (!preTok.byteLevel && !this.ignoreMerges && this.prefix === null && this.suffix === null && distinctIds) {
      const spaceCuts =
        this.vocab.has(SPACE_MARK) &&
        !(this.unkToken ?? '').endsWith(SPACE_MARK) &&
        mergeStrings.every(([l, r]) => !(r.startsWith(SPACE_MARK) && !l.endsWith(SPACE_MARK)));
      if (spaceCuts) this.unitRe = /\u2581*[^\u2581]+|\u2581+/g;
      else {
        this.junctions = new PairSet(mergeStrings.length);
        for (const [l, r] of mergeStrings) this.junctions.add(lastChar(l, l.length).codePointAt(0)!, r.codePointAt(0)!);
        for (const tok of this.vocab.keys()) {
          const cp = tok.codePointAt(0)!;
          if (tok.length === (cp > 0xffff ? 2 : 1)) this.charTokens.add(cp);
        }
      }
    }

    // Added-token matchers: normalized=false on the raw text, normalized=true after the normalizer.
    const raw = added.filter((a) => !a.normalized);
    const norm = added.filter((a) => a.normalized);
    this.rawAdded = raw.length > 0 ? new AddedMatcher(raw, (a) => a.content) : undefined;
    this.normAdded =
      norm.length > 0 ? new AddedMatcher(norm, (a) => (this.normalizer ? this.normalizer(a.content) : a.content)) : undefined;

    // The pre-tokenizer's steps chained, ending in the model.
    let emit: Emit = (word) => this.encodeWord(word);
    for (let k = preTok.steps.length - 1; k >= 0; k--) {
      const step = preTok.steps[k];
      const next = emit;
      emit = (piece, first) => step.split(piece, first, next);
    }
    this.pre = emit;

    // Roles.
    const idOf = (name: string): number => this.tokenToId(name) ?? -1;
    const byName = (names: string[]): number => {
      for (const name of names) {
        const id = idOf(name);
        if (id >= 0) return id;
      }
      return -1;
    };
    const tpl = templateRoles(json.post_processor);
    this.bosId = tpl.bos ?? byName(ROLE_NAMES.bos);
    this.eosId = tpl.eos ?? byName(ROLE_NAMES.eos);
    const padding = json.padding as Obj | null | undefined;
    this.padId =
      padding && typeof padding === 'object' && Number.isInteger(padding.pad_id)
        ? (padding.pad_id as number)
        : byName(ROLE_NAMES.pad);
  }

  /**
   * A tokenizer from a parsed tokenizer.json object; `source` (a file name) starts every
   * error message.
   */
  static fromJSON(obj: unknown, source = 'tokenizer.json'): HfTokenizer {
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new DataError(`${source}: expected a JSON object at the top level`);
    }
    return new HfTokenizer(obj as Obj, source);
  }

  /** Id of a token (added tokens first, then the vocab), as the library's token_to_id. */
  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.vocab.get(token);
  }

  /** The token string of an id (an added token's content, else its vocab entry). */
  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  // ---------------------------------------------------------------------------------------
  // Encoding

  /** Token ids of `text` (see the header for what allowSpecial does). Never adds BOS / EOS. */
  encode(text: string, opts: EncodeOptions = {}): Int32Array {
    const allowSpecial = opts.allowSpecial ?? false;
    if (!(text as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      text = (text as unknown as { toWellFormed(): string }).toWellFormed();
    }
    this.n = 0;
    const m = this.rawAdded;
    if (m && (allowSpecial || m.hasNonSpecial)) {
      for (const [s, e, id] of m.split(text, allowSpecial)) {
        if (id >= 0) this.push(id);
        else this.encodeNormalized(text.slice(s, e), s === 0, allowSpecial);
      }
    } else this.encodeNormalized(text, true, allowSpecial);
    const out = this.buf.slice(0, this.n);
    if (this.buf.length > 1 << 20) this.buf = new Int32Array(1024);
    return out;
  }

  private encodeNormalized(piece: string, first: boolean, allowSpecial: boolean): void {
    if (piece.length === 0) return;
    const s = this.normalizer ? this.normalizer(piece) : piece;
    const m = this.normAdded;
    if (m && (allowSpecial || m.hasNonSpecial)) {
      for (const [a, b, id] of m.split(s, allowSpecial)) {
        if (id >= 0) this.push(id);
        else if (b > a) this.pre(s.slice(a, b), first && a === 0);
      }
    } else if (s.length > 0) this.pre(s, first);
  }

  private push(id: number): void {
    if (this.n === this.buf.length) this.grow(1);
    this.buf[this.n++] = id;
  }

  private pushAll(ids: Int32Array): void {
    if (this.n + ids.length > this.buf.length) this.grow(ids.length);
    if (ids.length === 1) this.buf[this.n++] = ids[0];
    else {
      this.buf.set(ids, this.n);
      this.n += ids.length;
    }
  }

  private grow(extra: number): void {
    const bigger = new Int32Array(Math.max(this.buf.length * 2, this.n + extra));
    bigger.set(this.buf.subarray(0, this.n));
    this.buf = bigger;
  }

  /** The model on one pre-tokenizer word (cut into exact pieces where possible). */
  private encodeWord(word: string): void {
    const re = this.unitRe;
    if (re !== undefined) {
      re.lastIndex = 0;
      for (let m = re.exec(word); m !== null; m = re.exec(word)) this.pushAll(this.wordIds(m[0]));
    } else if (this.junctions !== undefined && word.length > CACHE_WORD_MAX) this.encodeCut(word);
    else this.pushAll(this.wordIds(word));
  }

  /** Cuts between two characters that are tokens and that no merge joins (see the header). */
  private encodeCut(word: string): void {
    const junctions = this.junctions!;
    const chars = this.charTokens;
    let start = 0;
    let prev = -1; // previous code point if it is a token, else -1
    for (let i = 0; i < word.length; ) {
      const cp = word.codePointAt(i)!;
      const known = chars.has(cp);
      if (known && prev >= 0 && !junctions.has(prev, cp)) {
        this.pushAll(this.wordIds(word.slice(start, i)));
        start = i;
      }
      prev = known ? cp : -1;
      i += cp > 0xffff ? 2 : 1;
    }
    this.pushAll(this.wordIds(word.slice(start)));
  }

  private wordIds(word: string): Int32Array {
    let ids = this.cache.get(word);
    if (ids !== undefined) return ids;
    ids = this.modelWord(word);
    if (word.length <= CACHE_WORD_MAX) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  private modelWord(word: string): Int32Array {
    if (this.ignoreMerges) {
      const id = this.vocab.get(this.bytesToModel ? toByteChars(word) : word);
      if (id !== undefined) return Int32Array.of(id);
    }
    if (this.bytesToModel && this.allBytesKnown) {
      if (this.scratch.length < word.length * 3) this.scratch = new Uint8Array(word.length * 3);
      const n = utf8.encodeInto(word, this.scratch).written;
      const ids = new Int32Array(n);
      for (let i = 0; i < n; i++) ids[i] = this.byteIds[this.scratch[i]];
      return this.table.merge(ids);
    }
    return this.table.merge(this.initialSymbols(this.bytesToModel ? toByteChars(word) : word));
  }

  /** The library's per-character start of a word: vocab, else byte fallback, else unk. */
  private initialSymbols(w: string): Int32Array {
    const out: number[] = [];
    let unkPending = false;
    const chars = [...w];
    for (let k = 0; k < chars.length; k++) {
      let s = chars[k];
      if (k > 0 && this.prefix !== null) s = this.prefix + s;
      if (k === chars.length - 1 && this.suffix !== null) s = s + this.suffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        if (unkPending) {
          out.push(this.unkId);
          unkPending = false;
        }
        out.push(id);
        continue;
      }
      if (this.byteFallback) {
        const bytes = utf8.encode(s);
        let ok = true;
        for (const b of bytes) if (this.fallbackIds[b] < 0) ok = false;
        if (ok) {
          for (const b of bytes) out.push(this.fallbackIds[b]);
          continue; // as in the library, a pending unk stays pending
        }
      }
      if (this.unkToken !== null) {
        if (this.unkId < 0) {
          throw new DataError(`${this.source}: model.unk_token ${JSON.stringify(this.unkToken)} is not in model.vocab`);
        }
        if (unkPending && !this.fuseUnk) out.push(this.unkId);
        unkPending = true;
      }
    }
    if (unkPending) out.push(this.unkId);
    return Int32Array.from(out);
  }

  // ---------------------------------------------------------------------------------------
  // Decoding

  /** Text of `ids` through the decoder (see the header); throws on an id with no token. */
  decode(ids: ArrayLike<number>): string {
    const tokens = new Array<string>(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const t = Number.isInteger(id) && id >= 0 ? this.tokens[id] : undefined;
      if (t === undefined) {
        throw new RangeError(
          id >= 0 && id < this.vocabSize
            ? `token id ${id} has no token`
            : `token id ${id} is out of range [0, ${this.vocabSize})`,
        );
      }
      tokens[i] = t;
    }
    if (this.byteDecode) return this.decodeBytes(ids);
    if (this.decoder) return this.decoder(tokens).join('');
    return tokens.join(' ');
  }

  /** The ByteLevel decoder with each id's bytes computed once. */
  private decodeBytes(ids: ArrayLike<number>): string {
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      let b = this.idBytes[id];
      if (b === undefined) {
        b = tokenByteLevelBytes(this.tokens[id]!);
        this.idBytes[id] = b;
      }
      total += b.length;
    }
    const buf = new Uint8Array(total);
    let off = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.idBytes[ids[i]]!;
      buf.set(b, off);
      off += b.length;
    }
    return lossy.decode(buf);
  }

  // ---------------------------------------------------------------------------------------
  // tokenizer.json

  /**
   * The tokenizer.json object: the parts as they were read, the model's vocab in id order and
   * its merges as given. Loads back to the same ids (and for a file written by
   * BpeTokenizer.toJSON, is that same object, so the hashes agree).
   */
  toJSON(): TokenizerJson {
    const j = this.json;
    const m = this.modelJson;
    const entries = [...this.vocab].sort((a, b) => a[1] - b[1]);
    const vocab: Record<string, number> = Object.create(null); // "__proto__" is a token too
    for (const [tok, id] of entries) vocab[tok] = id;
    return {
      version: (j.version as string | undefined) ?? '1.0',
      truncation: j.truncation ?? null,
      padding: j.padding ?? null,
      added_tokens: this.addedJson,
      normalizer: j.normalizer ?? null,
      pre_tokenizer: j.pre_tokenizer ?? null,
      post_processor: j.post_processor ?? null,
      decoder: j.decoder ?? null,
      model: {
        type: 'BPE',
        dropout: m.dropout ?? null,
        unk_token: this.unkToken,
        continuing_subword_prefix: (m.continuing_subword_prefix as string | null | undefined) ?? null,
        end_of_word_suffix: (m.end_of_word_suffix as string | null | undefined) ?? null,
        fuse_unk: this.fuseUnk,
        byte_fallback: this.byteFallback,
        ignore_merges: this.ignoreMerges,
        vocab,
        merges: m.merges as Array<string | [string, string]>,
      },
    };
  }

  /** sha256 (hex) of JSON.stringify(toJSON()). */
  hash(): string {
    return createHash('sha256').update(JSON.stringify(this.toJSON())).digest('hex');
  }
}

/** BOS / EOS ids from a TemplateProcessing (or Bert / Roberta processor), if it names them. */
function templateRoles(pp: unknown): { bos?: number; eos?: number } {
  if (!pp || typeof pp !== 'object') return {};
  const o = pp as Obj;
  if (o.type === 'Sequence' && Array.isArray(o.processors)) {
    const out: { bos?: number; eos?: number } = {};
    for (const p of o.processors) {
      const r = templateRoles(p);
      out.bos ??= r.bos;
      out.eos ??= r.eos;
    }
    return out;
  }
  if ((o.type === 'RobertaProcessing' || o.type === 'BertProcessing') && Array.isArray(o.cls) && Array.isArray(o.sep)) {
    return { bos: o.cls[1] as number, eos: o.sep[1] as number };
  }
  if (o.type !== 'TemplateProcessing' || !Array.isArray(o.single)) return {};
  const specials = (o.special_tokens ?? {}) as Record<string, { ids?: number[] }>;
  const idOf = (piece: unknown): number | undefined => {
    const name = (piece as { SpecialToken?: { id?: string } }).SpecialToken?.id;
    const ids = name === undefined ? undefined : specials[name]?.ids;
    return Array.isArray(ids) && Number.isInteger(ids[0]) ? ids[0] : undefined;
  };
  const a = o.single.findIndex((p) => (p as { Sequence?: { id?: string } }).Sequence?.id === 'A');
  if (a < 0) return {};
  const before = o.single.slice(0, a).map(idOf).filter((x) => x !== undefined);
  const after = o.single.slice(a + 1).map(idOf).filter((x) => x !== undefined);
  return { bos: before[0], eos: after[0] };
}
