// Each layer of the model on its own: backward against central finite differences of its
// forward in float64, on odd sizes and GQA ratios 1, 2 and 4.
import { test } from 'node:test';
import { native } from '../../src/kernels/native.js';
import { Tensor } from '../../src/kernels/tensor.js';
import { AttentionActs, AttentionGrads, attentionBackward, attentionForward, type AttentionShape } from '../../src/model/attention.js';
import { linearBackward, linearForward } from '../../src/model/linear.js';
import { MlpActs, MlpGrads, mlpBackward, mlpForward } from '../../src/model/mlp.js';
import { randArray } from '../helpers.js';
import { fdCheck, weightedSum } from '../kernels/harness.js';

test('linear layer: dx and dW equal finite differences (f64, 7 x 5 -> 3)', () => {
  const N = 7, nin = 5, nout = 3;
  const x = randArray(Float64Array, N * nin, 1), W = randArray(Float64Array, nout * nin, 2), w = randArray(Float64Array, N * nout, 3);
  const y = new Float64Array(N * nout);
  const loss = () => (linearForward(y, x, W, N, nin, nout), weightedSum(y, w));
  const dx = new Float64Array(N * nin), dW = new Float64Array(nout * nin);
  linearBackward(dx, dW, w, x, W, N, nin, nout);
  fdCheck([x, W], [dx, dW], loss, { names: ['x', 'W'] });
});

for (const [H, KVH] of [[3, 3], [4, 2], [4, 1]]) {
  test(`attention sub-layer (projections, RoPE, GQA ${H}/${KVH}, output projection) equals finite differences (f64)`, () => {
    const B = 2, T = 5, D = 4, C = 9; // width 9 is not H*D: o_proj maps H*D back to C
    const s: AttentionShape = { B, T, C, H, KVH, D };
    const N = B * T;
    const h = randArray(Float64Array, N * C, 4);
    const w = { q: randArray(Float64Array, H * D * C, 5, 0.5), k: randArray(Float64Array, KVH * D * C, 6, 0.5), v: randArray(Float64Array, KVH * D * C, 7, 0.5), o: randArray(Float64Array, C * H * D, 8, 0.5) };
    const cos = Tensor.empty('f64', [T, D / 2]), sin = Tensor.empty('f64', [T, D / 2]);
    native.ropeTable(cos.data, sin.data, T, D, 10000);
    const rope = { cos: cos.data, sin: sin.data };
    const acts = new AttentionActs('f64', s);
    const out = new Float64Array(N * C);
    const up = randArray(Float64Array, N * C, 9);
    const loss = () => (attentionForward(out, acts, h, w, rope, s), weightedSum(out, up));
    loss();
    const dw = { q: new Float64Array(w.q.length), k: new Float64Array(w.k.length), v: new Float64Array(w.v.length), o: new Float64Array(w.o.length) };
    const dh = new Float64Array(N * C);
    attentionBackward(dh, dw, up, acts, new AttentionGrads('f64', s), h, w, rope, s);
    fdCheck([h, w.q, w.k, w.v, w.o], [dh, dw.q, dw.k, dw.v, dw.o], loss, { names: ['h', 'q_proj', 'k_proj', 'v_proj', 'o_proj'], maxPerInput: 40 });
  });
}

test('SwiGLU MLP sub-layer equals finite differences (f64, odd widths)', () => {
  const s = { N: 6, C: 7, F: 11 };
  const h = randArray(Float64Array, s.N * s.C, 10);
  const w = { gate: randArray(Float64Array, s.F * s.C, 11), up: randArray(Float64Array, s.F * s.C, 12), down: randArray(Float64Array, s.C * s.F, 13) };
  const acts = new MlpActs('f64', s);
  const out = new Float64Array(s.N * s.C);
  const up = randArray(Float64Array, s.N * s.C, 14);
  const loss = () => (mlpForward(out, acts, h, w, s), weightedSum(out, up));
  loss();
  const dw = { gate: new Float64Array(w.gate.length), up: new Float64Array(w.up.length), down: new Float64Array(w.down.length) };
  const dh = new Float64Array(s.N * s.C);
  mlpBackward(dh, dw, up, acts, new MlpGrads('f64', s), h, w, s);
  fdCheck([h, w.gate, w.up, w.down], [dh, dw.gate, dw.up, dw.down], loss, { names: ['h', 'gate_proj', 'up_proj', 'down_proj'] });
});

test('embedding backward is the gradient of the lookup (f64, repeated ids)', () => {
  const N = 6, C = 5, V = 4;
  const ids = Int32Array.from([0, 3, 3, 1, 0, 3]);
  const table = randArray(Float64Array, V * C, 15), w = randArray(Float64Array, N * C, 16);
  const out = new Float64Array(N * C);
  const loss = () => (native.embeddingForward(out, ids, table, N, C, V), weightedSum(out, w));
  const d = new Float64Array(V * C);
  native.embeddingBackward(d, w, ids, N, C, V);
  fdCheck([table], [d], loss, { names: ['table'] });
});
