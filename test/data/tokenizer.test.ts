import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedCorpus } from '../../src/data/corpus.js';
import { BpeTokenizer, byteToUnicode, loadTokenizer, preTokenize, type Tokenizer } from '../../src/data/tokenizer.js';
import { rng } from '../helpers.js';
import { UNICODE_SAMPLES as BASE_SAMPLES } from './unicode.js';

/**
 * Reference BPE encoder, written for clarity: per pre-token, repeatedly merge the adjacent pair
 * of lowest rank (leftmost among equals), one occurrence at a time, as the Hugging Face BPE
 * model does.
 */
function referenceEncode(tok: BpeTokenizer, text: string): number[] {
  const rankOf = new Map(tok.merges().map(([l, r], rank) => [`${l},${r}`, rank]));
  const out: number[] = [];
  for (const word of preTokenize(text)) {
    const ids = Array.from(new TextEncoder().encode(word)); // byte ids are the byte values
    for (;;) {
      let best = -1;
      let at = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const r = rankOf.get(`${ids[i]},${ids[i + 1]}`) ?? -1;
        if (r >= 0 && (best < 0 || r < best)) {
          best = r;
          at = i;
        }
      }
      if (at < 0) break;
      ids.splice(at, 2, tok.mergedId(best));
    }
    out.push(...ids);
  }
  return out;
}

const UNICODE_SAMPLES = [...BASE_SAMPLES, '\n'];

const SMALL_TEXT = [
  'the quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.',
  'interface Foo { bar(): number; baz: string }  // the foo interface',
  ...UNICODE_SAMPLES,
].join('\n').repeat(8);

test('preTokenize splits like the GPT-2 pattern', () => {
  assert.deepEqual(preTokenize("I'll go  home\n\nnow 123abc!?"), [
    'I',
    "'ll",
    ' go',
    ' ',
    ' home',
    '\n', // \s+(?!\S) backs off one character before a word; the last one stands alone
    '\n',
    'now',
    ' 123',
    'abc',
    '!?',
  ]);
  // Oniguruma's \s (Unicode White_Space): U+0085 is whitespace, U+FEFF is not.
  assert.deepEqual(preTokenize('a\u0085b'), ['a', '\u0085', 'b']);
  assert.deepEqual(preTokenize('a \ufeffb'), ['a', ' \ufeff', 'b']);
});

test('hand-checked merges and ids on "aaabdaaabac"', () => {
  // Pair counts: aa 4, ab 2, then ties broken by the smaller (left id, right id).
  //   1: (a,a) -> 259   word: aa a b d aa a b a c   counts (aa,a) 2, (a,b) 2 -> tie
  //   2: (a,b) -> 260   since 97 < 259             word: aa ab d aa ab a c
  //   3: (aa,ab) -> 261 the only pair seen twice   word: aaab d aaab a c
  //   4: (a,c) -> 262   all pairs seen once, (97, 99) is the smallest key
  const tok = BpeTokenizer.train('aaabdaaabac', 263);
  assert.deepEqual(tok.merges(), [
    [97, 97],
    [97, 98],
    [259, 260],
    [97, 99],
  ]);
  assert.equal(tok.vocabSize, 263);
  assert.deepEqual(Array.from(tok.encode('aaabdaaabac')), [261, 100, 261, 262]);
  // Lowest rank first, leftmost among equals: "aaaa" -> aa aa, "aaa" -> aa a, "aab" -> aa b.
  assert.deepEqual(Array.from(tok.encode('aaaa aaa aab')), [259, 259, 32, 259, 97, 32, 259, 98]);
  assert.equal(tok.tokenToString(261), 'aaab');
  assert.equal(tok.decode([261, 100, 261, 262]), 'aaabdaaabac');
});

test('specials come right after the bytes and are never produced by encode', () => {
  const tok = BpeTokenizer.train(SMALL_TEXT, 300);
  assert.equal(tok.bosId, 256);
  assert.equal(tok.eosId, 257);
  assert.equal(tok.padId, 258);
  assert.deepEqual(tok.specials().map((s) => s.content), ['<|begin_of_text|>', '<|end_of_text|>', '<|pad|>']);
  assert.equal(tok.decode([tok.bosId, 104, 105, tok.eosId]), '<|begin_of_text|>hi<|end_of_text|>');
  const ids = Array.from(tok.encode('a <|end_of_text|> b'));
  assert.ok(ids.every((id) => id < 256 || id > 258), 'literal special text stays plain bytes');
  assert.equal(tok.tokenToString(32), 'Ġ');
  assert.equal(tok.tokenToString(10), 'Ċ');
  assert.throws(() => BpeTokenizer.train('abc', 300, { specials: ['hello'] }), /could also be a learned token/);
  assert.throws(() => BpeTokenizer.train('abc', 258), /vocabSize must be an integer >= 259/);
});

