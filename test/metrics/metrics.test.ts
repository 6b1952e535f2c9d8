// Metrics: the FLOPs model against a hand count, MFU arithmetic, the JSONL log, the peak
// calibration and its cache. No test asserts a time (BENCH.md); peaks are only positive.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { peakCommand } from '../../src/cli/peak.js';
import { native, type Bf16Unit } from '../../src/kernels/native.js';
import { flopsPerToken, mfu, parameterCounts } from '../../src/metrics/flops.js';
import { MetricsLog, peakRssBytes } from '../../src/metrics/jsonl.js';
import { describeMachine, machineInfo } from '../../src/metrics/machine.js';
import { defaultCacheDir, getPeak, measurePeak, peakUnit } from '../../src/metrics/peak.js';

const dir = mkdtempSync(join(tmpdir(), 'litespark-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SHORT = 0.02; // seconds per calibration in tests: enough to be positive, not to be exact

describe('flops', () => {
  // V=10, d=8, ffn=12, L=2, 4 heads (head_dim 2), 2 kv heads (kv dim 4).
  const tiny = {
    vocab_size: 10, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: false,
  };
  // One layer, term by term:
  const q = 8 * 8, k = 8 * 4, v = 8 * 4, o = 8 * 8; // 64 + 32 + 32 + 64 = 192
  const gate = 8 * 12, up = 8 * 12, down = 12 * 8; // 96 * 3 = 288
  const norms = 8 + 8; // input_layernorm + post_attention_layernorm
  const layer = q + k + v + o + gate + up + down + norms; // 496
  const finalNorm = 8;
  const embedding = 10 * 8, head = 10 * 8;

  test('parameter count by hand, untied', () => {
    const c = parameterCounts(tiny);
    assert.equal(layer, 496);
    assert.equal(c.perLayer, layer);
    assert.equal(c.embedding, embedding);
    assert.equal(c.total, embedding + 2 * layer + finalNorm + head); // 1160
    assert.equal(c.nonEmbedding, 2 * layer + finalNorm + head); // 1080: the head counts
  });

  test('tied: the head is stored once but still counts in P', () => {
    const c = parameterCounts({ ...tiny, tie_word_embeddings: true });
    assert.equal(c.total, embedding + 2 * layer + finalNorm); // 1080
    assert.equal(c.nonEmbedding, 2 * layer + finalNorm + head); // 1080
    assert.equal(c.embedding + c.nonEmbedding, c.total + head);
  });

  test('published totals: Llama 3.2 1B (tied), Llama 3.1 8B', () => {
    const l1b = { vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16,
      num_attention_heads: 32, num_key_value_heads: 8, tie_word_embeddings: true };
    const l8b = { vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32,
      num_attention_heads: 32, num_key_value_heads: 8, tie_word_embeddings: false };
    assert.equal(parameterCounts(l1b).total, 1_235_814_400);
    assert.equal(parameterCounts(l8b).total, 8_030_261_248);
  });

  test('flops per token = 6P + 12 L d T', () => {
    const P = 2 * layer + finalNorm + head;
    assert.equal(flopsPerToken(tiny, 5), 6 * P + 12 * 2 * 8 * 5); // 6480 + 960
    assert.equal(flopsPerToken(tiny, 5), 7440);
  });

  test('mfu arithmetic and unknown peak', () => {
    assert.equal(mfu(1000, 1e6, 4e9), 0.25);
    assert.equal(mfu(1000, 1e6, 0), null);
    assert.equal(mfu(1000, 1e6, null), null);
    assert.equal(mfu(1000, 1e6, undefined), null);
    assert.equal(mfu(1000, 1e6, Number.NaN), null);
  });
});

describe('MetricsLog', () => {
  test('one parseable JSON object per line, appended', () => {
    const path = join(dir, 'run', 'metrics.jsonl'); // the directory is created
    const log = new MetricsLog(path);
    log.write({ step: 1, loss: 3.5, mfu: null });
    log.write({ step: 2, loss: 3.25, tokens_per_s: 123.5 });
    log.close();
    log.close(); // idempotent
    assert.throws(() => log.write({ step: 3 }), /closed/);
    const again = new MetricsLog(path);
    again.write({ step: 3, loss: Number.NaN });
    again.close();
    const rows = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rows, [
      { step: 1, loss: 3.5, mfu: null },
      { step: 2, loss: 3.25, tokens_per_s: 123.5 },
      { step: 3, loss: null },
    ]);
  });

  test('peak RSS is a plausible byte count', () => {
    const rss = peakRssBytes();
    assert.ok(rss > 1 << 20 && rss < 2 ** 45, String(rss));
  });
});

describe('machine', () => {
  test('machineInfo and describeMachine', () => {
    const m = machineInfo();
    assert.ok(m.cpuModel.length > 0);
    assert.ok(m.cores >= 1);
    assert.ok(m.availableIsas.includes(m.isa));
    assert.equal(m.node, process.version);
    assert.equal(typeof m.features.avx2, 'boolean');
    const line = describeMachine();
    assert.ok(line.startsWith(`${m.cpuModel}, ${m.cores} thread`), line);
    assert.ok(line.includes(m.isa), line);
  });
});

describe('peak', () => {
  test('peakFma is positive and finite on every ISA path', () => {
    const was = native.isa();
    try {
      for (const isa of native.availableIsas()) {
        native.setIsa(isa);
        for (const threads of [1, 2]) {
          const g = native.peakFma(threads, SHORT);
          assert.ok(Number.isFinite(g) && g > 0, `${isa} ${threads}T: ${g}`);
        }
      }
    } finally {
      native.setIsa(was);
    }
    assert.equal(native.isa(), was);
  });

  test('measurePeak uses all cores for 0', () => {
    assert.ok(measurePeak(0, { seconds: SHORT }) > 0);
  });

  test('cache: miss measures and writes, hit reads, remeasure refreshes', () => {
    const cacheDir = join(dir, 'cache');
    const first = getPeak({ threads: 1, dtype: 'fp32', cacheDir, seconds: SHORT });
    assert.equal(first.cached, false);
    assert.ok(first.gflops > 0);
    assert.equal(first.isa, native.isa());
    assert.equal(first.threads, 1);
    assert.ok(existsSync(join(cacheDir, 'peak.json')));

    const hit = getPeak({ threads: 1, cacheDir, seconds: SHORT });
    assert.equal(hit.cached, true);
    assert.equal(hit.gflops, first.gflops);
    assert.equal(hit.measuredAt, first.measuredAt);

    const other = getPeak({ threads: 2, cacheDir, seconds: SHORT }); // another key: a miss
    assert.equal(other.cached, false);
    const file = JSON.parse(readFileSync(join(cacheDir, 'peak.json'), 'utf8'));
    assert.equal(Object.keys(file.entries).length, 2); // both kept
    for (const key of Object.keys(file.entries)) assert.ok(key.includes(first.cpu) && key.includes(first.isa), key);

    const again = getPeak({ threads: 1, cacheDir, remeasure: true, seconds: SHORT });
    assert.equal(again.cached, false);
    assert.equal(getPeak({ threads: 1, cacheDir }).gflops, again.gflops);
  });

  test('a corrupt cache is measured over, not fatal', () => {
    const cacheDir = join(dir, 'corrupt');
    getPeak({ threads: 1, cacheDir, seconds: SHORT });
    writeFileSync(join(cacheDir, 'peak.json'), '{ not json');
    const p = getPeak({ threads: 1, cacheDir, seconds: SHORT });
    assert.equal(p.cached, false);
    assert.equal(getPeak({ threads: 1, cacheDir }).cached, true);
  });

  test('the ISA is part of the key', () => {
    const avail = native.availableIsas();
    if (avail.length < 2) return;
    const cacheDir = join(dir, 'isa');
    const was = native.isa();
    try {
      native.setIsa(avail[0]!);
      getPeak({ threads: 1, cacheDir, seconds: SHORT });
      native.setIsa(avail[1]!);
      const p = getPeak({ threads: 1, cacheDir, seconds: SHORT });
      assert.equal(p.cached, false);
      assert.equal(p.isa, avail[1]);
    } finally {
      native.setIsa(was);
    }
  });

  test('defaultCacheDir: LITESPARK_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    const saved = { a: process.env.LITESPARK_CACHE_DIR, b: process.env.XDG_CACHE_HOME };
    try {
      process.env.LITESPARK_CACHE_DIR = '/x/ls';
      process.env.XDG_CACHE_HOME = '/x/xdg';
      assert.equal(defaultCacheDir(), '/x/ls');
      delete process.env.LITESPARK_CACHE_DIR;
      assert.equal(defaultCacheDir(), '/x/xdg/litespark');
      delete process.env.XDG_CACHE_HOME;
      assert.ok(defaultCacheDir().endsWith(join('.cache', 'litespark')));
    } finally {
      for (const [k, v] of [['LITESPARK_CACHE_DIR', saved.a], ['XDG_CACHE_HOME', saved.b]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test('litespark peak --json reads the cache it shares with getPeak', async () => {
    const cacheDir = join(dir, 'cli');
    const p = getPeak({ threads: 1, cacheDir, seconds: SHORT });
    const j = JSON.parse(await captureStdout(() => peakCommand({ threads: 1, json: true, cacheDir, seconds: SHORT })));
    assert.equal(j.isa, native.isa());
    assert.deepEqual(j.peaks, [{ threads: 1, gflops: p.gflops, cached: true, measuredAt: p.measuredAt }]);
  });

  test('peakBf16 is positive and finite on every bf16 unit, 1 and 2 threads', () => {
    for (const unit of native.bf16Units())
      for (const threads of [1, 2]) {
        const g = native.peakBf16(unit, threads, SHORT);
        assert.ok(Number.isFinite(g) && g > 0, `${unit} ${threads}T: ${g}`);
      }
  });

  test('bf16 peaks: default unit, one cache entry per unit, the fp32 unit shares the fp32 FMA entry', () => {
    const cacheDir = join(dir, 'bf16');
    const entries = () => JSON.parse(readFileSync(join(cacheDir, 'peak.json'), 'utf8')).entries as Record<string, { gflops: number }>;
    const fp32 = getPeak({ threads: 1, dtype: 'fp32', cacheDir, seconds: SHORT });
    assert.equal(fp32.unit, 'fp32');

    // No unit: the one bf16 GEMMs run on now.
    const current = getPeak({ threads: 1, dtype: 'bf16', cacheDir, seconds: SHORT });
    assert.equal(current.unit, native.bf16Unit());
    assert.equal(current.dtype, 'bf16');

    const seen = new Map<string, number>();
    for (const unit of native.bf16Units()) {
      const p = getPeak({ threads: 1, dtype: 'bf16', unit, cacheDir, seconds: SHORT });
      assert.equal(p.unit, unit);
      assert.equal(p.dtype, 'bf16');
      assert.ok(Number.isFinite(p.gflops) && p.gflops > 0, `${unit}: ${p.gflops}`);
      if (unit === 'fp32') {
        // The fp32 unit runs bf16 as fp32 FMAs: its peak is the cached fp32 FMA peak, not a new one.
        assert.equal(p.cached, true);
        assert.equal(p.gflops, fp32.gflops);
        assert.equal(p.measuredAt, fp32.measuredAt);
      } else {
        assert.equal(p.cached, unit === current.unit, `${unit}: cached ${p.cached}`);
        seen.set(unit, p.gflops);
      }
      // Asked again: a hit with the same figure.
      const hit = getPeak({ threads: 1, dtype: 'bf16', unit, cacheDir, seconds: SHORT });
      assert.equal(hit.cached, true);
      assert.equal(hit.gflops, p.gflops);
    }
    const keys = Object.keys(entries());
    assert.equal(keys.length, 1 + seen.size, keys.join('; ')); // fp32 + one per bf16 unit beyond fp32
    for (const [unit, gflops] of seen) {
      const key = keys.find((k) => k.includes(`| ${unit} |`) && k.includes('bf16') && k.endsWith('| 1T'));
      assert.ok(key, `no cache key for ${unit}: ${keys.join('; ')}`);
      assert.equal(entries()[key!]!.gflops, gflops);
    }
    // Another thread count is another key; remeasure refreshes one unit only.
    // A unit of its own entry where the machine has one (on a CPU without AMX the list starts with
    // 'fp32', whose entry is the fp32 FMA one).
    const unit = native.bf16Units().find((u) => u !== 'fp32') ?? 'fp32';
    assert.equal(getPeak({ threads: 2, dtype: 'bf16', unit, cacheDir, seconds: SHORT }).cached, false);
    const again = getPeak({ threads: 1, dtype: 'bf16', unit, cacheDir, seconds: SHORT, remeasure: true });
    assert.equal(again.cached, false);
    assert.equal(getPeak({ threads: 1, dtype: 'bf16', unit, cacheDir }).gflops, again.gflops);
    assert.equal(getPeak({ threads: 1, dtype: 'fp32', cacheDir }).gflops, unit === 'fp32' ? again.gflops : fp32.gflops);
  });

  test('measurePeak and peakUnit: bf16 units, unknown units refused with the reason', () => {
    for (const unit of native.bf16Units()) assert.ok(measurePeak(1, { seconds: SHORT, dtype: 'bf16', unit }) > 0, unit);
    assert.equal(peakUnit('fp32', 'amx'), 'fp32');
    assert.equal(peakUnit('bf16'), native.bf16Unit());
    assert.throws(() => peakUnit('bf16', 'tpu' as Bf16Unit), /'tpu' is not available/);
    if (!native.bf16Units().includes('amx')) {
      const reason = native.amxUnavailableReason();
      assert.throws(() => getPeak({ threads: 1, dtype: 'bf16', unit: 'amx', cacheDir: join(dir, 'noamx') }),
        (e: Error) => e.message.includes(reason));
    }
  });

  test('litespark peak prints fp32 FMA and every bf16 unit, marks the training unit; --json has them all', async () => {
    const cacheDir = join(dir, 'cli-bf16');
    const units = native.bf16Units();
    const text = await captureStdout(() => peakCommand({ threads: 1, cacheDir, seconds: SHORT }));
    assert.match(text, new RegExp(`fp32 FMA peak on the ${native.isa()} path`));
    for (const unit of units) assert.match(text, new RegExp(`bf16 peak on the ${unit} unit`), text);
    const marked = text.split('\n').filter((l) => l.includes('<- bf16 training uses this unit'));
    assert.equal(marked.length, 1, text);
    assert.match(marked[0]!, new RegExp(`on the ${native.bf16Unit()} unit`));
    assert.match(text, new RegExp(`bf16 training runs on the ${native.bf16Unit()} unit`));
    if (native.amxUnavailableReason()) assert.ok(text.includes(`AMX: not available: ${native.amxUnavailableReason()}`), text);
    else assert.ok(!text.includes('AMX: not available'), text);
    // Every figure measured once, then read back from the cache by --json.
    const j = JSON.parse(await captureStdout(() => peakCommand({ threads: 1, json: true, cacheDir, seconds: SHORT })));
    assert.equal(j.bf16.trainingUnit, native.bf16Unit());
    assert.deepEqual(j.bf16.units, units);
    assert.equal(j.bf16.amxUnavailable, native.amxUnavailableReason() || null);
    assert.deepEqual(Object.keys(j.bf16.peaks).sort(), [...units].sort());
    for (const unit of units) {
      const [r] = j.bf16.peaks[unit];
      assert.equal(r.threads, 1);
      assert.ok(Number.isFinite(r.gflops) && r.gflops > 0, `${unit}: ${r.gflops}`);
      assert.equal(r.cached, true, `${unit} was measured again`);
      const p = getPeak({ threads: 1, dtype: 'bf16', unit, cacheDir });
      assert.equal(r.gflops, p.gflops, unit);
    }
    assert.deepEqual(j.bf16.peaks.fp32, j.peaks); // the fp32 unit's bf16 peak is the fp32 FMA peak
  });
});

/** What fn writes to stdout (and nothing reaches the terminal). */
async function captureStdout(fn: () => Promise<void>): Promise<string> {
  const out: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return out.join('');
}
