// The inputs of `litespark prepare`: which files, in which format, and their documents.
//
// Formats, by file name (case-insensitive):
//   .jsonl .ndjson            one JSON object per line, the document in a string field
//                             (default `text`, the SlimPajama layout; a dotted path such as
//                             `meta.body` reaches into nested objects)
//   .txt .text .md            text: by default the whole file is one document
//                             (`textDocs: 'line'`: every non-blank line is one)
//   + .gz / .zst              gzip (node:zlib) or Zstandard (fzstd) compression of either
// A directory is searched recursively for those extensions (hidden entries skipped), files in
// code-unit order of their relative paths; a pattern with glob characters is expanded
// (tinyglobby) and sorted the same way. Files are read as streams, never whole, except a text
// file in `file` mode, which is one document and must be held to be tokenized.
//
// Bad input: a path that does not exist or cannot be read, a file with an extension we cannot
// read, a corrupt gzip or zstd stream are fatal (DataError naming the file). A jsonl line that is
// not JSON or lacks the field is recoverable: skipped, counted, and described with file and line.
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { DataError } from './errors.js';

export type InputFormat = 'jsonl' | 'text';
export type Compression = 'none' | 'gzip' | 'zstd';
/** How a text file is cut into documents. */
export type TextDocs = 'file' | 'line';

export interface InputFile {
  /** Absolute path. */
  path: string;
  format: InputFormat;
  compression: Compression;
  /** Size on disk. */
  bytes: number;
}

/** A byte range of an uncompressed file: [start, end), both at line starts. */
export interface ByteRange {
  start: number;
  end: number;
  /** 1-based number of the line that starts at `start`. */
  firstLine: number;
}

const FORMATS: Record<string, InputFormat> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.txt': 'text',
  '.text': 'text',
  '.md': 'text',
};
const COMPRESSIONS: Record<string, Compression> = { '.gz': 'gzip', '.zst': 'zstd', '.zstd': 'zstd' };

/** Format and compression from a file name; undefined when we cannot read it. */
export function classify(path: string): { format: InputFormat; compression: Compression } | undefined {
  let name = basename(path).toLowerCase();
  let compression: Compression = 'none';
  for (const [ext, c] of Object.entries(COMPRESSIONS)) {
    if (name.endsWith(ext)) {
      compression = c;
      name = name.slice(0, -ext.length);
      break;
    }
  }
  for (const [ext, format] of Object.entries(FORMATS)) {
    if (name.endsWith(ext)) return { format, compression };
  }
  return undefined;
}

const SUPPORTED = 'one of .jsonl .ndjson .txt .text .md, optionally + .gz or .zst';

/**
 * Expands files, directories and glob patterns into the list of input files, in argument
 * order, each directory or pattern sorted; a file named twice is kept once (first place).
 */
export function expandInputs(args: readonly string[], cwd = process.cwd()): InputFile[] {
  if (args.length === 0) throw new DataError('no inputs: name files, directories or glob patterns');
  const out: InputFile[] = [];
  const seen = new Set<string>();
  const add = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    const kind = classify(path);
    if (!kind) throw new DataError(`${path}: cannot read this kind of file (supported: ${SUPPORTED})`);
    out.push({ path, ...kind, bytes: statOrThrow(path).size });
  };
  for (const arg of args) {
    const abs = resolve(cwd, arg);
    let st;
    try {
      st = statSync(abs);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) {
      const files = listDirectory(abs);
      if (files.length === 0) throw new DataError(`${arg}: directory has no input files (${SUPPORTED})`);
      files.forEach(add);
    } else if (st?.isFile()) {
      add(abs);
    } else if (!st && isDynamicPattern(arg)) {
      const files = globSync(arg, { cwd, absolute: true, onlyFiles: true, dot: false })
        .filter((f) => classify(f) !== undefined)
        .sort(byCodeUnits);
      if (files.length === 0) throw new DataError(`${arg}: the pattern matches no input files (${SUPPORTED})`);
      files.forEach(add);
    } else if (!st) {
      throw new DataError(`${arg}: no such file or directory`);
    } else {
      throw new DataError(`${arg}: not a regular file or directory`);
    }
  }
  return out;
}

