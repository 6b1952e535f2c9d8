// Hugging Face tokenizer.json loading (src/data/tokenizer_hf.ts and its parts): small
// tokenizers of the three families built here, with ids derived by hand from the algorithm
// (each expected sequence says why), the parts on their own, exactness of the SentencePiece
// cuts against a plain reference encoder, round trips, and bad files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedCorpus } from '../../src/data/corpus.js';
import { DataError } from '../../src/data/errors.js';
import { BpeTokenizer, byteToUnicode, HfTokenizer, loadTokenizer } from '../../src/data/tokenizer.js';
import { parseDecoder, parseNormalizer, parsePreTokenizer, type Fail } from '../../src/data/tokenizer_parts.js';
import { onigToJs } from '../../src/data/tokenizer_regex.js';
import { rng } from '../helpers.js';
import { UNICODE_SAMPLES as BASE_SAMPLES } from './unicode.js';

type Json = Record<string, unknown>;
const utf8 = new TextEncoder();

const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// GPT-2's vocab numbers the 256 byte characters in bytes_to_unicode order: the printable
// bytes (33..126, 161..172, 174..255) first, then the rest (0..32, 127..160, 173), so "!" is 0,
// "a" 64, "Ġ" (space) 220, "Ċ" (newline) 198.
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const BYTE_ORDER = [...range(33, 126), ...range(161, 172), ...range(174, 255), ...range(0, 32), ...range(127, 160), 173];
const BYTE_ID = new Map(BYTE_ORDER.map((b, i) => [b, i]));
/** GPT-2 ids of the UTF-8 bytes of s (no merges). */
const B = (s: string): number[] => Array.from(utf8.encode(s), (b) => BYTE_ID.get(b)!);

function added(id: number, content: string, extra: Json = {}): Json {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...extra };
}

function bpeModel(vocab: Record<string, number>, merges: string[], extra: Json = {}): Json {
  return {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges,
    ...extra,
  };
}

/** The 256 byte characters, then `more` tokens from id 256 on. */
function byteVocab(more: string[]): Record<string, number> {
  const vocab: Record<string, number> = {};
  BYTE_ORDER.forEach((b, i) => (vocab[byteToUnicode()[b]] = i));
  more.forEach((t, i) => (vocab[t] = 256 + i));
  return vocab;
}

// Added tokens get the library's ids: a token in the vocab keeps its vocab id, a new one the
// next id after the vocab's entries and the added tokens before it (the files' `id` agree).

/** GPT-2 style: ByteLevel pre-tokenizer with the GPT-2 regex, a handful of merges. */
function gpt2Json(): Json {
  // Merge r creates id 256 + r.
  const merges = ['Ġ t', 'h e', 'Ġt he', 'l l', 'll o', 'he llo', "' s", '1 2'];
  const vocab = byteVocab(['Ġt', 'he', 'Ġthe', 'll', 'llo', 'hello', "'s", '12']);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(264, '<|endoftext|>'), added(265, '<|reserved special|>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: bpeModel(vocab, merges),
  };
}

/** Llama 3 style: Split on Llama 3's regex, ByteLevel without regex, ignore_merges. */
function llama3Json(ignoreMerges = true): Json {
  const merges = ['Ġ t', 'h e', 'Ġt he', "' s", '1 2', '12 3', 'S a', 'Å ¿', 'Å¿ a'];
  // 256..264 are the merges; "Ġthere" is in the vocab but no merge makes it. Its id, 290,
  // leaves a gap: ids need not be contiguous.
  const vocab = byteVocab(['Ġt', 'he', 'Ġthe', "'s", '12', '123', 'Sa', 'Å¿', 'Å¿a']);
  vocab['Ġthere'] = 290;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    // The vocab has 266 entries, so the added tokens are 266, 267, 268.
    added_tokens: [added(266, '<|begin_of_text|>'), added(267, '<|end_of_text|>'), added(268, '<|eot_id|>')],
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [266], tokens: ['<|begin_of_text|>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: bpeModel(vocab, merges, { ignore_merges: ignoreMerges }),
  };
}

// Llama 2 style ids: <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258, then these.
const L2_CHARS = ['▁', 't', 'h', 'e', 'l', 'o', 'w', 'r', 'd', 'a']; // 259..268
const L2_MERGES = ['▁ t', 'h e', '▁t he', 'l l', 'll o', '▁ ▁', '▁ w', 'o r', '▁w or', 'l d', '▁wor ld', '▁ he', '▁he llo'];
// Merge r creates id 269 + r: ▁t 269, he 270, ▁the 271, ll 272, llo 273, ▁▁ 274, ▁w 275,
// or 276, ▁wor 277, ld 278, ▁world 279, ▁he 280, ▁hello 281.
const FB = (b: number): number => 3 + b; // id of <0xNN>

