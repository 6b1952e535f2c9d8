import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainingData } from '../../src/data/dataset.js';

/** Three small text documents under root/text. */
function makeSource(root: string): string {
  const src = join(root, 'text');
  mkdirSync(src);
  const words = ['alpha', 'beta', 'gamma', 'delta', 'tokens', 'the', 'of', 'and', 'é', '日本'];
  for (let d = 0; d < 3; d++) {
    let s = '';
    for (let i = 0; i < 3000; i++) {
      s += words[(i * 7 + d * 3 + ((i * i) % 5)) % words.length] + (i % 13 === 0 ? '.\n' : ' ');
    }
    writeFileSync(join(src, `doc${d}.txt`), s);
  }
  return src;
}

test('loadTrainingData trains once, then hits the cache', () => {
  const root = mkdtempSync(join(tmpdir(), 'litespark-data-'));
  try {
    const source = makeSource(root);
    const cacheDir = join(root, 'cache');
    const opts = { source, vocabSize: 300, valFraction: 0.1, cacheDir };
    const log: string[] = [];
    const first = loadTrainingData({ ...opts, onStatus: (m) => log.push(m) });
    assert.equal(first.cached, false);
    assert.ok(log.some((m) => m.startsWith('tokenizer: training vocab 300')), log.join('\n'));
    assert.equal(first.tokenizer.vocabSize, 300);
    assert.equal(first.corpus.bytes, statSizes(source) + 2 * 2);

    // One EOS after each of the three documents; the split keeps every token.
    const all = new Int32Array([...first.train, ...first.val]);
    const eos = all.reduce((n, id) => n + (id === first.tokenizer.eosId ? 1 : 0), 0);
    assert.equal(eos, 3);
    assert.equal(all[all.length - 1], first.tokenizer.eosId);
    assert.equal(first.val.length, Math.floor(all.length * 0.1));
    assert.match(first.tokenizer.decode(all), /^alpha/);

    const files = readdirSync(cacheDir).sort();
    assert.deepEqual(files, [`tokenizer-${first.cacheKey}.json`, `tokens-${first.cacheKey}.bin`]);
    assert.equal(statSync(join(cacheDir, files[1])).size, all.length * 2, 'uint16 tokens');

    const second = loadTrainingData(opts);
    assert.equal(second.cached, true);
    assert.equal(second.cacheKey, first.cacheKey);
    assert.equal(second.tokenizer.hash(), first.tokenizer.hash());
    assert.deepEqual(second.train, first.train);
    assert.deepEqual(second.val, first.val);

    // Another vocab size is another key; a damaged token file is rebuilt.
    const other = loadTrainingData({ ...opts, vocabSize: 280 });
    assert.equal(other.cached, false);
    assert.notEqual(other.cacheKey, first.cacheKey);
    writeFileSync(join(cacheDir, `tokens-${first.cacheKey}.bin`), Buffer.from([1, 2, 3]));
    const rebuilt = loadTrainingData(opts);
    assert.equal(rebuilt.cached, false);
    assert.deepEqual(rebuilt.train, first.train);
    assert.equal(loadTrainingData(opts).cached, true);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('loadTrainingData reports a missing source by path', () => {
  const root = mkdtempSync(join(tmpdir(), 'litespark-data-'));
  try {
    const source = join(root, 'missing.txt');
    assert.throws(
      () => loadTrainingData({ source, vocabSize: 300, valFraction: 0.1, cacheDir: join(root, 'c') }),
      { message: `corpus ${source}: no such file or directory` },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

function statSizes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}
