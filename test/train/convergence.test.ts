// Training on the embedded corpus must learn more than token frequencies: after 200 steps the
// validation loss of the nano model must fall well below the unigram cross-entropy of the
// validation text, which is the best any model ignoring context (a broken attention or MLP
// backward, say) can reach.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/load.js';
import { resolveData } from '../../src/data/source.js';
import { splitTokens } from '../data/tokens.js';
import { train } from '../../src/train/trainer.js';

test('200 steps on the embedded corpus beat the unigram baseline by a wide margin', async () => {
  const tmp = mkdtempSync(join(os.tmpdir(), 'litespark-conv-'));
  process.env.LITESPARK_CACHE_DIR = join(tmp, 'cache');
  const config = resolveConfig({
    preset: 'nano',
    overrides: { 'train.steps': 200, 'train.sample_tokens': 0, 'data.max_bytes': 600_000, 'runtime.out': join(tmp, 'run'), 'runtime.threads': 2 },
  });
  const s = await train(config);

  // The same prepared data (a cache hit): unigram counts from the train split, scored on val.
  const data = await resolveData({
    source: 'embedded', vocabSize: config.data.tokenizer_vocab_size, valFraction: config.data.val_fraction,
    maxBytes: 600_000, cacheDir: join(tmp, 'cache'),
  });
  const trainTokens = splitTokens(data.dir, data.index, 'train');
  const val = splitTokens(data.dir, data.index, 'val');
  const counts = new Float64Array(config.model.vocab_size).fill(0.5); // add-half smoothing
  for (const t of trainTokens) counts[t]! += 1;
  const total = counts.reduce((a, b) => a + b, 0);
  let unigram = 0;
  for (const t of val) unigram -= Math.log(counts[t]! / total);
  unigram /= val.length;

  process.stdout.write(`# nano 200 steps: val ${s.initialValLoss.toFixed(3)} -> ${s.finalValLoss.toFixed(3)}, unigram ${unigram.toFixed(3)}, ${s.seconds.toFixed(1)} s\n`);
  assert.equal(s.steps, 200);
  assert.ok(s.initialValLoss > Math.log(config.model.vocab_size) - 0.3, `initial loss ${s.initialValLoss} should be near ln(V)`);
  assert.ok(s.finalValLoss < unigram - 0.5, `final val loss ${s.finalValLoss.toFixed(3)} vs unigram ${unigram.toFixed(3)}`);
});
