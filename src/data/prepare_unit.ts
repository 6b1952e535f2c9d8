// One unit of `litespark prepare`: an input file (or a line-aligned byte range of a large one)
// tokenized into a train shard and a validation shard. Runs in a worker thread
// (prepare_worker.ts) or inline; the result is the same.
//
// Layout of the tokens: every document is encoded on its own and followed by the tokenizer's
// EOS id (no BOS: the loader packs documents back to back, EOS marks each boundary).
//
// Validation split, per unit and therefore independent of how work is spread over workers:
//   'documents'  a document goes to validation when crc32(its UTF-8 text) / 2^32 < valFraction
//                (jsonl and line-per-document inputs: many documents per unit);
//   'tail'       the unit is one document (a whole text file): its last floor(n * valFraction)
//                tokens go to validation, the rest to training, each part followed by an EOS
//                (so a split file counts as a document in both).
import { basename, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { readDocuments, type ByteRange, type InputFile, type TextDocs } from './inputs.js';
import { ShardWriter, type ShardHeader, type TokenDtype } from './shards.js';
import type { Tokenizer } from './tokenizer.js';

export type ValPolicy = 'documents' | 'tail';

export interface UnitSpec {
  /** Hex key: names the unit's shards and its record (see prepare.ts). */
  key: string;
  file: InputFile;
  range?: ByteRange;
  /** Stop after this many decompressed bytes (from --max-bytes). */
  maxBytes?: number;
  field: string;
  textDocs: TextDocs;
  valPolicy: ValPolicy;
  valFraction: number;
  dtype: TokenDtype;
  tokenizerHash: string;
}

export interface ShardEntry {
  file: string;
  tokens: number;
  documents: number;
  crc32: number;
}

/** What a finished unit leaves behind (written as its record by prepare.ts). */
export interface UnitResult {
  key: string;
  input: string;
  range: ByteRange | null;
  /** Decompressed bytes of text read. */
  textBytes: number;
  documents: number;
  train: ShardEntry | null;
  val: ShardEntry | null;
  skipped: number;
  /** The first few skipped lines, `file:line: reason`. */
  skippedExamples: string[];
}

export interface UnitProgress {
  rawBytes: number;
  textBytes: number;
  tokens: number;
  documents: number;
}

const SKIP_EXAMPLES = 5;
const PROGRESS_EVERY_MS = 200;
const VAL_HASH_SCALE = 2 ** 32;

export function shardName(split: 'train' | 'val', key: string): string {
  return `${split}-${key.slice(0, 16)}.bin`;
}

/** Tokenizes one unit into `outDir`; `onProgress` receives increments. */
export async function tokenizeUnit(
  spec: UnitSpec,
  tokenizer: Tokenizer,
  outDir: string,
  onProgress?: (delta: UnitProgress) => void,
): Promise<UnitResult> {
  const eos = tokenizer.eosId;
  if (eos < 0) throw new Error('the tokenizer has no end-of-text token to put between documents');
  const eosIds = Int32Array.of(eos);
  const writers = {
    train: ShardWriter.create(join(outDir, shardName('train', spec.key)), { dtype: spec.dtype, tokenizerHash: spec.tokenizerHash }),
    val: ShardWriter.create(join(outDir, shardName('val', spec.key)), { dtype: spec.dtype, tokenizerHash: spec.tokenizerHash }),
  };
  const delta: UnitProgress = { rawBytes: 0, textBytes: 0, tokens: 0, documents: 0 };
  let last = performance.now();
  const flush = (force = false) => {
    const now = performance.now();
    if (!onProgress || (!force && now - last < PROGRESS_EVERY_MS)) return;
    last = now;
    onProgress({ ...delta });
    delta.rawBytes = delta.textBytes = delta.tokens = delta.documents = 0;
  };
  const result: UnitResult = {
    key: spec.key,
    input: spec.file.path,
    range: spec.range ?? null,
    textBytes: 0,
    documents: 0,
    train: null,
    val: null,
    skipped: 0,
    skippedExamples: [],
  };
  try {
    const docs = readDocuments(spec.file, {
      field: spec.field,
      textDocs: spec.textDocs,
      ...(spec.range ? { range: spec.range } : {}),
      ...(spec.maxBytes !== undefined ? { maxBytes: spec.maxBytes } : {}),
      onRaw: (n) => {
        delta.rawBytes += n;
      },
    });
    for await (const d of docs) {
      if ('skip' in d) {
        result.skipped++;
        if (result.skippedExamples.length < SKIP_EXAMPLES) {
          result.skippedExamples.push(`${spec.file.path}:${d.line}: ${d.skip}`);
        }
        continue;
      }
      const bytes = Buffer.byteLength(d.text, 'utf8');
      const ids = tokenizer.encode(d.text);
      let added = ids.length + 1;
      if (spec.valPolicy === 'tail') {
        // Both parts end with an EOS, so the head never runs into the next file's text.
        const cut = ids.length - Math.floor(ids.length * spec.valFraction);
        if (cut > 0) {
          writers.train.append(ids.subarray(0, cut), 0);
          writers.train.append(eosIds, 1);
        }
        if (cut < ids.length) {
          writers.val.append(ids.subarray(cut), 0);
          writers.val.append(eosIds, 1);
        }
        added = ids.length + (cut > 0 ? 1 : 0) + (cut < ids.length ? 1 : 0);
      } else {
        const w = crc32(d.text) / VAL_HASH_SCALE < spec.valFraction ? writers.val : writers.train;
        w.append(ids, 0);
        w.append(eosIds, 1);
      }
      result.textBytes += bytes;
      result.documents++;
      delta.textBytes += bytes;
      delta.tokens += added;
      delta.documents++;
      flush();
    }
    result.train = finish(writers.train);
    result.val = finish(writers.val);
  } catch (e) {
    writers.train.abort();
    writers.val.abort();
    throw e;
  }
  flush(true);
  return result;
}

function finish(w: ShardWriter): ShardEntry | null {
  if (w.tokens === 0) {
    w.abort();
    return null;
  }
  const h: ShardHeader = w.close();
  return { file: basename(h.path), tokens: h.tokens, documents: h.documents, crc32: h.crc32 };
}
