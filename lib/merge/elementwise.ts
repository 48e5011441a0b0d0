/**
 * Elementwise reductions over the T task values of one tensor, accumulated in float32 in task
 * order (as PyTorch sums a stack of float32 tensors), so results match the references closely.
 *
 * @module
 */
import { addInPlace, scaleBy } from "../linalg/vector.ts";

/**
 * Σ_t τ_t, elementwise.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { sumOf } from "./elementwise.ts";
 * deepEqual(sumOf([new Float32Array([1, 2]), new Float32Array([3, 4])]), new Float32Array([4, 6]));
 * ```
 */
export function sumOf(taus: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(taus[0].length);
  // Block by block, so the block of `out` stays in cache while every task adds to it (the
  // same additions in the same order as whole-array passes, without T passes over `out`);
  // each addition through OpenBLAS's saxpy where it is loaded (lib/linalg/vector.ts).
  for (let start = 0; start < out.length; start += SUM_BLOCK) {
    const end = Math.min(out.length, start + SUM_BLOCK);
    const block = out.subarray(start, end);
    for (const tau of taus) addInPlace(block, tau.subarray(start, end));
  }
  return out;
}

/** Elements per block of {@linkcode sumOf} (128 KiB of float32: inside L2). */
const SUM_BLOCK = 32768;

/**
 * (1/T) Σ_t τ_t, elementwise.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { meanOf } from "./elementwise.ts";
 * deepEqual(meanOf([new Float32Array([1, 2]), new Float32Array([3, 4])]), new Float32Array([2, 3]));
 * ```
 */
export function meanOf(taus: readonly Float32Array[]): Float32Array {
  const out = sumOf(taus);
  const n = taus.length;
  for (let i = 0; i < out.length; i++) out[i] /= n;
  return out;
}

/**
 * Multiplies `data` by `factor` in place (each product rounded once to float32) and returns it.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { scaleInPlace } from "./elementwise.ts";
 * deepEqual(scaleInPlace(new Float32Array([1, 2]), 0.5), new Float32Array([0.5, 1]));
 * ```
 */
export function scaleInPlace(data: Float32Array, factor: number): Float32Array {
  return scaleBy(data, factor);
}
