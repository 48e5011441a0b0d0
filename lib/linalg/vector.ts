/**
 * Elementwise float32 vector updates in place, through OpenBLAS's level-1 routines where it is
 * loaded (SIMD, on the arrays as they are, no copies; `saxpy`, `sscal`, `sasum`), else plain
 * loops. Each gives exactly what the loop gives, bit for bit: y + α·x with α = ±1 has an exact
 * product, so `saxpy` rounds y ± x once as `y[i] ± x[i]` does (fused or not), and `sscal` runs
 * only for a float32 α, whose product with a float32 is exact before its one rounding.
 *
 * @module
 */
import { openBlas } from "./openblas.ts";

/** Below this many elements the loop beats the FFI call. */
const BLAS_MIN = 4096;

function checkLengths(fn: string, y: Float32Array, x: Float32Array): void {
  if (x.length !== y.length) {
    throw new RangeError(`${fn}: arrays of ${y.length} and ${x.length} values`);
  }
}

/**
 * `y ← y + x` in place (float32 additions, as `y[i] += x[i]`); returns y.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { addInPlace } from "./vector.ts";
 * deepEqual([...addInPlace(new Float32Array([1, 2]), new Float32Array([3, 4]))], [4, 6]);
 * ```
 */
export function addInPlace(y: Float32Array, x: Float32Array): Float32Array {
  checkLengths("addInPlace", y, x);
  const blas = y.length >= BLAS_MIN ? openBlas() : undefined;
  if (blas) blas.cblas_saxpy(y.length, 1, x, 1, y, 1);
  else for (let i = 0; i < y.length; i++) y[i] += x[i];
  return y;
}

/**
 * `y ← y − x` in place; returns false when an input holds a NaN or ±Infinity (its difference
 * is then not finite), true when neither does. On OpenBLAS's path a false can also mean only
 * that Σ|y| or a difference overflowed float32, so a false asks the caller to check the inputs.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { subtractFinite } from "./vector.ts";
 * const y = new Float32Array([3, 4]);
 * equal(subtractFinite(y, new Float32Array([1, 1])), true);
 * deepEqual([...y], [2, 3]);
 * equal(subtractFinite(y, new Float32Array([NaN, 0])), false);
 * ```
 */
export function subtractFinite(y: Float32Array, x: Float32Array): boolean {
  checkLengths("subtractFinite", y, x);
  const blas = y.length >= BLAS_MIN ? openBlas() : undefined;
  if (blas) {
    blas.cblas_saxpy(y.length, -1, x, 1, y, 1);
    // Σ|y| is NaN or Infinity when any value is (or, harmlessly, when the sum overflows: the
    // caller then checks the inputs one by one and finds nothing)
    return Number.isFinite(blas.cblas_sasum(y.length, y, 1));
  }
  let check = 0; // d − d is 0 for finite d and NaN otherwise; NaN sticks
  for (let i = 0; i < y.length; i++) {
    const d = y[i] - x[i];
    y[i] = d;
    check += d - d;
  }
  return check === 0;
}

/**
 * `x ← α·x` in place, each product rounded once to float32 (as `x[i] *= α` does); returns x.
 * OpenBLAS's `sscal` takes α as a float32, so it runs only when α is a float32 exactly and
 * not 0 (its zero fill would turn NaN, ±Infinity and −0 products into +0).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { scaleBy } from "./vector.ts";
 * deepEqual([...scaleBy(new Float32Array([1, 2]), 0.5)], [0.5, 1]);
 * ```
 */
export function scaleBy(x: Float32Array, alpha: number): Float32Array {
  if (alpha === 1) return x;
  // a float32 times a float32 is exact in float64, so one rounding either way
  const blas = x.length >= BLAS_MIN && alpha !== 0 && Math.fround(alpha) === alpha
    ? openBlas()
    : undefined;
  if (blas) blas.cblas_sscal(x.length, alpha, x, 1);
  else for (let i = 0; i < x.length; i++) x[i] *= alpha;
  return x;
}
