// recheckPeaks (src/bench/run.ts): a bench row at 100% MFU or more means the peak it was divided
// by was measured while other work held the cores; the run measures that peak again and rescales
// the dtype's rows to it, or leaves them as measured when no higher peak is found.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recheckPeaks, type BenchMachine } from '../../src/bench/run.js';
import type { KernelRow, StepRow } from '../../src/bench/spec.js';

function machine(peak: number): BenchMachine {
  return {
    cpu: 'test', cores: 2, threads: 2, isa: 'avx2', available_isas: ['avx2'], amx: false, avx512_bf16: false,
    peak_gflops: peak, peak_measured_at: '2020-01-01T00:00:00.000Z', peak_cached: true, bf16_unit: null, bf16_peak_gflops: null,
    date: '', commit: null, dirty: null, node: '', platform: '', loadavg_1m: 0,
    energy_meter: { kind: 'none' } as unknown as BenchMachine['energy_meter'], energy: '', peak_notes: [],
  };
}
const step = (mfu: number): StepRow => ({ kind: 'step', config: 'XS', kernels: 'litespark', dtype: 'fp32', mfu, peak_gflops: 0 }) as unknown as StepRow;
const gemm = (gflops: number, peak: number): KernelRow =>
  ({ kind: 'kernel', config: 'XS', op: 'q_proj fwd', dtype: 'fp32', gflops, peak_fraction: gflops / peak }) as unknown as KernelRow;

test('recheckPeaks: a row past 100% MFU gets its dtype peak measured again, the rows rescaled, the cache rewritten', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'litespark-peak-'));
  const m = machine(1); // 1 GFLOP/s: far below any real CPU
  const s = step(40), k = gemm(30, 1), below = step(0.5);
  const notes = recheckPeaks(m, [s, k, below], dir);
  assert.equal(notes.length, 1);
  assert.deepEqual(m.peak_notes, notes);
  assert.match(notes[0]!, /fp32 peak 1\.0 GFLOP\/s was below what 2 row\(s\) reached/);
  const fresh = m.peak_gflops!;
  assert.ok(fresh > 1, `re-measured peak ${fresh}`);
  assert.equal(m.peak_cached, false);
  assert.ok(Math.abs(s.mfu! - 40 / fresh) < 1e-12 && s.peak_gflops === fresh, `step row mfu ${s.mfu}`);
  assert.ok(Math.abs(below.mfu! - 0.5 / fresh) < 1e-12, 'every row of the dtype takes the new peak');
  assert.ok(Math.abs(k.peak_fraction! - 30 / fresh) < 1e-12, `kernel row ${k.peak_fraction}`);
  const cache = JSON.parse(readFileSync(join(dir, 'peak.json'), 'utf8')) as { entries: Record<string, { gflops: number }> };
  assert.ok(Object.values(cache.entries).some((e) => e.gflops === fresh), 'the cache holds the new peak');
});

test('recheckPeaks: rows under 100% leave the peak alone; a re-measured peak no higher leaves the rows as measured', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'litespark-peak-'));
  const m = machine(100);
  const s = step(0.99);
  assert.deepEqual(recheckPeaks(m, [s], dir), []);
  assert.equal(m.peak_gflops, 100);
  assert.equal(s.mfu, 0.99);
  assert.equal(existsSync(join(dir, 'peak.json')), false, 'nothing measured');

  const high = machine(1e9); // above any real CPU: the re-measurement cannot beat it
  const t = step(1.05);
  const notes = recheckPeaks(high, [t], dir);
  assert.equal(notes.length, 1);
  assert.match(notes[0]!, /no higher, so the rows stand as measured/);
  assert.equal(high.peak_gflops, 1e9);
  assert.equal(t.mfu, 1.05);
});
