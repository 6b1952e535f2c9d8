// The one validated config of a litespark run: model + train + data + runtime.
// zod 4 schemas with the TS types inferred from them. Every object is strict, so a misspelt key
// is an error that names it, never a silently ignored setting. The model section uses the
// Hugging Face `LlamaConfig` field names, so `toHfLlamaConfig` is a rename-free copy.
import * as z from 'zod';

/** Thrown for any bad config input; the message names the field path and the reason. */
export class ConfigError extends Error {
  /** One entry per problem found (the message joins them, one per line). */
  readonly issues: { path: string; reason: string }[];
  constructor(message: string, issues: { path: string; reason: string }[] = []) {
    super(message);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

// ---- choices that exist today, and the ones announced for later ---------------------------

/** Kernel sets: the fused path and the standard baseline it is measured against. */
export const KERNELS = ['litespark', 'standard'] as const;
/** Kernel sets announced for a later issue: value -> what the error says. */
const PLANNED_KERNELS: Record<string, string> = {};
/** Compute dtypes that are implemented. */
/** 'bf16': mixed precision (bf16 matrix products, fp32 master weights, optimizer, norms and loss). */
export const DTYPES = ['fp32', 'bf16'] as const;
const PLANNED_DTYPES: Record<string, string> = {};
/**
 * Activation checkpointing: what backward recomputes instead of keeping from forward (both kernel
 * paths; gradients identical to 'none'). 'selective': norm outputs and the SwiGLU activation (and
 * the standard path's attention probabilities); 'full': every layer's forward again, keeping
 * only each layer's input.
 */
export const RECOMPUTE = ['none', 'selective', 'full'] as const;

function choice<const T extends readonly [string, ...string[]]>(values: T, planned: Record<string, string>) {
  return z.enum(values, {
    error: (iss) => {
      const v = iss.input;
      if (typeof v === 'string' && Object.hasOwn(planned, v)) return planned[v];
      return `must be one of ${values.map((x) => `'${x}'`).join(', ')} (got ${show(v)})`;
    },
  });
}

// ---- small builders, so every bound reads the same way ------------------------------------

const int = (min: number) => z.number().int().min(min);
const positive = () => z.number().gt(0);

// ---- sections ------------------------------------------------------------------------------

export const modelSchema = z
  .object({
    vocab_size: int(2),
    hidden_size: int(1),
    intermediate_size: int(1),
    num_hidden_layers: int(1),
    num_attention_heads: int(1),
    num_key_value_heads: int(1),
    max_position_embeddings: int(1),
    rms_norm_eps: positive().default(1e-5),
    rope_theta: positive().default(10000),
    tie_word_embeddings: z.boolean().default(false),
    initializer_range: positive().default(0.02),
  })
  .strict()
  .superRefine((m, ctx) => {
    const ok = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 1;
    const { hidden_size: d, num_attention_heads: h, num_key_value_heads: kv } = m;
    if (ok(d) && ok(h)) {
      if (d % h !== 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['num_attention_heads'],
          message: `must divide hidden_size (${d} % ${h} != 0)`,
        });
      } else if ((d / h) % 2 !== 0) {
        // RoPE rotates pairs of channels, so every head needs an even width.
        ctx.addIssue({
          code: 'custom',
          path: ['hidden_size'],
          message: `head_dim = hidden_size / num_attention_heads must be even for RoPE (${d} / ${h} = ${d / h})`,
        });
      }
    }
    if (ok(h) && ok(kv) && h % kv !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['num_key_value_heads'],
        message: `must divide num_attention_heads (${h} % ${kv} != 0)`,
      });
    }
  });

