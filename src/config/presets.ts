// Named configs. Each is complete (keys with a schema default may be left out) and carries a
// one-line "why". `resolveConfig` starts from one of these; a config file and flags override it.
import type { ConfigInput } from './schema.js';

// ---- demo: the default of `litespark train` ------------------------------------------------
// The numbers the lead tunes after measuring live here, and only here. Target: a small Llama
// that trains on 2 cores in ~2-3 minutes on the embedded corpus and visibly learns.
const DEMO = {
  hidden: 192, layers: 4, heads: 6, kvHeads: 2, ffn: 512, // head_dim 32, GQA ratio 3
  vocab: 4096, seq: 128, microBatch: 16,
  // 600 steps x 2048 tokens: ~2 minutes at the ~11k tokens/s measured on 2 Xeon cores (avx512,
  // standard kernels); 300 steps reached val loss 2.15, the sample was still half-formed.
  steps: 600, lr: 3e-3, warmup: 60, // small model + short run: high lr, 10% warm-up
  logEvery: 10, evalEvery: 200,
} as const;

/** Shared training settings of the planning presets (real model sizes, not trained here). */
const PLAN_TRAIN = {
  steps: 10000, micro_batch_size: 1, grad_accum_steps: 1, warmup_steps: 2000, // Llama papers: 2000 warm-up
  weight_decay: 0.1, beta1: 0.9, beta2: 0.95, grad_clip: 1.0,
} as const;

/** The three BENCH.md reference rows share everything but their shapes. */
function bench(dim: number, layers: number, heads: number, kv: number, ffn: number, vocab: number,
  seq: number, batch: number): ConfigInput {
  return {
    model: {
      vocab_size: vocab, hidden_size: dim, intermediate_size: ffn, num_hidden_layers: layers,
      num_attention_heads: heads, num_key_value_heads: kv, max_position_embeddings: seq,
      tie_word_embeddings: false, // BENCH.md: untied head
    },
    // 3 warm-up + 10 measured steps: the BENCH.md protocol minimum.
    train: { steps: 13, micro_batch_size: batch, seq_len: seq, lr: 1e-3, warmup_steps: 0, eval_batches: 1, sample_tokens: 0 },
    data: { tokenizer_vocab_size: Math.min(4096, vocab) },
    runtime: {},
  };
}

/** A real Llama shape for `litespark plan` and memory estimates. */
function llama(m: {
  hidden: number; layers: number; heads: number; kv: number; ffn: number; vocab: number;
  maxPos: number; theta: number; tied: boolean; eps: number; seq: number; lr: number;
}): ConfigInput {
  return {
    model: {
      vocab_size: m.vocab, hidden_size: m.hidden, intermediate_size: m.ffn, num_hidden_layers: m.layers,
      num_attention_heads: m.heads, num_key_value_heads: m.kv, max_position_embeddings: m.maxPos,
      rms_norm_eps: m.eps, rope_theta: m.theta, tie_word_embeddings: m.tied, initializer_range: 0.02,
    },
    train: { ...PLAN_TRAIN, seq_len: m.seq, lr: m.lr, min_lr: m.lr / 10 },
    data: { tokenizer_vocab_size: m.vocab },
    runtime: {},
  };
}

