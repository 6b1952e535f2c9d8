// Streaming detokenization: every character printed exactly once, and only when complete, for
// UTF-8 text split across byte tokens and across merged tokens of a trained tokenizer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BpeTokenizer } from '../../src/data/tokenizer.js';
import { TextStream } from '../../src/infer/text_stream.js';
import { UNICODE_SAMPLES } from '../data/unicode.js';

const tok = BpeTokenizer.train(UNICODE_SAMPLES.join('\n').repeat(3) + ' the cat sat on the mat', 400);

function stream(ids: ArrayLike<number>, context: number[] = []): string[] {
  const s = new TextStream(tok, context);
  const out = Array.from(ids, (id) => s.push(id));
  out.push(s.flush());
  return out;
}

test('a string split into single-byte tokens prints each character once, when its last byte arrives', () => {
  const text = 'aé€😀 日本 👨‍👩‍👧';
  const bytes = new TextEncoder().encode(text); // ids 0..255 are the bytes
  const parts = stream(bytes);
  assert.equal(parts.join(''), text);
  for (const p of parts) assert.ok(!p.includes('\uFFFD'), `partial character printed: ${JSON.stringify(p)}`);
  // 'é' is 2 bytes, '€' 3, '😀' 4: nothing until the last byte of each, then the whole character
  assert.deepEqual(parts.slice(0, 10), ['a', '', 'é', '', '', '€', '', '', '', '😀']);
});

test('merged tokens of a trained tokenizer stream back to the text, whatever the cut', () => {
  for (const text of UNICODE_SAMPLES) {
    const ids = tok.encode(text);
    const parts = stream(ids);
    assert.equal(parts.join(''), text, JSON.stringify(text));
    for (const p of parts) assert.ok(!p.includes('\uFFFD'), `partial character printed for ${JSON.stringify(text)}`);
  }
});

test('the prompt given as context is not printed again', () => {
  const enc = (t: string) => Array.from(new TextEncoder().encode(t));
  const parts = stream(enc('€!'), enc('Hi ')); // the prompt's ids, then the generated ones
  assert.equal(parts.join(''), '€!');
  assert.deepEqual(stream(tok.encode(' the mat'), Array.from(tok.encode('the cat sat on'))).join(''), ' the mat');
});

test('bytes that never complete a character are printed at the end as U+FFFD', () => {
  const parts = stream([0x61, 0xe2, 0x82]);
  assert.deepEqual(parts, ['a', '', '', '\uFFFD']);
});
