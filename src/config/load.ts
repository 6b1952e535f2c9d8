// Resolving a run's config: preset (default 'demo') <- config file (JSON or TOML) <- overrides
// (dotted paths from the command line), deep-merged in that order, then validated once.
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { PRESET_NAMES, getPreset, isPresetName } from './presets.js';
import { ConfigError, parseConfig, type Config, type ModelConfig } from './schema.js';

export { ConfigError } from './schema.js';
export type { Config } from './schema.js';

export interface ResolveOptions {
  /** Preset name; default 'demo'. */
  preset?: string;
  /** A .json or .toml file whose keys override the preset. */
  file?: string;
  /** Dotted paths ('train.steps') -> value; applied last. Undefined values are skipped. */
  overrides?: Record<string, unknown>;
  /** Clock for the default run directory name (tests pin it). */
  now?: Date;
  /** Start from this config (a resumed run's) instead of a preset. */
  base?: Config;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Recursively merges `over` into a copy of `base`: objects merge, everything else replaces. */
export function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k] as Obj, v) : structuredClone(v);
  }
  return out;
}

/** Sets `path` ('train.steps') in `target`, creating sections on the way. */
function setPath(target: Obj, path: string, value: unknown): void {
  const keys = path.split('.');
  if (keys.some((k) => k === '')) throw new ConfigError(`config: override '${path}': not a dotted key path`);
  let o = target;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i]!;
    if (o[k] === undefined) o[k] = {};
    if (!isObj(o[k])) {
      throw new ConfigError(`config: override '${path}': ${keys.slice(0, i + 1).join('.')} is a value, not a section`);
    }
    o = o[k] as Obj;
  }
  o[keys[keys.length - 1]!] = value;
}

/**
 * Parses one `key=value` override as typed on a command line: numbers, true/false and JSON
 * values become typed, anything else stays a string. E.g. 'train.lr=3e-3' -> ['train.lr', 0.003].
 */
export function parseOverride(s: string): [string, unknown] {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new ConfigError(`config: override '${s}': expected key=value, e.g. train.steps=100`);
  const key = s.slice(0, eq).trim(), text = s.slice(eq + 1).trim();
  try {
    return [key, JSON.parse(text)];
  } catch {
    return [key, text];
  }
}

/** Reads a config file (.toml as TOML, anything else as JSON); errors name the file. */
export function readConfigFile(file: string): Obj {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new ConfigError(`config: cannot read config file '${file}': ${why}`);
  }
  const toml = file.toLowerCase().endsWith('.toml');
  let data: unknown;
  try {
    data = toml ? parseToml(text) : JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new ConfigError(`config: config file '${file}' is not valid ${toml ? 'TOML' : 'JSON'}: ${msg}`);
  }
  if (!isObj(data)) throw new ConfigError(`config: config file '${file}' must hold an object at the top level`);
  return data;
}

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** The run's config: preset <- file <- overrides, validated. Throws ConfigError. */
export function resolveConfig(opts: ResolveOptions = {}): Config {
  const preset = opts.preset ?? 'demo';
  if (!isPresetName(preset)) {
    throw new ConfigError(`config: unknown preset '${preset}' (known: ${PRESET_NAMES.join(', ')})`);
  }
  let raw: Obj = opts.base ? (structuredClone(opts.base) as unknown as Obj) : (getPreset(preset) as Obj);
  if (opts.file !== undefined) raw = deepMerge(raw, readConfigFile(opts.file));
  const over: Obj = {};
  for (const [path, value] of Object.entries(opts.overrides ?? {})) {
    if (value !== undefined) setPath(over, path, value);
  }
  raw = deepMerge(raw, over);
  return parseConfig(raw, `runs/${preset}-${timestamp(opts.now ?? new Date())}`);
}

/**
 * A Hugging Face `config.json` for the model (transformers' LlamaConfig), so checkpoints load
 * in every standard implementation. `extra` adds or replaces fields (token ids, dtype).
 */
export function toHfLlamaConfig(model: ModelConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: model.vocab_size,
    hidden_size: model.hidden_size,
    intermediate_size: model.intermediate_size,
    num_hidden_layers: model.num_hidden_layers,
    num_attention_heads: model.num_attention_heads,
    num_key_value_heads: model.num_key_value_heads,
    head_dim: model.hidden_size / model.num_attention_heads,
    hidden_act: 'silu',
    max_position_embeddings: model.max_position_embeddings,
    initializer_range: model.initializer_range,
    rms_norm_eps: model.rms_norm_eps,
    rope_theta: model.rope_theta,
    rope_scaling: null,
    tie_word_embeddings: model.tie_word_embeddings,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    pretraining_tp: 1,
    use_cache: true,
    torch_dtype: 'float32',
    ...extra,
  };
}
