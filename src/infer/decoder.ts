// Inference with a KV cache for a LlamaModel (either kernel path).
//
//   prefill(ids)  one forward of the model over the prompt (its own forward: the same kernels
//                 as training), whose per-layer keys (after RoPE) and values fill the cache;
//                 returns the logits of the last prompt position.
//   step(id)      one new token at position p = cache length, layer by layer:
//                   h = rmsnorm(x);  qkv = W_qkv h (one GEMV over the packed q/k/v rows)
//                   q, k at position p by RoPE (rotate_half); k, v appended to the cache
//                   att = attention of the H query heads over the p + 1 cached positions (GQA)
//                   x += W_o att;  h = rmsnorm(x);  x += W_down swiglu(W_gu h)
//                 then the final norm and the head: logits of the new position only.
// Every buffer (cache at the maximum length, scratch, logits) is allocated by the constructor;
// a step allocates nothing. The prefill's forward buffers are made for the prompt's length
// (kept while the next prompt has the same length).
//
// Context limit: positions run 0 .. maxLen-1 (max_position_embeddings: RoPE and the model were
// made for those). A prompt longer than that is refused (ContextLengthError, naming both); a
// step at a full cache too: generate() stops there and says so.
import { native, type FloatArray } from '../kernels/native.js';
import { Tensor } from '../kernels/tensor.js';
import type { LlamaModel, StepBuffers } from '../model/llama.js';
import { headDim } from '../model/params.js';
import { KvCache } from './kv_cache.js';

/** A context that does not fit the model's positions. */
export class ContextLengthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContextLengthError';
  }
}

/** One layer's weights as the decode step reads them (views into the model's parameters). */
interface DecodeWeights {
  inNorm: FloatArray; // (C)
  postNorm: FloatArray; // (C)
  qkv: FloatArray; // ((H + 2 KVH) D, C): q_proj, k_proj, v_proj back to back
  o: FloatArray; // (C, H D)
  gu: FloatArray; // (2F, C): gate_proj then up_proj
  down: FloatArray; // (C, F)
}

export class KvDecoder {
  readonly cache: KvCache;
  /** Logits of the last position prefilled or stepped: (V). */
  readonly logits: FloatArray;
  private readonly layers: DecodeWeights[];
  private readonly embed: FloatArray;
  private readonly finalNorm: FloatArray;
  private readonly head: FloatArray;
  private readonly ropeCos: FloatArray; // (maxLen, D/2)
  private readonly ropeSin: FloatArray;
  // scratch of one position
  private readonly ids1 = new Int32Array(1);
  private readonly x: FloatArray; // (C) residual stream
  private readonly h: FloatArray; // (C) norm output
  private readonly rstd: FloatArray; // (1)
  private readonly qkv: FloatArray; // ((H + 2 KVH) D)
  private readonly q: FloatArray; // (H, D) after RoPE
  private readonly att: FloatArray; // (H D) attention output
  private readonly gu: FloatArray; // (2F)
  private readonly act: FloatArray; // (F)
  private pre: StepBuffers | null = null;

  /** maxLen: the longest context (max_position_embeddings of the model's config). */
  constructor(readonly model: LlamaModel, readonly maxLen: number) {
    if (!(Number.isInteger(maxLen) && maxLen >= 1)) throw new RangeError(`KvDecoder: maxLen must be an integer >= 1, got ${maxLen}`);
    const c = model.config;
    const dt = model.dtype;
    const C = c.hidden_size, H = c.num_attention_heads, KVH = c.num_key_value_heads, D = headDim(c), F = c.intermediate_size;
    const p = model.params;
    const g = (n: string) => p.get(n).data;
    this.layers = Array.from({ length: c.num_hidden_layers }, (_, l) => {
      const name = (n: string) => `model.layers.${l}.${n}`;
      return {
        inNorm: g(name('input_layernorm.weight')),
        postNorm: g(name('post_attention_layernorm.weight')),
        qkv: p.packed(name('self_attn.q_proj.weight'), (H + 2 * KVH) * D, C).data,
        o: g(name('self_attn.o_proj.weight')),
        gu: p.packed(name('mlp.gate_proj.weight'), 2 * F, C).data,
        down: g(name('mlp.down_proj.weight')),
      };
    });
    this.embed = g('model.embed_tokens.weight');
    this.finalNorm = g('model.norm.weight');
    this.head = p.head(c).data;
    this.cache = new KvCache(dt, c.num_hidden_layers, maxLen, KVH, D);
    const v = (n: number) => Tensor.empty(dt, [n]).data;
    this.ropeCos = v(maxLen * (D / 2));
    this.ropeSin = v(maxLen * (D / 2));
    native.ropeTable(this.ropeCos, this.ropeSin, maxLen, D, c.rope_theta);
    this.x = v(C);
    this.h = v(C);
    this.rstd = v(1);
    this.qkv = v((H + 2 * KVH) * D);
    this.q = v(H * D);
    this.att = v(H * D);
    this.gu = v(2 * F);
    this.act = v(F);
    this.logits = v(c.vocab_size);
  }

