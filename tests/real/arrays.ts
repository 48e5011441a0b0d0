/**
 * Array comparisons for the real-checkpoint tests that stay fast and readable when they fail
 * (deepStrictEqual's diff of two long Float32Arrays takes minutes).
 *
 * @module
 */
import { fail } from "node:assert/strict";

/** Fails naming the first index where `a` and `b` differ (exact comparison). */
export function assertSameValues(a: Float32Array, b: Float32Array, label: string): void {
  if (a.length !== b.length) fail(`${label}: ${a.length} values, expected ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
      fail(`${label}: value ${a[i]} at index ${i}, expected ${b[i]}`);
    }
  }
}

/** ‖a − b‖ / ‖b‖. */
export function relError(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) num += (a[i] - b[i]) ** 2;
  for (let i = 0; i < b.length; i++) den += b[i] ** 2;
  return Math.sqrt(num / Math.max(den, 1e-30));
}
