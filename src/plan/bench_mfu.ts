// `plan --mfu-from bench.json`: litespark's and the standard path's MFU from the rows of
// `litespark bench --json` (an array of rows with config, kernels, dtype, mfu, ok). The rows were
// measured on the machine that ran bench against its measured peak; applying them to another
// accelerator is an assumption the plan states, not a measurement.
import { ConfigError } from '../config/schema.js';
import type { MfuSource } from './plan.js';

interface Row { kind?: unknown; config?: unknown; kernels?: unknown; dtype?: unknown; mfu?: unknown; ok?: unknown; recompute?: unknown; cpu?: unknown; threads?: unknown }

/**
 * One MFU per kernel path (litespark first, then standard) from bench rows of `dtype` and
 * `recompute`. The config row used: `prefer` (the plan's preset) if bench ran it, else BENCH.md's
 * headline row S, else the first config with a usable row. Throws ConfigError naming `file`.
 */
export function mfuFromBench(rows: unknown, file: string, dtype: string, recompute: string, prefer: string): MfuSource[] {
  if (!Array.isArray(rows)) throw new ConfigError(`plan: --mfu-from ${file}: expected the JSON array that \`litespark bench --json\` writes`);
  const usable = (rows as Row[]).filter((r) => r && typeof r === 'object' && (r.kind === undefined || r.kind === 'step') &&
    r.ok !== false && typeof r.mfu === 'number' && Number.isFinite(r.mfu) && r.mfu > 0 &&
    r.dtype === dtype && (r.recompute ?? 'none') === recompute);
  const configs = [...new Set(usable.map((r) => String(r.config)))];
  const config = [prefer, 'S', 'bench-s'].find((c) => configs.includes(c)) ?? configs[0];
  if (config === undefined) {
    throw new ConfigError(`plan: --mfu-from ${file}: no bench row with an MFU for dtype ${dtype}, recompute ${recompute}`);
  }
  const out: MfuSource[] = [];
  for (const kernels of ['litespark', 'standard']) {
    const r = usable.find((x) => x.config === config && x.kernels === kernels);
    if (!r) continue;
    const where = [typeof r.cpu === 'string' ? r.cpu : null, typeof r.threads === 'number' ? `${r.threads} threads` : null].filter(Boolean).join(', ');
    out.push({ label: `${kernels} (bench)`, mfu: r.mfu as number, source: `${file}: bench row ${config} ${kernels} ${dtype}${where ? ` on ${where}` : ''}` });
  }
  return out;
}
