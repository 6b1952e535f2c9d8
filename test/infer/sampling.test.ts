// Token choice on hand-made logits: the exact sets top-k and top-p keep (and in which order they
// apply), temperature, greedy ties, seeded draws and their frequencies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sampler, argmax, type SamplingOptions } from '../../src/infer/sampling.js';
import { assertClose, rng } from '../helpers.js';

const opts = (o: Partial<SamplingOptions>): SamplingOptions => ({ temperature: 1, topK: 0, topP: 1, seed: 1, ...o });

/** The kept ids (most likely first) and their probabilities. */
function kept(logits: number[], o: Partial<SamplingOptions>): { ids: number[]; probs: number[] } {
  const s = new Sampler(logits.length, opts(o));
  const n = s.filter(logits);
  return { ids: Array.from(s.ids.subarray(0, n)), probs: Array.from(s.probs.subarray(0, n)) };
}

// probabilities 0.5, 0.2, 0.15, 0.1, 0.05, scrambled over the ids
const P = [0.1, 0.5, 0.05, 0.2, 0.15];
const L = P.map(Math.log);

test('top-k keeps the k largest logits, ties to the lower id, renormalized', () => {
  const ties = [1, 3, 2, 3, 0];
  assert.deepEqual(kept(ties, { topK: 1 }).ids, [1]);
  assert.deepEqual(kept(ties, { topK: 2 }).ids, [1, 3]);
  assert.deepEqual(kept(ties, { topK: 3 }).ids, [1, 3, 2]);
  assert.deepEqual(kept(ties, { topK: 0 }).ids, [1, 3, 2, 0, 4]);
  assert.deepEqual(kept(ties, { topK: 9 }).ids, [1, 3, 2, 0, 4]);
  const k2 = kept(L, { topK: 2 });
  assert.deepEqual(k2.ids, [1, 3]);
  assertClose(k2.probs, [0.5 / 0.7, 0.2 / 0.7], { atol: 1e-12, rtol: 1e-12 }, 'top-2 probs');
});

test('top-p keeps the smallest most-likely set with mass >= p, renormalized', () => {
  assert.deepEqual(kept(L, { topP: 0.4 }).ids, [1]);
  assert.deepEqual(kept(L, { topP: 0.6 }).ids, [1, 3]); // 0.7
  assert.deepEqual(kept(L, { topP: 0.75 }).ids, [1, 3, 4]); // 0.85
  assert.deepEqual(kept(L, { topP: 0.9 }).ids, [1, 3, 4, 0]); // 0.95
  assert.deepEqual(kept(L, { topP: 0.99 }).ids, [1, 3, 4, 0, 2]);
  assert.deepEqual(kept(L, { topP: 1 }).ids, [1, 3, 4, 0, 2]);
  const p = kept(L, { topP: 0.75 });
  assertClose(p.probs, [0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85], { atol: 1e-12, rtol: 1e-12 }, 'nucleus probs');
  // a single token holding all the mass
  assert.deepEqual(kept([0, 100, 0], { topP: 0.5 }).ids, [1]);
});

test('top-k applies first: top-p measures mass in the renormalized top-k distribution', () => {
  // without top-k, p = 0.8 needs three tokens (0.5 + 0.2 < 0.8); within the top 3 (mass 0.85)
  // the first two hold 0.7 / 0.85 = 0.82 >= 0.8
  assert.deepEqual(kept(L, { topP: 0.8 }).ids, [1, 3, 4]);
  assert.deepEqual(kept(L, { topK: 3, topP: 0.8 }).ids, [1, 3]);
});

test('temperature divides the logits before the softmax', () => {
  const t2 = kept(L, { temperature: 2 });
  const s = P.map(Math.sqrt);
  const z = s.reduce((a, b) => a + b, 0);
  assertClose(t2.probs, [1, 3, 4, 0, 2].map((i) => s[i]! / z), { atol: 1e-12, rtol: 1e-12 }, 'T=2 probs');
  // a higher temperature flattens the distribution, so top-p keeps more
  assert.deepEqual(kept(L, { temperature: 2, topP: 0.6 }).ids, [1, 3, 4]);
});

