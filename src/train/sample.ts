// Sampling text from a model: a full forward over the window for each new token (no KV cache
// yet: `litespark generate` with a cache arrives with the checkpoint issue). Used to show what a
// freshly trained model writes at the end of a run.
import type { LlamaModel, StepBuffers } from '../model/llama.js';

export interface SampleOptions {
  maxTokens: number;
  temperature: number;
  topK: number;
  seed: number;
  /** Stop at this id (end of text). */
  stopId?: number;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws an id from logits[0..V) with temperature and top-k (temperature 0 = greedy). */
export function sampleFrom(logits: ArrayLike<number>, V: number, temperature: number, topK: number, rand: () => number): number {
  let best = 0;
  for (let j = 1; j < V; j++) if (logits[j]! > logits[best]!) best = j;
  if (temperature <= 0) return best;
  const k = Math.max(1, Math.min(topK > 0 ? topK : V, V));
  // the k largest logits (k is small: insertion into a sorted list)
  const top: number[] = [];
  for (let j = 0; j < V; j++) {
    if (top.length < k || logits[j]! > logits[top[top.length - 1]!]!) {
      let i = top.length < k ? top.length : k - 1;
      if (top.length < k) top.push(j);
      while (i > 0 && logits[top[i - 1]!]! < logits[j]!) {
        top[i] = top[i - 1]!;
        i--;
      }
      top[i] = j;
    }
  }
  const mx = logits[top[0]!]!;
  const w = top.map((j) => Math.exp((logits[j]! - mx) / temperature));
  let r = rand() * w.reduce((a, b) => a + b, 0);
  for (let i = 0; i < top.length; i++) {
    r -= w[i]!;
    if (r <= 0) return top[i]!;
  }
  return top[top.length - 1]!;
}

/**
 * Continues `prompt` by up to opts.maxTokens ids. `buf` must have batch 1; the context is the
 * last buf.T ids. Returns only the new ids.
 */
export function sample(model: LlamaModel, buf: StepBuffers, prompt: ArrayLike<number>, opts: SampleOptions): number[] {
  if (buf.B !== 1) throw new Error('sample: buffers must have batch size 1 (and keep logits)');
  const V = model.config.vocab_size;
  const rand = mulberry32(opts.seed);
  const ids = Array.from(prompt);
  const out: number[] = [];
  for (let n = 0; n < opts.maxTokens; n++) {
    const ctx = ids.slice(-buf.T);
    buf.ids.fill(0);
    buf.ids.set(ctx);
    const logits = model.forwardLogits(buf);
    const row = logits.subarray((ctx.length - 1) * V, ctx.length * V);
    const next = sampleFrom(row, V, opts.temperature, opts.topK, rand);
    if (next === opts.stopId) break;
    ids.push(next);
    out.push(next);
  }
  return out;
}
