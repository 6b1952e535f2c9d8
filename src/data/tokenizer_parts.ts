// The pluggable parts of a Hugging Face tokenizer.json, read from their JSON: normalizers,
// pre-tokenizers and decoders, each doing what the `tokenizers` library's part of the same
// name does (checked against it on the cases in test/data/tokenizer_hf.test.ts).
//
//   normalizer     NFC NFD NFKC NFKD Lowercase Strip Replace Prepend Sequence
//   pre_tokenizer  ByteLevel Split Digits Metaspace WhitespaceSplit Sequence
//   decoder        ByteLevel ByteFallback Fuse Strip Replace Metaspace Sequence
//
// Anything else is refused with the JSON path of the part (`pre_tokenizer.pretokenizers[1]`).
// A pre-tokenizer piece carries `first`: it starts at offset 0 of the input (Metaspace's
// prepend_scheme "first" prepends only there, as the library's offsets_original().0 == 0 does).
import { onigToJs } from './tokenizer_regex.js';

/** Reports a bad part: `path` is the JSON path of the offending value. */
export type Fail = (path: string, why: string) => never;

type Obj = Record<string, unknown>;

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

let unicodeToByteMemo: Map<string, number> | undefined;

/** The inverse of byteToUnicode: printable character -> byte value. */
export function unicodeToByte(): ReadonlyMap<string, number> {
  if (!unicodeToByteMemo) {
    unicodeToByteMemo = new Map();
    byteToUnicode().forEach((c, b) => unicodeToByteMemo!.set(c, b));
  }
  return unicodeToByteMemo;
}

const utf8 = new TextEncoder();
const lossy = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `s` with every character mapped through GPT-2's byte table (what ByteLevel feeds the model). */
export function toByteChars(s: string): string {
  const chars = byteToUnicode();
  let out = '';
  for (const b of utf8.encode(s)) out += chars[b];
  return out;
}

// -------------------------------------------------------------------------------------------
// Small readers for part configs

function obj(v: unknown, path: string, fail: Fail): Obj {
  if (!v || typeof v !== 'object' || Array.isArray(v)) fail(path, 'expected an object');
  return v as Obj;
}

function str(o: Obj, key: string, path: string, fail: Fail): string {
  const v = o[key];
  if (typeof v !== 'string') fail(`${path}.${key}`, 'expected a string');
  return v as string;
}

function bool(o: Obj, key: string, path: string, fail: Fail, dflt: boolean): boolean {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') fail(`${path}.${key}`, 'expected true or false');
  return v as boolean;
}

function count(o: Obj, key: string, path: string, fail: Fail): number {
  const v = o[key];
  if (!Number.isInteger(v) || (v as number) < 0) fail(`${path}.${key}`, 'expected a non-negative integer');
  return v as number;
}

function list(o: Obj, key: string, path: string, fail: Fail): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) fail(`${path}.${key}`, 'expected an array');
  return v as unknown[];
}

function oneChar(o: Obj, key: string, path: string, fail: Fail): string {
  const s = str(o, key, path, fail);
  if ([...s].length !== 1) fail(`${path}.${key}`, 'expected a single character');
  return s;
}

/** A `{ "String": s }` or `{ "Regex": r }` pattern as a global 'u' RegExp. */
function pattern(o: Obj, path: string, fail: Fail): RegExp {
  const p = obj(o.pattern, `${path}.pattern`, fail);
  if (typeof p.String === 'string') {
    if (p.String === '') fail(`${path}.pattern.String`, 'empty pattern');
    return new RegExp(p.String.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'), 'gu');
  }
  if (typeof p.Regex === 'string') {
    try {
      return new RegExp(onigToJs(p.Regex), 'gu');
    } catch (e) {
      return fail(`${path}.pattern.Regex`, (e as Error).message);
    }
  }
  return fail(`${path}.pattern`, 'expected { "String": ... } or { "Regex": ... }');
}

/** A Replace part: every match of `pattern` becomes `content` (taken literally, no $ groups). */
function replacer(o: Obj, path: string, fail: Fail): (s: string) => string {
  const content = str(o, 'content', path, fail);
  const p = obj(o.pattern, `${path}.pattern`, fail);
  if (typeof p.String === 'string' && p.String !== '') {
    const literal = p.String;
    return (s) => (s.includes(literal) ? s.split(literal).join(content) : s);
  }
  const re = pattern(o, path, fail);
  return (s) => s.replace(re, () => content);
}

function unknownType(path: string, type: unknown, known: string, fail: Fail): never {
  return fail(`${path}.type`, `${JSON.stringify(type)} is not supported (known: ${known})`);
}

// -------------------------------------------------------------------------------------------
// Normalizers

export type Normalizer = (s: string) => string;

/** The normalizer of a tokenizer.json `normalizer` value; undefined for null. */
export function parseNormalizer(cfg: unknown, path: string, fail: Fail): Normalizer | undefined {
  if (cfg === null || cfg === undefined) return undefined;
  const o = obj(cfg, path, fail);
  switch (o.type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = o.type;
      return (s) => s.normalize(form);
    }
    // Per character, as the library lowercases: no final-sigma rule (Σ is always σ).
    case 'Lowercase':
      return (s) => s.replaceAll('Σ', 'σ').toLowerCase();
    case 'Strip': {
      const left = bool(o, 'strip_left', path, fail, false);
      const right = bool(o, 'strip_right', path, fail, false);
      return (s) => {
        if (left) s = s.replace(/^\p{White_Space}+/u, '');
        if (right) s = s.replace(/\p{White_Space}+$/u, '');
        return s;
      };
    }
    case 'Replace':
      return replacer(o, path, fail);
    case 'Prepend': {
      const prefix = str(o, 'prepend', path, fail);
      return (s) => (s.length > 0 ? prefix + s : s);
    }
    case 'Sequence': {
      const parts = list(o, 'normalizers', path, fail)
        .map((c, i) => parseNormalizer(c, `${path}.normalizers[${i}]`, fail))
        .filter((n): n is Normalizer => n !== undefined);
      return (s) => {
        for (const n of parts) s = n(s);
        return s;
      };
    }
    default:
      return unknownType(path, o.type, 'NFC NFD NFKC NFKD Lowercase Strip Replace Prepend Sequence', fail);
  }
}

