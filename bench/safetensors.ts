// safetensors write and read throughput (src/checkpoint/safetensors.ts).
//
//   npx tsc -p . && node dist/bench/safetensors.js [--mfloats 16] [--reps 5] [--dir DIR]
//
// One tensor of --mfloats million elements per dtype (F32, BF16, F16, F64), in a temp dir (or
// --dir). Per dtype, the median of --reps runs of:
//   - write: writeSafetensors (header, streamed data, sha256 while writing, fsync): MB/s of file;
//   - readBytes: the raw bytes into a Uint8Array (positional reads);
//   - readF32: converted to float32 (F32 read in place, BF16/F16 native casts, F64 typed-array
//     narrowing), MB/s of file bytes and M elements/s;
//   - for BF16 and F16, the same conversion as a per-element JavaScript loop over the raw bytes,
//     for scale (what readF32 avoids).
// The file was just written, so reads come from the page cache; a cold disk is slower, and
// write speed is mostly the disk's (fsync).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors, type StDtype } from '../src/checkpoint/safetensors.js';
import { native } from '../src/kernels/native.js';
import { arg, cpuModel, median } from './common.js';

const n = Math.round(Number(arg('mfloats') ?? 16) * 1e6);
const reps = Number(arg('reps') ?? 5);
const dir = arg('dir') ?? mkdtempSync(join(tmpdir(), 'litespark-st-'));

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function f16ToF32Js(h: number): number {
  const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1;
  if (e === 31) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

// Random payloads that are finite in every dtype.
const src = new Float32Array(n);
native.randn(src, n, 7, 0, 1);
const payload: Record<string, ArrayBufferView> = {
  F32: src,
  BF16: (() => { const b = new Uint16Array(n); native.castToBf16(b, src, n); return b; })(),
  F16: (() => { const b = new Uint16Array(n); for (let i = 0; i < n; i++) b[i] = 0x3c00 | (i & 0x3ff); return b; })(),
  F64: Float64Array.from(src),
};

console.log(`safetensors bench: ${(n / 1e6).toFixed(1)}M elements per tensor, median of ${reps}, ${cpuModel()}, ` +
  `${native.getThreads()} threads, ISA ${native.isa()}, dir ${dir}`);
console.log('dtype  file MB   write MB/s  readBytes MB/s  readF32 MB/s  readF32 Melem/s  JS-loop Melem/s');
try {
  for (const dtype of ['F32', 'BF16', 'F16', 'F64'] as StDtype[]) {
    const path = join(dir, `${dtype}.safetensors`);
    const data = payload[dtype]!;
    let fileBytes = 0;
    const w = median(Array.from({ length: reps }, () => time(() => {
      fileBytes = writeSafetensors(path, [{ name: 'w', dtype, shape: [n], data }]).bytes;
    })));
    const f = SafetensorsFile.open(path);
    const raw = new Uint8Array(f.tensors.get('w')!.bytes);
    const out = new Float32Array(n);
    const rb = median(Array.from({ length: reps }, () => time(() => f.readBytes('w', raw))));
    const rf = median(Array.from({ length: reps }, () => time(() => f.readF32('w', out))));
    let js = '';
    if (dtype === 'BF16' || dtype === 'F16') {
      const u16 = new Uint16Array(raw.buffer);
      const u32 = new Uint32Array(out.buffer);
      const t = median(Array.from({ length: reps }, () => time(() => {
        f.readBytes('w', raw);
        if (dtype === 'BF16') for (let i = 0; i < n; i++) u32[i] = u16[i]! << 16;
        else for (let i = 0; i < n; i++) out[i] = f16ToF32Js(u16[i]!);
      })));
      js = (n / t / 1e6).toFixed(0);
    }
    f.close();
    const mb = fileBytes / 1e6;
    console.log(`${dtype.padEnd(5)}  ${mb.toFixed(1).padStart(7)}  ${(mb / w).toFixed(0).padStart(10)}  ` +
      `${(mb / rb).toFixed(0).padStart(14)}  ${(mb / rf).toFixed(0).padStart(12)}  ${(n / rf / 1e6).toFixed(0).padStart(15)}  ${js.padStart(15)}`);
  }
} finally {
  if (!arg('dir')) rmSync(dir, { recursive: true, force: true });
}
