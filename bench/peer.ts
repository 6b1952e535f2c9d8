// The BENCH.md peer comparison: the identical Llama configuration trained in PyTorch (Debian's
// python3-torch, CPU, eager, torch.optim.AdamW; bench/pytorch/llama_train.py) and in litespark
// (both kernel paths, via the `litespark bench` worker), in ONE run, on the same thread count,
// with one FLOPs formula (6·P + 12·L·d·T) and one measured peak for every MFU figure.
//
//   npx tsc -p . && node dist/bench/peer.js --config S [--threads 2] [--steps 10] [--warmup 3]
//                                           [--dtype fp32,bf16] [--json FILE] [--no-install]
//
// Per dtype (default fp32 only), PyTorch runs in several configurations: with glibc malloc
// (default) and with tcmalloc (LD_PRELOAD of libtcmalloc_minimal.so.4, what PyTorch's CPU
// performance guide recommends); for bf16 (torch.autocast on the CPU, fp32 master weights) also
// its best known CPU configuration: tcmalloc plus ATEN_CPU_CAPABILITY=avx512 (ATen's own kernels
// on AVX-512 instead of the AVX2 they pick by default) and ONEDNN_MAX_CPU_ISA=AVX512_CORE_AMX
// (oneDNN's bf16 matmuls on AMX tiles; Debian's oneDNN 2.6 already picks AMX, so there it only
// guards against a build where AMX is opt-in). litespark runs with the same dtype and is compared
// with each PyTorch configuration of that dtype, and with the fastest.
// python3-torch and libtcmalloc-minimal4 are an optional benchmark dependency, never installed by
// `npm ci`: when missing and running as root, this script installs them with apt-get and says so;
// otherwise it prints the command to run.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../src/config/load.js';
import { fmtBytes, fmtPct } from '../src/cli/format.js';
import { flopsPerToken, mfu } from '../src/metrics/flops.js';
import { machineLine } from '../src/bench/report.js';
import { describeBenchMachine, peakFor, runJob } from '../src/bench/run.js';
import { parseConfigs, parseDtypes, type BenchDtype, type StepRow } from '../src/bench/spec.js';
import { failureReason } from '../src/bench/util.js';
import { energySource, estimateJoules, openMeterFromSpec, type EnergyMeter, type EnergyMeterSpec } from '../src/metrics/energy.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'pytorch', 'llama_train.py');
/** Environment variables that pin OpenBLAS to a core type or cache size: a current numpy/torch is slower with them. */
const OPENBLAS_PINS = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];
/** ISA knobs of ATen and oneDNN: set only by the configuration that names them, never inherited. */
const ISA_KNOBS = ['ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA'];

const say = (line = '') => process.stdout.write(line + '\n');

interface Args {
  config: string;
  threads: number;
  steps: number;
  warmup: number;
  json?: string;
  install: boolean;
  dtypes: BenchDtype[];
  /** --dtype was given: a dtype column and per-configuration ratio lines (without it, the fp32 output of before). */
  dtypeGiven: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { config: 'S', threads: os.availableParallelism(), steps: 10, warmup: 3, install: true, dtypes: ['fp32'], dtypeGiven: false };
  const int = (flag: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) usage(`${flag} must be an integer >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === '--config') a.config = argv[++i] ?? usage('--config needs a value');
    else if (f === '--threads') a.threads = int(f, argv[++i], 1);
    else if (f === '--steps') a.steps = int(f, argv[++i], 1);
    else if (f === '--warmup') a.warmup = int(f, argv[++i], 0);
    else if (f === '--json') a.json = argv[++i] ?? usage('--json needs a file');
    else if (f === '--no-install') a.install = false;
    else if (f === '--dtype') {
      try {
        a.dtypes = [...new Set(parseDtypes(argv[++i] ?? usage('--dtype needs a value')))];
      } catch (e) {
        usage((e as Error).message);
      }
      a.dtypeGiven = true;
    } else if (f === '--help' || f === '-h') {
      say('usage: node dist/bench/peer.js --config XS|S|L [--threads N] [--steps 10] [--warmup 3] [--dtype fp32,bf16] [--json FILE] [--no-install]');
      process.exit(0);
    } else usage(`unknown flag '${f}'`);
  }
  return a;
}

function usage(msg: string): never {
  process.stderr.write(`peer: ${msg}\n(run with --help for usage)\n`);
  process.exit(2);
}

function torchVersion(): string | null {
  if (!existsSync(PYTHON)) return null;
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** libtcmalloc_minimal.so.4 from the linker cache, else the usual Debian paths. */
function findTcmalloc(): string | null {
  const r = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  const m = /libtcmalloc_minimal\.so\.4 \([^)]*\) => (\S+)/.exec(r.stdout ?? '');
  if (m && existsSync(m[1]!)) return m[1]!;
  const arch = os.arch() === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  return [`/usr/lib/${arch}/libtcmalloc_minimal.so.4`, '/usr/lib/libtcmalloc_minimal.so.4'].find((p) => existsSync(p)) ?? null;
}

function aptInstall(packages: string[]): void {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const cmd = `apt-get update && apt-get install -y ${packages.join(' ')}`;
  if (!isRoot) {
    process.stderr.write(`peer: missing ${packages.join(', ')} (optional benchmark dependencies); as root run:\n  ${cmd}\n`);
    process.exit(1);
  }
  say(`peer: installing ${packages.join(', ')} with apt-get (running as root; an optional benchmark dependency, never installed by npm ci)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', ...packages]]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      process.stderr.write(`peer: 'apt-get ${args.join(' ')}' failed (exit ${r.status})\n`);
      process.exit(1);
    }
  }
}

