// src/checkpoint/safetensors.ts against the format as specified, with expected bytes and values
// written out here rather than produced by the module:
//   writer    bytes of small dicts derived by hand (length prefix, compact JSON, space padding,
//             offsets, data), the reference's tensor order (dtype, then name as UTF-8 bytes), JSON
//             escaping of names; these byte strings are what safetensors 0.8.0 (Python) writes
//             for the same dicts (checked side by side when this file was written, with a
//             45-tensor dict of every dtype and awkward names as well).
//   reader    headers written byte by byte: unpadded (length not a multiple of 8), no
//             "__metadata__", whitespace, fields and tensors in any order, unknown fields,
//             "__metadata__": null; round trips of every dtype (random bytes, exact), scalar and
//             zero-size shapes; readF32 of F32 / BF16 / F16 / F64 against values computed here,
//             every fp16 and bf16 bit pattern on every ISA path, chunked conversions.
//   errors    every bad file and bad write is a CheckpointError whose message starts with the
//             path and names the tensor.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  CheckpointError, dtypeBytes, f32ToBf16Bytes, SafetensorsFile, ST_DTYPES, writeSafetensors, type StDtype, type TensorToWrite,
} from '../../src/checkpoint/safetensors.js';
import { native } from '../../src/kernels/native.js';
import { rng } from '../helpers.js';
import { forEachIsa } from '../kernels/harness.js';

