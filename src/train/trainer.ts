// The training loop: data -> model.forward -> loss -> model.backward (accumulated over
// micro-batches, the loss weighted by tokens) -> gradient clipping -> AdamW -> metrics.
// Everything a step touches is allocated before the first step.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { toHfLlamaConfig } from '../config/load.js';
import {
  CheckpointError,
  loadTrainerState,
  loadWeights,
  readModelConfig,
  rotateCheckpoints,
  saveCheckpoint,
  stepDirName,
  type TrainerState,
} from '../checkpoint/checkpoint.js';
import { PackedLoader, type LoaderCursor } from '../data/loader.js';
import { resolveData } from '../data/source.js';
import { loadTokenizer, type Tokenizer } from '../data/tokenizer.js';
import { native } from '../kernels/native.js';
import { LlamaModel, type StepBuffers } from '../model/llama.js';
import { flopsPerToken, mfu, parameterCounts } from '../metrics/flops.js';
import { MetricsLog, peakRssBytes } from '../metrics/jsonl.js';
import { memoryModel, type MemoryReport } from '../metrics/memory.js';
import { median } from '../metrics/stats.js';
import { cpuModel } from '../metrics/machine.js';
import { defaultCacheDir, getPeak } from '../metrics/peak.js';
import { describeMeter, energySource, energyTotals, openEnergyMeter, type MeterAttempt } from '../metrics/energy.js';
import { AdamW } from './optimizer.js';
import { sample } from './sample.js';
import { lrAt } from './schedule.js';

export type { MemoryReport } from '../metrics/memory.js';

export interface StartInfo {
  config: Config;
  runDir: string;
  cpu: string;
  isa: string;
  threads: number;
  kernels: string;
  dtype: string;
  /** Activation checkpointing mode (runtime.recompute). */
  recompute: string;
  parameters: { total: number; nonEmbedding: number };
  flopsPerToken: number;
  /** The measured peak MFU is reported against: the fp32 FMA loop, or the bf16 unit's. */
  peakGflops: number | null;
  peakCached: boolean;
  /** What runs the matrix products: 'fp32' (FMA on the ISA path) or the bf16 unit ('amx', 'avx512bf16', 'fp32'). */
  matmulUnit: string;
  /** bf16 on a matrix unit, fused path: a bf16 copy of the weights (in memory.parameters) and bf16 matrix-product operands. */
  bf16Operands: boolean;
  tokensPerStep: number;
  /** The prepared data the run reads (a directory of token shards, src/data/source.ts). */
  data: { dir: string; description: string; inputBytes: number; trainTokens: number; valTokens: number; vocabSize: number };
  /** The memory model of this run (src/metrics/memory.ts), equal to what the trainer allocates. */
  memory: MemoryReport;
  /** Steps already done before this run (a resumed checkpoint's step; 0 for a fresh run). */
  resumedFrom: number;
  /** The energy meter of the run (src/metrics/energy.ts), chosen once at start, and the ones that were unavailable. */
  energy: { kind: 'measured' | 'estimated'; source: string; unavailable: MeterAttempt[]; line: string };
}

/** One line of metrics.jsonl. */
export interface StepMetrics {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens: number;
  step_ms: number;
  tokens_per_s: number;
  mfu: number | null;
  elapsed_s: number;
  eta_s: number;
  rss_bytes: number;
  joules_per_token: number | null;
  energy_source: string;
  /** Time this step waited for the data loader (its prefetch thread fell behind). */
  data_wait_ms: number;
}

export interface EvalResult {
  step: number;
  val_loss: number;
}

export interface Summary {
  steps: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  /** Median step time after the warm-up steps (BENCH.md: the first 3, when there are more). */
  stepMsMedian: number;
  mfu: number | null;
  initialValLoss: number;
  finalValLoss: number;
  finalTrainLoss: number;
  sample: { prompt: string; text: string } | null;
  peakRssBytes: number;
  /** The start-of-run memory report and its recompute mode. */
  memory: MemoryReport & { recompute: string };
  interrupted: boolean;
  /** The step this run started after (0, or the resumed checkpoint's step). */
  resumedFrom: number;
  /** The last checkpoint saved, if any. */
  checkpoint: string | null;
  /** Total time the steps waited for data, and the loader's position (to resume from). */
  dataWaitMs: number;
  dataCursor: LoaderCursor;
  /** Energy of the run, resumed runs' earlier parts included; null when the meter failed (energyError says why). */
  energy: EnergySummary | null;
  energyError: string | null;
}

