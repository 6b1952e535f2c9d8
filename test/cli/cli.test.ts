// The command line as a user meets it: bad input gets a message naming the field and exit 2;
// a tiny training run writes its run directory and a falling loss.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/litespark.js', import.meta.url));
const tmp = mkdtempSync(join(os.tmpdir(), 'litespark-cli-'));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LITESPARK_CACHE_DIR: join(tmp, 'cache') },
    timeout: 240_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const BAD: Array<[string, string[], RegExp]> = [
  ['an unknown preset', ['train', '--preset', 'llama-9000'], /unknown preset 'llama-9000'/],
  ['a negative learning rate', ['train', '--set', 'train.lr=-0.1'], /train\.lr/],
  ['heads not dividing the width', ['train', '--set', 'model.num_attention_heads=7'], /model\.num_attention_heads/],
  ['kv heads not dividing the heads', ['train', '--set', 'model.num_key_value_heads=4'], /model\.num_key_value_heads/],
  ['an unknown config key', ['train', '--set', 'model.hiden_size=3'], /hiden_size/],
  ['an unknown command-line flag', ['train', '--stepz', '3'], /unknown option '--stepz'/],
  ['a non-integer step count', ['train', '--steps', '2.5'], /--steps must be an integer/],
  ['a negative --watts', ['train', '--watts', '-5'], /--watts must be a number >= 0/],
  ['a missing config file', ['train', '--config', join(tmp, 'nope.json')], /nope\.json/],
  ['a missing data path', ['train', '--preset', 'nano', '--data', join(tmp, 'no-such-corpus')], /no-such-corpus/],
];

