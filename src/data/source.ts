// Where a training run's tokens come from: `data.source` of the config, resolved to a prepared
// data directory (DESIGN.md: corpus -> litespark prepare -> shards -> loader).
//
//   'embedded'                   the corpus shipped with the project (corpus.ts), prepared into
//                                the cache with the config's vocab size and validation fraction
//   a prepared data directory    (has index.json) used as it is
//   files, a directory, a glob   of text / jsonl inputs (inputs.ts), prepared into the cache
//
// Preparing is a no-op when the cache already holds the result (prepare.ts hashes the inputs),
// so a second run starts at once and a changed input is noticed.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { embeddedInputs } from './corpus.js';
import { DataError } from './errors.js';
import { prepare, PREPARE_VERSION, type PrepareProgress } from './prepare.js';
import { INDEX_FILE, readIndex, type DataIndex } from './shards.js';
import { loadTokenizer, type Tokenizer } from './tokenizer.js';

export interface DataSourceOptions {
  source: string;
  /** For sources that are prepared here: the tokenizer to train and the split. */
  vocabSize: number;
  valFraction: number;
  maxBytes?: number;
  cacheDir: string;
  onStatus?: (msg: string) => void;
  onWarning?: (msg: string) => void;
  onProgress?: (p: PrepareProgress) => void;
}

export interface TrainingData {
  dir: string;
  index: DataIndex;
  tokenizer: Tokenizer;
  description: string;
  /** Bytes of input text (0 when unknown: a directory prepared elsewhere). */
  inputBytes: number;
}

export async function resolveData(opts: DataSourceOptions): Promise<TrainingData> {
  const status = opts.onStatus ?? (() => {});
  const src = opts.source;
  if (src !== 'embedded' && existsSync(join(src, INDEX_FILE))) return openPrepared(src, `prepared data ${src}`);

  const embedded = src === 'embedded' ? embeddedInputs() : undefined;
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: PREPARE_VERSION,
        source: embedded ? `embedded ${embedded.version}` : resolve(src),
        vocab: opts.vocabSize,
        val: opts.valFraction,
        maxBytes: opts.maxBytes ?? null,
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const dir = join(opts.cacheDir, 'data', `${embedded ? 'embedded' : 'inputs'}-${key}`);
  const r = await prepare({
    inputs: embedded ? embedded.files : [src],
    out: dir,
    vocabSize: opts.vocabSize,
    valFraction: opts.valFraction,
    workers: availableParallelism(),
    ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
    onStatus: status,
    ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  status(r.noop ? `data: cached ${dir}` : `data: prepared ${dir} in ${r.seconds.toFixed(1)} s`);
  const what = embedded ? embedded.description : `${src} (prepared into the cache)`;
  const data = openPrepared(dir, what);
  if (opts.maxBytes) data.inputBytes = Math.min(data.inputBytes, opts.maxBytes);
  return data;
}

/** Bytes of the inputs a directory was prepared from, as its index records them (0 if not). */
function inputBytesOf(index: DataIndex): number {
  const inputs = (index.prepare as { inputs?: Array<{ bytes?: unknown }> } | undefined)?.inputs;
  return Array.isArray(inputs) ? inputs.reduce((s, i) => s + (typeof i.bytes === 'number' ? i.bytes : 0), 0) : 0;
}

/** A prepared directory with its tokenizer, which must be the one its shards were made with. */
export function openPrepared(dir: string, description: string): TrainingData {
  const index = readIndex(dir);
  const path = join(dir, index.tokenizer.file);
  const tokenizer = loadTokenizer(path);
  const hash = tokenizer.hash();
  if (hash !== index.tokenizer.sha256) {
    throw new DataError(
      `${path}: tokenizer mismatch: its sha256 is ${hash.slice(0, 16)}, the shards of ${join(dir, INDEX_FILE)} were made with ${index.tokenizer.sha256.slice(0, 16)}`,
    );
  }
  return { dir, index, tokenizer, description, inputBytes: inputBytesOf(index) };
}
