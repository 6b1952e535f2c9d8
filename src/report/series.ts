// The figures a report shows, computed from a run's metrics: the derived series (power,
// cumulative energy, tokens) and the run's totals over all its segments (a resumed run counts
// the time and tokens of each process once).
import type { RunData, StepLine } from './load.js';

export interface Point {
  x: number;
  y: number;
}

/** Tokens per optimizer step: from the metrics (tokens = step × tokens per step), else the config. */
export function tokensPerStep(run: RunData): number | null {
  const s = run.steps.find((l) => l.tokens !== null && l.step > 0);
  if (s) return s.tokens! / s.step;
  const t = run.config?.train as Record<string, unknown> | undefined;
  const b = t?.micro_batch_size, T = t?.seq_len, a = t?.grad_accum_steps;
  return typeof b === 'number' && typeof T === 'number' ? b * T * (typeof a === 'number' ? a : 1) : null;
}

export function points(steps: StepLine[], y: (l: StepLine) => number | null, x: (l: StepLine) => number | null = (l) => l.step): Point[] {
  const out: Point[] = [];
  for (const l of steps) {
    const xv = x(l), yv = y(l);
    if (xv !== null && yv !== null && Number.isFinite(xv) && Number.isFinite(yv)) out.push({ x: xv, y: yv });
  }
  return out;
}

/** The energy labels the run's step lines carry ('measured', 'estimated', ...), 'none' left out. */
export function energySources(run: RunData): string[] {
  const s = new Set<string>();
  for (const l of run.steps) if (l.joules_per_token !== null && l.energy_source && l.energy_source !== 'none') s.add(l.energy_source);
  return [...s];
}

/** Power in W per logged step: J/token × tokens/s. */
export function power(run: RunData): Point[] {
  return points(run.steps, (l) => (l.joules_per_token === null || l.tokens_per_s === null ? null : l.joules_per_token * l.tokens_per_s));
}

/**
 * Cumulative energy in J by step: each logged line's J/token times the tokens since the line
 * before it (with log_every > 1 the line stands for the steps since the last one logged).
 * Lines without energy add nothing; `covered` counts the tokens that did have it.
 */
export function cumulativeEnergy(run: RunData): { points: Point[]; joules: number; covered: number } {
  const tps = tokensPerStep(run);
  const out: Point[] = [];
  let joules = 0, covered = 0, prevStep = 0;
  for (const l of run.steps) {
    const tokens = tps === null ? null : (l.step - prevStep) * tps;
    prevStep = l.step;
    if (l.joules_per_token === null || tokens === null) continue;
    joules += l.joules_per_token * tokens;
    covered += tokens;
    out.push({ x: l.step, y: joules });
  }
  return { points: out, joules, covered };
}

export interface RunTotals {
  steps: number | null;
  tokens: number | null;
  seconds: number | null;
  tokensPerSecond: number | null;
  mfu: number | null;
  joules: number | null;
  joulesPerToken: number | null;
  energyLabel: string;
  /** Where the energy total comes from: the trainer's summary (every step, across resumes) or the logged lines. */
  energyFrom: 'summary' | 'metrics' | null;
  kwh: number | null;
  co2eGrams: number | null;
  /** The summary's reason for having no energy (a meter that failed, a checkpoint without energy). */
  energyError: string | null;
  finalTrainLoss: number | null;
  finalValLoss: number | null;
  segments: number;
}

const n = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The run's totals over all segments: each segment's summary where it has one, else its last step line. */
export function runTotals(run: RunData): RunTotals {
  const tps = tokensPerStep(run);
  let seconds = 0, tokens = 0, mfuTime = 0, mfuSeconds = 0, timed = false;
  for (const seg of run.segments) {
    const last = seg.steps.at(-1);
    const s = seg.summary;
    const segSeconds = n(s?.seconds) ?? last?.elapsed_s ?? null;
    const segTokens = n(s?.tokens) ?? (last && tps !== null ? (last.step - seg.resumedFrom) * tps : null);
    if (segSeconds === null || segTokens === null) continue;
    timed = true;
    seconds += segSeconds;
    tokens += segTokens;
    const mfus = seg.steps.map((l) => l.mfu).filter((x): x is number => x !== null);
    const segMfu = n(s?.mfu) ?? (mfus.length ? mfus.reduce((a, b) => a + b, 0) / mfus.length : null);
    if (segMfu !== null) {
      mfuTime += segMfu * segSeconds;
      mfuSeconds += segSeconds;
    }
  }
  const last = run.steps.at(-1);
  const energy = cumulativeEnergy(run);
  const sources = energySources(run);
  const totalTokens = last ? (last.tokens ?? (tps === null ? null : last.step * tps)) : n(run.summary?.tokens);
  // summary.energy (the trainer's meter over every step of every process) beats summing logged lines
  const se = run.summary?.energy as Record<string, unknown> | null | undefined;
  const fromSummary = typeof se === 'object' && se !== null && n(se.joules) !== null;
  const integrated = energy.covered > 0;
  return {
    steps: last?.step ?? n(run.summary?.steps),
    tokens: totalTokens,
    seconds: timed ? seconds : null,
    tokensPerSecond: timed && seconds > 0 ? tokens / seconds : null,
    mfu: mfuSeconds > 0 ? mfuTime / mfuSeconds : null,
    joules: fromSummary ? n(se!.joules) : integrated ? energy.joules : null,
    joulesPerToken: fromSummary ? n(se!.joulesPerToken) : integrated ? energy.joules / energy.covered : null,
    energyLabel: fromSummary && typeof se!.source === 'string' ? se!.source : sources.length ? sources.join(' + ') : 'none',
    energyFrom: fromSummary ? 'summary' : integrated ? 'metrics' : null,
    kwh: fromSummary ? n(se!.kwh) : null,
    co2eGrams: fromSummary ? n(se!.co2eGrams) : null,
    energyError: typeof run.summary?.energyError === 'string' ? run.summary.energyError : null,
    finalTrainLoss: last?.loss ?? n(run.summary?.finalTrainLoss),
    finalValLoss: run.evals.at(-1)?.val_loss ?? n(run.summary?.finalValLoss),
    segments: run.segments.length,
  };
}

/**
 * At most about `max` points, keeping each bucket's lowest and highest value in order, so a
 * long run's spikes still show (a 100k-step run would otherwise make a multi-megabyte SVG).
 */
export function thin(ps: Point[], max = 1500): Point[] {
  if (ps.length <= max) return ps;
  const per = Math.ceil(ps.length / (max / 2));
  const out: Point[] = [];
  for (let i = 0; i < ps.length; i += per) {
    const b = ps.slice(i, i + per);
    let lo = b[0]!, hi = b[0]!;
    for (const p of b) {
      if (p.y < lo.y) lo = p;
      if (p.y > hi.y) hi = p;
    }
    if (lo === hi) out.push(lo);
    else out.push(...(lo.x < hi.x ? [lo, hi] : [hi, lo]));
  }
  const lastP = ps.at(-1)!;
  if (out.at(-1) !== lastP) out.push(lastP);
  return out;
}
