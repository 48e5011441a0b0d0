/**
 * What the fused kernels (`fused.ts`) share besides their SIMD loops (`simd.ts`): the constants
 * of an AdamW update, and the per-head KL divergence and its gradient, which run in JavaScript
 * (a batch of logits is small: batch × Σ classes values):
 *
 * - `KL_h = mean over rows of Σ_c p (log p − log_softmax(z)_c)` over head h's block of
 *   columns, p log p = 0 where p = 0 (as lib/interference/distance.ts's `kl`);
 * - `∂KL_h/∂z = (softmax(z)·Σp − p) / rows` (Σp is 1 for a distribution; the unfused ops'
 *   gradient carries it, so this one does too).
 *
 * @module
 */

/** The constants of one AdamW update, as float32 values (lib/engine/simd.ts `adamw`). */
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
 * Per-head KL(p ‖ softmax(z)) over column blocks of a [rows, Σ widths] layout, averaged over
 * rows: returns one value per head in `kl`. `z` are logits, `p` target probabilities.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { headsKlArrays } from "./fused_math.ts";
 * const kl = new Float64Array(1);
 * headsKlArrays(Float32Array.of(0, 0), Float32Array.of(1, 0), [2], kl);
 * ok(Math.abs(kl[0] - Math.LN2) < 1e-12);
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
      for (let c = 0; c < w; c++) sum += Math.exp(z[o + c] - max);
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
 * import { deepEqual } from "node:assert/strict";
 * import { headsKlGradArrays } from "./fused_math.ts";
 * const dz = new Float32Array(2);
 * headsKlGradArrays(Float32Array.of(0, 0), Float32Array.of(1, 0), [2], [1], 1, dz);
 * deepEqual([...dz], [-0.5, 0.5]);
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
      for (let c = 0; c < w; c++) sum += Math.exp(z[o + c] - max);
      const norm = mass / sum;
      for (let c = 0; c < w; c++) dz[o + c] = k * (Math.exp(z[o + c] - max) * norm - p[o + c]);
      o += w;
    }
  }
}
