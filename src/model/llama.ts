// The Llama model: token embedding, L blocks of (RMSNorm -> GQA attention with RoPE -> residual,
// RMSNorm -> SwiGLU MLP -> residual), final RMSNorm, output head (tied or untied), and the
// cross-entropy loss. Explicit forward / backward with saved activations; every buffer of a
// step is allocated once per (batch, sequence) shape, so a step allocates nothing.
import { native, type FloatArray } from '../kernels/native.js';
import { Bf16Tensor, Tensor, type AnyTensor, type DType } from '../kernels/tensor.js';
import {
  AttentionActs, AttentionGrads, FusedAttentionActs, FusedAttentionGrads, attentionBackward, attentionForward,
  fusedAttentionBackward, fusedAttentionForward, type AttentionShape, type AttentionWeights, type FusedAttentionWeights,
} from './attention.js';
import { linearBackward, linearForward, matmulFor, type Matmul, type Operand, type Precision } from './linear.js';
import {
  FusedMlpScratch, MlpActs, MlpGrads, fusedMlpBackward, fusedMlpForward, fusedMlpRecompute, mlpBackward, mlpForward, type FusedMlpWeights,
  type MlpShape, type MlpWeights,
} from './mlp.js';
import { Bf16Weights, ParamStore, headDim, type LlamaConfig } from './params.js';

/**
 * 'standard': what a typical framework does (separate GEMMs, materialized attention
 * probabilities and logits, separate elementwise passes): the baseline. 'litespark': the fused
 * path (packed QKV and gate/up GEMMs, RoPE in the QKV split, flash attention, residual adds
 * folded into the norms, chunked head + cross-entropy).
 */
export type KernelPath = 'standard' | 'litespark';

/** W: the fused path's GEMM weights, fp32 (FloatArray) or the bf16 working copy's views. */
interface LayerWeights<W extends Operand = FloatArray> {
  inNorm: FloatArray;
  postNorm: FloatArray;
  attn: AttentionWeights;
  mlp: MlpWeights;
  fusedAttn: FusedAttentionWeights<W>;
  fusedMlp: FusedMlpWeights<W>;
}

/** Layer l's tensors of p; the fused path's GEMM weights from `copy` (bf16) when given. */
function layerWeights(p: ParamStore, c: LlamaConfig, l: number): LayerWeights;
function layerWeights(p: ParamStore, c: LlamaConfig, l: number, copy: Bf16Weights | null): LayerWeights<Operand>;
function layerWeights(p: ParamStore, c: LlamaConfig, l: number, copy: Bf16Weights | null = null): LayerWeights<Operand> {
  const name = (n: string) => `model.layers.${l}.${n}`;
  const g = (n: string) => p.get(name(n)).data;
  const D = headDim(c);
  const qkvRows = (c.num_attention_heads + 2 * c.num_key_value_heads) * D;
  const q = name('self_attn.q_proj.weight'), o = name('self_attn.o_proj.weight');
  const gate = name('mlp.gate_proj.weight'), down = name('mlp.down_proj.weight');
  return {
    inNorm: g('input_layernorm.weight'),
    postNorm: g('post_attention_layernorm.weight'),
    attn: { q: g('self_attn.q_proj.weight'), k: g('self_attn.k_proj.weight'), v: g('self_attn.v_proj.weight'), o: g('self_attn.o_proj.weight') },
    mlp: { gate: g('mlp.gate_proj.weight'), up: g('mlp.up_proj.weight'), down: g('mlp.down_proj.weight') },
    fusedAttn: copy
      ? { qkv: copy.view(q, qkvRows, c.hidden_size), o: copy.view(o) }
      : { qkv: p.packed(q, qkvRows, c.hidden_size).data, o: p.get(o).data },
    fusedMlp: copy
      ? { gu: copy.view(gate, 2 * c.intermediate_size, c.hidden_size), down: copy.view(down) }
      : { gu: p.packed(gate, 2 * c.intermediate_size, c.hidden_size).data, down: p.get(down).data },
  };
}

/**
 * Whether a step keeps in bf16 the operands that only matrix products read: bf16 mixed precision
 * of the fused path on a matrix unit (AMX / AVX-512 BF16), fp32 storage. Then the GEMMs read the
 * weights' bf16 working copy (Bf16Weights), and the norm outputs, q, k, v (read by flash
 * attention's products only), the attention output (read by the o projection's GEMMs and, as
 * bf16 in any case, by flash attention's backward), the SwiGLU activation, dgu and dqkv are
 * written in bf16 by the kernels that make them: rounded exactly as the unit would round their
 * fp32 values while packing, so every product is unchanged (tested bit for bit), and those
 * tensors take half the memory. The fp32 fallback unit (no matrix unit) keeps everything fp32.
 */