/** Llama 2 style (meta-llama/Llama-2-7b-hf's layout): normalizer ▁, byte fallback, no pre-tokenizer. */
function llama2Json(model: Json = {}, form: 'normalizer' | 'first' | 'always' = 'normalizer'): Json {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  L2_CHARS.forEach((c, i) => (vocab[c] = 259 + i));
  L2_MERGES.forEach((m, i) => (vocab[m.replace(' ', '')] = 269 + i));
  const meta = form !== 'normalizer';
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(0, '<unk>'), added(1, '<s>'), added(2, '</s>')],
    normalizer: meta
      ? null
      : {
          type: 'Sequence',
          normalizers: [
            { type: 'Prepend', prepend: '▁' },
            { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
          ],
        },
    pre_tokenizer: meta ? { type: 'Metaspace', replacement: '▁', prepend_scheme: form, split: true } : null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: meta
        ? [{ type: 'Metaspace', replacement: '▁', prepend_scheme: form, split: true }, { type: 'ByteFallback' }, { type: 'Fuse' }]
        : [
            { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
            { type: 'ByteFallback' },
            { type: 'Fuse' },
            { type: 'Strip', content: ' ', start: 1, stop: 0 },
          ],
    },
    model: bpeModel(vocab, L2_MERGES, { unk_token: '<unk>', fuse_unk: true, byte_fallback: true, ...model }),
  };
}

const ids = (a: Int32Array): number[] => Array.from(a);

const UNICODE_SAMPLES = [...BASE_SAMPLES, '▁▁a▁ b'];

test('GPT-2 style: byte-level BPE with the GPT-2 regex', () => {
  const tok = HfTokenizer.fromJSON(gpt2Json());
  assert.equal(tok.kind, 'byte-level-bpe');
  assert.equal(tok.vocabSize, 266);
  // <|endoftext|> is BOS and EOS by name (the ByteLevel post-processor names none); no pad.
  assert.deepEqual([tok.bosId, tok.eosId, tok.padId], [264, 264, -1]);
  // "Ġ" itself is U+0120, bytes C4 A0; 語 is E8 AA 9E.
  assert.deepEqual(B('a Ġ\n語'), [64, 220, 128, 254, 198, 164, 103, 252]);
  // "hello" -> h e l l o; (h,e) rank 1 -> he l l o; (l,l) 3 -> he ll o; (ll,o) 4 -> he llo;
  // (he,llo) 5 -> hello = 261. " the": (Ġ,t) 0 -> Ġt h e; (h,e) 1; (Ġt,he) 2 -> Ġthe = 258.
  // " world": no pair of Ġ w o r l d has a merge.
  assert.deepEqual(ids(tok.encode('hello the world')), [261, 258, ...B(' world')]);
  // Pre-tokens "it", "'s", " 12345": 's is merge 6 (262); 1 2 is merge 7 (263).
  assert.deepEqual(ids(tok.encode("it's 12345")), [...B('it'), 262, B(' ')[0], 263, ...B('345')]);
  // GPT-2's contractions are lower case only: "IT'S" -> "IT", "'", "S" (no 's merge).
  assert.deepEqual(ids(tok.encode("IT'S")), B("IT'S"));
  // A special token's spelling is plain text unless asked for.
  assert.deepEqual(ids(tok.encode('a<|endoftext|>b')), B('a<|endoftext|>b'));
  assert.deepEqual(ids(tok.encode('a<|endoftext|>b', { allowSpecial: true })), [64, 264, 65]);
  // Decoding: byte characters back to bytes; a token with a character outside the byte table
  // (the space in <|reserved special|>) is its own UTF-8.
  assert.equal(tok.decode([261, 258]), 'hello the');
  assert.equal(tok.decode([64, 265, 264]), 'a<|reserved special|><|endoftext|>');
  // Bytes that are not valid UTF-8: a truncated sequence is one U+FFFD, as TextDecoder does.
  assert.equal(tok.decode(B('語')), '語');
  assert.equal(tok.decode(B('語').slice(0, 2)), '\ufffd');
  assert.equal(tok.decode([...B('語').slice(0, 1), 64]), '\ufffda');
  assert.throws(() => tok.decode([266]), /token id 266 is out of range \[0, 266\)/);
  for (const s of UNICODE_SAMPLES) assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
  // A lone surrogate (no UTF-8 form) is encoded as U+FFFD.
  assert.deepEqual(ids(tok.encode('a\ud800b')), ids(tok.encode('a\ufffdb')));
  assert.equal(tok.decode(tok.encode('x\udc00')), 'x\ufffd');
});

