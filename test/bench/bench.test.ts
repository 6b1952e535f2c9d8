// `litespark bench` as a script meets it: a short XS run writes one row per kernel path with
// every field of the DESIGN.md `bench --json` contract, plus results.md; bad flags exit 2 and
// name the culprit. Times are never asserted (BENCH.md: tests assert correctness, not speed).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/litespark.js', import.meta.url));
const tmp = mkdtempSync(join(os.tmpdir(), 'litespark-bench-'));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LITESPARK_CACHE_DIR: join(tmp, 'cache') },
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** DESIGN.md: `bench --json` writes an array of rows with at least these fields. */
const CONTRACT = ['config', 'kernels', 'dtype', 'threads', 'tokens_per_s', 'step_ms_median', 'mfu', 'peak_bytes',
  'joules_per_token', 'energy_source'];

test('bench --configs XS writes a row per kernel path with every contract field, and results.md', () => {
  const out = join(tmp, 'out');
  const json = join(tmp, 'rows.json');
  const r = cli(['bench', '--configs', 'XS', '--steps', '2', '--warmup', '1', '--threads', '2', '--json', json, '--out', out]);
  assert.equal(r.code, 0, `stderr: ${r.err}\nstdout: ${r.out}`);
  const rows = JSON.parse(readFileSync(json, 'utf8')) as Array<Record<string, unknown>>;
  assert.ok(Array.isArray(rows));
  assert.deepEqual(rows.map((x) => x.kernels).sort(), ['litespark', 'standard']);
  for (const row of rows) {
    const label = `${row.config} ${row.kernels}`;
    for (const f of CONTRACT) assert.ok(Object.hasOwn(row, f), `${label}: field '${f}' missing`);
    assert.equal(row.ok, true, `${label} failed: ${row.error}`);
    assert.equal(row.config, 'XS');
    assert.equal(row.dtype, 'fp32');
    assert.equal(row.threads, 2);
    assert.equal(row.tokens_per_step, 8 * 256);
    for (const f of ['tokens_per_s', 'step_ms_median', 'peak_bytes', 'native_peak_bytes', 'flops_per_token']) {
      assert.ok(typeof row[f] === 'number' && (row[f] as number) > 0, `${label}: ${f} = ${row[f]}`);
    }
    // the trainer's memory report against what the native side held: the report leaves out only
    // the kernels' per-thread blocks (GEMM packing, attention tiles), a few MiB
    const model = row.model_bytes as number, held = row.native_peak_bytes as number;
    assert.ok(typeof model === 'number' && model > 0, `${label}: model_bytes ${model}`);
    assert.ok(held >= model && held <= model + 16 * 2 ** 20, `${label}: native peak ${held} vs memory report ${model}`);
    // tokens/s is tokens per step over the median step time
    assert.ok(Math.abs((row.tokens_per_s as number) - (2048 * 1000) / (row.step_ms_median as number)) < 1e-6 * (row.tokens_per_s as number));
    assert.ok((row.step_ms_min as number) <= (row.step_ms_median as number) && (row.step_ms_median as number) <= (row.step_ms_max as number));
    assert.ok(typeof row.mfu === 'number' && row.mfu > 0 && row.mfu < 1, `${label}: mfu ${row.mfu}`);
    // one meter for every row, labelled; J/token over the measured steps
    assert.ok(typeof row.joules_per_token === 'number' && row.joules_per_token > 0, `${label}: joules_per_token ${row.joules_per_token}`);
    assert.match(row.energy_source as string, /^(measured|estimated): /);
    assert.equal(row.energy_source, rows[0]!.energy_source);
    assert.ok(Number.isFinite(row.loss), `${label}: loss ${row.loss}`);
    // without --recompute the rows are as before: no recompute fields
    for (const f of ['recompute', 'recompute_speed', 'recompute_memory']) assert.ok(!Object.hasOwn(row, f), `${label}: unexpected '${f}'`);
  }
  const lit = rows.find((x) => x.kernels === 'litespark')!;
  assert.ok(typeof lit.speedup === 'number' && lit.speedup > 0, `speedup ${lit.speedup}`);
  // the same rows in the results directory, and the report headed by the machine
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'rows.json'), 'utf8')), rows);
  assert.ok(existsSync(join(out, 'results.md')));
  const md = readFileSync(join(out, 'results.md'), 'utf8');
  for (const s of ['CPU', 'ISA path', 'GFLOP/s', '| XS | standard | fp32 |', '| XS | litespark | fp32 |', 'J/token', '| energy |', 'memory report']) assert.ok(md.includes(s), `results.md lacks '${s}'`);
  assert.match(r.out, /config\s+kernels\s+dtype\s+tokens\/s.*J\/token/);
});

/** One measured step per row of the nano config with `flags`; its rows (--json) and terminal output. */
function nanoBench(name: string, flags: string[]) {
  const json = join(tmp, `${name}.json`);
  const r = cli(['bench', '--configs', 'nano', ...flags, '--steps', '1', '--warmup', '0', '--threads', '2', '--json', json, '--out', join(tmp, `out-${name}`)]);
  assert.equal(r.code, 0, `stderr: ${r.err}\nstdout: ${r.out}`);
  return { out: r.out, rows: JSON.parse(readFileSync(json, 'utf8')) as Array<Record<string, unknown>> };
}

