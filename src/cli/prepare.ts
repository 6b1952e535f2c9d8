// `litespark prepare`: corpora -> token shards, with a progress bar (MB/s of text, tokens/s).
import cliProgress from 'cli-progress';
import { availableParallelism } from 'node:os';
import { prepare, type PrepareProgress } from '../data/prepare.js';
import type { TextDocs } from '../data/inputs.js';
import { fmtBytes, fmtCount, fmtDuration } from './format.js';

export interface PrepareCliOptions {
  out: string;
  tokenizer?: string;
  vocabSize?: number;
  field?: string;
  valFraction?: number;
  workers?: number;
  maxBytes?: number;
  textDocs?: TextDocs;
  tokenizerTrainBytes?: number;
}

const say = (line = '') => process.stdout.write(line + '\n');

export async function prepareCommand(inputs: string[], opts: PrepareCliOptions): Promise<number> {
  const workers = opts.workers ?? availableParallelism();
  const bar = new cliProgress.SingleBar(
    {
      format: 'prepare |{bar}| {pct} of {total_mb} | {mbps} MB/s text | {tps} tok/s | {docs} docs | units {units} | ETA {eta_formatted}',
      barsize: 20,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let t0 = 0;
  const payload = (p: PrepareProgress) => {
    const s = Math.max((performance.now() - t0) / 1000, 1e-3);
    return {
      pct: p.rawTotal > 0 ? `${((100 * p.raw) / p.rawTotal).toFixed(1)}%` : '-',
      total_mb: fmtBytes(p.rawTotal),
      mbps: (p.textBytes / 1e6 / s).toFixed(2),
      tps: fmtCount(Math.round(p.tokens / s)),
      docs: fmtCount(p.documents),
      units: `${p.unitsDone}/${p.units}`,
    };
  };
  try {
    const r = await prepare({
      inputs,
      out: opts.out,
      workers,
      ...(opts.tokenizer !== undefined ? { tokenizer: opts.tokenizer } : {}),
      ...(opts.vocabSize !== undefined ? { vocabSize: opts.vocabSize } : {}),
      ...(opts.field !== undefined ? { field: opts.field } : {}),
      ...(opts.valFraction !== undefined ? { valFraction: opts.valFraction } : {}),
      ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
      ...(opts.textDocs !== undefined ? { textDocs: opts.textDocs } : {}),
      ...(opts.tokenizerTrainBytes !== undefined ? { tokenizerTrainBytes: opts.tokenizerTrainBytes } : {}),
      onStatus: (m) => (started ? undefined : say(`litespark: ${m}`)),
      onWarning: (m) => process.stderr.write(`litespark: warning: ${m}\n`),
      onProgress: (p) => {
        if (!started) {
          started = true;
          t0 = performance.now();
          bar.start(Math.max(p.rawTotal, 1), 0, payload(p));
        }
        bar.update(p.raw, payload(p));
      },
    });
    bar.stop();
    const idx = r.index;
    if (r.noop) {
      say(`nothing to do: ${r.dir} already holds these ${r.units} units (${fmtCount(idx.splits.train.tokens + (idx.splits.val?.tokens ?? 0))} tokens)`);
    } else {
      const s = Math.max(r.seconds, 1e-3);
      say(`prepared ${r.dir} in ${fmtDuration(r.seconds)} (${r.units} units, ${r.reused} already done)`);
      if (r.textBytes > 0) {
        say(
          `  speed     ${(r.textBytes / 1e6 / s).toFixed(2)} MB/s of text (${(r.textBytes / 1e6 / s / workers).toFixed(2)} MB/s per worker, ` +
            `${workers} workers), ${fmtCount(Math.round(r.tokens / s))} tokens/s`,
        );
      }
    }
    say(`  train     ${fmtCount(idx.splits.train.tokens)} tokens, ${fmtCount(idx.splits.train.documents)} documents, ${idx.splits.train.shards.length} shards`);
    const val = idx.splits.val ?? { tokens: 0, documents: 0, shards: [] };
    say(`  val       ${fmtCount(val.tokens)} tokens, ${fmtCount(val.documents)} documents, ${val.shards.length} shards`);
    say(`  tokenizer vocab ${idx.tokenizer.vocab_size}, ${idx.dtype} tokens, sha256 ${idx.tokenizer.sha256.slice(0, 16)}`);
    if (r.skippedLines > 0) say(`  skipped   ${r.skippedLines} lines (see the warnings above)`);
  } finally {
    bar.stop();
  }
  return 0;
}
