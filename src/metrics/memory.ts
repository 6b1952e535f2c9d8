// The memory model: the bytes a training run holds, computed from the model config and the step
// shape alone (nothing allocated), so it answers for llama-70b as readily as for nano. It is the
// trainer's start-of-run report and the model `litespark plan` uses; test/metrics/memory.test.ts
// holds it equal to what the trainer actually allocates (ParamStore, AdamW, StepBuffers).
//
// Shape letters: B batch, T sequence, N = B·T tokens, C width, L layers, H / KVH heads, D head
// width, F MLP width, V vocabulary.
import { llamaParamSpecs, type LlamaConfig } from '../model/params.js';

export type MemoryKernels = 'standard' | 'litespark';
export type MemoryRecompute = 'none' | 'selective' | 'full';

export interface MemoryOptions {
  /** Sequences per micro-batch and their length. */
  B: number;
  T: number;
  kernels: MemoryKernels;
  /**
   * Compute dtype. bf16 mixed precision changes none of these buffers today (master weights,
   * optimizer state and activations stay fp32; GEMM operands are rounded as they are packed),
   * but the parameter stays so the model can follow when bf16 activations arrive.
   */
  dtype: 'fp32' | 'bf16';
  recompute: MemoryRecompute;
  /** Storage of parameters and activations: 'f32' in training, 'f64' in the reference tests. */
  storage?: 'f32' | 'f64';
  /** Full (N, V) logits kept on the fused path too (the sampling buffers). */
  withLogits?: boolean;
}

/** Bytes by kind, as the trainer reports them at start. */
export interface MemoryReport {
  /** fp32 master weights (one flat buffer, tensors aligned to 64 bytes). */
  parameters: number;
  gradients: number;
  /** AdamW's two moments. */
  optimizer: number;
  /** What a step keeps for backward, recompute buffers included (StepBuffers.activationBytes). */
  activations: number;
  /** Gradient scratch shared by all layers, and the rotary tables (StepBuffers.workspaceBytes). */
  workspace: number;
  total: number;
}

/** Elements of one flat parameter buffer (FlatBuffer: each tensor padded to 16 elements unless packed with the next). */
export function paramStoreElements(c: LlamaConfig): number {
  let total = 0;
  for (const s of llamaParamSpecs(c)) {
    total += s.shape.reduce((a, b) => a * b, 1);
    if (!s.packNext) total = Math.ceil(total / 16) * 16;
  }
  return total;
}

/** Elements a step keeps for backward and of its scratch, per kernel path and recompute mode. */
export function stepElements(c: LlamaConfig, o: Pick<MemoryOptions, 'B' | 'T' | 'kernels' | 'recompute' | 'withLogits'>): { activations: number; workspace: number } {
  const { B, T } = o;
  const N = B * T;
  const C = c.hidden_size;
  const L = c.num_hidden_layers;
  const H = c.num_attention_heads;
  const KVH = c.num_key_value_heads;
  const D = C / H;
  const F = c.intermediate_size;
  const V = c.vocab_size;
  const q = N * H * D, kv = N * KVH * D; // q and att; k and v each
  const norms = 2 * N + 3 * N * C; // rstd1, h1, mid, rstd2, h2
  const shared = N + N * C; // one rstd and one norm output for every layer

  // resid[0..L], rstdF, lse (N) always; hF and the logits where they are their own buffers.
  let act = (L + 1) * N * C + 2 * N;
  let work = 2 * N * C + 2 * T * (D / 2); // dres, dh, rope cos/sin
  if (o.kernels === 'standard') {
    const probs = B * H * T * T;
    const layer = norms + 2 * q + 2 * kv + probs + 3 * N * F; // + q, att, k, v, probs, gate, up, act
    act += N * C + N * V; // hF (the head's backward needs it), logits
    if (o.recompute === 'none') act += L * layer;
    else if (o.recompute === 'full') act += layer;
    else act += shared + probs + N * F + L * (N * C + 2 * q + 2 * kv + 2 * N * F); // mid, q, att, k, v, gate, up
    work += 2 * q + 2 * kv + 3 * N * F; // datt, dq, dk, dv, dact, dgate, dup
  } else {
    const attn = 2 * q + 2 * kv + B * H * T; // q, att, k, v, lse
    if (o.withLogits) act += N * V;
    if (o.recompute === 'none') act += N * C + L * (norms + attn + N * F); // hF; per layer + the SwiGLU activation
    else if (o.recompute === 'full') act += shared + N * C + attn; // shared h is hF too; one mid, one attention set
    else act += shared + L * (N * C + attn); // per layer: mid and attention
    // the activation under recomputation lives in dact
    work += N * (H + 2 * KVH) * D + 2 * q + 2 * kv + 2 * N * F + N * F; // qkv, datt, dq, dk, dv, gu, dact
  }
  return { activations: act, workspace: work };
}

/** The memory of a training run of `c` at micro-batch (B, T), from the config alone. */
export function memoryModel(c: LlamaConfig, o: MemoryOptions): MemoryReport {
  const bytes = o.storage === 'f64' ? 8 : 4;
  const params = paramStoreElements(c) * bytes;
  const step = stepElements(c, o);
  const r = {
    parameters: params,
    gradients: params,
    optimizer: 2 * params,
    activations: step.activations * bytes,
    workspace: step.workspace * bytes,
  };
  return { ...r, total: r.parameters + r.gradients + r.optimizer + r.activations + r.workspace };
}
