// `litespark train`: resolves the config, runs the trainer, and shows a progress line.
import cliProgress from 'cli-progress';
import { basename, dirname } from 'node:path';
import { parseOverride, resolveConfig } from '../config/load.js';
import { CheckpointError, readModelConfig, readTrainerStateJson, resolveCheckpoint } from '../checkpoint/checkpoint.js';
import type { Config } from '../config/schema.js';
import { train, type StartInfo, type StepMetrics, type Summary } from '../train/trainer.js';
import { fmtBytes, fmtCount, fmtDuration, fmtPct, unitName } from './format.js';

export interface TrainOptions {
  preset?: string;
  config?: string;
  data?: string;
  steps?: number;
  out?: string;
  kernels?: string;
  dtype?: string;
  recompute?: string;
  seed?: number;
  threads?: number;
  set?: string[];
  resume?: string;
  init?: string;
  /** Power draw for the energy estimate when no counter is readable (runtime.watts). */
  watts?: number;
}

const say = (line = '') => process.stdout.write(line + '\n');

/** How a bf16 unit is named to people. */
function printStart(i: StartInfo): void {
  const c = i.config;
  const m = i.memory;
  say(`litespark train -> ${i.runDir}`);
  const unit = i.dtype === 'bf16' ? `bf16 on ${unitName(i.matmulUnit)}` : 'fp32';
  say(`  machine   ${i.cpu}, ${i.threads} threads, ${i.isa} path; kernels ${i.kernels}, ${unit}`);
  say(
    `  model     Llama ${fmtCount(i.parameters.total)} params (${fmtCount(i.parameters.nonEmbedding)} non-embedding): ` +
      `${c.model.num_hidden_layers} layers, hidden ${c.model.hidden_size}, ${c.model.num_attention_heads} heads / ` +
      `${c.model.num_key_value_heads} kv, ffn ${c.model.intermediate_size}, vocab ${c.model.vocab_size}`,
  );
  say(`  data      ${i.data.description}`);
  say(
    `            ${fmtCount(i.data.trainTokens)} train / ${fmtCount(i.data.valTokens)} validation tokens, ` +
      `tokenizer vocab ${i.data.vocabSize}, shards in ${i.data.dir}`,
  );
  say(
    `  batch     ${c.train.micro_batch_size} x ${c.train.seq_len} tokens x ${c.train.grad_accum_steps} accumulation = ` +
      `${i.tokensPerStep} tokens/step, ${c.train.steps} steps`,
  );
  say(
    `  memory    ${fmtBytes(m.total)}: params ${fmtBytes(m.parameters)}${i.bf16Operands ? ' (fp32 + bf16 copy)' : ''}, grads ${fmtBytes(m.gradients)}, AdamW ${fmtBytes(m.optimizer)}, ` +
      `activations ${fmtBytes(m.activations)} (recompute ${i.recompute}${i.bf16Operands ? '; matrix-product operands in bf16' : ''}), workspace ${fmtBytes(m.workspace)}, ` +
      `head scratch ${fmtBytes(m.scratch)}`,
  );
  say(
    `  MFU       ${(i.flopsPerToken / 1e6).toFixed(2)} MFLOP/token (6P + 12LdT) vs measured ${i.dtype === 'bf16' ? `bf16 ${unitName(i.matmulUnit)}` : 'fp32'} peak ` +
      (i.peakGflops === null ? 'n/a' : `${i.peakGflops.toFixed(0)} GFLOP/s${i.peakCached ? ' (cached; `litespark peak --remeasure`)' : ''}`),
  );
  say(`  energy    ${i.energy.kind}: ${i.energy.source}`);
  for (const u of i.energy.unavailable) say(`            ${u.name} unavailable: ${u.reason}`);
}

/** Joules in J, kJ or MJ. */
function fmtJoules(j: number): string {
  const a = Math.abs(j);
  return a >= 1e6 ? `${(j / 1e6).toFixed(2)} MJ` : a >= 1e3 ? `${(j / 1e3).toFixed(2)} kJ` : `${j.toFixed(1)} J`;
}

function printEnd(s: Summary): void {
  say();
  say(`${s.interrupted ? 'stopped early' : 'done'}: ${s.steps} steps, ${fmtCount(s.tokens)} tokens in ${fmtDuration(s.seconds)}`);
  say(`  loss      validation ${s.initialValLoss.toFixed(3)} before -> ${s.finalValLoss.toFixed(3)} after (train ${s.finalTrainLoss.toFixed(3)})`);
  say(`  speed     ${s.tokensPerSecond.toFixed(0)} tokens/s, median step ${s.stepMsMedian.toFixed(1)} ms, MFU ${fmtPct(s.mfu)}`);
  say(`  memory    peak RSS ${fmtBytes(s.peakRssBytes)}`);
  const e = s.energy;
  if (e) {
    say(`  energy    ${e.kind} ${fmtJoules(e.joules)}${s.resumedFrom > 0 ? ` (this run ${fmtJoules(e.joulesThisRun)})` : ''}, ` +
      `${e.joulesPerToken.toPrecision(3)} J/token, ${e.kwh.toPrecision(3)} kWh, ${e.co2eGrams.toPrecision(3)} g CO2e at ${e.gridGco2PerKwh} g/kWh`);
    say(`            source: ${e.source}`);
  } else say(`  energy    n/a: ${s.energyError ?? 'no meter'}`);
  if (s.sample) {
    say('  sample    ' + JSON.stringify(s.sample.prompt) + ' ->');
    say(
      (s.sample.prompt + s.sample.text)
        .split('\n')
        .map((l) => '    | ' + l)
        .join('\n'),
    );
  }
}

