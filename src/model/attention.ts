// The attention sub-layer of a Llama block: q/k/v projections, rotary embeddings on q and k,
// grouped-query causal attention, output projection. Standard kernels: separate GEMMs, the
// (T, T) probabilities materialized and saved for backward.
import { native, type FloatArray } from '../kernels/native.js';
import { Tensor, type DType } from '../kernels/tensor.js';
import { linearBackward, linearForward } from './linear.js';

export interface AttentionShape {
  B: number;
  T: number;
  C: number;
  H: number;
  KVH: number;
  D: number;
}

export interface AttentionWeights {
  q: FloatArray; // (H*D, C)
  k: FloatArray; // (KVH*D, C)
  v: FloatArray; // (KVH*D, C)
  o: FloatArray; // (C, H*D)
}

/** What one layer's attention saves for backward. */
export class AttentionActs {
  readonly q: Tensor; // (B, T, H, D), after RoPE
  readonly k: Tensor; // (B, T, KVH, D), after RoPE
  readonly v: Tensor; // (B, T, KVH, D)
  readonly probs: Tensor; // (B, H, T, T)
  readonly att: Tensor; // (B, T, H*D), attention output before o_proj

  constructor(dtype: DType, s: AttentionShape) {
    const N = s.B * s.T;
    this.q = Tensor.empty(dtype, [N, s.H * s.D]);
    this.k = Tensor.empty(dtype, [N, s.KVH * s.D]);
    this.v = Tensor.empty(dtype, [N, s.KVH * s.D]);
    this.probs = Tensor.empty(dtype, [s.B, s.H, s.T, s.T]);
    this.att = Tensor.empty(dtype, [N, s.H * s.D]);
  }
}

/** Gradient scratch shared by all layers (only one layer runs backward at a time). */
export class AttentionGrads {
  readonly datt: Tensor; // (N, H*D)
  readonly dq: Tensor;
  readonly dk: Tensor;
  readonly dv: Tensor;

  constructor(dtype: DType, s: AttentionShape) {
    const N = s.B * s.T;
    this.datt = Tensor.empty(dtype, [N, s.H * s.D]);
    this.dq = Tensor.empty(dtype, [N, s.H * s.D]);
    this.dk = Tensor.empty(dtype, [N, s.KVH * s.D]);
    this.dv = Tensor.empty(dtype, [N, s.KVH * s.D]);
  }
}

export interface Rope {
  cos: FloatArray; // (T, D/2)
  sin: FloatArray;
}

// out: (N, C) = o_proj(attention(rope(q_proj(h)), rope(k_proj(h)), v_proj(h)))
export function attentionForward(out: FloatArray, a: AttentionActs, h: FloatArray, w: AttentionWeights, rope: Rope, s: AttentionShape): void {
  const N = s.B * s.T;
  linearForward(a.q.data, h, w.q, N, s.C, s.H * s.D);
  linearForward(a.k.data, h, w.k, N, s.C, s.KVH * s.D);
  linearForward(a.v.data, h, w.v, N, s.C, s.KVH * s.D);
  native.ropeApply(a.q.data, rope.cos, rope.sin, s.B, s.T, s.H, s.D, false);
  native.ropeApply(a.k.data, rope.cos, rope.sin, s.B, s.T, s.KVH, s.D, false);
  native.attentionStandardForward(a.att.data, a.probs.data, a.q.data, a.k.data, a.v.data, s.B, s.T, s.H, s.KVH, s.D);
  linearForward(out, a.att.data, w.o, N, s.H * s.D, s.C);
}

// dh: (N, C) = dL/dh (overwritten); weight gradients accumulate into dw.
export function attentionBackward(
  dh: FloatArray,
  dw: AttentionWeights,
  dout: FloatArray,
  a: AttentionActs,
  g: AttentionGrads,
  h: FloatArray,
  w: AttentionWeights,
  rope: Rope,
  s: AttentionShape,
): void {
  const N = s.B * s.T;
  linearBackward(g.datt.data, dw.o, dout, a.att.data, w.o, N, s.H * s.D, s.C);
  native.attentionStandardBackward(g.dq.data, g.dk.data, g.dv.data, g.datt.data, a.q.data, a.k.data, a.v.data, a.probs.data, s.B, s.T, s.H, s.KVH, s.D);
  native.ropeApply(g.dq.data, rope.cos, rope.sin, s.B, s.T, s.H, s.D, true);
  native.ropeApply(g.dk.data, rope.cos, rope.sin, s.B, s.T, s.KVH, s.D, true);
  linearBackward(dh, dw.q, g.dq.data, h, w.q, N, s.C, s.H * s.D);
  linearBackward(dh, dw.k, g.dk.data, h, w.k, N, s.C, s.KVH * s.D, true);
  linearBackward(dh, dw.v, g.dv.data, h, w.v, N, s.C, s.KVH * s.D, true);
}
