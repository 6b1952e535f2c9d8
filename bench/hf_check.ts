// Hugging Face cross-check: is a litespark checkpoint read the same way by the standard ecosystem?
//
//   npx tsc -p . && node dist/bench/hf_check.js [--steps 60] [--threads N] [--keep DIR] [--no-install]
//                                               [--python PATH]
//
// 1. Trains two small models for --steps on the embedded corpus with train() (the nano preset's
//    data and 512-id tokenizer, from the cache: $LITESPARK_CACHE_DIR or the default, prepared on
//    first use; run directories in a temp dir), so the weights are trained, not the random init:
//      gqa-untied  the nano preset: hidden 64, 2 layers, 4 heads / 2 kv (GQA), untied lm_head,
//                  rms_norm_eps 1e-5, rope_theta 1e4
//      gqa-tied    hidden 96, 6 heads / 3 kv (head_dim 16), tied embeddings, rms_norm_eps 1e-6,
//                  rope_theta 5e5 (non-default fields, so a reader that ignores them shows)
// 2. Exports each run with the CLI (`litespark export RUN_DIR --out DIR --dtype fp32|bf16`) and
//    checks the exports: fp32 holds the trained weights bit for bit, bf16 every weight rounded to
//    nearest even.
// 3. Computes litespark's logits of a few token sequences (the checkpoint's tokenizer; one at the
//    full context, one after the end-of-text id, one with multi-byte UTF-8) with both kernel paths
//    (loadModel + forwardLogits: fp32 compute; for the bf16 export, fp32 compute on the rounded
//    weights) and writes them, with the ids, to the temp dir.
// 4. Runs bench/pytorch/hf_check.py (python3 with torch): the directories read as Hugging Face
//    reads them (config.json as LlamaConfig, model.safetensors into transformers'
//    LlamaForCausalLM written out, from_pretrained's key/shape checks; transformers itself too when
//    importable) and compared: max abs / relative difference of the logits, argmax agreement, plus
//    negative controls (interleaved RoPE, wrong GQA grouping) that must fail, and the tokenizer.
// 5. Prints a verdict with the tolerances (exit 0 PASS, 1 FAIL).
//
// python3-torch is an optional benchmark dependency (never installed by npm ci): when no python3
// can import torch and this runs as root, it is installed with apt-get (with python3-regex, which
// the tokenizer re-encode check uses), as bench/peer.ts does; otherwise the script says what to
// install and exits 1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, type LoadedModel } from '../src/checkpoint/checkpoint.js';
import { resolveConfig } from '../src/config/load.js';
import type { KernelPath } from '../src/model/llama.js';
import { train } from '../src/train/trainer.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const SCRIPT = join(ROOT, 'bench', 'pytorch', 'hf_check.py');
const CLI = join(ROOT, 'bin', 'litespark.js');

/**
 * rel = max |litespark - PyTorch| / max |PyTorch logit|, per (model, export, kernel path). fp32:
 * the two sides differ only in summation order and in the RoPE table (litespark's vs fp32
 * cos/sin of fp32 angles as transformers computes them), ~1e-6 measured; 1e-4 is the brief's
 * budget. The bf16 export is compared with fp32 compute on the same rounded weights, so the same
 * budget holds.
 */
const TOL = { fp32: 1e-4, bf16: 1e-4 } as const;
/**
 * A negative control (a deliberately wrong reading) must miss by at least 10x the tolerance, or the
 * check could not tell it from a right one. Interleaved RoPE on the nano model: rel 7.4e-3 after 30
 * steps, 2.5e-2 after 60 (position matters more as it trains); wrong GQA grouping: 0.2-0.6.
 */
const CONTROL_MIN_REL = 10 * Math.max(TOL.fp32, TOL.bf16);

const say = (line = '') => process.stdout.write(line + '\n');

interface Args {
  steps: number;
  threads: number;
  keep?: string;
  install: boolean;
  python?: string;
}

