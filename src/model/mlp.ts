// The SwiGLU MLP of a Llama block: down(silu(gate(h)) * up(h)). Standard kernels: three
// separate GEMMs and a separate elementwise activation pass; gate, up and the activation saved.
import { native, type FloatArray } from '../kernels/native.js';
import { Bf16Tensor, Tensor, type DType } from '../kernels/tensor.js';
import { linearBackward, linearForward, onMatrixUnit, type Matmul, type Operand } from './linear.js';

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
// Gate and up as one GEMM over their packed 2F x C weights with SwiGLU in its epilogue: gate and
// up live only in the register tile (fp32 GEMM: native.gemmSwiglu; bf16 on a matrix unit, AMX /
// AVX-512 BF16: native.gateUpSwiglu, 1.25x over GEMM + pass on AMX, S shape). Only the
// activation is saved: backward recomputes gate/up, on the fp32 GEMM with the SwiGLU backward in
// its epilogue writing dgu (native.gemmSwigluBackward), on a matrix unit with the plain GEMM and
// the SwiGLU backward pass (an epilogue writing dgu measured slower on AMX).
//
// bf16 on a matrix unit keeps the GEMM-only operands in bf16 (llama.ts decides): the weights
// (the working copy AdamW writes), h, the activation (the epilogue rounds it once) and dgu (the
// SwiGLU backward pass rounds it once into its own buffer). Each is rounded exactly as the unit
// would round its fp32 value while packing, so the products are unchanged, the saved
// activations take half the bytes and the GEMMs read bf16 without converting.

export interface FusedMlpWeights<W extends Operand = FloatArray> {
  gu: W; // (2F, C): gate_proj then up_proj
  down: W; // (C, F)
}

/** Scratch shared by all layers: the gate/up projection output, then its gradient. */
export class FusedMlpScratch {
  readonly gu: Tensor; // (N, 2F): dgu (and on a matrix unit first the recomputed gate/up)
  readonly dact: Tensor; // (N, F)
  /** (N, 2F): dgu in bf16 when the operands are kept in bf16 (gu then holds only the recomputed gate/up). */
  readonly dgu16: Bf16Tensor | null;

  constructor(dtype: DType, s: MlpShape, bf16Operands = false) {
    this.gu = Tensor.empty(dtype, [s.N, 2 * s.F]);
    this.dact = Tensor.empty(dtype, [s.N, s.F]);
    this.dgu16 = bf16Operands ? Bf16Tensor.empty([s.N, 2 * s.F]) : null;
  }
}

// out: (N, C); act: (N, F) saved for backward (fp32, or bf16 bits on a matrix unit).
export function fusedMlpForward(out: FloatArray, act: Operand, h: Operand, w: FusedMlpWeights<Operand>, s: MlpShape): void {
  if (onMatrixUnit(s.mm, h)) native.gateUpSwiglu(act as Float32Array | Uint16Array, h, w.gu as Float32Array | Uint16Array, s.N, s.C, s.F);
  else native.gemmSwiglu(act as FloatArray, h as FloatArray, w.gu as FloatArray, s.N, s.C, s.F, s.mm === native.gemmBf16);
  linearForward(out, act, w.down, s.N, s.F, s.C, s.mm);
}

// dh: (N, C) overwritten; weight gradients accumulate.
export function fusedMlpBackward(dh: FloatArray, dw: FusedMlpWeights, dout: Operand, act: Operand, sc: FusedMlpScratch, h: Operand, w: FusedMlpWeights<Operand>, s: MlpShape): void {
  linearBackward(sc.dact.data, dw.down, dout, act, w.down, s.N, s.F, s.C, false, s.mm);
  let dgu: Operand = sc.gu.data;
  if (onMatrixUnit(s.mm, h)) {
    linearForward(sc.gu.data, h, w.gu, s.N, s.C, 2 * s.F, s.mm); // recompute gate and up
    if (sc.dgu16) dgu = sc.dgu16.data; // gu -> dgu rounded to bf16
    native.swigluPackedBackward(dgu, sc.dact.data, sc.gu.data, s.N, s.F); // else in place: gu -> dgu
  } else {
    native.gemmSwigluBackward(sc.gu.data, sc.dact.data, h as FloatArray, w.gu as FloatArray, s.N, s.C, s.F, s.mm === native.gemmBf16);
  }
  linearBackward(dh, dw.gu, dgu, h, w.gu, s.N, s.C, 2 * s.F, false, s.mm);
}