/** summary.json's energy: totals over every step trained so far (across resumes). */
export interface EnergySummary {
  kind: 'measured' | 'estimated';
  /** e.g. 'measured: RAPL package-0 + dram'; a resumed run whose earlier part had another source names both. */
  source: string;
  joules: number;
  /** This run's part (what the meter read since the first step of this process). */
  joulesThisRun: number;
  /** joules / tokens trained (all steps so far). */
  joulesPerToken: number;
  kwh: number;
  co2eGrams: number;
  gridGco2PerKwh: number;
}

export interface TrainHooks {
  onStatus?(message: string): void;
  onStart?(info: StartInfo): void;
  onStep?(m: StepMetrics): void;
  onEval?(e: EvalResult): void;
  onEnd?(s: Summary): void;
  /** Polled between steps: return true to stop early (e.g. after SIGINT). */
  shouldStop?(): boolean;
  /** A checkpoint was saved (and older ones rotated away). */
  onCheckpoint?(c: { step: number; dir: string; seconds: number; removed: string[] }): void;
}

/** Where a run starts from: a checkpoint to continue exactly, or weights to start from. */
export interface TrainStart {
  /** A checkpoint directory with trainer_state: parameters, AdamW moments, step, data cursor. */
  resume?: string;
  /** A checkpoint or Hugging Face directory whose weights replace the random initialisation. */
  init?: string;
}

/** sha256 of a checkpoint's tokenizer.json as a tokenizer, or null when it has none. */
function tokenizerHashAt(path: string): string | null {
  return existsSync(path) ? loadTokenizer(path).hash() : null;
}

/** Train splits up to this size are CRC-checked in full when a run opens them. */
const FULL_VERIFY_BYTES = 4 * 2 ** 30;

/** The prompt of the end-of-run sample: the opening of a doc comment, as in the default corpus. */
export const SAMPLE_PROMPT = '/**\n * Returns';

/** Mean loss per token over fixed batches (forward only). */
export function evaluate(model: LlamaModel, buf: StepBuffers, batches: Array<{ inputs: Int32Array; targets: Int32Array }>): number {
  let sum = 0;
  let count = 0;
  for (const b of batches) {
    buf.ids.set(b.inputs);
    buf.targets.set(b.targets);
    sum += model.forward(buf);
    count += b.targets.reduce((a, t) => a + (t >= 0 ? 1 : 0), 0);
  }
  return sum / count;
}

/**
 * The fixed evaluation set: the first `count` batches of the validation split in order (fewer
 * when the split holds fewer sequences; the last batch wraps around to the start).
 */
export function evalBatches(dir: string, batch: number, seqLen: number, count: number): Array<{ inputs: Int32Array; targets: Int32Array }> {
  const val = PackedLoader.open({ dir, split: 'val', seqLen, batch, seed: 0, shuffle: false, worker: false, verify: 'full' });
  try {
    const n = Math.min(count, Math.max(1, Math.ceil(val.sequencesPerEpoch / batch)));
    return Array.from({ length: n }, () => {
      const b = { inputs: new Int32Array(batch * seqLen), targets: new Int32Array(batch * seqLen) };
      val.next(b.inputs, b.targets);
      return b;
    });
  } finally {
    val.close();
  }
}

/**
 * One optimizer step: zero the gradients, forward + backward over `accum` micro-batches drawn
 * by `next`, each token's loss weighted by 1 / (tokens in the whole step) so the result does
 * not depend on how the global batch is split, then AdamW at `lr`. Returns the mean loss per
 * token and the gradient norm before clipping.
 */
export function trainStep(
  model: LlamaModel,
  opt: AdamW,
  buf: StepBuffers,
  next: (ids: Int32Array, targets: Int32Array) => void,
  accum: number,
  lr: number,
): { loss: number; gradNorm: number } {
  model.grads.zero();
  // Packed fixed-length windows: every target is a real token, so the step's token count is
  // known before its first micro-batch.
  const tokens = buf.B * buf.T * accum;
  let lossSum = 0;
  for (let micro = 0; micro < accum; micro++) {
    next(buf.ids, buf.targets);
    lossSum += model.forward(buf, 1 / tokens);
    model.backward(buf, 1 / tokens);
  }
  const gradNorm = opt.update(lr);
  return { loss: lossSum / tokens, gradNorm };
}