test('round-trip encode/decode on arbitrary Unicode', () => {
  const tok = BpeTokenizer.train(SMALL_TEXT, 400);
  for (const s of UNICODE_SAMPLES) {
    assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
  }
  // Random code points from all planes (no lone surrogates), mixed with spaces.
  const r = rng(7);
  for (let k = 0; k < 20; k++) {
    let s = '';
    for (let i = 0; i < 200; i++) {
      const pick = r();
      if (pick < 0.2) s += ' ';
      else if (pick < 0.5) s += String.fromCharCode(97 + Math.floor(r() * 26));
      else {
        let cp = Math.floor(r() * 0x10ffff);
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x4e00;
        s += String.fromCodePoint(cp);
      }
    }
    assert.equal(tok.decode(tok.encode(s)), s);
  }
  // A partial character decodes to U+FFFD, as TextDecoder does.
  const cjk = Array.from(new TextEncoder().encode('語'));
  assert.equal(tok.decode(cjk.slice(0, 2)), '\ufffd');
  assert.equal(tok.decode([...cjk, cjk[0]]), '語\ufffd');
  assert.throws(() => tok.decode([tok.vocabSize]), /token id 400 is out of range \[0, 400\)/);
});

test('encode matches the reference encoder, short and long words', () => {
  const tok = BpeTokenizer.train(SMALL_TEXT + ' aaaaaaaabab abababab xxxxyxxxxy', 420);
  const r = rng(11);
  const alphabet = ['a', 'b', 'x', 'y', 'the', ' ', 'fox', 'é', '語', '👍', '\n', '.'];
  for (let k = 0; k < 30; k++) {
    let s = '';
    const n = k < 10 ? 20 : 400; // long runs without spaces take the heap path (>= 64 bytes)
    for (let i = 0; i < n; i++) {
      const c = alphabet[Math.floor(r() * alphabet.length)];
      if (k >= 10 && c === ' ') continue;
      s += c;
    }
    assert.deepEqual(Array.from(tok.encode(s)), referenceEncode(tok, s), JSON.stringify(s.slice(0, 40)));
  }
  const long = 'ab'.repeat(300) + 'a'.repeat(301);
  assert.deepEqual(Array.from(tok.encode(long)), referenceEncode(tok, long));
  // Real merges on long words: corpus text with everything but letters removed.
  const text = embeddedCorpus({ maxBytes: 60_000 }).text;
  const real = BpeTokenizer.train(text, 700);
  const letters = text.replace(/[^A-Za-z]/g, '');
  for (let i = 0; i < 10; i++) {
    const word = letters.slice(i * 1000, i * 1000 + 300);
    assert.deepEqual(Array.from(real.encode(word)), referenceEncode(real, word), word.slice(0, 40));
  }
});

test('toJSON / fromJSON round-trip in the Hugging Face layout', () => {
  const tok = BpeTokenizer.train(SMALL_TEXT, 360);
  const json = tok.toJSON();
  assert.equal(json.model.type, 'BPE');
  assert.equal(json.model.vocab['Ġ'], 32);
  assert.equal(json.model.vocab['!'], 33);
  assert.equal(json.model.vocab['<|end_of_text|>'], 257);
  assert.equal(Object.keys(json.model.vocab).length, 360);
  assert.equal(json.model.merges.length, 360 - 259);
  assert.deepEqual(json.added_tokens.map((t) => [t.id, t.content, t.special]), [
    [256, '<|begin_of_text|>', true],
    [257, '<|end_of_text|>', true],
    [258, '<|pad|>', true],
  ]);
  const first = tok.merges()[0];
  assert.equal(json.model.merges[0], `${tok.tokenToString(first[0])} ${tok.tokenToString(first[1])}`);
  assert.deepEqual(json.decoder, { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true });

  const text = JSON.stringify(json);
  const back = BpeTokenizer.fromJSON(JSON.parse(text));
  assert.equal(JSON.stringify(back.toJSON()), text);
  assert.equal(back.hash(), tok.hash());
  assert.match(tok.hash(), /^[0-9a-f]{64}$/);
  assert.deepEqual(back.merges(), tok.merges());
  assert.equal(back.eosId, 257);
  for (const s of UNICODE_SAMPLES) assert.deepEqual(back.encode(s), tok.encode(s));
  // The newer merges layout (pairs of strings) reads the same.
  const pairs = JSON.parse(text);
  pairs.model.merges = pairs.model.merges.map((m: string) => m.split(' '));
  assert.equal(BpeTokenizer.fromJSON(pairs).hash(), tok.hash());
  assert.throws(() => BpeTokenizer.fromJSON({ model: { type: 'WordPiece' } }), /model.type is not "BPE"/);
});