export const trainSchema = z
  .object({
    steps: int(1),
    micro_batch_size: int(1),
    grad_accum_steps: int(1).default(1),
    seq_len: int(2),
    lr: positive(),
    /** Final learning rate of the cosine decay; defaults to lr / 10. */
    min_lr: z.number().min(0).optional(),
    warmup_steps: int(0),
    weight_decay: z.number().min(0).default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.95),
    adam_eps: positive().default(1e-8),
    /** Global gradient-norm clip; 0 turns clipping off. */
    grad_clip: z.number().min(0).default(1.0),
    seed: int(0).default(1337),
    log_every: int(1).default(1),
    /** Evaluate every N steps; 0 = only at the start and the end. */
    eval_every: int(0).default(0),
    eval_batches: int(1).default(8),
    /** Tokens generated from the trained model at the end of a run. */
    sample_tokens: int(0).default(64),
    /** Save a checkpoint every N steps (0: only at the end of the run and when stopped). */
    checkpoint_every: int(0).default(0),
    /** ...and whenever this many minutes have passed since the last save (0: off). */
    checkpoint_minutes: z.number().min(0).default(0),
    /** Newest checkpoints kept (older ones are removed after each good save). */
    keep_checkpoints: int(1).default(3),
    /** Checkpoints at multiples of this step are kept forever (0: none). */
    checkpoint_milestones: int(0).default(0),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (typeof t.min_lr === 'number' && typeof t.lr === 'number' && t.min_lr > t.lr) {
      ctx.addIssue({ code: 'custom', path: ['min_lr'], message: `must be <= lr (${t.min_lr} > ${t.lr})` });
    }
  });

export const dataSchema = z
  .object({
    /** 'embedded' = the default corpus shipped in the project; otherwise a prepared data dir. */
    source: z.string().min(1).default('embedded'),
    tokenizer_vocab_size: int(260),
    val_fraction: z.number().gt(0).max(0.5).default(0.05),
    /** Use only the first N bytes of the corpus; 0 = all of it. */
    max_bytes: int(0).default(0),
  })
  .strict();

export const runtimeSchema = z
  .object({
    /** OpenMP threads; 0 = all cores. */
    threads: int(0).default(0),
    kernels: choice(KERNELS, PLANNED_KERNELS).default('litespark'),
    dtype: choice(DTYPES, PLANNED_DTYPES).default('fp32'),
    recompute: choice(RECOMPUTE, {}).default('none'),
    /**
     * Power draw in watts for the energy estimate (W x wall time) when no hardware counter
     * (RAPL, NVML) is readable; 0 = the per-core model (src/metrics/energy.ts). `train --watts`.
     */
    watts: z.number().min(0).default(0),
    /**
     * Carbon intensity of the electricity, gCO2e per kWh, for the CO2e of a run. Default 480: the
     * 2023 world average (Ember, Global Electricity Review 2024).
     */
    grid_gco2_per_kwh: z.number().min(0).default(480),
    /** Run directory; the loader fills in runs/<preset>-<timestamp> when absent. */
    out: z.string().min(1).optional(),
  })
  .strict();

/** The sections, by name (also used to suggest the nearest key for a misspelt one). */
export const sectionSchemas = {
  model: modelSchema,
  train: trainSchema,
  data: dataSchema,
  runtime: runtimeSchema,
} as const;

export const configSchema = z
  .object(sectionSchemas)
  .strict()
  .superRefine((c, ctx) => {
    const m = c.model, t = c.train, d = c.data;
    if (m && t && Number.isInteger(t.seq_len) && Number.isInteger(m.max_position_embeddings) &&
        t.seq_len > m.max_position_embeddings) {
      ctx.addIssue({
        code: 'custom',
        path: ['train', 'seq_len'],
        message: `must be <= model.max_position_embeddings (${t.seq_len} > ${m.max_position_embeddings})`,
      });
    }
    if (m && d && Number.isInteger(d.tokenizer_vocab_size) && Number.isInteger(m.vocab_size) &&
        d.tokenizer_vocab_size > m.vocab_size) {
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'tokenizer_vocab_size'],
        message: `must be <= model.vocab_size (${d.tokenizer_vocab_size} > ${m.vocab_size})`,
      });
    }
  })
  .transform((c) => ({ ...c, train: { ...c.train, min_lr: c.train.min_lr ?? c.train.lr / 10 } }));

