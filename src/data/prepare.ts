// `litespark prepare`: text and jsonl corpora -> a directory of token shards the loader reads.
//
// Output directory:
//   tokenizer.json          the tokenizer the shards were made with (Hugging Face format)
//   index.json              splits, shards, token and document counts, the tokenizer's sha256
//                           (shards.ts: DataIndex), written last and atomically
//   train-<key>.bin         token shards (shards.ts), one train and at most one val shard per unit
//   val-<key>.bin
//   .prepare/units/<key>.json   the record of a finished unit (counts, skipped lines)
//   .prepare/tokenizer.key      what a trained tokenizer was trained on
//
// Work is cut into units: one per input file, or line-aligned ranges of `splitBytes` for large
// uncompressed jsonl (and line-per-document text) files. A unit's key is the sha256 of
// everything that decides its tokens: the file's content hash, the range, the format and field,
// the validation policy, the token dtype and the tokenizer's hash. A unit whose record and
// shards exist is not done again, so re-running on the same inputs is a no-op and an
// interrupted run resumes where it stopped (a shard appears only complete, by rename; its
// record is written after it). Shards and records no longer named by the index are removed
// once the new index is in place. Units run on worker threads, one per core by default.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DataError } from './errors.js';
import { writeAtomic } from './files.js';
import { expandInputs, readDocuments, splitLines, type InputFile, type TextDocs } from './inputs.js';
import { shardName, type UnitProgress, type UnitResult, type UnitSpec, type ValPolicy } from './prepare_unit.js';
import { tokenizeUnit } from './prepare_unit.js';
import {
  readShardHeader,
  tokenDtypeFor,
  writeIndex,
  type DataIndex,
} from './shards.js';
import { BpeTokenizer, DEFAULT_SPECIALS, loadTokenizer, TOKENIZER_VERSION, type Tokenizer } from './tokenizer.js';

/** Bump when the token layout or the unit key changes (it invalidates every unit). */
export const PREPARE_VERSION = 1;

export interface PrepareOptions {
  /** Files, directories, glob patterns, or already classified files. */
  inputs: ReadonlyArray<string | InputFile>;
  out: string;
  /** A Hugging Face tokenizer.json to use... */
  tokenizer?: string;
  /** ...or train a byte-level BPE of this vocabulary size on the start of the inputs. */
  vocabSize?: number;
  specials?: readonly string[];
  /** Bytes of text, from the start of the inputs, that a trained tokenizer learns from. */
  tokenizerTrainBytes?: number;
  /** jsonl field holding the text (dotted path for nested objects). Default `text`. */
  field?: string;
  textDocs?: TextDocs;
  /** Fraction held out for validation (see prepare_unit.ts). Default 0.01. */
  valFraction?: number;
  /** Worker threads; 0 = tokenize on this thread. Default: one per core. */
  workers?: number;
  /** Read at most this many bytes of the (uncompressed) inputs, in input order. */
  maxBytes?: number;
  /** Uncompressed line files larger than this are cut into ranges of about this size. */
  splitBytes?: number;
  cwd?: string;
  onStatus?: (msg: string) => void;
  onWarning?: (msg: string) => void;
  onProgress?: (p: PrepareProgress) => void;
}

export interface PrepareProgress {
  /** Bytes read from disk by the units of this run, of `rawTotal`. */
  raw: number;
  rawTotal: number;
  /** Decompressed text bytes, tokens and documents done in this run. */
  textBytes: number;
  tokens: number;
  documents: number;
  unitsDone: number;
  units: number;
}

export interface PrepareResult {
  dir: string;
  index: DataIndex;
  units: number;
  /** Units found done already (no work). */
  reused: number;
  /** What this run tokenized. */
  textBytes: number;
  tokens: number;
  seconds: number;
  skippedLines: number;
  /** True when the directory was already complete and nothing was written. */
  noop: boolean;
}

const DEFAULT_SPLIT_BYTES = 64 << 20;
const DEFAULT_TRAIN_BYTES = 64 << 20;
const DEFAULT_VAL_FRACTION = 0.01;

interface PlannedUnit {
  spec: UnitSpec;
  file: InputFile;
  sha256: string;
  /** Bytes this unit reads from disk. */
  raw: number;
}

