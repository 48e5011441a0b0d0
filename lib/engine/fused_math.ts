/**
 * The arithmetic of the fused kernels (`fused.ts`) on plain `Float32Array`s: the wasm kernels
 * run these loops directly on the tensors in the WebAssembly heap. Each loop computes what the
 * chain of tfjs ops it replaces computes, in the same order where that order is visible in
 * float32 (so that a fused step and an unfused one agree to float32 rounding):
 *
 * - AdamW: `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`, `w ← w·(1 − lr·wd) − lr·(m/c1) /
 *   (√(v/c2) + ε)`, every product and sum rounded to float32 as tfjs's separate ops round them
 *   (bit for bit the same as lib/train/adamw.ts's unfused update).
 * - LayerNorm over the last axis: `y = (x − μ)·(σ² + ε)^(−½)·γ + β` with `μ`, `σ²` the row's
 *   mean and (biased) variance; its gradient `dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))` with
 *   `ĝ = dy·γ`, `x̂ = (x − μ)·r`, `r = (σ² + ε)^(−½)`, and `dγ = Σ dy·x̂`, `dβ = Σ dy` over rows.
 * - Quick-GELU `y = x·s`, `s = σ(1.702·x)`, gradient `dy·(s + 1.702·x·s·(1 − s))`.
 * - KL divergence of fixed targets p to the softmax of logits z, head by head over column
 *   blocks: `KL_h = mean over rows of Σ_c p (log p − log_softmax(z)_c)` (p log p = 0 where p = 0),
 *   gradient `∂KL_h/∂z = (softmax(z)·Σp − p) / rows`.
 *
 * Exponentials use {@linkcode expApprox}: exp to a relative error below 2e-9 (far under
 * float32's 6e-8), about five times faster than `Math.exp` in V8.
 *
 * @module
 */

const f = Math.fround;

/** The constants of one AdamW update, as float32 values (see {@linkcode adamwArrays}). */
export interface AdamWConstants {
  beta1: number;
  beta2: number;
  /** Learning rate. */
  lr: number;
  /** Multiplier of w before the step, 1 − lr·wd (1 when the variable is not decayed). */
  decay: number;
  /** Bias corrections 1 − β1^t and 1 − β2^t. */
  c1: number;
  c2: number;
  epsilon: number;
}

/**
 * One AdamW update of a whole tensor: reads w, m, v, g and writes the new w, m and v into
 * `outW`, `outM`, `outV` (which may be the inputs themselves). Each intermediate is rounded
 * to float32 as the unfused chain of tfjs ops rounds it.
 *
 * @example
 * ```ts
 * import { adamwArrays } from "./fused_math.ts";
 * const w = Float32Array.of(1), m = new Float32Array(1), v = new Float32Array(1);
 * adamwArrays(w, m, v, Float32Array.of(0.5), w, m, v,
 *   { beta1: 0.9, beta2: 0.999, lr: 0.01, decay: 1, c1: 0.1, c2: 0.001, epsilon: 1e-8 });
 * console.log(w[0]); // ≈ 0.99 (Adam's first step moves by lr·sign(g))
 * ```
 */
export function adamwArrays(
  w: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
  outW: Float32Array,
  outM: Float32Array,
  outV: Float32Array,
  c: AdamWConstants,
): void {
  const b1 = f(c.beta1), ob1 = f(1 - c.beta1), b2 = f(c.beta2), ob2 = f(1 - c.beta2);
  const lr = f(c.lr), decay = f(c.decay), c1 = f(c.c1), c2 = f(c.c2), eps = f(c.epsilon);
  const decays = c.decay !== 1;
  const n = w.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi = f(f(m[i] * b1) + f(gi * ob1));
    const vi = f(f(v[i] * b2) + f(f(gi * gi) * ob2));
    const wi = decays ? f(w[i] * decay) : w[i];
    const den = f(f(Math.sqrt(f(vi / c2))) + eps);
    outW[i] = wi - f(f(f(mi / c1) / den) * lr);
    outM[i] = mi;
    outV[i] = vi;
  }
}

/**
 * `out = a + b` elementwise (float32).
 *
 * @example
 * ```ts
 * import { addArrays } from "./fused_math.ts";
 * const out = new Float32Array(2);
 * addArrays(Float32Array.of(1, 2), Float32Array.of(3, 4), out);
 * console.log(out); // Float32Array [4, 6]
 * ```
 */
