// Training data for a run: corpus -> tokenizer -> token array -> train / val split, with the
// tokenizer and the token array cached on disk. (`litespark prepare` and token shards come
// later; they will reuse the tokenizer and the token file layout.)
//
// Token layout: every document (file) of the corpus is encoded on its own and followed by the
// EOS token (<|end_of_text|>), GPT-2 style; the corpus' text separator is not encoded. The
// tokenizer is trained on the same documents.
//
// Cache: key = first 16 hex of sha256 over (layout version, TOKENIZER_VERSION, corpus text
// hash, document boundaries, vocab size, specials). Files:
//   <cacheDir>/tokenizer-<key>.json  Hugging Face tokenizer.json
//   <cacheDir>/tokens-<key>.bin      raw little-endian uint16 (vocabSize <= 65536) or int32
// Each is written to a temporary file and renamed into place, so a reader never sees half a file.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { splitTokens } from './batches.js';
import { loadCorpus, type Corpus } from './corpus.js';
import { BpeTokenizer, DEFAULT_SPECIALS, TOKENIZER_VERSION } from './tokenizer.js';

/** Bump when the token layout (EOS placement, file format) changes. */
export const DATASET_LAYOUT = 'eos-after-doc-v1';

export interface TrainingDataOptions {
  /** 'embedded' or a path to a text file or a directory of .txt / .md files. */
  source: string;
  vocabSize: number;
  /** Fraction of the tokens, at the end, held out for validation. */
  valFraction: number;
  maxBytes?: number;
  cacheDir: string;
  onStatus?: (msg: string) => void;
}

export interface TrainingData {
  corpus: { name: string; description: string; bytes: number; hash: string };
  tokenizer: BpeTokenizer;
  train: Int32Array;
  val: Int32Array;
  /** True when both the tokenizer and the tokens came from the cache. */
  cached: boolean;
  cacheKey: string;
}

export function loadTrainingData(opts: TrainingDataOptions): TrainingData {
  const status = opts.onStatus ?? (() => {});
  if (!(opts.valFraction >= 0 && opts.valFraction < 1)) {
    throw new RangeError(`valFraction must be in [0, 1), got ${opts.valFraction}`);
  }
  const corpus = loadCorpus(opts.source, opts.maxBytes === undefined ? {} : { maxBytes: opts.maxBytes });
  status(`corpus: ${corpus.description} (sha256 ${corpus.hash.slice(0, 12)})`);
  const key = cacheKey(corpus, opts.vocabSize);
  const tokPath = join(opts.cacheDir, `tokenizer-${key}.json`);
  const binPath = join(opts.cacheDir, `tokens-${key}.bin`);
  const wide = opts.vocabSize > 65536;
  mkdirSync(opts.cacheDir, { recursive: true });

  let tokenizer: BpeTokenizer | undefined;
  let tokenizerCached = false;
  if (existsSync(tokPath)) {
    try {
      tokenizer = BpeTokenizer.fromJSON(JSON.parse(readFileSync(tokPath, 'utf8')));
      tokenizerCached = true;
      status(`tokenizer: cached ${tokPath}`);
    } catch (e) {
      status(`tokenizer: ignoring unreadable cache file ${tokPath} (${(e as Error).message})`);
    }
  }
  const docs = corpus.documents.map((d) => corpus.text.slice(d.start, d.end));
  if (!tokenizer) {
    status(`tokenizer: training vocab ${opts.vocabSize} on ${corpus.bytes} bytes`);
    const t0 = performance.now();
    tokenizer = BpeTokenizer.train(docs, opts.vocabSize);
    status(`tokenizer: trained in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    writeAtomic(tokPath, JSON.stringify(tokenizer.toJSON()));
  }

  let tokens: Int32Array | undefined;
  let tokensCached = false;
  // Tokens are reused only with the tokenizer they were made with.
  if (tokenizerCached && existsSync(binPath)) {
    tokens = readTokens(binPath, wide, tokenizer.vocabSize);
    if (tokens) {
      tokensCached = true;
      status(`tokens: cached ${binPath} (${tokens.length} tokens)`);
    } else status(`tokens: ignoring invalid cache file ${binPath}`);
  }
  if (!tokens) {
    const t0 = performance.now();
    tokens = encodeDocuments(tokenizer, docs);
    status(
      `tokens: encoded ${tokens.length} tokens in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
    writeAtomic(binPath, tokensToBytes(tokens, wide));
  }

  const { train, val } = splitTokens(tokens, opts.valFraction);
  return {
    corpus: { name: corpus.name, description: corpus.description, bytes: corpus.bytes, hash: corpus.hash },
    tokenizer,
    train,
    val,
    cached: tokensCached,
    cacheKey: key,
  };
}

/** The cache key of a corpus and vocab size (see the header). */
export function cacheKey(corpus: Corpus, vocabSize: number): string {
  const bounds = corpus.documents.map((d) => `${d.start}:${d.end}`).join(',');
  return createHash('sha256')
    .update(
      JSON.stringify({
        layout: DATASET_LAYOUT,
        tokenizer: TOKENIZER_VERSION,
        corpus: corpus.hash,
        documents: createHash('sha256').update(bounds).digest('hex'),
        vocabSize,
        specials: DEFAULT_SPECIALS,
      }),
    )
    .digest('hex')
    .slice(0, 16);
}

/** Each document's tokens followed by EOS. */
export function encodeDocuments(tokenizer: BpeTokenizer, docs: readonly string[]): Int32Array {
  const parts = docs.map((d) => tokenizer.encode(d));
  const out = new Int32Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
    out[off++] = tokenizer.eosId;
  }
  return out;
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write cache file ${path}: ${(e as Error).message}`);
  }
}

function tokensToBytes(tokens: Int32Array, wide: boolean): Uint8Array {
  const size = wide ? 4 : 2;
  const out = new Uint8Array(tokens.length * size);
  if (endianness() === 'LE') {
    if (wide) out.set(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
    else new Uint16Array(out.buffer).set(tokens);
  } else {
    const dv = new DataView(out.buffer);
    for (let i = 0; i < tokens.length; i++) {
      if (wide) dv.setInt32(i * 4, tokens[i], true);
      else dv.setUint16(i * 2, tokens[i], true);
    }
  }
  return out;
}

/** Tokens of a cache file, or undefined if its size or contents do not fit the vocab. */
function readTokens(path: string, wide: boolean, vocabSize: number): Int32Array | undefined {
  const buf = readFileSync(path);
  const size = wide ? 4 : 2;
  if (buf.length === 0 || buf.length % size !== 0) return undefined;
  const n = buf.length / size;
  let tokens: Int32Array;
  if (endianness() === 'LE') {
    const copy = new Uint8Array(buf); // aligned copy
    tokens = wide ? new Int32Array(copy.buffer) : new Int32Array(new Uint16Array(copy.buffer));
  } else {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
    tokens = new Int32Array(n);
    for (let i = 0; i < n; i++) tokens[i] = wide ? dv.getInt32(i * 4, true) : dv.getUint16(i * 2, true);
  }
  for (let i = 0; i < n; i++) if (tokens[i] < 0 || tokens[i] >= vocabSize) return undefined;
  return tokens;
}
