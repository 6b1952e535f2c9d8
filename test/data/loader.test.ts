import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../../src/data/errors.js';
import { PackedLoader, permutation, sequencesIn, Xoshiro128, type LoaderCursor, type PackedLoaderOptions } from '../../src/data/loader.js';
import { readIndex, SHARD_HEADER_BYTES, ShardWriter, writeIndex, type DataIndex, type ShardEntry, type TokenDtype } from '../../src/data/shards.js';

const SHA = createHash('sha256').update('loader test tokenizer').digest('hex');
// Base of the token values in the uint32 data sets: above what uint16 holds.
const WIDE_BASE = 100_000;

/**
 * A data directory whose token values are their global position (+ base): every token is unique,
 * so a sequence is known by its first input token and its shard position is visible.
 */
function makeData(split: { train: number[]; val: number[] }, dtype: TokenDtype = 'uint16'): { dir: string; starts: number[] } {
  const dir = mkdtempSync(join(tmpdir(), 'litespark-loader-'));
  const base = dtype === 'uint16' ? 0 : WIDE_BASE;
  let next = base;
  const starts: number[] = []; // first token of every train sequence for seqLen 16, index order
  const write = (name: 'train' | 'val') => {
    const shards: ShardEntry[] = split[name].map((n, i) => {
      const file = `${name}-${i.toString(16).padStart(16, '0')}.bin`;
      const w = ShardWriter.create(join(dir, file), { dtype, tokenizerHash: SHA });
      const tokens = Int32Array.from({ length: n }, (_, t) => next + t);
      if (name === 'train') for (let j = 0; j < sequencesIn(n, 16); j++) starts.push(next + j * 16);
      next += n;
      w.append(tokens, 1);
      const h = w.close();
      return { file, tokens: h.tokens, documents: h.documents, crc32: h.crc32 };
    });
    return { tokens: split[name].reduce((a, b) => a + b, 0), documents: shards.length, shards };
  };
  const index: DataIndex = {
    format: 'litespark-token-shards',
    version: 1,
    tokenizer: { file: 'tokenizer.json', sha256: SHA, vocab_size: dtype === 'uint16' ? 65536 : 1 << 20, bos_id: -1, eos_id: 0, pad_id: -1 },
    dtype,
    splits: { train: write('train'), val: write('val') },
  };
  writeIndex(dir, index);
  return { dir, starts };
}

// 62 + 2 + 32 + 128 + 0 = 224 sequences of T = 16; shards of awkward sizes, one too short for any.
const TRAIN = [1000, 37, 517, 2049, 16];
const T = 16;
const N = TRAIN.reduce((n, t) => n + sequencesIn(t, T), 0);

type Opts = Omit<PackedLoaderOptions, 'dir'>;

/** `steps` batches of a new loader: inputs, targets, and the first token of every row. */
function take(dir: string, opts: Opts, steps: number): { inputs: Int32Array[]; targets: Int32Array[]; rows: number[]; loader: PackedLoader } {
  const loader = PackedLoader.open({ dir, ...opts });
  const out = { inputs: [] as Int32Array[], targets: [] as Int32Array[], rows: [] as number[], loader };
  try {
    for (let k = 0; k < steps; k++) {
      const x = new Int32Array(opts.batch * opts.seqLen);
      const y = new Int32Array(opts.batch * opts.seqLen);
      loader.next(x, y);
      out.inputs.push(x);
      out.targets.push(y);
      for (let b = 0; b < opts.batch; b++) out.rows.push(x[b * opts.seqLen]!);
    }
  } finally {
    loader.close();
  }
  return out;
}

/** Every row is a run of consecutive token values, targets the inputs shifted by one. */
function assertPacked(inputs: Int32Array[], targets: Int32Array[], seqLen: number): void {
  for (let k = 0; k < inputs.length; k++) {
    const x = inputs[k]!;
    const y = targets[k]!;
    for (let i = 0; i < x.length; i++) {
      const first = x[i - (i % seqLen)]!;
      assert.equal(x[i], first + (i % seqLen), `batch ${k}: inputs[${i}]`);
      assert.equal(y[i], first + (i % seqLen) + 1, `batch ${k}: targets[${i}]`);
    }
  }
}

function throwsData(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `'${e.message}' should contain '${p}'`);
    return true;
  });
}

test('permutation: Fisher-Yates over xoshiro128** is a permutation, deterministic per seed', () => {
  const a = permutation(1000, new Xoshiro128([1, 2, 3]));
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(permutation(1000, new Xoshiro128([1, 2, 3])), a);
  assert.notDeepEqual(permutation(1000, new Xoshiro128([1, 2, 4])), a);
  // Roughly uniform: each of 4 items lands in position 0 about a quarter of the time.
  const hits = [0, 0, 0, 0];
  for (let s = 0; s < 4000; s++) hits[permutation(4, new Xoshiro128([s]))[0]!]!++;
  for (const h of hits) assert.ok(h > 850 && h < 1150, `position 0 counts ${hits}`);
});

