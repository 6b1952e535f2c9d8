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
// Order. Shard s holds n_s sequences; the split's N = sum n_s sequences have global indices in
// shard order (shard s: [start_s, start_s + n_s), start_s = n_0 + ... + n_{s-1}). Position q of
// epoch e is global sequence perm_e(q), found in its shard by binary search over the start_s.
// perm_e is one global shuffle, so consecutive positions (and the rows of a micro-batch) come from
// shards, hence sources, at random: with S equal shards a neighbour is in the same shard 1/S of
// the time. With shuffle off (validation) perm_e is the identity: index order. The global stream
// is epoch 0, then epoch 1, ... Micro-batch k of rank r holds stream positions (k*W + r)*B + i,
// i < B: ranks are disjoint and together cover the stream.
//
// Permutation. perm_e is a keyed Feistel network on the smallest power of 4 >= N with
// cycle-walking (EpochPermutation): a bijection of [0, N) in O(1) memory (N can be 10^8 and more,
// no array of N), round keys from splitmix32 over (seed, e). 32-bit integer hashing, exact doubles:
// identical on every platform. Cursors of kind 'packed-v2' index this order ('packed-v1', the
// old per-shard shuffle, is refused: its positions would land on other sequences).
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

// ---- the epoch permutation ----------------------------------------------------------------

/** splitmix32 step: returns the next state's mixed output (state advanced by the golden ratio). */
function splitmix32(state: number): [next: number, out: number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return [next, (z ^ (z >>> 15)) >>> 0];
}

/** The low and high 32-bit words of a safe integer (two's complement for negatives). */
function words64(v: number): [number, number] {
  return [v >>> 0, Math.floor(v / 2 ** 32) >>> 0];
}

const TAG_SEQUENCES = 0x53455153; // "SEQS": keeps these keys apart from any other use of the seed

// 6 rounds: 3 is the minimum for a pseudorandom permutation (Luby-Rackoff), 4 for a strong one.
// At n = 5 (domain 16, walking) over 20000 seeds the 120 orders came 115..255 times (167
// expected) with 6 rounds, 60..541 with 4. One pass of 6 rounds is ~27 ns (N = 10^9), 105 ns per
// position at N = 97656 (2.7 passes); a row's read of T + 1 = 513 tokens is ~1 us.
const FEISTEL_ROUNDS = 6;
// Halves of at most 26 bits: the domain 2^52 and every intermediate value stay exact doubles.
const MAX_HALF_BITS = 26;

/**
 * perm_e: a seeded bijection of [0, n) in O(1) memory (the round keys), for the sequence order of
 * one epoch. A balanced Feistel network on [0, 4^h), 4^h the smallest power of 4 >= n, with
 * cycle-walking: a value that lands at or past n is encrypted again until it falls inside [0, n)
 * (a bijection of [0, 4^h) restricted this way is a bijection of [0, n); 4^h < 4n, so fewer than
 * 4 passes are expected). Round i maps (L, R) to (R, L ^ F(R, k_i)), F = the murmur3 finalizer of
 * R ^ k_i masked to h bits; k_i come from splitmix32 over (seed, "SEQS", epoch).
 */
export class EpochPermutation {
  readonly n: number;
  readonly epoch: number;
  private readonly half: number; // 2^h
  private readonly mask: number; // 2^h - 1
  private readonly keys = new Uint32Array(FEISTEL_ROUNDS);

  constructor(n: number, seed: number, epoch: number) {
    if (!(Number.isSafeInteger(n) && n >= 1 && n <= 2 ** (2 * MAX_HALF_BITS))) {
      throw new RangeError(`EpochPermutation: n must be an integer in [1, 2^${2 * MAX_HALF_BITS}], got ${n}`);
    }
    let h = 0;
    while (4 ** h < n) h++;
    this.n = n;
    this.epoch = epoch;
    this.half = 2 ** h;
    this.mask = this.half - 1;
    let state = 0x6a09e667;
    for (const w of [...words64(seed), TAG_SEQUENCES, ...words64(epoch)]) state = splitmix32((state ^ w) >>> 0)[1];
    for (let i = 0; i < FEISTEL_ROUNDS; i++) {
      const [next, out] = splitmix32(state);
      state = next;
      this.keys[i] = out;
    }
  }

  /** perm_e(p), p in [0, n). */
  at(p: number): number {
    let x = p;
    do x = this.encrypt(x);
    while (x >= this.n);
    return x;
  }

  private encrypt(x: number): number {
    const { half, mask, keys } = this;
    let l = Math.floor(x / half);
    let r = x - l * half;
    for (let i = 0; i < FEISTEL_ROUNDS; i++) {
      let f = (r ^ keys[i]!) >>> 0;
      f = Math.imul(f ^ (f >>> 16), 0x85ebca6b);
      f = Math.imul(f ^ (f >>> 13), 0xc2b2ae35);
      f ^= f >>> 16;
      const t = (l ^ (f & mask)) >>> 0;
      l = r;
      r = t;
    }
    return l * half + r;
  }
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

// Open shard files kept at once (least recently used closed first). The global shuffle reads the
// shards at random, so past this count nearly every row reopens its file: inline next() at S
// (B=4, T=512, 256 shards) took 21 us with 16 open, 9 us with 256 (same as 8 shards).
const MAX_OPEN_READERS = 256;

/** Computes and reads micro-batch k of one rank. */
export class BatchFiller {
  readonly spec: FillerSpec;
  readonly sequencesPerEpoch: number;
  private readonly starts: Float64Array; // (S + 1): first global sequence index of shard s; starts[S] = N
  private perm: EpochPermutation | undefined; // of the epoch last located (shuffle only)
  private readonly readers = new Map<number, ShardReader>();
  private readonly row: Int32Array;

  constructor(spec: FillerSpec) {
    this.spec = spec;
    const S = spec.shards.length;
    this.starts = new Float64Array(S + 1);
    for (let s = 0; s < S; s++) this.starts[s + 1] = this.starts[s]! + sequencesIn(spec.shards[s]!.tokens, spec.seqLen);
    this.sequencesPerEpoch = this.starts[S]!;
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
    let g = q; // global sequence index: shard s holds [starts[s], starts[s + 1])
    if (this.spec.shuffle) {
      // One at a time: consecutive positions share an epoch, and a new one costs 6 splitmix steps.
      if (this.perm?.epoch !== epoch) this.perm = new EpochPermutation(N, this.spec.seed, epoch);
      g = this.perm.at(q);
    }
    // Last s with starts[s] <= g: that shard has sequences (the next start is past g).
    const starts = this.starts;
    let lo = 0;
    let hi = starts.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= g) lo = mid;
      else hi = mid - 1;
    }
    return { shard: lo, sequence: g - starts[lo]! };
  }

  close(): void {
    for (const r of this.readers.values()) r.close();
    this.readers.clear();
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
  kind: 'packed-v2';
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
  kind: z.literal('packed-v2'),
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
    this.base = { kind: 'packed-v2', seed, seqLen: T, batch: B, worldSize: W, rank, shuffle, fingerprint: splitFingerprint(this.split) };
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
