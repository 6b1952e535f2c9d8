// `litespark prepare`: tokens that decode back to the documents, identical results with and
// without workers and ranges, no-op re-runs, resume, stale shards, skipped lines, bad input.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { crc32, gzipSync } from 'node:zlib';
import { embeddedCorpus } from '../../src/data/corpus.js';
import { DataError } from '../../src/data/errors.js';
import { prepare, type PrepareResult } from '../../src/data/prepare.js';
import { readIndex, type DataIndex } from '../../src/data/shards.js';
import { splitTokens } from './tokens.js';
import { loadTokenizer } from '../../src/data/tokenizer.js';

const root = mkdtempSync(join(tmpdir(), 'ls-prepare-'));
after(() => rmSync(root, { recursive: true, force: true }));

// Inputs: 240 jsonl documents cut from the embedded corpus (with one bad line and one without
// the field), the same kind gzipped, and two plain text files.
const corpus = embeddedCorpus({ maxBytes: 400_000 });
const pieces: string[] = [];
for (let i = 0; pieces.length < 360; i++) {
  const at = (i * 7919) % (corpus.text.length - 900);
  pieces.push(corpus.text.slice(at, at + 200 + ((i * 37) % 700)) + (i % 5 === 0 ? ' café 🚀 ' : ''));
}
const jsonlDocs = pieces.slice(0, 240);
const gzDocs = pieces.slice(240, 340);
const textDocs = [pieces.slice(340, 350).join('\n\n'), pieces.slice(350).join('\n')];
const inputs = join(root, 'inputs');
{
  mkdirSync(inputs, { recursive: true });
  const lines = jsonlDocs.map((t) => JSON.stringify({ text: t, meta: { redpajama_set_name: 'Test' } }));
  lines.splice(17, 0, '{"text": broken');
  lines.splice(99, 0, '{"title": "no text"}');
  writeFileSync(join(inputs, 'a.jsonl'), lines.join('\n') + '\n');
  writeFileSync(join(inputs, 'b.jsonl.gz'), gzipSync(gzDocs.map((t) => JSON.stringify({ text: t })).join('\n')));
  writeFileSync(join(inputs, 'c.txt'), textDocs[0]);
  writeFileSync(join(inputs, 'd.md'), textDocs[1]);
}

const VOCAB = 400;
const quiet = { onStatus: () => {}, onWarning: () => {} };

/** The documents of a split's tokens (cut at EOS), decoded. */
function documentsOf(dir: string, index: DataIndex, split: 'train' | 'val'): string[] {
  const tok = loadTokenizer(join(dir, 'tokenizer.json'));
  const ids = splitTokens(dir, index, split);
  const docs: string[] = [];
  let start = 0;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === tok.eosId) {
      docs.push(tok.decode(ids.subarray(start, i)));
      start = i + 1;
    }
  }
  if (start < ids.length) docs.push(tok.decode(ids.subarray(start)));
  return docs;
}

function shardBytes(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.bin')) m.set(f, readFileSync(join(dir, f)).toString('base64'));
  return m;
}

async function run(out: string, extra: Partial<Parameters<typeof prepare>[0]> = {}): Promise<PrepareResult> {
  return prepare({ inputs: [inputs], out, vocabSize: VOCAB, valFraction: 0.1, workers: 0, ...quiet, ...extra });
}

