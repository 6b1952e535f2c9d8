// Checkpoints: directories the Hugging Face ecosystem loads as they are, and that a training run
// resumes from exactly.
//
//   model.safetensors          Hugging Face Llama tensor names and shapes, F32 (or BF16 on export)
//   config.json                transformers' LlamaConfig fields, torch_dtype, bos/eos/pad ids
//   generation_config.json     the same token ids, so generation stops where training's EOS was
//   tokenizer.json             the run's tokenizer, byte for byte
//   tokenizer_config.json      PreTrainedTokenizerFast + the role tokens (AutoTokenizer reads it)
//   special_tokens_map.json
//   trainer_state/optimizer.safetensors   AdamW's moments, `m.<name>` and `v.<name>` (F32)
//   trainer_state/trainer_state.json      step, data cursor, counters, the full config
//   manifest.json              every other file with its size and sha256: written last, so a
//                              directory without it was never finished
//
// A save writes everything into `.tmp-<name>-<pid>` beside the target, fsyncs every file and the
// directory, then renames it into place (the previous checkpoint of the same name, if any, is
// moved aside first and removed after), and fsyncs the parent. A crash at any point leaves either
// the old checkpoint or the new one, never a directory a loader would take for good: loaders
// only look at `step-N` directories with a manifest whose files match it.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { toHfLlamaConfig } from '../config/load.js';
import { parseConfig, type Config, type ModelConfig } from '../config/schema.js';
import { fsyncDirectory, writeDurable } from '../data/files.js';
import type { LoaderCursor } from '../data/loader.js';
import { loadTokenizer, type Tokenizer } from '../data/tokenizer.js';
import type { Precision } from '../model/linear.js';
import { LlamaModel } from '../model/llama.js';
import type { ParamStore } from '../model/params.js';
import { fromHfLlamaConfig } from './hf_config.js';
import { CheckpointError, f32ToBf16Bytes, SafetensorsFile, writeSafetensors, type TensorToWrite } from './safetensors.js';

export { CheckpointError } from './safetensors.js';

export const MANIFEST_FILE = 'manifest.json';
export const STATE_DIR = 'trainer_state';
const MODEL_FILE = 'model.safetensors';
const SHARD_INDEX_FILE = 'model.safetensors.index.json';

/** What a training run needs to continue exactly where it stopped. */
export interface TrainerState {
  format: 'litespark-trainer-state';
  version: 1;
  /** Optimizer steps completed (the next step is step + 1). */
  step: number;
  /** AdamW's own step count (bias correction). */
  optimizer_step: number;
  tokens: number;
  /** Training seconds so far (resumed runs add theirs). */
  elapsed_s: number;
  data_cursor: LoaderCursor;
  /** Training draws no random numbers after initialisation; the seeds are kept for the record. */
  rng: { init_seed: number; sample_seed: number };
  /** Measured energy so far (joules), or null while no meter exists. */
  energy: { joules: number | null; source: string };
  last_val_loss: number | null;
  config: Config;
}

export interface SaveParts {
  config: Config;
  params: ParamStore;
  tokenizer: Tokenizer;
  /** The tokenizer.json to copy (byte for byte). */
  tokenizerPath: string;
  optimizer?: { m: ParamStore; v: ParamStore };
  state?: TrainerState;
  /** model.safetensors dtype; the optimizer moments are always F32. */
  dtype?: 'fp32' | 'bf16';
}

/** Where a save may be made to fail, as a kill would (tests). */
export type CrashPoint = 'model' | 'optimizer' | 'manifest' | 'rename';

export interface ManifestEntry {
  path: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: 'litespark-checkpoint';
  version: 1;
  step: number | null;
  files: ManifestEntry[];
}