export function addArrays(a: Float32Array, b: Float32Array, out: Float32Array): void {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/** The mean and 1/√(variance + ε) of row `r` of width `d` (float32 values, double sums). */
function rowStats(x: Float32Array, r: number, d: number, eps: number): [number, number] {
  const o = r * d;
  let sum = 0;
  for (let j = 0; j < d; j++) sum += x[o + j];
  const mean = f(sum / d);
  let sq = 0;
  for (let j = 0; j < d; j++) {
    const c = f(x[o + j] - mean);
    sq += c * c;
  }
  return [mean, f(1 / Math.sqrt(f(f(sq / d) + eps)))];
}

/**
 * LayerNorm over rows of width `d`: `y = (x − μ)·r·γ + β`, r = 1/√(σ² + ε).
 *
 * @example
 * ```ts
 * import { layerNormArrays } from "./fused_math.ts";
 * const y = new Float32Array(2);
 * layerNormArrays(Float32Array.of(1, 3), Float32Array.of(1, 1), Float32Array.of(0, 0), 2, 0, y);
 * console.log(y); // Float32Array [-1, 1]
 * ```
 */
export function layerNormArrays(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  d: number,
  eps: number,
  y: Float32Array,
): void {
  const rows = x.length / d;
  for (let r = 0; r < rows; r++) {
    const [mean, rstd] = rowStats(x, r, d, eps);
    const o = r * d;
    for (let j = 0; j < d; j++) y[o + j] = f(f(f(x[o + j] - mean) * rstd) * gamma[j]) + beta[j];
  }
}

/**
 * LayerNorm's gradient with respect to its input: `dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))`,
 * ĝ = dy·γ, x̂ = (x − μ)·r.
 *
 * @example
 * ```ts
 * import { layerNormGradArrays } from "./fused_math.ts";
 * const dx = new Float32Array(2);
 * layerNormGradArrays(Float32Array.of(1, 1), Float32Array.of(1, 3), Float32Array.of(1, 1), 2, 0, dx);
 * console.log(dx); // Float32Array [0, 0]: a shift of every output is no gradient
 * ```
 */
export function layerNormGradArrays(
  dy: Float32Array,
  x: Float32Array,
  gamma: Float32Array,
  d: number,
  eps: number,
  dx: Float32Array,
): void {
  const rows = x.length / d;
  for (let r = 0; r < rows; r++) {
    const [mean, rstd] = rowStats(x, r, d, eps);
    const o = r * d;
    let sg = 0, sgx = 0;
    for (let j = 0; j < d; j++) {
      const g = dy[o + j] * gamma[j];
      sg += g;
      sgx += g * (x[o + j] - mean) * rstd;
    }
    const mg = sg / d, mgx = sgx / d;
    for (let j = 0; j < d; j++) {
      const xhat = (x[o + j] - mean) * rstd;
      dx[o + j] = rstd * (dy[o + j] * gamma[j] - mg - xhat * mgx);
    }
  }
}

/**
 * LayerNorm's gradients with respect to γ and β: `dγ = Σ_rows dy·x̂`, `dβ = Σ_rows dy`.
 *
 * @example
 * ```ts
 * import { layerNormParamGradArrays } from "./fused_math.ts";
 * const dg = new Float32Array(2), db = new Float32Array(2);
 * layerNormParamGradArrays(Float32Array.of(1, 2), Float32Array.of(1, 3), 2, 0, dg, db);
 * console.log(dg, db); // Float32Array [-1, 2] Float32Array [1, 2]
 * ```
 */
export function layerNormParamGradArrays(
  dy: Float32Array,
  x: Float32Array,
  d: number,
  eps: number,
  dGamma: Float32Array,
  dBeta: Float32Array,
): void {
  const rows = x.length / d;
  const sg = new Float64Array(d), sb = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const [mean, rstd] = rowStats(x, r, d, eps);
    const o = r * d;
    for (let j = 0; j < d; j++) {
      const g = dy[o + j];
      sg[j] += g * f(f(x[o + j] - mean) * rstd);
      sb[j] += g;
    }
  }
  for (let j = 0; j < d; j++) {
    dGamma[j] = sg[j];
    dBeta[j] = sb[j];
  }
}

const LOG2E = Math.LOG2E;
// ln 2 split so that k·LN2_HI is exact for |k| < 2^11
const LN2_HI = 0.6931471803691238;
const LN2_LO = 1.9082149292705877e-10;
/** 2^k for k = −150 … 150, at index k + 150. */
const POW2 = Float64Array.from({ length: 301 }, (_, i) => 2 ** (i - 150));

/**
 * exp(x) to a relative error below 2e-9 for x in [−103, 88] (float32's range; 0 below, and
 * 2^128 above): x = k·ln 2 + r, |r| ≤ ln2/2, e^r by its Taylor series to r⁸ (remainder below
 * 0.35⁹/9! ≈ 2e-9), times 2^k from a table. About five times faster than `Math.exp` in V8.
 *
 * @example
 * ```ts
 * import { expApprox } from "./fused_math.ts";
 * console.log(Math.abs(expApprox(1) / Math.E - 1) < 2e-9); // true
 * ```
 */
