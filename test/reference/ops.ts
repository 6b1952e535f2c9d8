// Plain float64 references of every standard kernel, written for clarity, used only by tests.
// Same argument order and semantics as native/src/kernels/kernels.h (outputs first; backward
// kernels accumulate where the native ones do).
type Arr = ArrayLike<number> & { [i: number]: number; length: number };

export function gemmRef(
  ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number,
  A: ArrayLike<number>, lda: number, B: ArrayLike<number>, ldb: number, beta: number, C: Arr, ldc: number,
): void {
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (ta ? A[k * lda + i]! : A[i * lda + k]!) * (tb ? B[j * ldb + k]! : B[k * ldb + j]!);
      C[i * ldc + j] = alpha * s + (beta === 0 ? 0 : beta * C[i * ldc + j]!);
    }
}

export function rmsnormForwardRef(out: Arr, rstd: Arr, x: ArrayLike<number>, w: ArrayLike<number>, N: number, C: number, eps: number): void {
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c]! ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) out[n * C + c] = x[n * C + c]! * r * w[c]!;
  }
}

export function rmsnormBackwardRef(dx: Arr, dw: Arr, dout: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, rstd: ArrayLike<number>, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const r = rstd[n]!;
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dout[n * C + c]! * w[c]! * x[n * C + c]!;
    for (let c = 0; c < C; c++) {
      dx[n * C + c] = dx[n * C + c]! + r * w[c]! * dout[n * C + c]! - (x[n * C + c]! * dot * r ** 3) / C;
      dw[c] = dw[c]! + dout[n * C + c]! * x[n * C + c]! * r;
    }
  }
}

export function ropeTableRef(cos: Arr, sin: Arr, T: number, D: number, theta: number): void {
  for (let t = 0; t < T; t++)
    for (let i = 0; i < D / 2; i++) {
      const a = t * theta ** ((-2 * i) / D);
      cos[t * (D / 2) + i] = Math.cos(a);
      sin[t * (D / 2) + i] = Math.sin(a);
    }
}

export function ropeApplyRef(x: Arr, cos: ArrayLike<number>, sin: ArrayLike<number>, B: number, T: number, H: number, D: number, inverse: boolean): void {
  const half = D / 2;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const o = ((b * T + t) * H + h) * D;
        for (let i = 0; i < half; i++) {
          const c = cos[t * half + i]!;
          const s = (inverse ? -1 : 1) * sin[t * half + i]!;
          const a = x[o + i]!;
          const bb = x[o + i + half]!;
          x[o + i] = a * c - bb * s;
          x[o + i + half] = bb * c + a * s;
        }
      }
}

/** rope_qkv_split in float64: rows of (H + 2 KVH) D -> q (N, H D), k, v (N, KVH D), q and k rotated. */
export function ropeQkvSplitRef(qkv: ArrayLike<number>, cos: ArrayLike<number>, sin: ArrayLike<number>, B: number, T: number, H: number, KVH: number, D: number) {
  const N = B * T, W = (H + 2 * KVH) * D;
  const q = new Float64Array(N * H * D), k = new Float64Array(N * KVH * D), v = new Float64Array(N * KVH * D);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < W; c++) {
      const x = qkv[n * W + c]!;
      if (c < H * D) q[n * H * D + c] = x;
      else if (c < (H + KVH) * D) k[n * KVH * D + c - H * D] = x;
      else v[n * KVH * D + c - (H + KVH) * D] = x;
    }
  ropeApplyRef(q, cos, sin, B, T, H, D, false);
  ropeApplyRef(k, cos, sin, B, T, KVH, D, false);
  return { q, k, v };
}