export async function prepare(opts: PrepareOptions): Promise<PrepareResult> {
  const t0 = performance.now();
  const status = opts.onStatus ?? (() => {});
  const warn = opts.onWarning ?? status;
  const valFraction = opts.valFraction ?? DEFAULT_VAL_FRACTION;
  if (!(valFraction >= 0 && valFraction < 1)) throw new DataError(`--val-fraction must be in [0, 1), got ${valFraction}`);
  if (opts.tokenizer === undefined && opts.vocabSize === undefined) {
    throw new DataError('name a tokenizer (--tokenizer tokenizer.json) or a vocabulary size to train one (--vocab-size N)');
  }
  const field = opts.field ?? 'text';
  const textDocs = opts.textDocs ?? 'file';
  const out = opts.out;
  const stateDir = join(out, '.prepare');
  const unitDir = join(stateDir, 'units');
  mkdirSync(unitDir, { recursive: true });
  removeTemporaries(out);

  const files = opts.inputs.flatMap((x) => (typeof x === 'string' ? expandInputs([x], opts.cwd) : [x]));
  const totalBytes = files.reduce((s, f) => s + f.bytes, 0);
  status(`inputs: ${files.length} file${files.length === 1 ? '' : 's'}, ${(totalBytes / 1e6).toFixed(1)} MB; hashing`);
  const planned = await plan(files, {
    splitBytes: opts.splitBytes ?? DEFAULT_SPLIT_BYTES,
    textDocs,
    ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
  });

  // The tokenizer, then every unit's key (which depends on it).
  const tokenizerPath = join(out, 'tokenizer.json');
  const tokenizer = await resolveTokenizer(opts, planned, tokenizerPath, { field, textDocs, status });
  const tokHash = tokenizer.hash();
  const dtype = tokenDtypeFor(tokenizer.vocabSize);
  for (const u of planned) {
    const valPolicy: ValPolicy = u.file.format === 'text' && textDocs === 'file' ? 'tail' : 'documents';
    Object.assign(u.spec, { field, textDocs, valPolicy, valFraction, dtype, tokenizerHash: tokHash.slice(0, 16) });
    u.spec.key = sha256(
      JSON.stringify({
        v: PREPARE_VERSION,
        content: u.sha256,
        format: u.file.format,
        compression: u.file.compression,
        range: u.spec.range ?? null,
        maxBytes: u.spec.maxBytes ?? null,
        field: u.file.format === 'jsonl' ? field : null,
        textDocs: u.file.format === 'text' ? textDocs : null,
        valPolicy,
        valFraction,
        dtype,
        tokenizer: tokHash,
      }),
    );
  }

  // Units already done (record + shards that match it) are kept.
  const results = new Map<string, UnitResult>();
  for (const u of planned) {
    const r = readRecord(join(unitDir, `${u.spec.key.slice(0, 16)}.json`), out);
    if (r && r.key === u.spec.key) results.set(u.spec.key, r);
  }
  const pending = planned.filter((u) => !results.has(u.spec.key));
  const reused = planned.length - pending.length;
  if (reused === planned.length) status(`all ${reused} units already prepared`);
  else if (reused > 0) status(`resuming: ${reused} of ${planned.length} units already done`);

  const progress: PrepareProgress = {
    raw: 0,
    rawTotal: pending.reduce((s, u) => s + u.raw, 0),
    textBytes: 0,
    tokens: 0,
    documents: 0,
    unitsDone: 0,
    units: pending.length,
  };
  const onDelta = (d: UnitProgress) => {
    progress.raw += d.rawBytes;
    progress.textBytes += d.textBytes;
    progress.tokens += d.tokens;
    progress.documents += d.documents;
    opts.onProgress?.(progress);
  };
  const onDone = (r: UnitResult) => {
    writeAtomic(join(unitDir, `${r.key.slice(0, 16)}.json`), JSON.stringify(r) + '\n');
    results.set(r.key, r);
    progress.unitsDone++;
    opts.onProgress?.(progress);
    for (const ex of r.skippedExamples) warn(`skipped ${ex}`);
    if (r.skipped > r.skippedExamples.length) warn(`skipped ${r.skipped - r.skippedExamples.length} more lines of ${r.input}`);
  };
  if (pending.length > 0) {
    const workers = Math.min(opts.workers ?? availableParallelism(), pending.length);
    // Largest first: the pool finishes together.
    const queue = [...pending].sort((a, b) => b.raw - a.raw).map((u) => u.spec);
    if (workers <= 0) {
      for (const spec of queue) onDone(await tokenizeUnit(spec, tokenizer, out, onDelta));
    } else {
      await runPool(queue, workers, { tokenizerPath, outDir: out }, onDelta, onDone);
    }
  }

  const ordered = planned.map((u) => results.get(u.spec.key)!);
  const index = buildIndex(ordered, planned, tokenizer, tokHash, dtype, { field, textDocs, valFraction });
  const indexPath = join(out, 'index.json');
  const same = existsSync(indexPath) && sameJson(indexPath, index);
  if (!same) writeIndex(out, index);
  removeStale(out, unitDir, ordered);
  return {
    dir: out,
    index,
    units: planned.length,
    reused,
    textBytes: progress.textBytes,
    tokens: progress.tokens,
    seconds: (performance.now() - t0) / 1000,
    skippedLines: ordered.reduce((s, r) => s + r.skipped, 0),
    noop: pending.length === 0 && same,
  };
}