for (const shuffle of [false, true]) {
  for (const worker of [false, true]) {
    test(`every sequence of an epoch appears exactly once (shuffle ${shuffle}, worker ${worker})`, () => {
      const { dir, starts } = makeData({ train: TRAIN, val: [100] });
      try {
        assert.equal(starts.length, N);
        const B = 4;
        const r = take(dir, { split: 'train', seqLen: T, batch: B, seed: 11, shuffle, worker }, N / B);
        assert.equal(r.loader.sequencesPerEpoch, N);
        assertPacked(r.inputs, r.targets, T);
        assert.deepEqual([...r.rows].sort((a, b) => a - b), starts);
        if (shuffle) assert.notDeepEqual(r.rows, starts);
        else assert.deepEqual(r.rows, starts, 'without shuffle: index order');
        assert.ok(r.loader.waitMs >= 0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

test('shuffling: deterministic per seed, different for another seed and another epoch; uint32 shards', () => {
  const { dir } = makeData({ train: TRAIN, val: [100] }, 'uint32');
  try {
    const opts = { split: 'train' as const, seqLen: T, batch: 8, worker: false };
    const a = take(dir, { ...opts, seed: 1 }, (2 * N) / 8);
    const b = take(dir, { ...opts, seed: 1 }, (2 * N) / 8);
    const c = take(dir, { ...opts, seed: 2 }, (2 * N) / 8);
    assertPacked(a.inputs, a.targets, T);
    assert.ok(a.rows.every((v) => v >= WIDE_BASE));
    assert.deepEqual(a.rows, b.rows);
    assert.notDeepEqual(a.rows, c.rows);
    const epoch0 = a.rows.slice(0, N);
    const epoch1 = a.rows.slice(N);
    assert.deepEqual([...epoch1].sort(), [...epoch0].sort(), 'each epoch holds every sequence');
    assert.notDeepEqual(epoch1, epoch0, 'a new order every epoch');
    // Within a shard too: the 128 sequences of shard 3 come as one run, not in file order.
    const lo = WIDE_BASE + 1000 + 37 + 517;
    const shard3 = epoch0.filter((v) => v >= lo && v < lo + 2049);
    assert.equal(shard3.length, 128);
    assert.notDeepEqual(shard3, [...shard3].sort((x, y) => x - y));
    const at = epoch0.indexOf(shard3[0]!);
    assert.deepEqual(epoch0.slice(at, at + 128), shard3, "a shard's sequences are consecutive in the stream");
    assert.equal(a.loader.epoch, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('data parallel: ranks never see the same sequence and together cover the epoch', () => {
  const { dir, starts } = makeData({ train: TRAIN, val: [100] });
  try {
    const W = 2;
    const B = 4;
    const seen: number[][] = [];
    for (let rank = 0; rank < W; rank++) {
      const r = take(dir, { split: 'train', seqLen: T, batch: B, seed: 5, rank, worldSize: W }, N / (W * B));
      assertPacked(r.inputs, r.targets, T);
      seen.push(r.rows);
    }
    const all = seen.flat();
    assert.equal(new Set(all).size, all.length, 'disjoint');
    assert.deepEqual(all.sort((a, b) => a - b), starts, 'together, every sequence once');
    // Rank r's micro-batch k is stream positions (k*W + r)*B + i of the single-rank stream.
    const single = take(dir, { split: 'train', seqLen: T, batch: 1, seed: 5, worker: false }, N).rows;
    assert.deepEqual(seen[1]!.slice(0, B), single.slice(B, 2 * B));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('worker and inline give identical batches, across epoch wraps', () => {
  const { dir } = makeData({ train: TRAIN, val: [100] });
  try {
    // B = 5 does not divide N = 224: batch 44 takes 4 sequences of epoch 0 and 1 of epoch 1.
    const opts = { split: 'train' as const, seqLen: T, batch: 5, seed: 3, prefetch: 3 };
    const steps = Math.ceil((2.5 * N) / 5);
    const inline = take(dir, { ...opts, worker: false }, steps);
    const worker = take(dir, { ...opts, worker: true }, steps);
    assert.deepEqual(worker.inputs, inline.inputs);
    assert.deepEqual(worker.targets, inline.targets);
    assertPacked(inline.inputs, inline.targets, T);
    const rows = inline.rows;
    assert.deepEqual(new Set(rows.slice(0, N)).size, N, 'epoch 0 complete before epoch 1 starts');
    assert.deepEqual(new Set(rows.slice(N, 2 * N)).size, N, 'epoch 1 complete');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without shuffle, epochs repeat the index order', () => {
  const { dir, starts } = makeData({ train: TRAIN, val: [100] });
  try {
    const r = take(dir, { split: 'train', seqLen: T, batch: 7, seed: 0, shuffle: false }, Math.ceil((2 * N) / 7));
    assert.deepEqual(r.rows.slice(0, 2 * N), [...starts, ...starts]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const worker of [false, true]) {
  test(`resume from cursor() gives the identical next batches (worker ${worker})`, () => {
    const { dir } = makeData({ train: TRAIN, val: [100] });
    try {
      const opts = { split: 'train' as const, seqLen: T, batch: 3, seed: 9, rank: 1, worldSize: 2, worker, prefetch: 4 };
      const full = take(dir, opts, 60);
      const first = PackedLoader.open({ dir, ...opts });
      const x = new Int32Array(3 * T);
      const y = new Int32Array(3 * T);
      for (let k = 0; k < 25; k++) first.next(x, y);
      // The worker has prefetched past batch 25; the cursor counts only what next() returned.
      const cursor: LoaderCursor = JSON.parse(JSON.stringify(first.cursor()));
      first.close();
      assert.equal(cursor.batches, 25);
      assert.equal(cursor.kind, 'packed-v1');
      for (const w of [worker, !worker]) {
        const rest = take(dir, { ...opts, worker: w, cursor }, 35);
        assert.deepEqual(rest.inputs, full.inputs.slice(25));
        assert.deepEqual(rest.targets, full.targets.slice(25));
        assert.equal(rest.loader.cursor().batches, 60);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a cursor that disagrees with the loader: an error naming the fields', () => {
  const { dir } = makeData({ train: TRAIN, val: [100] });
  const other = makeData({ train: [1000, 37, 517, 2049, 17], val: [100] });
  try {
    const opts = { dir, split: 'train' as const, seqLen: T, batch: 3, seed: 9, worker: false };
    const l = PackedLoader.open(opts);
    const cursor = l.cursor();
    l.close();
    throwsData(() => PackedLoader.open({ ...opts, seqLen: 8, seed: 10, cursor }), 'seqLen 16 (now 8)', 'seed 9 (now 10)', dir);
    throwsData(() => PackedLoader.open({ ...opts, rank: 1, worldSize: 2, cursor }), 'worldSize', 'rank');
    throwsData(() => PackedLoader.open({ ...opts, dir: other.dir, cursor }), 'fingerprint', 'the data directory changed');
    throwsData(() => PackedLoader.open({ ...opts, cursor: { ...cursor, kind: 'other' } as unknown as LoaderCursor }), 'kind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(other.dir, { recursive: true, force: true });
  }
});

test('validation batches: shuffle off gives the same first N batches every time', () => {
  const { dir } = makeData({ train: [100], val: [300, 500] });
  try {
    const opts = { split: 'val' as const, seqLen: T, batch: 2, seed: 123 };
    const a = take(dir, { ...opts, shuffle: false }, 10);
    const b = take(dir, { ...opts, seed: 456 }, 10); // val defaults to no shuffle; the seed is moot
    assert.deepEqual(a.inputs, b.inputs);
    assert.equal(a.rows[0], 100, 'val starts at its first shard');
    assertPacked(a.inputs, a.targets, T);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a split without a single sequence: an error naming the directory', () => {
  const { dir } = makeData({ train: [600, 600], val: [300] });
  try {
    throwsData(
      () => PackedLoader.open({ dir, split: 'val', seqLen: 512, batch: 1, seed: 0 }),
      `val split of ${dir} has 300 tokens, fewer than seq_len+1 = 513`,
    );
    throwsData(
      () => PackedLoader.open({ dir, split: 'train', seqLen: 600, batch: 1, seed: 0 }),
      `train split of ${dir} has 1200 tokens in 2 shards, but no shard has seq_len+1 = 601`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const worker of [false, true]) {
  test(`a shard that becomes unreadable: next() throws a DataError naming it (worker ${worker})`, () => {
    const { dir } = makeData({ train: [4000], val: [100] });
    try {
      const loader = PackedLoader.open({ dir, split: 'train', seqLen: T, batch: 1, seed: 0, shuffle: false, prefetch: 1, worker });
      const shard = join(dir, 'train-0000000000000000.bin');
      truncateSync(shard, SHARD_HEADER_BYTES + 1000); // sequences past token 500 are gone
      const x = new Int32Array(T);
      const y = new Int32Array(T);
      throwsData(() => {
        for (let k = 0; k < 100; k++) loader.next(x, y);
      }, shard, 'truncated');
      throwsData(() => loader.next(x, y), shard); // and again, not a hang
      loader.close();
      assert.throws(() => loader.next(x, y), /after close/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('ids outside the vocabulary are rejected with the shard named', () => {
  const { dir } = makeData({ train: [2000], val: [100] }, 'uint32');
  try {
    // vocab_size is 2^20 and values start at 100000: fine. Rewrite the index with a smaller vocab.
    const index = readIndex(dir);
    index.tokenizer.vocab_size = 100_500;
    writeIndex(dir, index);
    throwsData(
      () => take(dir, { split: 'train', seqLen: T, batch: 1, seed: 0, shuffle: false, worker: false }, 100),
      join(dir, 'train-0000000000000000.bin'),
      'outside the vocabulary',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