function statOrThrow(path: string) {
  try {
    return statSync(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function listDirectory(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      throw new DataError(`${dir}: cannot list directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && classify(p)) found.push(p);
    }
  };
  walk(root);
  return found.sort((a, b) => byCodeUnits(relative(root, a), relative(root, b)));
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The decompressed bytes of a file (or of a byte range of an uncompressed one), in chunks.
 * `onRaw` sees how many bytes were read from disk, for progress.
 */
export async function* readBytes(
  file: InputFile,
  range?: ByteRange,
  onRaw?: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  if (range && file.compression !== 'none') {
    throw new DataError(`${file.path}: a byte range of a compressed file cannot be read`);
  }
  const src = createReadStream(file.path, {
    highWaterMark: 1 << 20,
    ...(range ? { start: range.start, end: range.end - 1 } : {}),
  });
  const fail = (e: unknown): never => {
    if (e instanceof DataError) throw e;
    const err = e as NodeJS.ErrnoException;
    const what = file.compression === 'none' ? 'cannot read' : `corrupt or truncated ${file.compression} stream`;
    throw new DataError(`${file.path}: ${what} (${err.code ?? err.message})`);
  };
  try {
    if (file.compression === 'none') {
      for await (const chunk of src as AsyncIterable<Buffer>) {
        onRaw?.(chunk.length);
        yield chunk;
      }
    } else if (file.compression === 'gzip') {
      src.on('data', (c: string | Buffer) => onRaw?.(c.length));
      const gunzip = createGunzip();
      src.on('error', (e) => gunzip.destroy(e));
      for await (const chunk of src.pipe(gunzip) as AsyncIterable<Buffer>) yield chunk;
    } else {
      yield* zstdChunks(src as AsyncIterable<Buffer>, file.path, onRaw);
    }
  } catch (e) {
    fail(e);
  } finally {
    src.destroy();
  }
}

async function* zstdChunks(
  src: AsyncIterable<Buffer>,
  path: string,
  onRaw?: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  const pending: Uint8Array[] = [];
  const z = new Decompress((chunk) => pending.push(chunk));
  let any = false;
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      z.push(chunk, final);
    } catch (e) {
      throw new DataError(`${path}: corrupt or truncated zstd stream (${(e as Error).message})`);
    }
  };
  for await (const chunk of src) {
    onRaw?.(chunk.length);
    any = true;
    push(chunk, false);
    while (pending.length > 0) yield pending.shift()!;
  }
  if (!any) throw new DataError(`${path}: empty file is not a zstd stream`);
  push(new Uint8Array(0), true);
  while (pending.length > 0) yield pending.shift()!;
}

/** A document, or a line that was skipped and why. */
export type DocumentOrSkip =
  | { text: string; line: number }
  | { skip: string; line: number };

/**
 * The documents of a file: one per jsonl line (field `field`), the whole text file, or one per
 * non-blank line of a text file (`textDocs: 'line'`). Blank jsonl lines are ignored silently;
 * lines that are not JSON, not objects, or lack a string field are yielded as skips.
 * `maxBytes` stops after that many decompressed bytes (a text file is cut at the last whole
 * UTF-8 character; jsonl and lines at the last whole line).
 */
export async function* readDocuments(
  file: InputFile,
  opts: { field?: string; textDocs?: TextDocs; range?: ByteRange; maxBytes?: number; onRaw?: (bytes: number) => void },
): AsyncGenerator<DocumentOrSkip> {
  const limit = opts.maxBytes ?? Infinity;
  const chunks = readBytes(file, opts.range, opts.onRaw);
  if (file.format === 'text' && (opts.textDocs ?? 'file') === 'file') {
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const c of chunks) {
      const take = Math.min(c.length, limit - n);
      parts.push(take === c.length ? c : c.subarray(0, take));
      n += take;
      if (n >= limit) break;
    }
    let bytes = Buffer.concat(parts);
    if (n >= limit) bytes = bytes.subarray(0, wholeCharacters(bytes));
    const text = utf8.decode(bytes);
    if (text.length > 0) yield { text, line: 1 };
    return;
  }
  const getField = fieldGetter(opts.field ?? 'text');
  let line = (opts.range?.firstLine ?? 1) - 1;
  for await (const raw of lines(chunks, limit)) {
    line++;
    if (file.format === 'text') {
      const text = utf8.decode(raw);
      if (text.trim().length > 0) yield { text, line };
      continue;
    }
    if (isBlank(raw)) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(utf8.decode(raw));
    } catch (e) {
      yield { skip: `not JSON (${(e as Error).message})`, line };
      continue;
    }
    const v = getField(obj);
    if (typeof v === 'string') yield { text: v, line };
    else yield { skip: v === undefined ? `no field "${opts.field ?? 'text'}"` : `field "${opts.field ?? 'text'}" is not a string`, line };
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });

/** The lines of a byte stream, without their `\n` (and `\r`), up to `limit` bytes. */
async function* lines(chunks: AsyncIterable<Uint8Array>, limit: number): AsyncGenerator<Uint8Array> {
  let carry: Buffer = Buffer.alloc(0);
  let total = 0;
  for await (const c of chunks) {
    const buf = carry.length > 0 ? Buffer.concat([carry, c]) : Buffer.from(c.buffer, c.byteOffset, c.length);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      total += nl + 1 - start;
      if (total > limit) return;
      yield trimCr(buf.subarray(start, nl));
      start = nl + 1;
    }
    carry = buf.subarray(start);
  }
  if (carry.length > 0 && total + carry.length <= limit) yield trimCr(carry);
}

function trimCr(b: Uint8Array): Uint8Array {
  return b.length > 0 && b[b.length - 1] === 13 ? b.subarray(0, b.length - 1) : b;
}

function isBlank(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

/** Length of the longest prefix of `b` that does not end inside a UTF-8 character. */
export function wholeCharacters(b: Uint8Array): number {
  let i = b.length;
  // Step back over continuation bytes to the lead byte of the last character.
  let back = 0;
  while (i > 0 && back < 4 && (b[i - 1] & 0xc0) === 0x80) {
    i--;
    back++;
  }
  if (i === 0) return b.length;
  const lead = b[i - 1];
  const need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : 0;
  return back >= need ? b.length : i - 1;
}

function fieldGetter(field: string): (obj: unknown) => unknown {
  const path = field.split('.');
  return (obj) => {
    let v: unknown = obj;
    for (const k of path) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
      v = (v as Record<string, unknown>)[k];
    }
    return v;
  };
}

/**
 * Cuts an uncompressed file into ranges of about `target` bytes at line starts, so that a large
 * jsonl file is tokenized by several workers. Reads the file once (the caller hashes it on
 * the same pass through `onChunk`).
 */
export async function splitLines(
  file: InputFile,
  target: number,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<ByteRange[]> {
  const ranges: ByteRange[] = [];
  let start = 0;
  let startLine = 1;
  let offset = 0;
  let linesSeen = 0;
  for await (const c of readBytes(file)) {
    onChunk?.(c);
    let p = 0;
    for (;;) {
      const nl = indexOfByte(c, 10, p);
      if (nl < 0) break;
      linesSeen++;
      p = nl + 1;
      const end = offset + p;
      if (end - start >= target) {
        ranges.push({ start, end, firstLine: startLine });
        start = end;
        startLine = linesSeen + 1;
      }
    }
    offset += c.length;
  }
  if (offset > start || ranges.length === 0) ranges.push({ start, end: offset, firstLine: startLine });
  return ranges;
}

function indexOfByte(c: Uint8Array, byte: number, from: number): number {
  return Buffer.from(c.buffer, c.byteOffset, c.length).indexOf(byte, from);
}
