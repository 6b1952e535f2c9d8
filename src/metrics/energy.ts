// Energy meters behind one interface (DESIGN.md "Metrics, honestly"): hardware counters where
// they exist, otherwise a stated estimate; every figure labelled 'measured' or 'estimated' with
// its source. Selection (openEnergyMeter): RAPL, else NVML, else the estimate; the meters that
// were tried and why each was unavailable come back with the choice, so the caller can say so
// once at start. A run keeps the meter it opened: nothing here switches meters mid-run.
//
//   RAPL      Linux powercap (<root>/intel-rapl:N = package-N, intel-rapl:N:M named 'dram' =
//             that package's DRAM; core/uncore subzones are inside the package figure and psys
//             covers the whole platform, so neither is added). energy_uj is a counter that wraps
//             at max_energy_range_uj: a read smaller than the last one adds the range. Since
//             Linux 5.10 energy_uj is readable by root only (a power side channel, CVE-2020-8694).
//   NVML      NVIDIA GPUs: nvmlDeviceGetTotalEnergyConsumption (mJ since the driver loaded),
//             summed over devices, through libnvidia-ml.so.1 opened at run time by the native
//             addon (native/src/nvml.cc): no link-time dependency.
//   estimate  --watts W: W x wall time; else the per-core model: the CPU's TDP / its cores x
//             the process CPU time (user + system, all threads: process.cpuUsage()). TDP is not
//             readable on Linux in general, so it comes from CPU_TDP_TABLE below, or
//             DEFAULT_WATTS_PER_CORE, printed as an assumption. The model leaves out idle,
//             uncore and DRAM power, and counts an SMT sibling's CPU time as a core's.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../kernels/native.js';
import { cpuModel } from './machine.js';

export type EnergyKind = 'measured' | 'estimated';

export interface EnergyMeter {
  /** 'rapl', 'nvml', 'watts' or 'cpu-time'. */
  name: string;
  kind: EnergyKind;
  /** What the figure is, e.g. 'RAPL package-0 + dram' or '8.00 W per core (...) x process CPU time'. */
  source: string;
  /** Joules since the meter was opened; never decreases. Throws if the counter cannot be read any more. */
  read(): number;
}

/** A meter that was tried and could not be used, and why. */
export interface MeterAttempt {
  name: string;
  reason: string;
}

/** How to open the same meter in another process (bench workers): every row of a run shares it. */
export type EnergyMeterSpec =
  | { type: 'rapl'; root: string }
  | { type: 'nvml' }
  | { type: 'watts'; watts: number }
  | { type: 'cpu-time'; wattsPerCore: number; basis: string };

export interface OpenedMeter {
  meter: EnergyMeter;
  spec: EnergyMeterSpec;
  /** Meters tried before it and why they were unavailable (also notes such as an unused --watts). */
  unavailable: MeterAttempt[];
}

/** `measured: RAPL package-0 + dram` / `estimated: 8.00 W per core ...`: the energy_source of a log line or a bench row. */
export function energySource(m: Pick<EnergyMeter, 'kind' | 'source'>): string {
  return `${m.kind}: ${m.source}`;
}

/** One line for the start of a run: the meter in use and why the ones before it were not. */
export function describeMeter(o: OpenedMeter): string {
  const why = o.unavailable.map((u) => `${u.name} unavailable (${u.reason})`).join('; ');
  return `${o.meter.kind}: ${o.meter.source}${why ? `; ${why}` : ''}`;
}

// ---- RAPL ---------------------------------------------------------------------------------

export const DEFAULT_POWERCAP_ROOT = '/sys/class/powercap';

/** Reads a small text file; tests inject one that fails as a permission problem would. */
export type FileReader = (path: string) => string;
const readText: FileReader = (p) => readFileSync(p, 'utf8');

/** Thrown by a meter that cannot be opened: the message is the reason shown to the user. */
export class MeterUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MeterUnavailable';
  }
}

interface Zone {
  dir: string;
  name: string;
  max: number;
  last: number;
  /** Microjoules accumulated since open (wraps added). */
  total: number;
}