export function keepsBf16Operands(dtype: DType, kernels: KernelPath, precision: Precision): boolean {
  return dtype === 'f32' && kernels === 'litespark' && precision === 'bf16' && native.bf16Unit() !== 'fp32';
}

/**
 * Activation checkpointing (`--recompute`): what backward recomputes instead of keeping it from
 * forward. Recomputation runs the forward's own kernels on bit-identical inputs, so gradients are
 * bitwise those of 'none' at the same thread count.
 * - 'none': every layer keeps its norm outputs, attention tensors and MLP inputs of backward
 *   (standard path: gate, up and the activation; fused path: gate and up, from which backward's
 *   SwiGLU pass makes the activation again, elementwise). No GEMM runs twice.
 * - 'selective': the cheap, memory-heavy parts are recomputed: the norm outputs h1/h2 (and their
 *   rstd) into one buffer shared by all layers; on the fused path gate/up (the gate/up GEMM again,
 *   into the MLP's dgu scratch), on the standard path the activation from the kept gate/up and the
 *   (B, H, T, T) probabilities (the attention core, as Megatron-LM's selective recomputation).
 *   Kept per layer: mid, q, k, v, att, lse (fused) or mid, q, k, v, att, gate, up (standard).
 * - 'full': each layer keeps only its input (the residual stream, resid[l]); backward re-runs the
 *   layer's forward into ONE set of activations shared by all layers right before its backward
 *   (on the fused path its mid in the attention's gradient scratch datt, free until then, and
 *   gate/up as under 'selective').
 */
export type Recompute = 'none' | 'selective' | 'full';

/** What layer l keeps for backward; `attn` and `mlp` hold the path's own activations. Under
 * recomputation some (or all) of these tensors are one buffer shared by every layer. H: the norm
 * outputs' tensor type (bf16 where the GEMM operands are kept in bf16). */
interface LayerActs<A, M, H extends AnyTensor = Tensor> {
  rstd1: Tensor; // (N)
  h1: H; // (N, C) input_layernorm output
  mid: Tensor; // (N, C) residual stream after attention
  rstd2: Tensor; // (N)
  h2: H; // (N, C) post_attention_layernorm output
  attn: A;
  mlp: M;
}

/** Bytes of the distinct tensors in `ts` (a buffer shared by several layers counts once). */
function uniqueBytes(ts: AnyTensor[]): number {
  const seen = new Set<Tensor['storage']>();
  let b = 0;
  for (const t of ts) {
    if (seen.has(t.storage)) continue;
    seen.add(t.storage);
    b += t.bytes;
  }
  return b;
}

const sumBytes = (ts: AnyTensor[]) => ts.reduce((a, t) => a + t.bytes, 0);
const normTensors = (l: LayerActs<unknown, unknown, AnyTensor>) => [l.rstd1, l.h1, l.mid, l.rstd2, l.h2];

/** The standard path's saved activations and gradient scratch. */
class StandardParts {
  readonly layers: Array<LayerActs<AttentionActs, MlpActs>>;
  readonly attnGrads: AttentionGrads;
  readonly mlpGrads: MlpGrads;

  constructor(dtype: DType, L: number, a: AttentionShape, m: MlpShape, recompute: Recompute) {
    const t = (shape: number[]) => Tensor.empty(dtype, shape);
    const { N, F } = m;
    const C = a.C;
    const layer = (): LayerActs<AttentionActs, MlpActs> => ({
      rstd1: t([N]), h1: t([N, C]), mid: t([N, C]), rstd2: t([N]), h2: t([N, C]),
      attn: new AttentionActs(dtype, a), mlp: new MlpActs(dtype, m),
    });
    if (recompute === 'full') {
      const one = layer();
      this.layers = Array.from({ length: L }, () => one);
    } else if (recompute === 'selective') {
      // shared by all layers: the norm output and its rstd, the probabilities, the activation
      const h = t([N, C]), rstd = t([N]), probs = t([a.B, a.H, a.T, a.T]), act = t([N, F]);
      const HD = a.H * a.D, KD = a.KVH * a.D;
      this.layers = Array.from({ length: L }, () => ({
        rstd1: rstd, h1: h, mid: t([N, C]), rstd2: rstd, h2: h,
        attn: { q: t([N, HD]), k: t([N, KD]), v: t([N, KD]), probs, att: t([N, HD]) },
        mlp: { gate: t([N, F]), up: t([N, F]), act },
      }));
    } else {
      this.layers = Array.from({ length: L }, layer);
    }
    this.attnGrads = new AttentionGrads(dtype, a);
    this.mlpGrads = new MlpGrads(dtype, m);
  }

