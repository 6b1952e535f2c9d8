// Memory bandwidth (the STREAM triad of native/src/kernels/bandwidth.cc, cached with the FLOP
// peaks) and the addon's NVML entry points. No figure is asserted beyond being positive (BENCH.md).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { openNvmlMeter } from '../../src/metrics/energy.js';
import { bandwidthArrayBytes, getBandwidth } from '../../src/metrics/peak.js';

const dir = mkdtempSync(join(tmpdir(), 'litespark-bandwidth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('triad GB/s is positive on 1 and 2 threads; tiny arrays and bad arguments are refused or clamped', () => {
  for (const t of [1, 2]) {
    const g = native.memoryBandwidth(t, 0.01, 8 * 2 ** 20);
    assert.ok(Number.isFinite(g) && g > 0, `${t} threads: ${g}`);
  }
  assert.throws(() => native.memoryBandwidth(0, 0.01, 2 ** 20), /threads: must be >= 1/);
  assert.throws(() => native.memoryBandwidth(1, 0.01, 100), /bytesPerArray: must be >= 8192/);
});

test('array size: 4x the last-level cache within 64 MiB .. 512 MiB', () => {
  const MiB = 2 ** 20;
  assert.equal(bandwidthArrayBytes(0), 64 * MiB);
  assert.equal(bandwidthArrayBytes(32 * MiB), 128 * MiB);
  assert.equal(bandwidthArrayBytes(480 * MiB), 512 * MiB);
  assert.ok(native.lastLevelCacheBytes() >= 0);
});

test('getBandwidth measures once, then reads the cache shared with the FLOP peaks', () => {
  const a = getBandwidth({ threads: 1, cacheDir: dir, seconds: 0.01 });
  assert.equal(a.cached, false);
  assert.ok(a.gbps > 0 && a.bytesPerArray >= 64 * 2 ** 20);
  const b = getBandwidth({ threads: 1, cacheDir: dir });
  assert.equal(b.cached, true);
  assert.equal(b.gbps, a.gbps);
  const cache = JSON.parse(readFileSync(join(dir, 'peak.json'), 'utf8'));
  const keys = Object.keys(cache.entries).filter((k) => k.endsWith('| bandwidth triad | 1T'));
  assert.equal(keys.length, 1);
  // an explicit array size measures and leaves the cache alone
  const c = getBandwidth({ threads: 1, cacheDir: dir, seconds: 0.01, bytesPerArray: 4 * 2 ** 20 });
  assert.equal(c.cached, false);
  assert.equal(getBandwidth({ threads: 1, cacheDir: dir }).gbps, a.gbps);
});

test('NVML through the addon: either GPUs that report energy, or a reason', () => {
  const why = native.nvmlOpen();
  if (why === '') {
    assert.ok(native.nvmlDevices().length > 0);
    const m = openNvmlMeter();
    assert.equal(m.kind, 'measured');
    assert.ok(m.read() >= 0);
  } else {
    assert.deepEqual(native.nvmlDevices(), []);
    assert.throws(() => native.nvmlEnergyMj(), /NVML unavailable/);
    assert.throws(() => openNvmlMeter(), (e: Error) => e.message === why);
  }
});