  /** Positions in the cache. */
  get length(): number {
    return this.cache.length;
  }

  /** Bytes this decoder allocated (cache, rotary tables, scratch, logits), the prefill buffers excluded. */
  get bytes(): number {
    const s = [this.ropeCos, this.ropeSin, this.x, this.h, this.rstd, this.qkv, this.q, this.att, this.gu, this.act, this.logits];
    return this.cache.bytes + s.reduce((a, b) => a + b.byteLength, 0);
  }

  /**
   * Empties the cache and runs the model's forward over `ids` (1 .. maxLen tokens), keeping each
   * layer's keys and values. Returns this.logits: the last position's logits. The logits of every
   * prompt position stay in prefillLogits() until the next prefill.
   */
  prefill(ids: ArrayLike<number>): FloatArray {
    const T = ids.length;
    if (T < 1) throw new RangeError('KvDecoder.prefill: the prompt has no tokens');
    this.checkFits(T);
    const m = this.model;
    const V = m.config.vocab_size;
    if (this.pre?.T !== T) this.pre = null; // let the old buffers go before making new ones
    const s = (this.pre ??= m.buffers(1, T, true));
    for (let t = 0; t < T; t++) s.ids[t] = ids[t]!;
    s.targets.fill(-1);
    const all = m.forwardLogits(s);
    const layers = s.standard?.layers ?? s.fused!.layers;
    layers.forEach((a, l) => {
      this.cache.k[l]!.data.set(a.attn.k.data);
      this.cache.v[l]!.data.set(a.attn.v.data);
    });
    this.cache.length = T;
    this.logits.set(all.subarray((T - 1) * V, T * V));
    return this.logits;
  }

  /** (T, V) logits of every position of the last prefill. */
  prefillLogits(): FloatArray {
    if (!this.pre) throw new Error('KvDecoder.prefillLogits: no prefill yet');
    return this.pre.logits!.data;
  }

  /** Appends token `id` at position this.length; returns this.logits: the logits after it. */
  step(id: number): FloatArray {
    const c = this.model.config;
    const pos = this.cache.length;
    this.checkFits(pos + 1);
    if (!(Number.isInteger(id) && id >= 0 && id < c.vocab_size)) throw new RangeError(`KvDecoder.step: token id ${id} is outside [0, ${c.vocab_size})`);
    const C = c.hidden_size, H = c.num_attention_heads, KVH = c.num_key_value_heads, D = headDim(c), F = c.intermediate_size;
    const eps = c.rms_norm_eps;
    const { x, h, rstd, qkv, q, att, gu, act } = this;
    this.ids1[0] = id;
    native.embeddingForward(x, this.ids1, this.embed, 1, C, c.vocab_size);
    for (let l = 0; l < this.layers.length; l++) {
      const w = this.layers[l]!;
      const kc = this.cache.k[l]!.data, vc = this.cache.v[l]!.data;
      native.rmsnormForward(h, rstd, x, w.inNorm, 1, C, eps);
      this.proj(qkv, w.qkv, h, (H + 2 * KVH) * D, C, 0);
      native.ropeQkvDecode(q, kc, vc, qkv, this.ropeCos, this.ropeSin, pos, H, KVH, D);
      native.attentionDecode(att, q, kc, vc, pos + 1, H, KVH, D);
      this.proj(x, w.o, att, C, H * D, 1); // x += o_proj(att)
      native.rmsnormForward(h, rstd, x, w.postNorm, 1, C, eps);
      this.proj(gu, w.gu, h, 2 * F, C, 0);
      native.swigluPackedForward(act, gu, 1, F);
      this.proj(x, w.down, act, C, F, 1); // x += down_proj(act)
    }
    native.rmsnormForward(h, rstd, x, this.finalNorm, 1, C, eps);
    this.proj(this.logits, this.head, h, c.vocab_size, C, 0);
    this.cache.length = pos + 1;
    return this.logits;
  }

  private checkFits(T: number): void {
    if (T > this.maxLen) {
      throw new ContextLengthError(
        `context of ${T} tokens is longer than the model's ${this.maxLen} positions (max_position_embeddings)`,
      );
    }
  }

  // y (N) = W (N, K) x (K) + beta y, by the model's precision: fp32 (and the f64 reference) a GEMV
  // (measured: see bench/generate.ts); bf16 the bf16 unit's GEMM at M = 1, as the model's forward.
  private proj(y: FloatArray, W: FloatArray, xin: FloatArray, N: number, K: number, beta: number): void {
    if (this.model.precision === 'bf16') native.gemmBf16(false, true, 1, N, K, 1, xin, K, W, K, beta, y, N);
    else native.gemv(y, W, xin, N, K, beta);
  }
}