test('temperature 0 is greedy (ties to the lower id); a seed fixes the draws; draws follow the probabilities', () => {
  const g = new Sampler(5, opts({ temperature: 0, topK: 2, topP: 0.1 }));
  assert.equal(g.next([1, 3, 2, 3, 0]), 1);
  assert.equal(argmax([0, 2, 2], 3), 1);
  const draw = (seed: number, n: number) => {
    const s = new Sampler(5, opts({ seed }));
    return Array.from({ length: n }, () => s.next(L));
  };
  assert.deepEqual(draw(7, 50), draw(7, 50));
  assert.notDeepEqual(draw(7, 50), draw(8, 50));
  const n = 40000;
  const counts = new Array(5).fill(0);
  for (const id of draw(3, n)) counts[id]++;
  P.forEach((p, i) => {
    const sigma = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(counts[i] - n * p) < 4 * sigma, `id ${i}: ${counts[i]} draws, expected ${n * p} +- ${4 * sigma}`);
  });
  // only kept ids are ever drawn
  const s = new Sampler(5, opts({ topK: 2, seed: 5 }));
  for (let i = 0; i < 1000; i++) assert.ok([1, 3].includes(s.next(L)));
});

/** The kept set by definition: sort every id (logit desc, id asc), top-k, softmax, top-p cut. */
function keptRef(logits: number[], o: SamplingOptions): { ids: number[]; probs: number[] } {
  const order = logits.map((_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  const k = o.topK > 0 ? Math.min(o.topK, logits.length) : logits.length;
  const top = order.slice(0, k);
  const t = o.temperature > 0 ? o.temperature : 1;
  const w = top.map((i) => Math.exp((logits[i]! - logits[top[0]!]!) / t));
  const z = w.reduce((a, b) => a + b, 0);
  let n = 0;
  for (let mass = 0; n < k; ) {
    mass += w[n++]! / z;
    if (o.topP < 1 && mass >= o.topP) break;
  }
  const zn = w.slice(0, n).reduce((a, b) => a + b, 0);
  return { ids: top.slice(0, n), probs: w.slice(0, n).map((x) => x / zn) };
}

test('both selection paths (insertion for k <= 64, a heap for larger k and top-p alone) keep the exact set, ties included', () => {
  const r = rng(12);
  // 700 logits on a coarse grid: many exact ties
  const logits = Array.from({ length: 700 }, () => Math.round((r() * 2 - 1) * 40) / 8);
  for (const topK of [0, 1, 5, 64, 65, 200, 699, 700, 5000]) {
    for (const topP of [1, 0.95, 0.5, 0.05]) {
      for (const temperature of [1, 0.5, 3]) {
        const o = opts({ topK, topP, temperature });
        const got = kept(logits, o), want = keptRef(logits, o);
        const at = `k ${topK} p ${topP} T ${temperature}`;
        assert.deepEqual(got.ids, want.ids, at);
        assertClose(got.probs, want.probs, { atol: 1e-12, rtol: 1e-9 }, at);
      }
    }
  }
});

test('with neither top-k nor top-p, draws follow the softmax over every id', () => {
  const s = new Sampler(5, opts({ topK: 0, topP: 1, seed: 11 }));
  const n = 40000;
  const counts = new Array(5).fill(0);
  for (let i = 0; i < n; i++) counts[s.next(L)]++;
  P.forEach((p, i) => {
    const sigma = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(counts[i] - n * p) < 4 * sigma, `id ${i}: ${counts[i]} draws, expected ${n * p} +- ${4 * sigma}`);
  });
});

test('bad settings are refused', () => {
  assert.throws(() => new Sampler(5, opts({ temperature: -1 })), /temperature/);
  assert.throws(() => new Sampler(5, opts({ topK: 1.5 })), /top-k/);
  assert.throws(() => new Sampler(5, opts({ topP: 0 })), /top-p/);
  assert.throws(() => new Sampler(5, opts({ topP: 1.5 })), /top-p/);
});