test('Llama 3 style: its regex, case-insensitive contractions, ignore_merges, digits', () => {
  const tok = HfTokenizer.fromJSON(llama3Json());
  const plain = HfTokenizer.fromJSON(llama3Json(false));
  assert.equal(tok.vocabSize, 291);
  // BOS from the post-processor's template, EOS by name.
  assert.deepEqual([tok.bosId, tok.eosId, tok.padId], [266, 267, -1]);
  // "the": (h,e) -> t he. " there": with ignore_merges the pre-token "Ġthere" is a vocab
  // token (290) and is taken whole; without, the merges give Ġthe r e.
  assert.deepEqual(ids(tok.encode('the there')), [...B('t'), 257, 290]);
  assert.deepEqual(ids(plain.encode('the there')), [...B('t'), 257, 258, ...B('re')]);
  // (?i:'s): "'S" is its own pre-token, then "am"; were the contraction case-sensitive,
  // "'Sam" would be one pre-token and merge 6 (S a -> Sa, 262) would apply.
  assert.deepEqual(ids(tok.encode("'Sam")), B("'Sam"));
  assert.deepEqual(ids(tok.encode("x'Sam")), B("x'Sam"));
  assert.deepEqual(ids(tok.encode('Sam')), [262, ...B('m')]);
  // "ſ" (long s) folds to s: "'ſ" is a contraction, then "am". Its bytes C5 BF are "Å¿"
  // (merge 7, id 263); "Å¿ a" (merge 8) would apply only if "'ſam" were one pre-token.
  assert.deepEqual(ids(tok.encode("'ſam")), [...B("'"), 263, ...B('am')]);
  assert.deepEqual(ids(tok.encode('ſam')), [264, ...B('m')]);
  // "'s" in lower case is in the vocab (259): ignore_merges takes it whole.
  assert.deepEqual(ids(tok.encode("IT'S it's")), [...B('IT'), ...B("'S"), ...B(' it'), 259]);
  // \p{N}{1,3}: "12345" -> "123" (in the vocab: 261) and "45"; the space before is its own
  // pre-token (\s+(?!\S) cannot take it, the final \s+ does).
  assert.deepEqual(ids(tok.encode(' 12345')), [...B(' '), 261, ...B('45')]);
  // \s*[\r\n]+ keeps newlines apart from the words.
  assert.deepEqual(ids(tok.encode('a\n\nb')), B('a\n\nb'));
  // Specials only with allowSpecial.
  assert.deepEqual(ids(tok.encode('<|begin_of_text|>hi<|eot_id|>', { allowSpecial: true })), [266, ...B('hi'), 268]);
  const asText = ids(tok.encode('<|begin_of_text|>hi<|eot_id|>'));
  assert.ok(asText.every((id) => id < 256), 'plain text: bytes only');
  assert.throws(() => tok.decode([291]), /token id 291 is out of range \[0, 291\)/);
  assert.equal(tok.decode(asText), '<|begin_of_text|>hi<|eot_id|>');
  assert.equal(tok.decode([266, 258, 268]), '<|begin_of_text|> the<|eot_id|>');
  assert.throws(() => tok.decode([280]), /token id 280 has no token/);
  for (const s of UNICODE_SAMPLES) assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
});

test('Llama 2 style: ▁ normalizer, byte fallback, unk, specials, decoder chain', () => {
  const tok = HfTokenizer.fromJSON(llama2Json());
  assert.equal(tok.kind, 'sentencepiece-bpe');
  assert.deepEqual([tok.bosId, tok.eosId, tok.padId, tok.unkId], [1, 2, -1, 0]);
  // "▁hello": (h,e) 1 -> ▁ he l l o; (l,l) 3; (ll,o) 4 -> ▁ he llo; (▁,he) 11 -> ▁he llo;
  // (▁he,llo) 12 -> ▁hello 281. "▁world": (▁,w) 6, (o,r) 7, (▁w,or) 8, (l,d) 9, (▁wor,ld) 10 -> 279.
  assert.deepEqual(ids(tok.encode('hello world')), [281, 279]);
  // Two spaces: "▁▁world": (▁,▁) is rank 5, before (▁,w) 6, so ▁▁ w or ld. "▁the": 0, 1, 2.
  assert.deepEqual(ids(tok.encode('the  world')), [271, 274, 265, 276, 278]);
  // é is not in the vocab: its bytes C3 A9 as <0xC3> <0xA9>; l l o still merge.
  assert.deepEqual(ids(tok.encode('héllo')), [259, 261, FB(0xc3), FB(0xa9), 273]);
  assert.equal(tok.decode([259, 261, FB(0xc3), FB(0xa9), 273]), 'héllo');
  // Decoder: ▁ -> space, byte tokens -> text, fuse, strip one leading space.
  assert.equal(tok.decode([281, 279]), 'hello world');
  assert.equal(tok.decode([271, 274, 265, 276, 278]), 'the  world');
  // Byte tokens that are not valid UTF-8: one U+FFFD per byte (the ByteFallback decoder).
  assert.equal(tok.decode([268, FB(0xe8), FB(0xaa), 268]), 'a\ufffd\ufffda');
  // Specials: "<s>" splits the text first, and each piece is normalized on its own, so
  // "hello" after it gets its ▁ (the library's behaviour). As plain text, "<", "s", ">" are
  // not in the vocab: byte fallback.
  assert.deepEqual(ids(tok.encode('<s>hello', { allowSpecial: true })), [1, 281]);
  assert.deepEqual(ids(tok.encode('<s>hello')), [259, FB(0x3c), FB(0x73), FB(0x3e), 270, 273]);
  assert.equal(tok.decode([1, 281]), '<s> hello');
  for (const s of UNICODE_SAMPLES.slice(0, 5)) {
    // The normalizer's ▁ comes back as a space (and leading spaces: one stripped, one added).
    assert.equal(tok.decode(tok.encode(s)), s.replaceAll('▁', ' '), JSON.stringify(s));
  }
  // A lone surrogate is U+FFFD (EF BF BD by byte fallback).
  assert.deepEqual(ids(tok.encode('\ud800')), [259, FB(0xef), FB(0xbf), FB(0xbd)]);

  // Without byte fallback: unknown characters become <unk>, fused when fuse_unk is set.
  const unk = HfTokenizer.fromJSON(llama2Json({ byte_fallback: false }));
  assert.deepEqual(ids(unk.encode('héé')), [259, 261, 0]);
  assert.equal(unk.decode([259, 261, 0]), 'h<unk>');
  const unfused = HfTokenizer.fromJSON(llama2Json({ byte_fallback: false, fuse_unk: false }));
  assert.deepEqual(ids(unfused.encode('héé')), [259, 261, 0, 0]);
  // No unk token at all: the library drops unknown characters.
  const none = HfTokenizer.fromJSON(llama2Json({ byte_fallback: false, unk_token: null }));
  assert.deepEqual(ids(none.encode('héé')), [259, 261]);
  assert.equal(none.unkId, -1);
});