/** RUN for RUN/checkpoints/step-N, else undefined. */
function runDirOf(ckpt: string): string | undefined {
  const parent = dirname(ckpt);
  return basename(parent) === 'checkpoints' ? dirname(parent) : undefined;
}

export async function trainCommand(opts: TrainOptions): Promise<number> {
  const overrides: Record<string, unknown> = Object.fromEntries((opts.set ?? []).map(parseOverride));
  if (opts.steps !== undefined) overrides['train.steps'] = opts.steps;
  if (opts.seed !== undefined) overrides['train.seed'] = opts.seed;
  if (opts.threads !== undefined) overrides['runtime.threads'] = opts.threads;
  if (opts.kernels !== undefined) overrides['runtime.kernels'] = opts.kernels;
  if (opts.dtype !== undefined) overrides['runtime.dtype'] = opts.dtype;
  if (opts.recompute !== undefined) overrides['runtime.recompute'] = opts.recompute;
  if (opts.out !== undefined) overrides['runtime.out'] = opts.out;
  if (opts.data !== undefined) overrides['data.source'] = opts.data;
  if (opts.watts !== undefined) overrides['runtime.watts'] = opts.watts;

  // --resume: the checkpoint's own config (flags may extend it, e.g. --steps); the run directory
  // is the one the checkpoint lives in. --init: the model's shape comes from the weights.
  let resume: string | undefined;
  let base: Config | undefined;
  if (opts.resume !== undefined) {
    if (opts.resume === 'latest' && opts.out === undefined) throw new CheckpointError('--resume latest needs --out RUN_DIR (the run to continue)');
    resume = resolveCheckpoint(opts.resume === 'latest' ? opts.out! : opts.resume);
    const state = readTrainerStateJson(resume);
    if (!state) throw new CheckpointError(`${resume}: no trainer_state (an exported model); use --init to start a new run from its weights`);
    base = state.config;
    if (opts.out === undefined) overrides['runtime.out'] = runDirOf(resume) ?? state.config.runtime.out;
  }
  let init: string | undefined;
  if (opts.init !== undefined) {
    if (resume) throw new CheckpointError('--init and --resume exclude each other');
    init = resolveCheckpoint(opts.init);
    overrides['model'] = readModelConfig(init);
  }
  const config = resolveConfig({ preset: opts.preset, file: opts.config, overrides, ...(base ? { base } : {}) });

  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130);
    stop = true;
    process.stderr.write('\nlitespark: stopping after this step (Ctrl-C again to abort)\n');
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  const bar = new cliProgress.SingleBar(
    {
      format: 'step {value}/{total} |{bar}| loss {loss} | lr {lr} | {tps} tok/s | MFU {mfu} | {jpt} J/tok | {elapsed} elapsed, ETA {remaining}',
      barsize: 20,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  try {
    await train(config, {
      onStatus: (m) => {
        if (!started) say(`litespark: ${m}`);
      },
      onStart: (info) => {
        printStart(info);
        started = true;
        if (info.resumedFrom > 0) say(`  resumed   at step ${info.resumedFrom}`);
        bar.start(config.train.steps, info.resumedFrom, { loss: '-', lr: '-', tps: '-', mfu: '-', jpt: '-', elapsed: '0s', remaining: '--' });
      },
      onEval: (e) => {
        if (!started) return;
        if (e.step === 0) say(`  step 0    validation loss ${e.val_loss.toFixed(4)}`);
      },
      onStep: (m: StepMetrics) =>
        bar.update(m.step, {
          loss: m.loss.toFixed(4),
          lr: m.lr.toExponential(2),
          tps: m.tokens_per_s.toFixed(0),
          mfu: fmtPct(m.mfu),
          jpt: m.joules_per_token === null ? 'n/a' : m.joules_per_token.toPrecision(3),
          elapsed: fmtDuration(m.elapsed_s),
          remaining: fmtDuration(m.eta_s),
        }),
      onEnd: (s) => {
        bar.stop();
        printEnd(s);
      },
      shouldStop: () => stop,
      onCheckpoint: (c) => {
        if (c.step < config.train.steps && !stop) return; // periodic saves stay quiet under the bar
        bar.stop();
        say(`  checkpoint ${c.dir} (step ${c.step}, ${c.seconds.toFixed(1)} s)`);
      },
    }, { ...(resume ? { resume } : {}), ...(init ? { init } : {}) });
  } finally {
    bar.stop();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  return 0;
}
