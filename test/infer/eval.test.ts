// Evaluation on a prepared split: the loss is the mean of the model's own forward loss over the
// same batches (read in order, no shuffle); a data directory of another tokenizer is refused.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataError } from '../../src/data/errors.js';
import { PackedLoader } from '../../src/data/loader.js';
import { prepare } from '../../src/data/prepare.js';
import { openPrepared } from '../../src/data/source.js';
import { BpeTokenizer } from '../../src/data/tokenizer.js';
import { checkSameTokenizer, evaluateSplit } from '../../src/infer/eval.js';
import { LlamaModel } from '../../src/model/llama.js';
import type { LlamaConfig } from '../../src/model/params.js';
import { assertClose } from '../helpers.js';

const root = mkdtempSync(join(tmpdir(), 'ls-eval-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function prepared(): Promise<string> {
  const file = join(root, 'docs.jsonl');
  writeFileSync(file, Array.from({ length: 300 }, (_, i) => JSON.stringify({ text: `document ${i}: ${'the cat sat on the mat. '.repeat(1 + (i % 9))}` })).join('\n'));
  const out = join(root, 'data');
  await prepare({ inputs: [file], out, vocabSize: 300, valFraction: 0.2, workers: 0, onStatus: () => {} });
  return out;
}
const dataDir = prepared();

function model(kernels: 'standard' | 'litespark'): LlamaModel {
  const cfg: LlamaConfig = {
    vocab_size: 300, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4,
    num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, initializer_range: 0.1,
  };
  const m = new LlamaModel(cfg, 'f32', kernels);
  m.params.init(1);
  return m;
}

for (const kernels of ['standard', 'litespark'] as const) {
  test(`eval's loss is the mean forward loss over the split's first batches, in order (${kernels})`, async () => {
    const dir = await dataDir;
    const m = model(kernels);
    const T = 16, B = 3;
    const r = evaluateSplit(m, { dataDir: dir, split: 'val', seqLen: T, batch: B, batches: 4 });
    assert.equal(r.batches, 4);
    assert.equal(r.tokens, 4 * B * T);
    // the same batches by hand: the loader in order, the model's forward, summed loss / tokens
    const loader = PackedLoader.open({ dir, split: 'val', seqLen: T, batch: B, seed: 0, shuffle: false, worker: false });
    const buf = m.buffers(B, T);
    let sum = 0;
    for (let i = 0; i < 4; i++) {
      loader.next(buf.ids, buf.targets);
      sum += m.forward(buf);
    }
    loader.close();
    assertClose([r.loss], [sum / (4 * B * T)], { atol: 1e-7, rtol: 1e-7 }, 'mean loss');
    assertClose([r.perplexity], [Math.exp(r.loss)], { atol: 0, rtol: 1e-12 }, 'perplexity');
    assert.ok(r.loss > 0 && Number.isFinite(r.tokensPerSecond));
  });
}

test('eval without --batches takes every full batch of the split once; never more', async () => {
  const dir = await dataDir;
  const r = evaluateSplit(model('litespark'), { dataDir: dir, split: 'val', seqLen: 16, batch: 4 });
  assert.equal(r.batches, r.batchesInSplit);
  const loader = PackedLoader.open({ dir, split: 'val', seqLen: 16, batch: 4, seed: 0, shuffle: false, worker: false });
  assert.equal(r.batchesInSplit, Math.floor(loader.sequencesPerEpoch / 4));
  loader.close();
  assert.equal(evaluateSplit(model('litespark'), { dataDir: dir, split: 'val', seqLen: 16, batch: 4, batches: 10_000 }).batches, r.batchesInSplit);
});

test("a data directory prepared with another tokenizer is refused, naming both hashes", async () => {
  const dir = await dataDir;
  const own = openPrepared(dir, 'x').tokenizer;
  checkSameTokenizer(dir, { tokenizer: own, where: 'checkpoint c' });
  const other = BpeTokenizer.train(['some other text to learn from, some other text'], 280);
  assert.throws(() => checkSameTokenizer(dir, { tokenizer: other, where: 'checkpoint c' }), (e: unknown) =>
    e instanceof DataError && e.message.includes(own.hash().slice(0, 16)) && e.message.includes(other.hash().slice(0, 16)) &&
    e.message.includes('checkpoint c'));
});
