// The Llama model: token embedding, L blocks of (RMSNorm -> GQA attention with RoPE -> residual,
// RMSNorm -> SwiGLU MLP -> residual), final RMSNorm, output head (tied or untied), and the
// cross-entropy loss. Explicit forward / backward with saved activations; every buffer of a
// step is allocated once per (batch, sequence) shape, so a step allocates nothing.
import { native, type FloatArray } from '../kernels/native.js';
import { Tensor, type DType } from '../kernels/tensor.js';
import { AttentionActs, AttentionGrads, attentionBackward, attentionForward, type AttentionShape, type AttentionWeights } from './attention.js';
import { linearBackward, linearForward } from './linear.js';
import { MlpActs, MlpGrads, mlpBackward, mlpForward, type MlpShape, type MlpWeights } from './mlp.js';
import { ParamStore, headDim, type LlamaConfig } from './params.js';

interface LayerWeights {
  inNorm: FloatArray;
  postNorm: FloatArray;
  attn: AttentionWeights;
  mlp: MlpWeights;
}

function layerWeights(p: ParamStore, l: number): LayerWeights {
  const g = (n: string) => p.get(`model.layers.${l}.${n}`).data;
  return {
    inNorm: g('input_layernorm.weight'),
    postNorm: g('post_attention_layernorm.weight'),
    attn: { q: g('self_attn.q_proj.weight'), k: g('self_attn.k_proj.weight'), v: g('self_attn.v_proj.weight'), o: g('self_attn.o_proj.weight') },
    mlp: { gate: g('mlp.gate_proj.weight'), up: g('mlp.up_proj.weight'), down: g('mlp.down_proj.weight') },
  };
}

/** What layer l saves for backward. */
class LayerActs {
  readonly rstd1: Tensor; // (N)
  readonly h1: Tensor; // (N, C) input_layernorm output
  readonly attn: AttentionActs;
  readonly mid: Tensor; // (N, C) residual stream after attention
  readonly rstd2: Tensor; // (N)
  readonly h2: Tensor; // (N, C) post_attention_layernorm output
  readonly mlp: MlpActs;

  constructor(dtype: DType, a: AttentionShape, m: MlpShape) {
    const N = a.B * a.T;
    this.rstd1 = Tensor.empty(dtype, [N]);
    this.h1 = Tensor.empty(dtype, [N, a.C]);
    this.attn = new AttentionActs(dtype, a);
    this.mid = Tensor.empty(dtype, [N, a.C]);
    this.rstd2 = Tensor.empty(dtype, [N]);
    this.h2 = Tensor.empty(dtype, [N, a.C]);
    this.mlp = new MlpActs(dtype, m);
  }
}

/**
 * Every buffer of one training step at a fixed (B, T): saved activations, gradient scratch,
 * rotary tables and the token buffers. Made once, reused by every step.
 */
export class StepBuffers {
  readonly B: number;
  readonly T: number;
  readonly ids: Int32Array; // (B, T) inputs
  readonly targets: Int32Array; // (B, T), -1 = ignored
  readonly ropeCos: Tensor; // (T, D/2)
  readonly ropeSin: Tensor;
  readonly resid: Tensor[]; // L+1 x (N, C): residual stream entering each layer, and the last
  readonly layers: LayerActs[];
  readonly rstdF: Tensor; // (N)
  readonly hF: Tensor; // (N, C)
  readonly logits: Tensor; // (N, V); turned into dlogits by backward
  readonly lse: Tensor; // (N)
  // gradient scratch
  readonly dres: Tensor; // (N, C)
  readonly dh: Tensor; // (N, C)
  readonly dattGrads: AttentionGrads;
  readonly mlpGrads: MlpGrads;
  readonly attnShape: AttentionShape;
  readonly mlpShape: MlpShape;

  constructor(readonly config: LlamaConfig, readonly dtype: DType, B: number, T: number) {
    const c = config;
    const C = c.hidden_size;
    const D = headDim(c);
    const N = B * T;
    this.B = B;
    this.T = T;
    this.attnShape = { B, T, C, H: c.num_attention_heads, KVH: c.num_key_value_heads, D };
    this.mlpShape = { N, C, F: c.intermediate_size };
    this.ids = new Int32Array(N);
    this.targets = new Int32Array(N);
    this.ropeCos = Tensor.empty(dtype, [T, D / 2]);
    this.ropeSin = Tensor.empty(dtype, [T, D / 2]);
    native.ropeTable(this.ropeCos.data, this.ropeSin.data, T, D, c.rope_theta);
    this.resid = Array.from({ length: c.num_hidden_layers + 1 }, () => Tensor.empty(dtype, [N, C]));
    this.layers = Array.from({ length: c.num_hidden_layers }, () => new LayerActs(dtype, this.attnShape, this.mlpShape));
    this.rstdF = Tensor.empty(dtype, [N]);
    this.hF = Tensor.empty(dtype, [N, C]);
    this.logits = Tensor.empty(dtype, [N, c.vocab_size]);
    this.lse = Tensor.empty(dtype, [N]);
    this.dres = Tensor.empty(dtype, [N, C]);
    this.dh = Tensor.empty(dtype, [N, C]);
    this.dattGrads = new AttentionGrads(dtype, this.attnShape);
    this.mlpGrads = new MlpGrads(dtype, this.mlpShape);
  }