/** Hashes every file (one read each) and cuts large line files into ranges. */
async function plan(
  files: InputFile[],
  o: { splitBytes: number; textDocs: TextDocs; maxBytes?: number },
): Promise<PlannedUnit[]> {
  const units: PlannedUnit[] = [];
  let budget = o.maxBytes ?? Infinity;
  for (const file of files) {
    if (budget <= 0) break;
    const lineDocs = file.format === 'jsonl' || o.textDocs === 'line';
    const limited = Number.isFinite(budget);
    if (limited && file.compression !== 'none') {
      throw new DataError(`${file.path}: --max-bytes reads a prefix of uncompressed inputs only; this file is ${file.compression}-compressed`);
    }
    const h = createHash('sha256');
    if (lineDocs && file.compression === 'none' && file.bytes > o.splitBytes && !limited) {
      const ranges = await splitLines(file, o.splitBytes, (c) => h.update(c));
      const sha = h.digest('hex');
      for (const range of ranges) units.push(unit(file, sha, range.end - range.start, { range }));
      continue;
    }
    await hashFile(file.path, h);
    const raw = Math.min(file.bytes, budget);
    units.push(unit(file, h.digest('hex'), raw, raw < file.bytes ? { maxBytes: raw } : {}));
    budget -= raw;
  }
  return units;
}

function unit(file: InputFile, sha: string, raw: number, extra: Partial<UnitSpec>): PlannedUnit {
  // field, policy, dtype and tokenizer are filled in once the tokenizer is known.
  const spec = { key: '', file, ...extra } as UnitSpec;
  return { spec, file, sha256: sha, raw };
}

