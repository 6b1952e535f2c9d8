// The SwiGLU MLP of a Llama block: down(silu(gate(h)) * up(h)). Standard kernels: three
// separate GEMMs and a separate elementwise activation pass; gate, up and the activation saved.
import { native, type FloatArray, type UnitArray } from '../kernels/native.js';
import { Bf16Tensor, Tensor, type AnyTensor, type DType } from '../kernels/tensor.js';
import { linearBackward, linearBackwardInput, linearBackwardWeight, linearForward, onMatrixUnit, type Matmul, type Operand } from './linear.js';

export interface MlpShape {
  N: number;
  C: number;
  F: number;
  /** The GEMM of the projections (default native.gemm: fp32). */
  mm?: Matmul;
}

export interface MlpWeights {
  gate: FloatArray; // (F, C)
  up: FloatArray; // (F, C)
  down: FloatArray; // (C, F)
}

export class MlpActs {
  readonly gate: Tensor; // (N, F)
  readonly up: Tensor; // (N, F)
  readonly act: Tensor; // (N, F) = silu(gate) * up

  constructor(dtype: DType, s: MlpShape) {
    this.gate = Tensor.empty(dtype, [s.N, s.F]);
    this.up = Tensor.empty(dtype, [s.N, s.F]);
    this.act = Tensor.empty(dtype, [s.N, s.F]);
  }
}

export class MlpGrads {
  readonly dact: Tensor;
  readonly dgate: Tensor;
  readonly dup: Tensor;

  constructor(dtype: DType, s: MlpShape) {
    this.dact = Tensor.empty(dtype, [s.N, s.F]);
    this.dgate = Tensor.empty(dtype, [s.N, s.F]);
    this.dup = Tensor.empty(dtype, [s.N, s.F]);
  }
}

// out: (N, C)
export function mlpForward(out: FloatArray, a: MlpActs, h: FloatArray, w: MlpWeights, s: MlpShape): void {
  linearForward(a.gate.data, h, w.gate, s.N, s.C, s.F, s.mm);
  linearForward(a.up.data, h, w.up, s.N, s.C, s.F, s.mm);
  native.swigluForward(a.act.data, a.gate.data, a.up.data, s.N * s.F);
  linearForward(out, a.act.data, w.down, s.N, s.F, s.C, s.mm);
}

// dh: (N, C) overwritten; weight gradients accumulate.
export function mlpBackward(dh: FloatArray, dw: MlpWeights, dout: FloatArray, a: MlpActs, g: MlpGrads, h: FloatArray, w: MlpWeights, s: MlpShape): void {
  linearBackward(g.dact.data, dw.down, dout, a.act.data, w.down, s.N, s.F, s.C, false, s.mm);
  native.swigluBackward(g.dgate.data, g.dup.data, g.dact.data, a.gate.data, a.up.data, s.N * s.F);
  linearBackward(dh, dw.gate, g.dgate.data, h, w.gate, s.N, s.C, s.F, false, s.mm);
  linearBackward(dh, dw.up, g.dup.data, h, w.up, s.N, s.C, s.F, true, s.mm);
}

// ---- the fused (litespark) path ----------------------------------------------------------
// Gate and up as one GEMM over their packed 2F x C weights with SwiGLU in its epilogue (fp32 GEMM:
// native.gemmSwiglu; bf16 on a matrix unit, AMX / AVX-512 BF16: native.gateUpSwiglu, whose SwiGLU
// reads gate and up rounded to bf16). The epilogue writes the activation, which only the down
// projection's forward GEMM reads (one (N, F) buffer shared by all layers), and, without
// recomputation, gu = [gate | up], which the layer keeps for backward. Backward forms dact, then
// one elementwise pass makes dgu from gu and dact (in place over gu) and the activation again,
// bit for bit forward's (same function on the same gate and up), for down_proj's weight
// gradient. With recomputation (llama.ts) the layer keeps nothing here: backward re-runs the
// same epilogue GEMM writing gu only into one shared buffer, so every mode's gradients are the
// same bits; no GEMM runs twice.
//
// bf16 on a matrix unit keeps the GEMM-only operands in bf16 (llama.ts decides): the weights
// (the working copy AdamW writes), h, gu and dgu (the pass rounds dgu once, in place), and the
// activation (the epilogue and the pass round it once). Each is rounded exactly as the unit would
// round its fp32 value while packing, so the products are unchanged, those tensors take half the
// bytes and the GEMMs read bf16 without converting.

