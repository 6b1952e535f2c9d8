import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { DataError } from '../../src/data/errors.js';
import {
  openSplit,
  readIndex,
  readShardHeader,
  SHARD_HEADER_BYTES,
  ShardReader,
  ShardWriter,
  tokenDtypeFor,
  verifyShard,
  writeIndex,
  type DataIndex,
  type ShardHeader,
  type TokenDtype,
} from '../../src/data/shards.js';

const TOKENIZER_SHA = createHash('sha256').update('test tokenizer').digest('hex');
const OTHER_SHA = createHash('sha256').update('another tokenizer').digest('hex');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'litespark-shards-'));
}

/** Asserts fn throws a DataError whose message matches every pattern. */
function throwsData(fn: () => unknown, ...patterns: (RegExp | string)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    for (const p of patterns) {
      if (typeof p === 'string') assert.ok(e.message.includes(p), `'${e.message}' should contain '${p}'`);
      else assert.match(e.message, p);
    }
    return true;
  });
}

function ids(n: number, hi: number, seed: number): Int32Array {
  const out = new Int32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x % hi;
  }
  return out;
}

function writeShard(path: string, tokens: Int32Array, dtype: TokenDtype, documents = 1, sha = TOKENIZER_SHA): ShardHeader {
  const w = ShardWriter.create(path, { dtype, tokenizerHash: sha });
  w.append(tokens, documents);
  return w.close();
}

function readAll(path: string): Int32Array {
  const r = new ShardReader(path);
  const out = new Int32Array(r.header.tokens);
  r.read(0, out.length, out);
  r.close();
  return out;
}

/** A data directory with one train shard and one val shard; returns the index written. */
function makeDataDir(dir: string, dtype: TokenDtype = 'uint16'): DataIndex {
  const vocab = dtype === 'uint16' ? 32000 : 100000;
  const t = writeShard(join(dir, 'train-0000000000000001.bin'), ids(1000, vocab, 1), dtype, 3);
  const v = writeShard(join(dir, 'val-0000000000000001.bin'), ids(200, vocab, 2), dtype, 1);
  const entry = (h: ShardHeader) => ({ file: h.path.slice(dir.length + 1), tokens: h.tokens, documents: h.documents, crc32: h.crc32 });
  const index: DataIndex = {
    format: 'litespark-token-shards',
    version: 1,
    tokenizer: { file: 'tokenizer.json', sha256: TOKENIZER_SHA, vocab_size: vocab, bos_id: 1, eos_id: 2, pad_id: -1 },
    dtype,
    splits: {
      train: { tokens: t.tokens, documents: t.documents, shards: [entry(t)] },
      val: { tokens: v.tokens, documents: v.documents, shards: [entry(v)] },
    },
    created: '2024-01-01T00:00:00Z',
  };
  writeIndex(dir, index);
  return index;
}

test('tokenDtypeFor: uint16 up to 65536 ids', () => {
  assert.equal(tokenDtypeFor(32000), 'uint16');
  assert.equal(tokenDtypeFor(65536), 'uint16');
  assert.equal(tokenDtypeFor(65537), 'uint32');
  assert.equal(tokenDtypeFor(128256), 'uint32');
});