const USAGE = 'usage: node dist/bench/hf_check.js [--steps 60] [--threads N] [--keep DIR] [--no-install] [--python PATH]';

function usage(msg: string): never {
  process.stderr.write(`hf_check: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { steps: 60, threads: os.availableParallelism(), install: true };
  const int = (f: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) usage(`${f} needs a positive integer (got ${v})`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === '--steps') a.steps = int(f, argv[++i]);
    else if (f === '--threads') a.threads = int(f, argv[++i]);
    else if (f === '--keep') a.keep = argv[++i] ?? usage('--keep needs a directory');
    else if (f === '--python') a.python = argv[++i] ?? usage('--python needs a path');
    else if (f === '--no-install') a.install = false;
    else if (f === '--help' || f === '-h') {
      say(USAGE);
      process.exit(0);
    }
    else usage(`unknown flag '${f}'`);
  }
  return a;
}

// ---- python3 with torch --------------------------------------------------------------------

function pyHas(python: string, mod: string): boolean {
  const r = spawnSync(python, ['-c', `import ${mod}`], { encoding: 'utf8', timeout: 120_000 });
  return r.status === 0;
}

/** The first python3 that imports torch and numpy: --python, /usr/bin/python3 (Debian's torch), python3 on PATH. */
function findPython(given?: string): string | null {
  const candidates = given ? [given] : ['/usr/bin/python3', 'python3'];
  return candidates.find((p) => pyHas(p, 'torch, numpy')) ?? null;
}

function aptInstall(packages: string[]): boolean {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) return false;
  say(`hf_check: installing ${packages.join(', ')} with apt-get (running as root; an optional benchmark dependency, never installed by npm ci)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', ...packages]]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      process.stderr.write(`hf_check: 'apt-get ${args.join(' ')}' failed (exit ${r.status})\n`);
      return false;
    }
  }
  return true;
}

function ensurePython(args: Args): string {
  let python = findPython(args.python);
  if (!python && !args.python) {
    const cmd = 'apt-get update && apt-get install -y python3-torch python3-regex';
    if (!args.install || !aptInstall(['python3-torch', 'python3-regex'])) {
      process.stderr.write(`hf_check: no python3 here imports torch and numpy; install Debian's python3-torch (as root: ${cmd}), ` +
        'or pass --python PATH to one that has torch\n');
      process.exit(1);
    }
    python = findPython();
  }
  if (!python) {
    process.stderr.write(`hf_check: ${args.python ?? '/usr/bin/python3'} cannot import torch and numpy\n`);
    process.exit(1);
  }
  if (!pyHas(python, 'regex') && python === '/usr/bin/python3' && args.install && !aptInstall(['python3-regex'])) {
    say('hf_check: python3-regex not installed: the tokenizer re-encode check will be skipped (the decode check still runs)');
  }
  return python;
}

// ---- the models ------------------------------------------------------------------------------

interface ModelCase {
  name: string;
  /** Overrides of the nano preset's model section. */
  model: Record<string, unknown>;
  what: string;
}

const CASES: ModelCase[] = [
  { name: 'gqa-untied', model: {}, what: 'nano preset: 4 heads / 2 kv, untied lm_head, eps 1e-5, theta 1e4' },
  {
    name: 'gqa-tied',
    model: {
      hidden_size: 96, num_attention_heads: 6, num_key_value_heads: 3, intermediate_size: 256,
      tie_word_embeddings: true, rms_norm_eps: 1e-6, rope_theta: 500000,
    },
    what: '6 heads / 3 kv (head_dim 16), tied embeddings, eps 1e-6, theta 5e5',
  },
];