export function expApprox(x: number): number {
  if (x < -103) return 0;
  if (x > 88.8) x = 88.8;
  const k = Math.round(x * LOG2E);
  const r = (x - k * LN2_HI) - k * LN2_LO;
  const p = 1 +
    r * (1 +
        r * (0.5 +
            r * (1 / 6 +
                r * (1 / 24 +
                    r * (1 / 120 + r * (1 / 720 + r * (1 / 5040 + r * (1 / 40320))))))));
  return p * POW2[k + 150];
}

const GELU_Q = f(1.702);

/**
 * Quick-GELU `y = x·σ(1.702·x)` (CLIP's activation).
 *
 * @example
 * ```ts
 * import { quickGeluArrays } from "./fused_math.ts";
 * const y = new Float32Array(1);
 * quickGeluArrays(Float32Array.of(0), y);
 * console.log(y[0]); // 0
 * ```
 */
export function quickGeluArrays(x: Float32Array, y: Float32Array): void {
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    const s = f(1 / (1 + expApprox(-f(xi * GELU_Q))));
    y[i] = xi * s;
  }
}

/**
 * Quick-GELU's gradient: `dx = dy·(s + 1.702·x·s·(1 − s))`, s = σ(1.702·x).
 *
 * @example
 * ```ts
 * import { quickGeluGradArrays } from "./fused_math.ts";
 * const dx = new Float32Array(1);
 * quickGeluGradArrays(Float32Array.of(1), Float32Array.of(0), dx);
 * console.log(dx[0]); // 0.5 (σ(0))
 * ```
 */
export function quickGeluGradArrays(dy: Float32Array, x: Float32Array, dx: Float32Array): void {
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const xi = x[i], g = dy[i];
    const s = f(1 / (1 + expApprox(-f(xi * GELU_Q))));
    dx[i] = f(g * s) + f(f(f(g * xi) * f(s * f(1 - s))) * GELU_Q);
  }
}

/**
 * Per-head KL(p ‖ softmax(z)) over column blocks of a [rows, Σ widths] layout, averaged over
 * rows: returns one value per head in `kl`. `z` are logits, `p` target probabilities.
 *
 * @example
 * ```ts
 * import { headsKlArrays } from "./fused_math.ts";
 * const kl = new Float64Array(1);
 * headsKlArrays(Float32Array.of(0, 0), Float32Array.of(1, 0), [2], kl);
 * console.log(kl[0]); // ln 2 ≈ 0.693
 * ```
 */
export function headsKlArrays(
  z: Float32Array,
  p: Float32Array,
  widths: readonly number[],
  kl: Float64Array,
): void {
  const total = widths.reduce((s, w) => s + w, 0);
  const rows = z.length / total;
  kl.fill(0);
  for (let r = 0; r < rows; r++) {
    let o = r * total;
    for (let h = 0; h < widths.length; h++) {
      const w = widths[h];
      let max = -Infinity;
      for (let c = 0; c < w; c++) if (z[o + c] > max) max = z[o + c];
      let sum = 0;
      for (let c = 0; c < w; c++) sum += expApprox(z[o + c] - max);
      const lse = max + Math.log(sum);
      let acc = 0;
      for (let c = 0; c < w; c++) {
        const pc = p[o + c];
        if (pc > 0) acc += pc * (Math.log(pc) - (z[o + c] - lse));
        else if (pc < 0) acc -= pc * (z[o + c] - lse);
      }
      kl[h] += acc;
      o += w;
    }
  }
  for (let h = 0; h < widths.length; h++) kl[h] /= rows;
}

/**
 * The gradient of `Σ_h weight_h·KL_h` ({@linkcode headsKlArrays}) with respect to the
 * logits, times `scale`: `dz = scale·weight_h·(softmax(z)·Σp − p)/rows` in head h's block.
 *
 * @example
 * ```ts
 * import { headsKlGradArrays } from "./fused_math.ts";
 * const dz = new Float32Array(2);
 * headsKlGradArrays(Float32Array.of(0, 0), Float32Array.of(1, 0), [2], [1], 1, dz);
 * console.log(dz); // Float32Array [-0.5, 0.5]
 * ```
 */
export function headsKlGradArrays(
  z: Float32Array,
  p: Float32Array,
  widths: readonly number[],
  weights: readonly number[],
  scale: number,
  dz: Float32Array,
): void {
  const total = widths.reduce((s, w) => s + w, 0);
  const rows = z.length / total;
  for (let r = 0; r < rows; r++) {
    let o = r * total;
    for (let h = 0; h < widths.length; h++) {
      const w = widths[h];
      const k = scale * weights[h] / rows;
      let max = -Infinity, mass = 0;
      for (let c = 0; c < w; c++) {
        if (z[o + c] > max) max = z[o + c];
        mass += p[o + c];
      }
      let sum = 0;
      for (let c = 0; c < w; c++) sum += expApprox(z[o + c] - max);
      const norm = mass / sum;
      for (let c = 0; c < w; c++) dz[o + c] = k * (expApprox(z[o + c] - max) * norm - p[o + c]);
      o += w;
    }
  }
}