for (const dtype of ['uint16', 'uint32'] as const) {
  test(`ShardWriter -> readShardHeader / ShardReader / verifyShard round trip (${dtype})`, () => {
    const dir = tempDir();
    try {
      const path = join(dir, 'a.bin');
      const hi = dtype === 'uint16' ? 65536 : 2 ** 31 - 1;
      // 2.5M tokens in uneven appends: crosses the writer's 1 MiB buffer several times.
      const tokens = ids(2_500_000, hi, 7);
      tokens[0] = hi - 1; // the largest id the dtype (or int32 out) holds
      const w = ShardWriter.create(path, { dtype, tokenizerHash: TOKENIZER_SHA });
      let docs = 0;
      for (let off = 0, step = 1; off < tokens.length; off += step, step = step * 3 + 1) {
        w.append(tokens.subarray(off, Math.min(off + step, tokens.length)), 1);
        docs++;
      }
      assert.equal(w.tokens, tokens.length);
      assert.equal(w.documents, docs);
      const h = w.close();
      const width = dtype === 'uint16' ? 2 : 4;
      const bytes = dtype === 'uint16' ? new Uint8Array(Uint16Array.from(tokens).buffer) : new Uint8Array(tokens.buffer);
      assert.deepEqual(h, {
        path,
        version: 1,
        dtype,
        tokens: tokens.length,
        documents: docs,
        crc32: crc32(bytes),
        tokenizerHash: TOKENIZER_SHA.slice(0, 16),
      });
      assert.deepEqual(readShardHeader(path), h);
      assert.deepEqual(verifyShard(path, { tokenizerHash: TOKENIZER_SHA, tokens: tokens.length, crc32: h.crc32 }), h);
      const file = readFileSync(path);
      assert.equal(file.length, SHARD_HEADER_BYTES + tokens.length * width);
      assert.equal(file.subarray(0, 8).toString('latin1'), 'LSTOKENS');
      assert.deepEqual(readdirSync(dir), ['a.bin'], 'no temporary file left behind');

      const r = new ShardReader(path);
      const out = new Int32Array(1000).fill(-7);
      r.read(1_234_567, 500, out, 100);
      assert.deepEqual(out.subarray(100, 600), tokens.subarray(1_234_567, 1_234_567 + 500));
      assert.equal(out[99], -7);
      assert.equal(out[600], -7);
      r.read(tokens.length - 3, 3, out);
      assert.deepEqual(out.subarray(0, 3), tokens.subarray(tokens.length - 3));
      assert.throws(() => r.read(tokens.length - 2, 3, out), RangeError);
      r.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('an empty shard is valid', () => {
  const dir = tempDir();
  try {
    const h = ShardWriter.create(join(dir, 'e.bin'), { dtype: 'uint16', tokenizerHash: TOKENIZER_SHA }).close();
    assert.equal(h.tokens, 0);
    assert.equal(h.crc32, 0);
    assert.deepEqual(verifyShard(h.path), h);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a header written byte by byte by hand is read correctly', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'hand.bin');
    const tokens = [5, 300, 65535, 0, 2];
    const body = [];
    for (const t of tokens) body.push(t & 0xff, t >> 8); // uint16 little-endian
    const crc = crc32(Uint8Array.from(body));
    const hash = '0123456789abcdef';
    const header = [
      ...'LSTOKENS'.split('').map((c) => c.charCodeAt(0)),
      1, 0, 0, 0, // version
      2, 0, 0, 0, // bytes per token
      5, 0, 0, 0, 0, 0, 0, 0, // tokens
      2, 0, 0, 0, 0, 0, 0, 0, // documents
      crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24, // crc32
      0, 0, 0, 0, // reserved
      ...hash.split('').map((c) => c.charCodeAt(0)),
      0, 0, 0, 0, 0, 0, 0, 0, // reserved
    ];
    assert.equal(header.length, 64);
    writeFileSync(path, Uint8Array.from([...header, ...body]));
    const h = readShardHeader(path);
    assert.deepEqual(h, { path, version: 1, dtype: 'uint16', tokens: 5, documents: 2, crc32: crc, tokenizerHash: hash });
    assert.deepEqual(verifyShard(path, { tokenizerHash: `${hash}${'0'.repeat(48)}` }), h);
    assert.deepEqual([...readAll(path)], tokens);
    // The writer produces the same bytes.
    const again = join(dir, 'again.bin');
    writeShard(again, Int32Array.from(tokens), 'uint16', 2, `${hash}${'f'.repeat(48)}`);
    assert.deepEqual(readFileSync(again), readFileSync(path));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad shard files: each a DataError naming the file and what is wrong', () => {
  const dir = tempDir();
  try {
    const good = join(dir, 'good.bin');
    writeShard(good, ids(100, 32000, 3), 'uint16');
    const bytes = readFileSync(good);
    const variant = (name: string, edit: (b: Buffer) => Buffer) => {
      const p = join(dir, name);
      writeFileSync(p, edit(Buffer.from(bytes)));
      return p;
    };

    const short = variant('short.bin', (b) => b.subarray(0, b.length - 1));
    throwsData(() => readShardHeader(short), short, 'truncated: header says 100 tokens = 264 bytes, file has 263');
    const long = variant('long.bin', (b) => Buffer.concat([b, Buffer.from([0, 0])]));
    throwsData(() => readShardHeader(long), long, 'header says 100 tokens = 264 bytes, file has 266');
    const stub = variant('stub.bin', (b) => b.subarray(0, 10));
    throwsData(() => readShardHeader(stub), stub, 'truncated', 'fewer than the 64-byte header');

    const magic = variant('magic.bin', (b) => (b.write('LSTOKENZ', 0, 'latin1'), b));
    throwsData(() => readShardHeader(magic), magic, 'not a litespark token shard', 'LSTOKENZ');
    const version = variant('version.bin', (b) => (b.writeUInt32LE(2, 8), b));
    throwsData(() => readShardHeader(version), version, 'format version 2', 'reads version 1');
    const width = variant('width.bin', (b) => (b.writeUInt32LE(3, 12), b));
    throwsData(() => readShardHeader(width), width, '3 bytes per token');

    const flipped = variant('flipped.bin', (b) => ((b[SHARD_HEADER_BYTES + 77] ^= 0x10), b));
    assert.equal(readShardHeader(flipped).tokens, 100, 'the header alone cannot see a flipped token byte');
    const crcGood = readShardHeader(good).crc32;
    const crcBad = crc32(readFileSync(flipped).subarray(SHARD_HEADER_BYTES));
    throwsData(
      () => verifyShard(flipped),
      flipped,
      'checksum mismatch',
      `0x${crcGood.toString(16).padStart(8, '0')}`,
      `0x${crcBad.toString(16).padStart(8, '0')}`,
    );

    throwsData(
      () => verifyShard(good, { tokenizerHash: OTHER_SHA }),
      good,
      'tokenizer mismatch',
      TOKENIZER_SHA.slice(0, 16),
      OTHER_SHA.slice(0, 16),
    );
    throwsData(() => verifyShard(good, { tokens: 99 }), good, 'header says 100 tokens, expected 99');

    const missing = join(dir, 'missing.bin');
    throwsData(() => readShardHeader(missing), missing, 'missing');
    throwsData(() => new ShardReader(missing), missing);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ShardWriter.append rejects ids that do not fit the dtype; abort leaves no file', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'x.bin');
    const w = ShardWriter.create(path, { dtype: 'uint16', tokenizerHash: TOKENIZER_SHA });
    w.append(Int32Array.from([0, 65535]));
    throwsData(() => w.append(Int32Array.from([1, 2, 65536, 3])), path, 'token id 65536', 'at 2', 'uint16');
    throwsData(() => w.append(Int32Array.from([-1])), path, 'token id -1');
    throwsData(() => w.append(Uint32Array.from([70000])), path, 'token id 70000');
    assert.equal(w.tokens, 2, 'a rejected append writes nothing');
    w.abort();
    assert.deepEqual(readdirSync(dir), [], 'abort removes the temporary file');
    assert.ok(!existsSync(path));

    const w32 = ShardWriter.create(path, { dtype: 'uint32', tokenizerHash: TOKENIZER_SHA });
    w32.append(Int32Array.from([70000, 2 ** 31 - 1]));
    throwsData(() => w32.append(Int32Array.from([-5])), path, 'token id -5', 'uint32');
    w32.close();
    assert.deepEqual([...readAll(path)], [70000, 2 ** 31 - 1]);

    throwsData(() => ShardWriter.create(join(dir, 'y.bin'), { dtype: 'uint16', tokenizerHash: 'not-hex' }), 'y.bin', 'tokenizer hash');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeIndex / readIndex round trip; other fields kept; no temporary file', () => {
  const dir = tempDir();
  try {
    const index = makeDataDir(dir);
    assert.deepEqual(readIndex(dir), index);
    assert.equal(readIndex(dir).created, '2024-01-01T00:00:00Z');
    assert.deepEqual(readdirSync(dir).sort(), ['index.json', 'train-0000000000000001.bin', 'val-0000000000000001.bin']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const dtype of ['uint16', 'uint32'] as const) {
  test(`openSplit checks every shard against the index (${dtype})`, () => {
    const dir = tempDir();
    try {
      const index = makeDataDir(dir, dtype);
      for (const verify of ['header', 'full'] as const) {
        const s = openSplit(dir, 'train', { verify });
        assert.equal(s.shards.length, 1);
        assert.equal(s.shards[0]!.dtype, dtype);
        assert.equal(s.tokens, 1000);
      }
      const shard = join(dir, index.splits.train.shards[0]!.file);

      const edited = (edit: (ix: DataIndex) => void) => {
        const ix = structuredClone(index);
        edit(ix);
        writeIndex(dir, ix);
      };
      edited((ix) => (ix.splits.train.shards[0]!.crc32 ^= 1));
      throwsData(() => openSplit(dir, 'train'), shard, 'crc32', 'index.json splits.train.shards.0');
      edited((ix) => {
        ix.splits.train.shards[0]!.tokens = 999;
        ix.splits.train.tokens = 999;
      });
      throwsData(() => openSplit(dir, 'train'), shard, 'header says tokens 1000', 'says 999');
      edited((ix) => {
        ix.splits.train.shards[0]!.documents = 4;
        ix.splits.train.documents = 4;
      });
      throwsData(() => openSplit(dir, 'train'), shard, 'documents');
      edited((ix) => (ix.tokenizer.sha256 = OTHER_SHA));
      throwsData(() => openSplit(dir, 'train'), shard, 'tokenizer mismatch', OTHER_SHA.slice(0, 16));
      edited((ix) => {
        ix.dtype = dtype === 'uint16' ? 'uint32' : 'uint16';
        ix.tokenizer.vocab_size = 1000;
      });
      throwsData(() => openSplit(dir, 'train'), shard, 'dtype');

      writeIndex(dir, index);
      // A flipped token byte passes the header check and fails the full one.
      const b = readFileSync(shard);
      b[SHARD_HEADER_BYTES + 5] ^= 1;
      writeFileSync(shard, b);
      openSplit(dir, 'train', { verify: 'header' });
      throwsData(() => openSplit(dir, 'train', { verify: 'full' }), shard, 'checksum mismatch');

      truncateSync(shard, 100);
      throwsData(() => openSplit(dir, 'train'), shard, 'truncated');
      rmSync(shard);
      throwsData(() => openSplit(dir, 'train'), shard, 'missing', 'splits.train.shards.0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('malformed index.json: a DataError naming index.json and the field', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'index.json');
    throwsData(() => readIndex(dir), path, 'missing');
    writeFileSync(path, '{"format": ');
    throwsData(() => readIndex(dir), path, 'not valid JSON');
    const index = makeDataDir(dir);
    const bad = (edit: (ix: Record<string, any>) => void, ...patterns: string[]) => {
      const ix = structuredClone(index) as Record<string, any>;
      edit(ix);
      writeFileSync(path, JSON.stringify(ix));
      throwsData(() => readIndex(dir), path, ...patterns);
    };
    bad((ix) => (ix.format = 'something-else'), 'format');
    bad((ix) => (ix.version = 2), 'version');
    bad((ix) => (ix.tokenizer.sha256 = 'abc'), 'tokenizer.sha256');
    bad((ix) => delete ix.tokenizer.vocab_size, 'tokenizer.vocab_size');
    bad((ix) => (ix.dtype = 'int8'), 'dtype');
    bad((ix) => (ix.splits.train.shards[0].crc32 = -1), 'splits.train.shards.0.crc32');
    bad((ix) => (ix.splits.train.shards[0].file = '../outside.bin'), 'splits.train.shards.0.file');
    bad((ix) => (ix.splits.train.tokens = 5), 'splits.train.tokens', 'its shards hold 1000');
    bad((ix) => (ix.tokenizer.vocab_size = 70000), 'uint16', '70000');
    bad((ix) => delete ix.splits.train, 'splits.train');
    // A missing val split is legal, but opening it is an error.
    const noVal = structuredClone(index);
    delete noVal.splits.val;
    writeIndex(dir, noVal);
    throwsData(() => openSplit(dir, 'val'), path, 'splits.val');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
