// `litespark generate` and `litespark eval` as a user runs them, on a Hugging Face-style
// checkpoint directory written here (config.json, tokenizer.json, model.safetensors): the
// streamed text is what generateText writes in-process, eval's loss is evaluateSplit's, and bad
// input (a prompt longer than the context, another tokenizer's data, bad flags) exits 2.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '../../src/checkpoint/safetensors.js';
import { toHfLlamaConfig } from '../../src/config/load.js';
import { parseModelConfig } from '../../src/config/schema.js';
import { prepare } from '../../src/data/prepare.js';
import { openPrepared } from '../../src/data/source.js';
import { KvDecoder } from '../../src/infer/decoder.js';
import { evaluateSplit } from '../../src/infer/eval.js';
import { generateText } from '../../src/infer/generate.js';
import { native } from '../../src/kernels/native.js';
import { LlamaModel } from '../../src/model/llama.js';
import { assertClose } from '../helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/litespark.js', import.meta.url));
const root = mkdtempSync(join(os.tmpdir(), 'ls-infer-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const mc = parseModelConfig({
  vocab_size: 300, hidden_size: 48, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 6,
  num_key_value_heads: 2, max_position_embeddings: 48, initializer_range: 0.2,
});

/** A data directory of a trained tokenizer, and a checkpoint with random weights and that tokenizer. */
async function setup() {
  const text = join(root, 'docs.jsonl');
  writeFileSync(text, Array.from({ length: 200 }, (_, i) => JSON.stringify({ text: `note ${i}: ${'the cat sat on the mat. '.repeat(1 + (i % 7))}` })).join('\n'));
  const data = join(root, 'data');
  await prepare({ inputs: [text], out: data, vocabSize: 300, valFraction: 0.2, workers: 0, onStatus: () => {} });
  const tokenizer = openPrepared(data, 'x').tokenizer;
  const model = new LlamaModel(mc, 'f32', 'litespark');
  model.params.init(5);
  const ckpt = join(root, 'ckpt');
  mkdirSync(ckpt);
  writeFileSync(join(ckpt, 'config.json'), JSON.stringify(toHfLlamaConfig(mc, { bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId })));
  copyFileSync(join(data, 'tokenizer.json'), join(ckpt, 'tokenizer.json'));
  writeSafetensors(join(ckpt, 'model.safetensors'), model.params.specs.map((s) => ({
    name: s.name, dtype: 'F32', shape: [...s.shape], data: model.params.get(s.name).data,
  })));
  return { data, ckpt, model, tokenizer };
}
const ready = setup();

test('generate streams what generateText writes (greedy), and its counts and speed to stderr', async () => {
  const { ckpt, model, tokenizer } = await ready;
  const r = cli(['generate', ckpt, '--prompt', 'the cat', '--max-tokens', '20', '--temperature', '0', '--threads', '1']);
  assert.equal(r.code, 0, r.err);
  const want = generateText(new KvDecoder(model, mc.max_position_embeddings), tokenizer, 'the cat',
    { maxTokens: 20, temperature: 0, topK: 40, topP: 0.95, seed: 0 });
  assert.equal(r.out, want.text);
  assert.match(r.err, new RegExp(`prompt ${tokenizer.encode('the cat').length} tokens, generated ${want.ids.length} `));
  assert.match(r.err, /tokens\/s/);
  // sampled: the same seed gives the same text
  const a = cli(['generate', ckpt, '--prompt', 'the', '--max-tokens', '15', '--seed', '7']);
  const b = cli(['generate', ckpt, '--prompt', 'the', '--max-tokens', '15', '--seed', '7']);
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, b.out);
});

