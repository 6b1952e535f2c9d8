import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOC_SEPARATOR, embeddedCorpus, loadCorpus, readTextCorpus } from '../../src/data/corpus.js';

test('embedded corpus: TypeScript lib declarations, > 1 MB, deterministic', () => {
  const a = embeddedCorpus();
  const b = loadCorpus('embedded');
  assert.ok(a.bytes > 1_000_000, `${a.bytes} bytes`);
  assert.equal(a.bytes, Buffer.byteLength(a.text));
  assert.equal(a.hash, b.hash);
  assert.match(a.hash, /^[0-9a-f]{64}$/);
  assert.equal(a.files, a.documents.length);
  assert.ok(a.files > 50);
  assert.match(a.description, /TypeScript \d+\.\d+\.\d+ standard library declarations/);
  assert.equal(a.documents[0].name, 'lib.d.ts');
  const names = a.documents.map((d) => d.name);
  assert.deepEqual(names, [...names].sort());
  // Documents tile the text with separators between them.
  assert.equal(a.documents[0].start, 0);
  assert.equal(a.documents[a.files - 1].end, a.text.length);
  for (let i = 1; i < a.files; i++) {
    assert.equal(a.text.slice(a.documents[i - 1].end, a.documents[i].start), DOC_SEPARATOR);
  }
});

test('maxBytes cuts at a file or character boundary', () => {
  const full = embeddedCorpus();
  const cut = embeddedCorpus({ maxBytes: 100_000 });
  assert.ok(cut.bytes <= 100_000 && cut.bytes > 99_000, `${cut.bytes}`);
  assert.ok(full.text.startsWith(cut.text));
  assert.notEqual(cut.hash, full.hash);

  const dir = mkdtempSync(join(tmpdir(), 'litespark-corpus-'));
  try {
    writeFileSync(join(dir, 'a.txt'), 'héllo'); // 6 bytes
    writeFileSync(join(dir, 'b.txt'), '日本'); // 6 bytes
    // 6 + 2 (separator) + 4 -> the second file keeps only '日' (3 bytes), never half a char.
    const c = readTextCorpus(dir, { maxBytes: 12 });
    assert.equal(c.text, 'héllo\n\n日');
    assert.equal(c.bytes, 11);
    assert.equal(c.files, 2);
    assert.equal(readTextCorpus(dir, { maxBytes: 7 }).text, 'héllo');
    assert.equal(readTextCorpus(dir, { maxBytes: 2 }).text, 'h'); // 'é' would need 3
    assert.throws(() => readTextCorpus(join(dir, 'b.txt'), { maxBytes: 2 }), /maxBytes 2 keeps no text/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readTextCorpus: a directory of .txt / .md files, sorted, recursive', () => {
  const dir = mkdtempSync(join(tmpdir(), 'litespark-corpus-'));
  try {
    mkdirSync(join(dir, 'sub'));
    mkdirSync(join(dir, '.hidden'));
    writeFileSync(join(dir, 'b.md'), '# B');
    writeFileSync(join(dir, 'a.txt'), 'alpha');
    writeFileSync(join(dir, 'sub', 'c.TXT'), 'gamma');
    writeFileSync(join(dir, 'empty.txt'), '');
    writeFileSync(join(dir, 'code.js'), 'ignored');
    writeFileSync(join(dir, '.hidden', 'x.txt'), 'ignored');
    const c = readTextCorpus(dir);
    assert.deepEqual(c.documents.map((d) => d.name), ['a.txt', 'b.md', 'sub/c.TXT']);
    assert.equal(c.text, 'alpha\n\n# B\n\ngamma');
    assert.equal(c.files, 3);
    assert.equal(loadCorpus(dir).hash, c.hash);
    const one = readTextCorpus(join(dir, 'code.js'));
    assert.equal(one.text, 'ignored');
    assert.equal(one.files, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corpus errors name the path and the reason', () => {
  const dir = mkdtempSync(join(tmpdir(), 'litespark-corpus-'));
  try {
    const missing = join(dir, 'nope');
    assert.throws(() => loadCorpus(missing), { message: `corpus ${missing}: no such file or directory` });
    writeFileSync(join(dir, 'x.js'), 'not text');
    assert.throws(() => readTextCorpus(dir), { message: `corpus ${dir}: the directory has no .txt or .md files` });
    writeFileSync(join(dir, 'e.txt'), '');
    assert.throws(() => readTextCorpus(dir), /no text \(all files are empty\)/);
    writeFileSync(join(dir, 'bin.txt'), Buffer.from([0x66, 0xff, 0xfe, 0x00]));
    assert.throws(() => readTextCorpus(dir), /bin\.txt: not UTF-8 text/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
