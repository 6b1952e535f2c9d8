// data.source of a run: the embedded corpus and plain inputs are prepared into the cache (once),
// a prepared directory is used as it is, and its tokenizer must be the one of its shards.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataError } from '../../src/data/errors.js';
import { openPrepared, resolveData } from '../../src/data/source.js';
import { BpeTokenizer } from '../../src/data/tokenizer.js';

const root = mkdtempSync(join(tmpdir(), 'ls-source-'));
after(() => rmSync(root, { recursive: true, force: true }));
const cacheDir = join(root, 'cache');
const base = { vocabSize: 300, valFraction: 0.05, cacheDir, onStatus: () => {} };

test('embedded: prepared into the cache once; the second run reuses it untouched', async () => {
  const a = await resolveData({ ...base, source: 'embedded', maxBytes: 150_000 });
  assert.ok(a.dir.startsWith(join(cacheDir, 'data', 'embedded-')), a.dir);
  assert.match(a.description, /TypeScript .* standard library declarations/);
  assert.equal(a.tokenizer.vocabSize, 300);
  assert.ok(a.index.splits.train.tokens > 10 * a.index.splits.val!.tokens);
  assert.ok(a.inputBytes > 0 && a.inputBytes <= 150_000, `${a.inputBytes}`);
  const mtime = statSync(join(a.dir, 'index.json')).mtimeMs;
  const b = await resolveData({ ...base, source: 'embedded', maxBytes: 150_000 });
  assert.equal(b.dir, a.dir);
  assert.deepEqual(b.index, a.index);
  assert.equal(statSync(join(a.dir, 'index.json')).mtimeMs, mtime);
  // Another vocabulary is another data directory.
  const c = await resolveData({ ...base, vocabSize: 320, source: 'embedded', maxBytes: 150_000 });
  assert.notEqual(c.dir, a.dir);
  assert.equal(c.tokenizer.vocabSize, 320);
});

test('a jsonl input is prepared into the cache; a prepared directory is used in place', async () => {
  const file = join(root, 'docs.jsonl');
  writeFileSync(file, Array.from({ length: 400 }, (_, i) => JSON.stringify({ text: `document number ${i}: ${'abc def '.repeat(i % 30)}` })).join('\n'));
  const a = await resolveData({ ...base, source: file });
  assert.ok(a.dir.startsWith(join(cacheDir, 'data', 'inputs-')), a.dir);
  assert.equal(a.index.splits.train.documents + a.index.splits.val!.documents, 400);
  const inPlace = await resolveData({ ...base, source: a.dir, vocabSize: 999 });
  assert.equal(inPlace.dir, a.dir);
  assert.match(inPlace.description, /^prepared data /);
  assert.equal(inPlace.tokenizer.vocabSize, 300, 'a prepared directory keeps its own tokenizer');
});

test('a tokenizer that is not the one the shards were made with is refused, naming the file', async () => {
  const a = await resolveData({ ...base, source: 'embedded', maxBytes: 150_000 });
  const copy = join(root, 'swapped');
  cpSync(a.dir, copy, { recursive: true });
  const other = BpeTokenizer.train(['some other text to learn from, some other text'], 280);
  writeFileSync(join(copy, 'tokenizer.json'), JSON.stringify(other.toJSON()));
  assert.throws(
    () => openPrepared(copy, 'x'),
    (e: Error) => e instanceof DataError && e.message.includes(join(copy, 'tokenizer.json')) && /tokenizer mismatch/.test(e.message),
  );
  await assert.rejects(resolveData({ ...base, source: join(root, 'nope') }), (e: Error) => e instanceof DataError && /nope: no such file/.test(e.message));
});