/** Texts to encode: in-distribution code, prose, multi-byte UTF-8; one runs past the context and is cut. */
const TEXTS: Array<{ label: string; text: string; afterEos?: boolean }> = [
  {
    label: 'full-context',
    text: '/**\n * Returns the index of the first element in the array where predicate is true, and -1\n * otherwise.\n' +
      ' * @param predicate find calls predicate once for each element of the array, in ascending\n * order.\n */\n' +
      'findIndex(predicate: (value: T, index: number, obj: T[]) => unknown, thisArg?: any): number;',
  },
  { label: 'prose', text: 'The quick brown fox jumps over the lazy dog.' },
  { label: 'after-eos', text: 'interface Array<T> {\n    length: number;\n}', afterEos: true },
  { label: 'utf8', text: 'naïve café, Zürich — 東京 ✓ π≈3.14159' },
];

interface Seq {
  label: string;
  text: string;
  /** Ids before the text's own (the end-of-text id for 'after-eos'). */
  prefix: number[];
  /** What the model ran: prefix + encode(text), cut to max_position_embeddings. */
  ids: number[];
  /** False when the ids were cut (the text then is not all of them). */
  exact_text: boolean;
}

function sequences(m: LoadedModel): Seq[] {
  const maxLen = m.config.model.max_position_embeddings;
  return TEXTS.map((t) => {
    const prefix = t.afterEos ? [m.tokenizer.eosId] : [];
    const all = [...prefix, ...m.tokenizer.encode(t.text)];
    return { label: t.label, text: t.text, prefix, ids: all.slice(0, maxLen), exact_text: all.length <= maxLen };
  });
}

/** litespark's logits of every position of every sequence, one (sum of lengths, V) float32 array. */
function logits(m: LoadedModel, seqs: Seq[]): Float32Array {
  const V = m.config.model.vocab_size;
  const out = new Float32Array(seqs.reduce((s, q) => s + q.ids.length, 0) * V);
  let at = 0;
  for (const q of seqs) {
    const buf = m.model.buffers(1, q.ids.length, true);
    buf.ids.set(q.ids);
    buf.targets.fill(-1);
    out.set(m.model.forwardLogits(buf).subarray(0, q.ids.length * V), at);
    at += q.ids.length * V;
  }
  return out;
}