export interface FusedMlpWeights<W extends Operand = FloatArray> {
  gu: W; // (2F, C): gate_proj then up_proj
  down: W; // (C, F)
}

/** Scratch shared by all layers. */
export class FusedMlpScratch {
  /** (N, F): the activation, written by forward's epilogue for the down GEMM and again by backward's pass for down_proj's dW. */
  readonly act: AnyTensor;
  readonly dact: Tensor; // (N, F)
  /** (N, 2F): under recomputation, gate/up recomputed by backward, then dgu in place; null without it (each layer keeps its own). */
  readonly gu: AnyTensor | null;

  /** bf16Operands: act and gu in bf16 (keepsBf16Operands); recompute: backward recomputes gu (any mode but 'none'). */
  constructor(dtype: DType, s: MlpShape, bf16Operands = false, recompute = false) {
    const op = (shape: number[]): AnyTensor => (bf16Operands ? Bf16Tensor.empty(shape) : Tensor.empty(dtype, shape));
    this.act = op([s.N, s.F]);
    this.dact = Tensor.empty(dtype, [s.N, s.F]);
    this.gu = recompute ? op([s.N, 2 * s.F]) : null;
  }
}

/** The gate/up GEMM's epilogue: act and / or gu (either null). */
function gateUp(act: Operand | null, gu: Operand | null, h: Operand, w: FusedMlpWeights<Operand>, s: MlpShape): void {
  if (onMatrixUnit(s.mm, h)) native.gateUpSwiglu(act as UnitArray | null, gu as UnitArray | null, h, w.gu as UnitArray, s.N, s.C, s.F);
  else native.gemmSwiglu(act as FloatArray | null, gu as FloatArray | null, h as FloatArray, w.gu as FloatArray, s.N, s.C, s.F, s.mm === native.gemmBf16);
}

/**
 * out: (N, C). gu: (N, 2F) gate and up kept for backward, or null under recomputation (backward
 * makes them with fusedMlpRecompute); act: (N, F) scratch for the down GEMM.
 */
export function fusedMlpForward(out: FloatArray, gu: Operand | null, act: Operand, h: Operand, w: FusedMlpWeights<Operand>, s: MlpShape): void {
  gateUp(act, gu, h, w, s);
  linearForward(out, act, w.down, s.N, s.F, s.C, s.mm);
}

/** gu: (N, 2F) = [gate | up] again, bit for bit as fusedMlpForward makes them (the same epilogue GEMM). */
export function fusedMlpRecompute(gu: Operand, h: Operand, w: FusedMlpWeights<Operand>, s: MlpShape): void {
  gateUp(null, gu, h, w, s);
}

/** dh: (N, C) overwritten; weight gradients accumulate. gu: (N, 2F) from forward or fusedMlpRecompute, overwritten by dgu. */
export function fusedMlpBackward(dh: FloatArray, dw: FusedMlpWeights, dout: Operand, gu: Operand, sc: FusedMlpScratch, h: Operand,
  w: FusedMlpWeights<Operand>, s: MlpShape): void {
  const { N, C, F } = s;
  linearBackwardInput(sc.dact.data, dout, w.down, N, F, C, false, s.mm);
  if (onMatrixUnit(s.mm, h)) native.swigluUnitBackward(gu as UnitArray, sc.act.data as UnitArray, sc.dact.data as Float32Array, gu as UnitArray, N, F);
  else native.swigluPackedBackward(gu as FloatArray, sc.act.data as FloatArray, sc.dact.data, gu as FloatArray, N, F);
  linearBackwardWeight(dw.down, dout, sc.act.data, N, F, C, s.mm);
  linearBackward(dh, dw.gu, gu, h, w.gu, N, C, 2 * F, false, s.mm); // gu now holds dgu
}
