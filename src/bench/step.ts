// One whole-step row of `litespark bench`: the preset's Llama at its batch and sequence, trained
// on seeded random tokens (speed does not depend on the text, so no tokenizer or corpus is
// involved) for `warmup` + `steps` full training steps — forward + backward + AdamW, the
// trainer's own trainStep — in this process, whose peak memory is the row's alone.
import os from 'node:os';
import { resolveConfig } from '../config/load.js';
import { native } from '../kernels/native.js';
import { flopsPerToken, mfu, parameterCounts } from '../metrics/flops.js';
import { peakRssBytes } from '../metrics/jsonl.js';
import { cpuModel } from '../metrics/machine.js';
import { memoryModel } from '../metrics/memory.js';
import { getPeak } from '../metrics/peak.js';
import { energySource, openMeterFromSpec, type EnergyMeter } from '../metrics/energy.js';
import { LlamaModel } from '../model/llama.js';
import { AdamW } from '../train/optimizer.js';
import { trainStep } from '../train/trainer.js';
import type { StepJob } from './job.js';
import type { StepRow } from './spec.js';
import { median, randomTokens } from './util.js';

/** Distinct random batches cycled through (drawn before timing, so drawing costs no step time). */
const BATCHES = 4;

export function runStepRow(job: StepJob, onProgress: (done: number, total: number) => void): StepRow {
  const config = resolveConfig({ preset: job.preset, overrides: { 'train.seed': job.seed } });
  const mc = config.model, tc = config.train;
  native.setThreads(job.threads);
  const B = tc.micro_batch_size, T = tc.seq_len, accum = tc.grad_accum_steps;
  const tokensPerStep = B * T * accum;
  const fpt = flopsPerToken(mc, T);
  const peak = job.peakGflops === null ? getPeak({ threads: job.threads, dtype: job.dtype }) : null;
  const peakGflops = job.peakGflops ?? peak!.gflops;

  const model = new LlamaModel(mc, 'f32', job.kernels, job.dtype ?? 'fp32');
  model.params.init(job.seed);
  const opt = new AdamW(mc, model.params, model.grads, tc, model.bf16Weights);
  const buf = model.buffers(B, T, false, job.recompute ?? 'none');
  // Each batch: B rows of T+1 random tokens, inputs = [0, T), targets = [1, T].
  const batches = Array.from({ length: BATCHES }, (_, i) => {
    const toks = randomTokens(B * (T + 1), mc.vocab_size, job.seed * 1000 + i);
    const ids = new Int32Array(B * T), targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      ids.set(toks.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      targets.set(toks.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    return { ids, targets };
  });
  let drawn = 0;
  const next = (ids: Int32Array, targets: Int32Array) => {
    const b = batches[drawn++ % BATCHES]!;
    ids.set(b.ids);
    targets.set(b.targets);
  };

  // The run's meter, read over the measured steps only (warm-up excluded, as for the times).
  let meter: EnergyMeter | null = null;
  let energyNote = 'none';
  if (job.energy) {
    try {
      meter = openMeterFromSpec(job.energy);
    } catch (e) {
      energyNote = `none: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  // Energy of the measured steps alone: the meter is read right before and after each of them, so
  // the progress messages between steps (and any pause there) are not charged to the steps.
  let joules = 0;
  const total = job.warmup + job.steps;
  const times: number[] = [];
  let loss = NaN;
  for (let s = 0; s < total; s++) {
    const e0 = s >= job.warmup && meter ? meter.read() : null;
    const t0 = performance.now();
    const r = trainStep(model, opt, buf, next, accum, tc.lr);
    const ms = performance.now() - t0;
    if (e0 !== null) joules += meter!.read() - e0;
    if (!Number.isFinite(r.loss)) throw new Error(`step ${s + 1}: loss is ${r.loss}`);
    loss = r.loss;
    if (s >= job.warmup) times.push(ms);
    onProgress(s + 1, total);
  }

  const med = median(times);
  const tps = (tokensPerStep * 1000) / med;
  const mem = native.memoryStats();
  return {
    kind: 'step',
    config: job.config,
    kernels: job.kernels,
    dtype: job.dtype,
    ...(job.recompute ? { recompute: job.recompute } : {}),
    threads: job.threads,
    isa: native.isa(),
    matmul_unit: job.dtype === 'bf16' ? native.bf16Unit() : 'fp32',
    cpu: cpuModel(),
    commit: job.commit,
    node: process.version,
    loadavg_1m: os.loadavg()[0]!,
    ok: true,
    error: null,
    tokens_per_s: tps,
    step_ms_median: med,
    step_ms_min: Math.min(...times),
    step_ms_max: Math.max(...times),
    steps: job.steps,
    warmup: job.warmup,
    mfu: mfu(tps, fpt, peakGflops > 0 ? peakGflops * 1e9 : null),
    peak_gflops: peakGflops > 0 ? peakGflops : null,
    peak_bytes: peakRssBytes(),
    native_peak_bytes: mem.storagePeakBytes + mem.workspaceBytes,
    model_bytes: memoryModel(mc, { B, T, kernels: job.kernels, dtype: job.dtype ?? 'fp32', recompute: job.recompute ?? 'none', bf16Operands: buf.bf16Operands }).total,
    activation_bytes: buf.activationBytes(),
    joules_per_token: meter && job.steps > 0 ? joules / (tokensPerStep * job.steps) : null,
    energy_source: meter ? energySource(meter) : energyNote,
    tokens_per_step: tokensPerStep,
    flops_per_token: fpt,
    params: parameterCounts(mc).total,
    speedup: null,
    loss,
  };
}
