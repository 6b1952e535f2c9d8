// The bench table, for the terminal (aligned text) and for people (results.md): the same rows
// and columns in both, failed rows marked with their reasons below the table.
import { fmtBytes, fmtPct } from '../cli/format.js';
import type { BenchMachine } from './run.js';
import type { BenchRow, KernelRow, StepRow } from './spec.js';

type Table = { head: string[]; rows: string[][]; right: boolean[] };

const fixed = (x: number | null, d: number) => (x === null || !Number.isFinite(x) ? '—' : x.toFixed(d));
const ms = (x: number | null) => (x === null ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const range = (med: number | null, min: number | null, max: number | null) =>
  med === null ? '—' : `${ms(med)} (${ms(min)}-${ms(max)})`;
const times = (x: number | null) => (x === null ? '—' : `${x.toFixed(2)}x`);
const bytes = (x: number | null) => (x === null ? '—' : fmtBytes(x));
/** J/token to 3 significant digits, '~' marking an estimate (the source is printed once under the table). */
const joulesPerToken = (r: StepRow) =>
  r.joules_per_token === null ? 'n/a' : `${r.energy_source.startsWith('estimated') ? '~' : ''}${r.joules_per_token.toPrecision(3)}`;

export function stepTable(rows: StepRow[], markdown = false): Table {
  // recompute rows (`--recompute`) get their mode, activations and the ratios to the 'none' row
  const re = rows.some((r) => r.recompute !== undefined);
  // runs of fp32 and bf16 rows: each bf16 row's tokens/s over its fp32 row
  const dt = rows.some((r) => r.vs_fp32 !== undefined);
  const head = ['config', 'kernels', 'dtype', ...(re ? ['recompute'] : []), 'tokens/s', 'step ms median (min-max)', 'MFU', 'peak memory', 'speedup',
    ...(dt ? ['bf16 vs fp32'] : []), 'J/token'];
  if (re) head.push('activations', 'vs none: tokens/s, activations');
  if (markdown) head.push('native peak', 'memory report', ...(re ? [] : ['activations']));
  const body = rows.map((r) => {
    const cells = [
      r.config, r.kernels, r.dtype, ...(re ? [r.recompute ?? 'none'] : []),
      r.ok ? fixed(r.tokens_per_s, 0) : 'FAILED',
      range(r.step_ms_median, r.step_ms_min, r.step_ms_max),
      r.ok ? fmtPct(r.mfu) : '—',
      bytes(r.peak_bytes),
      r.kernels === 'standard' ? (r.ok ? '1.00x' : '—') : times(r.speedup),
      ...(dt ? [times(r.vs_fp32 ?? null)] : []),
      joulesPerToken(r),
    ];
    if (re) {
      const vs = r.recompute === 'none' || r.recompute === undefined ? '—'
        : `${times(r.recompute_speed ?? null)}, ${times(r.recompute_memory ?? null)}`;
      cells.push(bytes(r.activation_bytes), vs);
    }
    if (markdown) cells.push(bytes(r.native_peak_bytes), bytes(r.model_bytes ?? null), ...(re ? [] : [bytes(r.activation_bytes)]));
    return cells;
  });
  const firstNumber = re ? 4 : 3;
  return { head, rows: body, right: head.map((_, i) => i >= firstNumber) };
}

export function kernelTable(rows: KernelRow[]): Table {
  const head = ['config', 'op', 'shape', 'kernels', 'ms median (min-max)', 'GFLOP/s', '% peak', 'speedup', 'saved'];
  const body = rows.map((r) => [
    r.config, r.op, r.shape, r.kernels,
    r.ok ? range(r.ms_median, r.ms_min, r.ms_max) : 'FAILED',
    fixed(r.gflops, 1),
    r.peak_fraction === null ? '—' : fmtPct(r.peak_fraction),
    times(r.speedup),
    bytes(r.saved_bytes),
  ]);
  return { head, rows: body, right: head.map((_, i) => i >= 4) };
}

export function renderText(t: Table): string {
  const w = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (t.right[i] ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(t.head), w.map((n) => '-'.repeat(n)).join('  '), ...t.rows.map(line)].join('\n');
}

export function renderMarkdown(t: Table): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const line = (cells: string[]) => `| ${cells.map(esc).join(' | ')} |`;
  return [line(t.head), `| ${t.right.map((r) => (r ? '---:' : '---')).join(' | ')} |`, ...t.rows.map(line)].join('\n');
}

/** The failed rows, one line each: which row and why. */
export function failures(rows: BenchRow[]): string[] {
  return rows.filter((r) => !r.ok).map((r) =>
    r.kind === 'step' ? `${r.config} ${r.kernels} ${r.dtype}${r.recompute ? ` recompute ${r.recompute}` : ''}: ${r.error}` : `${r.config} ${r.op} (${r.kernels}): ${r.error}`);
}

/** The table(s) for the terminal. */
export function textReport(rows: BenchRow[]): string {
  const steps = rows.filter((r): r is StepRow => r.kind === 'step');
  const kernels = rows.filter((r): r is KernelRow => r.kind === 'kernel');
  const parts: string[] = [];
  if (steps.length) parts.push(renderText(stepTable(steps)));
  if (kernels.length) parts.push(renderText(kernelTable(kernels)));
  const f = failures(rows);
  if (f.length) parts.push(['failed rows:', ...f.map((l) => `  ${l}`)].join('\n'));
  return parts.join('\n\n') + '\n';
}