test('Llama 2 Metaspace form: prepend_scheme first / always', () => {
  const first = HfTokenizer.fromJSON(llama2Json({}, 'first'));
  const always = HfTokenizer.fromJSON(llama2Json({}, 'always'));
  // Metaspace: spaces -> ▁, ▁ prepended, split before each ▁: "▁hello", "▁world".
  assert.deepEqual(ids(first.encode('hello world')), [281, 279]);
  // The Metaspace decoder drops the ▁ of the first token.
  assert.equal(first.decode([281, 279]), 'hello world');
  // "first": only the piece at offset 0 of the input gets the ▁; after <s> it does not, so
  // "hello" -> he llo (no ▁he merge). "always": every piece does.
  assert.deepEqual(ids(first.encode('<s>hello world', { allowSpecial: true })), [1, 270, 273, 279]);
  assert.deepEqual(ids(always.encode('<s>hello world', { allowSpecial: true })), [1, 281, 279]);
});

test('continuing_subword_prefix and end_of_word_suffix', () => {
  const make = (vocab: Record<string, number>, merges: string[], model: Json): HfTokenizer =>
    HfTokenizer.fromJSON({
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: 'WhitespaceSplit' },
      post_processor: null,
      decoder: null,
      model: bpeModel(vocab, merges, { unk_token: '[UNK]', ...model }),
    });
  // Prefix "##" on every character but a word's first; a merge's result drops the right
  // side's prefix (a + ##b = ab). "abc": a ##b ##c -> ab ##c -> abc. "abd": ##d is unknown.
  const pre = make({ '[UNK]': 0, a: 1, '##b': 2, '##c': 3, ab: 4, abc: 5, b: 6 }, ['a ##b', 'ab ##c'], {
    continuing_subword_prefix: '##',
  });
  assert.deepEqual(ids(pre.encode('ab abc b a')), [4, 5, 6, 1]);
  assert.deepEqual(ids(pre.encode('abd ba')), [4, 0, 6, 0]);
  // Suffix "</w>" on a word's last character: "ab" is a b</w> -> ab</w>; in "abc" the b has
  // no suffix, so no merge.
  const suf = make({ '[UNK]': 0, a: 1, 'b</w>': 2, 'ab</w>': 3, b: 4, 'c</w>': 5, 'a</w>': 6 }, ['a b</w>'], {
    end_of_word_suffix: '</w>',
  });
  assert.deepEqual(ids(suf.encode('ab abc b a')), [3, 1, 4, 5, 2, 6]);
  assert.deepEqual(ids(suf.encode('abd ba')), [1, 4, 0, 4, 6]);
  // No decoder: tokens joined with spaces.
  assert.equal(suf.decode([3, 6]), 'ab</w> a</w>');
});

test('added tokens: longest first, lstrip / rstrip / single_word, normalized ones', () => {
  const json = gpt2Json();
  const vocab = (json.model as Json).vocab as Record<string, number>;
  json.added_tokens = [
    added(264, '<|endoftext|>'),
    added(265, '<|end'), // shorter, overlapping: the longer match wins where both start
    added(266, '[MASK]', { lstrip: true, rstrip: true, special: false }),
    added(267, 'fox', { single_word: true, special: false, normalized: true }),
  ];
  json.normalizer = { type: 'Lowercase' };
  const tok = HfTokenizer.fromJSON(json);
  assert.equal(vocab['Ġ'], 220);
  // Specials need allowSpecial; the longer <|endoftext|> wins over <|end.
  assert.deepEqual(ids(tok.encode('<|endoftext|><|end', { allowSpecial: true })), [264, 265]);
  // Non-special added tokens always match, as in the library. [MASK] takes the spaces
  // around it (lstrip / rstrip). fox is normalized (matched after lowercasing) and only as
  // a whole word: "FOX" matches, "foxes" does not.
  assert.deepEqual(ids(tok.encode('a  [MASK]  b')), [64, 266, 65]);
  assert.deepEqual(ids(tok.encode('FOX foxes')), [267, ...B(' foxes')]);
  // Not single-word inside "afox": plain text (lowercased).
  assert.deepEqual(ids(tok.encode('aFox')), B('afox'));
  // The file's ids are not what counts: "he" is vocab id 257; the new token after it gets
  // 264 whatever the file says (the library's rule), and toJSON writes those ids.
  const odd = gpt2Json();
  odd.added_tokens = [added(5, 'he'), added(400, '<|x|>')];
  const oddTok = HfTokenizer.fromJSON(odd);
  assert.deepEqual(ids(oddTok.encode('<|x|>he', { allowSpecial: true })), [264, 257]);
  assert.deepEqual(oddTok.toJSON().added_tokens.map((t) => t.id), [257, 264]);
  assert.equal(oddTok.vocabSize, 265);
});

