// Packed loader cost at the S configuration of BENCH.md (B = 4, T = 512), worker prefetch on.
//
//   npx tsc -p . && node dist/bench/loader.js [--tokens 50000000] [--shards 8] [--step-ms 2000]
//                                             [--steps 300] [--gap-ms 5] [--dir DIR] [--keep]
// (--dir: write there and keep it; otherwise a temp dir, removed at the end unless --keep)
//
// Writes --tokens random ids (vocab 32000, uint16) as --shards shards + index.json into a temp
// dir (or --dir), then prints:
//   - shard write (ShardWriter) and full verify (CRC) throughput;
//   - raw reads: sequential ShardReader reads in 1M-token chunks, and random reads of one
//     sequence (T + 1 tokens) each, as the loader does;
//   - the train order's perm_e (EpochPermutation) per position, at this split's N and at N = 10^9;
//   - next() with a pause of --gap-ms between calls (the trainer's step, shortened: the worker
//     only needs a gap longer than one batch's read to stay ahead): mean / median / max, and the
//     mean as a share of an S training step of --step-ms;
//   - next() back to back (no pause): the loader's ceiling, worker and inline.
// The shards were just written, so reads come from the page cache; a cold disk is slower.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EpochPermutation, PackedLoader, sequencesIn } from '../src/data/loader.js';
import { openSplit, ShardReader, ShardWriter, verifyShard, writeIndex, type ShardEntry } from '../src/data/shards.js';
import { arg, cpuModel, median } from './common.js';

// S config (BENCH.md): batch 4, seq 512, vocab 32000.
const B = 4;
const T = 512;
const VOCAB = 32000;
const TOKENIZER_SHA = 'ab'.repeat(32); // any 64-hex value: the bench has no tokenizer

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function sleep(msec: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, msec);
}

function stats(xs: number[]): string {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return `mean ${mean.toFixed(4)} ms  median ${median(xs).toFixed(4)} ms  max ${Math.max(...xs).toFixed(3)} ms  (n=${xs.length})`;
}

function writeData(dir: string, tokens: number, nShards: number): void {
  const per = Math.ceil(tokens / nShards);
  const chunk = new Int32Array(1 << 20);
  let x = 12345;
  let bytes = 0;
  let genMs = 0; // random-id generation, not the writer's cost
  const t0 = process.hrtime.bigint();
  const shards: ShardEntry[] = [];
  for (let s = 0; s < nShards; s++) {
    const file = `train-${s.toString(16).padStart(16, '0')}.bin`;
    const w = ShardWriter.create(join(dir, file), { dtype: 'uint16', tokenizerHash: TOKENIZER_SHA });
    for (let left = Math.min(per, tokens - s * per); left > 0; left -= chunk.length) {
      const n = Math.min(left, chunk.length);
      const g0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        chunk[i] = x % VOCAB;
      }
      genMs += ms(g0);
      w.append(chunk.subarray(0, n), 1);
    }
    const h = w.close();
    bytes += 64 + h.tokens * 2;
    shards.push({ file, tokens: h.tokens, documents: h.documents, crc32: h.crc32 });
  }
  const writeMs = ms(t0);
  const total = shards.reduce((n, e) => n + e.tokens, 0);
  const split = { tokens: total, documents: shards.reduce((n, e) => n + e.documents, 0), shards };
  writeIndex(dir, {
    format: 'litespark-token-shards',
    version: 1,
    tokenizer: { file: 'tokenizer.json', sha256: TOKENIZER_SHA, vocab_size: VOCAB, bos_id: 1, eos_id: 2, pad_id: -1 },
    dtype: 'uint16',
    splits: { train: split, val: { tokens: 0, documents: 0, shards: [] } },
  });
  const writerMs = writeMs - genMs;
  console.log(
    `write   ${(total / 1e6).toFixed(1)}M tokens in ${nShards} shards: ShardWriter ${writerMs.toFixed(0)} ms ` +
      `(${(bytes / 1e6 / (writerMs / 1e3)).toFixed(0)} MB/s: range check, CRC, write, fsync, rename)`,
  );
}