  activations(): AnyTensor[] {
    return this.layers.flatMap((l) => [...normTensors(l), l.attn.q, l.attn.k, l.attn.v, l.attn.probs, l.attn.att, l.mlp.gate, l.mlp.up, l.mlp.act]);
  }

  workspace(): Tensor[] {
    const g = this.attnGrads;
    const m = this.mlpGrads;
    return [g.datt, g.dq, g.dk, g.dv, m.dact, m.dgate, m.dup];
  }
}

/** The fused path's saved activations (no probabilities; gate/up without recomputation) and scratch. */
class FusedParts {
  readonly layers: Array<LayerActs<FusedAttentionActs, AnyTensor, AnyTensor>>; // mlp: gate/up (N, 2F)
  readonly attnGrads: FusedAttentionGrads;
  readonly mlpScratch: FusedMlpScratch;
  /** Under recomputation: the one (N, C) norm-output buffer of all layers (also the final norm's). */
  readonly sharedH: AnyTensor | null;

  /** bf16: the norm outputs, q, k, v, the attention output, gate/up and the activation in bf16, dgu and dqkv too (keepsBf16Operands). */
  constructor(dtype: DType, L: number, a: AttentionShape, m: MlpShape, readonly recompute: Recompute, readonly bf16 = false) {
    const t = (shape: number[]) => Tensor.empty(dtype, shape);
    const op = (shape: number[]): AnyTensor => (bf16 ? Bf16Tensor.empty(shape) : t(shape)); // a GEMM-only operand
    const { N, F } = m;
    const C = a.C;
    this.attnGrads = new FusedAttentionGrads(dtype, a, bf16);
    this.mlpScratch = new FusedMlpScratch(dtype, m, bf16, recompute !== 'none');
    if (recompute === 'none') {
      this.sharedH = null;
      this.layers = Array.from({ length: L }, () => ({
        rstd1: t([N]), h1: op([N, C]), mid: t([N, C]), rstd2: t([N]), h2: op([N, C]),
        attn: new FusedAttentionActs(dtype, a, bf16), mlp: op([N, 2 * F]),
      }));
      return;
    }
    // h1 and h2 of every layer share one buffer (and one rstd): backward recomputes each right
    // before it is needed. Gate/up live in the MLP's dgu scratch: backward recomputes them there
    // and its SwiGLU pass turns them into dgu in place.
    const h = op([N, C]), rstd = t([N]), gu = this.mlpScratch.gu!;
    this.sharedH = h;
    const layer = (mid: Tensor): LayerActs<FusedAttentionActs, AnyTensor, AnyTensor> => ({
      rstd1: rstd, h1: h, mid, rstd2: rstd, h2: h, attn: new FusedAttentionActs(dtype, a, bf16), mlp: gu,
    });
    if (recompute === 'full') {
      // mid lives in datt's bytes ((N, H*D), H*D = C): the recomputed forward writes it, the
      // post-attention norm's backward reads it last, and only then does the attention's
      // backward write datt (forward never touches datt).
      const one = layer(new Tensor(this.attnGrads.datt.storage, dtype, [N, C]));
      this.layers = Array.from({ length: L }, () => one);
    } else {
      this.layers = Array.from({ length: L }, () => layer(t([N, C])));
    }
  }

  activations(): AnyTensor[] {
    return this.layers.flatMap((l) => [
      ...normTensors(l).filter((t) => this.recompute !== 'full' || t !== l.mid), // full: mid lives in datt
      l.attn.q, l.attn.k, l.attn.v, l.attn.att, l.attn.lse,
      ...(this.recompute === 'none' ? [l.mlp] : []), // otherwise it is the workspace's dgu scratch
    ]);
  }

  workspace(): AnyTensor[] {
    const g = this.attnGrads;
    const sc = this.mlpScratch;
    // dqkv16 shares qkv's storage
    return [g.qkv, g.datt, g.dq, g.dk, g.dv, sc.act, sc.dact, ...(sc.gu ? [sc.gu] : [])];
  }
}

/**
 * Every buffer of one training step at a fixed (B, T) for one kernel path and recompute mode:
 * saved activations, gradient scratch, rotary tables and the token buffers. Made once, reused
 * by every step.
 */
