// Token shards: the on-disk form of a prepared data set (`litespark prepare` writes them, the
// packed loader reads them), and the data directory's index.json that lists them.
//
// A shard file = 64-byte header + tokens, all little-endian:
//   offset size
//   0      8   magic ASCII "LSTOKENS"
//   8      4   u32 format version = 1
//   12     4   u32 bytes per token: 2 (uint16) or 4 (uint32)
//   16     8   u64 token count
//   24     8   u64 document count (documents whose EOS lies in this shard)
//   32     4   u32 CRC-32 (zlib's) of the token bytes (bytes 64..end)
//   36     4   u32 reserved = 0
//   40     16  first 16 hex chars of the tokenizer's sha256, ASCII
//   56     8   reserved = 0
//   64     ... tokens
// Documents are concatenated inside a shard, each followed by EOS.
//
// Files are written to a temporary name and renamed into place after an fsync, so a reader
// never sees half a shard or half an index. Every bad-input error is a DataError naming the file.
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import * as z from 'zod';
import { DataError } from './errors.js';
import { fsyncDirectory, writeAtomic } from './files.js';

export const SHARD_HEADER_BYTES = 64;
export const SHARD_MAGIC = 'LSTOKENS';
export const SHARD_VERSION = 1;

export type TokenDtype = 'uint16' | 'uint32';

/** uint16 when every id of a vocab of `vocabSize` fits in 16 bits. */
export function tokenDtypeFor(vocabSize: number): TokenDtype {
  if (!(Number.isInteger(vocabSize) && vocabSize >= 1 && vocabSize <= 2 ** 32)) {
    throw new RangeError(`vocabSize must be an integer in [1, 2^32], got ${vocabSize}`);
  }
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}

/** Bytes per token of a dtype. */
export function tokenWidth(dtype: TokenDtype): 2 | 4 {
  return dtype === 'uint16' ? 2 : 4;
}

export interface ShardHeader {
  path: string;
  version: number;
  dtype: TokenDtype;
  tokens: number;
  documents: number;
  crc32: number;
  /** First 16 hex chars of the tokenizer's sha256. */
  tokenizerHash: string;
}

const LITTLE_ENDIAN = endianness() === 'LE';
// Writer buffer and verify chunk. 1 MiB: read + CRC-32 of a cached 100 MB file ran at 3.9 GB/s
// with 64 KiB..1 MiB chunks, 3.3 GB/s with 4 MiB and 2.4 GB/s with 16 MiB (chunk past L2).
const IO_CHUNK_BYTES = 1 << 20;
const HASH_PREFIX = /^[0-9a-f]{16}$/;