const dir = mkdtempSync(join(tmpdir(), 'litespark-safetensors-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const tmp = (tag: string): string => join(dir, `${files++}-${tag}.safetensors`);

const utf8 = (s: string): number[] => [...Buffer.from(s, 'utf8')];
/** u64 little-endian, byte by byte. */
const u64le = (n: number): number[] => Array.from({ length: 8 }, (_, i) => Math.floor(n / 2 ** (8 * i)) % 256);

/** A file written by hand: the 8-byte length (of the header, unless given), the header's UTF-8, the data. */
function rawFile(header: string | number[], data: number[] = [], len?: number): string {
  const h = typeof header === 'string' ? utf8(header) : header;
  const path = tmp('raw');
  writeFileSync(path, Uint8Array.from([...u64le(len ?? h.length), ...h, ...data]));
  return path;
}

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

const bytesOf = (v: ArrayBufferView): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function readAllBytes(f: SafetensorsFile, name: string): Uint8Array {
  const out = new Uint8Array(f.tensors.get(name)!.bytes);
  f.readBytes(name, out);
  return out;
}

function readAllF32(path: string, name: string): Float32Array {
  const f = SafetensorsFile.open(path);
  try {
    const out = new Float32Array(f.tensors.get(name)!.shape.reduce((a, b) => a * b, 1));
    f.readF32(name, out);
    return out;
  } finally {
    f.close();
  }
}

/** Asserts fn throws a CheckpointError whose message starts with `path: ` and contains every fragment. */
function assertBad(path: string, fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${String(e)}`);
    assert.ok(e.message.startsWith(`${path}: `), `message does not start with the path: ${e.message}`);
    for (const f of fragments) assert.ok(e.message.includes(f), `message lacks ${JSON.stringify(f)}: ${e.message}`);
    return true;
  });
}

const openBad = (path: string, ...fragments: string[]): void => assertBad(path, () => SafetensorsFile.open(path), ...fragments);

// ---- dtypes ----------------------------------------------------------------------------------

test('dtypeBytes and the dtype order of the reference enum', () => {
  assert.deepEqual([...ST_DTYPES], ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64']);
  assert.deepEqual(ST_DTYPES.map(dtypeBytes), [1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8]);
  assert.throws(() => dtypeBytes('F7' as StDtype), TypeError);
});

// ---- writer: bytes derived by hand -------------------------------------------------------------

test('writer: a small dict is the bytes the spec gives (order, JSON, padding, offsets, data)', () => {
  const path = tmp('hand');
  // Given out of order; the reference orders by dtype (F32 > BF16 > U8), then name.
  const out = writeSafetensors(path, [
    { name: 'layer.b', dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) },
    { name: 'bias', dtype: 'BF16', shape: [], data: Uint16Array.of(0x3f80) },
    { name: 'w', dtype: 'F32', shape: [2], data: Float32Array.of(1, -2) },
  ], { format: 'pt' });
  const header =
    '{"__metadata__":{"format":"pt"},' +
    '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"bias":{"dtype":"BF16","shape":[],"data_offsets":[8,10]},' +
    '"layer.b":{"dtype":"U8","shape":[3],"data_offsets":[10,13]}}';
  assert.equal(header.length, 202); // 202 = 25 * 8 + 2: six spaces pad it to 208
  const expected = Uint8Array.from([
    208, 0, 0, 0, 0, 0, 0, 0,
    ...utf8(header), 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, // w: 1.0f, -2.0f
    0x80, 0x3f, //                                     bias: bf16 1.0
    0x01, 0x02, 0x03, //                               layer.b
  ]);
  const got = readFileSync(path);
  assert.deepEqual([...got], [...expected]);
  assert.equal(out.bytes, 229);
  assert.equal(out.sha256, sha256(expected));
});

test('writer: empty dicts, with and without metadata', () => {
  const a = tmp('empty');
  writeSafetensors(a, []);
  assert.deepEqual([...readFileSync(a)], [8, 0, 0, 0, 0, 0, 0, 0, ...utf8('{}      ')]);
  const b = tmp('empty-meta');
  writeSafetensors(b, [], {});
  assert.deepEqual([...readFileSync(b)], [24, 0, 0, 0, 0, 0, 0, 0, ...utf8('{"__metadata__":{}}     ')]);
  const c = tmp('empty-meta-pt');
  writeSafetensors(c, [], { framework: 'pt' });
  assert.deepEqual([...readFileSync(c)], [40, 0, 0, 0, 0, 0, 0, 0, ...utf8('{"__metadata__":{"framework":"pt"}}     ')]);
  const f = SafetensorsFile.open(c);
  assert.deepEqual({ ...f.metadata }, { framework: 'pt' });
  assert.equal(f.tensors.size, 0);
  f.close();
});

test('writer: tensors ordered by dtype (descending enum order), then by name as UTF-8 bytes', () => {
  // One tensor per dtype, names in the opposite order of the dtypes.
  const byDtype: TensorToWrite[] = ST_DTYPES.map((dtype, i) => ({
    name: `t${String.fromCharCode(0x61 + 14 - i)}`, dtype, shape: [1], data: new Uint8Array(dtypeBytes(dtype)),
  }));
  // Same dtype: bytewise UTF-8 order, which differs from UTF-16 order for U+FFFD vs an astral character.
  const names = ['b', 'a', 'B', 'é', '\u{1F600}', '\uFFFD', ''];
  const byName: TensorToWrite[] = names.map((name) => ({ name, dtype: 'I8', shape: [], data: new Int8Array(1) }));
  const path = tmp('order');
  writeSafetensors(path, [...byName, ...byDtype]);
  const raw = readFileSync(path);
  const headerLen = Number(raw.readBigUInt64LE(0));
  const keys = Object.keys(JSON.parse(raw.subarray(8, 8 + headerLen).toString('utf8')));
  const dtypeOf = new Map([...byDtype, ...byName].map((t) => [t.name, t.dtype]));
  assert.deepEqual(keys.map((k) => dtypeOf.get(k)), [
    'U64', 'I64', 'F64', 'F32', 'U32', 'I32', 'BF16', 'F16', 'U16', 'I16', 'F8_E4M3', 'F8_E5M2',
    'I8', 'I8', 'I8', 'I8', 'I8', 'I8', 'I8', 'I8', 'U8', 'BOOL',
  ]);
  // I8 tensors: 'tm' (the I8 one of byDtype) sorts after '' 'B' 'a' 'b' and before 'é'.
  assert.deepEqual(keys.slice(12, 20), ['', 'B', 'a', 'b', 'tm', 'é', '\uFFFD', '\u{1F600}']);
  // The reader's map is in data order, which is the header order here.
  const f = SafetensorsFile.open(path);
  assert.deepEqual([...f.tensors.keys()], keys);
  f.close();
});

test('writer: names are JSON-escaped as the reference escapes them', () => {
  const path = tmp('escape');
  writeSafetensors(path, [{ name: 'a"b\\c\nd\u0001\u007f/é', dtype: 'U8', shape: [], data: Uint8Array.of(7) }]);
  const header = '{"a\\"b\\\\c\\nd\\u0001\u007f/é":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}';
  const h = utf8(header);
  const padded = Math.ceil(h.length / 8) * 8;
  assert.deepEqual([...readFileSync(path)], [...u64le(padded), ...h, ...Array(padded - h.length).fill(0x20), 7]);
  const f = SafetensorsFile.open(path);
  assert.deepEqual([...readAllBytes(f, 'a"b\\c\nd\u0001\u007f/é')], [7]);
  f.close();
});

// ---- round trips -----------------------------------------------------------------------------

test('round trip of every dtype (random bytes, exact), scalar and zero-size shapes, metadata', () => {
  const shapes = [[3, 5], [], [0], [2, 0, 3], [1, 1, 7]];
  const tensors: TensorToWrite[] = [];
  let seed = 1;
  for (const dtype of ST_DTYPES) {
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      const bytes = randomBytes(n * dtypeBytes(dtype), seed++);
      if (dtype === 'BOOL') bytes.forEach((b, i) => (bytes[i] = b & 1));
      tensors.push({ name: `${dtype.toLowerCase()}.${shape.join('x') || 'scalar'}`, dtype, shape, data: bytes });
    }
  }
  const metadata = { format: 'pt', note: 'é ✓ "quoted"\n', '': 'empty key' };
  const path = tmp('roundtrip');
  const out = writeSafetensors(path, tensors, metadata);
  const file = readFileSync(path);
  assert.equal(out.bytes, file.length);
  assert.equal(out.sha256, sha256(file));
  const headerLen = Number(file.readBigUInt64LE(0));
  assert.equal(headerLen % 8, 0, 'the data section starts 8-byte aligned');

  const f = SafetensorsFile.open(path);
  assert.equal(f.path, path);
  assert.deepEqual({ ...f.metadata }, metadata);
  assert.equal(f.tensors.size, tensors.length);
  let end = 8 + headerLen;
  for (const info of f.tensors.values()) {
    assert.equal(info.offset, end, `${info.name}: tensors tile the data section in map order`);
    end += info.bytes;
  }
  assert.equal(end, file.length);
  for (const t of tensors) {
    const info = f.tensors.get(t.name)!;
    assert.equal(info.name, t.name);
    assert.equal(info.dtype, t.dtype);
    assert.deepEqual(info.shape, t.shape);
    assert.equal(info.bytes, t.data.byteLength);
    assert.ok(bytesOf(t.data).equals(readAllBytes(f, t.name)), `${t.name}: bytes differ`);
    assert.ok(file.subarray(info.offset, info.offset + info.bytes).equals(bytesOf(t.data)), `${t.name}: offset`);
  }
  f.close();
});

test('writer: any ArrayBufferView as data, a view into a larger buffer included', () => {
  const big = new Float64Array([9, 1.5, -2.5, 9]);
  const path = tmp('views');
  writeSafetensors(path, [
    { name: 'mid', dtype: 'F64', shape: [2], data: big.subarray(1, 3) },
    { name: 'dv', dtype: 'I32', shape: [1], data: new DataView(Int32Array.of(-5).buffer) },
  ]);
  const f = SafetensorsFile.open(path);
  assert.deepEqual([...new Float64Array(readAllBytes(f, 'mid').buffer)], [1.5, -2.5]);
  assert.deepEqual([...new Int32Array(readAllBytes(f, 'dv').buffer)], [-5]);
  f.close();
});

// ---- hand-written headers ----------------------------------------------------------------------

test('reader: an unpadded header (length 54, not a multiple of 8) without __metadata__', () => {
  const header = '{"x":{"dtype":"I16","shape":[2],"data_offsets":[0,4]}}';
  assert.equal(header.length, 54);
  const path = rawFile(header, [0x01, 0x00, 0xff, 0xff]);
  const f = SafetensorsFile.open(path);
  assert.deepEqual({ ...f.metadata }, {});
  assert.deepEqual({ ...f.tensors.get('x') }, { name: 'x', dtype: 'I16', shape: [2], offset: 62, bytes: 4 });
  assert.deepEqual([...new Int16Array(readAllBytes(f, 'x').buffer)], [1, -1]);
  f.close();
});

test('reader: whitespace, fields and tensors in any order, unknown fields, __metadata__ last', () => {
  const header = [
    '{',
    '  "b": {"data_offsets": [8, 10], "shape": [], "dtype": "F16", "note": [1, {"x": null}, "s", true, -1.5e3]},',
    '  "a": {"shape": [2], "dtype": "F32", "data_offsets": [0, 8]},',
    '  "__metadata__": {"k": "v", "\\u00e9": "\\u00e9\\n\\ud83d\\ude00"}',
    '}\n\t  ',
  ].join('\n');
  const path = rawFile(header, [0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x80, 0xbe, 0x00, 0x3c]);
  const f = SafetensorsFile.open(path);
  assert.deepEqual({ ...f.metadata }, { k: 'v', é: 'é\n😀' });
  assert.deepEqual([...f.tensors.keys()], ['a', 'b'], 'data order');
  const off = 8 + utf8(header).length;
  assert.deepEqual({ ...f.tensors.get('b') }, { name: 'b', dtype: 'F16', shape: [], offset: off + 8, bytes: 2 });
  const a = new Float32Array(2);
  f.readF32('a', a);
  assert.deepEqual([...a], [1.5, -0.25]);
  const b = new Float32Array(1);
  f.readF32('b', b);
  assert.deepEqual([...b], [1]);
  f.close();
});

test('reader: "__metadata__": null, zero-size tensors at both ends, a header of length 1 mod 8', () => {
  const header =
    '{"__metadata__":null,"z0":{"dtype":"U64","shape":[0,4],"data_offsets":[0,0]},' +
    '"u":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"y":{"dtype":"BOOL","shape":[5,0],"data_offsets":[3,3]}}';
  assert.equal(utf8(header).length % 8, 1);
  const path = rawFile(header, [4, 5, 6]);
  const f = SafetensorsFile.open(path);
  assert.deepEqual({ ...f.metadata }, {});
  assert.deepEqual([...f.tensors.keys()], ['z0', 'u', 'y']);
  assert.deepEqual([...readAllBytes(f, 'u')], [4, 5, 6]);
  assert.equal(readAllBytes(f, 'y').length, 0);
  f.close();
});

// ---- readF32 -----------------------------------------------------------------------------------

/** A one-tensor file written by hand (padded like the writer, which the reader does not need). */
function oneTensor(dtype: StDtype, shape: number[], data: ArrayBufferView): string {
  const n = data.byteLength;
  return rawFile(`{"t":{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[0,${n}]}}`, [...bytesOf(data)]);
}

/** fp16 bits -> value, from the IEEE 754 definition. */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return m ? NaN : sign * Infinity;
  return e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
}

test('readF32: F32 exactly, and BF16 hand-picked values', () => {
  const f32 = Float32Array.of(0, -0, 1.5, -3.25e-40, Infinity, NaN, 3.4028234663852886e38);
  const got = readAllF32(oneTensor('F32', [7], f32), 't');
  assert.deepEqual([...new Uint32Array(got.buffer)], [...new Uint32Array(f32.buffer)]);

  const bf16 = Uint16Array.of(0x3f80, 0xc040, 0x0001, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x3eab);
  const want = [1, -3, 2 ** -133, -0, Infinity, -Infinity, NaN, 0.333984375];
  const b = readAllF32(oneTensor('BF16', [2, 4], bf16), 't');
  want.forEach((w, i) => assert.ok(Object.is(b[i], w), `bf16 ${bf16[i]!.toString(16)}: ${b[i]} != ${w}`));
});

test('readF32: F16 specials (subnormals, max, inf, nan, -0) by hand', () => {
  const cases: [number, number][] = [
    [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14], [0x3c00, 1], [0xc000, -2],
    [0x3555, 0.333251953125], [0x7bff, 65504], [0x7c00, Infinity], [0xfc00, -Infinity], [0x7e00, NaN],
    [0x7c01, NaN], [0x8000, -0], [0x0000, 0], [0x8001, -(2 ** -24)],
  ];
  const got = readAllF32(oneTensor('F16', [cases.length], Uint16Array.from(cases, (c) => c[0])), 't');
  cases.forEach(([h, w], i) => assert.ok(Object.is(got[i], w), `f16 0x${h.toString(16)}: ${got[i]} != ${w}`));
});

test('readF32: every fp16 and bf16 bit pattern on every ISA path, exact (NaNs quiet, payload kept)', () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const pf16 = oneTensor('F16', [65536], all);
  const pbf16 = oneTensor('BF16', [256, 256], all);
  forEachIsa((isa) => {
    const f = readAllF32(pf16, 't');
    const bits = new Uint32Array(f.buffer);
    for (let h = 0; h < 65536; h++) {
      const v = f16Value(h);
      if (Number.isNaN(v)) {
        const want = (((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13)) >>> 0;
        assert.equal(bits[h], want, `${isa}: f16 NaN 0x${h.toString(16)} -> 0x${bits[h]!.toString(16)}`);
      } else {
        assert.ok(Object.is(f[h], v), `${isa}: f16 0x${h.toString(16)} -> ${f[h]}, want ${v}`);
      }
    }
    const b = new Uint32Array(readAllF32(pbf16, 't').buffer);
    for (let h = 0; h < 65536; h++) assert.equal(b[h], (h << 16) >>> 0, `${isa}: bf16 0x${h.toString(16)}`);
  });
});

test('readF32: F64 narrowed with round to nearest even', () => {
  const v = [1 / 3, -0, 1e300, -1e300, 1e-50, 2 ** -149, 1.5 * 2 ** -150, 2 ** -150, NaN, 16777217, 16777219, 65504.123];
  const want = [Math.fround(1 / 3), -0, Infinity, -Infinity, 0, 2 ** -149, 2 ** -149, 0, NaN, 16777216, 16777220, Math.fround(65504.123)];
  const got = readAllF32(oneTensor('F64', [v.length], Float64Array.from(v)), 't');
  want.forEach((w, i) => assert.ok(Object.is(got[i], w), `f64 ${v[i]}: ${got[i]} != ${w}`));
});

test('readF32: tensors longer than the conversion chunk (2M + 123 elements) in BF16, F16 and F64', () => {
  const n = 2 * (1 << 20) + 123;
  const r = rng(5);
  const h = Uint16Array.from({ length: n }, () => Math.floor(r() * 65536) & 0x7bff); // finite, both signs of exponent
  const f16 = readAllF32(oneTensor('F16', [n], h), 't');
  const bf16 = new Uint32Array(readAllF32(oneTensor('BF16', [n], h), 't').buffer);
  const d = Float64Array.from({ length: n }, () => (r() - 0.5) * 1e6);
  const f64 = readAllF32(oneTensor('F64', [n], d), 't');
  for (let i = 0; i < n; i++) {
    if (f16[i] !== f16Value(h[i]!)) assert.fail(`f16 element ${i}: ${f16[i]} != ${f16Value(h[i]!)}`);
    if (bf16[i] !== (h[i]! << 16) >>> 0) assert.fail(`bf16 element ${i}`);
    if (f64[i] !== Math.fround(d[i]!)) assert.fail(`f64 element ${i}: ${f64[i]} != ${Math.fround(d[i]!)}`);
  }
});

test('readF32 of another dtype is an error naming file, tensor and dtype', () => {
  const path = oneTensor('I32', [2], Int32Array.of(1, 2));
  const f = SafetensorsFile.open(path);
  assertBad(path, () => f.readF32('t', new Float32Array(2)), 'tensor "t"', 'I32');
  f.close();
});

test('a few million floats written and read back (F32 exact, BF16 through f32ToBf16Bytes)', () => {
  const n = 3_000_007;
  const x = new Float32Array(n);
  native.randn(x, n, 11, 0, 1);
  const bits = f32ToBf16Bytes(x);
  const path = tmp('big');
  const out = writeSafetensors(path, [
    { name: 'w', dtype: 'F32', shape: [1000, 3000], data: x.subarray(0, 3_000_000) },
    { name: 'tail', dtype: 'F32', shape: [7], data: x.subarray(3_000_000) },
    { name: 'w16', dtype: 'BF16', shape: [n], data: bits },
  ]);
  assert.equal(out.sha256, sha256(readFileSync(path)));
  const f = SafetensorsFile.open(path);
  const w = new Float32Array(3_000_000);
  f.readF32('w', w);
  assert.ok(bytesOf(w).equals(bytesOf(x.subarray(0, 3_000_000))));
  const b = new Uint32Array(n);
  f.readF32('w16', new Float32Array(b.buffer));
  for (let i = 0; i < n; i++) if (b[i] !== (bits[i]! << 16) >>> 0) assert.fail(`bf16 element ${i}`);
  f.close();
});

test('f32ToBf16Bytes rounds to nearest even', () => {
  const x = Float32Array.of(1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -2, Infinity, 3.3895313892515355e38);
  assert.deepEqual([...f32ToBf16Bytes(x)], [0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xc000, 0x7f80, 0x7f7f]);
});

// ---- bad files -------------------------------------------------------------------------------

const E = (name: string, dtype: string, shape: string, offs: string): string =>
  `"${name}":{"dtype":"${dtype}","shape":${shape},"data_offsets":${offs}}`;

test('bad files: length prefix and header', () => {
  const short = tmp('short');
  writeFileSync(short, Uint8Array.of(1, 2, 3, 4, 5));
  openBad(short, 'is 5 bytes, shorter than the 8-byte header length');
  openBad(rawFile('{}', [], 1000), 'header length 1000 runs past the end of the file (10 bytes)');
  openBad(rawFile('{}', [], 100_000_001), 'header length 100000001 exceeds the 100000000-byte limit');
  openBad(rawFile('{}', [], 100_000_000), 'header length 100000000 runs past the end'); // at the limit: only too long
  openBad(rawFile([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'the header is not valid UTF-8');
  openBad(rawFile('{"w":'), 'the header is not valid JSON');
  openBad(rawFile('{} x'), 'the header is not valid JSON: trailing characters');
  openBad(rawFile('{}\0\0'), 'the header is not valid JSON'); // NUL is not JSON whitespace
  openBad(rawFile('\uFEFF{}'), 'the header is not valid JSON'); // nor is a byte order mark
  openBad(rawFile('[]'), 'the header is not a JSON object');
  openBad(rawFile(''), 'the header is not valid JSON: unexpected end');
  const missing = join(dir, 'no-such-file.safetensors');
  openBad(missing, 'cannot open');
});

test('bad files: tensor entries', () => {
  const w = (entry: string, data: number[] = [0, 0, 0, 0]): string => rawFile(`{"w":${entry}}`, data);
  openBad(w('5'), 'tensor "w": entry is a number (5), not an object');
  openBad(w('{"shape":[1],"data_offsets":[0,4]}'), 'tensor "w": missing "dtype"');
  openBad(w('{"dtype":"F32","data_offsets":[0,4]}'), 'tensor "w": missing "shape"');
  openBad(w('{"dtype":"F32","shape":[1]}'), 'tensor "w": missing "data_offsets"');
  openBad(w('{"dtype":"F7","shape":[1],"data_offsets":[0,4]}'), 'tensor "w": unknown dtype "F7"');
  openBad(w('{"dtype":"f32","shape":[1],"data_offsets":[0,4]}'), 'tensor "w": unknown dtype "f32"');
  openBad(w('{"dtype":"C64","shape":[1],"data_offsets":[0,8]}', Array(8).fill(0)), 'tensor "w": unsupported dtype "C64"');
  openBad(w('{"dtype":7,"shape":[1],"data_offsets":[0,4]}'), 'tensor "w": dtype is a number (7), not a string');
  for (const shape of ['[-1]', '[2.5]', '[1.0]', '[1e0]', '["1"]', '[-0]', '4', '[9007199254740992]']) {
    openBad(w(`{"dtype":"F32","shape":${shape},"data_offsets":[0,4]}`), 'tensor "w": shape');
  }
  openBad(w('{"dtype":"F32","shape":[1099511627776,1099511627776,0],"data_offsets":[0,0]}', []), 'tensor "w": shape', '2^53');
  for (const offs of ['[0]', '[0,4,4]', '[-1,4]', '[0,4.0]', '"0,4"']) {
    openBad(w(`{"dtype":"F32","shape":[1],"data_offsets":${offs}}`), 'tensor "w": data_offsets');
  }
  openBad(w('{"dtype":"F32","shape":[2],"data_offsets":[0,4]}'), 'tensor "w": data_offsets [0, 4] hold 4 bytes, shape [2] of F32 needs 8');
  openBad(w('{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}'), 'tensor "w"', 'shape [3] of BF16 needs 6');
});

test('bad files: truncated, trailing bytes, holes, overlaps', () => {
  const trunc = rawFile(`{${E('a', 'U8', '[2]', '[0,2]')},${E('w', 'F32', '[4]', '[2,18]')}}`, Array(12).fill(1));
  assertBad(trunc, () => SafetensorsFile.open(trunc));
  assert.throws(() => SafetensorsFile.open(trunc), {
    name: 'CheckpointError',
    message: `${trunc}: truncated: tensor "w" needs bytes [2, 18) of the data section, the file has 12`,
  });
  openBad(rawFile(`{${E('w', 'F32', '[1]', '[0,4]')}}`, [0, 0, 0, 0, 9]), '1 trailing bytes after the data section');
  openBad(rawFile(`{${E('a', 'F32', '[1]', '[0,4]')},${E('b', 'F32', '[1]', '[4,8]')}}`, Array(9).fill(0)), 'trailing bytes');
  openBad(rawFile(`{${E('a', 'F32', '[2]', '[0,8]')},${E('b', 'F32', '[2]', '[4,12]')}}`, Array(12).fill(0)),
    'tensor "b": data_offsets [4, 12] overlap tensor "a", which ends at 8');
  openBad(rawFile(`{${E('a', 'F32', '[1]', '[0,4]')},${E('b', 'F32', '[1]', '[8,12]')}}`, Array(12).fill(0)),
    'tensor "b": data_offsets [8, 12] leave a hole: bytes [4, 8) of the data section belong to no tensor');
  openBad(rawFile(`{${E('a', 'F32', '[1]', '[4,8]')}}`, Array(8).fill(0)), 'tensor "a"', 'leave a hole: bytes [0, 4)');
  openBad(rawFile(`{${E('a', 'F32', '[1]', '[0,4]')},${E('z', 'F32', '[0]', '[8,8]')}}`, Array(4).fill(0)), 'tensor "z"', 'hole');
  openBad(rawFile(`{${E('a', 'F32', '[1]', '[8,4]')}}`, Array(8).fill(0)), 'tensor "a": data_offsets [8, 4] end before they begin');
  openBad(rawFile(`{${E('a', 'F32', '[1]', '[0,4]')},${E('b', 'F32', '[1]', '[0,4]')}}`, Array(8).fill(0)), 'tensor "b"', 'overlap tensor "a"');
});

test('bad files: duplicate names and keys, __metadata__ misuse', () => {
  const e = E('w', 'F32', '[1]', '[0,4]');
  openBad(rawFile(`{${e},${e}}`, [0, 0, 0, 0]), 'tensor "w" appears twice in the header');
  openBad(rawFile(`{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, [0, 0, 0, 0]), 'tensor "w": field "dtype" appears twice');
  openBad(rawFile(`{"__metadata__":{"a":"1","a":"2"},${e}}`, [0, 0, 0, 0]), '"__metadata__": key "a" appears twice');
  openBad(rawFile(`{"__metadata__":{},"__metadata__":{},${e}}`, [0, 0, 0, 0]), '"__metadata__" appears twice');
  openBad(rawFile(`{"__metadata__":{"a":1},${e}}`, [0, 0, 0, 0]), '"__metadata__" "a": value is a number (1), not a string');
  openBad(rawFile(`{"__metadata__":["a"],${e}}`, [0, 0, 0, 0]), '"__metadata__" is not an object of strings');
  openBad(rawFile(`{${E('__metadata__', 'F32', '[1]', '[0,4]')}}`, [0, 0, 0, 0]), 'a tensor cannot be named "__metadata__"');
});