for (const [what, args, message] of BAD) {
  test(`bad input: ${what} -> exit 2 and a message naming it`, () => {
    const r = cli(args);
    assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.err}`);
    assert.match(r.err, message);
  });
}

test('a config file that is not JSON names the file', () => {
  const f = join(tmp, 'broken.json');
  writeFileSync(f, '{ "train": { "steps": 3, }');
  const r = cli(['train', '--config', f]);
  assert.equal(r.code, 2);
  assert.match(r.err, /broken\.json/);
});

test('train --preset nano writes config.json, metrics.jsonl and summary.json, and the loss falls', () => {
  const out = join(tmp, 'run');
  const r = cli(['train', '--preset', 'nano', '--steps', '40', '--out', out, '--set', 'train.sample_tokens=8', '--set', 'data.max_bytes=400000']);
  assert.equal(r.code, 0, `stderr: ${r.err}\nstdout: ${r.out}`);
  assert.match(r.out, /MFU/);
  assert.match(r.out, /validation \d+\.\d+ before -> \d+\.\d+ after/);
  for (const f of ['config.json', 'metrics.jsonl', 'summary.json', 'tokenizer.json']) assert.ok(existsSync(join(out, f)), f);
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(cfg.train.steps, 40);
  assert.equal(cfg.hf_config.architectures[0], 'LlamaForCausalLM');
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const steps = lines.filter((l) => typeof l.loss === 'number');
  assert.ok(steps.length >= 4);
  for (const k of ['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'mfu', 'joules_per_token', 'energy_source']) assert.ok(k in steps[0], k);
  assert.match(steps[0].energy_source, /^(measured|estimated): /);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  // energy, labelled, at the start and the end of the run
  assert.match(r.out, /^ {2}energy {4}(measured|estimated): /m);
  assert.match(r.out, /^ {2}energy {4}(measured|estimated) [\d.]+ [kM]?J, [\d.e+-]+ J\/token, .* g CO2e at 480 g\/kWh$/m);
  assert.ok(summary.energy.joules > 0 && summary.energy.co2eGrams > 0);
  assert.ok(summary.finalValLoss < summary.initialValLoss - 0.5, `val loss ${summary.initialValLoss} -> ${summary.finalValLoss}`);
});

test('peak --threads 1 prints the fp32 FMA peak and every bf16 unit; --json reads them back from the cache', () => {
  const r = cli(['peak', '--threads', '1']);
  assert.equal(r.code, 0, `stderr: ${r.err}`);
  assert.match(r.out, /fp32 FMA peak on the \w+ path/);
  assert.match(r.out, /bf16 peak on the fp32 unit/); // every machine has the fp32 unit
  assert.match(r.out, /bf16 training runs on the (amx|avx512bf16|fp32) unit/);
  assert.equal(r.out.split('\n').filter((l) => l.includes('<- bf16 training uses this unit')).length, 1, r.out);
  const j = cli(['peak', '--threads', '1', '--json']);
  assert.equal(j.code, 0, `stderr: ${j.err}`);
  const report = JSON.parse(j.out);
  assert.ok(report.bf16.units.includes(report.bf16.trainingUnit));
  assert.ok(report.bf16.units.includes('fp32'));
  assert.equal(report.bf16.trainingUnit, report.bf16.units[0], 'training uses the default (first) unit');
  assert.equal(report.bf16.units.includes('amx'), report.bf16.amxUnavailable === null);
  if (report.bf16.amxUnavailable) assert.ok(r.out.includes(`AMX: not available: ${report.bf16.amxUnavailable}`), r.out);
  for (const unit of report.bf16.units) {
    assert.match(r.out, new RegExp(`bf16 peak on the ${unit} unit`));
    const [row] = report.bf16.peaks[unit];
    assert.ok(Number.isFinite(row.gflops) && row.gflops > 0, `${unit}: ${row.gflops}`);
    assert.equal(row.cached, true, `${unit}: measured again instead of read from the cache`);
  }
});

test('prepare: jsonl to shards with a progress summary; a re-run is a no-op; train --data trains on them', () => {
  const inputs = join(tmp, 'corpus.jsonl');
  const words = 'the quick brown fox jumps over the lazy dog while seven wizards quietly hex jolly boxing frogs'.split(' ');
  const lines: string[] = [];
  for (let i = 0; i < 600; i++) {
    const doc = Array.from({ length: 40 + (i % 50) }, (_, j) => words[(i * 7 + j * 13) % words.length]).join(' ');
    lines.push(JSON.stringify({ text: `Document ${i}: ${doc}.` }));
  }
  lines.splice(10, 0, 'this line is not json');
  writeFileSync(inputs, lines.join('\n') + '\n');
  const data = join(tmp, 'prepared');
  const r = cli(['prepare', inputs, '--out', data, '--vocab-size', '300', '--val-fraction', '0.05']);
  assert.equal(r.code, 0, `stderr: ${r.err}\nstdout: ${r.out}`);
  assert.match(r.out, /prepared .* \(1 units, 0 already done\)/);
  assert.match(r.out, /MB\/s of text/);
  assert.match(r.out, /skipped +1 lines/);
  assert.match(r.err, /corpus\.jsonl:11: not JSON/);
  for (const f of ['index.json', 'tokenizer.json']) assert.ok(existsSync(join(data, f)), f);
  const again = cli(['prepare', inputs, '--out', data, '--vocab-size', '300', '--val-fraction', '0.05']);
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, /nothing to do/);

  const out = join(tmp, 'run-prepared');
  const t = cli(['train', '--preset', 'nano', '--steps', '30', '--data', data, '--out', out, '--set', 'train.sample_tokens=0']);
  assert.equal(t.code, 0, `stderr: ${t.err}\nstdout: ${t.out}`);
  assert.match(t.out, /prepared data /);
  assert.equal(readFileSync(join(out, 'tokenizer.json'), 'utf8'), readFileSync(join(data, 'tokenizer.json'), 'utf8'));
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.ok(summary.finalValLoss < summary.initialValLoss - 1, `val loss ${summary.initialValLoss} -> ${summary.finalValLoss}`);
  assert.equal(summary.dataCursor.batches, 30 * 1);
});

test('prepare: bad input exits 2 naming the file; a damaged shard stops train naming the shard', () => {
  const none = cli(['prepare', join(tmp, 'missing.jsonl'), '--out', join(tmp, 'p2'), '--vocab-size', '300']);
  assert.equal(none.code, 2);
  assert.match(none.err, /missing\.jsonl: no such file/);
  const noTok = cli(['prepare', join(tmp, 'corpus.jsonl'), '--out', join(tmp, 'p3')]);
  assert.equal(noTok.code, 2);
  assert.match(noTok.err, /--tokenizer .*--vocab-size/);

  const data = join(tmp, 'prepared');
  const index = JSON.parse(readFileSync(join(data, 'index.json'), 'utf8'));
  const shard = join(data, index.splits.train.shards[0].file);
  const bytes = readFileSync(shard);
  writeFileSync(shard, bytes.subarray(0, bytes.length - 7));
  const t = cli(['train', '--preset', 'nano', '--steps', '2', '--data', data, '--out', join(tmp, 'run-bad')]);
  assert.equal(t.code, 2, `stderr: ${t.err}`);
  assert.ok(t.err.includes(index.splits.train.shards[0].file), t.err);
  assert.match(t.err, /truncated/);
  // A flipped token byte: the CRC check at the start of the run names the shard and both values.
  const flipped = Buffer.from(bytes);
  flipped[100] ^= 0x01;
  writeFileSync(shard, flipped);
  const c = cli(['train', '--preset', 'nano', '--steps', '2', '--data', data, '--out', join(tmp, 'run-bad2')]);
  assert.equal(c.code, 2, `stderr: ${c.err}`);
  assert.ok(c.err.includes(index.splits.train.shards[0].file), c.err);
  assert.match(c.err, /crc/i);
  writeFileSync(shard, bytes);
});

test('train saves checkpoints; --resume latest continues the run; export writes a Hugging Face directory', () => {
  const out = join(tmp, 'run-ckpt');
  const common = ['--preset', 'nano', '--set', 'train.sample_tokens=0', '--set', 'data.max_bytes=200000', '--set', 'train.log_every=1'];
  const a = cli(['train', ...common, '--steps', '6', '--out', out, '--set', 'train.checkpoint_every=3']);
  assert.equal(a.code, 0, `stderr: ${a.err}\nstdout: ${a.out}`);
  assert.match(a.out, /checkpoint .*step-00000006 \(step 6/);
  assert.ok(existsSync(join(out, 'checkpoints', 'step-00000003', 'manifest.json')));
  const b = cli(['train', '--resume', 'latest', '--out', out, '--steps', '9']);
  assert.equal(b.code, 0, `stderr: ${b.err}\nstdout: ${b.out}`);
  assert.match(b.out, /resumed +at step 6/);
  const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => typeof l.loss === 'number').map((l) => l.step);
  assert.deepEqual(steps.slice(-3), [7, 8, 9]);
  const done = cli(['train', '--resume', out, '--out', out]);
  assert.equal(done.code, 2);
  assert.match(done.err, /at step 9, the run ends at train\.steps = 9; raise --steps/);
  const exported = join(tmp, 'exported');
  const e = cli(['export', out, '--out', exported, '--dtype', 'bf16']);
  assert.equal(e.code, 0, e.err);
  assert.match(e.out, /step-00000009 -> /);
  const cfg = JSON.parse(readFileSync(join(exported, 'config.json'), 'utf8'));
  assert.equal(cfg.torch_dtype, 'bfloat16');
  assert.equal(existsSync(join(exported, 'trainer_state')), false);
  const noState = cli(['train', '--resume', exported]);
  assert.equal(noState.code, 2);
  assert.match(noState.err, /no trainer_state/);
});