  /** Bytes of saved activations (what scales with batch, sequence and depth). */
  activationBytes(): number {
    let b = this.resid.reduce((a, t) => a + t.bytes, 0) + this.rstdF.bytes + this.hF.bytes + this.logits.bytes + this.lse.bytes;
    for (const l of this.layers) {
      b += l.rstd1.bytes + l.h1.bytes + l.mid.bytes + l.rstd2.bytes + l.h2.bytes;
      b += l.attn.q.bytes + l.attn.k.bytes + l.attn.v.bytes + l.attn.probs.bytes + l.attn.att.bytes;
      b += l.mlp.gate.bytes + l.mlp.up.bytes + l.mlp.act.bytes;
    }
    return b;
  }

  /** Bytes of gradient scratch and rotary tables. */
  workspaceBytes(): number {
    const g = this.dattGrads;
    const m = this.mlpGrads;
    return [this.dres, this.dh, g.datt, g.dq, g.dk, g.dv, m.dact, m.dgate, m.dup, this.ropeCos, this.ropeSin].reduce((a, t) => a + t.bytes, 0);
  }
}

export class LlamaModel {
  readonly params: ParamStore;
  readonly grads: ParamStore;
  private readonly layerW: LayerWeights[];
  private readonly layerG: LayerWeights[];

  constructor(readonly config: LlamaConfig, readonly dtype: DType = 'f32') {
    this.params = new ParamStore(config, dtype);
    this.grads = new ParamStore(config, dtype);
    this.layerW = Array.from({ length: config.num_hidden_layers }, (_, l) => layerWeights(this.params, l));
    this.layerG = Array.from({ length: config.num_hidden_layers }, (_, l) => layerWeights(this.grads, l));
  }

  buffers(B: number, T: number): StepBuffers {
    return new StepBuffers(this.config, this.dtype, B, T);
  }

  /**
   * Forward over s.ids. With targets, returns the summed cross-entropy over targets >= 0 and
   * keeps what backward needs; without, leaves the logits in s.logits and returns 0.
   */
  forward(s: StepBuffers, withLoss = true): number {
    const c = this.config;
    const { B, T } = s;
    const N = B * T;
    const C = c.hidden_size;
    const V = c.vocab_size;
    const rope = { cos: s.ropeCos.data, sin: s.ropeSin.data };
    native.embeddingForward(s.resid[0]!.data, s.ids, this.params.get('model.embed_tokens.weight').data, N, C, V);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const w = this.layerW[l]!;
      const a = s.layers[l]!;
      const x = s.resid[l]!.data;
      native.rmsnormForward(a.h1.data, a.rstd1.data, x, w.inNorm, N, C, c.rms_norm_eps);
      attentionForward(a.mid.data, a.attn, a.h1.data, w.attn, rope, s.attnShape);
      native.addInplace(a.mid.data, x, N * C);
      native.rmsnormForward(a.h2.data, a.rstd2.data, a.mid.data, w.postNorm, N, C, c.rms_norm_eps);
      const y = s.resid[l + 1]!.data;
      mlpForward(y, a.mlp, a.h2.data, w.mlp, s.mlpShape);
      native.addInplace(y, a.mid.data, N * C);
    }
    native.rmsnormForward(s.hF.data, s.rstdF.data, s.resid[c.num_hidden_layers]!.data, this.params.get('model.norm.weight').data, N, C, c.rms_norm_eps);
    linearForward(s.logits.data, s.hF.data, this.params.head(c).data, N, C, V);
    if (!withLoss) return 0;
    return native.crossEntropyForward(s.lse.data, s.logits.data, s.targets, N, V);
  }

  /**
   * Backward of the loss `dloss * sum(token losses)` (dloss = 1 / tokens in the global batch,
   * so micro-batches and accumulation steps weigh tokens equally). Gradients ACCUMULATE into
   * this.grads; the caller zeroes them once per optimizer step. Must follow forward(s).
   */
  backward(s: StepBuffers, dloss: number): void {
    const c = this.config;
    const { B, T } = s;
    const N = B * T;
    const C = c.hidden_size;
    const V = c.vocab_size;
    const L = c.num_hidden_layers;
    const rope = { cos: s.ropeCos.data, sin: s.ropeSin.data };
    const dlogits = s.logits.data; // in place
    native.crossEntropyBackward(dlogits, s.logits.data, s.lse.data, s.targets, N, V, dloss);
    linearBackward(s.dh.data, this.grads.head(c).data, dlogits, s.hF.data, this.params.head(c).data, N, C, V);
    native.fill(s.dres.data, 0, N * C);
    native.rmsnormBackward(s.dres.data, this.grads.get('model.norm.weight').data, s.dh.data, s.resid[L]!.data, this.params.get('model.norm.weight').data, s.rstdF.data, N, C);
    for (let l = L - 1; l >= 0; l--) {
      const w = this.layerW[l]!;
      const g = this.layerG[l]!;
      const a = s.layers[l]!;
      // resid[l+1] = mid + mlp(norm2(mid)): dres is dL/dresid[l+1]; it becomes dL/dmid.
      mlpBackward(s.dh.data, g.mlp, s.dres.data, a.mlp, s.mlpGrads, a.h2.data, w.mlp, s.mlpShape);
      native.rmsnormBackward(s.dres.data, g.postNorm, s.dh.data, a.mid.data, w.postNorm, a.rstd2.data, N, C);
      // mid = resid[l] + attn(norm1(resid[l])): dres becomes dL/dresid[l].
      attentionBackward(s.dh.data, g.attn, s.dres.data, a.attn, s.dattGrads, a.h1.data, w.attn, rope, s.attnShape);
      native.rmsnormBackward(s.dres.data, g.inNorm, s.dh.data, s.resid[l]!.data, w.inNorm, a.rstd1.data, N, C);
    }
    native.embeddingBackward(this.grads.get('model.embed_tokens.weight').data, s.dres.data, s.ids, N, C, V);
  }
}