function readNumber(read: FileReader, path: string, root: string): number {
  let text: string;
  try {
    text = read(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new MeterUnavailable(
        `permission denied on ${path}: readable by root only since Linux 5.10; run as root, or grant read access ` +
          `(\`sudo chmod a+r ${root}/intel-rapl:*/energy_uj\`, until reboot)`,
      );
    }
    throw new MeterUnavailable(`cannot read ${path}: ${code ?? (e as Error).message}`);
  }
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new MeterUnavailable(`${path}: not a counter value (${JSON.stringify(text.trim())})`);
  return n;
}

/**
 * The RAPL meter over the package and DRAM zones under `root` (default /sys/class/powercap).
 * Throws MeterUnavailable (no zones, a zone unreadable) with the reason.
 */
export function openRaplMeter(root: string = DEFAULT_POWERCAP_ROOT, read: FileReader = readText): EnergyMeter {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (e) {
    throw new MeterUnavailable(`no powercap interface (${root}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  // Flat names as /sys/class/powercap lists them: intel-rapl:N (a package), intel-rapl:N:M (its subzones).
  const ids = entries
    .map((name) => ({ name, m: /^intel-rapl:(\d+)(?::(\d+))?$/.exec(name) }))
    .filter((e): e is { name: string; m: RegExpExecArray } => e.m !== null)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]) || Number(a.m[2] ?? -1) - Number(b.m[2] ?? -1));
  const zones: Zone[] = [];
  for (const { name, m } of ids) {
    const dir = join(root, name);
    let zoneName: string;
    try {
      zoneName = read(join(dir, 'name')).trim();
    } catch {
      continue; // not a zone directory
    }
    const isPackage = m[2] === undefined && zoneName.startsWith('package');
    const isDram = m[2] !== undefined && zoneName === 'dram';
    if (!isPackage && !isDram) continue;
    const max = readNumber(read, join(dir, 'max_energy_range_uj'), root);
    const last = readNumber(read, join(dir, 'energy_uj'), root);
    zones.push({ dir, name: zoneName, max, last, total: 0 });
  }
  if (zones.length === 0) throw new MeterUnavailable(`no RAPL package zones under ${root}`);
  const packages = zones.filter((z) => z.name.startsWith('package')).map((z) => z.name);
  const drams = zones.filter((z) => z.name === 'dram').length;
  const source = `RAPL ${packages.join(' + ')}${drams ? ` + dram${drams > 1 ? ` x${drams}` : ''}` : ' (no dram zone)'}`;
  let joules = 0;
  return {
    name: 'rapl',
    kind: 'measured',
    source,
    read(): number {
      let uj = 0;
      for (const z of zones) {
        const now = readNumber(read, join(z.dir, 'energy_uj'), root);
        // One wrap at most between reads: at 400 W a 2^38 uJ range lasts ~11 minutes.
        z.total += now >= z.last ? now - z.last : now + z.max - z.last;
        z.last = now;
        uj += z.total;
      }
      joules = Math.max(joules, uj / 1e6);
      return joules;
    },
  };
}

// ---- NVML ---------------------------------------------------------------------------------

/** What the native addon offers for NVML (absent from an addon built before it). */
export interface NvmlBinding {
  /** '' when NVML opened and found at least one GPU that reports energy; else why not. */
  nvmlOpen(): string;
  /** Devices opened, and their names. */
  nvmlDevices(): string[];
  /** Millijoules summed over the devices since their driver loaded. */
  nvmlEnergyMj(): number;
}

/** The NVML meter, summed over all GPUs. Throws MeterUnavailable (no library, no GPU) with the reason. */
export function openNvmlMeter(binding: Partial<NvmlBinding> = native as unknown as Partial<NvmlBinding>): EnergyMeter {
  if (typeof binding.nvmlOpen !== 'function' || typeof binding.nvmlEnergyMj !== 'function' || typeof binding.nvmlDevices !== 'function') {
    throw new MeterUnavailable('the native addon was built without NVML support (rebuild it: npm run build:native)');
  }
  const why = binding.nvmlOpen();
  if (why !== '') throw new MeterUnavailable(why);
  const devices = binding.nvmlDevices();
  const start = binding.nvmlEnergyMj();
  let joules = 0;
  const counts = new Map<string, number>();
  for (const d of devices) counts.set(d, (counts.get(d) ?? 0) + 1);
  const names = [...counts].map(([d, n]) => (n > 1 ? `${n} x ${d}` : d)).join(' + ');
  return {
    name: 'nvml',
    kind: 'measured',
    source: `NVML total energy, ${names}`,
    read(): number {
      joules = Math.max(joules, (binding.nvmlEnergyMj!() - start) / 1e3);
      return joules;
    },
  };
}

// ---- estimates ----------------------------------------------------------------------------

/**
 * Thermal design power of known CPUs, from the vendors' product pages (TDP at base clock, the
 * whole package): per-core watts = TDP / cores. Matched as a substring of the model name
 * (/proc/cpuinfo), longest first.
 */
export const CPU_TDP_TABLE: ReadonlyArray<{ match: string; tdpWatts: number; cores: number; ref: string }> = [
  { match: 'Xeon(R) Platinum 8480+', tdpWatts: 350, cores: 56, ref: 'Intel ARK, Xeon Platinum 8480+' },
  { match: 'Xeon(R) Platinum 8592+', tdpWatts: 350, cores: 64, ref: 'Intel ARK, Xeon Platinum 8592+' },
  { match: 'Xeon(R) Platinum 8380', tdpWatts: 270, cores: 40, ref: 'Intel ARK, Xeon Platinum 8380' },
  { match: 'Xeon(R) Platinum 8358', tdpWatts: 250, cores: 32, ref: 'Intel ARK, Xeon Platinum 8358' },
  { match: 'AMD EPYC 9654', tdpWatts: 360, cores: 96, ref: 'AMD product page, EPYC 9654' },
  { match: 'AMD EPYC 9554', tdpWatts: 360, cores: 64, ref: 'AMD product page, EPYC 9554' },
  { match: 'AMD EPYC 9754', tdpWatts: 360, cores: 128, ref: 'AMD product page, EPYC 9754' },
  { match: 'AMD EPYC 7763', tdpWatts: 280, cores: 64, ref: 'AMD product page, EPYC 7763' },
];

/**
 * Per-core watts when the CPU is not in the table: an assumption, printed as one. Server CPUs of
 * 2020-2024 in the table run 2.8-6.8 W per core at TDP; a cloud vCPU's share of a host's power
 * (fans, uncore, memory) is higher, so 8 W errs high rather than flatter the figure.
 */
export const DEFAULT_WATTS_PER_CORE = 8;

/** The per-core power of `model` (a /proc/cpuinfo model name) and where that figure comes from. */
export function wattsPerCore(model: string): { watts: number; basis: string } {
  const hit = [...CPU_TDP_TABLE].sort((a, b) => b.match.length - a.match.length).find((e) => model.includes(e.match));
  if (hit) return { watts: hit.tdpWatts / hit.cores, basis: `TDP ${hit.tdpWatts} W / ${hit.cores} cores, ${hit.ref}` };
  return { watts: DEFAULT_WATTS_PER_CORE, basis: `assumed: CPU '${model}' is not in the TDP table` };
}

/** Seconds of CPU time (user + system, all threads) of this process. */
export function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The per-core model: `wattsPerCore` x CPU seconds. `cpuSeconds` is injectable for tests. */
export function cpuTimeMeter(wattsPerCoreFigure: number, basis: string, cpuSeconds: () => number = processCpuSeconds): EnergyMeter {
  const start = cpuSeconds();
  return {
    name: 'cpu-time',
    kind: 'estimated',
    source: `${wattsPerCoreFigure.toFixed(2)} W per core (${basis}) x process CPU time`,
    read: () => wattsPerCoreFigure * Math.max(0, cpuSeconds() - start),
  };
}

/** The user's figure: `watts` x wall time. `nowSeconds` is injectable for tests. */
export function wattsMeter(watts: number, nowSeconds: () => number = () => performance.now() / 1000): EnergyMeter {
  if (!(watts > 0) || !Number.isFinite(watts)) throw new RangeError(`watts must be a positive number (got ${watts})`);
  const start = nowSeconds();
  return {
    name: 'watts',
    kind: 'estimated',
    source: `${watts} W (given by the user) x wall time`,
    read: () => watts * Math.max(0, nowSeconds() - start),
  };
}

/** Joules of the estimate `spec` for a window another process reports (bench peers): CPU seconds and wall seconds. */
export function estimateJoules(spec: EnergyMeterSpec, window: { cpuSeconds: number; wallSeconds: number }): number | null {
  if (spec.type === 'cpu-time') return spec.wattsPerCore * window.cpuSeconds;
  if (spec.type === 'watts') return spec.watts * window.wallSeconds;
  return null;
}

// ---- selection ----------------------------------------------------------------------------

export interface OpenEnergyMeterOptions {
  /** A user-given power figure (--watts): the estimate when no counter is readable. */
  watts?: number;
  /** The powercap directory (tests point it at a fake tree). */
  powercapRoot?: string;
  /** Tests: the file reader for RAPL, the NVML binding, the CPU model. */
  readFile?: FileReader;
  nvml?: Partial<NvmlBinding>;
  cpu?: string;
}

/** RAPL if readable, else NVML, else the estimate (--watts, or the per-core model). */
export function openEnergyMeter(opts: OpenEnergyMeterOptions = {}): OpenedMeter {
  const unavailable: MeterAttempt[] = [];
  const root = opts.powercapRoot ?? DEFAULT_POWERCAP_ROOT;
  const tryOpen = (name: string, open: () => EnergyMeter): EnergyMeter | null => {
    try {
      return open();
    } catch (e) {
      if (!(e instanceof MeterUnavailable)) throw e;
      unavailable.push({ name, reason: e.message });
      return null;
    }
  };
  const wattsNote = () => {
    if (opts.watts !== undefined && opts.watts > 0) unavailable.push({ name: '--watts', reason: 'not used: a hardware counter is readable' });
  };
  const rapl = tryOpen('RAPL', () => openRaplMeter(root, opts.readFile));
  if (rapl) {
    wattsNote();
    return { meter: rapl, spec: { type: 'rapl', root }, unavailable };
  }
  const nvml = tryOpen('NVML', () => openNvmlMeter(opts.nvml));
  if (nvml) {
    wattsNote();
    return { meter: nvml, spec: { type: 'nvml' }, unavailable };
  }
  if (opts.watts !== undefined && opts.watts > 0) return { meter: wattsMeter(opts.watts), spec: { type: 'watts', watts: opts.watts }, unavailable };
  const w = wattsPerCore(opts.cpu ?? cpuModel());
  return { meter: cpuTimeMeter(w.watts, w.basis), spec: { type: 'cpu-time', wattsPerCore: w.watts, basis: w.basis }, unavailable };
}

/** The meter `spec` describes, opened in this process (a bench worker opening its parent's choice). */
export function openMeterFromSpec(spec: EnergyMeterSpec): EnergyMeter {
  switch (spec.type) {
    case 'rapl':
      return openRaplMeter(spec.root);
    case 'nvml':
      return openNvmlMeter();
    case 'watts':
      return wattsMeter(spec.watts);
    case 'cpu-time':
      return cpuTimeMeter(spec.wattsPerCore, spec.basis);
  }
}

// ---- totals -------------------------------------------------------------------------------

/**
 * World-average carbon intensity of electricity generation, gCO2e per kWh: 480 for 2023, Ember,
 * "Global Electricity Review 2024". The default of runtime.grid_gco2_per_kwh.
 */
export const DEFAULT_GRID_GCO2_PER_KWH = 480;

export interface EnergyTotals {
  joules: number;
  kwh: number;
  /** Grams CO2-equivalent at `gridGco2PerKwh`. */
  co2eGrams: number;
  gridGco2PerKwh: number;
}

export function energyTotals(joules: number, gridGco2PerKwh: number): EnergyTotals {
  const kwh = joules / 3.6e6;
  return { joules, kwh, co2eGrams: kwh * gridGco2PerKwh, gridGco2PerKwh };
}