export function machineLine(m: BenchMachine): string {
  const extras = [m.amx ? 'AMX present' : '', m.avx512_bf16 ? 'AVX512-BF16 present' : ''].filter(Boolean).join(', ');
  return `${m.cpu}, ${m.threads} of ${m.cores} threads, ${m.isa} path${extras ? ` (${extras})` : ''}, ` +
    `fp32 peak ${m.peak_gflops === null ? 'n/a' : `${m.peak_gflops.toFixed(1)} GFLOP/s`} (measured${m.peak_cached ? `, cached ${m.peak_measured_at}` : ''})` +
    (m.bf16_unit ? `, bf16 on ${m.bf16_unit}: peak ${m.bf16_peak_gflops === null ? 'n/a' : `${m.bf16_peak_gflops.toFixed(1)} GFLOP/s`}` : '');
}

export function markdownReport(m: BenchMachine, o: { steps: number; warmup: number; kernelsOnly: boolean }, rows: BenchRow[]): string {
  const out: string[] = [];
  out.push(`# litespark bench${o.kernelsOnly ? ' --kernels-only' : ''}`, '');
  out.push('| | |', '| --- | --- |');
  out.push(`| CPU | ${m.cpu} |`);
  out.push(`| threads | ${m.threads} (of ${m.cores} available) |`);
  out.push(`| ISA path | ${m.isa} (available: ${m.available_isas.join(', ')}${m.amx ? '; AMX present' : ''}${m.avx512_bf16 ? '; AVX512-BF16 present' : ''}) |`);
  out.push(`| peak | ${m.peak_gflops === null ? 'n/a' : `${m.peak_gflops.toFixed(1)} GFLOP/s fp32`} at ${m.threads} threads, measured by \`litespark peak\` (${m.peak_measured_at ?? 'n/a'}) |`);
  if (m.bf16_unit) out.push(`| bf16 peak | ${m.bf16_peak_gflops === null ? 'n/a' : `${m.bf16_peak_gflops.toFixed(1)} GFLOP/s`} on ${m.bf16_unit} at ${m.threads} threads: bf16 rows' MFU is against it |`);
  for (const n of m.peak_notes) out.push(`| peak re-measured | ${n} |`);
  out.push(`| energy | ${m.energy} |`);
  out.push(`| date | ${m.date} |`);
  out.push(`| commit | ${m.commit ?? 'n/a'}${m.dirty ? ' (with uncommitted changes)' : ''} |`);
  out.push(`| node | ${m.node}, ${m.platform} |`);
  const loads = rows.map((r) => r.loadavg_1m).filter((x): x is number => x !== null);
  out.push(`| load average (1 min) | ${m.loadavg_1m.toFixed(2)} before the first row${loads.length ? `, ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)} at the end of rows` : ''} (above ${m.threads}: other work shared the cores) |`);
  out.push(`| protocol | ${o.warmup} warm-up + median of ${o.steps} measured ${o.kernelsOnly ? 'runs per kernel' : 'full training steps (forward + backward + AdamW)'}, one process per ${o.kernelsOnly ? 'config' : 'row'} |`);
  out.push('');
  if (!o.kernelsOnly && (o.steps < 10 || o.warmup < 3)) {
    out.push(`> Fewer steps than the BENCH.md protocol (3 warm-up + 10 measured): indicative figures only.`, '');
  }
  const steps = rows.filter((r): r is StepRow => r.kind === 'step');
  const kernels = rows.filter((r): r is KernelRow => r.kind === 'kernel');
  if (steps.length) {
    out.push('## Training steps', '');
    out.push(renderMarkdown(stepTable(steps, true)), '');
    out.push(
      'tokens/s = tokens per step ÷ median step time. MFU = tokens/s × (6·P + 12·L·d·T) ÷ the measured peak above. ' +
        'Peak memory = peak RSS of the row\'s own process; native peak = litespark\'s count of its storage high-water mark + kernel workspaces. ' +
        'Speedup = litespark tokens/s ÷ standard tokens/s of the same config and dtype, in this run.' +
        (steps.some((r) => r.recompute !== undefined)
          ? ' Recompute rows: activations = the bytes a step keeps for backward (recompute buffers included); ' +
            '"vs none" = tokens/s and activations over the recompute none row of the same config, kernels and dtype, in this run.'
          : '') +
        (steps.some((r) => r.vs_fp32 !== undefined)
          ? ' bf16 vs fp32 = a bf16 row\'s tokens/s ÷ the fp32 row\'s of the same config, kernels and recompute mode, in this run.'
          : ''),
      '',
      `J/token = energy of the measured steps ÷ their tokens, every row from the same meter (~: estimated): ${m.energy}.`,
      '',
    );
  }
  if (kernels.length) {
    out.push('## Kernels', '');
    out.push(renderMarkdown(kernelTable(kernels)), '');
    out.push(
      'GEMM rows: fwd = x·Wᵀ, dX = dy·W, dW += dyᵀ·x; % peak against the measured peak above. ' +
        'Speedup = standard ms ÷ litespark ms of the same op. Saved = bytes the op keeps for backward ' +
        '(attention: (B,H,T,T) probabilities vs the (B,H,T) log-sum-exp; loss: the (N,V) logits vs lse).',
      '',
    );
  }
  const f = failures(rows);
  if (f.length) out.push('## Failed rows', '', ...f.map((l) => `- ${l}`), '');
  return out.join('\n');
}