interface PeerRow {
  name: string;
  framework: 'pytorch' | 'litespark';
  dtype: BenchDtype;
  /** PyTorch rows: the environment variables this configuration sets (LD_PRELOAD, ISA knobs). */
  env: Record<string, string>;
  ok: boolean;
  error: string | null;
  tokens_per_s: number | null;
  step_ms_median: number | null;
  step_ms_min: number | null;
  step_ms_max: number | null;
  mfu: number | null;
  peak_bytes: number | null;
  /** tokens/s over the fastest PyTorch run of the same dtype. */
  vs_pytorch_best: number | null;
  /** litespark rows: tokens/s over each PyTorch configuration of the same dtype, by name. */
  vs_pytorch: Record<string, number | null>;
  /** 1-minute load average when the run ended: above --threads, other work shared the cores. */
  loadavg_1m: number | null;
  /** Energy of the measured steps / their tokens, with the meter of the litespark rows; null when unknown. */
  joules_per_token: number | null;
  energy_source: string;
  detail: Record<string, unknown>;
}

/** One PyTorch run in its own process; its JSON line, or a failed row. */
/**
 * The run's meter applied to a PyTorch process: the estimates (per-core x CPU time, --watts x
 * wall time) to the CPU and wall seconds the script reports for its measured steps; a counter
 * (RAPL, NVML) read by this process when the script reports the end of its warm-up and of its
 * last step (the counters are machine-wide: what the child used while it ran).
 */
interface PeerEnergy {
  spec: EnergyMeterSpec;
  /** The counter, opened in this process; null for the estimates. */
  counter: EnergyMeter | null;
  source: string;
}