/** Reverses each `width`-byte group in place (only on a big-endian host: shards are little-endian). */
function swapBytes(bytes: Uint8Array, width: 2 | 4): void {
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

function hex32(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

/** The 16-hex header form of a tokenizer hash (a full sha256 or its prefix). */
function hashPrefix(hash: string, what: string): string {
  const p = hash.slice(0, 16).toLowerCase();
  if (!HASH_PREFIX.test(p)) {
    throw new DataError(`${what}: tokenizer hash must start with 16 hex characters, got '${hash}'`);
  }
  return p;
}


// ---- writing -----------------------------------------------------------------------------

/**
 * Writes one shard. Tokens go to `${path}.tmp-${pid}-${threadId}` through a 1 MiB buffer;
 * close() writes the header, fsyncs, renames into place and fsyncs the directory.
 */
export class ShardWriter {
  readonly path: string;
  readonly tmpPath: string;
  readonly dtype: TokenDtype;
  readonly tokenizerHash: string;
  private fd: number | undefined;
  private readonly buf = new Uint8Array(IO_CHUNK_BYTES);
  private bufLen = 0; // bytes
  private fileBytes = SHARD_HEADER_BYTES; // bytes flushed to the file, header included
  private crc = 0;
  private nTokens = 0;
  private nDocuments = 0;

  private constructor(path: string, dtype: TokenDtype, tokenizerHash: string) {
    this.path = path;
    this.tmpPath = `${path}.tmp-${process.pid}-${threadId}`;
    this.dtype = dtype;
    this.tokenizerHash = tokenizerHash;
    try {
      this.fd = openSync(this.tmpPath, 'w');
    } catch (e) {
      throw new DataError(`shard ${path}: cannot create ${this.tmpPath}: ${(e as Error).message}`);
    }
  }

  static create(path: string, opts: { dtype: TokenDtype; tokenizerHash: string }): ShardWriter {
    if (opts.dtype !== 'uint16' && opts.dtype !== 'uint32') {
      throw new DataError(`shard ${path}: dtype must be 'uint16' or 'uint32', got '${String(opts.dtype)}'`);
    }
    return new ShardWriter(path, opts.dtype, hashPrefix(opts.tokenizerHash, `shard ${path}`));
  }

  get tokens(): number {
    return this.nTokens;
  }

  get documents(): number {
    return this.nDocuments;
  }

  /** Appends token ids (checked against the dtype's range) and counts `documents` whose EOS they hold. */
  append(tokens: Int32Array | Uint32Array | Uint16Array, documents = 0): void {
    const fd = this.open();
    if (!(Number.isInteger(documents) && documents >= 0)) {
      throw new RangeError(`shard ${this.path}: documents must be a non-negative integer, got ${documents}`);
    }
    this.checkRange(tokens);
    const width = tokenWidth(this.dtype);
    const perChunk = IO_CHUNK_BYTES / width;
    for (let done = 0; done < tokens.length; ) {
      const free = perChunk - this.bufLen / width;
      const n = Math.min(free, tokens.length - done);
      const part = tokens.subarray(done, done + n);
      // Typed-array set converts (values are in range, so exactly): one native copy per chunk.
      if (width === 2) new Uint16Array(this.buf.buffer, this.bufLen, n).set(part);
      else new Uint32Array(this.buf.buffer, this.bufLen, n).set(part);
      if (!LITTLE_ENDIAN) swapBytes(this.buf.subarray(this.bufLen, this.bufLen + n * width), width);
      this.bufLen += n * width;
      done += n;
      if (this.bufLen === IO_CHUNK_BYTES) this.flush(fd);
    }
    this.nTokens += tokens.length;
    this.nDocuments += documents;
  }

  /** Writes the header, fsyncs, renames into place; returns the header. */
  close(): ShardHeader {
    const fd = this.open();
    const header: ShardHeader = {
      path: this.path,
      version: SHARD_VERSION,
      dtype: this.dtype,
      tokens: this.nTokens,
      documents: this.nDocuments,
      crc32: 0,
      tokenizerHash: this.tokenizerHash,
    };
    try {
      this.flush(fd);
      header.crc32 = this.crc >>> 0;
      const h = encodeShardHeader(header);
      if (writeSync(fd, h, 0, h.length, 0) !== h.length) throw new Error('short write of the header');
      fsyncSync(fd);
      closeSync(fd);
      this.fd = undefined;
      renameSync(this.tmpPath, this.path);
    } catch (e) {
      this.abort();
      throw new DataError(`shard ${this.path}: cannot write: ${(e as Error).message}`);
    }
    fsyncDirectory(dirname(this.path));
    return header;
  }

  /** Closes and removes the temporary file; the shard's path is left untouched. */
  abort(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already unusable; the file is removed below either way
      }
      this.fd = undefined;
    }
    rmSync(this.tmpPath, { force: true });
  }

  private open(): number {
    if (this.fd === undefined) throw new Error(`shard ${this.path}: writer is closed`);
    return this.fd;
  }

  private flush(fd: number): void {
    if (this.bufLen === 0) return;
    const bytes = this.buf.subarray(0, this.bufLen);
    this.crc = crc32(bytes, this.crc);
    try {
      for (let off = 0; off < bytes.length; ) {
        off += writeSync(fd, bytes, off, bytes.length - off, this.fileBytes + off);
      }
    } catch (e) {
      this.abort();
      throw new DataError(`shard ${this.path}: cannot write: ${(e as Error).message}`);
    }
    this.fileBytes += bytes.length;
    this.bufLen = 0;
  }

  /** One pass for min and max; names the first offending id only when one is out of range. */
  private checkRange(tokens: Int32Array | Uint32Array | Uint16Array): void {
    if (tokens instanceof Uint16Array) return; // fits both dtypes
    if (tokens instanceof Uint32Array && this.dtype === 'uint32') return;
    const hi = this.dtype === 'uint16' ? 0xffff : 0xffffffff;
    let min = 0;
    let max = 0;
    for (let i = 0; i < tokens.length; i++) {
      const v = tokens[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (min >= 0 && max <= hi) return;
    const at = tokens.findIndex((v) => v < 0 || v > hi);
    throw new DataError(
      `shard ${this.path}: token id ${tokens[at]} (at ${at} of this append) does not fit ${this.dtype} ` +
        `(0..${hi})`,
    );
  }
}

/** The 64 header bytes of `h`. */
export function encodeShardHeader(h: Omit<ShardHeader, 'path'>): Uint8Array {
  const out = new Uint8Array(SHARD_HEADER_BYTES);
  const dv = new DataView(out.buffer);
  out.set(Buffer.from(SHARD_MAGIC, 'ascii'), 0);
  dv.setUint32(8, h.version, true);
  dv.setUint32(12, tokenWidth(h.dtype), true);
  dv.setBigUint64(16, BigInt(h.tokens), true);
  dv.setBigUint64(24, BigInt(h.documents), true);
  dv.setUint32(32, h.crc32 >>> 0, true);
  out.set(Buffer.from(h.tokenizerHash, 'ascii').subarray(0, 16), 40);
  return out;
}

// ---- reading -----------------------------------------------------------------------------

function openForRead(path: string, what = 'shard'): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(`${what} ${path}: missing`);
    throw new DataError(`${what} ${path}: cannot open: ${(e as Error).message}`);
  }
}

