// Energy meters: RAPL against a fake powercap tree this test writes (package + dram, a counter
// wrap, an unreadable zone), NVML through a fake binding, the estimates with their arithmetic,
// and the selection order with its reason strings.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  CPU_TDP_TABLE,
  DEFAULT_WATTS_PER_CORE,
  MeterUnavailable,
  cpuTimeMeter,
  describeMeter,
  energySource,
  energyTotals,
  estimateJoules,
  openEnergyMeter,
  openNvmlMeter,
  openRaplMeter,
  wattsMeter,
  wattsPerCore,
  type FileReader,
} from '../../src/metrics/energy.js';

const dir = mkdtempSync(join(tmpdir(), 'litespark-energy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let trees = 0;
/** A powercap tree as /sys/class/powercap lists it: flat zone directories. */
function fakeTree(zones: Record<string, { name: string; energy: number | 'dir'; max?: number }>): string {
  const root = join(dir, `powercap-${trees++}`);
  mkdirSync(root);
  mkdirSync(join(root, 'intel-rapl')); // the control type directory: not a zone
  for (const [id, z] of Object.entries(zones)) {
    const d = join(root, id);
    mkdirSync(d);
    writeFileSync(join(d, 'name'), z.name + '\n');
    writeFileSync(join(d, 'max_energy_range_uj'), `${z.max ?? 262143328850}\n`);
    // A directory where the counter should be: reading it fails whatever our uid (tests may run as root).
    if (z.energy === 'dir') mkdirSync(join(d, 'energy_uj'));
    else writeFileSync(join(d, 'energy_uj'), `${z.energy}\n`);
  }
  return root;
}
const setEnergy = (root: string, id: string, uj: number) => writeFileSync(join(root, id, 'energy_uj'), `${uj}\n`);

describe('RAPL', () => {
  test('package + dram summed; core and psys left out; joules since open', () => {
    const root = fakeTree({
      'intel-rapl:0': { name: 'package-0', energy: 1_000_000 },
      'intel-rapl:0:0': { name: 'core', energy: 500_000 },
      'intel-rapl:0:1': { name: 'dram', energy: 2_000_000 },
      'intel-rapl:1': { name: 'psys', energy: 7_000_000 },
    });
    const m = openRaplMeter(root);
    assert.equal(m.kind, 'measured');
    assert.equal(m.source, 'RAPL package-0 + dram');
    assert.equal(m.read(), 0);
    setEnergy(root, 'intel-rapl:0', 4_000_000); // +3 J
    setEnergy(root, 'intel-rapl:0:0', 9_000_000); // core: inside the package figure, not added
    setEnergy(root, 'intel-rapl:0:1', 2_500_000); // +0.5 J
    setEnergy(root, 'intel-rapl:1', 99_000_000); // psys: not added
    assert.equal(m.read(), 3.5);
    assert.equal(energySource(m), 'measured: RAPL package-0 + dram');
  });

  test('two packages, and a counter that wraps between reads adds max_energy_range_uj', () => {
    const root = fakeTree({
      'intel-rapl:0': { name: 'package-0', energy: 9_000_000, max: 10_000_000 },
      'intel-rapl:1': { name: 'package-1', energy: 100 },
      'intel-rapl:0:0': { name: 'dram', energy: 0 },
      'intel-rapl:1:0': { name: 'dram', energy: 0 },
    });
    const m = openRaplMeter(root);
    assert.equal(m.source, 'RAPL package-0 + package-1 + dram x2');
    setEnergy(root, 'intel-rapl:0', 9_500_000); // +0.5 J
    assert.equal(m.read(), 0.5);
    setEnergy(root, 'intel-rapl:0', 1_000_000); // wrapped: 10e6 - 9.5e6 + 1e6 = 1.5 J more
    setEnergy(root, 'intel-rapl:1', 1_000_100); // +1 J
    assert.equal(m.read(), 3);
    const before = m.read();
    assert.ok(m.read() >= before, 'monotonic');
  });

  test('no powercap directory, no zones: unavailable with the reason', () => {
    assert.throws(() => openRaplMeter(join(dir, 'absent')), (e: Error) => e instanceof MeterUnavailable && /no powercap interface .*ENOENT/.test(e.message));
    const empty = fakeTree({});
    assert.throws(() => openRaplMeter(empty), /no RAPL package zones under/);
  });

  test('an unreadable zone (a directory where the counter should be) makes RAPL unavailable', () => {
    const root = fakeTree({ 'intel-rapl:0': { name: 'package-0', energy: 'dir' } });
    assert.throws(() => openRaplMeter(root), (e: Error) => e instanceof MeterUnavailable && /cannot read .*energy_uj: EISDIR/.test(e.message));
  });

  test('permission denied (root-only energy_uj) says how to grant access', () => {
    const root = fakeTree({ 'intel-rapl:0': { name: 'package-0', energy: 5 } });
    const denied: FileReader = (p) => {
      if (p.endsWith('energy_uj')) throw Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: 'EACCES' });
      return `${p.endsWith('name') ? 'package-0' : '100'}\n`;
    };
    assert.throws(() => openRaplMeter(root, denied), (e: Error) =>
      e instanceof MeterUnavailable && e.message.includes(`permission denied on ${join(root, 'intel-rapl:0', 'energy_uj')}`) &&
      /run as root/.test(e.message) && /chmod a\+r/.test(e.message));
  });
});

