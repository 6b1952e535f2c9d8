// Reading what `litespark train` and `litespark bench` leave behind, for the report:
// a run directory (config.json, metrics.jsonl, summary.json) and bench results (rows.json,
// machine.json). metrics.jsonl of a resumed run holds several segments, one per process: the
// steps restart after each resume (the first line of a segment is the eval at the resumed step),
// so the series keep the last value logged for each step and the resume points are kept apart.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export class ReportError extends Error {}

/** One step line of metrics.jsonl, as the trainer writes it (src/train/trainer.ts StepMetrics). */
export interface StepLine {
  step: number;
  loss: number | null;
  lr: number | null;
  grad_norm: number | null;
  tokens: number | null;
  step_ms: number | null;
  tokens_per_s: number | null;
  mfu: number | null;
  elapsed_s: number | null;
  rss_bytes: number | null;
  joules_per_token: number | null;
  energy_source: string | null;
  data_wait_ms: number | null;
}

export interface EvalLine {
  step: number;
  val_loss: number;
}

/** One process's part of metrics.jsonl. */
export interface Segment {
  /** The step this segment continued from (0 for the first, fresh run). */
  resumedFrom: number;
  steps: StepLine[];
  evals: EvalLine[];
  /** The segment's {summary} line, when the process ended cleanly. */
  summary: Record<string, unknown> | null;
}

export interface RunData {
  dir: string;
  config: Record<string, unknown> | null;
  segments: Segment[];
  /** Step lines over all segments by step, the last one logged for each step. */
  steps: StepLine[];
  evals: EvalLine[];
  /** summary.json (the last segment's summary), when present. */
  summary: Record<string, unknown> | null;
  /** Lines that did not parse, by line number (a crash can cut the last line). */
  badLines: number[];
}

export interface BenchData {
  /** Where the rows came from (a rows.json path). */
  file: string;
  rows: Record<string, unknown>[];
  /** machine.json's machine, when it sits beside rows.json. */
  machine: Record<string, unknown> | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ReportError(`${path}: not readable JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

function stepLine(o: Record<string, unknown>): StepLine {
  return {
    step: o.step as number,
    loss: num(o.loss),
    lr: num(o.lr),
    grad_norm: num(o.grad_norm),
    tokens: num(o.tokens),
    step_ms: num(o.step_ms),
    tokens_per_s: num(o.tokens_per_s),
    mfu: num(o.mfu),
    elapsed_s: num(o.elapsed_s),
    rss_bytes: num(o.rss_bytes),
    joules_per_token: num(o.joules_per_token),
    energy_source: str(o.energy_source),
    data_wait_ms: num(o.data_wait_ms),
  };
}

/** Keeps the last entry per step, sorted by step. */
function lastPerStep<T extends { step: number }>(items: T[]): T[] {
  const by = new Map<number, T>();
  for (const it of items) by.set(it.step, it);
  return [...by.values()].sort((a, b) => a.step - b.step);
}

/**
 * Splits metrics.jsonl text into segments. A new segment starts after a {summary} line, or when
 * a line's step goes back (an eval below the last step, or a step line at or below the last one):
 * that is where a resumed process began writing.
 */
export function parseMetrics(text: string): { segments: Segment[]; badLines: number[] } {
  const segments: Segment[] = [];
  const badLines: number[] = [];
  let cur: Segment | null = null;
  let lastStep = -Infinity;
  let closed = false;
  const open = (first: number, isEval: boolean): Segment => {
    const s: Segment = { resumedFrom: Math.max(0, isEval ? first : first - 1), steps: [], evals: [], summary: null };
    segments.push(s);
    lastStep = -Infinity;
    closed = false;
    return s;
  };
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      badLines.push(i + 1);
      return;
    }
    if (!isObject(o)) {
      badLines.push(i + 1);
      return;
    }
    if (isObject(o.summary)) {
      if (cur) cur.summary = o.summary;
      closed = true;
      return;
    }
    const step = num(o.step);
    if (step === null) {
      badLines.push(i + 1);
      return;
    }
    const isEval = num(o.val_loss) !== null;
    const goesBack = isEval ? step < lastStep : step <= lastStep;
    if (cur === null || closed || goesBack) cur = open(step, isEval);
    if (isEval) cur.evals.push({ step, val_loss: o.val_loss as number });
    else cur.steps.push(stepLine(o));
    lastStep = Math.max(lastStep, step);
  });
  return { segments, badLines };
}

/** Reads a run directory; throws ReportError when it has no metrics.jsonl. */
export function loadRun(dir: string): RunData {
  const metricsPath = join(dir, 'metrics.jsonl');
  if (!existsSync(metricsPath)) throw new ReportError(`${dir}: no metrics.jsonl (not a run directory made by litespark train)`);
  const { segments, badLines } = parseMetrics(readFileSync(metricsPath, 'utf8'));
  const configPath = join(dir, 'config.json');
  const config = existsSync(configPath) ? readJson(configPath) : null;
  const summaryPath = join(dir, 'summary.json');
  const summary = existsSync(summaryPath) ? readJson(summaryPath) : null;
  return {
    dir,
    config: isObject(config) ? config : null,
    segments,
    steps: lastPerStep(segments.flatMap((s) => s.steps)),
    evals: lastPerStep(segments.flatMap((s) => s.evals)),
    summary: isObject(summary) ? summary : (segments.at(-1)?.summary ?? null),
    badLines,
  };
}

/** Bench results from a bench directory (its rows.json) or a rows.json file (`bench --json`). */
export function loadBench(path: string): BenchData {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'rows.json') : path;
  if (!existsSync(file)) throw new ReportError(`${path}: no bench rows (rows.json) found`);
  const rows = readJson(file);
  if (!Array.isArray(rows) || !rows.every(isObject)) throw new ReportError(`${file}: not an array of bench rows`);
  const machinePath = join(dirname(file), 'machine.json');
  let machine: Record<string, unknown> | null = null;
  if (basename(file) === 'rows.json' && existsSync(machinePath)) {
    const m = readJson(machinePath);
    if (isObject(m) && isObject(m.machine)) machine = m.machine;
  }
  return { file, rows, machine };
}