async function hashFile(path: string, h: ReturnType<typeof createHash>): Promise<void> {
  try {
    for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  } catch (e) {
    throw new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function sameJson(path: string, value: unknown): boolean {
  try {
    return JSON.stringify(JSON.parse(readFileSync(path, 'utf8'))) === JSON.stringify(value);
  } catch {
    return false;
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Loads --tokenizer, or trains one (reusing the one trained before on the same inputs). */
async function resolveTokenizer(
  opts: PrepareOptions,
  planned: PlannedUnit[],
  path: string,
  o: { field: string; textDocs: TextDocs; status: (m: string) => void },
): Promise<Tokenizer> {
  if (opts.tokenizer !== undefined) {
    const tok = loadTokenizer(opts.tokenizer);
    const original = readFileSync(opts.tokenizer, 'utf8');
    if (!existsSync(path) || readFileSync(path, 'utf8') !== original) writeAtomic(path, original);
    o.status(`tokenizer: ${opts.tokenizer} (${tok.kind}, vocab ${tok.vocabSize})`);
    return tok;
  }
  const vocabSize = opts.vocabSize!;
  const specials = opts.specials ?? DEFAULT_SPECIALS;
  const trainBytes = opts.tokenizerTrainBytes ?? DEFAULT_TRAIN_BYTES;
  const key = sha256(
    JSON.stringify({
      v: TOKENIZER_VERSION,
      vocabSize,
      specials,
      trainBytes,
      field: o.field,
      textDocs: o.textDocs,
      inputs: planned.map((u) => [u.sha256, u.spec.range ?? null, u.spec.maxBytes ?? null]),
    }),
  );
  const keyPath = join(opts.out, '.prepare', 'tokenizer.key');
  if (existsSync(path) && existsSync(keyPath) && readFileSync(keyPath, 'utf8').trim() === key) {
    const tok = loadTokenizer(path);
    o.status(`tokenizer: trained before on the same inputs (vocab ${tok.vocabSize})`);
    return tok;
  }
  const docs: string[] = [];
  let bytes = 0;
  outer: for (const u of planned) {
    const it = readDocuments(u.file, {
      field: o.field,
      textDocs: o.textDocs,
      ...(u.spec.range ? { range: u.spec.range } : {}),
      maxBytes: Math.min(u.spec.maxBytes ?? Infinity, trainBytes - bytes),
    });
    for await (const d of it) {
      if (!('text' in d)) continue;
      docs.push(d.text);
      bytes += Buffer.byteLength(d.text, 'utf8');
      if (bytes >= trainBytes) break outer;
    }
  }
  if (docs.length === 0) throw new DataError('the inputs hold no text to train a tokenizer on');
  o.status(`tokenizer: training a byte-level BPE of vocab ${vocabSize} on ${(bytes / 1e6).toFixed(1)} MB`);
  const t0 = performance.now();
  const tok = BpeTokenizer.train(docs, vocabSize, { specials });
  o.status(`tokenizer: trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  writeAtomic(path, JSON.stringify(tok.toJSON()) + '\n');
  writeAtomic(keyPath, key + '\n');
  return tok;
}

/** Runs units on `n` worker threads; rejects on the first failure (finished units stay). */
function runPool(
  queue: UnitSpec[],
  n: number,
  init: { tokenizerPath: string; outDir: string },
  onDelta: (d: UnitProgress) => void,
  onDone: (r: UnitResult) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const workers: Worker[] = [];
    let next = 0;
    let running = 0;
    let failed = false;
    const stopAll = () => {
      for (const w of workers) void w.terminate();
    };
    const feed = (w: Worker) => {
      if (failed) return;
      if (next >= queue.length) {
        void w.terminate();
        if (running === 0) resolve();
        return;
      }
      running++;
      w.postMessage(queue[next++]);
    };
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      stopAll();
      reject(e);
    };
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL('./prepare_worker.js', import.meta.url), { workerData: init });
      workers.push(w);
      w.on('message', (m: { type: string; delta?: UnitProgress; result?: UnitResult; message?: string; data?: boolean }) => {
        if (m.type === 'progress') onDelta(m.delta!);
        else if (m.type === 'done') {
          running--;
          try {
            onDone(m.result!);
          } catch (e) {
            fail(e as Error);
            return;
          }
          feed(w);
        } else if (m.type === 'error') fail(m.data ? new DataError(m.message!) : new Error(m.message));
      });
      w.on('error', (e) => fail(e));
      w.on('exit', (code) => {
        if (code !== 0 && !failed && next < queue.length) fail(new Error(`a prepare worker exited with code ${code}`));
      });
      feed(w);
    }
  });
}

function readRecord(path: string, out: string): UnitResult | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as UnitResult;
    for (const s of [r.train, r.val]) {
      if (!s) continue;
      const h = readShardHeader(join(out, s.file));
      if (h.tokens !== s.tokens || h.crc32 !== s.crc32 || h.documents !== s.documents) return undefined;
    }
    return r;
  } catch {
    return undefined; // a damaged record or shard: the unit is done again
  }
}

function buildIndex(
  results: UnitResult[],
  planned: PlannedUnit[],
  tokenizer: Tokenizer,
  tokHash: string,
  dtype: ReturnType<typeof tokenDtypeFor>,
  o: { field: string; textDocs: TextDocs; valFraction: number },
): DataIndex {
  const split = (which: 'train' | 'val') => {
    const shards = results.flatMap((r) => (r[which] ? [r[which]!] : []));
    return {
      tokens: shards.reduce((s, x) => s + x.tokens, 0),
      documents: shards.reduce((s, x) => s + x.documents, 0),
      shards,
    };
  };
  const inputs = new Map<string, { path: string; bytes: number; sha256: string; documents: number; skipped_lines: number }>();
  planned.forEach((u, i) => {
    const e = inputs.get(u.file.path) ?? { path: u.file.path, bytes: u.file.bytes, sha256: u.sha256, documents: 0, skipped_lines: 0 };
    e.documents += results[i].documents;
    e.skipped_lines += results[i].skipped;
    inputs.set(u.file.path, e);
  });
  return {
    format: 'litespark-token-shards',
    version: 1,
    tokenizer: {
      file: 'tokenizer.json',
      sha256: tokHash,
      vocab_size: tokenizer.vocabSize,
      bos_id: tokenizer.bosId,
      eos_id: tokenizer.eosId,
      pad_id: tokenizer.padId,
    },
    dtype,
    splits: { train: split('train'), val: split('val') },
    prepare: {
      version: PREPARE_VERSION,
      field: o.field,
      text_docs: o.textDocs,
      val_fraction: o.valFraction,
      layout: 'eos-after-document',
      inputs: [...inputs.values()],
    },
  } as DataIndex;
}

/** Temporary files of an interrupted run (a shard being written, a record, the index). */
function removeTemporaries(out: string): void {
  for (const dir of [out, join(out, '.prepare'), join(out, '.prepare', 'units')]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (/\.tmp-/.test(f)) rmSync(join(dir, f), { force: true });
  }
}

/** Shards and records the index no longer names (inputs or settings changed). */
function removeStale(out: string, unitDir: string, results: UnitResult[]): void {
  const keepShards = new Set(results.flatMap((r) => [r.train?.file, r.val?.file]).filter((f): f is string => !!f));
  const keepRecords = new Set(results.map((r) => `${r.key.slice(0, 16)}.json`));
  for (const f of readdirSync(out)) {
    if (/^(train|val)-[0-9a-f]{16}\.bin$/.test(f) && !keepShards.has(f)) rmSync(join(out, f), { force: true });
  }
  for (const f of readdirSync(unitDir)) if (!keepRecords.has(f)) rmSync(join(unitDir, f), { force: true });
}

export { shardName };
