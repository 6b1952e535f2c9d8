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
   * Compute dtype. bf16 mixed precision keeps the master weights, the optimizer state and most
   * activations in fp32; see bf16Operands for what it keeps in bf16.
   */
  dtype: 'fp32' | 'bf16';
  /**
   * bf16 on the fused path with a bf16 matrix unit (AMX / AVX-512 BF16; llama.ts
   * keepsBf16Operands): the operands read only by matrix products are kept in bf16: a bf16
   * working copy of the weights (2 bytes per parameter, counted under parameters), the norm
   * outputs, q, k, v, the attention output, the SwiGLU activation, dgu (workspace) and dqkv (in
   * qkv's bytes). Ignored unless dtype is bf16, kernels litespark and storage f32. Without a
   * matrix unit (the fp32 unit) bf16 changes no buffer.
   */
  bf16Operands?: boolean;
  recompute: MemoryRecompute;
  /** Storage of parameters and activations: 'f32' in training, 'f64' in the reference tests. */
  storage?: 'f32' | 'f64';
  /** Full (N, V) logits kept on the fused path too (the sampling buffers). */
  withLogits?: boolean;
}

/** Bytes by kind, as the trainer reports them at start. */
export interface MemoryReport {
  /** fp32 master weights (one flat buffer, tensors aligned to 64 bytes), + their bf16 working copy where kept. */
  parameters: number;
  gradients: number;
  /** AdamW's two moments. */
  optimizer: number;
  /** What a step keeps for backward, recompute buffers included (StepBuffers.activationBytes). */
  activations: number;
  /** Gradient scratch shared by all layers, and the rotary tables (StepBuffers.workspaceBytes). */
  workspace: number;
  /**
   * The kernels' scratch that grows with the vocabulary (headScratchBytes): the fused head's
   * logit chunk and, on a bf16 matrix unit, its packed weights; native workspaces kept between
   * steps. Not counted: the GEMMs' and attention's per-thread blocks (MiBs, not model-sized), and
   * the bf16 head's per-thread row of exponentials (V floats each, in slot 1).
   */
  scratch: number;
  total: number;
}

