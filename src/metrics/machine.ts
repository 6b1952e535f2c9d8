// What a figure was measured on: CPU model, cores, the ISA path in use and the CPU features.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { native, type CpuFeatures } from '../kernels/native.js';

export interface MachineInfo {
  cpuModel: string;
  /** Logical CPUs this process may use (os.availableParallelism()). */
  cores: number;
  /** The kernel path in use now (avx512, avx2, scalar). */
  isa: string;
  /** Paths this CPU can run, best first. */
  availableIsas: string[];
  features: CpuFeatures;
  node: string;
}

let cpuModelCache: string | undefined;

/** CPU model name from /proc/cpuinfo, else what Node reports, else 'unknown CPU'. */
export function cpuModel(): string {
  if (cpuModelCache !== undefined) return cpuModelCache;
  let name = '';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) name = m[1]!.trim();
  } catch {
    // not Linux: fall through
  }
  if (!name) name = os.cpus()[0]?.model?.trim() ?? '';
  cpuModelCache = name || 'unknown CPU';
  return cpuModelCache;
}

export function machineInfo(): MachineInfo {
  return {
    cpuModel: cpuModel(),
    cores: os.availableParallelism(),
    isa: native.isa(),
    availableIsas: native.availableIsas(),
    features: native.cpuFeatures(),
    node: process.version,
  };
}

/** One line, e.g. "Intel(R) Xeon(R) Processor, 2 threads, avx512 (AMX present)". */
export function describeMachine(threads?: number): string {
  const m = machineInfo();
  const extras: string[] = [];
  if (m.features.amx_tile) extras.push('AMX');
  else if (m.features.avx512_bf16) extras.push('AVX512-BF16');
  const n = threads && threads > 0 ? threads : m.cores;
  return `${m.cpuModel}, ${n} thread${n === 1 ? '' : 's'}, ${m.isa}` + (extras.length ? ` (${extras.join(', ')} present)` : '');
}
