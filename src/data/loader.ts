// Packed loader: fixed-length training sequences read from token shards, shuffled per epoch,
// sliced per data-parallel rank, prefetched on a worker thread, resumable from a JSON cursor.
//
// Shapes: inputs, targets: (B, T) row-major, flat Int32Array of B*T; targets[b, t] is the token
// after inputs[b, t]. B = batch rows per micro-batch of one rank, T = seqLen, W = worldSize.
//
// Sequences. Documents are already concatenated inside a shard with EOS after each, so a shard of
// n tokens holds floor((n - 1) / T) sequences; sequence j covers tokens [j*T, j*T + T] (T + 1
// tokens: inputs the first T, targets the last T). Sequences never span shards; the tail of a
// shard that is shorter than a sequence is not used.
//
// Order. Epoch e lists the shards in a seeded permutation (seed, e) and, within shard s, its
// sequences in a seeded permutation (seed, e, s); with shuffle off (validation) both are in index
// order. The global stream is epoch 0, then epoch 1, ... Micro-batch k of rank r holds stream
// positions (k*W + r)*B + i, i < B: ranks are disjoint and together cover the stream.
//
// PRNG. Each permutation is a Fisher-Yates shuffle driven by xoshiro128** (Blackman & Vigna),
// seeded by splitmix32 over the words (seed lo, seed hi, tag, e lo, e hi, s); bounded draws by
// rejection, so no modulo bias. Pure 32-bit integer arithmetic: identical on every platform.
//
// Prefetch. A worker thread (loader_worker.ts) reads batches with ShardReader into a ring of
// `prefetch` slots in a SharedArrayBuffer; next() waits (Atomics.wait) only when its slot is not
// filled yet, then copies it out with two TypedArray.set calls. `worker: false` runs the same
// BatchFiller inline, so both give identical batches.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as z from 'zod';
import { DataError } from './errors.js';
import { openSplit, ShardReader, type OpenedSplit, type ShardHeader, type SplitName } from './shards.js';

// ---- PRNG and permutations ------------------------------------------------------------------

/** splitmix32 step: returns the next state's mixed output (state advanced by the golden ratio). */
function splitmix32(state: number): [next: number, out: number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return [next, (z ^ (z >>> 15)) >>> 0];
}