/** Writes a checkpoint directory atomically (see the header). */
export function saveCheckpoint(dir: string, parts: SaveParts, opts: { crashAt?: CrashPoint } = {}): Manifest {
  const parent = dirname(dir);
  const name = basename(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.tmp-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, STATE_DIR), { recursive: true });
  const crash = (p: CrashPoint) => {
    if (opts.crashAt === p) throw new Error(`simulated crash while saving ${dir} (at ${p})`);
  };
  const files: ManifestEntry[] = [];
  const put = (rel: string, data: string | Uint8Array) => {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    writeDurable(join(tmp, rel), bytes);
    files.push({ path: rel, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  };
  const mc = parts.config.model;
  const dtype = parts.dtype ?? 'fp32';

  const model = writeSafetensors(join(tmp, MODEL_FILE), modelTensors(parts.params, dtype), { format: 'pt' });
  files.push({ path: MODEL_FILE, bytes: model.bytes, sha256: model.sha256 });
  crash('model');

  const ids = roleIds(parts.tokenizer);
  put('config.json', JSON.stringify(toHfLlamaConfig(mc, { torch_dtype: dtype === 'bf16' ? 'bfloat16' : 'float32', ...ids }), null, 2) + '\n');
  put('generation_config.json', JSON.stringify({ ...ids, max_length: mc.max_position_embeddings }, null, 2) + '\n');
  put('tokenizer.json', readFileSync(parts.tokenizerPath));
  const roles = roleTokens(parts.tokenizer);
  put('special_tokens_map.json', JSON.stringify(roles, null, 2) + '\n');
  put(
    'tokenizer_config.json',
    JSON.stringify(
      {
        tokenizer_class: 'PreTrainedTokenizerFast',
        model_max_length: mc.max_position_embeddings,
        clean_up_tokenization_spaces: false,
        add_bos_token: false,
        add_eos_token: false,
        ...roles,
      },
      null,
      2,
    ) + '\n',
  );

  if (parts.optimizer) {
    const rel = `${STATE_DIR}/optimizer.safetensors`;
    const o = writeSafetensors(join(tmp, rel), [
      ...modelTensors(parts.optimizer.m, 'fp32', 'm.'),
      ...modelTensors(parts.optimizer.v, 'fp32', 'v.'),
    ]);
    files.push({ path: rel, bytes: o.bytes, sha256: o.sha256 });
  }
  crash('optimizer');
  if (parts.state) put(`${STATE_DIR}/trainer_state.json`, JSON.stringify(parts.state, null, 2) + '\n');
  if (!parts.optimizer && !parts.state) rmSync(join(tmp, STATE_DIR), { recursive: true });

  crash('manifest');
  const manifest: Manifest = { format: 'litespark-checkpoint', version: 1, step: parts.state?.step ?? null, files };
  writeDurable(join(tmp, MANIFEST_FILE), Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
  fsyncDirectory(join(tmp, STATE_DIR));
  fsyncDirectory(tmp);
  crash('rename');

  const old = join(parent, `.old-${name}-${process.pid}`);
  const replacing = existsSync(dir);
  if (replacing) renameSync(dir, old);
  renameSync(tmp, dir);
  fsyncDirectory(parent);
  if (replacing) rmSync(old, { recursive: true, force: true });
  return manifest;
}

function modelTensors(store: ParamStore, dtype: 'fp32' | 'bf16', prefix = ''): TensorToWrite[] {
  return store.specs.map((s) => {
    const t = store.get(s.name);
    const f32 = t.data as Float32Array;
    if (!(f32 instanceof Float32Array)) throw new Error(`checkpoint: parameter ${s.name} is not float32`);
    const data = dtype === 'bf16' ? f32ToBf16Bytes(f32.subarray(0, t.numel)) : f32.subarray(0, t.numel);
    return { name: prefix + s.name, dtype: dtype === 'bf16' ? 'BF16' : 'F32', shape: [...s.shape], data };
  });
}

/** BOS/EOS/PAD ids as config.json and generation_config.json spell them (absent roles left out). */
function roleIds(tok: Tokenizer): Record<string, number> {
  const out: Record<string, number> = {};
  if (tok.bosId >= 0) out.bos_token_id = tok.bosId;
  if (tok.eosId >= 0) out.eos_token_id = tok.eosId;
  if (tok.padId >= 0) out.pad_token_id = tok.padId;
  return out;
}

function roleTokens(tok: Tokenizer): Record<string, string> {
  const out: Record<string, string> = {};
  if (tok.bosId >= 0) out.bos_token = tok.decode([tok.bosId]);
  if (tok.eosId >= 0) out.eos_token = tok.decode([tok.eosId]);
  if (tok.padId >= 0) out.pad_token = tok.decode([tok.padId]);
  return out;
}

// ---- finding, checking and rotating checkpoints -------------------------------------------

/** `step-00000100` */
export function stepDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** The `step-N` checkpoint directories under `parent`, oldest first. */
export function listCheckpoints(parent: string): Array<{ dir: string; step: number }> {
  if (!existsSync(parent)) return [];
  return readdirSync(parent, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^step-\d+$/.test(e.name))
    .map((e) => ({ dir: join(parent, e.name), step: Number(e.name.slice(5)) }))
    .sort((a, b) => a.step - b.step);
}

/**
 * Checks a checkpoint against its manifest: every file present with its size, and with
 * 'full' its sha256 too. Throws CheckpointError naming the file.
 */
export function verifyCheckpoint(dir: string, level: 'size' | 'full' = 'full'): Manifest {
  const mpath = join(dir, MANIFEST_FILE);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(mpath, 'utf8')) as Manifest;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CheckpointError(`${mpath}: ${missing ? 'missing: the checkpoint was never completed' : `not valid JSON (${(e as Error).message})`}`);
  }
  if (manifest?.format !== 'litespark-checkpoint' || !Array.isArray(manifest.files)) {
    throw new CheckpointError(`${mpath}: not a litespark checkpoint manifest`);
  }
  for (const f of manifest.files) {
    const p = join(dir, f.path);
    let size: number;
    try {
      size = statSync(p).size;
    } catch {
      throw new CheckpointError(`${p}: missing (listed in ${MANIFEST_FILE})`);
    }
    if (size !== f.bytes) throw new CheckpointError(`${p}: ${size} bytes, ${MANIFEST_FILE} says ${f.bytes} (truncated or replaced)`);
    if (level === 'full') {
      const got = sha256File(p);
      if (got !== f.sha256) throw new CheckpointError(`${p}: sha256 ${got.slice(0, 16)}..., ${MANIFEST_FILE} says ${f.sha256.slice(0, 16)}... (corrupt)`);
    }
  }
  return manifest;
}

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** The newest checkpoint under `parent` whose files match its manifest (sizes), if any. */
export function latestCheckpoint(parent: string): string | undefined {
  const all = listCheckpoints(parent);
  for (let i = all.length - 1; i >= 0; i--) {
    try {
      verifyCheckpoint(all[i].dir, 'size');
      return all[i].dir;
    } catch {
      // damaged or unfinished: look at the one before
    }
  }
  return undefined;
}