test('bad reads: unknown tensor, wrong output size, closed file', () => {
  const path = oneTensor('F32', [2], Float32Array.of(1, 2));
  const f = SafetensorsFile.open(path);
  assertBad(path, () => f.readBytes('nope', new Uint8Array(8)), 'no tensor "nope"');
  assertBad(path, () => f.readBytes('t', new Uint8Array(7)), 'tensor "t" has 8 bytes', 'holds 7');
  assertBad(path, () => f.readF32('t', new Float32Array(3)), 'tensor "t" has 2 elements', 'holds 3');
  f.close();
  assert.throws(() => f.readBytes('t', new Uint8Array(8)), /closed/);
});

// ---- bad writes ------------------------------------------------------------------------------

test('bad writes: each a CheckpointError naming file and tensor, and no file is left', () => {
  const ok: TensorToWrite = { name: 'ok', dtype: 'F32', shape: [1], data: new Float32Array(1) };
  const cases: [TensorToWrite[], Record<string, string> | undefined, string[]][] = [
    [[{ name: 'w', dtype: 'F32', shape: [2, 3], data: new Float32Array(5) }], undefined,
      ['tensor "w": data has 20 bytes, shape [2, 3] of F32 needs 24']],
    [[{ name: 'w', dtype: 'BF16', shape: [2], data: new Float32Array(2) }], undefined, ['tensor "w"', 'needs 4']],
    [[ok, { ...ok }], undefined, ['tensor "ok": duplicate name']],
    [[{ ...ok, name: '__metadata__' }], undefined, ['tensor "__metadata__"', 'reserved']],
    [[{ ...ok, dtype: 'F7' as StDtype }], undefined, ['tensor "ok": unknown dtype "F7"']],
    [[{ ...ok, shape: [-1] }], undefined, ['tensor "ok"', 'shape']],
    [[{ ...ok, shape: [0.5] }], undefined, ['tensor "ok"', 'shape']],
    [[{ ...ok, name: 'x\uD800' }], undefined, ['lone surrogate']],
    [[{ ...ok, data: [0, 0, 0, 0] as unknown as ArrayBufferView }], undefined, ['tensor "ok": data is not an ArrayBufferView']],
    [[ok], { a: 1 } as unknown as Record<string, string>, ['metadata "a": value is number, not a string']],
    [[ok], { a: null } as unknown as Record<string, string>, ['metadata "a": value is null, not a string']],
  ];
  for (const [tensors, metadata, fragments] of cases) {
    const path = tmp('badwrite');
    assertBad(path, () => writeSafetensors(path, tensors, metadata), ...fragments);
    assert.ok(!existsSync(path), `${fragments[0]}: a file was left`);
  }
});