function runPytorch(name: string, dtype: BenchDtype, args: string[], baseEnv: NodeJS.ProcessEnv, set: Record<string, string>,
  status: (s: string) => void, energy: PeerEnergy | null): Promise<PeerRow> {
  const failed = (error: string): PeerRow => ({
    name, framework: 'pytorch', dtype, env: set, ok: false, error, tokens_per_s: null, step_ms_median: null, step_ms_min: null,
    step_ms_max: null, mfu: null, peak_bytes: null, vs_pytorch_best: null, vs_pytorch: {}, loadavg_1m: os.loadavg()[0]!,
    joules_per_token: null, energy_source: 'none', detail: {},
  });
  let e0: number | null = null, e1: number | null = null;
  return new Promise((resolve) => {
    const child = spawn(PYTHON, [SCRIPT, ...args, '--dtype', dtype], { env: { ...baseEnv, ...set }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      err = (err + c).slice(-8192);
      const last = c.trim().split('\n').pop() ?? '';
      try {
        const e = JSON.parse(last) as { event?: string; done?: number; total?: number };
        if (e.event === 'progress') {
          status(`${name}: step ${e.done}/${e.total}`);
          const warmup = e.total! - Number(args[args.indexOf('--steps') + 1]);
          if (energy?.counter && e.done === warmup) e0 = energy.counter.read();
          if (energy?.counter && e.done === e.total) e1 = energy.counter.read();
        }
      } catch {
        // not a progress line
      }
    });
    child.on('error', (e) => resolve(failed(e.message)));
    child.on('close', (code, signal) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error('exit');
        const r = JSON.parse(line) as Record<string, number | string | null>;
        if ((r.dtype ?? 'fp32') !== dtype) throw new Error('dtype');
        const tokens = (r.tokens_per_step as number) * (r.steps as number);
        let joules: number | null = null;
        if (energy?.counter) joules = e0 !== null && e1 !== null ? e1 - e0 : null;
        else if (energy && typeof r.cpu_s_measured === 'number') {
          joules = estimateJoules(energy.spec, { cpuSeconds: r.cpu_s_measured, wallSeconds: r.wall_s_measured as number });
        }
        resolve({
          name, framework: 'pytorch', dtype, env: set, ok: true, error: null,
          tokens_per_s: r.tokens_per_s as number, step_ms_median: r.step_ms_median as number,
          step_ms_min: r.step_ms_min as number, step_ms_max: r.step_ms_max as number, mfu: null,
          peak_bytes: r.peak_bytes as number, vs_pytorch_best: null, vs_pytorch: {}, loadavg_1m: os.loadavg()[0]!,
          joules_per_token: joules === null ? null : joules / tokens, energy_source: joules === null ? 'none' : energy!.source, detail: r,
        });
      } catch {
        const why = failureReason(err.split('\n').filter((l) => !l.startsWith('{"event"')).join('\n'));
        resolve(failed(signal ? `killed by ${signal}` : why || `exit ${code}`));
      }
    });
  });
}

function fromLitespark(name: string, dtype: BenchDtype, r: StepRow): PeerRow {
  return {
    name, framework: 'litespark', dtype, env: {}, ok: r.ok, error: r.error, tokens_per_s: r.tokens_per_s, step_ms_median: r.step_ms_median,
    step_ms_min: r.step_ms_min, step_ms_max: r.step_ms_max, mfu: r.mfu, peak_bytes: r.peak_bytes, vs_pytorch_best: null, vs_pytorch: {},
    loadavg_1m: r.loadavg_1m, joules_per_token: r.joules_per_token, energy_source: r.energy_source,
    detail: { isa: r.isa, native_peak_bytes: r.native_peak_bytes, commit: r.commit, loss: r.loss },
  };
}

