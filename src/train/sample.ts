// Sampling text from a model by a full forward over the window for each new token (no KV
// cache): the trainer's end-of-run sample, and the "without a cache" row of bench/generate.ts.
// Generation with a KV cache is src/infer/generate.ts; both draw tokens with src/infer/sampling.ts.
import { Sampler } from '../infer/sampling.js';
import type { LlamaModel, StepBuffers } from '../model/llama.js';

export interface SampleOptions {
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** 0 = all tokens. */
  topK: number;
  /** Nucleus mass; default 1 (off). */
  topP?: number;
  seed: number;
  /** Stop at this id (end of text). */
  stopId?: number;
}

/**
 * Continues `prompt` by up to opts.maxTokens ids. `buf` must have batch 1 and keep logits; the
 * context is the last buf.T ids. Returns only the new ids.
 */
export function sample(model: LlamaModel, buf: StepBuffers, prompt: ArrayLike<number>, opts: SampleOptions): number[] {
  if (buf.B !== 1 || !buf.logits) throw new Error('sample: buffers must have batch size 1 and keep logits');
  const V = model.config.vocab_size;
  const sampler = new Sampler(V, { temperature: opts.temperature, topK: opts.topK, topP: opts.topP ?? 1, seed: opts.seed });
  const ids = Array.from(prompt);
  const out: number[] = [];
  for (let n = 0; n < opts.maxTokens; n++) {
    const ctx = ids.slice(-buf.T);
    buf.ids.fill(0);
    buf.ids.set(ctx);
    const logits = model.forwardLogits(buf);
    const next = sampler.next(logits.subarray((ctx.length - 1) * V, ctx.length * V));
    if (next === opts.stopId) break;
    ids.push(next);
    out.push(next);
  }
  return out;
}