export class StepBuffers {
  readonly B: number;
  readonly T: number;
  readonly ids: Int32Array; // (B, T) inputs
  readonly targets: Int32Array; // (B, T), -1 = ignored
  readonly ropeCos: Tensor; // (T, D/2)
  readonly ropeSin: Tensor;
  /**
   * L+1 x (N, C): the residual stream entering each layer, and the last. On the fused path
   * resid[0] (the embedding's output) is not kept: it lives in dres, free until backward, and
   * backward makes it again (a gather) into resid[1]'s buffer, free by layer 0's backward.
   */
  readonly resid: Tensor[];
  readonly rstdF: Tensor; // (N)
  /** (N, C): the final norm's output. Fused path with recomputation: the layers' shared norm buffer (dead after forward). */
  readonly hF: AnyTensor;
  /** (N, V): the standard path's logits (turned into dlogits by backward); on the fused path only when asked for (sampling). */
  readonly logits: Tensor | null;
  readonly lse: Tensor; // (N)
  readonly dres: Tensor; // (N, C)
  /** (N, C): dres rounded to bf16 by each norm backward, for the backward GEMMs that read it (bf16 operands only). */
  readonly dres16: Bf16Tensor | null;
  readonly dh: Tensor; // (N, C)
  readonly standard: StandardParts | null;
  readonly fused: FusedParts | null;
  readonly attnShape: AttentionShape;
  readonly mlpShape: MlpShape;
  /** The GEMM of every projection and of the head. */
  readonly mm: Matmul;
  /** Operands read only by matrix products kept in bf16 (keepsBf16Operands). */
  readonly bf16Operands: boolean;
  /**
   * Whether backward may run: set by a training forward (one given dloss; on the standard path
   * any forward), cleared by backward, which overwrites what it read (the fused MLP's gate/up
   * become their gradient in place).
   */
  backwardReady = false;

  constructor(readonly config: LlamaConfig, readonly dtype: DType, B: number, T: number, readonly kernels: KernelPath, withLogits = false,
    readonly precision: Precision = 'fp32', readonly recompute: Recompute = 'none', bf16Operands = keepsBf16Operands(dtype, kernels, precision)) {
    const c = config;
    const C = c.hidden_size;
    const D = headDim(c);
    const N = B * T;
    const L = c.num_hidden_layers;
    this.B = B;
    this.T = T;
    this.mm = matmulFor(precision);
    if (bf16Operands && !keepsBf16Operands(dtype, kernels, precision))
      throw new Error('step buffers: bf16 operands need the fused path in bf16 on a matrix unit with fp32 storage');
    this.bf16Operands = bf16Operands;
    this.attnShape = { B, T, C, H: c.num_attention_heads, KVH: c.num_key_value_heads, D, mm: this.mm };
    this.mlpShape = { N, C, F: c.intermediate_size, mm: this.mm };
    this.ids = new Int32Array(N);
    this.targets = new Int32Array(N);
    this.ropeCos = Tensor.empty(dtype, [T, D / 2]);
    this.ropeSin = Tensor.empty(dtype, [T, D / 2]);
    native.ropeTable(this.ropeCos.data, this.ropeSin.data, T, D, c.rope_theta);
    this.dres = Tensor.empty(dtype, [N, C]);
    this.resid = Array.from({ length: L + 1 }, (_, l) => (l === 0 && kernels === 'litespark' ? this.dres : Tensor.empty(dtype, [N, C])));
    this.rstdF = Tensor.empty(dtype, [N]);
    this.standard = kernels === 'standard' ? new StandardParts(dtype, L, this.attnShape, this.mlpShape, recompute) : null;
    this.fused = kernels === 'litespark' ? new FusedParts(dtype, L, this.attnShape, this.mlpShape, recompute, this.bf16Operands) : null;
    // The fused path computes the head's gradients during forward, so hF is dead by backward.
    this.hF = this.fused?.sharedH ?? (this.bf16Operands ? Bf16Tensor.empty([N, C]) : Tensor.empty(dtype, [N, C]));
    this.logits = kernels === 'standard' || withLogits ? Tensor.empty(dtype, [N, c.vocab_size]) : null;
    this.lse = Tensor.empty(dtype, [N]);
    this.dres16 = this.bf16Operands ? Bf16Tensor.empty([N, C]) : null;
    this.dh = Tensor.empty(dtype, [N, C]);
  }