function table(rows: PeerRow[], dtypeColumn: boolean): string {
  const ms = (x: number | null) => (x === null ? '—' : x.toFixed(0));
  const head = ['run', ...(dtypeColumn ? ['dtype'] : []), 'tokens/s', 'step ms median (min-max)', 'MFU', 'peak RSS', 'vs PyTorch best', 'J/token', 'load'];
  const body = rows.map((r) => [
    r.name,
    ...(dtypeColumn ? [r.dtype] : []),
    r.ok ? r.tokens_per_s!.toFixed(0) : 'FAILED',
    r.ok ? `${ms(r.step_ms_median)} (${ms(r.step_ms_min)}-${ms(r.step_ms_max)})` : '—',
    r.ok ? fmtPct(r.mfu) : '—',
    r.peak_bytes === null ? '—' : fmtBytes(r.peak_bytes),
    r.vs_pytorch_best === null ? '—' : `${r.vs_pytorch_best.toFixed(2)}x`,
    r.joules_per_token === null ? '—' : `${r.energy_source.startsWith('estimated') ? '~' : ''}${r.joules_per_token.toPrecision(3)}`,
    r.loadavg_1m === null ? '—' : r.loadavg_1m.toFixed(2),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let bench;
  try {
    const configs = parseConfigs(args.config);
    if (configs.length !== 1) usage('--config takes one config');
    bench = configs[0]!;
  } catch (e) {
    usage((e as Error).message);
  }

  // 1. The peer's dependencies (optional, never part of npm ci).
  let torch = torchVersion();
  let tcmalloc = findTcmalloc();
  const missing = [...(torch ? [] : ['python3-torch']), ...(tcmalloc ? [] : ['libtcmalloc-minimal4'])];
  if (missing.length && !args.install) usage(`missing ${missing.join(', ')} and --no-install given`);
  if (missing.length) {
    aptInstall(missing);
    torch = torchVersion();
    tcmalloc = findTcmalloc();
    if (!torch) usage(`${PYTHON} still cannot import torch after installing python3-torch`);
  }

  // 2. One config, one thread count, one FLOPs formula, one measured peak for every row.
  const config = resolveConfig({ preset: bench.preset });
  const mc = config.model, tc = config.train;
  const machine = describeBenchMachine(args.threads, args.dtypes);
  const fpt = flopsPerToken(mc, tc.seq_len);
  // MFU per dtype against the peak of the unit that dtype runs on (fp32 FMA, bf16 unit).
  const peakFlops = (dtype: BenchDtype) => {
    const g = peakFor(machine, dtype);
    return g === null ? null : g * 1e9;
  };
  say(`peer: ${bench.name} (${bench.preset}): dim ${mc.hidden_size}, ${mc.num_hidden_layers} layers, ${mc.num_attention_heads} heads / ` +
    `${mc.num_key_value_heads} kv, ffn ${mc.intermediate_size}, vocab ${mc.vocab_size}, seq ${tc.seq_len}, batch ${tc.micro_batch_size}; ` +
    `${args.dtypes.join(', ')}, AdamW, ${args.warmup} warm-up + ${args.steps} measured steps`);
  if (args.dtypes.includes('bf16')) {
    say('bf16: litespark runs every projection, the head and (on a bf16 matrix unit: AMX, AVX-512 BF16) flash attention with bf16 operands and fp32 accumulation ' +
      '(norms, softmax statistics, loss, AdamW in fp32); PyTorch runs forward + loss under torch.autocast(cpu, bfloat16); ' +
      'both keep fp32 master weights');
  }
  say(`machine: ${machineLine(machine)}; commit ${machine.commit ?? 'n/a'}${machine.dirty ? ' (dirty)' : ''}`);
  say(`PyTorch: ${PYTHON}, torch ${torch}; tcmalloc: ${tcmalloc ?? 'not found'}`);
  // One meter for every row: the litespark workers open it again; PyTorch's rows get it here.
  let peerEnergy: PeerEnergy | null = null;
  try {
    const spec = machine.energy_meter;
    const counter = spec.type === 'rapl' || spec.type === 'nvml' ? openMeterFromSpec(spec) : null;
    const meter = counter ?? openMeterFromSpec(spec);
    peerEnergy = { spec, counter, source: energySource(meter) };
  } catch (e) {
    say(`energy: the run's meter could not be opened again (${(e as Error).message}): no J/token`);
  }
  say(`energy: ${machine.energy}`);

  // 3. PyTorch at its best: no OpenBLAS pins, threads fixed for OpenMP and OpenBLAS alike; ISA
  // knobs only where a configuration sets them.
  const pyEnv: NodeJS.ProcessEnv = { ...process.env };
  const unset = OPENBLAS_PINS.filter((k) => pyEnv[k] !== undefined);
  for (const k of OPENBLAS_PINS) delete pyEnv[k];
  say(unset.length
    ? `PyTorch runs: unset ${unset.map((k) => `${k}=${process.env[k]}`).join(', ')} (they pin OpenBLAS to a core type / cache size and slow a current torch)`
    : `PyTorch runs: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE not set (they would be unset: they slow a current torch)`);
  const unsetIsa = ISA_KNOBS.filter((k) => pyEnv[k] !== undefined);
  for (const k of ISA_KNOBS) delete pyEnv[k];
  if (unsetIsa.length) {
    say(`PyTorch runs: unset ${unsetIsa.map((k) => `${k}=${process.env[k]}`).join(', ')} (set only by the configuration that names them)`);
  }
  pyEnv.OMP_NUM_THREADS = String(args.threads);
  pyEnv.OPENBLAS_NUM_THREADS = String(args.threads);
  delete pyEnv.LD_PRELOAD;
  const pyArgs = [
    '--config', bench.name in { XS: 1, S: 1, L: 1 } ? bench.name : 'S',
    '--dim', mc.hidden_size, '--layers', mc.num_hidden_layers, '--heads', mc.num_attention_heads,
    '--kv-heads', mc.num_key_value_heads, '--ffn', mc.intermediate_size, '--vocab', mc.vocab_size,
    '--seq', tc.seq_len, '--batch', tc.micro_batch_size, '--eps', mc.rms_norm_eps, '--theta', mc.rope_theta,
    '--lr', tc.lr, '--weight-decay', tc.weight_decay, '--grad-clip', tc.grad_clip, '--init-std', mc.initializer_range,
    '--threads', args.threads, '--warmup', args.warmup, '--steps', args.steps, '--seed', tc.seed,
  ].map(String);

  /** PyTorch's configurations for one dtype: name and the variables it sets. */
  const pytorchConfigs = (dtype: BenchDtype): { name: string; env: Record<string, string> }[] => [
    { name: 'PyTorch (glibc malloc)', env: {} },
    ...(tcmalloc ? [{ name: 'PyTorch + tcmalloc', env: { LD_PRELOAD: tcmalloc } }] : []),
    ...(dtype === 'bf16'
      ? [{
          name: tcmalloc ? 'PyTorch + tcmalloc + AVX-512/AMX' : 'PyTorch + AVX-512/AMX',
          env: { ...(tcmalloc ? { LD_PRELOAD: tcmalloc } : {}), ATEN_CPU_CAPABILITY: 'avx512', ONEDNN_MAX_CPU_ISA: 'AVX512_CORE_AMX' },
        }]
      : []),
  ];

  const tty = process.stdout.isTTY === true;
  const status = (s: string) => {
    if (tty) process.stdout.write(`\r\x1b[K  ${s}`);
  };
  const tag = (name: string, dtype: BenchDtype) => (args.dtypeGiven ? `${name} [${dtype}]` : name);
  const done = (r: PeerRow) => {
    if (tty) process.stdout.write('\r\x1b[K');
    say(`  ${tag(r.name, r.dtype)}: ${r.ok ? `${r.tokens_per_s!.toFixed(0)} tokens/s, median step ${r.step_ms_median!.toFixed(0)} ms` : `FAILED: ${r.error}`}`);
  };

  const rows: PeerRow[] = [];
  for (const dtype of args.dtypes) {
    for (const pc of pytorchConfigs(dtype)) {
      const name = tag(pc.name, dtype);
      if (tty) status(`${name}: starting`);
      else say(`  ${name} ...`);
      const r = await runPytorch(pc.name, dtype, pyArgs, pyEnv, pc.env, (s) => status(args.dtypeGiven ? `[${dtype}] ${s}` : s), peerEnergy);
      r.mfu = r.ok ? mfu(r.tokens_per_s!, fpt, peakFlops(dtype)) : null;
      rows.push(r);
      done(r);
    }
    for (const kernels of ['standard', 'litespark'] as const) {
      const name = `litespark ${kernels}`;
      if (!tty) say(`  ${tag(name, dtype)} ...`);
      const got = await runJob(
        { mode: 'step', config: bench.name, preset: bench.preset, kernels, dtype, threads: args.threads, steps: args.steps,
          warmup: args.warmup, seed: tc.seed, peakGflops: peakFor(machine, dtype), commit: machine.commit, energy: machine.energy_meter },
        (d, t) => status(`${tag(name, dtype)}: step ${d}/${t}`),
      );
      const r = fromLitespark(name, dtype, got[0] as StepRow);
      rows.push(r);
      done(r);
    }
  }

  // 4. Ratios, per dtype: against the faster PyTorch run, and (litespark rows) against each PyTorch configuration.
  const ratios: { dtype: BenchDtype; litespark: string; pytorch: string; env: Record<string, string>; ratio: number | null }[] = [];
  const bestOf = new Map<BenchDtype, PeerRow>();
  for (const dtype of args.dtypes) {
    const mine = rows.filter((r) => r.dtype === dtype);
    const torchRows = mine.filter((r) => r.framework === 'pytorch');
    const best = torchRows.filter((r) => r.ok).sort((a, b) => b.tokens_per_s! - a.tokens_per_s!)[0];
    if (best) bestOf.set(dtype, best);
    for (const r of mine) if (best && r.ok) r.vs_pytorch_best = r.tokens_per_s! / best.tokens_per_s!;
    for (const r of mine.filter((x) => x.framework === 'litespark')) {
      for (const p of torchRows) {
        const ratio = r.ok && p.ok ? r.tokens_per_s! / p.tokens_per_s! : null;
        r.vs_pytorch[p.name] = ratio;
        ratios.push({ dtype, litespark: r.name, pytorch: p.name, env: p.env, ratio });
      }
    }
  }

  say();
  say(table(rows, args.dtypeGiven));
  say();
  say(`load = 1-minute load average at the end of each run (above ${args.threads}: other work shared the cores).`);
  say(`MFU = tokens/s x ${(fpt / 1e6).toFixed(1)} MFLOP/token (6P + 12LdT, same for all rows) / the measured peak; fp32 rows: fp32 FMA peak ` +
    `${machine.peak_gflops?.toFixed(1) ?? 'n/a'} GFLOP/s at ${args.threads} threads.`);
  if (args.dtypes.includes('bf16')) {
    say(`bf16 rows: MFU against the measured peak of litespark's bf16 unit here (${machine.bf16_unit ?? 'n/a'}: ` +
      `${machine.bf16_peak_gflops?.toFixed(1) ?? 'n/a'} GFLOP/s at ${args.threads} threads), PyTorch's rows too.`);
  }
  if (!args.dtypeGiven) {
    const best = bestOf.get('fp32');
    const lit = rows.find((r) => r.name === 'litespark litespark');
    if (best && lit?.ok) say(`litespark (fused) / PyTorch best (${best.name}): ${lit.vs_pytorch_best!.toFixed(2)}x tokens/s`);
  } else {
    say('litespark (fused) / each PyTorch configuration of the same dtype, tokens/s (the vs PyTorch best column: / the fastest):');
    for (const dtype of args.dtypes) {
      const lit = rows.find((r) => r.dtype === dtype && r.name === 'litespark litespark');
      const parts = Object.entries(lit?.vs_pytorch ?? {}).map(([name, x]) => `/ ${name} ${x === null ? '—' : `${x.toFixed(2)}x`}`);
      say(`  ${dtype}: ${lit?.ok ? parts.join(', ') : 'litespark run FAILED'}`);
    }
    const seen = new Set<string>();
    say('PyTorch configurations (environment on top of OMP_NUM_THREADS / OPENBLAS_NUM_THREADS = threads):');
    for (const dtype of args.dtypes) {
      for (const pc of pytorchConfigs(dtype)) {
        if (seen.has(pc.name)) continue;
        seen.add(pc.name);
        const env = Object.entries(pc.env).map(([k, v]) => `${k}=${v}`);
        say(`  ${pc.name}: ${env.length ? env.join(' ') : 'no extra environment'}`);
      }
    }
  }
  // The issue's energy target: litespark's J/token against PyTorch's best (lowest), per dtype.
  for (const dtype of args.dtypes) {
    const lowest = rows.filter((r) => r.dtype === dtype && r.framework === 'pytorch' && r.joules_per_token !== null)
      .sort((a, b) => a.joules_per_token! - b.joules_per_token!)[0];
    const lit = rows.find((r) => r.dtype === dtype && r.name === 'litespark litespark');
    if (lowest && lit?.joules_per_token != null) {
      say(`${args.dtypeGiven ? `${dtype}: ` : ''}J/token: litespark (fused) ${lit.joules_per_token.toPrecision(3)} / PyTorch best (${lowest.name}) ` +
        `${lowest.joules_per_token!.toPrecision(3)} = ${(lit.joules_per_token / lowest.joules_per_token!).toFixed(2)}x ` +
        `(${lit.energy_source.split(':')[0]}, one meter for all rows)`);
    }
  }
  if (peerEnergy) say(`energy: ${peerEnergy.source}`);
  if (args.json) {
    mkdirSync(dirname(args.json), { recursive: true });
    writeFileSync(args.json, JSON.stringify({
      machine, config: bench.name, threads: args.threads, torch, flops_per_token: fpt, unset_env: [...unset, ...unsetIsa],
      dtypes: args.dtypes, rows, ratios,
    }, null, 2) + '\n');
    say(`rows: ${args.json}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`peer: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