function readFully(fd: number, path: string, dst: Uint8Array, position: number): void {
  let off = 0;
  try {
    while (off < dst.length) {
      const n = readSync(fd, dst, off, dst.length - off, position + off);
      if (n === 0) break;
      off += n;
    }
  } catch (e) {
    throw new DataError(`shard ${path}: cannot read at byte ${position + off}: ${(e as Error).message}`);
  }
  if (off < dst.length) {
    throw new DataError(
      `shard ${path}: truncated: wanted bytes ${position}..${position + dst.length}, file ends at ${position + off}`,
    );
  }
}

/** Header of an open shard, checked against the file's size. */
function headerOf(fd: number, path: string): ShardHeader {
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (e) {
    throw new DataError(`shard ${path}: cannot stat: ${(e as Error).message}`);
  }
  if (size < SHARD_HEADER_BYTES) {
    throw new DataError(`shard ${path}: truncated: file has ${size} bytes, fewer than the ${SHARD_HEADER_BYTES}-byte header`);
  }
  const b = new Uint8Array(SHARD_HEADER_BYTES);
  readFully(fd, path, b, 0);
  const dv = new DataView(b.buffer);
  const magic = Buffer.from(b.subarray(0, 8)).toString('latin1');
  if (magic !== SHARD_MAGIC) {
    throw new DataError(`shard ${path}: not a litespark token shard (magic ${JSON.stringify(magic)}, expected "${SHARD_MAGIC}")`);
  }
  const version = dv.getUint32(8, true);
  if (version !== SHARD_VERSION) {
    throw new DataError(`shard ${path}: format version ${version}, this litespark reads version ${SHARD_VERSION}`);
  }
  const width = dv.getUint32(12, true);
  if (width !== 2 && width !== 4) {
    throw new DataError(`shard ${path}: ${width} bytes per token, expected 2 (uint16) or 4 (uint32)`);
  }
  const tokens64 = dv.getBigUint64(16, true);
  const documents64 = dv.getBigUint64(24, true);
  if (tokens64 > BigInt(Number.MAX_SAFE_INTEGER) || documents64 > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new DataError(`shard ${path}: token count ${tokens64} or document count ${documents64} is implausible`);
  }
  const tokens = Number(tokens64);
  const hash = Buffer.from(b.subarray(40, 56)).toString('latin1');
  if (!HASH_PREFIX.test(hash)) {
    throw new DataError(`shard ${path}: tokenizer hash field ${JSON.stringify(hash)} is not 16 lowercase hex characters`);
  }
  const expected = SHARD_HEADER_BYTES + tokens * width;
  if (size !== expected) {
    const what = size < expected ? 'truncated' : 'trailing bytes';
    throw new DataError(`shard ${path}: ${what}: header says ${tokens} tokens = ${expected} bytes, file has ${size}`);
  }
  return {
    path,
    version,
    dtype: width === 2 ? 'uint16' : 'uint32',
    tokens,
    documents: Number(documents64),
    crc32: dv.getUint32(32, true),
    tokenizerHash: hash,
  };
}

