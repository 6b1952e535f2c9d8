// The whole-model finite-difference gradient check shared by the model tests (llama.test.ts per
// kernel path and GQA ratio, recompute.test.ts per recompute mode): float64, every parameter
// tensor (12 elements each), norm gains moved away from 1, B=2 x T=5 with one ignored target.
import { native } from '../../src/kernels/native.js';
import type { LlamaModel, Recompute } from '../../src/model/llama.js';
import { randInts } from '../helpers.js';
import { fdCheck } from '../kernels/harness.js';

export function wholeModelFdCheck(model: LlamaModel, recompute: Recompute = 'none'): void {
  const cfg = model.config;
  model.params.init(3);
  // norm gains away from 1 so their gradients are exercised non-trivially
  for (const s of model.params.specs) if (s.init === 'ones') native.randn(model.params.get(s.name).data, s.shape[0], 9, 1, 0.2);
  const B = 2, T = 5;
  const buf = model.buffers(B, T, false, recompute);
  buf.ids.set(randInts(B * T, cfg.vocab_size, 4));
  buf.targets.set(randInts(B * T, cfg.vocab_size, 5));
  buf.targets[3] = -1;
  const tokens = B * T - 1;
  const loss = () => model.forward(buf) / tokens;
  model.grads.zero();
  model.forward(buf, 1 / tokens);
  model.backward(buf, 1 / tokens);
  const names = model.params.specs.map((s) => s.name);
  fdCheck(
    names.map((n) => model.params.get(n).data as Float64Array),
    names.map((n) => model.grads.get(n).data),
    loss,
    { names, maxPerInput: 12, atol: 1e-9, rtol: 1e-6 },
  );
}