test('generate: a prompt longer than max_position_embeddings and bad flags exit 2 naming them', async () => {
  const { ckpt } = await ready;
  const long = cli(['generate', ckpt, '--prompt', 'the cat sat on the mat. '.repeat(40)]);
  assert.equal(long.code, 2, long.err);
  assert.match(long.err, /longer than the model's 48 positions/);
  for (const [flag, value, msg] of [['--top-p', '0', /--top-p/], ['--temperature', '-1', /--temperature/], ['--top-k', '1.5', /--top-k/], ['--stop-id', 'x', /--stop-id/]] as const) {
    const r = cli(['generate', ckpt, '--prompt', 'a', flag, value]);
    assert.equal(r.code, 2, `${flag} ${value}: ${r.err}`);
    assert.match(r.err, msg);
  }
});

test('eval --json reports the loss evaluateSplit computes on the same batches; perplexity = exp(loss)', async () => {
  const { ckpt, data, model } = await ready;
  const r = cli(['eval', ckpt, '--data', data, '--batches', '3', '--batch', '2', '--seq-len', '16', '--json']);
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out) as { loss: number; perplexity: number; tokens: number; batches: number };
  const want = evaluateSplit(model, { dataDir: data, split: 'val', seqLen: 16, batch: 2, batches: 3 });
  assert.equal(got.tokens, 3 * 2 * 16);
  assertClose([got.loss], [want.loss], { atol: 1e-6, rtol: 1e-6 }, 'loss');
  assertClose([got.perplexity], [Math.exp(got.loss)], { atol: 0, rtol: 1e-12 }, 'perplexity');
  const text = cli(['eval', ckpt, '--data', data, '--batches', '2']);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /loss {8}\d+\.\d{4}/);
  assert.match(text.out, /perplexity {2}\d/);
  assert.match(text.out, /tokens\/s/);
});

test('eval --dtype bf16 is the bf16 model\'s loss on the same batches and names its unit; a Hugging Face directory defaults to fp32', async () => {
  const { ckpt, data, model } = await ready;
  const run = (dtype?: string) => {
    const r = cli(['eval', ckpt, '--data', data, '--batches', '3', '--batch', '2', '--seq-len', '16', '--json', ...(dtype ? ['--dtype', dtype] : [])]);
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out) as { loss: number; dtype: string; matmulUnit: string };
  };
  const opts = { dataDir: data, split: 'val' as const, seqLen: 16, batch: 2, batches: 3 };
  const bf16 = new LlamaModel(mc, 'f32', 'litespark', 'bf16');
  bf16.params.flat.data.set(model.params.flat.data);
  const want = evaluateSplit(bf16, opts).loss;
  const fp32 = evaluateSplit(model, opts).loss;
  const got = run('bf16');
  assert.equal(got.dtype, 'bf16');
  assert.equal(got.matmulUnit, native.bf16Unit());
  assertClose([got.loss], [want], { atol: 1e-6, rtol: 1e-6 }, 'bf16 loss');
  // bf16 operands change the loss, by far less than the loss itself
  assert.notEqual(want, fp32);
  assertClose([want], [fp32], { atol: 0, rtol: 2e-2 }, 'bf16 against fp32');
  const dflt = run();
  assert.equal(dflt.dtype, 'fp32');
  assert.equal(dflt.matmulUnit, 'fp32');
  assertClose([dflt.loss], [fp32], { atol: 1e-6, rtol: 1e-6 }, 'default (fp32) loss');
  const text = cli(['eval', ckpt, '--data', data, '--batches', '1', '--dtype', 'bf16']);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /bf16 on (AMX|AVX-512 BF16|fp32 FMA)/);
  assert.equal(cli(['eval', ckpt, '--data', data, '--dtype', 'fp16']).code, 2);
});

test('eval refuses data prepared with another tokenizer, naming both', async () => {
  const { ckpt } = await ready;
  const other = join(root, 'other.txt');
  writeFileSync(other, 'completely different words here, and more of them. '.repeat(200));
  const dir = join(root, 'other-data');
  await prepare({ inputs: [other], out: dir, vocabSize: 280, valFraction: 0.2, workers: 0, onStatus: () => {} });
  const r = cli(['eval', ckpt, '--data', dir]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /different tokenizer/);
  assert.match(r.err, new RegExp(ckpt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
});
