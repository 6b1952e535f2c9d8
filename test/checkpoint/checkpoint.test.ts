// Checkpoint directories: Hugging Face layout and ids, atomic saves under crashes and kills,
// rotation, integrity checks, sharded imports and byte-stable export, and every bad input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError,
  latestCheckpoint,
  listCheckpoints,
  loadModel,
  loadTrainerState,
  rotateCheckpoints,
  saveCheckpoint,
  stepDirName,
  verifyCheckpoint,
  type CrashPoint,
  type TrainerState,
} from '../../src/checkpoint/checkpoint.js';
import { SafetensorsFile, writeSafetensors, f32ToBf16Bytes } from '../../src/checkpoint/safetensors.js';
import { parseConfig, type Config } from '../../src/config/schema.js';
import { BpeTokenizer } from '../../src/data/tokenizer.js';
import { LlamaModel } from '../../src/model/llama.js';
import { ParamStore } from '../../src/model/params.js';

const root = mkdtempSync(join(tmpdir(), 'ls-ckpt-'));
after(() => rmSync(root, { recursive: true, force: true }));

const tokenizer = BpeTokenizer.train(['checkpoint test text, the quick brown fox, the lazy dog'], 300);
const tokenizerPath = join(root, 'tokenizer.json');
writeFileSync(tokenizerPath, JSON.stringify(tokenizer.toJSON()));

function config(over: Partial<Config['model']> = {}): Config {
  return parseConfig({
    model: {
      vocab_size: 320, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, ...over,
    },
    train: { steps: 10, micro_batch_size: 2, seq_len: 16, lr: 1e-3, warmup_steps: 0 },
    data: { tokenizer_vocab_size: 300 },
    runtime: { out: join(root, 'run') },
  });
}

function model(c: Config, seed: number): LlamaModel {
  const m = new LlamaModel(c.model, 'f32', 'litespark', 'fp32');
  m.params.init(seed);
  return m;
}

function flat(store: ParamStore): Float32Array {
  return Float32Array.from(store.flat.data.subarray(0, store.flat.numel));
}

function state(c: Config, step: number): TrainerState {
  return {
    format: 'litespark-trainer-state', version: 1, step, optimizer_step: step, tokens: step * 32, elapsed_s: 1.5,
    data_cursor: { kind: 'packed-v2', seed: 1, seqLen: 16, batch: 2, worldSize: 1, rank: 0, shuffle: true, batches: step, fingerprint: 'abc' } as never,
    rng: { init_seed: 1, sample_seed: 1 }, energy: { joules: null, source: 'none' }, last_val_loss: 3.5, config: c,
  };
}

function saveStep(parent: string, c: Config, m: LlamaModel, step: number, crashAt?: CrashPoint): string {
  const opt = { m: new ParamStore(c.model, 'f32'), v: new ParamStore(c.model, 'f32') };
  opt.m.init(100 + step);
  opt.v.init(200 + step);
  const dir = join(parent, stepDirName(step));
  saveCheckpoint(dir, { config: c, params: m.params, tokenizer, tokenizerPath, optimizer: opt, state: state(c, step) }, crashAt ? { crashAt } : {});
  return dir;
}

