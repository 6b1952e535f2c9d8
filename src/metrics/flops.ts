// The FLOPs model (BENCH.md, the PaLM / Megatron convention): model FLOPs per token
// = 6·P + 12·L·d·T, P = all non-embedding weights (the output head counts), L layers,
// d model width, T sequence length. Recomputation never adds to it. MFU = achieved model
// FLOP/s ÷ the measured peak of the machine for that dtype and thread count.
import type { ModelConfig } from '../config/schema.js';

/** The shape fields the count needs (a full ModelConfig fits). */
export type ModelShape = Pick<ModelConfig,
  'vocab_size' | 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads' |
  'num_key_value_heads' | 'tie_word_embeddings'>;

export interface ParameterCounts {
  /** Distinct parameters stored (a tied head is the embedding table: counted once). */
  total: number;
  /** The token embedding table, V·d. */
  embedding: number;
  /**
   * P of the FLOPs model: everything but the embedding lookup, the output head included.
   * When the head is tied, its V·d matrix is the embedding table, yet it still does a V·d
   * matmul per token, so it counts here too: then embedding + nonEmbedding = total + V·d.
   */
  nonEmbedding: number;
  /** The output head's V·d (shared with `embedding` when tied). */
  head: number;
  /** One decoder layer: attention q,k,v,o + MLP gate,up,down + its two RMSNorm weights. */
  perLayer: number;
}

export function parameterCounts(model: ModelShape): ParameterCounts {
  const V = model.vocab_size, d = model.hidden_size, f = model.intermediate_size;
  const L = model.num_hidden_layers;
  const headDim = d / model.num_attention_heads;
  const kvDim = model.num_key_value_heads * headDim;
  const attention = d * d /* q */ + d * kvDim /* k */ + d * kvDim /* v */ + d * d /* o */;
  const mlp = 3 * d * f; // gate, up: d->f; down: f->d
  const norms = 2 * d; // input_layernorm, post_attention_layernorm
  const perLayer = attention + mlp + norms;
  const embedding = V * d;
  const head = V * d;
  const body = L * perLayer + d; // + final norm
  return {
    total: embedding + body + (model.tie_word_embeddings ? 0 : head),
    embedding,
    nonEmbedding: body + head,
    head,
    perLayer,
  };
}

/** Model FLOPs per trained token (forward + backward) at sequence length `seqLen`. */
export function flopsPerToken(model: ModelShape, seqLen: number): number {
  const P = parameterCounts(model).nonEmbedding;
  return 6 * P + 12 * model.num_hidden_layers * model.hidden_size * seqLen;
}

/**
 * Model FLOPs utilization in [0, 1] (can exceed 1 only if the peak was under-measured).
 * `peakFlops` is in FLOP/s (not GFLOP/s); null when the peak is unknown (null, 0, not finite).
 */
export function mfu(tokensPerSecond: number, flopsPerToken: number, peakFlops: number | null | undefined): number | null {
  if (peakFlops === null || peakFlops === undefined || !Number.isFinite(peakFlops) || peakFlops <= 0) return null;
  return (tokensPerSecond * flopsPerToken) / peakFlops;
}