test('bench --recompute none,selective,full: one row per mode with its activation bytes and the ratios to none', () => {
  const { out, rows } = nanoBench('recompute', ['--kernels', 'standard,litespark', '--recompute', 'none,selective,full']);
  assert.deepEqual(rows.map((x) => `${x.kernels} ${x.recompute}`), [
    'standard none', 'standard selective', 'standard full', 'litespark none', 'litespark selective', 'litespark full']);
  for (const kernels of ['standard', 'litespark']) {
    const [none, sel, full] = ['none', 'selective', 'full'].map((m) => rows.find((x) => x.kernels === kernels && x.recompute === m)!);
    for (const row of [none, sel, full]) assert.equal(row!.ok, true, `${kernels} ${row!.recompute}: ${row!.error}`);
    const act = (x: Record<string, unknown> | undefined) => x!.activation_bytes as number;
    assert.ok(act(full) < act(sel) && act(sel) < act(none), `${kernels}: ${act(none)} / ${act(sel)} / ${act(full)}`);
    assert.ok(!Object.hasOwn(none!, 'recompute_memory'));
    assert.equal(full!.recompute_memory, act(full) / act(none));
    assert.ok(typeof full!.recompute_speed === 'number' && full!.recompute_speed > 0);
    // recomputation is exact: the same loss on the same batches
    assert.equal(full!.loss, none!.loss);
  }
  // speed-ups pair rows of the same recompute mode
  const lit = rows.find((x) => x.kernels === 'litespark' && x.recompute === 'full')!;
  const std = rows.find((x) => x.kernels === 'standard' && x.recompute === 'full')!;
  assert.ok(Math.abs((lit.speedup as number) - (lit.tokens_per_s as number) / (std.tokens_per_s as number)) < 1e-9);
  assert.match(out, /config\s+kernels\s+dtype\s+recompute\s+tokens\/s/);
});

test('bench --dtype fp32,bf16: the bf16 row names its unit and carries its tokens/s over the fp32 row', () => {
  const { out, rows } = nanoBench('dtype', ['--kernels', 'litespark', '--dtype', 'fp32,bf16']);
  assert.deepEqual(rows.map((x) => x.dtype), ['fp32', 'bf16']);
  const [fp32, bf16] = rows as [Record<string, unknown>, Record<string, unknown>];
  for (const row of rows) assert.equal(row.ok, true, `${row.dtype}: ${row.error}`);
  assert.ok(!Object.hasOwn(fp32, 'vs_fp32'));
  assert.match(String(bf16.matmul_unit), /^(amx|avx512bf16|fp32)$/);
  assert.ok(Math.abs((bf16.vs_fp32 as number) - (bf16.tokens_per_s as number) / (fp32.tokens_per_s as number)) < 1e-9, `vs_fp32 ${bf16.vs_fp32}`);
  assert.match(out, /speedup\s+bf16 vs fp32\s+J\/token/);
  const md = readFileSync(join(tmp, 'out-dtype', 'results.md'), 'utf8');
  assert.match(md, /\| bf16 vs fp32 \|/);
  assert.match(md, /bf16 vs fp32 = a bf16 row's tokens\/s/);
});

const BAD: Array<[string, string[], RegExp]> = [
  ['an unknown config', ['bench', '--configs', 'XS,XXL'], /unknown config 'XXL'/],
  ['an unknown kernel path', ['bench', '--kernels', 'standard,turbo'], /unknown kernels 'turbo'/],
  ['an unknown dtype', ['bench', '--dtype', 'fp32,fp8'], /unknown dtype 'fp8'/],
  ['a non-integer step count', ['bench', '--steps', 'x'], /--steps must be an integer/],
  ['an unknown recompute mode', ['bench', '--recompute', 'none,some'], /unknown recompute mode 'some'/],
  ['--recompute with --kernels-only', ['bench', '--kernels-only', '--recompute', 'full'], /--recompute applies to whole training steps/],
];

for (const [what, args, message] of BAD) {
  test(`bench with ${what} exits 2 and names it`, () => {
    const r = cli([...args, '--out', join(tmp, 'never')]);
    assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.err}`);
    assert.match(r.err, message);
    assert.ok(!existsSync(join(tmp, 'never')), 'bad usage must not start a run');
  });
}

test('bench --watts: with no energy counter, every row estimates W x the measured steps\' wall time', () => {
  const json = join(tmp, 'watts.json');
  const r = cli(['bench', '--configs', 'nano', '--kernels', 'litespark', '--steps', '2', '--warmup', '0', '--threads', '2',
    '--watts', '100', '--json', json, '--out', join(tmp, 'out-watts')]);
  assert.equal(r.code, 0, `stderr: ${r.err}\nstdout: ${r.out}`);
  const [row] = JSON.parse(readFileSync(json, 'utf8')) as Array<Record<string, number | string>>;
  if (!String(row!.energy_source).startsWith('estimated')) return; // RAPL or NVML present: the counter wins
  assert.equal(row!.energy_source, 'estimated: 100 W (given by the user) x wall time');
  const joules = (row!.joules_per_token as number) * (row!.tokens_per_step as number) * 2;
  const stepSeconds = ((row!.step_ms_min as number) + (row!.step_ms_max as number)) / 1000;
  assert.ok(joules >= 100 * stepSeconds * 0.999 && joules <= 100 * stepSeconds * 1.5, `${joules} J for ${stepSeconds} s of steps`);
  assert.match(r.out, /J\/token .*100 W \(given by the user\)/);
});
