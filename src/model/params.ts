// The parameters of a Llama model: names, shapes and initialisation, with names identical to
// Hugging Face `LlamaForCausalLM` (model.layers.0.self_attn.q_proj.weight, ...).
import { native } from '../kernels/native.js';
import { Bf16Tensor, FlatBuffer, type DType, type Tensor } from '../kernels/tensor.js';

/** The architecture fields the model needs, named as in Hugging Face `LlamaConfig`. */
export interface LlamaConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  initializer_range: number;
}

export interface ParamSpec {
  name: string;
  shape: [number] | [number, number];
  /** AdamW weight decay applies to matrices, not to norm gains. */
  decay: boolean;
  /** 'normal' draws N(0, std^2); 'ones' is the RMSNorm gain. */
  init: 'normal' | 'ones';
  std: number;
  /** Stored right before the next spec with no padding: q/k/v and gate/up form one matrix. */
  packNext?: boolean;
}

export function headDim(c: LlamaConfig): number {
  return c.hidden_size / c.num_attention_heads;
}

/**
 * Every parameter in storage order: decayed matrices first, then the norm gains, so AdamW runs
 * as two calls over two contiguous ranges. Residual-branch outputs (o_proj, down_proj) start
 * with std / sqrt(2 L) so the residual stream's variance does not grow with depth (GPT-2).
 */
export function llamaParamSpecs(c: LlamaConfig): ParamSpec[] {
  const C = c.hidden_size;
  const D = headDim(c);
  const F = c.intermediate_size;
  const std = c.initializer_range;
  const resid = std / Math.sqrt(2 * c.num_hidden_layers);
  const mats: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocab_size, C], decay: true, init: 'normal', std }];
  const norms: ParamSpec[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const m = (name: string, rows: number, cols: number, s = std): ParamSpec => ({
      name: `${p}.${name}`,
      shape: [rows, cols],
      decay: true,
      init: 'normal',
      std: s,
    });
    // q, k, v stored back to back form the fused path's (H + 2 KVH) D x C QKV matrix; gate and
    // up form its 2F x C gate/up matrix. Checkpoints still see the separate HF tensors.
    mats.push(
      { ...m('self_attn.q_proj.weight', c.num_attention_heads * D, C), packNext: true },
      { ...m('self_attn.k_proj.weight', c.num_key_value_heads * D, C), packNext: true },
      m('self_attn.v_proj.weight', c.num_key_value_heads * D, C),
      m('self_attn.o_proj.weight', C, c.num_attention_heads * D, resid),
      { ...m('mlp.gate_proj.weight', F, C), packNext: true },
      m('mlp.up_proj.weight', F, C),
      m('mlp.down_proj.weight', C, F, resid),
    );
    norms.push(
      { name: `${p}.input_layernorm.weight`, shape: [C], decay: false, init: 'ones', std: 0 },
      { name: `${p}.post_attention_layernorm.weight`, shape: [C], decay: false, init: 'ones', std: 0 },
    );
  }
  if (!c.tie_word_embeddings) mats.push({ name: 'lm_head.weight', shape: [c.vocab_size, C], decay: true, init: 'normal', std });
  norms.push({ name: 'model.norm.weight', shape: [C], decay: false, init: 'ones', std: 0 });
  return [...mats, ...norms];
}

/** Parameters (or their gradients, or an optimizer moment) of one model in one flat buffer. */
export class ParamStore extends FlatBuffer {
  readonly specs: ParamSpec[];
  /** Elements [0, decayEnd) hold the decayed matrices, [decayEnd, total) the norm gains. */
  readonly decayEnd: number;
  /**
   * Bumped by every write through this class (init, zero, touch) and by AdamW: a copy made from
   * these values (Bf16Weights) knows whether it is current. Code writing `flat.data` directly
   * calls touch() afterwards.
   */
  version = 0;

  constructor(config: LlamaConfig, dtype: DType) {
    const specs = llamaParamSpecs(config);
    super(dtype, specs);
    this.specs = specs;
    const firstNorm = specs.find((s) => !s.decay)!;
    this.decayEnd = this.offsets.get(firstNorm.name)!;
  }

  /** The embedding table doubles as the output head when the embeddings are tied. */
  head(config: LlamaConfig): Tensor {
    return this.get(config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
  }

  /** Seeded initialisation: tensor i draws from seed-derived stream i, independent of threads. */
  init(seed: number): void {
    this.touch();
    this.specs.forEach((s, i) => {
      const t = this.get(s.name);
      if (s.init === 'ones') native.fill(t.data, 1, t.numel);
      else native.randn(t.data, t.numel, (seed * 65537 + i) % 2 ** 52, 0, s.std);
    });
  }

  /** `rows` x `cols` matrix starting at tensor `first` and running through the packed ones after it. */
  packed(first: string, rows: number, cols: number): Tensor {
    return this.flat.view(this.offsets.get(first)!, [rows, cols]);
  }

  zero(): void {
    this.touch();
    native.fill(this.flat.data, 0, this.flat.numel);
  }

  /** Records that the values changed (see version). */
  touch(): void {
    this.version += 1;
  }

  /** Number of parameters (without the alignment padding of the flat buffer). */
  count(): number {
    return this.specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  }
}

/**
 * The bf16 working copy of an fp32 ParamStore's matrix weights, for bf16 training on a matrix
 * unit: the GEMMs of the fused path read their weights from it (as bf16, with no conversion
 * while packing), made once per step by AdamW in its own pass (AdamW.update) or, when the fp32
 * values changed any other way (init, a loaded checkpoint), by one cast at the next forward
 * (sync). It covers elements [lo, hi) of the store, 2 bytes each: the decayed matrices (the
 * norm gains are no GEMM operand) without the embedding table unless it is also the head (tied).
 */
export class Bf16Weights {
  readonly flat: Bf16Tensor;
  readonly lo: number;
  readonly hi: number;
  /** The ParamStore version these bits were made from (-1: never made). */
  version = -1;

  constructor(readonly params: ParamStore) {
    if (params.dtype !== 'f32') throw new Error('Bf16Weights: the master weights must be fp32');
    const tied = !params.specs.some((s) => s.name === 'lm_head.weight');
    // the embedding is the first spec; untied, the copy starts at the tensor after it
    this.lo = tied ? 0 : params.offsets.get(params.specs[1]!.name)!;
    this.hi = params.decayEnd;
    this.flat = Bf16Tensor.empty([this.hi - this.lo]);
  }

  /** Brings the copy up to date with the fp32 values (one cast pass, only when they changed). */
  sync(): void {
    if (this.version === this.params.version) return;
    native.castToBf16(this.flat.data, this.params.flat.data.subarray(this.lo, this.hi), this.hi - this.lo);
    this.version = this.params.version;
  }

  /** The bf16 view of tensor `name`, or of `rows` x `cols` elements from it (packed matrices). */
  view(name: string, rows?: number, cols?: number): Uint16Array {
    const at = this.params.offsets.get(name);
    if (at === undefined) throw new Error(`no tensor named '${name}'`);
    const n = rows !== undefined && cols !== undefined ? rows * cols : this.params.get(name).numel;
    if (at < this.lo || at + n > this.hi) throw new Error(`the bf16 weight copy does not hold '${name}'`);
    return this.flat.data.subarray(at - this.lo, at - this.lo + n);
  }

  get bytes(): number {
    return this.flat.bytes;
  }
}
