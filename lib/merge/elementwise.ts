/**
 * Elementwise reductions over the T task values of one tensor, accumulated in float32 in task
 * order (as PyTorch sums a stack of float32 tensors), so results match the references closely.
 *
 * @module
 */

/**
 * Σ_t τ_t, elementwise.
 *
 * @example
 * ```ts
 * import { sumOf } from "./elementwise.ts";
 * sumOf([new Float32Array([1, 2]), new Float32Array([3, 4])]); // Float32Array [4, 6]
 * ```
 */
export function sumOf(taus: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(taus[0].length);
  // Block by block, so the block of `out` stays in cache while every task adds to it (the
  // same additions in the same order as whole-array passes, without T passes over `out`).
  for (let start = 0; start < out.length; start += SUM_BLOCK) {
    const end = Math.min(out.length, start + SUM_BLOCK);
    for (const tau of taus) {
      for (let i = start; i < end; i++) out[i] += tau[i];
    }
  }
  return out;
}

/** Elements per block of {@linkcode sumOf} (16 KiB of float32: well inside L1). */
const SUM_BLOCK = 4096;

/**
 * (1/T) Σ_t τ_t, elementwise.
 *
 * @example
 * ```ts
 * import { meanOf } from "./elementwise.ts";
 * meanOf([new Float32Array([1, 2]), new Float32Array([3, 4])]); // Float32Array [2, 3]
 * ```
 */
export function meanOf(taus: readonly Float32Array[]): Float32Array {
  const out = sumOf(taus);
  const n = taus.length;
  for (let i = 0; i < out.length; i++) out[i] /= n;
  return out;
}

/**
 * Multiplies `data` by `factor` in place and returns it.
 *
 * @example
 * ```ts
 * import { scaleInPlace } from "./elementwise.ts";
 * scaleInPlace(new Float32Array([1, 2]), 0.5); // Float32Array [0.5, 1]
 * ```
 */
export function scaleInPlace(data: Float32Array, factor: number): Float32Array {
  if (factor !== 1) { for (let i = 0; i < data.length; i++) data[i] *= factor; }
  return data;
}
