// The safetensors format (Hugging Face), read and written as the reference library does.
//
// Layout: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON, then the data section. The JSON
// is one object: an optional "__metadata__" (string -> string) and, per tensor,
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} with offsets relative to the
// data section (byte 8 + N). Data is little-endian, row-major.
//
// Reading checks what the reference reader (safetensors/src/tensor.rs, read_metadata + validate)
// checks, in the same order: file >= 8 bytes; N <= 100,000,000; 8 + N <= file size; the header
// UTF-8 and JSON (any JSON whitespace around the object, so unpadded headers and other padding
// read fine); entries sorted by (begin, end) tile the data section from 0 with no hole or overlap;
// each entry's end - begin = numel * dtype size; the last end is exactly the end of the file (a
// truncated file and trailing bytes are both errors). Fields of a tensor entry other than the
// three are ignored and "__metadata__": null is no metadata, as in the reference. Stricter than
// the reference (safetensors 0.8.0, checked side by side): a duplicate tensor name or metadata key
// (the reference keeps the last; a repeated field inside an entry, or a second "__metadata__",
// it rejects too); integers of 2^53 or more (it takes any u64, e.g. a huge dimension beside a 0);
// a tensor entry written as a JSON array [dtype, shape, offsets] (serde's sequence form of a
// struct); the dtypes it has and this module does not (F4, F6_E2M3, F6_E3M2, F8_E8M0, C64).
//
// Writing produces the bytes the reference writer (prepare + serialize_to_file, what Python's
// save_file calls) produces: tensors ordered by dtype, descending in the reference's dtype order
// (U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, F8_E4M3, F8_E5M2, I8, U8, BOOL), then by
// name (bytewise UTF-8); compact JSON ("__metadata__" first, when given; then each tensor with
// dtype, shape, data_offsets), padded with spaces to a multiple of 8. The reference writes
// metadata keys in hash-map order (random per process); here they are sorted (bytewise UTF-8),
// which the reference reads the same. Checked byte for byte against safetensors 0.8.0 on a dict
// of every dtype, scalar and zero-size shapes, and names that need escaping or sort differently
// in UTF-8 and UTF-16. A header over the 100 MB limit is refused on write too, as there.
//
// Every bad input is a CheckpointError whose message starts with the file path. The host must be
// little-endian (x86-64, like the native addon): typed-array views are read as they lie on disk.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { native } from '../kernels/native.js';

/** A bad checkpoint file or bad tensors to write; the message starts with the path. CLI exit code 2. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export type StDtype =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

/** The dtypes in the reference's enum order (ascending); the writer orders tensors by it, descending. */
export const ST_DTYPES: readonly StDtype[] = Object.freeze([
  'BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64',
] as const);

const DTYPE_BYTES: Readonly<Record<StDtype, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};
const DTYPE_RANK = new Map<string, number>(ST_DTYPES.map((d, i) => [d, i]));
/** In newer reference versions, not here. */
const NEWER_DTYPES = new Set(['F4', 'F6_E2M3', 'F6_E3M2', 'F8_E8M0', 'C64']);

/** The reference's header limit (MAX_HEADER_SIZE), enforced on read and on write. */
export const MAX_HEADER_BYTES = 100_000_000;

export function dtypeBytes(d: StDtype): number {
  const b = DTYPE_BYTES[d];
  if (b === undefined) throw new TypeError(`dtypeBytes: unknown dtype ${JSON.stringify(d)}`);
  return b;
}

export interface TensorInfo {
  name: string;
  dtype: StDtype;
  shape: number[];
  /** absolute file offset of the data */
  offset: number;
  bytes: number;
}

export interface TensorToWrite {
  name: string;
  dtype: StDtype;
  shape: number[];
  /** raw little-endian bytes of exactly numel*dtypeBytes, any ArrayBufferView */
  data: ArrayBufferView;
}

// Positional I/O moves at most this much per call (Linux caps one read/write near 2 GiB).
const IO_CHUNK = 1 << 30;
// Elements per conversion chunk of readF32 (BF16/F16: 2 MiB of scratch, F64: 8 MiB): the scratch
// stays in cache between the read and the cast. bench/safetensors.ts, 32M elements, 2-core Xeon
// (AVX-512), page cache: BF16/F16 ~3.2 GB/s of file from 64K to 4M chunks; F64 3.8-4.2 GB/s at
// 64K-1M, 1.6 GB/s at 4M and above (the scratch no longer stays in cache).
const CONVERT_CHUNK = 1 << 20;

const fmtShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;
const q = (s: string): string => JSON.stringify(s);

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Why `shape` is not a list of non-negative integers with a numel below 2^53, or null. */
function shapeProblem(shape: unknown): string | null {
  if (!Array.isArray(shape)) return 'shape is not an array';
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      return `shape ${JSON.stringify(shape)} has a negative, non-integer or too large dimension`;
    }
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return `shape ${fmtShape(shape)} has 2^53 or more elements`;
  }
  return null;
}

// ---- writing ---------------------------------------------------------------------------------

/**
 * Writes a safetensors file byte-identical to what the reference library writes for the same
 * tensors (see the file comment for the order and the metadata caveat), streaming each tensor's
 * bytes with writeSync (no concatenation), and fsyncs before returning. Returns the file's size
 * and sha256 (hex, computed while writing).
 */
export function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): { bytes: number; sha256: string } {
  const fail = (what: string): never => {
    throw new CheckpointError(`${path}: ${what}`);
  };
  const names = new Set<string>();
  const items = tensors.map((t) => {
    if (typeof t.name !== 'string') fail(`a tensor name is not a string: ${String(t.name)}`);
    const at = `tensor ${q(t.name)}`;
    if (t.name === '__metadata__') fail(`${at}: the name is reserved for the header's metadata`);
    if (hasLoneSurrogate(t.name)) fail(`${at}: the name is not valid Unicode (a lone surrogate)`);
    if (names.has(t.name)) fail(`${at}: duplicate name`);
    names.add(t.name);
    if (!DTYPE_RANK.has(t.dtype)) fail(`${at}: unknown dtype ${q(String(t.dtype))} (known: ${ST_DTYPES.join(' ')})`);
    const bad = shapeProblem(t.shape);
    if (bad) fail(`${at}: ${bad}`);
    if (!ArrayBuffer.isView(t.data)) fail(`${at}: data is not an ArrayBufferView`);
    const bytes = numelOf(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== bytes) {
      fail(`${at}: data has ${t.data.byteLength} bytes, shape ${fmtShape(t.shape)} of ${t.dtype} needs ${bytes}`);
    }
    return { t, key: Buffer.from(t.name, 'utf8'), rank: DTYPE_RANK.get(t.dtype)!, bytes };
  });
  // The reference's order: dtype descending, then name ascending, bytewise.
  items.sort((a, b) => b.rank - a.rank || Buffer.compare(a.key, b.key));

  let json = '{';
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) fail('metadata is not an object');
    const keys = Object.keys(metadata).map((k) => ({ k, key: Buffer.from(k, 'utf8') }));
    keys.sort((a, b) => Buffer.compare(a.key, b.key));
    const parts = keys.map(({ k }) => {
      const v: unknown = metadata[k];
      if (typeof v !== 'string') fail(`metadata ${q(k)}: value is ${v === null ? 'null' : typeof v}, not a string`);
      if (hasLoneSurrogate(k) || hasLoneSurrogate(v as string)) fail(`metadata ${q(k)}: not valid Unicode (a lone surrogate)`);
      return `${q(k)}:${q(v as string)}`;
    });
    json += `"__metadata__":{${parts.join(',')}}`;
  }
  let offset = 0;
  for (const { t, bytes } of items) {
    if (json.length > 1) json += ',';
    json += `${q(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`;
    offset += bytes;
  }
  json += '}';
  const header = Buffer.from(json, 'utf8');
  const padded = Math.ceil(header.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) fail(`header of ${padded} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  header.copy(head, 8);

  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, head);
    hash.update(head);
    for (const { t } of items) {
      const view = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      for (let o = 0; o < view.length; o += IO_CHUNK) {
        const part = view.subarray(o, Math.min(view.length, o + IO_CHUNK));
        writeAll(fd, part);
        hash.update(part);
      }
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(path);
    } catch {
      // the write error is the one to report
    }
    throw e;
  }
  closeSync(fd);
  return { bytes: head.length + offset, sha256: hash.digest('hex') };
}

function writeAll(fd: number, buf: Uint8Array): void {
  for (let o = 0; o < buf.length; ) o += writeSync(fd, buf, o, buf.length - o);
}

/** bf16 bits of `src`, rounded to nearest even (the native cast): BF16 bytes to pass as `data`. */
export function f32ToBf16Bytes(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  native.castToBf16(out, src, src.length);
  return out;
}

function hasLoneSurrogate(s: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

// ---- reading ---------------------------------------------------------------------------------

/** An open safetensors file: the validated header in memory, tensor data read on demand. */
export class SafetensorsFile {
  readonly path: string;
  /** The tensors in data order (ascending offset). */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** "__metadata__", or {} when the header has none. */
  readonly metadata: Readonly<Record<string, string>>;
  private fd: number | null;
  private scratch: ArrayBuffer | null = null;

  private constructor(path: string, fd: number, tensors: Map<string, TensorInfo>, metadata: Record<string, string>) {
    this.path = path;
    this.fd = fd;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /** Opens `path` and reads and validates its header (positional reads; no tensor data is read). */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new CheckpointError(`${path}: cannot open: ${(e as Error).message}`);
    }
    try {
      const { tensors, metadata } = readHeader(path, fd);
      return new SafetensorsFile(path, fd, tensors, metadata);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Raw bytes of a tensor into `out` (exactly the tensor's byte size; positional read, no copy beyond the read). */
  readBytes(name: string, out: Uint8Array): void {
    const t = this.info(name);
    if (out.byteLength !== t.bytes) {
      throw new CheckpointError(`${this.path}: tensor ${q(name)} has ${t.bytes} bytes (shape ${fmtShape(t.shape)} of ${t.dtype}), the output holds ${out.byteLength}`);
    }
    this.readAt(out, t.offset, name);
  }

  /**
   * A tensor converted to float32 into `out` (numel elements): F32 read in place; BF16 and F16
   * read in 1M-element chunks into scratch and widened by the native casts; F64 narrowed (round
   * to nearest) by a typed-array set. Other dtypes are an error.
   */
  readF32(name: string, out: Float32Array): void {
    const t = this.info(name);
    const n = numelOf(t.shape);
    if (out.length !== n) {
      throw new CheckpointError(`${this.path}: tensor ${q(name)} has ${n} elements (shape ${fmtShape(t.shape)}), the output holds ${out.length}`);
    }
    if (t.dtype === 'F32') {
      this.readAt(new Uint8Array(out.buffer, out.byteOffset, out.byteLength), t.offset, name);
      return;
    }
    if (t.dtype !== 'BF16' && t.dtype !== 'F16' && t.dtype !== 'F64') {
      throw new CheckpointError(`${this.path}: tensor ${q(name)} is ${t.dtype}; readF32 converts F32, BF16, F16 and F64 only`);
    }
    const size = DTYPE_BYTES[t.dtype];
    const chunk = Math.min(n, CONVERT_CHUNK);
    if (!this.scratch || this.scratch.byteLength < chunk * size) this.scratch = new ArrayBuffer(Math.max(chunk * size, 8));
    const bytes = new Uint8Array(this.scratch, 0, chunk * size);
    const u16 = new Uint16Array(this.scratch, 0, chunk);
    const f64 = size === 8 ? new Float64Array(this.scratch, 0, chunk) : null;
    for (let i = 0; i < n; i += chunk) {
      const k = Math.min(chunk, n - i);
      this.readAt(bytes.subarray(0, k * size), t.offset + i * size, name);
      const dst = out.subarray(i, i + k);
      if (t.dtype === 'BF16') native.castFromBf16(dst, u16, k);
      else if (t.dtype === 'F16') native.castFromF16(dst, u16, k);
      else dst.set(f64!.subarray(0, k));
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.scratch = null;
  }

  private info(name: string): TensorInfo {
    if (this.fd === null) throw new Error(`${this.path}: the file is closed`);
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError(`${this.path}: no tensor ${q(name)} in the file`);
    return t;
  }

  private readAt(out: Uint8Array, position: number, name: string): void {
    for (let o = 0; o < out.length; ) {
      const got = readSync(this.fd!, out, o, Math.min(IO_CHUNK, out.length - o), position + o);
      if (got === 0) throw new CheckpointError(`${this.path}: tensor ${q(name)}: the file ended at byte ${position + o} (it shrank after open)`);
      o += got;
    }
  }
}

function readHeader(path: string, fd: number): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const fail = (what: string): never => {
    throw new CheckpointError(`${path}: ${what}`);
  };
  const size = fstatSync(fd).size;
  if (size < 8) fail(`the file is ${size} bytes, shorter than the 8-byte header length`);
  const len8 = Buffer.alloc(8);
  readFull(fd, len8, 0);
  const n64 = len8.readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  if (8 + n > size) fail(`header length ${n} runs past the end of the file (${size} bytes)`);
  const raw = Buffer.alloc(n);
  readFull(fd, raw, 8);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    return fail('the header is not valid UTF-8');
  }
  let root: Json;
  try {
    root = parseJson(text);
  } catch (e) {
    if (e instanceof JsonDuplicateKey) {
      const [top, ...rest] = e.parents;
      if (top === undefined) {
        fail(e.key === '__metadata__' ? '"__metadata__" appears twice in the header' : `tensor ${q(e.key)} appears twice in the header`);
      }
      if (top === '__metadata__' && rest.length === 0) fail(`"__metadata__": key ${q(e.key)} appears twice`);
      fail(`tensor ${q(top!)}: ${rest.length === 0 ? 'field' : 'key'} ${q(e.key)} appears twice`);
    }
    if (e instanceof JsonSyntaxError) fail(`the header is not valid JSON: ${e.message}`);
    throw e;
  }
  if (!(root instanceof Map)) return fail('the header is not a JSON object');

  const metadata: Record<string, string> = Object.create(null);
  const entries: { name: string; dtype: StDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, v] of root) {
    if (name === '__metadata__') {
      if (v === null) continue; // the reference reads null as no metadata
      if (!(v instanceof Map)) fail(`"__metadata__" is not an object of strings`);
      for (const [k, s] of v as Map<string, Json>) {
        if (typeof s !== 'string') {
          fail(`"__metadata__" ${q(k)}: value is ${jsonKind(s)}, not a string (a tensor cannot be named "__metadata__")`);
        }
        metadata[k] = s as string;
      }
      continue;
    }
    const at = `tensor ${q(name)}`;
    if (!(v instanceof Map)) return fail(`${at}: entry is ${jsonKind(v)}, not an object`);
    for (const field of ['dtype', 'shape', 'data_offsets']) if (!v.has(field)) fail(`${at}: missing "${field}"`);
    const dtype = v.get('dtype');
    if (typeof dtype !== 'string') return fail(`${at}: dtype is ${jsonKind(dtype!)}, not a string`);
    if (!DTYPE_RANK.has(dtype)) {
      fail(`${at}: ${NEWER_DTYPES.has(dtype) ? 'unsupported' : 'unknown'} dtype ${q(dtype)} (supported: ${ST_DTYPES.join(' ')})`);
    }
    const shape = intList(v.get('shape')!);
    if (!shape) return fail(`${at}: shape ${jsonText(v.get('shape')!)} is not a list of non-negative integers below 2^53`);
    const bad = shapeProblem(shape);
    if (bad) fail(`${at}: ${bad}`);
    const offs = intList(v.get('data_offsets')!);
    if (!offs || offs.length !== 2) {
      return fail(`${at}: data_offsets ${jsonText(v.get('data_offsets')!)} is not a pair of non-negative integers below 2^53`);
    }
    entries.push({ name, dtype: dtype as StDtype, shape, begin: offs[0]!, end: offs[1]! });
  }

  // The reference's validate(): sorted by (begin, end), each begins where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let start = 0;
  let prev = '';
  for (const e of entries) {
    const at = `tensor ${q(e.name)}`;
    const range = `data_offsets [${e.begin}, ${e.end}]`;
    if (e.end < e.begin) fail(`${at}: ${range} end before they begin`);
    if (e.begin > start) fail(`${at}: ${range} leave a hole: bytes [${start}, ${e.begin}) of the data section belong to no tensor`);
    if (e.begin < start) fail(`${at}: ${range} overlap tensor ${q(prev)}, which ends at ${start}`);
    const need = numelOf(e.shape) * DTYPE_BYTES[e.dtype];
    if (e.end - e.begin !== need) {
      fail(`${at}: ${range} hold ${e.end - e.begin} bytes, shape ${fmtShape(e.shape)} of ${e.dtype} needs ${need}`);
    }
    start = e.end;
    prev = e.name;
  }
  const dataStart = 8 + n;
  const have = size - dataStart;
  if (start > have) {
    const e = entries.find((x) => x.end > have)!;
    fail(`truncated: tensor ${q(e.name)} needs bytes [${e.begin}, ${e.end}) of the data section, the file has ${have}`);
  }
  if (start < have) fail(`${have - start} trailing bytes after the data section (which ends at byte ${dataStart + start} of ${size})`);

  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) {
    tensors.set(e.name, Object.freeze({
      name: e.name, dtype: e.dtype, shape: Object.freeze(e.shape) as number[], offset: dataStart + e.begin, bytes: e.end - e.begin,
    }));
  }
  return { tensors, metadata: Object.freeze(metadata) };
}

function readFull(fd: number, out: Uint8Array, position: number): void {
  for (let o = 0; o < out.length; ) {
    const got = readSync(fd, out, o, out.length - o, position + o);
    if (got === 0) throw new Error('unexpected end of file');
    o += got;
  }
}

/** The integers of a JSON array, each a non-negative integer literal below 2^53; else null. */
function intList(v: Json): number[] | null {
  if (!Array.isArray(v)) return null;
  const out: number[] = [];
  for (const x of v) {
    // usize, as serde_json reads it: no sign (not even -0), fraction or exponent.
    if (!(x instanceof JsonNumber) || !/^\d+$/.test(x.text)) return null;
    const d = Number(x.text);
    if (!Number.isSafeInteger(d)) return null;
    out.push(d);
  }
  return out;
}

// ---- strict JSON (RFC 8259): duplicate keys are errors, numbers keep their text --------------

class JsonNumber {
  constructor(readonly text: string) {}
}
type Json = null | boolean | string | JsonNumber | Json[] | Map<string, Json>;
class JsonSyntaxError extends Error {}
/** A key repeated in one object; `parents` are the keys of the objects around it, outermost first. */
class JsonDuplicateKey extends JsonSyntaxError {
  constructor(readonly key: string, readonly parents: string[]) {
    super(`duplicate key ${JSON.stringify(key)}`);
  }
}

function jsonKind(v: Json): string {
  if (v === null) return 'null';
  if (v instanceof Map) return 'an object';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof JsonNumber) return `a number (${v.text})`;
  return typeof v === 'string' ? 'a string' : `a boolean (${v})`;
}

function jsonText(v: Json): string {
  if (v instanceof JsonNumber) return v.text;
  if (Array.isArray(v)) return `[${v.map(jsonText).join(', ')}]`;
  if (v instanceof Map) return '{...}';
  return JSON.stringify(v);
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const MAX_DEPTH = 128; // serde_json's recursion limit

function parseJson(s: string): Json {
  let i = 0;
  const keys: string[] = []; // the keys leading to the value being parsed
  const fail = (what: string, at = i): never => {
    throw new JsonSyntaxError(`${what} at character ${at}`);
  };
  const ws = (): void => {
    for (let c = s.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = s.charCodeAt(++i));
  };
  const str = (): string => {
    let out = '';
    let from = ++i; // past the opening quote
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        out += s.slice(from, i++);
        return out;
      }
      if (c === 0x5c) {
        out += s.slice(from, i);
        const e = s[i + 1];
        const simple = e === undefined ? undefined : ESCAPES[e];
        if (simple !== undefined) {
          out += simple;
          i += 2;
        } else if (e === 'u') {
          let cp = hex4(i + 2);
          i += 6;
          if (cp >= 0xdc00 && cp <= 0xdfff) fail('lone low surrogate escape', i - 6);
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (s[i] !== '\\' || s[i + 1] !== 'u') fail('lone high surrogate escape', i - 6);
            const lo = hex4(i + 2);
            if (lo < 0xdc00 || lo > 0xdfff) fail('lone high surrogate escape', i - 6);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
          }
          out += String.fromCodePoint(cp);
        } else {
          fail('invalid escape');
        }
        from = i;
        continue;
      }
      if (Number.isNaN(c)) fail('unterminated string');
      if (c < 0x20) fail('control character in a string');
      i++;
    }
  };
  const hex4 = (at: number): number => {
    const h = s.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('invalid \\u escape', at);
    return parseInt(h, 16);
  };
  const value = (depth: number): Json => {
    ws();
    const c = s.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      if (depth >= MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
      i++;
      ws();
      const close = c === 0x7b ? 0x7d : 0x5d;
      const obj = c === 0x7b ? new Map<string, Json>() : null;
      const arr: Json[] = [];
      if (s.charCodeAt(i) === close) {
        i++;
        return obj ?? arr;
      }
      for (;;) {
        if (obj) {
          ws();
          if (s.charCodeAt(i) !== 0x22) fail('expected a string key');
          const k = str();
          if (obj.has(k)) throw new JsonDuplicateKey(k, [...keys]);
          ws();
          if (s.charCodeAt(i++) !== 0x3a) fail("expected ':'", i - 1);
          keys.push(k);
          obj.set(k, value(depth + 1));
          keys.pop();
        } else {
          arr.push(value(depth + 1));
        }
        ws();
        const d = s.charCodeAt(i++);
        if (d === close) return obj ?? arr;
        if (d !== 0x2c) fail(`expected ',' or '${obj ? '}' : ']'}'`, i - 1);
      }
    }
    if (c === 0x22) return str();
    for (const [word, v] of LITERALS) {
      if (s.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(s);
    if (m) {
      i += m[0].length;
      return new JsonNumber(m[0]);
    }
    return fail(Number.isNaN(c) ? 'unexpected end' : `unexpected character ${q(s[i]!)}`);
  };
  const root = value(0);
  ws();
  if (i < s.length) fail('trailing characters');
  return root;
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const LITERALS: [string, Json][] = [['true', true], ['false', false], ['null', null]];