export async function train(config: Config, hooks: TrainHooks = {}, start: TrainStart = {}): Promise<Summary> {
  const { model: mc, train: tc, data: dc, runtime: rc } = config;
  const threads = rc.threads > 0 ? rc.threads : os.availableParallelism();
  native.setThreads(threads);
  const status = (m: string) => hooks.onStatus?.(m);

  const runDir = rc.out;
  mkdirSync(runDir, { recursive: true });

  status('preparing data');
  const data = await resolveData({
    source: dc.source,
    vocabSize: dc.tokenizer_vocab_size,
    valFraction: dc.val_fraction,
    ...(dc.max_bytes > 0 ? { maxBytes: dc.max_bytes } : {}),
    cacheDir: defaultCacheDir(),
    onStatus: status,
    onWarning: status,
  });
  const tokenizer: Tokenizer = data.tokenizer;
  if (tokenizer.vocabSize > mc.vocab_size) {
    throw new Error(`model.vocab_size (${mc.vocab_size}) is smaller than the tokenizer's vocabulary (${tokenizer.vocabSize})`);
  }

  status('building the model');
  const model = new LlamaModel(mc, 'f32', rc.kernels, rc.dtype);
  model.params.init(tc.seed);
  const opt = new AdamW(mc, model.params, model.grads, tc, model.bf16Weights);
  let resumed: TrainerState | undefined;
  const from = start.resume ?? start.init;
  if (from !== undefined) {
    const saved = readModelConfig(from);
    const differ = (Object.keys(saved) as Array<keyof typeof saved>).filter((k) => saved[k] !== mc[k]);
    if (differ.length > 0) {
      throw new CheckpointError(`${from}: config.json's model differs from this run's: ${differ.map((k) => `${k} ${saved[k]} (run: ${mc[k]})`).join(', ')}`);
    }
    const tokPath = join(from, 'tokenizer.json');
    const theirs = tokenizerHashAt(tokPath);
    if (theirs !== null && theirs !== tokenizer.hash()) {
      throw new CheckpointError(
        `${tokPath}: not the tokenizer of the data (${data.dir}); prepare the data with \`litespark prepare --tokenizer ${tokPath}\``,
      );
    }
    status(`${start.resume ? 'resuming from' : 'weights from'} ${from}`);
    loadWeights(from, model.params, mc);
    if (start.resume) {
      resumed = loadTrainerState(from, opt.m, opt.v);
      opt.step = resumed.optimizer_step;
    }
  }
  const firstStep = (resumed?.step ?? 0) + 1;
  if (firstStep > tc.steps) {
    throw new CheckpointError(`${from}: the checkpoint is at step ${resumed!.step}, the run ends at train.steps = ${tc.steps}; raise --steps to continue`);
  }
  const B = tc.micro_batch_size;
  const T = tc.seq_len;
  const buf = model.buffers(B, T, false, rc.recompute);
  // Every shard's CRC is checked at start while that costs under ~2 s (3 GB/s measured);
  // larger splits get the header checks only (`litespark prepare` verified them when written).
  const verify = data.index.splits.train.tokens * (data.index.dtype === 'uint16' ? 2 : 4) <= FULL_VERIFY_BYTES ? 'full' : 'header';
  const loader = PackedLoader.open({
    dir: data.dir, split: 'train', seqLen: T, batch: B, seed: tc.seed, shuffle: true, verify,
    ...(resumed ? { cursor: resumed.data_cursor } : {}),
  });
  const evalSet = evalBatches(data.dir, B, T, tc.eval_batches);
  const tokensPerStep = B * T * tc.grad_accum_steps;

  status('calibrating peak FLOP/s');
  // bf16 MFU is counted against the peak of the unit that runs the bf16 products (BENCH.md).
  const peak = getPeak({ threads, dtype: rc.dtype });
  const fpt = flopsPerToken(mc, T);
  const counts = parameterCounts(mc);
  // One meter for the whole run (never switched mid-run): RAPL, NVML, else the estimate.
  const energy = openEnergyMeter(rc.watts > 0 ? { watts: rc.watts } : {});
  const meter = energy.meter;
  const source = energySource(meter);

  const info: StartInfo = {
    config,
    runDir,
    cpu: cpuModel(),
    isa: native.isa(),
    threads,
    kernels: rc.kernels,
    dtype: rc.dtype,
    recompute: rc.recompute,
    parameters: { total: counts.total, nonEmbedding: counts.nonEmbedding },
    flopsPerToken: fpt,
    peakGflops: peak.gflops > 0 ? peak.gflops : null,
    peakCached: peak.cached,
    matmulUnit: peak.unit,
    bf16Operands: model.bf16Weights !== null,
    tokensPerStep,
    data: {
      dir: data.dir,
      description: data.description,
      inputBytes: data.inputBytes,
      trainTokens: data.index.splits.train.tokens,
      valTokens: data.index.splits.val?.tokens ?? 0,
      vocabSize: tokenizer.vocabSize,
    },
    memory: memoryModel(mc, { B, T, kernels: rc.kernels, dtype: rc.dtype, recompute: rc.recompute, bf16Operands: model.bf16Weights !== null }),
    resumedFrom: firstStep - 1,
    energy: { kind: meter.kind, source: meter.source, unavailable: energy.unavailable, line: describeMeter(energy) },
  };
  writeFileSync(
    join(runDir, 'config.json'),
    JSON.stringify({
      ...config, hf_config: toHfLlamaConfig(mc), machine: { cpu: info.cpu, isa: info.isa, threads },
      memory: { ...info.memory, recompute: rc.recompute },
    }, null, 2) + '\n',
  );
  copyFileSync(join(data.dir, data.index.tokenizer.file), join(runDir, 'tokenizer.json'));
  hooks.onStart?.(info);

  const log = new MetricsLog(join(runDir, 'metrics.jsonl'));
  const peakFlops = info.peakGflops === null ? null : info.peakGflops * 1e9;
  const doEval = (step: number): number => {
    const v = evaluate(model, buf, evalSet);
    log.write({ step, val_loss: v });
    hooks.onEval?.({ step, val_loss: v });
    return v;
  };

  const ckptRoot = join(runDir, 'checkpoints');
  const tokenizerPath = join(data.dir, data.index.tokenizer.file);
  const priorSeconds = resumed?.elapsed_s ?? 0;
  let lastCheckpoint: string | null = null;
  let lastSaveAt = performance.now();
  let lastVal: number | null = resumed?.last_val_loss ?? null;
  // Energy: joules of the earlier parts of a resumed run, plus what this run's meter reads. A
  // meter that fails mid-run is reported (energyError) and never replaced by another.
  const priorJoules = resumed?.energy.joules ?? null;
  const priorSource = resumed?.energy.source ?? 'none';
  let energyError: string | null = null;
  let meterStart = 0;
  const readMeter = (): number | null => {
    if (energyError !== null) return null;
    try {
      return meter.read();
    } catch (e) {
      energyError = `${meter.name} meter failed: ${e instanceof Error ? e.message : String(e)}`;
      status(`energy: ${energyError}; energy is not reported for the rest of the run`);
      return null;
    }
  };
  /** Joules of every step so far (across resumes), or null when unknown. */
  const totalJoules = (): number | null => {
    const now = readMeter();
    if (now === null || (firstStep > 1 && priorJoules === null)) return null;
    return (priorJoules ?? 0) + now - meterStart;
  };
  const totalSource = firstStep > 1 && priorSource !== source ? `${priorSource} (steps 1-${firstStep - 1}) + ${source}` : source;
  const save = (step: number): void => {
    const t = performance.now();
    const dir = join(ckptRoot, stepDirName(step));
    const state: TrainerState = {
      format: 'litespark-trainer-state',
      version: 1,
      step,
      optimizer_step: opt.step,
      tokens: step * tokensPerStep,
      elapsed_s: priorSeconds + (t - t0) / 1000,
      data_cursor: loader.cursor(),
      rng: { init_seed: tc.seed, sample_seed: tc.seed },
      energy: { joules: totalJoules(), source: totalSource },
      last_val_loss: lastVal,
      config,
    };
    saveCheckpoint(dir, { config, params: model.params, tokenizer, tokenizerPath, optimizer: { m: opt.m, v: opt.v }, state });
    const removed = rotateCheckpoints(ckptRoot, tc.keep_checkpoints, tc.checkpoint_milestones);
    lastCheckpoint = dir;
    lastSaveAt = performance.now();
    hooks.onCheckpoint?.({ step, dir, seconds: (lastSaveAt - t) / 1000, removed });
  };

  const initialValLoss = doEval(firstStep - 1);
  lastVal = initialValLoss;
  const stepMs: number[] = [];
  const t0 = performance.now();
  meterStart = readMeter() ?? 0;
  let lastLoss = NaN;
  let done = firstStep - 1; // optimizer steps completed
  let savedAt = done;
  let interrupted = false;
  for (let step = firstStep; step <= tc.steps; step++) {
    // Yield to the event loop between steps so signals and the progress display are served.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (hooks.shouldStop?.()) {
      interrupted = true;
      break;
    }
    const ts = performance.now();
    const e0 = readMeter();
    const lr = lrAt(step, tc);
    const waited = loader.waitMs;
    const r = trainStep(model, opt, buf, (ids, targets) => loader.next(ids, targets), tc.grad_accum_steps, lr);
    const gradNorm = r.gradNorm;
    const ms = performance.now() - ts;
    const e1 = readMeter();
    stepMs.push(ms);
    lastLoss = r.loss;
    done = step;
    if (!Number.isFinite(lastLoss)) throw new Error(`training diverged at step ${step}: loss is ${lastLoss}`);
    const elapsed = (performance.now() - t0) / 1000;
    const tps = (tokensPerStep * 1000) / ms;
    const m: StepMetrics = {
      step,
      steps: tc.steps,
      loss: lastLoss,
      lr,
      grad_norm: gradNorm,
      tokens: step * tokensPerStep,
      step_ms: ms,
      tokens_per_s: tps,
      mfu: mfu(tps, fpt, peakFlops),
      elapsed_s: elapsed,
      eta_s: (elapsed / (step - firstStep + 1)) * (tc.steps - step),
      rss_bytes: peakRssBytes(),
      joules_per_token: e0 !== null && e1 !== null ? (e1 - e0) / tokensPerStep : null,
      energy_source: energyError === null ? source : `none: ${energyError}`,
      data_wait_ms: loader.waitMs - waited,
    };
    if (step % tc.log_every === 0 || step === tc.steps) log.write(m);
    hooks.onStep?.(m);
    if (tc.eval_every > 0 && step % tc.eval_every === 0 && step < tc.steps) lastVal = doEval(step);
    const due =
      (tc.checkpoint_every > 0 && step % tc.checkpoint_every === 0) ||
      (tc.checkpoint_minutes > 0 && performance.now() - lastSaveAt >= tc.checkpoint_minutes * 60_000);
    if (due && step < tc.steps) {
      save(step);
      savedAt = step;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const finalValLoss = doEval(done);
  // Energy up to here, what the final checkpoint carries too (its save is read just after).
  const joulesAtEnd = totalJoules();
  const thisRunAtEnd = joulesAtEnd === null ? null : joulesAtEnd - (priorJoules ?? 0);
  lastVal = finalValLoss;
  // The end of the run, or a stop (Ctrl-C, SIGTERM): keep what was trained.
  if (done > savedAt) save(done);

  let sampleOut: Summary['sample'] = null;
  if (tc.sample_tokens > 0) {
    status('sampling');
    const gen = model.buffers(1, T, true);
    const promptIds = tokenizer.encode(SAMPLE_PROMPT);
    const ids = sample(model, gen, promptIds, { maxTokens: tc.sample_tokens, temperature: 0.8, topK: 40, seed: tc.seed, stopId: tokenizer.eosId });
    sampleOut = { prompt: SAMPLE_PROMPT, text: tokenizer.decode(ids) };
  }

  const tokens = (done - firstStep + 1) * tokensPerStep;
  const trained = stepMs.slice(Math.min(3, stepMs.length - 1));
  const tps = seconds > 0 ? tokens / seconds : 0;
  const summary: Summary = {
    steps: done,
    tokens,
    seconds,
    tokensPerSecond: tps,
    stepMsMedian: median(trained),
    mfu: mfu(tps, fpt, peakFlops),
    initialValLoss,
    finalValLoss,
    finalTrainLoss: lastLoss,
    sample: sampleOut,
    peakRssBytes: peakRssBytes(),
    memory: { ...info.memory, recompute: rc.recompute },
    interrupted,
    resumedFrom: firstStep - 1,
    checkpoint: lastCheckpoint,
    dataWaitMs: loader.waitMs,
    dataCursor: loader.cursor(),
    // The energy from the first step of this process to the final evaluation (evaluations and periodic saves included).
    energy: joulesAtEnd === null || thisRunAtEnd === null ? null : {
      ...energyTotals(joulesAtEnd, rc.grid_gco2_per_kwh),
      // a total with any estimated part is an estimate
      kind: /(^|\+ )estimated/.test(totalSource) ? 'estimated' : 'measured',
      source: totalSource,
      joulesThisRun: thisRunAtEnd,
      joulesPerToken: done > 0 ? joulesAtEnd / (done * tokensPerStep) : NaN,
    },
    energyError: energyError ?? (firstStep > 1 && priorJoules === null ? `the checkpoint at step ${firstStep - 1} carries no energy figure` : null),
  };
  loader.close();
  log.write({ summary });
  log.close();
  writeFileSync(join(runDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  hooks.onEnd?.(summary);
  return summary;
}
