// Inputs of `litespark prepare`: file discovery, formats, compression, line ranges, bad input.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DataError } from '../../src/data/errors.js';
import {
  classify,
  expandInputs,
  readDocuments,
  splitLines,
  wholeCharacters,
  type DocumentOrSkip,
  type InputFile,
} from '../../src/data/inputs.js';

const root = mkdtempSync(join(tmpdir(), 'ls-inputs-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A zstd frame of raw (stored) blocks, written by hand from RFC 8878: any decoder reads it. */
export function zstdRawFrame(content: Uint8Array): Uint8Array {
  const BLOCK = 128 * 1024;
  const parts: number[] = [0x28, 0xb5, 0x2f, 0xfd]; // magic 0xFD2FB528, little-endian
  // Frame header descriptor: FCS flag 2 (4-byte content size), single segment (no window
  // descriptor), no checksum, no dictionary.
  parts.push(0xa0);
  const n = content.length;
  parts.push(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255);
  let off = 0;
  do {
    const size = Math.min(BLOCK, n - off);
    const last = off + size >= n ? 1 : 0;
    const header = last | (0 << 1) | (size << 3); // block type 0 = Raw
    parts.push(header & 255, (header >>> 8) & 255, (header >>> 16) & 255);
    for (let i = 0; i < size; i++) parts.push(content[off + i]);
    off += size;
  } while (off < n);
  return Uint8Array.from(parts);
}

/** `zstd -19` of the four lines below, made once with the zstd tool: a real compressed frame. */
const ZSTD_COMPRESSED =
  'KLUv/QRo9QEAsoMNFMDr//rnHq3bWOG6kJB/73ypH7oe+UC46E13yWodbcX5DqMuG6SE1diV76RXU4XQloc3274LAQCymE0QF0AN';
const ZSTD_LINES = '{"text":"hello zstd"}\n{"text":"second line é"}\nnot json\n{"meta":1}\n';

function file(name: string, data: string | Uint8Array): InputFile {
  const path = join(root, name);
  writeFileSync(path, data);
  const kind = classify(path);
  assert.ok(kind, `${name} should be readable`);
  return { path, ...kind, bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.length };
}

async function collect(it: AsyncIterable<DocumentOrSkip>): Promise<DocumentOrSkip[]> {
  const out: DocumentOrSkip[] = [];
  for await (const d of it) out.push(d);
  return out;
}

describe('classify', () => {
  test('formats and compressions by name, case-insensitive', () => {
    assert.deepEqual(classify('a/b.jsonl'), { format: 'jsonl', compression: 'none' });
    assert.deepEqual(classify('x.JSONL.ZST'), { format: 'jsonl', compression: 'zstd' });
    assert.deepEqual(classify('x.ndjson.gz'), { format: 'jsonl', compression: 'gzip' });
    assert.deepEqual(classify('notes.md'), { format: 'text', compression: 'none' });
    assert.deepEqual(classify('book.txt.gz'), { format: 'text', compression: 'gzip' });
    assert.equal(classify('model.bin'), undefined);
    assert.equal(classify('data.json'), undefined);
    assert.equal(classify('x.gz'), undefined);
  });
});

describe('expandInputs', () => {
  const dir = join(root, 'tree');
  mkdirSync(join(dir, 'b'), { recursive: true });
  mkdirSync(join(dir, '.hidden'), { recursive: true });
  writeFileSync(join(dir, 'b', 'z.jsonl'), '{"text":"1"}\n');
  writeFileSync(join(dir, 'a.txt'), 'a');
  writeFileSync(join(dir, 'B.md'), 'B');
  writeFileSync(join(dir, 'skip.bin'), 'x');
  writeFileSync(join(dir, '.hidden', 'h.txt'), 'h');

  test('directories recursively, sorted by relative path in code-unit order, hidden and unknown skipped', () => {
    const got = expandInputs([dir]).map((f) => f.path.slice(dir.length + 1));
    assert.deepEqual(got, ['B.md', 'a.txt', 'b/z.jsonl']);
  });
  test('glob patterns are expanded and sorted; a file named twice is kept once', () => {
    const got = expandInputs(['tree/**/*.jsonl', 'tree/*.txt', join(dir, 'a.txt')], root).map((f) => f.path.slice(dir.length + 1));
    assert.deepEqual(got, ['b/z.jsonl', 'a.txt']);
  });
  test('bad inputs name the argument', () => {
    assert.throws(() => expandInputs(['nope.jsonl'], root), (e: Error) => e instanceof DataError && /nope\.jsonl: no such file/.test(e.message));
    assert.throws(() => expandInputs([join(dir, 'skip.bin')]), (e: Error) => e instanceof DataError && /skip\.bin: cannot read this kind of file/.test(e.message));
    assert.throws(() => expandInputs(['tree/*.parquet'], root), (e: Error) => e instanceof DataError && /matches no input files/.test(e.message));
    assert.throws(() => expandInputs([]), DataError);
    const empty = join(root, 'empty-dir');
    mkdirSync(empty, { recursive: true });
    assert.throws(() => expandInputs([empty]), (e: Error) => e instanceof DataError && /directory has no input files/.test(e.message));
  });
});

describe('readDocuments', () => {
  const lines = [
    '{"text": "first", "meta": {"redpajama_set_name": "RedPajamaC4"}}',
    '',
    '{"text": "with \\u00e9 and emoji \\ud83d\\ude80"}\r',
    'not json at all',
    '{"title": "no text field"}',
    '{"text": 42}',
    '   ',
    '[1, 2]',
    '{"text": "last line without newline"}',
  ].join('\n');
  const expected: DocumentOrSkip[] = [
    { text: 'first', line: 1 },
    { text: 'with é and emoji 🚀', line: 3 },
    { skip: 'not JSON', line: 4 },
    { skip: 'no field "text"', line: 5 },
    { skip: 'field "text" is not a string', line: 6 },
    { skip: 'no field "text"', line: 8 },
    { text: 'last line without newline', line: 9 },
  ];
  const norm = (ds: DocumentOrSkip[]) =>
    ds.map((d) => ('skip' in d ? { skip: d.skip.replace(/ \(.*$/, ''), line: d.line } : d));

  test('jsonl: documents, blank lines ignored, bad lines skipped with their line numbers, CRLF', async () => {
    assert.deepEqual(norm(await collect(readDocuments(file('a.jsonl', lines), {}))), expected);
  });
  test('gzip and zstd (raw-block frame and a real compressed frame) give the same documents', async () => {
    const gz = file('a.jsonl.gz', gzipSync(Buffer.from(lines)));
    assert.deepEqual(norm(await collect(readDocuments(gz, {}))), expected);
    const zs = file('a.jsonl.zst', zstdRawFrame(Buffer.from(lines)));
    assert.deepEqual(norm(await collect(readDocuments(zs, {}))), expected);
    const real = file('real.jsonl.zst', Buffer.from(ZSTD_COMPRESSED, 'base64'));
    const plain = file('real.jsonl', ZSTD_LINES);
    assert.deepEqual(await collect(readDocuments(real, {})), await collect(readDocuments(plain, {})));
    assert.deepEqual(norm(await collect(readDocuments(real, {}))), [
      { text: 'hello zstd', line: 1 },
      { text: 'second line é', line: 2 },
      { skip: 'not JSON', line: 3 },
      { skip: 'no field "text"', line: 4 },
    ]);
  });
  test('a zstd frame larger than one block (several raw blocks) and a nested field', async () => {
    const big = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ meta: { body: `doc ${i} ` + 'x'.repeat(i % 97) } })).join('\n');
    const zs = file('big.jsonl.zst', zstdRawFrame(Buffer.from(big)));
    const docs = await collect(readDocuments(zs, { field: 'meta.body' }));
    assert.equal(docs.length, 5000);
    assert.deepEqual(docs[4321], { text: 'doc 4321 ' + 'x'.repeat(4321 % 97), line: 4322 });
  });
  test('corrupt and truncated compressed files are fatal and name the file', async () => {
    const gz = gzipSync(Buffer.from(lines));
    const bad = file('bad.jsonl.gz', gz.subarray(0, gz.length - 20));
    await assert.rejects(collect(readDocuments(bad, {})), (e: Error) => e instanceof DataError && e.message.includes('bad.jsonl.gz') && /gzip/.test(e.message));
    const zs = zstdRawFrame(Buffer.from(lines));
    const cut = file('cut.jsonl.zst', zs.subarray(0, zs.length - 10));
    await assert.rejects(collect(readDocuments(cut, {})), (e: Error) => e instanceof DataError && e.message.includes('cut.jsonl.zst') && /zstd/.test(e.message));
    const garbage = file('garbage.jsonl.zst', Buffer.from('definitely not zstd'));
    await assert.rejects(collect(readDocuments(garbage, {})), (e: Error) => e instanceof DataError && e.message.includes('garbage.jsonl.zst'));
  });
  test('text: the whole file is one document; line mode gives non-blank lines', async () => {
    const t = file('doc.txt', 'line one\n\n  \nline two\r\n');
    assert.deepEqual(await collect(readDocuments(t, {})), [{ text: 'line one\n\n  \nline two\r\n', line: 1 }]);
    assert.deepEqual(await collect(readDocuments(t, { textDocs: 'line' })), [
      { text: 'line one', line: 1 },
      { text: 'line two', line: 4 },
    ]);
  });
  test('maxBytes cuts text at a whole character and jsonl at a whole line', async () => {
    const t = file('utf8.txt', 'aé🚀b'); // 1 + 2 + 4 + 1 bytes
    const got = async (n: number) => (await collect(readDocuments(t, { maxBytes: n }))).map((d) => ('text' in d ? d.text : '?'));
    assert.deepEqual(await got(1), ['a']);
    assert.deepEqual(await got(2), ['a']);
    assert.deepEqual(await got(3), ['aé']);
    assert.deepEqual(await got(6), ['aé']);
    assert.deepEqual(await got(7), ['aé🚀']);
    const j = file('cut.jsonl', '{"text":"a"}\n{"text":"b"}\n');
    assert.equal((await collect(readDocuments(j, { maxBytes: 20 }))).length, 1);
    assert.equal((await collect(readDocuments(j, { maxBytes: 26 }))).length, 2);
  });
  test('wholeCharacters', () => {
    const b = Buffer.from('aé🚀');
    for (let n = 0; n <= b.length; n++) {
      const keep = wholeCharacters(b.subarray(0, n));
      assert.equal(keep, [0, 1, 1, 3, 3, 3, 3, 7][n], `prefix ${n}`);
    }
  });
});

describe('splitLines', () => {
  test('ranges start at lines, cover the file, and read back the same documents with the right line numbers', async () => {
    const body = Array.from({ length: 300 }, (_, i) => JSON.stringify({ text: `document ${i} ${'y'.repeat((i * 7) % 50)}` })).join('\n') + '\n';
    const f = file('split.jsonl', body);
    const ranges = await splitLines(f, 1000);
    assert.ok(ranges.length > 5, `${ranges.length} ranges`);
    assert.equal(ranges[0].start, 0);
    assert.equal(ranges.at(-1)!.end, f.bytes);
    for (let i = 1; i < ranges.length; i++) {
      assert.equal(ranges[i].start, ranges[i - 1].end);
      assert.equal(body[ranges[i].start - 1], '\n');
    }
    const whole = await collect(readDocuments(f, {}));
    const pieces: DocumentOrSkip[] = [];
    for (const range of ranges) pieces.push(...(await collect(readDocuments(f, { range }))));
    assert.deepEqual(pieces, whole);
  });
});
