// The config contract: every preset validates, bad input fails with a ConfigError naming the
// field path, and preset <- file <- overrides merge in that order.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, parseOverride, resolveConfig, toHfLlamaConfig } from '../../src/config/load.js';
import { PRESET_NAMES } from '../../src/config/presets.js';

const dir = mkdtempSync(join(tmpdir(), 'litespark-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Asserts resolveConfig(opts) throws a ConfigError whose message contains every `parts`. */
function rejects(opts: Parameters<typeof resolveConfig>[0], ...parts: string[]): ConfigError {
  let err: unknown;
  try {
    resolveConfig(opts);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
  for (const p of parts) assert.ok(err.message.includes(p), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(p)}`);
  return err;
}

describe('presets', () => {
  test('every preset validates', () => {
    for (const name of PRESET_NAMES) {
      const c = resolveConfig({ preset: name });
      assert.ok(c.model.hidden_size % c.model.num_attention_heads === 0, name);
      assert.ok(c.train.seq_len <= c.model.max_position_embeddings, name);
      assert.ok(c.runtime.out.startsWith(`runs/${name}-`), name);
    }
  });

  test('the list holds the documented names', () => {
    for (const name of ['demo', 'nano', 'micro', 'small', 'bench-xs', 'bench-s', 'bench-l',
      'llama-1b', 'llama-3b', 'llama-8b', 'llama-30b', 'llama-70b']) {
      assert.ok(PRESET_NAMES.includes(name as never), name);
    }
  });

  test('demo is the default', () => {
    assert.deepEqual(resolveConfig({}).model, resolveConfig({ preset: 'demo' }).model);
  });

  test('bench presets are exactly the BENCH.md rows', () => {
    // name: dim, layers, heads, kv heads, ffn, vocab, seq, batch
    const rows: Record<string, number[]> = {
      'bench-xs': [256, 4, 4, 2, 768, 8192, 256, 8],
      'bench-s': [512, 8, 8, 4, 1536, 32000, 512, 4],
      'bench-l': [512, 4, 8, 4, 1536, 32000, 2048, 1],
    };
    for (const [name, row] of Object.entries(rows)) {
      const { model: m, train: t } = resolveConfig({ preset: name });
      assert.deepEqual([m.hidden_size, m.num_hidden_layers, m.num_attention_heads, m.num_key_value_heads,
        m.intermediate_size, m.vocab_size, t.seq_len, t.micro_batch_size], row, name);
      assert.equal(m.tie_word_embeddings, false, `${name}: BENCH.md heads are untied`);
      assert.equal(t.grad_accum_steps, 1, name);
    }
  });

  test('real Llama shapes', () => {
    const shape = (n: string) => {
      const m = resolveConfig({ preset: n }).model;
      return [m.hidden_size, m.num_hidden_layers, m.num_attention_heads, m.num_key_value_heads,
        m.intermediate_size, m.vocab_size, m.rope_theta, m.tie_word_embeddings];
    };
    assert.deepEqual(shape('llama-1b'), [2048, 16, 32, 8, 8192, 128256, 500000, true]);
    assert.deepEqual(shape('llama-3b'), [3072, 28, 24, 8, 8192, 128256, 500000, true]);
    assert.deepEqual(shape('llama-8b'), [4096, 32, 32, 8, 14336, 128256, 500000, false]);
    assert.deepEqual(shape('llama-30b'), [6656, 60, 52, 52, 17920, 32000, 10000, false]);
    assert.deepEqual(shape('llama-70b'), [8192, 80, 64, 8, 28672, 128256, 500000, false]);
    assert.equal(resolveConfig({ preset: 'llama-30b' }).model.max_position_embeddings, 2048);
  });
});

describe('defaults', () => {
  test('filled in from the schema', () => {
    const c = resolveConfig({ preset: 'nano' });
    assert.equal(c.model.rms_norm_eps, 1e-5);
    assert.equal(c.model.rope_theta, 10000);
    assert.equal(c.model.tie_word_embeddings, false);
    assert.equal(c.train.grad_accum_steps, 1);
    assert.equal(c.train.grad_clip, 1.0);
    assert.equal(c.train.seed, 1337);
    assert.equal(c.train.sample_tokens, 64);
    assert.equal(c.data.source, 'embedded');
    assert.equal(c.data.val_fraction, 0.05);
    assert.equal(c.runtime.threads, 0);
    assert.equal(c.runtime.kernels, 'litespark');
    assert.equal(c.runtime.dtype, 'fp32');
  });

  test('min_lr defaults to lr / 10, an explicit one is kept', () => {
    assert.equal(resolveConfig({ overrides: { 'train.lr': 2e-3 } }).train.min_lr, 2e-3 / 10);
    assert.equal(resolveConfig({ overrides: { 'train.min_lr': 0 } }).train.min_lr, 0);
  });

  test('runtime.out defaults to runs/<preset>-<timestamp>', () => {
    const c = resolveConfig({ preset: 'micro', now: new Date(2025, 0, 2, 3, 4, 5) });
    assert.equal(c.runtime.out, 'runs/micro-20250102-030405');
    assert.equal(resolveConfig({ overrides: { 'runtime.out': 'x/y' } }).runtime.out, 'x/y');
  });
});

describe('merge order: preset <- file <- overrides', () => {
  test('JSON file over preset, overrides over both', () => {
    const f = file('a.json', JSON.stringify({ train: { steps: 7, lr: 1e-3 }, model: { num_hidden_layers: 3 } }));
    const c = resolveConfig({ preset: 'nano', file: f, overrides: { 'train.steps': 9 } });
    assert.equal(c.train.steps, 9); // override beats file
    assert.equal(c.train.lr, 1e-3); // file beats preset
    assert.equal(c.model.num_hidden_layers, 3);
    assert.equal(c.model.hidden_size, 64); // untouched keys stay from the preset
    assert.equal(c.train.micro_batch_size, 8);
  });

  test('TOML file', () => {
    const f = file('b.toml', '[train]\nsteps = 11\nlr = 0.002\n\n[runtime]\nthreads = 1\n');
    const c = resolveConfig({ preset: 'nano', file: f });
    assert.equal(c.train.steps, 11);
    assert.equal(c.train.lr, 0.002);
    assert.equal(c.runtime.threads, 1);
  });

  test('undefined override values are skipped (unset CLI flags)', () => {
    assert.equal(resolveConfig({ preset: 'nano', overrides: { 'train.steps': undefined } }).train.steps, 100);
  });

  test('a resolved config re-loads as a file unchanged', () => {
    const c = resolveConfig({ preset: 'micro' });
    const f = file('resolved.json', JSON.stringify(c));
    assert.deepEqual(resolveConfig({ preset: 'nano', file: f }), c);
  });

  test('parseOverride types command-line values', () => {
    assert.deepEqual(parseOverride('train.lr=3e-3'), ['train.lr', 3e-3]);
    assert.deepEqual(parseOverride('model.tie_word_embeddings=true'), ['model.tie_word_embeddings', true]);
    assert.deepEqual(parseOverride('runtime.out=runs/x'), ['runtime.out', 'runs/x']);
    assert.throws(() => parseOverride('train.lr'), ConfigError);
  });
});

describe('bad input names the field', () => {
  test('unknown preset lists the known ones', () => {
    rejects({ preset: 'foo' }, "config: unknown preset 'foo'", 'known: demo, nano');
  });

  test('unknown keys, nested and top level', () => {
    rejects({ overrides: { 'model.hiden_size': 5 } }, "config: unknown key 'model.hiden_size'", "did you mean 'hidden_size'");
    rejects({ overrides: { 'trian.steps': 5 } }, "config: unknown key 'trian'");
    const f = file('typo.json', JSON.stringify({ data: { val_frac: 0.1 } }));
    rejects({ file: f }, "unknown key 'data.val_frac'");
  });

  test('numeric bounds', () => {
    rejects({ overrides: { 'train.lr': -1 } }, 'config: train.lr: must be > 0 (got -1)');
    rejects({ overrides: { 'train.steps': 0 } }, 'config: train.steps: must be >= 1 (got 0)');
    rejects({ overrides: { 'train.steps': 2.5 } }, 'config: train.steps: must be an integer (got 2.5)');
    rejects({ overrides: { 'train.steps': '10' } }, "config: train.steps: must be a number (got '10')");
    rejects({ overrides: { 'model.vocab_size': 1 } }, 'config: model.vocab_size: must be >= 2');
    rejects({ overrides: { 'train.beta2': 1 } }, 'config: train.beta2: must be < 1');
    rejects({ overrides: { 'data.val_fraction': 0 } }, 'config: data.val_fraction: must be > 0');
    rejects({ overrides: { 'data.val_fraction': 0.6 } }, 'config: data.val_fraction: must be <= 0.5');
    rejects({ overrides: { 'data.tokenizer_vocab_size': 100 } }, 'config: data.tokenizer_vocab_size: must be >= 260');
    rejects({ overrides: { 'train.seq_len': 1 } }, 'config: train.seq_len: must be >= 2');
    rejects({ overrides: { 'runtime.threads': -1 } }, 'config: runtime.threads: must be >= 0');
  });

  test('every problem is reported, one line each', () => {
    const e = rejects({ overrides: { 'train.lr': -1, 'train.steps': 0 } }, 'train.lr', 'train.steps');
    assert.equal(e.message.split('\n').length, 2);
    assert.deepEqual(e.issues.map((i) => i.path).sort(), ['train.lr', 'train.steps']);
  });

  test('head and kv-head divisibility, even head_dim', () => {
    rejects({ overrides: { 'model.hidden_size': 256, 'model.num_attention_heads': 8, 'model.num_key_value_heads': 3 } },
      'config: model.num_key_value_heads: must divide num_attention_heads (8 % 3 != 0)');
    rejects({ overrides: { 'model.hidden_size': 200, 'model.num_attention_heads': 6 } },
      'config: model.num_attention_heads: must divide hidden_size (200 % 6 != 0)');
    rejects({ overrides: { 'model.hidden_size': 90, 'model.num_attention_heads': 6, 'model.num_key_value_heads': 2 } },
      'config: model.hidden_size: head_dim', 'must be even');
  });

  test('cross-section bounds', () => {
    rejects({ overrides: { 'train.seq_len': 256 } }, 'config: train.seq_len: must be <= model.max_position_embeddings (256 > 128)');
    rejects({ overrides: { 'data.tokenizer_vocab_size': 8192 } }, 'config: data.tokenizer_vocab_size: must be <= model.vocab_size');
    rejects({ overrides: { 'train.lr': 1e-3, 'train.min_lr': 2e-3 } }, 'config: train.min_lr: must be <= lr');
  });

  test("kernels 'litespark' and 'standard', dtypes 'fp32' and 'bf16'; anything else is named", () => {
    assert.equal(resolveConfig({ overrides: { 'runtime.kernels': 'litespark' } }).runtime.kernels, 'litespark');
    assert.equal(resolveConfig({ overrides: { 'runtime.kernels': 'standard' } }).runtime.kernels, 'standard');
    assert.equal(resolveConfig({ overrides: { 'runtime.dtype': 'bf16' } }).runtime.dtype, 'bf16');
    rejects({ overrides: { 'runtime.dtype': 'fp16' } }, "config: runtime.dtype: must be one of 'fp32', 'bf16' (got 'fp16')");
    rejects({ overrides: { 'runtime.kernels': 'fast' } }, "config: runtime.kernels: must be one of 'litespark', 'standard' (got 'fast')");
  });

  test("recompute 'none' (default), 'selective' and 'full' on both kernel paths; anything else is named", () => {
    assert.equal(resolveConfig().runtime.recompute, 'none');
    for (const kernels of ['litespark', 'standard']) {
      for (const mode of ['none', 'selective', 'full']) {
        assert.equal(resolveConfig({ overrides: { 'runtime.kernels': kernels, 'runtime.recompute': mode } }).runtime.recompute, mode);
      }
    }
    rejects({ overrides: { 'runtime.recompute': 'partial' } }, "config: runtime.recompute: must be one of 'none', 'selective', 'full' (got 'partial')");
    rejects({ overrides: { 'runtime.recompute': true } }, 'config: runtime.recompute: must be one of');
  });

  test('wrong types of sections and override paths', () => {
    rejects({ overrides: { train: 5 } }, 'config: train: must be an object');
    rejects({ overrides: { 'train.steps.x': 1 } }, 'config: train.steps:');
    rejects({ overrides: { 'train..steps': 1 } }, "override 'train..steps'");
  });

  test('config files: missing, not JSON, not TOML, not an object', () => {
    rejects({ file: join(dir, 'missing.json') }, 'missing.json', 'no such file');
    rejects({ file: file('bad.json', '{ "train": ') }, 'bad.json', 'not valid JSON');
    rejects({ file: file('bad.toml', '[train\nsteps = ') }, 'bad.toml', 'not valid TOML');
    rejects({ file: file('array.json', '[1, 2]') }, 'array.json', 'must hold an object');
  });
});

describe('toHfLlamaConfig', () => {
  test('Hugging Face LlamaConfig fields', () => {
    const m = resolveConfig({ preset: 'llama-1b' }).model;
    const hf = toHfLlamaConfig(m);
    assert.deepEqual(hf.architectures, ['LlamaForCausalLM']);
    assert.equal(hf.model_type, 'llama');
    assert.equal(hf.hidden_act, 'silu');
    assert.equal(hf.head_dim, 64);
    assert.equal(hf.torch_dtype, 'float32');
    for (const k of ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads',
      'num_key_value_heads', 'max_position_embeddings', 'rms_norm_eps', 'rope_theta', 'tie_word_embeddings',
      'initializer_range'] as const) {
      assert.equal(hf[k], m[k], k);
    }
    assert.equal(toHfLlamaConfig(m, { torch_dtype: 'bfloat16', eos_token_id: 2 }).torch_dtype, 'bfloat16');
    assert.doesNotThrow(() => JSON.stringify(hf));
  });
});