/** Elements of the bf16 weight copy (Bf16Weights): the decayed matrices, the embedding only when tied. */
export function bf16CopyElements(c: LlamaConfig): number {
  let total = 0, lo = -1;
  for (const s of llamaParamSpecs(c)) {
    if (!s.decay) return total - lo;
    if (lo < 0) lo = c.tie_word_embeddings ? 0 : Math.ceil((s.shape[0] * (s.shape[1] ?? 1)) / 16) * 16;
    total += s.shape.reduce((a, b) => a * b, 1);
    if (!s.packNext) total = Math.ceil(total / 16) * 16;
  }
  return total - lo;
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

type StepShape = Pick<MemoryOptions, 'B' | 'T' | 'kernels' | 'recompute' | 'withLogits'>;

/** Elements a step keeps for backward and of its scratch, per kernel path and recompute mode (all in one dtype). */
export function stepElements(c: LlamaConfig, o: StepShape): { activations: number; workspace: number } {
  return stepBytes(c, o, 1, false);
}

/**
 * Bytes a step keeps for backward and of its scratch with `e` bytes an element; bf16: the fused
 * path's matrix-product-only operands at 2 bytes (norm outputs h1, h2, hF, q, k, v, the
 * attention output, gate/up and dgu, the SwiGLU activation).
 */
function stepBytes(c: LlamaConfig, o: StepShape, e: number, bf16: boolean): { activations: number; workspace: number } {
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
  const hb = bf16 && o.kernels === 'litespark' ? 2 : e; // bytes of a GEMM-only operand element
  const norms = (2 * N + N * C) * e + 2 * N * C * hb; // rstd1, mid, rstd2; h1, h2
  const shared = N * e + N * C * hb; // one rstd and one norm output for every layer

  // resid[0..L] (the fused path's resid[0] lives in dres), rstdF, lse (N) always; hF and the
  // logits where they are their own buffers.
  let act = ((o.kernels === 'standard' ? L + 1 : L) * N * C + 2 * N) * e;
  let work = (2 * N * C + 2 * T * (D / 2)) * e; // dres, dh, rope cos/sin
  if (o.kernels === 'standard') {
    const probs = B * H * T * T;
    const layer = norms + (2 * q + 2 * kv + probs + 3 * N * F) * e; // + q, att, k, v, probs, gate, up, act
    act += (N * C + N * V) * e; // hF (the head's backward needs it), logits
    if (o.recompute === 'none') act += L * layer;
    else if (o.recompute === 'full') act += layer;
    else act += shared + (probs + N * F + L * (N * C + 2 * q + 2 * kv + 2 * N * F)) * e; // mid, q, att, k, v, gate, up
    work += (2 * q + 2 * kv + 3 * N * F) * e; // datt, dq, dk, dv, dact, dgate, dup
  } else {
    const attn = (2 * q + 2 * kv) * hb + B * H * T * e; // q, k, v, att (bf16 with bf16 operands); lse
    // gate/up (N, 2F) per layer without recomputation (dgu in place); with it, recomputed into the
    // workspace's one dgu buffer
    if (o.withLogits) act += N * V * e;
    if (o.recompute === 'none') act += N * C * hb + L * (norms + attn + 2 * N * F * hb); // hF; per layer
    else if (o.recompute === 'full') act += shared + attn; // shared h is hF too; one attention set (mid lives in datt)
    else act += shared + L * (N * C * e + attn); // per layer: mid and attention
    // qkv (dqkv in bf16 lives in its bytes), datt, dq, dk, dv, dact; the activation; under
    // recomputation gate/up then dgu; in bf16 a copy of dres
    work += (N * (H + 2 * KVH) * D + 2 * q + 2 * kv + N * F) * e + N * F * hb + (o.recompute !== 'none' ? 2 * N * F * hb : 0) + (hb < e ? N * C * hb : 0);
  }
  return { activations: act, workspace: work };
}

/** What the native workspace allocates for a request of b bytes (native/src/memory.cc: a quarter of headroom, whole 64 bytes). */
export function workspaceAllocation(b: number): number {
  return Math.ceil((b + Math.floor(b / 4)) / 64) * 64;
}

/** Chunk rows of the fused head (native/src/kernels/linear_cross_entropy.cc, bf16/head_bf16.cc). */
export const HEAD_ROWS = { fp32: 384, bf16: 1024 } as const;

/**
 * The head's native scratch in training, as allocated (the slots of native/src/memory.cc):
 * - fused path: one chunk of R = min(N, rows) rows of logits and R row losses (doubles) in slot
 *   2; with bf16 operands (a bf16 matrix unit: head_bf16.cc) the chunk is bf16 (R = 1024) and
 *   slot 3 holds the weight packed twice in bf16, as W^T (logits) and as W (dx), each in
 *   32 x 32 blocks (ceil(V/32) * 32 x ceil(C/32) * 32 elements); otherwise storage-width
 *   logits, R = 384 (linear_cross_entropy.cc).
 * - standard path: its N row losses (cross_entropy.cc); its logits are activations.
 * Other users of those slots (the attention kernels' packed keys, the gate/up GEMM's packed
 * weights) request less at Llama shapes (V >= 2F, and the head's chunk is past the keys of a
 * sequence). Not counted: the per-thread blocks of slots 0 and 1 (slot 1 includes the bf16
 * head's row of V fp32 exponentials per thread in training), and two smaller users of
 * slot 3 where the head leaves it empty (the fp32 path): past C = 1024 the epilogue GEMMs'
 * partial sums (at most N x 1024 floats) and the norms' backward's dw partials (N / 32 x C).
 */
export function headScratchBytes(c: LlamaConfig, o: Pick<MemoryOptions, 'B' | 'T' | 'kernels' | 'storage'>, bf16Operands: boolean): number {
  const N = o.B * o.T, V = c.vocab_size, C = c.hidden_size;
  if (o.kernels === 'standard') return workspaceAllocation(8 * N);
  const e = bf16Operands ? 2 : o.storage === 'f64' ? 8 : 4;
  const R = Math.min(N, bf16Operands ? HEAD_ROWS.bf16 : HEAD_ROWS.fp32);
  const chunk = workspaceAllocation(Math.ceil((e * R * V) / 64) * 64 + 8 * R);
  const up32 = (x: number) => Math.ceil(x / 32) * 32;
  return chunk + (bf16Operands ? workspaceAllocation(2 * 2 * up32(V) * up32(C)) : 0);
}

/** The memory of a training run of `c` at micro-batch (B, T), from the config alone. */
export function memoryModel(c: LlamaConfig, o: MemoryOptions): MemoryReport {
  const bytes = o.storage === 'f64' ? 8 : 4;
  const bf16 = o.bf16Operands === true && o.dtype === 'bf16' && o.kernels === 'litespark' && bytes === 4;
  const params = paramStoreElements(c) * bytes;
  const step = stepBytes(c, o, bytes, bf16);
  const r = {
    parameters: params + (bf16 ? bf16CopyElements(c) * 2 : 0),
    gradients: params,
    optimizer: 2 * params,
    activations: step.activations,
    workspace: step.workspace,
    scratch: headScratchBytes(c, o, bf16),
  };
  return { ...r, total: r.parameters + r.gradients + r.optimizer + r.activations + r.workspace + r.scratch };
}