/**
 * Keeps the newest `keep` good checkpoints and every milestone (step % milestoneEvery == 0);
 * removes the rest, and the leftovers of interrupted saves. Never removes the newest good one.
 */
export function rotateCheckpoints(parent: string, keep: number, milestoneEvery = 0): string[] {
  const removed: string[] = [];
  for (const e of existsSync(parent) ? readdirSync(parent) : []) {
    if (/^\.(tmp|old)-step-\d+-\d+$/.test(e) && !e.endsWith(`-${process.pid}`)) {
      rmSync(join(parent, e), { recursive: true, force: true });
      removed.push(join(parent, e));
    }
  }
  const good = listCheckpoints(parent).filter((c) => {
    try {
      verifyCheckpoint(c.dir, 'size');
      return true;
    } catch {
      return false;
    }
  });
  const kept = new Set(good.slice(-Math.max(1, keep)).map((c) => c.dir));
  for (const c of listCheckpoints(parent)) {
    const milestone = milestoneEvery > 0 && c.step % milestoneEvery === 0;
    const isGood = good.some((g) => g.dir === c.dir);
    // Damaged ones older than the newest good one go; a damaged newer one is left for a person.
    const newest = good.at(-1)?.step ?? Infinity;
    if (kept.has(c.dir) || (milestone && isGood) || (!isGood && c.step > newest)) continue;
    rmSync(c.dir, { recursive: true, force: true });
    removed.push(c.dir);
  }
  return removed;
}

/**
 * A checkpoint directory from a path: the directory itself when it holds model weights, else
 * the newest good checkpoint of a run directory (`RUN/checkpoints/step-N`).
 */
export function resolveCheckpoint(path: string): string {
  if (existsSync(join(path, MODEL_FILE)) || existsSync(join(path, SHARD_INDEX_FILE))) return path;
  const parent = existsSync(join(path, 'checkpoints')) ? join(path, 'checkpoints') : path;
  const latest = latestCheckpoint(parent);
  if (!latest) {
    throw new CheckpointError(
      existsSync(path)
        ? `${path}: no model.safetensors and no complete checkpoint under it (step-N directories with a ${MANIFEST_FILE})`
        : `${path}: no such checkpoint directory`,
    );
  }
  return latest;
}

