/**
 * Tensors held in host memory as plain Float32Arrays: the currency between checkpoint files,
 * task-vector algebra and merge methods (which work outside tfjs, one tensor at a time).
 *
 * @module
 */

/** A float32 tensor in host memory, row-major. */
export interface HostTensor {
  /** Dimensions, outermost first. A scalar has shape `[]`. */
  readonly shape: readonly number[];
  /** Row-major values; `data.length` equals the product of `shape`. */
  readonly data: Float32Array;
}

/**
 * Number of elements of a shape (1 for a scalar).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { numel } from "./host.ts";
 * equal(numel([3, 4]), 12);
 * equal(numel([]), 1); // a scalar
 * ```
 */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * True when two shapes are equal.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sameShape } from "./host.ts";
 * equal(sameShape([2, 3], [2, 3]), true);
 * equal(sameShape([2, 3], [3, 2]), false);
 * ```
 */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Formats a shape the way error messages print it: `[768, 3072]`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { shapeText } from "./host.ts";
 * equal(shapeText([768, 3072]), "[768, 3072]");
 * ```
 */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Index of the first NaN or ±Infinity in `data`, or -1 when every value is finite.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { firstNonFinite } from "./host.ts";
 * equal(firstNonFinite(new Float32Array([1, NaN])), 1);
 * equal(firstNonFinite(new Float32Array([1, 2])), -1);
 * ```
 */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is NaN exactly when v is NaN or infinite
    if (v - v !== 0) return i;
  }
  return -1;
}