test('parts: Split behaviors, Digits, Metaspace, WhitespaceSplit, invert', () => {
  const fail: Fail = (p, why) => {
    throw new Error(`${p}: ${why}`);
  };
  const run = (cfg: Json, text: string): string[] => {
    const pre = parsePreTokenizer(cfg, 'pre_tokenizer', fail);
    const out: string[] = [];
    let emit = (p: string): void => void out.push(p);
    for (const step of [...pre.steps].reverse()) {
      const next = emit;
      emit = (p: string, first = true): void => step.split(p, first, next as never);
    }
    (emit as (p: string, f: boolean) => void)(text, true);
    return out;
  };
  const split = (behavior: string, invert = false): Json => ({
    type: 'Split',
    pattern: { String: ',' },
    behavior,
    invert,
  });
  // Segments of ",a,,b,": , a , , b , (each comma its own match).
  assert.deepEqual(run(split('Isolated'), ',a,,b,'), [',', 'a', ',', ',', 'b', ',']);
  assert.deepEqual(run(split('Removed'), ',a,,b,'), ['a', 'b']);
  assert.deepEqual(run(split('MergedWithPrevious'), 'a,,b,'), ['a,', ',', 'b,']);
  assert.deepEqual(run(split('MergedWithNext'), ',a,,b,'), [',a', ',', ',b', ',']);
  assert.deepEqual(run(split('Contiguous'), ',a,,b,'), [',', 'a', ',,', 'b', ',']);
  assert.deepEqual(run(split('Removed', true), ',a,,b,'), [',', ',', ',', ',']);
  assert.deepEqual(run(split('MergedWithNext', true), ',a,,b,'), [',', 'a,', ',', 'b,']);
  // Empty matches of x*: at 0, 1 and 5 (an empty match right after a match is skipped).
  const xs = (behavior: string): Json => ({ type: 'Split', pattern: { Regex: 'x*' }, behavior, invert: false });
  assert.deepEqual(run(xs('Isolated'), 'abxxc'), ['a', 'b', 'xx', 'c']);
  assert.deepEqual(run(xs('MergedWithPrevious'), 'abxxc'), ['a', 'bxx', 'c']);
  // Digits: each digit (individual) or runs; \p{N} includes ².
  assert.deepEqual(run({ type: 'Digits', individual_digits: true }, 'a123b4'), ['a', '1', '2', '3', 'b', '4']);
  assert.deepEqual(run({ type: 'Digits', individual_digits: false }, 'a123b4²'), ['a', '123', 'b', '4²']);
  assert.deepEqual(run({ type: 'WhitespaceSplit' }, ' a \t b\n'), ['a', 'b']);
  // Metaspace in a Sequence: "first" prepends only to the piece at offset 0.
  const meta = (scheme: string, splitOn: boolean): Json => ({
    type: 'Sequence',
    pretokenizers: [split('Isolated'), { type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split: splitOn }],
  });
  assert.deepEqual(run(meta('first', true), 'a b,c d'), ['▁a', '▁b', ',', 'c', '▁d']);
  assert.deepEqual(run(meta('always', true), 'a b,c d'), ['▁a', '▁b', '▁,', '▁c', '▁d']);
  assert.deepEqual(run(meta('never', false), 'a b,c d'), ['a▁b', ',', 'c▁d']);
  // Old form: add_prefix_space true is "always".
  assert.deepEqual(run({ type: 'Metaspace', replacement: '▁', add_prefix_space: true }, 'Hey  my'), ['▁Hey', '▁', '▁my']);
  // ByteLevel with add_prefix_space prepends to every piece; before another step it maps now.
  assert.deepEqual(
    run({ type: 'Sequence', pretokenizers: [split('Isolated'), { type: 'ByteLevel', add_prefix_space: true, use_regex: false }, split('Isolated')] }, 'a b,c'),
    ['ĠaĠb', 'Ġ', ',', 'Ġc'],
  );
});