// ---- loading ------------------------------------------------------------------------------

export interface LoadedModel {
  dir: string;
  config: Config;
  model: LlamaModel;
  tokenizer: Tokenizer;
  generation: { bos_token_id: number | null; eos_token_id: number | null; pad_token_id: number | null };
}

/**
 * A model ready to run from a litespark checkpoint or any Hugging Face Llama directory
 * (config.json, tokenizer.json, model.safetensors or sharded model-*.safetensors with
 * model.safetensors.index.json; F32, BF16 or F16 weights).
 */
export function loadModel(
  dir: string,
  /** precision 'checkpoint': the dtype the checkpoint was trained in (fp32 for a Hugging Face directory). */
  opts: { kernels?: 'standard' | 'litespark'; precision?: Precision | 'checkpoint'; verify?: 'size' | 'full' } = {},
): LoadedModel {
  if (existsSync(join(dir, MANIFEST_FILE))) verifyCheckpoint(dir, opts.verify ?? 'full');
  else if (existsSync(join(dir, STATE_DIR))) {
    throw new CheckpointError(`${join(dir, MANIFEST_FILE)}: missing: the checkpoint was never completed (a save was interrupted)`);
  }
  const mc = readModelConfig(dir);
  const state = readTrainerStateJson(dir);
  const config = state?.config ?? configFor(mc);
  const tokPath = join(dir, 'tokenizer.json');
  if (!existsSync(tokPath)) throw new CheckpointError(`${dir}: no tokenizer.json (a model without its tokenizer cannot read or write text)`);
  const tokenizer = loadTokenizer(tokPath);
  if (tokenizer.vocabSize > mc.vocab_size) {
    throw new CheckpointError(`${tokPath}: the tokenizer has ${tokenizer.vocabSize} ids, config.json's vocab_size is ${mc.vocab_size}`);
  }
  // fp32 master weights either way; bf16 runs the products on the bf16 unit (a bf16 copy of the
  // weights made on the first forward).
  const precision = opts.precision === 'checkpoint' ? config.runtime.dtype : (opts.precision ?? 'fp32');
  const model = new LlamaModel(mc, 'f32', opts.kernels ?? config.runtime.kernels, precision);
  loadWeights(dir, model.params, mc);
  const gen = readJsonIfPresent(join(dir, 'generation_config.json')) ?? readJsonIfPresent(join(dir, 'config.json')) ?? {};
  const id = (k: string, fallback: number): number | null => {
    const v = gen[k];
    if (typeof v === 'number') return v;
    if (Array.isArray(v) && typeof v[0] === 'number') return v[0]; // Llama 3 lists several EOS ids
    return fallback >= 0 ? fallback : null;
  };
  return {
    dir,
    config: { ...config, model: mc },
    model,
    tokenizer,
    generation: { bos_token_id: id('bos_token_id', tokenizer.bosId), eos_token_id: id('eos_token_id', tokenizer.eosId), pad_token_id: id('pad_token_id', tokenizer.padId) },
  };
}

/** config.json of a checkpoint -> the model section. */
export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CheckpointError(`${path}: ${missing ? 'missing' : `not valid JSON (${(e as Error).message})`}`);
  }
  return fromHfLlamaConfig(raw, path);
}

/** A full config around a model that came without one (a Hugging Face directory). */
function configFor(mc: ModelConfig): Config {
  return parseConfig({
    model: mc,
    train: { steps: 1, micro_batch_size: 1, seq_len: Math.min(mc.max_position_embeddings, 2048), lr: 1e-4, warmup_steps: 0 },
    data: { tokenizer_vocab_size: Math.max(260, Math.min(mc.vocab_size, 65536)) },
    runtime: {},
  });
}

