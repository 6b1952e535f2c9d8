import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { DOC_SEPARATOR, embeddedCorpus, embeddedInputs } from '../../src/data/corpus.js';

test('embedded corpus: TypeScript lib declarations, > 1 MB, deterministic', () => {
  const a = embeddedCorpus();
  const b = embeddedCorpus();
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

});

test('embeddedInputs: the same files as prepare inputs, one text document each', () => {
  const inputs = embeddedInputs();
  const corpus = embeddedCorpus();
  assert.equal(inputs.files.length, corpus.files);
  assert.ok(inputs.files.every((f) => f.format === 'text' && f.compression === 'none'));
  assert.deepEqual(inputs.files.map((f) => basename(f.path)), corpus.documents.map((d) => d.name));
  assert.equal(inputs.files.reduce((s, f) => s + f.bytes, 0) + DOC_SEPARATOR.length * (corpus.files - 1), corpus.bytes);
  assert.match(inputs.description, /TypeScript \d+\.\d+\.\d+ standard library declarations/);
});