/** bf16 round to nearest even of one float32, widened back (what the bf16 export must hold). */
function bf16Round(bits: Uint32Array, i: number): number {
  const u = bits[i]!;
  return (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0;
}

/** Elements of the two models' parameters that differ from `want(fp32 bits)`. */
function weightMismatches(a: LoadedModel, b: LoadedModel, want: (bits: Uint32Array, i: number) => number): number {
  let bad = 0;
  for (const s of a.model.params.specs) {
    const x = a.model.params.get(s.name), y = b.model.params.get(s.name);
    const xb = new Uint32Array((x.data as Float32Array).buffer, (x.data as Float32Array).byteOffset, x.numel);
    const yb = new Uint32Array((y.data as Float32Array).buffer, (y.data as Float32Array).byteOffset, y.numel);
    for (let i = 0; i < x.numel; i++) if (want(xb, i) !== yb[i]) bad++;
  }
  return bad;
}

function exportRun(runDir: string, out: string, dtype: 'fp32' | 'bf16'): void {
  const r = spawnSync(process.execPath, [CLI, 'export', runDir, '--out', out, '--dtype', dtype], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`litespark export ${runDir} --dtype ${dtype} failed (exit ${r.status}): ${r.stderr || r.stdout}`);
}

// ---- the verdict ------------------------------------------------------------------------------

interface Cmp {
  max_abs: number;
  rel: number;
  scale: number;
  argmax_agree: number;
  positions: number;
  gaps_at_disagreement: number[];
}

interface PyCase {
  name: string;
  fp32: Record<string, unknown> & { controls: Record<string, Cmp> };
  bf16: Record<string, unknown>;
  tokenizer: Record<string, string>;
}

/** Within tolerance, and argmax equal wherever the reference's top two are further apart than the difference allows. */
function within(c: Cmp, tol: number): boolean {
  return c.rel <= tol && c.gaps_at_disagreement.every((g) => g <= 2 * c.max_abs);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const python = ensurePython(args);
  if (args.keep && existsSync(args.keep) && readdirSync(args.keep).length > 0) usage(`--keep ${args.keep}: not empty (exports never overwrite)`);
  const tmp = args.keep ?? mkdtempSync(join(os.tmpdir(), 'litespark-hf-check-'));
  mkdirSync(tmp, { recursive: true });
  say(`hf_check: ${args.steps} training steps per model, ${args.threads} threads, work dir ${tmp}${args.keep ? '' : ' (removed at the end)'}`);
  say(`python: ${python}`);

  const specCases = [];
  for (const mc of CASES) {
    const runDir = join(tmp, `run-${mc.name}`);
    const overrides: Record<string, unknown> = {
      'train.steps': args.steps, 'train.sample_tokens': 0, 'train.eval_batches': 2, 'train.log_every': args.steps,
      'runtime.out': runDir, 'runtime.threads': args.threads,
    };
    for (const [k, v] of Object.entries(mc.model)) overrides[`model.${k}`] = v;
    const config = resolveConfig({ preset: 'nano', overrides });
    const t0 = performance.now();
    const s = await train(config);
    say(`\n${mc.name} (${mc.what}): trained ${s.steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s, ` +
      `validation loss ${s.initialValLoss.toFixed(3)} -> ${s.finalValLoss.toFixed(3)}; checkpoint ${s.checkpoint}`);

    const dirs = { fp32: join(tmp, `${mc.name}-fp32`), bf16: join(tmp, `${mc.name}-bf16`) };
    exportRun(runDir, dirs.fp32, 'fp32');
    exportRun(runDir, dirs.bf16, 'bf16');
    const trained = loadModel(s.checkpoint!);
    const e32 = loadModel(dirs.fp32), e16 = loadModel(dirs.bf16);
    const bad32 = weightMismatches(trained, e32, (b, i) => b[i]!);
    const bad16 = weightMismatches(trained, e16, bf16Round);
    const n = trained.model.params.count();
    say(`  export: fp32 = trained weights bit for bit: ${bad32 === 0 ? 'yes' : `NO (${bad32} of ${n} differ)`}; ` +
      `bf16 = round-to-nearest-even of them: ${bad16 === 0 ? 'yes' : `NO (${bad16} of ${n} differ)`} (${n} weights)`);
    if (bad32 !== 0 || bad16 !== 0) throw new Error(`${mc.name}: the exports do not hold the trained weights`);

    const seqs = sequences(e32);
    const exports: Array<{ dtype: string; dir: string; logits: Record<string, string>; unrounded_logits?: string }> = [];
    for (const dtype of ['fp32', 'bf16'] as const) {
      const files: Record<string, string> = {};
      for (const kernels of ['litespark', 'standard'] as KernelPath[]) {
        const m = loadModel(dirs[dtype], { kernels });
        const f = join(tmp, `${mc.name}-${dtype}-${kernels}.f32`);
        writeFileSync(f, logits(m, seqs));
        files[kernels] = f;
      }
      // bf16: also litespark's logits of the weights before rounding (the fp32 export's), to show what rounding costs
      exports.push({ dtype, dir: dirs[dtype], logits: files, ...(dtype === 'bf16' ? { unrounded_logits: exports[0]!.logits.litespark } : {}) });
    }
    specCases.push({ name: mc.name, seqs, exports });
  }
  const specPath = join(tmp, 'cases.json');
  writeFileSync(specPath, JSON.stringify({ threads: args.threads, cases: specCases }, null, 1) + '\n');

  say(`\n${python} ${SCRIPT} ${specPath}`);
  const py = spawnSync(python, [SCRIPT, specPath], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 << 20,
    env: { ...process.env, OMP_NUM_THREADS: String(args.threads) },
  });
  const lines = (py.stdout ?? '').split('\n');
  const jsonLine = lines.find((l) => l.startsWith('HF_CHECK_JSON '));
  for (const l of lines) if (l && !l.startsWith('HF_CHECK_JSON ')) say(l);
  if (py.status !== 0 || !jsonLine) {
    process.stderr.write(`hf_check: ${SCRIPT} failed (exit ${py.status})\n`);
    process.exit(1);
  }
  const result = JSON.parse(jsonLine.slice('HF_CHECK_JSON '.length)) as { cases: PyCase[] };
  writeFileSync(join(tmp, 'result.json'), JSON.stringify(result, null, 1) + '\n');

  const fails: string[] = [];
  const worst = { fp32: 0, bf16: 0 };
  let controlMin = Infinity;
  let agree = 0, positions = 0, vsOwn = 0;
  for (const c of result.cases) {
    for (const dtype of ['fp32', 'bf16'] as const) {
      for (const kernels of ['litespark', 'standard']) {
        const r = c[dtype][`litespark_${kernels}`] as Cmp;
        worst[dtype] = Math.max(worst[dtype], r.rel);
        agree += r.argmax_agree;
        positions += r.positions;
        // litespark's distance from the fp64 reading over PyTorch fp32's own: how its rounding compares
        const own = (c[dtype].pytorch_fp32_vs_fp64 as Cmp).max_abs;
        vsOwn = Math.max(vsOwn, (c[dtype][`litespark_${kernels}_vs_fp64`] as Cmp).max_abs / own);
        if (!within(r, TOL[dtype])) fails.push(`${c.name} ${dtype} ${kernels}: rel ${r.rel.toExponential(2)}, argmax ${r.argmax_agree}/${r.positions}`);
      }
      const t = c[dtype].transformers as Cmp | string | undefined;
      if (typeof t === 'string') fails.push(`${c.name} ${dtype} transformers: ${t}`);
      else if (t && !within(t, TOL[dtype])) fails.push(`${c.name} ${dtype} transformers: rel ${t.rel.toExponential(2)}`);
    }
    for (const [k, r] of Object.entries(c.fp32.controls)) {
      controlMin = Math.min(controlMin, r.rel);
      if (r.rel < CONTROL_MIN_REL) fails.push(`${c.name} negative control ${k} is not caught (rel ${r.rel.toExponential(2)})`);
    }
    for (const [k, v] of Object.entries(c.tokenizer)) if (!v.startsWith('ok') && !v.startsWith('skipped')) fails.push(`${c.name} tokenizer ${k}: ${v}`);
  }
  const tok = result.cases.map((c) => Object.entries(c.tokenizer).map(([k, v]) => `${k} ${v}`).join(', '))[0];
  say();
  say(`hf_check: ${fails.length === 0 ? 'PASS' : 'FAIL'}: logits of litespark vs transformers' LlamaForCausalLM (PyTorch) on the exported ` +
    `directories, rel = max|diff| / max|logit|: fp32 worst ${worst.fp32.toExponential(2)} (tolerance ${TOL.fp32}), ` +
    `bf16 export (fp32 compute on the rounded weights) worst ${worst.bf16.toExponential(2)} (tolerance ${TOL.bf16}); ` +
    `litespark's distance from a PyTorch fp64 forward is at most ${vsOwn.toFixed(2)}x PyTorch fp32's own; ` +
    `argmax agrees at ${agree}/${positions} positions; negative controls off by rel >= ${controlMin.toExponential(2)} ` +
    `(must be >= ${CONTROL_MIN_REL}); tokenizer: ${tok}`);
  for (const f of fails) say(`  FAIL ${f}`);
  if (fails.length > 0) say(`hf_check: kept ${tmp} (checkpoints, logits, cases.json, result.json) to look into`);
  else if (!args.keep) rmSync(tmp, { recursive: true, force: true });
  process.exitCode = fails.length === 0 ? 0 : 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`hf_check: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