function readJsonIfPresent(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Tensor name -> the safetensors file holding it (one file, or a sharded index). */
function weightFiles(dir: string): Map<string, string> {
  const single = join(dir, MODEL_FILE);
  const indexPath = join(dir, SHARD_INDEX_FILE);
  const out = new Map<string, string>();
  if (existsSync(single)) {
    const f = SafetensorsFile.open(single);
    for (const n of f.tensors.keys()) out.set(n, single);
    f.close();
    return out;
  }
  const index = readJsonIfPresent(indexPath);
  if (!index) throw new CheckpointError(`${dir}: no ${MODEL_FILE} and no ${SHARD_INDEX_FILE}`);
  const map = index.weight_map;
  if (!map || typeof map !== 'object') throw new CheckpointError(`${indexPath}: weight_map: missing`);
  for (const [n, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) throw new CheckpointError(`${indexPath}: weight_map.${n}: not a file name in the directory`);
    out.set(n, join(dir, file));
  }
  return out;
}

/** Tensors that carry no weights (older exports keep RoPE's inverse frequencies). */
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

/** Reads every parameter of `store` from the directory's safetensors, checking names and shapes. */
export function loadWeights(dir: string, store: ParamStore, mc: ModelConfig): void {
  const where = weightFiles(dir);
  const wanted = new Set(store.specs.map((s) => s.name));
  const extra = [...where.keys()].filter((n) => !wanted.has(n) && !IGNORED.test(n) && !(mc.tie_word_embeddings && n === 'lm_head.weight'));
  if (extra.length > 0) {
    throw new CheckpointError(
      `${dir}: ${extra.length} tensor${extra.length > 1 ? 's' : ''} the model (config.json) has no place for: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}`,
    );
  }
  const open = new Map<string, SafetensorsFile>();
  store.touch(); // its values change below (a bf16 copy of them is stale from here on)
  try {
    for (const s of store.specs) {
      const name = s.name;
      const file = where.get(name);
      if (!file) throw new CheckpointError(`${dir}: tensor ${name} is missing (the model of config.json needs it, shape [${s.shape.join(', ')}])`);
      let f = open.get(file);
      if (!f) {
        f = SafetensorsFile.open(file);
        open.set(file, f);
      }
      const info = f.tensors.get(name);
      if (!info) throw new CheckpointError(`${file}: tensor ${name} is missing (named in ${SHARD_INDEX_FILE})`);
      if (info.shape.length !== s.shape.length || info.shape.some((d, i) => d !== s.shape[i])) {
        throw new CheckpointError(`${file}: tensor ${name} has shape [${info.shape.join(', ')}], config.json implies [${s.shape.join(', ')}]`);
      }
      const t = store.get(s.name);
      f.readF32(name, (t.data as Float32Array).subarray(0, t.numel));
    }
  } finally {
    for (const f of open.values()) f.close();
  }
}

/** trainer_state/trainer_state.json of a checkpoint (validated), or undefined when it has none. */
export function readTrainerStateJson(dir: string): TrainerState | undefined {
  const path = join(dir, STATE_DIR, 'trainer_state.json');
  const s = readJsonIfPresent(path) as TrainerState | undefined;
  if (!s) return undefined;
  if (s.format !== 'litespark-trainer-state' || s.version !== 1 || !Number.isInteger(s.step) || !s.config || !s.data_cursor) {
    throw new CheckpointError(`${path}: not a litespark trainer state (format, version, step, config, data_cursor)`);
  }
  try {
    s.config = parseConfig(s.config, s.config.runtime?.out);
  } catch (e) {
    throw new CheckpointError(`${path}: config: ${(e as Error).message}`);
  }
  return s;
}

/** The trainer state of a checkpoint, with AdamW's moments read into `m` and `v`. */
export function loadTrainerState(dir: string, m: ParamStore, v: ParamStore): TrainerState {
  const state = readTrainerStateJson(dir);
  if (!state) throw new CheckpointError(`${dir}: no ${STATE_DIR}/trainer_state.json: an inference checkpoint (export) cannot resume training; use --init to start from its weights`);
  const opt = join(dir, STATE_DIR, 'optimizer.safetensors');
  if (!existsSync(opt)) throw new CheckpointError(`${opt}: missing`);
  const f = SafetensorsFile.open(opt);
  try {
    for (const [store, prefix] of [[m, 'm.'], [v, 'v.']] as const) {
      for (const s of store.specs) {
        const name = prefix + s.name;
        const info = f.tensors.get(name);
        if (!info) throw new CheckpointError(`${opt}: tensor ${name} is missing`);
        if (info.shape.join(',') !== s.shape.join(',')) throw new CheckpointError(`${opt}: tensor ${name} has shape [${info.shape.join(', ')}], the model needs [${s.shape.join(', ')}]`);
        const t = store.get(s.name);
        f.readF32(name, (t.data as Float32Array).subarray(0, t.numel));
      }
    }
  } finally {
    f.close();
  }
  return state;
}
