// Evaluation of a model on a prepared split: mean loss per token and perplexity (exp of the
// mean loss) over fixed batches read in order (PackedLoader, no shuffle), forward only.
import { join } from 'node:path';
import { DataError } from '../data/errors.js';
import { PackedLoader } from '../data/loader.js';
import type { SplitName } from '../data/shards.js';
import { openPrepared } from '../data/source.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { LlamaModel } from '../model/llama.js';

export interface EvalOptions {
  /** A prepared data directory (litespark prepare). */
  dataDir: string;
  split: SplitName;
  seqLen: number;
  batch: number;
  /** Batches to evaluate; default (and at most): every full batch of one pass over the split. */
  batches?: number;
}

export interface EvalResult {
  split: SplitName;
  batches: number;
  /** Sequences per batch actually used (smaller than asked when the split holds fewer sequences). */
  batch: number;
  seqLen: number;
  /** Full batches one pass over the split holds. */
  batchesInSplit: number;
  tokens: number;
  /** Mean loss per token (nats), and exp of it. */
  loss: number;
  perplexity: number;
  seconds: number;
  tokensPerSecond: number;
}

/**
 * Refuses a data directory tokenized with another tokenizer than the model's: the hashes
 * (sha256 of the tokenizer.json form, Tokenizer.hash) of both, as `litespark prepare` records.
 */
export function checkSameTokenizer(dataDir: string, model: { tokenizer: Tokenizer; where: string }): void {
  const data = openPrepared(dataDir, `prepared data ${dataDir}`);
  const a = data.tokenizer.hash(), b = model.tokenizer.hash();
  if (a !== b) {
    throw new DataError(
      `${dataDir} was prepared with a different tokenizer (${join(dataDir, data.index.tokenizer.file)}, sha256 ${a.slice(0, 16)}) ` +
        `than ${model.where} (sha256 ${b.slice(0, 16)}): its token ids mean other text to this model`,
    );
  }
}

/** Mean loss and perplexity of `model` on opts.split of opts.dataDir; onBatch after each batch. */
export function evaluateSplit(model: LlamaModel, opts: EvalOptions, onBatch?: (done: number, of: number) => void): EvalResult {
  const T = opts.seqLen;
  let B = opts.batch;
  const open = (batch: number) =>
    PackedLoader.open({ dir: opts.dataDir, split: opts.split, seqLen: T, batch, seed: 0, shuffle: false, worker: false });
  let loader = open(B);
  try {
    if (loader.sequencesPerEpoch < B) {
      B = loader.sequencesPerEpoch;
      loader.close();
      loader = open(B);
    }
    const inSplit = Math.floor(loader.sequencesPerEpoch / B);
    const n = Math.min(opts.batches ?? inSplit, inSplit);
    const buf = model.buffers(B, T);
    let sum = 0;
    let tokens = 0;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      loader.next(buf.ids, buf.targets);
      sum += model.forward(buf);
      for (const t of buf.targets) if (t >= 0) tokens++;
      onBatch?.(i + 1, n);
    }
    const seconds = (performance.now() - t0) / 1000;
    const loss = sum / tokens;
    return {
      split: opts.split, batches: n, batch: B, seqLen: T, batchesInSplit: inSplit, tokens, loss, perplexity: Math.exp(loss),
      seconds, tokensPerSecond: tokens / seconds,
    };
  } finally {
    loader.close();
  }
}
