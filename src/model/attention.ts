// The attention sub-layer of a Llama block: q/k/v projections, rotary embeddings on q and k,
// grouped-query causal attention, output projection. Standard kernels: separate GEMMs, the
// (T, T) probabilities materialized and saved for backward.
import { native, type FloatArray } from '../kernels/native.js';
import { Bf16Tensor, Tensor, type AnyTensor, type DType } from '../kernels/tensor.js';
import { linearBackward, linearForward, onMatrixUnit, type Matmul, type Operand } from './linear.js';

export interface AttentionShape {
  B: number;
  T: number;
  C: number;
  H: number;
  KVH: number;
  D: number;
  /** The GEMM of the projections (default native.gemm: fp32). */
  mm?: Matmul;
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

// q: (N, H*D), k, v: (N, KVH*D) = rope(q_proj(h)), rope(k_proj(h)), v_proj(h): three GEMMs, then RoPE in place.
export function qkvForward(q: FloatArray, k: FloatArray, v: FloatArray, h: FloatArray, w: AttentionWeights, rope: Rope, s: AttentionShape): void {
  const N = s.B * s.T;
  linearForward(q, h, w.q, N, s.C, s.H * s.D, s.mm);
  linearForward(k, h, w.k, N, s.C, s.KVH * s.D, s.mm);
  linearForward(v, h, w.v, N, s.C, s.KVH * s.D, s.mm);
  native.ropeApply(q, rope.cos, rope.sin, s.B, s.T, s.H, s.D, false);
  native.ropeApply(k, rope.cos, rope.sin, s.B, s.T, s.KVH, s.D, false);
}

// out: (N, C) = o_proj(attention(rope(q_proj(h)), rope(k_proj(h)), v_proj(h)))
export function attentionForward(out: FloatArray, a: AttentionActs, h: FloatArray, w: AttentionWeights, rope: Rope, s: AttentionShape): void {
  const N = s.B * s.T;
  qkvForward(a.q.data, a.k.data, a.v.data, h, w, rope, s);
  native.attentionStandardForward(a.att.data, a.probs.data, a.q.data, a.k.data, a.v.data, s.B, s.T, s.H, s.KVH, s.D);
  linearForward(out, a.att.data, w.o, N, s.H * s.D, s.C, s.mm);
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
  linearBackward(g.datt.data, dw.o, dout, a.att.data, w.o, N, s.H * s.D, s.C, false, s.mm);
  native.attentionStandardBackward(g.dq.data, g.dk.data, g.dv.data, g.datt.data, a.q.data, a.k.data, a.v.data, a.probs.data, s.B, s.T, s.H, s.KVH, s.D);
  native.ropeApply(g.dq.data, rope.cos, rope.sin, s.B, s.T, s.H, s.D, true);
  native.ropeApply(g.dk.data, rope.cos, rope.sin, s.B, s.T, s.KVH, s.D, true);
  linearBackward(dh, dw.q, g.dq.data, h, w.q, N, s.C, s.H * s.D, false, s.mm);
  linearBackward(dh, dw.k, g.dk.data, h, w.k, N, s.C, s.KVH * s.D, true, s.mm);
  linearBackward(dh, dw.v, g.dv.data, h, w.v, N, s.C, s.KVH * s.D, true, s.mm);
}

// ---- the fused (litespark) path ----------------------------------------------------------
// One GEMM for q, k and v over their packed (H + 2 KVH) D x C weights with RoPE and the split
// into heads in its epilogue (fp32 GEMM: native.gemmQkvRope; on a bf16 matrix unit the GEMM
// writes the packed rows and ropeQkvSplit rotates and splits them), flash attention (only the
// per-row log-sum-exp saved: memory linear in T), the output projection. On a matrix unit with
// the operands kept in bf16 (llama.ts keepsBf16Operands) the weights, h, q, k, v and dqkv are
// bf16 bits, each rounded as the unit would round it.

/** What one layer's fused attention saves for backward. */
export class FusedAttentionActs {
  // q, k, v and att: bf16 bits when the operands are kept in bf16. Flash attention reads q, k, v
  // only as its products' operands, rounded to those very bits; att (its output) is read by the
  // o projection's GEMMs, which round it to those bits, and by flash attention's backward, which
  // reads it in bf16 either way (Di = rowdot(bf16(dout), bf16(att))).
  readonly q: AnyTensor; // (B, T, H, D), after RoPE
  readonly k: AnyTensor; // (B, T, KVH, D), after RoPE
  readonly v: AnyTensor; // (B, T, KVH, D)
  readonly att: AnyTensor; // (B, T, H*D)
  readonly lse: Tensor; // (B, H, T)