test('parts: normalizers and decoders', () => {
  const fail: Fail = (p, why) => {
    throw new Error(`${p}: ${why}`);
  };
  const norm = (cfg: Json, s: string): string => parseNormalizer(cfg, 'normalizer', fail)!(s);
  // Lowercase per character, as the library does: no final-sigma form.
  assert.equal(norm({ type: 'Lowercase' }, 'ΟΔΟΣ İ'), 'οδοσ i̇');
  assert.equal(norm({ type: 'NFKC' }, 'ﬁ①'), 'fi1');
  assert.equal(norm({ type: 'NFC' }, 'e\u0301'), 'é');
  // Replace content is literal ($& is not a back-reference); Prepend skips empty text.
  assert.equal(norm({ type: 'Replace', pattern: { String: 'a' }, content: '$&' }, 'banana'), 'b$&n$&n$&');
  assert.equal(norm({ type: 'Replace', pattern: { Regex: '\\s+' }, content: '_' }, 'a \u0085 b'), 'a_b');
  assert.equal(norm({ type: 'Prepend', prepend: '▁' }, ''), '');
  assert.equal(norm({ type: 'Strip', strip_left: true, strip_right: false }, ' \u3000a '), 'a ');
  const dec = (cfg: Json, tokens: string[]): string[] => parseDecoder(cfg, 'decoder', fail)!(tokens);
  // Strip: up to `start` leading and `stop` trailing copies, per token.
  assert.deepEqual(dec({ type: 'Strip', content: ' ', start: 2, stop: 1 }, ['  a  ', 'b ', '   c']), ['a ', 'b', ' c']);
  // ByteFallback: a run of byte tokens is its text, or one U+FFFD per byte when invalid.
  assert.deepEqual(dec({ type: 'ByteFallback' }, ['<0xE2>', '<0x82>', 'a', '<0xE2>', '<0x82>', '<0xAC>', 'b']), [
    '\ufffd',
    '\ufffd',
    'a',
    '€',
    'b',
  ]);
  // Metaspace: the first token loses every ▁ (prepend_scheme other than never).
  assert.deepEqual(dec({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'first' }, ['▁a▁b', '▁c']), ['ab', ' c']);
  assert.deepEqual(dec({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'never' }, ['▁a▁b', '▁c']), [' a b', ' c']);
  assert.deepEqual(dec({ type: 'ByteLevel' }, ['Hello', 'Ġwor', '<|x y|>', 'âĤ']), ['Hello wor<|x y|>\ufffd']);
  assert.deepEqual(dec({ type: 'Fuse' }, ['a', 'b']), ['ab']);
  // No decoder: tokens joined by spaces (the library's behaviour).
  const json = llama2Json();
  json.decoder = null;
  assert.equal(HfTokenizer.fromJSON(json).decode([268, 259, 261]), 'a ▁ h');
});

test('Oniguruma patterns translate to JS with the same meaning', () => {
  const m = (pattern: string, text: string): string[] =>
    [...text.matchAll(new RegExp(onigToJs(pattern), 'gu'))].map((x) => x[0]);
  // \s is White_Space: U+0085 yes, U+FEFF no.
  assert.deepEqual(m('\\s+', 'a\u0085b\ufeffc'), ['\u0085']);
  // \d is Nd (Arabic-Indic too, not ²); \w is L|M|N|Pc.
  assert.deepEqual(m('\\d+', '12 ١٢ ²'), ['12', '١٢']);
  assert.deepEqual(m('\\w+', 'a²b x_y'), ['a²b', 'x_y']);
  // (?i:...) by simple case folding: ſ ~ s, K (Kelvin) ~ k.
  assert.deepEqual(m("(?i:'s|k)", "'S 'ſ K \u212a 's"), ["'S", "'ſ", 'K', '\u212a', "'s"]);
  // . is anything but \n; ^ and $ are line anchors at \n only.
  assert.deepEqual(m('.', 'a\nb\rc'), ['a', 'b', '\r', 'c']);
  assert.deepEqual(m('^a|b$', 'ab\nab\rab'), ['a', 'b', 'a', 'b']);
  // {,2} is {0,2}; a brace that is no quantifier is a literal.
  assert.deepEqual(m('a{,2}b|{x}', 'aaab {x}'), ['aab', '{x}']);
  assert.deepEqual(m('\\p{Han}+|\\p{^L}+', '日本x!?'), ['日本', '!?']);
  assert.throws(() => onigToJs('a++'), /possessive quantifiers are not supported/);
  assert.throws(() => onigToJs('(?>a)'), /atomic groups are not supported/);
  assert.throws(() => onigToJs('[a[b]]'), /nested character classes/);
});

/**
 * Reference for a SentencePiece-style tokenizer.json with no pre-tokenizer and a Prepend /
 * Replace normalizer: the whole text is one word, characters (or their <0xNN> bytes) are the
 * symbols, and the lowest-ranked adjacent pair (leftmost among equals) is merged until none
 * is left, as the library's BPE model does. Quadratic and plain.
 */
