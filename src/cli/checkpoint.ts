// `litespark import` and `litespark export`: between Hugging Face Llama directories and
// litespark checkpoints (both are the same layout; see src/checkpoint/checkpoint.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, loadModel, resolveCheckpoint, saveCheckpoint } from '../checkpoint/checkpoint.js';
import { fmtBytes, fmtCount } from './format.js';

const say = (line = '') => process.stdout.write(line + '\n');

function refuseExisting(out: string): void {
  if (existsSync(out)) throw new CheckpointError(`${out}: already exists; choose a new directory (nothing was written)`);
}

function write(from: string, out: string, dtype: 'fp32' | 'bf16', what: string): void {
  refuseExisting(out);
  const m = loadModel(from, { verify: 'full' });
  const manifest = saveCheckpoint(out, {
    config: m.config,
    params: m.model.params,
    tokenizer: m.tokenizer,
    tokenizerPath: join(from, 'tokenizer.json'),
    dtype,
  });
  const bytes = manifest.files.reduce((s, f) => s + f.bytes, 0);
  const c = m.config.model;
  say(`${what} ${from} -> ${out}`);
  say(
    `  model     Llama ${fmtCount(m.model.params.count())} params: ${c.num_hidden_layers} layers, hidden ${c.hidden_size}, ` +
      `${c.num_attention_heads} heads / ${c.num_key_value_heads} kv, ffn ${c.intermediate_size}, vocab ${c.vocab_size}`,
  );
  say(`  files     ${manifest.files.map((f) => f.path).join(', ')}, ${MANIFEST} (${fmtBytes(bytes)}, weights ${dtype})`);
  say(`  tokens    bos ${m.tokenizer.bosId}, eos ${m.tokenizer.eosId}, pad ${m.tokenizer.padId} (config.json, generation_config.json and the tokenizer agree)`);
}

const MANIFEST = 'manifest.json';

/** A Hugging Face Llama directory -> a litespark checkpoint (fp32 master weights by default). */
export async function importCommand(hfDir: string, opts: { out: string; dtype?: 'fp32' | 'bf16' }): Promise<number> {
  write(hfDir, opts.out, opts.dtype ?? 'fp32', 'imported');
  say(`  next      litespark train --init ${opts.out} --data DATA_DIR   (data prepared with --tokenizer ${join(opts.out, 'tokenizer.json')})`);
  return 0;
}

/** A checkpoint (or a run directory's newest good one) -> a clean inference checkpoint. */
export async function exportCommand(path: string, opts: { out: string; dtype?: 'fp32' | 'bf16' }): Promise<number> {
  write(resolveCheckpoint(path), opts.out, opts.dtype ?? 'fp32', 'exported');
  return 0;
}