  /** Bytes of saved activations (what scales with batch, sequence and depth), recompute buffers included. */
  activationBytes(): number {
    const kept = this.fused ? this.resid.slice(1) : this.resid; // the fused path's resid[0] is dres
    const common = [...kept, this.rstdF, this.hF, this.lse, ...(this.logits ? [this.logits] : [])];
    return uniqueBytes([...common, ...(this.standard?.activations() ?? []), ...(this.fused?.activations() ?? [])]);
  }

  /** Bytes of gradient scratch and rotary tables. */
  workspaceBytes(): number {
    const common = sumBytes([this.dres, this.dh, this.ropeCos, this.ropeSin, ...(this.dres16 ? [this.dres16] : [])]);
    return common + sumBytes(this.standard?.workspace() ?? []) + sumBytes(this.fused?.workspace() ?? []);
  }
}

export class LlamaModel {
  readonly params: ParamStore;
  readonly grads: ParamStore;
  /**
   * The bf16 working copy of the weights when the fused path keeps its GEMM operands in bf16
   * (keepsBf16Operands at construction); AdamW rewrites it in its pass, forward re-casts it only
   * when the fp32 weights changed otherwise. null elsewhere.
   */
  readonly bf16Weights: Bf16Weights | null;
  /** fp32 weights, and the fused path's GEMM weights from the bf16 copy where there is one. */
  private readonly layerW: LayerWeights<Operand>[];
  /** The output head in the bf16 copy (made once: a step allocates nothing). */
  private readonly head16: Uint16Array | null;
  private readonly layerG: LayerWeights[];