/** Causal GQA attention, straight from the definition. probs: (B, H, T, T). */
export function attentionForwardRef(out: Arr, probs: Arr, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, B: number, T: number, H: number, KVH: number, D: number): void {
  const scale = 1 / Math.sqrt(D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < T; i++) {
        const s = new Float64Array(T);
        let mx = -Infinity;
        for (let j = 0; j <= i; j++) {
          let d = 0;
          for (let e = 0; e < D; e++) d += q[((b * T + i) * H + h) * D + e]! * k[((b * T + j) * KVH + kvh) * D + e]!;
          s[j] = d * scale;
          mx = Math.max(mx, s[j]!);
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += Math.exp(s[j]! - mx);
        for (let j = 0; j < T; j++) probs[((b * H + h) * T + i) * T + j] = j <= i ? Math.exp(s[j]! - mx) / sum : 0;
        for (let e = 0; e < D; e++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc += probs[((b * H + h) * T + i) * T + j]! * v[((b * T + j) * KVH + kvh) * D + e]!;
          out[((b * T + i) * H + h) * D + e] = acc;
        }
      }
    }
}

export function attentionBackwardRef(dq: Arr, dk: Arr, dv: Arr, dout: ArrayLike<number>, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, probs: ArrayLike<number>, B: number, T: number, H: number, KVH: number, D: number): void {
  const scale = 1 / Math.sqrt(D);
  dq.length && Array.prototype.fill.call(dq, 0);
  Array.prototype.fill.call(dk, 0);
  Array.prototype.fill.call(dv, 0);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < T; i++) {
        const P = (j: number) => probs[((b * H + h) * T + i) * T + j]!;
        const dP = new Float64Array(T);
        for (let j = 0; j <= i; j++) {
          let d = 0;
          for (let e = 0; e < D; e++) d += dout[((b * T + i) * H + h) * D + e]! * v[((b * T + j) * KVH + kvh) * D + e]!;
          dP[j] = d;
          for (let e = 0; e < D; e++) dv[((b * T + j) * KVH + kvh) * D + e] += P(j) * dout[((b * T + i) * H + h) * D + e]!;
        }
        let dot = 0;
        for (let j = 0; j <= i; j++) dot += P(j) * dP[j]!;
        for (let j = 0; j <= i; j++) {
          const dS = P(j) * (dP[j]! - dot) * scale;
          for (let e = 0; e < D; e++) {
            dq[((b * T + i) * H + h) * D + e] += dS * k[((b * T + j) * KVH + kvh) * D + e]!;
            dk[((b * T + j) * KVH + kvh) * D + e] += dS * q[((b * T + i) * H + h) * D + e]!;
          }
        }
      }
    }
}

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

export function swigluForwardRef(out: Arr, gate: ArrayLike<number>, up: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) out[i] = gate[i]! * sigmoid(gate[i]!) * up[i]!;
}

export function swigluBackwardRef(dgate: Arr, dup: Arr, dout: ArrayLike<number>, gate: ArrayLike<number>, up: ArrayLike<number>, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    const s = sigmoid(g);
    dup[i] = dout[i]! * g * s;
    dgate[i] = dout[i]! * up[i]! * (s + g * s * (1 - s));
  }
}

export function crossEntropyForwardRef(lse: Arr, logits: ArrayLike<number>, targets: ArrayLike<number>, N: number, V: number): number {
  let total = 0;
  for (let n = 0; n < N; n++) {
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[n * V + j]!);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[n * V + j]! - mx);
    lse[n] = mx + Math.log(s);
    if (targets[n]! >= 0) total += lse[n]! - logits[n * V + targets[n]!]!;
  }
  return total;
}

export function crossEntropyBackwardRef(dlogits: Arr, logits: ArrayLike<number>, lse: ArrayLike<number>, targets: ArrayLike<number>, N: number, V: number, dloss: number): void {
  for (let n = 0; n < N; n++)
    for (let j = 0; j < V; j++) {
      const t = targets[n]!;
      dlogits[n * V + j] = t < 0 ? 0 : (Math.exp(logits[n * V + j]! - lse[n]!) - (j === t ? 1 : 0)) * dloss;
    }
}

export function embeddingForwardRef(out: Arr, ids: ArrayLike<number>, table: ArrayLike<number>, N: number, C: number): void {
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) out[n * C + c] = table[ids[n]! * C + c]!;
}