describe('NVML', () => {
  test('summed over devices, mJ -> J since open', () => {
    let mj = 5000;
    const m = openNvmlMeter({ nvmlOpen: () => '', nvmlDevices: () => ['NVIDIA H100', 'NVIDIA H100'], nvmlEnergyMj: () => mj });
    assert.equal(m.kind, 'measured');
    assert.equal(m.source, 'NVML total energy, 2 x NVIDIA H100');
    mj += 2500;
    assert.equal(m.read(), 2.5);
  });

  test('library or GPU absent, or an addon without NVML: unavailable with the reason', () => {
    assert.throws(() => openNvmlMeter({ nvmlOpen: () => 'libnvidia-ml.so.1 not found', nvmlDevices: () => [], nvmlEnergyMj: () => 0 }),
      /libnvidia-ml\.so\.1 not found/);
    assert.throws(() => openNvmlMeter({}), /built without NVML support/);
  });
});

describe('estimates', () => {
  test('per-core model: TDP / cores x process CPU time, labelled estimated', () => {
    const w = wattsPerCore('Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz');
    assert.equal(w.watts, 270 / 40);
    assert.match(w.basis, /TDP 270 W \/ 40 cores, Intel ARK/);
    let cpu = 10;
    const m = cpuTimeMeter(w.watts, w.basis, () => cpu);
    assert.equal(m.kind, 'estimated');
    assert.equal(m.source, '6.75 W per core (TDP 270 W / 40 cores, Intel ARK, Xeon Platinum 8380) x process CPU time');
    cpu += 4; // 2 threads busy for 2 s
    assert.equal(m.read(), 6.75 * 4);
    assert.match(energySource(m), /^estimated: 6.75 W per core /);
  });

  test('an unknown CPU gets the default per-core figure, stated as an assumption', () => {
    const w = wattsPerCore('Intel(R) Xeon(R) Processor');
    assert.equal(w.watts, DEFAULT_WATTS_PER_CORE);
    assert.equal(w.basis, "assumed: CPU 'Intel(R) Xeon(R) Processor' is not in the TDP table");
    for (const e of CPU_TDP_TABLE) assert.ok(e.tdpWatts > 0 && e.cores > 0 && e.ref.length > 0, e.match);
  });

  test('--watts: W x wall time', () => {
    let t = 100;
    const m = wattsMeter(250, () => t);
    t += 3;
    assert.equal(m.read(), 750);
    assert.equal(m.source, '250 W (given by the user) x wall time');
    assert.throws(() => wattsMeter(0), RangeError);
  });

  test('estimateJoules applies a spec to a window another process reports', () => {
    assert.equal(estimateJoules({ type: 'cpu-time', wattsPerCore: 8, basis: 'x' }, { cpuSeconds: 3, wallSeconds: 2 }), 24);
    assert.equal(estimateJoules({ type: 'watts', watts: 100 }, { cpuSeconds: 3, wallSeconds: 2 }), 200);
    assert.equal(estimateJoules({ type: 'nvml' }, { cpuSeconds: 3, wallSeconds: 2 }), null);
  });

  test('kWh and CO2e', () => {
    const t = energyTotals(7.2e6, 480);
    assert.equal(t.kwh, 2);
    assert.equal(t.co2eGrams, 960);
  });
});

