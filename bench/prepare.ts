// `litespark prepare` throughput: MB/s of input text per worker, with one worker and with one
// per core, on the same inputs in one run (issue target: >= 5 MB/s per core, byte-level BPE).
//
//   node dist/bench/prepare.js [--input FILE_OR_DIR ...] [--mb 64] [--vocab 8192]
//
// Without --input, SlimPajama-style chunks (8 `.jsonl.zst` files, or `.jsonl` when the `zstd` tool
// is absent) of --mb MB in all are written from the embedded corpus: documents of 1-8 KB cut at
// random places. A compressed file is one unit of work, so pass several files to use every core.
// That text repeats, so per-word caches hit more often than on a real web corpus: pass a real
// corpus with --input for figures to quote. The tokenizer (byte-level BPE, --vocab) is trained
// once on the first 8 MB (a first full run) and given to the timed runs, so they time tokenization
// (reading, decompression, JSON, BPE, shard writing).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedCorpus } from '../src/data/corpus.js';
import { prepare } from '../src/data/prepare.js';
import { arg, cpuModel } from './common.js';

function inputsArgs(): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === '--input' && process.argv[i + 1]) out.push(process.argv[i + 1]);
  });
  return out;
}

/** --mb MB of jsonl in 8 chunk files (compressed with the zstd tool when present), as SlimPajama ships. */
function syntheticCorpus(dir: string, mb: number): string {
  mkdirSync(dir, { recursive: true });
  const text = embeddedCorpus().text;
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const CHUNKS = 8;
  for (let c = 0; c < CHUNKS; c++) {
    const lines: string[] = [];
    let bytes = 0;
    while (bytes < (mb * 1e6) / CHUNKS) {
      const len = 1000 + Math.floor(rand() * 7000);
      const at = Math.floor(rand() * (text.length - len));
      const line = JSON.stringify({ text: text.slice(at, at + len), meta: { redpajama_set_name: 'RedPajamaGithub' } });
      lines.push(line);
      bytes += line.length + 1;
    }
    const plain = join(dir, `chunk_${c}.jsonl`);
    writeFileSync(plain, lines.join('\n') + '\n');
    try {
      execFileSync('zstd', ['-q', '-3', '--rm', plain, '-o', `${plain}.zst`]);
    } catch {
      // no zstd tool: the plain jsonl stays
    }
  }
  return dir;
}

const work = mkdtempSync(join(tmpdir(), 'ls-bench-prepare-'));
try {
  const mb = Number(arg('mb') ?? 64);
  const vocab = Number(arg('vocab') ?? 8192);
  const given = inputsArgs();
  const inputs = given.length > 0 ? given : [syntheticCorpus(join(work, 'corpus'), mb)];
  const quiet = { onStatus: () => {}, onWarning: () => {} };
  const t0 = performance.now();
  // The tokenizer: trained on the first 8 MB of text (prepare writes tokenizer.json first).
  const tokRun = await prepare({ inputs, out: join(work, 'tokenizer-run'), vocabSize: vocab, tokenizerTrainBytes: 8e6, workers: availableParallelism(), ...quiet });
  const tokenizer = join(tokRun.dir, 'tokenizer.json');
  process.stdout.write(`# ${cpuModel()}; inputs ${inputs.join(', ')}; tokenizer trained + first pass ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write('workers  text MB  seconds  MB/s  MB/s per worker  Mtokens/s\n');
  for (const workers of [1, availableParallelism()]) {
    const r = await prepare({ inputs, out: join(work, `w${workers}`), tokenizer, workers, ...quiet });
    const mbs = r.textBytes / 1e6 / r.seconds;
    process.stdout.write(
      `${String(workers).padStart(7)}  ${(r.textBytes / 1e6).toFixed(1).padStart(7)}  ${r.seconds.toFixed(2).padStart(7)}  ` +
        `${mbs.toFixed(2).padStart(4)}  ${(mbs / workers).toFixed(2).padStart(15)}  ${(r.tokens / 1e6 / r.seconds).toFixed(2).padStart(9)}\n`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