describe('checkpoint directory', () => {
  test('a Hugging Face layout whose files agree on BOS/EOS/PAD; parameters and optimizer state round-trip bit for bit', () => {
    const c = config();
    const m = model(c, 7);
    const dir = saveStep(join(root, 'a'), c, m, 3);
    for (const f of ['model.safetensors', 'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'manifest.json', 'trainer_state/optimizer.safetensors', 'trainer_state/trainer_state.json']) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    const hf = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(hf.architectures, ['LlamaForCausalLM']);
    assert.equal(hf.model_type, 'llama');
    for (const [k, v] of Object.entries({ hidden_size: 64, intermediate_size: 96, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, vocab_size: 320, max_position_embeddings: 64, tie_word_embeddings: false, torch_dtype: 'float32' })) {
      assert.equal(hf[k], v, k);
    }
    const gen = JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8'));
    const special = JSON.parse(readFileSync(join(dir, 'special_tokens_map.json'), 'utf8'));
    assert.deepEqual([hf.bos_token_id, hf.eos_token_id, hf.pad_token_id], [tokenizer.bosId, tokenizer.eosId, tokenizer.padId]);
    assert.deepEqual([gen.bos_token_id, gen.eos_token_id, gen.pad_token_id], [tokenizer.bosId, tokenizer.eosId, tokenizer.padId]);
    assert.deepEqual(special, { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', pad_token: '<|pad|>' });
    assert.deepEqual(readFileSync(join(dir, 'tokenizer.json')), readFileSync(tokenizerPath));

    // Hugging Face names and shapes, F32.
    const st = SafetensorsFile.open(join(dir, 'model.safetensors'));
    assert.deepEqual(st.tensors.get('model.layers.1.self_attn.k_proj.weight')!.shape, [32, 64]);
    assert.deepEqual(st.tensors.get('model.layers.0.mlp.gate_proj.weight')!.shape, [96, 64]);
    assert.equal(st.tensors.get('lm_head.weight')!.dtype, 'F32');
    assert.equal(st.tensors.size, 2 * 9 + 3);
    st.close();

    const loaded = loadModel(dir);
    assert.deepEqual(flat(loaded.model.params), flat(m.params));
    assert.deepEqual(loaded.generation, { bos_token_id: tokenizer.bosId, eos_token_id: tokenizer.eosId, pad_token_id: tokenizer.padId });
    assert.equal(loaded.config.train.seq_len, 16);
    const mm = new ParamStore(c.model, 'f32');
    const vv = new ParamStore(c.model, 'f32');
    const s = loadTrainerState(dir, mm, vv);
    assert.equal(s.step, 3);
    const want = new ParamStore(c.model, 'f32');
    want.init(103);
    assert.deepEqual(flat(mm), flat(want));
  });

  test("loadModel's precision: fp32 by default, the trainer state's dtype with 'checkpoint', fp32 master weights either way", () => {
    const fp32 = config();
    const bf16 = parseConfig({ ...fp32, runtime: { ...fp32.runtime, dtype: 'bf16' } });
    const m = model(fp32, 9);
    const a = saveStep(join(root, 'precision-fp32'), fp32, m, 1);
    const b = saveStep(join(root, 'precision-bf16'), bf16, m, 1);
    assert.equal(loadModel(b).model.precision, 'fp32');
    assert.equal(loadModel(b, { precision: 'checkpoint' }).model.precision, 'bf16');
    assert.equal(loadModel(a, { precision: 'checkpoint' }).model.precision, 'fp32');
    assert.equal(loadModel(a, { precision: 'bf16' }).model.precision, 'bf16');
    const loaded = loadModel(b, { precision: 'checkpoint' }).model;
    assert.equal(loaded.params.dtype, 'f32');
    assert.deepEqual(flat(loaded.params), flat(m.params));
  });

  test('bf16 export halves the weights and rounds to nearest even', () => {
    const c = config({ tie_word_embeddings: true });
    const m = model(c, 8);
    const dir = join(root, 'bf16');
    saveCheckpoint(dir, { config: c, params: m.params, tokenizer, tokenizerPath, dtype: 'bf16' });
    assert.equal(existsSync(join(dir, 'trainer_state')), false);
    const st = SafetensorsFile.open(join(dir, 'model.safetensors'));
    assert.equal(st.tensors.has('lm_head.weight'), false, 'tied: no separate head');
    const info = st.tensors.get('model.embed_tokens.weight')!;
    assert.equal(info.dtype, 'BF16');
    const raw = new Uint8Array(info.bytes);
    st.readBytes(info.name, raw);
    st.close();
    const src = m.params.get('model.embed_tokens.weight').data as Float32Array;
    assert.deepEqual(new Uint16Array(raw.buffer), f32ToBf16Bytes(src.subarray(0, 320 * 64)));
    assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
  });
});

describe('saves that crash or are killed', () => {
  for (const at of ['model', 'optimizer', 'manifest', 'rename'] as CrashPoint[]) {
    test(`a save that stops at '${at}' leaves the last good checkpoint as the one loaded`, () => {
      const parent = join(root, `crash-${at}`);
      const c = config();
      const good = saveStep(parent, c, model(c, 1), 5);
      assert.throws(() => saveStep(parent, c, model(c, 2), 6, at), /simulated crash/);
      assert.equal(latestCheckpoint(parent), good);
      // Re-saving the same step and crashing keeps the old one intact too.
      assert.throws(() => saveStep(parent, c, model(c, 3), 5, at), /simulated crash/);
      assert.equal(latestCheckpoint(parent), good);
      verifyCheckpoint(good, 'full');
      assert.deepEqual(flat(loadModel(good).model.params), flat(model(c, 1).params));
    });
  }

  test('a process killed (SIGKILL) in the middle of saving leaves a loadable last checkpoint', () => {
    const parent = join(root, 'killed');
    const script = join(root, 'saver.mjs');
    const src = (p: string) => JSON.stringify(fileURLToPath(new URL(`../../src/${p}`, import.meta.url)));
    writeFileSync(
      script,
      `import { saveCheckpoint, stepDirName } from ${src('checkpoint/checkpoint.js')};
import { parseConfig } from ${src('config/schema.js')};
import { BpeTokenizer } from ${src('data/tokenizer.js')};
import { LlamaModel } from ${src('model/llama.js')};
const c = parseConfig({ model: { vocab_size: 4096, hidden_size: 512, intermediate_size: 1024, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 4, max_position_embeddings: 64 },
  train: { steps: 10, micro_batch_size: 1, seq_len: 16, lr: 1e-3, warmup_steps: 0 }, data: { tokenizer_vocab_size: 300 }, runtime: {} });
const m = new LlamaModel(c.model, 'f32', 'litespark', 'fp32');
const tok = BpeTokenizer.fromJSON(JSON.parse((await import('node:fs')).readFileSync(${JSON.stringify(tokenizerPath)}, 'utf8')));
for (let step = 1; ; step++) {
  m.params.init(step);
  saveCheckpoint(${JSON.stringify(parent)} + '/' + stepDirName(step), { config: c, params: m.params, tokenizer: tok, tokenizerPath: ${JSON.stringify(tokenizerPath)} });
  process.stdout.write(step + '\\n');
}
`,
    );
    // Let it save a few checkpoints (~30 MB each), then kill it wherever it is.
    const r = spawnSync(process.execPath, ['-e', `
      const { spawn } = require('node:child_process');
      const p = spawn(process.execPath, [${JSON.stringify(script)}]);
      let n = 0;
      p.stdout.on('data', (d) => { n += String(d).trim().split('\\n').length; if (n >= 3) setTimeout(() => p.kill('SIGKILL'), 15); });
      p.on('exit', (code, sig) => { console.log(sig); });`], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.stdout.trim(), 'SIGKILL', r.stderr);
    const latest = latestCheckpoint(parent);
    assert.ok(latest, 'a good checkpoint remains');
    verifyCheckpoint(latest!, 'full');
    const all = listCheckpoints(parent);
    assert.ok(all.length >= 3, `${all.length} checkpoints`);
    loadModel(latest!);
  });
});

describe('rotation', () => {
  test('keeps the newest N good ones and the milestones, never the newest good one, and clears leftovers', () => {
    const parent = join(root, 'rot');
    const c = config();
    const m = model(c, 1);
    for (let step = 1; step <= 9; step++) saveStep(parent, c, m, step);
    assert.throws(() => saveStep(parent, c, m, 10, 'manifest'), /simulated crash/);
    // The leftover of the crash belongs to this process (pid): simulate one from another process.
    mkdirSync(join(parent, '.tmp-step-00000011-1'), { recursive: true });
    rotateCheckpoints(parent, 2, 4);
    assert.deepEqual(listCheckpoints(parent).map((x) => x.step), [4, 8, 9]);
    assert.equal(existsSync(join(parent, '.tmp-step-00000011-1')), false);
    // A damaged newest checkpoint is not the one loaded, and the good ones before it are kept.
    truncateSync(join(parent, stepDirName(9), 'model.safetensors'), 100);
    assert.equal(latestCheckpoint(parent), join(parent, stepDirName(8)));
    rotateCheckpoints(parent, 1, 0);
    assert.deepEqual(listCheckpoints(parent).map((x) => x.step), [8, 9]);
  });
});

describe('bad checkpoints name the file and what is wrong', () => {
  const c = config();
  const m = model(c, 4);
  const good = saveStep(join(root, 'bad'), c, m, 1);
  const variant = (name: string, edit: (dir: string) => void): string => {
    const dir = join(root, 'bad-variants', name);
    cpSync(good, dir, { recursive: true });
    edit(dir);
    return dir;
  };
  const expectError = (dir: string, pattern: RegExp, opts = {}) =>
    assert.throws(() => loadModel(dir, opts), (e: Error) => e instanceof CheckpointError && pattern.test(e.message), `${dir}: ${pattern}`);

  test('integrity: a truncated or altered file against the manifest; an unfinished checkpoint', () => {
    expectError(variant('truncated', (d) => truncateSync(join(d, 'model.safetensors'), 1000)), /model\.safetensors: 1000 bytes, manifest\.json says \d+ \(truncated/);
    expectError(
      variant('altered', (d) => {
        const p = join(d, 'model.safetensors');
        const b = readFileSync(p);
        b[b.length - 3] ^= 0x40;
        writeFileSync(p, b);
      }),
      /model\.safetensors: sha256 .* \(corrupt\)/,
    );
    expectError(variant('unfinished', (d) => rmSync(join(d, 'manifest.json'))), /no model|missing|manifest/);
  });

  // Without a manifest (a Hugging Face directory), the weights themselves are checked.
  const hfVariant = (name: string, edit: (dir: string) => void) =>
    variant(name, (d) => {
      rmSync(join(d, 'manifest.json'));
      rmSync(join(d, 'trainer_state'), { recursive: true });
      edit(d);
    });
  const rewrite = (d: string, f: (t: Array<{ name: string; dtype: string; shape: number[]; data: ArrayBufferView }>) => void) => {
    const p = join(d, 'model.safetensors');
    const st = SafetensorsFile.open(p);
    const tensors = [...st.tensors.values()].map((i) => {
      const data = new Uint8Array(i.bytes);
      st.readBytes(i.name, data);
      return { name: i.name, dtype: i.dtype as string, shape: [...i.shape], data };
    });
    st.close();
    f(tensors);
    writeSafetensors(p, tensors as never);
  };

  test('weights: a missing tensor, a wrong shape, an extra tensor, a dtype that is not a float', () => {
    expectError(hfVariant('missing', (d) => rewrite(d, (t) => t.splice(t.findIndex((x) => x.name === 'model.norm.weight'), 1))), /tensor model\.norm\.weight is missing/);
    expectError(
      hfVariant('shape', (d) => rewrite(d, (t) => {
        const x = t.find((y) => y.name === 'model.layers.0.self_attn.q_proj.weight')!;
        x.shape = [32, 128];
      })),
      /q_proj\.weight has shape \[32, 128\], config\.json implies \[64, 64\]/,
    );
    expectError(hfVariant('extra', (d) => rewrite(d, (t) => t.push({ name: 'model.layers.0.self_attn.q_proj.bias', dtype: 'F32', shape: [64], data: new Float32Array(64) }))), /no place for: model\.layers\.0\.self_attn\.q_proj\.bias/);
    expectError(
      hfVariant('dtype', (d) => rewrite(d, (t) => {
        t.find((y) => y.name === 'model.norm.weight')!.dtype = 'I32';
      })),
      /model\.norm\.weight/,
    );
    // Older exports carry RoPE's inverse frequencies: ignored.
    loadModel(hfVariant('inv_freq', (d) => rewrite(d, (t) => t.push({ name: 'model.layers.0.self_attn.rotary_emb.inv_freq', dtype: 'F32', shape: [8], data: new Float32Array(8) }))));
  });

  test('config: not matching the weights, or asking for what is not implemented', () => {
    const setConfig = (name: string, change: Record<string, unknown>) =>
      hfVariant(name, (d) => {
        const p = join(d, 'config.json');
        writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), ...change }));
      });
    expectError(setConfig('wider', { intermediate_size: 128 }), /config\.json implies \[128, 64\]/);
    expectError(setConfig('layers', { num_hidden_layers: 3 }), /model\.layers\.2\..* is missing/);
    expectError(setConfig('rope', { rope_scaling: { rope_type: 'llama3', factor: 8 } }), /config\.json: rope_scaling: .*not implemented/);
    expectError(setConfig('bias', { attention_bias: true }), /config\.json: attention_bias/);
    expectError(setConfig('act', { hidden_act: 'gelu' }), /config\.json: hidden_act/);
    expectError(setConfig('heads', { num_attention_heads: 5 }), /config\.json: .*num_attention_heads/);
    expectError(hfVariant('notjson', (d) => writeFileSync(join(d, 'config.json'), '{ nope')), /config\.json: not valid JSON/);
    expectError(hfVariant('notok', (d) => rmSync(join(d, 'tokenizer.json'))), /no tokenizer\.json/);
  });
});

describe('import / export', () => {
  test('a sharded bf16 Hugging Face directory imports, trains-ready, and exports back byte for byte', () => {
    const c = config();
    const m = model(c, 9);
    const hf = join(root, 'hf-sharded');
    mkdirSync(hf, { recursive: true });
    // Two shards and an index, as transformers writes them, in bf16.
    const specs = m.params.specs;
    const half = Math.ceil(specs.length / 2);
    const weightMap: Record<string, string> = {};
    const bf16 = new Map<string, Uint16Array>();
    [specs.slice(0, half), specs.slice(half)].forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(hf, file), part.map((s) => {
        const t = m.params.get(s.name);
        const data = f32ToBf16Bytes((t.data as Float32Array).subarray(0, t.numel));
        bf16.set(s.name, data);
        weightMap[s.name] = file;
        return { name: s.name, dtype: 'BF16', shape: [...s.shape], data };
      }), { format: 'pt' });
    });
    writeFileSync(join(hf, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    const cfg = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_act: 'silu', torch_dtype: 'bfloat16', vocab_size: 320, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false };
    writeFileSync(join(hf, 'config.json'), JSON.stringify(cfg));
    cpSync(tokenizerPath, join(hf, 'tokenizer.json'));

    const cli = (args: string[]) =>
      spawnSync(process.execPath, [fileURLToPath(new URL('../../../bin/litespark.js', import.meta.url)), ...args], { encoding: 'utf8' });
    const imported = join(root, 'imported');
    const r = cli(['import', hf, '--out', imported]);
    assert.equal(r.status, 0, r.stderr);
    verifyCheckpoint(imported, 'full');
    const exported = join(root, 'exported');
    const e = cli(['export', imported, '--out', exported, '--dtype', 'bf16']);
    assert.equal(e.status, 0, e.stderr);
    const st = SafetensorsFile.open(join(exported, 'model.safetensors'));
    for (const [name, want] of bf16) {
      const info = st.tensors.get(name)!;
      const got = new Uint8Array(info.bytes);
      st.readBytes(name, got);
      assert.deepEqual(new Uint16Array(got.buffer), want, name);
    }
    st.close();
    // Nothing is overwritten: a second export to the same directory is refused.
    const again = cli(['export', imported, '--out', exported]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already exists/);
    const bad = cli(['import', join(root, 'nope'), '--out', join(root, 'x')]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /nope/);
    assert.deepEqual(readdirSync(exported).sort(), ['config.json', 'generation_config.json', 'manifest.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  });
});