describe('prepare', () => {
  const inline = join(root, 'inline');
  let first: PrepareResult;

  test('tokens decode back to exactly the documents; validation by document hash (jsonl) and by tail (text files)', async () => {
    const warnings: string[] = [];
    first = await run(inline, { onWarning: (m) => warnings.push(m) });
    const idx = readIndex(inline);
    assert.equal(first.units, 4);
    assert.equal(first.skippedLines, 2);
    assert.ok(warnings.some((w) => w.includes('a.jsonl:18: not JSON')), warnings.join('\n'));
    assert.ok(warnings.some((w) => w.includes('a.jsonl:100: no field "text"')), warnings.join('\n'));
    assert.equal(idx.tokenizer.vocab_size, VOCAB);
    assert.equal(idx.dtype, 'uint16');

    const isVal = (t: string) => crc32(t) / 2 ** 32 < 0.1;
    const train = documentsOf(inline, idx, 'train');
    const val = documentsOf(inline, idx, 'val');
    const lineDocs = [...jsonlDocs, ...gzDocs];
    const wantVal = lineDocs.filter(isVal);
    assert.ok(wantVal.length > 5 && wantVal.length < 60, `${wantVal.length} validation documents`);
    // Order: units in input order (a.jsonl, b.jsonl.gz, c.txt, d.md), documents in file order.
    assert.deepEqual(train.slice(0, lineDocs.length - wantVal.length), lineDocs.filter((t) => !isVal(t)));
    assert.deepEqual(val.slice(0, wantVal.length), wantVal);
    // Text files: the head in train, the tail in val (each with an EOS); together the whole file.
    const trainText = train.slice(lineDocs.length - wantVal.length);
    const valText = val.slice(wantVal.length);
    assert.equal(trainText.length, 2);
    assert.equal(valText.length, 2);
    for (let i = 0; i < 2; i++) assert.equal(trainText[i] + valText[i], textDocs[i]);
    assert.equal(idx.splits.train.documents + idx.splits.val!.documents, lineDocs.length + 4);
    assert.equal(idx.splits.val!.documents, wantVal.length + 2);
  });

  test('two workers, and large files cut into ranges, give the same shards and index', async () => {
    const pooled = join(root, 'pooled');
    await run(pooled, { workers: 2 });
    assert.deepEqual(readIndex(pooled), readIndex(inline));
    assert.deepEqual(shardBytes(pooled), shardBytes(inline));

    const ranged = join(root, 'ranged');
    const r = await run(ranged, { workers: 2, splitBytes: 20_000 });
    assert.ok(r.units > 8, `${r.units} units`);
    const a = readIndex(inline);
    const b = readIndex(ranged);
    assert.deepEqual(splitTokens(ranged, b, 'train'), splitTokens(inline, a, 'train'));
    assert.deepEqual(splitTokens(ranged, b, 'val'), splitTokens(inline, a, 'val'));
  });

  test('a re-run on the same inputs is a no-op; an interrupted run resumes', async () => {
    const before = statSync(join(inline, 'index.json')).mtimeMs;
    const again = await run(inline);
    assert.equal(again.noop, true);
    assert.equal(again.reused, 4);
    assert.equal(again.tokens, 0);
    assert.equal(statSync(join(inline, 'index.json')).mtimeMs, before);

    // Simulate a run killed after two units: their records stay, the rest is gone.
    const copy = join(root, 'resumed');
    cpSync(inline, copy, { recursive: true });
    const idx = readIndex(copy);
    rmSync(join(copy, 'index.json'));
    const units = join(copy, '.prepare', 'units');
    const records = readdirSync(units).sort();
    for (const rec of records.slice(2)) {
      const r = JSON.parse(readFileSync(join(units, rec), 'utf8'));
      unlinkSync(join(units, rec));
      for (const s of [r.train, r.val]) if (s) unlinkSync(join(copy, s.file));
    }
    writeFileSync(join(copy, 'train-0123456789abcdef.bin.tmp-1-0'), 'half a shard');
    const resumed = await run(copy);
    assert.equal(resumed.reused, 2);
    assert.equal(resumed.noop, false);
    assert.deepEqual(readIndex(copy), idx);
    assert.deepEqual(shardBytes(copy), shardBytes(inline));
    assert.ok(!readdirSync(copy).some((f) => f.includes('.tmp-')), 'temporary files are removed');
  });

  test('a changed input is done again and its old shards removed; --tokenizer gives the same tokens', async () => {
    const dir = join(root, 'changed');
    cpSync(inline, dir, { recursive: true });
    const inputs2 = join(root, 'inputs2');
    cpSync(inputs, inputs2, { recursive: true });
    writeFileSync(join(inputs2, 'd.md'), textDocs[1] + '\nOne more line.');
    const oldShards = new Set(readdirSync(dir).filter((f) => f.endsWith('.bin')));
    // The tokenizer trained on the original inputs, given explicitly: only d.md is new work.
    const tokFile = join(root, 'tokenizer-copy.json');
    cpSync(join(inline, 'tokenizer.json'), tokFile);
    const r = await prepare({ inputs: [inputs2], out: dir, tokenizer: tokFile, valFraction: 0.1, workers: 0, ...quiet });
    assert.equal(r.reused, 3);
    const now = new Set(readdirSync(dir).filter((f) => f.endsWith('.bin')));
    const gone = [...oldShards].filter((f) => !now.has(f));
    const added = [...now].filter((f) => !oldShards.has(f));
    assert.equal(gone.length, 2, `removed ${gone}`); // d.md's train and val shards
    assert.equal(added.length, 2, `added ${added}`);
    assert.equal(readdirSync(join(dir, '.prepare', 'units')).length, 4);
    const idx = readIndex(dir);
    assert.equal(documentsOf(dir, idx, 'val').at(-1)!.endsWith('One more line.'), true);
  });

  test('bad input fails with the file named and leaves the prepared directory as it was', async () => {
    const dir = join(root, 'kept');
    cpSync(inline, dir, { recursive: true });
    const before = readFileSync(join(dir, 'index.json'), 'utf8');
    const shards = shardBytes(dir);
    const bad = join(root, 'bad');
    cpSync(inputs, bad, { recursive: true });
    const gz = gzipSync(Buffer.from('{"text": "x"}\n'.repeat(1000)));
    writeFileSync(join(bad, 'e.jsonl.gz'), gz.subarray(0, gz.length - 30));
    for (const workers of [0, 2]) {
      await assert.rejects(
        prepare({ inputs: [bad], out: dir, vocabSize: VOCAB, valFraction: 0.1, workers, ...quiet }),
        (e: Error) => e instanceof DataError && e.message.includes('e.jsonl.gz'),
      );
      assert.equal(readFileSync(join(dir, 'index.json'), 'utf8'), before);
      for (const [f, bytes] of shards) assert.equal(readFileSync(join(dir, f)).toString('base64'), bytes, f);
    }
    await assert.rejects(prepare({ inputs: [inputs], out: join(root, 'x'), ...quiet }), /--tokenizer .*--vocab-size/);
    await assert.rejects(
      prepare({ inputs: [join(inputs, 'missing.jsonl')], out: join(root, 'x'), vocabSize: VOCAB, ...quiet }),
      (e: Error) => e instanceof DataError && /missing\.jsonl: no such file/.test(e.message),
    );
    assert.equal(existsSync(join(root, 'x', 'index.json')), false);
  });
});
