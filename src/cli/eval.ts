// `litespark eval`: loss and perplexity of a checkpoint on a prepared split (src/infer/eval.ts).
import { availableParallelism } from 'node:os';
import { loadModel, resolveCheckpoint } from '../checkpoint/checkpoint.js';
import type { SplitName } from '../data/shards.js';
import { checkSameTokenizer, evaluateSplit } from '../infer/eval.js';
import { native } from '../kernels/native.js';
import { fmtCount, unitName } from './format.js';

export interface EvalCliOptions {
  data: string;
  split: SplitName;
  batches?: number;
  batch: number;
  seqLen?: number;
  threads?: number;
  kernels?: 'standard' | 'litespark';
  /** Precision of the matrix products; default: the checkpoint's training dtype. */
  dtype?: 'fp32' | 'bf16';
  json?: boolean;
}

const say = (line = '') => process.stdout.write(line + '\n');

/** path: a checkpoint directory, or a run directory (its newest complete checkpoint). */
export async function evalCommand(path: string, opts: EvalCliOptions): Promise<number> {
  const threads = opts.threads && opts.threads > 0 ? opts.threads : availableParallelism();
  native.setThreads(threads);
  const dir = resolveCheckpoint(path);
  const loaded = loadModel(dir, { ...(opts.kernels ? { kernels: opts.kernels } : {}), precision: opts.dtype ?? 'checkpoint' });
  const { model, config } = loaded;
  const dtype = model.precision;
  // bf16 runs its products on the best bf16 unit; without one, on the fp32 kernels (rounded operands)
  const matmulUnit = dtype === 'bf16' ? native.bf16Unit() : 'fp32';
  const unit = dtype === 'bf16' ? `bf16 on ${unitName(matmulUnit)}` : 'fp32';
  const maxLen = config.model.max_position_embeddings;
  const T = opts.seqLen ?? Math.min(config.train.seq_len, maxLen);
  if (T > maxLen) {
    process.stderr.write(`litespark: --seq-len ${T} is longer than the model's ${maxLen} positions (max_position_embeddings)\n`);
    return 2;
  }
  checkSameTokenizer(opts.data, { tokenizer: loaded.tokenizer, where: `the checkpoint ${dir}` });
  const r = evaluateSplit(model, { dataDir: opts.data, split: opts.split, seqLen: T, batch: opts.batch, ...(opts.batches ? { batches: opts.batches } : {}) });
  const info = { checkpoint: dir, data: opts.data, kernels: model.kernels, dtype, matmulUnit, threads, isa: native.isa(), ...r };
  if (opts.json) {
    say(JSON.stringify(info));
    return 0;
  }
  say(`litespark eval ${dir} on the ${r.split} split of ${opts.data}`);
  const capped = opts.batches && opts.batches > r.batches ? ` (all the split holds: ${r.batchesInSplit} full batches)` : '';
  const fewer = r.batch < opts.batch ? ` (--batch ${opts.batch}: the split has only ${r.batch} sequences)` : '';
  say(`  tokens      ${fmtCount(r.tokens)}: ${r.batches} batches of ${r.batch} x ${r.seqLen}${capped}${fewer}`);
  say(`  loss        ${r.loss.toFixed(4)} (mean per token, nats)`);
  say(`  perplexity  ${r.perplexity.toFixed(3)}`);
  say(`  speed       ${r.tokensPerSecond.toFixed(0)} tokens/s in ${r.seconds.toFixed(2)} s (forward only; ${model.kernels} kernels, ${unit}, ${threads} threads, ${native.isa()})`);
  return 0;
}
