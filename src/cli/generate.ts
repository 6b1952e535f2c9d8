// `litespark generate`: a checkpoint continues a prompt, streamed to stdout as it is written
// (KV cache: src/infer/). Counts and speed go to stderr at the end, so stdout is only the text.
import { InvalidArgumentError } from 'commander';
import { availableParallelism } from 'node:os';
import { loadModel, resolveCheckpoint } from '../checkpoint/checkpoint.js';
import { ContextLengthError, KvDecoder } from '../infer/decoder.js';
import { generateText } from '../infer/generate.js';
import { native } from '../kernels/native.js';

export interface GenerateCliOptions {
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed?: number;
  threads?: number;
  kernels?: 'standard' | 'litespark';
  /** Extra ids that end generation (besides the checkpoint's end-of-text). */
  stopId?: number[];
  /** Put the checkpoint's BOS id before the prompt (models trained with one, e.g. imported Llamas). */
  bos?: boolean;
}

/** Flag parsers of `litespark generate` (src/cli/main.ts). */
export const parseTemperature = (v: string): number => {
  const t = Number(v);
  if (!(Number.isFinite(t) && t >= 0)) throw new InvalidArgumentError('--temperature must be a number >= 0 (0 = greedy)');
  return t;
};
export const parseTopP = (v: string): number => {
  const p = Number(v);
  if (!(p > 0 && p <= 1)) throw new InvalidArgumentError('--top-p must be a number in (0, 1] (1 = off)');
  return p;
};
export const collectStopId = (v: string, prev: number[]): number[] => {
  const id = Number(v);
  if (!(Number.isInteger(id) && id >= 0)) throw new InvalidArgumentError('--stop-id must be a token id (an integer >= 0)');
  return [...prev, id];
};

const STOP_WORDS = { stop: 'end-of-text', 'max-tokens': '--max-tokens reached', context: 'context full (max_position_embeddings)' } as const;

/** path: a checkpoint directory, or a run directory (its newest complete checkpoint). */
export async function generateCommand(path: string, opts: GenerateCliOptions): Promise<number> {
  const err = (line: string) => process.stderr.write(line + '\n');
  const threads = opts.threads && opts.threads > 0 ? opts.threads : availableParallelism();
  native.setThreads(threads);
  const dir = resolveCheckpoint(path);
  const loaded = loadModel(dir, opts.kernels ? { kernels: opts.kernels } : {});
  const { model, tokenizer, config, generation } = loaded;
  const maxLen = config.model.max_position_embeddings;
  let prompt: number[] = Array.from(tokenizer.encode(opts.prompt));
  if (opts.bos) {
    if (generation.bos_token_id === null) {
      err(`litespark: --bos: ${dir} has no bos_token_id`);
      return 2;
    }
    prompt = [generation.bos_token_id, ...prompt];
  }
  if (prompt.length > maxLen) {
    err(`litespark: the prompt is ${prompt.length} tokens, longer than the model's ${maxLen} positions (max_position_embeddings)`);
    return 2;
  }
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const stopIds = [...(opts.stopId ?? []), ...(generation.eos_token_id !== null ? [generation.eos_token_id] : [])];
  const dec = new KvDecoder(model, maxLen);
  let last = '';
  let r;
  try {
    r = generateText(dec, tokenizer, prompt, {
      maxTokens: opts.maxTokens, temperature: opts.temperature, topK: opts.topK, topP: opts.topP, seed, stopIds,
    }, (delta) => {
      process.stdout.write(delta);
      last = delta;
    });
  } catch (e) {
    if (e instanceof ContextLengthError || e instanceof RangeError) {
      err(`litespark: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (process.stdout.isTTY && !last.endsWith('\n')) process.stdout.write('\n');
  const n = r.ids.length;
  const decodeTps = r.steps > 0 ? (r.steps * 1000) / r.decodeMs : NaN; // the first new token comes from the prefill
  err(
    `litespark generate ${dir}: prompt ${r.promptTokens} tokens, generated ${n} (${STOP_WORDS[r.stopReason]}); ` +
      `prefill ${r.prefillMs.toFixed(1)} ms (${((r.promptTokens * 1000) / r.prefillMs).toFixed(0)} tokens/s), ` +
      `decode ${Number.isFinite(decodeTps) ? decodeTps.toFixed(1) : 'n/a'} tokens/s; ` +
      `seed ${seed}, ${model.kernels} kernels, fp32, ${threads} threads, ${native.isa()}`,
  );
  return 0;
}