export function embeddingBackwardRef(dtable: Arr, dout: ArrayLike<number>, ids: ArrayLike<number>, N: number, C: number): void {
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) dtable[ids[n]! * C + c] += dout[n * C + c]!;
}

/** torch.optim.AdamW, one step, written out. */
export function adamwRef(p: Arr, g: ArrayLike<number>, m: Arr, v: Arr, n: number, lr: number, b1: number, b2: number, eps: number, wd: number, step: number, gscale: number): void {
  for (let i = 0; i < n; i++) {
    const gi = g[i]! * gscale;
    p[i] = p[i]! * (1 - lr * wd);
    m[i] = b1 * m[i]! + (1 - b1) * gi;
    v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
    const mhat = m[i]! / (1 - b1 ** step);
    const vhat = v[i]! / (1 - b2 ** step);
    p[i] = p[i]! - (lr * mhat) / (Math.sqrt(vhat) + eps);
  }
}

// ---- bf16 ----------------------------------------------------------------------------------
// bf16: 1 sign bit, 8 exponent bits (bias 127), 7 mantissa bits. Normal values (1 + m/128) *
// 2^(E-127) for E in 1..254, subnormals m * 2^-133, E = 255: infinity (m = 0) or NaN.
// Written from the values, not from the fp32 bit pattern (the native code uses the bit trick of
// native/src/bf16/convert.h); the two must agree bit for bit.

const BF16_MIN_EXP = -126; // exponent of the smallest normal bf16 value
const BF16_MAX = 255 * 2 ** 120; // (2 - 2^-7) * 2^127, the largest finite bf16 value

/** floor(log2(a)) for a finite a > 0, exactly (Math.log2 may round near powers of two). */
export function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}

/**
 * The bf16 bit pattern nearest to the exact value x (any float64), ties to the even mantissa.
 * Overflow follows round-to-nearest: values from the midpoint between BF16_MAX and 2^128 up
 * become infinity. Subnormals are rounded, not flushed; -0 keeps its sign. A NaN gives the
 * canonical quiet NaN 0x7FC0: a JS number carries no NaN sign or payload, so a test checks NaN
 * results against the input's bits itself (isBf16NaN).
 */
export function bf16BitsRef(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7f80;
  if (a === 0) return sign;
  // The bf16 values around a are multiples of ulp = 2^(e - 7) in a's binade [2^e, 2^(e+1)),
  // and of 2^-133 everywhere below 2^-126 (the subnormals).
  const e = Math.max(exponentOf(a), BF16_MIN_EXP);
  const ulp = 2 ** (e - 7);
  const q = a / ulp; // exact: a power-of-two scaling of a float64 that stays normal
  const lo = Math.floor(q);
  const frac = q - lo; // exact
  const n = frac > 0.5 || (frac === 0.5 && lo % 2 === 1) ? lo + 1 : lo; // n in [0, 256]
  const v = n * ulp; // the rounded magnitude; n = 256 is 2^(e+1), the next binade
  if (v > BF16_MAX) return sign | 0x7f80; // rounded past the largest finite value
  if (v === 0) return sign; // below half the smallest subnormal (or the tie at it)
  if (v < 2 ** BF16_MIN_EXP) return sign | (v / 2 ** -133); // subnormal: m in 1..127
  const E = exponentOf(v);
  const m = v / 2 ** (E - 7) - 128; // 0..127
  return sign | ((E + 127) << 7) | m;
}

/** The exact value of a bf16 bit pattern (NaN for every NaN pattern). */
export function bf16ValueRef(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const E = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (E === 0xff) return m === 0 ? sign * Infinity : NaN;
  if (E === 0) return sign * m * 2 ** -133; // -0 for 0x8000
  return sign * (128 + m) * 2 ** (E - 134);
}

/** True for a bf16 NaN pattern (all exponent bits set, non-zero mantissa). */
export function isBf16NaN(h: number): boolean {
  return (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
}

/** x rounded to the nearest bf16 value (ties to even), as a number. */
export function roundBf16Ref(x: number): number {
  return bf16ValueRef(bf16BitsRef(x));
}
