import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../../src/data/errors.js';
import {
  BatchFiller,
  EpochPermutation,
  PackedLoader,
  sequencesIn,
  type FillerSpec,
  type LoaderCursor,
  type PackedLoaderOptions,
} from '../../src/data/loader.js';
import {
  readIndex,
  SHARD_HEADER_BYTES,
  ShardWriter,
  writeIndex,
  type DataIndex,
  type ShardEntry,
  type ShardHeader,
  type TokenDtype,
} from '../../src/data/shards.js';

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

/** perm(0..n-1) as an array. */
function listOf(perm: EpochPermutation): number[] {
  return Array.from({ length: perm.n }, (_, p) => perm.at(p));
}

test('EpochPermutation: a bijection of [0, N) for awkward N, deterministic per (seed, epoch)', () => {
  for (const n of [1, 2, 3, 4, 5, 16, 17, 1000, 4096, 4097]) {
    const a = listOf(new EpochPermutation(n, 7, 0));
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i), `n = ${n}`);
    assert.deepEqual(listOf(new EpochPermutation(n, 7, 0)), a, `n = ${n}: deterministic`);
    if (n >= 5) {
      assert.notDeepEqual(listOf(new EpochPermutation(n, 8, 0)), a, `n = ${n}: another seed`);
      assert.notDeepEqual(listOf(new EpochPermutation(n, 7, 1)), a, `n = ${n}: the next epoch`);
    }
  }
  // Seeds beyond 32 bits and negative ones are distinct keys too.
  const base = listOf(new EpochPermutation(1000, 2 ** 40, 3));
  assert.notDeepEqual(listOf(new EpochPermutation(1000, 2 ** 40 + 2 ** 32, 3)), base);
  assert.notDeepEqual(listOf(new EpochPermutation(1000, -(2 ** 40), 3)), base);
  assert.throws(() => new EpochPermutation(0, 1, 0), RangeError);
  assert.throws(() => new EpochPermutation(2 ** 52 + 1, 1, 0), RangeError);
});

test('EpochPermutation: a bijection at N = 10^6 + 3 (bitset), and far from the identity', () => {
  const n = 1_000_003; // domain 4^10 = 1048576: cycle-walking on the last 4.6%
  const perm = new EpochPermutation(n, 12345, 2);
  const seen = new Uint32Array(Math.ceil(n / 32));
  let fixed = 0;
  let adjacent = 0; // perm(p + 1) = perm(p) + 1: what a shuffle should almost never keep
  let prev = -2;
  for (let p = 0; p < n; p++) {
    const v = perm.at(p);
    assert.ok(Number.isInteger(v) && v >= 0 && v < n, `perm(${p}) = ${v}`);
    const bit = 1 << (v & 31);
    if (seen[v >>> 5]! & bit) assert.fail(`perm(${p}) = ${v} twice`);
    seen[v >>> 5]! |= bit;
    if (v === p) fixed++;
    if (v === prev + 1) adjacent++;
    prev = v;
  }
  // A random permutation has 1 fixed point and ~1 adjacent pair on average.
  assert.ok(fixed < 10, `${fixed} fixed points`);
  assert.ok(adjacent < 10, `${adjacent} adjacent pairs kept`);
  // Large N beyond what an array could hold: values in range, and distinct on a sample.
  const big = new EpochPermutation(3e12 + 7, 1, 0);
  const sample = Array.from({ length: 10_000 }, (_, i) => big.at(i * 299_999_999));
  assert.ok(sample.every((v) => Number.isSafeInteger(v) && v >= 0 && v < big.n));
  assert.equal(new Set(sample).size, sample.length);
});