  /**
   * dtype: storage of parameters and activations ('f64' is the reference path of the tests).
   * precision 'bf16': mixed precision, every matrix product (projections, MLP, head) with
   * bf16-rounded operands and fp32 accumulation on the best unit of the CPU; norms, softmax,
   * attention, loss, gradients and the optimizer's master weights stay in fp32.
   * opts.bf16Operands: false keeps every operand fp32 where keepsBf16Operands would keep the
   * GEMM-only ones in bf16 (the tests compare the two: the products must be identical).
   */
  constructor(readonly config: LlamaConfig, readonly dtype: DType = 'f32', readonly kernels: KernelPath = 'standard',
    readonly precision: Precision = 'fp32', opts: { bf16Operands?: boolean } = {}) {
    this.params = new ParamStore(config, dtype);
    this.grads = new ParamStore(config, dtype);
    const bf16 = keepsBf16Operands(dtype, kernels, precision) && opts.bf16Operands !== false;
    this.bf16Weights = bf16 ? new Bf16Weights(this.params) : null;
    this.layerW = Array.from({ length: config.num_hidden_layers }, (_, l) => layerWeights(this.params, config, l, this.bf16Weights));
    this.head16 = this.bf16Weights?.view(config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight') ?? null;
    this.layerG = Array.from({ length: config.num_hidden_layers }, (_, l) => layerWeights(this.grads, config, l));
  }

  /**
   * Buffers for steps of B sequences of T tokens; withLogits keeps full logits (sampling);
   * recompute: what backward recomputes instead of keeping (see Recompute).
   */
  buffers(B: number, T: number, withLogits = false, recompute: Recompute = 'none'): StepBuffers {
    return new StepBuffers(this.config, this.dtype, B, T, this.kernels, withLogits, this.precision, recompute, this.bf16Weights !== null);
  }

  /**
   * Forward over s.ids and s.targets; returns the summed cross-entropy over targets >= 0.
   * Training passes `dloss` (1 / tokens in the global batch, so micro-batches and accumulation
   * steps weigh tokens equally): the fused path then computes the head's gradients in the same
   * pass, so this.grads must be zeroed before the forward of a step's first micro-batch.
   * Without dloss (evaluation) nothing but the loss is computed.
   */
  forward(s: StepBuffers, dloss?: number): number {
    const train = dloss !== undefined;
    s.backwardReady = false;
    this.trunk(s, train);
    const c = this.config;
    const N = s.B * s.T;
    let loss: number;
    if (s.kernels === 'litespark') {
      loss = native.linearCrossEntropy(train ? s.dh.data : null, train ? this.grads.head(c).data : null, s.lse.data, s.hF.data, this.gemmHead(s), s.targets, N, c.hidden_size, c.vocab_size, dloss ?? 0, s.precision === 'bf16');
    } else {
      linearForward(s.logits!.data, s.hF.data, this.params.head(c).data, N, c.hidden_size, c.vocab_size, s.mm);
      loss = native.crossEntropyForward(s.lse.data, s.logits!.data, s.targets, N, c.vocab_size);
    }
    s.backwardReady = train || s.kernels === 'standard'; // only once the whole forward has run
    return loss;
  }

  /** Forward to the logits of every position (s.logits, which the buffers must have). */
  forwardLogits(s: StepBuffers): FloatArray {
    if (!s.logits) throw new Error('forwardLogits: these buffers keep no logits (make them with withLogits)');
    s.backwardReady = false;
    this.trunk(s, false);
    const c = this.config;
    linearForward(s.logits.data, s.hF.data, this.gemmHead(s), s.B * s.T, c.hidden_size, c.vocab_size, s.mm);
    return s.logits.data;
  }

  /** The output head as the fused path's GEMMs read it: the bf16 copy's view where there is one. */
  private gemmHead(s: StepBuffers): Operand {
    return s.kernels === 'litespark' && this.head16 ? this.head16 : this.params.head(this.config).data;
  }

  /** Checks that buffers made for another unit or precision are not used with this model's GEMM weights. */
  private checkBuffers(s: StepBuffers): void {
    if (s.kernels === 'litespark' && s.bf16Operands !== (this.bf16Weights !== null)) {
      throw new Error(`step buffers keep GEMM operands in ${s.bf16Operands ? 'bf16' : 'fp32'} but the model's weights are ${this.bf16Weights ? 'bf16' : 'fp32'}: ` +
        'the bf16 unit changed between making the model and its buffers (make both on the same unit)');
    }
  }

  /**
   * Backward of `dloss * summed loss` after forward(s, dloss). Gradients ACCUMULATE into
   * this.grads; the caller zeroes them once per optimizer step.
   */
  backward(s: StepBuffers, dloss: number): void {
    if (!s.backwardReady) {
      throw new Error('backward: these buffers hold no training forward to differentiate (call forward(s, dloss) first; ' +
        'on the fused path an evaluation forward keeps nothing for backward, and a backward consumes what its forward kept)');
    }
    s.backwardReady = false;
    const c = this.config;
    const N = s.B * s.T;
    const C = c.hidden_size;
    const V = c.vocab_size;
    if (s.kernels === 'standard') {
      const dlogits = s.logits!.data; // in place
      native.crossEntropyBackward(dlogits, s.logits!.data, s.lse.data, s.targets, N, V, dloss);
      linearBackward(s.dh.data, this.grads.head(c).data, dlogits, s.hF.data, this.params.head(c).data, N, C, V, false, s.mm);
    } // the fused path left dL/dhF in s.dh during forward
    const L = c.num_hidden_layers;
    native.fill(s.dres.data, 0, N * C);
    native.rmsnormBackward(s.dres.data, this.grads.get('model.norm.weight').data, s.dh.data, s.resid[L]!.data, this.params.get('model.norm.weight').data, s.rstdF.data, N, C, s.dres16?.data);
    if (s.kernels === 'standard') this.backwardStandard(s);
    else this.backwardFused(s);
    native.embeddingBackward(this.grads.get('model.embed_tokens.weight').data, s.dres.data, s.ids, N, C, V);
  }

  /** Embedding, the L blocks and the final norm: s.hF holds the final hidden states. train: backward follows (keep what it reads). */
  private trunk(s: StepBuffers, train: boolean): void {
    this.checkBuffers(s);
    this.bf16Weights?.sync(); // a no-op unless the fp32 weights changed since AdamW wrote the copy
    const c = this.config;
    const N = s.B * s.T;
    native.embeddingForward(s.resid[0]!.data, s.ids, this.params.get('model.embed_tokens.weight').data, N, c.hidden_size, c.vocab_size);
    if (s.kernels === 'standard') this.trunkStandard(s);
    else this.trunkFused(s, train);
  }

  private trunkStandard(s: StepBuffers): void {
    const c = this.config;
    const N = s.B * s.T;
    const C = c.hidden_size;
    const parts = s.standard!;
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const y = s.resid[l + 1]!.data;
      this.layerStandard(s, l, y);
      native.addInplace(y, parts.layers[l]!.mid.data, N * C);
    }
    native.rmsnormForward(s.hF.data, s.rstdF.data, s.resid[c.num_hidden_layers]!.data, this.params.get('model.norm.weight').data, N, C, c.rms_norm_eps);
  }