/** xoshiro128**: 128-bit state, 32-bit outputs; seeded from any list of 32-bit words. */
export class Xoshiro128 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(words: readonly number[]) {
    let h = 0x6a09e667;
    for (const w of words) h = splitmix32((h ^ w) >>> 0)[1];
    const s: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(h);
      h = next;
      s.push(out);
    }
    [this.a, this.b, this.c, this.d] = s as [number, number, number, number];
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1; // the all-zero state is a fixed point
  }

  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** Uniform integer in [0, n), n <= 2^32, by rejection. */
  below(n: number): number {
    const limit = 2 ** 32 - (2 ** 32 % n); // largest multiple of n that fits
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The low and high 32-bit words of a safe integer (two's complement for negatives). */
function words64(v: number): [number, number] {
  return [v >>> 0, Math.floor(v / 2 ** 32) >>> 0];
}

const TAG_SHARDS = 0x5348524e; // "SHRN"
const TAG_SEQUENCES = 0x53455153; // "SEQS"

/** Fisher-Yates permutation of 0..n-1 from `rng`. */
export function permutation(n: number, rng: Xoshiro128): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Shard order of epoch e. */
export function shardOrder(seed: number, epoch: number, nShards: number): Uint32Array {
  return permutation(nShards, new Xoshiro128([...words64(seed), TAG_SHARDS, ...words64(epoch), 0]));
}

/** Sequence order of shard s in epoch e. */
export function sequenceOrder(seed: number, epoch: number, shard: number, nSequences: number): Uint32Array {
  return permutation(nSequences, new Xoshiro128([...words64(seed), TAG_SEQUENCES, ...words64(epoch), shard]));
}

/** Sequences of T + 1 tokens in a shard of n tokens. */
export function sequencesIn(tokens: number, seqLen: number): number {
  return Math.max(0, Math.floor((tokens - 1) / seqLen));
}

// ---- batch filling (shared by the worker and the inline path) -------------------------------

/** What a BatchFiller needs; plain data, so it can be posted to the worker. */
export interface FillerSpec {
  shards: ShardHeader[];
  seqLen: number;
  batch: number;
  seed: number;
  shuffle: boolean;
  rank: number;
  worldSize: number;
  /** Ids at or above this are rejected (the embedding has no row for them). */
  vocabSize: number;
}

interface EpochPlan {
  order: Uint32Array; // shard ids in stream order
  starts: Float64Array; // first stream position (within the epoch) of order[i]; starts[S] = N
}

// Open shard files kept at once; more shards than this are reopened as the stream reaches them.
const MAX_OPEN_READERS = 16;

/** Computes and reads micro-batch k of one rank. */
export class BatchFiller {
  readonly spec: FillerSpec;
  readonly sequencesPerEpoch: number;
  private readonly counts: number[];
  private readonly epochs = new Map<number, EpochPlan>();
  private readonly orders = new Map<string, Uint32Array>();
  private readonly readers = new Map<number, ShardReader>();
  private readonly row: Int32Array;

  constructor(spec: FillerSpec) {
    this.spec = spec;
    this.counts = spec.shards.map((h) => sequencesIn(h.tokens, spec.seqLen));
    this.sequencesPerEpoch = this.counts.reduce((a, b) => a + b, 0);
    this.row = new Int32Array(spec.seqLen + 1);
  }

  /** inputs, targets: (B, T) of micro-batch k of this rank. */
  fill(k: number, inputs: Int32Array, targets: Int32Array): void {
    const { batch: B, seqLen: T, rank, worldSize: W, vocabSize } = this.spec;
    const row = this.row;
    for (let i = 0; i < B; i++) {
      const { shard, sequence } = this.locate((k * W + rank) * B + i);
      const reader = this.reader(shard);
      reader.read(sequence * T, T + 1, row);
      let lo = 0;
      let hi = 0;
      for (let t = 0; t <= T; t++) {
        const v = row[t]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (lo < 0 || hi >= vocabSize) {
        throw new DataError(
          `shard ${reader.header.path}: token id ${lo < 0 ? lo : hi} in tokens [${sequence * T}, ${sequence * T + T}] ` +
            `is outside the vocabulary (0..${vocabSize - 1})`,
        );
      }
      inputs.set(row.subarray(0, T), i * T);
      targets.set(row.subarray(1), i * T);
    }
  }

  /** Shard and sequence index of global stream position p. */
  locate(p: number): { shard: number; sequence: number } {
    const N = this.sequencesPerEpoch;
    const epoch = Math.floor(p / N);
    const q = p - epoch * N;
    const plan = this.epochPlan(epoch);
    // Last i with starts[i] <= q: that shard has sequences (the next start is past q).
    let lo = 0;
    let hi = plan.order.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (plan.starts[mid]! <= q) lo = mid;
      else hi = mid - 1;
    }
    const shard = plan.order[lo]!;
    const j = q - plan.starts[lo]!;
    const sequence = this.spec.shuffle ? this.sequenceOrder(epoch, shard)[j]! : j;
    return { shard, sequence };
  }

  close(): void {
    for (const r of this.readers.values()) r.close();
    this.readers.clear();
  }

  private epochPlan(epoch: number): EpochPlan {
    const key = this.spec.shuffle ? epoch : 0; // without shuffle every epoch is the same
    let plan = this.epochs.get(key);
    if (plan) return plan;
    const S = this.counts.length;
    const order = this.spec.shuffle ? shardOrder(this.spec.seed, epoch, S) : Uint32Array.from(this.counts.keys());
    const starts = new Float64Array(S + 1);
    for (let i = 0; i < S; i++) starts[i + 1] = starts[i]! + this.counts[order[i]!]!;
    plan = { order, starts };
    if (this.epochs.size >= 2) this.epochs.delete(this.epochs.keys().next().value!);
    this.epochs.set(key, plan);
    return plan;
  }

  private sequenceOrder(epoch: number, shard: number): Uint32Array {
    const key = `${epoch}:${shard}`;
    let order = this.orders.get(key);
    if (order) return order;
    order = sequenceOrder(this.spec.seed, epoch, shard, this.counts[shard]!);
    if (this.orders.size >= 4) this.orders.delete(this.orders.keys().next().value!);
    this.orders.set(key, order);
    return order;
  }

  private reader(shard: number): ShardReader {
    let r = this.readers.get(shard);
    if (r) {
      // most recently used last
      this.readers.delete(shard);
      this.readers.set(shard, r);
      return r;
    }
    if (this.readers.size >= MAX_OPEN_READERS) {
      const [oldest, old] = this.readers.entries().next().value!;
      old.close();
      this.readers.delete(oldest);
    }
    const h = this.spec.shards[shard]!;
    r = new ShardReader(h.path, h);
    this.readers.set(shard, r);
    return r;
  }
}

// ---- cursor ------------------------------------------------------------------------------

/** Where a loader stands, as plain JSON (saved with a checkpoint). */
export interface LoaderCursor {
  kind: 'packed-v1';
  seed: number;
  seqLen: number;
  batch: number;
  worldSize: number;
  rank: number;
  shuffle: boolean;
  /** Micro-batches the caller has taken with next(). */
  batches: number;
  /** sha256 prefix of the split's shard list (file, tokens, crc32): the data it indexes into. */
  fingerprint: string;
}

const cursorSchema = z.strictObject({
  kind: z.literal('packed-v1'),
  seed: z.number().int(),
  seqLen: z.number().int().min(1),
  batch: z.number().int().min(1),
  worldSize: z.number().int().min(1),
  rank: z.number().int().min(0),
  shuffle: z.boolean(),
  batches: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  fingerprint: z.string(),
});

/** Fingerprint of an opened split: what a cursor's positions mean. */
export function splitFingerprint(split: OpenedSplit): string {
  const shards = split.shards.map((h) => [basename(h.path), h.tokens, h.crc32]);
  return createHash('sha256')
    .update(JSON.stringify({ split: split.split, dtype: split.index.dtype, shards }))
    .digest('hex')
    .slice(0, 16);
}

// ---- the loader --------------------------------------------------------------------------

export interface PackedLoaderOptions {
  /** Prepared data directory (index.json + shards). */
  dir: string;
  split: SplitName;
  seqLen: number;
  batch: number;
  seed: number;
  /** Default: true for 'train', false for 'val'. */
  shuffle?: boolean;
  rank?: number;
  worldSize?: number;
  /** Resume here; its settings and fingerprint must match. */
  cursor?: LoaderCursor;
  /** Batches read ahead by the worker; default 4. */
  prefetch?: number;
  /** 'header' (default): headers against the index; 'full': also every shard's CRC. */
  verify?: 'header' | 'full';
  /** Prefetch on a worker thread (default true); false reads inline in next(). */
  worker?: boolean;
}

const WORKER_URL = new URL('./loader_worker.js', import.meta.url);

// Shared control words (Int32Array over the SharedArrayBuffer); slot states from CTRL_STATE on.
export const CTRL_STOP = 0; // 1: the worker must stop
export const CTRL_ERR_LEN = 1; // bytes of error text
export const CTRL_ERR_KIND = 2; // 1: DataError, 2: any other error
export const CTRL_STATE = 3;
export const SLOT_EMPTY = 0;
export const SLOT_FULL = 1;
export const SLOT_ERROR = 2;
export const ERR_BYTES = 4096;

/** Layout of the shared ring: control words, error text, then `slots` x (inputs, targets). */
export function ringLayout(slots: number, batch: number, seqLen: number) {
  const ctrlBytes = Math.ceil(((CTRL_STATE + slots) * 4) / 64) * 64;
  const dataOffset = ctrlBytes + ERR_BYTES;
  const slotInts = 2 * batch * seqLen;
  return { ctrlInts: CTRL_STATE + slots, ctrlBytes, dataOffset, slotInts, bytes: dataOffset + slots * slotInts * 4 };
}

/** What the worker receives (workerData). */
export interface WorkerInit {
  spec: FillerSpec;
  start: number;
  slots: number;
  ring: SharedArrayBuffer;
}

export class PackedLoader {
  readonly split: OpenedSplit;
  readonly seqLen: number;
  readonly batch: number;
  readonly sequencesPerEpoch: number;
  /** Total milliseconds next() spent blocked on data (waiting for the worker, or reading inline). */
  waitMs = 0;
  private readonly base: Omit<LoaderCursor, 'batches'>;
  private batches: number;
  private readonly filler: BatchFiller | undefined; // inline mode
  private readonly worker: Worker | undefined;
  private readonly slots: number;
  private readonly ctrl: Int32Array | undefined;
  private readonly errText: Uint8Array | undefined;
  private readonly slotInputs: Int32Array[] = [];
  private readonly slotTargets: Int32Array[] = [];
  private closed = false;

  private constructor(opts: PackedLoaderOptions) {
    const { dir, split: name, seqLen: T, batch: B, seed } = opts;
    const rank = opts.rank ?? 0;
    const W = opts.worldSize ?? 1;
    const shuffle = opts.shuffle ?? name === 'train';
    const slots = opts.prefetch ?? 4;
    const intAtLeast = (v: number, min: number, what: string) => {
      if (!(Number.isSafeInteger(v) && v >= min)) throw new RangeError(`PackedLoader: ${what} must be an integer >= ${min}, got ${v}`);
    };
    intAtLeast(T, 1, 'seqLen');
    intAtLeast(B, 1, 'batch');
    intAtLeast(W, 1, 'worldSize');
    intAtLeast(slots, 1, 'prefetch');
    if (!Number.isSafeInteger(seed)) throw new RangeError(`PackedLoader: seed must be a safe integer, got ${seed}`);
    if (!(Number.isInteger(rank) && rank >= 0 && rank < W)) {
      throw new RangeError(`PackedLoader: rank must be an integer in [0, ${W}), got ${rank}`);
    }

    this.split = openSplit(dir, name, { verify: opts.verify ?? 'header' });
    this.seqLen = T;
    this.batch = B;
    const spec: FillerSpec = {
      shards: this.split.shards,
      seqLen: T,
      batch: B,
      seed,
      shuffle,
      rank,
      worldSize: W,
      vocabSize: this.split.index.tokenizer.vocab_size,
    };
    this.sequencesPerEpoch = spec.shards.reduce((n, h) => n + sequencesIn(h.tokens, T), 0);
    if (this.sequencesPerEpoch === 0) {
      const n = this.split.tokens;
      const nShards = spec.shards.length;
      throw new DataError(
        n < T + 1
          ? `${name} split of ${dir} has ${n} tokens, fewer than seq_len+1 = ${T + 1}`
          : `${name} split of ${dir} has ${n} tokens in ${nShards} shards, but no shard has seq_len+1 = ${T + 1} ` +
              `(sequences never span shards)`,
      );
    }
    this.base = { kind: 'packed-v1', seed, seqLen: T, batch: B, worldSize: W, rank, shuffle, fingerprint: splitFingerprint(this.split) };
    this.batches = opts.cursor ? this.resumeFrom(opts.cursor) : 0;
    this.slots = slots;

    if (opts.worker === false) {
      this.filler = new BatchFiller(spec);
      return;
    }
    const script = fileURLToPath(WORKER_URL);
    if (!existsSync(script)) {
      throw new Error(`PackedLoader: worker script ${script} is missing (build with 'npm run build', or pass worker: false)`);
    }
    const layout = ringLayout(slots, B, T);
    const ring = new SharedArrayBuffer(layout.bytes);
    this.ctrl = new Int32Array(ring, 0, layout.ctrlInts);
    this.errText = new Uint8Array(ring, layout.ctrlBytes, ERR_BYTES);
    for (let s = 0; s < slots; s++) {
      const off = layout.dataOffset + s * layout.slotInts * 4;
      this.slotInputs.push(new Int32Array(ring, off, B * T));
      this.slotTargets.push(new Int32Array(ring, off + B * T * 4, B * T));
    }
    const init: WorkerInit = { spec, start: this.batches, slots, ring };
    this.worker = new Worker(WORKER_URL, { workerData: init });
    // The worker reports failures through the ring (next() runs synchronously and would never see
    // an event); this listener only keeps an 'error' event from becoming an uncaught exception.
    this.worker.on('error', () => {});
    this.worker.unref();
  }

  static open(opts: PackedLoaderOptions): PackedLoader {
    return new PackedLoader(opts);
  }

  /** Micro-batches per epoch for this rank's share of the stream (fractional epochs are normal). */
  get batchesPerEpoch(): number {
    return this.sequencesPerEpoch / (this.batch * this.base.worldSize);
  }

  /** Epochs consumed so far by next(), fractional. */
  get epoch(): number {
    return (this.batches * this.batch * this.base.worldSize) / this.sequencesPerEpoch;
  }

  /** inputs, targets: (B, T). The next micro-batch of this rank. */
  next(inputs: Int32Array, targets: Int32Array): void {
    if (this.closed) throw new Error('PackedLoader: next() after close()');
    const n = this.batch * this.seqLen;
    if (inputs.length !== n || targets.length !== n) {
      throw new RangeError(`PackedLoader.next: inputs and targets must hold batch*seqLen = ${n}, got ${inputs.length} and ${targets.length}`);
    }
    if (this.filler) {
      const t0 = performance.now();
      try {
        this.filler.fill(this.batches, inputs, targets);
      } finally {
        this.waitMs += performance.now() - t0;
      }
      this.batches++;
      return;
    }
    const ctrl = this.ctrl!;
    const slot = this.batches % this.slots;
    const st = CTRL_STATE + slot;
    let state = Atomics.load(ctrl, st);
    if (state === SLOT_EMPTY) {
      const t0 = performance.now();
      while (state === SLOT_EMPTY) {
        Atomics.wait(ctrl, st, SLOT_EMPTY);
        state = Atomics.load(ctrl, st);
      }
      this.waitMs += performance.now() - t0;
    }
    if (state === SLOT_ERROR) {
      const text = Buffer.from(this.errText!.slice(0, Atomics.load(ctrl, CTRL_ERR_LEN))).toString('utf8');
      throw Atomics.load(ctrl, CTRL_ERR_KIND) === 1 ? new DataError(text) : new Error(`loader worker: ${text}`);
    }
    inputs.set(this.slotInputs[slot]!);
    targets.set(this.slotTargets[slot]!);
    Atomics.store(ctrl, st, SLOT_EMPTY);
    Atomics.notify(ctrl, st);
    this.batches++;
  }

  /** Position after the batches next() returned (prefetched ones are not counted). */
  cursor(): LoaderCursor {
    return { ...this.base, batches: this.batches };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.filler?.close();
    if (this.worker && this.ctrl) {
      Atomics.store(this.ctrl, CTRL_STOP, 1);
      for (let s = 0; s < this.slots; s++) Atomics.notify(this.ctrl, CTRL_STATE + s);
      void this.worker.terminate();
    }
  }

  /** Batches already taken according to `cursor`; throws naming every field that disagrees. */
  private resumeFrom(cursor: LoaderCursor): number {
    const r = cursorSchema.safeParse(cursor);
    if (!r.success) {
      const why = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`).join('; ');
      throw new DataError(`loader cursor for the ${this.split.split} split of ${this.split.dir} is malformed: ${why}`);
    }
    const c = r.data;
    const diffs: string[] = [];
    for (const key of ['fingerprint', 'seed', 'seqLen', 'batch', 'worldSize', 'rank', 'shuffle'] as const) {
      if (c[key] !== this.base[key]) diffs.push(`${key} ${JSON.stringify(c[key])} (now ${JSON.stringify(this.base[key])})`);
    }
    if (diffs.length > 0) {
      const hint = diffs[0]!.startsWith('fingerprint') ? ' (the data directory changed)' : '';
      throw new DataError(
        `cannot resume the ${this.split.split} loader of ${this.split.dir} from this cursor: ${diffs.join(', ')}${hint}`,
      );
    }
    return c.batches;
  }
}
