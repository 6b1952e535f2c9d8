// The SwiGLU MLP of a Llama block: down(silu(gate(h)) * up(h)). Standard kernels: three
// separate GEMMs and a separate elementwise activation pass; gate, up and the activation saved.
import { native, type FloatArray } from '../kernels/native.js';
import { Tensor, type DType } from '../kernels/tensor.js';
import { linearBackward, linearForward } from './linear.js';

export interface MlpShape {
  N: number;
  C: number;
  F: number;
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
  linearForward(a.gate.data, h, w.gate, s.N, s.C, s.F);
  linearForward(a.up.data, h, w.up, s.N, s.C, s.F);
  native.swigluForward(a.act.data, a.gate.data, a.up.data, s.N * s.F);
  linearForward(out, a.act.data, w.down, s.N, s.F, s.C);
}

// dh: (N, C) overwritten; weight gradients accumulate.
export function mlpBackward(dh: FloatArray, dw: MlpWeights, dout: FloatArray, a: MlpActs, g: MlpGrads, h: FloatArray, w: MlpWeights, s: MlpShape): void {
  linearBackward(g.dact.data, dw.down, dout, a.act.data, w.down, s.N, s.F, s.C);
  native.swigluBackward(g.dgate.data, g.dup.data, g.dact.data, a.gate.data, a.up.data, s.N * s.F);
  linearBackward(dh, dw.gate, g.dgate.data, h, w.gate, s.N, s.C, s.F);
  linearBackward(dh, dw.up, g.dup.data, h, w.up, s.N, s.C, s.F, true);
}