function referenceSentencePiece(json: Json, text: string): number[] {
  const model = json.model as { vocab: Record<string, number>; merges: Array<[string, string]> };
  const vocab = new Map(Object.entries(model.vocab));
  const rank = new Map(model.merges.map(([a, b], r) => [`${vocab.get(a)},${vocab.get(b)}`, r]));
  const merged = model.merges.map(([a, b]) => vocab.get(a + b)!);
  const word = text.length > 0 ? '▁' + text.replaceAll(' ', '▁') : '';
  const syms: number[] = [];
  for (const c of word) {
    const id = vocab.get(c);
    if (id !== undefined) syms.push(id);
    else for (const b of utf8.encode(c)) syms.push(vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)!);
  }
  for (;;) {
    let best = -1;
    let at = -1;
    for (let i = 0; i + 1 < syms.length; i++) {
      const r = rank.get(`${syms[i]},${syms[i + 1]}`);
      if (r !== undefined && (best < 0 || r < best)) {
        best = r;
        at = i;
      }
    }
    if (at < 0) return syms;
    syms.splice(at, 2, merged[best]);
  }
}

/** A Llama-2-style tokenizer.json from a trained byte-level tokenizer's merges (whole characters only). */
function sentencePieceFrom(bpe: BpeTokenizer, extra: Array<[string, string]>, model: Json = {}): Json {
  const strict = new TextDecoder('utf-8', { fatal: true });
  const text = (id: number): string | undefined => {
    try {
      return strict.decode(bpe.tokenBytes(id)).replaceAll(' ', '▁');
    } catch {
      return undefined;
    }
  };
  const vocab = new Map<string, number>([['<unk>', 0]]);
  const add = (t: string): void => void (vocab.has(t) || vocab.set(t, vocab.size));
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let id = 0; id < bpe.vocabSize; id++) {
    const t = text(id);
    if (t !== undefined && [...t].length === 1) add(t);
  }
  const merges: Array<[string, string]> = [];
  bpe.merges().forEach(([l, r], rank) => {
    const [a, b, m] = [text(l), text(r), text(bpe.mergedId(rank))];
    if (a === undefined || b === undefined || m === undefined || !vocab.has(a) || !vocab.has(b)) return;
    add(m);
    merges.push([a, b]);
  });
  for (const [a, b] of extra) {
    add(a + b);
    merges.push([a, b]);
  }
  const json = llama2Json();
  json.added_tokens = [added(0, '<unk>')];
  json.model = bpeModel(Object.fromEntries(vocab), merges as never, { unk_token: '<unk>', byte_fallback: true, ...model });
  return json;
}

test('SentencePiece-style long words: cuts are exact (▁ runs, joined characters, none)', () => {
  const corpus = embeddedCorpus({ maxBytes: 120_000 }).text;
  const bpe = BpeTokenizer.train(corpus, 1200);
  // The byte-level merges include ones like ("\n", " ") -> "\n▁": a token ending in another
  // character joined to one starting with ▁, so cuts before ▁ are not exact; the tokenizer
  // cuts between characters that no merge joins instead. Adding ("e", "▁") makes it join
  // more; ignore_merges rules cuts out (one merge over the whole text).
  const variants: Array<[string, Json]> = [
    ['joined', sentencePieceFrom(bpe, [])],
    ['more joined', sentencePieceFrom(bpe, [['e', '▁']])],
    ['whole', sentencePieceFrom(bpe, [], { ignore_merges: true })],
  ];
  // And a vocabulary where cutting before ▁ is exact: the merges without such joins.
  const clean = sentencePieceFrom(bpe, []);
  const cm = (clean.model as Json).merges as Array<[string, string]>;
  (clean.model as Json).merges = cm.filter(([a, b]) => !(b.startsWith('▁') && !a.endsWith('▁')));
  variants.unshift(['▁ runs', clean]);
  const r = rng(3);
  const texts = [corpus.slice(50_000, 53_000), corpus.slice(90_000, 91_000) + ' 日本語 é\u0301 👍🏽  x ', ''];
  for (let k = 0; k < 4; k++) {
    let s = '';
    for (let i = 0; i < 600; i++) s += ['e', ' ', 'th', '\n', '語', 'é', 'x', '  '][Math.floor(r() * 8)];
    texts.push(s);
  }
  const modes = ['▁ runs', 'junctions', 'junctions', 'whole word'];
  for (const [k, [name, json]] of variants.entries()) {
    const tok = HfTokenizer.fromJSON(json);
    const inner = tok as unknown as { unitRe?: RegExp; junctions?: object };
    assert.equal(inner.unitRe ? '▁ runs' : inner.junctions ? 'junctions' : 'whole word', modes[k], name);
    for (const t of texts) {
      assert.deepEqual(ids(tok.encode(t)), referenceSentencePiece(json, t), `${name}: ${JSON.stringify(t.slice(0, 30))}`);
    }
  }
});