  /** Layer l of the standard path from s.resid[l]: its activations, and its MLP branch's output (before the residual add) in y. */
  private layerStandard(s: StepBuffers, l: number, y: FloatArray): void {
    const c = this.config;
    const N = s.B * s.T;
    const C = c.hidden_size;
    const eps = c.rms_norm_eps;
    const w = this.layerW[l]!;
    const a = s.standard!.layers[l]!;
    const x = s.resid[l]!.data;
    native.rmsnormForward(a.h1.data, a.rstd1.data, x, w.inNorm, N, C, eps);
    attentionForward(a.mid.data, a.attn, a.h1.data, w.attn, { cos: s.ropeCos.data, sin: s.ropeSin.data }, s.attnShape);
    native.addInplace(a.mid.data, x, N * C);
    native.rmsnormForward(a.h2.data, a.rstd2.data, a.mid.data, w.postNorm, N, C, eps);
    mlpForward(y, a.mlp, a.h2.data, w.mlp, s.mlpShape);
  }

  // Each residual add is folded into the norm that follows it: the next layer's input norm, or
  // the final norm after the last layer.
  private trunkFused(s: StepBuffers, train: boolean): void {
    const c = this.config;
    const N = s.B * s.T;
    const C = c.hidden_size;
    const eps = c.rms_norm_eps;
    const L = c.num_hidden_layers;
    const rope = { cos: s.ropeCos.data, sin: s.ropeSin.data };
    const parts = s.fused!;
    const finalNorm = this.params.get('model.norm.weight').data;
    const first = parts.layers[0]!;
    native.rmsnormForward(first.h1.data, first.rstd1.data, s.resid[0]!.data, this.layerW[0]!.inNorm, N, C, eps);
    for (let l = 0; l < L; l++) {
      const w = this.layerW[l]!;
      const a = parts.layers[l]!;
      const o = s.dh.data; // scratch for each branch's output, before it is added
      fusedAttentionForward(o, a.attn, parts.attnGrads, a.h1.data, w.fusedAttn, rope, s.attnShape);
      native.addRmsnormForward(a.mid.data, a.h2.data, a.rstd2.data, s.resid[l]!.data, o, w.postNorm, N, C, eps);
      const keep = train && s.recompute === 'none'; // gate/up for backward
      fusedMlpForward(o, keep ? a.mlp.data : null, parts.mlpScratch.act.data, a.h2.data, w.fusedMlp, s.mlpShape);
      const next = l + 1 < L ? parts.layers[l + 1]! : null;
      native.addRmsnormForward(s.resid[l + 1]!.data, next ? next.h1.data : s.hF.data, next ? next.rstd1.data : s.rstdF.data, a.mid.data, o, next ? this.layerW[l + 1]!.inNorm : finalNorm, N, C, eps);
    }
  }

  private backwardStandard(s: StepBuffers): void {
    const c = this.config;
    const N = s.B * s.T;
    const C = c.hidden_size;
    const eps = c.rms_norm_eps;
    const { B, T, H, KVH, D } = s.attnShape;
    const rope = { cos: s.ropeCos.data, sin: s.ropeSin.data };
    const parts = s.standard!;
    for (let l = c.num_hidden_layers - 1; l >= 0; l--) {
      const w = this.layerW[l]!;
      const g = this.layerG[l]!;
      const a = parts.layers[l]!;
      if (s.recompute === 'full') {
        this.layerStandard(s, l, s.dh.data); // the MLP's output is not needed: dh is free scratch here
      } else if (s.recompute === 'selective') {
        native.rmsnormForward(a.h2.data, a.rstd2.data, a.mid.data, w.postNorm, N, C, eps);
        native.swigluForward(a.mlp.act.data, a.mlp.gate.data, a.mlp.up.data, N * c.intermediate_size);
      }
      // resid[l+1] = mid + mlp(norm2(mid)): dres is dL/dresid[l+1]; it becomes dL/dmid.
      mlpBackward(s.dh.data, g.mlp, s.dres.data, a.mlp, parts.mlpGrads, a.h2.data, w.mlp, s.mlpShape);
      native.rmsnormBackward(s.dres.data, g.postNorm, s.dh.data, a.mid.data, w.postNorm, a.rstd2.data, N, C);
      if (s.recompute === 'selective') {
        native.rmsnormForward(a.h1.data, a.rstd1.data, s.resid[l]!.data, w.inNorm, N, C, eps);
        // the probabilities again; the attention output it also writes is kept, so datt takes it
        native.attentionStandardForward(parts.attnGrads.datt.data, a.attn.probs.data, a.attn.q.data, a.attn.k.data, a.attn.v.data, B, T, H, KVH, D);
      }
      // mid = resid[l] + attn(norm1(resid[l])): dres becomes dL/dresid[l].
      attentionBackward(s.dh.data, g.attn, s.dres.data, a.attn, parts.attnGrads, a.h1.data, w.attn, rope, s.attnShape);
      native.rmsnormBackward(s.dres.data, g.inNorm, s.dh.data, s.resid[l]!.data, w.inNorm, a.rstd1.data, N, C);
    }
  }

