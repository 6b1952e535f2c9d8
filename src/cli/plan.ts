// `litespark plan`: memory per device, throughput, time, energy and communication of a
// pre-training run on N nodes of an accelerator, before it is rented (src/plan/ does the
// arithmetic; this file parses flags, resolves the config and the device, and prints).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseOverride, resolveConfig } from '../config/load.js';
import { ConfigError } from '../config/schema.js';
import { ACCELERATORS, DATASHEETS, gpuDevice, isAccelerator, type Device } from '../plan/accelerators.js';
import { mfuFromBench } from '../plan/bench_mfu.js';
import { makePlan, requirePositive, type MfuSource, type Plan } from '../plan/plan.js';
import { fmtBytes, fmtCount } from './format.js';

export interface PlanOptions {
  preset?: string;
  config?: string;
  set?: string[];
  seqLen?: string;
  globalBatch?: string;
  microBatch?: string;
  nodes?: string;
  devicesPerNode?: string;
  accelerator?: string;
  dtype?: string;
  recompute?: string;
  kernels?: string;
  zero?: string;
  mfu?: string;
  mfuFrom?: string;
  tokens?: string;
  linkGbps?: string;
  deviceWatts?: string;
  deviceMemoryGib?: string;
  json?: boolean;
}

/** Default MFU when neither --mfu nor --mfu-from is given: printed as an assumption. */
export const DEFAULT_MFU = 0.4;
/** Default --link-gbps across nodes: one 400 Gb/s InfiniBand NDR port per GPU, the usual H100/H200 node. */
export const DEFAULT_LINK_GBPS = 400;

const MULT: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, B: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 };

/** A number as typed: 627e9, 627B, 4Mi, 0.4. Throws ConfigError naming the flag. */
export function parseNumber(flag: string, text: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(|k|K|M|G|B|T|Ki|Mi|Gi)\s*$/.exec(text);
  const v = m ? Number(m[1]) * MULT[m[2]!]! : NaN;
  if (!Number.isFinite(v)) {
    if (/^\s*-/.test(text)) throw new ConfigError(`plan: ${flag} must be a positive number (got ${text.trim()})`);
    throw new ConfigError(`plan: ${flag} must be a number such as 8, 627e9 or 627B (got '${text}')`);
  }
  return v;
}

/** `--global-batch`: sequences by default or with 'seq'; tokens with 'tok' (a multiple of T). */
export function parseGlobalBatch(text: string, seqLen: number): number {
  const m = /^(.*?)(seq|seqs|sequences|tok|tokens)?\s*$/.exec(text.trim())!;
  const n = requirePositive('--global-batch', parseNumber('--global-batch', m[1]!), true);
  if (!m[2] || m[2].startsWith('seq')) return n;
  if (n % seqLen !== 0) throw new ConfigError(`plan: --global-batch ${n} tokens is not a multiple of the sequence length ${seqLen}`);
  return n / seqLen;
}

function choice<T extends string>(flag: string, v: string | undefined, values: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if ((values as readonly string[]).includes(v)) return v as T;
  throw new ConfigError(`plan: ${flag} must be one of ${values.join(', ')} (got '${v}')`);
}

const posNum = (flag: string, v: string | undefined, integer = false) =>
  v === undefined ? undefined : requirePositive(flag, parseNumber(flag, v), integer);

/** `cpu`: this machine, its measured peak (src/metrics/peak.ts) and its memory. */
async function cpuDevice(dtype: 'bf16' | 'fp32', watts: number | undefined, memoryBytes: number | undefined): Promise<Device> {
  const { getPeak } = await import('../metrics/peak.js');
  const p = getPeak({ threads: 0, dtype });
  return {
    accelerator: 'cpu',
    name: `this machine: ${p.cpu}, ${p.threads} threads`,
    peakFlops: p.gflops * 1e9,
    memoryBytes: memoryBytes ?? os.totalmem(),
    watts: watts ?? null,
    source: `measured ${dtype} peak on the ${p.unit === 'fp32' ? `${p.isa} FMA` : p.unit} unit (litespark peak${p.cached ? ', cached' : ''}); memory: os.totalmem()` +
      (watts === undefined ? '; power unknown (give --device-watts)' : '; power: --device-watts'),
  };
}