test('training is deterministic and honours the vocab size', () => {
  const a = BpeTokenizer.train(SMALL_TEXT, 380);
  const b = BpeTokenizer.train(SMALL_TEXT, 380);
  assert.deepEqual(a.merges(), b.merges());
  assert.equal(a.hash(), b.hash());
  assert.equal(a.vocabSize, 380);
  assert.equal(a.numMerges, 380 - 259);
  assert.ok(Math.max(...a.encode(SMALL_TEXT)) < 380);
  // A smaller vocab is a prefix of a larger one's merges.
  const c = BpeTokenizer.train(SMALL_TEXT, 320);
  assert.deepEqual(c.merges(), a.merges().slice(0, 320 - 259));
  // Progress reaches the total.
  const seen: number[] = [];
  BpeTokenizer.train(SMALL_TEXT, 270, { onProgress: (d, t) => seen.push(d, t) });
  assert.deepEqual(seen.slice(-2), [11, 11]);
  // A text with too few pairs stops early: 'abab' has 2 distinct pairs, then 1.
  const tiny = BpeTokenizer.train('abab', 1000);
  assert.equal(tiny.vocabSize, 259 + 2);
});

test('training on 200 KB of the embedded corpus', () => {
  const corpus = embeddedCorpus({ maxBytes: 200_000 });
  const tok = BpeTokenizer.train(corpus.text, 1024); // its speed: bench/tokenizer.ts
  const ids = tok.encode(corpus.text);
  assert.equal(tok.vocabSize, 1024);
  assert.equal(tok.decode(ids), corpus.text);
  const bytesPerToken = corpus.bytes / ids.length;
  assert.ok(bytesPerToken > 3, `compression ${bytesPerToken.toFixed(2)} bytes/token`);
  assert.equal(byteToUnicode().length, 256);
});

test('allowSpecial: the specials written in the text become their ids', () => {
  const tok = BpeTokenizer.train(SMALL_TEXT, 300);
  const text = 'a<|end_of_text|>b<|pad|><|begin_of_text|>';
  // Default: plain text, so no special id appears (and the text comes back).
  assert.ok(Array.from(tok.encode(text)).every((id) => id < 256 || id > 258));
  assert.equal(tok.decode(tok.encode(text)), text);
  // allowSpecial: the three specials are matched; the text between is encoded as usual.
  assert.deepEqual(Array.from(tok.encode(text, { allowSpecial: true })), [
    ...tok.encode('a'),
    257,
    ...tok.encode('b'),
    258,
    256,
  ]);
  assert.deepEqual(tok.encode('no specials', { allowSpecial: true }), tok.encode('no specials'));
  assert.equal(tok.kind, 'byte-level-bpe');
});

test('loadTokenizer reads a trained tokenizer.json back: same ids, roles and hash', () => {
  const corpus = embeddedCorpus({ maxBytes: 100_000 });
  const tok = BpeTokenizer.train(corpus.text, 600);
  const dir = mkdtempSync(join(tmpdir(), 'litespark-tok-'));
  try {
    const path = join(dir, 'tokenizer.json');
    writeFileSync(path, JSON.stringify(tok.toJSON()));
    const loaded: Tokenizer = loadTokenizer(path);
    assert.equal(loaded.kind, 'byte-level-bpe');
    assert.equal(loaded.vocabSize, 600);
    assert.deepEqual([loaded.bosId, loaded.eosId, loaded.padId], [256, 257, 258]);
    // The written file is the object toJSON gives, so the hash (which keys prepared data)
    // does not depend on which class read it.
    assert.equal(loaded.hash(), tok.hash());
    for (const s of [...UNICODE_SAMPLES, corpus.text.slice(0, 20_000), 'x<|end_of_text|>y']) {
      assert.deepEqual(loaded.encode(s), tok.encode(s), JSON.stringify(s.slice(0, 30)));
      assert.deepEqual(loaded.encode(s, { allowSpecial: true }), tok.encode(s, { allowSpecial: true }));
      assert.equal(loaded.decode(tok.encode(s)), s);
    }
    assert.deepEqual(loaded.decode([256, 104, 105, 257]), tok.decode([256, 104, 105, 257]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