/** Reads and checks a shard's header: magic, version, dtype and the file's size. */
export function readShardHeader(path: string): ShardHeader {
  const fd = openForRead(path);
  try {
    return headerOf(fd, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Header checks, then the CRC of the token bytes, streamed in 1 MiB chunks; `expect` adds checks
 * against what an index says (tokenizer hash prefix, token count, crc32 field).
 */
export function verifyShard(
  path: string,
  expect: { tokenizerHash?: string; tokens?: number; crc32?: number } = {},
): ShardHeader {
  const fd = openForRead(path);
  try {
    const h = headerOf(fd, path);
    if (expect.tokenizerHash !== undefined) {
      const want = hashPrefix(expect.tokenizerHash, `shard ${path}`);
      if (h.tokenizerHash !== want) {
        throw new DataError(`shard ${path}: tokenizer mismatch: shard was made with tokenizer ${h.tokenizerHash}, expected ${want}`);
      }
    }
    if (expect.tokens !== undefined && h.tokens !== expect.tokens) {
      throw new DataError(`shard ${path}: header says ${h.tokens} tokens, expected ${expect.tokens}`);
    }
    if (expect.crc32 !== undefined && h.crc32 !== expect.crc32 >>> 0) {
      throw new DataError(`shard ${path}: header says crc32 ${hex32(h.crc32)}, expected ${hex32(expect.crc32)}`);
    }
    const total = h.tokens * tokenWidth(h.dtype);
    const chunk = new Uint8Array(Math.min(IO_CHUNK_BYTES, Math.max(total, 1)));
    let crc = 0;
    for (let off = 0; off < total; off += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, total - off));
      readFully(fd, path, part, SHARD_HEADER_BYTES + off);
      crc = crc32(part, crc);
    }
    if (crc >>> 0 !== h.crc32) {
      throw new DataError(
        `shard ${path}: checksum mismatch: header says crc32 ${hex32(h.crc32)}, token bytes have ${hex32(crc)} (the file is corrupt)`,
      );
    }
    return h;
  } finally {
    closeSync(fd);
  }
}

/** Positional reads of token ranges of one shard (never the whole file). */
export class ShardReader {
  readonly header: ShardHeader;
  private fd: number | undefined;
  private scratch = new Uint8Array(0);

  constructor(path: string, header?: ShardHeader) {
    const fd = openForRead(path);
    try {
      this.header = header ?? headerOf(fd, path);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    this.fd = fd;
  }

  /** out[outOffset .. outOffset + count) = tokens [start, start + count), widened to int32. */
  read(start: number, count: number, out: Int32Array, outOffset = 0): void {
    const { path, tokens, dtype } = this.header;
    if (this.fd === undefined) throw new Error(`shard ${path}: reader is closed`);
    if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0 && start + count <= tokens)) {
      throw new RangeError(`shard ${path}: tokens [${start}, ${start}+${count}) outside 0..${tokens}`);
    }
    if (outOffset < 0 || outOffset + count > out.length) {
      throw new RangeError(`shard ${path}: ${count} tokens do not fit out[${outOffset}..${out.length})`);
    }
    const width = tokenWidth(dtype);
    const position = SHARD_HEADER_BYTES + start * width;
    if (width === 4) {
      // Straight into the caller's buffer: no copy.
      const dst = new Uint8Array(out.buffer, out.byteOffset + outOffset * 4, count * 4);
      readFully(this.fd, path, dst, position);
      if (!LITTLE_ENDIAN) swapBytes(dst, 4);
      return;
    }
    if (this.scratch.length < count * 2) this.scratch = new Uint8Array(Math.max(count * 2, 4096));
    const bytes = this.scratch.subarray(0, count * 2);
    readFully(this.fd, path, bytes, position);
    if (!LITTLE_ENDIAN) swapBytes(bytes, 2);
    out.set(new Uint16Array(bytes.buffer, 0, count), outOffset);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

// ---- index.json ----------------------------------------------------------------------------

export const INDEX_FILE = 'index.json';
export const INDEX_FORMAT = 'litespark-token-shards';
export const INDEX_VERSION = 1;

const count = () => z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const tokenId = () => z.number().int().min(-1);
const shardEntrySchema = z.looseObject({
  file: z
    .string()
    .min(1)
    .refine((f) => f === basename(f) && f !== '.' && f !== '..' && !f.includes('\\'), {
      message: 'must be a file name inside the data directory (no path separators)',
    }),
  tokens: count(),
  documents: count(),
  crc32: z.number().int().min(0).max(0xffffffff),
});
const splitSchema = z.looseObject({ tokens: count(), documents: count(), shards: z.array(shardEntrySchema) });
const indexSchema = z.looseObject({
  format: z.literal(INDEX_FORMAT),
  version: z.literal(INDEX_VERSION),
  tokenizer: z.looseObject({
    file: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters'),
    vocab_size: z.number().int().min(1).max(2 ** 32),
    bos_id: tokenId(),
    eos_id: tokenId(),
    pad_id: tokenId(),
  }),
  dtype: z.enum(['uint16', 'uint32']),
  splits: z.looseObject({ train: splitSchema, val: splitSchema.optional() }),
});

export interface ShardEntry {
  file: string;
  tokens: number;
  documents: number;
  crc32: number;
}
export interface SplitIndex {
  tokens: number;
  documents: number;
  shards: ShardEntry[];
}
export type SplitName = 'train' | 'val';
/** index.json of a prepared data directory; other top-level fields (inputs, created, ...) pass through. */
export interface DataIndex {
  format: typeof INDEX_FORMAT;
  version: typeof INDEX_VERSION;
  tokenizer: { file: string; sha256: string; vocab_size: number; bos_id: number; eos_id: number; pad_id: number };
  dtype: TokenDtype;
  splits: { train: SplitIndex; val?: SplitIndex };
  [key: string]: unknown;
}

/** Validates an index (schema and sums); `where` names the file in errors. */
export function checkIndex(raw: unknown, where: string): DataIndex {
  const r = indexSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((iss) => {
      const missing = iss.code === 'invalid_type' && iss.message.endsWith('received undefined');
      return `${where}: ${iss.path.map(String).join('.') || '(top level)'}: ${missing ? 'is required' : iss.message}`;
    });
    throw new DataError(lines.join('\n'));
  }
  const index = r.data as DataIndex;
  if (index.dtype === 'uint16' && index.tokenizer.vocab_size > 65536) {
    throw new DataError(`${where}: dtype: 'uint16' cannot hold ids of tokenizer.vocab_size ${index.tokenizer.vocab_size}`);
  }
  for (const name of ['train', 'val'] as const) {
    const s = index.splits[name];
    if (!s) continue;
    const tokens = s.shards.reduce((n, e) => n + e.tokens, 0);
    const documents = s.shards.reduce((n, e) => n + e.documents, 0);
    if (tokens !== s.tokens) throw new DataError(`${where}: splits.${name}.tokens: ${s.tokens}, but its shards hold ${tokens}`);
    if (documents !== s.documents) {
      throw new DataError(`${where}: splits.${name}.documents: ${s.documents}, but its shards hold ${documents}`);
    }
  }
  return index;
}

/** Reads and validates `dir/index.json`. */
export function readIndex(dir: string): DataIndex {
  const path = join(dir, INDEX_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataError(`${path}: missing (is ${dir} a data directory made by 'litespark prepare'?)`);
    }
    throw new DataError(`${path}: cannot read: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  return checkIndex(raw, path);
}

/** Validates and writes `dir/index.json` atomically (temp file, fsync, rename, fsync dir). */
export function writeIndex(dir: string, index: DataIndex): void {
  const path = join(dir, INDEX_FILE);
  checkIndex(index, path);
  try {
    writeAtomic(path, `${JSON.stringify(index, null, 2)}\n`);
  } catch (e) {
    throw new DataError(`${path}: cannot write: ${(e as Error).message}`);
  }
}

/** A split whose shards were checked against the index. */
export interface OpenedSplit {
  dir: string;
  split: SplitName;
  index: DataIndex;
  /** In index order; headers carry the full paths. */
  shards: ShardHeader[];
  tokens: number;
}

/**
 * Checks every shard of a split: it exists, its header agrees with its index entry (tokens,
 * documents, crc32 field, tokenizer hash prefix, dtype); with verify 'full' also its CRC.
 */
export function openSplit(dir: string, split: SplitName, opts: { verify?: 'header' | 'full' } = {}): OpenedSplit {
  const index = readIndex(dir);
  const s = index.splits[split];
  if (!s) throw new DataError(`${join(dir, INDEX_FILE)}: splits.${split}: missing (the data directory has no ${split} split)`);
  const want = index.tokenizer.sha256.slice(0, 16);
  const shards = s.shards.map((entry, i) => {
    const path = join(dir, entry.file);
    const at = `${INDEX_FILE} splits.${split}.shards.${i}`;
    let h: ShardHeader;
    try {
      h = opts.verify === 'full' ? verifyShard(path) : readShardHeader(path);
    } catch (e) {
      if (e instanceof DataError && e.message === `shard ${path}: missing`) {
        throw new DataError(`shard ${path}: missing (listed in ${at})`);
      }
      throw e;
    }
    const disagree = (field: string, header: unknown, listed: unknown) =>
      new DataError(`shard ${path}: header says ${field} ${header}, ${at} says ${listed}`);
    if (h.tokenizerHash !== want) {
      throw new DataError(`shard ${path}: tokenizer mismatch: shard was made with tokenizer ${h.tokenizerHash}, ${INDEX_FILE} has ${want}`);
    }
    if (h.dtype !== index.dtype) throw disagree('dtype', h.dtype, index.dtype);
    if (h.tokens !== entry.tokens) throw disagree('tokens', h.tokens, entry.tokens);
    if (h.documents !== entry.documents) throw disagree('documents', h.documents, entry.documents);
    if (h.crc32 !== entry.crc32) throw disagree('crc32', hex32(h.crc32), hex32(entry.crc32));
    return h;
  });
  return { dir, split, index, shards, tokens: s.tokens };
}