// -------------------------------------------------------------------------------------------
// Pre-tokenizers

/** Receives one piece of a split: the piece and whether it starts at offset 0 of the input. */
export type Emit = (piece: string, first: boolean) => void;

export interface PreTokenizerStep {
  split(piece: string, first: boolean, emit: Emit): void;
}

export interface PreTokenizer {
  steps: PreTokenizerStep[];
  /**
   * True when the last step is a plain ByteLevel: the model receives raw text and maps its
   * UTF-8 bytes itself (the byte table applied to every character, which is what ByteLevel
   * does, but only on a cache miss).
   */
  bytesToModel: boolean;
  /** True when any step is ByteLevel (the tokenizer is byte-level). */
  byteLevel: boolean;
}

type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS: Behavior[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

/** GPT-2's pattern, the one ByteLevel uses when use_regex is true (in Oniguruma syntax). */
export const GPT2_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/**
 * Splits on a pattern with the library's rules: matches are found left to right, an empty
 * match right where the previous match ended is skipped, matches and the text between them
 * form the segments, `invert` swaps which are which, and the behavior decides what a match
 * segment becomes. Empty pieces are dropped.
 */
export class SplitStep implements PreTokenizerStep {
  constructor(
    private readonly re: RegExp,
    private readonly behavior: Behavior,
    private readonly invert: boolean,
  ) {}

  split(piece: string, first: boolean, emit: Emit): void {
    const re = this.re;
    const n = piece.length;
    const isolated = this.behavior === 'Isolated';
    // Isolated keeps every segment, so pieces are emitted as found; otherwise segments are
    // collected as [start, end, isMatch] and the behavior is applied to them.
    const segs: Array<[number, number, boolean]> = [];
    let prev = 0;
    let searchAt = 0;
    let lastEnd = -1;
    while (searchAt <= n) {
      re.lastIndex = searchAt;
      const m = re.exec(piece);
      if (m === null) break;
      const s = m.index;
      const e = s + m[0].length;
      if (s === e && e === lastEnd) {
        if (searchAt >= n) break;
        searchAt = advance(piece, searchAt);
        continue;
      }
      if (isolated) {
        if (s > prev) emit(piece.slice(prev, s), first && prev === 0);
        if (e > s) emit(m[0], first && s === 0);
      } else {
        if (s > prev) segs.push([prev, s, this.invert]);
        segs.push([s, e, !this.invert]);
      }
      prev = e;
      lastEnd = e;
      searchAt = e;
    }
    if (isolated) {
      if (prev < n) emit(piece.slice(prev), first && prev === 0);
      return;
    }
    if (prev < n) segs.push([prev, n, this.invert]);
    for (const [s, e] of applyBehavior(segs, this.behavior)) {
      if (e > s) emit(piece.slice(s, e), first && s === 0);
    }
  }
}

/** Index after the code point at i. */
function advance(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? i + 2 : i + 1;
}

/** The library's SplitDelimiterBehavior on a segment list; returns the kept [start, end). */
function applyBehavior(segs: Array<[number, number, boolean]>, behavior: Behavior): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  if (behavior === 'Removed') {
    for (const [s, e, m] of segs) if (!m) out.push([s, e]);
    return out;
  }
  if (behavior === 'MergedWithNext') {
    let prevMatch = false;
    for (let i = segs.length - 1; i >= 0; i--) {
      const [s, e, m] = segs[i];
      if (m && !prevMatch && out.length > 0) out[out.length - 1][0] = s;
      else out.push([s, e]);
      prevMatch = m;
    }
    return out.reverse();
  }
  let prevMatch = false;
  for (const [s, e, m] of segs) {
    const merge =
      behavior === 'Contiguous' ? m === prevMatch : behavior === 'MergedWithPrevious' ? m && !prevMatch : false;
    if (merge && out.length > 0) out[out.length - 1][1] = e;
    else out.push([s, e]);
    prevMatch = m;
  }
  return out;
}

