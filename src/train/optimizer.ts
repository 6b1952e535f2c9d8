// AdamW on the flat fp32 parameter buffer: one native pass for the decayed matrices, one for
// the norm gains (no decay), with global-norm gradient clipping folded into the same pass.
import { native } from '../kernels/native.js';
import type { FloatArray } from '../kernels/native.js';
import { ParamStore, type Bf16Weights, type LlamaConfig } from '../model/params.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  adam_eps: number;
  weight_decay: number;
  grad_clip: number;
}

/** The factor that brings a gradient of norm `norm` down to `maxNorm` (1 when off or below). */
export function clipScale(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
}

export class AdamW {
  readonly m: ParamStore;
  readonly v: ParamStore;
  /** Optimizer steps taken so far. */
  step = 0;
  private readonly views: Array<{ p: FloatArray; g: FloatArray; m: FloatArray; v: FloatArray; pb: Uint16Array | undefined; n: number; decay: boolean }>;

  /** bf16: the model's bf16 working copy (bf16 training on a matrix unit), rewritten in the update's own pass. */
  constructor(
    config: LlamaConfig,
    readonly params: ParamStore,
    readonly grads: ParamStore,
    readonly hp: AdamWConfig,
    readonly bf16: Bf16Weights | null = null,
  ) {
    if (bf16 && bf16.params !== params) throw new Error('AdamW: the bf16 copy is not of these parameters');
    this.m = new ParamStore(config, params.dtype);
    this.v = new ParamStore(config, params.dtype);
    const split = params.decayEnd;
    const total = params.flat.numel;
    const range = (a: number, b: number, decay: boolean, copy = false) => ({
      p: params.flat.data.subarray(a, b),
      g: grads.flat.data.subarray(a, b),
      m: this.m.flat.data.subarray(a, b),
      v: this.v.flat.data.subarray(a, b),
      pb: copy ? bf16!.flat.data.subarray(a - bf16!.lo, b - bf16!.lo) : undefined,
      n: b - a,
      decay,
    });
    // with a bf16 copy of [lo, hi = split) the decayed range runs as two passes (elementwise:
    // the same values), the second also writing the copy
    this.views = bf16
      ? [range(0, bf16.lo, true), range(bf16.lo, split, true, true), range(split, total, false)]
      : [range(0, split, true), range(split, total, false)];
  }

  /** Global L2 norm of the gradients (deterministic for any thread count). */
  gradNorm(): number {
    return Math.sqrt(native.sumSquares(this.grads.flat.data, this.grads.flat.numel));
  }

  /** One AdamW step at learning rate `lr`; returns the gradient norm before clipping. */
  update(lr: number): number {
    const norm = this.gradNorm();
    const gscale = clipScale(norm, this.hp.grad_clip);
    this.step += 1;
    for (const r of this.views) {
      if (r.n === 0) continue;
      native.adamw(r.p, r.g, r.m, r.v, r.n, lr, this.hp.beta1, this.hp.beta2, this.hp.adam_eps, r.decay ? this.hp.weight_decay : 0, this.step, gscale, r.pb);
    }
    this.params.touch();
    // the copy's range was rewritten whole
    if (this.bf16) this.bf16.version = this.params.version;
    return norm;
  }

  bytes(): number {
    return this.m.flat.bytes + this.v.flat.bytes;
  }
}