/** Resolves flags into a plan (throws ConfigError naming the flag on bad input). */
export async function planFromOptions(opts: PlanOptions): Promise<Plan> {
  if (opts.preset === undefined && opts.config === undefined) throw new ConfigError('plan: give --preset NAME or --config FILE');
  const accelerator = opts.accelerator ?? 'h100';
  if (!isAccelerator(accelerator)) throw new ConfigError(`plan: --accelerator must be one of ${ACCELERATORS.join(', ')} (got '${accelerator}')`);
  const overrides: Record<string, unknown> = Object.fromEntries((opts.set ?? []).map(parseOverride));
  const config = resolveConfig({ preset: opts.preset, file: opts.config, overrides });
  const gpu = accelerator !== 'cpu';
  const dtype = choice('--dtype', opts.dtype, ['bf16', 'fp32'] as const, gpu ? 'bf16' : config.runtime.dtype);
  const recompute = choice('--recompute', opts.recompute, ['none', 'selective', 'full'] as const, config.runtime.recompute);
  const kernels = choice('--kernels', opts.kernels, ['litespark', 'standard'] as const, config.runtime.kernels);
  const zero = Number(choice('--zero', opts.zero, ['0', '1'] as const, '0')) as 0 | 1;
  const seqLen = posNum('--seq-len', opts.seqLen, true) ?? config.train.seq_len;
  if (seqLen > config.model.max_position_embeddings) {
    throw new ConfigError(`plan: --seq-len ${seqLen} is above the model's max_position_embeddings ${config.model.max_position_embeddings}`);
  }
  const nodes = posNum('--nodes', opts.nodes, true) ?? 1;
  const devicesPerNode = posNum('--devices-per-node', opts.devicesPerNode, true) ?? (gpu ? 8 : 1);
  const microBatch = posNum('--micro-batch', opts.microBatch, true) ?? config.train.micro_batch_size;
  const ranks = nodes * devicesPerNode;
  const globalBatch = opts.globalBatch === undefined
    ? ranks * microBatch * config.train.grad_accum_steps
    : parseGlobalBatch(opts.globalBatch, seqLen);
  const tokens = posNum('--tokens', opts.tokens) ?? null;
  // One node: the ring stays on NVLink / Infinity Fabric; more: the network is its slowest link.
  const linkGbps = posNum('--link-gbps', opts.linkGbps) ??
    (nodes === 1 && accelerator !== 'cpu' ? DATASHEETS[accelerator].intraNodeGbps : DEFAULT_LINK_GBPS);
  const watts = posNum('--device-watts', opts.deviceWatts);
  const memGib = posNum('--device-memory-gib', opts.deviceMemoryGib);
  const memoryBytes = memGib === undefined ? undefined : memGib * 2 ** 30;

  if (opts.mfu !== undefined && opts.mfuFrom !== undefined) throw new ConfigError('plan: give --mfu or --mfu-from, not both');
  let mfus: MfuSource[];
  if (opts.mfuFrom !== undefined) {
    let rows: unknown;
    try {
      rows = JSON.parse(readFileSync(opts.mfuFrom, 'utf8'));
    } catch (e) {
      throw new ConfigError(`plan: --mfu-from ${opts.mfuFrom}: ${(e as Error).message.split('\n')[0]}`);
    }
    mfus = mfuFromBench(rows, opts.mfuFrom, dtype, recompute, opts.preset ?? '');
  } else if (opts.mfu !== undefined) {
    // one or more, comma-separated: one column each
    mfus = opts.mfu.split(',').map((t) => {
      const v = parseNumber('--mfu', t);
      if (!(v > 0 && v <= 1)) throw new ConfigError(`plan: --mfu must be in (0, 1], e.g. 0.4 for 40% (got ${t.trim()})`);
      return { label: `MFU ${+(v * 100).toFixed(2)}%`, mfu: v, source: '--mfu' };
    });
  } else {
    mfus = [{ label: 'assumed', mfu: DEFAULT_MFU, source: `default (give --mfu or --mfu-from)` }];
  }

  const device = gpu
    ? gpuDevice(accelerator, dtype, { ...(watts === undefined ? {} : { watts }), ...(memoryBytes === undefined ? {} : { memoryBytes }) })
    : await cpuDevice(dtype, watts, memoryBytes);
  return makePlan({
    name: opts.preset ?? opts.config ?? 'config',
    model: config.model, seqLen, globalBatch, microBatch, nodes, devicesPerNode, device,
    dtype, kernels, recompute, zero,
    layout: gpu && dtype === 'bf16' ? 'mixed' : 'trainer',
    mfus, tokens, linkGbps,
    linkNote: opts.linkGbps !== undefined ? '--link-gbps'
      : nodes === 1 && gpu ? `${accelerator === 'mi300x' ? 'Infinity Fabric' : 'NVLink'} inside one node, datasheet`
      : `default: one ${DEFAULT_LINK_GBPS} Gb/s network port per device`,
  });
}