test('toJSON loads back to the same ids; hash is over the canonical JSON', () => {
  for (const json of [gpt2Json(), llama3Json(), llama2Json(), llama2Json({}, 'first')]) {
    const tok = HfTokenizer.fromJSON(json);
    const text = JSON.stringify(tok.toJSON());
    const back = HfTokenizer.fromJSON(JSON.parse(text));
    assert.equal(JSON.stringify(back.toJSON()), text);
    assert.equal(back.hash(), tok.hash());
    assert.match(tok.hash(), /^[0-9a-f]{64}$/);
    for (const s of [...UNICODE_SAMPLES, 'hello the world <s> <|eot_id|>']) {
      assert.deepEqual(back.encode(s), tok.encode(s));
      assert.deepEqual(back.encode(s, { allowSpecial: true }), tok.encode(s, { allowSpecial: true }));
    }
  }
  // GPT-2's own file has "" for the subword prefix and suffix: the same as none, written back as is.
  const empty = gpt2Json();
  Object.assign(empty.model as Json, { continuing_subword_prefix: '', end_of_word_suffix: '' });
  const emptyTok = HfTokenizer.fromJSON(empty);
  assert.deepEqual(emptyTok.encode('hello the world'), HfTokenizer.fromJSON(gpt2Json()).encode('hello the world'));
  assert.equal(emptyTok.toJSON().model.continuing_subword_prefix, '');
  // Merges in the newer pair form read the same.
  const pairs = gpt2Json();
  const model = pairs.model as Json;
  model.merges = (model.merges as string[]).map((m) => m.split(' '));
  assert.deepEqual(HfTokenizer.fromJSON(pairs).encode('hello the world'), HfTokenizer.fromJSON(gpt2Json()).encode('hello the world'));
});

test('bad tokenizer files: a DataError naming the file and what is wrong', () => {
  const dir = mkdtempSync(join(tmpdir(), 'litespark-tok-'));
  try {
    const write = (name: string, content: string | Json): string => {
      const path = join(dir, name);
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
      return path;
    };
    // The error comes from loading, or from `use` on the loaded tokenizer.
    const bad = (name: string, content: string | Json, re: RegExp, use?: (tok: HfTokenizer) => unknown): void => {
      const path = write(name, content);
      assert.throws(
        () => (use ? use(loadTokenizer(path)) : loadTokenizer(path)),
        (e: unknown) => e instanceof DataError && e.message.startsWith(path) && re.test(e.message),
        name,
      );
    };
    const edit = (f: (j: Json) => void): Json => {
      const j = gpt2Json();
      f(j);
      return j;
    };
    assert.throws(() => loadTokenizer(join(dir, 'missing.json')), (e: unknown) => e instanceof DataError && /cannot read tokenizer file/.test((e as Error).message));
    bad('malformed.json', '{ "model": ', /not valid JSON/);
    bad('array.json', '[]', /expected a JSON object/);
    bad('wordpiece.json', edit((j) => ((j.model as Json).type = 'WordPiece')), /model\.type: "WordPiece" is not supported \(only "BPE"\)/);
    bad('no-model.json', edit((j) => delete j.model), /model: missing/);
    bad('bert.json', edit((j) => (j.pre_tokenizer = { type: 'BertPreTokenizer' })), /pre_tokenizer\.type: "BertPreTokenizer" is not supported/);
    bad(
      'nested.json',
      edit((j) => (j.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Digits' }, { type: 'Punctuation' }] })),
      /pre_tokenizer\.pretokenizers\[1\]\.type: "Punctuation" is not supported/,
    );
    bad('merges.json', edit((j) => ((j.model as Json).merges = ['h e', 'a zz'])), /model\.merges\[1\]: "a zz" names "zz", which is not in model\.vocab/);
    bad('merge-form.json', edit((j) => ((j.model as Json).merges = ['h e x'])), /model\.merges\[0\]: "h e x" is not two tokens/);
    bad('decoder.json', edit((j) => (j.decoder = { type: 'WordPiece' })), /decoder\.type: "WordPiece" is not supported/);
    bad('normalizer.json', edit((j) => (j.normalizer = { type: 'BertNormalizer' })), /normalizer\.type: "BertNormalizer" is not supported/);
    bad(
      'regex.json',
      edit((j) => (j.pre_tokenizer = { type: 'Split', pattern: { Regex: '\\p{L}++' }, behavior: 'Isolated', invert: false })),
      /pre_tokenizer\.pattern\.Regex: cannot translate regex .*possessive/,
    );
    bad('behavior.json', edit((j) => (j.pre_tokenizer = { type: 'Split', pattern: { String: ' ' }, behavior: 'Sideways' })), /pre_tokenizer\.behavior: "Sideways" is not one of/);
    bad('dropout.json', edit((j) => ((j.model as Json).dropout = 0.1)), /model\.dropout: BPE dropout/);
    bad('vocab-id.json', edit((j) => (((j.model as Json).vocab as Json).x = -1)), /model\.vocab\["x"\]: id -1 is not an integer in \[0, 16777216\)/);
    bad('huge-id.json', edit((j) => (((j.model as Json).vocab as Json).x = 2 ** 30)), /model\.vocab\["x"\]: id 1073741824 is not an integer/);
    bad(
      'unk.json',
      edit((j) => Object.assign(j.model as Json, { unk_token: '<nope>', byte_fallback: false, vocab: { a: 0 }, merges: [] })),
      /model\.unk_token "<nope>" is not in model\.vocab/,
      (tok) => tok.encode('b'),
    );
    bad('added-content.json', edit((j) => (j.added_tokens = [added(5, '')])), /added_tokens\[0\]\.content: expected a non-empty string/);
    // A good file loads.
    assert.equal(loadTokenizer(write('good.json', gpt2Json())).vocabSize, 266);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