function rawReads(dir: string): void {
  const split = openSplit(dir, 'train');
  let t0 = process.hrtime.bigint();
  for (const h of split.shards) verifyShard(h.path);
  const verifyMs = ms(t0);
  const bytes = split.tokens * 2;
  console.log(`verify  full CRC of every shard: ${verifyMs.toFixed(0)} ms (${(bytes / 1e6 / (verifyMs / 1e3)).toFixed(0)} MB/s)`);

  const buf = new Int32Array(1 << 20);
  t0 = process.hrtime.bigint();
  for (const h of split.shards) {
    const r = new ShardReader(h.path, h);
    for (let s = 0; s < h.tokens; s += buf.length) r.read(s, Math.min(buf.length, h.tokens - s), buf);
    r.close();
  }
  const seqMs = ms(t0);
  console.log(
    `read    sequential, 1M-token reads: ${(split.tokens / 1e6 / (seqMs / 1e3)).toFixed(0)}M tokens/s ` +
      `(${(bytes / 1e6 / (seqMs / 1e3)).toFixed(0)} MB/s)`,
  );

  const readers = split.shards.map((h) => new ShardReader(h.path, h));
  const n = 200_000;
  const row = new Int32Array(T + 1);
  let x = 99;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const r = readers[x % readers.length]!;
    const j = Math.floor(((x >>> 8) / 2 ** 24) * Math.floor((r.header.tokens - 1) / T));
    r.read(j * T, T + 1, row);
  }
  const rndMs = ms(t0);
  for (const r of readers) r.close();
  console.log(
    `read    random sequences of ${T + 1} tokens: ${((rndMs * 1e3) / n).toFixed(2)} us each ` +
      `(${((n * (T + 1)) / 1e6 / (rndMs / 1e3)).toFixed(0)}M tokens/s)`,
  );
}

/** ns per perm_e(p) over `count` consecutive positions (p = 0.. is what the loader asks for). */
function permCost(n: number, count: number): number {
  const perm = new EpochPermutation(n, 1, 0);
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < count; p++) sink += perm.at(p % n);
  const ns = (ms(t0) * 1e6) / count;
  if (sink < 0) console.log(sink); // keep the loop
  return ns;
}

function permutationCost(dir: string): void {
  const n = openSplit(dir, 'train').shards.reduce((a, h) => a + sequencesIn(h.tokens, T), 0);
  permCost(n, 200_000); // warm up the JIT
  const parts = [n, 1e9].map((m) => `${permCost(m, 2_000_000).toFixed(0)} ns at N = ${m}`);
  console.log(`perm    train order perm_e(p), Feistel + cycle-walking: ${parts.join(', ')}`);
}

function timeNext(dir: string, worker: boolean, steps: number, gapMs: number): { first: number; times: number[]; waitMs: number } {
  const loader = PackedLoader.open({ dir, split: 'train', seqLen: T, batch: B, seed: 1, worker });
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  let t0 = process.hrtime.bigint();
  loader.next(x, y); // worker mode: includes the worker's start
  const first = ms(t0);
  const times: number[] = [];
  for (let k = 0; k < steps; k++) {
    if (gapMs > 0) sleep(gapMs);
    t0 = process.hrtime.bigint();
    loader.next(x, y);
    times.push(ms(t0));
  }
  const waitMs = loader.waitMs;
  loader.close();
  return { first, times, waitMs };
}

function main(): void {
  const tokens = Number(arg('tokens') ?? 50_000_000);
  const nShards = Number(arg('shards') ?? 8);
  const stepMs = Number(arg('step-ms') ?? 2000);
  const steps = Number(arg('steps') ?? 300);
  const gapMs = Number(arg('gap-ms') ?? 5);
  const given = arg('dir');
  const keep = process.argv.includes('--keep') || given !== undefined; // never remove a directory we did not make
  const dir = given ?? mkdtempSync(join(tmpdir(), 'litespark-bench-loader-'));
  console.log(`CPU: ${cpuModel()}   node ${process.version}`);
  console.log(`S config: batch ${B} x seq ${T} (${B * T} tokens per next()), uint16 shards, data in ${keep ? dir : 'a temp dir'}`);
  try {
    writeData(dir, tokens, nShards);
    rawReads(dir);
    permutationCost(dir);

    const paced = timeNext(dir, true, steps, gapMs);
    const mean = paced.times.reduce((a, b) => a + b, 0) / paced.times.length;
    console.log(`next()  worker, first call (worker start): ${paced.first.toFixed(1)} ms`);
    console.log(`next()  worker, ${gapMs} ms between calls: ${stats(paced.times)}`);
    console.log(
      `        = ${((mean / stepMs) * 100).toPrecision(2)}% of a ${stepMs} ms S step (mean); ` +
        `max ${((Math.max(...paced.times) / stepMs) * 100).toPrecision(2)}%`,
    );
    const n = 20_000;
    for (const worker of [true, false]) {
      const r = timeNext(dir, worker, n, 0);
      const total = r.times.reduce((a, b) => a + b, 0);
      console.log(
        `next()  ${worker ? 'worker' : 'inline'}, back to back: ${stats(r.times)}; ` +
          `${((n * B * T) / 1e6 / (total / 1e3)).toFixed(0)}M tokens/s`,
      );
    }
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

main();