  constructor(dtype: DType, s: AttentionShape, bf16Operands = false) {
    const N = s.B * s.T;
    const op = (shape: number[]): AnyTensor => (bf16Operands ? Bf16Tensor.empty(shape) : Tensor.empty(dtype, shape));
    this.q = op([N, s.H * s.D]);
    this.k = op([N, s.KVH * s.D]);
    this.v = op([N, s.KVH * s.D]);
    this.att = op([N, s.H * s.D]);
    this.lse = Tensor.empty(dtype, [s.B, s.H, s.T]);
  }
}

/** Scratch shared by all layers of the fused path: the standard gradients plus the QKV rows. */
export class FusedAttentionGrads extends AttentionGrads {
  readonly qkv: Tensor; // (N, (H + 2 KVH) D): projection output, then its gradient
  /**
   * dqkv in bf16 when the GEMM operands are kept in bf16: the first half of qkv's bytes, free by
   * then (the forward rows are split as soon as they are made), so it costs nothing.
   */
  readonly dqkv16: Bf16Tensor | null;

  constructor(dtype: DType, s: AttentionShape, bf16Operands = false) {
    super(dtype, s);
    const shape = [s.B * s.T, (s.H + 2 * s.KVH) * s.D];
    this.qkv = Tensor.empty(dtype, shape);
    this.dqkv16 = bf16Operands ? new Bf16Tensor(this.qkv.storage, shape) : null;
  }
}

export interface FusedAttentionWeights<W extends Operand = FloatArray> {
  qkv: W; // ((H + 2 KVH) D, C): q_proj, k_proj, v_proj stored back to back
  o: W; // (C, H*D)
}

// q: (N, H*D), k, v: (N, KVH*D) from one GEMM over the packed q/k/v weights, RoPE'd and split
// in its epilogue (on a bf16 matrix unit: the packed rows into qkv (N, (H + 2 KVH) D), then the
// split pass).
export function fusedQkvForward(
  q: Operand,
  k: Operand,
  v: Operand,
  qkv: FloatArray,
  h: Operand,
  wqkv: Operand,
  rope: Rope,
  s: AttentionShape,
): void {
  if (onMatrixUnit(s.mm, h)) {
    linearForward(qkv, h, wqkv, s.B * s.T, s.C, (s.H + 2 * s.KVH) * s.D, s.mm);
    native.ropeQkvSplit(q, k, v, qkv, rope.cos, rope.sin, s.B, s.T, s.H, s.KVH, s.D);
  } else {
    native.gemmQkvRope(q as FloatArray, k as FloatArray, v as FloatArray, h as FloatArray, wqkv as FloatArray, rope.cos, rope.sin, s.B, s.T, s.C, s.H, s.KVH, s.D, s.mm === native.gemmBf16);
  }
}

// out: (N, C)
export function fusedAttentionForward(
  out: FloatArray,
  a: FusedAttentionActs,
  g: FusedAttentionGrads,
  h: Operand,
  w: FusedAttentionWeights<Operand>,
  rope: Rope,
  s: AttentionShape,
): void {
  const N = s.B * s.T;
  fusedQkvForward(a.q.data, a.k.data, a.v.data, g.qkv.data, h, w.qkv, rope, s);
  native.attentionFlashForward(a.att.data, a.lse.data, a.q.data, a.k.data, a.v.data, s.B, s.T, s.H, s.KVH, s.D, s.mm === native.gemmBf16);
  linearForward(out, a.att.data, w.o, N, s.H * s.D, s.C, s.mm);
}

// dh: (N, C) overwritten; weight gradients accumulate into dw.
export function fusedAttentionBackward(
  dh: FloatArray,
  dw: FusedAttentionWeights,
  dout: Operand,
  a: FusedAttentionActs,
  g: FusedAttentionGrads,
  h: Operand,
  w: FusedAttentionWeights<Operand>,
  rope: Rope,
  s: AttentionShape,
): void {
  const N = s.B * s.T;
  const W = (s.H + 2 * s.KVH) * s.D;
  linearBackward(g.datt.data, dw.o, dout, a.att.data, w.o, N, s.H * s.D, s.C, false, s.mm);
  native.attentionFlashBackward(g.dq.data, g.dk.data, g.dv.data, g.datt.data, a.q.data, a.k.data, a.v.data, a.att.data, a.lse.data, s.B, s.T, s.H, s.KVH, s.D, s.mm === native.gemmBf16);
  // dqkv in bf16 where the operands are kept in bf16 (only on a matrix unit: see FusedAttentionGrads)
  const dqkv = g.dqkv16 && onMatrixUnit(s.mm, h) ? g.dqkv16.data : g.qkv.data;
  native.ropeQkvMerge(dqkv, g.dq.data, g.dk.data, g.dv.data, rope.cos, rope.sin, s.B, s.T, s.H, s.KVH, s.D);
  linearBackward(dh, dw.qkv, dqkv, h, w.qkv, N, s.C, W, false, s.mm);
}