class ByteLevelStep implements PreTokenizerStep {
  private readonly regex: SplitStep | undefined;

  constructor(
    private readonly addPrefixSpace: boolean,
    useRegex: boolean,
    /** Map to byte characters here (a later step sees them) instead of in the model. */
    private readonly mapNow: boolean,
  ) {
    this.regex = useRegex ? new SplitStep(new RegExp(onigToJs(GPT2_PATTERN), 'gu'), 'Isolated', false) : undefined;
  }

  split(piece: string, first: boolean, emit: Emit): void {
    if (this.addPrefixSpace && !piece.startsWith(' ')) piece = ' ' + piece;
    const out: Emit = this.mapNow ? (p, f) => emit(toByteChars(p), f) : emit;
    if (this.regex) this.regex.split(piece, first, out);
    else out(piece, first);
  }
}

class MetaspaceStep implements PreTokenizerStep {
  private readonly splitter: SplitStep | undefined;

  constructor(
    private readonly replacement: string,
    private readonly scheme: 'first' | 'always' | 'never',
    split: boolean,
  ) {
    const re = new RegExp(replacement.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'), 'gu');
    this.splitter = split ? new SplitStep(re, 'MergedWithNext', false) : undefined;
  }

  split(piece: string, first: boolean, emit: Emit): void {
    piece = piece.replaceAll(' ', this.replacement);
    if (
      (this.scheme === 'always' || (this.scheme === 'first' && first)) &&
      !piece.startsWith(this.replacement)
    ) {
      piece = this.replacement + piece;
    }
    if (this.splitter) this.splitter.split(piece, first, emit);
    else emit(piece, first);
  }
}

/** The pre-tokenizer of a tokenizer.json `pre_tokenizer` value (null: no steps). */
export function parsePreTokenizer(cfg: unknown, path: string, fail: Fail): PreTokenizer {
  // Flatten Sequences, remembering each step's config and path.
  const flat: Array<{ o: Obj; path: string }> = [];
  const walk = (c: unknown, p: string): void => {
    if (c === null || c === undefined) return;
    const o = obj(c, p, fail);
    if (o.type === 'Sequence') list(o, 'pretokenizers', p, fail).forEach((x, i) => walk(x, `${p}.pretokenizers[${i}]`));
    else flat.push({ o, path: p });
  };
  walk(cfg, path);

  const steps: PreTokenizerStep[] = [];
  let bytesToModel = false;
  let byteLevel = false;
  flat.forEach(({ o, path: p }, k) => {
    const last = k === flat.length - 1;
    switch (o.type) {
      case 'ByteLevel': {
        byteLevel = true;
        const prefix = bool(o, 'add_prefix_space', p, fail, true);
        const useRegex = bool(o, 'use_regex', p, fail, true);
        if (last && !prefix && !useRegex) bytesToModel = true; // nothing left to do here
        else {
          steps.push(new ByteLevelStep(prefix, useRegex, !last));
          if (last) bytesToModel = true;
        }
        break;
      }
      case 'Split': {
        const behavior = o.behavior as Behavior;
        if (!BEHAVIORS.includes(behavior)) {
          fail(`${p}.behavior`, `${JSON.stringify(o.behavior)} is not one of ${BEHAVIORS.join(', ')}`);
        }
        steps.push(new SplitStep(pattern(o, p, fail), behavior, bool(o, 'invert', p, fail, false)));
        break;
      }
      case 'Digits':
        steps.push(
          new SplitStep(/\p{N}/gu, bool(o, 'individual_digits', p, fail, false) ? 'Isolated' : 'Contiguous', false),
        );
        break;
      case 'WhitespaceSplit':
        steps.push(new SplitStep(/\p{White_Space}+/gu, 'Removed', false));
        break;
      case 'Metaspace': {
        const replacement = oneChar(o, 'replacement', p, fail);
        let scheme = o.prepend_scheme;
        if (scheme === undefined || scheme === null) {
          scheme = bool(o, 'add_prefix_space', p, fail, true) ? 'always' : 'never';
        }
        if (scheme !== 'first' && scheme !== 'always' && scheme !== 'never') {
          fail(`${p}.prepend_scheme`, `${JSON.stringify(scheme)} is not one of first, always, never`);
        }
        steps.push(new MetaspaceStep(replacement, scheme as 'first', bool(o, 'split', p, fail, true)));
        break;
      }
      default:
        unknownType(p, o.type, 'ByteLevel Split Digits Metaspace WhitespaceSplit Sequence', fail);
    }
  });
  return { steps, bytesToModel, byteLevel };
}

// -------------------------------------------------------------------------------------------
// Decoders

export type Decoder = (tokens: string[]) => string[];

/** The decoder of a tokenizer.json `decoder` value; undefined for null. */
export function parseDecoder(cfg: unknown, path: string, fail: Fail): Decoder | undefined {
  if (cfg === null || cfg === undefined) return undefined;
  const o = obj(cfg, path, fail);
  switch (o.type) {
    case 'ByteLevel':
      return (tokens) => [lossy.decode(byteLevelBytes(tokens))];
    case 'ByteFallback':
      return byteFallback;
    case 'Fuse':
      return (tokens) => [tokens.join('')];
    case 'Strip': {
      const content = oneChar(o, 'content', path, fail);
      const start = count(o, 'start', path, fail);
      const stop = count(o, 'stop', path, fail);
      return (tokens) => tokens.map((t) => strip(t, content, start, stop));
    }
    case 'Replace': {
      const replace = replacer(o, path, fail);
      return (tokens) => tokens.map(replace);
    }
    case 'Metaspace': {
      const rep = oneChar(o, 'replacement', path, fail);
      let scheme = o.prepend_scheme;
      if (scheme === undefined || scheme === null) {
        scheme = bool(o, 'add_prefix_space', path, fail, true) ? 'always' : 'never';
      }
      const dropFirst = scheme !== 'never';
      // Token 0 loses every replacement character (when a prefix was prepended); the rest
      // turn them into spaces.
      return (tokens) => tokens.map((t, i) => t.replaceAll(rep, i === 0 && dropFirst ? '' : ' '));
    }
    case 'Sequence': {
      const parts = list(o, 'decoders', path, fail)
        .map((c, i) => parseDecoder(c, `${path}.decoders[${i}]`, fail))
        .filter((d): d is Decoder => d !== undefined);
      return (tokens) => {
        for (const d of parts) tokens = d(tokens);
        return tokens;
      };
    }
    default:
      return unknownType(path, o.type, 'ByteLevel ByteFallback Fuse Strip Replace Metaspace Sequence', fail);
  }
}

/**
 * The bytes of byte-level tokens: each character through the inverse byte table; a token with
 * any character outside the table (an added token like "<|x y|>") gives its own UTF-8.
 */
export function byteLevelBytes(tokens: readonly string[]): Uint8Array {
  const table = unicodeToByte();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const t of tokens) {
    const bytes = tokenByteLevelBytes(t, table);
    parts.push(bytes);
    total += bytes.length;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** One token's bytes under the ByteLevel decoder (see byteLevelBytes). */
export function tokenByteLevelBytes(t: string, table: ReadonlyMap<string, number> = unicodeToByte()): Uint8Array {
  const bytes = new Uint8Array(t.length);
  let n = 0;
  for (const c of t) {
    const b = table.get(c);
    if (b === undefined) return utf8.encode(t);
    bytes[n++] = b;
  }
  return bytes.subarray(0, n);
}

/** "<0xNN>" -> NN, else -1. Like the library's u8::from_str_radix, a leading '+' is allowed. */
export function byteTokenValue(t: string): number {
  if (t.length !== 6 || !t.startsWith('<0x') || t[5] !== '>') return -1;
  const hex = t.slice(3, 5);
  if (!/^\+?[0-9a-fA-F]+$/.test(hex)) return -1;
  return parseInt(hex, 16);
}

/** Runs of <0xNN> tokens become their UTF-8 text, or one U+FFFD per byte if not valid UTF-8. */
function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = (): void => {
    if (bytes.length === 0) return;
    try {
      out.push(strict.decode(Uint8Array.from(bytes)));
    } catch {
      out.push(...bytes.map(() => '\ufffd'));
    }
    bytes = [];
  };
  for (const t of tokens) {
    const b = byteTokenValue(t);
    if (b >= 0) bytes.push(b);
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}

/** Up to `start` leading and `stop` trailing copies of `content` removed. */
function strip(t: string, content: string, start: number, stop: number): string {
  const chars = [...t];
  let lo = 0;
  while (lo < start && lo < chars.length && chars[lo] === content) lo++;
  let hi = chars.length;
  for (let k = 0; k < stop && hi > lo && chars[hi - 1] === content; k++) hi--;
  return chars.slice(lo, hi).join('');
}
