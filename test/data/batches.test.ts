import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchSampler, fixedBatches, splitTokens } from '../../src/data/batches.js';

/** 0, 1, 2, ...: every window is a run of consecutive integers, so positions are visible. */
function arange(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

function draw(s: BatchSampler, steps: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let i = 0; i < steps; i++) {
    const x = new Int32Array(s.batch * s.seqLen);
    const y = new Int32Array(s.batch * s.seqLen);
    s.next(x, y);
    out.push(x, y);
  }
  return out;
}

test('splitTokens holds out the tail as views', () => {
  const t = arange(1000);
  const { train, val } = splitTokens(t, 0.1);
  assert.equal(train.length, 900);
  assert.equal(val.length, 100);
  assert.equal(val[0], 900);
  assert.equal(train.buffer, t.buffer);
  assert.equal(val.buffer, t.buffer);
  assert.equal(splitTokens(t, 0).val.length, 0);
  assert.throws(() => splitTokens(t, 1), /valFraction must be in \[0, 1\), got 1/);
});

test('BatchSampler: targets are inputs shifted by one, windows in range', () => {
  const n = 500;
  const B = 4;
  const T = 16;
  const s = new BatchSampler(arange(n), B, T, 1);
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  const starts = new Set<number>();
  for (let step = 0; step < 200; step++) {
    s.next(x, y);
    for (let b = 0; b < B; b++) {
      const start = x[b * T];
      starts.add(start);
      assert.ok(start >= 0 && start + T < n, `window start ${start}`);
      for (let t = 0; t < T; t++) {
        assert.equal(x[b * T + t], start + t);
        assert.equal(y[b * T + t], start + t + 1);
      }
    }
  }
  // 800 draws over 484 starts: uniform draws cover most of them, including both ends' regions.
  assert.ok(starts.size > 300, `${starts.size} distinct starts`);
  assert.ok(Math.min(...starts) < 10 && Math.max(...starts) > n - T - 11);
  assert.throws(() => s.next(new Int32Array(3), y), /must hold batch\*seqLen = 64 tokens, got 3 and 64/);
});

test('BatchSampler is deterministic per seed and differs between seeds', () => {
  const t = arange(10_000);
  const a = draw(new BatchSampler(t, 3, 8, 42), 5);
  const b = draw(new BatchSampler(t, 3, 8, 42), 5);
  const c = draw(new BatchSampler(t, 3, 8, 43), 5);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('BatchSampler state / restore continues the same stream', () => {
  const t = arange(10_000);
  const s = new BatchSampler(t, 2, 32, 5);
  draw(s, 7);
  const saved = JSON.parse(JSON.stringify(s.state()));
  assert.equal(saved.step, 7);
  const expected = draw(s, 3);
  const r = new BatchSampler(t, 2, 32, 5);
  r.restore(saved);
  assert.deepEqual(draw(r, 3), expected);
  // A different seed restored onto is overwritten by the state.
  const other = new BatchSampler(t, 2, 32, 999);
  other.restore(saved);
  assert.deepEqual(draw(other, 3), expected);
  assert.throws(() => new BatchSampler(arange(5000), 2, 32, 5).restore(saved), /saved for tokens=10000 batch=2 seqLen=32/);
  assert.throws(() => r.restore({} as never), /not a BatchSampler state/);
});

test('too-short data says how many tokens are needed and present', () => {
  assert.throws(
    () => new BatchSampler(arange(64), 2, 64, 0),
    /need at least 65 tokens, have 64/,
  );
  assert.throws(() => fixedBatches(arange(10), 1, 10, 1), /need at least 11 tokens, have 10/);
  new BatchSampler(arange(65), 2, 64, 0); // exactly one window fits
});

test('fixedBatches spreads windows evenly over the whole array', () => {
  const n = 1000;
  const T = 10;
  const batches = fixedBatches(arange(n), 2, T, 3);
  assert.equal(batches.length, 3);
  const starts = batches.flatMap(({ inputs, targets }) => {
    for (let i = 0; i < inputs.length; i++) assert.equal(targets[i], inputs[i] + 1);
    return [inputs[0], inputs[T]];
  });
  // 6 windows, starts at floor(w * 989 / 5).
  assert.deepEqual(starts, [0, 197, 395, 593, 791, 989]);
  assert.deepEqual(fixedBatches(arange(n), 2, T, 3), batches);
  assert.equal(fixedBatches(arange(n), 1, T, 1)[0].inputs[0], 0);
});
