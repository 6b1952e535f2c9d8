// Generation with a KV cache: prefill the prompt, then one decode step per new token, each
// token drawn by a Sampler (temperature, top-k, top-p, seeded). Stops at a stop id (the
// tokenizer's EOS, or --stop-id), after maxTokens, or when the context reaches the model's
// max_position_embeddings.
import type { Tokenizer } from '../data/tokenizer.js';
import type { KvDecoder } from './decoder.js';
import { Sampler, type SamplingOptions } from './sampling.js';
import { TextStream } from './text_stream.js';

export interface GenerateOptions extends SamplingOptions {
  /** New tokens at most. */
  maxTokens: number;
  /** Generation ends (without emitting it) at any of these ids. */
  stopIds?: readonly number[];
}

/** Why generation ended: a stop id, maxTokens reached, or the model's context is full. */
export type StopReason = 'stop' | 'max-tokens' | 'context';

export interface GenerateResult {
  /** The new ids (a stop id not included). */
  ids: number[];
  stopReason: StopReason;
  promptTokens: number;
  /** Decode steps run: each new token fed back through the model, but the last at maxTokens or a full context. */
  steps: number;
  /** Wall time of the prefill (prompt forward) and of the decode steps, milliseconds. */
  prefillMs: number;
  decodeMs: number;
}

/**
 * Continues `prompt` (>= 1 id, at most dec.maxLen) by up to opts.maxTokens ids; `onToken` is
 * called with each new id as soon as it is drawn.
 */
export function generate(dec: KvDecoder, prompt: ArrayLike<number>, opts: GenerateOptions, onToken?: (id: number) => void): GenerateResult {
  const V = dec.model.config.vocab_size;
  const sampler = new Sampler(V, opts);
  const stops = new Set(opts.stopIds ?? []);
  const t0 = performance.now();
  let logits = dec.prefill(prompt);
  const t1 = performance.now();
  const ids: number[] = [];
  let stopReason: StopReason = 'max-tokens';
  let steps = 0;
  while (ids.length < opts.maxTokens) {
    const next = sampler.next(logits);
    if (stops.has(next)) {
      stopReason = 'stop';
      break;
    }
    ids.push(next);
    onToken?.(next);
    if (ids.length === opts.maxTokens) break;
    if (dec.length >= dec.maxLen) {
      stopReason = 'context';
      break;
    }
    logits = dec.step(next);
    steps++;
  }
  return { ids, stopReason, promptTokens: prompt.length, steps, prefillMs: t1 - t0, decodeMs: performance.now() - t1 };
}

/**
 * generate() on text: encodes `prompt` (an empty prompt starts after the end-of-text id, the
 * document boundary the model was trained on), stops at the tokenizer's EOS besides opts.stopIds,
 * and calls `onText` with each piece of text as soon as its characters are complete.
 */
export function generateText(
  dec: KvDecoder,
  tokenizer: Tokenizer,
  prompt: string | ArrayLike<number>,
  opts: GenerateOptions,
  onText?: (delta: string) => void,
): GenerateResult & { text: string } {
  let ids: ArrayLike<number> = typeof prompt === 'string' ? tokenizer.encode(prompt) : prompt;
  if (ids.length === 0) {
    if (tokenizer.eosId < 0) throw new RangeError('the prompt is empty and the tokenizer has no end-of-text token to start from');
    ids = [tokenizer.eosId];
  }
  const stopIds = [...(opts.stopIds ?? []), ...(tokenizer.eosId >= 0 ? [tokenizer.eosId] : [])];
  const stream = new TextStream(tokenizer, ids);
  let text = '';
  const emit = (s: string) => {
    if (!s) return;
    text += s;
    onText?.(s);
  };
  const r = generate(dec, ids, { ...opts, stopIds }, (id) => emit(stream.push(id)));
  emit(stream.flush());
  return { ...r, text };
}