export const PRESETS = {
  // Default of `litespark train`: learns visibly on 2 cores in a few minutes (numbers: DEMO above).
  demo: {
    model: {
      vocab_size: DEMO.vocab, hidden_size: DEMO.hidden, intermediate_size: DEMO.ffn,
      num_hidden_layers: DEMO.layers, num_attention_heads: DEMO.heads, num_key_value_heads: DEMO.kvHeads,
      max_position_embeddings: DEMO.seq,
    },
    train: {
      steps: DEMO.steps, micro_batch_size: DEMO.microBatch, seq_len: DEMO.seq, lr: DEMO.lr,
      warmup_steps: DEMO.warmup, log_every: DEMO.logEvery, eval_every: DEMO.evalEvery,
    },
    data: { tokenizer_vocab_size: DEMO.vocab },
    runtime: {},
  },
  // Smoke tests and CI: seconds per run, every code path (GQA 2, untied head) still exercised.
  nano: {
    model: {
      vocab_size: 512, hidden_size: 64, intermediate_size: 192, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64,
    },
    train: { steps: 100, micro_batch_size: 8, seq_len: 64, lr: 5e-3, warmup_steps: 10, log_every: 10, eval_batches: 2 },
    data: { tokenizer_vocab_size: 512 },
    runtime: {},
  },
  // Quick local experiments: below demo in width, still 4 layers so depth effects show.
  micro: {
    model: {
      vocab_size: 2048, hidden_size: 128, intermediate_size: 384, num_hidden_layers: 4,
      num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128,
    },
    train: { steps: 500, micro_batch_size: 8, seq_len: 128, lr: 3e-3, warmup_steps: 50, log_every: 10, eval_every: 100 },
    data: { tokenizer_vocab_size: 2048 },
    runtime: {},
  },
  // Longer local runs (tens of minutes on a few cores): head_dim 64 like real Llamas.
  small: {
    model: {
      vocab_size: 8192, hidden_size: 384, intermediate_size: 1024, num_hidden_layers: 6,
      num_attention_heads: 6, num_key_value_heads: 2, max_position_embeddings: 256,
    },
    train: { steps: 2000, micro_batch_size: 8, seq_len: 256, lr: 1e-3, warmup_steps: 100, log_every: 10, eval_every: 250 },
    data: { tokenizer_vocab_size: 8192 },
    runtime: {},
  },
  // BENCH.md row XS: small GEMMs, framework overheads.
  'bench-xs': bench(256, 4, 4, 2, 768, 8192, 256, 8),
  // BENCH.md row S: the headline row.
  'bench-s': bench(512, 8, 8, 4, 1536, 32000, 512, 4),
  // BENCH.md row L: long context, attention time and memory.
  'bench-l': bench(512, 4, 8, 4, 1536, 32000, 2048, 1),
  // Llama 3.2 1B (tied head; rope_scaling of the release not modelled): for `plan`.
  'llama-1b': llama({ hidden: 2048, layers: 16, heads: 32, kv: 8, ffn: 8192, vocab: 128256, maxPos: 131072,
    theta: 500000, tied: true, eps: 1e-5, seq: 8192, lr: 3e-4 }),
  // Llama 3.2 3B (tied head): for `plan`.
  'llama-3b': llama({ hidden: 3072, layers: 28, heads: 24, kv: 8, ffn: 8192, vocab: 128256, maxPos: 131072,
    theta: 500000, tied: true, eps: 1e-5, seq: 8192, lr: 3e-4 }),
  // Llama 3.1 8B (untied head): the most common fine-tuning base; for `plan`.
  'llama-8b': llama({ hidden: 4096, layers: 32, heads: 32, kv: 8, ffn: 14336, vocab: 128256, maxPos: 131072,
    theta: 500000, tied: false, eps: 1e-5, seq: 8192, lr: 3e-4 }),
  // LLaMA (1) 30B: full multi-head attention (no GQA), 2k context; paper lr 1.5e-4; for `plan`.
  'llama-30b': llama({ hidden: 6656, layers: 60, heads: 52, kv: 52, ffn: 17920, vocab: 32000, maxPos: 2048,
    theta: 10000, tied: false, eps: 1e-6, seq: 2048, lr: 1.5e-4 }),
  // Llama 3 70B: the largest dense size people pre-train or continue-train; for `plan`.
  'llama-70b': llama({ hidden: 8192, layers: 80, heads: 64, kv: 8, ffn: 28672, vocab: 128256, maxPos: 8192,
    theta: 500000, tied: false, eps: 1e-5, seq: 8192, lr: 1.5e-4 }),
  // The 3B of the published Litespark runs (GQA 8:1, 32k vocab, 4k context; rope/eps not published): for `plan`.
  'litespark-3b': llama({ hidden: 2048, layers: 28, heads: 16, kv: 2, ffn: 11008, vocab: 32000, maxPos: 4096,
    theta: 10000, tied: false, eps: 1e-5, seq: 4096, lr: 3e-4 }),
  // The 30B of the published Litespark runs (LLaMA-30B widths, 64 heads of 104, 4k context): for `plan`.
  'litespark-30b': llama({ hidden: 6656, layers: 60, heads: 64, kv: 64, ffn: 17920, vocab: 32000, maxPos: 4096,
    theta: 10000, tied: false, eps: 1e-5, seq: 4096, lr: 1.5e-4 }),
} satisfies Record<string, ConfigInput>;

export type PresetName = keyof typeof PRESETS;

/** Preset names in the order above (the order `--help` and errors list them). */
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

/** A fresh deep copy of a preset, safe to mutate. */
export function getPreset(name: PresetName): ConfigInput {
  return structuredClone(PRESETS[name]) as ConfigInput;
}