test('EpochPermutation: roughly uniform over seeds, at a power of 4 and with cycle-walking', () => {
  for (const n of [4, 5]) {
    // Where position 0 goes, and what lands at the last position, over 5000 seeds.
    const first = new Array<number>(n).fill(0);
    const last = new Array<number>(n).fill(0);
    for (let s = 0; s < 5000; s++) {
      const perm = new EpochPermutation(n, s, 0);
      first[perm.at(0)]!++;
      last[perm.at(n - 1)]!++;
    }
    const e = 5000 / n; // sd ~ sqrt(e) ~ 32-35: 5 sd bounds
    for (const h of [...first, ...last]) assert.ok(Math.abs(h - e) < 5 * Math.sqrt(e), `n = ${n}: ${first} / ${last}`);
  }
});

test('global shuffle: consecutive positions come from different shards (8 equal shards)', () => {
  // Headers only: locate() never opens a file.
  const S = 8;
  const n = 1000; // sequences per shard
  const header = (s: number): ShardHeader => ({
    path: `shard-${s}`,
    version: 1,
    dtype: 'uint16',
    tokens: n * T + 1,
    documents: 1,
    crc32: 0,
    tokenizerHash: '0'.repeat(16),
  });
  // Empty shards in between and at the end: the search must skip them.
  const shards = [header(0), { ...header(99), tokens: 5 }, ...Array.from({ length: S - 1 }, (_, s) => header(s + 1))];
  shards.push({ ...header(100), tokens: 0 });
  const spec: FillerSpec = { shards, seqLen: T, batch: 8, seed: 4, shuffle: true, rank: 0, worldSize: 1, vocabSize: 1 << 16 };
  const f = new BatchFiller(spec);
  assert.equal(f.sequencesPerEpoch, S * n);
  for (const epoch of [0, 1]) {
    const at = Array.from({ length: S * n }, (_, q) => f.locate(epoch * S * n + q));
    const keys = new Set(at.map(({ shard, sequence }) => shard * n + sequence));
    assert.equal(keys.size, S * n, 'every (shard, sequence) once');
    assert.ok(at.every(({ shard, sequence }) => shard !== 1 && shard !== S + 1 && sequence >= 0 && sequence < n));
    let same = 0;
    for (let q = 1; q < at.length; q++) if (at[q]!.shard === at[q - 1]!.shard) same++;
    // Expected 1/8; the per-shard shuffle this replaced gave (S*n - S)/(S*n - 1) ~ 0.999.
    const frac = same / (at.length - 1);
    assert.ok(frac < 0.2, `epoch ${epoch}: ${frac} of adjacent pairs in one shard`);
    // A micro-batch of 8 rows spans several shards (~5.25 on average for a uniform draw).
    let distinct = 0;
    for (let k = 0; k < n; k++) distinct += new Set(at.slice(k * 8, k * 8 + 8).map((x) => x.shard)).size;
    assert.ok(distinct / n > 4.5, `${distinct / n} shards per micro-batch of 8`);
  }
  const unshuffled = new BatchFiller({ ...spec, shuffle: false });
  assert.deepEqual(unshuffled.locate(n), { shard: 2, sequence: 0 }, 'index order skips the empty shard');
  assert.deepEqual(unshuffled.locate(S * n + 5), { shard: 0, sequence: 5 }, 'and wraps per epoch');
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
    // The 128 sequences of shard 3 are spread over the epoch, not one run, and not in file order.
    const lo = WIDE_BASE + 1000 + 37 + 517;
    const inShard3 = epoch0.map((v) => v >= lo && v < lo + 2049);
    const shard3 = epoch0.filter((_, q) => inShard3[q]);
    assert.equal(shard3.length, 128);
    assert.notDeepEqual(shard3, [...shard3].sort((x, y) => x - y));
    const span = inShard3.lastIndexOf(true) - inShard3.indexOf(true) + 1;
    assert.ok(span > 180, `shard 3 spans ${span} of ${N} positions`);
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
      assert.equal(cursor.kind, 'packed-v2');
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
    // A cursor of the per-shard shuffle: its positions mean other sequences now.
    const v1 = { ...cursor, kind: 'packed-v1' } as unknown as LoaderCursor;
    throwsData(() => PackedLoader.open({ ...opts, cursor: v1 }), 'kind', 'packed-v2');
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