describe('selection', () => {
  const noGpu = { nvmlOpen: () => 'libnvidia-ml.so.1 not found', nvmlDevices: () => [], nvmlEnergyMj: () => 0 };
  const gpu = { nvmlOpen: () => '', nvmlDevices: () => ['NVIDIA H200'], nvmlEnergyMj: () => 0 };

  test('RAPL first when readable', () => {
    const root = fakeTree({ 'intel-rapl:0': { name: 'package-0', energy: 1 } });
    const o = openEnergyMeter({ powercapRoot: root, nvml: gpu, watts: 300 });
    assert.equal(o.meter.name, 'rapl');
    assert.deepEqual(o.spec, { type: 'rapl', root });
    assert.deepEqual(o.unavailable, [{ name: '--watts', reason: 'not used: a hardware counter is readable' }]);
  });

  test('then NVML, then --watts, then the per-core model; each skipped meter with its reason', () => {
    const absent = join(dir, 'no-powercap');
    const n = openEnergyMeter({ powercapRoot: absent, nvml: gpu });
    assert.equal(n.meter.name, 'nvml');
    assert.deepEqual(n.unavailable.map((u) => u.name), ['RAPL']);
    assert.match(n.unavailable[0]!.reason, /^no powercap interface/);

    const w = openEnergyMeter({ powercapRoot: absent, nvml: noGpu, watts: 120 });
    assert.equal(w.meter.name, 'watts');
    assert.deepEqual(w.spec, { type: 'watts', watts: 120 });
    assert.deepEqual(w.unavailable.map((u) => u.name), ['RAPL', 'NVML']);

    const c = openEnergyMeter({ powercapRoot: absent, nvml: noGpu, cpu: 'AMD EPYC 9654 96-Core Processor' });
    assert.equal(c.meter.name, 'cpu-time');
    assert.equal(c.meter.kind, 'estimated');
    assert.deepEqual(c.spec, { type: 'cpu-time', wattsPerCore: 3.75, basis: 'TDP 360 W / 96 cores, AMD product page, EPYC 9654' });
    assert.equal(
      describeMeter(c),
      'estimated: 3.75 W per core (TDP 360 W / 96 cores, AMD product page, EPYC 9654) x process CPU time; ' +
        `RAPL unavailable (no powercap interface (${absent}: ENOENT)); NVML unavailable (libnvidia-ml.so.1 not found)`,
    );
  });

  test('a RAPL tree with a denied counter falls through to the estimate and says why', () => {
    const root = fakeTree({ 'intel-rapl:0': { name: 'package-0', energy: 'dir' } });
    const o = openEnergyMeter({ powercapRoot: root, nvml: noGpu, cpu: 'x' });
    assert.equal(o.meter.name, 'cpu-time');
    assert.match(o.unavailable[0]!.reason, /cannot read .*energy_uj/);
  });

  test('on this machine a meter always opens, labelled', () => {
    const o = openEnergyMeter();
    assert.ok(['measured', 'estimated'].includes(o.meter.kind));
    const a = o.meter.read();
    let x = 0;
    for (let i = 0; i < 2e6; i++) x += Math.sqrt(i);
    assert.ok(x > 0 && o.meter.read() >= a);
  });
});