// ---- printing -------------------------------------------------------------------------------

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
function dur(s: number): string {
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 120) return `${s.toFixed(2)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  if (s < 3 * 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}
const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

export function formatPlan(p: Plan): string {
  const out: string[] = [];
  const say = (l = '') => out.push(l);
  const j = p.job, d = p.device, m = p.memory;
  const peakT = d.peakFlops / 1e12;
  say(`litespark plan: ${p.name} on ${j.nodes} node${j.nodes > 1 ? 's' : ''} x ${j.devicesPerNode} ${d.accelerator} = ${j.devices} device${j.devices > 1 ? 's' : ''} (data parallel, ${j.ranks} ranks)`);
  say(`  model     Llama ${fmtCount(p.model.parameters)} params (${fmtCount(p.model.nonEmbedding)} non-embedding with the head), ${p.model.layers} layers, hidden ${p.model.hidden}`);
  say(`            ${(p.model.flopsPerToken / 1e9).toFixed(2)} GFLOP/token at T=${j.seqLen} (6P + 12LdT; recomputation not counted)`);
  say(`  batch     ${int(j.globalBatch)} sequences x ${j.seqLen} = ${int(j.globalBatchTokens)} tokens/step = ${j.ranks} ranks x micro-batch ${j.microBatch} x ${j.gradAccum} accumulation`);
  say(`  run       ${j.dtype}, kernels ${j.kernels}, recompute ${j.recompute}, ZeRO-${j.zero}`);
  say(`  device    ${d.name}: ${peakT >= 10 ? peakT.toFixed(0) : peakT.toFixed(2)} TFLOP/s ${j.dtype} peak, ${gib(d.memoryBytes)}, ${d.watts === null ? 'power unknown' : `${d.watts} W`}`);
  say(`            source: ${d.source}`);
  say();
  const layout = j.layout === 'mixed'
    ? 'bf16 mixed precision: bf16 weights and gradients, fp32 master weights + AdamW moments, bf16 activations'
    : j.bf16Operands
      ? "the trainer's own buffers: fp32 weights + their bf16 copy, fp32 gradients and AdamW moments, activations with the matrix-product operands in bf16 (this CPU's bf16 matrix unit)"
      : `the trainer's own buffers: fp32 weights, gradients, AdamW moments and activations${j.dtype === 'bf16' ? '; bf16 rounds GEMM operands only' : ''}`;
  say(`memory per device (${layout})`);
  const row = (k: string, v: number, note = '') => say(`  ${k.padEnd(12)} ${fmtBytes(v).padStart(10)}${note ? `  ${note}` : ''}`);
  row('parameters', m.parameters, j.bf16Operands ? 'fp32 + bf16 copy of the matrices' : undefined);
  row('gradients', m.gradients);
  row('optimizer', m.optimizer, `${j.layout === 'mixed' ? 'fp32 master + 2 moments' : '2 moments'}${j.zero === 1 ? `, ZeRO-1: 1/${j.ranks} per rank` : ''}`);
  row('activations', m.activations, `micro-batch ${j.microBatch} x ${j.seqLen}, recompute ${j.recompute}`);
  row('workspace', m.workspace, 'gradient scratch, rotary tables');
  row('scratch', m.scratch, j.kernels === 'standard' ? "the loss's row sums"
    : j.layout === 'trainer' && j.bf16Operands ? "the head's logit chunk and packed weights" : "the head's logit chunk");
  row('total', m.total, `of ${fmtBytes(m.capacity)}: ${m.fits ? 'fits' : 'does NOT fit'}; largest micro-batch that fits: ${m.largestMicroBatch}`);
  say("  (not counted: the runtime context, allocator fragmentation, communication buffers, the kernels' per-thread blocks)");
  say();
  const s = p.scenarios;
  const head = (k: string) => `  ${k.padEnd(30)}`;
  const cols = (f: (x: (typeof s)[number]) => string) => s.map((x) => f(x).padStart(22)).join('');
  say(`throughput at ${peakT >= 10 ? peakT.toFixed(0) : peakT.toFixed(2)} TFLOP/s x ${j.devices} x MFU`);
  say(head('') + cols((x) => x.label));
  say(head('MFU') + cols((x) => pct(x.mfu)));
  say(head('tokens/s (job)') + cols((x) => int(x.tokensPerSecond)));
  say(head('tokens/s per device') + cols((x) => int(x.tokensPerSecondPerDevice)));
  say(head('tokens/day') + cols((x) => fmtCount(Math.round(x.tokensPerDay))));
  say(head('step time') + cols((x) => dur(x.stepSeconds)));
  if (s[0]?.train) {
    say(head(`time for ${fmtCount(s[0].train.tokens)} tokens`) + cols((x) => dur(x.train!.seconds)));
    say(head('energy (estimated)') + cols((x) => (x.train!.kWh === null ? 'n/a' : `${int(x.train!.kWh)} kWh`)));
  }
  say(head('energy per day (estimated)') + cols((x) => (x.kWhPerDay === null ? 'n/a' : `${int(x.kWhPerDay)} kWh`)));
  say(head('joules per token (estimated)') + cols((x) => (x.joulesPerToken === null ? 'n/a' : x.joulesPerToken.toPrecision(3))));
  for (const x of s) say(`  ${x.label}: ${x.source}`);
  say(`  energy: ${d.watts === null ? 'n/a without a power figure (--device-watts)' : `estimated = ${d.watts} W (${d.accelerator === 'cpu' ? '--device-watts' : 'datasheet TDP or --device-watts'}) x ${j.devices} devices x time; devices only (no hosts, network, cooling)`}`);
  say();
  const c = p.comm;
  if (c.kind === 'none') {
    say('communication: none (one rank)');
  } else {
    say(`communication per step: ${c.kind} of ${fmtBytes(c.gradientBytes)} of ${j.layout === 'mixed' ? 'bf16' : 'fp32'} gradients over ${j.ranks} ranks`);
    say(`  ${fmtBytes(c.bytesPerStep)} sent per rank (${c.kind === 'ring all-reduce' ? '2(n-1)/n x gradients' : '(n-1)/n x (gradients + weights)'}), ${dur(c.seconds)} at ${c.linkGbps} Gb/s per device (${c.linkNote})`);
    for (const x of s) {
      say(`  ${x.label}: ${x.commHidden ? 'hides' : `does NOT hide (${dur(x.exposedCommSeconds)} exposed per step)`} behind the last micro-batch's backward (${dur(x.overlapSeconds)})`);
    }
    say('  assumption: buckets reduced while backward runs (2/3 of a micro-batch\'s compute); the ring runs at its slowest link');
  }
  return out.join('\n') + '\n';
}

export async function planCommand(opts: PlanOptions): Promise<number> {
  const plan = await planFromOptions(opts);
  process.stdout.write(opts.json ? JSON.stringify(plan, null, 2) + '\n' : formatPlan(plan));
  return 0;
}

/** The datasheet rows, for --help. */
export const ACCELERATOR_HELP = `${ACCELERATORS.join('|')}, default h100 (${Object.entries(DATASHEETS).map(([k, v]) => `${k}: ${v.bf16Tflops} TFLOP/s bf16, ${v.memoryGB} GB, ${v.tdpWatts} W`).join('; ')}; cpu: this machine, measured)`;