  private backwardFused(s: StepBuffers): void {
    const c = this.config;
    const N = s.B * s.T;
    const C = c.hidden_size;
    const eps = c.rms_norm_eps;
    const rope = { cos: s.ropeCos.data, sin: s.ropeSin.data };
    const parts = s.fused!;
    const sc = parts.mlpScratch;
    for (let l = c.num_hidden_layers - 1; l >= 0; l--) {
      const w = this.layerW[l]!;
      const g = this.layerG[l]!;
      const a = parts.layers[l]!;
      const x = l > 0 ? s.resid[l]! : this.embedAgain(s); // the layer's input
      if (s.recompute === 'full') {
        // layer l's forward again, up to the MLP's input
        this.inputNormFused(s, l, x);
        fusedAttentionForward(s.dh.data, a.attn, parts.attnGrads, a.h1.data, w.fusedAttn, rope, s.attnShape);
        native.addRmsnormForward(a.mid.data, a.h2.data, a.rstd2.data, x.data, s.dh.data, w.postNorm, N, C, eps);
      } else if (s.recompute === 'selective') {
        this.renormFused(s, a.h2, a.rstd2, a.mid, w.postNorm);
      }
      if (s.recompute !== 'none') fusedMlpRecompute(a.mlp.data, a.h2.data, w.fusedMlp, s.mlpShape); // gate/up again
      // the branches' output gradient dres as their GEMMs read it: its bf16 copy where there is one
      const dout = s.dres16?.data ?? s.dres.data;
      fusedMlpBackward(s.dh.data, g.fusedMlp, dout, a.mlp.data, sc, a.h2.data, w.fusedMlp, s.mlpShape);
      native.rmsnormBackward(s.dres.data, g.postNorm, s.dh.data, a.mid.data, w.postNorm, a.rstd2.data, N, C, s.dres16?.data);
      if (s.recompute !== 'none') this.inputNormFused(s, l, x); // h1 shares its buffer with h2
      fusedAttentionBackward(s.dh.data, g.fusedAttn, dout, a.attn, parts.attnGrads, a.h1.data, w.fusedAttn, rope, s.attnShape);
      native.rmsnormBackward(s.dres.data, g.inNorm, s.dh.data, x.data, w.inNorm, a.rstd1.data, N, C, s.dres16?.data);
    }
  }

  /**
   * The fused path's resid[0] again, for layer 0's backward: forward kept it in dres, which holds
   * the gradient now. The embedding's gather into resid[1]'s buffer (read last by layer 1's
   * backward, or by the final norm's) is an exact copy, so layer 0 sees forward's input.
   */
  private embedAgain(s: StepBuffers): Tensor {
    const c = this.config;
    const x = s.resid[1]!;
    native.embeddingForward(x.data, s.ids, this.params.get('model.embed_tokens.weight').data, s.B * s.T, c.hidden_size, c.vocab_size);
    return x;
  }

  /** Layer l's h1 and rstd1 from its input x, by the kernel that made them in forward (s.dh is scratch). */
  private inputNormFused(s: StepBuffers, l: number, x: Tensor): void {
    const a = s.fused!.layers[l]!;
    const w = this.layerW[l]!.inNorm;
    if (l > 0) return this.renormFused(s, a.h1, a.rstd1, x, w);
    const c = this.config;
    native.rmsnormForward(a.h1.data, a.rstd1.data, x.data, w, s.B * s.T, c.hidden_size, c.rms_norm_eps);
  }

  /**
   * out, rstd = rmsnorm(x) bit for bit as forward's add + norm made them from the two addends
   * whose sum x is: the same kernel on x + 0 (= x exactly) repeats every sum of squares and
   * product. s.dh is the zero addend, then receives the (discarded) sum; it must be free.
   */
  private renormFused(s: StepBuffers, out: AnyTensor, rstd: Tensor, x: Tensor, w: FloatArray): void {
    const c = this.config;
    const N = s.B * s.T;
    const C = c.hidden_size;
    native.fill(s.dh.data, 0, N * C);
    native.addRmsnormForward(s.dh.data, out.data, rstd.data, x.data, s.dh.data, w, N, C, c.rms_norm_eps);
  }
}