export type ModelConfig = z.output<typeof modelSchema>;
export type TrainConfig = z.output<typeof trainSchema> & { min_lr: number };
export type DataConfig = z.output<typeof dataSchema>;
export type RuntimeConfig = z.output<typeof runtimeSchema> & { out: string };
export type Kernels = RuntimeConfig['kernels'];
export type Dtype = RuntimeConfig['dtype'];
export type RecomputeMode = RuntimeConfig['recompute'];

/** A resolved, validated config: every default filled in. */
export interface Config {
  model: ModelConfig;
  train: TrainConfig;
  data: DataConfig;
  runtime: RuntimeConfig;
}

/** What a preset or a config file may hold: keys with defaults may be left out. */
export type ConfigInput = z.input<typeof configSchema>;
/** Model input (defaults optional), e.g. for a model built outside a full config. */
export type ModelConfigInput = z.input<typeof modelSchema>;

/**
 * Validates `raw` (a plain object, already merged from preset, file and overrides).
 * `defaultOut` becomes runtime.out when the input has none.
 * Throws ConfigError listing every problem, one `config: <path>: <reason>` line each.
 */
export function parseConfig(raw: unknown, defaultOut = 'runs/run'): Config {
  const r = configSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.flatMap((iss) => describeIssue(iss, raw));
    throw new ConfigError(issues.map((i) => i.line).join('\n'), issues.map(({ path, reason }) => ({ path, reason })));
  }
  return { ...r.data, runtime: { ...r.data.runtime, out: r.data.runtime.out ?? defaultOut } };
}

/** Validates a model section alone (with its defaults filled in). */
export function parseModelConfig(raw: unknown): ModelConfig {
  const r = modelSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.flatMap((iss) =>
      describeIssue({ ...iss, path: ['model', ...iss.path] } as z.core.$ZodIssue, { model: raw }));
    throw new ConfigError(issues.map((i) => i.line).join('\n'), issues.map(({ path, reason }) => ({ path, reason })));
  }
  return r.data;
}

// ---- error text ----------------------------------------------------------------------------

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** Known keys of the object at `path` (top level or a section), for "did you mean". */
function knownKeys(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys(sectionSchemas);
  const s = sectionSchemas[path[0] as keyof typeof sectionSchemas];
  return path.length === 1 && s ? Object.keys(s.shape) : [];
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return dp[b.length]!;
}

function suggestion(key: string, known: string[]): string {
  let best = '', bestD = Infinity;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean '${best}'?)` : '';
}

function describeIssue(iss: z.core.$ZodIssue, raw: unknown): { path: string; reason: string; line: string }[] {
  const where = iss.path.map(String).join('.');
  const got = valueAt(raw, iss.path);
  const one = (reason: string) => [{ path: where, reason, line: `config: ${where || '(top level)'}: ${reason}` }];
  switch (iss.code) {
    case 'unrecognized_keys':
      return iss.keys.map((k) => {
        const p = [...iss.path.map(String), k].join('.');
        const hint = suggestion(k, knownKeys(iss.path));
        return { path: p, reason: 'unknown key', line: `config: unknown key '${p}'${hint}` };
      });
    case 'invalid_type':
      if (got === undefined) return one('is required');
      if (iss.expected === 'int') return one(`must be an integer (got ${show(got)})`);
      if (iss.expected === 'object') return one(`must be an object (got ${show(got)})`);
      return one(`must be a ${iss.expected} (got ${show(got)})`);
    case 'too_small':
      if (iss.origin === 'string') return one('must not be empty');
      return one(`must be ${iss.inclusive ? '>=' : '>'} ${iss.minimum} (got ${show(got)})`);
    case 'too_big':
      return one(`must be ${iss.inclusive ? '<=' : '<'} ${iss.maximum} (got ${show(got)})`);
    default:
      return one(iss.message);
  }
}
